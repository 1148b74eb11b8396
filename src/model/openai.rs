//! OpenAI Chat Completions wire format: the request body nib sends, and the parser for
//! the streamed reply.
//!
//! The parser is tolerant of what local servers (llama.cpp, Ollama, LM Studio, vLLM) do
//! differently from OpenAI: tool-call arguments sent as a JSON object, missing ids or
//! indexes, a whole call in one chunk, extra fields. HTTP and retries live in `http.rs`.

use super::sse::SseReader;
use super::{
    Block, Message, Reply, Request, Role, StopReason, StreamError, ToolCall, Usage, finish_call,
    mark_cut, object_or_empty,
};
use serde_json::{Value, json};
use std::io::BufRead;

/// Where the request goes: `base` already ends in `/v1`.
pub fn url(base: &str) -> String {
    format!("{}/chat/completions", base.trim_end_matches('/'))
}

/// Headers beyond content-type; `Authorization` only when there is a key.
pub fn headers(api_key: Option<&str>) -> Vec<(&'static str, String)> {
    match api_key {
        Some(key) if !key.is_empty() => vec![("Authorization", format!("Bearer {key}"))],
        _ => Vec::new(),
    }
}

/// The compact JSON body for a streaming request. The output cap goes in `max_tokens`
/// (what local servers read; without one a small model can ramble until its context
/// is full), or `max_completion_tokens` for OpenAI's reasoning models, which reject
/// `max_tokens`. No `temperature`: servers pick sensible defaults.
pub fn body(req: &Request) -> String {
    let mut messages = Vec::new();
    if !req.system.is_empty() {
        messages.push(json!({"role": "system", "content": req.system}));
    }
    for message in req.messages {
        push_message(&mut messages, message);
    }
    let mut body = json!({
        "model": req.model,
        "messages": messages,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    let reasoning = ["o1", "o3", "o4", "gpt-5"]
        .iter()
        .any(|p| req.model.rsplit('/').next().unwrap_or("").starts_with(p));
    let cap = if reasoning {
        "max_completion_tokens"
    } else {
        "max_tokens"
    };
    body[cap] = json!(req.max_tokens);
    if !req.tools.is_empty() {
        let tools: Vec<Value> = req
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.schema}})
            })
            .collect();
        body["tools"] = Value::Array(tools);
    }
    body.to_string()
}

/// Maps one neutral message onto wire messages: tool results become `tool` messages
/// (first, since they must follow the assistant's calls), text a user or assistant message.
fn push_message(out: &mut Vec<Value>, message: &Message) {
    let mut text = Vec::new();
    let mut calls = Vec::new();
    for block in &message.content {
        match block {
            Block::Text { text: t } if !t.is_empty() => text.push(t.as_str()),
            Block::Text { .. } => {}
            Block::ToolCall(call) => calls.push(json!({
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": object_or_empty(&call.input).to_string()},
            })),
            Block::ToolResult { id, content, .. } => {
                out.push(json!({"role": "tool", "tool_call_id": id, "content": content}));
            }
        }
    }
    let text = text.join("\n");
    match message.role {
        Role::User if !text.is_empty() => out.push(json!({"role": "user", "content": text})),
        Role::User => {}
        Role::Assistant if calls.is_empty() && text.is_empty() => {}
        Role::Assistant if calls.is_empty() => {
            out.push(json!({"role": "assistant", "content": text}));
        }
        Role::Assistant => {
            let content = if text.is_empty() {
                Value::Null
            } else {
                Value::String(text)
            };
            out.push(json!({"role": "assistant", "content": content, "tool_calls": calls}));
        }
    }
}

/// A tool call being assembled from stream fragments.
#[derive(Default)]
struct Partial {
    index: Option<u64>,
    id: String,
    name: String,
    arguments: String,
}

/// What the stream has said so far.
#[derive(Default)]
struct State {
    text: String,
    calls: Vec<Partial>,
    finish: Option<String>,
    usage: Option<Usage>,
}

/// Reads a whole streamed reply, handing text deltas to `on_text` as they arrive.
pub fn read(body: &mut dyn BufRead, on_text: &mut dyn FnMut(&str)) -> Result<Reply, StreamError> {
    let mut events = SseReader::new(body);
    let mut state = State::default();
    while let Some(event) = events.next_event()? {
        let data = event.data.trim();
        if data == "[DONE]" {
            return Ok(state.finish());
        }
        if data.is_empty() {
            continue;
        }
        let chunk: Value = serde_json::from_str(data)
            .map_err(|e| StreamError::Malformed(format!("a chunk is not JSON ({e}): {data}")))?;
        state.apply(&chunk, on_text)?;
    }
    Err(StreamError::Incomplete)
}

impl State {
    fn apply(&mut self, chunk: &Value, on_text: &mut dyn FnMut(&str)) -> Result<(), StreamError> {
        if let Some(error) = chunk.get("error") {
            return Err(server_error(error));
        }
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(parse_usage(usage));
        }
        let choices = chunk["choices"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let Some(choice) = choices
            .iter()
            .find(|c| c["index"].as_u64().unwrap_or(0) == 0)
        else {
            return Ok(());
        };
        let delta = choice.get("delta").or_else(|| choice.get("message"));
        if let Some(delta) = delta {
            if let Some(text) = delta["content"].as_str().filter(|t| !t.is_empty()) {
                self.text.push_str(text);
                on_text(text);
            }
            for fragment in delta["tool_calls"].as_array().into_iter().flatten() {
                self.add_fragment(fragment);
            }
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            self.finish = Some(reason.to_string());
        }
        Ok(())
    }

