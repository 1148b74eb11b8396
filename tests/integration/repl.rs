//! The interactive REPL in a real terminal: each test runs nib in its own tmux server
//! (a pane of 100×30 running a clean shell in the test sandbox), types into it with
//! `send-keys`, and reads the screen with `capture-pane`, against the fake model.
//! Without tmux the tests skip with a message (CI installs it).

use crate::support::pane::Pane;
use crate::support::*;
use serde_json::json;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

#[test]
fn streams_text_and_answers_yes_no_always() {
    let Some(pane) = Pane::start() else { return };
    let server = FakeServer::start(vec![
        Reply::text("AAAAAAAAAA BBBBBBBBBB CCCCCCCCCC").slow(600),
        Reply::tool_call("bash", json!({"command": "echo one > one.txt"})),
        Reply::text("made one"),
        Reply::tool_call("bash", json!({"command": "echo two > two.txt"})),
        Reply::text("ok, not two"),
        Reply::tool_call("bash", json!({"command": "echo three >> three.txt"})),
        Reply::tool_call("bash", json!({"command": "echo three >> three.txt"})),
        Reply::text("both ran"),
    ]);
    pane.nib(&server, "");
    pane.ask("stream please");
    // Streaming: the first piece is on screen before the last one was sent.
    let partial = pane.wait_for("AAAAAAAAAA");
    assert!(!partial.contains("CCCCCCCCCC"), "not streamed:\n{partial}");
    pane.wait_for("AAAAAAAAAA BBBBBBBBBB CCCCCCCCCC");

    pane.ask("make one");
    pane.wait_for("[y] yes, once");
    pane.key("y");
    pane.wait_for("made one");
    assert_eq!(pane.nib.read("one.txt").as_deref(), Some("one\n"));

    pane.ask("make two");
    pane.wait_for_count("[n] no", 2);
    pane.key("n");
    pane.wait_for("tell the model why");
    pane.line("use three instead");
    pane.wait_for("ok, not two");
    assert_eq!(pane.nib.read("two.txt"), None);
    let results = server.chat_requests()[4].tool_results();
    let last = results.last().expect("a tool result");
    assert!(
        last.content.starts_with("denied") && last.content.contains("use three instead"),
        "{results:?}"
    );

    pane.ask("make three twice");
    let screen = pane.wait_for_count("[n] no", 3);
    if screen.contains("[a] always this session") {
        pane.key("a");
        pane.wait_for("both ran");
        // The second, identical call ran without a question.
        assert_eq!(pane.screen().matches("[n] no").count(), 3);
    } else {
        // No safe rule for this command: "always" is not offered.
        pane.key("y");
        pane.wait_for_count("[n] no", 4);
        pane.key("y");
        pane.wait_for("both ran");
    }
    assert_eq!(
        pane.nib.read("three.txt").as_deref(),
        Some("three\nthree\n")
    );
    pane.ask("/exit");
    pane.wait_for("resume with: nib -r ");
    pane.assert_restored();
}

#[test]
fn ctrl_c_kills_the_running_command_and_the_repl_goes_on() {
    let Some(pane) = Pane::start() else { return };
    let marker = pane.work().join("survived");
    let command = format!("sleep 30 && touch {}", marker.display());
    let server = FakeServer::start(vec![
        Reply::tool_call("bash", json!({"command": command})),
        Reply::text("after the interrupt"),
    ]);
    pane.nib(&server, "");
    pane.ask("run the slow thing");
    pane.wait_for("[y] yes, once");
    pane.key("y");
    pane.wait_for("● bash");
    thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    pane.key("C-c");
    pane.wait_for("interrupted");
    assert!(started.elapsed() < Duration::from_secs(10));
    // The prompt is back and works.
    pane.ask("still there?");
    pane.wait_for("after the interrupt");
    // The command's group was killed: `touch` never ran, even after sleep's time.
    thread::sleep(Duration::from_millis(300));
    assert!(!marker.exists());
    let pgrep = Command::new("pgrep")
        .args(["-f", &format!("touch {}", marker.display())])
        .output();
    if let Ok(out) = pgrep {
        assert!(out.stdout.is_empty(), "the command still runs");
    }
    // Ctrl-C at an empty prompt warns, a second one leaves.
    pane.wait_prompt();
    pane.key("C-c");
    pane.wait_for("press Ctrl-C again or Ctrl-D to exit");
    pane.key("C-c");
    pane.wait_for("resume with: nib -r ");
    pane.assert_restored();
}

