//! Claude Code hooks, run by the real binary with real shell scripts: exit 0 goes on
//! (and adds context where the contract says), exit 2 blocks (a refusal the model sees,
//! a prompt dropped, a model sent back to work), other codes warn, JSON answers decide
//! permissions, a hanging hook is killed at its timeout, and every run is journaled.
//! Each block has a control showing the same call runs without the hook.

use crate::support::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Writes `.claude/settings.json` with one hook for `event` (matcher `matcher`) running
/// the script `name`, which is written to `.claude/hooks/` and made executable.
fn hook(nib: &Nib, event: &str, matcher: &str, name: &str, script: &str, timeout: Option<u64>) {
    let rel = format!(".claude/hooks/{name}");
    nib.put(&rel, &format!("#!/bin/sh\n{script}\n"));
    make_executable(&nib.work().join(&rel));
    let mut command =
        json!({"type": "command", "command": format!("\"$CLAUDE_PROJECT_DIR\"/{rel}")});
    if let Some(t) = timeout {
        command["timeout"] = json!(t);
    }
    let mut settings: Value = nib
        .read(".claude/settings.json")
        .map_or(json!({"hooks": {}}), |s| serde_json::from_str(&s).unwrap());
    let groups = settings["hooks"][event]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut groups = groups;
    groups.push(json!({"matcher": matcher, "hooks": [command]}));
    settings["hooks"][event] = Value::Array(groups);
    nib.put(".claude/settings.json", &settings.to_string());
}

fn make_executable(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The PreToolUse guard a team puts on its repository: no `rm`.
const NO_RM: &str = r#"input=$(cat)
case "$input" in
  *'"command":"rm '*) echo "rm is not allowed in this repository" >&2; exit 2 ;;
esac
exit 0"#;

fn server_for(calls: Vec<Reply>) -> FakeServer {
    FakeServer::start(calls)
}

#[test]
fn pre_tool_use_exit_2_refuses_the_call_with_stderr() {
    let server = server_for(vec![
        Reply::tool_call("bash", json!({"command": "rm keep.txt"})),
        Reply::tool_call("bash", json!({"command": "ls"})),
        Reply::text("done"),
    ]);
    let nib = Nib::against(&server, Protocol::Anthropic)
        .trusted()
        .args(["-p", "clean up", "--yes"]);
    nib.put("keep.txt", "precious");
    hook(&nib, "PreToolUse", "Bash", "no-rm.sh", NO_RM, None);
    let out = nib.run();
    assert_eq!(out.code(), 0, "{out}");
    assert!(nib.read("keep.txt").is_some(), "the hook kept the file");
    let results = server.chat_requests()[2].tool_results();
    assert!(results[0].is_error, "{results:?}");
    assert!(
        results[0]
            .content
            .contains("rm is not allowed in this repository"),
        "{results:?}"
    );
    // Control: the same hook lets other commands through.
    assert!(!results[1].is_error, "ls ran: {results:?}");
    assert!(results[1].content.contains("keep.txt"), "{results:?}");
}

#[test]
fn without_the_hook_rm_runs() {
    let server = server_for(vec![
        Reply::tool_call("bash", json!({"command": "rm keep.txt"})),
        Reply::text("done"),
    ]);
    let nib = Nib::against(&server, Protocol::OpenAi)
        .trusted()
        .args(["-p", "clean up", "--yes"]);
    nib.put("keep.txt", "precious");
    assert_eq!(nib.run().code(), 0);
    assert!(nib.read("keep.txt").is_none(), "the control: rm does run");
}

#[test]
fn post_tool_use_runs_a_formatter_on_the_written_file() {
    let server = server_for(vec![
        Reply::tool_call(
            "write",
            json!({"path": "a.txt", "content": "messy   text\n"}),
        ),
        Reply::text("done"),
    ]);
    let nib = Nib::against(&server, Protocol::OpenAi)
        .trusted()
        .args(["-p", "write", "--yes"]);
    // A formatter that squeezes spaces in the file the tool wrote.
    let formatter = r#"file=$(sed -n 's/.*"file_path":"\([^"]*\)".*/\1/p')
tr -s ' ' < "$file" > "$file.tmp" && mv "$file.tmp" "$file""#;
    hook(&nib, "PostToolUse", "Write|Edit", "fmt.sh", formatter, None);
    let out = nib.run();
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(nib.read("a.txt").as_deref(), Some("messy text\n"));
}

#[test]
fn post_tool_use_block_reaches_the_model() {
    let server = server_for(vec![
        Reply::tool_call("bash", json!({"command": "echo hi"})),
        Reply::text("done"),
    ]);
    let nib = Nib::against(&server, Protocol::OpenAi)
        .trusted()
        .args(["-p", "go", "--yes"]);
    hook(
        &nib,
        "PostToolUse",
        "",
        "lint.sh",
        "echo 'lint: 3 warnings' >&2; exit 2",
        None,
    );
    assert_eq!(nib.run().code(), 0);
    let result = &server.chat_requests()[1].tool_results()[0];
    assert!(result.content.contains("hi"), "{result:?}");
    assert!(result.content.contains("lint: 3 warnings"), "{result:?}");
}

