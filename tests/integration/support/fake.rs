//! A scripted fake model server on loopback that speaks the real wire formats.
//!
//! `FakeServer::start(script)` serves OpenAI Chat Completions (`/v1/chat/completions`,
//! also under an Azure deployment path), Anthropic Messages (`/v1/messages`) and OpenAI
//! Responses (`/v1/responses`) as streamed SSE, plus `GET /v1/models`. `emulating` adds a
//! provider's quirks (`providers.rs`): what its replies carry, and the requests it
//! rejects, with its own error. All chat routes take the next `Reply` from one shared queue (an empty queue answers a
//! plain "DONE"), render it in the route's protocol, and record every request for the
//! test to inspect. Quirks of local servers and failures (status codes, cut streams,
//! error events, hangs) are scripted the same way. Parsing what nib sends back is left
//! to the `Recorded` helpers; deciding what is correct is left to the tests.

use super::providers::{self, Emulation};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The model id `/v1/models` lists and replies carry when the request named none.
pub const MODEL: &str = "fake-model";
/// What an empty queue answers, so a test that under-scripts still ends cleanly.
pub const DEFAULT_TEXT: &str = "DONE";
/// How often idle connection threads wake to see whether the server is shutting down.
const POLL: Duration = Duration::from_millis(50);
/// Pieces a text or an arguments string is split into, so clients must reassemble.
const PIECES: usize = 3;
/// Largest request head the fake accepts; real clients send well under 8 KiB.
const MAX_HEAD: usize = 64 * 1024;
/// The text a cut or erroring stream starts before it breaks off.
const PARTIAL_TEXT: &str = "This answer is cut off before it ends, so it must not count";

/// Which wire protocol a route speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    OpenAi,
    Anthropic,
    Responses,
}

impl Protocol {
    pub const BOTH: [Protocol; 2] = [Protocol::OpenAi, Protocol::Anthropic];
    pub const ALL: [Protocol; 3] = [Protocol::OpenAi, Protocol::Anthropic, Protocol::Responses];

    /// The value of nib's `--provider` flag.
    pub fn flag(self) -> &'static str {
        match self {
            Protocol::OpenAi => "openai",
            Protocol::Anthropic => "anthropic",
            Protocol::Responses => "openai-responses",
        }
    }

    /// The request path of the chat route.
    pub fn path(self) -> &'static str {
        match self {
            Protocol::OpenAi => "/v1/chat/completions",
            Protocol::Anthropic => "/v1/messages",
            Protocol::Responses => "/v1/responses",
        }
    }

    /// The id the fake gives the `n`th tool call it renders (counting from 1, over the
    /// whole server), unless the script set one.
    pub fn call_id(self, n: usize) -> String {
        match self {
            Protocol::OpenAi => format!("call_fake_{n}"),
            Protocol::Anthropic => format!("toolu_fake_{n}"),
            Protocol::Responses => format!("call_resp_{n}"),
        }
    }

    fn of_path(path: &str) -> Option<Protocol> {
        match path.split('?').next().unwrap_or("") {
            "/v1/chat/completions" => Some(Protocol::OpenAi),
            p if p.starts_with("/openai/deployments/") && p.ends_with("/chat/completions") => {
                Some(Protocol::OpenAi)
            }
            "/v1/messages" => Some(Protocol::Anthropic),
            "/v1/responses" => Some(Protocol::Responses),
            _ => None,
        }
    }
}

/// How the arguments of a scripted call are sent.
#[derive(Clone, Debug)]
enum Args {
    /// Valid JSON, serialised by the fake.
    Json(Value),
    /// Sent verbatim as the arguments string (e.g. invalid JSON).
    Raw(String),
}

/// One scripted tool call.
#[derive(Clone, Debug)]
pub struct Call {
    name: String,
    args: Args,
    id: Option<String>,
}

/// A tool call with valid JSON arguments.
pub fn call(name: &str, args: Value) -> Call {
    Call {
        name: name.to_string(),
        args: Args::Json(args),
        id: None,
    }
}

impl Call {
    /// A tool call whose arguments string is sent exactly as given (may be invalid JSON).
    pub fn raw(name: &str, args: &str) -> Call {
        Call {
            name: name.to_string(),
            args: Args::Raw(args.to_string()),
            id: None,
        }
    }

    /// Sets the call's id instead of the server-wide `call_fake_N` / `toolu_fake_N`.
    pub fn id(mut self, id: &str) -> Call {
        self.id = Some(id.to_string());
        self
    }

    fn args_text(&self) -> String {
        match &self.args {
            Args::Json(v) => v.to_string(),
            Args::Raw(s) => s.clone(),
        }
    }

    /// The arguments as a JSON value (an unparseable raw string stays a string).
    fn args_value(&self) -> Value {
        match &self.args {
            Args::Json(v) => v.clone(),
            Args::Raw(s) => serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone())),
        }
    }
}

/// A way a real server deviates from the reference protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quirk {
    /// Arguments as a JSON object, not a string (llama.cpp, Ollama); Anthropic: the
    /// whole `input` in `content_block_start`, no `input_json_delta`.
    ArgsAsObject,
    /// No tool-call id at all.
    MissingId,
    /// Each call whole in one chunk / one delta.
    OneChunk,
    /// Unknown fields on every event (`timings`, `system_fingerprint`, ...).
    ExtraFields,
}

