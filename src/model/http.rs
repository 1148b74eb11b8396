//! The HTTP side of a model request: POST, retries with back-off, and a streaming body
//! that can be cancelled and gives up when the server goes quiet.
//!
//! A worker thread does the blocking ureq calls and passes the body on in chunks over a
//! bounded channel; the caller waits on that channel in short ticks so it can notice
//! `Client::cancel` and the idle limit. What the bytes mean is left to the protocol
//! parsers (`openai::read`, `anthropic::read`), which see the body as a `BufRead`.

use super::{Client, Event, Limits, ModelError, Reply, StreamError, random};
use serde_json::Value;
use std::fmt;
use std::io::{self, BufRead, Read};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How often a waiting caller looks at the cancel flag: prompt enough for a keypress.
const TICK: Duration = Duration::from_millis(100);
/// Chunks in flight between worker and caller; bounds memory if the caller is slow.
const CHANNEL_DEPTH: usize = 64;
/// Bytes per read of the body.
const CHUNK: usize = 16 << 10;
/// Enough of an error body to show its message; the rest is noise (often HTML).
const MAX_ERROR_BODY: u64 = 4 << 10;
/// A model list is a few KB; anything this big is not one.
const MAX_MODEL_LIST: u64 = 1 << 20;
/// The first back-off wait; each retry doubles it.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
/// The socket's own read timeout lags the idle limit by this much, so the caller's idle
/// check fires first and this only frees a worker stuck on a dead connection.
const IDLE_GRACE: Duration = Duration::from_secs(5);
/// Keys shorter than this are placeholders local servers ignore (e.g. `ollama`);
/// redacting them would mangle messages without protecting anything.
const MIN_SECRET_LEN: usize = 8;

/// Reads one streamed reply: `openai::read` or `anthropic::read`.
pub type ReadReply = fn(&mut dyn BufRead, &mut dyn FnMut(&str)) -> Result<Reply, StreamError>;

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

/// A server that refuses connections is most likely not running: try a few times (it
/// may be restarting), then say so, instead of backing off for half a minute.
const UNREACHABLE_ATTEMPTS: u32 = 3;

/// Sends `post`, retrying what is worth retrying, up to `limits.max_attempts` times.
pub fn send(
    client: &Client,
    post: &Post,
    on_event: &mut dyn FnMut(Event),
) -> Result<Reply, ModelError> {
    let key = client.endpoint.api_key.as_deref();
    let mut attempt = 1;
    loop {
        let (error, reason, after) = match try_once(client, post, on_event) {
            Ok(reply) => return Ok(reply),
            Err(Failure::Fatal(error)) => return Err(redact_error(error, key)),
            Err(Failure::Retry {
                error,
                reason,
                after,
            }) => (error, reason, after),
        };
        if let (Some(wait), ModelError::Status { code, .. }) = (after, &error)
            && wait > client.limits.max_backoff
        {
            let later = ModelError::Later {
                url: post.url.clone(),
                code: *code,
                wait: wait.as_secs(),
                max: client.limits.max_backoff.as_secs(),
            };
            return Err(redact_error(later, key));
        }
        let unreachable = matches!(error, ModelError::Connect { .. });
        if attempt >= client.limits.max_attempts || (unreachable && attempt >= UNREACHABLE_ATTEMPTS)
        {
            return Err(redact_error(error, key));
        }
        let wait = backoff(attempt, after, client.limits.max_backoff, random());
        let reason = redact(&reason, key);
        on_event(Event::Retry {
            attempt,
            wait,
            reason,
        });
        pause(client, wait)?;
        attempt += 1;
    }
}

/// How one attempt went wrong.
enum Failure {
    /// Worth another attempt; `after` is the server's own wait, if it gave one.
    Retry {
        error: ModelError,
        reason: String,
        after: Option<Duration>,
    },
    Fatal(ModelError),
}

fn retry(error: ModelError, reason: String) -> Failure {
    Failure::Retry {
        error,
        reason,
        after: None,
    }
}

