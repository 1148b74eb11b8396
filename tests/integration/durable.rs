//! Nothing lost, nothing left behind: undo on a full disk, file changes when the journal
//! cannot be written, stale writes, special files, owners, links and extended attributes,
//! broken streams, and the journal's size. Disks are filled for real, on a small tmpfs
//! (mounting needs root; where it is refused the test says so and skips).

use crate::support::*;
use serde_json::json;
use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A tmpfs mounted over a directory for one test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it) on `dir`; `None`, with the
    /// reason on stderr, where mounting is refused.
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output();
        match out {
            Ok(out) if out.status.success() => Some(Tmpfs(dir.to_path_buf())),
            Ok(out) => {
                let why = String::from_utf8_lossy(&out.stderr);
                eprintln!("skipped: cannot mount a tmpfs ({})", why.trim());
                None
            }
            Err(e) => {
                eprintln!("skipped: cannot run mount ({e})");
                None
            }
        }
    }

    /// Fills the filesystem with a file `name` until no byte more fits.
    fn fill(&self, name: &str) {
        use std::io::Write;
        let mut file = fs::File::create(self.0.join(name)).unwrap();
        let block = vec![0u8; 4096];
        while file.write_all(&block).is_ok() {}
        while file.write_all(&block[..1]).is_ok() {}
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The results nib sent back to the model, in order, over the whole run.
fn results(server: &FakeServer) -> Vec<String> {
    let requests = server.chat_requests();
    let last = requests.last().expect("a request");
    last.tool_results().into_iter().map(|r| r.content).collect()
}

fn temp_files(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.contains(".nib-"))
        .collect()
}

/// `nib undo` on a full disk leaves the file as nib wrote it (never a third content),
/// and succeeds once there is room. `linked`: the file has a second hard link, so it is
/// rewritten in place rather than renamed over.
fn undo_on_a_full_disk(linked: bool) {
    let server = FakeServer::start(vec![
        Reply::calls(vec![
            call("read", json!({"path": "big.txt"})),
            call("write", json!({"path": "big.txt", "content": "small\n"})),
        ]),
        Reply::text("done"),
    ]);
    let nib = Nib::against(&server, Protocol::OpenAi);
    let Some(disk) = Tmpfs::mount(&nib.work(), "1m") else {
        return;
    };
    let old: String = (0..12_500)
        .map(|i| format!("line {i:>6} of the old file..\n"))
        .collect();
    assert!(old.len() > 370_000);
    nib.put("big.txt", &old);
    if linked {
        fs::hard_link(nib.work().join("big.txt"), nib.work().join("twin.txt")).unwrap();
    }
    let out = nib.run_with(["-p", "shrink it", "--yes"]);
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(nib.read("big.txt").as_deref(), Some("small\n"));

    disk.fill("filler");
    let out = nib.run_with(["undo"]);
    assert_eq!(out.code(), 1, "{out}");
    assert!(
        out.stderr.contains("cannot restore") && out.stderr.contains("left as nib wrote it"),
        "{out}"
    );
    assert_eq!(
        nib.read("big.txt").as_deref(),
        Some("small\n"),
        "not a third"
    );
    assert_eq!(temp_files(&nib.work()), Vec::<String>::new());

    // Control: with room again, the same undo restores the old content.
    fs::remove_file(nib.work().join("filler")).unwrap();
    let out = nib.run_with(["undo"]);
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(nib.read("big.txt").as_deref(), Some(old.as_str()));
    if linked {
        assert_eq!(nib.read("twin.txt").as_deref(), Some(old.as_str()));
    }
}

#[test]
fn undo_on_a_full_disk_keeps_the_new_content_until_there_is_room() {
    undo_on_a_full_disk(false);
}

#[test]
fn undo_of_a_hard_linked_file_on_a_full_disk_changes_no_byte() {
    undo_on_a_full_disk(true);
}