/// How a streamed turn ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    Complete,
    /// `finish_reason: length` / `stop_reason: max_tokens`, the last call cut short.
    Length,
    /// The model declines: `delta.refusal` / `stop_reason: refusal` / `response.refusal.delta`.
    Refusal,
    /// Anthropic `model_context_window_exceeded` (OpenAI and Responses: as `Length`).
    WindowFull,
    /// Everything up to the finish reason, then the connection closes: no `[DONE]` /
    /// `message_stop`.
    NoEndMarker,
    /// About half the events, then the connection closes with no end marker.
    Cut,
    /// About half the events and half of the next (inside its `data:` line), then the
    /// connection closes.
    CutMidEvent,
    /// About half the events, then an error event, then the HTTP body ends.
    ErrorEvent,
}

/// A model turn: text, then tool calls.
#[derive(Clone, Debug)]
struct Turn {
    text: String,
    calls: Vec<Call>,
    quirks: Vec<Quirk>,
    ending: Ending,
}

#[derive(Clone, Debug)]
enum Body {
    Turn(Turn),
    Status {
        code: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Written to the socket verbatim, then the connection closes.
    Raw(Vec<u8>),
    /// Headers of a 200 stream, then nothing until the client or the server gives up.
    Hang,
}

/// One scripted answer, rendered in the protocol of the route that takes it.
#[derive(Clone, Debug)]
pub struct Reply {
    body: Body,
    /// Pause before each event.
    pace: Duration,
}

impl Reply {
    fn turn(text: &str, calls: Vec<Call>) -> Reply {
        Reply {
            body: Body::Turn(Turn {
                text: text.to_string(),
                calls,
                quirks: Vec::new(),
                ending: Ending::Complete,
            }),
            pace: Duration::ZERO,
        }
    }

    /// A plain text answer (`stop` / `end_turn`).
    pub fn text(text: &str) -> Reply {
        Reply::turn(text, Vec::new())
    }

    /// One tool call with valid JSON arguments.
    pub fn tool_call(name: &str, args: Value) -> Reply {
        Reply::turn("", vec![call(name, args)])
    }

    /// Several tool calls in one reply (parallel calls).
    pub fn calls(calls: Vec<Call>) -> Reply {
        Reply::turn("", calls)
    }

    /// One tool call whose arguments string is sent verbatim, e.g. invalid JSON.
    pub fn invalid_args(name: &str, raw_args: &str) -> Reply {
        Reply::turn("", vec![Call::raw(name, raw_args)])
    }

    /// An error status with extra headers and a body (JSON or not).
    pub fn status(code: u16, headers: &[(&str, &str)], body: &str) -> Reply {
        let headers = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Reply {
            body: Body::Status {
                code,
                headers,
                body: body.to_string(),
            },
            pace: Duration::ZERO,
        }
    }

    /// A text stream that stops mid-way: the connection closes with no end marker.
    pub fn cut() -> Reply {
        Reply::text(PARTIAL_TEXT).cut_mid_stream()
    }

    /// A text stream with an error event mid-way (Anthropic `overloaded_error`,
    /// OpenAI `data: {"error":…}`).
    pub fn error_event() -> Reply {
        Reply::text(PARTIAL_TEXT).error_mid_stream()
    }

    /// Sends the headers of a 200 stream, then nothing.
    pub fn hang() -> Reply {
        Reply {
            body: Body::Hang,
            pace: Duration::ZERO,
        }
    }

    /// Bytes written to the socket as they are (a whole HTTP response, or garbage);
    /// the connection closes after them.
    pub fn raw(bytes: impl Into<Vec<u8>>) -> Reply {
        Reply {
            body: Body::Raw(bytes.into()),
            pace: Duration::ZERO,
        }
    }

    /// Text before the tool calls of this turn.
    pub fn with_text(mut self, text: &str) -> Reply {
        if let Body::Turn(t) = &mut self.body {
            t.text = text.to_string();
        }
        self
    }

    /// Waits `ms` before each event of the stream.
    pub fn slow(mut self, ms: u64) -> Reply {
        self.pace = Duration::from_millis(ms);
        self
    }

    pub fn quirk(mut self, quirk: Quirk) -> Reply {
        if let Body::Turn(t) = &mut self.body {
            t.quirks.push(quirk);
        }
        self
    }

    pub fn args_as_object(self) -> Reply {
        self.quirk(Quirk::ArgsAsObject)
    }

    pub fn without_ids(self) -> Reply {
        self.quirk(Quirk::MissingId)
    }

    pub fn one_chunk(self) -> Reply {
        self.quirk(Quirk::OneChunk)
    }

    pub fn extra_fields(self) -> Reply {
        self.quirk(Quirk::ExtraFields)
    }

    /// Ends with `length` / `max_tokens`, the last call's arguments cut in half.
    pub fn cut_by_length(self) -> Reply {
        self.ending(Ending::Length)
    }

    /// The text is a refusal, ending with the protocol's refusal marker.
    pub fn refusal(text: &str) -> Reply {
        Reply::text(text).ending(Ending::Refusal)
    }

