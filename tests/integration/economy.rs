//! Tokens, money and context: the first request stays small and its prefix stable,
//! a budget stops a run before it overspends (with prices from settings), and a
//! conversation that fills a (tiny) context window is compacted, journaled, and
//! resumed from its summary.

use crate::support::fake::Recorded;
use crate::support::*;
use serde_json::{Value, json};
use std::fs;

/// The prompt every agent in the comparison table of README was given.
const PEER_PROMPT: &str = "Run the shell command echo hello-from-tool and then reply DONE";
/// The goals of the issue: the first request with every tool, and with bash alone.
const FULL_LIMIT: usize = 2_500;
const BASH_ONLY_LIMIT: usize = 1_300;
/// The system prompt names the working directory; the test sandbox's is much longer
/// than a usual one, so sizes are counted as if it were this long.
const USUAL_PATH: usize = 40;

fn settings(nib: &Nib, value: Value) {
    let dir = nib.config_home().join("nib");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("settings.json"), value.to_string()).unwrap();
}

/// The part of a request that should never change between turns: system prompt and tools.
fn prefix(r: &Recorded) -> Value {
    match r.protocol() {
        Some(Protocol::OpenAi) => json!([r.body["messages"][0], r.body["tools"]]),
        _ => json!([r.body["system"], r.body["tools"]]),
    }
}

/// Every journal record of the only session, parsed.
fn journal(nib: &Nib) -> Vec<Value> {
    let files = nib.journal_files();
    assert_eq!(files.len(), 1, "{files:?}");
    parse_json_lines(&fs::read_to_string(&files[0]).unwrap())
}

/// A bash call printing `n` copies of `c`.
fn print_call(c: char, n: usize) -> Reply {
    let command = format!("head -c {n} /dev/zero | tr '\\0' {c}");
    Reply::tool_call("bash", json!({ "command": command }))
}