#[test]
fn sigterm_at_the_prompt_restores_the_terminal() {
    let Some(pane) = Pane::start() else { return };
    let server = FakeServer::start(vec![]);
    pane.nib(&server, "");
    pane.wait_prompt();
    let shell = pane
        .tmux(&["display", "-p", "#{pane_pid}"])
        .output()
        .unwrap();
    let shell = String::from_utf8_lossy(&shell.stdout).trim().to_string();
    let children = format!("/proc/{shell}/task/{shell}/children");
    let nib = std::fs::read_to_string(children).unwrap_or_default();
    let nib = nib.split_whitespace().next().expect("nib runs in the pane");
    let killed = Command::new("kill").args(["-TERM", nib]).status();
    assert!(killed.is_ok_and(|s| s.success()));
    pane.wait_until("nib to exit", |_| {
        !std::path::Path::new(&format!("/proc/{nib}/stat")).exists()
    });
    pane.line("echo code=$?");
    pane.wait_for("code=143");
    pane.assert_restored();
}

#[test]
fn history_is_recalled_after_a_restart() {
    let Some(pane) = Pane::start() else { return };
    let server = FakeServer::start(vec![Reply::text("noted"), Reply::text("again")]);
    pane.nib(&server, "");
    pane.ask("remember this line");
    pane.wait_for("noted");
    pane.wait_prompt();
    pane.key("C-d");
    pane.wait_for("resume with: nib -r ");
    pane.reset();
    pane.nib(&server, "");
    pane.wait_prompt();
    pane.key("Up");
    pane.wait_for("› remember this line");
    pane.key("Enter");
    pane.wait_for("again");
    assert_eq!(
        server.chat_requests()[1].last_user_text(),
        "remember this line"
    );
    pane.wait_prompt();
    pane.key("C-d");
    pane.wait_for("resume with: nib -r ");
    pane.assert_restored();
}

#[test]
fn undo_resume_and_model_switch() {
    let Some(pane) = Pane::start() else { return };
    let server = FakeServer::start(vec![
        Reply::tool_call("write", json!({"path": "f.txt", "content": "new\n"})),
        Reply::text("wrote the file"),
        Reply::text("from the other model"),
        Reply::text("from anthropic"),
    ]);
    pane.nib(&server, "");
    pane.ask("write f.txt");
    if pane
        .wait_until("a question or the answer", |s| {
            s.contains("[y] yes, once") || s.contains("wrote the file")
        })
        .contains("[y] yes, once")
    {
        pane.key("y");
    }
    pane.wait_for("wrote the file");
    assert_eq!(pane.nib.read("f.txt").as_deref(), Some("new\n"));
    pane.ask("/undo");
    pane.wait_for("removed");
    assert_eq!(pane.nib.read("f.txt"), None);

    pane.ask("/model other-model");
    pane.wait_for("model: other-model");
    pane.ask("who are you");
    pane.wait_for("from the other model");
    assert_eq!(server.chat_requests()[2].body["model"], "other-model");
    // The model is told about the undo with its next prompt.
    assert!(
        server.chat_requests()[2]
            .last_user_text()
            .contains("undid your last change")
    );

    let anthropic = format!("/model anthropic:fake-model --base-url {}", server.base());
    pane.ask(&anthropic);
    pane.wait_for("model: fake-model · anthropic");
    pane.ask("and now");
    pane.wait_for("from anthropic");
    assert_eq!(server.chat_requests()[3].path, "/v1/messages");

    // /clear, then /resume picks the first session back.
    pane.ask("/clear");
    pane.wait_for("new session");
    pane.ask("/resume");
    pane.wait_for("resume which?");
    pane.line("1");
    pane.wait_for("── resumed session");
    pane.ask("/exit");
    pane.wait_for("resume with: nib -r ");

    // `-c` opens the latest session and shows its last exchange.
    pane.reset();
    pane.nib(&server, "-c");
    let screen = pane.wait_for("── resumed session");
    pane.wait_for("› and now");
    pane.wait_for("from anthropic");
    assert!(screen.contains("resumed session"));
    pane.ask("/exit");
    pane.assert_restored();
}

