//! Checks the harness itself: the fake server's HTTP and SSE framing over a raw
//! `TcpStream` client (both protocols, every scripted quirk and failure, queue order,
//! recording), and the sandbox the nib runner builds.

use crate::support::fake::{MODEL, Recorded};
use crate::support::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A raw HTTP/1.1 client on one keep-alive connection.
struct Client {
    reader: BufReader<TcpStream>,
}

/// A response as it arrived on the wire.
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    /// The body with chunk framing removed.
    body: Vec<u8>,
    /// Each chunk's payload, in order.
    chunks: Vec<Vec<u8>>,
    /// False when the connection closed before the body's end (no terminating chunk).
    complete: bool,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        let found = self.headers.iter().find(|(k, _)| k == name);
        found.map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// SSE events: (`event:` name, `data:` payload).
    fn events(&self) -> Vec<(Option<String>, String)> {
        let text = self.text();
        let blocks = text.split("\n\n").filter(|b| !b.trim().is_empty());
        blocks.map(parse_event).collect()
    }

    /// The JSON `data:` payloads (skipping `[DONE]`).
    fn data(&self) -> Vec<Value> {
        let events = self.events().into_iter().filter(|(_, d)| d != "[DONE]");
        events
            .map(|(_, d)| serde_json::from_str(&d).unwrap())
            .collect()
    }
}

fn parse_event(block: &str) -> (Option<String>, String) {
    let mut name = None;
    let mut data = String::new();
    for line in block.lines() {
        if let Some(n) = line.strip_prefix("event: ") {
            name = Some(n.to_string());
        } else if let Some(d) = line.strip_prefix("data: ") {
            data.push_str(d);
        } else {
            panic!("not an SSE line: {line:?}");
        }
    }
    (name, data)
}

impl Client {
    fn connect(server: &FakeServer) -> Client {
        let stream = TcpStream::connect(server.addr()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        Client {
            reader: BufReader::new(stream),
        }
    }

    fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let stream = self.reader.get_mut();
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body).unwrap();
    }

    fn request(&mut self, method: &str, path: &str, body: &Value) -> Resp {
        self.send(method, path, &[], body.to_string().as_bytes());
        self.response()
    }

    fn post(&mut self, p: Protocol, body: &Value) -> Resp {
        self.request("POST", p.path(), body)
    }

    fn line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line).unwrap() {
            0 => None,
            _ => Some(line),
        }
    }

    fn head(&mut self) -> (u16, Vec<(String, String)>) {
        let status_line = self.line().expect("a status line");
        let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
        let mut headers = Vec::new();
        while let Some(line) = self.line() {
            if line == "\r\n" {
                break;
            }
            let (k, v) = line.split_once(':').unwrap();
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        (status, headers)
    }

    fn response(&mut self) -> Resp {
        let (status, headers) = self.head();
        let mut resp = Resp {
            status,
            headers,
            body: Vec::new(),
            chunks: Vec::new(),
            complete: true,
        };
        if resp.header("transfer-encoding") == Some("chunked") {
            self.read_chunks(&mut resp);
        } else if let Some(len) = resp.header("content-length") {
            let mut body = vec![0; len.parse().unwrap()];
            self.reader.read_exact(&mut body).unwrap();
            resp.body = body;
        } else {
            self.reader.read_to_end(&mut resp.body).unwrap();
        }
        resp
    }

    fn read_chunks(&mut self, resp: &mut Resp) {
        loop {
            let Some(size_line) = self.line() else {
                resp.complete = false;
                return;
            };
            let size = usize::from_str_radix(size_line.trim(), 16).unwrap();
            let mut chunk = vec![0; size + 2];
            self.reader.read_exact(&mut chunk).unwrap();
            assert!(chunk.ends_with(b"\r\n"), "chunk not followed by CRLF");
            chunk.truncate(size);
            if size == 0 {
                return;
            }
            resp.body.extend_from_slice(&chunk);
            resp.chunks.push(chunk);
        }
    }

    /// True when the server closed the connection (reads EOF).
    fn closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.reader.read(&mut byte), Ok(0))
    }
}

fn openai_request() -> Value {
    json!({"model": "m1", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "hello there, fake model"}]})
}

fn anthropic_request() -> Value {
    json!({"model": "m1", "stream": true, "max_tokens": 100,
        "messages": [{"role": "user", "content": "hello there, fake model"}]})
}

