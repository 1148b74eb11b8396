use super::*;
use crate::model::profile::mistral_id;
use crate::model::testing::{self, request, tool};

fn parse(input: &str) -> (Result<Reply, Error>, String) {
    testing::parse(read, input)
}

fn reply(input: &str) -> Reply {
    parse(input).0.unwrap()
}

fn chunk(delta: Value) -> String {
    format!(
        "data: {}\n\n",
        json!({"choices": [{"index": 0, "delta": delta}]})
    )
}

fn finish(reason: &str) -> String {
    format!(
        "data: {}\n\n",
        json!({"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]})
    )
}

const DONE: &str = "data: [DONE]\n\n";

fn call(id: &str, name: &str, input: Value, invalid: Option<&str>) -> ToolCall {
    ToolCall {
        id: id.into(),
        name: name.into(),
        input,
        invalid: invalid.map(str::to_string),
    }
}

#[test]
fn text_streams_as_it_arrives() {
    let input = [
        chunk(json!({"role": "assistant", "content": ""})),
        chunk(json!({"content": "Hel"})),
        chunk(json!({"content": "lo"})),
        finish("stop"),
        DONE.into(),
    ]
    .concat();
    let (reply, streamed) = parse(&input);
    let reply = reply.unwrap();
    assert_eq!(streamed, "Hello");
    assert_eq!(reply.text, "Hello");
    assert_eq!(reply.stop, StopReason::EndTurn);
    assert!(reply.calls.is_empty());
    assert_eq!(reply.usage, None);
}

#[test]
fn fragmented_arguments_join_by_index() {
    let input = [
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
            "function": {"name": "read", "arguments": ""}}]}),
        ),
        chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"pa"}}]})),
        chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "th\":\"x\"}"}}]})),
        finish("tool_calls"),
        DONE.into(),
    ]
    .concat();
    let reply = reply(&input);
    assert_eq!(reply.stop, StopReason::ToolUse);
    assert_eq!(
        reply.calls,
        vec![call("call_a", "read", json!({"path": "x"}), None)]
    );
}

#[test]
fn two_parallel_calls_interleaved() {
    let input = [
        chunk(json!({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "read", "arguments": "{\"path\":"}}]})),
        chunk(json!({"tool_calls": [{"index": 1, "id": "b", "function": {"name": "bash", "arguments": "{\"cmd\":"}}]})),
        chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"x\"}"}}]})),
        chunk(json!({"tool_calls": [{"index": 1, "function": {"arguments": "\"ls\"}"}}]})),
        finish("tool_calls"),
        DONE.into(),
    ]
    .concat();
    assert_eq!(
        reply(&input).calls,
        vec![
            call("a", "read", json!({"path": "x"}), None),
            call("b", "bash", json!({"cmd": "ls"}), None),
        ]
    );
}

#[test]
fn same_index_with_new_id_is_a_new_call() {
    let input = [
        chunk(json!({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "read", "arguments": "{}"}}]})),
        chunk(json!({"tool_calls": [{"index": 0, "id": "b", "function": {"name": "bash", "arguments": "{}"}}]})),
        DONE.into(),
    ]
    .concat();
    let names: Vec<String> = reply(&input).calls.into_iter().map(|c| c.id).collect();
    assert_eq!(names, ["a", "b"]);
}

#[test]
fn arguments_as_object_missing_id_whole_call_in_one_chunk() {
    // llama.cpp / Ollama style: no index, no id, arguments an object, two calls at once.
    let input = [
        chunk(json!({"tool_calls": [
            {"function": {"name": "read", "arguments": {"path": "a.rs"}}},
            {"function": {"name": "read", "arguments": {"path": "b.rs"}}},
        ]})),
        finish("stop"),
        DONE.into(),
    ]
    .concat();
    let reply = reply(&input);
    assert_eq!(reply.stop, StopReason::ToolUse);
    assert_eq!(reply.calls.len(), 2);
    assert_eq!(reply.calls[0].input, json!({"path": "a.rs"}));
    assert_eq!(reply.calls[1].input, json!({"path": "b.rs"}));
    assert!(reply.calls[0].id.starts_with("call_0_"));
    assert!(reply.calls[1].id.starts_with("call_1_"));
    assert_ne!(reply.calls[0].id, reply.calls[1].id);
    assert!(reply.calls.iter().all(|c| c.invalid.is_none()));
}

#[test]
fn missing_index_continues_the_last_call() {
    let input = [
        chunk(json!({"tool_calls": [{"id": "x", "function": {"name": "read", "arguments": "{\"path\""}}]})),
        chunk(json!({"tool_calls": [{"function": {"arguments": ":\"a\"}"}}]})),
        DONE.into(),
    ]
    .concat();
    assert_eq!(
        reply(&input).calls,
        vec![call("x", "read", json!({"path": "a"}), None)]
    );
}

