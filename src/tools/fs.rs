//! The file tools: `read` (numbered lines, or a directory's listing), `write` and
//! `edit`. Writes are atomic (a temp file in the same directory, then a rename), keep
//! the file's mode and its line endings, and report what changed as a `FileChange`
//! and a unified diff. Paths arrive resolved; whether they may be touched is decided
//! before they get here.

use super::clip::{self, LIMIT};
use super::{FileChange, Outcome, Workspace};
use similar::TextDiff;
use std::fs::{self, File, Permissions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;
use std::time::Duration;

/// Lines `read` returns when the model gives no limit: a whole file of ordinary size.
pub const DEFAULT_LIMIT: usize = 2000;

/// Bytes sniffed for a NUL to call a file binary (what git and grep do).
pub const BINARY_SNIFF: usize = 8 * 1024;

/// Bytes of one line `read` shows: minified files have lines of megabytes.
const MAX_LINE: usize = 2000;

/// Room for numbered lines in a `read`; the rest of `LIMIT` is for the note on how to
/// read further.
const BODY: usize = LIMIT - 256;

/// Longest time spent on a diff; a huge rewrite gets a coarser one instead of a stall.
const DIFF_TIMEOUT: Duration = Duration::from_secs(1);

/// Context lines in the diff the model sees after an edit: enough to place it.
const MODEL_CONTEXT: usize = 2;

/// Context lines in the diff for people and the journal (the `diff -u` default).
const PEOPLE_CONTEXT: usize = 3;

/// True when `head` (the start of a file) looks binary.
pub fn is_binary(head: &[u8]) -> bool {
    head[..head.len().min(BINARY_SNIFF)].contains(&0)
}

/// Numbered lines from `offset` (1-based), at most `limit` of them, like `cat -n`.
pub fn read(path: &Path, offset: Option<usize>, limit: Option<usize>, ws: &Workspace) -> Outcome {
    let shown = ws.display(path);
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) => return Outcome::error(open_error(&shown, &e)),
    };
    if meta.is_dir() {
        return list(path, &shown);
    }
    let mut reader = match File::open(path) {
        Ok(file) => BufReader::with_capacity(BINARY_SNIFF, file),
        Err(e) => return Outcome::error(open_error(&shown, &e)),
    };
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
    match page(&mut reader, first, limit) {
        Ok(page) => page.outcome(&shown, first),
        Err(e) => Outcome::error(format!("cannot read {shown}: {e}")),
    }
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
    fn outcome(mut self, shown: &str, first: usize) -> Outcome {
        if self.last < first {
            return match self.last {
                0 => Outcome::ok(format!("{shown} is empty")),
                n => Outcome::error(format!(
                    "{shown} has {n} lines; offset {first} is past the end"
                )),
            };
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

fn page(reader: &mut impl BufRead, first: usize, limit: usize) -> io::Result<Page> {
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
        let numbered = number(n + 1, &line, full);
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

/// One line as `cat -n` shows it (`%6d\t`), cut if longer than `MAX_LINE`.
fn number(n: usize, line: &[u8], full: usize) -> String {
    let cut = full > line.len();
    let body = match cut {
        true => clip::whole_chars(line),
        false => strip_eol(line),
    };
    let mut out = format!("{n:6}\t{}", clip::sanitize(body));
    if cut {
        out.push_str(&format!(" [… line cut at {} of {full} bytes]", body.len()));
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

fn open_error(shown: &str, e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => {
            format!("no such file: {shown}; use glob to find the right path")
        }
        _ => format!("cannot open {shown}: {e}"),
    }
}

/// Creates or replaces a whole file.
pub fn write(path: &Path, content: &str, ws: &Workspace) -> Outcome {
    let shown = ws.display(path);
    if path.is_dir() {
        return Outcome::error(format!("{shown} is a directory; give a file path"));
    }
    let before = match read_text(path, &shown) {
        Ok(before) => before,
        Err(message) => return Outcome::error(message),
    };
    let after = match &before {
        Some(old) if is_crlf(old) && !content.contains("\r\n") => to_crlf(content),
        _ => content.to_string(),
    };
    if let Err(e) = save(path, &after) {
        return Outcome::error(format!("cannot write {shown}: {e}"));
    }
    let lines = after.lines().count();
    let message = match &before {
        None => format!("created {shown} ({lines} lines)"),
        Some(old) if *old == after => format!("{shown} already had this content"),
        Some(_) => format!("wrote {shown} ({lines} lines)"),
    };
    let diff = diff(&shown, before.as_deref(), &after, PEOPLE_CONTEXT, true);
    changed(message, path, before, after, diff)
}

/// Replaces `old` by `new`; `old` must occur exactly once unless `replace_all`.
pub fn edit(path: &Path, old: &str, new: &str, replace_all: bool, ws: &Workspace) -> Outcome {
    let shown = ws.display(path);
    if old.is_empty() {
        return Outcome::error("old is empty; give the exact text to replace, or use write");
    }
    if old == new {
        return Outcome::error("old and new are the same; nothing to change");
    }
    let before = match read_text(path, &shown) {
        Ok(Some(text)) => text,
        Ok(None) => {
            return Outcome::error(format!("no such file: {shown}; use write to create it"));
        }
        Err(message) => return Outcome::error(message),
    };
    // The model writes `\n`; a CRLF file keeps its `\r\n`.
    let (old, new) = if before.contains(old) {
        let new = if is_crlf(&before) {
            to_crlf(new)
        } else {
            new.to_string()
        };
        (old.to_string(), new)
    } else if before.contains("\r\n") {
        (to_crlf(old), to_crlf(new))
    } else {
        (old.to_string(), new.to_string())
    };
    let count = before.matches(old.as_str()).count();
    match count {
        0 => return Outcome::error(not_found(&before, &old, &shown)),
        1 => {}
        n if !replace_all => {
            return Outcome::error(format!(
                "old found {n} times in {shown}: add context to make it unique or set replace_all"
            ));
        }
        _ => {}
    }
    let after = match replace_all {
        true => before.replace(&old, &new),
        false => before.replacen(&old, &new, 1),
    };
    if let Err(e) = save(path, &after) {
        return Outcome::error(format!("cannot write {shown}: {e}"));
    }
    let prefix = match count {
        1 => format!("edited {shown}\n"),
        n => format!("edited {shown}: {n} replacements\n"),
    };
    let compact = diff(&shown, Some(&before), &after, MODEL_CONTEXT, false);
    let message = clip::clip_with(&prefix, compact.as_bytes());
    let diff = diff(&shown, Some(&before), &after, PEOPLE_CONTEXT, true);
    changed(message, path, Some(before), after, diff)
}

fn changed(
    message: String,
    path: &Path,
    before: Option<String>,
    after: String,
    diff: String,
) -> Outcome {
    Outcome {
        content: message,
        is_error: false,
        change: Some(FileChange {
            path: path.to_path_buf(),
            before,
            after,
        }),
        diff: Some(diff),
    }
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

/// The file's text, `None` when it does not exist, an error message when it is not
/// UTF-8 text (nib could not restore it exactly).
fn read_text(path: &Path, shown: &str) -> Result<Option<String>, String> {
    match fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| format!("{shown} is not UTF-8 text; change it with bash instead")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {shown}: {e}")),
    }
}

/// True when most line ends are `\r\n`.
fn is_crlf(text: &str) -> bool {
    let crlf = text.matches("\r\n").count();
    crlf > 0 && crlf * 2 >= text.matches('\n').count()
}

fn to_crlf(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\n', "\r\n")
}

/// Writes `text` to a temp file beside `path`, with `path`'s mode, then renames it
/// over `path`: readers see the old file or the new one, never half of one. Creates
/// missing parent directories.
fn save(path: &Path, text: &str) -> io::Result<()> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::other("not a file path"));
    };
    let mode = fs::metadata(path).ok().map(|m| m.permissions());
    if mode.as_ref().is_some_and(Permissions::readonly) {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "the file is read-only",
        ));
    }
    fs::create_dir_all(dir)?;
    let temp = dir.join(format!(
        ".{}.nib-{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = write_then_rename(&temp, path, text, mode);
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

fn write_then_rename(
    temp: &Path,
    path: &Path,
    text: &str,
    mode: Option<Permissions>,
) -> io::Result<()> {
    let mut file = File::create(temp)?;
    file.write_all(text.as_bytes())?;
    if let Some(mode) = mode {
        file.set_permissions(mode)?;
    }
    drop(file);
    fs::rename(temp, path)
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
