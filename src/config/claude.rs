//! Claude Code's settings files as nib reads them: which exist and apply (a project's
//! own only in a trusted folder), `--settings`, their permission lists and `env`, and one
//! line for each key nib does not act on.

use super::Dirs;
use serde_json::Value;
use std::path::{Path, PathBuf};

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
/// nib's own, `.claude/settings.json`, `.claude/settings.local.json` (in a folder the
/// user trusted), then `--settings`. Unreadable or invalid files are left out here: the
/// gate's loader reports them.
pub fn claude_settings(dirs: &Dirs, root: &Path, extra: Option<SettingsFile>) -> Vec<SettingsFile> {
    let user = dirs.home.as_ref().map(|home| {
        let path = home.join(".claude/settings.json");
        (path, "~/.claude/settings.json".to_string(), false)
    });
    let own = dirs.nib_config().map(|dir| {
        let path = dir.join("settings.json");
        (path.clone(), path.display().to_string(), true)
    });
    let project = [".claude/settings.json", ".claude/settings.local.json"]
        .map(|name| (root.join(name), name.to_string(), false));
    let project = dirs.trusted(root).then_some(project).into_iter().flatten();
    let read = |(path, name, own)| {
        let json = serde_json::from_str(&std::fs::read_to_string::<PathBuf>(path).ok()?).ok()?;
        Some(SettingsFile { name, own, json })
    };
    let files = user.into_iter().chain(own).chain(project).filter_map(read);
    files.chain(extra).collect()
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
        Ok(_) => Err(format!("{} must hold a JSON object", shown(&name))),
        Err(e) => Err(format!("{} is not valid JSON ({e})", shown(&name))),
    }
}

/// `--settings` itself when it was inline JSON, else `--settings: FILE`.
fn shown(name: &str) -> String {
    match name {
        "--settings" => name.to_string(),
        file => format!("--settings: {file}"),
    }
}

/// The permission lists of a settings object (for `--settings`, which the gate's
/// loader does not read).
pub fn settings_rules(json: &Value) -> crate::approval::RuleSet {
    let list = |key: &str| strings(json.pointer(&format!("/permissions/{key}")));
    crate::approval::RuleSet {
        allow: list("allow"),
        ask: list("ask"),
        deny: list("deny"),
    }
}

/// The strings of a JSON list (other items left out); none when it is not a list.
pub fn strings(list: Option<&Value>) -> Vec<String> {
    let items = list.and_then(Value::as_array).into_iter().flatten();
    items
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
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
#[rustfmt::skip]
const IGNORED_KEYS: &[(&str, &str)] = &[
    ("apiKeyHelper", "nib reads keys from the environment"),
    ("statusLine", "nib has no status line"),
    ("outputStyle", "nib has no output styles; use --append-system-prompt"),
    ("cleanupPeriodDays", "nib keeps sessions until you delete them"),
    ("includeCoAuthoredBy", "nib does not write commits itself"),
    ("forceLoginMethod", "nib has no login"),
    ("forceLoginOrgUUID", "nib has no login"),
    ("awsAuthRefresh", "nib has no Bedrock support"),
    ("awsCredentialExport", "nib has no Bedrock support"),
    ("otelHeadersHelper", "nib sends no telemetry"),
    ("spinnerTipsEnabled", "nib shows no tips"),
    ("alwaysThinkingEnabled", "nib does not ask for extended thinking"),
    ("sandbox", "nib's sandbox is configured by nib"),
    ("theme", "nib follows the terminal"),
    ("companyAnnouncements", "nib shows no announcements"),
];

/// Keys nib reads from Claude Code settings files (its own settings add more).
#[rustfmt::skip]
const KNOWN_KEYS: &[&str] = &[
    "$schema", "permissions", "hooks", "disableAllHooks", "env", "model", "mcpServers",
    "enableAllProjectMcpServers", "enabledMcpjsonServers", "disabledMcpjsonServers",
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
