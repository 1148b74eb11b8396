//! The rest of a Claude Code setup: settings `env`, `--settings`, `--add-dir` and
//! `additionalDirectories`, `model`, `disableAllHooks`, and one line, once per folder,
//! for each setting or file nib does not use.

use crate::support::*;
use serde_json::json;

fn echo_env() -> FakeServer {
    FakeServer::start(vec![
        Reply::tool_call(
            "bash",
            json!({"command": "echo team=$TEAM token=$DEPLOY_TOKEN"}),
        ),
        Reply::text("done"),
    ])
}

#[test]
fn settings_env_reaches_commands_but_secrets_do_not() {
    let server = echo_env();
    let nib = Nib::against(&server, Protocol::OpenAi)
        .trusted()
        .args(["-p", "go", "--yes"]);
    let env = json!({"env": {"TEAM": "blue", "DEPLOY_TOKEN": "tok-abcdefgh"}});
    nib.put(".claude/settings.json", &env.to_string());
    let out = nib.run();
    assert_eq!(out.code(), 0, "{out}");
    let result = &server.chat_requests()[1].tool_results()[0];
    assert!(result.content.contains("team=blue token=\n"), "{result:?}");
    assert!(
        out.stderr.contains("env.DEPLOY_TOKEN looks like a secret"),
        "{out}"
    );
}

#[test]
fn settings_flag_takes_a_file_or_json() {
    let calls = || {
        vec![
            Reply::tool_call("bash", json!({"command": "touch ran.txt"})),
            Reply::text("done"),
        ]
    };
    let allow = json!({"permissions": {"allow": ["Bash(touch *)"]}}).to_string();
    // Control: headless refuses the command without a rule.
    let server = FakeServer::start(calls());
    let nib = Nib::against(&server, Protocol::OpenAi)
        .trusted()
        .args(["-p", "go"]);
    nib.run();
    assert!(
        nib.read("ran.txt").is_none(),
        "control: refused without a rule"
    );
    for value in [allow.clone(), "extra.json".to_string()] {
        let server = FakeServer::start(calls());
        let nib = Nib::against(&server, Protocol::OpenAi).trusted().args([
            "-p",
            "go",
            "--settings",
            &value,
        ]);
        nib.put("extra.json", &allow);
        assert_eq!(nib.run().code(), 0);
        assert!(nib.read("ran.txt").is_some(), "{value}");
    }
    let nib = Nib::new()
        .trusted()
        .args(["-p", "go", "--settings", "{broken"]);
    let out = nib.run();
    assert_eq!(out.code(), 2, "{out}");
    assert!(
        out.stderr.contains("--settings") && out.stderr.contains("not valid JSON"),
        "{out}"
    );
    let out = Nib::new()
        .trusted()
        .args(["-p", "go", "--settings", "missing.json"])
        .run();
    assert_eq!(out.code(), 2, "{out}");
}

#[test]
fn add_dir_and_additional_directories_extend_the_workspace() {
    let write = || {
        vec![
            Reply::tool_call(
                "write",
                json!({"path": "../shared/notes.txt", "content": "x"}),
            ),
            Reply::text("done"),
        ]
    };
    let run = |extra: &[&str], settings: Option<&str>| {
        let server = FakeServer::start(write());
        let nib = Nib::against(&server, Protocol::OpenAi)
            .trusted()
            .args(["-p", "go", "--permission-mode", "acceptEdits"])
            .args(extra);
        std::fs::create_dir_all(nib.work().join("../shared")).unwrap();
        if let Some(s) = settings {
            nib.put(".claude/settings.json", s);
        }
        let out = nib.run();
        let written = nib.work().join("../shared/notes.txt").exists();
        (out, written)
    };
    let (_, written) = run(&[], None);
    assert!(
        !written,
        "control: outside the workspace a write asks (headless: refused)"
    );
    let (out, written) = run(&["--add-dir", "../shared"], None);
    assert!(written, "{out}");
    let dirs = json!({"permissions": {"additionalDirectories": ["../shared"]}}).to_string();
    let (out, written) = run(&[], Some(&dirs));
    assert!(written, "{out}");
    let (out, _) = run(&["--add-dir", "../nope"], None);
    assert_eq!(out.code(), 2, "{out}");
}

#[test]
fn unsupported_settings_and_files_are_named_once_per_folder() {
    let server = FakeServer::start(vec![Reply::text("a"), Reply::text("b"), Reply::text("c")]);
    let nib = Nib::against(&server, Protocol::OpenAi).trusted();
    let settings = json!({
        "permissions": {"allow": [], "disableBypassPermissionsMode": "disable"}, "env": {}, "hooks": {},
        "statusLine": {"type": "command", "command": "x"},
        "apiKeyHelper": "/bin/key", "outputStyle": "Explanatory"
    });
    nib.put(".claude/settings.json", &settings.to_string());
    nib.put(".claude/agents/reviewer.md", "a subagent");
    let out = nib.run_with(["-p", "x"]);
    assert_eq!(out.code(), 0, "{out}");
    let ignored: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("nib: ignored: "))
        .collect();
    assert_eq!(ignored.len(), 5, "{out}");
    assert!(
        out.stderr
            .contains("ignored: permissions.disableBypassPermissionsMode"),
        "{out}"
    );
    assert!(
        out.stderr
            .contains("nib: ignored: statusLine in .claude/settings.json (nib has no status line)")
    );
    assert!(
        out.stderr
            .contains("nib: ignored: .claude/agents (nib has no subagents)")
    );
    assert!(out.stderr.contains("apiKeyHelper") && out.stderr.contains("outputStyle"));
    assert!(
        !out.stderr.contains(": permissions in") && !out.stderr.contains("hooks"),
        "{out}"
    );
    // Said once per folder...
    let again = nib.run_with(["-p", "x"]);
    assert!(!again.stderr.contains("ignored:"), "{again}");
    // ...and a new setting is said when it appears.
    let mut more = settings.clone();
    more["spinnerTipsEnabled"] = json!(false);
    nib.put(".claude/settings.json", &more.to_string());
    let third = nib.run_with(["-p", "x"]);
    let ignored: Vec<&str> = third
        .stderr
        .lines()
        .filter(|l| l.contains("ignored:"))
        .collect();
    assert_eq!(ignored.len(), 1, "{third}");
    assert!(ignored[0].contains("spinnerTipsEnabled"));
}