#[test]
fn skills_are_listed_and_run_as_commands() {
    let Some(pane) = Pane::start() else { return };
    let server = FakeServer::start(vec![Reply::text("short now")]);
    pane.nib(&server, "");
    pane.ask("/skills");
    pane.wait_for("/commit-message");
    pane.wait_for("bundled");
    pane.ask("/nosuch");
    pane.wait_for("unknown command /nosuch");
    pane.ask("/terse for this chat");
    pane.wait_for("short now");
    let sent = server.chat_requests()[0].last_user_text();
    assert!(sent.starts_with("[the user invoked skill terse]"), "{sent}");
    assert!(sent.contains("for this chat"), "{sent}");
    pane.wait_prompt();
    pane.key("C-d");
    pane.wait_for("resume with: nib -r ");
}

/// Writes nib's settings into the pane's sandbox (read when nib starts).
fn settings(pane: &Pane, value: serde_json::Value) {
    let dir = pane.nib.config_home().join("nib");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("settings.json"), value.to_string()).unwrap();
}

/// The only session's journal records, parsed.
fn journal(pane: &Pane) -> Vec<serde_json::Value> {
    let files = pane.nib.journal_files();
    assert_eq!(files.len(), 1, "{files:?}");
    parse_json_lines(&std::fs::read_to_string(&files[0]).unwrap())
}

/// The screen line that starts with `start` (so nothing else was drawn before it).
fn line_starting<'a>(screen: &'a str, start: &str) -> &'a str {
    let found = screen.lines().find(|l| l.starts_with(start));
    found.unwrap_or_else(|| panic!("no line starts with {start:?}:\n{screen}"))
}

/// The system prompt of an OpenAI request.
fn system_of(request: &crate::support::fake::Recorded) -> String {
    let first = &request.body["messages"][0];
    assert_eq!(first["role"], "system", "{}", request.body);
    first["content"].as_str().unwrap_or_default().to_string()
}

/// The first user message of an OpenAI request, as JSON text.
fn first_user(request: &crate::support::fake::Recorded) -> String {
    let messages = request.body["messages"].as_array().unwrap();
    let user = messages.iter().find(|m| m["role"] == "user").unwrap();
    user.to_string()
}

/// `n` words that start alike and never repeat (a repeated word would be cut as a loop).
fn words(stem: &str, n: usize) -> String {
    let letter = |i: usize| char::from(b'a' + (i % 26) as u8);
    (0..n)
        .map(|i| format!("{stem}{}{} ", letter(i / 26), letter(i)))
        .collect()
}