#[test]
fn empty_and_invalid_arguments() {
    let input = [
        chunk(json!({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "list"}}]})),
        chunk(json!({"tool_calls": [{"index": 1, "id": "b", "function": {"name": "read", "arguments": "{\"path\": "}}]})),
        finish("tool_calls"),
        DONE.into(),
    ]
    .concat();
    let reply = reply(&input);
    assert_eq!(reply.calls[0], call("a", "list", json!({}), None));
    let bad = &reply.calls[1];
    assert_eq!(bad.name, "read");
    let why = bad.invalid.as_deref().unwrap();
    assert!(why.starts_with("arguments are not valid JSON: "), "{why}");
}

#[test]
fn length_cut_marks_every_call_invalid() {
    let input = [
        chunk(json!({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "read", "arguments": "{}"}}]})),
        chunk(json!({"tool_calls": [{"index": 1, "id": "b", "function": {"name": "write", "arguments": "{\"pa"}}]})),
        finish("length"),
        DONE.into(),
    ]
    .concat();
    let reply = reply(&input);
    assert_eq!(reply.stop, StopReason::MaxTokens);
    assert_eq!(reply.calls.len(), 2);
    for c in &reply.calls {
        assert!(c.invalid.as_deref().unwrap().contains("output token limit"));
    }
}

#[test]
fn usage_chunk_and_extra_fields() {
    let input = [
        chunk(json!({"content": "hi"})),
        format!(
            "data: {}\n\n",
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                   "timings": {"predicted_ms": 12.5}, "system_fingerprint": "x"})
        ),
        format!(
            "data: {}\n\n",
            json!({"choices": [], "usage": {"prompt_tokens": 100, "completion_tokens": 7,
                   "total_tokens": 107, "prompt_tokens_details": {"cached_tokens": 60}}})
        ),
        DONE.into(),
    ]
    .concat();
    let reply = reply(&input);
    assert_eq!(
        reply.usage,
        Some(Usage {
            input_tokens: 40,
            output_tokens: 7,
            cache_read_input_tokens: 60,
            cache_creation_input_tokens: 0,
        })
    );
    assert_eq!(reply.text, "hi");
}

#[test]
fn missing_done_after_a_finish_is_complete_without_one_incomplete() {
    let input = [chunk(json!({"content": "partial"})), finish("stop")].concat();
    let (reply, streamed) = parse(&input);
    assert_eq!(reply.unwrap().text, "partial");
    let (reply, streamed_cut) = parse(&chunk(json!({"content": "partial"})));
    assert_eq!(reply, Err(Error::incomplete()));
    assert_eq!(
        (streamed.as_str(), streamed_cut.as_str()),
        ("partial", "partial")
    );
}

#[test]
fn provider_data_is_kept() {
    let input = [
        chunk(json!({"reasoning_content": "Let me "})),
        chunk(json!({"reasoning_content": "think."})),
        chunk(
            json!({"reasoning_details": [{"type": "reasoning.text", "index": 0, "text": "a",
                                            "format": "f"}]}),
        ),
        chunk(
            json!({"reasoning_details": [{"type": "reasoning.text", "index": 0, "text": "b",
                                            "format": "f", "signature": "sig"}]}),
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "bash",
            "arguments": "{}"}, "extra_content": {"google": {"thought_signature": "ts=="}}}]}),
        ),
        finish("tool_calls"),
        format!(
            "data: {}\n\n",
            json!({"choices": [], "x_groq": {"usage": {
            "prompt_tokens": 9, "completion_tokens": 2}}})
        ),
        DONE.into(),
    ]
    .concat();
    let reply = reply(&input);
    assert_eq!(reply.opaque.len(), 2);
    assert_eq!(
        reply.opaque[0].data,
        json!({"reasoning_content": "Let me think.", "reasoning_details": [
            {"type": "reasoning.text", "index": 0, "text": "ab", "format": "f",
             "signature": "sig"}]})
    );
    assert_eq!(reply.opaque[1].call.as_deref(), Some("c1"));
    assert_eq!(
        reply.opaque[1].data,
        json!({"extra_content": {"google": {"thought_signature": "ts=="}}})
    );
    assert_eq!(reply.usage.unwrap().input_tokens, 9, "Groq's usage");
}

