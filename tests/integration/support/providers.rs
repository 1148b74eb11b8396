//! Provider quirks the fake server can play (`FakeServer::emulating`), from each
//! provider's documentation: what its replies carry that must come back unchanged
//! (reasoning, signatures, encrypted items), and the requests it rejects, with the
//! status and error text it answers. The fake renders and records; this file decides.

use super::fake::{Protocol, Recorded};
use serde_json::{Value, json};
use std::collections::HashMap;

/// A provider whose rules the fake enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Emulation {
    /// Thinking mode: `reasoning_content` must come back on assistant messages with calls.
    DeepSeek,
    /// OpenAI-compatible Gemini 3: each call's `extra_content.google.thought_signature`.
    Gemini,
    /// `reasoning_details` must come back (Anthropic models behind OpenRouter).
    OpenRouter,
    /// Usage only in `x_groq.usage`.
    Groq,
    /// No `stream_options`; 9-character ids; no `user` right after `tool`.
    Mistral,
    /// Deployment URL with `api-version`, `api-key` header, and a reasoning deployment
    /// that rejects `max_tokens`.
    Azure,
    /// An Anthropic-protocol server that thinks by default: signed `thinking` and
    /// `redacted_thinking` blocks before each `tool_use`, required back unchanged.
    AnthropicThinking,
    /// Responses API reasoning items with `encrypted_content`, required back (stateless).
    ResponsesReasoning,
}

/// Gemini's documented stand-ins for a signature the client never saw.
const GEMINI_DUMMIES: [&str; 2] = [
    "skip_thought_signature_validator",
    "context_engineering_is_the_way_to_go",
];

/// A signature with characters escaping and redaction would touch (`+`, `/`, `=`, and
/// an `sk-` run that looks like an API key).
pub fn signature(id: &str) -> String {
    format!("EqQB+sk-{id}SIGNATUREabcdefghij0123/w==")
}

/// The reasoning text the fake "thought" before the calls `ids`.
pub fn reasoning_text(ids: &[String]) -> String {
    format!("I should call a tool for {}.", ids.join(" and "))
}

/// OpenRouter's `reasoning_details` for a turn, whole (what must come back).
fn details(ids: &[String]) -> Value {
    json!([{"type": "reasoning.text", "index": 0, "format": "anthropic-claude-v1",
            "text": reasoning_text(ids), "signature": signature(&ids[0])}])
}

/// Anthropic thinking blocks for a turn, whole.
fn thinking_blocks(ids: &[String]) -> Value {
    json!([
        {"type": "thinking", "thinking": reasoning_text(ids), "signature": signature(&ids[0])},
        {"type": "redacted_thinking", "data": format!("RD+{}/redacted==", ids[0])},
    ])
}

/// A Responses reasoning item for a turn, whole.
fn reasoning_item(ids: &[String]) -> Value {
    json!({"type": "reasoning", "id": format!("rs_{}", ids[0]),
           "summary": [{"type": "summary_text", "text": reasoning_text(ids)}],
           "encrypted_content": signature(&ids[0])})
}

/// Chat deltas that come before the text: DeepSeek reasoning, OpenRouter details.
pub fn openai_reasoning(emulation: Option<Emulation>, ids: &[String]) -> Vec<Value> {
    if ids.is_empty() {
        return Vec::new();
    }
    let text = reasoning_text(ids);
    let (head, tail) = text.split_at(text.len() / 2);
    match emulation {
        Some(Emulation::DeepSeek) => vec![
            json!({"reasoning_content": head}),
            json!({"reasoning_content": tail}),
        ],
        Some(Emulation::OpenRouter) => vec![
            json!({"reasoning_details": [{"type": "reasoning.text", "index": 0,
                "format": "anthropic-claude-v1", "text": head}]}),
            json!({"reasoning_details": [{"type": "reasoning.text", "index": 0,
                "format": "anthropic-claude-v1", "text": tail, "signature": signature(&ids[0])}]}),
        ],
        _ => Vec::new(),
    }
}

/// Gemini's thought signature on the first fragment of a call.
pub fn openai_call_extra(emulation: Option<Emulation>, id: &str, fragment: &mut Value) {
    if emulation == Some(Emulation::Gemini) && fragment["function"]["name"].is_string() {
        fragment["extra_content"] = json!({"google": {"thought_signature": signature(id)}});
    }
}

/// Anthropic events for the thinking blocks (content indexes 0 and 1).
pub fn anthropic_thinking(emulation: Option<Emulation>, ids: &[String]) -> Vec<Value> {
    if emulation != Some(Emulation::AnthropicThinking) || ids.is_empty() {
        return Vec::new();
    }
    let text = reasoning_text(ids);
    let (head, tail) = text.split_at(text.len() / 2);
    let redacted = &thinking_blocks(ids)[1];
    let delta = |delta: Value| json!({"type": "content_block_delta", "index": 0, "delta": delta});
    vec![
        json!({"type": "content_block_start", "index": 0,
               "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        delta(json!({"type": "thinking_delta", "thinking": head})),
        delta(json!({"type": "thinking_delta", "thinking": tail})),
        delta(json!({"type": "signature_delta", "signature": signature(&ids[0])})),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "content_block_start", "index": 1, "content_block": redacted}),
        json!({"type": "content_block_stop", "index": 1}),
    ]
}