#[test]
fn compact_command_summarises_and_the_next_prompt_starts_from_it() {
    let Some(pane) = Pane::start() else { return };
    // Two long answers (about 375 tokens each) are most of what a summary frees.
    let first = format!("{}END-ONE", words("alpha", 250));
    let second = format!("{}END-TWO", words("bravo", 250));
    let server = FakeServer::start(vec![
        Reply::text(&first),
        Reply::text(&second),
        Reply::text("third answer"),
        Reply::text("SUMMARY-OF-CHAT"),
        Reply::text("after the summary"),
    ]);
    pane.nib(&server, "");

    // A fresh session has nothing to compact: said so, and nothing sent.
    pane.ask("/compact");
    pane.wait_for("nothing to compact");
    assert!(server.requests().is_empty(), "{:?}", server.requests());

    pane.ask("first question");
    pane.wait_for("END-ONE");
    pane.ask("second question");
    pane.wait_for("END-TWO");
    pane.ask("third question");
    pane.wait_for("third answer");
    pane.ask("/compact");
    let screen = pane.wait_for("compacted:");
    let line = line_starting(&screen, "compacted:");
    assert_eq!(
        line.trim_end(),
        "compacted: 5 earlier messages summarized to fit the context window"
    );

    // The summary request: no tools, the summariser's system prompt, the chat as text.
    let requests = server.chat_requests();
    assert_eq!(requests.len(), 4, "three prompts and the summary");
    let summary = &requests[3];
    assert!(summary.tool_names().is_empty(), "{}", summary.body);
    assert!(summary.body.get("tools").is_none_or(|t| t.is_null()));
    assert!(
        system_of(summary).starts_with("You summarise a coding session"),
        "{}",
        system_of(summary)
    );
    let asked = summary.last_user_text();
    assert!(asked.contains("user: first question"), "{asked}");
    assert!(
        asked.contains("alphaab alphaac") && asked.contains("bravoab bravoac"),
        "{asked}"
    );

    // The next prompt starts from the summary; the long answers are gone.
    pane.ask("fourth question");
    pane.wait_for("after the summary");
    let next = server.chat_requests().pop().unwrap();
    let opening = first_user(&next);
    assert!(
        opening.contains("[summary of earlier conversation]\\nSUMMARY-OF-CHAT"),
        "{opening}"
    );
    let text = String::from_utf8_lossy(&next.raw_body);
    assert!(
        !text.contains("alphaab alphaac") && !text.contains("bravoab bravoac"),
        "{text}"
    );
    assert!(
        text.contains("third answer"),
        "the latest answer is kept: {text}"
    );
    assert_eq!(next.last_user_text(), "fourth question");
    assert!(
        !next.tool_names().is_empty(),
        "tools are back after the summary"
    );

    let records = journal(&pane);
    let compacted: Vec<_> = records
        .iter()
        .filter(|r| r["type"] == "compacted")
        .collect();
    assert_eq!(compacted.len(), 1, "one compaction: {records:?}");
    let compacted = compacted[0];
    assert_eq!(compacted["summary"], "SUMMARY-OF-CHAT");
    assert_eq!(compacted["replaced"], 5);
    pane.ask("/exit");
    pane.wait_for("resume with: nib -r ");
    pane.assert_restored();
}

#[test]
fn a_full_window_is_compacted_and_said_on_screen() {
    let Some(pane) = Pane::start() else { return };
    // About 550 tokens of system prompt and tools: the second prompt crosses 80%.
    settings(&pane, json!({"context_window": 1000}));
    let long = format!("{}END-ONE", words("alpha", 250));
    let server = FakeServer::start(vec![
        Reply::text(&long),
        Reply::text("SUMMARY-OF-A"),
        Reply::text("after compaction"),
    ]);
    pane.nib(&server, "");
    pane.ask("first question");
    pane.wait_for("END-ONE");
    pane.ask("second question");
    let screen = pane.wait_for("after compaction");
    let line = line_starting(&screen, "compacted:");
    assert_eq!(
        line.trim_end(),
        "compacted: 2 earlier messages summarized to fit the context window"
    );
    assert!(screen.find(line) < screen.find("after compaction"));

    let requests = server.chat_requests();
    assert_eq!(
        requests.len(),
        3,
        "a prompt, the summary, the prompt after it"
    );
    assert!(requests[1].tool_names().is_empty(), "{}", requests[1].body);
    assert!(system_of(&requests[1]).starts_with("You summarise a coding session"));
    let opening = first_user(&requests[2]);
    assert!(opening.contains("SUMMARY-OF-A"), "{opening}");
    let text = String::from_utf8_lossy(&requests[2].raw_body);
    assert!(!text.contains("alphaab alphaac"), "{text}");
    assert!(requests[2].last_user_text().contains("second question"));
    let records = journal(&pane);
    let compacted = records.iter().find(|r| r["type"] == "compacted").unwrap();
    assert_eq!(compacted["replaced"], 2);
    pane.wait_prompt();
    pane.key("C-d");
    pane.wait_for("resume with: nib -r ");
}

