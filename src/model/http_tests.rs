use super::*;
use crate::model::retry::UNREACHABLE_ATTEMPTS;
use crate::model::testing::request;
use crate::model::{Endpoint, Message, Provider, Request, Retry, StopReason};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

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
type Outcome = (Result<Reply, Error>, String, Vec<(u32, Duration, String)>);

/// Sends a one-message request.
fn run(client: &Client) -> Outcome {
    let messages = [Message::user_text("hi")];
    let req = Request {
        max_tokens: 100,
        ..request(&messages)
    };
    let mut text = String::new();
    let mut retries = Vec::new();
    let result = client.send(&req, &mut |event| match event {
        Event::Text(t) => text.push_str(t),
        Event::Retry(Retry {
            attempt,
            wait,
            reason,
        }) => retries.push((attempt, wait, reason)),
        Event::Stalled { .. } => {}
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
    assert!(matches!(error, Error::Status { code: 401, .. }));
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
        Error::Status { code, body, .. } => {
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
    assert!(matches!(reply, Err(Error::Stream { .. })), "{reply:?}");
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
    assert!(matches!(reply, Err(Error::Connect { .. })), "{reply:?}");
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
    assert!(matches!(reply, Err(Error::Interrupted)), "{reply:?}");
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
            Error::Later {
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
    assert!(matches!(reply, Err(Error::Interrupted)), "{reply:?}");
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
    assert!(matches!(reply, Err(Error::Timeout { .. })), "{reply:?}");
    assert!(retries.is_empty());
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(2));
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
        matches!(error, Error::Status { code: 404, .. }),
        "{error:?}"
    );
    let error = list_models(&base, Duration::from_secs(2)).unwrap_err();
    assert!(matches!(error, Error::Stream { .. }), "{error:?}");
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
