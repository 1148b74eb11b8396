use super::*;
use crate::model::testing::{self, ev, request, tool};

fn parse(input: &str) -> (Result<Reply, Error>, String) {
    testing::parse(read, input)
}

fn completed(usage: Value) -> String {
    ev(json!({"type": "response.completed", "response": {"status": "completed", "usage": usage}}))
}

#[test]
fn text_reasoning_and_a_call_as_llama_cpp_and_openai_send_them() {
    let reasoning = json!({"type": "reasoning", "id": "rs_1", "summary": [],
                           "encrypted_content": "gAAAA+/sig=="});
    let input = [
        ev(json!({"type": "response.created", "response": {"id": "resp_1"}})),
        ev(json!({"type": "response.output_item.done", "item": reasoning})),
        ev(json!({"type": "response.output_text.delta", "item_id": "msg_1", "delta": "Run"})),
        ev(json!({"type": "response.output_text.delta", "item_id": "msg_1", "delta": "ning."})),
        ev(
            json!({"type": "response.output_item.added", "item": {"type": "function_call",
            "id": "fc_1", "call_id": "call_1", "name": "bash", "arguments": ""}}),
        ),
        ev(
            json!({"type": "response.function_call_arguments.delta", "item_id": "fc_1",
            "delta": "{\"command\":"}),
        ),
        ev(
            json!({"type": "response.function_call_arguments.delta", "item_id": "fc_1",
            "delta": "\"ls\"}"}),
        ),
        ev(
            json!({"type": "response.output_item.done", "item": {"type": "function_call",
            "id": "fc_1", "call_id": "call_1", "name": "bash",
            "arguments": "{\"command\":\"ls\"}"}}),
        ),
        completed(json!({"input_tokens": 100, "output_tokens": 30,
            "input_tokens_details": {"cached_tokens": 60},
            "output_tokens_details": {"reasoning_tokens": 20}})),
    ]
    .concat();
    let (reply, streamed) = parse(&input);
    let reply = reply.unwrap();
    assert_eq!(
        (reply.text.as_str(), streamed.as_str()),
        ("Running.", "Running.")
    );
    assert_eq!(reply.stop, StopReason::ToolUse);
    assert_eq!(reply.calls.len(), 1);
    assert_eq!(reply.calls[0].id, "call_1");
    assert_eq!(reply.calls[0].input, json!({"command": "ls"}));
    assert_eq!(reply.opaque[0].data, reasoning, "kept whole");
    assert_eq!(reply.opaque[1].call.as_deref(), Some("call_1"));
    assert_eq!(reply.opaque[1].data, json!({"id": "fc_1"}));
    let usage = reply.usage.unwrap();
    assert_eq!(
        (usage.input_tokens, usage.cache_read_input_tokens),
        (40, 60)
    );
    assert_eq!(usage.output_tokens, 30);
}

