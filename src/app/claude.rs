//! The parts of a Claude Code setup besides what the gate and the system prompt read
//! themselves: hooks, settings `env`, extra workspace roots, `--settings`, `model`, MCP
//! servers, and one line for each setting nib does not use.

use super::{Dirs, Error};
use crate::approval::{Mode, RuleSet};
use crate::cli::Args;
use crate::config::{self, Settings};
use crate::model;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a Claude Code setup brings besides permission files the gate reads itself:
/// hooks, `env`, extra roots, and `--settings` (its rules and mode).
pub(super) struct ClaudeSetup {
    pub(super) hooks: crate::hooks::Hooks,
    pub(super) env: Vec<(String, String)>,
    pub(super) roots: Vec<PathBuf>,
    pub(super) rules: RuleSet,
    pub(super) mode: Option<Mode>,
    /// `disabledMcpjsonServers` and `enabledMcpjsonServers`: which servers of
    /// `.mcp.json` to start.
    pub(super) mcp_disabled: Vec<String>,
    pub(super) mcp_enabled: Vec<String>,
    /// `model` of the last Claude Code settings file that names one, and that file.
    pub(super) model: Option<(String, String)>,
}

impl ClaudeSetup {
    pub(super) fn load(args: &Args, dirs: &Dirs, cwd: &Path) -> Result<ClaudeSetup, Error> {
        let extra = args.settings.as_deref().map(config::settings_arg);
        let extra = extra.transpose().map_err(Error::Usage)?;
        let nib_config = dirs.config.as_ref().map(|c| c.join("nib"));
        let files = config::claude_settings(
            cwd,
            dirs.home.as_deref(),
            nib_config.as_deref(),
            extra.clone(),
        );
        let mut warnings = Vec::new();
        let mut setup = ClaudeSetup {
            hooks: crate::hooks::Hooks::default(),
            env: Vec::new(),
            roots: Vec::new(),
            rules: extra
                .as_ref()
                .map(|f| config::settings_rules(&f.json))
                .unwrap_or_default(),
            mcp_disabled: Vec::new(),
            mcp_enabled: Vec::new(),
            model: None,
            mode: extra.as_ref().and_then(|f| {
                f.json
                    .pointer("/permissions/defaultMode")?
                    .as_str()
                    .and_then(Mode::parse)
            }),
        };
        let hooks_off = files
            .iter()
            .any(|f| f.json.get("disableAllHooks") == Some(&Value::Bool(true)));
        for file in &files {
            if !hooks_off {
                setup
                    .hooks
                    .add_settings(&file.json, &file.name, &mut warnings);
            }
            config::settings_env(file, &mut setup.env, &mut warnings);
            if let (Some(model), false) = (file.json["model"].as_str(), file.own) {
                setup.model = Some((model.to_string(), file.name.clone()));
            }
            let names = |key: &str| -> Vec<String> {
                let list = file.json[key].as_array().into_iter().flatten();
                list.filter_map(Value::as_str).map(str::to_string).collect()
            };
            setup.mcp_disabled.extend(names("disabledMcpjsonServers"));
            setup.mcp_enabled.extend(names("enabledMcpjsonServers"));
            let extra_dirs = file.json.pointer("/permissions/additionalDirectories");
            for dir in extra_dirs
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                match cwd.join(dir) {
                    d if d.is_dir() => setup.roots.push(d),
                    _ => warnings.push(format!(
                        "{}: additionalDirectories {dir:?} is not a directory; ignored",
                        file.name
                    )),
                }
            }
        }
        for dir in &args.add_dirs {
            let full = cwd.join(dir);
            if !full.is_dir() {
                return Err(Error::Usage(format!(
                    "--add-dir {}: not a directory",
                    dir.display()
                )));
            }
            setup.roots.push(full);
        }
        for w in warnings {
            eprintln!("nib: warning: {w}");
        }
        tell_once(dirs, cwd, &config::ignored(&files, cwd));
        Ok(setup)
    }
}

/// `model` from Claude Code's settings, when nothing nib reads names one: for
/// Anthropic's API only, since its names mean nothing to other servers.
pub(super) fn claude_model(
    endpoint: &mut model::Endpoint,
    args: &Args,
    settings: &Settings,
    model: Option<(String, String)>,
) {
    let Some((model, file)) = model else {
        return;
    };
    let named = ["NIB_MODEL", "ANTHROPIC_MODEL"]
        .iter()
        .any(|v| std::env::var_os(v).is_some());
    if args.model.is_some() || named || settings.str("model").is_some() {
        return;
    }
    match endpoint.provider {
        model::Provider::Anthropic => endpoint.model = model,
        _ => eprintln!(
            "nib: ignored: model {model} in {file} (the server is not Anthropic's; use --model)"
        ),
    }
}

/// Starts the configured MCP servers in the background (none: nothing happens).
pub(super) fn mcp_servers(
    args: &Args,
    dirs: &Dirs,
    cwd: &Path,
    settings: &Settings,
    claude: &ClaudeSetup,
) -> crate::mcp::Servers {
    let sources = crate::mcp::Sources {
        root: cwd,
        home: dirs.home.as_deref(),
        settings: &settings.json,
        cli: &args.mcp_configs,
        strict: args.strict_mcp_config,
        trusted: config::project_trusted(cwd),
        disabled: claude.mcp_disabled.clone(),
        enabled: claude.mcp_enabled.clone(),
    };
    let env_lookup = |k: &str| std::env::var(k).ok();
    let (configs, warnings) = crate::mcp::configs(&sources, &env_lookup);
    for w in warnings {
        eprintln!("nib: warning: {w}");
    }
    let own_key: Vec<String> = settings.str("api_key_env").into_iter().collect();
    let timeout = std::env::var("MCP_TIMEOUT")
        .ok()
        .and_then(|ms| ms.parse().ok());
    let timeout = timeout.map_or(crate::mcp::START_TIMEOUT, Duration::from_millis);
    let timeout = timeout.min(crate::mcp::MAX_START_TIMEOUT);
    let env = crate::secrets::without_provider_keys(&own_key);
    crate::mcp::Servers::start(configs, &env, timeout)
}

/// Prints each line the first time nib runs in `cwd` with it (remembered in the data
/// directory), so a setting nib ignores is named once per folder, not on every run.
fn tell_once(dirs: &Dirs, cwd: &Path, lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    let path = dirs.data.as_ref().map(|d| d.join("nib").join("notices"));
    let told = path
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    let mut new = String::new();
    for line in lines {
        let key = format!("{}\t{line}\n", cwd.display());
        if !told.contains(&key) {
            eprintln!("nib: {line}");
            new.push_str(&key);
        }
    }
    if let (Some(path), false) = (path, new.is_empty()) {
        let _ = std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")));
        let _ = std::fs::write(&path, told + &new);
    }
}