    /// Merges one `tool_calls` fragment into the call it belongs to.
    fn add_fragment(&mut self, fragment: &Value) {
        let index = fragment["index"].as_u64();
        let id = fragment["id"].as_str().unwrap_or("");
        let function = &fragment["function"];
        let name = function["name"].as_str().unwrap_or("");
        let slot = self.slot_for(index, id, name);
        let call = &mut self.calls[slot];
        if call.id.is_empty() {
            call.id = id.to_string();
        }
        if call.name.is_empty() {
            call.name = name.to_string();
        }
        match &function["arguments"] {
            Value::String(s) => call.arguments.push_str(s),
            Value::Null => {}
            other => call.arguments.push_str(&other.to_string()),
        }
    }

    /// Which call a fragment continues, by id, then `index`, then order; or a new one.
    fn slot_for(&mut self, index: Option<u64>, id: &str, name: &str) -> usize {
        let by_id = (!id.is_empty())
            .then(|| self.calls.iter().position(|c| c.id == id))
            .flatten();
        // Some servers give every parallel call index 0: a new id then starts a new call.
        let id_free = |c: &Partial| id.is_empty() || c.id.is_empty() || c.id == id;
        let by_index = index.and_then(|i| {
            self.calls
                .iter()
                .position(|c| c.index == Some(i) && id_free(c))
        });
        let by_order = (index.is_none() && id.is_empty() && name.is_empty())
            .then(|| self.calls.len().checked_sub(1))
            .flatten();
        if let Some(slot) = by_id.or(by_index).or(by_order) {
            return slot;
        }
        self.calls.push(Partial {
            index,
            ..Partial::default()
        });
        self.calls.len() - 1
    }

    fn finish(self) -> Reply {
        let mut stop = match self.finish.as_deref() {
            Some("stop") | None => StopReason::EndTurn,
            Some("tool_calls") | Some("function_call") => StopReason::ToolUse,
            Some("length") => StopReason::MaxTokens,
            Some(other) => StopReason::Other(other.to_string()),
        };
        // Ollama and others say `stop` even when the reply carries calls.
        if stop == StopReason::EndTurn && !self.calls.is_empty() {
            stop = StopReason::ToolUse;
        }
        let mut calls: Vec<ToolCall> = self
            .calls
            .into_iter()
            .enumerate()
            .map(|(n, p)| finish_call(n, p.id, p.name, &p.arguments))
            .collect();
        if stop == StopReason::MaxTokens {
            mark_cut(&mut calls);
        }
        Reply {
            text: self.text,
            calls,
            stop,
            usage: self.usage,
        }
    }
}

fn parse_usage(usage: &Value) -> Usage {
    let prompt = usage["prompt_tokens"].as_u64().unwrap_or(0);
    let cached = usage["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap_or(0);
    Usage {
        input_tokens: prompt.saturating_sub(cached),
        output_tokens: usage["completion_tokens"].as_u64().unwrap_or(0),
        cache_read_input_tokens: cached,
        cache_creation_input_tokens: 0,
    }
}

/// An `{"error": …}` chunk: an object with `message` (OpenAI, OpenRouter) or a string.
fn server_error(error: &Value) -> StreamError {
    let message = match error {
        Value::String(s) => s.clone(),
        _ => error["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| error.to_string()),
    };
    let kind = [&error["type"], &error["code"]]
        .iter()
        .filter_map(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(" ");
    let retryable = [
        "server_error",
        "overloaded",
        "rate_limit",
        "api_error",
        "timeout",
    ]
    .iter()
    .any(|k| kind.contains(k))
        || ["429", "500", "502", "503", "504", "529"].contains(&kind.as_str());
    StreamError::Server { message, retryable }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ToolSpec;

    fn parse(input: &str) -> (Result<Reply, StreamError>, String) {
        let mut streamed = String::new();
        let reply = read(&mut input.as_bytes(), &mut |t| streamed.push_str(t));
        (reply, streamed)
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
    fn missing_done_is_incomplete() {
        let input = [chunk(json!({"content": "partial"})), finish("stop")].concat();
        let (reply, streamed) = parse(&input);
        assert!(matches!(reply, Err(StreamError::Incomplete)));
        assert_eq!(streamed, "partial");
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
            match parse(&input).0 {
                Err(StreamError::Server {
                    message: m,
                    retryable,
                }) => {
                    assert_eq!((m.as_str(), retryable), (message, retry));
                }
                other => panic!("expected a server error, got {other:?}"),
            }
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
        assert!(matches!(reply, Err(StreamError::Malformed(_))));
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
        let tools = [ToolSpec {
            name: "bash".into(),
            description: "Run a command".into(),
            schema: json!({"type": "object"}),
        }];
        let req = Request {
            model: "m",
            system: "be brief",
            messages: &messages,
            tools: &tools,
            max_tokens: 1000,
        };
        let body: Value = serde_json::from_str(&body(&req)).unwrap();
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
        let req = Request {
            model: "m",
            system: "",
            messages: &messages,
            tools: &[],
            max_tokens: 5,
        };
        let text = body(&req);
        assert!(!text.contains('\n') && !text.contains(": "), "{text}");
        let body: Value = serde_json::from_str(&text).unwrap();
        assert!(body.get("tools").is_none());
        assert_eq!(body["max_tokens"], 5);
        assert!(body.get("max_completion_tokens").is_none());
        let reasoning = Request {
            model: "openai/gpt-5-mini",
            ..req
        };
        let body: Value = serde_json::from_str(&super::body(&reasoning)).unwrap();
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
        assert!(headers(None).is_empty());
        assert!(headers(Some("")).is_empty());
        assert_eq!(
            headers(Some("k")),
            vec![("Authorization", "Bearer k".to_string())]
        );
    }
}