fn request_for(p: Protocol) -> Value {
    match p {
        Protocol::OpenAi => openai_request(),
        Protocol::Anthropic => anthropic_request(),
        Protocol::Responses => json!({"model": "fake-model", "stream": true,
            "input": [{"role": "user", "content": "hello there, fake model"}]}),
    }
}

/// The text of a reply, reassembled from either protocol's stream.
fn streamed_text(p: Protocol, resp: &Resp) -> String {
    let data = resp.data();
    let piece = |d: &Value| match p {
        Protocol::OpenAi => d["choices"][0]["delta"]["content"]
            .as_str()
            .map(String::from),
        Protocol::Anthropic => d["delta"]["text"].as_str().map(String::from),
        Protocol::Responses => (d["type"] == "response.output_text.delta")
            .then(|| d["delta"].as_str().map(String::from))
            .flatten(),
    };
    data.iter().filter_map(piece).collect()
}

/// OpenAI tool-call fragments grouped by `index`, in order.
fn openai_fragments(resp: &Resp) -> Vec<Vec<Value>> {
    let mut calls: Vec<Vec<Value>> = Vec::new();
    for d in resp.data() {
        let frags = d["choices"][0]["delta"]["tool_calls"].as_array().cloned();
        for f in frags.unwrap_or_default() {
            let i = f["index"].as_u64().unwrap() as usize;
            if calls.len() <= i {
                calls.resize(i + 1, Vec::new());
            }
            calls[i].push(f);
        }
    }
    calls
}

fn openai_args(fragments: &[Value]) -> String {
    let parts = fragments.iter();
    parts
        .filter_map(|f| f["function"]["arguments"].as_str())
        .collect()
}

fn openai_finish(resp: &Resp) -> Vec<String> {
    let data = resp.data();
    let finish = data
        .iter()
        .filter_map(|d| d["choices"][0]["finish_reason"].as_str());
    finish.map(String::from).collect()
}

/// Anthropic tool_use blocks: (content_block_start block, partial_json pieces).
fn anthropic_tool_blocks(resp: &Resp) -> Vec<(Value, Vec<String>)> {
    let mut blocks: Vec<(Value, Vec<String>)> = Vec::new();
    for d in resp.data() {
        if d["type"] == "content_block_start" && d["content_block"]["type"] == "tool_use" {
            blocks.push((d["content_block"].clone(), Vec::new()));
        }
        if d["delta"]["type"] == "input_json_delta" {
            let part = d["delta"]["partial_json"].as_str().unwrap().to_string();
            blocks.last_mut().unwrap().1.push(part);
        }
    }
    blocks
}

fn anthropic_stop(resp: &Resp) -> String {
    let data = resp.data();
    let delta = data.iter().find(|d| d["type"] == "message_delta").unwrap();
    delta["delta"]["stop_reason"].as_str().unwrap().to_string()
}

/// Every chunk carries exactly one complete SSE event.
fn assert_one_event_per_chunk(resp: &Resp) {
    assert!(!resp.chunks.is_empty());
    for chunk in &resp.chunks {
        let text = String::from_utf8(chunk.clone()).unwrap();
        assert!(text.ends_with("\n\n"), "chunk is not one event: {text:?}");
        assert_eq!(
            text.matches("\n\n").count(),
            1,
            "chunk holds several events: {text:?}"
        );
    }
}