fn try_once(
    client: &Client,
    post: &Post,
    on_event: &mut dyn FnMut(Event),
) -> Result<Reply, Failure> {
    let url = &post.url;
    let rx = spawn(client.agent.clone(), post).map_err(|e| {
        Failure::Fatal(ModelError::Connect {
            url: url.clone(),
            detail: format!("cannot start a thread: {e}"),
        })
    })?;
    let head = next_wire(&rx, client).map_err(|halt| Failure::Fatal(halt.error(client, url)))?;
    match head {
        Some(Wire::Open) => {}
        Some(Wire::Status {
            code,
            after,
            message,
            billing,
        }) => return Err(status_failure(code, after, message, billing, url)),
        Some(Wire::Unreachable { detail, transient }) => {
            let error = ModelError::Connect {
                url: url.clone(),
                detail: detail.clone(),
            };
            return Err(if transient {
                retry(error, format!("cannot connect: {detail}"))
            } else {
                Failure::Fatal(error)
            });
        }
        Some(Wire::Chunk(_) | Wire::Broken(_)) | None => {
            let detail = "the connection closed before an answer".to_string();
            return Err(retry(ModelError::Stream(detail.clone()), detail));
        }
    }
    let mut body = Body {
        rx,
        client,
        chunk: Vec::new(),
        pos: 0,
        ended: false,
    };
    (post.read)(&mut body, &mut |text| on_event(Event::Text(text)))
        .map_err(|e| stream_failure(e, client, url))
}

fn status_failure(
    code: u16,
    after: Option<Duration>,
    message: String,
    billing: bool,
    url: &str,
) -> Failure {
    if billing || code == 402 {
        return Failure::Fatal(ModelError::Billing {
            code,
            url: url.to_string(),
            body: message,
        });
    }
    let reason = format!("the server answered {code}: {message}");
    let error = ModelError::Status {
        code,
        url: url.to_string(),
        body: message,
    };
    match code {
        429 | 500 | 502 | 503 | 504 | 529 => Failure::Retry {
            error,
            reason,
            after,
        },
        _ => Failure::Fatal(error),
    }
}

fn stream_failure(e: StreamError, client: &Client, url: &str) -> Failure {
    let (detail, transient) = match e {
        StreamError::Io(e) => {
            if let Some(halt) = e.get_ref().and_then(|inner| inner.downcast_ref::<Halt>()) {
                return Failure::Fatal(halt.error(client, url));
            }
            let transient = e.kind() != io::ErrorKind::InvalidData;
            (format!("the connection failed mid-reply: {e}"), transient)
        }
        StreamError::Malformed(detail) => (detail, false),
        StreamError::Incomplete => ("the reply ended before its end marker".to_string(), true),
        StreamError::Server { message, retryable } => (
            format!("the server reported an error: {message}"),
            retryable,
        ),
    };
    let error = ModelError::Stream(detail.clone());
    if transient {
        retry(error, detail)
    } else {
        Failure::Fatal(error)
    }
}

/// The wait before attempt `attempt + 1`: exponential with ±25% jitter (from `noise`),
/// at least what the server asked for, at most `cap`.
fn backoff(attempt: u32, server: Option<Duration>, cap: Duration, noise: u64) -> Duration {
    let doubled = BACKOFF_FIRST.saturating_mul(1 << attempt.saturating_sub(1).min(16));
    let jitter = 0.75 + 0.5 * (noise % 1001) as f64 / 1000.0;
    doubled
        .mul_f64(jitter)
        .max(server.unwrap_or_default())
        .min(cap)
}

/// Sleeps `wait`, or less if the user cancels.
fn pause(client: &Client, wait: Duration) -> Result<(), ModelError> {
    let end = Instant::now() + wait;
    loop {
        if client.cancel.load(Ordering::Relaxed) {
            return Err(ModelError::Interrupted);
        }
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        thread::sleep(left.min(TICK));
    }
}

