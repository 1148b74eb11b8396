//! The tools the model can call: their schemas, turning a call's arguments into an
//! `Action`, and running an action once the gate has allowed it.
//!
//! A tool never fails the run: whatever goes wrong becomes text for the model
//! (`Outcome { is_error: true, .. }`). Deciding *whether* an action may run is
//! `approval`'s job, not this module's; skills and MCP tools are parsed here but run
//! by the agent, which holds them.

pub mod change;
pub mod clip;
pub mod disk;
pub mod fs;
pub mod search;
pub mod shell;
pub mod watchdog;

use crate::model::{ToolCall, ToolSpec};
use crate::paths::Workspace;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
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
    /// Loads a skill's instructions (see `context::skills`).
    Skill,
    /// A tool of an MCP server (`mcp__<server>__<tool>`); not in `ALL`, never in `--tools`.
    Mcp,
}

impl Tool {
    pub const ALL: [Tool; 7] = [
        Tool::Bash,
        Tool::Read,
        Tool::Write,
        Tool::Edit,
        Tool::Grep,
        Tool::Glob,
        Tool::Skill,
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
            Tool::Skill => "skill",
            Tool::Mcp => "mcp",
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
            Tool::Skill => "Skill",
            Tool::Mcp => "mcp",
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
    Skill {
        name: String,
    },
    /// `name` is the model's `mcp__<server>__<tool>`; the input goes to the server as is.
    Mcp {
        name: String,
        input: Value,
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
            Action::Skill { .. } => Tool::Skill,
            Action::Mcp { .. } => Tool::Mcp,
        }
    }

    /// The path the action touches, if it is a file tool.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Action::Bash { .. } | Action::Skill { .. } | Action::Mcp { .. } => None,
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
            Action::Skill { name } => format!("skill {name}"),
            Action::Mcp { name, input } => format!("{name} {input}"),
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

/// A file change as journals of format 1 stored it, whole copies before and after. Read
/// for undo; nib now journals a `change::Change` instead.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileChange {
    pub path: PathBuf,
    /// `None` when the file did not exist.
    pub before: Option<String>,
    pub after: String,
}

/// The result of running an action.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    /// What the model sees: at most `clip::LIMIT` bytes.
    pub content: String,
    pub is_error: bool,
    /// Set by `write` and `edit`.
    pub change: Option<change::Change>,
    /// A unified diff for people (write/edit), not sent to the model twice.
    pub diff: Option<String>,
    /// Lines a command printed, before the output was clipped to `content`.
    pub printed_lines: Option<u64>,
}

impl Outcome {
    pub fn ok(content: impl Into<String>) -> Outcome {
        Outcome {
            content: content.into(),
            ..Outcome::default()
        }
    }

