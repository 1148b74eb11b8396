//! Approval questions in a real terminal (tmux, against the fake model): keys typed
//! ahead never answer them, they show what a write or edit will change before anyone
//! says yes, "always" is offered only when it would take effect and saving to disk
//! asks for Enter, refusals are shown, and `@file` obeys the read rules. Each test has
//! a control showing the same call goes through when it should.

use crate::support::pane::Pane;
use crate::support::*;
use serde_json::json;
use std::fs;
use std::thread;
use std::time::Duration;

/// Writes `~/.claude/settings.json` in the pane's sandbox.
fn user_settings(pane: &Pane, value: serde_json::Value) {
    let dir = pane.nib.home().join(".claude");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("settings.json"), value.to_string()).unwrap();
}

#[test]
fn keys_typed_ahead_never_answer_a_question() {
    let Some(pane) = Pane::start() else { return };
    let server = FakeServer::start(vec![
        // Slow, so the keys below arrive while the model is still answering.
        Reply::tool_call("bash", json!({"command": "touch ran.txt"})).slow(700),
        Reply::text("after the question"),
    ]);
    pane.nib(&server, "");
    pane.ask("run it");
    pane.wait_for("thinking");
    pane.keys_literal("yyy");
    pane.key("Enter");
    pane.keys_literal("ppp");
    let screen = pane.wait_for("[y] yes, once");
    thread::sleep(Duration::from_millis(800));
    let screen_after = pane.screen();
    assert!(
        !pane.work().join("ran.txt").exists(),
        "type-ahead answered:\n{screen_after}"
    );
    assert!(!screen_after.contains("→"), "answered:\n{screen_after}");
    assert!(!screen.contains("yyy"), "typed keys were echoed:\n{screen}");
    // The control: a key pressed once the question is shown answers it, and is echoed.
    pane.key("y");
    pane.wait_for("→ y · yes, once");
    pane.wait_for("after the question");
    assert!(pane.work().join("ran.txt").exists());
    pane.ask("/exit");
    pane.wait_for("resume with: nib -r ");
    pane.assert_restored();
}

#[test]
fn text_typed_during_an_answer_is_not_echoed_and_waits_at_the_prompt() {
    let Some(pane) = Pane::start() else { return };
    let server = FakeServer::start(vec![
        Reply::text("one two three four five six seven eight").slow(300),
    ]);
    pane.nib(&server, "");
    pane.ask("count");
    pane.wait_for("one two");
    pane.keys_literal("next question");
    let screen = pane.wait_for("› next question");
    let answer = screen
        .lines()
        .find(|l| l.contains("one two"))
        .unwrap_or_default();
    assert!(
        !answer.contains("next"),
        "echoed into the answer:\n{screen}"
    );
    assert!(answer.contains("eight"), "{screen}");
    pane.key("C-u");
    pane.ask("/exit");
    pane.wait_for("resume with: nib -r ");
    pane.assert_restored();
}

#[test]
fn saving_a_rule_asks_for_enter_and_an_ask_rule_offers_no_always() {
    let Some(pane) = Pane::start() else { return };
    let server = FakeServer::start(vec![
        Reply::tool_call("bash", json!({"command": "touch one.txt"})),
        Reply::text("first done"),
        Reply::tool_call("bash", json!({"command": "touch two.txt"})),
        Reply::text("second done"),
    ]);
    pane.nib(&server, "");
    pane.ask("make one");
    pane.wait_for("[p] always in this project");
    pane.key("p");
    pane.wait_for("Enter saves it");
    pane.key("x");
    pane.wait_for("not saved");
    let saved = pane.work().join(".claude/settings.local.json");
    assert!(!saved.exists(), "saved without Enter");
    assert!(!pane.work().join("one.txt").exists());
    pane.key("p");
    pane.wait_for_count("Enter saves it", 2);
    pane.key("Enter");
    pane.wait_for("first done");
    let text = fs::read_to_string(&saved).unwrap();
    assert!(text.contains("Bash(touch one.txt"), "{text}");
    assert!(pane.work().join("one.txt").exists());
    pane.ask("/exit");
    pane.wait_for("resume with");

    // An ask rule decides: "always" would be saved for nothing, so it is not offered.
    pane.reset();
    fs::remove_file(&saved).unwrap();
    user_settings(&pane, json!({"permissions": {"ask": ["Bash(touch *)"]}}));
    pane.nib(&server, "");
    pane.ask("make two");
    let screen = pane.wait_for("would ask again");
    assert!(!screen.contains("[a] always"), "{screen}");
    pane.key("a");
    pane.key("p");
    thread::sleep(Duration::from_millis(500));
    assert!(!pane.work().join("two.txt").exists(), "a or p answered");
    assert!(!saved.exists());
    pane.key("y");
    pane.wait_for("second done");
    assert!(pane.work().join("two.txt").exists());
    pane.ask("/exit");
    pane.wait_for("resume with: nib -r ");
    pane.assert_restored();
}

