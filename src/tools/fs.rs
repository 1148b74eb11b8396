//! The file tools: `read` (numbered lines, or a directory's listing), `write` and
//! `edit`. Only regular files are read or changed (a FIFO or device is refused before
//! it is opened), reads are capped and cancellable, and a change is refused when the
//! model has not read the file or it changed since. A write or edit is first a `Plan`
//! (the new content, the `Change` for the journal, a diff); applying it puts the file
//! on disk atomically (`disk::save`). Paths arrive resolved; whether they may be touched
//! is decided before they get here.

use super::change::Change;
use super::clip::{self, LIMIT};
use super::disk::{self, Cancellable, Links, OpenError, ReadError, Stamp};
use super::{Context, Outcome};
use similar::TextDiff;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Seek};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// Lines `read` returns when the model gives no limit: a whole file of ordinary size.
pub const DEFAULT_LIMIT: usize = 2000;

/// Bytes sniffed for a NUL to call a file binary (what git and grep do).
pub const BINARY_SNIFF: usize = 8 * 1024;

/// Bytes of one line `read` shows: minified files have lines of megabytes.
const MAX_LINE: usize = 2000;

/// Room for numbered lines in a `read`; the rest of `LIMIT` is for the notes on line
/// ends and on how to read further.
const BODY: usize = LIMIT - 256;

/// Longest time spent on a diff; a huge rewrite gets a coarser one instead of a stall.
const DIFF_TIMEOUT: Duration = Duration::from_secs(1);

/// Context lines in the diff the model sees after an edit: enough to place it.
const MODEL_CONTEXT: usize = 2;

/// Context lines in the diff for people and the journal (the `diff -u` default).
const PEOPLE_CONTEXT: usize = 3;

/// What `read` shows at the end of a file whose line ends are mixed.
const MIXED_NOTE: &str = "[line ends are mixed: \\r marks the lines that end in CRLF; \
                          give it in edit's old to match them]\n";

/// True when `head` (the start of a file) looks binary.
pub fn is_binary(head: &[u8]) -> bool {
    head[..head.len().min(BINARY_SNIFF)].contains(&0)
}

/// What the model has seen of each file: the stamp of the content it last read or
/// wrote. A `write` or `edit` of an existing file needs a stamp that still matches.
#[derive(Debug, Default)]
pub struct Seen(RefCell<HashMap<PathBuf, Stamp>>);

impl Seen {
    pub fn note(&self, path: &Path, stamp: Stamp) {
        self.0.borrow_mut().insert(path.to_path_buf(), stamp);
    }

    pub fn get(&self, path: &Path) -> Option<Stamp> {
        self.0.borrow().get(path).cloned()
    }
}

/// Numbered lines from `offset` (1-based), at most `limit` of them, like `cat -n`.
pub fn read(path: &Path, offset: Option<usize>, limit: Option<usize>, ctx: &Context) -> Outcome {
    let shown = ctx.workspace.display(path);
    if path.is_dir() {
        return list(path, &shown);
    }
    let (mut file, meta) = match disk::open_regular(path) {
        Ok(opened) => opened,
        Err(e) => return Outcome::error(open_error(&shown, e)),
    };
    // A file nib could change is surveyed whole: its stamp, and its line ends.
    let survey = match meta.len() <= disk::MAX_FILE {
        true => match survey(&mut file, ctx.cancel) {
            Ok(survey) => Some(survey),
            Err(e) => return Outcome::error(format!("cannot read {shown}: {e}")),
        },
        false => None,
    };
    let cancellable = Cancellable {
        inner: file,
        cancel: ctx.cancel,
    };
    let mut reader = BufReader::with_capacity(BINARY_SNIFF, cancellable);
    match reader.fill_buf() {
        Ok(head) if is_binary(head) => {
            return Outcome::error(format!(
                "{shown} is a binary file ({} bytes); inspect it with bash (file, xxd) instead",
                meta.len()
            ));
        }
        Ok(_) => {}
        Err(e) => return Outcome::error(format!("cannot read {shown}: {e}")),
    }
    let first = offset.unwrap_or(1).max(1);
    let limit = limit.unwrap_or(DEFAULT_LIMIT).max(1);
    let mixed = survey.as_ref().is_some_and(|s| s.crlf > 0 && s.lf > 0);
    match page(&mut reader, first, limit, mixed) {
        Ok(page) => {
            if let Some(survey) = survey {
                ctx.seen.note(path, survey.stamp);
            }
            page.outcome(&shown, first, mixed)
        }
        Err(e) => Outcome::error(format!("cannot read {shown}: {e}")),
    }
}

/// A whole file at a glance: its stamp and how its lines end.
struct Survey {
    stamp: Stamp,
    crlf: usize,
    lf: usize,
}

