//! Claude Code hooks (README "Hooks"): commands from the settings files' `hooks` key, run
//! at points of the loop with a JSON description on stdin; their exit code and JSON
//! output can block a prompt, refuse or allow a tool call, or make the model go on.
//!
//! Hooks run through the bash tool's spawner (`tools::shell`), so they get the same
//! session, scrubbed environment, group kill and confinement as approved commands.
//! What to do with a hook's answer is the agent's job; this module runs and reads.

use crate::approval::Verdict;
use crate::tools::{Action, Context, shell};
use regex::Regex;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long a hook may run when its settings do not say (Claude Code's default).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The longest `timeout` honoured: an hour is a long test suite; more is a typo.
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// The exit code that blocks (Claude Code's contract).
const BLOCK_CODE: i32 = 2;

/// Times Stop hooks may send the model back to work in one task: a hook that always
/// blocks must not spend the whole turn budget.
pub const MAX_STOP_BLOCKS: u32 = 8;

/// The closed set of events nib fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    PreToolUse,
    PostToolUse,
    UserPromptSubmit,
    Stop,
    SessionStart,
    SessionEnd,
    Notification,
}

impl Event {
    const ALL: [Event; 7] = [
        Event::PreToolUse,
        Event::PostToolUse,
        Event::UserPromptSubmit,
        Event::Stop,
        Event::SessionStart,
        Event::SessionEnd,
        Event::Notification,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Event::PreToolUse => "PreToolUse",
            Event::PostToolUse => "PostToolUse",
            Event::UserPromptSubmit => "UserPromptSubmit",
            Event::Stop => "Stop",
            Event::SessionStart => "SessionStart",
            Event::SessionEnd => "SessionEnd",
            Event::Notification => "Notification",
        }
    }

    /// Events whose matcher is a tool-name pattern.
    fn matches_tools(self) -> bool {
        matches!(self, Event::PreToolUse | Event::PostToolUse)
    }
}

/// Events Claude Code has and nib does not fire (no subagents, no compaction hook yet).
const UNSUPPORTED_EVENTS: [&str; 2] = ["SubagentStop", "PreCompact"];

/// One `type: "command"` hook.
#[derive(Clone, Debug)]
struct Hook {
    event: Event,
    /// `None` matches every tool.
    matcher: Option<Regex>,
    command: String,
    timeout: Duration,
}

/// Every configured hook, and what they are told about the session.
#[derive(Clone, Debug, Default)]
pub struct Hooks {
    hooks: Vec<Hook>,
    pub session_id: String,
    pub transcript_path: Option<PathBuf>,
    /// SessionStart has fired.
    pub started: bool,
}

/// What a PreToolUse hook said about the permission of the call.
#[derive(Clone, Debug, PartialEq)]
pub enum Permission {
    Allow,
    Deny(String),
    Ask(String),
}

/// One hook run, for the journal.
#[derive(Clone, Debug)]
pub struct Run {
    pub event: Event,
    pub command: String,
    /// `None` when it did not start, timed out or was killed.
    pub code: Option<i32>,
    pub duration: Duration,
}

/// What the hooks of one event said, together.
#[derive(Debug, Default)]
pub struct Report {
    /// Exit 2, `decision: "block"` or `continue: false`: the reason.
    pub block: Option<String>,
    /// PreToolUse only: the strongest decision (deny, then ask, then allow).
    pub permission: Option<Permission>,
    /// Text for the model (UserPromptSubmit and SessionStart stdout, additionalContext).
    pub context: Vec<String>,
    /// Lines for the user: failures and `systemMessage`.
    pub warnings: Vec<String>,
    pub runs: Vec<Run>,
}

impl Hooks {
    /// Reads the `hooks` key of one settings file into `self`; malformed entries are
    /// skipped with a warning naming the file.
    pub fn add_settings(&mut self, settings: &Value, file: &str, warnings: &mut Vec<String>) {
        let Some(map) = settings.get("hooks").and_then(Value::as_object) else {
            return;
        };
        for (name, groups) in map {
            let Some(event) = Event::ALL.into_iter().find(|e| e.name() == name) else {
                let why = match UNSUPPORTED_EVENTS.contains(&name.as_str()) {
                    true => "nib does not fire this event",
                    false => "unknown event",
                };
                warnings.push(format!("ignored: {file}: hooks.{name} ({why})"));
                continue;
            };
            for group in groups.as_array().into_iter().flatten() {
                self.add_group(event, group, file, warnings);
            }
        }
    }