#[test]
fn writes_and_edits_show_what_they_change_before_approval() {
    let Some(pane) = Pane::start() else { return };
    let content: String = (1..=30).map(|i| format!("row {i}\n")).collect();
    let server = FakeServer::start(vec![
        Reply::tool_call("write", json!({"path": "new.txt", "content": content})),
        Reply::text("created"),
        Reply::tool_call("read", json!({"path": "old.txt"})),
        Reply::tool_call(
            "write",
            json!({"path": "old.txt", "content": "keep\nCHANGED\n"}),
        ),
        Reply::text("overwritten"),
        Reply::tool_call("read", json!({"path": "code.txt"})),
        Reply::tool_call(
            "edit",
            json!({"path": "code.txt", "old": "beta", "new": "BETA"}),
        ),
        Reply::text("edited"),
    ]);
    pane.nib.put("old.txt", "keep\nold line\n");
    pane.nib.put("code.txt", "alpha\nbeta\ngamma\n");
    pane.nib(&server, "");
    pane.ask("make a file");
    let screen = pane.wait_for("[y] yes, once");
    assert!(screen.contains("new file · 30 lines"), "{screen}");
    assert!(
        screen.contains("+row 1") && screen.contains("+row 30"),
        "{screen}"
    );
    assert!(screen.contains("… 14 more lines"), "{screen}");
    assert!(
        !pane.work().join("new.txt").exists(),
        "written before approval"
    );
    pane.key("y");
    pane.wait_for("created");

    pane.ask("overwrite");
    let screen = pane.wait_for_count("[y] yes, once", 2);
    assert!(screen.contains("   2 -old line"), "{screen}");
    assert!(screen.contains("   2 +CHANGED"), "{screen}");
    pane.key("y");
    pane.wait_for("overwritten");
    assert_eq!(pane.nib.read("old.txt").as_deref(), Some("keep\nCHANGED\n"));

    pane.ask("edit");
    let screen = pane.wait_for_count("[y] yes, once", 3);
    assert!(screen.contains("@@ -1,3 +1,3 @@"), "{screen}");
    assert!(
        screen.contains("   2 -beta") && screen.contains("   2 +BETA"),
        "{screen}"
    );
    assert!(!screen.contains("@@ edit @@"), "{screen}");
    pane.key("y");
    let screen = pane.wait_for("edited");
    // The diff the question showed is not shown again under the result.
    assert_eq!(screen.matches("   2 +BETA").count(), 1, "{screen}");
    assert!(screen.contains("(shown above)"), "{screen}");
    pane.ask("/exit");
    pane.wait_for("resume with: nib -r ");
    pane.assert_restored();
}

#[test]
fn a_change_nobody_was_asked_about_shows_its_diff_once() {
    let Some(pane) = Pane::start() else { return };
    let server = FakeServer::start(vec![
        Reply::tool_call("read", json!({"path": "code.txt"})),
        Reply::tool_call(
            "edit",
            json!({"path": "code.txt", "old": "beta", "new": "BETA"}),
        ),
        Reply::text("edited"),
    ]);
    pane.nib.put("code.txt", "alpha\nbeta\ngamma\n");
    pane.nib(&server, "--permission-mode acceptEdits");
    pane.ask("edit");
    let screen = pane.wait_for("edited");
    assert_eq!(screen.matches("   2 +BETA").count(), 1, "{screen}");
    assert!(!screen.contains("(shown above)"), "{screen}");
    assert!(!screen.contains("[y] yes, once"), "{screen}");
    pane.ask("/exit");
    pane.wait_for("resume with: nib -r ");
}

#[test]
fn refused_calls_show_one_line_each() {
    let Some(pane) = Pane::start() else { return };
    user_settings(&pane, json!({"permissions": {"deny": ["Bash(curl *)"]}}));
    let server = FakeServer::start(vec![
        Reply::calls(vec![
            call("bash", json!({"command": "curl http://example.com"})),
            call("frobnicate", json!({"x": 1})),
            call("read", json!({"path": "seen.txt"})),
        ]),
        Reply::text("all answered"),
    ]);
    pane.nib.put("seen.txt", "fine\n");
    pane.nib(&server, "");
    pane.ask("try things");
    let screen = pane.wait_for("all answered");
    assert!(
        screen.contains("✗ curl http://example.com · refused:") && screen.contains("Bash(curl *)"),
        "{screen}"
    );
    assert!(
        screen.contains("✗ frobnicate · refused: unknown tool"),
        "{screen}"
    );
    // The control: an allowed call is shown as a call, not as a refusal.
    assert!(
        screen.contains("● read") && !screen.contains("✗ read"),
        "{screen}"
    );
    pane.ask("/exit");
}

#[test]
fn at_file_obeys_read_deny_rules() {
    let Some(pane) = Pane::start() else { return };
    user_settings(
        &pane,
        json!({"permissions": {"deny": ["Read(./secrets.txt)"]}}),
    );
    pane.nib.put("secrets.txt", "TOKEN=hunter2\n");
    pane.nib.put("notes.txt", "NOTE-TEXT\n");
    let server = FakeServer::start(vec![Reply::text("first"), Reply::text("second")]);
    pane.nib(&server, "");
    pane.ask("explain @secrets.txt");
    let screen = pane.wait_for("first");
    assert!(
        screen.contains("not attached: secrets.txt is refused"),
        "{screen}"
    );
    let sent = server.chat_requests()[0].last_user_text();
    assert!(!sent.contains("hunter2"), "{sent}");
    // The control: a file no rule covers is attached.
    pane.ask("explain @notes.txt");
    pane.wait_for("second");
    assert!(
        server.chat_requests()[1]
            .last_user_text()
            .contains("NOTE-TEXT")
    );
    pane.ask("/exit");
}
