//! Sessions: the journal survives `kill -9` at any moment, a torn or malformed line
//! costs only itself, `-c` / `-r ID` / `--fork-session` / `--session-id` /
//! `--no-session-persistence` do what they say headless, one session has one writer,
//! a session moves between providers both ways, `nib undo` restores files, and the
//! sessions of two directories never mix, even in the folder older versions shared.

use crate::support::*;
use serde_json::{Value, json};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

/// What nib says for an id no journal has (Claude Code's wording).
const NOT_FOUND: &str = "No conversation found with session ID:";
/// How long a test waits for a slowed-down fake to be mid-stream.
const WAIT: Duration = Duration::from_secs(20);

/// A finished headless run in JSON; returns its session id.
fn session_of(out: &Output) -> String {
    assert_eq!(out.code(), 0, "{out}");
    out.json()["session_id"].as_str().unwrap().to_string()
}

/// Every line of a journal, parsed; a line that is not JSON fails the test.
fn records(path: &Path) -> Vec<Value> {
    parse_json_lines(&fs::read_to_string(path).unwrap())
}

fn kinds(records: &[Value]) -> Vec<&str> {
    records.iter().filter_map(|r| r["type"].as_str()).collect()
}

/// The one journal of the sandbox.
fn only_journal(nib: &Nib) -> PathBuf {
    let files = nib.journal_files();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

/// `dir` with every non-alphanumeric character turned into `-`.
fn slug(dir: &Path) -> String {
    dir.to_string_lossy()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// The folder nib keeps the sessions of `nib.work()` in (README: the slug of the path,
/// `-`, and 16 hex digits of the path's FNV-1a 64 hash).
fn project_dir(nib: &Nib) -> PathBuf {
    folder_of(nib, &fs::canonicalize(nib.work()).unwrap())
}

fn folder_of(nib: &Nib, dir: &Path) -> PathBuf {
    let hash = dir
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    let name = format!("{}-{hash:016x}", slug(dir));
    nib.data_home().join("nib/sessions").join(name)
}

/// Writes a journal by hand, in the format README documents: `lines` after the meta
/// record, each followed by a newline unless it is `torn`.
fn fixture(nib: &Nib, id: &str, lines: &[Value], torn: Option<&str>) -> PathBuf {
    let cwd = fs::canonicalize(nib.work()).unwrap();
    fixture_in(&project_dir(nib), &cwd, id, lines, torn)
}

/// `fixture` in folder `dir`, for a session started in `cwd`.
fn fixture_in(dir: &Path, cwd: &Path, id: &str, lines: &[Value], torn: Option<&str>) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let meta = json!({"ts": 1, "type": "meta", "id": id, "cwd": cwd, "model": "fake-model",
                      "provider": "openai", "nib": "0.1.0", "started": "2026-01-01T00:00:00Z",
                      "format": 1});
    let mut text = String::new();
    for line in std::iter::once(&meta).chain(lines) {
        text.push_str(&line.to_string());
        text.push('\n');
    }
    text.push_str(torn.unwrap_or(""));
    let path = dir.join(format!("{id}.jsonl"));
    fs::write(&path, text).unwrap();
    path
}

/// A finished exchange with one bash call, as records.
fn bash_exchange(prompt: &str, call_id: &str, answer: &str) -> Vec<Value> {
    vec![
        json!({"ts": 2, "type": "user", "text": prompt}),
        json!({"ts": 3, "type": "assistant", "text": "",
               "calls": [{"id": call_id, "name": "bash", "input": {"command": "echo hi"}}],
               "stop": "tool_use", "model": "fake-model"}),
        json!({"ts": 4, "type": "decision", "id": call_id, "tool": "bash", "allowed": true,
               "by": "rules"}),
        json!({"ts": 5, "type": "tool_result", "id": call_id, "name": "bash",
               "content": "exit status: 0\nhi\n"}),
        json!({"ts": 6, "type": "assistant", "text": answer, "stop": "end_turn",
               "model": "fake-model"}),
        json!({"ts": 7, "type": "end", "subtype": "success", "turns": 2,
               "usage": {"input_tokens": 10, "output_tokens": 5}, "cost_usd": 0.0,
               "session_turns": 2}),
    ]
}

/// Every text the conversation of a request holds, user and assistant, joined.
fn conversation_text(req: &fake::Recorded) -> String {
    req.body["messages"].to_string()
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn killed_mid_reply_then_resumed_loses_only_the_reply() {
    let server = FakeServer::start(vec![
        Reply::tool_call("bash", json!({"command": "echo first-output"})),
        Reply::text("a reply that is still streaming when nib dies").slow(500),
    ]);
    let nib = Nib::against(&server, Protocol::OpenAi);
    let running = nib.spawn_with(["-p", "the first task", "--yes"]);
    wait_until("the second request", || server.chat_requests().len() >= 2);
    thread::sleep(Duration::from_millis(400));
    running.kill9();
    let killed = running.wait(WAIT);
    assert_eq!(killed.code(), -1, "{killed}");

    let journal = only_journal(&nib);
    let before = records(&journal);
    assert_eq!(
        kinds(&before),
        ["meta", "user", "assistant", "decision", "tool_result"],
        "every complete record is there, nothing of the cut reply"
    );
    let lock = journal.with_extension("lock");
    assert!(lock.exists(), "the dead process left its lock");

    server.push(Reply::text("carrying on"));
    let out = nib.run_with(["-c", "-p", "the next task", "--output-format", "json"]);
    assert_eq!(out.code(), 0, "the stale lock is taken over\n{out}");
    assert_eq!(out.json()["result"], "carrying on");
    let last = server.chat_requests().pop().unwrap();
    let results = last.tool_results();
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(results[0].id, "call_fake_1");
    assert!(results[0].content.contains("first-output"), "{results:?}");
    let text = conversation_text(&last);
    assert!(text.contains("the first task") && text.contains("the next task"));
    assert!(
        !text.contains("still streaming"),
        "a cut reply is not history"
    );

    let after = records(&journal);
    assert_eq!(after[..before.len()], before[..], "nothing rewritten");
    assert_eq!(
        kinds(&after[before.len()..]),
        ["user", "assistant", "end"],
        "the continuation is appended to the same journal"
    );
    assert!(!lock.exists(), "the lock is released at exit");
}

#[test]
fn killed_while_a_tool_runs_gets_an_interrupted_result_on_resume() {
    let server = FakeServer::start(vec![Reply::tool_call(
        "bash",
        json!({"command": "touch started; sleep 3"}),
    )]);
    let nib = Nib::against(&server, Protocol::Anthropic);
    let running = nib.spawn_with(["-p", "run the slow thing", "--yes"]);
    let started = nib.work().join("started");
    wait_until("the command to start", || started.exists());
    running.kill9();
    running.wait(WAIT);
    assert_eq!(
        kinds(&records(&only_journal(&nib))),
        ["meta", "user", "assistant", "decision"]
    );

    server.push(Reply::text("understood"));
    let out = nib.run_with(["-c", "-p", "what happened?"]);
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(out.stdout, "understood\n");
    let last = server.chat_requests().pop().unwrap();
    let calls = last.assistant_calls();
    let results = last.tool_results();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(results.len(), 1, "every call is answered: {results:?}");
    assert_eq!(results[0].id, calls[0].id);
    assert!(results[0].is_error);
    assert!(results[0].content.contains("killed"), "{results:?}");
    assert_eq!(last.last_user_text(), "what happened?");
}

#[test]
fn torn_last_line_is_skipped_and_the_next_record_starts_fresh() {
    let server = FakeServer::start(vec![Reply::text("resumed fine")]);
    let nib = Nib::against(&server, Protocol::OpenAi);
    let exchange = bash_exchange("the old task", "call_old", "the old answer");
    let path = fixture(
        &nib,
        "7a7a7a7a-0000-4000-8000-000000000001",
        &exchange,
        Some(r#"{"ts":8,"type":"user","text":"half a rec"#),
    );
    let out = nib.run_with(["-c", "-p", "go on"]);
    assert_eq!(out.code(), 0, "{out}");
    assert!(
        out.stderr.contains("warning") && out.stderr.contains(":8:"),
        "the torn line is reported with its number\n{out}"
    );
    let req = &server.chat_requests()[0];
    let text = conversation_text(req);
    assert!(text.contains("the old task") && text.contains("the old answer"));
    assert!(!text.contains("half a rec"));
    assert_eq!(req.tool_results()[0].id, "call_old");

    let text = fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[7], r#"{"ts":8,"type":"user","text":"half a rec"#);
    let appended = parse_json_lines(&lines[8..].join("\n"));
    assert_eq!(kinds(&appended), ["user", "assistant", "end"]);
    assert_eq!(appended[0]["text"], "go on");
}

#[test]
fn malformed_line_in_the_middle_is_reported_and_later_records_kept() {
    let server = FakeServer::start(vec![Reply::text("ok")]);
    let nib = Nib::against(&server, Protocol::Anthropic);
    let mut lines = bash_exchange("task one", "toolu_1", "answer one");
    lines.insert(2, json!("not a record"));
    lines.push(json!({"ts": 9, "type": "user", "text": "task two"}));
    lines.push(json!({"ts": 10, "type": "assistant", "text": "answer two",
                      "stop": "end_turn", "model": "fake-model"}));
    fixture(&nib, "7b7b7b7b-0000-4000-8000-000000000002", &lines, None);
    let out = nib.run_with(["-r", "7b7b", "-p", "task three"]);
    assert_eq!(out.code(), 0, "{out}");
    assert!(out.stderr.contains(":4:"), "the bad line is named\n{out}");
    let req = &server.chat_requests()[0];
    let text = conversation_text(req);
    for kept in [
        "task one",
        "answer one",
        "task two",
        "answer two",
        "task three",
    ] {
        assert!(text.contains(kept), "{kept} missing from {text}");
    }
    assert_eq!(req.tool_results()[0].id, "toolu_1");
}

#[test]
fn resume_by_prefix_from_another_directory_headless() {
    let server = FakeServer::start(vec![Reply::text("first"), Reply::text("second")]);
    let nib = Nib::against(&server, Protocol::OpenAi);
    let id = session_of(&nib.run_with(["-p", "remember 1234", "--output-format", "json"]));

    let elsewhere = Nib::against(&server, Protocol::OpenAi).env("XDG_DATA_HOME", nib.data_home());
    let out = elsewhere.run_with([
        "-r",
        &id[..6],
        "-p",
        "what number?",
        "--output-format",
        "json",
    ]);
    assert_eq!(session_of(&out), id, "the same session goes on");
    assert_eq!(out.json()["result"], "second");
    let text = conversation_text(&server.chat_requests()[1]);
    assert!(
        text.contains("remember 1234") && text.contains("first"),
        "{text}"
    );
    let journal = only_journal(&nib);
    let users: Vec<Value> = records(&journal)
        .into_iter()
        .filter(|r| r["type"] == "user")
        .map(|r| r["text"].clone())
        .collect();
    assert_eq!(users, [json!("remember 1234"), json!("what number?")]);
}

#[test]
fn unknown_id_is_an_error() {
    let server = FakeServer::start(vec![]);
    let nib = Nib::against(&server, Protocol::OpenAi);
    let out = nib.run_with(["-r", "0badc0de", "-p", "hi"]);
    assert_eq!(out.code(), 1, "{out}");
    assert!(
        out.stderr.contains(&format!("{NOT_FOUND} 0badc0de")),
        "{out}"
    );
    assert!(server.requests().is_empty());
    assert!(nib.journal_files().is_empty());

    let out = nib.run_with(["-c", "-p", "hi"]);
    assert_eq!(out.code(), 1, "{out}");
    assert!(out.stderr.contains("no previous session"), "{out}");
}

#[test]
fn resume_without_an_id_headless_points_to_nib_sessions() {
    let server = FakeServer::start(vec![]);
    let out = Nib::against(&server, Protocol::OpenAi).run_with(["-r", "-p", "hi"]);
    assert_eq!(out.code(), 2, "{out}");
    assert!(out.stderr.contains("nib sessions"), "{out}");
    assert!(server.requests().is_empty());
}

#[test]
fn session_id_names_the_session_and_an_existing_one_is_refused() {
    let id = "0f0f0f0f-1111-4222-8333-444444444444";
    let server = FakeServer::start(vec![Reply::text("one")]);
    let nib = Nib::against(&server, Protocol::OpenAi);
    let out = nib.run_with(["--session-id", id, "-p", "hi", "--output-format", "json"]);
    assert_eq!(session_of(&out), id);
    let journal = only_journal(&nib);
    assert_eq!(journal.file_stem().unwrap(), id);
    let before = fs::read(&journal).unwrap();

    // From another directory too: ids are unique across all sessions.
    let elsewhere = Nib::against(&server, Protocol::OpenAi).env("XDG_DATA_HOME", nib.data_home());
    for again in [&nib, &elsewhere] {
        let out = again.run_with(["--session-id", id, "-p", "again"]);
        assert_eq!(out.code(), 1, "{out}");
        assert!(
            out.stderr.contains(id) && out.stderr.contains("already in use"),
            "{out}"
        );
    }
    assert_eq!(
        server.chat_requests().len(),
        1,
        "no request for a refused id"
    );
    assert_eq!(fs::read(&journal).unwrap(), before);

    for bad in ["../escape", "a/b", ""] {
        let out = nib.run_with(["--session-id", bad, "-p", "hi"]);
        assert_eq!(out.code(), 2, "{bad:?}\n{out}");
    }
    // A resumed session keeps its id; a new one needs --fork-session.
    let other = "0f0f0f0f-5555-4666-8777-888888888888";
    let out = nib.run_with(["-c", "--session-id", other, "-p", "hi"]);
    assert_eq!(out.code(), 2, "{out}");
    assert!(out.stderr.contains("--fork-session"), "{out}");
    assert_eq!(nib.journal_files().len(), 1, "nothing written outside");
}

#[test]
fn fork_session_leaves_the_original_untouched() {
    let server = FakeServer::start(vec![Reply::text("original"), Reply::text("forked")]);
    let nib = Nib::against(&server, Protocol::OpenAi);
    let id = session_of(&nib.run_with(["-p", "base task", "--output-format", "json"]));
    let original = only_journal(&nib);
    let before = fs::read(&original).unwrap();

    let out = nib.run_with([
        "-c",
        "--fork-session",
        "-p",
        "branch",
        "--output-format",
        "json",
    ]);
    let fork = session_of(&out);
    assert_ne!(fork, id);
    assert_eq!(
        fs::read(&original).unwrap(),
        before,
        "the original is untouched"
    );
    let text = conversation_text(&server.chat_requests()[1]);
    assert!(text.contains("base task") && text.contains("original"));

    let files = nib.journal_files();
    assert_eq!(files.len(), 2);
    let forked = files.iter().find(|f| **f != original).unwrap();
    let recs = records(forked);
    assert_eq!(recs[0]["id"], fork.as_str());
    assert_eq!(recs[0]["forked_from"], id.as_str());
    let users: Vec<&str> = recs
        .iter()
        .filter(|r| r["type"] == "user")
        .filter_map(|r| r["text"].as_str())
        .collect();
    assert_eq!(users, ["base task", "branch"]);
}

#[test]
fn no_session_persistence_writes_nothing() {
    let server = FakeServer::start(vec![Reply::text("a"), Reply::text("b")]);
    let nib = Nib::against(&server, Protocol::OpenAi);
    let out = nib.run_with(["--no-session-persistence", "-p", "hi"]);
    assert_eq!(out.code(), 0, "{out}");
    assert!(nib.journal_files().is_empty());
    assert!(!nib.data_home().join("nib").exists(), "not even a folder");

    let id = session_of(&nib.run_with(["-p", "kept", "--output-format", "json"]));
    let journal = only_journal(&nib);
    let before = fs::read(&journal).unwrap();
    let out = nib.run_with(["-r", &id, "--no-session-persistence", "-p", "not kept"]);
    assert_eq!(out.code(), 0, "{out}");
    assert!(conversation_text(&server.chat_requests()[2]).contains("kept"));
    assert_eq!(fs::read(&journal).unwrap(), before);
}

#[test]
fn two_resumes_at_once_the_second_is_refused() {
    let server = FakeServer::start(vec![
        Reply::text("first"),
        Reply::text("a slow answer to the resumed session").slow(500),
    ]);
    let nib = Nib::against(&server, Protocol::OpenAi);
    session_of(&nib.run_with(["-p", "start", "--output-format", "json"]));
    let journal = only_journal(&nib);

    let first = nib.spawn_with(["-c", "-p", "slow one"]);
    wait_until("the first resume to ask", || {
        server.chat_requests().len() >= 2
    });
    let second = nib.run_with(["-c", "-p", "fast one"]);
    assert_eq!(second.code(), 1, "{second}");
    assert!(
        second.stderr.contains("in use by another nib")
            && second.stderr.contains(&format!("pid {}", first.pid())),
        "{second}"
    );
    let first = first.wait(WAIT);
    assert_eq!(first.code(), 0, "{first}");
    assert_eq!(server.chat_requests().len(), 2, "the second never asked");
    let text = fs::read_to_string(&journal).unwrap();
    assert!(!text.contains("fast one"), "the refused run wrote nothing");
}

#[test]
fn sessions_listing_and_json_shape() {
    let server = FakeServer::start(vec![]);
    let nib = Nib::against(&server, Protocol::OpenAi);
    let older = session_of(&nib.run_with(["-p", "older task", "--output-format", "json"]));
    thread::sleep(Duration::from_millis(20));
    let newer = session_of(&nib.run_with(["-p", "newer\ntask", "--output-format", "json"]));
    let elsewhere = Nib::against(&server, Protocol::OpenAi).env("XDG_DATA_HOME", nib.data_home());
    session_of(&elsewhere.run_with(["-p", "other dir", "--output-format", "json"]));

    let out = nib.run_with(["sessions", "--json"]);
    assert_eq!(out.code(), 0, "{out}");
    let list = out.json();
    let list = list.as_array().expect("an array");
    let ids: Vec<&str> = list.iter().filter_map(|s| s["id"].as_str()).collect();
    assert_eq!(ids, [newer.as_str(), older.as_str()], "newest first");
    let s = &list[0];
    let cwd = fs::canonicalize(nib.work()).unwrap();
    assert_eq!(s["cwd"].as_str().map(PathBuf::from), Some(cwd));
    assert_eq!(s["model"], "fake-model");
    assert_eq!(s["provider"], "openai");
    assert_eq!(s["first_prompt"], "newer\ntask");
    assert_eq!(s["turns"], 1);
    assert!(
        s["started"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{s}"
    );
    assert!(s["age_secs"].is_u64() && s["cost_usd"].is_number(), "{s}");
    assert!(s["usage"]["input_tokens"].is_u64(), "{s}");

    let all = nib.run_with(["sessions", "--all", "--json"]).json();
    assert_eq!(all.as_array().map(Vec::len), Some(3), "{all}");

    let out = nib.run_with(["sessions"]);
    assert_eq!(out.code(), 0, "{out}");
    let rows: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert!(
        rows[0].starts_with(&newer[..8]) && rows[0].contains("newer"),
        "{out}"
    );
    assert!(
        rows[1].contains("older task") && rows[1].contains("fake-model"),
        "{out}"
    );
}

#[test]
fn journal_is_private() {
    let server = FakeServer::start(vec![]);
    let nib = Nib::against(&server, Protocol::OpenAi);
    session_of(&nib.run_with(["-p", "secret work", "--output-format", "json"]));
    let journal = only_journal(&nib);
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&journal), 0o600);
    assert_eq!(mode(journal.parent().unwrap()), 0o700);
    assert_eq!(mode(&nib.data_home().join("nib/sessions")), 0o700);
}

/// The request bodies of one protocol, in order.
fn requests_of(server: &FakeServer, p: Protocol) -> Vec<fake::Recorded> {
    let all = server.chat_requests();
    all.into_iter()
        .filter(|r| r.protocol() == Some(p))
        .collect()
}

/// Tool calls and results of a request pair up by id, in order.
fn assert_paired(req: &fake::Recorded, expected_calls: usize) {
    let calls = req.assistant_calls();
    let results = req.tool_results();
    assert_eq!(calls.len(), expected_calls, "{}", req.body);
    let call_ids: Vec<&str> = calls.iter().map(|c| c.id.as_str()).collect();
    let result_ids: Vec<&str> = results.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(call_ids, result_ids, "{}", req.body);
}

#[test]
fn a_session_moves_from_anthropic_to_openai_and_back() {
    let server = FakeServer::start(vec![
        Reply::tool_call("bash", json!({"command": "echo from-anthropic"})),
        Reply::text("anthropic answer"),
        // A local server in the middle: no ids, arguments as an object.
        Reply::tool_call("bash", json!({"command": "echo from-local"}))
            .without_ids()
            .args_as_object(),
        Reply::text("local answer"),
        Reply::text("back on anthropic"),
    ]);
    let nib = Nib::against(&server, Protocol::Anthropic);
    let out = nib.run_with(["-p", "first", "--yes"]);
    assert_eq!(out.stdout, "anthropic answer\n", "{out}");

    let openai = ["--provider", "openai", "--base-url", &server.base_v1()];
    let out = nib.run_with([&["-c", "-p", "second", "--yes"][..], &openai].concat());
    assert_eq!(out.stdout, "local answer\n", "{out}");
    let sent = requests_of(&server, Protocol::OpenAi);
    assert_eq!(sent.len(), 2);
    let messages = sent[0].body["messages"].as_array().unwrap().clone();
    let roles: Vec<&str> = messages.iter().filter_map(|m| m["role"].as_str()).collect();
    assert_eq!(
        roles,
        ["system", "user", "assistant", "tool", "assistant", "user"]
    );
    let call = &messages[2]["tool_calls"][0];
    assert_eq!(call["id"], "toolu_fake_1");
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "bash");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"command": "echo from-anthropic"}));
    assert_eq!(messages[3]["tool_call_id"], "toolu_fake_1");
    assert!(
        messages[3]["content"]
            .as_str()
            .is_some_and(|c| c.contains("from-anthropic")),
        "{}",
        messages[3]
    );
    assert_eq!(messages[4]["content"], "anthropic answer");
    assert_paired(&sent[1], 2);

    let out = nib.run_with(["-c", "-p", "third"]);
    assert_eq!(out.stdout, "back on anthropic\n", "{out}");
    let back = requests_of(&server, Protocol::Anthropic).pop().unwrap();
    assert_paired(&back, 2);
    let ids: Vec<String> = back.assistant_calls().into_iter().map(|c| c.id).collect();
    let valid = |id: &str| {
        !id.is_empty()
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    assert!(ids.iter().all(|id| valid(id)), "{ids:?}");
    assert_ne!(ids[0], ids[1]);
    let results = back.tool_results();
    assert!(results[1].content.contains("from-local"), "{results:?}");
    let text = conversation_text(&back);
    for kept in [
        "first",
        "anthropic answer",
        "second",
        "local answer",
        "third",
    ] {
        assert!(text.contains(kept), "{kept} missing");
    }
    assert_eq!(
        only_journal(&nib),
        nib.journal_files()[0],
        "one session throughout"
    );
}

