//! MCP servers started by the real binary: the reference servers from npm and a server
//! written with the official Python SDK for the error cases. Tools appear as
//! `mcp__<server>__<tool>`, the gate asks unless a rule allows them, results are capped
//! and redacted, broken servers cost one line and never the session, and the servers'
//! processes are gone when nib exits.

use crate::support::deps::{Deps, deps};
use crate::support::fake::SeenResult;
use crate::support::*;
use serde_json::{Value, json};
use std::time::Duration;

/// The most bytes of one tool result the model ever sees (README: 12 KB).
const CLIP: usize = 12_288;

/// `MCP_TIMEOUT` for the tests: the Python SDK takes half a minute to import on a
/// machine loaded with parallel test runs; the default 30 s would make them flaky.
const START_MS: &str = "180000";

/// `Nib::against` with the start timeout above.
fn against(server: &FakeServer, protocol: Protocol) -> Nib {
    Nib::against(server, protocol)
        .trusted()
        .env("MCP_TIMEOUT", START_MS)
}

fn everything(d: &Deps) -> Value {
    json!({"command": d.everything, "args": ["stdio"]})
}

fn python(d: &Deps, extra: &[&str]) -> Value {
    let mut args = vec![json!(d.server_py)];
    args.extend(extra.iter().map(|a| json!(a)));
    json!({"command": d.python, "args": args})
}

fn mcp_json(nib: &Nib, servers: Value) {
    nib.put(".mcp.json", &json!({"mcpServers": servers}).to_string());
}

/// One call of `tool` with `args`, then "done"; `flags` after `-p`.
fn one_call(
    tool: &str,
    args: Value,
    flags: &[&str],
    setup: impl FnOnce(&Nib),
) -> (FakeServer, Output) {
    let server = FakeServer::start(vec![Reply::tool_call(tool, args), Reply::text("done")]);
    let nib = against(&server, Protocol::Anthropic)
        .args(["-p", "use the tool"])
        .args(flags)
        .timeout(240);
    setup(&nib);
    let out = nib.run();
    (server, out)
}

fn result(server: &FakeServer, out: &Output) -> SeenResult {
    let reqs = server.chat_requests();
    assert_eq!(reqs.len(), 2, "one tool round\n{out}");
    reqs[1].tool_results()[0].clone()
}

#[test]
fn everything_echo_runs_when_a_rule_allows_it() {
    let Some(d) = deps() else { return };
    let echo = json!({"message": "hello from nib"});
    for rule in [
        "mcp__everything",
        "mcp__everything__echo",
        "mcp__everything__*",
    ] {
        let (server, out) = one_call(
            "mcp__everything__echo",
            echo.clone(),
            &["--allowedTools", rule, "--output-format", "stream-json"],
            |nib| mcp_json(nib, json!({"everything": everything(d)})),
        );
        assert_eq!(out.code(), 0, "{out}");
        let init = &out.lines()[0];
        assert_eq!(init["subtype"], "init", "{out}");
        let listed = init["tools"].as_array().unwrap();
        assert!(listed.contains(&json!("mcp__everything__echo")), "{init}");
        assert_eq!(
            init["mcp_servers"],
            json!([{"name": "everything", "status": "connected"}]),
            "{init}"
        );
        let first = &server.chat_requests()[0];
        let names = first.tool_names();
        assert!(
            names.contains(&"mcp__everything__echo".to_string()),
            "{names:?}"
        );
        assert!(
            names.contains(&"bash".to_string()),
            "nib's own tools stay: {names:?}"
        );
        let tool = first.body["tools"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "mcp__everything__echo");
        assert_eq!(
            tool.unwrap()["input_schema"]["properties"]["message"]["type"],
            "string"
        );
        let r = result(&server, &out);
        assert!(
            !r.is_error && r.content.contains("hello from nib"),
            "{rule}: {r:?}"
        );
    }
}

