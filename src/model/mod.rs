//! Talking to a model server: the provider-neutral conversation types, and one
//! `Client` that sends a request over any of the three wire protocols, streaming,
//! with retries, adapting once to what a server says it wants.
//!
//! The conversation is stored (and journaled) in this neutral form; `openai.rs`,
//! `anthropic.rs` and `responses.rs` map it onto their wire formats on the way out and
//! parse their streams back into a `Reply`. What a provider needs back unchanged
//! (reasoning, thinking blocks with signatures, thought signatures) travels as `Opaque`
//! data tagged with the wire family that sent it. `sse.rs` does the event-stream
//! framing for all. A request is sent by `retry.rs` (whether and when to try again),
//! one attempt at a time by `http.rs` (over `body.rs`, the bridge that lets a cancel
//! or the idle limit stop the wait); every failure is one `Error` (`error.rs`). Nothing
//! here prints: progress reaches the caller through `Event`s.

pub mod anthropic;
mod body;
pub mod count;
mod error;
mod http;
pub mod openai;
mod profile;
pub mod responses;
mod retry;
pub mod sse;

pub use error::Error;
pub use http::{list_models, server_window};
pub use profile::{CapField, Effort, Options, Profile};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::cell::Cell;
use std::hash::BuildHasher;
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
    /// OpenAI Responses (`{base}/responses`): the codex models, llama.cpp.
    #[serde(rename = "openai-responses")]
    OpenAiResponses,
}

impl Provider {
    pub fn name(self) -> &'static str {
        match self {
            Provider::OpenAi => "openai",
            Provider::Anthropic => "anthropic",
            Provider::OpenAiResponses => "openai-responses",
        }
    }
}

/// Data a provider sent that must go back to it unchanged (DeepSeek `reasoning_content`,
/// OpenRouter `reasoning_details`, Gemini thought signatures, Anthropic thinking blocks,
/// Responses reasoning items). Journaled as received, never redacted, and sent only to
/// the wire family that produced it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Opaque {
    /// Who may read it back: `anthropic`, `responses`, or `openai` / `openai/<profile>`.
    pub family: String,
    /// The tool call it belongs to (Gemini signatures, Responses item ids); `None`: the reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<String>,
    /// Exactly as received: fields of a message or call, a content block, or an item.
    pub data: Value,
}

