//! Headless mode (`-p`): the three output formats and their exit codes, usage errors,
//! stdin, `-o FILE`, `--max-turns`, and the rule that nothing ever waits for a human:
//! what would ask is denied, the model is told, and the denial is listed.

use crate::support::*;
use serde_json::{Value, json};
use std::time::Duration;

/// The message Claude Code prints when `-p` gets no input at all.
const NO_INPUT: &str =
    "Error: Input must be provided either through stdin or as a prompt argument when using --print";

/// A bash call that leaves a marker file, then a closing answer.
fn marker_script(command: &str) -> Vec<Reply> {
    vec![
        Reply::tool_call("bash", json!({"command": command})),
        Reply::text("Finished."),
    ]
}

fn json_run(server: &FakeServer, extra: &[&str]) -> (Nib, Output) {
    let nib = Nib::against(server, Protocol::OpenAi)
        .args(["-p", "do the task", "--output-format", "json"])
        .args(extra);
    let out = nib.run();
    (nib, out)
}

/// A content field as text: a string, or its text parts joined.
fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect(),
        _ => String::new(),
    }
}

#[test]
fn text_output_is_the_answer_only() {
    let server = FakeServer::start(vec![Reply::text("The answer is 42.")]);
    let out = Nib::against(&server, Protocol::OpenAi)
        .args(["-p", "question"])
        .run();
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(out.stdout, "The answer is 42.\n");
}

#[test]
fn json_output_shape() {
    let server = FakeServer::start(vec![Reply::text("The answer is 42.")]);
    let (_nib, out) = json_run(&server, &[]);
    assert_eq!(out.code(), 0, "{out}");
    let v = out.json();
    assert_eq!(v["type"], "result");
    assert_eq!(v["subtype"], "success");
    assert_eq!(v["is_error"], false);
    assert_eq!(v["result"], "The answer is 42.");
    assert_eq!(v["num_turns"], 1);
    assert_eq!(v["stop_reason"], "end_turn");
    assert!(
        v["session_id"].as_str().is_some_and(|s| !s.is_empty()),
        "{v}"
    );
    assert!(
        v["duration_ms"].is_u64() && v["duration_api_ms"].is_u64(),
        "{v}"
    );
    assert!(v["total_cost_usd"].is_number(), "{v}");
    for key in [
        "input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
    ] {
        assert!(v["usage"][key].is_u64(), "usage.{key}: {v}");
    }
    assert_eq!(v["permission_denials"], json!([]));
}