#[test]
fn mcp_tools_ask_unless_allowed_and_deny_rules_win() {
    let Some(d) = deps() else { return };
    let echo = json!({"message": "hi"});
    let setup = |nib: &Nib| mcp_json(nib, json!({"everything": everything(d)}));
    // Headless: asking means refusing, and saying how to allow it.
    let (server, out) = one_call("mcp__everything__echo", echo.clone(), &[], setup);
    let r = result(&server, &out);
    assert!(
        r.is_error && r.content.contains("mcp__everything__echo"),
        "{r:?}"
    );
    // A rule for another server or tool does not allow it.
    let (server, out) = one_call(
        "mcp__everything__echo",
        echo.clone(),
        &["--allowedTools", "mcp__every,mcp__everything__get-sum"],
        setup,
    );
    assert!(result(&server, &out).is_error, "{out}");
    // A deny rule beats --yes.
    let (server, out) = one_call(
        "mcp__everything__echo",
        echo.clone(),
        &["--yes", "--disallowedTools", "mcp__everything__echo"],
        setup,
    );
    let r = result(&server, &out);
    assert!(r.is_error && r.content.contains("denied"), "{r:?}");
    // Control: --yes alone runs it.
    let (server, out) = one_call("mcp__everything__echo", echo, &["--yes"], setup);
    assert!(!result(&server, &out).is_error, "{out}");
}

#[test]
fn filesystem_server_reads_a_file() {
    let Some(d) = deps() else { return };
    let (server, out) = one_call(
        "mcp__fs__read_text_file",
        json!({"path": "notes.txt"}),
        &["--allowedTools", "mcp__fs"],
        |nib| {
            nib.put("notes.txt", "the meeting is at noon");
            let work = nib.work().canonicalize().unwrap();
            let fs = json!({"command": d.filesystem, "args": [work]});
            mcp_json(nib, json!({"fs": fs}));
        },
    );
    assert_eq!(out.code(), 0, "{out}");
    let r = result(&server, &out);
    assert!(r.content.contains("the meeting is at noon"), "{r:?}");
}

#[test]
fn a_server_that_crashes_mid_call_is_an_error_result_and_the_session_goes_on() {
    let Some(d) = deps() else { return };
    let server = FakeServer::start(vec![
        Reply::tool_call("mcp__py__crash", json!({})),
        Reply::tool_call("mcp__py__shout", json!({"text": "again"})),
        Reply::tool_call("bash", json!({"command": "echo still here"})),
        Reply::text("done"),
    ]);
    let nib = against(&server, Protocol::OpenAi)
        .args(["-p", "go", "--yes"])
        .timeout(240);
    mcp_json(&nib, json!({"py": python(d, &[])}));
    let out = nib.run();
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(out.stdout, "done\n");
    let results = server.chat_requests()[3].tool_results();
    assert!(
        results[0].content.contains("panic: the index is corrupt"),
        "{results:?}"
    );
    assert!(
        results[1].content.contains("failed"),
        "a dead server says so: {results:?}"
    );
    assert!(results[2].content.contains("still here"), "{results:?}");
}

#[test]
fn a_huge_result_is_capped_and_keeps_head_and_tail() {
    let Some(d) = deps() else { return };
    let (server, out) = one_call("mcp__py__huge", json!({}), &["--yes"], |nib| {
        mcp_json(nib, json!({"py": python(d, &[])}))
    });
    assert_eq!(out.code(), 0, "{out}");
    let r = result(&server, &out);
    assert!(r.content.len() <= CLIP, "{} bytes", r.content.len());
    assert!(
        r.content.starts_with("HEAD") && r.content.ends_with("TAIL"),
        "{:.100}",
        r.content
    );
    assert!(
        r.content.contains("omitted"),
        "the marker says what was cut"
    );
}

#[test]
fn noise_on_stdout_and_stderr_and_a_slow_initialize_are_tolerated() {
    let Some(d) = deps() else { return };
    let (server, out) = one_call("mcp__py__shout", json!({"text": "hi"}), &["--yes"], |nib| {
        mcp_json(
            nib,
            json!({"py": python(d, &["--noise", "--slow-init", "2"])}),
        )
    });
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(result(&server, &out).content, "HI");
    assert!(
        out.elapsed >= Duration::from_secs(2),
        "the first request waited for initialize"
    );
}