impl Opaque {
    /// Data as a reader found it; `Client::send` fills in the family.
    fn new(call: Option<String>, data: Value) -> Opaque {
        Opaque {
            family: String::new(),
            call,
            data,
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
    /// Provider data to send back unchanged; assistant messages carry it first.
    Opaque(Opaque),
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

    /// Usage from OpenAI's counts, whose `input` includes the `cached` tokens: nib
    /// reports them apart, as Anthropic does. A missing count is 0.
    fn cached_apart(input: u64, cached: Option<u64>, output: Option<u64>) -> Usage {
        let cached = cached.unwrap_or(0);
        Usage {
            input_tokens: input.saturating_sub(cached),
            output_tokens: output.unwrap_or(0),
            cache_read_input_tokens: cached,
            cache_creation_input_tokens: 0,
        }
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
    /// The model declined (`refusal`, OpenAI `content_filter` or `delta.refusal`).
    Refusal,
    /// The reply filled the model's context window.
    #[serde(rename = "model_context_window_exceeded")]
    ContextWindowExceeded,
    Other(String),
}

impl StopReason {
    /// The name in result JSON and stream-json (Anthropic's vocabulary).
    pub fn name(&self) -> &str {
        match self {
            StopReason::EndTurn => "end_turn",
            StopReason::ToolUse => "tool_use",
            StopReason::MaxTokens => "max_tokens",
            StopReason::Refusal => "refusal",
            StopReason::ContextWindowExceeded => "model_context_window_exceeded",
            StopReason::Other(other) => other,
        }
    }

    /// The reply was cut short: its calls must not run.
    pub fn cut(&self) -> bool {
        matches!(
            self,
            StopReason::MaxTokens | StopReason::ContextWindowExceeded
        )
    }
}

/// What one request produced.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub text: String,
    pub calls: Vec<ToolCall>,
    pub stop: StopReason,
    /// `None` when the server reported no usage.
    pub usage: Option<Usage>,
    /// What must go back to this provider with the reply (see `Opaque`).
    pub opaque: Vec<Opaque>,
}

impl Reply {
    /// The reply as a conversation message: provider data first, then text, then calls.
    pub fn message(&self) -> Message {
        let mut content: Vec<Block> = self.opaque.iter().cloned().map(Block::Opaque).collect();
        if !self.text.is_empty() || self.calls.is_empty() {
            content.push(Block::Text {
                text: self.text.clone(),
            });
        }
        content.extend(self.calls.iter().cloned().map(Block::ToolCall));
        Message {
            role: Role::Assistant,
            content,
        }
    }
}

/// What replaces a refused exchange in the conversation sent to the model, so the next
/// request does not carry the same refusal (and refuse again).
pub const WITHHELD_PROMPT: &str = "(an earlier request the model declined; not repeated)";
pub const WITHHELD_REPLY: &str = "(declined)";

/// Replaces the last two messages of a refused exchange (the user's text and the
/// refusal) with short notes; tool results and provider data are dropped with them.
pub fn withhold_refusal(messages: &mut [Message]) {
    let n = messages.len();
    if let Some(reply) = messages.last_mut().filter(|m| m.role == Role::Assistant) {
        reply.content = vec![Block::Text {
            text: WITHHELD_REPLY.into(),
        }];
    }
    if n >= 2 && messages[n - 2].role == Role::User {
        for block in &mut messages[n - 2].content {
            if let Block::Text { text } = block {
                *text = WITHHELD_PROMPT.into();
            }
        }
    }
}

/// Everything one request needs.
#[derive(Clone, Copy)]
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
    Retry(Retry),
    /// The server has sent nothing for `silent`; nib gives up at `limit`.
    Stalled {
        silent: Duration,
        limit: Duration,
    },
}

/// A request failed in a way worth retrying; nib waits `wait` and tries again.
#[derive(Debug)]
pub struct Retry {
    /// The number of the attempt that failed (1 for the first).
    pub attempt: u32,
    pub wait: Duration,
    /// Why, in a few words, with the key masked.
    pub reason: String,
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

/// How long a stream may stay silent before nib gives up on it (settings
/// `idle_timeout_secs` overrides): local CPU models can think for minutes before the
/// first token.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Limits for one request; every one is a named constant with its reason at the call site.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub connect_timeout: Duration,
    /// No byte for this long on an open stream: the request failed.
    pub idle_timeout: Duration,
    pub max_attempts: u32,
    /// Upper bound for one back-off wait, and the longest `retry-after` nib honours: a
    /// server asking for more ends the request.
    pub max_backoff: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connect_timeout: Duration::from_secs(10),
            idle_timeout: IDLE_TIMEOUT,
            max_attempts: 6,
            max_backoff: Duration::from_secs(60),
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
    /// How requests are shaped: profile, effort, cap field, and what the server's
    /// answers taught this session (see `Options::adapt`).
    learned: Cell<Options>,
    /// Built once, from `limits`: the connection pool and the timeouts.
    agent: ureq::Agent,
}

impl Client {
    pub fn new(endpoint: Endpoint, limits: Limits, cancel: Arc<AtomicBool>) -> Client {
        let options = Options::for_endpoint(&endpoint);
        Client {
            agent: http::agent(&limits, !is_loopback(&endpoint.base_url)),
            endpoint,
            limits,
            cancel,
            learned: Cell::new(options),
        }
    }

    /// The same client with these options (settings and flags resolved by the caller).
    pub fn with_options(self, options: Options) -> Client {
        self.learned.set(options);
        self
    }

    /// Sends one request, streaming, retrying what is worth retrying. Text reaches
    /// `on_event` as it streams; after a `Retry` event the reply starts over. A 400/422
    /// that names a fix nib knows (the cap field, `stream_options`, a smaller cap that
    /// fits the window) is fixed and sent again once; the fix holds for the session.
    pub fn send(&self, req: &Request, on_event: &mut dyn FnMut(Event)) -> Result<Reply, Error> {
        let mut tried = Vec::new();
        loop {
            let options = self.learned.get();
            let family = options.family(self.endpoint.provider);
            let result = retry::send(self, &self.post(req, &options), on_event).map(|mut reply| {
                for o in &mut reply.opaque {
                    o.family.clone_from(&family);
                }
                reply
            });
            let Err(Error::Status { code, body, .. }) = &result else {
                return result;
            };
            match options.adapt(*code, body, req.max_tokens) {
                Some((fix, next)) if !tried.contains(&fix) => {
                    tried.push(fix);
                    self.learned.set(next);
                }
                _ => return result,
            }
        }
    }

