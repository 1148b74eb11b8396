//! Talking to a model server: the provider-neutral conversation types, and one
//! `Client` that sends a request over either wire protocol, streaming, with retries.
//!
//! The conversation is stored (and journaled) in this neutral form; `openai.rs` and
//! `anthropic.rs` map it onto their wire formats on the way out and parse their
//! streams back into a `Reply`. `sse.rs` does the event-stream framing for both.
//! Nothing here prints: progress reaches the caller through `Event`s.

pub mod anthropic;
mod http;
pub mod openai;
pub mod sse;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::hash::BuildHasher;
use std::io;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, SystemTime};

/// Which wire protocol an endpoint speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// OpenAI Chat Completions (`{base}/chat/completions`): OpenAI, OpenRouter,
    /// llama.cpp, Ollama, LM Studio, vLLM.
    #[serde(rename = "openai")]
    OpenAi,
    /// Anthropic Messages (`{base}/v1/messages`).
    Anthropic,
}

impl Provider {
    pub fn name(self) -> &'static str {
        match self {
            Provider::OpenAi => "openai",
            Provider::Anthropic => "anthropic",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

/// A tool call as the model asked for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's id, or one nib made up when the server sent none.
    pub id: String,
    pub name: String,
    /// The parsed arguments (a JSON object when valid).
    pub input: Value,
    /// Why this call must not run: its arguments were not valid JSON, or the reply was
    /// cut by the token limit. The model is told instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid: Option<String>,
}

/// One piece of a message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    Text {
        text: String,
    },
    ToolCall(ToolCall),
    ToolResult {
        /// The id of the `ToolCall` this answers.
        id: String,
        content: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        is_error: bool,
    },
}

/// One message of the conversation, provider-neutral.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: Vec<Block>,
}

impl Message {
    pub fn user_text(text: impl Into<String>) -> Message {
        Message {
            role: Role::User,
            content: vec![Block::Text { text: text.into() }],
        }
    }
}

/// A tool the model may call: name, one-line description, JSON schema of its input.
#[derive(Clone, Debug)]
pub struct ToolSpec {
    /// nib's own tools have static names; MCP tools bring theirs.
    pub name: std::borrow::Cow<'static, str>,
    pub description: std::borrow::Cow<'static, str>,
    pub schema: Value,
}

/// Token counts for one request (or summed over many).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    #[serde(default)]
    pub cache_read_input_tokens: u64,
    #[serde(default)]
    pub cache_creation_input_tokens: u64,
}

impl Usage {
    pub fn add(&mut self, other: &Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cache_read_input_tokens += other.cache_read_input_tokens;
        self.cache_creation_input_tokens += other.cache_creation_input_tokens;
    }
}

/// Why the model stopped, normalised across providers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    EndTurn,
    ToolUse,
    /// Cut by the output-token limit (`length` / `max_tokens`).
    MaxTokens,
    Other(String),
}

/// What one request produced.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub text: String,
    pub calls: Vec<ToolCall>,
    pub stop: StopReason,
    /// `None` when the server reported no usage.
    pub usage: Option<Usage>,
}

/// Everything one request needs.
pub struct Request<'a> {
    pub model: &'a str,
    pub system: &'a str,
    pub messages: &'a [Message],
    pub tools: &'a [ToolSpec],
    pub max_tokens: u32,
}

/// Progress while a request is under way.
#[derive(Debug)]
pub enum Event<'a> {
    /// A piece of the assistant's text, as it streams.
    Text(&'a str),
    /// A request failed in a way worth retrying; nib waits `wait` and tries again.
    /// `attempt` is the number of the attempt that failed (1 for the first).
    Retry {
        attempt: u32,
        wait: Duration,
        reason: String,
    },
}