#[test]
fn undo_restores_files_and_refuses_one_changed_since() {
    let server = FakeServer::start(vec![
        Reply::tool_call("write", json!({"path": "new.txt", "content": "created\n"})),
        Reply::tool_call("read", json!({"path": "old.txt"})),
        Reply::tool_call(
            "edit",
            json!({"path": "old.txt", "old": "original", "new": "edited"}),
        ),
        Reply::text("two changes"),
    ]);
    let nib = Nib::against(&server, Protocol::OpenAi);
    nib.put("old.txt", "original line\n");
    let out = nib.run_with(["-p", "change things", "--yes"]);
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(nib.read("old.txt").as_deref(), Some("edited line\n"));
    let journal = records(&only_journal(&nib));
    let changes: Vec<Value> = journal
        .iter()
        .filter(|r| r["type"] == "change")
        .map(|r| r["change"].clone())
        .collect();
    assert_eq!(
        changes.len(),
        2,
        "every write and edit journals what it replaced"
    );
    assert_eq!(changes[0]["before"], Value::Null);
    assert_eq!(
        changes[1]["before"]["text"], "original",
        "only what differs is kept"
    );
    let change = journal.iter().position(|r| r["type"] == "change");
    let written = journal
        .iter()
        .position(|r| r["type"] == "tool_result" && r["name"] == "write");
    assert!(
        change.is_some() && change < written,
        "the change is journaled before the file is touched"
    );

    let out = nib.run_with(["undo"]);
    assert_eq!(out.code(), 0, "{out}");
    assert!(
        out.stdout.contains("restored") && out.stdout.contains("old.txt"),
        "{out}"
    );
    assert_eq!(nib.read("old.txt").as_deref(), Some("original line\n"));
    assert_eq!(nib.read("new.txt").as_deref(), Some("created\n"));

    let out = nib.run_with(["undo"]);
    assert_eq!(out.code(), 0, "{out}");
    assert!(out.stdout.contains("removed"), "{out}");
    assert_eq!(nib.read("new.txt"), None);

    let out = nib.run_with(["undo"]);
    assert_eq!(out.code(), 1, "{out}");
    assert!(out.stderr.contains("nothing to undo"), "{out}");
}