/// Responses reasoning items that come before a turn's calls.
pub fn responses_reasoning(emulation: Option<Emulation>, ids: &[String]) -> Vec<Value> {
    match emulation {
        Some(Emulation::ResponsesReasoning) if !ids.is_empty() => vec![reasoning_item(ids)],
        _ => Vec::new(),
    }
}

/// What a turn with calls `ids` obliges the client to send back, by call id.
pub fn owed(emulation: Emulation, ids: &[String]) -> Vec<(String, Value)> {
    if ids.is_empty() {
        return Vec::new();
    }
    let whole = match emulation {
        Emulation::DeepSeek => json!(reasoning_text(ids)),
        Emulation::OpenRouter => details(ids),
        Emulation::AnthropicThinking => thinking_blocks(ids),
        Emulation::ResponsesReasoning => reasoning_item(ids),
        Emulation::Gemini => {
            return ids
                .iter()
                .map(|id| (id.clone(), json!(signature(id))))
                .collect();
        }
        Emulation::Groq | Emulation::Mistral | Emulation::Azure => return Vec::new(),
    };
    vec![(ids[0].clone(), whole)]
}

/// A rejection: status and body.
type Reject = (u16, String);

/// Whether the provider would take this request; its error when not.
pub fn check(
    emulation: Emulation,
    req: &Recorded,
    owed: &HashMap<String, Value>,
) -> Result<(), Reject> {
    match emulation {
        Emulation::DeepSeek => deepseek(req, owed),
        Emulation::Gemini => gemini(req, owed),
        Emulation::OpenRouter => openrouter(req, owed),
        Emulation::Groq => Ok(()),
        Emulation::Mistral => mistral(req),
        Emulation::Azure => azure(req),
        Emulation::AnthropicThinking => anthropic(req, owed),
        Emulation::ResponsesReasoning => responses(req, owed),
    }
}

fn openai_error(code: u16, message: &str, kind: &str) -> Reject {
    let body = json!({"error": {"message": message, "type": kind, "param": null, "code": null}});
    (code, body.to_string())
}

/// Assistant messages that carry tool calls, with the id of their first call.
fn call_turns(req: &Recorded) -> Vec<(&Value, String)> {
    req.messages()
        .iter()
        .filter(|m| m["role"] == "assistant")
        .filter_map(|m| {
            let first = m["tool_calls"][0]["id"].as_str()?;
            Some((m, first.to_string()))
        })
        .collect()
}

fn deepseek(req: &Recorded, owed: &HashMap<String, Value>) -> Result<(), Reject> {
    for (m, id) in call_turns(req) {
        let back = &m["reasoning_content"];
        let wrong = owed.get(&id).is_some_and(|o| o != back);
        if !back.is_string() || wrong {
            return Err(openai_error(
                400,
                "The `reasoning_content` in the thinking mode must be passed back to the API.",
                "invalid_request_error",
            ));
        }
    }
    Ok(())
}

fn gemini(req: &Recorded, owed: &HashMap<String, Value>) -> Result<(), Reject> {
    for (m, _) in call_turns(req) {
        for call in m["tool_calls"].as_array().into_iter().flatten() {
            let sig = &call["extra_content"]["google"]["thought_signature"];
            let id = call["id"].as_str().unwrap_or("");
            let ok = match owed.get(id) {
                Some(o) => o == sig,
                None => sig.as_str().is_some_and(|s| GEMINI_DUMMIES.contains(&s)),
            };
            if !ok {
                let message = format!(
                    "Function call is missing a thought_signature in functionCall parts. This is \
                     required for tools to work correctly. Additional data, function call \
                     `default_api:{}`. Please refer to \
                     https://ai.google.dev/gemini-api/docs/thought-signatures for more details.",
                    call["function"]["name"].as_str().unwrap_or("")
                );
                let body = json!([{"error": {"code": 400, "message": message,
                                             "status": "INVALID_ARGUMENT"}}]);
                return Err((400, body.to_string()));
            }
        }
    }
    Ok(())
}

fn openrouter(req: &Recorded, owed: &HashMap<String, Value>) -> Result<(), Reject> {
    for (m, id) in call_turns(req) {
        if owed.get(&id).is_some_and(|o| *o != m["reasoning_details"]) {
            let raw = "messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, \
                       but found `tool_use`.";
            let body = json!({"error": {"message": "Provider returned error", "code": 400,
                                        "metadata": {"raw": raw, "provider_name": "Anthropic"}}});
            return Err((400, body.to_string()));
        }
    }
    Ok(())
}

