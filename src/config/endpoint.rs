//! Which model server to talk to, with which key: flags, then environment, then nib's
//! settings, then a probe of the usual local server ports.
//!
//! A key is only sent to the endpoint it belongs to, and nothing here reads a
//! repository's files (no `.env`), so a repo cannot redirect nib's traffic or
//! credentials. Base URLs are read by the parser the HTTP client uses (`url`, through
//! ureq), so the host a key is checked against is the host the request goes to.

use super::EnvFn;
use super::settings::Settings;
use crate::cli::{Args, Error, parse_provider};
use crate::model::{self, CapField, Endpoint, Options, Profile, Provider, host_of};
use std::sync::mpsc;
use std::time::Duration;
use url::{Origin, Url};

/// Local servers nib looks for when nothing is configured: llama.cpp (8080, and 8081
/// where `scripts/local-model` puts it), Ollama, LM Studio, vLLM.
pub const LOCAL_PORTS: [u16; 5] = [8080, 8081, 11434, 1234, 8000];
/// A loopback server answers in a few ms; anything slower is not worth waiting for.
const PROBE_TIMEOUT: Duration = Duration::from_millis(400);

const ANTHROPIC_URL: &str = "https://api.anthropic.com";
const OPENAI_URL: &str = "https://api.openai.com/v1";
const OPENROUTER_URL: &str = "https://openrouter.ai/api/v1";
const DEFAULT_ANTHROPIC_MODEL: &str = "claude-sonnet-4-5";

/// How nib found its endpoint, for messages and the journal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Flags,
    Env,
    Settings,
    Probe,
}

/// The resolved endpoint and where it came from.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub endpoint: Endpoint,
    pub source: Source,
}

/// Picks the endpoint. `probe` finds a local server (injected so this stays testable).
/// Unless a protocol was named, OpenAI's models that exist only on the Responses API
/// get it. Nothing configured and no server found is `Error::Setup`; a base URL nib
/// will not send requests to is `Error::Usage`.
pub fn resolve_endpoint(
    args: &Args,
    env: EnvFn,
    settings: &Settings,
    probe: &dyn Fn() -> Option<(String, Vec<String>)>,
) -> Result<Resolved, Error> {
    let named =
        args.provider.is_some() || env("NIB_PROVIDER").is_some() || settings.provider.is_some();
    let mut resolved = resolve_any(args, env, settings, probe)?;
    let e = &mut resolved.endpoint;
    if !named
        && e.provider == Provider::OpenAi
        && host_of(&e.base_url) == host_of(OPENAI_URL)
        && responses_only(&e.model)
    {
        e.provider = Provider::OpenAiResponses;
    }
    Ok(resolved)
}

/// OpenAI models served only on `/v1/responses`: the codex family and the `-pro` ones.
fn responses_only(model: &str) -> bool {
    let pro = ["o1-pro", "o3-pro", "gpt-5-pro"]
        .iter()
        .any(|p| model.starts_with(p));
    model.contains("codex") || pro
}

/// How requests are shaped for this endpoint: its profile (settings `profile` beats the
/// host), `--effort`, and settings `max_tokens_field` (beats the model-name guess).
pub fn options(endpoint: &Endpoint, args: &Args, settings: &Settings) -> Result<Options, String> {
    let mut options = Options::for_endpoint(endpoint);
    options.effort = args.effort;
    if let Some(name) = &settings.profile {
        let names: Vec<&str> = Profile::ALL.iter().map(|p| p.name()).collect();
        options.profile = Profile::from_name(name).ok_or_else(|| {
            format!(
                "settings profile {name:?} is not one of {}; fix settings.json",
                names.join(", ")
            )
        })?;
        options.stream_options = options.profile != Profile::Mistral;
    }
    if let Some(name) = &settings.max_tokens_field {
        options.cap_field = CapField::from_name(name).ok_or_else(|| {
            format!(
                "settings max_tokens_field {name:?} must be max_tokens or max_completion_tokens; fix settings.json"
            )
        })?;
    }
    Ok(options)
}

