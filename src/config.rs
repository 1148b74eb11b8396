//! What the command line means here: flags + environment + the user's settings file →
//! which model server to talk to, with which key, and the other knobs of a run.
//!
//! Precedence is flags, then environment, then `<config_dir>/nib/settings.json`, then
//! a probe of the usual local server ports. A key is only sent to the endpoint it
//! belongs to, and nothing here reads a repository's files (no `.env`), so a repo
//! cannot redirect nib's traffic or credentials. Base URLs are read by the parser the
//! HTTP client uses (`url`, through ureq), so the host a key is checked against is the
//! host the request goes to.

use crate::cli::Args;
use crate::model::{self, CapField, Endpoint, Options, Profile, Provider};
use serde_json::Value;
use std::path::Path;
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

/// The user's own settings (`<config_dir>/nib/settings.json`), read leniently.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    pub json: Value,
}

impl Settings {
    pub fn load(config_dir: Option<&Path>) -> Result<Settings, String> {
        let Some(dir) = config_dir else {
            return Ok(Settings::default());
        };
        let path = dir.join("nib").join("settings.json");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Settings::default()),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let json: Value = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{} is not valid JSON: {e}; fix or remove it",
                path.display()
            )
        })?;
        Ok(Settings { json })
    }

    pub fn str(&self, key: &str) -> Option<String> {
        self.json
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    pub fn bool(&self, key: &str) -> bool {
        self.json.get(key).and_then(Value::as_bool).unwrap_or(false)
    }

    /// Names of environment variables the user lets through to commands.
    pub fn env_passthrough(&self) -> Vec<String> {
        self.json
            .get("env_passthrough")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Whether the project's own configuration (its hooks, `.mcp.json`, commands, settings
/// `env` and model) may run here: only in a folder the user trusted.
pub fn project_trusted(root: &Path) -> bool {
    dirs::data_dir().is_some_and(|d| crate::approval::trust::folder_trusted(&d.join("nib"), root))
}

/// One Claude Code settings file that exists, with its JSON.
#[derive(Clone, Debug)]
pub struct SettingsFile {
    /// As people see it (`~/.claude/settings.json`, `.claude/settings.json`).
    pub name: String,
    /// nib's own settings file (which has more keys than Claude Code's).
    pub own: bool,
    pub json: Value,
}

/// Claude Code's settings files, lowest precedence first: `~/.claude/settings.json`,
/// nib's own, `.claude/settings.json`, `.claude/settings.local.json`, then `--settings`.
/// Unreadable or invalid files are left out here: the gate's loader reports them.
pub fn claude_settings(
    root: &Path,
    home: Option<&Path>,
    nib_config: Option<&Path>,
    extra: Option<SettingsFile>,
) -> Vec<SettingsFile> {
    let mut files = Vec::new();
    if let Some(home) = home {
        files.push((
            home.join(".claude/settings.json"),
            "~/.claude/settings.json".into(),
            false,
        ));
    }
    if let Some(dir) = nib_config {
        let path = dir.join("settings.json");
        files.push((path.clone(), path.display().to_string(), true));
    }
    if project_trusted(root) {
        files.push((
            root.join(".claude/settings.json"),
            ".claude/settings.json".into(),
            false,
        ));
        let local = ".claude/settings.local.json";
        files.push((root.join(local), local.into(), false));
    }
    let mut out: Vec<SettingsFile> = files
        .into_iter()
        .filter_map(|(path, name, own)| {
            let json = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
            Some(SettingsFile { name, own, json })
        })
        .collect();
    out.extend(extra);
    out
}

/// `--settings FILE|JSON`: a JSON object given inline or the file holding one.
pub fn settings_arg(arg: &str) -> Result<SettingsFile, String> {
    let (name, text) = match arg.trim_start().starts_with('{') {
        true => ("--settings".to_string(), arg.to_string()),
        false => (
            arg.to_string(),
            std::fs::read_to_string(arg)
                .map_err(|e| format!("--settings: cannot read {arg}: {e}"))?,
        ),
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(json) if json.is_object() => Ok(SettingsFile {
            name,
            own: false,
            json,
        }),
        Ok(_) => Err(format!("--settings: {name} must hold a JSON object")),
        Err(e) => Err(format!("--settings: {name} is not valid JSON ({e})")),
    }
}

/// The permission lists of a settings object (for `--settings`, which the gate's
/// loader does not read).
pub fn settings_rules(json: &Value) -> crate::approval::RuleSet {
    let list = |key: &str| -> Vec<String> {
        let items = json
            .pointer(&format!("/permissions/{key}"))
            .and_then(Value::as_array);
        items
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    };
    crate::approval::RuleSet {
        allow: list("allow"),
        ask: list("ask"),
        deny: list("deny"),
    }
}

/// Adds a file's `env` to `env` (later files win). Secret-named variables are left
/// out with a warning: commands never get secrets from a settings file.
pub fn settings_env(
    file: &SettingsFile,
    env: &mut Vec<(String, String)>,
    warnings: &mut Vec<String>,
) {
    let vars = file.json.get("env").and_then(Value::as_object);
    for (name, value) in vars.into_iter().flatten() {
        let value = match value {
            Value::String(s) => s.clone(),
            Value::Number(_) | Value::Bool(_) => value.to_string(),
            _ => continue,
        };
        if crate::secrets::is_secret_name(name) {
            warnings.push(format!(
                "{}: env.{name} looks like a secret and is not passed to commands",
                file.name
            ));
            continue;
        }
        env.retain(|(k, _)| k != name);
        env.push((name.clone(), value));
    }
}

/// Claude Code settings keys nib does not act on, and why (a line at start names them).
const IGNORED_KEYS: &[(&str, &str)] = &[
    ("apiKeyHelper", "nib reads keys from the environment"),
    ("statusLine", "nib has no status line"),
    (
        "outputStyle",
        "nib has no output styles; use --append-system-prompt",
    ),
    (
        "cleanupPeriodDays",
        "nib keeps sessions until you delete them",
    ),
    ("includeCoAuthoredBy", "nib does not write commits itself"),
    ("forceLoginMethod", "nib has no login"),
    ("forceLoginOrgUUID", "nib has no login"),
    ("awsAuthRefresh", "nib has no Bedrock support"),
    ("awsCredentialExport", "nib has no Bedrock support"),
    ("otelHeadersHelper", "nib sends no telemetry"),
    ("spinnerTipsEnabled", "nib shows no tips"),
    (
        "alwaysThinkingEnabled",
        "nib does not ask for extended thinking",
    ),
    ("sandbox", "nib's sandbox is configured by nib"),
    ("theme", "nib follows the terminal"),
    ("companyAnnouncements", "nib shows no announcements"),
];

/// Keys nib reads from Claude Code settings files (its own settings add more).
const KNOWN_KEYS: &[&str] = &[
    "$schema",
    "permissions",
    "hooks",
    "disableAllHooks",
    "env",
    "model",
    "mcpServers",
    "enableAllProjectMcpServers",
    "enabledMcpjsonServers",
    "disabledMcpjsonServers",
];

/// Keys of `permissions` nib reads.
const PERMISSION_KEYS: &[&str] = &[
    "allow",
    "ask",
    "deny",
    "defaultMode",
    "additionalDirectories",
];

/// One line per setting or file of a Claude Code setup that nib does not use.
pub fn ignored(files: &[SettingsFile], root: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for file in files.iter().filter(|f| !f.own) {
        let permissions = file.json["permissions"].as_object().into_iter().flatten();
        for (key, _) in permissions.filter(|(k, _)| !PERMISSION_KEYS.contains(&k.as_str())) {
            lines.push(format!(
                "ignored: permissions.{key} in {} (not a setting nib knows)",
                file.name
            ));
        }
        let keys = file.json.as_object().into_iter().flat_map(|m| m.keys());
        for key in keys.filter(|k| !KNOWN_KEYS.contains(&k.as_str())) {
            let why = IGNORED_KEYS
                .iter()
                .find(|(k, _)| k == key)
                .map_or("not a setting nib knows", |(_, why)| why);
            lines.push(format!("ignored: {key} in {} ({why})", file.name));
        }
    }
    let dirs = [
        (".claude/agents", "nib has no subagents"),
        (".claude/output-styles", "nib has no output styles"),
    ];
    for (dir, why) in dirs {
        if root.join(dir).is_dir() {
            lines.push(format!("ignored: {dir} ({why})"));
        }
    }
    lines
}

/// The resolved endpoint and where it came from.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub endpoint: Endpoint,
    pub source: Source,
}

/// Why no endpoint could be chosen.
#[derive(Debug, PartialEq)]
pub enum NoEndpoint {
    /// Nothing configured and no local server found.
    Missing(String),
    /// A base URL nib will not send requests to (a usage error).
    BadUrl(String),
}

/// Looks up an environment variable; empty counts as unset.
pub type EnvFn<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Picks the endpoint. `probe` finds a local server (injected so this stays testable).
/// Unless a protocol was named, OpenAI's models that exist only on the Responses API
/// get it.
pub fn resolve_endpoint(
    args: &Args,
    env: EnvFn,
    settings: &Settings,
    probe: &dyn Fn() -> Option<(String, Vec<String>)>,
) -> Result<Resolved, NoEndpoint> {
    let named = args.provider.is_some()
        || env("NIB_PROVIDER").is_some()
        || settings.str("provider").is_some();
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
    if let Some(name) = settings.str("profile") {
        let names: Vec<&str> = Profile::ALL.iter().map(|p| p.name()).collect();
        options.profile = Profile::from_name(&name).ok_or_else(|| {
            format!(
                "settings profile {name:?} is not one of {}; fix settings.json",
                names.join(", ")
            )
        })?;
        options.stream_options = options.profile != Profile::Mistral;
    }
    if let Some(name) = settings.str("max_tokens_field") {
        options.cap_field = CapField::from_name(&name).ok_or_else(|| {
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
) -> Result<Resolved, NoEndpoint> {
    let provider = args
        .provider
        .or_else(|| env("NIB_PROVIDER").and_then(|p| crate::cli::provider_from_str(&p)))
        .or_else(|| {
            settings
                .str("provider")
                .and_then(|p| crate::cli::provider_from_str(&p))
        });
    let model = args
        .model
        .clone()
        .or_else(|| env("NIB_MODEL"))
        .or_else(|| settings.str("model"));

    // An explicit base URL: flags, NIB_BASE_URL, settings.
    let explicit = [
        (args.base_url.clone(), Source::Flags),
        (env("NIB_BASE_URL"), Source::Env),
        (settings.str("base_url"), Source::Settings),
    ]
    .into_iter()
    .find_map(|(url, src)| url.map(|u| (u, src)));
    if let Some((text, source)) = explicit {
        let origin = match source {
            Source::Flags => "--base-url",
            Source::Env => "NIB_BASE_URL",
            _ => "base_url in settings.json",
        };
        let url = base_url(&text, origin)?;
        let provider = provider.unwrap_or_else(|| infer_provider(&url));
        let key = env("NIB_API_KEY")
            .or_else(|| settings.str("api_key_env").and_then(|name| env(&name)))
            .or_else(|| vendor_key(provider, &url, env));
        return Ok(Resolved {
            endpoint: Endpoint {
                provider,
                base_url: trim_url(url.as_str()),
                api_key: key,
                model: model.unwrap_or_default(),
            },
            source,
        });
    }

    // A vendor key in the environment (the user's own shell).
    let anthropic_key = env("ANTHROPIC_API_KEY").or_else(|| env("ANTHROPIC_AUTH_TOKEN"));
    let wants = |p: Provider| provider.is_none() || provider == Some(p);
    if wants(Provider::Anthropic) && anthropic_key.is_some() {
        let url = env("ANTHROPIC_BASE_URL").unwrap_or_else(|| ANTHROPIC_URL.into());
        let url = base_url(&url, "ANTHROPIC_BASE_URL")?;
        let model = model
            .or_else(|| env("ANTHROPIC_MODEL"))
            .unwrap_or_else(|| DEFAULT_ANTHROPIC_MODEL.into());
        return Ok(env_endpoint(Provider::Anthropic, url, anthropic_key, model));
    }
    if wants(Provider::OpenAi) {
        if let Some(key) = env("OPENAI_API_KEY") {
            let url = env("OPENAI_BASE_URL").unwrap_or_else(|| OPENAI_URL.into());
            let url = base_url(&url, "OPENAI_BASE_URL")?;
            return Ok(env_endpoint(
                Provider::OpenAi,
                url,
                Some(key),
                model.unwrap_or_default(),
            ));
        }
        if let Some(url) = env("OPENAI_BASE_URL") {
            let url = base_url(&url, "OPENAI_BASE_URL")?;
            return Ok(env_endpoint(
                Provider::OpenAi,
                url,
                None,
                model.unwrap_or_default(),
            ));
        }
        if let Some(key) = env("OPENROUTER_API_KEY") {
            let url = base_url(OPENROUTER_URL, "the OpenRouter URL")?;
            return Ok(env_endpoint(
                Provider::OpenAi,
                url,
                Some(key),
                model.unwrap_or_default(),
            ));
        }
    }

    // Nothing configured: a local server, if one is running.
    if provider != Some(Provider::Anthropic)
        && let Some((url, models)) = probe()
    {
        let model = model
            .or_else(|| models.into_iter().next())
            .unwrap_or_default();
        return Ok(Resolved {
            endpoint: Endpoint {
                provider: Provider::OpenAi,
                base_url: url,
                api_key: None,
                model,
            },
            source: Source::Probe,
        });
    }
    Err(NoEndpoint::Missing(
        "no model server found on 127.0.0.1 (ports 8080, 8081, 11434, 1234, 8000) and no key set: \
start one (llama.cpp: `llama-server -m MODEL.gguf --port 8080`; Ollama: `ollama serve`, then \
`ollama pull MODEL`), or pass --base-url URL, or set ANTHROPIC_API_KEY / OPENAI_API_KEY"
            .into(),
    ))
}

fn env_endpoint(provider: Provider, url: Url, key: Option<String>, model: String) -> Resolved {
    Resolved {
        endpoint: Endpoint {
            provider,
            base_url: trim_url(url.as_str()),
            api_key: key,
            model,
        },
        source: Source::Env,
    }
}

/// `text` read as the HTTP client will read it, refused unless it is plainly an
/// http(s) URL: no user info (`http://a@b`) and no backslash (the parser reads `\` as
/// `/`, which other readers do not). `origin` names where the URL came from.
fn base_url(text: &str, origin: &str) -> Result<Url, NoEndpoint> {
    let bad = |why: &str| {
        NoEndpoint::BadUrl(format!(
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

pub use crate::model::host_of;

fn trim_url(url: &str) -> String {
    url.trim().trim_end_matches('/').to_string()
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
    answers.sort_by_key(|a| a.0);
    answers
        .into_iter()
        .next()
        .map(|(_, url, models)| (url, models))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve(
        args: Args,
        vars: &[(&str, &str)],
        probe: Option<&str>,
    ) -> Result<Resolved, NoEndpoint> {
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
            matches!(&err, NoEndpoint::Missing(e) if e.contains("llama-server -m") && e.contains("ollama serve")),
            "{err:?}"
        );
        assert!(
            !matches!(&err, NoEndpoint::Missing(e) if e.contains("scripts/")),
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
        ];
        for url in refused {
            match resolve(with_url(url), &vars, None) {
                Err(NoEndpoint::BadUrl(e)) => assert!(e.starts_with("--base-url"), "{e}"),
                other => panic!("{url} was not refused: {other:?}"),
            }
        }
        let env_url = [("OPENAI_API_KEY", "k"), ("OPENAI_BASE_URL", r"http://h\@x")];
        assert!(matches!(
            resolve(Args::default(), &env_url, None),
            Err(NoEndpoint::BadUrl(e)) if e.starts_with("OPENAI_BASE_URL")
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
                "http://127.0.0.1:9/v1?x=@api.openai.com",
                None,
                "http://127.0.0.1:9/v1?x=@api.openai.com",
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
        let settings = |json: &str| Settings {
            json: serde_json::from_str(json).unwrap(),
        };
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
