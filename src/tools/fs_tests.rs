use super::*;
use crate::testing::Surroundings;
use crate::tools::change::State;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

/// A workspace with what the file tools need around it.
struct Fixture(Surroundings);

impl std::ops::Deref for Fixture {
    type Target = Surroundings;
    fn deref(&self) -> &Surroundings {
        &self.0
    }
}

impl Fixture {
    fn new(name: &str) -> Fixture {
        Fixture(Surroundings::new(name))
    }

    fn read(&self, rel: &str, offset: Option<usize>, limit: Option<usize>) -> Outcome {
        read(&self.dir.join(rel), offset, limit, &self.ctx())
    }

    fn write(&self, rel: &str, content: &str) -> Outcome {
        let plan = write(&self.dir.join(rel), content, &self.ctx());
        plan.map_or_else(Outcome::error, |p| p.apply(Links::InPlace, &self.seen))
    }

    fn edit(&self, rel: &str, old: &str, new: &str, all: bool) -> Outcome {
        let plan = edit(&self.dir.join(rel), old, new, all, &self.ctx());
        plan.map_or_else(Outcome::error, |p| p.apply(Links::InPlace, &self.seen))
    }
}

#[test]
fn read_numbers_lines_like_cat_n() {
    let f = Fixture::new("read");
    f.dir.put("a.txt", b"one\ntwo\nthree");
    f.dir.put("empty.txt", b"");
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
        let out = f.read("a.txt", offset, limit);
        assert_eq!(out.content, expected, "{offset:?} {limit:?}");
        assert!(!out.is_error);
    }
    let past = f.read("a.txt", Some(9), None);
    assert_eq!(past.content, "a.txt has 3 lines; offset 9 is past the end");
    assert!(past.is_error);
    assert_eq!(
        f.read("empty.txt", None, None).content,
        "empty.txt is empty"
    );
    let missing = f.read("nope.txt", None, None);
    assert!(missing.is_error);
    assert!(missing.content.starts_with("no such file: nope.txt"));
    let device = read(Path::new("/dev/null"), None, None, &f.ctx());
    assert!(device.is_error && device.content.contains("not a regular file"));
}

#[test]
fn read_marks_crlf_only_where_line_ends_are_mixed() {
    let f = Fixture::new("mixed");
    f.dir.put("dos.txt", b"one\r\ntwo\r\n");
    f.dir.put("mixed.txt", b"one\r\ntwo\nthree\r\n");
    assert_eq!(
        f.read("dos.txt", None, None).content,
        "     1\tone\n     2\ttwo\n"
    );
    assert_eq!(
        f.read("mixed.txt", None, None).content,
        format!("     1\tone\\r\n     2\ttwo\n     3\tthree\\r\n{MIXED_NOTE}")
    );
    // An edit across both kinds of line end, written with \n only, matches; its new
    // lines end as most of the replaced ones did.
    let out = f.edit("mixed.txt", "one\ntwo\nthree", "ONE\nTWO\nTHREE", false);
    assert!(!out.is_error, "{}", out.content);
    assert_eq!(
        fs::read(f.dir.join("mixed.txt")).unwrap(),
        b"ONE\r\nTWO\r\nTHREE\r\n"
    );
    // As read shows it, with \r, it matches exactly.
    f.dir.put("mixed.txt", b"a\r\nb\nc\n");
    f.read("mixed.txt", None, None);
    let out = f.edit("mixed.txt", "a\r\nb", "x\r\ny", false);
    assert!(!out.is_error, "{}", out.content);
    assert_eq!(fs::read(f.dir.join("mixed.txt")).unwrap(), b"x\r\ny\nc\n");
}

#[test]
fn read_refuses_binary_and_lists_directories() {
    let f = Fixture::new("binary");
    f.dir.put("bin.dat", b"\x7fELF\0\0\x01");
    f.dir.put("dir/b.txt", b"b");
    f.dir.put("dir/sub/c.txt", b"c");
    f.dir.put("dir/.hidden", b"h");
    let out = f.read("bin.dat", None, None);
    assert!(out.is_error);
    assert!(
        out.content
            .starts_with("bin.dat is a binary file (7 bytes)")
    );
    let out = f.read("dir", None, None);
    assert_eq!(
        out.content,
        "dir is a directory (3 entries):\n.hidden\nb.txt\nsub/"
    );
}

