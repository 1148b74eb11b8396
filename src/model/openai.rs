//! OpenAI Chat Completions wire format: the request body nib sends, and the parser for
//! the streamed reply.
//!
//! The parser is tolerant of what local servers (llama.cpp, Ollama, LM Studio, vLLM) do
//! differently from OpenAI: tool-call arguments sent as a JSON object, missing ids or
//! indexes, a whole call in one chunk, extra fields. What providers need back (DeepSeek
//! `reasoning_content`, OpenRouter `reasoning_details`, Gemini `extra_content`) is kept
//! as `Opaque` data and merged back into the same message or call. Profile quirks
//! (Azure URLs and keys, Mistral ids and ordering, Groq usage) live here too; HTTP lives
//! in `http.rs`, retries in `retry.rs`.

use super::profile::mistral_id;
use super::sse::SseReader;
use super::{
    Block, Error, Message, Opaque, Options, Profile, Reply, Request, Role, StopReason, ToolCall,
    Usage, finish_call, mark_cut, merge_fields, merge_opaque, object_or_empty, opaque_of,
};
use serde_json::{Value, json};
use std::io::BufRead;

/// Azure's classic deployment URLs need an API version; this one has tools and streaming usage.
const AZURE_API_VERSION: &str = "api-version=2024-10-21";
/// Gemini's documented stand-in for a thought signature nib never saw (a history from
/// another provider): it tells the server to skip the check.
const GEMINI_SKIP_SIGNATURE: &str = "skip_thought_signature_validator";
/// Mistral rejects a `user` message right after a `tool` one; this assistant note goes between.
const MISTRAL_BRIDGE: &str = "(the turn ended here)";

/// Where the request goes: `base` already ends in `/v1`, or is an Azure deployment URL
/// whose query (`?api-version=…`) stays at the end.
pub fn url(base: &str) -> String {
    match base.contains("/openai/deployments/") && !base.contains('?') {
        true => super::join(&format!("{base}?{AZURE_API_VERSION}"), "chat/completions"),
        false => super::join(base, "chat/completions"),
    }
}

/// Headers beyond content-type: the key as `Authorization: Bearer`, or Azure's `api-key`.
pub fn headers(api_key: Option<&str>, profile: Profile) -> Vec<(&'static str, String)> {
    match api_key {
        Some(key) if !key.is_empty() && profile == Profile::Azure => {
            vec![("api-key", key.to_string())]
        }
        Some(key) if !key.is_empty() => vec![("Authorization", format!("Bearer {key}"))],
        _ => Vec::new(),
    }
}

