//! The tools as the model sees them: one call, one result sent back. Bash output is
//! capped at 12 KiB with its exit status kept, commands cannot hang nib, binary output
//! cannot break the next request, and the file tools do what they say.

use crate::support::fake::{Call, SeenResult};
use crate::support::*;
use serde_json::{Value, json};
use std::time::Duration;

/// The most bytes of one tool result the model ever sees (README: 12 KB).
const CLIP: usize = 12_288;

/// One tool call and its result, run with `--yes`.
struct Trip {
    nib: Nib,
    server: FakeServer,
    out: Output,
}

impl Trip {
    fn run(name: &str, args: Value, prepare: impl FnOnce(&Nib)) -> Trip {
        Trip::script(vec![call(name, args)], prepare)
    }

    /// `read` of `path`, then the call, in one reply: a change needs a read first.
    fn after_read(path: &str, name: &str, args: Value, prepare: impl FnOnce(&Nib)) -> Trip {
        let read = call("read", json!({ "path": path }));
        Trip::script(vec![read, call(name, args)], prepare)
    }

    fn script(calls: Vec<Call>, prepare: impl FnOnce(&Nib)) -> Trip {
        let server = FakeServer::start(vec![Reply::calls(calls), Reply::text("Finished.")]);
        let nib = Nib::against(&server, Protocol::OpenAi)
            .args(["-p", "use the tool", "--yes"])
            .timeout(120);
        prepare(&nib);
        let out = nib.run();
        Trip { nib, server, out }
    }

    fn bash(command: &str) -> Trip {
        Trip::run("bash", json!({"command": command}), |_| {})
    }

    /// The result of the (last) call, as the second request carried it.
    fn result(&self) -> SeenResult {
        let reqs = self.server.chat_requests();
        assert_eq!(reqs.len(), 2, "one tool round\n{}", self.out);
        let results = reqs[1].tool_results();
        results.last().cloned().expect("a tool result")
    }

    fn assert_success(&self) {
        assert_eq!(self.out.code(), 0, "{}", self.out);
        assert_eq!(self.out.stdout, "Finished.\n");
    }
}

#[test]
fn huge_output_is_clipped_with_exit_status() {
    let trip = Trip::bash("yes | head -c 1000000000");
    trip.assert_success();
    let result = trip.result();
    assert!(
        result.content.len() <= CLIP,
        "{} bytes",
        result.content.len()
    );
    assert!(
        result.content.starts_with("exit status: 0"),
        "{:.200}",
        result.content
    );
    assert!(
        result.content.contains("y\ny\ny"),
        "the head of the output is kept"
    );
}

#[test]
fn failing_command_reports_its_status() {
    let trip = Trip::bash("echo oops >&2; exit 3");
    trip.assert_success();
    let result = trip.result();
    assert!(result.content.starts_with("exit status: 3"), "{result:?}");
    assert!(
        result.content.contains("oops"),
        "stderr is shown: {result:?}"
    );
}

#[test]
fn cat_without_arguments_returns_quickly() {
    let trip = Trip::bash("cat");
    trip.assert_success();
    assert!(trip.out.elapsed < Duration::from_secs(10), "{}", trip.out);
    assert!(trip.result().content.starts_with("exit status: 0"));
}

#[test]
fn binary_output_keeps_the_next_request_valid() {
    let trip = Trip::bash("head -c 3000 /dev/urandom");
    trip.assert_success();
    let second = &trip.server.chat_requests()[1];
    assert!(
        serde_json::from_slice::<Value>(&second.raw_body).is_ok(),
        "the request is valid JSON"
    );
    assert!(trip.result().content.starts_with("exit status: 0"));
}

/// True while the process lives (a zombie counts as gone).
fn alive(pid: &str) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .next();
    matches!(state, Some(s) if s != "Z")
}

#[test]
fn background_job_is_killed_at_timeout() {
    let command = "sleep 997 & echo $! > sleep.pid; wait";
    let trip = Trip::run("bash", json!({"command": command, "timeout": 1}), |_| {});
    let pid = trip
        .nib
        .read("sleep.pid")
        .unwrap_or_default()
        .trim()
        .to_string();
    let gone = (0..30).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        pid.is_empty() || !alive(&pid)
    });
    if !gone {
        // The test started it, through nib: end it by its PID before failing.
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid])
            .status();
    }
    trip.assert_success();
    assert!(trip.out.elapsed < Duration::from_secs(20), "{}", trip.out);
    assert!(!pid.is_empty(), "the command started");
    assert!(
        gone,
        "the background sleep {pid} was killed with its command"
    );
    let result = trip.result();
    assert!(
        result.content.starts_with("timed out after 1 s"),
        "the status line says it timed out: {result:?}"
    );
}

#[test]
fn write_creates_a_file() {
    let trip = Trip::run(
        "write",
        json!({"path": "dir/new.txt", "content": "fresh\n"}),
        |_| {},
    );
    trip.assert_success();
    assert_eq!(trip.nib.read("dir/new.txt").as_deref(), Some("fresh\n"));
}

#[test]
fn edit_replaces_text() {
    let args = json!({"path": "a.txt", "old": "beta", "new": "gamma"});
    let trip = Trip::after_read("a.txt", "edit", args, |nib| {
        nib.put("a.txt", "alpha beta\n")
    });
    trip.assert_success();
    assert_eq!(trip.nib.read("a.txt").as_deref(), Some("alpha gamma\n"));
}

#[test]
fn edit_of_missing_text_is_an_error_for_the_model() {
    let args = json!({"path": "a.txt", "old": "zzz", "new": "gamma"});
    let trip = Trip::after_read("a.txt", "edit", args, |nib| {
        nib.put("a.txt", "alpha beta\n")
    });
    trip.assert_success();
    assert_eq!(trip.nib.read("a.txt").as_deref(), Some("alpha beta\n"));
    assert!(!trip.result().content.is_empty());
}

#[test]
fn read_grep_and_glob_see_the_workspace() {
    let put = |nib: &Nib| nib.put("src/lib.rs", "fn needle() {}\n");
    let read = Trip::run("read", json!({"path": "src/lib.rs"}), put);
    read.assert_success();
    assert!(
        read.result().content.contains("fn needle() {}"),
        "{:?}",
        read.result()
    );

    let grep = Trip::run("grep", json!({"pattern": "needle"}), put);
    grep.assert_success();
    assert!(
        grep.result().content.contains("src/lib.rs"),
        "{:?}",
        grep.result()
    );

    let glob = Trip::run("glob", json!({"pattern": "**/*.rs"}), put);
    glob.assert_success();
    assert!(
        glob.result().content.contains("src/lib.rs"),
        "{:?}",
        glob.result()
    );
}