    fn add_group(&mut self, event: Event, group: &Value, file: &str, warnings: &mut Vec<String>) {
        let pattern = group.get("matcher").and_then(Value::as_str).unwrap_or("");
        // A pattern that is not a regex matches its own text; one too big to compile
        // matches every tool (a guard that runs too often beats one that never runs).
        let matcher = match pattern {
            "" | "*" => None,
            p => Regex::new(&format!("^(?:{p})$"))
                .or_else(|_| Regex::new(&format!("^{}$", regex::escape(p))))
                .ok(),
        };
        for hook in group
            .get("hooks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let command = hook.get("command").and_then(Value::as_str);
            match (hook.get("type").and_then(Value::as_str), command) {
                (Some("command") | None, Some(command)) => self.hooks.push(Hook {
                    event,
                    matcher: matcher.clone(),
                    command: command.to_string(),
                    timeout: hook
                        .get("timeout")
                        .and_then(Value::as_f64)
                        .map(|t| t.min(MAX_TIMEOUT.as_secs_f64()))
                        .and_then(|t| Duration::try_from_secs_f64(t).ok())
                        .filter(|t| !t.is_zero())
                        .unwrap_or(DEFAULT_TIMEOUT),
                }),
                (kind, _) => warnings.push(format!(
                    "ignored: {file}: a {} hook of type {} (nib runs `type: \"command\"` hooks)",
                    event.name(),
                    kind.unwrap_or("(none)")
                )),
            }
        }
    }

    pub fn has(&self, event: Event) -> bool {
        self.hooks.iter().any(|h| h.event == event)
    }

    /// Runs the hooks of `event` (those whose matcher takes `tool`, for tool events) one
    /// after another with `fields` added to the common stdin JSON.
    pub fn fire(&self, event: Event, tool: Option<&str>, fields: Value, ctx: &Context) -> Report {
        let mut report = Report::default();
        let chosen = self.hooks.iter().filter(|h| {
            h.event == event
                && (!event.matches_tools()
                    || h.matcher
                        .as_ref()
                        .is_none_or(|m| m.is_match(tool.unwrap_or(""))))
        });
        let mut input = json!({
            "session_id": self.session_id,
            "transcript_path": self.transcript_path,
            "cwd": ctx.workspace.root,
            "hook_event_name": event.name(),
        });
        if let (Some(base), Value::Object(extra)) = (input.as_object_mut(), fields) {
            base.extend(extra);
        }
        let input = input.to_string();
        for hook in chosen {
            run_one(hook, &input, ctx, &mut report);
        }
        report
    }
}

fn run_one(hook: &Hook, input: &str, ctx: &Context, report: &mut Report) {
    let started = Instant::now();
    let ran = shell::run_with_input(&hook.command, input.as_bytes(), hook.timeout, ctx);
    let code = ran.as_ref().ok().and_then(|r| r.code);
    report.runs.push(Run {
        event: hook.event,
        command: hook.command.clone(),
        code,
        duration: started.elapsed(),
    });
    let name = hook.event.name();
    let ran = match ran {
        Ok(ran) => ran,
        Err(e) => {
            return report
                .warnings
                .push(format!("{name} hook `{}`: {e}", hook.command));
        }
    };
    let stderr = ran.stderr.trim();
    match ran.code {
        Some(0) => read_output(hook, &ran.stdout, report),
        Some(BLOCK_CODE) => {
            let reason = match stderr {
                "" => format!("blocked by a {name} hook"),
                text => text.to_string(),
            };
            report.block.get_or_insert(reason);
        }
        _ if ran.timed_out => report.warnings.push(format!(
            "{name} hook `{}` timed out after {} s and was stopped",
            hook.command,
            hook.timeout.as_secs()
        )),
        code => report.warnings.push(format!(
            "{name} hook `{}` failed ({}){}",
            hook.command,
            code.map_or("killed".to_string(), |c| format!("exit status {c}")),
            first_line(stderr).map_or(String::new(), |l| format!(": {l}"))
        )),
    }
}

