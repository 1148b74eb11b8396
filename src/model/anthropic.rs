//! Anthropic Messages wire format: the request body nib sends (with prompt-cache
//! breakpoints), and the parser for the streamed reply.
//!
//! A session may have been journaled while talking to another provider, so tool ids are
//! rewritten to the characters Anthropic accepts, the same way every time. HTTP and
//! retries live in `http.rs`.

use super::sse::SseReader;
use super::{
    Block, Message, Reply, Request, Role, StopReason, StreamError, Usage, finish_call, mark_cut,
    object_or_empty,
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

/// The compact JSON body for a streaming request. Cache breakpoints go on the last
/// tool, the system prompt and the last message, so each turn reuses the prefix.
pub fn body(req: &Request) -> String {
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
    // FNV-1a: stable across runs and builds, unlike the std hasher.
    let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{clean}_{:08x}", hash as u32)
}

/// One content block of the reply, by its stream index.
enum Part {
    Text,
    Tool {
        id: String,
        name: String,
        json: String,
    },
    /// Thinking and anything newer: not shown, not kept.
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
    Err(StreamError::Incomplete)
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
            _ => Part::Other,
        };
        self.parts.push((index, part));
    }

    fn delta(&mut self, index: u64, delta: &Value, on_text: &mut dyn FnMut(&str)) {
        match delta["type"].as_str() {
            Some("text_delta") => self.push_text(delta["text"].as_str().unwrap_or(""), on_text),
            Some("input_json_delta") => {
                let part = self.parts.iter_mut().rev().find(|(i, _)| *i == index);
                if let Some((_, Part::Tool { json, .. })) = part {
                    json.push_str(delta["partial_json"].as_str().unwrap_or(""));
                }
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
            Some(other) => StopReason::Other(other.to_string()),
        };
        let mut calls: Vec<_> = self
            .parts
            .into_iter()
            .filter_map(|(_, part)| match part {
                Part::Tool { id, name, json } => Some((id, name, json)),
                _ => None,
            })
            .enumerate()
            .map(|(n, (id, name, json))| finish_call(n, id, name, &json))
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
    fn without_message_stop_is_incomplete() {
        let input = [start(), text_block(0, "half")].concat();
        assert!(matches!(parse(&input).0, Err(StreamError::Incomplete)));
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
        let text = body(&req);
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
        let body: Value = serde_json::from_str(&body(&req)).unwrap();
        assert!(body.get("system").is_none());
        assert!(body.get("tools").is_none());
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
