//! OpenAI Responses wire format (`{base}/responses`): the request body nib sends, and
//! the parser for the streamed events.
//!
//! Stateless: `store: false`, the whole conversation sent as input items each turn.
//! Reasoning items (with `encrypted_content` when the model reasons) are kept whole as
//! `Opaque` data and sent back before the calls they preceded, with each function
//! call's item id. A history from another protocol has neither and goes without, which
//! the API accepts. HTTP lives in `http.rs`, retries in `retry.rs`.

use super::sse::SseReader;
use super::{
    Block, CapField, Effort, Error, Message, Opaque, Reply, Request, Role, StopReason, ToolCall,
    Usage, finish_call, mark_cut, merge_opaque, object_or_empty, opaque_of,
};
use serde_json::{Value, json};
use std::io::BufRead;

/// The family of opaque data this protocol reads back.
const FAMILY: &str = "responses";

/// Where the request goes: `base` ends in `/v1` (a query stays at the end).
pub fn url(base: &str) -> String {
    super::join(base, "responses")
}

/// The compact JSON body for a streaming, stateless request. Reasoning models are asked
/// for their encrypted reasoning, so it can go back with the next request.
pub fn body(req: &Request, effort: Option<Effort>) -> String {
    let mut input = Vec::new();
    for message in req.messages {
        push_items(&mut input, message);
    }
    let mut body = json!({
        "model": req.model,
        "input": input,
        "stream": true,
        "store": false,
        "max_output_tokens": req.max_tokens,
    });
    if !req.system.is_empty() {
        body["instructions"] = json!(req.system);
    }
    let reasoning = CapField::for_model(req.model) == CapField::MaxCompletionTokens
        || req.model.contains("codex");
    if reasoning || effort.is_some() {
        body["include"] = json!(["reasoning.encrypted_content"]);
    }
    if let Some(effort) = effort {
        body["reasoning"] = json!({"effort": effort.name()});
    }
    // `strict` defaults to true on this API, which wants every property required;
    // nib's tools have optional ones.
    if !req.tools.is_empty() {
        let tools: Vec<Value> = req
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "name": t.name, "description": t.description,
                       "parameters": t.schema, "strict": false})
            })
            .collect();
        body["tools"] = Value::Array(tools);
    }
    body.to_string()
}

/// One neutral message as input items: tool results first (they answer the previous
/// calls), then reasoning items, text, and calls in the order the model produced them.
fn push_items(out: &mut Vec<Value>, message: &Message) {
    let opaque = opaque_of(message, FAMILY);
    let mut text = Vec::new();
    for block in &message.content {
        match block {
            Block::ToolResult { id, content, .. } => {
                out.push(json!({"type": "function_call_output", "call_id": id, "output": content}))
            }
            Block::Opaque(o) if o.family == FAMILY && o.call.is_none() => out.push(o.data.clone()),
            Block::Text { text: t } if !t.is_empty() => text.push(t.as_str()),
            _ => {}
        }
    }
    let text = text.join("\n");
    match message.role {
        Role::User if !text.is_empty() => out.push(json!({"role": "user", "content": text})),
        // llama.cpp needs the `type` of an assistant message; OpenAI accepts it.
        Role::Assistant if !text.is_empty() => {
            out.push(json!({"type": "message", "role": "assistant", "content": text}))
        }
        _ => {}
    }
    for block in &message.content {
        if let Block::ToolCall(call) = block {
            let mut item = json!({"type": "function_call", "call_id": call.id, "name": call.name,
                                  "arguments": object_or_empty(&call.input).to_string()});
            merge_opaque(&mut item, &opaque, Some(&call.id));
            out.push(item);
        }
    }
}

/// A function call being assembled from events.
struct Partial {
    item_id: String,
    call_id: String,
    name: String,
    arguments: String,
}

#[derive(Default)]
struct State {
    text: String,
    calls: Vec<Partial>,
    /// Reasoning items, whole.
    reasoning: Vec<Value>,
    refused: bool,
    /// Why an `incomplete` response stopped.
    incomplete: Option<String>,
    usage: Option<Usage>,
}

/// Reads a whole streamed response, handing text deltas to `on_text` as they arrive.
pub fn read(body: &mut dyn BufRead, on_text: &mut dyn FnMut(&str)) -> Result<Reply, Error> {
    let mut events = SseReader::new(body);
    let mut state = State::default();
    while let Some((kind, data)) = events.next_json(&["[DONE]"])? {
        if state.apply(&kind, &data, on_text)? {
            return Ok(state.finish());
        }
    }
    Err(Error::incomplete())
}

