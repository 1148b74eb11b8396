//! The search tools: `grep` (a regex over file contents) and `glob` (file names by
//! pattern). Both walk the tree like ripgrep does: `.gitignore` and `.ignore` are
//! honoured (even outside a git repository) and hidden files are skipped, unless the
//! pattern names them (`.env*`, `.github/**`). Symlinks are not followed out of the
//! workspace, and a file a deny or ask rule covers is left out: the gate decides on
//! the search's path, this module asks it about each file found. Each kind of file left
//! out is counted in a note. Paths are shown relative to the workspace.

use super::Outcome;
use super::clip;
use super::fs::is_binary;
use crate::paths::Workspace;
use ignore::overrides::{Override, OverrideBuilder};
use ignore::{DirEntry, WalkBuilder};
use regex::bytes::RegexBuilder;
use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::FileType;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Matching lines `grep` reports before it stops: more is noise for the model.
pub const MAX_MATCHES: usize = 200;

/// Files `glob` lists before it stops.
pub const MAX_FILES: usize = 500;

/// Bytes of a matching line shown: enough for code, not for minified files.
const MAX_LINE: usize = 300;

/// Files larger than this are not searched: they are data or logs, not code.
const MAX_FILE: u64 = 16 * 1024 * 1024;

/// Names of hidden or ignored entries a note shows: enough to write a pattern from.
const MAX_NAMED: usize = 3;

/// Where a search looks and what it may show.
pub struct Search<'a> {
    /// A directory or one file, resolved (symlinks followed).
    pub root: PathBuf,
    pub ws: &'a Workspace,
    /// Whether the gate lets this search read the file (no deny or ask rule covers it).
    pub may_read: &'a dyn Fn(&Path) -> bool,
}

/// Lines matching `pattern` under the search root, as `path:line:text`.
pub fn grep(pattern: &str, glob: Option<&str>, ignore_case: bool, at: &Search) -> Outcome {
    let regex = match RegexBuilder::new(pattern)
        .case_insensitive(ignore_case)
        .build()
    {
        Ok(regex) => regex,
        Err(e) => return Outcome::error(format!("invalid regex: {e}")),
    };
    let found = match walk(at, glob) {
        Ok(found) => found,
        Err(message) => return Outcome::error(message),
    };
    let mut out = String::new();
    let mut matches = 0;
    let mut large = 0;
    for path in found.files {
        let bytes = match std::fs::metadata(&path) {
            Ok(meta) if meta.len() > MAX_FILE => {
                large += 1;
                continue;
            }
            _ => match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(_) => continue,
            },
        };
        if is_binary(&bytes) {
            continue;
        }
        let shown = at.ws.display(&path);
        let body = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
        for (i, line) in body.split(|&b| b == b'\n').enumerate() {
            if matches == MAX_MATCHES {
                out.push_str(&format!(
                    "[stopped after {MAX_MATCHES} matches; narrow the pattern, path or glob]\n"
                ));
                return Outcome::ok(clip::clip(out.as_bytes()));
            }
            if regex.is_match(line) {
                matches += 1;
                let text = clip::sanitize(clip::cut(
                    line.strip_suffix(b"\r").unwrap_or(line),
                    MAX_LINE,
                ));
                out.push_str(&format!("{shown}:{}:{text}\n", i + 1));
            }
        }
    }
    if large > 0 {
        out.push_str(&format!(
            "[skipped {large} files over {} MB; search them with bash]\n",
            MAX_FILE >> 20
        ));
    }
    out.push_str(&found.skipped.notes());
    if matches == 0 {
        out.insert_str(0, "no matches\n");
    }
    Outcome::ok(clip::clip(out.trim_end().as_bytes()))
}

