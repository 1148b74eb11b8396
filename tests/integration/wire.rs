//! The model wire, end to end: nib against the fake server over both protocols, with
//! the quirks of local servers (fragments, arguments as objects, missing ids, extra
//! fields) and the failures a real server produces (429, 529, 500, 400, cut streams,
//! error events, invalid arguments, calls cut by the token limit).

use crate::support::fake::SeenResult;
use crate::support::*;
use serde_json::{Value, json};
use std::time::Duration;

/// nib in headless text mode against `server`, allowed to run tools.
fn nib_yes(server: &FakeServer, p: Protocol) -> Nib {
    Nib::against(server, p).args(["-p", "do the task", "--yes"])
}

/// The tool results nib sent with its `n`th chat request (counting from 0).
fn results_of(server: &FakeServer, n: usize) -> Vec<SeenResult> {
    let reqs = server.chat_requests();
    assert!(
        reqs.len() > n,
        "expected a request #{n}, got {}",
        reqs.len()
    );
    reqs[n].tool_results()
}

fn error_body(p: Protocol, kind: &str, message: &str) -> String {
    match p {
        Protocol::OpenAi | Protocol::Responses => {
            json!({"error": {"message": message, "type": kind, "code": null}})
        }
        Protocol::Anthropic => {
            json!({"type": "error", "error": {"type": kind, "message": message}})
        }
    }
    .to_string()
}

/// A retried failure must end as the scripted success, never as the partial text.
fn assert_recovered_or_failed(out: &Output, server: &FakeServer, recovered: &str) {
    assert!(
        !out.stdout.contains("cut off"),
        "partial text is no answer\n{out}"
    );
    let reqs = server.chat_requests().len();
    match out.code() {
        0 => {
            assert_eq!(out.stdout, format!("{recovered}\n"), "{out}");
            assert_eq!(reqs, 2, "retried once");
        }
        1 => {
            assert!(
                !out.stderr.trim().is_empty(),
                "the failure is explained\n{out}"
            );
            assert_eq!(reqs, 1, "failed without retrying");
        }
        _ => panic!("unexpected exit\n{out}"),
    }
}