#[test]
fn broken_servers_cost_one_line_each_and_the_session_goes_on() {
    let Some(d) = deps() else { return };
    let (server, out) = one_call(
        "mcp__ok__shout",
        json!({"text": "fine"}),
        &["--yes"],
        |nib| {
            mcp_json(
                nib,
                json!({
                    "ok": python(d, &[]),
                    "dies": python(d, &["--fail-start"]),
                    "missing": {"command": "/nonexistent/mcp-server"},
                    "unset": {"command": "${NIB_TEST_NO_SUCH_VAR}"},
                }),
            )
        },
    );
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(result(&server, &out).content, "FINE");
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("MCP server"))
        .collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        out.stderr.contains("cannot open /nonexistent/db.sqlite"),
        "the reason from stderr: {out}"
    );
    assert!(out.stderr.contains("NIB_TEST_NO_SUCH_VAR"), "{out}");
    assert!(out.stderr.contains("/nonexistent/mcp-server"), "{out}");

    let (server, out) = one_call("bash", json!({"command": "echo ok"}), &["--yes"], |nib| {
        nib.put(".mcp.json", "{\"mcpServers\": {");
    });
    assert_eq!(out.code(), 0, "{out}");
    assert!(out.stderr.contains(".mcp.json is not valid JSON"), "{out}");
    assert!(result(&server, &out).content.contains("ok"));
}

#[test]
fn server_environment_has_no_provider_keys_and_expands_variables() {
    let Some(d) = deps() else { return };
    let server = FakeServer::start(vec![
        Reply::calls(vec![
            call("mcp__py__env", json!({"name": "ANTHROPIC_API_KEY"})),
            call("mcp__py__env", json!({"name": "TEAM"})),
            call("mcp__py__env", json!({"name": "REGION"})),
            call("mcp__py__env", json!({"name": "LEAKED"})),
            call("mcp__py__env", json!({"name": "GITHUB_TOKEN"})),
        ]),
        Reply::text("done"),
    ]);
    let nib = against(&server, Protocol::Anthropic)
        .args(["-p", "go", "--yes"])
        .env("TEAM", "blue")
        .env("GITHUB_TOKEN", "ghtok")
        .timeout(240);
    let mut py = python(d, &[]);
    py["env"] = json!({"REGION": "${NIB_TEST_REGION:-eu-west}", "LEAKED": "${ANTHROPIC_API_KEY}"});
    mcp_json(&nib, json!({"py": py}));
    let out = nib.run();
    assert_eq!(out.code(), 0, "{out}");
    let results: Vec<String> = server.chat_requests()[1]
        .tool_results()
        .into_iter()
        .map(|r| r.content)
        .collect();
    assert_eq!(results[0], "(unset)", "provider keys never reach a server");
    assert_eq!(results[1], "blue", "the user's environment does");
    assert_eq!(results[2], "eu-west", "${{VAR:-default}}");
    assert_eq!(
        results[3], "[REDACTED]",
        "nib's own key is masked in results"
    );
    assert_eq!(
        results[4], "ghtok",
        "a server's own token is the user's to pass"
    );
}

#[test]
fn sources_filters_and_strict_mode() {
    let Some(d) = deps() else { return };
    let server = FakeServer::start(vec![Reply::text("a"), Reply::text("b"), Reply::text("c")]);
    let nib = against(&server, Protocol::OpenAi).timeout(240);
    mcp_json(&nib, json!({"proj": python(d, &[])}));
    let user = json!({"mcpServers": {"user": python(d, &[])}});
    std::fs::write(nib.home().join(".claude.json"), user.to_string()).unwrap();
    let settings = json!({"mcp": {"proj": {"tools": ["shout", "env"]}}});
    std::fs::create_dir_all(nib.config_home().join("nib")).unwrap();
    std::fs::write(
        nib.config_home().join("nib/settings.json"),
        settings.to_string(),
    )
    .unwrap();
    let extra = json!({"mcpServers": {"cli": python(d, &[])}}).to_string();

    assert_eq!(nib.run_with(["-p", "x"]).code(), 0);
    let names = server.chat_requests()[0].tool_names();
    let mcp: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with("mcp__proj"))
        .collect();
    assert_eq!(
        mcp,
        ["mcp__proj__shout", "mcp__proj__env"],
        "filtered: {names:?}"
    );
    assert!(names.contains(&"mcp__user__crash".to_string()), "{names:?}");

    assert_eq!(nib.run_with(["-p", "x", "--mcp-config", &extra]).code(), 0);
    let names = server.chat_requests()[1].tool_names();
    assert!(
        names.iter().any(|n| n.starts_with("mcp__cli__"))
            && names.iter().any(|n| n.starts_with("mcp__proj__"))
    );

    assert_eq!(
        nib.run_with(["-p", "x", "--mcp-config", &extra, "--strict-mcp-config"])
            .code(),
        0
    );
    let names = server.chat_requests()[2].tool_names();
    let servers: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with("mcp__") && !n.starts_with("mcp__cli__"))
        .collect();
    assert!(servers.is_empty(), "strict: only --mcp-config: {names:?}");
}