#[test]
fn a_full_data_dir_stops_file_changes() {
    let server = FakeServer::start(vec![
        Reply::calls(vec![
            call("read", json!({"path": "small.txt"})),
            call(
                "write",
                json!({"path": "small.txt", "content": "small 2\n"}),
            ),
        ]),
        Reply::calls(vec![
            call("read", json!({"path": "big.txt"})),
            call("write", json!({"path": "big.txt", "content": "new\n"})),
        ]),
        Reply::text("done"),
    ]);
    let nib = Nib::against(&server, Protocol::OpenAi);
    let Some(_disk) = Tmpfs::mount(&nib.data_home(), "1m") else {
        return;
    };
    let big = "x".repeat(99) + "\n";
    let big = big.repeat(20_000);
    nib.put("small.txt", "small 1\n");
    nib.put("big.txt", &big);
    let out = nib.run_with(["-p", "change both", "--yes"]);
    // The big file's old content does not fit in the journal: it is not changed, and
    // the run fails, saying why.
    assert_eq!(out.code(), 1, "{out}");
    assert!(
        out.stderr.contains("journal cannot be written") && out.stderr.contains("No space"),
        "{out}"
    );
    assert_eq!(nib.read("big.txt").as_deref(), Some(big.as_str()));
    // Control: the small change, journaled, went ahead, and can still be undone.
    assert_eq!(nib.read("small.txt").as_deref(), Some("small 2\n"));
    let out = nib.run_with(["undo"]);
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(nib.read("small.txt").as_deref(), Some("small 1\n"));
}

#[test]
fn a_journal_that_cannot_be_started_leaves_nothing_behind() {
    let server = FakeServer::start(vec![Reply::text("hi")]);
    let nib = Nib::against(&server, Protocol::OpenAi);
    let Some(disk) = Tmpfs::mount(&nib.data_home(), "64k") else {
        return;
    };
    // Room for the session folder, none for a record.
    let dir = nib.data_home().join("nib/sessions");
    fs::create_dir_all(&dir).unwrap();
    disk.fill("filler");
    let out = nib.run_with(["-p", "hello"]);
    assert_ne!(out.code(), 0, "{out}");
    assert_eq!(
        nib.journal_files(),
        Vec::<PathBuf>::new(),
        "no meta, no journal"
    );
    // Control: with room, the same run journals.
    fs::remove_file(nib.data_home().join("filler")).unwrap();
    let out = nib.run_with(["-p", "hello"]);
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(nib.journal_files().len(), 1);
}

#[test]
fn a_journal_without_meta_is_passed_over() {
    let server = FakeServer::start(vec![Reply::text("first"), Reply::text("again")]);
    let nib = Nib::against(&server, Protocol::OpenAi);
    assert_eq!(nib.run_with(["-p", "one"]).code(), 0);
    let good = nib.journal_files()[0].clone();
    std::thread::sleep(Duration::from_millis(20));
    fs::write(good.with_file_name("broken.jsonl"), "").unwrap();
    let out = nib.run_with(["sessions", "--json"]);
    assert_eq!(out.json().as_array().map(Vec::len), Some(1), "{out}");
    let out = nib.run_with(["-c", "-p", "two"]);
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(out.stdout, "again\n");
    let lines = fs::read_to_string(&good).unwrap();
    assert!(lines.contains("\"two\""), "continued the good journal");
}

#[test]
fn a_stale_write_is_refused_until_the_file_is_read_again() {
    let server = FakeServer::start(vec![
        Reply::tool_call("read", json!({"path": "cfg.txt"})),
        Reply::tool_call("bash", json!({"command": "echo 'b = 1' >> cfg.txt"})),
        Reply::tool_call("write", json!({"path": "cfg.txt", "content": "a = 2\n"})),
        Reply::tool_call("read", json!({"path": "cfg.txt"})),
        Reply::tool_call("write", json!({"path": "cfg.txt", "content": "a = 2\n"})),
        Reply::text("done"),
    ]);
    let nib = Nib::against(&server, Protocol::OpenAi);
    nib.put("cfg.txt", "a = 1\n");
    let out = nib.run_with(["-p", "set a to 2", "--yes"]);
    assert_eq!(out.code(), 0, "{out}");
    let told = results(&server);
    assert!(
        told[2].contains("changed since you last read it") && told[2].contains("read it again"),
        "{told:?}"
    );
    assert!(
        told[3].contains("b = 1"),
        "the refused write left the user's line"
    );
    // Control: after a fresh read the same write goes ahead.
    assert!(told[4].starts_with("wrote cfg.txt"), "{told:?}");
    assert_eq!(nib.read("cfg.txt").as_deref(), Some("a = 2\n"));
}