#[test]
fn refusals() {
    let input = [
        chunk(json!({"refusal": "I can't "})),
        chunk(json!({"refusal": "help."})),
        finish("stop"),
        DONE.into(),
    ]
    .concat();
    let (reply, streamed) = parse(&input);
    let reply = reply.unwrap();
    assert_eq!(
        (reply.stop, reply.text.as_str()),
        (StopReason::Refusal, "I can't help.")
    );
    assert_eq!(streamed, "I can't help.");
    let filtered = reply_of(&[finish("content_filter"), DONE.into()].concat());
    assert_eq!(filtered.stop, StopReason::Refusal);
}

fn reply_of(input: &str) -> Reply {
    parse(input).0.unwrap()
}

fn opts(model: &str) -> Options {
    Options {
        profile: Profile::Generic,
        effort: None,
        cap_field: super::super::CapField::for_model(model),
        stream_options: true,
        cap_clamp: None,
    }
}

fn opaque(family: &str, call: Option<&str>, data: Value) -> Block {
    Block::Opaque(Opaque {
        family: family.into(),
        call: call.map(str::to_string),
        data,
    })
}

/// An assistant turn with one call and its result, then a user prompt.
fn tool_turn(extra: Vec<Block>) -> Vec<Message> {
    let mut content = extra;
    content.push(Block::ToolCall(call(
        "toolu_01XYZ",
        "bash",
        json!({}),
        None,
    )));
    vec![
        Message::user_text("go"),
        Message {
            role: Role::Assistant,
            content,
        },
        Message {
            role: Role::User,
            content: vec![
                Block::ToolResult {
                    id: "toolu_01XYZ".into(),
                    content: "ok".into(),
                    is_error: false,
                },
                Block::Text {
                    text: "next".into(),
                },
            ],
        },
    ]
}

fn wire(messages: &[Message], profile: Profile, family: &str) -> Vec<Value> {
    let req = request(messages);
    let options = Options {
        profile,
        stream_options: profile != Profile::Mistral,
        ..opts("m")
    };
    let body: Value = serde_json::from_str(&body(&req, &options, family)).unwrap();
    assert_eq!(
        body.get("stream_options").is_some(),
        profile != Profile::Mistral
    );
    body["messages"].as_array().unwrap().clone()
}

#[test]
fn provider_data_goes_back_to_its_own_family_only() {
    let messages = tool_turn(vec![
        opaque("openai/deepseek", None, json!({"reasoning_content": "why"})),
        opaque(
            "openai/deepseek",
            Some("toolu_01XYZ"),
            json!({"extra_content": {"k": 1}}),
        ),
        opaque(
            "anthropic",
            None,
            json!({"type": "thinking", "signature": "s"}),
        ),
    ]);
    let m = wire(&messages, Profile::DeepSeek, "openai/deepseek");
    assert_eq!(m[1]["reasoning_content"], "why");
    assert_eq!(m[1]["tool_calls"][0]["extra_content"], json!({"k": 1}));
    // Elsewhere: none of it; DeepSeek and Gemini get their documented stand-ins.
    let m = wire(&messages, Profile::Generic, "openai");
    assert!(
        m[1].get("reasoning_content").is_none()
            && m[1]["tool_calls"][0].get("extra_content").is_none()
    );
    let plain = tool_turn(Vec::new());
    let m = wire(&plain, Profile::DeepSeek, "openai/deepseek");
    assert_eq!(m[1]["reasoning_content"], "");
    let m = wire(&plain, Profile::Gemini, "openai/gemini");
    assert_eq!(
        m[1]["tool_calls"][0]["extra_content"]["google"]["thought_signature"],
        GEMINI_SKIP_SIGNATURE
    );
}

#[test]
fn mistral_ids_and_order() {
    let m = wire(&tool_turn(Vec::new()), Profile::Mistral, "openai/mistral");
    let roles: Vec<&str> = m.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant", "tool", "assistant", "user"]);
    let id = m[1]["tool_calls"][0]["id"].as_str().unwrap();
    assert_eq!(id, mistral_id("toolu_01XYZ"));
    assert_eq!(m[2]["tool_call_id"], id);
    let generic = wire(&tool_turn(Vec::new()), Profile::Generic, "openai");
    assert_eq!(generic.len(), 4, "other profiles keep tool → user");
    assert_eq!(generic[1]["tool_calls"][0]["id"], "toolu_01XYZ");
}

#[test]
fn mid_stream_error() {
    let check = |error: Value, message: &str, retry: bool| {
        let input = [
            chunk(json!({"content": "a"})),
            format!("data: {}\n\n", json!({"error": error})),
            DONE.into(),
        ]
        .concat();
        assert_eq!(parse(&input).0, Err(Error::server(message, retry)));
    };
    check(
        json!({"message": "Provider overloaded", "code": 502}),
        "Provider overloaded",
        true,
    );
    check(
        json!({"message": "bad tool schema", "type": "invalid_request_error"}),
        "bad tool schema",
        false,
    );
    check(json!("model crashed"), "model crashed", false);
}