    pub fn error(content: impl Into<String>) -> Outcome {
        Outcome {
            is_error: true,
            ..Outcome::ok(content)
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
    /// Confines commands; how far depends on `grant`.
    pub sandbox: &'a crate::sandbox::Sandbox,
    /// Why this action runs (the gate's built-in read-only set, or someone allowed it).
    pub grant: crate::sandbox::Grant,
    /// Whether grep and glob may read a file they found: the gate's deny and ask rules,
    /// asked per file (the gate only saw the search's path).
    pub may_read: &'a dyn Fn(&Path) -> bool,
    /// What the model has read or written, so a stale change is refused.
    pub seen: &'a fs::Seen,
}

/// The schemas of the given tools, as the model sees them. Every byte here is paid on
/// every request, so descriptions are terse.
pub fn specs(tools: &[Tool]) -> Vec<ToolSpec> {
    tools.iter().map(|&tool| spec(tool)).collect()
}

fn spec(tool: Tool) -> ToolSpec {
    let string = json!({"type": "string"});
    let boolean = json!({"type": "boolean"});
    let (description, schema) = match tool {
        Tool::Bash => (
            "Run a bash command.",
            object(
                json!({"command": string, "timeout": {"type": "integer", "description": "seconds, max 600"}}),
                &["command"],
            ),
        ),
        Tool::Read => (
            "Read a file or list a directory.",
            object(
                json!({"path": string, "offset": {"type": "integer", "description": "1-based line"}, "limit": {"type": "integer"}}),
                &["path"],
            ),
        ),
        Tool::Write => (
            "Create or replace a file.",
            object(
                json!({"path": string, "content": string}),
                &["path", "content"],
            ),
        ),
        Tool::Edit => (
            "Replace old with new in a file; old must be unique unless replace_all.",
            object(
                json!({"path": string, "old": string, "new": string, "replace_all": boolean}),
                &["path", "old", "new"],
            ),
        ),
        Tool::Grep => (
            "Search files by regex.",
            object(
                json!({"pattern": string, "path": string, "glob": string, "ignore_case": boolean}),
                &["pattern"],
            ),
        ),
        Tool::Glob => (
            "Find files by glob, newest first.",
            object(json!({"pattern": string, "path": string}), &["pattern"]),
        ),
        Tool::Skill => (
            "Load a skill by name.",
            object(json!({"name": string}), &["name"]),
        ),
        // Never offered: each MCP tool brings its own spec.
        Tool::Mcp => ("Call an MCP tool.", object(json!({}), &[])),
    };
    ToolSpec {
        name: tool.name().into(),
        description: description.into(),
        schema,
    }
}

fn object(properties: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": properties, "required": required})
}

/// Checks a call's arguments and types them. The error is text for the model.
pub fn parse(call: &ToolCall) -> Result<Action, String> {
    if let Some(why) = &call.invalid {
        return Err(why.clone());
    }
    if call.name.starts_with("mcp__") {
        return match call.input {
            Value::Object(_) => Ok(Action::Mcp {
                name: call.name.clone(),
                input: call.input.clone(),
            }),
            _ => Err(format!("{} arguments must be a JSON object", call.name)),
        };
    }
    let Some(tool) = Tool::from_name(&call.name) else {
        let names: Vec<&str> = Tool::ALL.iter().map(|t| t.name()).collect();
        return Err(format!(
            "unknown tool `{}`; use one of: {}",
            call.name,
            names.join(", ")
        ));
    };
    let Some(map) = call.input.as_object() else {
        return Err(format!("{} arguments must be a JSON object", tool.name()));
    };
    let args = Args { tool, map };
    Ok(match tool {
        Tool::Bash => Action::Bash {
            command: args.string(&["command", "cmd"])?,
            timeout: bash_timeout(args.number("timeout")?),
        },
        Tool::Read => Action::Read {
            path: args.path()?,
            offset: args.number("offset")?.map(|n| n.max(1) as usize),
            limit: args.number("limit")?.map(|n| n.max(1) as usize),
        },
        Tool::Write => Action::Write {
            path: args.path()?,
            content: args.string(&["content"])?,
        },
        Tool::Edit => Action::Edit {
            path: args.path()?,
            old: args.string(&["old", "old_string"])?,
            new: args.string(&["new", "new_string"])?,
            replace_all: args.flag("replace_all")?,
        },
        Tool::Grep => Action::Grep {
            pattern: args.string(&["pattern"])?,
            path: args.optional(&["path"])?.map(PathBuf::from),
            glob: args.optional(&["glob"])?,
            ignore_case: args.flag("ignore_case")?,
        },
        Tool::Glob => Action::Glob {
            pattern: args.string(&["pattern"])?,
            path: args.optional(&["path"])?.map(PathBuf::from),
        },
        Tool::Skill => Action::Skill {
            name: args.string(&["name", "skill"])?,
        },
        Tool::Mcp => return Err(format!("unknown tool `{}`", call.name)),
    })
}

/// The model's timeout in seconds, defaulted and bounded. Values of 1000 and more are
/// taken as milliseconds: some models learned a milliseconds convention elsewhere, and
/// no valid seconds value is that large.
fn bash_timeout(asked: Option<u64>) -> Duration {
    let secs = match asked {
        None | Some(0) => return shell::DEFAULT_TIMEOUT,
        Some(ms) if ms >= 1000 => ms.div_ceil(1000),
        Some(secs) => secs,
    };
    Duration::from_secs(secs).min(shell::MAX_TIMEOUT)
}

/// A call's arguments, read leniently: aliases, and numbers or booleans given as strings.
struct Args<'a> {
    tool: Tool,
    map: &'a Map<String, Value>,
}

impl Args<'_> {
    /// The first of `names` that is present and not null.
    fn get<'n>(&self, names: &[&'n str]) -> Option<(&'n str, &Value)> {
        names
            .iter()
            .find_map(|&n| self.map.get(n).filter(|v| !v.is_null()).map(|v| (n, v)))
    }

    fn string(&self, names: &[&str]) -> Result<String, String> {
        self.optional(names)?.ok_or_else(|| {
            format!(
                "{} needs `{}` (a string); call it again with that field",
                self.tool.name(),
                names[0]
            )
        })
    }

    fn optional(&self, names: &[&str]) -> Result<Option<String>, String> {
        match self.get(names) {
            None => Ok(None),
            Some((_, Value::String(s))) => Ok(Some(s.clone())),
            Some((name, other)) => Err(format!("`{name}` must be a string, not {other}")),
        }
    }

    fn path(&self) -> Result<PathBuf, String> {
        let path = self.string(&["path", "file_path"])?;
        if path.is_empty() {
            return Err(format!("{} needs a non-empty `path`", self.tool.name()));
        }
        Ok(PathBuf::from(path))
    }

    fn number(&self, name: &str) -> Result<Option<u64>, String> {
        let bad = |v: &Value| format!("`{name}` must be a non-negative integer, not {v}");
        match self.get(&[name]) {
            None => Ok(None),
            Some((_, Value::String(s))) if s.trim().is_empty() => Ok(None),
            Some((_, v @ Value::String(s))) => s.trim().parse().map(Some).map_err(|_| bad(v)),
            Some((_, v @ Value::Number(n))) => match (n.as_u64(), n.as_f64()) {
                (Some(n), _) => Ok(Some(n)),
                (None, Some(f)) if f >= 0.0 && f.fract() == 0.0 => Ok(Some(f as u64)),
                _ => Err(bad(v)),
            },
            Some((_, v)) => Err(bad(v)),
        }
    }

    fn flag(&self, name: &str) -> Result<bool, String> {
        match self.get(&[name]) {
            None => Ok(false),
            Some((_, Value::Bool(b))) => Ok(*b),
            Some((_, Value::String(s))) if s.eq_ignore_ascii_case("true") => Ok(true),
            Some((_, Value::String(s))) if s.eq_ignore_ascii_case("false") => Ok(false),
            Some((_, v)) => Err(format!("`{name}` must be true or false, not {v}")),
        }
    }
}

