//! The command line end to end: subcommands parse strictly (`--help` helps, a stray
//! argument is a usage error, nothing acts), arguments that are not UTF-8, stdin read
//! to its end however slow and refused beyond its limit, failures named by their cause
//! and reported as one JSON result with `--output-format json`, refusals on stderr,
//! and `undo` / `-c` skipping sessions that did nothing.

use crate::support::*;
use serde_json::{Value, json};
use std::time::Duration;

/// Every subcommand: `--help` prints its usage and exits 0; a bad argument exits 2
/// with the usage, and neither acts.
#[test]
fn subcommands_help_and_refuse_bad_arguments() {
    let server = FakeServer::start(vec![
        Reply::tool_call("read", json!({"path": "f.txt"})),
        Reply::tool_call("write", json!({"path": "f.txt", "content": "changed\n"})),
    ]);
    let nib = Nib::against(&server, Protocol::OpenAi);
    nib.put("f.txt", "original\n");
    server.push(Reply::text("done"));
    assert_eq!(nib.run_with(["-p", "change f", "--yes"]).code(), 0);
    assert_eq!(nib.read("f.txt").as_deref(), Some("changed\n"));
    for (words, usage) in [
        (&["undo", "--help"][..], "Usage: nib undo [N]"),
        (&["undo", "-h"], "Usage: nib undo [N]"),
        (&["sessions", "--help"], "Usage: nib sessions"),
        (&["--help"], "Usage: nib [options]"),
    ] {
        let out = nib.run_with(words);
        assert_eq!(out.code(), 0, "{words:?}: {out}");
        assert!(out.stdout.contains(usage), "{words:?}: {out}");
        assert_eq!(
            nib.read("f.txt").as_deref(),
            Some("changed\n"),
            "{words:?} acted"
        );
    }
    for (words, usage) in [
        (&["undo", "1", "8abb4126"][..], "usage: nib undo [N]"),
        (&["undo", "x"], "usage: nib undo [N]"),
        (&["undo", "--bogus"], "usage: nib undo [N]"),
        (&["sessions", "--bogus"], "usage: nib sessions"),
        (&["sessions", "all"], "usage: nib sessions"),
        (&["--bogus"], "unknown option --bogus"),
    ] {
        let out = nib.run_with(words);
        assert_eq!(out.code(), 2, "{words:?}: {out}");
        assert!(out.stderr.contains(usage), "{words:?}: {out}");
        assert_eq!(
            nib.read("f.txt").as_deref(),
            Some("changed\n"),
            "{words:?} acted"
        );
    }
    assert_eq!(
        server.chat_requests().len(),
        3,
        "no prompt reached the model"
    );
    // The control: plain `nib undo` does revert.
    let out = nib.run_with(["undo"]);
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(nib.read("f.txt").as_deref(), Some("original\n"));
}

#[test]
fn an_argument_that_is_not_utf8_is_a_usage_error() {
    use std::os::unix::ffi::OsStringExt;
    let server = FakeServer::start(vec![Reply::text("fine")]);
    let nib = Nib::against(&server, Protocol::OpenAi);
    let bad = std::ffi::OsString::from_vec(b"caf\xe9".to_vec());
    let out = nib.run_with([std::ffi::OsString::from("-p"), bad]);
    assert_eq!(out.code(), 2, "{out}");
    assert!(out.stderr.contains("not valid UTF-8"), "{out}");
    assert!(server.chat_requests().is_empty());
    // The control: the same word in UTF-8 runs.
    assert_eq!(nib.run_with(["-p", "café"]).code(), 0);
}

#[test]
fn slow_stdin_is_read_to_its_end() {
    let server = FakeServer::start(vec![Reply::text("explained")]);
    let nib = Nib::against(&server, Protocol::OpenAi);
    let bin = env!("CARGO_BIN_EXE_nib");
    let bin = std::env::var("NIB_BIN").unwrap_or(bin.to_string());
    let script = format!(
        "(sleep 4; echo the-build-log) | {bin} --base-url {} --model fake-model -p explain",
        server.base_v1()
    );
    let out = Nib::new()
        .program("/bin/sh")
        .args(["-c", &script])
        .timeout(20)
        .run();
    assert_eq!(out.code(), 0, "{out}");
    assert!(out.stderr.contains("reading stdin…"), "{out}");
    let sent = server.chat_requests()[0].last_user_text();
    assert_eq!(sent, "explain\nthe-build-log\n");
    drop(nib);
}