both_protocols! {
    fn text_reply(p: Protocol) {
        let server = FakeServer::start(vec![Reply::text("Hello, world. All good.")]);
        let out = Nib::against(&server, p).args(["-p", "say hello"]).run();
        assert_eq!(out.code(), 0, "{out}");
        assert_eq!(out.stdout, "Hello, world. All good.\n");
        let reqs = server.chat_requests();
        assert_eq!(reqs.len(), 1);
        let r = &reqs[0];
        assert_eq!(r.method, "POST");
        assert_eq!(r.path.split('?').next(), Some(p.path()));
        assert_eq!(r.body["model"], "fake-model");
        assert_eq!(r.body["stream"], true);
        assert!(r.last_user_text().contains("say hello"), "{:?}", r.last_user_text());
        let tools = r.tool_names();
        for name in ["bash", "read", "write", "edit", "grep", "glob"] {
            assert!(tools.iter().any(|t| t == name), "{name} offered: {tools:?}");
        }
        if p == Protocol::Anthropic {
            assert_eq!(r.header("anthropic-version"), Some("2023-06-01"));
            assert!(r.body["max_tokens"].as_u64().is_some_and(|n| n > 0));
        }
    }

    fn fragmented_parallel_calls(p: Protocol) {
        let one = json!({"command": "echo one > one.txt"});
        let two = json!({"command": "echo two > two.txt"});
        let server = FakeServer::start(vec![
            Reply::calls(vec![call("bash", one.clone()), call("bash", two.clone())])
                .with_text("Making two files."),
            Reply::text("Both made."),
        ]);
        let nib = nib_yes(&server, p);
        let out = nib.run();
        assert_eq!(out.code(), 0, "{out}");
        assert_eq!(out.stdout, "Both made.\n");
        assert_eq!(nib.read("one.txt").as_deref(), Some("one\n"));
        assert_eq!(nib.read("two.txt").as_deref(), Some("two\n"));

        let second = &server.chat_requests()[1];
        let results = second.tool_results();
        let ids: Vec<&str> = results.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, [p.call_id(1), p.call_id(2)]);
        assert!(results.iter().all(|r| r.content.starts_with("exit status: 0")), "{results:?}");
        let calls = second.assistant_calls();
        assert_eq!(calls.len(), 2);
        assert_eq!((calls[0].id.clone(), calls[0].input.clone()), (p.call_id(1), one));
        assert_eq!((calls[1].id.clone(), calls[1].input.clone()), (p.call_id(2), two));
    }

    fn arguments_as_object(p: Protocol) {
        let args = json!({"command": "echo obj > obj.txt"});
        let server = FakeServer::start(vec![
            Reply::tool_call("bash", args.clone()).args_as_object(),
            Reply::text("Done."),
        ]);
        let nib = nib_yes(&server, p);
        let out = nib.run();
        assert_eq!(out.code(), 0, "{out}");
        assert_eq!(nib.read("obj.txt").as_deref(), Some("obj\n"));
        let second = &server.chat_requests()[1];
        assert_eq!(second.assistant_calls()[0].input, args);
        assert!(second.tool_results()[0].content.starts_with("exit status: 0"));
        if p == Protocol::OpenAi {
            // Replayed the standard way, whatever the server sent.
            let assistant = second.body["messages"].as_array().unwrap().iter()
                .find(|m| m["role"] == "assistant").unwrap().clone();
            assert!(assistant["tool_calls"][0]["function"]["arguments"].is_string());
        }
    }

    fn missing_call_id(p: Protocol) {
        let server = FakeServer::start(vec![
            Reply::tool_call("bash", json!({"command": "echo id > id.txt"})).without_ids(),
            Reply::text("Done."),
        ]);
        let nib = nib_yes(&server, p);
        let out = nib.run();
        assert_eq!(out.code(), 0, "{out}");
        assert_eq!(nib.read("id.txt").as_deref(), Some("id\n"));
        let second = &server.chat_requests()[1];
        let call_id = second.assistant_calls()[0].id.clone();
        assert!(!call_id.is_empty(), "nib makes up an id");
        assert_eq!(second.tool_results()[0].id, call_id, "the result answers that id");
    }

    fn whole_call_in_one_chunk(p: Protocol) {
        let server = FakeServer::start(vec![
            Reply::calls(vec![
                call("bash", json!({"command": "echo a > a.txt"})),
                call("bash", json!({"command": "echo b > b.txt"})),
            ]).one_chunk(),
            Reply::text("Done."),
        ]);
        let nib = nib_yes(&server, p);
        let out = nib.run();
        assert_eq!(out.code(), 0, "{out}");
        assert_eq!(nib.read("a.txt").as_deref(), Some("a\n"));
        assert_eq!(nib.read("b.txt").as_deref(), Some("b\n"));
        assert_eq!(results_of(&server, 1).len(), 2);
    }

    fn unknown_fields_ignored(p: Protocol) {
        let server = FakeServer::start(vec![
            Reply::tool_call("bash", json!({"command": "echo x > x.txt"}))
                .with_text("Working.").extra_fields(),
            Reply::text("Finished.").extra_fields(),
        ]);
        let nib = nib_yes(&server, p);
        let out = nib.run();
        assert_eq!(out.code(), 0, "{out}");
        assert_eq!(out.stdout, "Finished.\n");
        assert_eq!(nib.read("x.txt").as_deref(), Some("x\n"));
    }

    fn rate_limited_waits_retry_after(p: Protocol) {
        let body = error_body(p, "rate_limit_error", "slow down");
        let server = FakeServer::start(vec![
            Reply::status(429, &[("retry-after", "1")], &body),
            Reply::text("Recovered."),
        ]);
        let out = Nib::against(&server, p).args(["-p", "hi"]).run();
        assert_eq!(out.code(), 0, "{out}");
        assert_eq!(out.stdout, "Recovered.\n");
        let reqs = server.chat_requests();
        assert_eq!(reqs.len(), 2);
        let waited = reqs[1].at.duration_since(reqs[0].at);
        assert!(waited >= Duration::from_millis(950), "retry-after: 1 respected, waited {waited:?}");
    }

    fn overloaded_529_then_success(p: Protocol) {
        let body = error_body(p, "overloaded_error", "Overloaded");
        let server = FakeServer::start(vec![Reply::status(529, &[], &body), Reply::text("Recovered.")]);
        let out = Nib::against(&server, p).args(["-p", "hi"]).run();
        assert_eq!(out.code(), 0, "{out}");
        assert_eq!(out.stdout, "Recovered.\n");
        assert_eq!(server.chat_requests().len(), 2);
    }

    fn server_error_500_then_success(p: Protocol) {
        let body = error_body(p, "api_error", "internal");
        let server = FakeServer::start(vec![Reply::status(500, &[], &body), Reply::text("Recovered.")]);
        let out = Nib::against(&server, p).args(["-p", "hi"]).run();
        assert_eq!(out.code(), 0, "{out}");
        assert_eq!(out.stdout, "Recovered.\n");
        assert_eq!(server.chat_requests().len(), 2);
    }

    fn bad_request_not_retried(p: Protocol) {
        let body = error_body(p, "invalid_request_error", "max_tokens: too large for this model");
        let server = FakeServer::start(vec![Reply::status(400, &[], &body), Reply::text("never sent")]);
        let out = Nib::against(&server, p).args(["-p", "hi"]).run();
        assert_eq!(out.code(), 1, "{out}");
        assert_eq!(server.chat_requests().len(), 1, "a 400 is not retried");
        assert_eq!(server.remaining(), 1);
        assert!(!out.stdout.contains("never sent"));
        assert!(out.stderr.contains("400"), "{out}");
        assert!(out.stderr.contains("max_tokens: too large"), "the server's reason is shown\n{out}");
    }

    fn a_document_instead_of_a_stream_is_not_retried(p: Protocol) {
        // A wrong base URL: the server answers 200 with a JSON document (or a web
        // page), not an event stream. Retrying would get the same document.
        let server = FakeServer::start(vec![
            Reply::status(200, &[], r#"{"status":"ok"}"#),
            Reply::text("never sent"),
        ]);
        let out = Nib::against(&server, p).args(["-p", "hi"]).run();
        assert_eq!(out.code(), 1, "{out}");
        assert_eq!(server.chat_requests().len(), 1, "not retried");
        assert!(out.stderr.contains("instead of an event stream"), "{out}");
        assert!(out.stderr.contains("check --base-url"), "{out}");
        // The control: the same server's stream is read as a reply.
        let out = Nib::against(&server, p).args(["-p", "hi"]).run();
        assert_eq!(out.code(), 0, "{out}");
        assert_eq!(out.stdout, "never sent\n");
    }

    fn cut_stream_is_not_an_answer(p: Protocol) {
        let server = FakeServer::start(vec![Reply::cut(), Reply::text("Recovered after cut.")]);
        let out = Nib::against(&server, p).args(["-p", "hi"]).run();
        assert_recovered_or_failed(&out, &server, "Recovered after cut.");
    }

    fn error_event_mid_stream(p: Protocol) {
        let server = FakeServer::start(vec![Reply::error_event(), Reply::text("Recovered after error.")]);
        let out = Nib::against(&server, p).args(["-p", "hi"]).run();
        assert_recovered_or_failed(&out, &server, "Recovered after error.");
    }

    fn invalid_json_arguments_never_run(p: Protocol) {
        let server = FakeServer::start(vec![
            Reply::invalid_args("bash", r#"{"command": "touch ran.txt"#),
            Reply::text("Understood."),
        ]);
        let nib = nib_yes(&server, p);
        let out = nib.run();
        assert_eq!(out.code(), 0, "a bad call is the model's problem, not the run's\n{out}");
        assert_eq!(out.stdout, "Understood.\n");
        assert!(!nib.work().join("ran.txt").exists(), "the command never ran");
        let results = results_of(&server, 1);
        assert_eq!(results.len(), 1, "{results:?}");
        assert_eq!(results[0].id, p.call_id(1));
        assert!(!results[0].content.starts_with("exit status"), "{results:?}");
        assert!(results[0].content.to_lowercase().contains("json"), "the model is told why: {results:?}");
        if p == Protocol::Anthropic {
            assert!(results[0].is_error);
        }
    }

    fn call_cut_by_length_never_runs(p: Protocol) {
        let server = FakeServer::start(vec![
            Reply::tool_call("bash", json!({"command": "touch ran.txt"})).cut_by_length(),
            Reply::text("Understood."),
        ]);
        let nib = nib_yes(&server, p);
        let out = nib.run();
        assert!(!nib.work().join("ran.txt").exists(), "a cut call never runs\n{out}");
        assert_eq!(out.code(), 0, "{out}");
        assert_eq!(server.chat_requests().len(), 2, "the model is told and asked again");
        let results = results_of(&server, 1);
        assert!(results.iter().all(|r| !r.content.starts_with("exit status")), "{results:?}");
    }

    fn usage_is_reported(p: Protocol) {
        let text = "Some answer text here.";
        let server = FakeServer::start(vec![Reply::text(text)]);
        let out = Nib::against(&server, p).args(["-p", "hi", "--output-format", "json"]).run();
        assert_eq!(out.code(), 0, "{out}");
        let r = &server.chat_requests()[0];
        if p == Protocol::OpenAi {
            assert_eq!(r.body["stream_options"]["include_usage"], true, "asks for usage");
        }
        let usage = &out.json()["usage"];
        assert_eq!(usage["input_tokens"], r.input_tokens());
        assert_eq!(usage["output_tokens"], (text.len() / 4) as u64);
    }

    fn slow_stream_completes(p: Protocol) {
        let server = FakeServer::start(vec![Reply::text("Slow but steady wins.").slow(150)]);
        let out = Nib::against(&server, p).args(["-p", "hi"]).run();
        assert_eq!(out.code(), 0, "{out}");
        assert_eq!(out.stdout, "Slow but steady wins.\n");
    }

    fn garbage_stream_fails_cleanly(p: Protocol) {
        let garbage = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\ndata: {not json at all\n\n";
        let server = FakeServer::start(vec![Reply::raw(garbage)]);
        let out = Nib::against(&server, p).args(["-p", "hi"]).run();
        match out.code() {
            // Retried: the empty queue answers "DONE".
            0 => assert_eq!(out.stdout, "DONE\n", "{out}"),
            1 => assert!(!out.stderr.trim().is_empty(), "{out}"),
            _ => panic!("neither an answer nor a clean error\n{out}"),
        }
    }
}

#[test]
fn anthropic_base_url_with_v1_is_tolerated() {
    let server = FakeServer::start(vec![Reply::text("ok")]);
    let out = Nib::new()
        .args([
            "-p",
            "hi",
            "--provider",
            "anthropic",
            "--model",
            "fake-model",
        ])
        .args(["--base-url", &server.base_v1()])
        .env("ANTHROPIC_API_KEY", "sk-fake-test")
        .run();
    assert_eq!(out.code(), 0, "{out}");
    let paths: Vec<String> = server.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths.len(), 1);
    assert_eq!(paths[0].split('?').next(), Some("/v1/messages"));
}

#[test]
fn openai_tool_result_round_trip_shape() {
    let server = FakeServer::start(vec![
        Reply::tool_call("bash", json!({"command": "echo hi"})),
        Reply::text("Done."),
    ]);
    let out = nib_yes(&server, Protocol::OpenAi).run();
    assert_eq!(out.code(), 0, "{out}");
    let second = &server.chat_requests()[1];
    let messages = second.body["messages"].as_array().unwrap();
    let tool = messages.iter().find(|m| m["role"] == "tool").unwrap();
    assert_eq!(tool["tool_call_id"], "call_fake_1");
    let assistant = messages.iter().find(|m| m["role"] == "assistant").unwrap();
    assert_eq!(assistant["tool_calls"][0]["type"], "function");
    assert_eq!(assistant["tool_calls"][0]["function"]["name"], "bash");
    let content: Value = tool["content"].clone();
    assert!(
        content
            .as_str()
            .is_some_and(|c| c.starts_with("exit status: 0")),
        "{content}"
    );
}
