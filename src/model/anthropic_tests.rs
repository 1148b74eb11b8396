use super::*;
use crate::model::ToolCall;
use crate::model::testing::{self, ev, request, tool};

fn parse(input: &str) -> (Result<Reply, Error>, String) {
    testing::parse(read, input)
}

fn start() -> String {
    ev(
        json!({"type": "message_start", "message": {"id": "msg_1", "role": "assistant",
        "usage": {"input_tokens": 20, "cache_read_input_tokens": 100,
                  "cache_creation_input_tokens": 5, "output_tokens": 1}}}),
    )
}

fn text_block(index: u64, text: &str) -> String {
    [
        ev(json!({"type": "content_block_start", "index": index,
                  "content_block": {"type": "text", "text": ""}})),
        ev(json!({"type": "content_block_delta", "index": index,
                  "delta": {"type": "text_delta", "text": text}})),
        ev(json!({"type": "content_block_stop", "index": index})),
    ]
    .concat()
}

fn tool_start(index: u64, id: &str, name: &str) -> String {
    ev(json!({"type": "content_block_start", "index": index,
              "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}}))
}

fn json_delta(index: u64, partial: &str) -> String {
    ev(json!({"type": "content_block_delta", "index": index,
              "delta": {"type": "input_json_delta", "partial_json": partial}}))
}

fn stop(reason: &str) -> String {
    [
        ev(
            json!({"type": "message_delta", "delta": {"stop_reason": reason},
                  "usage": {"output_tokens": 42}}),
        ),
        ev(json!({"type": "message_stop"})),
    ]
    .concat()
}

const PING: &str = "event: ping\ndata: {\"type\": \"ping\"}\n\n";

#[test]
fn text_tools_and_usage() {
    let input = [
        start(),
        PING.into(),
        text_block(0, "Let me look."),
        tool_start(1, "toolu_1", "read"),
        tool_start(2, "toolu_2", "bash"),
        json_delta(1, "{\"path\""),
        json_delta(2, "{\"cmd\": \"ls\"}"),
        json_delta(1, ": \"a.rs\"}"),
        PING.into(),
        ev(json!({"type": "content_block_stop", "index": 1})),
        ev(json!({"type": "content_block_stop", "index": 2})),
        stop("tool_use"),
    ]
    .concat();
    let (reply, streamed) = parse(&input);
    let reply = reply.unwrap();
    assert_eq!(streamed, "Let me look.");
    assert_eq!(reply.text, "Let me look.");
    assert_eq!(reply.stop, StopReason::ToolUse);
    let calls: Vec<_> = reply
        .calls
        .iter()
        .map(|c| {
            (
                c.id.as_str(),
                c.name.as_str(),
                c.input.clone(),
                c.invalid.is_some(),
            )
        })
        .collect();
    assert_eq!(
        calls,
        vec![
            ("toolu_1", "read", json!({"path": "a.rs"}), false),
            ("toolu_2", "bash", json!({"cmd": "ls"}), false),
        ]
    );
    assert_eq!(
        reply.usage,
        Some(Usage {
            input_tokens: 20,
            output_tokens: 42,
            cache_read_input_tokens: 100,
            cache_creation_input_tokens: 5,
        })
    );
}

#[test]
fn empty_and_invalid_tool_input() {
    let input = [
        start(),
        tool_start(0, "t0", "list"),
        tool_start(1, "t1", "read"),
        json_delta(1, "{\"path\": "),
        stop("tool_use"),
    ]
    .concat();
    let reply = parse(&input).0.unwrap();
    assert_eq!(reply.calls[0].input, json!({}));
    assert_eq!(reply.calls[0].invalid, None);
    let why = reply.calls[1].invalid.as_deref().unwrap();
    assert!(why.starts_with("arguments are not valid JSON: "), "{why}");
}

#[test]
fn max_tokens_marks_calls_invalid() {
    let input = [
        start(),
        tool_start(0, "t0", "write"),
        json_delta(0, "{\"path\": \"a\"}"),
        stop("max_tokens"),
    ]
    .concat();
    let reply = parse(&input).0.unwrap();
    assert_eq!(reply.stop, StopReason::MaxTokens);
    assert!(
        reply.calls[0]
            .invalid
            .as_deref()
            .unwrap()
            .contains("output token limit")
    );
}

#[test]
fn thinking_blocks_are_skipped() {
    let input = [
        start(),
        ev(json!({"type": "content_block_start", "index": 0,
                  "content_block": {"type": "thinking", "thinking": ""}})),
        ev(json!({"type": "content_block_delta", "index": 0,
                  "delta": {"type": "thinking_delta", "thinking": "hmm"}})),
        text_block(1, "done"),
        stop("end_turn"),
    ]
    .concat();
    let (reply, streamed) = parse(&input);
    assert_eq!(reply.unwrap().text, "done");
    assert_eq!(streamed, "done");
}

#[test]
fn thinking_blocks_are_kept_whole_and_go_back_first() {
    let redacted = json!({"type": "redacted_thinking", "data": "RD+x/=="});
    let input = [
        start(),
        ev(json!({"type": "content_block_start", "index": 0,
                  "content_block": {"type": "thinking", "thinking": "", "signature": ""}})),
        ev(json!({"type": "content_block_delta", "index": 0,
                  "delta": {"type": "thinking_delta", "thinking": "Let me "}})),
        ev(json!({"type": "content_block_delta", "index": 0,
                  "delta": {"type": "thinking_delta", "thinking": "look."}})),
        ev(json!({"type": "content_block_delta", "index": 0,
                  "delta": {"type": "signature_delta", "signature": "Eq+sig/=="}})),
        ev(json!({"type": "content_block_start", "index": 1, "content_block": redacted})),
        tool_start(2, "toolu_1", "bash"),
        json_delta(2, "{}"),
        stop("tool_use"),
    ]
    .concat();
    let reply = parse(&input).0.unwrap();
    let thinking =
        json!({"type": "thinking", "thinking": "Let me look.", "signature": "Eq+sig/=="});
    let kept: Vec<Value> = reply.opaque.iter().map(|o| o.data.clone()).collect();
    assert_eq!(kept, [thinking.clone(), redacted.clone()]);
    let mut message = reply.message();
    for block in &mut message.content {
        if let Block::Opaque(o) = block {
            o.family = FAMILY.into();
        }
    }
    let wire = wire_messages(&[Message::user_text("go"), message.clone()]);
    let blocks = wire[1]["content"].as_array().unwrap();
    assert_eq!(blocks[..2], [thinking, redacted]);
    assert_eq!(blocks[2]["type"], "tool_use");
    // Another family's data is not sent here.
    for block in &mut message.content {
        if let Block::Opaque(o) = block {
            o.family = "responses".into();
        }
    }
    let wire = wire_messages(&[Message::user_text("go"), message]);
    assert_eq!(wire[1]["content"].as_array().unwrap().len(), 1);
}

#[test]
fn refusal_and_window_stops() {
    let reply = parse(&[start(), text_block(0, "No."), stop("refusal")].concat())
        .0
        .unwrap();
    assert_eq!(reply.stop, StopReason::Refusal);
    let input = [
        start(),
        tool_start(0, "t", "bash"),
        stop("model_context_window_exceeded"),
    ];
    let reply = parse(&input.concat()).0.unwrap();
    assert_eq!(reply.stop, StopReason::ContextWindowExceeded);
    assert!(
        reply.calls[0].invalid.is_some(),
        "a call cut by the window never runs"
    );
}

#[test]
fn without_message_stop_is_incomplete_unless_it_stopped() {
    let input = [start(), text_block(0, "half")].concat();
    assert_eq!(parse(&input).0, Err(Error::incomplete()));
    let input = [start(), text_block(0, "whole"), stop("end_turn")].concat();
    let cut = &input[..input.rfind("event: message_stop").unwrap()];
    assert_eq!(parse(cut).0.unwrap().text, "whole");
}

#[test]
fn error_events() {
    let check = |kind: &str, retry: bool| {
        let input = [
            start(),
            ev(json!({"type": "error", "error": {"type": kind, "message": "m"}})),
        ]
        .concat();
        let expected = Error::server(&format!("{kind}: m"), retry);
        assert_eq!(parse(&input).0, Err(expected), "{kind}");
    };
    check("overloaded_error", true);
    check("api_error", true);
    check("invalid_request_error", false);
    check("authentication_error", false);
}

#[test]
fn ids_are_sanitised_consistently() {
    let check = |id: &str, expected: &str| assert_eq!(sanitise_id(id), expected, "{id}");
    check("toolu_01A-b", "toolu_01A-b");
    let a = sanitise_id("call:1");
    let b = sanitise_id("call.1");
    assert!(a.starts_with("call_1_") && b.starts_with("call_1_"));
    assert_ne!(a, b);
    assert_eq!(a, sanitise_id("call:1"));
    assert!(sanitise_id("").starts_with('_'));
    let ok = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
    };
    assert!(ok(&sanitise_id("fc/é 1")));
}

fn call(id: &str, name: &str, input: Value) -> Block {
    Block::ToolCall(ToolCall {
        id: id.into(),
        name: name.into(),
        input,
        invalid: None,
    })
}

fn result(id: &str, content: &str, is_error: bool) -> Block {
    Block::ToolResult {
        id: id.into(),
        content: content.into(),
        is_error,
    }
}

#[test]
fn request_body() {
    let messages = vec![
        Message::user_text("list files"),
        Message {
            role: Role::Assistant,
            content: vec![
                Block::Text { text: "".into() },
                call("call:1", "bash", json!({"cmd": "ls"})),
                call("c2", "read", json!("{bad")),
            ],
        },
        Message::user_text("and quickly"),
        Message {
            role: Role::User,
            content: vec![result("call:1", "a.rs", false), result("c2", "bad", true)],
        },
    ];
    let tools = [tool("bash", "Run"), tool("read", "Read")];
    let req = Request {
        model: "claude",
        system: "be brief",
        tools: &tools,
        max_tokens: 512,
        ..request(&messages)
    };
    let text = body(&req, None);
    assert!(!text.contains('\n'));
    let body: Value = serde_json::from_str(&text).unwrap();
    let id = sanitise_id("call:1");
    let cache = json!({"type": "ephemeral"});
    let expected = json!({
        "model": "claude",
        "max_tokens": 512,
        "stream": true,
        "system": [{"type": "text", "text": "be brief", "cache_control": cache}],
        "tools": [
            {"name": "bash", "description": "Run", "input_schema": {"type": "object"}},
            {"name": "read", "description": "Read", "input_schema": {"type": "object"},
             "cache_control": cache},
        ],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "list files"}]},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": id, "name": "bash", "input": {"cmd": "ls"}},
                {"type": "tool_use", "id": "c2", "name": "read", "input": {}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": id, "content": "a.rs"},
                {"type": "tool_result", "tool_use_id": "c2", "content": "bad", "is_error": true},
                {"type": "text", "text": "and quickly", "cache_control": cache},
            ]},
        ],
    });
    assert_eq!(body, expected);
}

#[test]
fn request_body_omits_empty_system_and_tools() {
    let messages = [Message::user_text("hi")];
    let req = request(&messages);
    let body: Value = serde_json::from_str(&body(&req, None)).unwrap();
    assert!(body.get("system").is_none());
    assert!(body.get("tools").is_none());
    assert!(body.get("thinking").is_none());
    let body: Value = serde_json::from_str(&super::body(&req, Some(Effort::Low))).unwrap();
    assert_eq!(
        body["thinking"],
        json!({"type": "enabled", "budget_tokens": 1024})
    );
    assert_eq!(
        body["max_tokens"],
        5 + 1024,
        "the budget comes on top of the cap"
    );
}

#[test]
fn url_and_headers() {
    let check = |base: &str| assert_eq!(url(base), "https://api.anthropic.com/v1/messages");
    check("https://api.anthropic.com");
    check("https://api.anthropic.com/");
    check("https://api.anthropic.com/v1");
    check("https://api.anthropic.com/v1/");
    assert_eq!(
        headers(None),
        vec![("anthropic-version", API_VERSION.into())]
    );
    assert!(headers(Some("k")).contains(&("x-api-key", "k".into())));
}
