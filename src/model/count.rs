//! Asking the server how many tokens a request is, before sending it: a llama.cpp
//! server renders it with its own chat template (`POST /apply-template`) and tokenizes
//! the prompt (`POST /tokenize`); Anthropic answers `POST /v1/messages/count_tokens`.
//! `None` when the server cannot say (Ollama, OpenAI): the caller estimates instead.

use super::{Client, Provider, Request, http, is_loopback};
use serde_json::{Value, json};
use std::time::Duration;

/// A local server tokenizes a whole window in milliseconds; give up quickly otherwise.
const LOCAL_TIMEOUT: Duration = Duration::from_secs(5);
/// Anthropic's count endpoint is a network round trip.
const REMOTE_TIMEOUT: Duration = Duration::from_secs(10);

impl Client {
    /// The input tokens of `req`, as the server counts them: the very body and
    /// headers the request would be sent with.
    pub fn count_tokens(&self, req: &Request) -> Option<u64> {
        let post = self.post(req, &self.learned.get());
        let base = &self.endpoint.base_url;
        match self.endpoint.provider {
            Provider::OpenAi if is_loopback(base) => llama_cpp(base, &post.headers, &post.body),
            Provider::Anthropic => count_tokens(&post.url, &post.headers, &post.body),
            _ => None,
        }
    }
}

fn post(url: &str, headers: &[(&str, String)], body: &str, timeout: Duration) -> Option<Value> {
    let agent = http::one_off(timeout).redirects(0).build();
    let request = http::post_json(&agent, url, headers);
    let text = request.send_string(body).ok()?.into_string().ok()?;
    serde_json::from_str(&text).ok()
}

/// llama.cpp: the prompt its template makes of the request, then its tokens.
fn llama_cpp(base: &str, headers: &[(&str, String)], body: &str) -> Option<u64> {
    let root = super::server_root(base);
    let template = format!("{root}/apply-template");
    let rendered = post(&template, headers, body, LOCAL_TIMEOUT)?;
    let prompt = rendered["prompt"].as_str()?;
    let body = json!({ "content": prompt }).to_string();
    let tokens = post(&format!("{root}/tokenize"), headers, &body, LOCAL_TIMEOUT)?;
    tokens["tokens"].as_array().map(|t| t.len() as u64)
}

/// Anthropic: the request without the fields `count_tokens` does not take.
fn count_tokens(url: &str, headers: &[(&str, String)], body: &str) -> Option<u64> {
    let mut body: Value = serde_json::from_str(body).ok()?;
    let object = body.as_object_mut()?;
    object.remove("stream");
    object.remove("max_tokens");
    let url = format!("{}/count_tokens", url.split('?').next().unwrap_or(url));
    let answer = post(&url, headers, &body.to_string(), REMOTE_TIMEOUT)?;
    answer["input_tokens"].as_u64()
}