/// Where requests go, and with which credentials.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub provider: Provider,
    /// For OpenAI: ends in `/v1` (requests go to `{base}/chat/completions`).
    /// For Anthropic: the host root (requests go to `{base}/v1/messages`); a trailing
    /// `/v1` is tolerated.
    pub base_url: String,
    pub api_key: Option<String>,
    pub model: String,
}

/// Limits for one request; every one is a named constant with its reason at the call site.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub connect_timeout: Duration,
    /// No byte for this long on an open stream: the request failed.
    pub idle_timeout: Duration,
    pub max_attempts: u32,
    /// Upper bound for one back-off wait (also caps a server's `retry-after`).
    pub max_backoff: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connect_timeout: Duration::from_secs(10),
            // Local CPU models can think for a long time before the first token.
            idle_timeout: Duration::from_secs(300),
            max_attempts: 6,
            max_backoff: Duration::from_secs(60),
        }
    }
}

/// A failed request, after retries.
#[derive(Debug)]
pub enum ModelError {
    /// Could not connect (server down, DNS, TLS).
    Connect { url: String, detail: String },
    /// The server answered with an error status that is not retried, or retries ran out.
    Status {
        code: u16,
        url: String,
        body: String,
    },
    /// The stream was malformed, cut before its end marker, or carried an error event.
    Stream(String),
    /// No data for `idle_timeout`.
    Timeout { url: String, secs: u64 },
    /// The user cancelled.
    Interrupted,
}

impl std::fmt::Display for ModelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelError::Connect { url, detail } => write!(
                f,
                "cannot reach the model server at {url} ({detail}); is it running?"
            ),
            ModelError::Status { code, url, body } => {
                let hint = match code {
                    401 | 403 => "; check the API key",
                    404 => "; check --base-url and --model",
                    429 => "; rate limited, try again later",
                    _ => "",
                };
                write!(f, "model server {url} answered {code}: {body}{hint}")
            }
            ModelError::Stream(detail) => write!(f, "bad stream from the model server: {detail}"),
            ModelError::Timeout { url, secs } => {
                write!(f, "model server {url} sent nothing for {secs} s")
            }
            ModelError::Interrupted => write!(f, "interrupted"),
        }
    }
}

/// Sends requests to one endpoint. Cheap to build; holds a connection pool.
pub struct Client {
    pub endpoint: Endpoint,
    /// Read when the client is built (timeouts) and on every request (the rest).
    pub limits: Limits,
    /// Set by the UI to cancel the request under way; nib never clears it.
    pub cancel: Arc<AtomicBool>,
    /// Built once, from `limits`: the connection pool and the timeouts.
    agent: ureq::Agent,
}

impl Client {
    pub fn new(endpoint: Endpoint, limits: Limits, cancel: Arc<AtomicBool>) -> Client {
        Client {
            agent: http::agent(&limits, !is_loopback(&endpoint.base_url)),
            endpoint,
            limits,
            cancel,
        }
    }

    /// Sends one request, streaming, retrying what is worth retrying. Text reaches
    /// `on_event` as it streams; after a `Retry` event the reply starts over.
    pub fn send(
        &self,
        req: &Request,
        on_event: &mut dyn FnMut(Event),
    ) -> Result<Reply, ModelError> {
        let key = self.endpoint.api_key.as_deref();
        let base = &self.endpoint.base_url;
        let post = match self.endpoint.provider {
            Provider::OpenAi => http::Post {
                url: openai::url(base),
                headers: openai::headers(key),
                body: openai::body(req).into(),
                read: openai::read,
            },
            Provider::Anthropic => http::Post {
                url: anthropic::url(base),
                headers: anthropic::headers(key),
                body: anthropic::body(req).into(),
                read: anthropic::read,
            },
        };
        http::send(self, &post, on_event)
    }
}

/// Whether a base URL names this machine (a local model server).
pub fn is_loopback(base_url: &str) -> bool {
    let rest = base_url.split_once("://").map_or(base_url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => host,
        _ => authority,
    };
    matches!(
        host.to_ascii_lowercase().as_str(),
        "127.0.0.1" | "localhost" | "[::1]"
    )
}