/// What the worker tells the caller: first the head, then the body in chunks. The
/// channel closing after `Open` is the end of the body.
enum Wire {
    Open,
    Status {
        code: u16,
        after: Option<Duration>,
        message: String,
        /// The body says the account is out of credit (`insufficient_quota`).
        billing: bool,
    },
    Unreachable {
        detail: String,
        transient: bool,
    },
    Chunk(Vec<u8>),
    Broken(String),
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
            let mut request = agent.post(&url).set("content-type", "application/json");
            for (name, value) in &headers {
                request = request.set(name, value);
            }
            let head = match request.send_string(&body) {
                Ok(response) if (300..400).contains(&response.status()) => Wire::Status {
                    code: response.status(),
                    after: None,
                    message: format!(
                        "a redirect to {}, which nib does not follow (it could take the key \
                         elsewhere); use that URL as the base URL",
                        response.header("location").unwrap_or("an unnamed place")
                    ),
                    billing: false,
                },
                Ok(response) => return pump(response, &tx),
                Err(ureq::Error::Status(code, response)) => {
                    let after = retry_after(
                        response.header("retry-after-ms"),
                        response.header("retry-after"),
                        SystemTime::now(),
                    );
                    let raw = read_capped(response, MAX_ERROR_BODY);
                    Wire::Status {
                        code,
                        after,
                        message: error_message(&raw),
                        billing: is_billing(&raw),
                    }
                }
                Err(ureq::Error::Transport(t)) => Wire::Unreachable {
                    transient: matches!(
                        t.kind(),
                        ureq::ErrorKind::Dns
                            | ureq::ErrorKind::ConnectionFailed
                            | ureq::ErrorKind::Io
                    ),
                    detail: transport_detail(&t),
                },
            };
            let _ = tx.send(head);
        })?;
    Ok(rx)
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

/// Why the caller stopped waiting for the worker.
#[derive(Debug)]
enum Halt {
    Cancelled,
    Idle,
}

impl fmt::Display for Halt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Halt::Cancelled => write!(f, "cancelled"),
            Halt::Idle => write!(f, "no data before the idle timeout"),
        }
    }
}

impl std::error::Error for Halt {}

impl Halt {
    fn error(&self, client: &Client, url: &str) -> ModelError {
        match self {
            Halt::Cancelled => ModelError::Interrupted,
            Halt::Idle => ModelError::Timeout {
                url: url.to_string(),
                secs: client.limits.idle_timeout.as_secs(),
            },
        }
    }
}

/// The worker's next message; `None` once it has finished.
fn next_wire(rx: &Receiver<Wire>, client: &Client) -> Result<Option<Wire>, Halt> {
    let start = Instant::now();
    loop {
        if client.cancel.load(Ordering::Relaxed) {
            return Err(Halt::Cancelled);
        }
        match rx.recv_timeout(TICK) {
            Ok(wire) => return Ok(Some(wire)),
            Err(RecvTimeoutError::Disconnected) => return Ok(None),
            Err(RecvTimeoutError::Timeout) if start.elapsed() >= client.limits.idle_timeout => {
                return Err(Halt::Idle);
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
}

/// A response body arriving over the worker's channel, as a `BufRead`. A cancel or an
/// idle timeout surfaces as an `io::Error` wrapping a `Halt`.
struct Body<'a> {
    rx: Receiver<Wire>,
    client: &'a Client,
    chunk: Vec<u8>,
    pos: usize,
    ended: bool,
}

impl Read for Body<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Body<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos == self.chunk.len() && !self.ended {
            match next_wire(&self.rx, self.client) {
                Err(halt) => return Err(io::Error::other(halt)),
                Ok(Some(Wire::Chunk(chunk))) => {
                    self.chunk = chunk;
                    self.pos = 0;
                }
                Ok(Some(Wire::Broken(e))) => {
                    return Err(io::Error::new(io::ErrorKind::ConnectionReset, e));
                }
                Ok(_) => self.ended = true,
            }
        }
        Ok(&self.chunk[self.pos..])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.chunk.len());
    }
}

