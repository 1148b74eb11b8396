//! One attempt at a model request over HTTP: a worker thread does the blocking ureq
//! calls (no redirects, a key goes only where its base URL says), reads a failed head
//! as an `Error`, and passes the answer on over `body.rs`'s channel; this side hands
//! the body to the protocol reader. Retries are `retry.rs`'s, what the bytes mean the
//! parsers' (`openai::read`, `anthropic::read`, `responses::read`). Also the small
//! questions a server answers besides a reply: its model list and its context window
//! (and `count.rs`'s token count, through `one_off` and `post_json`).

use super::body::{Body, Waiter, Wire};
use super::retry::retry_after;
use super::{Client, Error, Event, Limits, Reply};
use serde_json::Value;
use std::cell::RefCell;
use std::io::{self, BufRead, Read};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread;
use std::time::{Duration, SystemTime};

/// Chunks in flight between worker and caller; bounds memory if the caller is slow.
const CHANNEL_DEPTH: usize = 64;
/// Bytes per read of the body.
const CHUNK: usize = 16 << 10;
/// Enough of an error body to show its message; the rest is noise (often HTML).
const MAX_ERROR_BODY: u64 = 4 << 10;
/// A model list is a few KB; anything this big is not one.
const MAX_MODEL_LIST: u64 = 1 << 20;
/// The socket's own read timeout lags the idle limit by this much, so the caller's idle
/// check fires first and this only frees a worker stuck on a dead connection.
const IDLE_GRACE: Duration = Duration::from_secs(5);

/// Reads one streamed reply: `openai::read`, `anthropic::read` or `responses::read`.
pub type ReadReply = fn(&mut dyn BufRead, &mut dyn FnMut(&str)) -> Result<Reply, Error>;