#[test]
fn model_comes_from_claude_settings_unless_given() {
    let server = FakeServer::start(vec![Reply::text("a"), Reply::text("b")]);
    let nib = Nib::new()
        .trusted()
        .args(["--base-url", &server.base(), "--provider", "anthropic"])
        .env("ANTHROPIC_API_KEY", nib::FAKE_KEY);
    let dir = nib.home().join(".claude");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("settings.json"),
        r#"{"model": "claude-from-settings"}"#,
    )
    .unwrap();
    let out = nib.run_with(["-p", "x"]);
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(
        server.chat_requests()[0].body["model"],
        "claude-from-settings"
    );
    assert_eq!(
        nib.run_with(["-p", "x", "--model", "claude-flag"]).code(),
        0
    );
    assert_eq!(server.chat_requests()[1].body["model"], "claude-flag");
}

#[test]
fn disable_all_hooks_turns_them_off() {
    let run = |disable: bool| {
        let server = FakeServer::start(vec![Reply::text("ok")]);
        let nib = Nib::against(&server, Protocol::OpenAi)
            .trusted()
            .args(["-p", "x"]);
        let hook = json!({"type": "command", "command": "touch \"$CLAUDE_PROJECT_DIR/ran\""});
        let settings = json!({"disableAllHooks": disable,
            "hooks": {"UserPromptSubmit": [{"hooks": [hook]}]}});
        nib.put(".claude/settings.json", &settings.to_string());
        assert_eq!(nib.run().code(), 0);
        nib.read("ran").is_some()
    };
    assert!(run(false), "control: the hook runs");
    assert!(!run(true), "disableAllHooks");
}

#[test]
fn input_format_stream_json_runs_each_user_line_in_one_session() {
    let server = FakeServer::start(vec![
        Reply::text("first answer"),
        Reply::text("second answer"),
    ]);
    let input = [
        r#"{"type":"user","message":{"role":"user","content":"first question"}}"#,
        "not json",
        r#"{"type":"control_request","request":{}}"#,
        r#"{"type":"user","message":{"role":"user","content":[{"type":"text","text":"second question"}]}}"#,
    ]
    .join("\n");
    let nib = Nib::against(&server, Protocol::OpenAi)
        .trusted()
        .args([
            "-p",
            "--input-format",
            "stream-json",
            "--output-format",
            "stream-json",
        ])
        .stdin(input + "\n");
    let out = nib.run();
    assert_eq!(out.code(), 0, "{out}");
    let results: Vec<_> = out
        .lines()
        .into_iter()
        .filter(|l| l["type"] == "result")
        .collect();
    assert_eq!(results.len(), 2, "{out}");
    assert_eq!(results[0]["result"], "first answer");
    assert_eq!(results[1]["result"], "second answer");
    assert!(out.stderr.contains("skipped an input line"), "{out}");
    let second = &server.chat_requests()[1];
    let body = second.body.to_string();
    assert!(
        body.contains("first question") && body.contains("first answer"),
        "one session: {body}"
    );
    assert_eq!(second.last_user_text(), "second question");
    let bad = Nib::new()
        .trusted()
        .args(["-p", "x", "--input-format", "yaml"])
        .run();
    assert_eq!(bad.code(), 2, "{bad}");
}

/// A project's own settings (their `env` here) and custom commands apply only once its
/// folder is trusted; the control is the same project after `nib trust`.
#[test]
fn a_project_setup_applies_only_in_a_trusted_folder() {
    for trusted in [false, true] {
        let server = echo_env();
        let mut nib = Nib::against(&server, Protocol::Anthropic).args(["-p", "/hello go", "--yes"]);
        if trusted {
            nib = nib.trusted();
        }
        let project = json!({"env": {"TEAM": "blue"}});
        nib.put(".claude/settings.json", &project.to_string());
        nib.put(".claude/commands/hello.md", "EXPANDED $ARGUMENTS");
        let out = nib.run();
        assert_eq!(out.code(), 0, "{out}");
        let requests = server.chat_requests();
        let result = &requests[1].tool_results()[0];
        let prompt = requests[0].last_user_text();
        match trusted {
            true => {
                assert!(result.content.contains("team=blue"), "{result:?}");
                assert!(prompt.contains("EXPANDED go"), "{prompt}");
            }
            false => {
                assert!(result.content.contains("team= "), "{result:?}");
                assert!(prompt.contains("/hello go"), "{prompt}");
            }
        }
    }
}
