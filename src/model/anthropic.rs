//! Anthropic Messages wire format: the request body nib sends (with prompt-cache
//! breakpoints), and the parser for the streamed reply.
//!
//! A session may have been journaled while talking to another provider, so tool ids are
//! rewritten to the characters Anthropic accepts, the same way every time. `thinking`
//! and `redacted_thinking` blocks are kept whole (with their `signature` / `data`) and
//! sent back unchanged before the `tool_use` they preceded; a history from elsewhere
//! has none, and goes without. HTTP and retries live in `http.rs`.

use super::sse::SseReader;
use super::{
    Block, Effort, Message, Opaque, Reply, Request, Role, StopReason, StreamError, Usage,
    finish_call, mark_cut, object_or_empty, stable_hash,
};
use serde_json::{Value, json};
use std::io::BufRead;

/// The API version nib speaks; the header is required.
const API_VERSION: &str = "2023-06-01";

/// Where the request goes: `base` is the host root, or already ends in `/v1`.
pub fn url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with("/v1") {
        format!("{base}/messages")
    } else {
        format!("{base}/v1/messages")
    }
}

/// Headers beyond content-type; `x-api-key` only when there is a key.
pub fn headers(api_key: Option<&str>) -> Vec<(&'static str, String)> {
    let mut headers = vec![("anthropic-version", API_VERSION.to_string())];
    if let Some(key) = api_key.filter(|k| !k.is_empty()) {
        headers.push(("x-api-key", key.to_string()));
    }
    headers
}

/// The family of opaque data this protocol reads back.
const FAMILY: &str = "anthropic";

/// The compact JSON body for a streaming request. Cache breakpoints go on the last
/// tool, the system prompt and the last message, so each turn reuses the prefix.
/// An effort turns on extended thinking; its budget comes on top of the output cap
/// (the API wants `budget_tokens` below `max_tokens`).
pub fn body(req: &Request, effort: Option<Effort>) -> String {
    let cache = json!({"type": "ephemeral"});
    let mut messages = wire_messages(req.messages);
    let last_block = messages
        .last_mut()
        .and_then(|m| m["content"].as_array_mut())
        .and_then(|blocks| blocks.last_mut());
    if let Some(block) = last_block {
        block["cache_control"] = cache.clone();
    }
    let mut body = json!({
        "model": req.model,
        "max_tokens": req.max_tokens,
        "messages": messages,
        "stream": true,
    });
    if let Some(effort) = effort {
        let budget = effort.thinking_budget();
        body["thinking"] = json!({"type": "enabled", "budget_tokens": budget});
        body["max_tokens"] = json!(req.max_tokens.saturating_add(budget));
    }
    if !req.system.is_empty() {
        body["system"] = json!([{"type": "text", "text": req.system, "cache_control": cache}]);
    }
    let mut tools: Vec<Value> = req
        .tools
        .iter()
        .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.schema}))
        .collect();
    if let Some(last) = tools.last_mut() {
        last["cache_control"] = cache;
        body["tools"] = Value::Array(tools);
    }
    body.to_string()
}