/// Files under the search root whose path (relative to it) matches `pattern`, newest
/// first.
pub fn glob(pattern: &str, at: &Search) -> Outcome {
    // An absolute pattern inside the root, or one starting `./`, is made relative to it.
    let pattern = Path::new(pattern)
        .strip_prefix(&at.root)
        .ok()
        .and_then(Path::to_str)
        .unwrap_or(pattern);
    let pattern = pattern.strip_prefix("./").unwrap_or(pattern);
    let found = match walk(at, Some(pattern)) {
        Ok(found) => found,
        Err(message) => return Outcome::error(message),
    };
    let notes = found.skipped.notes();
    let mut found: Vec<(SystemTime, PathBuf)> = found
        .files
        .into_iter()
        .map(|path| {
            let modified = std::fs::metadata(&path).and_then(|m| m.modified());
            (modified.unwrap_or(SystemTime::UNIX_EPOCH), path)
        })
        .collect();
    if found.is_empty() {
        return Outcome::ok(format!("no files match {pattern}\n{notes}").trim_end());
    }
    found.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let total = found.len();
    let mut out: Vec<String> = found
        .iter()
        .take(MAX_FILES)
        .map(|(_, path)| at.ws.display(path))
        .collect();
    if total > MAX_FILES {
        out.push(format!(
            "[{} more files not shown; narrow the pattern]",
            total - MAX_FILES
        ));
    }
    out.extend(notes.lines().map(str::to_string));
    Outcome::ok(clip::clip(out.join("\n").as_bytes()))
}

/// What a walk found, and what it left out.
struct Found {
    files: Vec<PathBuf>,
    skipped: Skipped,
}

/// What a walk left out, by reason.
#[derive(Default)]
struct Skipped {
    /// Files a deny or ask rule covers.
    ruled: usize,
    /// Symlinks that lead out of the workspace and the search root.
    outside: usize,
    /// Hidden entries the pattern does not name, as shown (a folder ends in `/`).
    hidden: Vec<String>,
    /// Entries an ignore file leaves out.
    ignored: Vec<String>,
}

impl Skipped {
    /// One line per reason, each ending in a newline; empty when nothing was left out.
    fn notes(&self) -> String {
        let mut out = String::new();
        if self.ruled > 0 {
            out.push_str(&format!(
                "[left out {} file(s) a deny or ask rule covers]\n",
                self.ruled
            ));
        }
        if self.outside > 0 {
            out.push_str(&format!(
                "[left out {} symlink(s) leading outside the workspace]\n",
                self.outside
            ));
        }
        let (hidden, ignored) = (self.hidden.len(), self.ignored.len());
        if hidden + ignored > 0 {
            let mut names: Vec<&String> = self.hidden.iter().chain(&self.ignored).collect();
            names.sort();
            let more = if names.len() > MAX_NAMED { ", …" } else { "" };
            let names: Vec<&str> = names.iter().take(MAX_NAMED).map(|n| n.as_str()).collect();
            out.push_str(&format!(
                "[left out {hidden} hidden and {ignored} ignored: {}{more}; \
                 name dotted files in the pattern (.env*, .github/**) to include them]\n",
                names.join(", ")
            ));
        }
        out
    }
}

/// The files under the search root, honouring ignore files, sorted by path, limited to
/// those matching `glob` when given, and that the workspace and the gate let it read.
/// The glob only filters: used as an `ignore` override it would also let ignored files
/// (`node_modules/`) back in.
fn walk(at: &Search, glob: Option<&str>) -> Result<Found, String> {
    let root = at.root.as_path();
    if !root.exists() {
        return Err(format!(
            "no such path: {}; use glob to find the right one",
            at.ws.display(root)
        ));
    }
    let glob = glob.filter(|_| root.is_dir());
    let filter = glob
        .map(|glob| matcher(root, &[glob]).map_err(|e| format!("invalid glob {glob}: {e}")))
        .transpose()?;
    let dotted =
        dotted_names(glob).map_err(|e| format!("invalid glob {}: {e}", glob.unwrap_or("")))?;
    let named = dotted.clone();
    let walk = WalkBuilder::new(root)
        .require_git(false)
        .hidden(false)
        .sort_by_file_name(|a, b| a.cmp(b))
        .filter_entry(move |e| e.depth() == 0 || shown(e, &named))
        .build();
    let wanted = |path: &Path| {
        filter
            .as_ref()
            .is_none_or(|f| f.matched(path, false).is_whitelist())
    };
    let mut seen = HashSet::new();
    let mut dirs = Vec::new();
    let mut found = Found {
        files: Vec::new(),
        skipped: Skipped::default(),
    };
    for entry in walk.filter_map(Result::ok) {
        seen.insert(entry.path().to_path_buf());
        let Some(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            dirs.push(entry.into_path());
            continue;
        }
        let path = entry.into_path();
        if !wanted(&path) || !regular(&path, kind, at, &mut found.skipped) {
            continue;
        }
        match (at.may_read)(&path) {
            true => found.files.push(path),
            false => found.skipped.ruled += 1,
        }
    }
    for dir in dirs {
        left_out(&dir, &seen, &dotted, &wanted, at.ws, &mut found.skipped);
    }
    Ok(found)
}