#[test]
fn undo_of_several_and_refusal_of_a_changed_file() {
    let server = FakeServer::start(vec![
        Reply::calls(vec![
            call("read", json!({"path": "a.txt"})),
            call("read", json!({"path": "b.txt"})),
        ]),
        Reply::tool_call("write", json!({"path": "a.txt", "content": "a2\n"})),
        Reply::tool_call("write", json!({"path": "b.txt", "content": "b2\n"})),
        Reply::text("done"),
    ]);
    let nib = Nib::against(&server, Protocol::OpenAi);
    nib.put("a.txt", "a1\n");
    nib.put("b.txt", "b1\n");
    assert_eq!(nib.run_with(["-p", "write both", "--yes"]).code(), 0);

    nib.put("b.txt", "b3 by hand\n");
    let out = nib.run_with(["undo", "2"]);
    assert_eq!(out.code(), 1, "{out}");
    assert!(
        out.stderr.contains("b.txt") && out.stderr.contains("changed since nib wrote it"),
        "{out}"
    );
    assert_eq!(nib.read("b.txt").as_deref(), Some("b3 by hand\n"));
    assert_eq!(
        nib.read("a.txt").as_deref(),
        Some("a2\n"),
        "nothing older undone"
    );

    nib.put("b.txt", "b2\n");
    let out = nib.run_with(["undo", "2"]);
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(nib.read("a.txt").as_deref(), Some("a1\n"));
    assert_eq!(nib.read("b.txt").as_deref(), Some("b1\n"));
}