#[test]
fn special_files_are_refused_without_blocking() {
    let f = Fixture::new("special");
    let fifo = f.dir.join("pipe");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let started = std::time::Instant::now();
    for out in [
        f.read("pipe", None, None),
        f.write("pipe", "x"),
        f.edit("pipe", "a", "b", false),
    ] {
        assert!(out.is_error, "{}", out.content);
        assert!(out.content.contains("a FIFO"), "{}", out.content);
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    // A symlink to /dev/zero is a device, not an endless file.
    std::os::unix::fs::symlink("/dev/zero", f.dir.join("zero")).unwrap();
    let zero = f.ws.resolve(Path::new("zero"));
    let out = read(&zero, None, None, &f.ctx());
    assert!(out.content.contains("a device"), "{}", out.content);
    // Control: a regular file next to them is read.
    f.dir.put("plain.txt", b"ok\n");
    assert!(!f.read("plain.txt", None, None).is_error);
}

#[test]
fn reads_are_capped_and_cancellable() {
    let f = Fixture::new("capped");
    let huge = f.dir.put("huge.log", "x\n".repeat(BINARY_SNIFF));
    fs::File::options()
        .write(true)
        .open(&huge)
        .unwrap()
        .set_len(disk::MAX_FILE + 1)
        .unwrap();
    let out = f.read("huge.log", None, Some(1));
    assert!(!out.is_error, "a page of a huge file is still shown");
    let out = f.write("huge.log", "x");
    assert!(
        out.content.contains("more than nib changes"),
        "{}",
        out.content
    );
    f.dir.put("small.txt", b"a\n");
    f.cancel.store(true, std::sync::atomic::Ordering::Relaxed);
    let out = f.read("small.txt", None, None);
    assert!(
        out.content.contains("interrupted by the user"),
        "{}",
        out.content
    );
    f.cancel.store(false, std::sync::atomic::Ordering::Relaxed);
    assert!(!f.read("small.txt", None, None).is_error, "control");
}

#[test]
fn a_dangling_symlink_is_refused_and_left_alone() {
    let f = Fixture::new("dangling");
    std::os::unix::fs::symlink("missing.txt", f.dir.join("link")).unwrap();
    let out = f.write("link", "x");
    assert!(
        out.content.contains("symlink to missing.txt"),
        "{}",
        out.content
    );
    assert!(
        fs::symlink_metadata(f.dir.join("link"))
            .unwrap()
            .is_symlink()
    );
    // Control: the target itself can be created.
    assert!(!f.write("missing.txt", "x").is_error);
}

#[test]
fn read_stays_within_the_limit_and_says_how_to_go_on() {
    let f = Fixture::new("big");
    let text: String = (1..=5000)
        .map(|i| format!("line {i} {}\n", "x".repeat(40)))
        .collect();
    f.dir.put("big.txt", text.as_bytes());
    let out = f.read("big.txt", None, None);
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
    let more = f.read("big.txt", Some(next), Some(2));
    assert!(more.content.starts_with(&format!("{next:6}\tline {next} ")));
    let long = format!("{}é{}", "a".repeat(MAX_LINE - 1), "b".repeat(10_000));
    f.dir.put("long.txt", long.as_bytes());
    let out = f.read("long.txt", None, None);
    assert!(out.content.ends_with(&format!(
        "a [… line cut at {} of {} bytes]\n",
        MAX_LINE - 1,
        long.len()
    )));
}

#[test]
fn write_creates_parents_and_reports_the_change() {
    let f = Fixture::new("write");
    let path = f.dir.join("new/deep/a.txt");
    let out = f.write("new/deep/a.txt", "x\ny\n");
    assert_eq!(out.content, "created new/deep/a.txt (2 lines)");
    assert_eq!(fs::read_to_string(&path).unwrap(), "x\ny\n");
    let change = out.change.unwrap();
    assert!(change.before.is_none());
    assert_eq!(
        change.made_dirs,
        [f.dir.join("new"), f.dir.join("new/deep")]
    );
    assert!(
        out.diff
            .unwrap()
            .contains("+++ b/new/deep/a.txt\n@@ -0,0 +1,2 @@\n+x\n+y\n")
    );

    let out = f.write("new/deep/a.txt", "x\nz\n");
    assert_eq!(out.content, "wrote new/deep/a.txt (2 lines)");
    let change = out.change.unwrap();
    assert_eq!(change.before.unwrap().text, "y");
    assert!(out.diff.unwrap().contains(" x\n-y\n+z\n"));
    let leftovers = fs::read_dir(path.parent().unwrap()).unwrap().count();
    assert_eq!(leftovers, 1, "temp file left behind");
    assert!(f.write("new", "x").is_error);
}

#[test]
fn a_change_needs_a_fresh_read() {
    let f = Fixture::new("stale");
    f.dir.put("cfg.txt", b"a = 1\n");
    let unread = f.write("cfg.txt", "a = 2\n");
    assert!(
        unread.content.contains("you have not read it"),
        "{}",
        unread.content
    );
    let unread = f.edit("cfg.txt", "1", "2", false);
    assert!(
        unread.content.contains("you have not read it"),
        "{}",
        unread.content
    );
    f.read("cfg.txt", None, None);
    f.dir.put("cfg.txt", b"a = 1\nb = 1\n");
    let stale = f.write("cfg.txt", "a = 2\n");
    assert!(
        stale.content.contains("changed since you last read it"),
        "{}",
        stale.content
    );
    assert_eq!(
        fs::read_to_string(f.dir.join("cfg.txt")).unwrap(),
        "a = 1\nb = 1\n"
    );
    // Control: after a fresh read the same write goes ahead, and nib's own write
    // counts as seen for the next edit.
    f.read("cfg.txt", None, None);
    assert!(!f.write("cfg.txt", "a = 2\n").is_error);
    assert!(!f.edit("cfg.txt", "2", "3", false).is_error);
    assert_eq!(
        fs::read_to_string(f.dir.join("cfg.txt")).unwrap(),
        "a = 3\n"
    );
}

#[test]
fn writes_keep_mode_line_endings_and_hard_links() {
    let f = Fixture::new("mode");
    let script = f.dir.put("run.sh", b"echo a\r\necho b\r\n");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o751)).unwrap();
    f.read("run.sh", None, None);
    let out = f.write("run.sh", "echo c\necho d\n");
    assert!(!out.is_error, "{}", out.content);
    assert_eq!(fs::read(&script).unwrap(), b"echo c\r\necho d\r\n");
    let mode = fs::metadata(&script).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o751);
    let out = f.edit("run.sh", "echo c\necho d", "echo e\necho f\necho g", false);
    assert!(!out.is_error, "{}", out.content);
    assert_eq!(
        fs::read(&script).unwrap(),
        b"echo e\r\necho f\r\necho g\r\n"
    );
    assert_eq!(
        fs::metadata(&script).unwrap().permissions().mode() & 0o777,
        0o751
    );
    // A hard-linked file is rewritten in place: both names see the change.
    let twin = f.dir.join("twin.sh");
    fs::hard_link(&script, &twin).unwrap();
    let out = f.edit("run.sh", "echo e", "echo h", false);
    assert!(!out.is_error, "{}", out.content);
    assert!(fs::read_to_string(&twin).unwrap().starts_with("echo h"));
    assert_eq!(fs::metadata(&script).unwrap().nlink(), 2);
    // ...unless nothing holds its old content.
    let plan = edit(&script, "echo h", "echo i", false, &f.ctx()).unwrap();
    let out = plan.apply(Links::Refuse, &f.seen);
    assert!(out.content.contains("2 hard links"), "{}", out.content);
    fs::set_permissions(&script, fs::Permissions::from_mode(0o444)).unwrap();
    assert!(f.write("run.sh", "x").content.contains("read-only"));
}

