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
    if !meta.is_file() {
        return Outcome::error(format!(
            "{shown} is not a regular file (a device or pipe); use bash for it"
        ));
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
    let after = written(before.as_deref(), content);
    if let Err(e) = save(path, &after) {
        return Outcome::error(format!("cannot write {shown}: {e}"));
    }
    let lines = match after.lines().count() {
        1 => "1 line".to_string(),
        n => format!("{n} lines"),
    };
    let message = match &before {
        None => format!("created {shown} ({lines})"),
        Some(old) if *old == after => format!("{shown} already had this content"),
        Some(_) => format!("wrote {shown} ({lines})"),
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
    let (after, count) = match edited(&before, old, new, replace_all, &shown) {
        Ok(done) => done,
        Err(message) => return Outcome::error(message),
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

/// What a write or edit would change, computed as it would be and written nowhere, so
/// a person approves what will happen: the text on disk now (`None`: a new file), the
/// text after, and the diff people see once it ran. The error is why it would fail.
pub struct Preview {
    pub before: Option<String>,
    pub after: String,
    pub diff: String,
}

pub fn preview(action: &super::Action, ws: &Workspace) -> Result<Preview, String> {
    use super::Action;
    let path = ws.resolve(action.path().unwrap_or(Path::new(".")));
    let shown = ws.display(&path);
    // Only a regular file is read: a FIFO would block the question forever.
    if std::fs::metadata(&path).is_ok_and(|m| !m.is_file()) {
        return Err(format!("{shown} is not a regular file"));
    }
    let before = read_text(&path, &shown)?;
    let after = match (action, before.as_deref()) {
        (Action::Write { content, .. }, before) => written(before, content),
        (
            Action::Edit {
                old,
                new,
                replace_all,
                ..
            },
            Some(before),
        ) => edited(before, old, new, *replace_all, &shown)?.0,
        (Action::Edit { .. }, None) => return Err(format!("no such file: {shown}")),
        _ => return Err("not a file change".into()),
    };
    let diff = diff(&shown, before.as_deref(), &after, PEOPLE_CONTEXT, true);
    Ok(Preview {
        before,
        after,
        diff,
    })
}

/// A whole-file write's new text: a CRLF file keeps its line endings.
fn written(before: Option<&str>, content: &str) -> String {
    match before {
        Some(old) if is_crlf(old) && !content.contains("\r\n") => to_crlf(content),
        _ => content.to_string(),
    }
}

/// An edit's new text and how many replacements it makes; the error is for the model.
fn edited(
    before: &str,
    old: &str,
    new: &str,
    replace_all: bool,
    shown: &str,
) -> Result<(String, usize), String> {
    // The model writes `\n`; a CRLF file keeps its `\r\n`.
    let (old, new) = if before.contains(old) {
        let new = if is_crlf(before) {
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
        0 => return Err(not_found(before, &old, shown)),
        1 => {}
        n if !replace_all => {
            return Err(format!(
                "old found {n} times in {shown}: add context to make it unique or set replace_all"
            ));
        }
        _ => {}
    }
    let after = match replace_all {
        true => before.replace(&old, &new),
        false => before.replacen(&old, &new, 1),
    };
    Ok((after, count))
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
        printed_lines: None,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;
    use std::os::unix::fs::PermissionsExt;

    fn read_rel(t: &TempDir, rel: &str, offset: Option<usize>, limit: Option<usize>) -> Outcome {
        read(&t.join(rel), offset, limit, &t.workspace())
    }

    fn edit_rel(t: &TempDir, rel: &str, old: &str, new: &str, all: bool) -> Outcome {
        edit(&t.join(rel), old, new, all, &t.workspace())
    }

    #[test]
    fn read_numbers_lines_like_cat_n() {
        let t = TempDir::new("read");
        t.put("a.txt", b"one\ntwo\r\nthree");
        t.put("empty.txt", b"");
        let cases: [(Option<usize>, Option<usize>, &str); 4] = [
            (None, None, "     1\tone\n     2\ttwo\n     3\tthree\n"),
            (Some(2), None, "     2\ttwo\n     3\tthree\n"),
            (
                None,
                Some(1),
                "     1\tone\n[lines 1-1 shown; the file goes on: read with offset=2]",
            ),
            (
                Some(2),
                Some(1),
                "     2\ttwo\n[lines 2-2 shown; the file goes on: read with offset=3]",
            ),
        ];
        for (offset, limit, expected) in cases {
            let out = read_rel(&t, "a.txt", offset, limit);
            assert_eq!(out.content, expected, "{offset:?} {limit:?}");
            assert!(!out.is_error);
        }
        let past = read_rel(&t, "a.txt", Some(9), None);
        assert_eq!(past.content, "a.txt has 3 lines; offset 9 is past the end");
        assert!(past.is_error);
        assert_eq!(
            read_rel(&t, "empty.txt", None, None).content,
            "empty.txt is empty"
        );
        let missing = read_rel(&t, "nope.txt", None, None);
        assert!(missing.is_error);
        assert!(missing.content.starts_with("no such file: nope.txt"));
        let device = read(Path::new("/dev/null"), None, None, &t.workspace());
        assert!(device.is_error && device.content.contains("not a regular file"));
    }

    #[test]
    fn read_refuses_binary_and_lists_directories() {
        let t = TempDir::new("binary");
        t.put("bin.dat", b"\x7fELF\0\0\x01");
        t.put("dir/b.txt", b"b");
        t.put("dir/sub/c.txt", b"c");
        t.put("dir/.hidden", b"h");
        let out = read_rel(&t, "bin.dat", None, None);
        assert!(out.is_error);
        assert!(
            out.content
                .starts_with("bin.dat is a binary file (7 bytes)")
        );
        let out = read_rel(&t, "dir", None, None);
        assert_eq!(
            out.content,
            "dir is a directory (3 entries):\n.hidden\nb.txt\nsub/"
        );
    }

    #[test]
    fn read_stays_within_the_limit_and_says_how_to_go_on() {
        let t = TempDir::new("big");
        let text: String = (1..=5000)
            .map(|i| format!("line {i} {}\n", "x".repeat(40)))
            .collect();
        t.put("big.txt", text.as_bytes());
        let out = read_rel(&t, "big.txt", None, None);
        assert!(out.content.len() <= LIMIT);
        let note = out.content.lines().last().unwrap();
        let next: usize = note
            .rsplit_once("offset=")
            .unwrap()
            .1
            .trim_end_matches(']')
            .parse()
            .unwrap();
        assert!(next > 100 && next < 2000, "{note}");
        let more = read_rel(&t, "big.txt", Some(next), Some(2));
        assert!(more.content.starts_with(&format!("{next:6}\tline {next} ")));
        let long = format!("{}é{}", "a".repeat(MAX_LINE - 1), "b".repeat(10_000));
        t.put("long.txt", long.as_bytes());
        let out = read_rel(&t, "long.txt", None, None);
        assert!(out.content.ends_with(&format!(
            "a [… line cut at {} of {} bytes]\n",
            MAX_LINE - 1,
            long.len()
        )));
    }

    #[test]
    fn write_creates_parents_and_reports_the_change() {
        let t = TempDir::new("write");
        let path = t.join("new/deep/a.txt");
        let out = write(&path, "x\ny\n", &t.workspace());
        assert_eq!(out.content, "created new/deep/a.txt (2 lines)");
        assert_eq!(fs::read_to_string(&path).unwrap(), "x\ny\n");
        let change = out.change.unwrap();
        assert_eq!((change.before, change.after.as_str()), (None, "x\ny\n"));
        assert!(
            out.diff
                .unwrap()
                .contains("+++ b/new/deep/a.txt\n@@ -0,0 +1,2 @@\n+x\n+y\n")
        );

        let out = write(&path, "x\nz\n", &t.workspace());
        assert_eq!(out.content, "wrote new/deep/a.txt (2 lines)");
        assert_eq!(out.change.unwrap().before.as_deref(), Some("x\ny\n"));
        assert!(out.diff.unwrap().contains(" x\n-y\n+z\n"));
        let leftovers = fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(leftovers, 1, "temp file left behind");
        assert!(write(&t.join("new"), "x", &t.workspace()).is_error);
    }

    #[test]
    fn writes_keep_mode_and_line_endings() {
        let t = TempDir::new("mode");
        let script = t.put("run.sh", b"echo a\r\necho b\r\n");
        fs::set_permissions(&script, fs::Permissions::from_mode(0o751)).unwrap();
        let out = write(&script, "echo c\necho d\n", &t.workspace());
        assert!(!out.is_error, "{}", out.content);
        assert_eq!(fs::read(&script).unwrap(), b"echo c\r\necho d\r\n");
        let mode = fs::metadata(&script).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o751);
        let out = edit_rel(
            &t,
            "run.sh",
            "echo c\necho d",
            "echo e\necho f\necho g",
            false,
        );
        assert!(!out.is_error, "{}", out.content);
        assert_eq!(
            fs::read(&script).unwrap(),
            b"echo e\r\necho f\r\necho g\r\n"
        );
        assert_eq!(
            fs::metadata(&script).unwrap().permissions().mode() & 0o777,
            0o751
        );
        fs::set_permissions(&script, fs::Permissions::from_mode(0o444)).unwrap();
        assert!(
            write(&script, "x", &t.workspace())
                .content
                .contains("read-only")
        );
    }

    #[test]
    fn edit_checks_old_and_reports_a_diff() {
        let t = TempDir::new("edit");
        t.put("a.rs", b"fn a() {\n    let x = 1;\n    let y = 1;\n}\n");
        let cases: [(&str, &str, bool, Result<&str, &str>); 6] = [
            (
                "",
                "z",
                false,
                Err("old is empty; give the exact text to replace, or use write"),
            ),
            (
                "1;",
                "1;",
                false,
                Err("old and new are the same; nothing to change"),
            ),
            (
                "= 1",
                "= 2",
                false,
                Err("old found 2 times in a.rs: add context to make it unique or set replace_all"),
            ),
            (
                "let x =  1;",
                "",
                false,
                Err(
                    "old not found in a.rs, but it matches if whitespace is ignored: copy the exact indentation and line breaks from read",
                ),
            ),
            (
                "     2\t    let x = 1;",
                "",
                false,
                Err(
                    "old not found in a.rs: it seems to include read's line-number prefixes; drop them",
                ),
            ),
            (
                "let z",
                "",
                false,
                Err("old not found in a.rs: read the file and copy the exact text"),
            ),
        ];
        for (old, new, all, expected) in cases {
            let out = edit_rel(&t, "a.rs", old, new, all);
            assert_eq!(Err(out.content.as_str()), expected, "{old:?}");
            assert!(out.is_error && out.change.is_none());
        }
        let out = edit_rel(&t, "a.rs", "let x = 1", "let x = 2", false);
        assert_eq!(
            out.content,
            "edited a.rs\n@@ -1,4 +1,4 @@\n fn a() {\n-    let x = 1;\n+    let x = 2;\n     let y = 1;\n }\n"
        );
        assert!(out.diff.unwrap().starts_with("--- a/a.rs\n+++ b/a.rs\n"));
        let out = edit_rel(&t, "a.rs", "let", "const", true);
        assert!(out.content.starts_with("edited a.rs: 2 replacements\n"));
        let change = out.change.unwrap();
        assert_eq!(
            change.before.as_deref(),
            Some("fn a() {\n    let x = 2;\n    let y = 1;\n}\n")
        );
        assert_eq!(fs::read_to_string(t.join("a.rs")).unwrap(), change.after);
        assert_eq!(
            change.after,
            "fn a() {\n    const x = 2;\n    const y = 1;\n}\n"
        );
        let missing = edit_rel(&t, "b.rs", "x", "y", false);
        assert_eq!(
            missing.content,
            "no such file: b.rs; use write to create it"
        );
    }

    #[test]
    fn edit_refuses_non_utf8_files() {
        let t = TempDir::new("latin1");
        t.put("l.txt", b"caf\xe9\n");
        let out = edit_rel(&t, "l.txt", "caf", "bar", false);
        assert_eq!(
            out.content,
            "l.txt is not UTF-8 text; change it with bash instead"
        );
        assert_eq!(fs::read(t.join("l.txt")).unwrap(), b"caf\xe9\n");
    }
}
