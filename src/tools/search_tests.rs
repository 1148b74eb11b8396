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
fn search_in<T>(t: &TempDir, path: Option<&str>, denied: &[&str], f: impl Fn(&Search) -> T) -> T {
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
