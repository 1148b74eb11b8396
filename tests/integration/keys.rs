//! Where a key goes: the host a vendor key is checked against is the host the request
//! is sent to, because both come from one URL parser; a base URL that reads differently
//! to different parsers (a backslash, user info) or is not http(s) is refused.

use crate::support::fake::MODEL;
use crate::support::*;
use std::fs;

const KEY: &str = "sk-openai-secret-0123456789";

/// Whether any request that reached the server carried the key.
fn key_seen(server: &FakeServer) -> bool {
    server.requests().iter().any(|r| {
        r.headers.iter().any(|(_, v)| v.contains(KEY))
            || String::from_utf8_lossy(&r.raw_body).contains(KEY)
    })
}

/// A headless OpenAI-protocol run with the user's OpenAI key in the environment.
fn with_key() -> Nib {
    Nib::new()
        .args(["--model", MODEL, "--provider", "openai", "-p", "hi"])
        .env("OPENAI_API_KEY", KEY)
}

#[test]
fn a_base_url_that_hides_its_host_is_refused_and_gets_no_key() {
    let server = FakeServer::start(vec![Reply::text("ok"); 4]);
    let port = server.addr().port();
    let attacks = [
        format!(r"http://127.0.0.1:{port}\@api.openai.com/v1"),
        format!(r"http://127.0.0.1:{port}\\@api.openai.com/v1"),
        format!("http://api.openai.com@127.0.0.1:{port}/v1"),
        format!("http://u:p@127.0.0.1:{port}/v1"),
        "file:///etc/passwd".to_string(),
    ];
    for url in &attacks {
        let out = with_key().args(["--base-url", url]).run();
        assert_eq!(out.code(), 2, "{url}: {out}");
        assert_eq!(out.stderr.lines().count(), 1, "{url}: {out}");
        assert!(out.stderr.starts_with("nib: --base-url"), "{out}");
        let out = with_key().env("NIB_BASE_URL", url).run();
        assert_eq!(out.code(), 2, "{url}: {out}");
        assert!(out.stderr.starts_with("nib: NIB_BASE_URL"), "{out}");
        let nib = with_key();
        let settings = nib.config_home().join("nib/settings.json");
        fs::create_dir_all(settings.parent().unwrap()).unwrap();
        fs::write(
            &settings,
            serde_json::json!({ "base_url": url }).to_string(),
        )
        .unwrap();
        let out = nib.run();
        assert_eq!(out.code(), 2, "{url}: {out}");
        assert!(
            out.stderr.starts_with("nib: base_url in settings.json"),
            "{out}"
        );
    }
    assert!(server.requests().is_empty(), "{:?}", server.requests());
    assert!(!key_seen(&server));

    // Controls: a plain base URL works, and gets the key only when the key is for it.
    let plain = server.base_v1();
    let out = with_key().args(["--base-url", &plain]).run();
    assert_eq!((out.code(), out.stdout.trim()), (0, "ok"), "{out}");
    assert!(!key_seen(&server), "the key went to a server it is not for");
    let out = with_key()
        .args(["--base-url", &plain])
        .env("OPENAI_BASE_URL", &plain)
        .run();
    assert_eq!((out.code(), out.stdout.trim()), (0, "ok"), "{out}");
    assert!(key_seen(&server), "the key did not reach its own server");
}

/// A redirect from the key's own server is not followed: the key (`x-api-key`, which
/// an HTTP client does not strip like `authorization`) never reaches the new host.
#[test]
fn a_redirect_does_not_carry_the_key_elsewhere() {
    let elsewhere = FakeServer::start(vec![Reply::text("ok")]);
    let target = format!("{}/v1/messages", elsewhere.base());
    let own = FakeServer::start(vec![Reply::status(302, &[("location", &target)], "")]);
    let out = Nib::new()
        .args(["--model", MODEL, "--provider", "anthropic", "-p", "hi"])
        .env("ANTHROPIC_API_KEY", KEY)
        .env("ANTHROPIC_BASE_URL", own.base())
        .run();
    assert_eq!(out.code(), 1, "{out}");
    assert!(out.stderr.contains("nib does not follow"), "{out}");
    assert!(out.stderr.contains(&target), "{out}");
    assert!(
        key_seen(&own),
        "the control: the key went to its own server"
    );
    assert!(
        elsewhere.requests().is_empty(),
        "{:?}",
        elsewhere.requests()
    );
}