/// Neutral messages → wire messages: tool results in user messages (before any text,
/// as the API requires), consecutive messages of one role merged, empty text dropped.
fn wire_messages(messages: &[Message]) -> Vec<Value> {
    let mut out: Vec<(Role, Vec<Value>)> = Vec::new();
    for message in messages {
        for block in &message.content {
            let (role, block) = match block {
                Block::Opaque(o) if o.family == FAMILY && o.call.is_none() => {
                    (Role::Assistant, o.data.clone())
                }
                Block::Opaque(_) => continue,
                Block::Text { text } if text.is_empty() => continue,
                Block::Text { text } => (message.role, json!({"type": "text", "text": text})),
                Block::ToolCall(call) => (
                    Role::Assistant,
                    json!({"type": "tool_use", "id": sanitise_id(&call.id), "name": call.name,
                           "input": object_or_empty(&call.input)}),
                ),
                Block::ToolResult {
                    id,
                    content,
                    is_error,
                } => {
                    let mut result = json!({"type": "tool_result", "tool_use_id": sanitise_id(id),
                                            "content": content});
                    if *is_error {
                        result["is_error"] = Value::Bool(true);
                    }
                    (Role::User, result)
                }
            };
            match out.last_mut() {
                Some((last, blocks)) if *last == role => blocks.push(block),
                _ => out.push((role, vec![block])),
            }
        }
    }
    out.into_iter()
        .map(|(role, mut blocks)| {
            blocks.sort_by_key(|b| b["type"] != "tool_result");
            let role = match role {
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            json!({"role": role, "content": blocks})
        })
        .collect()
}

/// A tool id as Anthropic accepts it (`^[a-zA-Z0-9_-]+$`). Valid ids pass unchanged;
/// others get their bad characters replaced and a hash of the original appended, so
/// distinct ids stay distinct and the same id always maps the same way.
pub fn sanitise_id(id: &str) -> String {
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if !id.is_empty() && id.chars().all(ok) {
        return id.to_string();
    }
    let clean: String = id.chars().map(|c| if ok(c) { c } else { '_' }).collect();
    format!("{clean}_{:08x}", stable_hash(id) as u32)
}

/// One content block of the reply, by its stream index.
enum Part {
    Text,
    Tool {
        id: String,
        name: String,
        json: String,
    },
    /// `thinking` / `redacted_thinking`: not shown, kept whole to send back.
    Thinking(Value),
    /// Anything newer: not shown, not kept.
    Other,
}

#[derive(Default)]
struct State {
    text: String,
    parts: Vec<(u64, Part)>,
    stop: Option<String>,
    usage: Option<Usage>,
}

/// Reads a whole streamed reply, handing text deltas to `on_text` as they arrive.
pub fn read(body: &mut dyn BufRead, on_text: &mut dyn FnMut(&str)) -> Result<Reply, StreamError> {
    let mut events = SseReader::new(body);
    let mut state = State::default();
    while let Some(event) = events.next_event()? {
        if event.data.trim().is_empty() {
            continue;
        }
        let data: Value = serde_json::from_str(&event.data).map_err(|e| {
            StreamError::Malformed(format!("an event is not JSON ({e}): {}", event.data))
        })?;
        let kind = data["type"].as_str().unwrap_or(&event.event);
        if kind == "message_stop" {
            return Ok(state.finish());
        }
        state.apply(kind, &data, on_text)?;
    }
    // A stop reason is the reply's end; a server that closes before `message_stop`
    // has still said everything.
    match state.stop {
        Some(_) => Ok(state.finish()),
        None => Err(StreamError::Incomplete),
    }
}

impl State {
    fn apply(
        &mut self,
        kind: &str,
        data: &Value,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<(), StreamError> {
        let index = data["index"].as_u64().unwrap_or(0);
        match kind {
            "message_start" => self.add_usage(&data["message"]["usage"]),
            "content_block_start" => self.start_block(index, &data["content_block"], on_text),
            "content_block_delta" => self.delta(index, &data["delta"], on_text),
            "message_delta" => {
                if let Some(stop) = data["delta"]["stop_reason"].as_str() {
                    self.stop = Some(stop.to_string());
                }
                self.add_usage(&data["usage"]);
            }
            "error" => return Err(server_error(&data["error"])),
            // ping, content_block_stop, and event types newer than nib.
            _ => {}
        }
        Ok(())
    }

    fn start_block(&mut self, index: u64, block: &Value, on_text: &mut dyn FnMut(&str)) {
        let part = match block["type"].as_str() {
            Some("text") => {
                self.push_text(block["text"].as_str().unwrap_or(""), on_text);
                Part::Text
            }
            Some("tool_use") => {
                let start = &block["input"];
                let json = match start.as_object() {
                    Some(o) if !o.is_empty() => start.to_string(),
                    _ => String::new(),
                };
                Part::Tool {
                    id: block["id"].as_str().unwrap_or("").to_string(),
                    name: block["name"].as_str().unwrap_or("").to_string(),
                    json,
                }
            }
            Some("thinking" | "redacted_thinking") => Part::Thinking(block.clone()),
            _ => Part::Other,
        };
        self.parts.push((index, part));
    }

    fn delta(&mut self, index: u64, delta: &Value, on_text: &mut dyn FnMut(&str)) {
        let part = self.parts.iter_mut().rev().find(|(i, _)| *i == index);
        let piece = |field: &str| delta[field].as_str().unwrap_or("").to_string();
        match (delta["type"].as_str(), part) {
            (Some("text_delta"), _) => self.push_text(&piece("text"), on_text),
            (Some("input_json_delta"), Some((_, Part::Tool { json, .. }))) => {
                json.push_str(&piece("partial_json"))
            }
            (Some("thinking_delta"), Some((_, Part::Thinking(block)))) => {
                append(block, "thinking", &piece("thinking"))
            }
            (Some("signature_delta"), Some((_, Part::Thinking(block)))) => {
                append(block, "signature", &piece("signature"))
            }
            _ => {}
        }
    }

    fn push_text(&mut self, text: &str, on_text: &mut dyn FnMut(&str)) {
        if !text.is_empty() {
            self.text.push_str(text);
            on_text(text);
        }
    }

    /// Takes whichever counts a usage object carries; Anthropic's are running totals.
    fn add_usage(&mut self, usage: &Value) {
        if !usage.is_object() {
            return;
        }
        let total = self.usage.get_or_insert_with(Usage::default);
        let fields = [
            ("input_tokens", &mut total.input_tokens),
            ("output_tokens", &mut total.output_tokens),
            (
                "cache_read_input_tokens",
                &mut total.cache_read_input_tokens,
            ),
            (
                "cache_creation_input_tokens",
                &mut total.cache_creation_input_tokens,
            ),
        ];
        for (name, slot) in fields {
            if let Some(n) = usage[name].as_u64() {
                *slot = n;
            }
        }
    }

    fn finish(self) -> Reply {
        let stop = match self.stop.as_deref() {
            Some("end_turn") | Some("stop_sequence") | None => StopReason::EndTurn,
            Some("tool_use") => StopReason::ToolUse,
            Some("max_tokens") => StopReason::MaxTokens,
            Some("refusal") => StopReason::Refusal,
            Some("model_context_window_exceeded") => StopReason::ContextWindowExceeded,
            Some(other) => StopReason::Other(other.to_string()),
        };
        let mut calls = Vec::new();
        let mut opaque = Vec::new();
        for (_, part) in self.parts {
            match part {
                Part::Tool { id, name, json } => {
                    calls.push(finish_call(calls.len(), id, name, &json))
                }
                Part::Thinking(data) => opaque.push(Opaque {
                    family: String::new(),
                    call: None,
                    data,
                }),
                Part::Text | Part::Other => {}
            }
        }
        if stop.cut() {
            mark_cut(&mut calls);
        }
        Reply {
            text: self.text,
            calls,
            stop,
            usage: self.usage,
            opaque,
        }
    }
}

/// Appends a streamed piece to a string field of a kept block.
fn append(block: &mut Value, field: &str, piece: &str) {
    match block.get_mut(field) {
        Some(Value::String(s)) => s.push_str(piece),
        _ => block[field] = json!(piece),
    }
}

/// An `error` event: `overloaded_error` and `api_error` are worth a retry.
fn server_error(error: &Value) -> StreamError {
    let kind = error["type"].as_str().unwrap_or("error");
    let message = error["message"].as_str().unwrap_or(kind);
    StreamError::Server {
        message: format!("{kind}: {message}"),
        retryable: matches!(kind, "overloaded_error" | "api_error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ToolCall, ToolSpec};

    fn parse(input: &str) -> (Result<Reply, StreamError>, String) {
        let mut streamed = String::new();
        let reply = read(&mut input.as_bytes(), &mut |t| streamed.push_str(t));
        (reply, streamed)
    }

    fn ev(data: Value) -> String {
        format!(
            "event: {}\ndata: {data}\n\n",
            data["type"].as_str().unwrap()
        )
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
        assert!(matches!(parse(&input).0, Err(StreamError::Incomplete)));
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
            match parse(&input).0 {
                Err(StreamError::Server { message, retryable }) => {
                    assert_eq!(message, format!("{kind}: m"));
                    assert_eq!(retryable, retry, "{kind}");
                }
                other => panic!("expected a server error, got {other:?}"),
            }
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
        let tools = [
            ToolSpec {
                name: "bash".into(),
                description: "Run".into(),
                schema: json!({"type": "object"}),
            },
            ToolSpec {
                name: "read".into(),
                description: "Read".into(),
                schema: json!({"type": "object"}),
            },
        ];
        let req = Request {
            model: "claude",
            system: "be brief",
            messages: &messages,
            tools: &tools,
            max_tokens: 512,
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
        let req = Request {
            model: "m",
            system: "",
            messages: &messages,
            tools: &[],
            max_tokens: 5,
        };
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
}
