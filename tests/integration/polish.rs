//! What a Claude Code user expects of the REPL, in a real terminal (tmux, against the
//! fake model): Esc interrupts, Shift-Tab and `/permissions MODE` switch the mode,
//! `!command` and `# note`, markdown and word wrapping, `/context` in tokens, the
//! `--yes` warning, counts of what a command printed, `/model` after a provider
//! switch, `/resume` after a failed prompt, and no session file for a session that
//! said nothing.

use crate::support::pane::Pane;
use crate::support::*;
use serde_json::json;
use std::fs;
use std::time::{Duration, Instant};

#[test]
fn esc_interrupts_a_task() {
    let Some(pane) = Pane::start() else { return };
    let server = FakeServer::start(vec![Reply::hang(), Reply::text("still here")]);
    pane.nib(&server, "");
    pane.ask("hang please");
    assert!(server.wait_for_requests(1, Duration::from_secs(10)));
    let started = Instant::now();
    pane.key("Escape");
    pane.wait_for("interrupted");
    assert!(started.elapsed() < Duration::from_secs(5));
    pane.ask("again");
    pane.wait_for("still here");
    pane.ask("/exit");
    pane.wait_for("resume with: nib -r ");
    pane.assert_restored();
}

#[test]
fn shift_tab_and_permissions_switch_the_mode() {
    let Some(pane) = Pane::start() else { return };
    let server = FakeServer::start(vec![
        Reply::tool_call("write", json!({"path": "a.txt", "content": "a\n"})),
        Reply::text("wrote a"),
        Reply::tool_call("write", json!({"path": "b.txt", "content": "b\n"})),
        Reply::text("b refused"),
        Reply::tool_call("write", json!({"path": "c.txt", "content": "c\n"})),
        Reply::text("wrote c"),
    ]);
    pane.nib(&server, "");
    pane.wait_prompt();
    pane.key("BTab");
    pane.wait_for("mode: acceptEdits");
    // acceptEdits: the write runs without a question.
    pane.ask("write a");
    let screen = pane.wait_for("wrote a");
    assert!(!screen.contains("[y] yes, once"), "{screen}");
    assert_eq!(pane.nib.read("a.txt").as_deref(), Some("a\n"));
    pane.wait_prompt();
    pane.key("BTab");
    pane.wait_for("mode: plan");
    pane.ask("write b");
    pane.wait_for("b refused");
    assert_eq!(pane.nib.read("b.txt"), None, "plan mode is read-only");
    pane.wait_prompt();
    pane.key("BTab");
    pane.wait_for("mode: default");
    pane.ask("/permissions acceptEdits");
    pane.wait_for_count("mode: acceptEdits", 2);
    pane.ask("write c");
    pane.wait_for("wrote c");
    assert_eq!(pane.nib.read("c.txt").as_deref(), Some("c\n"));
    pane.ask("/permissions bypassPermissions");
    pane.wait_for("restart with --yes");
    pane.ask("/exit");
    pane.wait_for("resume with: nib -r ");
}

#[test]
fn bang_runs_a_command_for_the_conversation_and_hash_keeps_a_note() {
    let Some(pane) = Pane::start() else { return };
    let dir = pane.nib.home().join(".claude");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("settings.json"),
        json!({"permissions": {"deny": ["Bash(rm *)"]}}).to_string(),
    )
    .unwrap();
    pane.nib.put("keep.txt", "kept\n");
    let server = FakeServer::start(vec![Reply::text("seen it")]);
    pane.nib(&server, "");
    pane.ask("!echo hello-from-shell");
    pane.wait_for("hello-from-shell");
    pane.ask("!rm keep.txt");
    pane.wait_for("✗ rm keep.txt · refused:");
    assert!(
        pane.work().join("keep.txt").exists(),
        "a deny rule holds for !"
    );
    pane.ask("# always use tabs");
    pane.wait_for("noted in CLAUDE.md");
    assert!(
        server.requests().is_empty(),
        "nothing was sent to the model yet"
    );
    let notes = fs::read_to_string(pane.work().join("CLAUDE.md")).unwrap();
    assert_eq!(notes, "- always use tabs\n");
    pane.ask("what now");
    pane.wait_for("seen it");
    let sent = server.chat_requests()[0].last_user_text();
    assert!(sent.contains("hello-from-shell"), "{sent}");
    assert!(sent.contains("always use tabs"), "{sent}");
    assert!(sent.ends_with("what now"), "{sent}");
    pane.ask("/exit");
    pane.wait_for("resume with: nib -r ");
}

#[test]
fn markdown_is_rendered_and_long_lines_wrap_between_words() {
    let Some(pane) = Pane::start() else { return };
    let words: Vec<String> = (1..=80).map(|i| format!("word{i:03}")).collect();
    let long = words.join(" ");
    let answer = format!(
        "# Plan\n**bold** text and `code`\n- first item\n```sh\necho fenced\n```\n\n{long}\n"
    );
    let server = FakeServer::start(vec![Reply::text(&answer)]);
    pane.nib(&server, "");
    pane.ask("show me");
    let screen = pane.wait_for("word080");
    let lines: Vec<&str> = screen.lines().map(str::trim_end).collect();
    assert!(lines.contains(&"Plan"), "{screen}");
    assert!(lines.contains(&"bold text and code"), "{screen}");
    assert!(lines.contains(&"• first item"), "{screen}");
    assert!(
        lines.contains(&"sh") && lines.contains(&"  echo fenced"),
        "{screen}"
    );
    assert!(!screen.contains("```"), "{screen}");
    // Every screen line of the long paragraph holds whole words.
    let shown: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("word"))
        .flat_map(|l| l.split(' '))
        .collect();
    assert_eq!(shown, words, "{screen}");
    assert!(lines.iter().filter(|l| l.starts_with("word")).count() > 1);
    pane.ask("/exit");
    pane.wait_for("resume with: nib -r ");
}