    /// Ends with Anthropic's `model_context_window_exceeded`.
    pub fn window_full(self) -> Reply {
        self.ending(Ending::WindowFull)
    }

    /// Ends after the finish reason without the end marker.
    pub fn without_end_marker(self) -> Reply {
        self.ending(Ending::NoEndMarker)
    }

    /// Sends about half the stream, then closes the connection.
    pub fn cut_mid_stream(self) -> Reply {
        self.ending(Ending::Cut)
    }

    /// Sends about half the stream and half an event, then closes the connection.
    pub fn cut_mid_event(self) -> Reply {
        self.ending(Ending::CutMidEvent)
    }

    /// Sends about half the stream, then an error event.
    pub fn error_mid_stream(self) -> Reply {
        self.ending(Ending::ErrorEvent)
    }

    fn ending(mut self, ending: Ending) -> Reply {
        if let Body::Turn(t) = &mut self.body {
            t.ending = ending;
        }
        self
    }
}

/// One request as the fake received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// With the query string, as sent.
    pub path: String,
    /// Names lowercased, in the order sent.
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON; `Null` when empty or not JSON.
    pub body: Value,
    pub raw_body: Vec<u8>,
    pub body_len: usize,
    /// When the request had been read in full.
    pub at: Instant,
}

/// A tool result as nib sent it back to the model.
#[derive(Clone, Debug, PartialEq)]
pub struct SeenResult {
    pub id: String,
    pub content: String,
    /// Always false over OpenAI, which has no such flag.
    pub is_error: bool,
}

/// A tool call as nib replayed it in the conversation it sent.
#[derive(Clone, Debug, PartialEq)]
pub struct SeenCall {
    pub id: String,
    pub name: String,
    /// Parsed arguments (an unparseable string stays a string).
    pub input: Value,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn protocol(&self) -> Option<Protocol> {
        Protocol::of_path(&self.path)
    }

    /// Input tokens the fake reports for this request: a quarter of its size, at least 1.
    pub fn input_tokens(&self) -> u64 {
        tokens(self.body_len)
    }

    /// The conversation: `messages`, or the Responses API's `input` items.
    pub fn messages(&self) -> &[Value] {
        let field = match self.protocol() {
            Some(Protocol::Responses) => "input",
            _ => "messages",
        };
        self.body[field].as_array().map_or(&[], |m| m)
    }

    /// Names of the tools offered in this request.
    pub fn tool_names(&self) -> Vec<String> {
        let tools = self.body["tools"].as_array().map_or(&[][..], |t| t);
        let name = |t: &Value| match self.protocol() {
            Some(Protocol::OpenAi) => t["function"]["name"].as_str().map(String::from),
            _ => t["name"].as_str().map(String::from),
        };
        tools.iter().filter_map(name).collect()
    }

    /// Every tool result in the conversation, oldest first.
    pub fn tool_results(&self) -> Vec<SeenResult> {
        let mut out = Vec::new();
        for m in self.messages() {
            match self.protocol() {
                Some(Protocol::OpenAi) if m["role"] == "tool" => out.push(SeenResult {
                    id: str_of(&m["tool_call_id"]),
                    content: text_of(&m["content"]),
                    is_error: false,
                }),
                Some(Protocol::Anthropic) if m["role"] == "user" => {
                    let blocks = m["content"].as_array().map_or(&[][..], |b| b);
                    let results = blocks.iter().filter(|b| b["type"] == "tool_result");
                    out.extend(results.map(|b| SeenResult {
                        id: str_of(&b["tool_use_id"]),
                        content: text_of(&b["content"]),
                        is_error: b["is_error"].as_bool().unwrap_or(false),
                    }));
                }
                Some(Protocol::Responses) if m["type"] == "function_call_output" => {
                    out.push(SeenResult {
                        id: str_of(&m["call_id"]),
                        content: text_of(&m["output"]),
                        is_error: false,
                    })
                }
                _ => {}
            }
        }
        out
    }

    /// Every tool call of the assistant turns in the conversation, oldest first.
    pub fn assistant_calls(&self) -> Vec<SeenCall> {
        if self.protocol() == Some(Protocol::Responses) {
            let calls = self
                .messages()
                .iter()
                .filter(|m| m["type"] == "function_call");
            return calls
                .map(|c| SeenCall {
                    id: str_of(&c["call_id"]),
                    name: str_of(&c["name"]),
                    input: serde_json::from_str(c["arguments"].as_str().unwrap_or(""))
                        .unwrap_or(c["arguments"].clone()),
                })
                .collect();
        }
        let assistant = self.messages().iter().filter(|m| m["role"] == "assistant");
        let mut out = Vec::new();
        for m in assistant {
            match self.protocol() {
                Some(Protocol::OpenAi) => {
                    let calls = m["tool_calls"].as_array().map_or(&[][..], |c| c);
                    out.extend(calls.iter().map(|c| {
                        let args = &c["function"]["arguments"];
                        let input = match args.as_str() {
                            Some(s) => serde_json::from_str(s).unwrap_or(args.clone()),
                            None => args.clone(),
                        };
                        SeenCall {
                            id: str_of(&c["id"]),
                            name: str_of(&c["function"]["name"]),
                            input,
                        }
                    }));
                }
                _ => {
                    let blocks = m["content"].as_array().map_or(&[][..], |b| b);
                    let uses = blocks.iter().filter(|b| b["type"] == "tool_use");
                    out.extend(uses.map(|b| SeenCall {
                        id: str_of(&b["id"]),
                        name: str_of(&b["name"]),
                        input: b["input"].clone(),
                    }));
                }
            }
        }
        out
    }

