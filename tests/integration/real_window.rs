//! The context window against the real llama.cpp server of `scripts/local-model`
//! (SmolLM2-135M, an 8,192-token window): nib's count of a request matches the real
//! tokenizer within 10 % on digits, code, CJK and prose; a session stuck on a huge
//! tool result resumes; README's first command ends without a loop. Ignored by
//! default, like `real_model`.

use crate::real_model::{journal, real_nib, server_url};
use crate::support::*;
use serde_json::json;

/// How far nib's count may be from the server's: the bar.
const TOLERANCE_PERCENT: u64 = 10;
/// The server's window (`scripts/local-model` starts it with 8,192).
const WINDOW: u64 = 8192;

/// The first `max` bytes of `text`, at a character boundary.
fn head(text: &str, max: usize) -> String {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// Texts of each kind, about a thousand tokens each (a count request is cheap; CPU
/// inference of the prompt is not).
fn samples() -> Vec<(&'static str, String)> {
    let digits: String = (1..300).map(|i| format!("{i}\n")).collect();
    let code = head(include_str!("../../src/agent.rs"), 3000);
    let cjk = "这是一个测试。我们正在检查分词器如何处理中文文本，以及它需要多少个标记。日本語のテキストも少し入れます。"
        .repeat(12);
    let prose = head(include_str!("../../README.md"), 3000);
    vec![
        ("digits", digits),
        ("code", code),
        ("cjk", cjk),
        ("prose", prose),
    ]
}

/// The `context: N / W tokens` lines of a verbose run.
fn fills(stderr: &str) -> Vec<(u64, u64)> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("nib: context: "))
        .filter_map(|l| {
            // `N / W tokens (P%)`; other context lines (what trimming did) are skipped.
            let words: Vec<&str> = l.split(' ').collect();
            Some((words.first()?.parse().ok()?, words.get(2)?.parse().ok()?))
        })
        .collect()
}

#[test]
#[ignore = "needs the real local model: scripts/test"]
fn token_counts_match_the_real_tokenizer() {
    for (kind, text) in samples() {
        let nib = real_nib(&format!("Say OK.\n\n{text}"))
            .args([
                "--base-url",
                &server_url(),
                "--max-turns",
                "1",
                "--tools",
                "bash",
            ])
            .args(["--verbose", "--output-format", "json"]);
        nib.settings(&json!({"max_output_tokens": 4}));
        let out = nib.run();
        assert!(matches!(out.code(), 0 | 1), "{kind}: {out}");
        let fill = fills(&out.stderr);
        assert_eq!(fill.len(), 1, "{kind}: {}", out.stderr);
        let (counted, window) = fill[0];
        assert_eq!(window, WINDOW, "the window comes from the server's /props");
        let records = journal(&nib);
        let reply = records
            .iter()
            .find(|r| r["type"] == "assistant")
            .expect("a reply");
        let usage = &reply["usage"];
        let actual = [
            "input_tokens",
            "cache_read_input_tokens",
            "cache_creation_input_tokens",
        ]
        .iter()
        .map(|k| usage[k].as_u64().unwrap_or(0))
        .sum::<u64>();
        let off = counted.abs_diff(actual) * 100 / actual;
        assert!(
            off <= TOLERANCE_PERCENT,
            "{kind}: nib said {counted}, the server {actual}"
        );
        // Control: four bytes a token would be far off for digits and CJK.
        let naive = text.len() as u64 / 4;
        if kind == "digits" || kind == "cjk" {
            assert!(naive * 100 < actual * 70, "{kind}: {naive} vs {actual}");
        }
    }
}

#[test]
#[ignore = "needs the real local model: scripts/test"]
fn a_session_stuck_on_a_huge_result_resumes_on_an_8k_model() {
    // The session: `seq 1 5000` ran while the window seemed large (a scripted model).
    let fake = FakeServer::start(vec![
        Reply::tool_call("bash", json!({"command": "seq 1 5000"})),
        Reply::text("I counted to 5000."),
    ]);
    // CPU inference of a 4k-token prompt: minutes on a busy 2-core machine.
    let nib = Nib::new().args(["--yes", "--verbose"]).timeout(1500);
    nib.settings(&json!({"context_window": 100_000}));
    let out = nib.run_with([
        "-p",
        "count to 5000 with seq",
        "--base-url",
        &fake.base_v1(),
    ]);
    assert_eq!(out.code(), 0, "{out}");
    let big = fake.chat_requests()[1].tool_results()[0].content.len();
    assert!(big > 12_000, "{big}");

    // Then `-c` on the real 8k model: 12k tokens of digits would not fit.
    nib.settings(&json!({"max_output_tokens": 64}));
    let out = nib.run_with([
        "-c",
        "-p",
        "What was the last number?",
        "--max-turns",
        "1",
        "--output-format",
        "json",
        "--base-url",
        &server_url(),
    ]);
    // Answered: with text, or with a tool call that the turn limit stops.
    let subtype = out.json()["subtype"].as_str().map(String::from);
    assert!(
        matches!(subtype.as_deref(), Some("success" | "error_max_turns")),
        "{out}"
    );
    assert!(
        out.stderr
            .contains("cut the latest 1 to fit the context window"),
        "{}",
        out.stderr
    );
    let (counted, window) = *fills(&out.stderr).last().unwrap();
    assert_eq!(window, WINDOW);
    assert!(counted < WINDOW * 80 / 100, "{counted}");
    let records = journal(&nib);
    let compacted = records
        .iter()
        .rposition(|r| r["type"] == "compacted")
        .expect("compacted");
    let reply = records[compacted..]
        .iter()
        .find(|r| r["type"] == "assistant")
        .expect("a reply from the real server after compacting");
    let input = reply["usage"]["input_tokens"].as_u64().unwrap_or(0)
        + reply["usage"]["cache_read_input_tokens"]
            .as_u64()
            .unwrap_or(0);
    let off = counted.abs_diff(input) * 100 / input;
    assert!(
        off <= TOLERANCE_PERCENT,
        "nib counted {counted}, the server saw {input}"
    );
}

#[test]
#[ignore = "needs the real local model: scripts/test"]
fn readme_first_command_ends_without_a_loop() {
    // README's first command, with the default output cap: SmolLM2 used to repeat two
    // lines until the cap (about 80 s). Its time is measured by scripts/bench.
    let nib = Nib::new()
        .args([
            "-p",
            "what files are in this repo?",
            "--allowedTools",
            "Bash",
        ])
        .args(["--base-url", &server_url()])
        .timeout(600);
    nib.put("scripts/test", "#!/bin/sh\n");
    nib.put("README.md", "# demo\n");
    let out = nib.run();
    assert!(matches!(out.code(), 0 | 1), "{out}");
    for line in out.stdout.lines().filter(|l| !l.trim().is_empty()) {
        let n = out.stdout.lines().filter(|l| *l == line).count();
        assert!(n <= 4, "{line:?} {n} times:\n{}", out.stdout);
    }
}
