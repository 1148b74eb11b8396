//! Providers with quirks, end to end: each played by the fake server from its documented
//! wire format (`support/providers.rs`), which rejects what the real one rejects. Each
//! case runs a two-turn tool task, checks the first and the follow-up request field by
//! field, resumes the journal with `-c` on the same provider and on another protocol,
//! and takes a history from another protocol.

use crate::support::fake::{MODEL, Recorded};
use crate::support::providers::{Emulation, reasoning_text, signature};
use crate::support::*;
use serde_json::{Value, json};
use std::fs;

/// The task every case runs: a call, then an answer.
fn script() -> Vec<Reply> {
    vec![
        Reply::tool_call("bash", json!({"command": "echo hi > out.txt"})).with_text("Writing."),
        Reply::text("Written."),
    ]
}

/// One provider under test: how nib reaches it.
struct Case {
    emulation: Emulation,
    protocol: Protocol,
    /// settings.json for the run (a profile cannot be told from 127.0.0.1).
    settings: &'static str,
    model: &'static str,
}

impl Case {
    fn new(emulation: Emulation, protocol: Protocol) -> Case {
        Case {
            emulation,
            protocol,
            settings: "{}",
            model: MODEL,
        }
    }

    fn settings(self, settings: &'static str) -> Case {
        Case { settings, ..self }
    }

    fn model(self, model: &'static str) -> Case {
        Case { model, ..self }
    }

    /// A sandbox with the settings and keys every run of this case shares.
    fn nib(&self) -> Nib {
        let nib = Nib::new()
            .env("ANTHROPIC_API_KEY", "sk-fake-test")
            .env("NIB_API_KEY", "azure-key-0123456789");
        let dir = nib.config_home().join("nib");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("settings.json"), self.settings).unwrap();
        nib
    }

    fn base(&self, server: &FakeServer) -> String {
        match (self.emulation, self.protocol) {
            (Emulation::Azure, _) => format!(
                "{}/openai/deployments/{}?api-version=2025-01-01-preview",
                server.base(),
                self.model
            ),
            (_, Protocol::Anthropic) => server.base(),
            _ => server.base_v1(),
        }
    }

    fn args(&self, server: &FakeServer, prompt: &str) -> Vec<String> {
        let base = self.base(server);
        let args = ["--model", self.model, "--provider", self.protocol.flag()];
        let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        args.extend([
            "--base-url".into(),
            base,
            "-p".into(),
            prompt.into(),
            "--yes".into(),
        ]);
        args
    }

    /// The two-turn task on a fresh emulating server: the server and the sandbox.
    fn run(&self) -> (FakeServer, Nib) {
        let server = FakeServer::emulating(self.emulation, script());
        let nib = self.nib();
        let out = nib.run_with(self.args(&server, "make out.txt"));
        assert_eq!(out.code(), 0, "{out}");
        assert_eq!(out.stdout, "Written.\n");
        assert_eq!(nib.read("out.txt").as_deref(), Some("hi\n"));
        (server, nib)
    }

    /// `-c` on the same server, with another tool turn: everything owed from both turns
    /// must come back.
    fn resume_same(&self, server: &FakeServer, nib: &Nib) -> Recorded {
        server.push(Reply::tool_call(
            "bash",
            json!({"command": "echo more >> out.txt"}),
        ));
        server.push(Reply::text("Again."));
        let mut args = self.args(server, "once more");
        args.push("-c".into());
        let out = nib.run_with(args);
        assert_eq!(out.code(), 0, "{out}");
        assert_eq!(out.stdout, "Again.\n");
        assert_eq!(nib.read("out.txt").as_deref(), Some("hi\nmore\n"));
        server.chat_requests().pop().unwrap()
    }

    /// `-c` on a plain server speaking `other`: the history goes over, without this
    /// provider's data.
    fn resume_elsewhere(&self, nib: &Nib, other: Protocol) -> Recorded {
        let server = FakeServer::start(vec![Reply::text("Elsewhere.")]);
        let base = match other {
            Protocol::Anthropic => server.base(),
            _ => server.base_v1(),
        };
        let out = nib.run_with([
            "--model",
            MODEL,
            "--provider",
            other.flag(),
            "--base-url",
            &base,
            "-p",
            "and now",
            "-c",
        ]);
        assert_eq!(out.code(), 0, "{out}");
        assert_eq!(out.stdout, "Elsewhere.\n");
        let req = server.chat_requests().pop().unwrap();
        let calls = req.assistant_calls();
        assert!(
            !calls.is_empty(),
            "the earlier calls are replayed: {:?}",
            req.body
        );
        assert_eq!(calls[0].input, json!({"command": "echo hi > out.txt"}));
        let results: Vec<String> = req.tool_results().into_iter().map(|r| r.id).collect();
        let ids: Vec<String> = calls.into_iter().map(|c| c.id).collect();
        assert_eq!(ids, results, "each result answers its call");
        req
    }

    /// A session from a plain server speaking `other`, continued here: the provider's
    /// fallback for a history without its data must be accepted.
    fn take_foreign(&self, other: Protocol) -> Recorded {
        let nib = self.nib();
        let plain = FakeServer::start(script());
        let base = match other {
            Protocol::Anthropic => plain.base(),
            _ => plain.base_v1(),
        };
        let out = nib.run_with([
            "--model",
            MODEL,
            "--provider",
            other.flag(),
            "--base-url",
            &base,
            "-p",
            "make it",
            "--yes",
        ]);
        assert_eq!(out.code(), 0, "{out}");
        let server = FakeServer::emulating(self.emulation, vec![Reply::text("Taken over.")]);
        let mut args = self.args(&server, "go on");
        args.push("-c".into());
        let out = nib.run_with(args);
        assert_eq!(
            out.code(),
            0,
            "the provider accepts the foreign history\n{out}"
        );
        assert_eq!(out.stdout, "Taken over.\n");
        server.chat_requests().pop().unwrap()
    }
}

