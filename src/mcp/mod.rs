//! MCP servers: their configuration (`.mcp.json`, `~/.claude.json`,
//! nib's settings, `--mcp-config`), starting them all at once in the background, and
//! offering their tools to the model as `mcp__<server>__<tool>`.
//!
//! Whether a call may run is the gate's job (`approval`); the wire is `client.rs` over
//! `stdio.rs` or `http.rs`.

pub mod client;
pub mod http;
pub mod stdio;

use crate::model::ToolSpec;
use crate::tools::Outcome;
use client::{Client, ServerTool, Transport};
use serde_json::Value;
use std::borrow::Cow;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long a server may take to start and list its tools (Claude Code's default;
/// its `MCP_TIMEOUT`, in milliseconds, changes it).
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest `MCP_TIMEOUT` honoured: ten minutes is a server that will not start.
pub const MAX_START_TIMEOUT: Duration = Duration::from_secs(600);

/// How long one tool call may run: as long as the longest bash command.
const CALL_TIMEOUT: Duration = crate::tools::shell::MAX_TIMEOUT;

/// Longest tool name the model APIs accept.
const MAX_NAME: usize = 64;

/// Characters of a tool's description the model is shown (every request pays for it).
const MAX_DESCRIPTION: usize = 2048;

/// How a server is reached.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    Stdio {
        command: String,
        args: Vec<String>,
        env: Vec<(String, String)>,
    },
    Http {
        url: String,
        headers: Vec<(String, String)>,
    },
}

/// One configured server.
#[derive(Clone, Debug)]
pub struct Config {
    pub name: String,
    /// An error when its configuration cannot be used (a variable missing, no command).
    pub kind: Result<Kind, String>,
    /// Only these tools are offered (setting `mcp.<server>.tools`).
    pub tools: Option<Vec<String>>,
}

/// Where servers are configured, lowest precedence first.
pub struct Sources<'a> {
    pub root: &'a Path,
    pub home: Option<&'a Path>,
    /// nib's own settings (`mcpServers`, `mcp.<server>.tools`).
    pub settings: &'a Value,
    /// `--mcp-config` values: a file or inline JSON each.
    pub cli: &'a [String],
    /// `--strict-mcp-config`: only `cli`.
    pub strict: bool,
    /// The project's `.mcp.json` applies (a trusted folder).
    pub trusted: bool,
    /// Claude Code's `disabledMcpjsonServers` from the settings files.
    pub disabled: Vec<String>,
    /// Claude Code's `enabledMcpjsonServers`: when not empty, only these of `.mcp.json`.
    pub enabled: Vec<String>,
}

/// The servers to start, and one line for each configuration that could not be read.
pub fn configs(sources: &Sources, env: crate::config::EnvFn) -> (Vec<Config>, Vec<String>) {
    let mut found: Vec<(String, Value)> = Vec::new();
    let mut warnings = Vec::new();
    if !sources.strict {
        if let Some(home) = sources.home {
            let user = read_json(&home.join(".claude.json"), "~/.claude.json", &mut warnings);
            add(&mut found, &user["mcpServers"]);
            if let Some(local) = user["projects"].get(sources.root.to_string_lossy().as_ref()) {
                add(&mut found, &local["mcpServers"]);
            }
        }
        add(&mut found, &sources.settings["mcpServers"]);
        if sources.trusted {
            let project = read_json(&sources.root.join(".mcp.json"), ".mcp.json", &mut warnings);
            let servers = project["mcpServers"].as_object().into_iter().flatten();
            let enabled = servers.filter(|(name, _)| {
                !sources.disabled.contains(name)
                    && (sources.enabled.is_empty() || sources.enabled.contains(name))
            });
            found.retain(|(n, _)| !enabled.clone().any(|(name, _)| name == n));
            found.extend(enabled.map(|(n, v)| (n.clone(), v.clone())));
        }
    }
    for arg in sources.cli {
        let json = match arg.trim_start().starts_with('{') {
            true => serde_json::from_str(arg).unwrap_or_else(|e| {
                warnings.push(format!("--mcp-config is not valid JSON ({e}); ignored"));
                Value::Null
            }),
            false => read_json(Path::new(arg), arg, &mut warnings),
        };
        add(&mut found, &json["mcpServers"]);
    }
    let configs = found
        .into_iter()
        .map(|(name, spec)| Config {
            kind: kind(&spec, env),
            tools: sources.settings["mcp"][&name]["tools"].as_array().map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            }),
            name,
        })
        .collect();
    (configs, warnings)
}