#[test]
fn context_counts_tokens_and_yes_warns() {
    let Some(pane) = Pane::start() else { return };
    let server = FakeServer::start(vec![
        Reply::tool_call("bash", json!({"command": "seq 1 5000"})),
        Reply::text("counted"),
    ]);
    pane.nib(&server, "--yes");
    pane.wait_for("warning: --yes: every tool call runs without asking");
    pane.ask("count");
    let screen = pane.wait_for("counted");
    assert!(screen.contains("⎿ exit 0 · 5000 lines"), "{screen}");
    assert!(screen.contains("… 4994 more lines"), "{screen}");
    pane.ask("/context");
    let screen = pane.wait_for("  total");
    assert!(screen.contains("tokens  window"), "{screen}");
    let total = screen.lines().find(|l| l.starts_with("  total")).unwrap();
    assert!(total.trim_end().ends_with('%'), "{total}");
    let base = screen
        .lines()
        .find(|l| l.starts_with("  conversation"))
        .unwrap();
    assert_eq!(base.find('%'), total.find('%'), "aligned:\n{screen}");
    pane.ask("/exit");
    pane.wait_for("resume with: nib -r ");
}

#[test]
fn model_switch_and_resume_after_a_failed_prompt() {
    let Some(pane) = Pane::start() else { return };
    let server = FakeServer::start(vec![
        Reply::text("FIRST-ANSWER"),
        Reply::status(400, &[], r#"{"error":{"message":"bad request"}}"#),
        Reply::text("from anthropic"),
        Reply::text("back on openai"),
    ]);
    pane.nib(&server, "");
    pane.ask("first prompt");
    pane.wait_for("FIRST-ANSWER");
    pane.ask("second prompt");
    pane.wait_for("bad request");
    pane.ask("/clear");
    pane.wait_for("new session");
    pane.ask("/resume");
    pane.wait_for("resume which?");
    pane.line("1");
    let screen = pane.wait_for("(no answer");
    let recap = &screen[screen.rfind("── resumed session").unwrap()..];
    assert!(recap.contains("› second prompt"), "{recap}");
    assert!(!recap.contains("FIRST-ANSWER"), "{recap}");

    let anthropic = format!("/model anthropic:fake-model --base-url {}", server.base());
    pane.ask(&anthropic);
    pane.wait_for("anthropic");
    pane.ask("hi");
    pane.wait_for("from anthropic");
    pane.ask("/model other-model");
    pane.wait_for("model: other-model · openai");
    pane.ask("and now");
    pane.wait_for("back on openai");
    let last = server.chat_requests().pop().unwrap();
    assert_eq!(last.path, "/v1/chat/completions");
    assert_eq!(last.body["model"], "other-model");
    pane.ask("/exit");
    pane.wait_for("resume with: nib -r ");
}

#[test]
fn a_session_that_said_nothing_leaves_no_file() {
    let Some(pane) = Pane::start() else { return };
    let server = FakeServer::start(vec![Reply::text("said something")]);
    pane.nib(&server, "");
    pane.ask("/cost");
    pane.wait_for("tokens:");
    pane.ask("/exit");
    pane.wait_for("$ ");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        pane.nib.journal_files().is_empty(),
        "an empty session was saved"
    );
    // The control: a session with a message is saved.
    pane.reset();
    pane.nib(&server, "");
    pane.ask("hello");
    pane.wait_for("said something");
    pane.ask("/exit");
    pane.wait_for("resume with: nib -r ");
    assert_eq!(pane.nib.journal_files().len(), 1);
}

#[test]
fn a_terminal_on_stdin_is_never_read_headless() {
    let Some(pane) = Pane::start() else { return };
    let server = FakeServer::start(vec![Reply::text("HEADLESS-ANSWER")]);
    pane.nib(&server, "-p 'just this'");
    let started = Instant::now();
    let screen = pane.wait_for("HEADLESS-ANSWER");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "waited for stdin"
    );
    assert!(!screen.contains("reading stdin"), "{screen}");
    assert_eq!(server.chat_requests()[0].last_user_text(), "just this");
}

#[test]
fn ctrl_c_is_not_echoed_into_a_streaming_answer() {
    let Some(pane) = Pane::start() else { return };
    let server = FakeServer::start(vec![
        Reply::text("alpha beta gamma delta epsilon zeta eta theta").slow(400),
    ]);
    pane.nib(&server, "");
    pane.ask("stream");
    pane.wait_for("alpha");
    pane.key("C-c");
    let screen = pane.wait_for("interrupted");
    assert!(!screen.contains("^C"), "echoed:\n{screen}");
    pane.ask("/exit");
    pane.wait_for("resume with: nib -r ");
    pane.assert_restored();
}