#[test]
fn servers_and_their_children_are_stopped_when_nib_exits() {
    let Some(d) = deps() else { return };
    let server = FakeServer::start(vec![Reply::text("done")]);
    let nib = against(&server, Protocol::OpenAi)
        .args(["-p", "x"])
        .timeout(240);
    let pidfile = nib.work().join("child.pid");
    let script = format!(
        "sleep 1000 & echo $! > '{}'; exec '{}' '{}'",
        pidfile.display(),
        d.python.display(),
        d.server_py.display()
    );
    mcp_json(
        &nib,
        json!({"py": {"command": "sh", "args": ["-c", script]}}),
    );
    let out = nib.run();
    assert_eq!(out.code(), 0, "{out}");
    let pid = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .to_string();
    let alive = || {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z")
    };
    let gone = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        !alive()
    });
    assert!(gone, "the server's child {pid} outlived nib");
}

#[test]
fn without_mcp_nothing_waits_and_print_system_prompt_shows_schema_sizes() {
    let Some(d) = deps() else { return };
    let nib = Nib::new().trusted().env("MCP_TIMEOUT", START_MS).args([
        "--print-system-prompt",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--model",
        "m",
    ]);
    let out = nib.run();
    assert!(out.stdout.contains("tools"), "{out}");
    assert!(!out.stdout.contains("MCP server"), "{out}");
    mcp_json(&nib, json!({"everything": everything(d)}));
    let out = nib.run();
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains("MCP server everything"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("tools") && line.contains("bytes"), "{line}");
}

/// The Python server over streamable HTTP on a free loopback port; stopped on drop.
struct HttpServer {
    child: std::process::Child,
    url: String,
}

