//! Anthropic Messages wire format: the request body nib sends (with prompt-cache
//! breakpoints), and the parser for the streamed reply.
//!
//! A session may have been journaled while talking to another provider, so tool ids are
//! rewritten to the characters Anthropic accepts, the same way every time. `thinking`
//! and `redacted_thinking` blocks are kept whole (with their `signature` / `data`) and
//! sent back unchanged before the `tool_use` they preceded; a history from elsewhere
//! has none, and goes without. HTTP lives in `http.rs`, retries in `retry.rs`.

use super::sse::SseReader;
use super::{
    Block, Effort, Error, Message, Opaque, Reply, Request, Role, StopReason, Usage, finish_call,
    mark_cut, object_or_empty, stable_hash,
};
use serde_json::{Value, json};
use std::io::BufRead;

/// The API version nib speaks; the header is required.
const API_VERSION: &str = "2023-06-01";

/// Where the request goes: `base` is the host root, or already ends in `/v1`.
pub fn url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    let root = base.strip_suffix("/v1").unwrap_or(base);
    format!("{root}/v1/messages")
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
    format!("{clean}_{:08x}", stable_hash(id.as_bytes()) as u32)
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
pub fn read(body: &mut dyn BufRead, on_text: &mut dyn FnMut(&str)) -> Result<Reply, Error> {
    let mut events = SseReader::new(body);
    let mut state = State::default();
    while let Some((kind, data)) = events.next_json(&[])? {
        if kind == "message_stop" {
            return Ok(state.finish());
        }
        state.apply(&kind, &data, on_text)?;
    }
    // A stop reason is the reply's end; a server that closes before `message_stop`
    // has still said everything.
    match state.stop {
        Some(_) => Ok(state.finish()),
        None => Err(Error::incomplete()),
    }
}

impl State {
    fn apply(
        &mut self,
        kind: &str,
        data: &Value,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<(), Error> {
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
        let take = |slot: &mut u64, name: &str| *slot = usage[name].as_u64().unwrap_or(*slot);
        take(&mut total.input_tokens, "input_tokens");
        take(&mut total.output_tokens, "output_tokens");
        take(
            &mut total.cache_read_input_tokens,
            "cache_read_input_tokens",
        );
        take(
            &mut total.cache_creation_input_tokens,
            "cache_creation_input_tokens",
        );
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
                Part::Thinking(data) => opaque.push(Opaque::new(None, data)),
                Part::Text | Part::Other => {}
            }
        }
        mark_cut(Reply {
            text: self.text,
            calls,
            stop,
            usage: self.usage,
            opaque,
        })
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
fn server_error(error: &Value) -> Error {
    let kind = error["type"].as_str().unwrap_or("error");
    let message = error["message"].as_str().unwrap_or(kind);
    let retry = matches!(kind, "overloaded_error" | "api_error");
    Error::server(&format!("{kind}: {message}"), retry)
}

#[cfg(test)]
#[path = "anthropic_tests.rs"]
mod tests;