#[test]
fn stream_json_shape() {
    let server = FakeServer::start(vec![
        Reply::tool_call("bash", json!({"command": "echo hi"})).with_text("Checking."),
        Reply::text("All done."),
    ]);
    let nib = Nib::against(&server, Protocol::OpenAi).args([
        "-p",
        "do it",
        "--yes",
        "--output-format",
        "stream-json",
    ]);
    let out = nib.run();
    assert_eq!(out.code(), 0, "{out}");
    let lines = out.lines();
    assert!(lines.len() >= 4, "{out}");

    let init = &lines[0];
    assert_eq!(
        (init["type"].as_str(), init["subtype"].as_str()),
        (Some("system"), Some("init"))
    );
    let session = init["session_id"].as_str().expect("init has a session_id");
    assert!(!session.is_empty());
    let cwd = std::fs::canonicalize(nib.work()).unwrap();
    assert_eq!(
        init["cwd"].as_str().map(std::path::PathBuf::from),
        Some(cwd)
    );
    assert_eq!(init["model"], "fake-model");
    assert!(
        init["tools"].as_array().is_some_and(|t| !t.is_empty()),
        "{init}"
    );

    for line in &lines {
        let kind = line["type"].as_str().unwrap_or("");
        assert!(
            ["system", "assistant", "user", "result"].contains(&kind),
            "{line}"
        );
    }
    let blocks = |kind: &str| -> Vec<Value> {
        let of_kind = lines.iter().filter(|l| l["type"] == kind);
        of_kind
            .flat_map(|l| {
                l["message"]["content"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .collect()
    };
    let tool_use = blocks("assistant")
        .into_iter()
        .find(|b| b["type"] == "tool_use")
        .expect("a tool_use line");
    assert_eq!(
        (tool_use["id"].as_str(), tool_use["name"].as_str()),
        (Some("call_fake_1"), Some("bash"))
    );
    let result = blocks("user")
        .into_iter()
        .find(|b| b["type"] == "tool_result")
        .expect("a tool_result line");
    assert_eq!(result["tool_use_id"], "call_fake_1");
    assert!(
        text_of(&result["content"]).starts_with("exit status: 0"),
        "{result}"
    );

    let last = lines.last().unwrap();
    assert_eq!(
        (last["type"].as_str(), last["subtype"].as_str()),
        (Some("result"), Some("success"))
    );
    assert_eq!(last["result"], "All done.");
    assert_eq!(last["session_id"], session);
    assert_eq!(last["num_turns"], 2);
}

#[test]
fn no_prompt_is_an_error() {
    let server = FakeServer::start(vec![]);
    let out = Nib::against(&server, Protocol::OpenAi).arg("-p").run();
    assert_eq!(out.code(), 1, "{out}");
    assert!(out.stderr.contains(NO_INPUT), "{out}");
    assert_eq!(out.stdout, "");
    assert!(server.requests().is_empty());
}

#[test]
fn bad_flags_exit_2_before_any_request() {
    let cases: [&[&str]; 4] = [
        &["--no-such-flag"],
        &["--output-format", "yaml"],
        &["--max-turns", "lots"],
        &["--provider", "gemini"],
    ];
    for case in cases {
        let server = FakeServer::start(vec![]);
        let out = Nib::against(&server, Protocol::OpenAi)
            .args(["-p", "hi"])
            .args(case)
            .run();
        assert_eq!(out.code(), 2, "{case:?}\n{out}");
        assert!(
            !out.stderr.trim().is_empty(),
            "{case:?}: the usage error is explained"
        );
        assert_eq!(out.stdout, "", "{case:?}");
        assert!(server.requests().is_empty(), "{case:?}: no request made");
    }
}

#[test]
fn stdin_is_appended_to_the_prompt() {
    let server = FakeServer::start(vec![Reply::text("Summary.")]);
    let out = Nib::against(&server, Protocol::OpenAi)
        .args(["-p", "Summarize this:"])
        .stdin("line one\nline two\n")
        .run();
    assert_eq!(out.code(), 0, "{out}");
    let text = server.chat_requests()[0].last_user_text();
    assert!(
        text.contains("Summarize this:\nline one\nline two"),
        "{text:?}"
    );
}

#[test]
fn stdin_alone_is_the_prompt() {
    let server = FakeServer::start(vec![Reply::text("Summary.")]);
    let out = Nib::against(&server, Protocol::OpenAi)
        .arg("-p")
        .stdin("only from stdin")
        .run();
    assert_eq!(out.code(), 0, "{out}");
    assert!(
        server.chat_requests()[0]
            .last_user_text()
            .contains("only from stdin")
    );
}

#[test]
fn output_last_message_to_file() {
    let server = FakeServer::start(vec![Reply::text("Written answer.")]);
    let nib = Nib::against(&server, Protocol::OpenAi).args(["-p", "hi", "-o", "last.txt"]);
    let out = nib.run();
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(out.stdout, "Written answer.\n");
    assert_eq!(
        nib.read("last.txt").as_deref().map(str::trim_end),
        Some("Written answer.")
    );
}

#[test]
fn max_turns_stops_a_looping_model() {
    let looping = (0..5)
        .map(|_| Reply::tool_call("bash", json!({"command": "true"})))
        .collect();
    let server = FakeServer::start(looping);
    let (_nib, out) = json_run(&server, &["--max-turns", "2", "--yes"]);
    assert_eq!(out.code(), 1, "{out}");
    let v = out.json();
    assert_eq!(v["subtype"], "error_max_turns");
    assert_eq!(v["is_error"], true);
    assert!(v["errors"].as_array().is_some_and(|e| !e.is_empty()), "{v}");
    assert_eq!(server.chat_requests().len(), 2);
}

#[test]
fn denied_command_never_runs_and_is_listed() {
    let server = FakeServer::start(marker_script("touch ran.txt"));
    let (nib, out) = json_run(&server, &[]);
    assert!(
        !nib.work().join("ran.txt").exists(),
        "a command that would ask is denied\n{out}"
    );
    assert_eq!(out.code(), 0, "{out}");
    let v = out.json();
    assert_eq!(v["result"], "Finished.");
    let denials = v["permission_denials"]
        .as_array()
        .expect("permission_denials");
    assert_eq!(denials.len(), 1, "{v}");
    let d = &denials[0];
    assert!(
        d["tool_name"]
            .as_str()
            .is_some_and(|n| n.eq_ignore_ascii_case("bash")),
        "{d}"
    );
    assert_eq!(d["tool_use_id"], "call_fake_1");
    assert_eq!(d["tool_input"]["command"], "touch ran.txt");

    let results = server.chat_requests()[1].tool_results();
    assert_eq!(results[0].id, "call_fake_1");
    assert!(
        results[0].content.to_lowercase().contains("denied"),
        "the model is told: {results:?}"
    );
    assert!(!results[0].content.starts_with("exit status"));
}

#[test]
fn denied_write_never_happens() {
    let server = FakeServer::start(vec![
        Reply::tool_call("write", json!({"path": "new.txt", "content": "x"})),
        Reply::text("Finished."),
    ]);
    let (nib, out) = json_run(&server, &[]);
    assert!(!nib.work().join("new.txt").exists(), "{out}");
    let v = out.json();
    assert_eq!(
        v["permission_denials"].as_array().map(Vec::len),
        Some(1),
        "{v}"
    );
}

#[test]
fn yes_and_skip_permissions_run_commands() {
    for flag in ["--yes", "--dangerously-skip-permissions"] {
        let server = FakeServer::start(marker_script("touch ran.txt"));
        let (nib, out) = json_run(&server, &[flag]);
        assert_eq!(out.code(), 0, "{flag}\n{out}");
        assert!(
            nib.work().join("ran.txt").exists(),
            "{flag} runs the command"
        );
        assert_eq!(out.json()["permission_denials"], json!([]), "{flag}");
        let results = server.chat_requests()[1].tool_results();
        assert!(
            results[0].content.starts_with("exit status: 0"),
            "{flag}: {results:?}"
        );
    }
}

#[test]
fn allowed_tools_rule_lets_matching_commands_run() {
    let server = FakeServer::start(vec![
        Reply::calls(vec![
            call("bash", json!({"command": "touch ran.txt"})),
            call("bash", json!({"command": "echo hi > other.txt"})),
        ]),
        Reply::text("Finished."),
    ]);
    let (nib, out) = json_run(&server, &["--allowedTools", "Bash(touch *)"]);
    assert_eq!(out.code(), 0, "{out}");
    assert!(
        nib.work().join("ran.txt").exists(),
        "the allowed command ran\n{out}"
    );
    assert!(
        !nib.work().join("other.txt").exists(),
        "the other one did not"
    );
    let denials = out.json()["permission_denials"].clone();
    assert_eq!(denials.as_array().map(Vec::len), Some(1), "{denials}");
    assert_eq!(denials[0]["tool_input"]["command"], "echo hi > other.txt");
}

#[test]
fn disallowed_tools_beat_yes() {
    let server = FakeServer::start(marker_script("touch ran.txt"));
    let (nib, out) = json_run(&server, &["--yes", "--disallowedTools", "Bash"]);
    assert!(!nib.work().join("ran.txt").exists(), "{out}");
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(
        out.json()["result"],
        "Finished.",
        "the run went on without the tool"
    );
    assert_eq!(server.chat_requests().len(), 2, "the model was told");
}

#[test]
fn reading_the_workspace_needs_no_permission() {
    let server = FakeServer::start(vec![
        Reply::tool_call("read", json!({"path": "notes.txt"})),
        Reply::text("Read it."),
    ]);
    let nib =
        Nib::against(&server, Protocol::OpenAi).args(["-p", "read", "--output-format", "json"]);
    nib.put("notes.txt", "the secret sauce\n");
    let out = nib.run();
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(out.json()["permission_denials"], json!([]));
    let results = server.chat_requests()[1].tool_results();
    assert!(
        results[0].content.contains("the secret sauce"),
        "{results:?}"
    );
}

#[test]
fn interrupt_while_the_model_hangs() {
    let server = FakeServer::start(vec![Reply::hang()]);
    let nib = Nib::against(&server, Protocol::Anthropic).args(["-p", "hi"]);
    let running = nib.spawn();
    assert!(
        server.wait_for_requests(1, Duration::from_secs(10)),
        "nib sent its request"
    );
    running.interrupt();
    let out = running.wait(Duration::from_secs(5));
    assert_eq!(out.code(), 130, "an interrupted run exits 130\n{out}");
    assert_eq!(out.stdout, "", "no answer was printed");
}

#[test]
fn interrupt_while_a_command_runs_kills_it() {
    let command = "echo $$ > shell.pid; sleep 30; touch finished";
    let server = FakeServer::start(vec![Reply::tool_call("bash", json!({"command": command}))]);
    let nib = Nib::against(&server, Protocol::OpenAi).args(["-p", "wait", "--yes"]);
    let running = nib.spawn();
    let started = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        nib.read("shell.pid").is_some_and(|p| !p.trim().is_empty())
    });
    assert!(started, "the command started");
    running.interrupt();
    let out = running.wait(Duration::from_secs(5));
    assert_eq!(out.code(), 130, "{out}");
    let pid = nib.read("shell.pid").unwrap_or_default().trim().to_string();
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z ")),
        "the command's shell {pid} was killed"
    );
    assert!(nib.read("finished").is_none(), "the command did not run on");
    let journal = std::fs::read_to_string(&nib.journal_files()[0]).unwrap();
    assert!(
        journal.contains("interrupted"),
        "the journal says so: {journal}"
    );
}