#[test]
fn a_file_never_read_is_not_overwritten_and_a_read_survives_resume() {
    let server = FakeServer::start(vec![
        Reply::tool_call("write", json!({"path": "cfg.txt", "content": "x\n"})),
        Reply::text("refused"),
        Reply::tool_call("read", json!({"path": "cfg.txt"})),
        Reply::text("read it"),
        Reply::tool_call("write", json!({"path": "cfg.txt", "content": "x\n"})),
        Reply::text("wrote it"),
    ]);
    let nib = Nib::against(&server, Protocol::OpenAi);
    nib.put("cfg.txt", "keep\n");
    assert_eq!(nib.run_with(["-p", "overwrite", "--yes"]).code(), 0);
    assert!(results(&server)[0].contains("you have not read it"));
    assert_eq!(nib.read("cfg.txt").as_deref(), Some("keep\n"));
    assert_eq!(nib.run_with(["-c", "-p", "read it", "--yes"]).code(), 0);
    // A later nib on the same session knows the file was read.
    let out = nib.run_with(["-c", "-p", "now write", "--yes"]);
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(nib.read("cfg.txt").as_deref(), Some("x\n"));
}

#[test]
fn a_fifo_target_returns_at_once() {
    let server = FakeServer::start(vec![
        Reply::calls(vec![
            call("write", json!({"path": "pipe", "content": "x"})),
            call("edit", json!({"path": "pipe", "old": "a", "new": "b"})),
            call("read", json!({"path": "pipe"})),
            call("read", json!({"path": "plain.txt"})),
        ]),
        Reply::text("done"),
    ]);
    let nib = Nib::against(&server, Protocol::OpenAi).timeout(10);
    let fifo = CString::new(nib.work().join("pipe").as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    nib.put("plain.txt", "plain\n");
    let started = Instant::now();
    let out = nib.run_with(["-p", "use the pipe", "--yes"]);
    assert_eq!(out.code(), 0, "{out}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let told = results(&server);
    for result in &told[..3] {
        assert!(
            result.contains("is a FIFO (named pipe), not a regular file"),
            "{told:?}"
        );
    }
    assert!(told[3].contains("plain"), "control: a regular file is read");
}

#[test]
fn owner_links_and_xattrs_survive_an_edit_and_its_undo() {
    if !is_root() {
        eprintln!("skipped: giving a file another owner needs root");
        return;
    }
    let server = FakeServer::start(vec![
        Reply::calls(vec![
            call("read", json!({"path": "owned.txt"})),
            call(
                "edit",
                json!({"path": "owned.txt", "old": "one", "new": "two"}),
            ),
            call("read", json!({"path": "linked.txt"})),
            call(
                "edit",
                json!({"path": "linked.txt", "old": "one", "new": "two"}),
            ),
        ]),
        Reply::text("done"),
    ]);
    let nib = Nib::against(&server, Protocol::OpenAi);
    nib.put("owned.txt", "one\n");
    nib.put("linked.txt", "one\n");
    let owned = nib.work().join("owned.txt");
    let linked = nib.work().join("linked.txt");
    let twin = nib.work().join("twin.txt");
    std::os::unix::fs::chown(&owned, Some(65534), Some(65534)).unwrap();
    fs::hard_link(&linked, &twin).unwrap();
    let xattrs = set_xattr(&owned, "user.nib-test", b"kept");
    if !xattrs {
        eprintln!("note: this filesystem takes no user xattrs; checking owner and links only");
    }
    let out = nib.run_with(["-p", "edit both", "--yes"]);
    assert_eq!(out.code(), 0, "{out}");
    let check = |content: &str| {
        assert_eq!(fs::read_to_string(&owned).unwrap(), content);
        let meta = fs::metadata(&owned).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (65534, 65534), "owner kept");
        if xattrs {
            assert_eq!(
                get_xattr(&owned, "user.nib-test").as_deref(),
                Some(&b"kept"[..])
            );
        }
        assert_eq!(fs::read_to_string(&twin).unwrap(), content, "link kept");
        assert_eq!(fs::metadata(&linked).unwrap().nlink(), 2);
    };
    check("two\n");
    let out = nib.run_with(["undo", "2"]);
    assert_eq!(out.code(), 0, "{out}");
    check("one\n");
}

fn set_xattr(path: &Path, name: &str, value: &[u8]) -> bool {
    let (path, name) = (c_path(path), CString::new(name).unwrap());
    // SAFETY: valid C strings and a live buffer.
    unsafe {
        libc::setxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        ) == 0
    }
}

