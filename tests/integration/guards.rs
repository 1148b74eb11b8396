//! The guards against a model going round in circles: a reply that falls into a loop
//! is cut (text kept up to the loop and the repeated block once, `stop_reason`
//! "repetition", one line to the user), while tables, lists and code pass untouched;
//! the same tool call made again and again is answered from its last result instead
//! of running, and after a few more the task ends with a reason.

use crate::support::*;
use serde_json::json;
use std::time::{Duration, Instant};

/// SmolLM2-135M's answer to README's first command: two lines repeated until the cap.
fn looping_answer() -> String {
    let mut text =
        String::from("The files in this repo are:\n\n- `scripts/test`\n- `scripts/test`\n");
    text.push_str("- `tools/test`\n- `tools/test`\n- `tools/test`\n");
    text + &"- `scripts/test`\n- `scripts/test`\n- `tools/test`\n- `tools/test`\n".repeat(60)
}

/// What the guard keeps of `looping_answer`: up to the loop, and its block once.
const KEPT: &str = "The files in this repo are:\n\n- `scripts/test`\n- `scripts/test`\n\
- `tools/test`\n- `tools/test`\n- `tools/test`\n- `scripts/test`\n- `scripts/test`\n";

/// Legitimate answers with a lot of repetition in them.
fn repetitive_but_fine() -> Vec<String> {
    let table = format!(
        "| file | lines |\n|---|---|\n{}",
        (1..80)
            .map(|i| format!("| src/mod{i}.rs | {} |\n", i * 7))
            .collect::<String>()
    );
    let files: String = (1..80)
        .map(|i| format!("- `tests/case_{i}.txt`\n"))
        .collect();
    let code = format!(
        "```rust\n{}```\n",
        (1..40)
            .map(|i| format!("    assert_eq!(parse(\"{i}\"), Ok({i}));\n    }}\n}}\n\n"))
            .collect::<String>()
    );
    let prose = "The first step reads the file. The second step parses it. The third step \
                 checks it. The fourth step writes it back. "
        .to_string();
    vec![table, files, code, prose]
}

fn asked(server: &FakeServer, p: Protocol) -> Nib {
    Nib::against(server, p).args([
        "-p",
        "what files are in this repo?",
        "--output-format",
        "json",
    ])
}

both_protocols! {
    fn a_looping_reply_is_cut_with_a_reason_and_one_line(p: Protocol) {
        let server = FakeServer::start(vec![Reply::text(&looping_answer())]);
        let nib = asked(&server, p);
        let out = nib.run();
        assert_eq!(out.code(), 0, "{out}");
        let v = out.json();
        assert_eq!(v["result"], KEPT, "{v}");
        assert_eq!(v["stop_reason"], "repetition", "{v}");
        assert_eq!(v["subtype"], "success");
        let said: Vec<&str> = out.stderr.lines().filter(|l| l.contains("loop")).collect();
        assert_eq!(said.len(), 1, "{}", out.stderr);
        assert!(said[0].starts_with("nib: warning: the model's reply fell into a loop"));
        // The journal keeps the cut text and says why it ended.
        let journal = std::fs::read_to_string(&nib.journal_files()[0]).unwrap();
        let records = parse_json_lines(&journal);
        let reply = records.iter().find(|r| r["type"] == "assistant").unwrap();
        assert_eq!(reply["text"], KEPT, "{reply}");
        assert_eq!(reply["stop"], json!({"other": "repetition"}), "{reply}");
    }

    fn legitimate_repetition_passes_untouched(p: Protocol) {
        for text in repetitive_but_fine() {
            let server = FakeServer::start(vec![Reply::text(&text)]);
            let out = asked(&server, p).run();
            assert_eq!(out.code(), 0, "{out}");
            let v = out.json();
            assert!(v["result"] == text.as_str(), "{}", &text[..200]);
            assert_eq!(v["stop_reason"], "end_turn");
            assert!(!out.stderr.contains("loop"), "{}", out.stderr);
        }
    }

    fn a_looping_stream_is_not_read_to_its_end(p: Protocol) {
        // The same slow stream of pieces, once looping (the loop is plain in its first
        // piece) and once fine: the looping one is left long before its end.
        let timed = |text: &str| {
            let server = FakeServer::start(vec![Reply::text(text).slow(1000)]);
            let started = Instant::now();
            let out = Nib::against(&server, p)
                .args(["-p", "list", "--output-format", "stream-json", "--verbose"])
                .run();
            assert_eq!(out.code(), 0, "{out}");
            (started.elapsed(), out.lines())
        };
        let fine = repetitive_but_fine().swap_remove(1);
        let (whole, lines) = timed(&fine);
        let result = lines.last().unwrap();
        assert_eq!(result["stop_reason"], "end_turn", "{result}");
        let (cut, lines) = timed(&looping_answer());
        assert!(cut + Duration::from_millis(1500) < whole, "{cut:?} vs {whole:?}");
        let assistant = lines.iter().find(|l| l["type"] == "assistant").unwrap();
        assert_eq!(assistant["message"]["stop_reason"], "repetition", "{assistant}");
        let result = lines.last().unwrap();
        assert_eq!(result["stop_reason"], "repetition", "{result}");
    }

    fn the_same_call_again_and_again_is_answered_then_stopped(p: Protocol) {
        let count = json!({"command": "echo ran >> count.txt; echo RESULT-OF-THE-CALL"});
        let replies = (0..8).map(|_| Reply::tool_call("bash", count.clone())).collect();
        let server = FakeServer::start(replies);
        let nib = Nib::against(&server, p).args(["-p", "count", "--yes", "--output-format", "json"]);
        let out = nib.run();
        assert_eq!(out.code(), 1, "{out}");
        let v = out.json();
        assert_eq!(v["subtype"], "error_during_execution", "{v}");
        let error = v["errors"][0].as_str().unwrap();
        assert!(error.contains("the same call 5 times in a row"), "{error}");
        assert_eq!(nib.read("count.txt").unwrap(), "ran\nran\n", "it ran twice, then never");
        // The third request carries the reminder with what the call returned.
        let requests = server.chat_requests();
        assert_eq!(requests.len(), 5, "the fifth call ends the task");
        let reminder = &requests[3].tool_results()[2].content;
        assert!(reminder.starts_with("not run: you already made this exact call 2 times"), "{reminder}");
        assert!(reminder.contains("RESULT-OF-THE-CALL"), "{reminder}");
    }

    fn different_calls_in_turn_all_run(p: Protocol) {
        let replies = (0..8)
            .map(|i| {
                let command = format!("echo ran >> count.txt; echo {}", i % 2);
                Reply::tool_call("bash", json!({ "command": command }))
            })
            .chain([Reply::text("done")])
            .collect();
        let server = FakeServer::start(replies);
        let nib = Nib::against(&server, p).args(["-p", "count", "--yes", "--output-format", "json"]);
        let out = nib.run();
        assert_eq!(out.code(), 0, "{out}");
        assert_eq!(out.json()["result"], "done");
        assert_eq!(nib.read("count.txt").unwrap().lines().count(), 8);
    }
}
