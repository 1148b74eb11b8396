//! Configuration nib cannot use stops it with one line, never silently: a base URL
//! with a fragment or a query that is not plain `name=value` pairs, a settings file that is JSON but not an object, an
//! `--mcp-config` file that is not there, and `--settings` that is not JSON. Each has a
//! control showing the same run works when the input is sound.

use crate::support::fake::MODEL;
use crate::support::*;
use serde_json::json;

/// A headless run with the model named, so nothing else is probed.
fn run(extra: &[&str]) -> Nib {
    Nib::new().args(["--model", MODEL, "-p", "hi"]).args(extra)
}

/// Writes nib's own settings file.
fn settings(nib: &Nib, text: &str) {
    let path = nib.config_home().join("nib/settings.json");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn a_base_url_with_a_query_or_fragment_is_refused_and_nothing_is_sent() {
    let server = FakeServer::start(vec![Reply::text("ok")]);
    let plain = server.base_v1();
    for url in [
        format!("{plain}#@api.openai.com"),
        format!("{plain}?x=@api.openai.com"),
        format!("{plain}?"),
    ] {
        let out = run(&["--base-url", &url]).run();
        assert_eq!(out.code(), 2, "{url}: {out}");
        assert_eq!(out.stderr.lines().count(), 1, "{url}: {out}");
        assert!(out.stderr.contains("#fragment, or a ?query"), "{out}");
    }
    assert!(server.requests().is_empty(), "{:?}", server.requests());
    // Controls: the same URL without them is used, and so is a plain `name=value`
    // query (Azure's `?api-version=`), which stays at the end of the request's URL.
    let out = run(&["--base-url", &plain]).run();
    assert_eq!((out.code(), out.stdout.trim()), (0, "ok"), "{out}");
    let server = FakeServer::start(vec![Reply::text("ok")]);
    let versioned = format!("{}?api-version=1", server.base_v1());
    let out = run(&["--base-url", &versioned]).run();
    assert_eq!((out.code(), out.stdout.trim()), (0, "ok"), "{out}");
    let paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    assert!(
        paths.contains(&"/v1/chat/completions?api-version=1".to_string()),
        "{paths:?}"
    );
}

#[test]
fn a_query_stays_at_the_end_when_the_model_is_looked_up() {
    // No --model: nib asks the server's model list, under the base URL's path.
    let server = FakeServer::start(vec![Reply::text("ok")]);
    let versioned = format!("{}?api-version=1", server.base_v1());
    let out = Nib::new()
        .args(["-p", "hi", "--base-url", &versioned])
        .run();
    assert_eq!((out.code(), out.stdout.trim()), (0, "ok"), "{out}");
    let paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths.first().map(String::as_str),
        Some("/v1/models?api-version=1"),
        "{paths:?}"
    );
}

#[test]
fn a_settings_file_that_is_not_an_object_is_one_line_error() {
    let server = FakeServer::start(vec![Reply::text("ok")]);
    for text in ["[]", "5", "\"model\"", "{"] {
        let nib = run(&["--base-url", &server.base_v1()]);
        settings(&nib, text);
        let out = nib.run();
        assert_eq!(out.code(), 1, "{text}: {out}");
        assert_eq!(out.stderr.lines().count(), 1, "{text}: {out}");
        assert!(out.stderr.contains("settings.json"), "{out}");
        assert!(out.stderr.contains("fix or remove it"), "{out}");
    }
    assert!(server.requests().is_empty(), "{:?}", server.requests());
    // Control: an object is read.
    let nib = run(&["--base-url", &server.base_v1()]);
    settings(&nib, &json!({"terse": true}).to_string());
    let out = nib.run();
    assert_eq!((out.code(), out.stdout.trim()), (0, "ok"), "{out}");
}

#[test]
fn a_missing_mcp_config_file_is_a_usage_error() {
    let server = FakeServer::start(vec![Reply::text("ok")]);
    let base = server.base_v1();
    let out = run(&["--base-url", &base, "--mcp-config", "/nonexistent.json"]).run();
    assert_eq!(out.code(), 2, "{out}");
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
    assert!(
        out.stderr
            .starts_with("nib: --mcp-config: cannot read /nonexistent.json"),
        "{out}"
    );
    assert!(server.requests().is_empty(), "{:?}", server.requests());
    // Control: a file that exists (with no servers) and inline JSON both run.
    let nib = run(&["--base-url", &base, "--mcp-config", "servers.json"]);
    nib.put("servers.json", &json!({"mcpServers": {}}).to_string());
    let out = nib.run();
    assert_eq!((out.code(), out.stdout.trim()), (0, "ok"), "{out}");
    let server = FakeServer::start(vec![Reply::text("ok")]);
    let inline = json!({"mcpServers": {}}).to_string();
    let out = run(&["--base-url", &server.base_v1(), "--mcp-config", &inline]).run();
    assert_eq!((out.code(), out.stdout.trim()), (0, "ok"), "{out}");
}

#[test]
fn settings_that_are_not_json_name_the_flag_once() {
    let out = run(&["--settings", "{bad"]).run();
    assert_eq!(out.code(), 2, "{out}");
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
    assert!(
        out.stderr.starts_with("nib: --settings is not valid JSON"),
        "{out}"
    );
    assert_eq!(out.stderr.matches("--settings").count(), 1, "{out}");
    // Control: a file keeps its name after the flag.
    let nib = run(&["--settings", "extra.json"]);
    nib.put("extra.json", "{bad");
    let out = nib.run();
    assert_eq!(out.code(), 2, "{out}");
    assert!(
        out.stderr
            .starts_with("nib: --settings: extra.json is not valid JSON"),
        "{out}"
    );
}