#[test]
fn user_prompt_submit_adds_context_and_exit_2_drops_the_prompt() {
    let server = server_for(vec![Reply::text("ok")]);
    let nib = Nib::against(&server, Protocol::OpenAi)
        .trusted()
        .args(["-p", "hello"]);
    hook(
        &nib,
        "UserPromptSubmit",
        "",
        "ctx.sh",
        "echo 'sprint ends friday'",
        None,
    );
    hook(
        &nib,
        "SessionStart",
        "",
        "start.sh",
        "echo 'branch: main'",
        None,
    );
    assert_eq!(nib.run().code(), 0);
    let text = server.chat_requests()[0].last_user_text();
    assert!(text.starts_with("hello"), "{text}");
    assert!(
        text.contains("sprint ends friday") && text.contains("branch: main"),
        "{text}"
    );

    let server = server_for(vec![Reply::text("ok")]);
    let nib = Nib::against(&server, Protocol::OpenAi).trusted();
    let guard = r#"grep -q deploy && { echo "no deploys on friday" >&2; exit 2; }; exit 0"#;
    hook(&nib, "UserPromptSubmit", "", "guard.sh", guard, None);
    let out = nib.run_with(["-p", "deploy prod"]);
    assert_eq!(out.code(), 1, "{out}");
    assert!(out.stderr.contains("no deploys on friday"), "{out}");
    assert!(
        server.chat_requests().is_empty(),
        "the prompt never reached the model"
    );
    // Control: another prompt passes the same guard.
    let out = nib.run_with(["-p", "write tests"]);
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(server.chat_requests().len(), 1);
}

#[test]
fn json_permission_decisions() {
    // Headless without --yes: a write would be refused; a hook's allow lets it run.
    let calls = || {
        vec![
            Reply::tool_call("write", json!({"path": "w.txt", "content": "x"})),
            Reply::text("done"),
        ]
    };
    let allow = r#"echo '{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"allow"}}'"#;
    let server = server_for(calls());
    let nib = Nib::against(&server, Protocol::OpenAi)
        .trusted()
        .args(["-p", "write"]);
    hook(&nib, "PreToolUse", "Write", "allow.sh", allow, None);
    assert_eq!(nib.run().code(), 0);
    assert_eq!(
        nib.read("w.txt").as_deref(),
        Some("x"),
        "allowed by the hook"
    );

    let server = server_for(calls());
    let control = Nib::against(&server, Protocol::OpenAi)
        .trusted()
        .args(["-p", "write"]);
    control.run();
    assert!(
        control.read("w.txt").is_none(),
        "control: refused without the hook"
    );

    // deny beats --yes, and its reason reaches the model.
    let deny = r#"echo '{"hookSpecificOutput":{"permissionDecision":"deny","permissionDecisionReason":"frozen file"}}'"#;
    let server = server_for(calls());
    let nib = Nib::against(&server, Protocol::OpenAi).trusted().args([
        "-p",
        "write",
        "--yes",
        "--output-format",
        "json",
    ]);
    hook(&nib, "PreToolUse", "Write", "deny.sh", deny, None);
    let out = nib.run();
    assert!(nib.read("w.txt").is_none(), "{out}");
    let result = &server.chat_requests()[1].tool_results()[0];
    assert!(result.content.contains("frozen file"), "{result:?}");
    let denials = &out.json()["permission_denials"];
    assert_eq!(denials.as_array().map(Vec::len), Some(1), "{out}");
}

#[test]
fn stop_hook_exit_2_sends_the_model_back_to_work() {
    let server = server_for(vec![Reply::text("first"), Reply::text("second")]);
    let nib = Nib::against(&server, Protocol::OpenAi)
        .trusted()
        .args(["-p", "task"]);
    // Blocks once: the marker file remembers.
    let once = r#"[ -e "$CLAUDE_PROJECT_DIR/.stopped" ] && exit 0
touch "$CLAUDE_PROJECT_DIR/.stopped"; echo "tests still fail" >&2; exit 2"#;
    hook(&nib, "Stop", "", "stop.sh", once, None);
    let out = nib.run();
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(out.stdout, "second\n");
    let reqs = server.chat_requests();
    assert_eq!(reqs.len(), 2);
    assert!(reqs[1].last_user_text().contains("tests still fail"));
}

#[test]
fn a_stop_hook_that_always_blocks_is_bounded() {
    let replies = (0..20).map(|i| Reply::text(&format!("r{i}"))).collect();
    let server = server_for(replies);
    let nib = Nib::against(&server, Protocol::OpenAi)
        .trusted()
        .args(["-p", "task"]);
    hook(&nib, "Stop", "", "stop.sh", "echo never >&2; exit 2", None);
    let out = nib.run();
    assert_eq!(out.code(), 0, "{out}");
    assert!(
        server.chat_requests().len() <= 9,
        "{}",
        server.chat_requests().len()
    );
}