/// A JSON file, or `Null` when it does not exist; a broken one is a warning.
fn read_json(path: &Path, name: &str, warnings: &mut Vec<String>) -> Value {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Value::Null;
    };
    serde_json::from_str(&text).unwrap_or_else(|e| {
        warnings.push(format!(
            "{name} is not valid JSON ({e}); its MCP servers are not started"
        ));
        Value::Null
    })
}

/// Adds the servers of one `mcpServers` object; a later one replaces one of the same name.
fn add(found: &mut Vec<(String, Value)>, servers: &Value) {
    for (name, spec) in servers.as_object().into_iter().flatten() {
        found.retain(|(n, _)| n != name);
        found.push((name.clone(), spec.clone()));
    }
}

fn kind(spec: &Value, env: crate::config::EnvFn) -> Result<Kind, String> {
    let text = |v: &Value| v.as_str().map(|s| expand(s, env)).transpose();
    let pairs = |v: &Value| -> Result<Vec<(String, String)>, String> {
        let map = v.as_object().into_iter().flatten();
        map.map(|(k, v)| Ok((k.clone(), text(v)?.unwrap_or_else(|| v.to_string()))))
            .collect()
    };
    let kind = spec["type"].as_str().unwrap_or(match spec.get("url") {
        Some(_) => "http",
        None => "stdio",
    });
    match kind {
        "stdio" => Ok(Kind::Stdio {
            command: text(&spec["command"])?.ok_or("no `command` to start it")?,
            args: spec["args"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| text(a).map(Option::unwrap_or_default))
                .collect::<Result<_, _>>()?,
            env: pairs(&spec["env"])?,
        }),
        "http" => Ok(Kind::Http {
            url: text(&spec["url"])?.ok_or("no `url` to reach it")?,
            headers: pairs(&spec["headers"])?,
        }),
        other => Err(format!(
            "transport {other:?} is not supported; use stdio or http"
        )),
    }
}