/// Every journal record of the sandbox's one session.
fn journal(nib: &Nib) -> Vec<Value> {
    let files = nib.journal_files();
    assert_eq!(files.len(), 1, "{files:?}");
    let text = fs::read_to_string(&files[0]).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The assistant messages of a chat request.
fn assistants(req: &Recorded) -> Vec<Value> {
    let all = req.messages().iter();
    all.filter(|m| m["role"] == "assistant").cloned().collect()
}

/// The assistant messages of a chat request that carry tool calls.
fn call_turns(req: &Recorded) -> Vec<Value> {
    let all = assistants(req).into_iter();
    all.filter(|m| m.get("tool_calls").is_some()).collect()
}

#[test]
fn deepseek_gets_its_reasoning_back() {
    let case =
        Case::new(Emulation::DeepSeek, Protocol::OpenAi).settings(r#"{"profile": "deepseek"}"#);
    let (server, nib) = case.run();
    let reqs = server.chat_requests();
    assert_eq!(reqs.len(), 2, "no request was rejected");
    let first = &reqs[0].body;
    assert_eq!(first["stream_options"], json!({"include_usage": true}));
    assert!(first["max_tokens"].is_u64());
    assert_eq!(
        first["messages"].as_array().unwrap().len(),
        2,
        "system and user"
    );
    let follow = assistants(&reqs[1]);
    assert_eq!(follow.len(), 1);
    assert_eq!(follow[0]["content"], "Writing.");
    assert_eq!(follow[0]["tool_calls"][0]["id"], "call_fake_1");
    let expected = reasoning_text(&["call_fake_1".into()]);
    assert_eq!(follow[0]["reasoning_content"], expected);
    // Journaled, so a resumed session has it.
    let records = journal(&nib);
    let reply = records.iter().find(|r| r["type"] == "assistant").unwrap();
    assert_eq!(reply["opaque"][0]["data"]["reasoning_content"], expected);

    let again = case.resume_same(&server, &nib);
    let turns = call_turns(&again);
    assert_eq!(turns[0]["reasoning_content"], expected);
    assert_eq!(
        turns[1]["reasoning_content"],
        reasoning_text(&["call_fake_2".into()])
    );

    let elsewhere = case.resume_elsewhere(&nib, Protocol::Anthropic);
    assert!(!String::from_utf8_lossy(&elsewhere.raw_body).contains("\"reasoning_content\""));

    let taken = case.take_foreign(Protocol::Anthropic);
    assert_eq!(
        assistants(&taken)[0]["reasoning_content"],
        "",
        "DeepSeek's fallback"
    );
}

#[test]
fn deepseek_without_its_reasoning_is_the_documented_400() {
    // Control: the emulation really rejects a call turn without reasoning_content.
    let server = FakeServer::emulating(Emulation::DeepSeek, vec![]);
    let plain = FakeServer::start(script());
    let nib = Nib::new();
    let base = plain.base_v1();
    let out = nib.run_with([
        "--model",
        MODEL,
        "--provider",
        "openai",
        "--base-url",
        &base,
        "-p",
        "x",
        "--yes",
    ]);
    assert_eq!(out.code(), 0, "{out}");
    // No profile: nib does not know it talks to DeepSeek, so sends none.
    let out = nib.run_with([
        "--model",
        MODEL,
        "--provider",
        "openai",
        "--base-url",
        &server.base_v1(),
        "-p",
        "y",
        "-c",
    ]);
    assert_eq!(out.code(), 1, "{out}");
    assert!(
        out.stderr
            .contains("reasoning_content` in the thinking mode must be passed back"),
        "{out}"
    );
    assert_eq!(server.chat_requests().len(), 1, "a 400 is not retried");
}

#[test]
fn gemini_gets_each_thought_signature_back() {
    let case = Case::new(Emulation::Gemini, Protocol::OpenAi).settings(r#"{"profile": "gemini"}"#);
    let (server, nib) = case.run();
    let reqs = server.chat_requests();
    assert_eq!(reqs.len(), 2);
    assert!(reqs[0].body["messages"][1].get("tool_calls").is_none());
    let call = &assistants(&reqs[1])[0]["tool_calls"][0];
    assert_eq!(call["id"], "call_fake_1");
    assert_eq!(
        call["extra_content"],
        json!({"google": {"thought_signature": signature("call_fake_1")}}),
        "byte for byte, though it looks like a key"
    );
    let again = case.resume_same(&server, &nib);
    let calls: Vec<Value> = call_turns(&again)
        .iter()
        .map(|m| m["tool_calls"][0].clone())
        .collect();
    assert_eq!(
        calls[0]["extra_content"]["google"]["thought_signature"],
        signature("call_fake_1")
    );
    assert_eq!(
        calls[1]["extra_content"]["google"]["thought_signature"],
        signature("call_fake_2")
    );
    let elsewhere = case.resume_elsewhere(&nib, Protocol::Responses);
    assert!(!String::from_utf8_lossy(&elsewhere.raw_body).contains("\"thought_signature\""));
    let taken = case.take_foreign(Protocol::Anthropic);
    let call = &assistants(&taken)[0]["tool_calls"][0];
    assert_eq!(
        call["extra_content"]["google"]["thought_signature"],
        "skip_thought_signature_validator"
    );
}

#[test]
fn openrouter_gets_its_reasoning_details_back() {
    let case =
        Case::new(Emulation::OpenRouter, Protocol::OpenAi).settings(r#"{"profile": "openrouter"}"#);
    let (server, nib) = case.run();
    let reqs = server.chat_requests();
    assert_eq!(reqs.len(), 2);
    let owed = server.owed();
    let follow = &assistants(&reqs[1])[0];
    assert_eq!(
        follow["reasoning_details"], owed["call_fake_1"],
        "fragments merged, whole"
    );
    assert_eq!(
        follow["reasoning_details"][0]["text"],
        reasoning_text(&["call_fake_1".into()])
    );
    let again = case.resume_same(&server, &nib);
    assert_eq!(
        call_turns(&again)[1]["reasoning_details"],
        owed_after(&server, "call_fake_2")
    );
    let elsewhere = case.resume_elsewhere(&nib, Protocol::Anthropic);
    assert!(!String::from_utf8_lossy(&elsewhere.raw_body).contains("\"reasoning_details\""));
    case.take_foreign(Protocol::Responses);
}

fn owed_after(server: &FakeServer, id: &str) -> Value {
    server.owed()[id].clone()
}

#[test]
fn anthropic_thinking_blocks_go_back_before_the_tool_use() {
    let case = Case::new(Emulation::AnthropicThinking, Protocol::Anthropic);
    let (server, nib) = case.run();
    let reqs = server.chat_requests();
    assert_eq!(reqs.len(), 2, "no request was rejected");
    assert!(
        reqs[0].body.get("thinking").is_none(),
        "no --effort: thinking not asked for"
    );
    let reply = &assistants(&reqs[1])[0];
    let blocks = reply["content"].as_array().unwrap();
    let types: Vec<&str> = blocks.iter().map(|b| b["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["thinking", "redacted_thinking", "text", "tool_use"]);
    assert_eq!(blocks[0]["signature"], signature("toolu_fake_1"));
    assert_eq!(
        blocks[0]["thinking"],
        reasoning_text(&["toolu_fake_1".into()])
    );
    assert_eq!(blocks[1]["data"], "RD+toolu_fake_1/redacted==");
    let records = journal(&nib);
    let raw = fs::read_to_string(&nib.journal_files()[0]).unwrap();
    assert!(
        raw.contains(&signature("toolu_fake_1")),
        "journaled unredacted: {records:?}"
    );
    case.resume_same(&server, &nib);
    let elsewhere = case.resume_elsewhere(&nib, Protocol::OpenAi);
    let raw = String::from_utf8_lossy(&elsewhere.raw_body).to_string();
    assert!(
        !raw.contains("\"signature\"") && !raw.contains("SIGNATURE"),
        "{raw}"
    );
    case.take_foreign(Protocol::OpenAi);
}

#[test]
fn a_changed_signature_is_refused_by_the_emulation() {
    // Control for the test above: the same history with the signature redacted (what
    // the journal's redaction would have done) is refused with Anthropic's error.
    let case = Case::new(Emulation::AnthropicThinking, Protocol::Anthropic);
    let (server, nib) = case.run();
    let path = &nib.journal_files()[0];
    let text = fs::read_to_string(path).unwrap();
    fs::write(path, text.replace(&signature("toolu_fake_1"), "[redacted]")).unwrap();
    server.push(Reply::text("never"));
    let mut args = case.args(&server, "more");
    args.push("-c".into());
    let out = nib.run_with(args);
    assert_eq!(out.code(), 1, "{out}");
    assert!(
        out.stderr
            .contains("Invalid `signature` in `thinking` block"),
        "{out}"
    );
}

#[test]
fn secrets_typed_by_the_user_are_still_redacted_in_the_journal() {
    // The other half of the control: redaction is on, it just leaves signatures alone.
    let server = FakeServer::start(vec![Reply::text("ok")]);
    let nib = Nib::against(&server, Protocol::OpenAi);
    let secret = "sk-user0123456789abcdefghijklmnop";
    let out = nib.run_with(["-p", &format!("my key is {secret}")]);
    assert_eq!(out.code(), 0, "{out}");
    let raw = fs::read_to_string(&nib.journal_files()[0]).unwrap();
    assert!(!raw.contains(secret), "{raw}");
}

#[test]
fn mistral_gets_no_stream_options_nine_character_ids_and_no_user_after_tool() {
    let case =
        Case::new(Emulation::Mistral, Protocol::OpenAi).settings(r#"{"profile": "mistral"}"#);
    let (server, nib) = case.run();
    let reqs = server.chat_requests();
    assert_eq!(reqs.len(), 2, "no request was rejected");
    assert!(reqs[0].body.get("stream_options").is_none());
    let follow = &assistants(&reqs[1])[0];
    assert_eq!(follow["tool_calls"][0]["id"], "fake00001");
    case.resume_same(&server, &nib);
    // A turn stopped by --max-turns leaves a tool → user seam: a note bridges it.
    server.push(Reply::tool_call(
        "bash",
        json!({"command": "echo cut >> out.txt"}),
    ));
    let mut args = case.args(&server, "stop after one");
    args.extend(["-c".into(), "--max-turns".into(), "1".into()]);
    let out = nib.run_with(args);
    assert_eq!(out.code(), 1, "{out}");
    server.push(Reply::text("Resumed."));
    let mut args = case.args(&server, "go on");
    args.push("-c".into());
    let out = nib.run_with(args);
    assert_eq!(out.code(), 0, "{out}");
    let last = server.chat_requests().pop().unwrap();
    let messages = last.messages();
    let tail: Vec<&str> = messages
        .iter()
        .rev()
        .take(4)
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(tail, ["user", "assistant", "tool", "assistant"]);
    assert_eq!(
        messages[messages.len() - 2]["content"],
        "(the turn ended here)"
    );
    case.resume_elsewhere(&nib, Protocol::Anthropic);
    // From Anthropic: toolu_fake_1 is mapped to 9 characters, the same way for the call
    // and its result.
    let taken = case.take_foreign(Protocol::Anthropic);
    let id = assistants(&taken)[0]["tool_calls"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(id.len(), 9, "{id}");
    assert_eq!(taken.tool_results()[0].id, id);
}

#[test]
fn mistral_without_a_profile_learns_from_the_422() {
    let server = FakeServer::emulating(Emulation::Mistral, vec![Reply::text("Bonjour.")]);
    let out = Nib::against(&server, Protocol::OpenAi)
        .args(["-p", "hi"])
        .run();
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(out.stdout, "Bonjour.\n");
    let reqs = server.chat_requests();
    assert_eq!(
        reqs.len(),
        2,
        "rejected once, then sent without stream_options"
    );
    assert!(reqs[0].body.get("stream_options").is_some());
    assert!(reqs[1].body.get("stream_options").is_none());
    assert_eq!(
        json!(reqs[0].body["messages"]),
        json!(reqs[1].body["messages"]),
        "only that field changed"
    );
}

#[test]
fn azure_deployment_url_key_header_and_max_completion_tokens() {
    let case = Case::new(Emulation::Azure, Protocol::OpenAi).model("prod-gpt5");
    let (server, nib) = case.run();
    case.take_foreign(Protocol::Responses);
    let reqs = server.chat_requests();
    // Rejected once for max_tokens, then max_completion_tokens for the rest of the run.
    assert_eq!(
        reqs.len(),
        3,
        "{:?}",
        reqs.iter().map(|r| &r.path).collect::<Vec<_>>()
    );
    for r in &reqs {
        assert_eq!(
            r.path,
            "/openai/deployments/prod-gpt5/chat/completions?api-version=2025-01-01-preview"
        );
        assert_eq!(r.header("api-key"), Some("azure-key-0123456789"));
        assert_eq!(r.header("authorization"), None);
    }
    assert!(reqs[0].body["max_tokens"].is_u64());
    for r in &reqs[1..] {
        assert!(r.body.get("max_tokens").is_none());
        assert_eq!(r.body["max_completion_tokens"], reqs[0].body["max_tokens"]);
    }
    assert_eq!(
        reqs[2].tool_results().len(),
        1,
        "the follow-up carries the result"
    );
    case.resume_elsewhere(&nib, Protocol::Anthropic);
    // A new run starts from settings: max_tokens_field skips the rejected request.
    let server = FakeServer::emulating(Emulation::Azure, vec![Reply::text("ok")]);
    let out = nib.run_with(case.args(&server, "hi"));
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(
        server.chat_requests().len(),
        2,
        "a new session learns again"
    );
    let set = Case::new(Emulation::Azure, Protocol::OpenAi)
        .model("prod-gpt5")
        .settings(r#"{"max_tokens_field": "max_completion_tokens"}"#);
    let server = FakeServer::emulating(Emulation::Azure, vec![Reply::text("ok")]);
    let out = set.nib().run_with(set.args(&server, "hi"));
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(
        server.chat_requests().len(),
        1,
        "the setting needs no lesson"
    );
}

#[test]
fn groq_usage_is_read_from_x_groq() {
    let case = Case::new(Emulation::Groq, Protocol::OpenAi).settings(r#"{"profile": "groq"}"#);
    let server = FakeServer::emulating(Emulation::Groq, vec![Reply::text("Fast.")]);
    let nib = case.nib();
    let mut args = case.args(&server, "hi");
    args.extend(["--output-format".into(), "json".into()]);
    let out = nib.run_with(args);
    assert_eq!(out.code(), 0, "{out}");
    let req = &server.chat_requests()[0];
    assert_eq!(out.json()["usage"]["input_tokens"], req.input_tokens());
    let (server, nib) = case.run();
    assert_eq!(server.chat_requests().len(), 2);
    case.resume_same(&server, &nib);
    case.resume_elsewhere(&nib, Protocol::Anthropic);
}

#[test]
fn responses_api_sends_reasoning_items_back_statelessly() {
    let case = Case::new(Emulation::ResponsesReasoning, Protocol::Responses).model("gpt-5-codex");
    let (server, nib) = case.run();
    let reqs = server.chat_requests();
    assert_eq!(reqs.len(), 2, "no request was rejected");
    let first = &reqs[0].body;
    assert_eq!(reqs[0].path, "/v1/responses");
    assert_eq!(first["store"], false);
    assert_eq!(first["include"], json!(["reasoning.encrypted_content"]));
    assert_eq!(first["model"], "gpt-5-codex");
    assert!(
        first["instructions"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    assert!(first["max_output_tokens"].is_u64());
    assert_eq!(
        first["input"],
        json!([{"role": "user", "content": "make out.txt"}])
    );
    assert_eq!(first["tools"][0]["type"], "function");
    assert!(first["tools"][0]["name"].is_string() && first["tools"][0].get("function").is_none());
    let input = reqs[1].body["input"].as_array().unwrap().clone();
    let types: Vec<&str> = input
        .iter()
        .map(|i| i["type"].as_str().unwrap_or("user"))
        .collect();
    assert_eq!(
        types,
        [
            "user",
            "reasoning",
            "message",
            "function_call",
            "function_call_output"
        ]
    );
    assert_eq!(
        input[1],
        server.owed()["call_resp_1"],
        "the reasoning item, whole"
    );
    assert_eq!(input[1]["encrypted_content"], signature("call_resp_1"));
    assert_eq!(input[3]["id"], "fc_call_resp_1");
    assert_eq!(input[3]["call_id"], "call_resp_1");
    assert_eq!(input[4]["call_id"], "call_resp_1");
    assert!(
        input[4]["output"]
            .as_str()
            .unwrap()
            .starts_with("exit status: 0")
    );
    case.resume_same(&server, &nib);
    let elsewhere = case.resume_elsewhere(&nib, Protocol::Anthropic);
    assert!(!String::from_utf8_lossy(&elsewhere.raw_body).contains("\"encrypted_content\""));
    let taken = case.take_foreign(Protocol::OpenAi);
    let call = taken
        .messages()
        .iter()
        .find(|i| i["type"] == "function_call")
        .unwrap();
    assert!(call.get("id").is_none(), "no item id it never had: {call}");
}

#[test]
fn responses_effort_and_usage() {
    let server = FakeServer::start(vec![Reply::text("Thought hard.")]);
    let out = Nib::against(&server, Protocol::Responses)
        .args(["-p", "hi", "--effort", "high", "--output-format", "json"])
        .run();
    assert_eq!(out.code(), 0, "{out}");
    let req = &server.chat_requests()[0];
    assert_eq!(req.body["reasoning"], json!({"effort": "high"}));
    assert_eq!(req.body["include"], json!(["reasoning.encrypted_content"]));
    assert_eq!(out.json()["usage"]["input_tokens"], req.input_tokens());
    assert_eq!(out.json()["result"], "Thought hard.");
    let bad = Nib::against(&server, Protocol::Responses)
        .args(["-p", "hi", "--effort", "max"])
        .run();
    assert_eq!(bad.code(), 2, "{bad}");
    assert!(
        bad.stderr.contains("--effort must be low, medium or high"),
        "{bad}"
    );
}

#[test]
fn effort_maps_to_anthropic_thinking_and_chat_reasoning_effort() {
    let server = FakeServer::start(vec![Reply::text("a"), Reply::text("b"), Reply::text("c")]);
    let run = |p: Protocol, model: &str| {
        let out = Nib::against(&server, p)
            .args(["-p", "hi", "--effort", "low", "--model", model])
            .run();
        assert_eq!(out.code(), 0, "{out}");
        server.chat_requests().pop().unwrap().body
    };
    let body = run(Protocol::Anthropic, MODEL);
    assert_eq!(
        body["thinking"],
        json!({"type": "enabled", "budget_tokens": 1024})
    );
    let body = run(Protocol::OpenAi, "o4-mini");
    assert_eq!(body["reasoning_effort"], "low");
    let body = run(Protocol::OpenAi, MODEL);
    assert!(
        body.get("reasoning_effort").is_none(),
        "not for a model that takes none"
    );
}

// Stop reasons: the real one in the result, a warning in text mode, one "continue".

/// A headless run over `p` with JSON output.
fn json_run(server: &FakeServer, p: Protocol, prompt: &str) -> Output {
    Nib::against(server, p)
        .args(["-p", prompt, "--output-format", "json"])
        .run()
}

#[test]
fn a_reply_cut_by_the_cap_gets_one_continue() {
    for p in Protocol::ALL {
        let server = FakeServer::start(vec![
            Reply::text("The first half, ").cut_by_length(),
            Reply::text("and the rest."),
        ]);
        let out = json_run(&server, p, "write a lot");
        assert_eq!(out.code(), 0, "{p:?}: {out}");
        let result = out.json();
        assert_eq!(result["result"], "The first half, and the rest.", "{p:?}");
        assert_eq!(result["stop_reason"], "end_turn");
        assert_eq!(result["num_turns"], 2);
        let reqs = server.chat_requests();
        assert_eq!(reqs.len(), 2, "{p:?}");
        assert!(
            reqs[1]
                .last_user_text()
                .contains("cut off by the output token limit"),
            "{p:?}"
        );
        assert!(out.stderr.contains("output token limit"), "warned: {out}");
    }
}

#[test]
fn a_reply_cut_twice_stops_with_max_tokens() {
    for p in Protocol::ALL {
        let server = FakeServer::start(vec![
            Reply::text("Cut once.").cut_by_length(),
            Reply::text("Cut again.").cut_by_length(),
            Reply::text("never asked"),
        ]);
        let out = json_run(&server, p, "write a lot");
        assert_eq!(out.code(), 1, "{p:?}: {out}");
        let result = out.json();
        assert_eq!(result["stop_reason"], "max_tokens", "{p:?}");
        assert_eq!(result["is_error"], true);
        assert_eq!(result["result"], "Cut once.Cut again.");
        assert!(
            result["errors"][0]
                .as_str()
                .unwrap()
                .contains("max_output_tokens")
        );
        assert_eq!(server.remaining(), 1, "only one continue");
        // Text mode: the text on stdout, the warning on stderr.
        let server = FakeServer::start(vec![
            Reply::text("A.").cut_by_length(),
            Reply::text("B.").cut_by_length(),
        ]);
        let out = Nib::against(&server, p).args(["-p", "go"]).run();
        assert_eq!((out.code(), out.stdout.as_str()), (1, "A.B.\n"), "{out}");
        assert!(out.stderr.contains("raise max_output_tokens"), "{out}");
    }
}

#[test]
fn refusals_are_kept_shown_and_not_replayed() {
    for p in Protocol::ALL {
        let server = FakeServer::start(vec![
            Reply::refusal("I can't help with that."),
            Reply::text("Sure, here is a poem."),
        ]);
        let nib = Nib::against(&server, p);
        let out = nib.run_with(["-p", "something bad", "--output-format", "json"]);
        assert_eq!(out.code(), 1, "{p:?}: {out}");
        let result = out.json();
        assert_eq!(result["stop_reason"], "refusal", "{p:?}");
        assert_eq!(result["result"], "I can't help with that.");
        assert!(result["errors"][0].as_str().unwrap().contains("declined"));
        let out = nib.run_with(["-p", "write a poem", "-c"]);
        assert_eq!(out.code(), 0, "{p:?}: {out}");
        let next = &server.chat_requests()[1];
        let raw = String::from_utf8_lossy(&next.raw_body);
        assert!(
            !raw.contains("something bad") && !raw.contains("can't help"),
            "{p:?}: {raw}"
        );
        assert!(raw.contains("write a poem"));
    }
    // Control: a reply that is not a refusal is replayed as it was.
    let server = FakeServer::start(vec![Reply::text("I can help."), Reply::text("ok")]);
    let nib = Nib::against(&server, Protocol::Anthropic);
    assert_eq!(nib.run_with(["-p", "something fine"]).code(), 0);
    assert_eq!(nib.run_with(["-p", "more", "-c"]).code(), 0);
    let raw = String::from_utf8_lossy(&server.chat_requests()[1].raw_body).to_string();
    assert!(
        raw.contains("something fine") && raw.contains("I can help."),
        "{raw}"
    );
}

#[test]
fn context_window_exceeded_is_reported() {
    let server = FakeServer::start(vec![Reply::text("So much").window_full()]);
    let out = json_run(&server, Protocol::Anthropic, "hi");
    assert_eq!(out.code(), 1, "{out}");
    assert_eq!(out.json()["stop_reason"], "model_context_window_exceeded");
    assert_eq!(
        server.chat_requests().len(),
        1,
        "no continue into a full window"
    );
}

#[test]
fn stream_json_carries_each_replys_stop_reason() {
    for p in Protocol::ALL {
        let server = FakeServer::start(vec![
            Reply::tool_call("bash", json!({"command": "true"})),
            Reply::text("Done."),
        ]);
        let out = Nib::against(&server, p)
            .args(["-p", "go", "--yes", "--output-format", "stream-json"])
            .run();
        assert_eq!(out.code(), 0, "{p:?}: {out}");
        let lines = out.lines();
        let stops: Vec<&Value> = lines
            .iter()
            .filter(|l| l["type"] == "assistant")
            .map(|l| &l["message"]["stop_reason"])
            .collect();
        assert_eq!(stops, [&json!("tool_use"), &json!("end_turn")], "{p:?}");
        assert_eq!(lines.last().unwrap()["stop_reason"], "end_turn");
    }
}

// Errors: billing is not retried; a finished stream without its end marker is complete;
// the server's own limits are learned once.

#[test]
fn billing_errors_are_not_retried_and_say_billing() {
    let quota = json!({"error": {"message": "You exceeded your current quota, please check your plan and billing details.",
        "type": "insufficient_quota", "param": null, "code": "insufficient_quota"}});
    for (code, body) in [
        (429, quota.to_string()),
        (
            402,
            r#"{"error":{"message":"Insufficient credits"}}"#.to_string(),
        ),
    ] {
        let server = FakeServer::start(vec![
            Reply::status(code, &[("retry-after", "1")], &body),
            Reply::text("never"),
        ]);
        let out = Nib::against(&server, Protocol::OpenAi)
            .args(["-p", "hi"])
            .run();
        assert_eq!(out.code(), 1, "{out}");
        assert_eq!(server.chat_requests().len(), 1, "{code}: not retried");
        assert!(out.stderr.contains("billing"), "{out}");
        assert!(!out.stderr.contains("rate limited"), "{out}");
    }
    // Control: a plain 429 is still a rate limit, waited out and retried.
    let limit = json!({"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}});
    let server = FakeServer::start(vec![
        Reply::status(429, &[("retry-after", "0")], &limit.to_string()),
        Reply::text("ok"),
    ]);
    let out = Nib::against(&server, Protocol::OpenAi)
        .args(["-p", "hi"])
        .run();
    assert_eq!((out.code(), server.chat_requests().len()), (0, 2), "{out}");
}

#[test]
fn a_stream_that_ends_after_its_finish_reason_is_complete() {
    for p in Protocol::BOTH {
        let server = FakeServer::start(vec![
            Reply::text("All said.").without_end_marker(),
            Reply::text("never"),
        ]);
        let out = Nib::against(&server, p).args(["-p", "hi"]).run();
        assert_eq!(
            (out.code(), out.stdout.as_str()),
            (0, "All said.\n"),
            "{p:?}: {out}"
        );
        assert_eq!(server.chat_requests().len(), 1, "{p:?}: not sent again");
    }
    // Control: cut before the finish reason, it is retried.
    let server = FakeServer::start(vec![Reply::cut(), Reply::text("Recovered.")]);
    let out = Nib::against(&server, Protocol::OpenAi)
        .args(["-p", "hi"])
        .run();
    assert_eq!((out.code(), server.chat_requests().len()), (0, 2), "{out}");
}

#[test]
fn unsupported_max_tokens_switches_once_and_is_remembered() {
    let body = json!({"error": {"message": "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
        "type": "invalid_request_error", "param": "max_tokens", "code": "unsupported_parameter"}});
    let server = FakeServer::start(vec![
        Reply::status(400, &[], &body.to_string()),
        Reply::tool_call("bash", json!({"command": "true"})),
        Reply::text("Done."),
    ]);
    let out = Nib::against(&server, Protocol::OpenAi)
        .args(["-p", "go", "--yes", "--model", "prod-gpt5"])
        .run();
    assert_eq!(out.code(), 0, "{out}");
    let reqs = server.chat_requests();
    assert_eq!(reqs.len(), 3);
    assert!(reqs[0].body["max_tokens"].is_u64());
    for r in &reqs[1..] {
        assert!(
            r.body.get("max_tokens").is_none(),
            "remembered for the session"
        );
        assert_eq!(r.body["max_completion_tokens"], reqs[0].body["max_tokens"]);
    }
    // Control: the same answer twice is an error, not a loop.
    let server = FakeServer::start(vec![
        Reply::status(400, &[], &body.to_string()),
        Reply::status(
            400,
            &[],
            &body
                .to_string()
                .replace("'max_tokens'", "'max_completion_tokens'"),
        ),
        Reply::text("never"),
    ]);
    let out = Nib::against(&server, Protocol::OpenAi)
        .args(["-p", "go"])
        .run();
    assert_eq!((out.code(), server.chat_requests().len()), (1, 2), "{out}");
}

#[test]
fn a_context_limit_400_clamps_once_or_names_the_setting() {
    let vllm = json!({"object": "error", "message": "This model's maximum context length is 8192 tokens. However, you requested 8192 output tokens and your prompt contains at least 1200 input tokens, for a total of at least 9392 tokens. Please reduce the length of the input prompt or the number of requested output tokens.",
        "type": "BadRequestError", "param": null, "code": 400});
    let settings = r#"{"max_output_tokens": 8192}"#;
    let server = FakeServer::start(vec![
        Reply::status(400, &[], &vllm.to_string()),
        Reply::text("Fits."),
    ]);
    let nib = Nib::against(&server, Protocol::OpenAi).args(["-p", "hi"]);
    let dir = nib.config_home().join("nib");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("settings.json"), settings).unwrap();
    let out = nib.run();
    assert_eq!(out.code(), 0, "{out}");
    let reqs = server.chat_requests();
    assert_eq!(reqs[0].body["max_tokens"], 8192);
    assert_eq!(reqs[1].body["max_tokens"], 8192 - 1200 - 64);
    // Without the numbers, nib cannot clamp: the error names the setting.
    let bare =
        json!({"error": {"message": "context length exceeded", "code": "context_length_exceeded"}});
    let server = FakeServer::start(vec![Reply::status(400, &[], &bare.to_string())]);
    let out = Nib::against(&server, Protocol::OpenAi)
        .args(["-p", "hi"])
        .run();
    assert_eq!((out.code(), server.chat_requests().len()), (1, 1), "{out}");
    assert!(out.stderr.contains("max_output_tokens"), "{out}");
}