fn resolve_any(
    args: &Args,
    env: EnvFn,
    settings: &Settings,
    probe: &dyn Fn() -> Option<(String, Vec<String>)>,
) -> Result<Resolved, Error> {
    let provider = args
        .provider
        .or_else(|| env("NIB_PROVIDER").and_then(|p| parse_provider(&p)))
        .or_else(|| settings.provider.as_deref().and_then(parse_provider));
    let model = args
        .model
        .clone()
        .or_else(|| env("NIB_MODEL"))
        .or_else(|| settings.model.clone());

    // An explicit base URL: flags, NIB_BASE_URL, settings; and how messages name it.
    let explicit = [
        (args.base_url.clone(), Source::Flags, "--base-url"),
        (env("NIB_BASE_URL"), Source::Env, "NIB_BASE_URL"),
        (
            settings.base_url.clone(),
            Source::Settings,
            "base_url in settings.json",
        ),
    ]
    .into_iter()
    .find_map(|(url, src, origin)| url.map(|u| (u, src, origin)));
    if let Some((text, source, origin)) = explicit {
        let url = base_url(&text, origin)?;
        let provider = provider.unwrap_or_else(|| infer_provider(&url));
        let key = env("NIB_API_KEY")
            .or_else(|| settings.api_key_env.as_ref().and_then(|name| env(name)))
            .or_else(|| vendor_key(provider, &url, env));
        let model = model.unwrap_or_default();
        return Ok(found(source, provider, url.as_str(), key, model));
    }

    // A vendor key in the environment (the user's own shell).
    let key = env("ANTHROPIC_API_KEY").or_else(|| env("ANTHROPIC_AUTH_TOKEN"));
    let wants = |p: Provider| provider.is_none() || provider == Some(p);
    if wants(Provider::Anthropic) && key.is_some() {
        let url = env("ANTHROPIC_BASE_URL").unwrap_or_else(|| ANTHROPIC_URL.into());
        let url = base_url(&url, "ANTHROPIC_BASE_URL")?;
        let model = model
            .or_else(|| env("ANTHROPIC_MODEL"))
            .unwrap_or_else(|| DEFAULT_ANTHROPIC_MODEL.into());
        return Ok(found(
            Source::Env,
            Provider::Anthropic,
            url.as_str(),
            key,
            model,
        ));
    }
    // OpenAI's key (to its URL or OPENAI_BASE_URL), a server OPENAI_BASE_URL names, OpenRouter's key.
    let openai = match (env("OPENAI_API_KEY"), env("OPENAI_BASE_URL")) {
        (Some(key), url) => Some((
            url.unwrap_or_else(|| OPENAI_URL.into()),
            "OPENAI_BASE_URL",
            Some(key),
        )),
        (None, Some(url)) => Some((url, "OPENAI_BASE_URL", None)),
        (None, None) => env("OPENROUTER_API_KEY")
            .map(|key| (OPENROUTER_URL.into(), "the OpenRouter URL", Some(key))),
    };
    if let (true, Some((url, origin, key))) = (wants(Provider::OpenAi), openai) {
        let url = base_url(&url, origin)?;
        let model = model.unwrap_or_default();
        return Ok(found(
            Source::Env,
            Provider::OpenAi,
            url.as_str(),
            key,
            model,
        ));
    }

    // Nothing configured: a local server, if one is running.
    if provider != Some(Provider::Anthropic)
        && let Some((url, models)) = probe()
    {
        let model = model
            .or_else(|| models.into_iter().next())
            .unwrap_or_default();
        return Ok(found(Source::Probe, Provider::OpenAi, &url, None, model));
    }
    Err(Error::Setup(
        "no model server found on 127.0.0.1 (ports 8080, 8081, 11434, 1234, 8000) and no key set: \
start one (llama.cpp: `llama-server -m MODEL.gguf --port 8080`; Ollama: `ollama serve`, then \
`ollama pull MODEL`), or pass --base-url URL, or set ANTHROPIC_API_KEY / OPENAI_API_KEY"
            .into(),
    ))
}

/// The endpoint at `url` (without a trailing `/`), found through `source`.
fn found(
    source: Source,
    provider: Provider,
    url: &str,
    api_key: Option<String>,
    model: String,
) -> Resolved {
    let base_url = url.trim().trim_end_matches('/').to_string();
    let endpoint = Endpoint {
        provider,
        base_url,
        api_key,
        model,
    };
    Resolved { endpoint, source }
}