/// Reads `file` to its end, then puts it back at the start.
fn survey(file: &mut File, cancel: &AtomicBool) -> io::Result<Survey> {
    let mut hasher = disk::Hasher::new();
    let (mut crlf, mut lf, mut last) = (0, 0, 0u8);
    let mut buf = vec![0; 64 << 10];
    let mut reader = Cancellable {
        inner: &mut *file,
        cancel,
    };
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let chunk = &buf[..n];
        hasher.update(chunk);
        for (i, _) in chunk.iter().enumerate().filter(|(_, b)| **b == b'\n') {
            let before = if i == 0 { last } else { chunk[i - 1] };
            match before {
                b'\r' => crlf += 1,
                _ => lf += 1,
            }
        }
        last = chunk[n - 1];
    }
    file.rewind()?;
    Ok(Survey {
        stamp: hasher.finish(),
        crlf,
        lf,
    })
}

/// What one `read` shows.
struct Page {
    text: String,
    /// Number of the last line read (shown, or skipped before `first`).
    last: usize,
    /// The file goes on after `last`.
    more: bool,
}

impl Page {
    fn outcome(mut self, shown: &str, first: usize, mixed: bool) -> Outcome {
        if self.last < first {
            return match self.last {
                0 => Outcome::ok(format!("{shown} is empty")),
                n => Outcome::error(format!(
                    "{shown} has {n} lines; offset {first} is past the end"
                )),
            };
        }
        if mixed {
            self.text.push_str(MIXED_NOTE);
        }
        if self.more {
            let next = self.last + 1;
            self.text.push_str(&format!(
                "[lines {first}-{} shown; the file goes on: read with offset={next}]",
                self.last
            ));
        }
        Outcome::ok(clip::clip(self.text.as_bytes()))
    }
}

fn page(reader: &mut impl BufRead, first: usize, limit: usize, mixed: bool) -> io::Result<Page> {
    let mut text = String::new();
    let mut line = Vec::new();
    let mut n = 0;
    loop {
        let full = read_line_capped(reader, &mut line, MAX_LINE)?;
        if full == 0 {
            return Ok(Page {
                text,
                last: n,
                more: false,
            });
        }
        if n + 1 < first {
            n += 1;
            continue;
        }
        let numbered = number(n + 1, &line, full, mixed);
        if n + 1 >= first + limit || text.len() + numbered.len() > BODY {
            return Ok(Page {
                text,
                last: n,
                more: true,
            });
        }
        text.push_str(&numbered);
        n += 1;
    }
}

/// Reads one line, keeping at most `max` bytes of it in `line`. Returns the line's
/// full length with its end, 0 at end of file.
fn read_line_capped(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
    max: usize,
) -> io::Result<usize> {
    line.clear();
    let mut total = 0;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(total);
        }
        let (len, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        let keep = max.saturating_sub(line.len()).min(len);
        line.extend_from_slice(&buf[..keep]);
        reader.consume(len);
        total += len;
        if done {
            return Ok(total);
        }
    }
}

/// One line as `cat -n` shows it (`%6d\t`), cut if longer than `MAX_LINE`. In a file
/// with `mixed` line ends, a CRLF line ends in a visible `\r`.
fn number(n: usize, line: &[u8], full: usize, mixed: bool) -> String {
    let cut = full > line.len();
    let body = match cut {
        true => clip::whole_chars(line),
        false => strip_eol(line),
    };
    let mut out = format!("{n:6}\t{}", clip::sanitize(body));
    if cut {
        out.push_str(&format!(" [… line cut at {} of {full} bytes]", body.len()));
    } else if mixed && line.ends_with(b"\r\n") {
        out.push_str("\\r");
    }
    out.push('\n');
    out
}

fn strip_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// A directory's entries, sorted, directories marked with `/`.
fn list(path: &Path, shown: &str) -> Outcome {
    let entries = match fs::read_dir(path) {
        Ok(entries) => entries,
        Err(e) => return Outcome::error(format!("cannot list {shown}: {e}")),
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            match entry.path().is_dir() {
                true => name + "/",
                false => name,
            }
        })
        .collect();
    names.sort();
    let mut text = format!("{shown} is a directory ({} entries):\n", names.len());
    text.push_str(&names.join("\n"));
    Outcome::ok(clip::clip(text.as_bytes()))
}

fn open_error(shown: &str, e: OpenError) -> String {
    match e {
        OpenError::Missing => format!("no such file: {shown}; use glob to find the right path"),
        OpenError::Dangling(target) => format!(
            "{shown} is a symlink to {}, which does not exist; use that path itself",
            target.display()
        ),
        OpenError::Special(kind) => {
            format!("{shown} is {kind}, not a regular file; use bash for it")
        }
        OpenError::Io(e) => format!("cannot open {shown}: {e}"),
    }
}