fn mistral(req: &Recorded) -> Result<(), Reject> {
    let mistral_error = |code: u16, message: Value, kind: &str| {
        let body = json!({"object": "error", "message": message, "type": kind,
                          "param": null, "code": null});
        Err((code, body.to_string()))
    };
    if let Some(options) = req.body.get("stream_options") {
        let detail = json!({"detail": [{"type": "extra_forbidden", "loc": ["body", "stream_options"],
                            "msg": "Extra inputs are not permitted", "input": options}]});
        return mistral_error(422, detail, "invalid_request_message_error");
    }
    let ok_id = |id: &str| id.len() == 9 && id.chars().all(|c| c.is_ascii_alphanumeric());
    let mut previous = "";
    for m in req.messages() {
        let role = m["role"].as_str().unwrap_or("");
        let calls = m["tool_calls"].as_array().into_iter().flatten();
        let ids = calls
            .map(|c| &c["id"])
            .chain([&m["tool_call_id"]])
            .filter_map(Value::as_str);
        for id in ids {
            if !ok_id(id) {
                let message =
                    format!("Tool call id was {id} but must be a-z, A-Z, 0-9, with a length of 9.");
                return mistral_error(400, json!(message), "invalid_request_message_error");
            }
        }
        if previous == "tool" && role == "user" {
            let message = json!("Unexpected role 'user' after role 'tool'");
            return mistral_error(400, message, "invalid_request_message_error");
        }
        previous = role;
    }
    Ok(())
}

fn azure(req: &Recorded) -> Result<(), Reject> {
    let (path, query) = req.path.split_once('?').unwrap_or((&req.path, ""));
    if !path.starts_with("/openai/deployments/") || !query.contains("api-version=") {
        let body = json!({"error": {"code": "404", "message": "Resource not found"}});
        return Err((404, body.to_string()));
    }
    if req.header("api-key").is_none() || req.header("authorization").is_some() {
        let message = "Access denied due to invalid subscription key or wrong API endpoint. \
                       Make sure to provide a valid key for an active subscription and use a \
                       correct regional API endpoint for your resource.";
        let body = json!({"error": {"code": "401", "message": message}});
        return Err((401, body.to_string()));
    }
    if req.body.get("max_tokens").is_some() {
        let message = "Unsupported parameter: 'max_tokens' is not supported with this model. \
                       Use 'max_completion_tokens' instead.";
        return Err(openai_error(400, message, "invalid_request_error"));
    }
    Ok(())
}

fn anthropic(req: &Recorded, owed: &HashMap<String, Value>) -> Result<(), Reject> {
    let assistant = req.messages().iter().enumerate();
    for (n, m) in assistant.filter(|(_, m)| m["role"] == "assistant") {
        let blocks = m["content"].as_array().map_or(&[][..], |b| b);
        let first_call = blocks.iter().find(|b| b["type"] == "tool_use");
        let Some(expected) = first_call.and_then(|c| owed.get(c["id"].as_str().unwrap_or("")))
        else {
            continue;
        };
        let sent = Value::Array(blocks.iter().take(2).cloned().collect());
        if sent != *expected {
            let message = match blocks.first().map(|b| &b["type"]) {
                Some(t) if t == "thinking" => {
                    format!("messages.{n}.content.0: Invalid `signature` in `thinking` block")
                }
                _ => format!(
                    "messages.{n}.content.0.type: Expected `thinking` or `redacted_thinking`, \
                     but found `tool_use`. When `thinking` is enabled, a final `assistant` \
                     message must start with a thinking block."
                ),
            };
            let body = json!({"type": "error", "error": {"type": "invalid_request_error",
                                                         "message": message}});
            return Err((400, body.to_string()));
        }
    }
    Ok(())
}

fn responses(req: &Recorded, owed: &HashMap<String, Value>) -> Result<(), Reject> {
    assert_eq!(req.protocol(), Some(Protocol::Responses));
    if req.body["store"] != false {
        return Err(openai_error(
            400,
            "this server keeps nothing: send store: false",
            "invalid_request_error",
        ));
    }
    let include = req.body["include"].as_array().into_iter().flatten();
    if !include
        .into_iter()
        .any(|i| i == "reasoning.encrypted_content")
    {
        let message = "Encrypted reasoning must be requested with include: [\"reasoning.encrypted_content\"] when store is false.";
        return Err(openai_error(400, message, "invalid_request_error"));
    }
    let items = req.messages();
    for (n, item) in items.iter().enumerate() {
        let call_id = item["call_id"].as_str().unwrap_or("");
        let Some(expected) = owed
            .get(call_id)
            .filter(|_| item["type"] == "function_call")
        else {
            continue;
        };
        let id_ok = item["id"] == format!("fc_{call_id}");
        if !items[..n].contains(expected) || !id_ok {
            let message = format!(
                "Item 'fc_{call_id}' of type 'function_call' was provided without its required \
                 'reasoning' item: '{}'.",
                expected["id"].as_str().unwrap_or("")
            );
            return Err(openai_error(400, &message, "invalid_request_error"));
        }
    }
    Ok(())
}
