//! Claude Code custom commands (`.claude/commands/**/*.md`, `~/.claude/commands`) run
//! by the real binary: arguments fill in, `@file`s attach only where the gate lets the
//! model read, `` !`command` `` lines run only where the gate allows them, and the
//! command's `allowed-tools` and `model` hold for its run and not after. The REPL side
//! (listing, Tab, `/fixit arg`) is in `repl.rs`. Also the whole Claude Code project
//! setup end to end.

use crate::support::deps::deps;
use crate::support::*;
use serde_json::json;

const FIXIT: &str = "---
description: Fix an issue
argument-hint: [issue] [area]
---
Fix issue $1 in the $2 code. Full request: $ARGUMENTS";

#[test]
fn arguments_fill_in_and_namespaces_come_from_folders() {
    let server = FakeServer::start(vec![Reply::text("a"), Reply::text("b")]);
    let nib = Nib::against(&server, Protocol::OpenAi).trusted();
    nib.put(".claude/commands/fixit.md", FIXIT);
    let user = nib.home().join(".claude/commands/frontend");
    std::fs::create_dir_all(&user).unwrap();
    std::fs::write(user.join("test.md"), "Run the frontend tests.").unwrap();
    assert_eq!(nib.run_with(["-p", "/fixit 42 parser"]).code(), 0);
    let sent = server.chat_requests()[0].last_user_text();
    assert!(
        sent.starts_with("[the user ran the command /fixit]"),
        "{sent}"
    );
    assert!(
        sent.contains("Fix issue 42 in the parser code. Full request: 42 parser"),
        "{sent}"
    );
    assert_eq!(nib.run_with(["-p", "/frontend:test  quickly"]).code(), 0);
    let sent = server.chat_requests()[1].last_user_text();
    assert!(
        sent.contains("Run the frontend tests.\n\nARGUMENTS: quickly"),
        "{sent}"
    );
}

#[test]
fn files_attach_only_where_the_gate_allows_reading() {
    let server = FakeServer::start(vec![Reply::text("ok")]);
    let nib = Nib::against(&server, Protocol::OpenAi)
        .trusted()
        .args(["-p", "/review"]);
    nib.put("src/lib.rs", "fn answer() -> u32 { 42 }");
    nib.put(".env", "PASSWORD=hunter2");
    nib.put(
        ".claude/settings.json",
        r#"{"permissions": {"deny": ["Read(./.env)"]}}"#,
    );
    std::fs::write(nib.home().join("notes.txt"), "private notes").unwrap();
    nib.put(
        ".claude/commands/review.md",
        "Review @src/lib.rs, @.env and @~/notes.txt.",
    );
    let out = nib.run();
    assert_eq!(out.code(), 0, "{out}");
    let sent = server.chat_requests()[0].last_user_text();
    assert!(
        sent.contains("fn answer() -> u32 { 42 }"),
        "control: a workspace file attaches: {sent}"
    );
    assert!(!sent.contains("hunter2"), "a denied file does not: {sent}");
    assert!(
        !sent.contains("private notes"),
        "a file outside the workspace does not: {sent}"
    );
    assert!(out.stderr.contains("@.env not attached"), "{out}");
}

#[test]
fn shell_lines_run_only_through_the_gate_and_allowed_tools_end_with_the_command() {
    let server = FakeServer::start(vec![
        Reply::text("a"),
        Reply::tool_call("write", json!({"path": "w.txt", "content": "x"})),
        Reply::text("b"),
        Reply::tool_call("write", json!({"path": "w2.txt", "content": "x"})),
        Reply::text("c"),
    ]);
    let nib = Nib::against(&server, Protocol::OpenAi).trusted();
    nib.put(
        ".claude/commands/status.md",
        "Status: !`echo hello-from-shell > made.txt; echo made`",
    );
    let allowed = "---\nallowed-tools: Bash(echo:*), Write\n---\nStatus: !`echo hello-from-shell`";
    nib.put(".claude/commands/allowed.md", allowed);
    // Not allowed: the line is not run, and the prompt says so.
    let out = nib.run_with(["-p", "/status"]);
    assert_eq!(out.code(), 0, "{out}");
    assert!(nib.read("made.txt").is_none(), "the command did not run");
    let sent = server.chat_requests()[0].last_user_text();
    assert!(sent.contains("was not run"), "{sent}");
    // allowed-tools lets the line run, and the model's write during the command.
    let out = nib.run_with(["-p", "/allowed"]);
    assert_eq!(out.code(), 0, "{out}");
    let sent = server.chat_requests()[1].last_user_text();
    assert!(sent.contains("Status: hello-from-shell"), "{sent}");
    assert_eq!(
        nib.read("w.txt").as_deref(),
        Some("x"),
        "Write was allowed for the command"
    );
    // After the command, the rule no longer holds (headless refuses the write).
    assert_eq!(nib.run_with(["-p", "plain prompt"]).code(), 0);
    assert!(
        nib.read("w2.txt").is_none(),
        "allowed-tools ended with the command"
    );
}

