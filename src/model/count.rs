//! Asking the server how many tokens a request is, before sending it: a llama.cpp
//! server renders it with its own chat template (`POST /apply-template`) and tokenizes
//! the prompt (`POST /tokenize`); Anthropic answers `POST /v1/messages/count_tokens`.
//! `None` when the server cannot say (Ollama, OpenAI): the caller estimates instead.

use super::{Endpoint, Provider, Request, anthropic, is_loopback, openai};
use serde_json::{Value, json};
use std::time::Duration;

/// A local server tokenizes a whole window in milliseconds; give up quickly otherwise.
const LOCAL_TIMEOUT: Duration = Duration::from_secs(5);
/// Anthropic's count endpoint is a network round trip.
const REMOTE_TIMEOUT: Duration = Duration::from_secs(10);

/// The input tokens of `req`, as the server counts them.
pub fn tokens(endpoint: &Endpoint, req: &Request) -> Option<u64> {
    match endpoint.provider {
        Provider::OpenAi if is_loopback(&endpoint.base_url) => llama_cpp(endpoint, req),
        Provider::OpenAi => None,
        Provider::Anthropic => count_tokens(endpoint, req),
    }
}

fn post(url: &str, headers: &[(&str, String)], body: &str, timeout: Duration) -> Option<Value> {
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(timeout)
        .timeout(timeout)
        .build();
    let mut request = agent.post(url).set("content-type", "application/json");
    for (name, value) in headers {
        request = request.set(name, value);
    }
    let text = request.send_string(body).ok()?.into_string().ok()?;
    serde_json::from_str(&text).ok()
}

/// llama.cpp: the prompt its template makes of the request, then its tokens.
fn llama_cpp(endpoint: &Endpoint, req: &Request) -> Option<u64> {
    let root = endpoint
        .base_url
        .trim_end_matches('/')
        .trim_end_matches("/v1");
    let headers = openai::headers(endpoint.api_key.as_deref());
    let body = openai::body(req);
    let rendered = post(
        &format!("{root}/apply-template"),
        &headers,
        &body,
        LOCAL_TIMEOUT,
    )?;
    let prompt = rendered["prompt"].as_str()?;
    let body = json!({"content": prompt}).to_string();
    let tokens = post(&format!("{root}/tokenize"), &headers, &body, LOCAL_TIMEOUT)?;
    tokens["tokens"].as_array().map(|t| t.len() as u64)
}

/// Anthropic: the request without the fields `count_tokens` does not take.
fn count_tokens(endpoint: &Endpoint, req: &Request) -> Option<u64> {
    let mut body: Value = serde_json::from_str(&anthropic::body(req)).ok()?;
    let object = body.as_object_mut()?;
    object.remove("stream");
    object.remove("max_tokens");
    let url = format!("{}/count_tokens", anthropic::url(&endpoint.base_url));
    let headers = anthropic::headers(endpoint.api_key.as_deref());
    let answer = post(&url, &headers, &body.to_string(), REMOTE_TIMEOUT)?;
    answer["input_tokens"].as_u64()
}
