//! The search tools: `grep` (a regex over file contents) and `glob` (file names by
//! pattern). Both walk the tree like ripgrep does: `.gitignore`, `.ignore` and hidden
//! files are skipped (even outside a git repository). Paths are shown relative to the
//! workspace.

use super::clip;
use super::fs::is_binary;
use super::{Outcome, Workspace};
use ignore::overrides::OverrideBuilder;
use ignore::{Walk, WalkBuilder};
use regex::bytes::RegexBuilder;
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

/// Lines matching `pattern` under `root` (a directory or one file), as `path:line:text`.
pub fn grep(
    pattern: &str,
    root: &Path,
    glob: Option<&str>,
    ignore_case: bool,
    ws: &Workspace,
) -> Outcome {
    let regex = match RegexBuilder::new(pattern)
        .case_insensitive(ignore_case)
        .build()
    {
        Ok(regex) => regex,
        Err(e) => return Outcome::error(format!("invalid regex: {e}")),
    };
    let walk = match walk(root, glob, ws) {
        Ok(walk) => walk,
        Err(message) => return Outcome::error(message),
    };
    let mut out = String::new();
    let mut matches = 0;
    let mut skipped = 0;
    for path in files(walk) {
        let bytes = match std::fs::metadata(&path) {
            Ok(meta) if meta.len() > MAX_FILE => {
                skipped += 1;
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
        let shown = ws.display(&path);
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
    if skipped > 0 {
        out.push_str(&format!(
            "[skipped {skipped} files over {} MB; search them with bash]\n",
            MAX_FILE >> 20
        ));
    }
    if matches == 0 {
        out.insert_str(0, "no matches\n");
    }
    Outcome::ok(clip::clip(out.trim_end().as_bytes()))
}

/// Files under `root` whose path (relative to `root`) matches `pattern`, newest first.
pub fn glob(pattern: &str, root: &Path, ws: &Workspace) -> Outcome {
    // An absolute pattern inside the root is made relative to it.
    let pattern = Path::new(pattern)
        .strip_prefix(root)
        .ok()
        .and_then(Path::to_str)
        .unwrap_or(pattern);
    let walk = match walk(root, Some(pattern), ws) {
        Ok(walk) => walk,
        Err(message) => return Outcome::error(message),
    };
    let mut found: Vec<(SystemTime, PathBuf)> = files(walk)
        .map(|path| {
            let modified = std::fs::metadata(&path).and_then(|m| m.modified());
            (modified.unwrap_or(SystemTime::UNIX_EPOCH), path)
        })
        .collect();
    if found.is_empty() {
        return Outcome::ok(format!("no files match {pattern}"));
    }
    found.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let total = found.len();
    let mut out: Vec<String> = found
        .iter()
        .take(MAX_FILES)
        .map(|(_, path)| ws.display(path))
        .collect();
    if total > MAX_FILES {
        out.push(format!(
            "[{} more files not shown; narrow the pattern]",
            total - MAX_FILES
        ));
    }
    Outcome::ok(clip::clip(out.join("\n").as_bytes()))
}

/// A walk of `root` honouring ignore files, limited to `glob` when given.
fn walk(root: &Path, glob: Option<&str>, ws: &Workspace) -> Result<Walk, String> {
    if !root.exists() {
        return Err(format!(
            "no such path: {}; use glob to find the right one",
            ws.display(root)
        ));
    }
    let mut builder = WalkBuilder::new(root);
    builder
        .require_git(false)
        .sort_by_file_name(|a, b| a.cmp(b));
    if let Some(glob) = glob.filter(|_| root.is_dir()) {
        let mut overrides = OverrideBuilder::new(root);
        let built = overrides.add(glob).and_then(|o| o.build());
        match built {
            Ok(built) => builder.overrides(built),
            Err(e) => return Err(format!("invalid glob {glob}: {e}")),
        };
    }
    Ok(builder.build())
}

fn files(walk: Walk) -> impl Iterator<Item = PathBuf> {
    walk.filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_some_and(|t| t.is_file()))
        .map(|entry| entry.into_path())
}