/// Whether `path` is a regular file, or a symlink to one inside the workspace or the
/// search root; a symlink leading elsewhere is counted as left out.
fn regular(path: &Path, kind: FileType, at: &Search, skipped: &mut Skipped) -> bool {
    if !kind.is_symlink() {
        return kind.is_file();
    }
    match path.canonicalize() {
        Ok(real) if !real.starts_with(&at.ws.root) && !real.starts_with(&at.root) => {
            skipped.outside += 1;
            false
        }
        Ok(real) => real.is_file(),
        Err(_) => false,
    }
}

/// Counts the entries of `dir` the walk did not visit: hidden ones the pattern does not
/// name, and ignored ones; files only if `wanted`, folders always (what they hold is
/// not known). `.git` is never counted: nobody searches it by mistake.
fn left_out(
    dir: &Path,
    seen: &HashSet<PathBuf>,
    dotted: &Option<Override>,
    wanted: &dyn Fn(&Path) -> bool,
    ws: &Workspace,
    skipped: &mut Skipped,
) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        let name = entry.file_name();
        if seen.contains(&path) || name == ".git" || !(is_dir || wanted(&path)) {
            continue;
        }
        let shown = ws.display(&path) + if is_dir { "/" } else { "" };
        match hidden(&name) && !names(dotted, &name, is_dir) {
            true => skipped.hidden.push(shown),
            false => skipped.ignored.push(shown),
        }
    }
}

/// Whether the walk enters or lists `entry`: not hidden, or named by the pattern.
fn shown(entry: &DirEntry, dotted: &Option<Override>) -> bool {
    let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
    !hidden(entry.file_name()) || names(dotted, entry.file_name(), is_dir)
}

fn hidden(name: &OsStr) -> bool {
    name.as_encoded_bytes().starts_with(b".")
}

/// Whether one of the pattern's dotted parts matches `name`.
fn names(dotted: &Option<Override>, name: &OsStr, is_dir: bool) -> bool {
    dotted
        .as_ref()
        .is_some_and(|d| d.matched(Path::new(name), is_dir).is_whitelist())
}

/// A matcher for the parts of `glob` that start with a dot (`.env*` in `**/.env*`):
/// only these let a hidden file or folder in, as a shell's `*` does not match `.x`.
fn dotted_names(glob: Option<&str>) -> Result<Option<Override>, ignore::Error> {
    let parts: Vec<&str> = glob
        .into_iter()
        .flat_map(|g| g.split('/'))
        .filter(|p| p.starts_with('.') && !matches!(*p, "." | ".."))
        .collect();
    match parts.is_empty() {
        true => Ok(None),
        false => matcher(Path::new(""), &parts).map(Some),
    }
}

/// An `ignore` override matching any of `globs` (gitignore syntax) under `root`.
fn matcher(root: &Path, globs: &[&str]) -> Result<Override, ignore::Error> {
    let mut builder = OverrideBuilder::new(root);
    for glob in globs {
        builder.add(glob)?;
    }
    builder.build()
}

#[cfg(test)]
#[path = "search_tests.rs"]
mod tests;