/// A session begun on Anthropic (the fake) continues on the real local model: the
/// server accepts the history with its tool call and result (no 400).
#[test]
#[ignore = "needs a real local model: NIB_TEST_LLM_URL (scripts/test sets it)"]
fn anthropic_session_continues_on_the_real_local_model() {
    let url = std::env::var("NIB_TEST_LLM_URL").expect("NIB_TEST_LLM_URL");
    let server = FakeServer::start(vec![
        Reply::tool_call("bash", json!({"command": "echo 42"})),
        Reply::text("The command printed 42."),
    ]);
    let nib = Nib::against(&server, Protocol::Anthropic).timeout(300);
    assert_eq!(nib.run_with(["-p", "run echo 42", "--yes"]).code(), 0);
    let model = first_model(&url);
    let out = nib.run_with([
        "-c",
        "-p",
        "What number did the command print? Answer in one word.",
        "--provider",
        "openai",
        "--base-url",
        &url,
        "--model",
        &model,
        "--max-turns",
        "2",
        "--output-format",
        "json",
        "--permission-mode",
        "dontAsk",
    ]);
    let v = out.json();
    let subtype = v["subtype"].as_str().unwrap_or("");
    assert!(
        ["success", "error_max_turns"].contains(&subtype),
        "the real server took the history (no 400)\n{out}"
    );
}