/// `text` read as the HTTP client will read it, refused unless it is plainly an
/// http(s) URL: no user info (`http://a@b`), no backslash (the parser reads `\` as
/// `/`, which other readers do not), no `#fragment` (nib adds its path after it, where
/// it is never sent) and no `?query` but plain `name=value` pairs (Azure's
/// `?api-version=…`, which nib keeps at the end). `origin` names where the URL came from.
fn base_url(text: &str, origin: &str) -> Result<Url, Error> {
    let bad = |why: &str| {
        Error::Usage(format!(
            "{origin} {text:?} {why}; give a plain URL such as http://127.0.0.1:8080/v1"
        ))
    };
    if text.contains('\\') {
        return Err(bad("contains a backslash"));
    }
    let url = Url::parse(text.trim()).map_err(|e| bad(&format!("is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("is not http or https"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("has a user name or password in it"));
    }
    let plain = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c))
    };
    let pair = |p: &str| {
        p.split_once('=')
            .is_some_and(|(k, v)| !k.is_empty() && plain(k) && plain(v))
    };
    if url.fragment().is_some() || url.query().is_some_and(|q| !q.split('&').all(pair)) {
        return Err(bad(
            "has a #fragment, or a ?query other than name=value pairs",
        ));
    }
    Ok(url)
}

/// Anthropic for its own host or a URL ending in `/anthropic`; OpenAI-compatible otherwise.
fn infer_provider(url: &Url) -> Provider {
    let anthropic = Url::parse(ANTHROPIC_URL).ok().map(|a| a.origin());
    if anthropic == Some(url.origin()) || url.path().trim_end_matches('/').ends_with("/anthropic") {
        Provider::Anthropic
    } else {
        Provider::OpenAi
    }
}

/// A vendor's key goes only to that vendor's origin (scheme, host and port), or to the
/// one its own *_BASE_URL names.
fn vendor_key(provider: Provider, url: &Url, env: EnvFn) -> Option<String> {
    let here = url.origin();
    let origin = |text: &str| Url::parse(text).ok().map(|u| u.origin());
    let same = |o: Option<Origin>| o.is_some_and(|o| o == here && o.is_tuple());
    let matches = |default: &str, base_var: &str| {
        same(origin(default)) || env(base_var).is_some_and(|b| same(origin(&b)))
    };
    match provider {
        Provider::Anthropic if matches(ANTHROPIC_URL, "ANTHROPIC_BASE_URL") => {
            env("ANTHROPIC_API_KEY").or_else(|| env("ANTHROPIC_AUTH_TOKEN"))
        }
        Provider::OpenAi | Provider::OpenAiResponses if matches(OPENAI_URL, "OPENAI_BASE_URL") => {
            env("OPENAI_API_KEY")
        }
        Provider::OpenAi if same(origin(OPENROUTER_URL)) => env("OPENROUTER_API_KEY"),
        Provider::OpenAi | Provider::OpenAiResponses
            if url.scheme() == "https"
                && url
                    .host_str()
                    .is_some_and(|h| h.ends_with(".openai.azure.com")) =>
        {
            env("AZURE_OPENAI_API_KEY")
        }
        _ => None,
    }
}

