//! The approval gate: permission rules and modes → a `Verdict` for each action.
//!
//! This file holds the gate itself: the mode, the compiled rules and where they came
//! from, rules added during a session, and the folder-trust question. The gate's
//! jobs are in files of their own: `settings.rs` reads the settings files and writes
//! an "always in this project" answer, `trust.rs` keeps folder trust (also written),
//! `verdict.rs` decides one action, `suggest.rs` says which rule an answer would save,
//! `rules.rs` is the rule syntax, `lexer.rs` splits a command line as a shell would,
//! `shell.rs` knows which commands run or write something, `readers.rs` is the
//! read-only command table, `commands.rs` finds the commands a line runs (nested ones
//! included), and `files.rs` resolves globs, `~` and symlinks as the shell would.
//! Asking the user is the UI's job; the gate only says that it must ask.

mod commands;
mod files;
mod git;
mod lexer;
mod readers;
pub mod rules;
pub mod settings;
mod shell;
mod suggest;
pub mod trust;
mod verdict;

use crate::paths::{Workspace, canonical_prefix};
use rules::{Anchors, Rule};
use std::path::{Path, PathBuf};

/// How much runs without asking (`--permission-mode`, settings `defaultMode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Ask for bash and writes.
    Default,
    /// File edits inside the workspace run.
    AcceptEdits,
    /// Read-only: no writes; bash only for read-only commands.
    Plan,
    /// Deny whatever is not allowed.
    DontAsk,
    /// Everything runs (`--dangerously-skip-permissions`).
    Bypass,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "default" => Some(Mode::Default),
            "acceptEdits" => Some(Mode::AcceptEdits),
            "plan" => Some(Mode::Plan),
            "dontAsk" => Some(Mode::DontAsk),
            "bypassPermissions" => Some(Mode::Bypass),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::Default => "default",
            Mode::AcceptEdits => "acceptEdits",
            Mode::Plan => "plan",
            Mode::DontAsk => "dontAsk",
            Mode::Bypass => "bypassPermissions",
        }
    }
}

/// What the gate says about one action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// A person must decide; the string says why (for the prompt).
    Ask(String),
    /// Refused; the string says why (for the model).
    Deny(String),
}

/// Rules as written by users, before they are compiled.
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    pub allow: Vec<String>,
    pub ask: Vec<String>,
    pub deny: Vec<String>,
}

/// Where rules came from; malformed allow and ask rules in settings files are
/// skipped with a warning, anything else malformed is an error.
struct Source {
    name: String,
    rules: RuleSet,
    strict: bool,
}

/// The gate: compiled rules, the mode, the workspace.
#[derive(Clone)]
pub struct Gate {
    mode: Mode,
    /// Canonical workspace root.
    root: PathBuf,
    home: Option<PathBuf>,
    /// nib's own settings and data directories.
    nib_dirs: Vec<PathBuf>,
    /// Outside the workspace, directories read without asking (skill folders).
    read_dirs: Vec<PathBuf>,
    /// More directories that count as the workspace (`--add-dir`, `additionalDirectories`).
    extra_roots: Vec<PathBuf>,
    allow: Vec<Rule>,
    ask: Vec<Rule>,
    deny: Vec<Rule>,
    warnings: Vec<String>,
    /// Project rules and mode waiting for the folder's trust.
    held: Vec<Held>,
    /// The user already said whether they trust this folder.
    trust_answered: bool,
    /// The mode was chosen on the command line (or in nib's settings): trusting a
    /// folder does not change it.
    explicit_mode: bool,
    /// nib's data directory (folder trust).
    nib_data: Option<PathBuf>,
}

/// Allow rules and `defaultMode` of a project file that wait for the folder's trust.
#[derive(Clone, Debug)]
pub struct Held {
    /// The file, as shown to the user.
    pub file: String,
    pub allow: Vec<String>,
    pub mode: Option<String>,
}

/// The three lists of one source, tagged with their kind.
fn lists(rules: &RuleSet) -> [(Kind, &Vec<String>); 3] {
    [
        (Kind::Deny, &rules.deny),
        (Kind::Ask, &rules.ask),
        (Kind::Allow, &rules.allow),
    ]
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Allow,
    Ask,
    Deny,
}

impl Gate {
    fn build(
        sources: Vec<Source>,
        mode: Mode,
        workspace: Workspace,
        nib_dirs: Vec<PathBuf>,
    ) -> Result<Gate, String> {
        let root = canonical_prefix(&workspace.root);
        let mut gate = Gate {
            mode,
            root,
            home: workspace.home,
            nib_dirs: nib_dirs.iter().map(|d| canonical_prefix(d)).collect(),
            read_dirs: Vec::new(),
            extra_roots: Vec::new(),
            allow: Vec::new(),
            ask: Vec::new(),
            deny: Vec::new(),
            warnings: Vec::new(),
            held: Vec::new(),
            trust_answered: false,
            explicit_mode: false,
            nib_data: None,
        };
        for source in &sources {
            for (kind, texts) in lists(&source.rules) {
                for text in texts {
                    gate.add(
                        kind,
                        text,
                        &source.name,
                        source.strict || kind == Kind::Deny,
                    )?;
                }
            }
        }
        Ok(gate)
    }