#[test]
fn edit_checks_old_and_reports_a_diff() {
    let f = Fixture::new("edit");
    f.dir
        .put("a.rs", b"fn a() {\n    let x = 1;\n    let y = 1;\n}\n");
    f.read("a.rs", None, None);
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
        let out = f.edit("a.rs", old, new, all);
        assert_eq!(Err(out.content.as_str()), expected, "{old:?}");
        assert!(out.is_error && out.change.is_none());
    }
    let out = f.edit("a.rs", "let x = 1", "let x = 2", false);
    assert_eq!(
        out.content,
        "edited a.rs\n@@ -1,4 +1,4 @@\n fn a() {\n-    let x = 1;\n+    let x = 2;\n     let y = 1;\n }\n"
    );
    assert!(out.diff.unwrap().starts_with("--- a/a.rs\n+++ b/a.rs\n"));
    let out = f.edit("a.rs", "let", "const", true);
    assert!(out.content.starts_with("edited a.rs: 2 replacements\n"));
    let change = out.change.unwrap();
    let after = fs::read(f.dir.join("a.rs")).unwrap();
    assert_eq!(after, b"fn a() {\n    const x = 2;\n    const y = 1;\n}\n");
    assert_eq!(change.state(Some(&after)), State::After);
    let before = change.undone(&after).unwrap().unwrap();
    assert_eq!(before, b"fn a() {\n    let x = 2;\n    let y = 1;\n}\n");
    let missing = f.edit("b.rs", "x", "y", false);
    assert_eq!(
        missing.content,
        "no such file: b.rs; use write to create it"
    );
}

#[test]
fn edit_refuses_non_utf8_files() {
    let f = Fixture::new("latin1");
    f.dir.put("l.txt", b"caf\xe9\n");
    f.read("l.txt", None, None);
    let out = f.edit("l.txt", "caf", "bar", false);
    assert_eq!(
        out.content,
        "l.txt is not UTF-8 text; change it with bash instead"
    );
    assert_eq!(fs::read(f.dir.join("l.txt")).unwrap(), b"caf\xe9\n");
}