/// One request, ready to send as many times as it takes.
pub struct Post {
    pub url: String,
    /// Besides `content-type: application/json`, which is always sent.
    pub headers: Vec<(&'static str, String)>,
    pub body: Arc<str>,
    pub read: ReadReply,
}

/// The connection pool and timeouts for one `Client`. Without `pool`, every request
/// opens a fresh connection: on loopback that costs microseconds, while a kept-alive
/// one can stall each reply for a delayed ACK (tens of ms) when the server sends its
/// stream in small writes without TCP_NODELAY (llama.cpp's default, Python servers).
/// Redirects are not followed: ureq would carry headers such as `x-api-key` to the new
/// host, and a key goes only where its base URL says.
pub fn agent(limits: &Limits, pool: bool) -> ureq::Agent {
    let builder = ureq::AgentBuilder::new()
        .redirects(0)
        .timeout_connect(limits.connect_timeout)
        .timeout_read(limits.idle_timeout + IDLE_GRACE)
        .user_agent(concat!("nib/", env!("CARGO_PKG_VERSION")));
    match pool {
        true => builder.build(),
        false => builder.max_idle_connections(0).build(),
    }
}

/// One attempt's failure, and the wait the server asked for (`retry-after`), if any.
pub type Failed = (Error, Option<Duration>);

/// Sends `post` once and reads the reply, streaming its text to `on_event`.
pub fn attempt(
    client: &Client,
    post: &Post,
    on_event: &mut dyn FnMut(Event),
) -> Result<Reply, Failed> {
    let url = &post.url;
    let rx = spawn(client.agent.clone(), post).map_err(|e| {
        let detail = format!("cannot start a thread: {e}");
        let error = Error::Connect {
            url: url.clone(),
            detail,
            retry: false,
        };
        (error, None)
    })?;
    let waiter = Waiter {
        rx,
        client,
        url,
        on_event: RefCell::new(on_event),
    };
    opened(waiter.next().map_err(|e| (e, None))?)?;
    let mut body = Body::new(&waiter);
    let on_text = &mut |text: &str| (*waiter.on_event.borrow_mut())(Event::Text(text));
    let result = (post.read)(&mut body, on_text);
    result.map_err(|e| (body.halt.take().unwrap_or(e), None))
}

/// The head of the answer: `Ok` when a body follows, else what went wrong.
fn opened(head: Option<Wire>) -> Result<(), Failed> {
    match head {
        Some(Wire::Open) => Ok(()),
        Some(Wire::Failed(failed)) => Err(failed),
        Some(Wire::Chunk(_) | Wire::Broken(_)) | None => Err((
            Error::Stream {
                detail: "the connection closed before an answer".to_string(),
                retry: true,
            },
            None,
        )),
    }
}

/// Starts the worker that sends `post` and forwards what comes back.
fn spawn(agent: ureq::Agent, post: &Post) -> io::Result<Receiver<Wire>> {
    let (tx, rx) = mpsc::sync_channel(CHANNEL_DEPTH);
    let url = post.url.clone();
    let headers = post.headers.clone();
    let body = Arc::clone(&post.body);
    thread::Builder::new()
        .name("nib-model".into())
        .spawn(move || {
            let sent = post_json(&agent, &url, &headers).send_string(&body);
            match streaming(sent, url) {
                Ok(response) => pump(response, &tx),
                Err(failed) => {
                    let _ = tx.send(Wire::Failed(failed));
                }
            }
        })?;
    Ok(rx)
}

/// A response whose body is an event stream, or why there is none. An error status is
/// billing when nothing but a payment fixes it.
fn streaming(
    sent: Result<ureq::Response, ureq::Error>,
    url: String,
) -> Result<ureq::Response, Failed> {
    let error = match sent {
        Ok(response) if (300..400).contains(&response.status()) => Error::Status {
            code: response.status(),
            url,
            body: format!(
                "a redirect to {}, which nib does not follow (it could take the key \
                 elsewhere); use that URL as the base URL",
                response.header("location").unwrap_or("an unnamed place")
            ),
        },
        Ok(response) if is_document(response.content_type()) => {
            let content_type = response.content_type().to_string();
            let message = error_message(&read_capped(response, MAX_ERROR_BODY));
            Error::malformed(format!(
                "{url} answered with {content_type} instead of an event stream ({message}); \
                 check --base-url: it should end where the API's paths begin, such as /v1"
            ))
        }
        Ok(response) => return Ok(response),
        Err(ureq::Error::Status(code, response)) => {
            let after = retry_after(
                response.header("retry-after-ms"),
                response.header("retry-after"),
                SystemTime::now(),
            );
            let raw = read_capped(response, MAX_ERROR_BODY);
            let body = error_message(&raw);
            let error = match is_billing(&raw) || code == 402 {
                true => Error::Billing { code, url, body },
                false => Error::Status { code, url, body },
            };
            return Err((error, after));
        }
        Err(ureq::Error::Transport(t)) => Error::Connect {
            url,
            detail: transport_detail(&t),
            retry: matches!(
                t.kind(),
                ureq::ErrorKind::Dns | ureq::ErrorKind::ConnectionFailed | ureq::ErrorKind::Io
            ),
        },
    };
    Err((error, None))
}

/// A POST of JSON to `url` with `headers`.
pub fn post_json(agent: &ureq::Agent, url: &str, headers: &[(&str, String)]) -> ureq::Request {
    let mut request = agent.post(url).set("content-type", "application/json");
    for (name, value) in headers {
        request = request.set(name, value);
    }
    request
}

/// Forwards a successful response's body until it ends or nobody listens.
fn pump(response: ureq::Response, tx: &SyncSender<Wire>) {
    if tx.send(Wire::Open).is_err() {
        return;
    }
    let mut reader = response.into_reader();
    let mut buf = vec![0; CHUNK];
    loop {
        let wire = match reader.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => Wire::Chunk(buf[..n].to_vec()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Wire::Broken(e.to_string()),
        };
        let last = matches!(wire, Wire::Broken(_));
        if tx.send(wire).is_err() || last {
            return;
        }
    }
}

/// A content type that is a whole document, never a stream: servers that stream send
/// `text/event-stream` (or, rarely, no type at all, which ureq reports as `text/plain`).
fn is_document(content_type: &str) -> bool {
    matches!(content_type, "application/json" | "text/html")
}

/// Up to `cap` bytes of a response body; a read error just ends it early.
fn read_capped(response: ureq::Response, cap: u64) -> Vec<u8> {
    let mut raw = Vec::new();
    let _ = response.into_reader().take(cap).read_to_end(&mut raw);
    raw
}

/// The human part of an error body: `error.message` (or `error`, `message`) when it
/// is JSON, else the text on one line.
fn error_message(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let message = json["error"]["message"]
        .as_str()
        .or(json["error"].as_str())
        .or(json["message"].as_str());
    match message {
        Some(message) => message.to_string(),
        None if text.trim().is_empty() => "(empty body)".to_string(),
        None => text.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

/// An error body that means the account cannot pay: OpenAI's `insufficient_quota`
/// (sent with a 429, but no wait fixes it), or a credit/billing message.
fn is_billing(raw: &[u8]) -> bool {
    let text = String::from_utf8_lossy(raw).to_ascii_lowercase();
    [
        "insufficient_quota",
        "credit balance is too low",
        "payment required",
    ]
    .iter()
    .any(|k| text.contains(k))
}

/// A transport error without its URL (the caller shows that), lowercase.
/// The most specific reason ureq knows: the OS error ("connection refused") when there
/// is one, else its own message or kind.
fn transport_detail(t: &ureq::Transport) -> String {
    let mut source = std::error::Error::source(t);
    while let Some(inner) = source {
        if let Some(io) = inner.downcast_ref::<io::Error>() {
            // "connection refused", without Rust's "(os error 111)" suffix.
            let text = io.to_string();
            return text
                .split(" (os error")
                .next()
                .unwrap_or(&text)
                .to_lowercase();
        }
        source = inner.source();
    }
    match t.message() {
        Some(message) => format!("{}: {message}", t.kind().to_string().to_lowercase()),
        None => t.kind().to_string().to_lowercase(),
    }
}

/// An agent with `timeout` on the whole exchange, for the small questions a server
/// answers besides a reply (no pool: they are asked once).
pub fn one_off(timeout: Duration) -> ureq::AgentBuilder {
    ureq::AgentBuilder::new()
        .timeout_connect(timeout)
        .timeout(timeout)
}

/// Asks an OpenAI-compatible server which models it serves: `GET {base}/models` → the
/// `data[].id`s, with `timeout` on the whole exchange. Used to find a local server when
/// nothing is configured.
pub fn list_models(base_url: &str, timeout: Duration) -> Result<Vec<String>, Error> {
    let url = super::join(base_url, "models");
    let response = match one_off(timeout).build().get(&url).call() {
        Ok(response) => response,
        Err(ureq::Error::Status(code, response)) => {
            let body = error_message(&read_capped(response, MAX_ERROR_BODY));
            return Err(Error::Status { code, url, body });
        }
        Err(ureq::Error::Transport(t)) => {
            let detail = transport_detail(&t);
            return Err(Error::Connect {
                url,
                detail,
                retry: false,
            });
        }
    };
    let raw = read_capped(response, MAX_MODEL_LIST);
    let list: Value = serde_json::from_slice(&raw)
        .map_err(|e| Error::malformed(format!("the model list from {url} is not JSON: {e}")))?;
    let Some(models) = list["data"].as_array() else {
        let detail = format!("the answer from {url} has no `data` list of models");
        return Err(Error::malformed(detail));
    };
    Ok(models
        .iter()
        .filter_map(|m| m["id"].as_str().map(str::to_string))
        .collect())
}

/// What a llama.cpp server says about its context window: `GET {root}/props` (the
/// base without `/v1`), `default_generation_settings.n_ctx`. `None` when it does not say.
pub fn server_window(base_url: &str, timeout: Duration) -> Option<u64> {
    let url = format!("{}/props", super::server_root(base_url));
    let response = one_off(timeout).build().get(&url).call().ok()?;
    let props: Value = serde_json::from_slice(&read_capped(response, MAX_MODEL_LIST)).ok()?;
    props["default_generation_settings"]["n_ctx"]
        .as_u64()
        .filter(|n| *n > 0)
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