/// The first model the server lists, read with a plain HTTP/1.0 request on loopback.
fn first_model(base_v1: &str) -> String {
    use std::io::{Read, Write};
    let rest = base_v1.trim_start_matches("http://");
    let (host, path) = rest.split_once('/').unwrap_or((rest, "v1"));
    let mut stream = std::net::TcpStream::connect(host).expect("the local model runs");
    write!(
        stream,
        "GET /{path}/models HTTP/1.0\r\nHost: {host}\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let v: Value = serde_json::from_str(body).expect("models JSON");
    v["data"][0]["id"].as_str().expect("a model id").to_string()
}

/// Two directories whose paths differ only in punctuation (`proj.v2`, `proj_v2`) keep
/// their sessions apart: `nib undo` and `nib -c` in one never touch the other's.
#[test]
fn sessions_of_look_alike_directories_stay_apart() {
    let server = FakeServer::start(vec![
        Reply::tool_call("read", json!({"path": "a.txt"})),
        Reply::tool_call("write", json!({"path": "a.txt", "content": "by dot\n"})),
        Reply::text("dot done"),
        Reply::tool_call("read", json!({"path": "a.txt"})),
        Reply::tool_call(
            "write",
            json!({"path": "a.txt", "content": "by underscore\n"}),
        ),
        Reply::text("underscore done"),
        Reply::text("dot resumed"),
        Reply::text("underscore resumed"),
    ]);
    let nib = Nib::against(&server, Protocol::OpenAi);
    nib.put("proj.v2/a.txt", "dot original\n");
    nib.put("proj_v2/a.txt", "underscore original\n");
    let out = nib.run_in("proj.v2", ["-p", "task in dot", "--yes"]);
    assert_eq!(out.code(), 0, "{out}");
    let out = nib.run_in("proj_v2", ["-p", "task in underscore", "--yes"]);
    assert_eq!(out.code(), 0, "{out}");

    // proj.v2's session is the older one: undo there reverts its own file only.
    let out = nib.run_in("proj.v2", ["undo"]);
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(nib.read("proj.v2/a.txt").as_deref(), Some("dot original\n"));
    assert_eq!(
        nib.read("proj_v2/a.txt").as_deref(),
        Some("by underscore\n")
    );
    let out = nib.run_in("proj.v2", ["-c", "-p", "next in dot"]);
    assert_eq!(
        (out.code(), out.stdout.as_str()),
        (0, "dot resumed\n"),
        "{out}"
    );
    let text = conversation_text(server.chat_requests().last().unwrap());
    assert!(text.contains("task in dot"), "{text}");
    assert!(!text.contains("task in underscore"), "{text}");

    // The control: in proj_v2 the same commands act on proj_v2's session.
    let out = nib.run_in("proj_v2", ["undo"]);
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(
        nib.read("proj_v2/a.txt").as_deref(),
        Some("underscore original\n")
    );
    let out = nib.run_in("proj_v2", ["-c", "-p", "next in underscore"]);
    assert_eq!(out.code(), 0, "{out}");
    let text = conversation_text(server.chat_requests().last().unwrap());
    assert!(text.contains("task in underscore"), "{text}");
    assert!(!text.contains("task in dot"), "{text}");
    let work = fs::canonicalize(nib.work()).unwrap();
    for dir in ["proj.v2", "proj_v2"] {
        let journals = fs::read_dir(folder_of(&nib, &work.join(dir))).unwrap();
        assert_eq!(
            journals
                .filter(|e| e
                    .as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "jsonl"))
                .count(),
            1,
            "{dir}"
        );
    }
}

