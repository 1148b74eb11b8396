//! The search tools: `grep` (a regex over file contents) and `glob` (file names by
//! pattern). Both walk the tree like ripgrep does: `.gitignore`, `.ignore` and hidden
//! files are skipped (even outside a git repository). Paths are shown relative to the
//! workspace.

use super::clip;
use super::fs::is_binary;
use super::{Outcome, Workspace};
use ignore::WalkBuilder;
use ignore::overrides::OverrideBuilder;
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
    for path in walk {
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
    // An absolute pattern inside the root, or one starting `./`, is made relative to it.
    let pattern = Path::new(pattern)
        .strip_prefix(root)
        .ok()
        .and_then(Path::to_str)
        .unwrap_or(pattern);
    let pattern = pattern.strip_prefix("./").unwrap_or(pattern);
    let walk = match walk(root, Some(pattern), ws) {
        Ok(walk) => walk,
        Err(message) => return Outcome::error(message),
    };
    let mut found: Vec<(SystemTime, PathBuf)> = walk
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

/// The files under `root`, honouring ignore files and hidden rules, sorted by path,
/// limited to those matching `glob` when given. The glob only filters: used as an
/// `ignore` override it would also let ignored files (`node_modules/`) back in.
fn walk(
    root: &Path,
    glob: Option<&str>,
    ws: &Workspace,
) -> Result<impl Iterator<Item = PathBuf>, String> {
    if !root.exists() {
        return Err(format!(
            "no such path: {}; use glob to find the right one",
            ws.display(root)
        ));
    }
    let filter = match glob.filter(|_| root.is_dir()) {
        Some(glob) => {
            let mut builder = OverrideBuilder::new(root);
            let built = builder.add(glob).and_then(|b| b.build());
            Some(built.map_err(|e| format!("invalid glob {glob}: {e}"))?)
        }
        None => None,
    };
    let walk = WalkBuilder::new(root)
        .require_git(false)
        .sort_by_file_name(|a, b| a.cmp(b))
        .build();
    Ok(walk
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_some_and(|t| t.is_file()))
        .map(|entry| entry.into_path())
        .filter(move |path| {
            filter
                .as_ref()
                .is_none_or(|f| f.matched(path, false).is_whitelist())
        }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;
    use crate::tools::clip::LIMIT;
    use std::fs::{File, FileTimes};
    use std::time::Duration;

    /// Sets a file's modification time to `secs` after the epoch.
    fn age(t: &TempDir, rel: &str, secs: u64) {
        let file = File::options().write(true).open(t.join(rel)).unwrap();
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        file.set_times(FileTimes::new().set_modified(time)).unwrap();
    }

    fn grep_in(
        t: &TempDir,
        pattern: &str,
        path: Option<&str>,
        glob: Option<&str>,
        ic: bool,
    ) -> Outcome {
        let root = path.map_or(t.path().to_path_buf(), |p| t.join(p));
        grep(pattern, &root, glob, ic, &t.workspace())
    }

    fn glob_in(t: &TempDir, pattern: &str, path: Option<&str>) -> Outcome {
        let root = path.map_or(t.path().to_path_buf(), |p| t.join(p));
        glob(pattern, &root, &t.workspace())
    }

    /// pattern, path, glob, ignore_case, expected output
    type GrepCase = (
        &'static str,
        Option<&'static str>,
        Option<&'static str>,
        bool,
        &'static str,
    );

    fn tree(name: &str) -> TempDir {
        let t = TempDir::new(name);
        t.put(".gitignore", b"target/\n*.log\n");
        t.put("src/main.rs", b"fn main() {\n    run();\n}\n");
        t.put("src/lib/run.rs", b"pub fn run() {}\r\n// Run it\n");
        t.put("README.md", b"call run() to run\n");
        t.put("target/debug/gen.rs", b"fn run() {}\n");
        t.put("build.log", b"run\n");
        t.put(".hidden/x.rs", b"fn run() {}\n");
        t.put("data.bin", b"run\0run\n");
        t
    }

    #[test]
    fn grep_honours_ignores_and_filters() {
        let t = tree("grep");
        let cases: [GrepCase; 7] = [
            (
                r"\brun\(",
                None,
                None,
                false,
                "README.md:1:call run() to run\nsrc/lib/run.rs:1:pub fn run() {}\nsrc/main.rs:2:    run();",
            ),
            (
                r"\brun\(",
                None,
                Some("*.rs"),
                false,
                "src/lib/run.rs:1:pub fn run() {}\nsrc/main.rs:2:    run();",
            ),
            (
                r"\brun\(",
                Some("src/main.rs"),
                None,
                false,
                "src/main.rs:2:    run();",
            ),
            (
                "^// run",
                Some("src"),
                None,
                true,
                "src/lib/run.rs:2:// Run it",
            ),
            ("^// run", Some("src"), None, false, "no matches"),
            (
                "fn",
                None,
                Some("src/lib/**"),
                false,
                "src/lib/run.rs:1:pub fn run() {}",
            ),
            ("^$", None, None, false, "no matches"),
        ];
        for (pattern, path, glob, ic, expected) in cases {
            let out = grep_in(&t, pattern, path, glob, ic);
            assert_eq!(out.content, expected, "{pattern} {path:?} {glob:?}");
            assert!(!out.is_error);
        }
        let bad = grep_in(&t, "run(", None, None, false);
        assert!(bad.is_error && bad.content.starts_with("invalid regex"));
        let gone = grep_in(&t, "x", Some("nope"), None, false);
        assert_eq!(
            gone.content,
            "no such path: nope; use glob to find the right one"
        );
    }

    #[test]
    fn grep_stops_after_enough_matches_and_cuts_long_lines() {
        let t = TempDir::new("many");
        let many: String = (0..1000).map(|i| format!("hit {i}\n")).collect();
        t.put("many.txt", many.as_bytes());
        let out = grep_in(&t, "hit", None, None, false);
        let lines: Vec<&str> = out.content.lines().collect();
        assert_eq!(lines.len(), MAX_MATCHES + 1);
        assert_eq!(lines[MAX_MATCHES - 1], "many.txt:200:hit 199");
        assert!(lines[MAX_MATCHES].starts_with("[stopped after 200 matches"));
        let long = format!("{}€{}", "a".repeat(MAX_LINE - 2), "b".repeat(LIMIT));
        t.put("many.txt", long.as_bytes());
        let out = grep_in(&t, "b", None, None, false);
        assert_eq!(
            out.content,
            format!("many.txt:1:{}", "a".repeat(MAX_LINE - 2))
        );
    }

    #[test]
    fn glob_lists_newest_first_and_honours_ignores() {
        let t = tree("glob");
        age(&t, "src/main.rs", 1_000);
        age(&t, "src/lib/run.rs", 2_000);
        age(&t, "README.md", 3_000);
        let cases: [(&str, Option<&str>, &str); 7] = [
            ("**/*.rs", None, "src/lib/run.rs\nsrc/main.rs"),
            ("*.rs", None, "src/lib/run.rs\nsrc/main.rs"),
            ("src/*.rs", None, "src/main.rs"),
            ("./src/*.rs", None, "src/main.rs"),
            ("*", Some("src"), "src/lib/run.rs\nsrc/main.rs"),
            ("*.md", None, "README.md"),
            ("*.py", None, "no files match *.py"),
        ];
        for (pattern, path, expected) in cases {
            assert_eq!(
                glob_in(&t, pattern, path).content,
                expected,
                "{pattern} {path:?}"
            );
        }
        // Ignored (target/, *.log) and hidden files stay out even when the glob matches.
        let all = glob_in(&t, "*", None).content;
        assert_eq!(all, "data.bin\nREADME.md\nsrc/lib/run.rs\nsrc/main.rs");
        let absolute = t.join("src/*.rs");
        assert_eq!(
            glob_in(&t, absolute.to_str().unwrap(), None).content,
            "src/main.rs"
        );
    }

    #[test]
    fn glob_caps_long_listings() {
        let t = TempDir::new("cap");
        for i in 0..(MAX_FILES + 20) {
            t.put(&format!("f/{i:04}.txt"), b"");
        }
        let out = glob_in(&t, "*.txt", None);
        let lines: Vec<&str> = out.content.lines().collect();
        assert_eq!(lines.len(), MAX_FILES + 1);
        assert_eq!(
            lines[MAX_FILES],
            "[20 more files not shown; narrow the pattern]"
        );
    }
}
