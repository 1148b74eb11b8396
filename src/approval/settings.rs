//! Settings files, read and written: the permission rules and `defaultMode` of
//! `~/.claude/settings.json`, nib's own settings and the project's `.claude/` files
//! (the project's allow rules and mode held until the folder is trusted), and an
//! "always in this project" answer appended to `.claude/settings.local.json`.

use super::rules::{self, Anchors};
use super::{Gate, Held, Mode, RuleSet, Source, trust};
use crate::paths::{Workspace, canonical_prefix, short_path};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// Where the gate's files are besides the workspace and home: nib's config directory
/// (`<config_dir>/nib`) and nib's data directory (`<data_dir>/nib`, where folder trust
/// is kept).
pub struct Places {
    pub nib_config: Option<PathBuf>,
    pub nib_data: Option<PathBuf>,
}

/// Reads the settings files (`~/.claude/settings.json`, `<nib_config>/settings.json`,
/// `.claude/settings.json`, `.claude/settings.local.json` in the workspace) and adds
/// the CLI rules. The CLI mode beats `defaultMode` from the files; later files beat
/// earlier ones. The project's own allow rules and `defaultMode` apply only in a
/// trusted folder (else they are `held`, except rules the user saved there); its
/// deny and ask rules always apply.
pub fn load(
    cli: RuleSet,
    mode: Option<Mode>,
    workspace: Workspace,
    places: Places,
) -> Result<Gate, String> {
    let Places {
        nib_config,
        nib_data,
    } = places;
    let (root, home) = (workspace.root.clone(), workspace.home.clone());
    let mut files: Vec<(PathBuf, bool)> = Vec::new();
    if let Some(home) = &home {
        files.push((home.join(".claude/settings.json"), false));
    }
    if let Some(dir) = &nib_config {
        files.push((dir.join("settings.json"), false));
    }
    files.push((root.join(".claude/settings.json"), true));
    files.push((root.join(".claude/settings.local.json"), true));
    let folder = canonical_prefix(&root);
    let trust = match &nib_data {
        Some(data) => trust::entry(data, &folder)?,
        None => trust::Entry::default(),
    };
    let trusted = trust.trusted == Some(true);

    let mut sources = Vec::new();
    let mut warnings = Vec::new();
    let mut held = Vec::new();
    let mut file_mode = None;
    for (path, in_project) in files {
        let name = short_path(&path, home.as_deref());
        let Some(mut settings) = read_settings(&path, &name)? else {
            continue;
        };
        if in_project && !trusted {
            let allow = std::mem::take(&mut settings.rules.allow);
            let (own, waiting) = allow.into_iter().partition(|r| trust.saved.contains(r));
            settings.rules.allow = own;
            let mode = settings.mode.take();
            if !waiting.is_empty() || mode.is_some() {
                held.push(Held {
                    file: name.clone(),
                    allow: waiting,
                    mode,
                });
            }
        }
        if let Some(m) = settings.mode.as_deref() {
            file_mode = settings_mode(&name, m, in_project, &mut warnings).or(file_mode);
        }
        sources.push(Source {
            name,
            rules: settings.rules,
            strict: false,
        });
    }
    sources.push(Source {
        name: "the command line".into(),
        rules: cli,
        strict: true,
    });
    let nib_dirs: Vec<PathBuf> = nib_config.into_iter().chain(nib_data.clone()).collect();
    let explicit_mode = mode.is_some();
    let mode = mode.or(file_mode).unwrap_or(Mode::Default);
    let mut gate = Gate::build(sources, mode, workspace, nib_dirs)?;
    warnings.append(&mut gate.warnings);
    gate.warnings = warnings;
    gate.held = held;
    gate.trust_answered = trust.trusted.is_some();
    gate.explicit_mode = explicit_mode;
    gate.nib_data = nib_data;
    Ok(gate)
}

/// The mode a settings file's `defaultMode` asks for, if nib honours it there.
pub fn settings_mode(
    name: &str,
    mode: &str,
    in_project: bool,
    warnings: &mut Vec<String>,
) -> Option<Mode> {
    match Mode::parse(mode) {
        Some(Mode::Bypass) if in_project => {
            warnings.push(format!(
                "{name}: defaultMode bypassPermissions is ignored in project files; \
                 pass --permission-mode bypassPermissions to use it"
            ));
            None
        }
        Some(m) => Some(m),
        None => {
            warnings.push(format!(
                "{name}: unknown defaultMode `{mode}` is ignored; use default, acceptEdits, \
                 plan, dontAsk or bypassPermissions"
            ));
            None
        }
    }
}

/// What one settings file says about permissions.
#[derive(Default)]
struct Settings {
    rules: RuleSet,
    mode: Option<String>,
}

/// `Ok(None)` when the file does not exist.
fn read_settings(path: &Path, name: &str) -> Result<Option<Settings>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {name}: {e}")),
    };
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| format!("{name} is not valid JSON ({e}); fix it or move it aside"))?;
    let Some(permissions) = value.get("permissions") else {
        return Ok(Some(Settings::default()));
    };
    let list = |key: &str| match permissions.get(key) {
        None => Ok(Vec::new()),
        Some(value) => serde_json::from_value(value.clone())
            .map_err(|_| format!("{name}: permissions.{key} must be a list of strings")),
    };
    Ok(Some(Settings {
        rules: RuleSet {
            allow: list("allow")?,
            ask: list("ask")?,
            deny: list("deny")?,
        },
        mode: permissions
            .get("defaultMode")
            .and_then(Value::as_str)
            .map(str::to_string),
    }))
}

/// Appends an allow rule to `<root>/.claude/settings.local.json` (created if needed),
/// keeping the other keys; a rule already there is not added twice.
pub fn write_project_rule(root: &Path, rule: &str) -> Result<(), String> {
    let anchors = Anchors {
        root,
        home: Some(Path::new("/")),
    };
    if rules::parse(rule, "the answer", anchors)?.is_none() {
        return Err(format!("`{rule}` names a tool nib does not have"));
    }
    let dir = root.join(".claude");
    let path = dir.join("settings.local.json");
    let shown = path.display();
    let mut value = match std::fs::read_to_string(&path) {
        Ok(text) if text.trim().is_empty() => Value::Object(Map::new()),
        Ok(text) => serde_json::from_str(&text)
            .map_err(|e| format!("{shown} is not valid JSON ({e}); fix it by hand"))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Value::Object(Map::new()),
        Err(e) => return Err(format!("cannot read {shown}: {e}")),
    };
    let not_object =
        || format!("{shown}: expected an object with permissions.allow; fix it by hand");
    let permissions = value
        .as_object_mut()
        .ok_or_else(not_object)?
        .entry("permissions")
        .or_insert_with(|| Value::Object(Map::new()));
    let allow = permissions
        .as_object_mut()
        .ok_or_else(not_object)?
        .entry("allow")
        .or_insert_with(|| Value::Array(Vec::new()))
        .as_array_mut()
        .ok_or_else(not_object)?;
    if allow.iter().any(|v| v.as_str() == Some(rule)) {
        return Ok(());
    }
    allow.push(Value::String(rule.to_string()));
    let text = serde_json::to_string_pretty(&value).map_err(|e| e.to_string())? + "\n";
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let tmp = dir.join("settings.local.json.tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| format!("cannot write {shown}: {e}"))
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