both_protocols! {
    fn first_request_is_small_and_its_prefix_stable(p: Protocol) {
        for (tools, limit) in [(None, FULL_LIMIT), (Some("bash"), BASH_ONLY_LIMIT)] {
            let server = FakeServer::start(vec![
                Reply::tool_call("bash", json!({"command": "echo hello-from-tool"})),
                Reply::text("DONE"),
            ]);
            let mut nib = Nib::against(&server, p).args(["-p", PEER_PROMPT, "--yes"]);
            if let Some(tools) = tools {
                nib = nib.args(["--tools", tools]);
            }
            let out = nib.run();
            assert_eq!(out.code(), 0, "{out}");
            let requests = server.chat_requests();
            assert_eq!(requests.len(), 2);
            let path = nib.work().canonicalize().unwrap().display().to_string().len();
            let size = requests[0].body_len + USUAL_PATH - path;
            assert!(size < limit, "tools {tools:?}: first request is {size} bytes");
            assert!(size > limit / 4, "tools {tools:?}: {size} bytes is not a real request");
            assert_eq!(prefix(&requests[0]), prefix(&requests[1]), "tools {tools:?}");
            assert!(!prefix(&requests[0])[1].is_null(), "tools are offered");
        }
    }

    fn a_budget_stops_before_the_request_that_would_cross_it(p: Protocol) {
        // 4000 bytes of tool output make the second request cost about $2 more.
        let server = FakeServer::start(vec![print_call('x', 4000), Reply::text("Finished.")]);
        let nib = Nib::against(&server, p).args([
            "-p", "do the task", "--yes", "--output-format", "json", "--max-budget-usd", "2",
        ]);
        // $1000 per million tokens: a tenth of a cent per token.
        settings(&nib, json!({"prices": {"fake-model": {"input": 1000, "output": 1000}}}));
        let out = nib.run();
        assert_eq!(out.code(), 1, "{out}");
        let v = out.json();
        assert_eq!(v["subtype"], "error_max_budget_usd", "{v}");
        assert_eq!(server.chat_requests().len(), 1, "the second request is never sent");
        let spent = v["total_cost_usd"].as_f64().unwrap();
        assert!(spent > 0.1 && spent <= 2.0, "{v}");
        let error = v["errors"][0].as_str().unwrap();
        assert!(error.contains(&format!("(spent ${spent:.4})")), "{error}");
        let end = journal(&nib).into_iter().rfind(|r| r["type"] == "end").unwrap();
        assert_eq!(end["subtype"], "error_max_budget_usd");
        assert_eq!(end["cost_usd"], v["total_cost_usd"]);
    }

    fn a_full_window_is_compacted_and_resumes_from_the_summary(p: Protocol) {
        // Results too small to be worth clearing or cutting: only a summary makes room.
        let server = FakeServer::start(vec![
            print_call('A', 280),
            print_call('B', 280),
            Reply::text("SUMMARY-OF-A"),
            Reply::text("Finished."),
        ]);
        let nib = Nib::against(&server, p).args(["-p", "--yes"]).stdin("do the task");
        // About 550 tokens of system prompt and tools: the third request crosses 80%.
        settings(&nib, json!({"context_window": 1000}));
        let out = nib.run();
        assert_eq!(out.code(), 0, "{out}");
        assert_eq!(out.stdout, "Finished.\n");
        let requests = server.chat_requests();
        assert_eq!(requests.len(), 4, "two turns, the summary, the last turn");

        // The summary request: no tools, the older turns as text.
        let summary = &requests[2];
        assert!(summary.tool_names().is_empty(), "{}", summary.body);
        let asked = summary.last_user_text();
        assert!(asked.contains("user: do the task") && asked.contains("AAAA"), "{asked}");
        assert!(!asked.contains("BBBB"), "the latest exchange is kept, not summarised");

        // The next request: summary + prompt, then the latest exchange verbatim.
        let next = &requests[3];
        let text = String::from_utf8_lossy(&next.raw_body);
        assert!(!text.contains("AAAA"), "the summarised output is gone");
        let results = next.tool_results();
        assert_eq!(results.len(), 1, "{}", next.body);
        assert!(results[0].content.contains(&"B".repeat(280)));
        assert_eq!(next.assistant_calls().len(), 1);
        assert_eq!(prefix(next), prefix(&requests[0]), "the prefix survives compaction");
        let first_user = next.body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["role"] == "user")
            .unwrap()
            .to_string();
        assert!(first_user.contains("[summary of earlier conversation]\\nSUMMARY-OF-A"));
        assert!(first_user.contains("do the task"), "the prompt is kept verbatim");

        // The journal: a compacted record, and the full history still on disk.
        let records = journal(&nib);
        let compacted = records.iter().find(|r| r["type"] == "compacted").unwrap();
        assert_eq!(compacted["summary"], "SUMMARY-OF-A");
        assert_eq!(compacted["replaced"], 3);
        assert!(
            records.iter().any(|r| r["type"] == "tool_result"
                && r["content"].as_str().unwrap().contains("AAAA")),
            "the replaced turns stay in the journal"
        );

        // Resume: the conversation starts from the summary.
        server.push(Reply::text("Resumed."));
        let out = nib.arg("-c").stdin("next step").run();
        assert_eq!(out.code(), 0, "{out}");
        let resumed = server.chat_requests().pop().unwrap();
        let text = String::from_utf8_lossy(&resumed.raw_body);
        assert!(text.contains("SUMMARY-OF-A") && text.contains("BBBB"), "{text}");
        assert!(!text.contains("AAAA"), "{text}");
        assert_eq!(resumed.last_user_text(), "next step");
    }

    fn a_failed_summary_drops_the_older_turns_with_a_note(p: Protocol) {
        let server = FakeServer::start(vec![
            print_call('A', 1500),
            print_call('B', 1500),
            Reply::status(400, &[], r#"{"error":{"message":"no summaries today"}}"#),
            Reply::text("Finished."),
        ]);
        let nib = Nib::against(&server, p).args(["-p", "do the task", "--yes", "--verbose"]);
        settings(&nib, json!({"context_window": 1000}));
        let out = nib.run();
        assert_eq!(out.code(), 0, "{out}");
        assert!(out.stderr.contains("could not summarise"), "{}", out.stderr);
        let next = server.chat_requests().pop().unwrap();
        let text = String::from_utf8_lossy(&next.raw_body);
        assert!(text.contains("earlier messages were dropped"), "{text}");
        assert!(!text.contains("AAAA") && text.contains("BBBB"));
    }
}
