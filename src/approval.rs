//! The approval gate: permission rules and modes → a `Verdict` for each action.
//!
//! Pure: it reads settings files when built, then decides without touching the
//! system. Asking the user is the UI's job; this module only says that it must ask.

use crate::tools::{Action, Workspace};

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

/// The gate: compiled rules, the mode, the workspace.
pub struct Gate {
    pub mode: Mode,
    pub workspace: Workspace,
}

impl Gate {
    /// Builds the gate from CLI rules and mode. Malformed rules are errors that name
    /// the rule.
    pub fn new(cli: RuleSet, mode: Mode, workspace: Workspace) -> Result<Gate, String> {
        let _ = cli;
        Ok(Gate { mode, workspace })
    }

    /// Decides one action.
    pub fn check(&self, _action: &Action) -> Verdict {
        todo!("gate check")
    }

    /// The rule an "always" answer would add for this action, e.g. `Bash(npm test *)`;
    /// `None` when no safe rule exists (compound commands).
    pub fn suggest_rule(&self, _action: &Action) -> Option<String> {
        None
    }

    /// Adds an allow rule for the rest of this session.
    pub fn allow(&mut self, _rule: &str) -> Result<(), String> {
        Ok(())
    }
}

pub fn load(
    cli: RuleSet,
    mode: Option<Mode>,
    workspace: Workspace,
    _home: Option<std::path::PathBuf>,
    _nib_config_dir: Option<std::path::PathBuf>,
) -> Result<Gate, String> {
    Gate::new(cli, mode.unwrap_or(Mode::Default), workspace)
}

pub fn save_project_rule(_root: &std::path::Path, _rule: &str) -> Result<(), String> {
    Ok(())
}

impl Gate {
    pub fn mode(&self) -> Mode {
        self.mode
    }
    pub fn warnings(&self) -> &[String] {
        &[]
    }
}