fn first_line(text: &str) -> Option<&str> {
    text.lines().find(|l| !l.trim().is_empty())
}

/// Exit 0: plain stdout is context (for the events that take it); a JSON object is
/// Claude Code's structured answer.
fn read_output(hook: &Hook, stdout: &str, report: &mut Report) {
    let text = stdout.trim();
    if !text.starts_with('{') {
        if !text.is_empty() && matches!(hook.event, Event::UserPromptSubmit | Event::SessionStart) {
            report.context.push(text.to_string());
        }
        return;
    }
    let json: Value = match serde_json::from_str(text) {
        Ok(json) => json,
        Err(e) => {
            return report.warnings.push(format!(
                "{} hook `{}` printed invalid JSON ({e}); its output is ignored",
                hook.event.name(),
                hook.command
            ));
        }
    };
    read_json(&json, report);
}

fn read_json(json: &Value, report: &mut Report) {
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
    if let Some(message) = text(json, "systemMessage") {
        report.warnings.push(message);
    }
    let reason = text(json, "reason").unwrap_or_default();
    if json.get("continue") == Some(&Value::Bool(false)) {
        let why = text(json, "stopReason").unwrap_or_else(|| reason.clone());
        report.block.get_or_insert(why);
    }
    match json.get("decision").and_then(Value::as_str) {
        Some("block") => {
            report.block.get_or_insert(reason.clone());
        }
        Some("approve") => merge(report, Permission::Allow),
        _ => {}
    }
    let specific = json.get("hookSpecificOutput").unwrap_or(&Value::Null);
    if let Some(context) = text(specific, "additionalContext") {
        report.context.push(context);
    }
    let why = text(specific, "permissionDecisionReason").unwrap_or(reason);
    match specific.get("permissionDecision").and_then(Value::as_str) {
        Some("allow") => merge(report, Permission::Allow),
        Some("deny") => merge(report, Permission::Deny(why)),
        Some("ask") => merge(report, Permission::Ask(why)),
        _ => {}
    }
}

/// Deny beats ask beats allow, whichever hook said it.
fn merge(report: &mut Report, new: Permission) {
    let rank = |p: &Permission| match p {
        Permission::Allow => 0,
        Permission::Ask(_) => 1,
        Permission::Deny(_) => 2,
    };
    if report
        .permission
        .as_ref()
        .is_none_or(|old| rank(&new) > rank(old))
    {
        report.permission = Some(new);
    }
}

/// The gate's verdict after PreToolUse hooks: a hook's deny refuses, its ask asks even
/// where a rule allows, its allow spares the question; a deny rule always stands.
pub fn overrule(verdict: Verdict, said: Option<Permission>) -> Verdict {
    match (verdict, said) {
        (Verdict::Deny(why), _) => Verdict::Deny(why),
        (_, Some(Permission::Deny(why))) => {
            Verdict::Deny(format!("a PreToolUse hook refused: {why}"))
        }
        (_, Some(Permission::Ask(why))) => Verdict::Ask(format!("a PreToolUse hook asks: {why}")),
        (_, Some(Permission::Allow)) => Verdict::Allow,
        (verdict, None) => verdict,
    }
}

/// The prompt with what SessionStart and UserPromptSubmit hooks added.
pub fn with_context(prompt: &str, context: &[String]) -> String {
    match context {
        [] => prompt.to_string(),
        _ => format!("{prompt}\n\n{}", context.join("\n\n")),
    }
}

/// The tool's name as Claude Code's hooks know it (`Bash`, `Read`, `mcp__s__t`).
pub fn tool_name(action: &Action) -> String {
    match action {
        Action::Mcp { name, .. } => name.clone(),
        _ => action.tool().rule_name().to_string(),
    }
}