#[test]
fn ends_and_failures() {
    let incomplete = ev(json!({"type": "response.incomplete", "response": {
        "status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}}}));
    let text = ev(json!({"type": "response.output_text.delta", "delta": "Half"}));
    let reply = parse(&[text.clone(), incomplete].concat()).0.unwrap();
    assert_eq!(reply.stop, StopReason::MaxTokens);

    let refusal = ev(json!({"type": "response.refusal.delta", "delta": "I can't help."}));
    let reply = parse(&[refusal, completed(json!({}))].concat()).0.unwrap();
    assert_eq!(
        (reply.stop, reply.text.as_str()),
        (StopReason::Refusal, "I can't help.")
    );

    assert_eq!(parse(&text).0, Err(Error::incomplete()));
    let failed = ev(json!({"type": "response.failed", "response": {"error": {
        "code": "server_error", "message": "boom"}}}));
    assert_eq!(
        parse(&failed).0,
        Err(Error::server("server_error: boom", true))
    );
    let error = ev(json!({"type": "error", "code": "invalid_prompt", "message": "no"}));
    assert!(matches!(
        parse(&error).0,
        Err(Error::Stream { retry: false, .. })
    ));
}

#[test]
fn request_body_sends_items_back() {
    let call = ToolCall {
        id: "call_1".into(),
        name: "bash".into(),
        input: json!({"command": "ls"}),
        invalid: None,
    };
    let reasoning = json!({"type": "reasoning", "id": "rs_1", "encrypted_content": "e"});
    let opaque = |call: Option<&str>, data: Value| {
        Block::Opaque(Opaque {
            family: FAMILY.into(),
            call: call.map(str::to_string),
            data,
        })
    };
    let messages = vec![
        Message::user_text("list"),
        Message {
            role: Role::Assistant,
            content: vec![
                opaque(None, reasoning.clone()),
                opaque(Some("call_1"), json!({"id": "fc_1"})),
                Block::Opaque(Opaque {
                    family: "anthropic".into(),
                    call: None,
                    data: json!({"type": "thinking"}),
                }),
                Block::Text {
                    text: "Looking.".into(),
                },
                Block::ToolCall(call),
            ],
        },
        Message {
            role: Role::User,
            content: vec![Block::ToolResult {
                id: "call_1".into(),
                content: "a.rs".into(),
                is_error: false,
            }],
        },
    ];
    let tools = [tool("bash", "Run")];
    let req = Request {
        model: "gpt-5-codex",
        system: "be brief",
        tools: &tools,
        max_tokens: 100,
        ..request(&messages)
    };
    let body: Value = serde_json::from_str(&body(&req, Some(Effort::High))).unwrap();
    let expected = json!({
        "model": "gpt-5-codex", "stream": true, "store": false, "max_output_tokens": 100,
        "instructions": "be brief", "include": ["reasoning.encrypted_content"],
        "reasoning": {"effort": "high"},
        "tools": [{"type": "function", "name": "bash", "description": "Run",
                   "parameters": {"type": "object"}, "strict": false}],
        "input": [
            {"role": "user", "content": "list"},
            reasoning,
            {"type": "message", "role": "assistant", "content": "Looking."},
            {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "bash",
             "arguments": "{\"command\":\"ls\"}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "a.rs"},
        ],
    });
    assert_eq!(body, expected);
    let plain = Request {
        model: "smollm2",
        ..req
    };
    let body: Value = serde_json::from_str(&super::body(&plain, None)).unwrap();
    assert!(body.get("include").is_none() && body.get("reasoning").is_none());
    assert_eq!(
        url("http://h/v1/"),
        "http://h/v1/responses",
        "the path goes before any query"
    );
}

/// llama.cpp's `/v1/responses` stream as it came from the real server (SmolLM2,
/// trimmed): items without `output_index`, a text message, then a function call.
const LLAMA_CPP: &str = r#"event: response.created
data: {"type":"response.created","response":{"id":"resp_tr","object":"response","status":"in_progress"}}

event: response.output_item.added
data: {"type":"response.output_item.added","item":{"content":[],"id":"msg_nz","role":"assistant","status":"in_progress","type":"message"}}

event: response.content_part.added
data: {"type":"response.content_part.added","item_id":"msg_nz","part":{"type":"output_text","text":""}}

event: response.output_text.delta
data: {"type":"response.output_text.delta","item_id":"msg_nz","delta":"To run"}

event: response.output_text.delta
data: {"type":"response.output_text.delta","item_id":"msg_nz","delta":" it:\n\n"}

event: response.output_item.added
data: {"type":"response.output_item.added","item":{"id":"fc_ys","arguments":"","call_id":"call_ys","name":"bash","type":"function_call","status":"in_progress"}}

event: response.function_call_arguments.delta
data: {"type":"response.function_call_arguments.delta","delta":"{\n    \"","item_id":"fc_ys"}

event: response.function_call_arguments.delta
data: {"type":"response.function_call_arguments.delta","delta":"command\": \"ls\"\n  }","item_id":"fc_ys"}

event: response.output_text.done
data: {"type":"response.output_text.done","item_id":"msg_nz","text":"To run it:\n\n"}

event: response.output_item.done
data: {"type":"response.output_item.done","item":{"type":"message","status":"completed","id":"msg_nz","content":[{"type":"output_text","annotations":[],"logprobs":[],"text":"To run it:\n\n"}],"role":"assistant"}}

event: response.output_item.done
data: {"type":"response.output_item.done","item":{"id":"fc_ys","type":"function_call","status":"completed","arguments":"{\n    \"command\": \"ls\"\n  }","call_id":"call_ys","name":"bash"}}

event: response.completed
data: {"type":"response.completed","response":{"id":"resp_tr","object":"response","created_at":1796117473,"status":"completed","model":"smollm2-135m","output":[],"usage":{"input_tokens":22,"output_tokens":8,"total_tokens":30,"input_tokens_details":{"cached_tokens":9}}},"timings":{"cache_n":9,"prompt_n":13}}

"#;

#[test]
fn llama_cpp_stream() {
    let (reply, streamed) = parse(LLAMA_CPP);
    let reply = reply.unwrap();
    assert_eq!(
        (reply.text.as_str(), streamed.as_str()),
        ("To run it:\n\n", "To run it:\n\n")
    );
    assert_eq!(reply.stop, StopReason::ToolUse);
    assert_eq!(reply.calls.len(), 1);
    assert_eq!(
        (reply.calls[0].id.as_str(), reply.calls[0].input.clone()),
        ("call_ys", json!({"command": "ls"}))
    );
    assert_eq!(
        reply.opaque.len(),
        1,
        "only the call's item id: {:?}",
        reply.opaque
    );
    let usage = reply.usage.unwrap();
    assert_eq!(
        (
            usage.input_tokens,
            usage.cache_read_input_tokens,
            usage.output_tokens
        ),
        (13, 9, 8)
    );
}
