//! Talking to a model server: the provider-neutral conversation types, and one
//! `Client` that sends a request over either wire protocol, streaming, with retries.
//!
//! The conversation is stored (and journaled) in this neutral form; `openai.rs` and
//! `anthropic.rs` map it onto their wire formats on the way out and parse their
//! streams back into a `Reply`. `sse.rs` does the event-stream framing for both.
//! Nothing here prints: progress reaches the caller through `Event`s.

pub mod anthropic;
pub mod openai;
pub mod sse;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

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
    pub name: &'static str,
    pub description: &'static str,
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
    pub limits: Limits,
    /// Set by the UI to cancel the request under way.
    pub cancel: Arc<AtomicBool>,
}

impl Client {
    pub fn new(endpoint: Endpoint, limits: Limits, cancel: Arc<AtomicBool>) -> Client {
        Client {
            endpoint,
            limits,
            cancel,
        }
    }

    /// Sends one request, streaming, retrying what is worth retrying.
    pub fn send(
        &self,
        _req: &Request,
        _on_event: &mut dyn FnMut(Event),
    ) -> Result<Reply, ModelError> {
        todo!("model client")
    }
}

/// Asks an OpenAI-compatible server which models it serves (`GET {base}/models`).
/// Used to find a local server when nothing is configured.
pub fn list_models(_base_url: &str, _timeout: Duration) -> Result<Vec<String>, ModelError> {
    todo!("list models")
}
