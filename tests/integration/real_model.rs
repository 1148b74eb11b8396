//! nib against a real model server: llama.cpp with SmolLM2-135M, started by
//! `scripts/local-model start` (temperature 0, so runs repeat). Ignored by default;
//! `scripts/test` starts the server, sets `NIB_TEST_LLM_URL` and runs them.
//!
//! A 135M model chooses poorly, so these tests assert protocol and agent behaviour —
//! a tool call was gated, run, capped, journaled and fed back; the run ended within
//! its step limit with the right exit code — never the model's wisdom.

use crate::support::nib::{Nib, Output};
use serde_json::Value;
use std::fs;

/// Real CPU inference: a few seconds per turn when the machine is idle, much more on
/// a busy one.
const TIMEOUT_SECS: u64 = 600;

/// Output tokens per reply: a looping 135M model stops early instead of filling its
/// context, which keeps each turn to a few seconds.
const SETTINGS: &str = r#"{"max_output_tokens": 128}"#;

/// A nib against the real server, with the short-reply settings.
pub(crate) fn real_nib(prompt: &str) -> Nib {
    let nib = Nib::new().args(["-p", prompt]).timeout(TIMEOUT_SECS);
    let dir = nib.config_home().join("nib");
    fs::create_dir_all(&dir).expect("config dir");
    fs::write(dir.join("settings.json"), SETTINGS).expect("settings");
    nib
}

pub(crate) fn server_url() -> String {
    std::env::var("NIB_TEST_LLM_URL").expect(
        "NIB_TEST_LLM_URL is not set: start the server with scripts/local-model start \
         and run scripts/test (or set NIB_TEST_LLM_URL=http://127.0.0.1:8081/v1)",
    )
}

/// Every journal record of the run's single session.
pub(crate) fn journal(nib: &Nib) -> Vec<Value> {
    let files = nib.journal_files();
    assert_eq!(files.len(), 1, "one session journal: {files:?}");
    fs::read_to_string(&files[0])
        .expect("read the journal")
        .lines()
        .map(|l| serde_json::from_str(l).expect("every journal line is JSON"))
        .collect()
}

pub(crate) fn of_type<'a>(records: &'a [Value], kind: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["type"] == kind).collect()
}

/// A finished headless run: success, stopped at the turn limit, or a reply cut by the
/// short output cap twice (a rambling 135M model, `stop_reason: max_tokens`) — nothing else.
pub(crate) fn assert_ended_within(out: &Output, max_turns: u64) -> Value {
    let result = out.json();
    let turns = result["num_turns"].as_u64().expect("num_turns");
    assert!(turns >= 1 && turns <= max_turns, "{turns} turns: {out}");
    match result["subtype"].as_str() {
        Some("success") => assert_eq!(out.code(), 0, "{out}"),
        Some("error_max_turns") => {
            assert_eq!(out.code(), 1, "{out}");
            assert_eq!(turns, max_turns, "{out}");
        }
        Some("error_during_execution") if result["stop_reason"] == "max_tokens" => {
            assert_eq!(out.code(), 1, "{out}");
        }
        other => panic!("unexpected end {other:?}: {out}"),
    }
    result
}