/// Asks an OpenAI-compatible server which models it serves (`GET {base}/models`).
/// Used to find a local server when nothing is configured.
pub fn list_models(base_url: &str, timeout: Duration) -> Result<Vec<String>, ModelError> {
    http::list_models(base_url, timeout)
}

/// Asks a local llama.cpp server for its context window (tokens); `None` when it
/// does not say.
pub fn server_window(base_url: &str, timeout: Duration) -> Option<u64> {
    http::server_window(base_url, timeout)
}

/// Why reading a reply stream failed; `http.rs` decides what is worth a retry.
#[derive(Debug)]
pub enum StreamError {
    /// Reading the body failed: connection lost, cancelled, idle, or a line too long.
    Io(io::Error),
    /// The bytes are not the protocol (a chunk that is not JSON).
    Malformed(String),
    /// The stream ended before its end marker (`[DONE]` / `message_stop`).
    Incomplete,
    /// The server sent an error event.
    Server { message: String, retryable: bool },
}

impl From<io::Error> for StreamError {
    fn from(e: io::Error) -> StreamError {
        StreamError::Io(e)
    }
}

/// Why a call cut by the output-token limit must not run.
const CUT_BY_LIMIT: &str = "the reply was cut by the output token limit before this call was complete; \
     make the call again with smaller arguments (e.g. write a big file in parts)";

/// Turns an assembled call into a `ToolCall`: makes up a missing id, reads empty
/// arguments as `{}`, and marks arguments that are not a JSON object invalid.
fn finish_call(n: usize, id: String, name: String, arguments: &str) -> ToolCall {
    let id = if id.is_empty() {
        format!("call_{n}_{:08x}", random() as u32)
    } else {
        id
    };
    let (input, invalid) = parse_arguments(arguments);
    ToolCall {
        id,
        name,
        input,
        invalid,
    }
}

/// Arguments text → the input object, or the raw text and why it is unusable.
fn parse_arguments(text: &str) -> (Value, Option<String>) {
    if text.trim().is_empty() {
        return (Value::Object(Default::default()), None);
    }
    let value = match serde_json::from_str::<Value>(text) {
        Ok(value) => value,
        Err(e) => {
            let why = format!("arguments are not valid JSON: {e}");
            return (Value::String(text.to_string()), Some(why));
        }
    };
    // Some models encode the object twice: a JSON string holding JSON.
    let value = match value {
        Value::String(inner) => serde_json::from_str(&inner).unwrap_or(Value::String(inner)),
        value => value,
    };
    match value {
        Value::Object(_) => (value, None),
        _ => {
            let why = format!("arguments are not valid JSON: expected an object, got {value}");
            (Value::String(text.to_string()), Some(why))
        }
    }
}

/// Marks every call of a reply cut by the output-token limit.
fn mark_cut(calls: &mut [ToolCall]) {
    for call in calls {
        call.invalid = Some(CUT_BY_LIMIT.to_string());
    }
}

/// A call's input as sent back to a server: the object, or `{}` when it was invalid.
fn object_or_empty(input: &Value) -> Value {
    match input {
        Value::Object(_) => input.clone(),
        _ => Value::Object(Default::default()),
    }
}

/// A fresh random number from the std hasher's per-process keys and the clock.
fn random() -> u64 {
    std::collections::hash_map::RandomState::new().hash_one(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_urls() {
        let check = |url: &str, expected: bool| assert_eq!(is_loopback(url), expected, "{url}");
        check("http://127.0.0.1:8080/v1", true);
        check("http://LOCALHOST:11434/v1", true);
        check("http://[::1]:8000/v1", true);
        check("http://[::1]/v1", true);
        check("http://localhost", true);
        check("https://api.openai.com/v1", false);
        check("http://127.0.0.1.example.com/v1", false);
        check("http://user@10.0.0.2:8080", false);
    }
}