/// How long the server asked us to wait: `retry-after-ms`, else `retry-after` in
/// seconds or as an HTTP date.
fn retry_after(ms: Option<&str>, value: Option<&str>, now: SystemTime) -> Option<Duration> {
    let ms = ms.and_then(|v| v.trim().parse::<f64>().ok());
    if let Some(wait) = ms.and_then(|ms| Duration::try_from_secs_f64(ms / 1000.0).ok()) {
        return Some(wait);
    }
    let value = value?.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).ok();
    }
    let date = http_date(value)?;
    Some(date.duration_since(now).unwrap_or_default())
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the only form servers still send.
fn http_date(text: &str) -> Option<SystemTime> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let month = MONTHS.iter().position(|m| m == month)? as i64 + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let hms: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, s] = hms.as_slice() else {
        return None;
    };
    // Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    let secs = u64::try_from(days * 86_400 + h * 3600 + m * 60 + s).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
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
            return io_reason(io);
        }
        source = inner.source();
    }
    match t.message() {
        Some(message) => format!("{}: {message}", t.kind().to_string().to_lowercase()),
        None => t.kind().to_string().to_lowercase(),
    }
}

/// "connection refused", without Rust's "(os error 111)" suffix.
fn io_reason(e: &io::Error) -> String {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    text.to_lowercase()
}

fn redact(text: &str, key: Option<&str>) -> String {
    match key {
        Some(key) if key.len() >= MIN_SECRET_LEN => text.replace(key, "[api key]"),
        _ => text.to_string(),
    }
}

/// Makes sure no error carries the API key, even when a server echoes it back.
fn redact_error(error: ModelError, key: Option<&str>) -> ModelError {
    match error {
        ModelError::Connect { url, detail } => ModelError::Connect {
            url: redact(&url, key),
            detail: redact(&detail, key),
        },
        ModelError::Status { code, url, body } => ModelError::Status {
            code,
            url: redact(&url, key),
            body: redact(&body, key),
        },
        ModelError::Billing { code, url, body } => ModelError::Billing {
            code,
            url: redact(&url, key),
            body: redact(&body, key),
        },
        ModelError::Stream(detail) => ModelError::Stream(redact(&detail, key)),
        ModelError::Timeout { url, secs } => ModelError::Timeout {
            url: redact(&url, key),
            secs,
        },
        ModelError::Later {
            url,
            code,
            wait,
            max,
        } => ModelError::Later {
            url: redact(&url, key),
            code,
            wait,
            max,
        },
        ModelError::Interrupted => ModelError::Interrupted,
    }
}

/// `GET {base}/models` → the `data[].id`s, with `timeout` on the whole exchange.
pub fn list_models(base_url: &str, timeout: Duration) -> Result<Vec<String>, ModelError> {
    let url = format!("{}/models", base_url.trim_end_matches('/'));
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(timeout)
        .timeout(timeout)
        .build();
    let response = match agent.get(&url).call() {
        Ok(response) => response,
        Err(ureq::Error::Status(code, response)) => {
            let body = error_message(&read_capped(response, MAX_ERROR_BODY));
            return Err(ModelError::Status { code, url, body });
        }
        Err(ureq::Error::Transport(t)) => {
            let detail = transport_detail(&t);
            return Err(ModelError::Connect { url, detail });
        }
    };
    let raw = read_capped(response, MAX_MODEL_LIST);
    let list: Value = serde_json::from_slice(&raw)
        .map_err(|e| ModelError::Stream(format!("the model list from {url} is not JSON: {e}")))?;
    let Some(models) = list["data"].as_array() else {
        let detail = format!("the answer from {url} has no `data` list of models");
        return Err(ModelError::Stream(detail));
    };
    Ok(models
        .iter()
        .filter_map(|m| m["id"].as_str().map(str::to_string))
        .collect())
}