/// A repository whose own settings allow a command.
fn repository_rules(pane: &Pane) {
    let rules = json!({"permissions": {
        "allow": ["Bash(touch m *)"],
        "deny": ["Read(./.env)"],
    }});
    pane.nib.put(".claude/settings.json", &rules.to_string());
}

#[test]
fn an_untrusted_folder_is_asked_about_once() {
    let Some(pane) = Pane::start() else { return };
    repository_rules(&pane);
    let server = FakeServer::start(vec![
        Reply::tool_call("bash", json!({"command": "touch m here"})),
        Reply::text("asked first"),
    ]);
    pane.nib(&server, "");
    let screen = pane.wait_for("trust this folder?");
    assert!(
        screen.contains("allow Bash(touch m *)") && screen.contains(".claude/settings.json"),
        "the question shows the rules it would apply:\n{screen}"
    );
    pane.key("n");
    pane.ask("/permissions");
    let screen = pane.wait_for("deny: Read(./.env) (from ");
    assert!(!screen.contains("allow: Bash(touch m *)"), "{screen}");
    assert!(screen.contains("not trusted"), "{screen}");
    // The repository's allow rule does not apply: the call asks.
    pane.ask("make m");
    pane.wait_for("[y] yes, once");
    pane.key("n");
    pane.wait_for("tell the model why");
    pane.line("");
    pane.wait_for("asked first");
    assert!(pane.nib.read("m").is_none());
    pane.wait_prompt();
    pane.key("C-d");
    pane.wait_for("resume with: nib -r ");
    // The answer is kept: no question the next time.
    pane.reset();
    pane.nib(&server, "");
    pane.wait_prompt();
    assert!(
        !pane.screen().contains("trust this folder?"),
        "{}",
        pane.screen()
    );
    // A session that said nothing has nothing to resume.
    pane.key("C-d");
    pane.assert_restored();
}

#[test]
fn a_trusted_folder_applies_its_rules_and_lists_them() {
    let Some(pane) = Pane::start() else { return };
    repository_rules(&pane);
    let server = FakeServer::start(vec![
        Reply::tool_call("bash", json!({"command": "touch m here"})),
        Reply::text("made m"),
    ]);
    pane.nib(&server, "");
    pane.wait_for("trust this folder?");
    pane.key("y");
    pane.ask("/permissions");
    let screen = pane.wait_for("allow: Bash(touch m *) (from ");
    assert!(screen.contains("deny: Read(./.env) (from "), "{screen}");
    pane.ask("make m");
    pane.wait_for("made m");
    assert!(pane.nib.read("m").is_some(), "{}", pane.screen());
    assert!(
        !pane.screen().contains("[y] yes, once"),
        "{}",
        pane.screen()
    );
    pane.wait_prompt();
    pane.key("C-d");
    pane.wait_for("resume with: nib -r ");
    pane.reset();
    pane.nib(&server, "");
    pane.wait_prompt();
    assert!(!pane.screen().contains("trust this folder?"));
    pane.key("C-d");
    pane.assert_restored();
}

