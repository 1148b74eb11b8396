//! The parts of a Claude Code setup besides what the gate and the system prompt read
//! themselves: hooks, settings `env`, extra workspace roots, `--settings`, `model`, MCP
//! servers, and one line for each setting nib does not use.

use crate::approval::{Mode, RuleSet};
use crate::cli::{Args, Error};
use crate::config::Config;
use crate::config::claude as settings_files;
use crate::model;
use crate::ui::report;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a Claude Code setup brings besides permission files the gate reads itself:
/// hooks, `env`, extra roots, and `--settings` (its rules and mode).
#[derive(Default)]
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
    pub(super) fn load(args: &Args, config: &Config) -> Result<ClaudeSetup, Error> {
        let cwd = &config.cwd;
        let extra = args.settings.as_deref().map(settings_files::settings_arg);
        let extra = extra.transpose().map_err(Error::Usage)?;
        let files = settings_files::claude_settings(&config.dirs, cwd, extra.clone());
        // A file that cannot be read is an error, never servers silently not started.
        let paths = args.mcp_configs.iter();
        for file in paths.filter(|a| !a.trim_start().starts_with('{')) {
            std::fs::read_to_string(file)
                .map_err(|e| Error::Usage(format!("--mcp-config: cannot read {file}: {e}")))?;
        }
        let mut warnings = Vec::new();
        let mut setup = ClaudeSetup::default();
        if let Some(json) = extra.as_ref().map(|f| &f.json) {
            setup.rules = settings_files::settings_rules(json);
            let mode = json["permissions"]["defaultMode"].as_str();
            setup.mode = mode.and_then(Mode::parse);
        }
        let hooks_off = files
            .iter()
            .any(|f| f.json.get("disableAllHooks") == Some(&Value::Bool(true)));
        for file in &files {
            if !hooks_off {
                setup
                    .hooks
                    .add_settings(&file.json, &file.name, &mut warnings);
            }
            settings_files::settings_env(file, &mut setup.env, &mut warnings);
            if let (Some(model), false) = (file.json["model"].as_str(), file.own) {
                setup.model = Some((model.to_string(), file.name.clone()));
            }
            let names = |key: &str| settings_files::strings(file.json.get(key));
            setup.mcp_disabled.extend(names("disabledMcpjsonServers"));
            setup.mcp_enabled.extend(names("enabledMcpjsonServers"));
            let extra_dirs = file.json.pointer("/permissions/additionalDirectories");
            for dir in settings_files::strings(extra_dirs) {
                match cwd.join(&dir) {
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
        report::warnings(&warnings);
        tell_once(config, &settings_files::ignored(&files, cwd));
        Ok(setup)
    }
}

/// `model` from Claude Code's settings, when nothing nib reads names one: for
/// Anthropic's API only, since its names mean nothing to other servers. Returns the
/// line saying it was ignored, when it was.
pub(super) fn claude_model(
    endpoint: &mut model::Endpoint,
    args: &Args,
    config: &Config,
    model: Option<(String, String)>,
) -> Option<String> {
    let (model, file) = model?;
    let named = config.env.has("NIB_MODEL") || config.env.has("ANTHROPIC_MODEL");
    if args.model.is_some() || named || config.settings.model.is_some() {
        return None;
    }
    match endpoint.provider {
        model::Provider::Anthropic => {
            endpoint.model = model;
            None
        }
        _ => Some(format!(
            "ignored: model {model} in {file} (the server is not Anthropic's; use --model)"
        )),
    }
}

/// Starts the configured MCP servers in the background (none: nothing happens).
pub(super) fn mcp_servers(
    args: &Args,
    config: &Config,
    claude: &ClaudeSetup,
) -> crate::mcp::Servers {
    let sources = crate::mcp::Sources {
        root: &config.cwd,
        home: config.dirs.home.as_deref(),
        settings: &config.settings.json,
        cli: &args.mcp_configs,
        strict: args.strict_mcp_config,
        trusted: config.dirs.trusted(&config.cwd),
        disabled: claude.mcp_disabled.clone(),
        enabled: claude.mcp_enabled.clone(),
    };
    let env_lookup = |k: &str| config.env.var(k);
    let (configs, warnings) = crate::mcp::configs(&sources, &env_lookup);
    report::warnings(&warnings);
    let own_key: Vec<String> = config.settings.api_key_env.iter().cloned().collect();
    let timeout = config.env.var("MCP_TIMEOUT").and_then(|ms| ms.parse().ok());
    let timeout = timeout.map_or(crate::mcp::START_TIMEOUT, Duration::from_millis);
    let timeout = timeout.min(crate::mcp::MAX_START_TIMEOUT);
    let env = crate::secrets::without_provider_keys(config.env.vars(), &own_key);
    crate::mcp::Servers::start(configs, &env, timeout)
}

/// Prints each line the first time nib runs in `cwd` with it (remembered in the data
/// directory), so a setting nib ignores is named once per folder, not on every run.
fn tell_once(config: &Config, lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    let cwd = &config.cwd;
    let path = config.dirs.nib_data().map(|d| d.join("notices"));
    let told = path
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    let mut new = String::new();
    for line in lines {
        let key = format!("{}\t{line}\n", cwd.display());
        if !told.contains(&key) {
            report::notice(line);
            new.push_str(&key);
        }
    }
    if let (Some(path), false) = (path, new.is_empty()) {
        let _ = std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")));
        let _ = std::fs::write(&path, told + &new);
    }
}