/// `${VAR}` and `${VAR:-default}` replaced as Claude Code does; a variable that is not
/// set and has no default is an error naming it.
pub fn expand(text: &str, env: crate::config::EnvFn) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        let inner = &rest[start + 2..start + len];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        match (env(name), default) {
            (Some(value), _) => out.push_str(&value),
            (None, Some(d)) => out.push_str(d),
            (None, None) => return Err(format!("the environment variable {name} is not set")),
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The state of one server.
enum State {
    Starting,
    Connected {
        client: Box<Client>,
        tools: Vec<Offered>,
    },
    Failed(String),
}

/// A server's tool under the name the model sees.
struct Offered {
    name: String,
    tool: ServerTool,
}

struct Slot {
    name: String,
    state: Mutex<State>,
    changed: Condvar,
    /// The process group of a stdio server its thread is still connecting (0: none).
    connecting: AtomicI32,
}

/// What `/mcp` shows for one server.
pub struct Status {
    pub name: String,
    /// `connected`, `starting`, or `failed: why`.
    pub state: String,
    /// The state as Claude Code names it in stream-json: `connected`, `pending`, `failed`.
    pub word: &'static str,
    pub tools: usize,
    pub schema_bytes: usize,
}

/// The configured servers, each started on its own thread.
#[derive(Default)]
pub struct Servers {
    slots: Vec<Arc<Slot>>,
    /// The model has been offered the tools.
    offered: bool,
    /// How long servers may take to start.
    timeout: Duration,
}

impl Servers {
    /// Starts every server at once, in the background. `env` is the environment they
    /// start with (before their own `env`).
    pub fn start(configs: Vec<Config>, env: &[(String, String)], timeout: Duration) -> Servers {
        let mut slots = Vec::new();
        for config in configs {
            let slot = Arc::new(Slot {
                name: config.name.clone(),
                state: Mutex::new(State::Starting),
                changed: Condvar::new(),
                connecting: AtomicI32::new(0),
            });
            let shared = Arc::clone(&slot);
            let env = env.to_vec();
            std::thread::spawn(move || {
                let connected = connect(&config, env, &shared.connecting, timeout);
                let mut state = lock(&shared.state);
                shared.connecting.store(0, Ordering::SeqCst);
                // Else it was given up on (too slow): dropping it stops the server.
                if matches!(*state, State::Starting) {
                    *state = match connected {
                        Ok((client, tools)) => State::Connected {
                            client: Box::new(client),
                            tools,
                        },
                        Err(why) => State::Failed(why),
                    };
                }
                shared.changed.notify_all();
            });
            slots.push(slot);
        }
        Servers {
            slots,
            offered: false,
            timeout,
        }
    }

    /// Waits until every server has connected or failed (at most the start timeout).
    pub fn wait(&self) {
        let deadline = Instant::now() + self.timeout;
        for slot in &self.slots {
            let mut state = lock(&slot.state);
            while matches!(*state, State::Starting) {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    let secs = self.timeout.as_secs_f32();
                    *state = State::Failed(format!("did not start within {secs} s"));
                    break;
                }
                state = slot
                    .changed
                    .wait_timeout(state, left)
                    .map_or_else(|e| e.into_inner().0, |(s, _)| s);
            }
        }
    }

    /// The first time: waits for the servers and returns their tools' specs, and a
    /// line for each server that failed. Later: nothing (the tools are offered).
    pub fn take_specs(&mut self) -> (Vec<ToolSpec>, Vec<String>) {
        if self.offered || self.slots.is_empty() {
            return (Vec::new(), Vec::new());
        }
        self.offered = true;
        (self.specs(), self.failures())
    }

    /// The specs of every connected server's tools.
    pub fn specs(&self) -> Vec<ToolSpec> {
        self.wait();
        let mut specs = Vec::new();
        for slot in &self.slots {
            if let State::Connected { tools, .. } = &*lock(&slot.state) {
                specs.extend(tools.iter().map(spec));
            }
        }
        specs
    }

    fn failures(&self) -> Vec<String> {
        self.slots
            .iter()
            .filter_map(|slot| match &*lock(&slot.state) {
                State::Failed(why) => Some(format!(
                    "MCP server {} failed: {why}; /mcp shows the servers",
                    slot.name
                )),
                _ => None,
            })
            .collect()
    }

    pub fn status(&self) -> Vec<Status> {
        let mut out = Vec::new();
        for slot in &self.slots {
            let state = lock(&slot.state);
            let (text, word, tools) = match &*state {
                State::Starting => ("starting".to_string(), "pending", &[][..]),
                State::Connected { tools, .. } => {
                    ("connected".to_string(), "connected", &tools[..])
                }
                State::Failed(why) => (format!("failed: {why}"), "failed", &[][..]),
            };
            out.push(Status {
                name: slot.name.clone(),
                state: text,
                word,
                tools: tools.len(),
                schema_bytes: tools.iter().map(|t| spec_bytes(&spec(t))).sum(),
            });
        }
        out
    }

    /// Calls the tool the model knows as `name`. Every failure is text for the model.
    pub fn call(&self, name: &str, input: &Value, cancel: &AtomicBool) -> Outcome {
        for slot in &self.slots {
            let mut state = lock(&slot.state);
            let State::Connected { client, tools } = &mut *state else {
                if let State::Failed(why) = &*state
                    && name.starts_with(&model_name(&slot.name, ""))
                {
                    return Outcome::error(format!("the MCP server {} failed: {why}", slot.name));
                }
                continue;
            };
            let Some(offered) = tools.iter().find(|t| t.name == name) else {
                continue;
            };
            let tool = offered.tool.name.clone();
            return match client.call_tool(&tool, input, CALL_TIMEOUT, cancel) {
                Ok(outcome) => outcome,
                Err(why) => {
                    let message =
                        format!("the MCP server {} failed during the call: {why}", slot.name);
                    if !client.alive() {
                        *state = State::Failed(why);
                    }
                    Outcome::error(message)
                }
            };
        }
        Outcome::error(format!("no MCP server offers a tool named {name}"))
    }
}