/// A `write` or `edit` checked and planned, not yet applied (the agent journals the
/// change first), or why it is refused; `None` for other actions.
pub fn plan(action: &Action, ctx: &Context) -> Option<Result<fs::Plan, String>> {
    let ws = ctx.workspace;
    match action {
        Action::Write { path, content } => Some(fs::write(&ws.resolve(path), content, ctx)),
        Action::Edit {
            path,
            old,
            new,
            replace_all,
        } => Some(fs::edit(&ws.resolve(path), old, new, *replace_all, ctx)),
        _ => None,
    }
}

/// Runs an allowed action; skills and MCP tools are the agent's to run.
pub fn execute(action: &Action, ctx: &Context) -> Outcome {
    let ws = ctx.workspace;
    let under = |path: &Option<PathBuf>| match path {
        Some(p) => ws.resolve(p),
        None => ws.root.clone(),
    };
    let search = |path: &Option<PathBuf>| search::Search {
        root: under(path),
        ws,
        may_read: ctx.may_read,
    };
    match action {
        Action::Bash { command, timeout } => shell::run(command, *timeout, ctx),
        Action::Read {
            path,
            offset,
            limit,
        } => fs::read(&ws.resolve(path), *offset, *limit, ctx),
        Action::Write { .. } | Action::Edit { .. } => match plan(action, ctx) {
            // Nothing journals the old content here, so a hard-linked file is refused.
            Some(Ok(plan)) => plan.apply(disk::Links::Refuse, ctx.seen),
            Some(Err(why)) => Outcome::error(why),
            None => Outcome::error("not a file change"),
        },
        Action::Grep {
            pattern,
            path,
            glob,
            ignore_case,
        } => search::grep(pattern, glob.as_deref(), *ignore_case, &search(path)),
        Action::Glob { pattern, path } => search::glob(pattern, &search(path)),
        Action::Skill { .. } | Action::Mcp { .. } => {
            Outcome::error(format!("{} is not run by the tools", action.summary()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Surroundings;

    fn compact_len(spec: &ToolSpec) -> usize {
        let json = json!({"name": spec.name, "description": spec.description, "input_schema": spec.schema});
        serde_json::to_string(&json).unwrap().len()
    }

    #[test]
    fn specs_are_small() {
        let all = specs(&Tool::ALL);
        assert_eq!(all.len(), 7);
        let total: usize = all.iter().map(compact_len).sum();
        assert!(total < 1600, "all specs take {total} bytes");
        assert!(
            compact_len(&all[0]) < 350,
            "bash takes {} bytes",
            compact_len(&all[0])
        );
        for spec in &all {
            let required = spec.schema["required"].as_array().unwrap();
            for field in required {
                let name = field.as_str().unwrap();
                assert!(
                    spec.schema["properties"][name].is_object(),
                    "{} {name}",
                    spec.name
                );
            }
        }
        let bash = &all[0].schema["properties"];
        assert_eq!(bash["command"]["type"], "string");
        assert_eq!(bash["timeout"]["type"], "integer");
    }

    fn call(name: &str, input: Value) -> ToolCall {
        ToolCall {
            id: "c1".to_string(),
            name: name.to_string(),
            input,
            invalid: None,
        }
    }

    fn check(name: &str, input: Value, expected: Result<Action, &str>) {
        let got = parse(&call(name, input.clone()));
        assert_eq!(got, expected.map_err(str::to_string), "{name} {input}");
    }

    fn bash(command: &str, secs: u64) -> Result<Action, &'static str> {
        Ok(Action::Bash {
            command: command.to_string(),
            timeout: Duration::from_secs(secs),
        })
    }

    #[test]
    fn parse_bash() {
        check("bash", json!({"command": "ls"}), bash("ls", 120));
        check("bash", json!({"cmd": "ls"}), bash("ls", 120));
        check(
            "Bash",
            json!({"command": "ls", "timeout": 5}),
            bash("ls", 5),
        );
        check(
            "bash",
            json!({"command": "ls", "timeout": "30"}),
            bash("ls", 30),
        );
        check(
            "bash",
            json!({"command": "ls", "timeout": 30.0}),
            bash("ls", 30),
        );
        check(
            "bash",
            json!({"command": "ls", "timeout": 9999}),
            bash("ls", 10),
        );
        check(
            "bash",
            json!({"command": "ls", "timeout": 600}),
            bash("ls", 600),
        );
        check(
            "bash",
            json!({"command": "ls", "timeout": 900000}),
            bash("ls", 600),
        );
        check(
            "bash",
            json!({"command": "ls", "timeout": null}),
            bash("ls", 120),
        );
        check(
            "bash",
            json!({"timeout": 5}),
            Err("bash needs `command` (a string); call it again with that field"),
        );
        check(
            "bash",
            json!({"command": "ls", "timeout": "soon"}),
            Err("`timeout` must be a non-negative integer, not \"soon\""),
        );
        check(
            "bash",
            json!({"command": "ls", "timeout": -1}),
            Err("`timeout` must be a non-negative integer, not -1"),
        );
        check(
            "bash",
            json!({"command": 7}),
            Err("`command` must be a string, not 7"),
        );
        check(
            "bash",
            json!("ls"),
            Err("bash arguments must be a JSON object"),
        );
    }

    #[test]
    fn parse_file_and_search_tools() {
        let read = |offset, limit| {
            Ok(Action::Read {
                path: PathBuf::from("a.rs"),
                offset,
                limit,
            })
        };
        check("read", json!({"path": "a.rs"}), read(None, None));
        check(
            "read",
            json!({"file_path": "a.rs", "offset": "3", "limit": 10}),
            read(Some(3), Some(10)),
        );
        check(
            "read",
            json!({"path": "a.rs", "offset": 0}),
            read(Some(1), None),
        );
        check(
            "read",
            json!({"path": ""}),
            Err("read needs a non-empty `path`"),
        );
        check(
            "write",
            json!({"path": "a.rs"}),
            Err("write needs `content` (a string); call it again with that field"),
        );
        check(
            "edit",
            json!({"path": "a", "old_string": "x", "new_string": "y", "replace_all": "true"}),
            Ok(Action::Edit {
                path: PathBuf::from("a"),
                old: "x".to_string(),
                new: "y".to_string(),
                replace_all: true,
            }),
        );
        check(
            "edit",
            json!({"path": "a", "old": "x", "new": "y", "replace_all": 1}),
            Err("`replace_all` must be true or false, not 1"),
        );
        check(
            "grep",
            json!({"pattern": "fn", "glob": "*.rs", "ignore_case": true}),
            Ok(Action::Grep {
                pattern: "fn".to_string(),
                path: None,
                glob: Some("*.rs".to_string()),
                ignore_case: true,
            }),
        );
        check(
            "glob",
            json!({"pattern": "**/*.rs", "path": "src"}),
            Ok(Action::Glob {
                pattern: "**/*.rs".to_string(),
                path: Some(PathBuf::from("src")),
            }),
        );
        check(
            "rm",
            json!({}),
            Err("unknown tool `rm`; use one of: bash, read, write, edit, grep, glob, skill"),
        );
    }

    #[test]
    fn parse_refuses_invalid_calls() {
        let mut bad = call("bash", json!({"command": "rm -rf /"}));
        bad.invalid = Some("the reply was cut by the token limit".to_string());
        assert_eq!(
            parse(&bad),
            Err("the reply was cut by the token limit".to_string())
        );
    }

    #[test]
    fn execute_dispatches_with_paths_resolved_in_the_workspace() {
        let bench = Surroundings::new("execute");
        let (ctx, tmp) = (bench.ctx(), &bench.dir);
        let write = Action::Write {
            path: PathBuf::from("notes/a.txt"),
            content: "hello\n".to_string(),
        };
        let out = execute(&write, &ctx);
        assert_eq!(out.content, "created notes/a.txt (1 line)");
        assert_eq!(
            std::fs::read_to_string(tmp.join("notes/a.txt")).unwrap(),
            "hello\n"
        );
        let read = Action::Read {
            path: PathBuf::from("notes/a.txt"),
            offset: None,
            limit: None,
        };
        assert_eq!(execute(&read, &ctx).content, "     1\thello\n");
        let grep = Action::Grep {
            pattern: "hel+o".to_string(),
            path: None,
            glob: None,
            ignore_case: false,
        };
        assert_eq!(execute(&grep, &ctx).content, "notes/a.txt:1:hello");
        let bash = Action::Bash {
            command: "cat notes/a.txt".to_string(),
            timeout: Duration::from_secs(10),
        };
        assert_eq!(execute(&bash, &ctx).content, "exit status: 0\nhello\n");
        // Skills and MCP tools live above this module: the agent runs them.
        let skill = Action::Skill {
            name: "notes".to_string(),
        };
        let out = execute(&skill, &ctx);
        assert!(out.is_error, "{}", out.content);
    }
}