    fn anchors(&self) -> Anchors<'_> {
        Anchors {
            root: &self.root,
            home: self.home.as_deref(),
        }
    }

    fn add(&mut self, kind: Kind, text: &str, source: &str, strict: bool) -> Result<(), String> {
        let rule = match rules::parse(text, source, self.anchors()) {
            Ok(Some(rule)) => rule,
            Ok(None) => return Ok(()),
            Err(e) if strict => return Err(format!("{e}; fix or remove it")),
            Err(e) => {
                self.warnings.push(format!("{e}; the rule is ignored"));
                return Ok(());
            }
        };
        match kind {
            Kind::Allow => self.allow.push(rule),
            Kind::Ask => self.ask.push(rule),
            Kind::Deny => self.deny.push(rule),
        }
        Ok(())
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Switches the mode (the REPL's Shift-Tab and `/permissions MODE`).
    pub fn set_mode(&mut self, mode: Mode) {
        self.mode = mode;
    }

    /// Problems found while loading (malformed allow/ask rules, ignored settings).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The project's allow rules and `defaultMode` that wait for the folder's trust,
    /// when the user has not been asked yet (empty otherwise).
    pub fn trust_question(&self) -> &[Held] {
        match self.trust_answered {
            true => &[],
            false => &self.held,
        }
    }

    /// One line saying which files' rules are ignored and how to apply them, when
    /// some are.
    pub fn untrusted_notice(&self) -> Option<String> {
        let files: Vec<&str> = self.held.iter().map(|h| h.file.as_str()).collect();
        (!files.is_empty()).then(|| {
            format!(
                "ignoring the allow rules and defaultMode of {} because this folder is not \
                 trusted; run `nib trust` here to apply them",
                files.join(" and ")
            )
        })
    }

    /// Records the user's answer for this folder; on yes, the held rules and mode apply
    /// from now on.
    pub fn answer_trust(&mut self, trusted: bool) -> Result<(), String> {
        if let Some(data) = &self.nib_data {
            trust::answer(data, &self.root, trusted)?;
        }
        self.trust_answered = true;
        if !trusted {
            return Ok(());
        }
        for held in std::mem::take(&mut self.held) {
            for rule in &held.allow {
                self.add(Kind::Allow, rule, &held.file, false)?;
            }
            let mode = held.mode.as_deref();
            let mode =
                mode.and_then(|m| settings::settings_mode(&held.file, m, true, &mut self.warnings));
            if let Some(mode) = mode.filter(|_| !self.explicit_mode) {
                self.mode = mode;
            }
        }
        Ok(())
    }

    /// Every rule in force, deny first, each with the file (or flag, or session) it
    /// came from: `deny: Read(./.env) (from ~/.claude/settings.json)`.
    pub fn rules_in_force(&self) -> Vec<String> {
        let kinds = [
            ("deny", &self.deny),
            ("ask", &self.ask),
            ("allow", &self.allow),
        ];
        kinds
            .iter()
            .flat_map(|(kind, rules)| {
                rules
                    .iter()
                    .map(move |r| format!("{kind}: {}", r.describe()))
            })
            .collect()
    }

    /// Allows `rule` for the rest of this session and saves it to the project's
    /// `.claude/settings.local.json`; remembered as the user's own, so it applies in
    /// this folder even before the folder is trusted.
    pub fn save_project_rule(&mut self, rule: &str) -> Result<(), String> {
        self.allow(rule)?;
        settings::write_project_rule(&self.root, rule)?;
        match &self.nib_data {
            Some(data) => trust::saved(data, &self.root, rule),
            None => Ok(()),
        }
    }

    /// Adds an allow rule for the rest of this session.
    pub fn allow(&mut self, rule: &str) -> Result<(), String> {
        let before = self.allow.len();
        self.add(Kind::Allow, rule, "this session", true)?;
        if self.allow.len() == before {
            return Err(format!(
                "`{rule}` names a tool nib does not have; use Bash, Read, Edit, Write, Glob or Grep"
            ));
        }
        Ok(())
    }

    /// Lets reads (file tools and read-only commands) under `dir` run without asking,
    /// as inside the workspace; deny and ask rules still apply, writes are unchanged.
    pub fn allow_read_dir(&mut self, dir: &Path) {
        self.read_dirs.push(canonical_prefix(dir));
    }

    /// Makes `dir` part of the workspace: reads and edits there are judged as inside it.
    pub fn add_root(&mut self, dir: &Path) {
        self.extra_roots.push(canonical_prefix(dir));
    }
}

#[cfg(test)]
mod class_tests;
#[cfg(test)]
mod tests;