    /// The text of the last user message (string content or its text parts joined).
    pub fn last_user_text(&self) -> String {
        let last = self.messages().iter().rev().find(|m| m["role"] == "user");
        last.map(|m| text_of(&m["content"])).unwrap_or_default()
    }
}

fn str_of(v: &Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

/// A content field as text: a string, or the `text` of its parts joined.
fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect(),
        _ => String::new(),
    }
}

fn tokens(bytes: usize) -> u64 {
    (bytes as u64 / 4).max(1)
}

struct Shared {
    /// The provider whose quirks this server plays, if any.
    emulation: Option<Emulation>,
    /// What must come back unchanged, by the call id it was sent with.
    owed: Mutex<HashMap<String, Value>>,
    queue: Mutex<VecDeque<Reply>>,
    log: Mutex<Vec<Recorded>>,
    /// Tool calls rendered so far, for the default ids.
    calls_rendered: Mutex<usize>,
    stop: AtomicBool,
}

/// The running server; stops (and joins its accept thread) on drop.
pub struct FakeServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl FakeServer {
    pub fn start(script: Vec<Reply>) -> FakeServer {
        FakeServer::serve(None, script)
    }

    /// A server that plays `emulation`: its replies carry the provider's extras, and a
    /// request that breaks its rules gets its error instead of the next reply.
    pub fn emulating(emulation: Emulation, script: Vec<Reply>) -> FakeServer {
        FakeServer::serve(Some(emulation), script)
    }

    /// What the server sent that must come back unchanged, by call id.
    pub fn owed(&self) -> HashMap<String, Value> {
        self.shared.owed.lock().unwrap().clone()
    }