/// What a llama.cpp server says about its context window: `GET {root}/props` (the
/// base without `/v1`), `default_generation_settings.n_ctx`. `None` when it does not say.
pub fn server_window(base_url: &str, timeout: Duration) -> Option<u64> {
    let root = base_url.trim_end_matches('/').trim_end_matches("/v1");
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(timeout)
        .timeout(timeout)
        .build();
    let response = agent.get(&format!("{root}/props")).call().ok()?;
    let props: Value = serde_json::from_slice(&read_capped(response, MAX_MODEL_LIST)).ok()?;
    props["default_generation_settings"]["n_ctx"]
        .as_u64()
        .filter(|n| *n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Endpoint, Message, Provider, Request, StopReason};
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::sync::Mutex;
    use std::sync::atomic::AtomicBool;

    /// One scripted answer: raw bytes to write, with pauses between them.
    enum Step {
        Write(String),
        Sleep(Duration),
    }

    /// A loopback server answering connection `n` with `script[n]` (a 599 once the
    /// script runs out); returns its base URL and the request heads it saw.
    fn serve(script: Vec<Vec<Step>>) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        thread::spawn(move || {
            let mut script = script.into_iter();
            for stream in listener.incoming() {
                let mut stream = stream.unwrap();
                log.lock().unwrap().push(read_request(&mut stream));
                let steps = script.next().unwrap_or_else(|| vec![status(599, "", "")]);
                for step in steps {
                    match step {
                        Step::Write(text) => {
                            let _ = stream.write_all(text.as_bytes());
                            let _ = stream.flush();
                        }
                        Step::Sleep(d) => thread::sleep(d),
                    }
                }
            }
        });
        (base, seen)
    }

    /// The request line and headers (lowercased), after reading the whole body.
    fn read_request(stream: &mut TcpStream) -> String {
        let mut head = Vec::new();
        let mut byte = [0];
        while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap() == 1 {
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).to_lowercase();
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |n| n.trim().parse().unwrap());
        let mut body = vec![0; length];
        stream.read_exact(&mut body).unwrap();
        head
    }

    fn status(code: u16, headers: &str, body: &str) -> Step {
        Step::Write(format!(
            "HTTP/1.1 {code} X\r\ncontent-length: {}\r\nconnection: close\r\n{headers}\r\n{body}",
            body.len()
        ))
    }

    fn sse_head() -> Step {
        Step::Write(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
                .to_string(),
        )
    }

    fn data(text: &str) -> Step {
        Step::Write(text.to_string())
    }

    const OPENAI_OK: &str = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\
        \"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";

    fn limits() -> Limits {
        Limits {
            connect_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(3),
            max_attempts: 3,
            max_backoff: Duration::from_millis(20),
        }
    }

    fn client(provider: Provider, base: &str, key: Option<&str>, limits: Limits) -> Client {
        let endpoint = Endpoint {
            provider,
            base_url: base.to_string(),
            api_key: key.map(str::to_string),
            model: "m".into(),
        };
        Client::new(endpoint, limits, Arc::new(AtomicBool::new(false)))
    }

    /// What `run` saw: the result, the streamed text, the retries (attempt, wait, reason).
    type Outcome = (
        Result<Reply, ModelError>,
        String,
        Vec<(u32, Duration, String)>,
    );

    /// Sends a one-message request.
    fn run(client: &Client) -> Outcome {
        let messages = [Message::user_text("hi")];
        let req = Request {
            model: "m",
            system: "",
            messages: &messages,
            tools: &[],
            max_tokens: 100,
        };
        let mut text = String::new();
        let mut retries = Vec::new();
        let result = client.send(&req, &mut |event| match event {
            Event::Text(t) => text.push_str(t),
            Event::Retry {
                attempt,
                wait,
                reason,
            } => retries.push((attempt, wait, reason)),
        });
        (result, text, retries)
    }

    #[test]
    fn streams_a_reply_with_the_bearer_key() {
        let (base, seen) = serve(vec![vec![sse_head(), data(OPENAI_OK)]]);
        let client = client(
            Provider::OpenAi,
            &format!("{base}/v1"),
            Some("sk-1"),
            limits(),
        );
        let (reply, text, retries) = run(&client);
        let reply = reply.unwrap();
        assert_eq!((reply.text.as_str(), text.as_str()), ("hi", "hi"));
        assert!(retries.is_empty());
        let head = &seen.lock().unwrap()[0];
        assert!(head.starts_with("post /v1/chat/completions "), "{head}");
        assert!(head.contains("authorization: bearer sk-1\r\n"), "{head}");
        assert!(
            head.contains("content-type: application/json\r\n"),
            "{head}"
        );
    }

    #[test]
    fn no_key_no_authorization_header() {
        let (base, seen) = serve(vec![vec![sse_head(), data(OPENAI_OK)]]);
        let client = client(Provider::OpenAi, &base, None, limits());
        run(&client).0.unwrap();
        assert!(!seen.lock().unwrap()[0].contains("authorization"));
    }

    #[test]
    fn rate_limit_waits_then_succeeds() {
        let (base, seen) = serve(vec![
            vec![status(
                429,
                "retry-after: 1\r\n",
                "{\"error\":{\"message\":\"slow down\"}}",
            )],
            vec![sse_head(), data(OPENAI_OK)],
        ]);
        let limits = Limits {
            max_backoff: Duration::from_secs(1),
            ..limits()
        };
        let client = client(Provider::OpenAi, &base, None, limits);
        let (reply, _, retries) = run(&client);
        assert_eq!(reply.unwrap().text, "hi");
        assert_eq!(seen.lock().unwrap().len(), 2);
        // The server's 1 s is honoured: it is within max_backoff.
        assert_eq!(retries.len(), 1);
        let (attempt, wait, reason) = &retries[0];
        assert_eq!((*attempt, *wait), (1, Duration::from_secs(1)));
        assert!(
            reason.contains("429") && reason.contains("slow down"),
            "{reason}"
        );
    }

    #[test]
    fn overloaded_anthropic_is_retried() {
        let anthropic_ok = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{}}\n\n\
            event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"}}\n\n\
            event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
        let (base, seen) = serve(vec![
            vec![status(
                529,
                "",
                "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}",
            )],
            vec![sse_head(), data(anthropic_ok)],
        ]);
        let client = client(Provider::Anthropic, &base, Some("ak-123456789"), limits());
        let (reply, _, retries) = run(&client);
        assert_eq!(reply.unwrap().stop, StopReason::EndTurn);
        assert_eq!(retries.len(), 1);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert!(seen[1].starts_with("post /v1/messages "), "{}", seen[1]);
        assert!(seen[1].contains("x-api-key: ak-123456789\r\n"));
        assert!(seen[1].contains("anthropic-version: 2023-06-01\r\n"));
    }

    #[test]
    fn client_errors_are_not_retried_and_hide_the_key() {
        let key = "sk-secret-0123456789";
        let body = format!("{{\"error\":{{\"message\":\"Incorrect API key provided: {key}\"}}}}");
        let (base, seen) = serve(vec![vec![status(401, "", &body)]]);
        let client = client(Provider::OpenAi, &base, Some(key), limits());
        let (reply, _, retries) = run(&client);
        let error = reply.unwrap_err();
        assert!(retries.is_empty());
        assert_eq!(seen.lock().unwrap().len(), 1);
        assert!(matches!(error, ModelError::Status { code: 401, .. }));
        let shown = error.to_string();
        assert!(
            shown.contains("Incorrect API key provided: [api key]"),
            "{shown}"
        );
        assert!(!shown.contains(key));
    }

    #[test]
    fn bad_request_shows_the_text_body() {
        let (base, seen) = serve(vec![vec![status(400, "", "<html>\n bad\n model </html>")]]);
        let client = client(Provider::OpenAi, &base, None, limits());
        let error = run(&client).0.unwrap_err();
        assert_eq!(seen.lock().unwrap().len(), 1);
        match error {
            ModelError::Status { code, body, .. } => {
                assert_eq!((code, body.as_str()), (400, "<html> bad model </html>"))
            }
            other => panic!("expected a status error, got {other:?}"),
        }
    }

    #[test]
    fn incomplete_stream_is_retried_then_gives_up() {
        let cut = || {
            vec![
                sse_head(),
                data("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"par\"}}]}\n\n"),
            ]
        };
        let (base, seen) = serve(vec![cut(), cut(), cut()]);
        let client = client(Provider::OpenAi, &base, None, limits());
        let (reply, text, retries) = run(&client);
        assert!(matches!(reply, Err(ModelError::Stream(_))), "{reply:?}");
        assert_eq!(text, "parparpar");
        assert_eq!(retries.iter().map(|r| r.0).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(seen.lock().unwrap().len(), 3);
    }

    #[test]
    fn refused_connection_is_retried_as_connect_error() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // Even with many attempts allowed, a server that is not there is given up on
        // after UNREACHABLE_ATTEMPTS.
        let limits = Limits {
            max_attempts: 10,
            ..limits()
        };
        let client = client(
            Provider::OpenAi,
            &format!("http://127.0.0.1:{port}"),
            None,
            limits,
        );
        let (reply, _, retries) = run(&client);
        assert!(
            matches!(reply, Err(ModelError::Connect { .. })),
            "{reply:?}"
        );
        assert_eq!(retries.len() as u32, UNREACHABLE_ATTEMPTS - 1);
    }

    #[test]
    fn cancel_during_a_slow_stream_is_prompt() {
        let first = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n";
        let (base, _) = serve(vec![vec![
            sse_head(),
            data(first),
            Step::Sleep(Duration::from_secs(5)),
        ]]);
        let client = client(Provider::OpenAi, &base, None, limits());
        let cancel = Arc::clone(&client.cancel);
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(300));
            cancel.store(true, Ordering::Relaxed);
        });
        let start = Instant::now();
        let (reply, text, _) = run(&client);
        assert!(matches!(reply, Err(ModelError::Interrupted)), "{reply:?}");
        assert_eq!(text, "a");
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn a_retry_after_beyond_the_maximum_ends_the_request() {
        let (base, _) = serve(vec![vec![status(503, "retry-after: 100\r\n", "")]]);
        let limits = Limits {
            max_backoff: Duration::from_secs(60),
            ..limits()
        };
        let client = client(Provider::OpenAi, &base, None, limits);
        let start = Instant::now();
        let (reply, _, retries) = run(&client);
        let err = reply.unwrap_err();
        assert!(
            matches!(
                err,
                ModelError::Later {
                    wait: 100,
                    max: 60,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("asks to wait 100 s"), "{err}");
        assert!(retries.is_empty() && start.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn cancel_during_a_back_off_is_prompt() {
        let (base, _) = serve(vec![vec![status(503, "retry-after: 30\r\n", "")]]);
        let limits = Limits {
            max_backoff: Duration::from_secs(30),
            ..limits()
        };
        let client = client(Provider::OpenAi, &base, None, limits);
        let cancel = Arc::clone(&client.cancel);
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(300));
            cancel.store(true, Ordering::Relaxed);
        });
        let start = Instant::now();
        let (reply, _, retries) = run(&client);
        assert!(matches!(reply, Err(ModelError::Interrupted)), "{reply:?}");
        assert_eq!(retries[0].1, Duration::from_secs(30));
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn idle_stream_times_out() {
        let (base, _) = serve(vec![vec![sse_head(), Step::Sleep(Duration::from_secs(5))]]);
        let limits = Limits {
            idle_timeout: Duration::from_millis(300),
            ..limits()
        };
        let client = client(Provider::OpenAi, &base, None, limits);
        let start = Instant::now();
        let (reply, _, retries) = run(&client);
        assert!(
            matches!(reply, Err(ModelError::Timeout { .. })),
            "{reply:?}"
        );
        assert!(retries.is_empty());
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(2));
    }

    #[test]
    fn back_off_grows_honours_the_server_and_is_capped() {
        let cap = Duration::from_secs(60);
        let secs = |attempt, server, noise| backoff(attempt, server, cap, noise).as_secs_f64();
        assert_eq!(secs(1, None, 500), 1.0);
        assert_eq!(secs(3, None, 500), 4.0);
        assert_eq!(secs(1, None, 0), 0.75);
        assert_eq!(secs(1, None, 1000), 1.25);
        assert_eq!(secs(1, Some(Duration::from_secs(3)), 500), 3.0);
        assert_eq!(secs(1, Some(Duration::from_millis(10)), 500), 1.0);
        assert_eq!(secs(10, None, 500), 60.0);
        assert_eq!(secs(1, Some(Duration::from_secs(600)), 500), 60.0);
        assert_eq!(secs(u32::MAX, None, 500), 60.0);
    }

    #[test]
    fn retry_after_forms() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        let check = |ms: Option<&str>, value: Option<&str>, expected: Option<f64>| {
            let got = retry_after(ms, value, now).map(|d| d.as_secs_f64());
            assert_eq!(got, expected, "{ms:?} {value:?}");
        };
        check(None, Some("7"), Some(7.0));
        check(None, Some(" 1.5 "), Some(1.5));
        check(Some("250"), Some("7"), Some(0.25));
        check(None, Some("Sun, 06 Nov 1994 08:50:07 GMT"), Some(30.0));
        check(None, Some("Sun, 06 Nov 1994 08:49:00 GMT"), Some(0.0));
        check(
            None,
            Some("Tue, 01 Mar 2000 00:00:00 GMT"),
            Some(951_868_800.0 - 784_111_777.0),
        );
        check(None, Some("-3"), None);
        check(None, Some("soon"), None);
        check(None, None, None);
    }

    #[test]
    fn error_messages() {
        let check = |raw: &str, expected: &str| assert_eq!(error_message(raw.as_bytes()), expected);
        check(
            "{\"error\":{\"message\":\"no such model\",\"type\":\"x\"}}",
            "no such model",
        );
        check("{\"error\":\"model not found\"}", "model not found");
        check("{\"message\":\"busy\"}", "busy");
        check("  plain\ntext  ", "plain text");
        check("", "(empty body)");
    }

    #[test]
    fn lists_models() {
        let body = "{\"object\":\"list\",\"data\":[{\"id\":\"qwen3\",\"object\":\"model\"},{\"id\":\"llama\"}]}";
        let (base, seen) = serve(vec![vec![status(200, "", body)]]);
        let models = list_models(&format!("{base}/v1/"), Duration::from_secs(2)).unwrap();
        assert_eq!(models, ["qwen3", "llama"]);
        assert!(seen.lock().unwrap()[0].starts_with("get /v1/models "));
    }

    #[test]
    fn list_models_errors() {
        let (base, _) = serve(vec![
            vec![status(404, "", "nope")],
            vec![status(200, "", "[]")],
        ]);
        let error = list_models(&base, Duration::from_secs(2)).unwrap_err();
        assert!(
            matches!(error, ModelError::Status { code: 404, .. }),
            "{error:?}"
        );
        let error = list_models(&base, Duration::from_secs(2)).unwrap_err();
        assert!(matches!(error, ModelError::Stream(_)), "{error:?}");
    }

    #[test]
    fn server_window_reads_llama_cpp_props() {
        let props = r#"{"default_generation_settings":{"n_ctx":4096},"total_slots":1}"#;
        let (base, seen) = serve(vec![
            vec![status(200, "", props)],
            vec![status(404, "", "{}")],
            vec![status(200, "", "not json")],
        ]);
        let timeout = Duration::from_secs(2);
        assert_eq!(server_window(&format!("{base}/v1"), timeout), Some(4096));
        assert!(seen.lock().unwrap()[0].starts_with("get /props "));
        assert_eq!(server_window(&format!("{base}/v1/"), timeout), None);
        assert_eq!(server_window(&base, timeout), None);
    }
}
