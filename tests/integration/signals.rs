//! No orphans: nib stopped by SIGTERM, SIGHUP or SIGKILL while a command runs leaves
//! nothing running. The command `sleep 5; touch marker` never gets to its marker, no
//! process of its group survives, and the next `nib -c` tells the model the command
//! was killed. The control: the same command left alone does leave its marker.

use crate::support::*;
use serde_json::json;
use std::fs;
use std::time::{Duration, Instant};

/// The command under test: it names its process group in a file, then works slowly.
const COMMAND: &str = "echo $$ > group; sleep 5; touch marker";

/// How long the marker is looked for after the signal: past the command's own 5 s.
const AFTERMATH: Duration = Duration::from_secs(6);

/// How long a group may take to be gone after nib was signalled (TERM, one second of
/// grace, KILL).
const GROUP_GONE: Duration = Duration::from_secs(4);

fn nib_with_command() -> (FakeServer, Nib) {
    let server = FakeServer::start(vec![
        Reply::tool_call("bash", json!({ "command": COMMAND })),
        Reply::text("Finished."),
        Reply::text("Resumed."),
    ]);
    let nib = Nib::against(&server, Protocol::OpenAi)
        .args(["-p", "go", "--yes"])
        .timeout(30);
    (server, nib)
}

/// The command's process group, once it has started.
fn wait_group(nib: &Nib) -> i32 {
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        if let Some(group) = nib.read("group").and_then(|g| g.trim().parse().ok()) {
            return group;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the command did not start");
}

/// True while a live process is in `group` (zombies do not count: in a container,
/// pid 1 may never reap what was reparented to it).
fn group_exists(group: i32) -> bool {
    let Ok(entries) = fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|e| {
        let stat = fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        // pid (comm) state ppid pgrp ...: comm may hold spaces, so split after ')'.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
        fields.len() > 2 && fields[0] != "Z" && fields[2] == group.to_string()
    })
}

fn gone_within(group: i32, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if !group_exists(group) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Signals nib mid-command; checks the group and the marker; returns nib and its output.
fn stop_with(signal: &str) -> (FakeServer, Nib, Output) {
    let (server, nib) = nib_with_command();
    let running = nib.spawn();
    let group = wait_group(&nib);
    let signalled = Instant::now();
    let status = std::process::Command::new("kill")
        .args([signal, &running.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = running.wait(Duration::from_secs(15));
    assert!(
        gone_within(group, GROUP_GONE),
        "{signal}: group {group} survived\n{out}"
    );
    std::thread::sleep(AFTERMATH.saturating_sub(signalled.elapsed()));
    assert!(
        nib.read("marker").is_none(),
        "{signal}: the command finished\n{out}"
    );
    (server, nib, out)
}

#[test]
fn left_alone_the_command_leaves_its_marker() {
    let (_server, nib) = nib_with_command();
    let out = nib.run();
    assert_eq!(out.code(), 0, "{out}");
    assert!(nib.read("marker").is_some());
}

#[test]
fn sigterm_kills_the_command_and_journals_it() {
    let (server, nib, out) = stop_with("-TERM");
    assert_eq!(out.code(), 143, "{out}");
    let journal = fs::read_to_string(&nib.journal_files()[0]).unwrap();
    assert!(
        journal.contains("killed: nib received SIGTERM"),
        "{journal}"
    );
    assert!(journal.contains(r#""type":"end""#), "{journal}");
    let resumed = nib.run_with(["-c"]);
    assert_eq!(resumed.code(), 0, "{resumed}");
    let last = server.chat_requests().pop().unwrap();
    let results = last.tool_results();
    assert!(results[0].content.contains("killed"), "{results:?}");
}

#[test]
fn sighup_kills_the_command() {
    let (_server, _nib, out) = stop_with("-HUP");
    assert_eq!(out.code(), 129, "{out}");
}

#[test]
fn sigkill_of_nib_kills_the_command_and_resume_says_so() {
    let (server, nib, _) = stop_with("-KILL");
    let resumed = nib.run_with(["-c"]);
    assert_eq!(resumed.code(), 0, "{resumed}");
    let last = server.chat_requests().pop().unwrap();
    let results = last.tool_results();
    assert!(
        results[0].content.starts_with("killed: nib was stopped"),
        "{results:?}"
    );
}