#[test]
#[ignore = "needs the real local model: scripts/test"]
fn a_task_runs_a_real_tool_call_and_journals_it() {
    let nib = real_nib("Run the shell command ls and tell me what it printed")
        .args(["--base-url", &server_url(), "--allowedTools", "Bash"])
        .args(["--max-turns", "4", "--output-format", "json"]);
    nib.put("hello.txt", "hi\n");
    let out = nib.run();
    let result = assert_ended_within(&out, 4);
    assert_eq!(result["session_id"].as_str().map(str::len), Some(36));

    let records = journal(&nib);
    assert_eq!(records[0]["type"], "meta");
    assert_eq!(records[0]["provider"], "openai");
    let calls: Vec<&Value> = of_type(&records, "assistant")
        .into_iter()
        .flat_map(|a| a["calls"].as_array().into_iter().flatten())
        .collect();
    assert!(!calls.is_empty(), "the model made a tool call: {records:?}");
    let results = of_type(&records, "tool_result");
    assert_eq!(results.len(), calls.len(), "every call has a result");
    for (call, result) in calls.iter().zip(&results) {
        assert_eq!(
            call["id"], result["id"],
            "results answer their calls in order"
        );
        let content = result["content"].as_str().unwrap_or("");
        assert!(content.len() <= 12_288, "capped: {} bytes", content.len());
        // A call repeated once too often is not run again: the loop guard answers it
        // with the earlier result, which still carries its status.
        let ran = content
            .strip_prefix("not run: you already made this exact call")
            .and_then(|rest| rest.split_once("It returned:\n"))
            .map_or(content, |(_, earlier)| earlier);
        if call["name"] == "bash" && call.get("invalid").is_none() {
            assert!(
                ran.starts_with("exit status: ") || ran.starts_with("timed out"),
                "a bash result starts with its status: {content:?}"
            );
        }
    }
    let end = of_type(&records, "end");
    assert_eq!(end.len(), 1);
    assert_eq!(end[0]["subtype"], result["subtype"]);
    assert!(end[0]["usage"]["input_tokens"].as_u64().unwrap_or(0) > 100);
}

#[test]
#[ignore = "needs the real local model: scripts/test"]
fn the_local_server_is_found_without_configuration() {
    // Only look for it when it runs where nib probes (scripts/local-model's default port).
    let url = server_url();
    assert!(
        url.contains("127.0.0.1:8081") || url.contains("localhost:8081"),
        "scripts/test runs the server on 8081, a port nib probes; got {url}"
    );
    let out = real_nib("Say hello in one word.")
        .args([
            "--max-turns",
            "1",
            "--output-format",
            "stream-json",
            "--tools",
            "read",
        ])
        .run();
    let lines = out.lines();
    let init = lines.first().expect("an init line");
    assert_eq!(init["subtype"], "init", "{out}");
    assert_eq!(
        init["model"], "smollm2-135m",
        "the model the server reports"
    );
    let last = lines.last().expect("a result line");
    assert_eq!(last["type"], "result");
    assert!(matches!(out.code(), 0 | 1), "{out}");
}

#[test]
#[ignore = "needs the real local model: scripts/test"]
fn a_headless_run_denies_what_nobody_allowed() {
    let nib = real_nib("Run the shell command touch marker.txt")
        .args(["--base-url", &server_url(), "--max-turns", "2"])
        .args(["--output-format", "json"]);
    let out = nib.run();
    let result = assert_ended_within(&out, 2);
    assert!(
        !nib.work().join("marker.txt").exists(),
        "a denied command never runs"
    );
    let records = journal(&nib);
    let touched: Vec<&Value> = of_type(&records, "assistant")
        .into_iter()
        .flat_map(|a| a["calls"].as_array().into_iter().flatten())
        .filter(|c| {
            c["input"]["command"]
                .as_str()
                .is_some_and(|s| s.contains("touch"))
        })
        .collect();
    // At temperature 0 this prompt makes SmolLM2 call bash; if a new model or engine
    // stops doing so, pick a prompt that does, or this test checks nothing.
    assert!(
        !touched.is_empty(),
        "the model asked to run touch: {records:?}"
    );
    let denials = result["permission_denials"].as_array().expect("denials");
    assert_eq!(
        denials.len(),
        touched.len(),
        "every touch the model asked for was denied: {out}"
    );
    for d in denials {
        assert_eq!(d["tool_name"], "bash");
    }
    for r in of_type(&records, "tool_result") {
        let content = r["content"].as_str().unwrap_or("");
        if content.starts_with("denied") {
            assert!(
                content.contains("--allowedTools"),
                "says how to allow: {content}"
            );
        }
    }
}
