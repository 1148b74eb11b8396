//! The search tools keep the gate's word: `grep` and `glob` leave out, and count, the
//! files a deny rule covers and symlinks leading out of the workspace (the read tool
//! refuses the same files), and find dotted files a pattern names (`.env*`).

use crate::support::*;
use serde_json::json;
use std::fs;
use std::os::unix::fs::symlink;

const SECRET: &str = "hunter2-in-dotenv";
const OUTSIDE: &str = "hunter2-outside";
const SECRETS_FILE: &str = "hunter2-in-secrets-txt";

/// Runs grep and glob calls over the workspace with `flags`; returns each result's text.
fn searches(flags: &[&str]) -> Vec<String> {
    let calls = vec![
        call("grep", json!({"pattern": "hunter2"})),
        call("grep", json!({"pattern": "hunter2", "path": "."})),
        call("grep", json!({"pattern": "hunter2", "glob": ".env*"})),
        call("glob", json!({"pattern": ".env*"})),
        call("grep", json!({"pattern": "hunter2", "glob": "*.txt"})),
        call("read", json!({"path": ".env"})),
    ];
    let server = FakeServer::start(vec![Reply::calls(calls), Reply::text("done")]);
    let nib = Nib::against(&server, Protocol::OpenAi)
        .args(["-p", "look"])
        .args(flags);
    nib.put(".env", &format!("TOKEN={SECRET}\n"));
    nib.put("notes.txt", "hunter2-notes\n");
    nib.put("secrets.txt", &format!("{SECRETS_FILE}\n"));
    let outside = nib.work().parent().unwrap().join("outside.txt");
    fs::write(&outside, format!("{OUTSIDE}\n")).unwrap();
    symlink(&outside, nib.work().join("leak.txt")).unwrap();
    symlink(nib.work().join("notes.txt"), nib.work().join("inner.txt")).unwrap();
    let out = nib.run();
    assert_eq!(out.code(), 0, "{out}");
    let results = server.chat_requests()[1].tool_results();
    assert_eq!(results.len(), 6, "{results:?}");
    results.into_iter().map(|r| r.content).collect()
}

#[test]
fn grep_and_glob_leave_out_denied_files_and_links_out() {
    let denied = searches(&["--disallowedTools", "Read(./.env),Read(./secrets.txt)"]);
    for (i, result) in denied.iter().enumerate() {
        for leak in [SECRET, SECRETS_FILE, OUTSIDE] {
            assert!(!result.contains(leak), "call {i}: {result}");
        }
    }
    assert!(denied[5].contains("denied"), "{}", denied[5]);
    let ruled = "[left out 1 file(s) a deny or ask rule covers]";
    assert_eq!(denied[2], format!("no matches\n{ruled}"));
    let notes = "inner.txt:1:hunter2-notes\nnotes.txt:1:hunter2-notes";
    assert_eq!(denied[3], format!("no files match .env*\n{ruled}"));
    let links = "[left out 1 symlink(s) leading outside the workspace]";
    assert_eq!(denied[4], format!("{notes}\n{ruled}\n{links}"));
    // Without a glob, .env is hidden: left out and counted as such, never read.
    let hidden = "[left out 1 hidden and 0 ignored: .env;";
    assert!(
        denied[0].starts_with(&format!("{notes}\n{ruled}\n{links}\n{hidden}")),
        "{}",
        denied[0]
    );
    assert_eq!(denied[0], denied[1]);

    // The control: without the rule the same calls find .env, as the read tool does.
    let allowed = searches(&["--allowedTools", "Read"]);
    assert_eq!(allowed[2], format!(".env:1:TOKEN={SECRET}"));
    assert_eq!(allowed[3], ".env");
    assert!(allowed[5].contains(SECRET), "{}", allowed[5]);
    assert!(allowed[4].contains(SECRETS_FILE), "{}", allowed[4]);
    for result in &allowed {
        assert!(!result.contains(OUTSIDE), "{result}");
    }
}

/// A search of a folder outside the workspace, once allowed, reads what is there: the
/// link rule is about leaving the searched tree, not about where it is.
#[test]
fn an_allowed_search_outside_reads_it() {
    let server = FakeServer::start(vec![
        Reply::tool_call(
            "grep",
            json!({"pattern": "hunter2", "path": "../elsewhere"}),
        ),
        Reply::text("done"),
    ]);
    let nib = Nib::against(&server, Protocol::OpenAi).args(["-p", "look", "--yes"]);
    let elsewhere = nib.work().parent().unwrap().join("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    fs::write(elsewhere.join("a.txt"), format!("{OUTSIDE}\n")).unwrap();
    let out = nib.run();
    assert_eq!(out.code(), 0, "{out}");
    let result = &server.chat_requests()[1].tool_results()[0].content;
    assert!(result.ends_with(&format!("a.txt:1:{OUTSIDE}")), "{result}");
}

/// A file an ask rule covers is left out of a search nobody was asked about (headless
/// cannot ask about each file); the control: bypassing permissions, it is found.
#[test]
fn an_ask_rule_keeps_a_file_out_of_a_headless_search() {
    for flags in [&[][..], &["--yes"][..]] {
        let server = FakeServer::start(vec![
            Reply::tool_call("grep", json!({"pattern": "hunter2"})),
            Reply::text("done"),
        ]);
        let nib = Nib::against(&server, Protocol::OpenAi)
            .args(["-p", "look"])
            .args(flags);
        let settings = nib.config_home().join("nib/settings.json");
        fs::create_dir_all(settings.parent().unwrap()).unwrap();
        let rules = json!({"permissions": {"ask": ["Read(./private)"]}});
        fs::write(&settings, rules.to_string()).unwrap();
        nib.put("private/key.txt", "hunter2-private\n");
        nib.put("open.txt", "hunter2-open\n");
        let out = nib.run();
        assert_eq!(out.code(), 0, "{out}");
        let result = &server.chat_requests()[1].tool_results()[0].content;
        match flags.is_empty() {
            true => assert_eq!(
                result,
                "open.txt:1:hunter2-open\n[left out 1 file(s) a deny or ask rule covers]"
            ),
            false => assert_eq!(
                result,
                "open.txt:1:hunter2-open\nprivate/key.txt:1:hunter2-private"
            ),
        }
    }
}

/// Dotted names a pattern names are found (`.github/**`); a pattern that does not name
/// them leaves them out and says so.
#[test]
fn a_pattern_naming_a_dotted_folder_finds_it() {
    let server = FakeServer::start(vec![
        Reply::calls(vec![
            call("glob", json!({"pattern": ".github/**"})),
            call("glob", json!({"pattern": "**/*.yml"})),
            call("grep", json!({"pattern": "on:", "glob": ".github/**"})),
        ]),
        Reply::text("done"),
    ]);
    let nib = Nib::against(&server, Protocol::OpenAi).args(["-p", "look"]);
    nib.put(".github/workflows/ci.yml", "on: push\n");
    nib.put("app.yml", "name: app\n");
    let out = nib.run();
    assert_eq!(out.code(), 0, "{out}");
    let results = server.chat_requests()[1].tool_results();
    assert_eq!(results[0].content, ".github/workflows/ci.yml");
    assert_eq!(
        results[1].content,
        "app.yml\n[left out 1 hidden and 0 ignored: .github/; \
         name dotted files in the pattern (.env*, .github/**) to include them]"
    );
    assert_eq!(results[2].content, ".github/workflows/ci.yml:1:on: push");
}
