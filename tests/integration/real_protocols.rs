//! nib against the real llama.cpp server over all three of its protocols
//! (`/v1/chat/completions`, `/v1/messages`, `/v1/responses`): a real tool call on each,
//! and one session that moves across the three. Ignored by default, like `real_model`.

use crate::real_model::{assert_ended_within, journal, of_type, real_nib, server_url};
use serde_json::Value;

/// Each protocol: the `--provider` value and the base URL nib is given.
fn protocols() -> [(&'static str, String); 3] {
    let v1 = server_url();
    let root = v1.trim_end_matches('/').trim_end_matches("/v1").to_string();
    [
        ("openai", v1.clone()),
        ("anthropic", root),
        ("openai-responses", v1),
    ]
}

/// The calls of every assistant record.
fn calls(records: &[Value]) -> Vec<Value> {
    of_type(records, "assistant")
        .into_iter()
        .flat_map(|a| a["calls"].as_array().cloned().unwrap_or_default())
        .collect()
}

#[test]
#[ignore = "needs the real local model: scripts/test"]
fn each_protocol_runs_a_real_tool_call() {
    for (provider, base) in protocols() {
        let nib = real_nib("Run the shell command ls and tell me what it printed")
            .args(["--provider", provider, "--base-url", &base])
            .args([
                "--allowedTools",
                "Bash",
                "--max-turns",
                "2",
                "--output-format",
                "json",
            ]);
        nib.put("hello.txt", "hi\n");
        let out = nib.run();
        let result = assert_ended_within(&out, 2);
        assert!(result["stop_reason"].is_string(), "{provider}: {out}");
        let records = journal(&nib);
        assert_eq!(records[0]["provider"], provider);
        let calls = calls(&records);
        assert!(
            !calls.is_empty(),
            "{provider}: the model made a tool call: {records:?}"
        );
        let results = of_type(&records, "tool_result");
        assert_eq!(
            results.len(),
            calls.len(),
            "{provider}: every call has a result"
        );
        assert_eq!(calls[0]["id"], results[0]["id"], "{provider}");
        let ran = results.iter().any(|r| {
            let content = r["content"].as_str().unwrap_or("");
            content.starts_with("exit status: 0") && content.contains("hello.txt")
        });
        let bash = calls
            .iter()
            .any(|c| c["name"] == "bash" && c.get("invalid").is_none());
        assert!(
            !bash || ran,
            "{provider}: a valid bash call ran ls: {records:?}"
        );
        assert!(
            result["usage"]["input_tokens"].as_u64().unwrap_or(0) > 100,
            "{provider}: usage read from the stream: {out}"
        );
    }
}

#[test]
#[ignore = "needs the real local model: scripts/test"]
fn a_session_moves_across_the_three_protocols() {
    let [openai, anthropic, responses] = protocols();
    let nib = real_nib("Run the shell command ls and tell me what it printed").args([
        "--allowedTools",
        "Bash",
        "--max-turns",
        "2",
        "--output-format",
        "json",
    ]);
    nib.put("hello.txt", "hi\n");
    for (n, (provider, base)) in [openai, anthropic, responses].into_iter().enumerate() {
        let mut args = vec!["--provider", provider, "--base-url", &base];
        if n > 0 {
            args.push("-c");
        }
        let out = nib.run_with(args);
        assert_ended_within(&out, 2);
    }
    let records = journal(&nib);
    assert_eq!(
        records[0]["provider"], "openai",
        "one session, started on chat"
    );
    assert_eq!(
        of_type(&records, "end").len(),
        3,
        "three tasks in one journal"
    );
    assert!(
        !calls(&records).is_empty(),
        "a real tool call on the way: {records:?}"
    );
    // Each task's first request carried the history before it, so the server counted
    // more input for it than for the previous task's first request.
    let mut firsts = Vec::new();
    let mut open = true;
    for r in &records {
        match r["type"].as_str() {
            Some("assistant") if open => {
                let u = &r["usage"];
                let input = u["input_tokens"].as_u64().unwrap_or(0)
                    + u["cache_read_input_tokens"].as_u64().unwrap_or(0);
                firsts.push(input);
                open = false;
            }
            Some("end") => open = true,
            _ => {}
        }
    }
    assert_eq!(firsts.len(), 3, "{records:?}");
    assert!(firsts[1] > firsts[0] && firsts[2] > firsts[1], "{firsts:?}");
}