/// A `write` or `edit`, checked and ready: the journal takes `change` first, then
/// `apply` puts the new content on disk.
#[derive(Debug)]
pub struct Plan {
    path: PathBuf,
    shown: String,
    after: String,
    /// `None` when the file already holds `after`.
    pub change: Option<Change>,
    message: String,
    diff: String,
}

impl Plan {
    fn new(path: &Path, shown: String, before: Option<String>, after: String) -> Plan {
        let lines = match after.lines().count() {
            1 => "1 line".to_string(),
            n => format!("{n} lines"),
        };
        let message = match &before {
            None => format!("created {shown} ({lines})"),
            Some(old) if *old == after => format!("{shown} already had this content"),
            Some(_) => format!("wrote {shown} ({lines})"),
        };
        Plan::with_message(path, shown, before, after, message)
    }

    fn with_message(
        path: &Path,
        shown: String,
        before: Option<String>,
        after: String,
        message: String,
    ) -> Plan {
        let diff = diff(&shown, before.as_deref(), &after, PEOPLE_CONTEXT, true);
        let made_dirs = path.parent().map(disk::missing_dirs).unwrap_or_default();
        let change = (before.as_deref() != Some(after.as_str()))
            .then(|| Change::new(path.to_path_buf(), before.as_deref(), &after, made_dirs));
        Plan {
            path: path.to_path_buf(),
            shown,
            after,
            change,
            message,
            diff,
        }
    }

    /// The content the file will have.
    pub fn after(&self) -> &str {
        &self.after
    }

    /// The diff people see once it ran (and before, in the approval question).
    pub fn diff(&self) -> &str {
        &self.diff
    }

    /// Writes the file (creating its directories); `links` says whether a hard-linked
    /// file may be rewritten in place.
    pub fn apply(self, links: Links, seen: &Seen) -> Outcome {
        if let Some(change) = &self.change {
            let written = change
                .made_dirs
                .iter()
                .try_for_each(|dir| match fs::create_dir(dir) {
                    Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
                    _ => Ok(()),
                })
                .and_then(|()| disk::save(&self.path, self.after.as_bytes(), links));
            if let Err(e) = written {
                return Outcome::error(format!("cannot write {}: {e}", self.shown));
            }
        }
        let stamp = match &self.change {
            Some(change) => change.after.clone(),
            None => Stamp::of(self.after.as_bytes()),
        };
        seen.note(&self.path, stamp);
        Outcome {
            change: self.change,
            diff: Some(self.diff),
            ..Outcome::ok(self.message)
        }
    }
}

/// Plans creating or replacing a whole file.
pub fn write(path: &Path, content: &str, ctx: &Context) -> Result<Plan, String> {
    let shown = ctx.workspace.display(path);
    let before = current(path, &shown, ctx)?;
    let after = match &before {
        Some(old) if is_crlf(old) && !content.contains("\r\n") => to_crlf(content),
        _ => content.to_string(),
    };
    Ok(Plan::new(path, shown, before, after))
}

/// Plans replacing `old` by `new`; `old` must occur exactly once unless `replace_all`.
pub fn edit(
    path: &Path,
    old: &str,
    new: &str,
    replace_all: bool,
    ctx: &Context,
) -> Result<Plan, String> {
    let shown = ctx.workspace.display(path);
    if old.is_empty() {
        return Err("old is empty; give the exact text to replace, or use write".into());
    }
    if old == new {
        return Err("old and new are the same; nothing to change".into());
    }
    let Some(before) = current(path, &shown, ctx)? else {
        return Err(format!("no such file: {shown}; use write to create it"));
    };
    let found = occurrences(&before, old);
    match found.len() {
        0 => return Err(not_found(&before, old, &shown)),
        1 => {}
        n if !replace_all => {
            return Err(format!(
                "old found {n} times in {shown}: add context to make it unique or set replace_all"
            ));
        }
        _ => {}
    }
    // The model writes `\n`; lines that end in `\r\n` keep it.
    let new = endings_like(&before[found[0].clone()], &before, new);
    let after = splice(&before, &found, &new);
    let prefix = match found.len() {
        1 => format!("edited {shown}\n"),
        n => format!("edited {shown}: {n} replacements\n"),
    };
    let compact = diff(&shown, Some(&before), &after, MODEL_CONTEXT, false);
    let message = clip::clip_with(&prefix, compact.as_bytes());
    let plan = Plan::with_message(path, shown, Some(before), after, message);
    Ok(plan)
}