#[test]
fn session_is_journaled() {
    let server = FakeServer::start(vec![Reply::text("Noted.")]);
    let nib = Nib::against(&server, Protocol::OpenAi).args([
        "-p",
        "remember this prompt",
        "--output-format",
        "json",
    ]);
    let out = nib.run();
    assert_eq!(out.code(), 0, "{out}");
    let session = out.json()["session_id"].as_str().unwrap().to_string();
    let files = nib.journal_files();
    assert_eq!(files.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    let entries = parse_json_lines(&text);
    assert!(!entries.is_empty());
    let named = files[0].to_string_lossy().contains(&session) || text.contains(&session);
    assert!(named, "the journal belongs to session {session}");
    assert!(text.contains("remember this prompt"));
    assert!(text.contains("Noted."));
}

#[test]
fn an_open_stdin_is_waited_for_and_said_so() {
    let server = FakeServer::start(vec![Reply::text("fine")]);
    let nib = Nib::against(&server, Protocol::OpenAi)
        .args(["-p", "just the argument"])
        .silent_stdin();
    let running = nib.spawn();
    std::thread::sleep(Duration::from_secs(5));
    assert!(server.chat_requests().is_empty(), "went on without stdin");
    running.interrupt();
    let out = running.wait(Duration::from_secs(5));
    assert!(out.stderr.contains("reading stdin…"), "{out}");
}

#[test]
fn replies_are_capped_lower_for_a_local_server() {
    let server = FakeServer::start(vec![Reply::text("a"), Reply::text("b")]);
    let nib = Nib::against(&server, Protocol::OpenAi).args(["-p", "hi"]);
    assert_eq!(nib.run().code(), 0);
    assert_eq!(
        server.chat_requests()[0].body["max_tokens"],
        2048,
        "loopback default"
    );
    let dir = nib.config_home().join("nib");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("settings.json"), r#"{"max_output_tokens": 300}"#).unwrap();
    assert_eq!(nib.run().code(), 0);
    assert_eq!(
        server.chat_requests()[1].body["max_tokens"],
        300,
        "the setting wins"
    );
}