impl State {
    /// Takes one event; true when it ended the response.
    fn apply(
        &mut self,
        kind: &str,
        data: &Value,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<bool, Error> {
        let delta = data["delta"].as_str().unwrap_or("");
        match kind {
            "response.output_text.delta" | "response.refusal.delta" => {
                self.refused |= kind == "response.refusal.delta";
                self.text.push_str(delta);
                on_text(delta);
            }
            "response.output_item.added" => self.item(&data["item"], false, on_text),
            "response.output_item.done" => self.item(&data["item"], true, on_text),
            "response.function_call_arguments.delta" => {
                if let Some(call) = self.call_for(data["item_id"].as_str().unwrap_or("")) {
                    call.arguments.push_str(delta);
                }
            }
            "response.completed" | "response.incomplete" => {
                let response = &data["response"];
                self.usage = parse_usage(&response["usage"]);
                self.incomplete = response["incomplete_details"]["reason"]
                    .as_str()
                    .map(str::to_string);
                return Ok(true);
            }
            "response.failed" => return Err(server_error(&data["response"]["error"])),
            "error" => return Err(server_error(data.get("error").unwrap_or(data))),
            _ => {}
        }
        Ok(false)
    }

    /// An output item as it starts (`done` false) or ends (whole and final).
    fn item(&mut self, item: &Value, done: bool, on_text: &mut dyn FnMut(&str)) {
        let field = |name: &str| item[name].as_str().unwrap_or("").to_string();
        match item["type"].as_str() {
            Some("function_call") => {
                let id = field("id");
                let known = self.call_for(&id).is_some() && !id.is_empty();
                if !known {
                    self.calls.push(Partial {
                        item_id: id.clone(),
                        call_id: field("call_id"),
                        name: field("name"),
                        arguments: String::new(),
                    });
                }
                if let (true, Some(call)) = (done, self.call_for(&id)) {
                    call.arguments = field("arguments");
                }
            }
            Some("reasoning") if done => self.reasoning.push(item.clone()),
            // A server that sent no text deltas still says it all in the finished item.
            Some("message") if done && self.text.is_empty() => {
                for part in item["content"].as_array().into_iter().flatten() {
                    let text = part["text"].as_str().or(part["refusal"].as_str());
                    self.refused |= part["type"] == "refusal";
                    if let Some(text) = text.filter(|t| !t.is_empty()) {
                        self.text.push_str(text);
                        on_text(text);
                    }
                }
            }
            _ => {}
        }
    }

    /// The call an event names by item id; the latest call when the id is unknown.
    fn call_for(&mut self, item_id: &str) -> Option<&mut Partial> {
        let at = self.calls.iter().position(|c| c.item_id == item_id);
        match at {
            Some(at) => self.calls.get_mut(at),
            None if item_id.is_empty() => self.calls.last_mut(),
            None => None,
        }
    }

    fn finish(self) -> Reply {
        let reasoning = self.reasoning.into_iter();
        let mut opaque: Vec<Opaque> = reasoning.map(|data| Opaque::new(None, data)).collect();
        let mut calls: Vec<ToolCall> = Vec::new();
        for p in self.calls {
            let call = finish_call(calls.len(), p.call_id, p.name, &p.arguments);
            if !p.item_id.is_empty() {
                let data = json!({"id": p.item_id});
                opaque.push(Opaque::new(Some(call.id.clone()), data));
            }
            calls.push(call);
        }
        let stop = match self.incomplete.as_deref() {
            Some("max_output_tokens") => StopReason::MaxTokens,
            Some("content_filter") => StopReason::Refusal,
            Some(other) => StopReason::Other(other.to_string()),
            None if self.refused => StopReason::Refusal,
            None if !calls.is_empty() => StopReason::ToolUse,
            None => StopReason::EndTurn,
        };
        mark_cut(Reply {
            text: self.text,
            calls,
            stop,
            usage: self.usage,
            opaque,
        })
    }
}

/// Reasoning tokens are part of `output_tokens`.
fn parse_usage(usage: &Value) -> Option<Usage> {
    Some(Usage::cached_apart(
        usage["input_tokens"].as_u64()?,
        usage["input_tokens_details"]["cached_tokens"].as_u64(),
        usage["output_tokens"].as_u64(),
    ))
}

/// A `response.failed` error or an `error` event: `{code, message}`.
fn server_error(error: &Value) -> Error {
    let code = match &error["code"] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => error["type"].as_str().unwrap_or("error").to_string(),
    };
    let message = error["message"].as_str().unwrap_or("the response failed");
    let retryable = [
        "server_error",
        "rate_limit_exceeded",
        "overloaded",
        "500",
        "503",
    ]
    .iter()
    .any(|k| code.contains(k));
    Error::server(&format!("{code}: {message}"), retryable)
}

#[cfg(test)]
#[path = "responses_tests.rs"]
mod tests;