#[test]
fn stdin_beyond_the_limit_is_refused() {
    let server = FakeServer::start(vec![Reply::text("fine")]);
    let nib = Nib::against(&server, Protocol::OpenAi);
    let huge = vec![b'x'; 8 * 1024 * 1024 + 1];
    let out = nib.stdin(huge).run_with(["-p", "summarize"]);
    assert_eq!(out.code(), 2, "{out}");
    assert!(out.stderr.contains("more than 8 MiB"), "{out}");
    assert!(server.chat_requests().is_empty());
    // The control: at the limit, it runs.
    let at_limit = vec![b'x'; 8 * 1024 * 1024];
    let nib = Nib::against(&server, Protocol::OpenAi).stdin(at_limit);
    let out = nib.run_with(["-p", "summarize"]);
    assert_eq!(out.code(), 0, "{out}");
}

#[test]
fn a_closed_port_is_named_and_json_always_gets_a_result() {
    let nib = Nib::new().args(["--base-url", "http://127.0.0.1:1/v1", "-p", "hi"]);
    let out = nib.run();
    assert_eq!(out.code(), 1, "{out}");
    assert!(
        out.stderr
            .contains("nothing listens on 127.0.0.1:1: connection refused"),
        "{out}"
    );
    assert_eq!(out.stdout, "");
    let out = nib.run_with(["--output-format", "json"]);
    assert_eq!(out.code(), 1, "{out}");
    let result = out.json();
    assert_eq!(result["type"], "result");
    assert_eq!(result["is_error"], true);
    assert!(
        result["errors"][0]
            .as_str()
            .is_some_and(|e| e.contains("connection refused")),
        "{result}"
    );
    // The same result object as a task's, with nothing done and no session.
    assert_eq!(result["subtype"], "error_during_execution", "{result}");
    assert!(result["session_id"].is_null(), "{result}");
    assert!(result["stop_reason"].is_null(), "{result}");
    assert_eq!(result["num_turns"], 0, "{result}");
    assert_eq!(result["total_cost_usd"], 0.0, "{result}");
    assert_eq!(result["result"], "", "{result}");
    assert_eq!(result["usage"]["input_tokens"], 0, "{result}");
    assert!(
        result["permission_denials"]
            .as_array()
            .is_some_and(Vec::is_empty),
        "{result}"
    );
    // Usage errors too, in either JSON format.
    for format in ["json", "stream-json"] {
        let out = Nib::new().run_with(["-p", "x", "--output-format", format, "--max-turns", "0"]);
        assert_eq!(out.code(), 2, "{out}");
        let lines = out.lines();
        assert_eq!(lines.len(), 1, "{out}");
        assert_eq!(lines[0]["is_error"], true, "{out}");
    }
    // Text output keeps stdout empty.
    let out = Nib::new().run_with(["-p", "x", "--max-turns", "0"]);
    assert_eq!((out.code(), out.stdout.as_str()), (2, ""), "{out}");
}

#[test]
fn refusals_are_on_stderr_without_verbose() {
    let server = FakeServer::start(vec![
        Reply::calls(vec![
            call("bash", json!({"command": "curl http://example.com"})),
            call("bash", json!({"command": "touch asked.txt"})),
            call("nosuchtool", json!({})),
            crate::support::fake::Call::raw("bash", "{not json"),
        ]),
        Reply::text("ok"),
    ]);
    let nib = Nib::against(&server, Protocol::OpenAi).args([
        "-p",
        "go",
        "--disallowedTools",
        "Bash(curl *)",
    ]);
    let out = nib.run();
    assert_eq!(out.code(), 0, "{out}");
    let lines: Vec<&str> = out.stderr.lines().filter(|l| l.starts_with('✗')).collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(
        lines[0].contains("curl http://example.com · refused:")
            && lines[0].contains("Bash(curl *)")
    );
    assert!(
        lines[1].contains("touch asked.txt · refused:") && lines[1].contains("nobody can approve")
    );
    assert!(lines[2].contains("nosuchtool · refused: unknown tool"));
    assert!(lines[3].starts_with("✗ bash · refused:"), "{out}");
    // The control: allowed, the same call runs and nothing is refused.
    server.push(Reply::tool_call(
        "bash",
        json!({"command": "touch asked.txt"}),
    ));
    server.push(Reply::text("ok"));
    let out = Nib::against(&server, Protocol::OpenAi)
        .args(["-p", "go", "--allowedTools", "Bash(touch *)"])
        .run();
    assert!(!out.stderr.contains('✗'), "{out}");
}