/// Where `old` occurs in `text`: exactly, or else with each of its line breaks matching
/// `\n` or `\r\n` alike (a file whose line ends are mixed).
fn occurrences(text: &str, old: &str) -> Vec<Range<usize>> {
    let exact: Vec<Range<usize>> = text
        .match_indices(old)
        .map(|(at, m)| at..at + m.len())
        .collect();
    if !exact.is_empty() || !old.contains('\n') {
        return exact;
    }
    let pattern = regex::escape(&old.replace("\r\n", "\n")).replace('\n', "\r?\n");
    match regex::Regex::new(&pattern) {
        Ok(loose) => loose.find_iter(text).map(|m| m.range()).collect(),
        Err(_) => exact,
    }
}

/// `new` with the line ends of the text it replaces (`region`, or the whole file when
/// `region` has none), unless the model gave `\r` itself.
fn endings_like(region: &str, text: &str, new: &str) -> String {
    let sample = if region.contains('\n') { region } else { text };
    match !new.contains('\r') && is_crlf(sample) {
        true => to_crlf(new),
        false => new.to_string(),
    }
}

/// `text` with each of `ranges` (in order, not overlapping) replaced by `new`.
fn splice(text: &str, ranges: &[Range<usize>], new: &str) -> String {
    let mut out = String::with_capacity(text.len() + new.len() * ranges.len());
    let mut last = 0;
    for range in ranges {
        out.push_str(&text[last..range.start]);
        out.push_str(new);
        last = range.end;
    }
    out.push_str(&text[last..]);
    out
}

/// Why `old` was not found, with a hint when the likely mistake is visible.
fn not_found(text: &str, old: &str, shown: &str) -> String {
    let squash = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let squashed = squash(old);
    if !squashed.is_empty() && squash(text).contains(&squashed) {
        return format!(
            "old not found in {shown}, but it matches if whitespace is ignored: \
             copy the exact indentation and line breaks from read"
        );
    }
    if has_line_numbers(old) {
        return format!(
            "old not found in {shown}: it seems to include read's line-number prefixes; drop them"
        );
    }
    format!("old not found in {shown}: read the file and copy the exact text")
}

/// True when every non-empty line starts like read's output (`    12\t`).
fn has_line_numbers(text: &str) -> bool {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty()).peekable();
    lines.peek().is_some()
        && lines.all(|l| {
            l.trim_start()
                .split_once('\t')
                .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
}

/// The file's text as the model last saw it, `None` when it does not exist. Refused,
/// with a message for the model, when it is not a regular UTF-8 file nib can hold, when
/// the model has not read it, or when it changed since the model read or wrote it.
fn current(path: &Path, shown: &str, ctx: &Context) -> Result<Option<String>, String> {
    let bytes = match disk::read_capped(path, ctx.cancel) {
        Ok(None) => return Ok(None),
        Ok(Some(bytes)) => bytes,
        Err(ReadError::Open(e)) => return Err(open_error(shown, e)),
        Err(ReadError::TooBig(len)) => {
            return Err(format!(
                "{shown} has {len} bytes, more than nib changes ({} MiB); change it with bash",
                disk::MAX_FILE >> 20
            ));
        }
        Err(ReadError::Io(e)) => return Err(format!("cannot read {shown}: {e}")),
    };
    let now = Stamp::of(&bytes);
    match ctx.seen.get(path) {
        None => {
            return Err(format!(
                "{shown} exists and you have not read it: read it first, then change it"
            ));
        }
        Some(seen) if seen != now => {
            return Err(format!(
                "{shown} changed since you last read it (now {} bytes): read it again, then retry",
                now.len
            ));
        }
        Some(_) => {}
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| format!("{shown} is not UTF-8 text; change it with bash instead"))
}

/// True when most line ends are `\r\n`.
fn is_crlf(text: &str) -> bool {
    let crlf = text.matches("\r\n").count();
    crlf > 0 && crlf * 2 >= text.matches('\n').count()
}

fn to_crlf(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\n', "\r\n")
}

/// A unified diff of the change; `header` adds the `---`/`+++` lines.
fn diff(shown: &str, before: Option<&str>, after: &str, context: usize, header: bool) -> String {
    let text_diff = TextDiff::configure()
        .timeout(DIFF_TIMEOUT)
        .diff_lines(before.unwrap_or(""), after);
    let mut unified = text_diff.unified_diff();
    unified.context_radius(context);
    if header {
        let old = match before {
            Some(_) => format!("a/{shown}"),
            None => "/dev/null".to_string(),
        };
        unified.header(&old, &format!("b/{shown}"));
    }
    unified.to_string()
}

#[cfg(test)]
#[path = "fs_tests.rs"]
mod tests;