    fn serve(emulation: Option<Emulation>, script: Vec<Reply>) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake model server");
        let addr = listener.local_addr().expect("fake server address");
        let shared = Arc::new(Shared {
            emulation,
            owed: Mutex::new(HashMap::new()),
            queue: Mutex::new(script.into()),
            log: Mutex::new(Vec::new()),
            calls_rendered: Mutex::new(0),
            stop: AtomicBool::new(false),
        });
        let for_thread = Arc::clone(&shared);
        let accept = thread::spawn(move || accept_loop(listener, for_thread));
        FakeServer {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/v1`
    pub fn base_v1(&self) -> String {
        format!("{}/v1", self.base())
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.log.lock().unwrap().clone()
    }

    /// Only the requests to the chat routes.
    pub fn chat_requests(&self) -> Vec<Recorded> {
        let all = self.requests();
        all.into_iter().filter(|r| r.protocol().is_some()).collect()
    }

    /// Replies still waiting in the queue.
    pub fn remaining(&self) -> usize {
        self.shared.queue.lock().unwrap().len()
    }

    /// Adds replies to the end of the queue.
    pub fn push(&self, reply: Reply) {
        self.shared.queue.lock().unwrap().push_back(reply);
    }

    /// Waits until at least `n` requests arrived; false when `timeout` passed first.
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.shared.log.lock().unwrap().len() < n {
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(10));
        }
        true
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept().
        let _ = TcpStream::connect(self.addr);
        if let Some(handle) = self.accept.take() {
            let _ = handle.join();
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let shared = Arc::clone(&shared);
        thread::spawn(move || {
            let mut conn = Conn::new(stream, shared);
            // An I/O error just ends this connection; the client sees it closed.
            let _ = conn.serve();
        });
    }
}

/// A request head.
struct Head {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        let found = self.headers.iter().find(|(k, _)| k == name);
        found.map(|(_, v)| v.as_str())
    }
}

/// One client connection: reads requests (keep-alive) and writes replies.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    shared: Arc<Shared>,
}

/// Whether the connection stays open after a response.
#[derive(PartialEq)]
enum After {
    KeepAlive,
    Close,
}

impl Conn {
    fn new(stream: TcpStream, shared: Arc<Shared>) -> Conn {
        let _ = stream.set_nodelay(true);
        let _ = stream.set_read_timeout(Some(POLL));
        Conn {
            stream,
            buf: Vec::new(),
            shared,
        }
    }

    fn serve(&mut self) -> io::Result<()> {
        while let Some(head) = self.read_head()? {
            let body = self.read_body(&head)?;
            let wants_close = head
                .header("connection")
                .is_some_and(|v| v.eq_ignore_ascii_case("close"));
            let recorded = record(head, body);
            self.shared.log.lock().unwrap().push(recorded.clone());
            let after = self.respond(&recorded)?;
            if after == After::Close || wants_close {
                let _ = self.stream.shutdown(Shutdown::Both);
                return Ok(());
            }
        }
        Ok(())
    }

    /// Reads more bytes into `buf`; false when the peer closed or the server stops.
    fn fill(&mut self) -> io::Result<bool> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if self.shared.stop.load(Ordering::SeqCst) {
                return Ok(false);
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(true);
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Takes bytes up to and including `pat`; `None` when the connection ended first.
    fn take_until(&mut self, pat: &[u8], limit: usize) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(i) = find(&self.buf, pat) {
                return Ok(Some(self.buf.drain(..i + pat.len()).collect()));
            }
            if self.buf.len() > limit {
                return Err(io::Error::new(ErrorKind::InvalidData, "line too long"));
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    fn take_exact(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if !self.fill()? {
                return Err(io::Error::new(ErrorKind::UnexpectedEof, "body cut short"));
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    fn read_head(&mut self) -> io::Result<Option<Head>> {
        let Some(raw) = self.take_until(b"\r\n\r\n", MAX_HEAD)? else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&raw);
        let mut lines = text.split("\r\n");
        let mut first = lines.next().unwrap_or("").split(' ');
        let method = first.next().unwrap_or("").to_string();
        let path = first.next().unwrap_or("").to_string();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Ok(Some(Head {
            method,
            path,
            headers,
        }))
    }

    fn read_body(&mut self, head: &Head) -> io::Result<Vec<u8>> {
        let chunked = head
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        if chunked {
            return self.read_chunked();
        }
        let len = head.header("content-length").and_then(|v| v.parse().ok());
        self.take_exact(len.unwrap_or(0))
    }

    fn read_chunked(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line = self.take_until(b"\r\n", MAX_HEAD)?;
            let line = line.ok_or_else(|| io::Error::new(ErrorKind::UnexpectedEof, "chunk"))?;
            let text = String::from_utf8_lossy(&line);
            let size_hex = text.trim().split(';').next().unwrap_or("");
            let size = usize::from_str_radix(size_hex, 16)
                .map_err(|_| io::Error::new(ErrorKind::InvalidData, "bad chunk size"))?;
            if size == 0 {
                // Trailers (none expected) end with an empty line.
                while self
                    .take_until(b"\r\n", MAX_HEAD)?
                    .is_some_and(|l| l.len() > 2)
                {}
                return Ok(body);
            }
            body.extend(self.take_exact(size)?);
            self.take_exact(2)?;
        }
    }

    fn respond(&mut self, req: &Recorded) -> io::Result<After> {
        let route = (req.method.as_str(), req.protocol());
        match route {
            ("POST", Some(protocol)) => {
                if let Some(emulation) = self.shared.emulation {
                    let owed = self.shared.owed.lock().unwrap().clone();
                    if let Err((code, body)) = providers::check(emulation, req, &owed) {
                        return self.send_plain(code, &[], &body);
                    }
                }
                let reply = self.shared.queue.lock().unwrap().pop_front();
                let reply = reply.unwrap_or_else(|| Reply::text(DEFAULT_TEXT));
                self.send_reply(&reply, protocol, req)
            }
            ("GET", None) if req.path.split('?').next() == Some("/v1/models") => {
                let body = json!({"object": "list", "data": [{"id": MODEL, "object": "model"}]});
                self.send_plain(200, &[], &body.to_string())
            }
            _ => {
                let body = json!({"error": {"message": format!("no route for {} {}", req.method, req.path)}});
                self.send_plain(404, &[], &body.to_string())
            }
        }
    }

    fn send_plain(
        &mut self,
        code: u16,
        headers: &[(String, String)],
        body: &str,
    ) -> io::Result<After> {
        let mut head = format!(
            "HTTP/1.1 {code} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            reason(code),
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        self.stream.write_all(head.as_bytes())?;
        self.stream.write_all(body.as_bytes())?;
        self.stream.flush()?;
        Ok(After::KeepAlive)
    }

    fn send_reply(
        &mut self,
        reply: &Reply,
        protocol: Protocol,
        req: &Recorded,
    ) -> io::Result<After> {
        match &reply.body {
            Body::Status {
                code,
                headers,
                body,
            } => self.send_plain(*code, headers, body),
            Body::Raw(bytes) => {
                self.stream.write_all(bytes)?;
                self.stream.flush()?;
                Ok(After::Close)
            }
            Body::Hang => {
                self.send_stream_head()?;
                self.hang();
                Ok(After::Close)
            }
            Body::Turn(turn) => {
                let ids = self.assign_ids(turn, protocol);
                let emulation = self.shared.emulation;
                let stream = render(turn, protocol, req, &ids, emulation);
                if let Some(emulation) = emulation {
                    let mut owed = self.shared.owed.lock().unwrap();
                    owed.extend(providers::owed(emulation, &ids));
                }
                self.send_stream(&stream, reply.pace)
            }
        }
    }

    fn assign_ids(&self, turn: &Turn, protocol: Protocol) -> Vec<String> {
        let mut count = self.shared.calls_rendered.lock().unwrap();
        let mut ids = Vec::new();
        for c in &turn.calls {
            *count += 1;
            let id = match self.shared.emulation {
                Some(Emulation::Mistral) => format!("fake{:05}", *count),
                _ => protocol.call_id(*count),
            };
            ids.push(c.id.clone().unwrap_or(id));
        }
        ids
    }

    fn send_stream_head(&mut self) -> io::Result<()> {
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n";
        self.stream.write_all(head.as_bytes())?;
        self.stream.flush()
    }

    /// Streams the events as chunks, one flush each; a cut stream closes instead of ending.
    fn send_stream(&mut self, stream: &Rendered, pace: Duration) -> io::Result<After> {
        self.send_stream_head()?;
        for event in &stream.events {
            thread::sleep(pace);
            let chunk = format!("{:x}\r\n{event}\r\n", event.len());
            self.stream.write_all(chunk.as_bytes())?;
            self.stream.flush()?;
        }
        if stream.cut {
            return Ok(After::Close);
        }
        self.stream.write_all(b"0\r\n\r\n")?;
        self.stream.flush()?;
        Ok(After::KeepAlive)
    }

    /// Holds the connection open, sending nothing, until the client closes it or the
    /// server stops.
    fn hang(&mut self) {
        let mut byte = [0u8; 1024];
        while !self.shared.stop.load(Ordering::SeqCst) {
            match self.stream.read(&mut byte) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => return,
            }
        }
    }
}

fn record(head: Head, raw_body: Vec<u8>) -> Recorded {
    Recorded {
        method: head.method,
        path: head.path,
        headers: head.headers,
        body: serde_json::from_slice(&raw_body).unwrap_or(Value::Null),
        body_len: raw_body.len(),
        raw_body,
        at: Instant::now(),
    }
}

fn find(hay: &[u8], pat: &[u8]) -> Option<usize> {
    hay.windows(pat.len()).position(|w| w == pat)
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        529 => "Overloaded",
        _ => "Status",
    }
}

/// A turn ready to send: SSE events (each a complete `event:`/`data:` block), and
/// whether the connection closes after them with no end.
struct Rendered {
    events: Vec<String>,
    cut: bool,
}

fn render(
    turn: &Turn,
    protocol: Protocol,
    req: &Recorded,
    ids: &[String],
    emulation: Option<Emulation>,
) -> Rendered {
    let ctx = Ctx {
        model: req.body["model"].as_str().unwrap_or(MODEL).to_string(),
        input_tokens: req.input_tokens(),
        output_tokens: output_tokens(turn),
        include_usage: req.body["stream_options"]["include_usage"] == true,
        ids: ids.to_vec(),
        emulation,
    };
    let mut events = match protocol {
        Protocol::OpenAi => openai_events(turn, &ctx),
        Protocol::Anthropic => anthropic_events(turn, &ctx),
        Protocol::Responses => responses_events(turn, &ctx),
    };
    let cut_at = events.len().div_ceil(2);
    match turn.ending {
        Ending::Complete | Ending::Length | Ending::Refusal | Ending::WindowFull => {
            Rendered { events, cut: false }
        }
        Ending::NoEndMarker => {
            events.pop();
            Rendered { events, cut: false }
        }
        Ending::Cut => {
            events.truncate(cut_at);
            Rendered { events, cut: true }
        }
        Ending::CutMidEvent => {
            let next = events[cut_at].clone();
            events.truncate(cut_at);
            let mut half = next.len() / 2;
            while !next.is_char_boundary(half) {
                half += 1;
            }
            events.push(next[..half].to_string());
            Rendered { events, cut: true }
        }
        Ending::ErrorEvent => {
            events.truncate(cut_at);
            events.push(error_event(protocol));
            Rendered { events, cut: false }
        }
    }
}

/// What every event of one turn needs to know.
struct Ctx {
    model: String,
    input_tokens: u64,
    output_tokens: u64,
    include_usage: bool,
    ids: Vec<String>,
    emulation: Option<Emulation>,
}

fn output_tokens(turn: &Turn) -> u64 {
    let args: usize = turn.calls.iter().map(|c| c.args_text().len()).sum();
    tokens(turn.text.len() + args)
}

/// Splits `s` into up to `n` pieces on character boundaries (one empty piece for "").
fn pieces(s: &str, n: usize) -> Vec<&str> {
    let size = s.len().div_ceil(n).max(1);
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let mut end = size.min(rest.len());
        while !rest.is_char_boundary(end) {
            end += 1;
        }
        let (head, tail) = rest.split_at(end);
        out.push(head);
        rest = tail;
    }
    if out.is_empty() {
        out.push("");
    }
    out
}

/// The arguments string actually sent: cut in half when the turn ends by length.
fn sent_args(turn: &Turn, i: usize) -> String {
    let full = turn.calls[i].args_text();
    let last = i + 1 == turn.calls.len();
    if !matches!(turn.ending, Ending::Length | Ending::WindowFull) || !last {
        return full;
    }
    let mut end = full.len() / 2;
    while !full.is_char_boundary(end) {
        end -= 1;
    }
    full[..end].to_string()
}

fn data(v: &Value) -> String {
    format!("data: {v}\n\n")
}

fn openai_events(turn: &Turn, ctx: &Ctx) -> Vec<String> {
    let extra = turn.quirks.contains(&Quirk::ExtraFields);
    let frame = |choices: Value| {
        let mut c = json!({
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": ctx.model,
            "choices": choices,
        });
        if extra {
            c["system_fingerprint"] = json!("fp_fake");
            c["timings"] = json!({"prompt_n": ctx.input_tokens, "predicted_ms": 12.5});
        }
        c
    };
    let chunk = |delta: Value, finish: Value| {
        let mut choice = json!({"index": 0, "delta": delta, "finish_reason": finish});
        if extra {
            choice["logprobs"] = Value::Null;
        }
        data(&frame(json!([choice])))
    };
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    for delta in providers::openai_reasoning(ctx.emulation, &ctx.ids) {
        events.push(chunk(delta, Value::Null));
    }
    let field = match turn.ending {
        Ending::Refusal => "refusal",
        _ => "content",
    };
    if !turn.text.is_empty() {
        for piece in pieces(&turn.text, PIECES) {
            events.push(chunk(json!({ field: piece }), Value::Null));
        }
    }
    for i in 0..turn.calls.len() {
        for mut fragment in openai_call_fragments(turn, ctx, i) {
            providers::openai_call_extra(ctx.emulation, &ctx.ids[i], &mut fragment);
            events.push(chunk(json!({"tool_calls": [fragment]}), Value::Null));
        }
    }
    let finish = match (turn.ending, turn.calls.is_empty()) {
        (Ending::Length | Ending::WindowFull, _) => "length",
        (_, true) => "stop",
        (_, false) => "tool_calls",
    };
    events.push(chunk(json!({}), json!(finish)));
    let groq = ctx.emulation == Some(Emulation::Groq);
    if ctx.include_usage || groq {
        let usage = json!({
            "prompt_tokens": ctx.input_tokens,
            "completion_tokens": ctx.output_tokens,
            "total_tokens": ctx.input_tokens + ctx.output_tokens,
        });
        let mut c = frame(json!([]));
        match groq {
            true => c["x_groq"] = json!({"id": "req_fake", "usage": usage}),
            false => c["usage"] = usage,
        }
        events.push(data(&c));
    }
    events.push("data: [DONE]\n\n".to_string());
    events
}

/// The `tool_calls` entries for call `i`: `id` and `name` first, then the arguments in
/// pieces; or the whole call at once under `OneChunk` / `ArgsAsObject`.
fn openai_call_fragments(turn: &Turn, ctx: &Ctx, i: usize) -> Vec<Value> {
    let call = &turn.calls[i];
    let args = sent_args(turn, i);
    let whole = turn.quirks.contains(&Quirk::OneChunk);
    let as_object = turn.quirks.contains(&Quirk::ArgsAsObject);
    let mut first = json!({"index": i, "type": "function", "function": {"name": call.name}});
    if !turn.quirks.contains(&Quirk::MissingId) {
        first["id"] = json!(ctx.ids[i]);
    }
    if as_object {
        first["function"]["arguments"] = call.args_value();
        return vec![first];
    }
    if whole {
        first["function"]["arguments"] = json!(args);
        return vec![first];
    }
    first["function"]["arguments"] = json!("");
    let mut out = vec![first];
    for piece in pieces(&args, PIECES) {
        out.push(json!({"index": i, "function": {"arguments": piece}}));
    }
    out
}

fn event(name: &str, v: &Value) -> String {
    format!("event: {name}\ndata: {v}\n\n")
}

fn anthropic_events(turn: &Turn, ctx: &Ctx) -> Vec<String> {
    let extra = turn.quirks.contains(&Quirk::ExtraFields);
    let ev = |name: &str, mut v: Value| {
        if extra {
            v["x_fake_extra"] = json!({"timings": {"predicted_ms": 12.5}});
        }
        event(name, &v)
    };
    let usage = json!({"input_tokens": ctx.input_tokens, "output_tokens": 1,
        "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0});
    let message = json!({"id": "msg_fake", "type": "message", "role": "assistant",
        "model": ctx.model, "content": [], "stop_reason": null, "stop_sequence": null,
        "usage": usage});
    let mut events = vec![
        ev(
            "message_start",
            json!({"type": "message_start", "message": message}),
        ),
        ev("ping", json!({"type": "ping"})),
    ];
    let mut index = 0;
    for v in providers::anthropic_thinking(ctx.emulation, &ctx.ids) {
        if v["type"] == "content_block_stop" {
            index += 1;
        }
        let name = v["type"].as_str().unwrap_or("").to_string();
        events.push(ev(&name, v));
    }
    if !turn.text.is_empty() {
        let block = json!({"type": "text", "text": ""});
        events.push(ev(
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": block}),
        ));
        for piece in pieces(&turn.text, PIECES) {
            let delta = json!({"type": "text_delta", "text": piece});
            events.push(ev(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": index, "delta": delta}),
            ));
        }
        events.push(ev(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        ));
        index += 1;
    }
    for i in 0..turn.calls.len() {
        for v in anthropic_tool_block(turn, ctx, i, index) {
            let name = v["type"].as_str().unwrap_or("").to_string();
            events.push(ev(&name, v));
        }
        index += 1;
    }
    let stop = match (turn.ending, turn.calls.is_empty()) {
        (Ending::Length, _) => "max_tokens",
        (Ending::WindowFull, _) => "model_context_window_exceeded",
        (Ending::Refusal, _) => "refusal",
        (_, true) => "end_turn",
        (_, false) => "tool_use",
    };
    let delta = json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null},
        "usage": {"output_tokens": ctx.output_tokens}});
    events.push(ev("message_delta", delta));
    events.push(ev("message_stop", json!({"type": "message_stop"})));
    events
}

/// The events of one `tool_use` block at content `index`.
fn anthropic_tool_block(turn: &Turn, ctx: &Ctx, i: usize, index: usize) -> Vec<Value> {
    let call = &turn.calls[i];
    let as_object = turn.quirks.contains(&Quirk::ArgsAsObject);
    let mut block = json!({"type": "tool_use", "name": call.name, "input": {}});
    if !turn.quirks.contains(&Quirk::MissingId) {
        block["id"] = json!(ctx.ids[i]);
    }
    if as_object {
        block["input"] = call.args_value();
    }
    let mut out =
        vec![json!({"type": "content_block_start", "index": index, "content_block": block})];
    if !as_object {
        let args = sent_args(turn, i);
        let parts = match turn.quirks.contains(&Quirk::OneChunk) {
            true => vec![args.as_str()],
            // Anthropic opens with an empty partial_json; clients must cope.
            false => std::iter::once("").chain(pieces(&args, PIECES)).collect(),
        };
        for part in parts {
            let delta = json!({"type": "input_json_delta", "partial_json": part});
            out.push(json!({"type": "content_block_delta", "index": index, "delta": delta}));
        }
    }
    out.push(json!({"type": "content_block_stop", "index": index}));
    out
}

/// The Responses API's events for a turn: items added, text and argument deltas, items
/// done, then `response.completed` (or `response.incomplete` when cut by length).
fn responses_events(turn: &Turn, ctx: &Ctx) -> Vec<String> {
    let ev = |v: Value| event(v["type"].as_str().unwrap_or(""), &v);
    let mut events = vec![ev(json!({"type": "response.created",
        "response": {"id": "resp_fake", "object": "response", "status": "in_progress"}}))];
    let mut output = Vec::new();
    for item in providers::responses_reasoning(ctx.emulation, &ctx.ids) {
        events.push(ev(
            json!({"type": "response.output_item.done", "item": item}),
        ));
        output.push(item);
    }
    if !turn.text.is_empty() {
        let (delta, part) = match turn.ending {
            Ending::Refusal => ("response.refusal.delta", "refusal"),
            _ => ("response.output_text.delta", "output_text"),
        };
        let item = json!({"type": "message", "id": "msg_fake", "role": "assistant",
                          "status": "in_progress", "content": []});
        events.push(ev(
            json!({"type": "response.output_item.added", "item": item}),
        ));
        for piece in pieces(&turn.text, PIECES) {
            events.push(ev(
                json!({"type": delta, "item_id": "msg_fake", "delta": piece}),
            ));
        }
        let text_field = if part == "refusal" { "refusal" } else { "text" };
        let done = json!({"type": "message", "id": "msg_fake", "role": "assistant",
            "status": "completed", "content": [{"type": part, text_field: turn.text}]});
        events.push(ev(
            json!({"type": "response.output_item.done", "item": done}),
        ));
        output.push(done);
    }
    for (i, call) in turn.calls.iter().enumerate() {
        let id = format!("fc_{}", ctx.ids[i]);
        let args = sent_args(turn, i);
        let item = |arguments: &str, status: &str| {
            json!({"type": "function_call", "id": id, "call_id": ctx.ids[i], "name": call.name,
                   "arguments": arguments, "status": status})
        };
        events.push(ev(
            json!({"type": "response.output_item.added", "item": item("", "in_progress")}),
        ));
        for piece in pieces(&args, PIECES) {
            events.push(ev(json!({"type": "response.function_call_arguments.delta",
                                  "item_id": id, "output_index": i, "delta": piece})));
        }
        events.push(ev(
            json!({"type": "response.output_item.done", "item": item(&args, "completed")}),
        ));
        output.push(item(&args, "completed"));
    }
    let usage = json!({"input_tokens": ctx.input_tokens, "output_tokens": ctx.output_tokens,
        "total_tokens": ctx.input_tokens + ctx.output_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens_details": {"reasoning_tokens": 0}});
    let mut response = json!({"id": "resp_fake", "object": "response", "model": ctx.model,
                              "status": "completed", "output": output, "usage": usage});
    let kind = match turn.ending {
        Ending::Length | Ending::WindowFull => {
            response["status"] = json!("incomplete");
            response["incomplete_details"] = json!({"reason": "max_output_tokens"});
            "response.incomplete"
        }
        _ => "response.completed",
    };
    events.push(ev(json!({"type": kind, "response": response})));
    events
}

fn error_event(protocol: Protocol) -> String {
    match protocol {
        Protocol::OpenAi => data(&json!({"error": {"message": "fake upstream failure",
            "type": "server_error", "code": 500}})),
        Protocol::Anthropic => event(
            "error",
            &json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        ),
        Protocol::Responses => event(
            "response.failed",
            &json!({"type": "response.failed", "response": {"status": "failed",
                "error": {"code": "server_error", "message": "fake upstream failure"}}}),
        ),
    }
}
