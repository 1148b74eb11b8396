//! The tools the model can call: their schemas, turning a call's arguments into an
//! `Action`, and running an action once the gate has allowed it.
//!
//! A tool never fails the run: whatever goes wrong becomes text for the model
//! (`Outcome { is_error: true, .. }`). Deciding *whether* an action may run is
//! `approval.rs`'s job, not this module's.

pub mod clip;
pub mod fs;
pub mod search;
pub mod shell;

use crate::model::{ToolCall, ToolSpec};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// The closed set of tools.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tool {
    Bash,
    Read,
    Write,
    Edit,
    Grep,
    Glob,
}

impl Tool {
    pub const ALL: [Tool; 6] = [
        Tool::Bash,
        Tool::Read,
        Tool::Write,
        Tool::Edit,
        Tool::Grep,
        Tool::Glob,
    ];

    /// The name the model sees (lowercase).
    pub fn name(self) -> &'static str {
        match self {
            Tool::Bash => "bash",
            Tool::Read => "read",
            Tool::Write => "write",
            Tool::Edit => "edit",
            Tool::Grep => "grep",
            Tool::Glob => "glob",
        }
    }

    /// The name permission rules use (Claude Code's: `Bash`, `Read`, ...).
    pub fn rule_name(self) -> &'static str {
        match self {
            Tool::Bash => "Bash",
            Tool::Read => "Read",
            Tool::Write => "Write",
            Tool::Edit => "Edit",
            Tool::Grep => "Grep",
            Tool::Glob => "Glob",
        }
    }

    /// Accepts the model's name or the rule name, case-insensitively.
    pub fn from_name(name: &str) -> Option<Tool> {
        Tool::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(name))
    }
}

/// A tool call with its arguments checked and typed. Paths are as the model gave them
/// (resolve with `Workspace::resolve`).
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Bash {
        command: String,
        timeout: Duration,
    },
    Read {
        path: PathBuf,
        offset: Option<usize>,
        limit: Option<usize>,
    },
    Write {
        path: PathBuf,
        content: String,
    },
    Edit {
        path: PathBuf,
        old: String,
        new: String,
        replace_all: bool,
    },
    Grep {
        pattern: String,
        path: Option<PathBuf>,
        glob: Option<String>,
        ignore_case: bool,
    },
    Glob {
        pattern: String,
        path: Option<PathBuf>,
    },
}

impl Action {
    pub fn tool(&self) -> Tool {
        match self {
            Action::Bash { .. } => Tool::Bash,
            Action::Read { .. } => Tool::Read,
            Action::Write { .. } => Tool::Write,
            Action::Edit { .. } => Tool::Edit,
            Action::Grep { .. } => Tool::Grep,
            Action::Glob { .. } => Tool::Glob,
        }
    }

    /// The path the action touches, if it is a file tool.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Action::Bash { .. } => None,
            Action::Read { path, .. } | Action::Write { path, .. } | Action::Edit { path, .. } => {
                Some(path)
            }
            Action::Grep { path, .. } | Action::Glob { path, .. } => path.as_deref(),
        }
    }

    /// One line for people: the command, or the tool and its path.
    pub fn summary(&self) -> String {
        match self {
            Action::Bash { command, .. } => command.clone(),
            Action::Grep { pattern, path, .. } | Action::Glob { pattern, path } => match path {
                Some(p) => format!("{} {pattern} in {}", self.tool().name(), p.display()),
                None => format!("{} {pattern}", self.tool().name()),
            },
            _ => format!(
                "{} {}",
                self.tool().name(),
                self.path().unwrap_or(Path::new("")).display()
            ),
        }
    }
}

/// The directory nib works in; file paths are resolved against it.
#[derive(Clone, Debug)]
pub struct Workspace {
    /// Canonical path of the working directory.
    pub root: PathBuf,
}

impl Workspace {
    /// Resolves `path` against the workspace root (absolute paths stay absolute; `~/`
    /// is the home directory). Does not touch the filesystem beyond canonicalising the
    /// longest existing prefix, so it works for files that do not exist yet.
    pub fn resolve(&self, _path: &Path) -> PathBuf {
        todo!("workspace resolve")
    }

    /// True when `path` (resolved, symlinks followed) lies inside the workspace,
    /// comparing whole components.
    pub fn contains(&self, _path: &Path) -> bool {
        todo!("workspace contains")
    }
}

/// A file a `write` or `edit` changed: what was there before, for the journal and undo.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileChange {
    pub path: PathBuf,
    /// `None` when the file did not exist.
    pub before: Option<String>,
    pub after: String,
}

/// The result of running an action.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// What the model sees: at most `clip::LIMIT` bytes.
    pub content: String,
    pub is_error: bool,
    /// Set by `write` and `edit`.
    pub change: Option<FileChange>,
    /// A unified diff for people (write/edit), not sent to the model twice.
    pub diff: Option<String>,
}

impl Outcome {
    pub fn ok(content: impl Into<String>) -> Outcome {
        Outcome {
            content: content.into(),
            is_error: false,
            change: None,
            diff: None,
        }
    }

    pub fn error(content: impl Into<String>) -> Outcome {
        Outcome {
            content: content.into(),
            is_error: true,
            change: None,
            diff: None,
        }
    }
}

/// What a running tool may need from its surroundings.
pub struct Context<'a> {
    pub workspace: &'a Workspace,
    /// Set when the user interrupts: a running command is killed with its group.
    pub cancel: &'a AtomicBool,
    /// The environment for child processes (already scrubbed of secrets).
    pub env: &'a [(String, String)],
}

/// The schemas of the given tools, as the model sees them.
pub fn specs(_tools: &[Tool]) -> Vec<ToolSpec> {
    todo!("tool specs")
}

/// Checks a call's arguments and types them. The error is text for the model.
pub fn parse(_call: &ToolCall) -> Result<Action, String> {
    todo!("parse tool call")
}

/// Runs an allowed action.
pub fn execute(_action: &Action, _ctx: &Context) -> Outcome {
    todo!("execute")
}