#[test]
fn openai_text_stream_framing() {
    let text = "Hello from the fake model, in several pieces";
    let server = FakeServer::start(vec![Reply::text(text)]);
    let mut client = Client::connect(&server);
    let resp = client.post(Protocol::OpenAi, &openai_request());

    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("text/event-stream"));
    assert!(resp.complete);
    assert_one_event_per_chunk(&resp);
    let events = resp.events();
    assert!(
        events.iter().all(|(name, _)| name.is_none()),
        "OpenAI sends data lines only"
    );
    assert_eq!(events.last().unwrap().1, "[DONE]");

    let data = resp.data();
    assert!(data.iter().all(|d| d["object"] == "chat.completion.chunk"));
    assert!(
        data.iter().all(|d| d["model"] == "m1"),
        "echoes the requested model"
    );
    assert_eq!(data[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(streamed_text(Protocol::OpenAi, &resp), text);
    let content_chunks = data.iter().filter(|d| {
        d["choices"][0]["delta"]["content"]
            .as_str()
            .is_some_and(|c| !c.is_empty())
    });
    assert!(content_chunks.count() >= 2, "text is split across chunks");
    assert_eq!(openai_finish(&resp), ["stop"]);

    let usage = &data.last().unwrap()["usage"];
    assert_eq!(data.last().unwrap()["choices"], json!([]));
    let request = &server.requests()[0];
    assert_eq!(usage["prompt_tokens"], request.input_tokens());
    assert_eq!(usage["prompt_tokens"], (request.body_len / 4) as u64);
    assert_eq!(usage["completion_tokens"], (text.len() / 4) as u64);
}

#[test]
fn openai_usage_chunk_only_when_asked() {
    let server = FakeServer::start(vec![Reply::text("hi")]);
    let mut client = Client::connect(&server);
    let body = json!({"model": "m", "stream": true, "messages": []});
    let resp = client.post(Protocol::OpenAi, &body);
    assert!(resp.data().iter().all(|d| d.get("usage").is_none()));
    assert_eq!(resp.events().last().unwrap().1, "[DONE]");
}

#[test]
fn openai_parallel_calls_are_fragmented() {
    let args0 = json!({"command": "echo one && echo two", "timeout": 5});
    let args1 = json!({"path": "src/main.rs"});
    let reply = Reply::calls(vec![
        call("bash", args0.clone()),
        call("read", args1.clone()),
    ])
    .with_text("Let me look");
    let server = FakeServer::start(vec![reply]);
    let resp = Client::connect(&server).post(Protocol::OpenAi, &openai_request());

    assert_eq!(streamed_text(Protocol::OpenAi, &resp), "Let me look");
    let calls = openai_fragments(&resp);
    assert_eq!(calls.len(), 2);
    for (i, (frags, name, args)) in [(&calls[0], "bash", &args0), (&calls[1], "read", &args1)]
        .into_iter()
        .enumerate()
    {
        assert_eq!(frags[0]["id"], Protocol::OpenAi.call_id(i + 1));
        assert_eq!(frags[0]["type"], "function");
        assert_eq!(frags[0]["function"]["name"], name);
        assert!(
            frags[1..]
                .iter()
                .all(|f| f.get("id").is_none() && f["function"].get("name").is_none())
        );
        assert!(frags.len() >= 3, "arguments come in several fragments");
        let joined: Value = serde_json::from_str(&openai_args(frags)).unwrap();
        assert_eq!(&joined, args);
    }
    assert_eq!(openai_finish(&resp), ["tool_calls"]);
    assert_eq!(resp.events().last().unwrap().1, "[DONE]");
}

#[test]
fn anthropic_stream_framing() {
    let args = json!({"command": "ls -la"});
    let reply = Reply::tool_call("bash", args.clone()).with_text("Running it now");
    let server = FakeServer::start(vec![reply]);
    let resp = Client::connect(&server).post(Protocol::Anthropic, &anthropic_request());

    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("text/event-stream"));
    assert!(resp.complete);
    assert_one_event_per_chunk(&resp);
    let events = resp.events();
    for (name, data) in &events {
        let v: Value = serde_json::from_str(data).unwrap();
        assert_eq!(
            name.as_deref(),
            v["type"].as_str(),
            "event name matches data type"
        );
    }
    let names: Vec<String> = events.iter().map(|(n, _)| n.clone().unwrap()).collect();
    let mut squashed: Vec<&str> = names.iter().map(String::as_str).collect();
    squashed.dedup();
    assert_eq!(
        squashed,
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );

    let data = resp.data();
    let request = &server.requests()[0];
    assert_eq!(
        data[0]["message"]["usage"]["input_tokens"],
        request.input_tokens()
    );
    assert_eq!(data[0]["message"]["model"], "m1");
    assert_eq!(streamed_text(Protocol::Anthropic, &resp), "Running it now");
    let blocks = anthropic_tool_blocks(&resp);
    assert_eq!(blocks.len(), 1);
    let (start, parts) = &blocks[0];
    assert_eq!(start["id"], "toolu_fake_1");
    assert_eq!(start["name"], "bash");
    assert_eq!(start["input"], json!({}));
    assert!(parts.len() >= 3, "input_json_delta comes in pieces");
    assert_eq!(
        serde_json::from_str::<Value>(&parts.concat()).unwrap(),
        args
    );
    assert_eq!(anthropic_stop(&resp), "tool_use");
    let delta = data.iter().find(|d| d["type"] == "message_delta").unwrap();
    assert!(delta["usage"]["output_tokens"].as_u64().unwrap() > 0);
    let indexes: Vec<u64> = data
        .iter()
        .filter(|d| d["type"] == "content_block_start")
        .map(|d| d["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, [0, 1]);
}

#[test]
fn queue_is_shared_across_routes_and_ordered() {
    let server = FakeServer::start(vec![
        Reply::text("first"),
        Reply::text("second"),
        Reply::text("third"),
    ]);
    let mut client = Client::connect(&server);
    let order = [
        (Protocol::OpenAi, "first"),
        (Protocol::Anthropic, "second"),
        (Protocol::OpenAi, "third"),
        (Protocol::Anthropic, "DONE"),
        (Protocol::OpenAi, "DONE"),
    ];
    for (p, expected) in order {
        let resp = client.post(p, &request_for(p));
        assert_eq!(
            streamed_text(p, &resp),
            expected,
            "{p:?} on one keep-alive connection"
        );
    }
    assert_eq!(server.remaining(), 0);
    assert_eq!(server.chat_requests().len(), 5);
}

#[test]
fn default_ids_count_over_the_server() {
    let server = FakeServer::start(vec![
        Reply::tool_call("bash", json!({"command": "a"})),
        Reply::calls(vec![
            call("bash", json!({"command": "b"})).id("mine"),
            call("read", json!({"path": "x"})),
        ]),
    ]);
    let mut client = Client::connect(&server);
    let first = client.post(Protocol::Anthropic, &anthropic_request());
    let second = client.post(Protocol::OpenAi, &openai_request());
    assert_eq!(anthropic_tool_blocks(&first)[0].0["id"], "toolu_fake_1");
    let calls = openai_fragments(&second);
    assert_eq!(calls[0][0]["id"], "mine");
    assert_eq!(calls[1][0]["id"], "call_fake_3");
}

#[test]
fn requests_are_recorded_and_other_routes_404() {
    let server = FakeServer::start(vec![Reply::text("kept")]);
    let mut client = Client::connect(&server);
    let body = json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": [{"type": "text", "text": "part one"}]}]});
    client.send(
        "POST",
        "/v1/messages?beta=true",
        &[("x-api-key", "k-123"), ("Anthropic-Version", "2023-06-01")],
        body.to_string().as_bytes(),
    );
    let first = client.response();
    assert_eq!(streamed_text(Protocol::Anthropic, &first), "kept");

    let models = client.request("GET", "/v1/models", &Value::Null);
    assert_eq!(models.status, 200);
    let listed: Value = serde_json::from_slice(&models.body).unwrap();
    assert_eq!(
        listed,
        json!({"object": "list", "data": [{"id": MODEL, "object": "model"}]})
    );

    server.push(Reply::text("still queued"));
    assert_eq!(client.request("GET", "/nope", &Value::Null).status, 404);
    assert_eq!(
        client.request("POST", "/v1/completions", &json!({})).status,
        404
    );
    assert_eq!(
        client.request("GET", "/v1/messages", &Value::Null).status,
        404
    );
    assert_eq!(
        server.remaining(),
        1,
        "a 404 does not take a scripted reply"
    );

    let log = server.requests();
    assert_eq!(log.len(), 5);
    let r: &Recorded = &log[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/v1/messages?beta=true")
    );
    assert_eq!(r.protocol(), Some(Protocol::Anthropic));
    assert_eq!(r.header("X-API-Key"), Some("k-123"));
    assert_eq!(r.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(r.body, body);
    assert_eq!(r.body_len, body.to_string().len());
    assert_eq!(r.raw_body, body.to_string().into_bytes());
    assert_eq!(r.last_user_text(), "part one");
    assert_eq!(
        (log[1].method.as_str(), log[1].path.as_str()),
        ("GET", "/v1/models")
    );
    assert_eq!(log[1].body, Value::Null);
    assert!(log[0].at <= log[1].at);
}

#[test]
fn chunked_request_body_is_read() {
    let server = FakeServer::start(vec![Reply::text("ok"), Reply::text("again")]);
    let mut client = Client::connect(&server);
    let body = openai_request().to_string();
    let (a, b) = body.split_at(10);
    let framed = format!("{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n", a.len(), b.len());
    let head =
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n";
    let stream = client.reader.get_mut();
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(framed.as_bytes()).unwrap();
    assert_eq!(streamed_text(Protocol::OpenAi, &client.response()), "ok");
    // The connection is still in step after a chunked body.
    let again = client.post(Protocol::OpenAi, &openai_request());
    assert_eq!(streamed_text(Protocol::OpenAi, &again), "again");
    let r = &server.requests()[0];
    assert_eq!(r.body, openai_request());
    assert_eq!(r.body_len, body.len());
}

#[test]
fn status_reply_then_success_on_same_connection() {
    let error = r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#;
    let server = FakeServer::start(vec![
        Reply::status(429, &[("retry-after", "1")], error),
        Reply::text("after the wait"),
    ]);
    let mut client = Client::connect(&server);
    let resp = client.post(Protocol::Anthropic, &anthropic_request());
    assert_eq!(resp.status, 429);
    assert_eq!(resp.header("retry-after"), Some("1"));
    assert_eq!(resp.text(), error);
    let resp = client.post(Protocol::Anthropic, &anthropic_request());
    assert_eq!(streamed_text(Protocol::Anthropic, &resp), "after the wait");
}

#[test]
fn cut_stream_closes_without_end_marker() {
    for p in Protocol::BOTH {
        let server = FakeServer::start(vec![Reply::cut()]);
        let mut client = Client::connect(&server);
        let resp = client.post(p, &request_for(p));
        assert!(!resp.complete, "{p:?}: no terminating chunk");
        assert!(client.closed(), "{p:?}: connection closed");
        let events = resp.events();
        assert!(!events.is_empty());
        assert!(events.iter().all(|(_, d)| d != "[DONE]"));
        assert!(
            events
                .iter()
                .all(|(n, _)| n.as_deref() != Some("message_stop"))
        );
        assert!(
            !streamed_text(p, &resp).is_empty(),
            "{p:?}: some text came first"
        );
    }
}

#[test]
fn error_event_mid_stream() {
    for p in Protocol::BOTH {
        let server = FakeServer::start(vec![Reply::error_event(), Reply::text("next")]);
        let mut client = Client::connect(&server);
        let resp = client.post(p, &request_for(p));
        assert!(resp.complete, "{p:?}: the HTTP body ends cleanly");
        let (name, last) = resp.events().pop().unwrap();
        let last: Value = serde_json::from_str(&last).unwrap();
        match p {
            Protocol::OpenAi => {
                assert_eq!(name, None);
                assert_eq!(last["error"]["type"], "server_error");
            }
            Protocol::Anthropic => {
                assert_eq!(name.as_deref(), Some("error"));
                assert_eq!(last["error"]["type"], "overloaded_error");
            }
            Protocol::Responses => {
                assert_eq!(name.as_deref(), Some("response.failed"));
                assert_eq!(last["response"]["error"]["code"], "server_error");
            }
        }
        assert!(
            resp.events()
                .iter()
                .all(|(n, d)| d != "[DONE]" && n.as_deref() != Some("message_stop"))
        );
        let again = client.post(p, &request_for(p));
        assert_eq!(streamed_text(p, &again), "next");
    }
}

#[test]
fn openai_quirks() {
    let args = json!({"command": "touch marker"});
    let server = FakeServer::start(vec![
        Reply::tool_call("bash", args.clone()).args_as_object(),
        Reply::tool_call("bash", args.clone()).without_ids(),
        Reply::tool_call("bash", args.clone()).one_chunk(),
        Reply::text("hi").extra_fields(),
        Reply::invalid_args("bash", r#"{"command": "touch mar"#),
        Reply::tool_call("bash", args.clone()).cut_by_length(),
    ]);
    let mut client = Client::connect(&server);
    let mut next = || client.post(Protocol::OpenAi, &openai_request());

    let object = openai_fragments(&next());
    assert_eq!(object[0].len(), 1, "the whole call at once");
    assert_eq!(
        object[0][0]["function"]["arguments"], args,
        "arguments as an object"
    );

    let no_id = openai_fragments(&next());
    assert!(no_id[0].iter().all(|f| f.get("id").is_none()));
    assert_eq!(no_id[0][0]["function"]["name"], "bash");

    let one = openai_fragments(&next());
    assert_eq!(one[0].len(), 1);
    assert_eq!(one[0][0]["function"]["arguments"], args.to_string());
    assert_eq!(one[0][0]["id"], "call_fake_3");

    let extra = next();
    assert!(
        extra
            .data()
            .iter()
            .all(|d| d["timings"].is_object() && d["system_fingerprint"] == "fp_fake")
    );
    assert_eq!(streamed_text(Protocol::OpenAi, &extra), "hi");

    let invalid = openai_fragments(&next());
    let raw = openai_args(&invalid[0]);
    assert_eq!(raw, r#"{"command": "touch mar"#);
    assert!(serde_json::from_str::<Value>(&raw).is_err());

    let length = next();
    assert_eq!(openai_finish(&length), ["length"]);
    let cut = openai_args(&openai_fragments(&length)[0]);
    assert!(args.to_string().starts_with(&cut) && cut.len() < args.to_string().len());
    assert!(serde_json::from_str::<Value>(&cut).is_err());
}

#[test]
fn anthropic_quirks() {
    let args = json!({"command": "touch marker"});
    let server = FakeServer::start(vec![
        Reply::tool_call("bash", args.clone()).args_as_object(),
        Reply::tool_call("bash", args.clone()).without_ids(),
        Reply::tool_call("bash", args.clone()).one_chunk(),
        Reply::text("hi").extra_fields(),
        Reply::invalid_args("bash", r#"{"command": "touch mar"#),
        Reply::tool_call("bash", args.clone()).cut_by_length(),
    ]);
    let mut client = Client::connect(&server);
    let mut next = || client.post(Protocol::Anthropic, &anthropic_request());

    let object = anthropic_tool_blocks(&next());
    assert_eq!(object[0].0["input"], args);
    assert!(object[0].1.is_empty(), "no input_json_delta");

    let no_id = anthropic_tool_blocks(&next());
    assert!(no_id[0].0.get("id").is_none());

    let one = anthropic_tool_blocks(&next());
    assert_eq!(one[0].1, [args.to_string()]);

    let extra = next();
    assert!(extra.data().iter().all(|d| d["x_fake_extra"].is_object()));
    assert_eq!(streamed_text(Protocol::Anthropic, &extra), "hi");

    let invalid = anthropic_tool_blocks(&next());
    assert_eq!(invalid[0].1.concat(), r#"{"command": "touch mar"#);

    let length = next();
    assert_eq!(anthropic_stop(&length), "max_tokens");
    let cut = anthropic_tool_blocks(&length)[0].1.concat();
    assert!(args.to_string().starts_with(&cut) && cut.len() < args.to_string().len());
}

#[test]
fn slow_reply_paces_events() {
    let server = FakeServer::start(vec![Reply::text("one two three").slow(40)]);
    let mut client = Client::connect(&server);
    let start = Instant::now();
    let resp = client.post(Protocol::OpenAi, &openai_request());
    let floor = Duration::from_millis(40 * resp.chunks.len() as u64);
    assert!(
        start.elapsed() >= floor,
        "{:?} < {floor:?}",
        start.elapsed()
    );
    assert_eq!(streamed_text(Protocol::OpenAi, &resp), "one two three");
}

#[test]
fn hang_sends_headers_then_nothing() {
    let server = FakeServer::start(vec![Reply::hang()]);
    let mut client = Client::connect(&server);
    client.send(
        "POST",
        "/v1/messages",
        &[],
        anthropic_request().to_string().as_bytes(),
    );
    let (status, headers) = client.head();
    assert_eq!(status, 200);
    assert!(headers.contains(&("content-type".into(), "text/event-stream".into())));
    let stream = client.reader.get_ref();
    stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut byte = [0u8; 1];
    let err = client.reader.read(&mut byte).unwrap_err();
    assert!(matches!(
        err.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut
    ));
    let start = Instant::now();
    drop(server);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "a hung reply does not block shutdown"
    );
}

#[test]
fn raw_reply_is_verbatim() {
    let raw = "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
    let server = FakeServer::start(vec![Reply::raw(raw)]);
    let mut client = Client::connect(&server);
    let resp = client.post(Protocol::OpenAi, &openai_request());
    assert_eq!(resp.text(), "hello");
    assert!(client.closed());
}

#[test]
fn recorded_helpers_read_both_protocols() {
    let server = FakeServer::start(vec![]);
    let mut client = Client::connect(&server);
    let openai = json!({"model": "m", "tools": [{"type": "function", "function": {"name": "bash"}}],
        "messages": [
        {"role": "user", "content": "do it"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "bash", "arguments": "{\"command\":\"ls\"}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "exit status: 0\nfile"}]});
    let anthropic = json!({"model": "m", "tools": [{"name": "read", "input_schema": {}}],
        "messages": [
        {"role": "user", "content": "do it"},
        {"role": "assistant", "content": [{"type": "text", "text": "ok"}, {"type": "tool_use", "id": "t1", "name": "bash", "input": {"command": "ls"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "denied"}], "is_error": true}]}]});
    client.post(Protocol::OpenAi, &openai);
    client.post(Protocol::Anthropic, &anthropic);
    let log = server.requests();
    let expect = [
        ("c1", "exit status: 0\nfile", false, "bash"),
        ("t1", "denied", true, "read"),
    ];
    for (r, (id, content, is_error, tool)) in log.iter().zip(expect) {
        let results = r.tool_results();
        assert_eq!(results.len(), 1);
        assert_eq!(
            (
                results[0].id.as_str(),
                results[0].content.as_str(),
                results[0].is_error
            ),
            (id, content, is_error)
        );
        let calls = r.assistant_calls();
        assert_eq!((calls[0].id.as_str(), calls[0].name.as_str()), (id, "bash"));
        assert_eq!(calls[0].input, json!({"command": "ls"}));
        assert_eq!(r.tool_names(), [tool]);
    }
    assert_eq!(log[0].last_user_text(), "do it");
}

#[test]
fn sandbox_env_is_cleared_and_dirs_exist() {
    let nib = Nib::new().program("env").env("EXTRA", "1");
    let out = nib.run();
    assert_eq!(out.code(), 0, "{out}");
    let mut keys: Vec<&str> = out
        .stdout
        .lines()
        .map(|l| l.split('=').next().unwrap())
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "EXTRA",
            "HOME",
            "PATH",
            "XDG_CACHE_HOME",
            "XDG_CONFIG_HOME",
            "XDG_DATA_HOME"
        ]
    );
    let home = format!("HOME={}", nib.home().display());
    assert!(out.stdout.lines().any(|l| l == home));
    assert!(nib.work().is_dir() && nib.home().is_dir() && nib.data_home().is_dir());
}

#[test]
fn sandbox_cwd_stdin_and_files() {
    let nib = Nib::new()
        .program("sh")
        .args(["-c", "pwd; cat; echo x > made.txt"])
        .stdin("from stdin");
    nib.put("sub/in.txt", "hi");
    let out = nib.run();
    assert_eq!(out.stdout, format!("{}\nfrom stdin", nib.work().display()));
    assert_eq!(nib.read("made.txt").as_deref(), Some("x\n"));
    assert_eq!(nib.read("sub/in.txt").as_deref(), Some("hi"));
    assert_eq!(nib.read("missing"), None);
    let root = nib.work().parent().unwrap().to_path_buf();
    drop(nib);
    assert!(!root.exists(), "the sandbox is removed on drop");
}

#[test]
fn sandbox_timeout_kills_and_fails() {
    let nib = Nib::new().program("sleep").arg("30").timeout(1);
    let start = Instant::now();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| nib.run()));
    assert!(result.is_err(), "a run past its timeout fails the test");
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn journal_files_are_found_nested() {
    let nib = Nib::new();
    let sessions = nib.data_home().join("nib/sessions/proj");
    std::fs::create_dir_all(&sessions).unwrap();
    std::fs::write(sessions.join("b.jsonl"), "{\"a\":1}\n\n{\"b\":2}\n").unwrap();
    std::fs::write(sessions.join("a.txt"), "no").unwrap();
    let files = nib.journal_files();
    assert_eq!(files, [sessions.join("b.jsonl")]);
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert_eq!(parse_json_lines(&text), [json!({"a": 1}), json!({"b": 2})]);
}