#[test]
fn failures_warn_and_the_session_goes_on() {
    let server = server_for(vec![
        Reply::tool_call("bash", json!({"command": "echo ran"})),
        Reply::text("done"),
    ]);
    let nib = Nib::against(&server, Protocol::OpenAi)
        .trusted()
        .args(["-p", "go", "--yes"])
        .timeout(60);
    hook(&nib, "PreToolUse", "Bash", "hang.sh", "sleep 30", Some(1));
    hook(
        &nib,
        "PreToolUse",
        "Bash",
        "three.sh",
        "echo broken >&2; exit 3",
        None,
    );
    hook(
        &nib,
        "PreToolUse",
        "Bash",
        "bad.sh",
        "echo '{not json'",
        None,
    );
    let settings = nib.read(".claude/settings.json").unwrap();
    let missing = settings.replace("bad.sh", "missing.sh");
    nib.put(
        ".claude/settings.local.json",
        &missing.replace("three.sh", "three.sh2"),
    );
    let started = Instant::now();
    let out = nib.run();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the hanging hook was stopped"
    );
    assert_eq!(out.code(), 0, "{out}");
    assert!(out.stderr.contains("timed out after 1 s"), "{out}");
    assert!(
        out.stderr.contains("exit status 3") && out.stderr.contains("broken"),
        "{out}"
    );
    assert!(out.stderr.contains("invalid JSON"), "{out}");
    assert!(
        out.stderr.contains("missing.sh") && out.stderr.contains("exit status 127"),
        "{out}"
    );
    let result = &server.chat_requests()[1].tool_results()[0];
    assert!(
        result.content.contains("ran"),
        "the call still ran: {result:?}"
    );
}

#[test]
fn hooks_get_the_contract_on_stdin_and_a_scrubbed_environment() {
    let server = server_for(vec![
        Reply::tool_call("edit", json!({"path": "f.txt", "old": "a", "new": "b"})),
        Reply::text("done"),
    ]);
    let nib = Nib::against(&server, Protocol::Anthropic)
        .trusted()
        .args(["-p", "edit", "--yes"])
        .env("TEAM_NAME", "blue")
        .env("DEPLOY_TOKEN", "tok-123456789");
    nib.put("f.txt", "a");
    let dump = r#"cat > "$CLAUDE_PROJECT_DIR/stdin.json"
env > "$CLAUDE_PROJECT_DIR/env.txt""#;
    hook(&nib, "PreToolUse", "Edit", "dump.sh", dump, None);
    assert_eq!(nib.run().code(), 0);
    let input: Value = serde_json::from_str(&nib.read("stdin.json").unwrap()).unwrap();
    assert_eq!(input["hook_event_name"], "PreToolUse");
    assert_eq!(input["tool_name"], "Edit");
    assert_eq!(input["tool_input"]["old_string"], "a");
    let file = input["tool_input"]["file_path"].as_str().unwrap();
    assert!(file.ends_with("/work/f.txt"), "{file}");
    assert!(input["session_id"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(
        input["transcript_path"]
            .as_str()
            .is_some_and(|p| p.ends_with(".jsonl"))
    );
    let env = nib.read("env.txt").unwrap();
    assert!(env.contains("CLAUDE_PROJECT_DIR="), "{env}");
    assert!(
        env.contains("TEAM_NAME=blue"),
        "control: ordinary variables pass"
    );
    assert!(!env.contains("tok-123456789"), "secrets are scrubbed");
    assert!(
        !env.contains(crate::support::nib::FAKE_KEY),
        "provider keys are scrubbed"
    );
}

#[test]
fn every_run_is_journaled() {
    let server = server_for(vec![
        Reply::tool_call("bash", json!({"command": "true"})),
        Reply::text("done"),
    ]);
    let nib = Nib::against(&server, Protocol::OpenAi)
        .trusted()
        .args(["-p", "go", "--yes"]);
    hook(&nib, "PreToolUse", "Bash", "ok.sh", "exit 0", None);
    hook(&nib, "PostToolUse", "Read", "never.sh", "exit 0", None);
    hook(&nib, "SessionEnd", "", "end.sh", "exit 3", None);
    assert_eq!(nib.run().code(), 0);
    let journal = std::fs::read_to_string(&nib.journal_files()[0]).unwrap();
    let hooks: Vec<Value> = parse_json_lines(&journal)
        .into_iter()
        .filter(|r| r["type"] == "hook")
        .collect();
    assert_eq!(hooks.len(), 2, "the Read matcher did not fire: {hooks:?}");
    assert_eq!(hooks[0]["event"], "PreToolUse");
    assert_eq!(hooks[0]["code"], 0);
    assert!(hooks[0]["command"].as_str().unwrap().ends_with("ok.sh"));
    assert!(hooks[0]["ms"].is_u64());
    assert_eq!(hooks[1]["event"], "SessionEnd");
    assert_eq!(hooks[1]["code"], 3);
}