#[test]
fn malformed_chunk_is_an_error() {
    let (reply, _) = parse("data: {not json\n\n");
    assert!(matches!(reply, Err(Error::Stream { retry: false, .. })));
}

fn sample_messages() -> Vec<Message> {
    vec![
        Message::user_text("list files"),
        Message {
            role: Role::Assistant,
            content: vec![
                Block::Text {
                    text: "Looking.".into(),
                },
                Block::ToolCall(call("c1", "bash", json!({"cmd": "ls"}), None)),
                Block::ToolCall(call("c2", "read", json!("{bad"), Some("invalid"))),
            ],
        },
        Message {
            role: Role::User,
            content: vec![
                Block::ToolResult {
                    id: "c1".into(),
                    content: "a.rs".into(),
                    is_error: false,
                },
                Block::ToolResult {
                    id: "c2".into(),
                    content: "arguments are not valid JSON".into(),
                    is_error: true,
                },
                Block::Text {
                    text: "also check b".into(),
                },
            ],
        },
    ]
}

#[test]
fn request_body() {
    let messages = sample_messages();
    let tools = [tool("bash", "Run a command")];
    let req = Request {
        system: "be brief",
        tools: &tools,
        max_tokens: 1000,
        ..request(&messages)
    };
    let body: Value = serde_json::from_str(&body(&req, &opts("m"), "openai")).unwrap();
    let expected = json!({
        "model": "m",
        "stream": true,
        "stream_options": {"include_usage": true},
        "max_tokens": 1000,
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "list files"},
            {"role": "assistant", "content": "Looking.", "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "bash", "arguments": "{\"cmd\":\"ls\"}"}},
                {"id": "c2", "type": "function", "function": {"name": "read", "arguments": "{}"}},
            ]},
            {"role": "tool", "tool_call_id": "c1", "content": "a.rs"},
            {"role": "tool", "tool_call_id": "c2", "content": "arguments are not valid JSON"},
            {"role": "user", "content": "also check b"},
        ],
        "tools": [{"type": "function", "function": {
            "name": "bash", "description": "Run a command", "parameters": {"type": "object"}}}],
    });
    assert_eq!(body, expected);
}

#[test]
fn request_body_is_compact_and_omits_empty_parts() {
    let messages = [
        Message::user_text("hi"),
        Message {
            role: Role::Assistant,
            content: vec![Block::ToolCall(call("c", "list", json!({}), None))],
        },
    ];
    let req = request(&messages);
    let text = body(&req, &opts("m"), "openai");
    assert!(!text.contains('\n') && !text.contains(": "), "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert!(body.get("tools").is_none());
    assert_eq!(body["max_tokens"], 5);
    assert!(body.get("max_completion_tokens").is_none());
    let reasoning = Request {
        model: "openai/gpt-5-mini",
        ..req
    };
    let body: Value =
        serde_json::from_str(&super::body(&reasoning, &opts(reasoning.model), "openai")).unwrap();
    assert_eq!(body["max_completion_tokens"], 5);
    assert!(body.get("max_tokens").is_none());
    assert_eq!(
        body["messages"][0],
        json!({"role": "user", "content": "hi"})
    );
    assert_eq!(body["messages"][1]["content"], Value::Null);
    assert_eq!(body["messages"].as_array().unwrap().len(), 2);
}

#[test]
fn url_and_headers() {
    assert_eq!(
        url("http://127.0.0.1:8080/v1/"),
        "http://127.0.0.1:8080/v1/chat/completions"
    );
    let generic = Profile::Generic;
    assert!(headers(None, generic).is_empty());
    assert!(headers(Some(""), generic).is_empty());
    assert_eq!(
        headers(Some("k"), generic),
        vec![("Authorization", "Bearer k".to_string())]
    );
    assert_eq!(
        headers(Some("k"), Profile::Azure),
        vec![("api-key", "k".to_string())]
    );
    let azure = "https://r.openai.azure.com/openai/deployments/gpt5?api-version=2025-01-01";
    assert_eq!(
        url(azure),
        "https://r.openai.azure.com/openai/deployments/gpt5/chat/completions?api-version=2025-01-01"
    );
    assert_eq!(
        url("https://r.openai.azure.com/openai/deployments/gpt5/"),
        "https://r.openai.azure.com/openai/deployments/gpt5/chat/completions?api-version=2024-10-21"
    );
}