/// The compact JSON body for a streaming request. The output cap goes in the field the
/// options name (`max_tokens`, what local servers read, or `max_completion_tokens` for
/// OpenAI's reasoning models). No `temperature`: servers pick sensible defaults.
/// `family` picks the opaque data that goes back (see `Opaque`).
pub fn body(req: &Request, options: &Options, family: &str) -> String {
    let mut messages = Vec::new();
    if !req.system.is_empty() {
        messages.push(json!({"role": "system", "content": req.system}));
    }
    for message in req.messages {
        push_message(&mut messages, message, options.profile, family);
    }
    if options.profile == Profile::Mistral {
        messages = bridge_tool_user(messages);
    }
    let mut body = json!({
        "model": req.model,
        "messages": messages,
        "stream": true,
    });
    if options.stream_options {
        body["stream_options"] = json!({"include_usage": true});
    }
    body[options.cap_field.name()] = json!(req.max_tokens);
    let reasoning_model = options.cap_field == super::CapField::MaxCompletionTokens;
    match (options.effort, options.profile) {
        (Some(e), Profile::OpenRouter) => body["reasoning"] = json!({"effort": e.name()}),
        (Some(e), Profile::Gemini | Profile::Groq) => body["reasoning_effort"] = json!(e.name()),
        (Some(e), _) if reasoning_model => body["reasoning_effort"] = json!(e.name()),
        _ => {}
    }
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

/// A tool-call id as this profile accepts it.
fn wire_id(id: &str, profile: Profile) -> String {
    match profile {
        Profile::Mistral => mistral_id(id),
        _ => id.to_string(),
    }
}

/// Maps one neutral message onto wire messages: tool results become `tool` messages
/// (first, since they must follow the assistant's calls), text a user or assistant
/// message; this family's opaque data is merged back where it came from.
fn push_message(out: &mut Vec<Value>, message: &Message, profile: Profile, family: &str) {
    let opaque = opaque_of(message, family);
    let mut text = Vec::new();
    let mut calls = Vec::new();
    for block in &message.content {
        match block {
            Block::Text { text: t } if !t.is_empty() => text.push(t.as_str()),
            Block::Text { .. } | Block::Opaque(_) => {}
            Block::ToolCall(call) => calls.push(wire_call(call, &opaque, profile)),
            Block::ToolResult { id, content, .. } => out.push(
                json!({"role": "tool", "tool_call_id": wire_id(id, profile), "content": content}),
            ),
        }
    }
    let text = text.join("\n");
    let mut assistant = match message.role {
        Role::User if !text.is_empty() => {
            out.push(json!({"role": "user", "content": text}));
            return;
        }
        Role::User => return,
        Role::Assistant if calls.is_empty() && text.is_empty() => return,
        Role::Assistant if calls.is_empty() => json!({"role": "assistant", "content": text}),
        Role::Assistant => {
            let content = (!text.is_empty()).then_some(text);
            json!({"role": "assistant", "content": content, "tool_calls": calls})
        }
    };
    merge_opaque(&mut assistant, &opaque, None);
    // DeepSeek's thinking mode wants reasoning back on every call turn; a history
    // from elsewhere has none to give.
    if profile == Profile::DeepSeek
        && assistant.get("tool_calls").is_some()
        && assistant.get("reasoning_content").is_none()
    {
        assistant["reasoning_content"] = json!("");
    }
    out.push(assistant);
}

/// One call as a wire object, with its own opaque data (or Gemini's stand-in).
fn wire_call(call: &ToolCall, opaque: &[&Opaque], profile: Profile) -> Value {
    let mut wire = json!({
        "id": wire_id(&call.id, profile),
        "type": "function",
        "function": {"name": call.name, "arguments": object_or_empty(&call.input).to_string()},
    });
    merge_opaque(&mut wire, opaque, Some(&call.id));
    if profile == Profile::Gemini && wire["extra_content"]["google"]["thought_signature"].is_null()
    {
        wire["extra_content"] = json!({"google": {"thought_signature": GEMINI_SKIP_SIGNATURE}});
    }
    wire
}

/// Puts an assistant note between a `tool` message and a `user` one (Mistral).
fn bridge_tool_user(messages: Vec<Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::with_capacity(messages.len());
    for m in messages {
        if m["role"] == "user" && out.last().is_some_and(|l| l["role"] == "tool") {
            out.push(json!({"role": "assistant", "content": MISTRAL_BRIDGE}));
        }
        out.push(m);
    }
    out
}

/// A tool call being assembled from stream fragments.
#[derive(Default)]
struct Partial {
    index: Option<u64>,
    id: String,
    name: String,
    arguments: String,
    /// Gemini's `extra_content` (the thought signature), kept whole.
    extra: Option<Value>,
}

/// What the stream has said so far.
#[derive(Default)]
struct State {
    text: String,
    calls: Vec<Partial>,
    finish: Option<String>,
    usage: Option<Usage>,
    /// DeepSeek / llama.cpp `reasoning_content`.
    reasoning: String,
    /// OpenRouter `reasoning_details`, fragments merged by index.
    details: Vec<Value>,
    /// The model declined (`delta.refusal`).
    refused: bool,
}

/// Reads a whole streamed reply, handing text deltas to `on_text` as they arrive.
pub fn read(body: &mut dyn BufRead, on_text: &mut dyn FnMut(&str)) -> Result<Reply, Error> {
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
            .map_err(|e| Error::malformed(format!("a chunk is not JSON ({e}): {data}")))?;
        state.apply(&chunk, on_text)?;
    }
    // A finish reason is the reply's end; some servers never send `[DONE]` after it.
    match state.finish {
        Some(_) => Ok(state.finish()),
        None => Err(Error::incomplete()),
    }
}

