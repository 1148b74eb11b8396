//! Suggestions: the rule an "always" answer would save for an action, and which rule
//! would let it run at all. A rule is suggested only when it cannot allow more than
//! the user saw: never a prefix for compound, unsafe or destructive commands.

use super::lexer::{self, Word};
use super::shell;
use super::verdict::glob_base;
use super::{Gate, Verdict};
use crate::tools::{Action, Tool};
use std::path::Path;

/// Package runners whose `run` takes a script name: `npm run test` is the prefix.
const SCRIPT_RUNNERS: &[&str] = &["npm", "pnpm", "yarn", "bun"];

/// Commands that destroy or send data: an "always" answer allows the exact command
/// only, never a prefix.
const EXACT_ONLY: &[&str] = &[
    "rm", "rmdir", "mv", "cp", "dd", "chmod", "chown", "ln", "kill", "pkill", "killall", "curl",
    "wget", "ssh", "scp", "rsync", "sudo", "doas", "truncate", "shred",
];

impl Gate {
    /// The rule an "always" answer would add for this action, e.g. `Bash(npm test *)`;
    /// `None` when no safe rule exists (compound or unsafe commands, protected paths).
    pub fn suggest_rule(&self, action: &Action) -> Option<String> {
        match action {
            Action::Bash { command, .. } => suggest_bash(command),
            Action::Mcp { name, .. } => Some(name.clone()),
            Action::Glob { pattern, path } => {
                let path = self.resolve(&glob_base(path.as_deref(), pattern));
                Some(format!("Read({})", self.rule_path(&path)))
            }
            _ => {
                let path = self.resolve(action.path().unwrap_or(Path::new(".")));
                match action.tool() {
                    Tool::Write | Tool::Edit if self.protected(&path).is_some() => None,
                    Tool::Write | Tool::Edit => Some(format!("Edit({})", self.rule_path(&path))),
                    _ => Some(format!("Read({})", self.rule_path(&path))),
                }
            }
        }
    }

    /// A rule that would let `action` run: `suggestion` (from `suggest_rule`), else the
    /// bare tool rule when that would do, else `None` (only bypassing would).
    pub fn allowing_rule(&self, action: &Action, suggestion: Option<&str>) -> Option<String> {
        let candidates = suggestion.into_iter().chain([action.tool().rule_name()]);
        candidates.map(str::to_string).find(|rule| {
            let mut gate = self.clone();
            gate.allow(rule).is_ok() && gate.check(action) == Verdict::Allow
        })
    }
}

/// A prefix rule for one plain command (`Bash(cargo test *)`); the exact command for
/// one word, a destructive command, or a program followed by options
/// (`git --no-pager log`); `None` for anything compound or unsafe, and for commands
/// that run other commands (`timeout`, `env`, `command`, shells…), whose prefix would
/// allow whatever they run.
fn suggest_bash(command: &str) -> Option<String> {
    let parts = lexer::parse(command).ok()?;
    let [part] = parts.as_slice() else {
        return None;
    };
    let words = &part.words;
    if shell::unsafe_reason(part).is_some()
        || words.is_empty()
        || words
            .iter()
            .any(|w| w.dynamic || w.glob || w.text.contains('*'))
    {
        return None;
    }
    let name = words[0].text.as_str();
    if shell::runs_commands(name) {
        return None;
    }
    let subcommand = |w: &Word| {
        let t = w.text.as_str();
        t.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_:.".contains(c))
    };
    if words.len() == 1 || EXACT_ONLY.contains(&shell::basename(name)) || !subcommand(&words[1]) {
        return Some(format!("Bash({})", shell::render(words)));
    }
    let mut prefix = vec![shell::render(&words[..1]), words[1].text.clone()];
    let runs_script = SCRIPT_RUNNERS.contains(&name) && words[1].text == "run";
    if let Some(script) = words.get(2).filter(|w| runs_script && subcommand(w)) {
        prefix.push(script.text.clone());
    }
    Some(format!("Bash({} *)", prefix.join(" ")))
}