impl HttpServer {
    fn start(d: &Deps, json_replies: bool) -> HttpServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = std::process::Command::new(&d.python);
        cmd.arg(&d.server_py).args(["--http", &port.to_string()]);
        if json_replies {
            cmd.arg("--json");
        }
        let child = cmd
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the HTTP MCP server");
        // Uvicorn and the SDK take seconds to import on a loaded machine.
        let server = HttpServer {
            child,
            url: format!("http://127.0.0.1:{port}/mcp"),
        };
        let ready = (0..1200).any(|_| {
            std::thread::sleep(Duration::from_millis(50));
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        // On failure the server is dropped, and so stopped, with the panic.
        assert!(ready, "the HTTP MCP server did not listen on {port}");
        server
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn streamable_http_servers_with_sse_and_json_replies() {
    let Some(d) = deps() else { return };
    for json_replies in [false, true] {
        let web = HttpServer::start(d, json_replies);
        let config = json!({"mcpServers": {"web": {"type": "http", "url": web.url,
            "headers": {"X-Team": "${NIB_TEST_TEAM:-blue}"}}}});
        let (server, out) = one_call(
            "mcp__web__shout",
            json!({"text": "over http"}),
            &[
                "--allowedTools",
                "mcp__web",
                "--mcp-config",
                &config.to_string(),
            ],
            |_| {},
        );
        assert_eq!(out.code(), 0, "{out}");
        // The SDK refuses calls without the session id of the initialize reply.
        assert_eq!(
            result(&server, &out).content,
            "OVER HTTP",
            "json replies: {json_replies}"
        );
    }
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = json!({"mcpServers": {"gone": {"type": "http", "url": format!("http://127.0.0.1:{closed}/mcp")}}});
    let (server, out) = one_call(
        "bash",
        json!({"command": "echo ok"}),
        &["--yes", "--mcp-config", &config.to_string()],
        |_| {},
    );
    assert_eq!(out.code(), 0, "{out}");
    assert!(
        out.stderr.contains("MCP server gone failed: cannot reach"),
        "{out}"
    );
    assert!(result(&server, &out).content.contains("ok"));
}

#[test]
fn enabled_and_disabled_mcpjson_servers_are_honoured() {
    let Some(d) = deps() else { return };
    let server = FakeServer::start(vec![Reply::text("a")]);
    let nib = against(&server, Protocol::OpenAi)
        .args(["-p", "x"])
        .timeout(240);
    mcp_json(
        &nib,
        json!({"a": python(d, &[]), "b": python(d, &[]), "c": python(d, &[])}),
    );
    let settings = json!({"enabledMcpjsonServers": ["a", "b"], "disabledMcpjsonServers": ["b"]});
    nib.put(".claude/settings.json", &settings.to_string());
    assert_eq!(nib.run().code(), 0);
    let names = server.chat_requests()[0].tool_names();
    let servers: std::collections::BTreeSet<&str> = names
        .iter()
        .filter_map(|n| n.strip_prefix("mcp__")?.split("__").next())
        .collect();
    assert_eq!(servers.into_iter().collect::<Vec<_>>(), ["a"], "{names:?}");
}

#[test]
fn a_server_too_slow_to_start_is_given_up_on_and_stopped() {
    let Some(d) = deps() else { return };
    let server = FakeServer::start(vec![Reply::text("done")]);
    let nib = against(&server, Protocol::OpenAi)
        .args(["-p", "x"])
        .env("MCP_TIMEOUT", "1500")
        .timeout(240);
    let pidfile = nib.work().join("server.pid");
    let script = format!(
        "echo $$ > '{}'; exec '{}' '{}' --slow-init 60",
        pidfile.display(),
        d.python.display(),
        d.server_py.display()
    );
    mcp_json(
        &nib,
        json!({"slow": {"command": "sh", "args": ["-c", script]}}),
    );
    let out = nib.run();
    assert_eq!(out.code(), 0, "{out}");
    assert!(out.elapsed < Duration::from_secs(20), "{out}");
    // Given up on by the wait for the first request, or by its own request's deadline.
    assert!(out.stderr.contains("MCP server slow failed: "), "{out}");
    assert!(out.stderr.contains("within 1.5 s"), "{out}");
    let pid = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .to_string();
    let gone = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        stat.is_empty() || stat.contains(") Z")
    });
    assert!(gone, "the slow server {pid} outlived nib");
}

#[test]
fn images_and_resources_become_notes_and_sums_come_back() {
    let Some(d) = deps() else { return };
    let server = FakeServer::start(vec![
        Reply::calls(vec![
            call("mcp__everything__get-tiny-image", json!({})),
            call("mcp__everything__get-sum", json!({"a": 2, "b": 40})),
            call("mcp__everything__get-resource-links", json!({"count": 2})),
        ]),
        Reply::text("done"),
    ]);
    let nib = against(&server, Protocol::Anthropic)
        .args(["-p", "go", "--allowedTools", "mcp__everything"])
        .timeout(240);
    mcp_json(&nib, json!({"everything": everything(d)}));
    let out = nib.run();
    assert_eq!(out.code(), 0, "{out}");
    let results = server.chat_requests()[1].tool_results();
    assert!(
        results[0].content.contains("[image (image/png"),
        "{results:?}"
    );
    assert!(
        results[0].content.len() < 2_000,
        "no base64 reaches the model: {results:?}"
    );
    assert!(results[1].content.contains("42"), "{results:?}");
    assert!(
        results[2].content.contains("[resource link: "),
        "{results:?}"
    );
}

#[test]
fn servers_are_stopped_even_when_nib_is_killed() {
    let Some(d) = deps() else { return };
    let server = FakeServer::start(vec![Reply::hang()]);
    let nib = against(&server, Protocol::OpenAi)
        .args(["-p", "x"])
        .timeout(240);
    let pidfile = nib.work().join("server.pid");
    let script = format!(
        "sleep 1000 & echo $! > '{}'; exec '{}' '{}'",
        pidfile.display(),
        d.python.display(),
        d.server_py.display()
    );
    mcp_json(
        &nib,
        json!({"py": {"command": "sh", "args": ["-c", script]}}),
    );
    let running = nib.spawn();
    // The request goes out once the server has listed its tools.
    assert!(
        server.wait_for_requests(1, Duration::from_secs(200)),
        "no request"
    );
    let pid = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .to_string();
    let alive = || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        !stat.is_empty() && !stat.contains(") Z")
    };
    assert!(alive(), "control: the server's child runs while nib does");
    running.kill9();
    let gone = (0..250).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        !alive()
    });
    // The server itself ends when its stdin closes; its child only by the watchdog.
    assert!(gone, "the server's child {pid} outlived a killed nib");
}