impl State {
    fn apply(&mut self, chunk: &Value, on_text: &mut dyn FnMut(&str)) -> Result<(), Error> {
        if let Some(error) = chunk.get("error") {
            return Err(server_error(error));
        }
        // Groq puts the usage of a stream in `x_groq.usage`.
        let usage = [&chunk["usage"], &chunk["x_groq"]["usage"]];
        if let Some(usage) = usage.into_iter().find(|u| u.is_object()) {
            self.usage = Some(parse_usage(usage));
        }
        let mut choices = chunk["choices"].as_array().into_iter().flatten();
        let Some(choice) = choices.find(|c| c["index"].as_u64().unwrap_or(0) == 0) else {
            return Ok(());
        };
        let delta = choice.get("delta").or_else(|| choice.get("message"));
        if let Some(delta) = delta {
            if let Some(text) = delta["content"].as_str().filter(|t| !t.is_empty()) {
                self.text.push_str(text);
                on_text(text);
            }
            if let Some(refusal) = delta["refusal"].as_str().filter(|t| !t.is_empty()) {
                self.refused = true;
                self.text.push_str(refusal);
                on_text(refusal);
            }
            if let Some(reasoning) = delta["reasoning_content"].as_str() {
                self.reasoning.push_str(reasoning);
            }
            for detail in delta["reasoning_details"].as_array().into_iter().flatten() {
                merge_detail(&mut self.details, detail);
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
        if let Some(extra) = fragment.get("extra_content").filter(|e| e.is_object()) {
            let slot = call.extra.get_or_insert_with(|| json!({}));
            merge_fields(slot, extra);
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
        let stop = match self.finish.as_deref() {
            Some("stop") | None if self.refused => StopReason::Refusal,
            // Ollama and others say `stop` even when the reply carries calls.
            Some("stop") | None if !self.calls.is_empty() => StopReason::ToolUse,
            Some("stop") | None => StopReason::EndTurn,
            Some("tool_calls") | Some("function_call") => StopReason::ToolUse,
            Some("length") => StopReason::MaxTokens,
            Some("content_filter") => StopReason::Refusal,
            Some(other) => StopReason::Other(other.to_string()),
        };
        let mut opaque = Vec::new();
        let mut calls: Vec<ToolCall> = Vec::new();
        for (n, p) in self.calls.into_iter().enumerate() {
            let call = finish_call(n, p.id, p.name, &p.arguments);
            if let Some(extra) = p.extra {
                let data = json!({"extra_content": extra});
                opaque.push(Opaque::new(Some(call.id.clone()), data));
            }
            calls.push(call);
        }
        let mut fields = json!({});
        if !self.reasoning.is_empty() {
            fields["reasoning_content"] = json!(self.reasoning);
        }
        if !self.details.is_empty() {
            fields["reasoning_details"] = Value::Array(self.details);
        }
        if fields.as_object().is_some_and(|f| !f.is_empty()) {
            opaque.insert(0, Opaque::new(None, fields));
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

/// Adds one streamed `reasoning_details` entry: a fragment of the entry with the same
/// `index` (its `text` / `summary` appended, other fields taken), or a new entry.
fn merge_detail(details: &mut Vec<Value>, fragment: &Value) {
    let same = |d: &&mut Value| d["index"] == fragment["index"] && d["type"] == fragment["type"];
    let Some(entry) = details.iter_mut().rev().find(same) else {
        details.push(fragment.clone());
        return;
    };
    let (Some(entry), Some(fragment)) = (entry.as_object_mut(), fragment.as_object()) else {
        return;
    };
    for (k, v) in fragment {
        match (entry.get_mut(k), v) {
            (Some(Value::String(old)), Value::String(more)) if k == "text" || k == "summary" => {
                old.push_str(more)
            }
            (Some(_), Value::Null) => {}
            _ => {
                entry.insert(k.clone(), v.clone());
            }
        }
    }
}

fn parse_usage(usage: &Value) -> Usage {
    Usage::cached_apart(
        usage["prompt_tokens"].as_u64().unwrap_or(0),
        usage["prompt_tokens_details"]["cached_tokens"].as_u64(),
        usage["completion_tokens"].as_u64(),
    )
}

/// An `{"error": …}` chunk: an object with `message` (OpenAI, OpenRouter) or a string.
fn server_error(error: &Value) -> Error {
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
    Error::server(&message, retryable)
}

#[cfg(test)]
#[path = "openai_tests.rs"]
mod tests;