#[test]
fn the_model_frontmatter_picks_the_model_for_the_command() {
    let server = FakeServer::start(vec![Reply::text("a")]);
    let nib = Nib::against(&server, Protocol::OpenAi)
        .trusted()
        .args(["-p", "/quick"]);
    nib.put(
        ".claude/commands/quick.md",
        "---\nmodel: tiny-model\n---\nBe quick.",
    );
    assert_eq!(nib.run().code(), 0);
    assert_eq!(server.chat_requests()[0].body["model"], "tiny-model");
}

/// A Claude Code project as teams have them: CLAUDE.md, a skill, a command, hooks, an
/// MCP server in `.mcp.json`, and `env` in settings.
#[test]
fn a_claude_code_project_works_end_to_end() {
    let Some(d) = deps() else { return };
    let server = FakeServer::start(vec![
        Reply::tool_call("mcp__everything__echo", json!({"message": "ping"})),
        Reply::tool_call("bash", json!({"command": "rm -rf build"})),
        Reply::tool_call(
            "write",
            json!({"path": "out.txt", "content": "spaced    out\n"}),
        ),
        Reply::tool_call("bash", json!({"command": "echo $TEAM_ENV"})),
        Reply::text("all done"),
    ]);
    let nib = Nib::against(&server, Protocol::Anthropic)
        .trusted()
        .args(["-p", "/fixit 7 cli", "--yes"])
        .env("MCP_TIMEOUT", "180000")
        .timeout(240);
    nib.put("CLAUDE.md", "Always run the linter.");
    nib.put(
        ".claude/skills/lint/SKILL.md",
        "---\nname: lint\ndescription: Lint the code.\n---\nRun the linter.",
    );
    nib.put(".claude/commands/fixit.md", FIXIT);
    nib.put("build/keep", "artifact");
    nib.put(
        ".claude/hooks/guard.sh",
        "#!/bin/sh\ngrep -q '\"rm ' && { echo 'no rm here' >&2; exit 2; }\nexit 0\n",
    );
    nib.put(
        ".claude/hooks/fmt.sh",
        "#!/bin/sh\nf=$(sed -n 's/.*\"file_path\":\"\\([^\"]*\\)\".*/\\1/p')\ntr -s ' ' < \"$f\" > \"$f.t\" && mv \"$f.t\" \"$f\"\n",
    );
    for script in ["guard.sh", "fmt.sh"] {
        use std::os::unix::fs::PermissionsExt;
        let path = nib.work().join(".claude/hooks").join(script);
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let settings = json!({
        "env": {"TEAM_ENV": "team-blue"},
        "hooks": {
            "PreToolUse": [
                {"matcher": "Bash", "hooks": [{"type": "command", "command": "$CLAUDE_PROJECT_DIR/.claude/hooks/guard.sh"}]},
                {"matcher": "mcp__everything__.*", "hooks": [{"type": "command", "command": "cat >> \"$CLAUDE_PROJECT_DIR/mcp.log\""}]}
            ],
            "PostToolUse": [{"matcher": "Write|Edit", "hooks": [{"type": "command", "command": "$CLAUDE_PROJECT_DIR/.claude/hooks/fmt.sh"}]}]
        }
    });
    nib.put(".claude/settings.json", &settings.to_string());
    nib.put(
        ".mcp.json",
        &json!({"mcpServers": {"everything": {"command": d.everything, "args": ["stdio"]}}})
            .to_string(),
    );
    let out = nib.run();
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(out.stdout, "all done\n");
    let reqs = server.chat_requests();
    let first = &reqs[0];
    let system = first.body["system"].to_string();
    assert!(
        system.contains("Always run the linter.") && system.contains("lint: Lint the code."),
        "{system}"
    );
    assert!(
        first
            .last_user_text()
            .contains("Fix issue 7 in the cli code")
    );
    let results = reqs[4].tool_results();
    assert!(results[0].content.contains("ping"), "MCP echo: {results:?}");
    assert!(
        results[1].is_error && results[1].content.contains("no rm here"),
        "{results:?}"
    );
    assert!(nib.read("build/keep").is_some(), "the hook kept build/");
    assert_eq!(
        nib.read("out.txt").as_deref(),
        Some("spaced out\n"),
        "the formatter ran"
    );
    assert!(
        results[3].content.contains("team-blue"),
        "settings env: {results:?}"
    );
    let logged = nib.read("mcp.log").unwrap_or_default();
    assert!(
        logged.contains(r#""tool_name":"mcp__everything__echo""#),
        "{logged}"
    );
    assert!(
        logged.contains(r#""tool_input":{"message":"ping"}"#),
        "{logged}"
    );
    assert_eq!(
        logged.lines().count(),
        1,
        "the hook matched the MCP call only"
    );
}