/// A tool's arguments in Claude Code's shape (`file_path`, `old_string`, ...), so hooks
/// written for it read them unchanged. MCP calls pass their arguments as they are.
pub fn tool_input(action: &Action, root: &std::path::Path) -> Value {
    let abs = |p: &std::path::Path| root.join(p);
    match action {
        Action::Bash { command, timeout } => {
            json!({"command": command, "timeout": timeout.as_millis() as u64})
        }
        Action::Read {
            path,
            offset,
            limit,
        } => json!({"file_path": abs(path), "offset": offset, "limit": limit}),
        Action::Write { path, content } => json!({"file_path": abs(path), "content": content}),
        Action::Edit {
            path,
            old,
            new,
            replace_all,
        } => json!({"file_path": abs(path), "old_string": old, "new_string": new,
                    "replace_all": replace_all}),
        Action::Grep {
            pattern,
            path,
            glob,
            ignore_case,
        } => json!({"pattern": pattern, "path": path.as_deref().map(abs), "glob": glob,
                    "-i": ignore_case}),
        Action::Glob { pattern, path } => {
            json!({"pattern": pattern, "path": path.as_deref().map(abs)})
        }
        Action::Skill { name } => json!({"skill": name}),
        Action::Mcp { input, .. } => input.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hooks(settings: Value) -> (Hooks, Vec<String>) {
        let mut hooks = Hooks::default();
        let mut warnings = Vec::new();
        hooks.add_settings(&settings, "s.json", &mut warnings);
        (hooks, warnings)
    }

    #[test]
    fn settings_shape_and_matchers() {
        let (h, warnings) = hooks(json!({"hooks": {
            "PreToolUse": [{"matcher": "Bash|Edit", "hooks": [{"type": "command", "command": "a", "timeout": 5}]},
                           {"hooks": [{"type": "command", "command": "big", "timeout": 1e300},
                                      {"type": "command", "command": "neg", "timeout": -1}]},
                           {"hooks": [{"type": "command", "command": "b"}]}],
            "SubagentStop": [{"hooks": [{"type": "command", "command": "c"}]}],
            "Stop": [{"hooks": [{"type": "prompt", "prompt": "x"}]}]
        }}));
        assert_eq!(h.hooks.len(), 4);
        assert_eq!(h.hooks[0].timeout, Duration::from_secs(5));
        assert_eq!(h.hooks[1].timeout, MAX_TIMEOUT);
        assert_eq!(h.hooks[2].timeout, DEFAULT_TIMEOUT);
        assert_eq!(h.hooks[3].timeout, DEFAULT_TIMEOUT);
        let m = h.hooks[0].matcher.as_ref().unwrap();
        assert!(m.is_match("Bash") && m.is_match("Edit") && !m.is_match("Bashful"));
        assert!(h.hooks[3].matcher.is_none());
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("SubagentStop") || warnings[1].contains("SubagentStop"));
    }

    #[test]
    fn hook_decisions_and_the_gate() {
        let deny = || Verdict::Deny("rule".into());
        let ask = || Verdict::Ask("why".into());
        let said = |p: &str| match p {
            "allow" => Some(Permission::Allow),
            "ask" => Some(Permission::Ask("h".into())),
            "deny" => Some(Permission::Deny("h".into())),
            _ => None,
        };
        let short = |v: Verdict| match v {
            Verdict::Allow => 'A',
            Verdict::Ask(_) => 'Q',
            Verdict::Deny(_) => 'D',
        };
        let cases = [
            (Verdict::Allow, "none", 'A'),
            (Verdict::Allow, "ask", 'Q'),
            (Verdict::Allow, "deny", 'D'),
            (ask(), "allow", 'A'),
            (ask(), "none", 'Q'),
            (deny(), "allow", 'D'),
            (deny(), "none", 'D'),
        ];
        for (verdict, hook, expected) in cases {
            assert_eq!(short(overrule(verdict, said(hook))), expected, "{hook}");
        }
    }

    #[test]
    fn json_answers() {
        let check = |json: Value, block: Option<&str>, permission: Option<Permission>| {
            let mut report = Report::default();
            read_json(&json, &mut report);
            assert_eq!(report.block.as_deref(), block, "{json}");
            assert_eq!(report.permission, permission, "{json}");
        };
        check(
            json!({"decision": "block", "reason": "no"}),
            Some("no"),
            None,
        );
        check(
            json!({"continue": false, "stopReason": "halt"}),
            Some("halt"),
            None,
        );
        check(
            json!({"hookSpecificOutput": {"permissionDecision": "deny", "permissionDecisionReason": "r"}}),
            None,
            Some(Permission::Deny("r".into())),
        );
        check(
            json!({"hookSpecificOutput": {"permissionDecision": "allow"}}),
            None,
            Some(Permission::Allow),
        );
        check(json!({"suppressOutput": true}), None, None);
    }
}