    fn post(&self, req: &Request, options: &Options) -> http::Post {
        let key = self.endpoint.api_key.as_deref();
        let base = &self.endpoint.base_url;
        let family = options.family(self.endpoint.provider);
        let req = &options.clamp(*req);
        match self.endpoint.provider {
            Provider::OpenAi => http::Post {
                url: openai::url(base),
                headers: openai::headers(key, options.profile),
                body: openai::body(req, options, &family).into(),
                read: openai::read,
            },
            Provider::Anthropic => http::Post {
                url: anthropic::url(base),
                headers: anthropic::headers(key),
                body: anthropic::body(req, options.effort).into(),
                read: anthropic::read,
            },
            Provider::OpenAiResponses => http::Post {
                url: responses::url(base),
                headers: openai::headers(key, options.profile),
                body: responses::body(req, options.effort).into(),
                read: responses::read,
            },
        }
    }
}

/// `path` under a base URL, its query (Azure's `?api-version=…`) kept at the end:
/// `(http://h/v1?q, models)` → `http://h/v1/models?q`.
pub fn join(base: &str, path: &str) -> String {
    let (base, query) = base.split_once('?').unwrap_or((base, ""));
    let base = base.trim_end_matches('/');
    match query {
        "" => format!("{base}/{path}"),
        q => format!("{base}/{path}?{q}"),
    }
}

/// The server's own root (a llama.cpp server's `/props`, `/tokenize` live there): the
/// base URL without its query and `/v1`.
pub fn server_root(base: &str) -> &str {
    let base = base.split('?').next().unwrap_or(base).trim_end_matches('/');
    base.strip_suffix("/v1").unwrap_or(base)
}

/// `https://Host:8443/x` → `host:8443` (a default port is left out), read by the parser
/// the HTTP client uses; empty for what does not parse.
pub fn host_of(url: &str) -> String {
    let Ok(url) = url::Url::parse(url) else {
        return String::new();
    };
    match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_string(),
        (None, _) => String::new(),
    }
}

/// Whether a base URL names this machine (a local model server), read by the same
/// parser as `host_of`.
pub fn is_loopback(base_url: &str) -> bool {
    let url = url::Url::parse(base_url).ok();
    let host = url.as_ref().and_then(|u| u.host_str());
    matches!(host, Some("127.0.0.1" | "localhost" | "[::1]"))
}

/// FNV-1a, 64 bits: stable across runs, builds and platforms, unlike the std hasher,
/// so an id (or a folder name) maps the same way every time.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
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

/// Opaque data of `family` in a message: the reply's own, and each call's by id.
fn opaque_of<'a>(message: &'a Message, family: &str) -> Vec<&'a Opaque> {
    message
        .content
        .iter()
        .filter_map(|b| match b {
            Block::Opaque(o) if o.family == family => Some(o),
            _ => None,
        })
        .collect()
}

/// Copies the fields of an opaque object into a wire object (a message or a call).
fn merge_fields(target: &mut Value, data: &Value) {
    if let (Some(target), Some(data)) = (target.as_object_mut(), data.as_object()) {
        for (k, v) in data {
            target.insert(k.clone(), v.clone());
        }
    }
}

/// Merges into a wire object the opaque data of `call` (`None`: of the reply itself).
fn merge_opaque(target: &mut Value, opaque: &[&Opaque], call: Option<&str>) {
    for o in opaque.iter().filter(|o| o.call.as_deref() == call) {
        merge_fields(target, &o.data);
    }
}

/// The reply as read, every call marked invalid when the output-token limit cut it.
fn mark_cut(mut reply: Reply) -> Reply {
    if reply.stop.cut() {
        for call in &mut reply.calls {
            call.invalid = Some(CUT_BY_LIMIT.to_string());
        }
    }
    reply
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
mod testing;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_a_base_url_before_its_query() {
        assert_eq!(join("http://h:1/v1/", "models"), "http://h:1/v1/models");
        assert_eq!(
            join("https://r.azure.com/openai/v1?api-version=1", "models"),
            "https://r.azure.com/openai/v1/models?api-version=1"
        );
        assert_eq!(server_root("http://h:1/v1/"), "http://h:1");
        assert_eq!(server_root("http://h:1/v1?api-version=1"), "http://h:1");
        assert_eq!(server_root("http://h:1"), "http://h:1");
    }

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