impl Drop for Servers {
    /// Asks every server to stop at once (each then waits for its own), including
    /// those still starting, whose processes belong to their threads.
    fn drop(&mut self) {
        for slot in &self.slots {
            let starting = slot.connecting.load(Ordering::SeqCst);
            let group = match &*lock(&slot.state) {
                State::Connected { client, .. } => client.group(),
                _ => (starting > 0).then_some(starting),
            };
            group.into_iter().for_each(stdio::terminate);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts one server and lists its tools.
fn connect(
    config: &Config,
    mut env: Vec<(String, String)>,
    connecting: &AtomicI32,
    timeout: Duration,
) -> Result<(Client, Vec<Offered>), String> {
    let transport = match config.kind.clone()? {
        Kind::Stdio {
            command,
            args,
            env: extra,
        } => {
            env.retain(|(k, _)| !extra.iter().any(|(name, _)| name == k));
            env.extend(extra);
            let stdio = stdio::Stdio::spawn(&command, &args, &env)
                .map_err(|e| format!("cannot start `{command}`: {e}"))?;
            connecting.store(stdio.group(), Ordering::SeqCst);
            Transport::Stdio(stdio)
        }
        Kind::Http { url, headers } => {
            Transport::Http(http::Http::new(&url, headers, CALL_TIMEOUT))
        }
    };
    let mut client = Client::connect(transport, timeout)?;
    let listed = client.list_tools(timeout)?;
    let tools = listed
        .into_iter()
        .filter(|t| {
            config
                .tools
                .as_ref()
                .is_none_or(|only| only.contains(&t.name))
        })
        .map(|tool| Offered {
            name: model_name(&config.name, &tool.name),
            tool,
        })
        .collect();
    Ok((client, tools))
}

/// `mcp__<server>__<tool>` with what model APIs refuse replaced by `_`, at most
/// `MAX_NAME` characters.
pub fn model_name(server: &str, tool: &str) -> String {
    let kept = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    let clean = |s: &str| -> String { s.chars().map(|c| if kept(c) { c } else { '_' }).collect() };
    let mut name = format!("mcp__{}__{}", clean(server), clean(tool));
    name.truncate(MAX_NAME);
    name
}

fn spec(offered: &Offered) -> ToolSpec {
    let description: String = offered
        .tool
        .description
        .chars()
        .take(MAX_DESCRIPTION)
        .collect();
    ToolSpec {
        name: Cow::Owned(offered.name.clone()),
        description: Cow::Owned(description),
        schema: offered.tool.schema.clone(),
    }
}

/// Bytes a spec adds to every request.
pub fn spec_bytes(spec: &ToolSpec) -> usize {
    spec.name.len() + spec.description.len() + spec.schema.to_string().len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn variables_expand_as_claude_code_does() {
        let env = |k: &str| (k == "HOME_DIR").then(|| "/h".to_string());
        assert_eq!(expand("${HOME_DIR}/x", &env).unwrap(), "/h/x");
        assert_eq!(expand("${NOPE:-d}-${HOME_DIR:-z}", &env).unwrap(), "d-/h");
        assert!(expand("${NOPE}", &env).unwrap_err().contains("NOPE"));
        assert_eq!(expand("plain $HOME", &env).unwrap(), "plain $HOME");
    }

    #[test]
    fn server_kinds() {
        let env = |_: &str| None;
        let stdio = kind(
            &json!({"command": "srv", "args": ["a"], "env": {"K": "v"}}),
            &env,
        );
        assert_eq!(
            stdio,
            Ok(Kind::Stdio {
                command: "srv".into(),
                args: vec!["a".into()],
                env: vec![("K".into(), "v".into())]
            })
        );
        let http = kind(&json!({"type": "http", "url": "http://x/mcp"}), &env);
        assert!(matches!(http, Ok(Kind::Http { .. })));
        assert!(kind(&json!({"type": "sse", "url": "u"}), &env).is_err());
        assert!(kind(&json!({"args": []}), &env).is_err());
    }

    #[test]
    fn model_names_are_valid() {
        assert_eq!(
            model_name("everything", "get-sum"),
            "mcp__everything__get-sum"
        );
        assert_eq!(model_name("my server", "a.b"), "mcp__my_server__a_b");
        assert_eq!(model_name("s", &"x".repeat(100)).len(), MAX_NAME);
    }
}