fn get_xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let (path, name) = (c_path(path), CString::new(name).unwrap());
    let mut buf = vec![0u8; 256];
    // SAFETY: valid C strings and a live buffer of `buf.len()` bytes.
    let n = unsafe {
        libc::getxattr(
            path.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    (n >= 0).then(|| buf[..n as usize].to_vec())
}

fn c_path(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap()
}

#[test]
fn undo_removes_the_directories_nib_created_when_empty() {
    let server = FakeServer::start(vec![
        Reply::calls(vec![
            call("write", json!({"path": "a/b/c.txt", "content": "c\n"})),
            call("write", json!({"path": "x/y/z.txt", "content": "z\n"})),
        ]),
        Reply::text("done"),
    ]);
    let nib = Nib::against(&server, Protocol::OpenAi);
    assert_eq!(nib.run_with(["-p", "make files", "--yes"]).code(), 0);
    // Someone else puts a file in x/ meanwhile: x/ stays, its empty y/ goes.
    nib.put("x/mine.txt", "mine\n");
    let out = nib.run_with(["undo", "2"]);
    assert_eq!(out.code(), 0, "{out}");
    assert!(!nib.work().join("a").exists(), "a/ and a/b/ were nib's");
    assert!(!nib.work().join("x/y").exists());
    assert_eq!(nib.read("x/mine.txt").as_deref(), Some("mine\n"));
}

#[test]
fn a_journal_of_format_1_still_undoes() {
    let server = FakeServer::start(vec![Reply::text("hi")]);
    let nib = Nib::against(&server, Protocol::OpenAi);
    assert_eq!(nib.run_with(["-p", "start"]).code(), 0);
    let journal = nib.journal_files()[0].clone();
    let path = nib.work().join("old.txt");
    nib.put("old.txt", "after\n");
    let record = json!({"ts": 1, "type": "tool_result", "id": "t1", "name": "write",
        "content": "wrote old.txt", "change": {"path": path, "before": "before\n", "after": "after\n"}});
    let mut text = fs::read_to_string(&journal).unwrap();
    text.push_str(&format!("{record}\n"));
    fs::write(&journal, text).unwrap();
    let out = nib.run_with(["undo"]);
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(nib.read("old.txt").as_deref(), Some("before\n"));
}

both_protocols! {
    fn a_stream_cut_mid_event_is_retried(p: Protocol) {
        let server = FakeServer::start(vec![
            Reply::text("a reply that breaks off").cut_mid_event(),
            Reply::text("Recovered answer"),
        ]);
        let out = Nib::against(&server, p).run_with(["-p", "hi"]);
        assert_eq!(out.code(), 0, "{out}");
        assert_eq!(out.stdout, "Recovered answer\n");
        assert_eq!(server.chat_requests().len(), 2, "retried once");
    }
}

#[test]
fn a_retry_after_beyond_the_maximum_stops_with_one_line() {
    let server = FakeServer::start(vec![Reply::status(429, &[("retry-after", "100")], "{}")]);
    let started = Instant::now();
    let out = Nib::against(&server, Protocol::OpenAi).run_with(["-p", "hi"]);
    assert_eq!(out.code(), 1, "{out}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        out.stderr
            .contains("asks to wait 100 s, longer than nib waits (60 s)"),
        "{out}"
    );
    assert_eq!(server.chat_requests().len(), 1);
}

#[test]
fn the_idle_limit_is_a_setting_and_a_stall_is_one_line() {
    let server = FakeServer::start(vec![
        Reply::hang(),
        Reply::text("slow but steady").slow(400),
    ]);
    let nib = Nib::against(&server, Protocol::OpenAi).timeout(20);
    let dir = nib.config_home().join("nib");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("settings.json"),
        json!({"idle_timeout_secs": 1}).to_string(),
    )
    .unwrap();
    let started = Instant::now();
    let out = nib.run_with(["-p", "hi"]);
    assert_eq!(out.code(), 1, "{out}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("sent nothing"))
        .collect();
    assert_eq!(errors.len(), 1, "{out}");
    assert!(errors[0].contains("sent nothing for 1 s") && errors[0].contains("idle_timeout_secs"));
    // Control: a reply whose pauses stay under the limit is not cut.
    let out = nib.run_with(["-p", "again"]);
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(out.stdout, "slow but steady\n");
}

/// Two edits of a 50 MB file: the journal holds the edits, not copies, and resuming the
/// session stays small (peak RSS measured by /usr/bin/time).
#[test]
fn a_large_file_edited_twice_keeps_the_journal_small() {
    let server = FakeServer::start(vec![
        Reply::tool_call("read", json!({"path": "big.txt", "limit": 5})),
        Reply::tool_call(
            "edit",
            json!({"path": "big.txt", "old": "line 000010", "new": "LINE TEN"}),
        ),
        Reply::tool_call(
            "edit",
            json!({"path": "big.txt", "old": "line 400000", "new": "LINE 4E5"}),
        ),
        Reply::text("edited"),
        Reply::text("resumed"),
    ]);
    let nib = Nib::against(&server, Protocol::OpenAi).timeout(300);
    let big: String = (0..500_000)
        .map(|i| format!("line {i:06} {}\n", "x".repeat(88)))
        .collect();
    assert!(big.len() >= 50_000_000);
    nib.put("big.txt", &big);
    let out = nib.run_with(["-p", "edit twice", "--yes"]);
    assert_eq!(out.code(), 0, "{out}");
    let edited = nib.read("big.txt").unwrap();
    assert!(edited.contains("LINE TEN") && edited.contains("LINE 4E5"));
    let journal = nib.journal_files()[0].clone();
    let size = fs::metadata(&journal).unwrap().len();
    assert!(size < 200_000, "journal of {size} bytes");

    // Control: the edits are in the journal, and undo puts the file back.
    let out = nib.run_with(["undo", "2"]);
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(nib.read("big.txt").as_deref(), Some(big.as_str()));

    if !Path::new("/usr/bin/time").exists() {
        eprintln!("skipped the memory check: /usr/bin/time is not installed");
        return;
    }
    let report = nib.work().join("time.txt");
    let wrapper = nib.work().join("timed-nib");
    let script = format!(
        "#!/bin/sh\nexec /usr/bin/time -v -o '{}' '{}' \"$@\"\n",
        report.display(),
        nib.bin().display()
    );
    fs::write(&wrapper, script).unwrap();
    fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let timed = nib.program(&wrapper);
    let out = timed.run_with(["-c", "-p", "go on"]);
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(out.stdout, "resumed\n");
    let peak_kb: u64 = fs::read_to_string(&report)
        .unwrap()
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|n| n.parse().ok())
        .expect("time -v reports the peak");
    eprintln!("journal {size} bytes; resume peaked at {peak_kb} kB");
    assert!(peak_kb < 100_000, "resume peaked at {peak_kb} kB");
}