/// Journals an older nib wrote to the folder `proj.v2` and `proj_v2` shared (the slug
/// alone) resume and undo where their `meta.cwd` says, and nowhere else.
#[test]
fn journals_in_the_old_shared_folder_count_only_in_their_directory() {
    let server = FakeServer::start(vec![Reply::text("resumed")]);
    let nib = Nib::against(&server, Protocol::OpenAi);
    fs::create_dir_all(nib.work().join("proj.v2")).unwrap();
    let dot = fs::canonicalize(nib.work().join("proj.v2")).unwrap();
    let shared = nib.data_home().join("nib/sessions").join(slug(&dot));
    let lines = bash_exchange("old task in dot", "call_1", "old answer");
    fixture_in(&shared, &dot, "0ld-d0t", &lines, None);

    let out = nib.run_in("proj_v2", ["-c", "-p", "next"]);
    assert_eq!(out.code(), 1, "{out}");
    assert!(
        out.stderr.contains("no previous session in this directory"),
        "{out}"
    );
    let out = nib.run_in("proj_v2", ["undo"]);
    assert_eq!(out.code(), 1, "{out}");
    assert!(out.stderr.contains("no session in this directory"), "{out}");
    let out = nib.run_in("proj_v2", ["sessions"]);
    assert!(!out.stdout.contains("0ld-d0t"), "{out}");
    assert!(server.chat_requests().is_empty());

    // The control: in proj.v2 the old journal is found and continued where it is.
    let out = nib.run_in("proj.v2", ["sessions"]);
    assert!(out.stdout.contains("0ld-d0t"), "{out}");
    let out = nib.run_in("proj.v2", ["-c", "-p", "next", "--output-format", "json"]);
    assert_eq!(session_of(&out), "0ld-d0t");
    let text = conversation_text(&server.chat_requests()[0]);
    assert!(text.contains("old task in dot"), "{text}");
    assert_eq!(nib.journal_files(), [shared.join("0ld-d0t.jsonl")]);
}