#[test]
fn a_rule_saved_with_p_works_in_a_folder_not_trusted() {
    let Some(pane) = Pane::start() else { return };
    let server = FakeServer::start(vec![
        Reply::tool_call("bash", json!({"command": "touch m here"})),
        Reply::text("made it"),
    ]);
    pane.nib(&server, "");
    pane.ask("make m");
    pane.wait_for("[p] always in this project");
    pane.key("p");
    pane.wait_for("Enter saves it");
    pane.key("Enter");
    pane.wait_for("made it");
    pane.wait_prompt();
    pane.key("C-d");
    pane.wait_for("resume with: nib -r ");
    std::fs::remove_file(pane.work().join("m")).unwrap();
    // Next run, headless: the saved rule applies without any trust question or notice.
    server.push(Reply::tool_call(
        "bash",
        json!({"command": "touch m again"}),
    ));
    server.push(Reply::text("done"));
    let out = pane.nib.run_with([
        "--base-url",
        &server.base_v1(),
        "--model",
        fake::MODEL,
        "-p",
        "again",
    ]);
    assert_eq!(out.code(), 0, "{out}");
    assert!(
        pane.nib.read("m").is_some() && pane.nib.read("again").is_some(),
        "{out}"
    );
    assert!(!out.stderr.contains("not trusted"), "{out}");
    // Control: another rule in the same file, written by someone else, waits for trust.
    let file = pane.work().join(".claude/settings.local.json");
    let text = std::fs::read_to_string(&file).unwrap();
    let text = text.replace(
        "\"Bash(touch m *)\"",
        "\"Bash(touch m *)\", \"Bash(touch x *)\"",
    );
    std::fs::write(&file, text).unwrap();
    server.push(Reply::tool_call("bash", json!({"command": "touch x y"})));
    server.push(Reply::text("done"));
    let out = pane.nib.run_with([
        "--base-url",
        &server.base_v1(),
        "--model",
        fake::MODEL,
        "-p",
        "x",
    ]);
    assert!(pane.nib.read("x").is_none(), "{out}");
    assert!(out.stderr.contains("settings.local.json") && out.stderr.contains("nib trust"));
}

#[test]
fn custom_commands_and_mcp_servers_in_the_repl() {
    let Some(pane) = Pane::start() else { return };
    let Some(d) = crate::support::deps::deps() else {
        return;
    };
    let server = FakeServer::start(vec![Reply::text("fixed it")]);
    let command =
        "---\ndescription: Fix an issue\nargument-hint: [issue]\n---\nFix issue $ARGUMENTS.";
    pane.nib.put(".claude/commands/fixit.md", command);
    let servers = json!({"mcpServers": {
        "py": {"command": d.python, "args": [d.server_py]},
        "broken": {"command": d.python, "args": [d.server_py, "--fail-start"]},
    }});
    pane.nib.put(".mcp.json", &servers.to_string());
    pane.nib.trust();
    pane.nib(&server, "");
    // The servers start in the background; /mcp says how far they are.
    let deadline = Instant::now() + Duration::from_secs(90);
    let screen = loop {
        pane.ask("/mcp");
        thread::sleep(Duration::from_millis(500));
        let screen = pane.screen();
        let settled = screen.contains("connected · 5 tools") && screen.contains("cannot open");
        if settled || Instant::now() > deadline {
            // The last answer only.
            break screen
                .rsplit("› /mcp")
                .next()
                .unwrap_or_default()
                .to_string();
        }
    };
    let py = line_starting(&screen, "  py ");
    assert!(py.contains("connected · 5 tools"), "{screen}");
    let broken = line_starting(&screen, "  broken ");
    assert!(broken.contains("failed") && broken.contains("cannot open /nonexistent/db.sqlite"));
    pane.ask("/help");
    pane.wait_for("/fixit [issue]");
    pane.wait_prompt();
    pane.keys_literal("/fixi");
    pane.key("Tab");
    pane.wait_for("› /fixit");
    pane.line(" 42");
    pane.wait_for("fixed it");
    let sent = server.chat_requests()[0].last_user_text();
    assert!(sent.contains("Fix issue 42."), "{sent}");
    pane.wait_prompt();
    pane.key("C-d");
    pane.wait_for("resume with: nib -r ");
}
