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
    let filter = match glob {
        Some(glob) => {
            Some(matcher(root, &[glob]).map_err(|e| format!("invalid glob {glob}: {e}"))?)
        }
        None => None,
    };
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

    /// Runs `f` on a search of `path` (the root when `None`) in which the gate refuses
    /// the files named `denied`.
    fn search_in<T>(
        t: &TempDir,
        path: Option<&str>,
        denied: &[&str],
        f: impl Fn(&Search) -> T,
    ) -> T {
        let ws = t.workspace();
        let denied: Vec<PathBuf> = denied.iter().map(|d| t.join(d)).collect();
        let may_read = |p: &Path| {
            !denied
                .iter()
                .any(|d| p.canonicalize().is_ok_and(|r| r == *d))
        };
        let root = path.map_or(t.path().to_path_buf(), |p| ws.resolve(Path::new(p)));
        f(&Search {
            root,
            ws: &ws,
            may_read: &may_read,
        })
    }

    fn grep_in(
        t: &TempDir,
        pattern: &str,
        path: Option<&str>,
        glob: Option<&str>,
        ic: bool,
    ) -> Outcome {
        search_in(t, path, &[], |at| grep(pattern, glob, ic, at))
    }

    fn glob_in(t: &TempDir, pattern: &str, path: Option<&str>) -> Outcome {
        search_in(t, path, &[], |at| glob(pattern, at))
    }

    /// The output without its notes on what was left out.
    fn without_notes(out: &Outcome) -> String {
        let lines: Vec<&str> = out
            .content
            .lines()
            .filter(|l| !l.starts_with("[left out"))
            .collect();
        lines.join("\n")
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
            assert_eq!(without_notes(&out), expected, "{pattern} {path:?} {glob:?}");
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
                without_notes(&glob_in(&t, pattern, path)),
                expected,
                "{pattern} {path:?}"
            );
        }
        // Ignored (target/, *.log) and hidden files stay out even when the glob matches.
        let all = glob_in(&t, "*", None).content;
        assert_eq!(
            all,
            "data.bin\nREADME.md\nsrc/lib/run.rs\nsrc/main.rs\n\
             [left out 2 hidden and 2 ignored: .gitignore, .hidden/, build.log, …; \
             name dotted files in the pattern (.env*, .github/**) to include them]"
        );
        let absolute = t.join("src/*.rs");
        assert_eq!(
            without_notes(&glob_in(&t, absolute.to_str().unwrap(), None)),
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

    #[test]
    fn dotted_names_the_pattern_names_are_found() {
        let t = TempDir::new("dotted");
        t.put(".gitignore", b"*.log\n");
        t.put(".env", b"KEY=1\n");
        t.put(".env.local", b"KEY=2\n");
        t.put(".github/workflows/ci.yml", b"on: push\n");
        t.put(".github/.secret.yml", b"KEY=3\n");
        t.put("src/.hidden.rs", b"KEY=4\n");
        t.put("src/main.rs", b"KEY=5\n");
        t.put("debug.log", b"KEY=6\n");
        age(&t, ".env", 2_000);
        age(&t, ".env.local", 1_000);
        let cases: [(&str, &str); 7] = [
            (".env*", ".env\n.env.local"),
            (".github/**", ".github/workflows/ci.yml"),
            ("**/.hidden.rs", "src/.hidden.rs"),
            (".github/.*", ".github/.secret.yml"),
            ("**/*.yml", "no files match **/*.yml"),
            ("*.rs", "src/main.rs"),
            ("*.log", "no files match *.log"),
        ];
        for (pattern, expected) in cases {
            assert_eq!(
                without_notes(&glob_in(&t, pattern, None)),
                expected,
                "{pattern}"
            );
        }
        // What was left out is counted: hidden folders, matching files, ignored ones.
        let yml = glob_in(&t, "**/*.yml", None).content;
        assert!(yml.ends_with("[left out 1 hidden and 0 ignored: .github/; name dotted files in the pattern (.env*, .github/**) to include them]"), "{yml}");
        let log = glob_in(&t, "*.log", None).content;
        assert!(
            log.contains("[left out 1 hidden and 1 ignored: .github/, debug.log;"),
            "{log}"
        );
        let grep = grep_in(&t, "KEY", None, Some(".env*"), false);
        assert_eq!(without_notes(&grep), ".env:1:KEY=1\n.env.local:1:KEY=2");
        let grep = grep_in(&t, "KEY", None, None, false);
        assert_eq!(without_notes(&grep), "src/main.rs:1:KEY=5");
        assert!(
            grep.content
                .contains("[left out 5 hidden and 1 ignored: .env, .env.local, .github/, …;"),
            "{}",
            grep.content
        );
    }

    #[test]
    fn denied_files_and_links_out_are_left_out() {
        let outside = TempDir::new("outside");
        outside.put("secret.txt", b"SECRET outside\n");
        let t = TempDir::new("denied");
        t.put(".env", b"SECRET=1\n");
        t.put("config.txt", b"SECRET=2\n");
        t.put("notes.txt", b"SECRET=3\n");
        std::os::unix::fs::symlink(outside.join("secret.txt"), t.join("out.txt")).unwrap();
        std::os::unix::fs::symlink(outside.path(), t.join("outdir")).unwrap();
        std::os::unix::fs::symlink(t.join("notes.txt"), t.join("in.txt")).unwrap();
        t.put("sub/deep.txt", b"SECRET=4\n");
        std::os::unix::fs::symlink(t.join("sub"), t.join("again")).unwrap();
        std::os::unix::fs::symlink(t.join(".env"), t.join("env.txt")).unwrap();
        let run = |denied: &[&str], glob: Option<&str>| {
            search_in(&t, None, denied, |at| {
                grep("SECRET", glob, false, at).content
            })
        };
        // The control: nothing denied, every file inside is searched, links to files in
        // it followed (a linked folder, again/, is not: sub/deep.txt comes once).
        assert_eq!(
            run(&[], Some("*.txt")),
            "config.txt:1:SECRET=2\nenv.txt:1:SECRET=1\nin.txt:1:SECRET=3\nnotes.txt:1:SECRET=3\n\
             sub/deep.txt:1:SECRET=4\n[left out 1 symlink(s) leading outside the workspace]"
        );
        assert_eq!(
            without_notes(&Outcome::ok(run(&[], Some(".env")))),
            ".env:1:SECRET=1"
        );
        // Denied: the file and a link to it are left out, and counted.
        assert_eq!(
            run(&[".env"], Some("*.txt")),
            "config.txt:1:SECRET=2\nin.txt:1:SECRET=3\nnotes.txt:1:SECRET=3\n\
             sub/deep.txt:1:SECRET=4\n[left out 1 file(s) a deny or ask rule covers]\n\
             [left out 1 symlink(s) leading outside the workspace]"
        );
        assert_eq!(
            run(&[".env"], Some(".env")),
            "no matches\n[left out 1 file(s) a deny or ask rule covers]"
        );
        let all = run(&[".env", "config.txt"], None);
        assert!(all.starts_with("in.txt:1:SECRET=3\nnotes.txt:1:SECRET=3\nsub/deep.txt:1:SECRET=4\n[left out 2 file(s) a deny or ask rule covers]\n[left out 2 symlink(s) leading outside the workspace]\n[left out 1 hidden and 0 ignored: .env;"), "{all}");
        // One file as the root gets the same check.
        let one = search_in(&t, Some(".env"), &[".env"], |at| {
            grep("SECRET", None, false, at)
        });
        assert_eq!(
            one.content,
            "no matches\n[left out 1 file(s) a deny or ask rule covers]"
        );
        let listed = search_in(&t, None, &[".env"], |at| glob(".env*", at).content);
        assert_eq!(
            listed,
            "no files match .env*\n[left out 1 file(s) a deny or ask rule covers]"
        );
        // A search rooted outside the workspace (the user allowed it) reads what is there.
        let out = search_in(&t, Some("outdir"), &[], |at| {
            grep("SECRET", None, false, at)
        });
        assert_eq!(
            out.content,
            format!("{}:1:SECRET outside", outside.join("secret.txt").display())
        );
    }
}