#[test]
fn model_text_on_stderr_is_made_visible_and_the_answer_stays_exact() {
    let answer = "done \x1b]0;pwned\x07 here";
    let server = FakeServer::start(vec![
        Reply::tool_call("bash", json!({"command": "printf '\x1b[2J'; rm -rf x"})),
        Reply::text(answer),
    ]);
    let out = Nib::against(&server, Protocol::OpenAi)
        .args(["-p", "go"])
        .run();
    assert_eq!(out.code(), 0, "{out}");
    assert!(
        !out.stderr.contains('\x1b'),
        "raw escape on stderr: {out:?}"
    );
    assert!(out.stderr.contains("printf '^[[2J'"), "{out}");
    assert_eq!(
        out.stdout,
        format!("{answer}\n"),
        "the answer is byte-exact"
    );
}

#[test]
fn undo_and_continue_skip_sessions_that_did_nothing() {
    let server = FakeServer::start(vec![
        Reply::tool_call("read", json!({"path": "f.txt"})),
        Reply::tool_call("write", json!({"path": "f.txt", "content": "new\n"})),
        Reply::text("wrote"),
        Reply::text("just talked"),
        Reply::text("continued"),
    ]);
    let nib = Nib::against(&server, Protocol::OpenAi);
    nib.put("f.txt", "old\n");
    let first = nib.run_with(["-p", "write it", "--yes", "--output-format", "json"]);
    let first_id = first.json()["session_id"].as_str().unwrap().to_string();
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(nib.run_with(["-p", "only talk"]).code(), 0);
    // A later session that changed no file: undo looks back to the one that did.
    let out = nib.run_with(["undo"]);
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(nib.read("f.txt").as_deref(), Some("old\n"));
    // An empty journal (as older versions left) is not what -c continues.
    let dir = nib.journal_files()[0].parent().unwrap().to_path_buf();
    let empty = dir.join("empty-session.jsonl");
    let cwd = std::fs::canonicalize(nib.work()).unwrap();
    let meta = json!({"ts": 0, "type": "meta", "id": "empty-session", "cwd": cwd,
        "model": "fake-model", "provider": "openai", "nib": "0", "started": "2026-12-01T00:00:00Z",
        "format": 1});
    std::fs::write(&empty, format!("{meta}\n")).unwrap();
    let out = nib.run_with(["-c", "-p", "go on", "--output-format", "json"]);
    assert_eq!(out.code(), 0, "{out}");
    let resumed: Value = out.json();
    assert_ne!(resumed["session_id"], "empty-session", "{out}");
    let listed = nib.run_with(["sessions", "--json"]).json();
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert!(!ids.contains(&"empty-session") && ids.len() == 2, "{ids:?}");
    // The undo wrote to the first session last: it is the one continued.
    assert_eq!(resumed["session_id"], first_id.as_str(), "{out}");
}

/// `--help` is printed from the table the parser reads: every spelling it lists works,
/// `-m` included, and one it does not list is refused.
#[test]
fn every_option_in_help_is_one_the_parser_takes() {
    let server = FakeServer::start(vec![Reply::text("one"), Reply::text("two")]);
    let nib = Nib::against(&server, Protocol::OpenAi);
    let help = nib.run_with(["--help"]);
    assert_eq!(help.code(), 0, "{help}");
    for spelling in [
        "-m, --model NAME",
        "-y, --yes",
        "--allowed-tools",
        "glob,skill",
    ] {
        assert!(help.stdout.contains(spelling), "{spelling}: {help}");
    }
    assert_eq!(nib.run_with(["-p", "hi", "-m", "short-name"]).code(), 0);
    assert_eq!(server.chat_requests()[0].body["model"], "short-name");
    // The control: the long spelling does the same, and a spelling not in the help is refused.
    assert_eq!(nib.run_with(["-p", "hi", "--model", "long-name"]).code(), 0);
    assert_eq!(server.chat_requests()[1].body["model"], "long-name");
    let out = nib.run_with(["-p", "hi", "-M", "x"]);
    assert_eq!(out.code(), 2, "{out}");
    assert!(out.stderr.contains("unknown option -M"), "{out}");
    let out = nib.run_with(["-p", "hi", "--tools", "web"]);
    assert_eq!(out.code(), 2, "{out}");
    assert!(
        out.stderr.contains("skill"),
        "the error names every tool: {out}"
    );
}