/// Asks every usual local port at once; the first in `LOCAL_PORTS` order that answers wins.
pub fn probe_local() -> Option<(String, Vec<String>)> {
    let (tx, rx) = mpsc::channel();
    for (rank, port) in LOCAL_PORTS.into_iter().enumerate() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let url = format!("http://127.0.0.1:{port}/v1");
            let found = model::list_models(&url, PROBE_TIMEOUT).ok();
            let _ = tx.send((rank, url, found));
        });
    }
    drop(tx);
    let mut answers: Vec<(usize, String, Vec<String>)> = Vec::new();
    let deadline = std::time::Instant::now() + PROBE_TIMEOUT * 2;
    for _ in LOCAL_PORTS {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok((rank, url, Some(models))) => answers.push((rank, url, models)),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let first = answers.into_iter().min_by_key(|a| a.0);
    first.map(|(_, url, models)| (url, models))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve(args: Args, vars: &[(&str, &str)], probe: Option<&str>) -> Result<Resolved, Error> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let env = move |k: &str| map.get(k).cloned();
        let probe = || probe.map(|u| (u.to_string(), vec!["local-model".to_string()]));
        resolve_endpoint(&args, &env, &Settings::default(), &probe)
    }

    fn with_url(url: &str) -> Args {
        Args {
            base_url: Some(url.into()),
            ..Args::default()
        }
    }

    #[test]
    fn flags_beat_env() {
        let r = resolve(
            with_url("http://127.0.0.1:9/v1"),
            &[("NIB_BASE_URL", "http://other/v1")],
            None,
        )
        .unwrap();
        assert_eq!(r.endpoint.base_url, "http://127.0.0.1:9/v1");
        assert_eq!(r.source, Source::Flags);
        assert_eq!(r.endpoint.provider, Provider::OpenAi);
    }

    #[test]
    fn keys_only_go_to_their_own_hosts() {
        let vars = [("OPENAI_API_KEY", "sk-o"), ("ANTHROPIC_API_KEY", "sk-a")];
        let r = resolve(with_url("http://127.0.0.1:8080/v1"), &vars, None).unwrap();
        assert_eq!(
            r.endpoint.api_key, None,
            "local server must not get a vendor key"
        );
        let r = resolve(with_url("https://api.openai.com/v1"), &vars, None).unwrap();
        assert_eq!(r.endpoint.api_key.as_deref(), Some("sk-o"));
        let r = resolve(with_url("https://api.anthropic.com"), &vars, None).unwrap();
        assert_eq!(r.endpoint.provider, Provider::Anthropic);
        assert_eq!(r.endpoint.api_key.as_deref(), Some("sk-a"));
        // NIB_API_KEY is the user's key for whatever endpoint they chose.
        let r = resolve(with_url("http://h/v1"), &[("NIB_API_KEY", "k")], None).unwrap();
        assert_eq!(r.endpoint.api_key.as_deref(), Some("k"));
    }

    #[test]
    fn vendor_env_keys_pick_the_vendor() {
        let r = resolve(
            Args::default(),
            &[("ANTHROPIC_API_KEY", "a")],
            Some("http://l/v1"),
        )
        .unwrap();
        assert_eq!(r.endpoint.provider, Provider::Anthropic);
        assert_eq!(r.endpoint.base_url, ANTHROPIC_URL);
        assert_eq!(r.endpoint.model, DEFAULT_ANTHROPIC_MODEL);
        let r = resolve(Args::default(), &[("OPENAI_API_KEY", "o")], None).unwrap();
        assert_eq!(r.endpoint.base_url, OPENAI_URL);
    }

    #[test]
    fn probe_when_nothing_is_set() {
        let r = resolve(Args::default(), &[], Some("http://127.0.0.1:8081/v1")).unwrap();
        assert_eq!(r.source, Source::Probe);
        assert_eq!(r.endpoint.model, "local-model");
        assert_eq!(r.endpoint.api_key, None);
        let err = resolve(Args::default(), &[], None).unwrap_err();
        assert!(
            matches!(&err, Error::Setup(e) if e.contains("llama-server -m") && e.contains("ollama serve")),
            "{err:?}"
        );
        assert!(
            !matches!(&err, Error::Setup(e) if e.contains("scripts/")),
            "a script of nib's source tree: {err:?}"
        );
    }

    #[test]
    fn base_urls_are_read_as_the_http_client_reads_them() {
        let vars = [("OPENAI_API_KEY", "sk-o"), ("ANTHROPIC_API_KEY", "sk-a")];
        let refused = [
            r"http://127.0.0.1:9\@api.openai.com/v1",
            r"https://api.openai.com\v1",
            "http://u:p@127.0.0.1:8080/v1",
            "http://api.openai.com@127.0.0.1:9/v1",
            "https://x@api.openai.com/v1",
            "file:///etc/passwd",
            "ftp://api.openai.com/v1",
            "api.openai.com/v1",
            "http://",
            "http://127.0.0.1:9/v1?x=@api.openai.com",
            "http://127.0.0.1:9/v1#@api.openai.com",
            "http://127.0.0.1:9/v1#",
            "http://127.0.0.1:9/v1?",
            "http://127.0.0.1:9/v1?api-version",
        ];
        for url in refused {
            match resolve(with_url(url), &vars, None) {
                Err(Error::Usage(e)) => assert!(e.starts_with("--base-url"), "{e}"),
                other => panic!("{url} was not refused: {other:?}"),
            }
        }
        let env_url = [("OPENAI_API_KEY", "k"), ("OPENAI_BASE_URL", r"http://h\@x")];
        assert!(matches!(
            resolve(Args::default(), &env_url, None),
            Err(Error::Usage(e)) if e.starts_with("OPENAI_BASE_URL")
        ));
        // Which key goes where: the origin as the client reads it.
        let cases: [(&str, Option<&str>, &str); 7] = [
            (
                "HTTPS://API.OpenAI.com:443/v1/",
                Some("sk-o"),
                "https://api.openai.com/v1",
            ),
            ("http://api.openai.com/v1", None, "http://api.openai.com/v1"),
            (
                "https://api.openai.com:8443/v1",
                None,
                "https://api.openai.com:8443/v1",
            ),
            (
                "https://api.openai.com.evil.test/v1",
                None,
                "https://api.openai.com.evil.test/v1",
            ),
            (
                "https://api.anthropic.com/",
                Some("sk-a"),
                "https://api.anthropic.com",
            ),
            (
                "http://127.0.0.1:9/openai/deployments/x?api-version=2024-10-21&b=1",
                None,
                "http://127.0.0.1:9/openai/deployments/x?api-version=2024-10-21&b=1",
            ),
            (
                "http://127.0.0.1:9/anthropic",
                None,
                "http://127.0.0.1:9/anthropic",
            ),
        ];
        for (url, key, base) in cases {
            let r = resolve(with_url(url), &vars, None).unwrap();
            assert_eq!(r.endpoint.api_key.as_deref(), key, "{url}");
            assert_eq!(r.endpoint.base_url, base, "{url}");
        }
        let own = [
            ("OPENAI_API_KEY", "sk-o"),
            ("OPENAI_BASE_URL", "http://127.0.0.1:9/v1"),
        ];
        let r = resolve(with_url("http://127.0.0.1:9/v1"), &own, None).unwrap();
        assert_eq!(r.endpoint.api_key.as_deref(), Some("sk-o"));
        let r = resolve(with_url("http://127.0.0.1:10/v1"), &own, None).unwrap();
        assert_eq!(r.endpoint.api_key, None);
    }

    #[test]
    fn provider_inference() {
        let infer = |u: &str| infer_provider(&Url::parse(u).unwrap());
        assert_eq!(infer("https://api.anthropic.com/"), Provider::Anthropic);
        assert_eq!(infer("https://x.test/anthropic/"), Provider::Anthropic);
        assert_eq!(infer("http://127.0.0.1:8080/v1"), Provider::OpenAi);
    }

    #[test]
    fn responses_only_models_get_the_responses_api() {
        let vars = [("OPENAI_API_KEY", "sk-o")];
        let model = |m: &str| Args {
            model: Some(m.into()),
            ..Args::default()
        };
        let r = resolve(model("gpt-5-codex"), &vars, None).unwrap();
        assert_eq!(r.endpoint.provider, Provider::OpenAiResponses);
        let r = resolve(model("gpt-5-mini"), &vars, None).unwrap();
        assert_eq!(
            r.endpoint.provider,
            Provider::OpenAi,
            "chat models stay on chat"
        );
        let named = Args {
            provider: Some(Provider::OpenAi),
            ..model("gpt-5-codex")
        };
        let r = resolve(named, &vars, None).unwrap();
        assert_eq!(
            r.endpoint.provider,
            Provider::OpenAi,
            "a named protocol wins"
        );
        let r = resolve(
            Args {
                base_url: Some("https://openrouter.ai/api/v1".into()),
                ..model("openai/gpt-5-codex")
            },
            &[],
            None,
        )
        .unwrap();
        assert_eq!(
            r.endpoint.provider,
            Provider::OpenAi,
            "only OpenAI's own host"
        );
    }

    #[test]
    fn options_from_settings() {
        let endpoint = Endpoint {
            provider: Provider::OpenAi,
            base_url: "http://127.0.0.1:9/v1".into(),
            api_key: None,
            model: "prod-gpt5".into(),
        };
        let settings = |json: &str| Settings::from_json(serde_json::from_str(json).unwrap());
        let o = options(&endpoint, &Args::default(), &settings("{}")).unwrap();
        assert_eq!(
            (o.profile, o.cap_field),
            (Profile::Generic, CapField::MaxTokens)
        );
        let s = settings(r#"{"profile": "mistral", "max_tokens_field": "max_completion_tokens"}"#);
        let o = options(&endpoint, &Args::default(), &s).unwrap();
        assert_eq!(o.profile, Profile::Mistral);
        assert!(!o.stream_options);
        assert_eq!(o.cap_field, CapField::MaxCompletionTokens);
        let err = options(
            &endpoint,
            &Args::default(),
            &settings(r#"{"profile": "x"}"#),
        );
        assert!(err.unwrap_err().contains("mistral"));
        let err = options(
            &endpoint,
            &Args::default(),
            &settings(r#"{"max_tokens_field": "x"}"#),
        );
        assert!(err.unwrap_err().contains("max_completion_tokens"));
    }

    #[test]
    fn host_parsing() {
        assert_eq!(host_of("https://API.openai.com/v1"), "api.openai.com");
        assert_eq!(host_of("http://u:p@127.0.0.1:8080/v1"), "127.0.0.1:8080");
    }
}
