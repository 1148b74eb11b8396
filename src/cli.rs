//! The command line: argv → `Args` (pure, no I/O) and the help text.
//!
//! Flags follow Claude Code's, so scripts written for it work with nib.
//! What the flags *mean* in this environment (env vars, settings files, probing for a
//! local server) is `config.rs`'s job.

use crate::approval::Mode;
use crate::approval::rules::parse_tool_list;
use crate::model::{Effort, Provider};
use crate::sandbox::Level;
use crate::tools::Tool;
use std::path::PathBuf;

/// Default cap on model calls per task.
pub const DEFAULT_MAX_TURNS: u32 = 200;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OutputFormat {
    #[default]
    Text,
    Json,
    StreamJson,
}

/// What the user asked nib to do.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Command {
    /// Run a task: headless with `-p`, else the REPL.
    #[default]
    Run,
    Help,
    Version,
    /// `nib sessions [--all] [--json]`
    Sessions {
        all: bool,
        json: bool,
    },
    /// `nib undo [N]`
    Undo {
        count: usize,
    },
    /// `nib trust`: this folder's own settings may grant permissions.
    Trust,
    /// `nib SUBCOMMAND --help`: that subcommand's help text.
    SubcommandHelp(Subcommand),
}

/// The words that make nib do something other than a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subcommand {
    Sessions,
    Undo,
    Trust,
}

impl Subcommand {
    fn from_word(word: &str) -> Option<Subcommand> {
        match word {
            "sessions" => Some(Subcommand::Sessions),
            "undo" => Some(Subcommand::Undo),
            "trust" => Some(Subcommand::Trust),
            _ => None,
        }
    }

    pub fn help(self) -> &'static str {
        match self {
            Subcommand::Sessions => SESSIONS_HELP,
            Subcommand::Undo => UNDO_HELP,
            Subcommand::Trust => TRUST_HELP,
        }
    }

    fn usage(self) -> &'static str {
        self.help().lines().next().unwrap_or_default()
    }
}

pub const SESSIONS_HELP: &str = "\
Usage: nib sessions [--all] [--json]

Lists the saved sessions of this directory, newest first: id, age, turns, model and
the first prompt. Continue one with nib -r ID.

      --all                     sessions of every directory
      --json                    one JSON array, for scripts
  -h, --help                    this help
";

pub const TRUST_HELP: &str = "\
Usage: nib trust

Trusts this folder: from now on the allow rules and defaultMode of its own
.claude/settings.json and .claude/settings.local.json apply (deny and ask rules
always do). The answer is kept in nib's data directory.

  -h, --help                    this help
";

pub const UNDO_HELP: &str = "\
Usage: nib undo [N]

Reverts the last N file changes (default 1) that nib made, newest first, in the latest
session of this directory that changed a file. A file changed since nib wrote it is
left alone, and so is everything older.

  -h, --help                    this help
";

/// How to pick the session to continue.
#[derive(Clone, Debug, PartialEq)]
pub enum Resume {
    /// `-c`: the latest session of this directory.
    Latest,
    /// `-r ID` (a unique prefix is enough).
    Id(String),
    /// `-r` with no id: a picker.
    Pick,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Args {
    pub command: Command,
    pub print: bool,
    pub prompt: Option<String>,
    pub model: Option<String>,
    pub base_url: Option<String>,
    pub provider: Option<Provider>,
    /// `--effort`: reasoning effort for models that take one.
    pub effort: Option<Effort>,
    pub max_turns: Option<u32>,
    pub max_budget_usd: Option<f64>,
    pub output_format: OutputFormat,
    pub permission_mode: Option<Mode>,
    /// `--sandbox LEVEL`: how far commands reach (settings `sandbox` otherwise).
    pub sandbox: Option<Level>,
    /// `--auto`: a call that would ask runs confined instead.
    pub auto: bool,
    pub allowed_tools: Vec<String>,
    pub disallowed_tools: Vec<String>,
    /// `--tools bash,read`: the only tools the model is offered.
    pub tools: Option<Vec<Tool>>,
    pub system_prompt: Option<String>,
    pub system_prompt_file: Option<PathBuf>,
    pub append_system_prompt: Option<String>,
    pub append_system_prompt_file: Option<PathBuf>,
    pub output_last_message: Option<PathBuf>,
    pub resume: Option<Resume>,
    pub fork_session: bool,
    pub session_id: Option<String>,
    pub no_session_persistence: bool,
    pub terse: bool,
    pub verbose: bool,
    pub print_system_prompt: bool,
    /// `--settings FILE|JSON`: one more settings file, above the others.
    pub settings: Option<String>,
    /// `--add-dir DIR`: more directories that count as the workspace.
    pub add_dirs: Vec<PathBuf>,
    /// `--mcp-config FILE|JSON`: more MCP servers.
    pub mcp_configs: Vec<String>,
    /// `--strict-mcp-config`: only the servers of `--mcp-config`.
    pub strict_mcp_config: bool,
    /// `--input-format stream-json`: headless prompts are JSON lines on stdin.
    pub stream_input: bool,
}

/// The lines above the options in `--help`.
const USAGE: &str = "\
nib: a minimal, local-first terminal coding agent

Usage: nib [options] [prompt]           interactive session (REPL)
       nib -p [options] [prompt]        headless: run one task, print the answer, exit
       nib sessions [--all] [--json]    list saved sessions of this directory (or all)
       nib trust                        let this folder's .claude/settings*.json allow tools
       nib undo [N]                     revert the last N file changes nib made here
       nib SUBCOMMAND --help            help for sessions, undo or trust

The prompt is the argument; with -p, piped stdin is appended to it.
";

/// The last line of `--help`.
const EXIT_STATUS: &str =
    "Exit status: 0 success, 1 the task failed, 2 bad usage, 130 interrupted.\n";

/// Where an option's help starts in `--help` (two spaces after the option at least).
const HELP_COLUMN: usize = 32;

/// One row of the options table: a section heading, a note under a section, or an
/// option with its spellings (the first long one is what `parse` matches), the value
/// it takes, and its help (`\n` continues it on the next line).
enum Row {
    Head(&'static str),
    Note(&'static str),
    Opt(&'static [&'static str], &'static str, &'static str),
}
use Row::{Head, Note, Opt};

/// Every option nib takes: `parse` accepts exactly these, and `help` prints them.
#[rustfmt::skip]
const OPTIONS: &[Row] = &[
    Head("Model"),
    Opt(&["-m", "--model"], "NAME", "model name (env NIB_MODEL)"),
    Opt(&["--base-url"], "URL", "server base URL, e.g. http://127.0.0.1:8080/v1 (env NIB_BASE_URL)"),
    Opt(&["--provider"], "openai|anthropic|openai-responses", "wire protocol (env NIB_PROVIDER; inferred when absent)"),
    Opt(&["--effort"], "low|medium|high", "reasoning effort (Responses, Anthropic thinking, o-series)"),
    Note("With nothing set, nib uses the first local server that answers on 127.0.0.1\n\
          (llama.cpp 8080/8081, Ollama 11434, LM Studio 1234, vLLM 8000).\n\
          Keys: NIB_API_KEY, ANTHROPIC_API_KEY, OPENAI_API_KEY, OPENROUTER_API_KEY."),
    Head("Task"),
    Opt(&["-p", "--print"], "", "headless: no questions asked, answer on stdout"),
    Opt(&["--output-format"], "FORMAT", "text (default), json, or stream-json"),
    Opt(&["--input-format"], "FORMAT", "text (default), or stream-json: one user message per stdin line,\n\
                                        each run as a task in the same session"),
    Opt(&["-o", "--output-last-message"], "FILE", "also write the final answer to FILE"),
    Opt(&["--max-turns"], "N", "stop after N model calls (default 200)"),
    Opt(&["--max-budget-usd"], "X", "stop before spending more than X dollars"),
    Opt(&["--system-prompt"], "TEXT", "replace the system prompt"),
    Opt(&["--system-prompt-file"], "FILE", "replace the system prompt with FILE's text"),
    Opt(&["--append-system-prompt"], "TEXT", "add to the system prompt"),
    Opt(&["--append-system-prompt-file"], "FILE", "add FILE's text to the system prompt"),
    Opt(&["--tools"], "LIST", "offer only these tools (bash,read,write,edit,grep,glob,skill)"),
    Opt(&["--terse"], "", "ask the model for brief answers"),
    Opt(&["--print-system-prompt"], "", "show the system prompt with the size of each part, then exit"),
    Opt(&["--verbose"], "", "more progress on stderr"),
    Opt(&["--settings"], "FILE|JSON", "one more settings file (Claude Code's format), above the others"),
    Opt(&["--add-dir"], "DIR", "another directory that counts as the workspace (repeatable)"),
    Opt(&["--mcp-config"], "FILE|JSON", "MCP servers to start ({\"mcpServers\": {...}}; repeatable)"),
    Opt(&["--strict-mcp-config"], "", "only the servers of --mcp-config"),
    Head("Permissions"),
    Opt(&["--permission-mode"], "MODE", "default, acceptEdits, plan, dontAsk, bypassPermissions"),
    Opt(&["--allowedTools", "--allowed-tools"], "RULES", "allow without asking, e.g. \"Bash(git diff *),Read\""),
    Opt(&["--disallowedTools", "--disallowed-tools"], "RULES", "always refuse, e.g. \"Bash(curl *)\""),
    Opt(&["-y", "--yes", "--dangerously-skip-permissions"], "", "run every tool call without asking (deny rules still apply;\n\
                                                             commands stay in the sandbox)"),
    Opt(&["--sandbox"], "LEVEL", "how far commands reach: workspace-write (default: write\n\
                                  only the workspace and temp dir), read-only, or off"),
    Opt(&["--auto"], "", "run calls that would ask, confined to the workspace with\n\
                          no network (deny rules apply; protected paths still ask)"),
    Head("Sessions"),
    Opt(&["-c", "--continue"], "", "continue the latest session of this directory"),
    Opt(&["-r", "--resume"], "[ID]", "continue session ID (a unique prefix is enough)"),
    Opt(&["--fork-session"], "", "with -c/-r: continue under a new session id"),
    Opt(&["--session-id"], "ID", "use this id for a new session"),
    Opt(&["--no-session-persistence"], "", "do not write a session journal"),
    Head(""),
    Opt(&["-h", "--help"], "", "this help"),
    Opt(&["-V", "--version"], "", "print the version"),
];

/// `nib --help`: the usage, every option of `OPTIONS`, and the exit statuses.
pub fn help() -> String {
    let mut out = USAGE.to_string();
    for row in OPTIONS {
        match row {
            Head("") => out.push('\n'),
            Head(title) => out.push_str(&format!("\n{title}:\n")),
            Note(text) => text
                .lines()
                .for_each(|l| out.push_str(&format!("  {}\n", l.trim()))),
            Opt(names, value, text) => out.push_str(&option_help(names, value, text)),
        }
    }
    out + "\n" + EXIT_STATUS
}

/// An option's lines in `--help`: `  -m, --model NAME` and its help from `HELP_COLUMN`.
fn option_help(names: &[&str], value: &str, text: &str) -> String {
    let indent = match names[0].starts_with("--") {
        true => "      ",
        false => "  ",
    };
    let left = format!("{indent}{} {value}", names.join(", "));
    let pad = " ".repeat(HELP_COLUMN);
    let mut out = match left.trim_end().len() < HELP_COLUMN - 1 {
        true => format!("{:HELP_COLUMN$}", left.trim_end()),
        false => format!("{}\n{pad}", left.trim_end()),
    };
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    out.push_str(&lines.join(&format!("\n{pad}")));
    out + "\n"
}

/// The spelling `parse` matches for `flag`, if `flag` is an option of `OPTIONS`.
fn canonical(flag: &str) -> Option<&'static str> {
    OPTIONS.iter().find_map(|row| match row {
        Opt(names, ..) if names.contains(&flag) => {
            names.iter().find(|n| n.starts_with("--")).copied()
        }
        _ => None,
    })
}

/// A usage error (exit 2) with `message`, pointing at `--help` unless it shows a usage.
fn usage(message: String) -> Error {
    match message.contains("usage: nib") {
        true => Error::Usage(message),
        false => Error::Usage(format!("{message} (see nib --help)")),
    }
}

/// How nib's process ends: the one mapping to exit statuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitCode {
    Success,
    /// The task failed, or nib could not start it.
    Failure,
    /// Bad usage: flags, values, or a base URL nib will not use.
    Usage,
    /// Ctrl-C stopped the task.
    Interrupted,
    /// SIGTERM, SIGHUP or SIGQUIT stopped nib: it exits as the signal would have.
    Signal(i32),
}

impl ExitCode {
    pub fn code(self) -> i32 {
        match self {
            ExitCode::Success => 0,
            ExitCode::Failure => 1,
            ExitCode::Usage => 2,
            ExitCode::Interrupted => 130,
            ExitCode::Signal(signal) => 128 + signal,
        }
    }
}

/// A failure that stops nib before or around a task: one line for stderr, and an exit
/// code.
#[derive(Debug)]
pub enum Error {
    /// Bad usage: exit 2.
    Usage(String),
    /// Anything else that stops nib before the task runs: exit 1.
    Setup(String),
}

impl Error {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Usage(_) => ExitCode::Usage,
            Error::Setup(_) => ExitCode::Failure,
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Usage(m) | Error::Setup(m) => f.write_str(m),
        }
    }
}

impl From<crate::journal::JournalError> for Error {
    fn from(e: crate::journal::JournalError) -> Error {
        Error::Setup(e.to_string())
    }
}

/// Parses the arguments as the OS gives them: an argument that is not UTF-8 is a usage
/// error that names it, never a panic.
pub fn parse_os(argv: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Args, Error> {
    let words = argv.into_iter().enumerate().map(|(i, arg)| {
        // Shown lossy and quoted; the one place that prints errors makes it safe.
        arg.into_string().map_err(|raw| {
            let raw = raw.to_string_lossy();
            let n = i + 1;
            usage(format!(
                "argument {n} ({raw:?}) is not valid UTF-8; nib takes text arguments"
            ))
        })
    });
    parse(&words.collect::<Result<Vec<_>, _>>()?)
}

/// Whether raw arguments ask for JSON output, for reporting a usage error in the
/// format a script reads even when the arguments did not parse.
pub fn json_output(argv: &[std::ffi::OsString]) -> bool {
    let words: Vec<_> = argv.iter().map(|a| a.to_string_lossy()).collect();
    words.iter().enumerate().any(|(i, w)| {
        let value = match w.strip_prefix("--output-format") {
            Some("") => words.get(i + 1).map(|w| &w[..]),
            Some(v) => v.strip_prefix('='),
            None => None,
        };
        matches!(value, Some("json" | "stream-json"))
    })
}

/// Parses the arguments after the program name.
pub fn parse(argv: &[String]) -> Result<Args, Error> {
    let mut args = Args::default();
    let mut positional: Vec<String> = Vec::new();
    let mut i = 0;
    while i < argv.len() {
        let raw = &argv[i];
        i += 1;
        if raw == "--" {
            positional.extend(argv[i..].iter().cloned());
            break;
        }
        if !raw.starts_with('-') || raw == "-" {
            // A subcommand is the first word that is not a flag; what follows is its own.
            let first = positional.is_empty() && !args.print;
            if let Some(sub) = Subcommand::from_word(raw).filter(|_| first) {
                args.command = parse_subcommand(sub, &argv[i..])?;
                return Ok(args);
            }
            positional.push(raw.clone());
            continue;
        }
        // `--flag=value` carries its value inline.
        let (flag, inline) = match raw.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (raw.as_str(), None),
        };
        let mut value = |name: &str| -> Result<String, Error> {
            if let Some(v) = inline.clone() {
                return Ok(v);
            }
            match argv.get(i) {
                Some(v) => {
                    i += 1;
                    Ok(v.clone())
                }
                None => Err(usage(format!("{name} needs a value"))),
            }
        };
        let Some(name) = canonical(flag) else {
            return Err(usage(format!("unknown option {flag}")));
        };
        match name {
            "--help" => args.command = Command::Help,
            "--version" => args.command = Command::Version,
            "--print" => args.print = true,
            "--model" => args.model = Some(value(flag)?),
            "--base-url" => args.base_url = Some(value(flag)?),
            "--provider" => {
                let names = "openai, anthropic or openai-responses";
                args.provider = Some(one_of(name, &value(flag)?, names, parse_provider)?);
            }
            "--effort" => {
                let names = "low, medium or high";
                args.effort = Some(one_of(name, &value(flag)?, names, Effort::parse)?);
            }
            "--max-turns" => args.max_turns = Some(parse_count(flag, &value(flag)?)?),
            "--max-budget-usd" => {
                let v = value(flag)?;
                let dollars = v.parse::<f64>().ok().filter(|x| x.is_finite() && *x >= 0.0);
                let bad = format!("--max-budget-usd takes a number of dollars, not {v:?}");
                args.max_budget_usd = Some(dollars.ok_or_else(|| usage(bad))?);
            }
            "--output-format" => {
                let format = |v: &str| match v {
                    "text" => Some(OutputFormat::Text),
                    "json" => Some(OutputFormat::Json),
                    "stream-json" => Some(OutputFormat::StreamJson),
                    _ => None,
                };
                let names = "text, json or stream-json";
                args.output_format = one_of(name, &value(flag)?, names, format)?;
            }
            "--permission-mode" => {
                let names = "default, acceptEdits, plan, dontAsk or bypassPermissions";
                args.permission_mode = Some(one_of(name, &value(flag)?, names, Mode::parse)?);
            }
            "--sandbox" => {
                args.sandbox = Some(one_of(name, &value(flag)?, Level::NAMES, Level::parse)?)
            }
            "--auto" => args.auto = true,
            "--yes" => args.permission_mode = Some(Mode::Bypass),
            "--allowedTools" | "--disallowedTools" => {
                let mut rules = vec![value(flag)?];
                // Space-separated lists: following words that look like rules.
                while inline.is_none() && argv.get(i).is_some_and(|w| looks_like_rules(w)) {
                    rules.push(argv[i].clone());
                    i += 1;
                }
                let list = match name {
                    "--allowedTools" => &mut args.allowed_tools,
                    _ => &mut args.disallowed_tools,
                };
                list.extend(rules.iter().flat_map(|r| parse_tool_list(r)));
            }
            "--tools" => {
                let v = value(flag)?;
                let known = Tool::ALL.map(|t| t.name()).join(", ");
                let unknown = |w: &str| usage(format!("--tools: unknown tool {w:?} ({known})"));
                let mut tools = Vec::new();
                for word in v.split([',', ' ']).filter(|s| !s.is_empty()) {
                    let tool = Tool::from_name(word).ok_or_else(|| unknown(word))?;
                    if !tools.contains(&tool) {
                        tools.push(tool);
                    }
                }
                args.tools = Some(tools);
            }
            "--system-prompt" => args.system_prompt = Some(value(flag)?),
            "--system-prompt-file" => args.system_prompt_file = Some(value(flag)?.into()),
            "--append-system-prompt" => args.append_system_prompt = Some(value(flag)?),
            "--append-system-prompt-file" => {
                args.append_system_prompt_file = Some(value(flag)?.into())
            }
            "--output-last-message" => args.output_last_message = Some(value(flag)?.into()),
            "--continue" => args.resume = Some(Resume::Latest),
            "--resume" => {
                // The id is optional: take the next word only if it looks like one.
                let next = argv
                    .get(i)
                    .filter(|w| inline.is_none() && looks_like_session_id(w));
                i += usize::from(next.is_some());
                let id = inline.or_else(|| next.cloned());
                args.resume = Some(id.map_or(Resume::Pick, Resume::Id));
            }
            "--fork-session" => args.fork_session = true,
            "--session-id" => args.session_id = Some(value(flag)?),
            "--no-session-persistence" => args.no_session_persistence = true,
            "--terse" => args.terse = true,
            "--verbose" => args.verbose = true,
            "--print-system-prompt" => args.print_system_prompt = true,
            "--settings" => args.settings = Some(value(flag)?),
            "--add-dir" => args.add_dirs.push(value(flag)?.into()),
            "--mcp-config" => args.mcp_configs.push(value(flag)?),
            "--strict-mcp-config" => args.strict_mcp_config = true,
            "--input-format" => {
                let stream = |v: &str| match v {
                    "text" => Some(false),
                    "stream-json" => Some(true),
                    _ => None,
                };
                args.stream_input = one_of(name, &value(flag)?, "text or stream-json", stream)?;
            }
            // A row of OPTIONS without its arm here: the unit tests catch it.
            _ => return Err(usage(format!("unknown option {flag}"))),
        }
    }
    if !positional.is_empty() {
        args.prompt = Some(positional.join(" "));
    }
    Ok(args)
}

/// A subcommand's own arguments, strictly: anything it does not know is a usage error
/// that shows its usage, so `nib undo --help` or `nib undo 1 8abb4126` never acts.
fn parse_subcommand(sub: Subcommand, words: &[String]) -> Result<Command, Error> {
    let bad = |what: String| {
        usage(format!(
            "{what}; usage: {} (see nib {} --help)",
            sub.usage().trim_start_matches("Usage: "),
            sub.usage().split_whitespace().nth(2).unwrap_or_default()
        ))
    };
    if words.iter().any(|w| w == "-h" || w == "--help") {
        return Ok(Command::SubcommandHelp(sub));
    }
    match sub {
        Subcommand::Sessions => {
            let (mut all, mut json) = (false, false);
            for w in words {
                match w.as_str() {
                    "--all" => all = true,
                    "--json" => json = true,
                    _ => return Err(bad(format!("sessions: unexpected argument {w:?}"))),
                }
            }
            Ok(Command::Sessions { all, json })
        }
        Subcommand::Undo => match words {
            [] => Ok(Command::Undo { count: 1 }),
            [n] => match n.parse::<usize>() {
                Ok(count) if count > 0 => Ok(Command::Undo { count }),
                _ => Err(bad(format!(
                    "undo: N is a number of changes above 0, not {n:?}"
                ))),
            },
            [_, extra, ..] => Err(bad(format!("undo: unexpected argument {extra:?}"))),
        },
        Subcommand::Trust => match words {
            [] => Ok(Command::Trust),
            [w, ..] => Err(bad(format!("trust: unexpected argument {w:?}"))),
        },
    }
}

/// A wire protocol by the names people use for it.
pub fn parse_provider(s: &str) -> Option<Provider> {
    match s.to_ascii_lowercase().as_str() {
        "openai" | "openai-compatible" | "chat" => Some(Provider::OpenAi),
        "anthropic" | "claude" => Some(Provider::Anthropic),
        "openai-responses" | "responses" => Some(Provider::OpenAiResponses),
        _ => None,
    }
}

/// `v` as `parse` reads it, or the usage error saying which `names` `flag` takes.
fn one_of<T>(
    flag: &str,
    v: &str,
    names: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T, Error> {
    parse(v).ok_or_else(|| usage(format!("{flag} must be {names}, not {v:?}")))
}

fn parse_count(flag: &str, v: &str) -> Result<u32, Error> {
    match v.parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(usage(format!(
            "{flag} takes a whole number above 0, not {v:?}"
        ))),
    }
}

/// A word that continues a space-separated rule list: every item is `Name` or
/// `Name(...)` with a capitalised tool name, so a prompt never looks like one.
fn looks_like_rules(word: &str) -> bool {
    let items = parse_tool_list(word);
    !items.is_empty()
        && items.iter().all(|item| {
            let name = item.split('(').next().unwrap_or("");
            let paren_ok = !item.contains('(') || item.ends_with(')');
            name.starts_with(|c: char| c.is_ascii_uppercase() || name.starts_with("mcp__"))
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && paren_ok
        })
}

/// Session ids are hex and dashes (a prefix is fine); a prompt is not.
fn looks_like_session_id(word: &str) -> bool {
    !word.is_empty() && word.len() <= 64 && word.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(words: &[&str]) -> Args {
        let v: Vec<String> = words.iter().map(|s| s.to_string()).collect();
        parse(&v).unwrap_or_else(|e| panic!("{words:?}: {e}"))
    }

    fn parse_err(words: &[&str]) -> String {
        let v: Vec<String> = words.iter().map(|s| s.to_string()).collect();
        parse(&v).expect_err("expected a usage error").to_string()
    }

    #[test]
    fn prompt_and_print() {
        let a = parse_ok(&["-p", "list", "files"]);
        assert!(a.print);
        assert_eq!(a.prompt.as_deref(), Some("list files"));
        let a = parse_ok(&["hello", "--print"]);
        assert!(a.print);
        assert_eq!(a.prompt.as_deref(), Some("hello"));
    }

    #[test]
    fn values_inline_and_separate() {
        let a = parse_ok(&[
            "--model=m1",
            "--base-url",
            "http://x/v1",
            "--max-turns",
            "3",
        ]);
        assert_eq!(a.model.as_deref(), Some("m1"));
        assert_eq!(a.base_url.as_deref(), Some("http://x/v1"));
        assert_eq!(a.max_turns, Some(3));
    }

    #[test]
    fn bad_values_are_usage_errors() {
        assert!(parse_err(&["--max-turns", "0"]).contains("--max-turns"));
        assert!(parse_err(&["--max-turns", "x"]).contains("--max-turns"));
        assert!(parse_err(&["--output-format", "xml"]).contains("--output-format"));
        assert!(parse_err(&["--provider", "gemini"]).contains("--provider"));
        assert!(parse_err(&["--bogus"]).contains("unknown option --bogus"));
        assert!(parse_err(&["--model"]).contains("needs a value"));
        assert!(parse_err(&["--tools", "bash,web"]).contains("unknown tool"));
        assert!(parse_err(&["--max-budget-usd", "-1"]).contains("budget"));
    }

    #[test]
    fn allowed_tools_lists() {
        let a = parse_ok(&[
            "-p",
            "do it",
            "--allowedTools",
            "Bash(git diff *),Read",
            "Edit",
        ]);
        assert_eq!(a.allowed_tools, ["Bash(git diff *)", "Read", "Edit"]);
        assert_eq!(a.prompt.as_deref(), Some("do it"));
        // A prompt after the list is not swallowed.
        let a = parse_ok(&["--allowedTools", "Bash", "what files are here?"]);
        assert_eq!(a.allowed_tools, ["Bash"]);
        assert_eq!(a.prompt.as_deref(), Some("what files are here?"));
        let a = parse_ok(&["--disallowed-tools=Bash(curl *)", "x"]);
        assert_eq!(a.disallowed_tools, ["Bash(curl *)"]);
    }

    #[test]
    fn yes_is_bypass() {
        assert_eq!(parse_ok(&["--yes"]).permission_mode, Some(Mode::Bypass));
        assert_eq!(
            parse_ok(&["--dangerously-skip-permissions"]).permission_mode,
            Some(Mode::Bypass)
        );
        assert_eq!(
            parse_ok(&["--permission-mode", "plan"]).permission_mode,
            Some(Mode::Plan)
        );
    }

    #[test]
    fn resume_forms() {
        assert_eq!(parse_ok(&["-c"]).resume, Some(Resume::Latest));
        assert_eq!(parse_ok(&["-r"]).resume, Some(Resume::Pick));
        let a = parse_ok(&["-r", "3f2a", "-p", "next"]);
        assert_eq!(a.resume, Some(Resume::Id("3f2a".into())));
        assert_eq!(a.prompt.as_deref(), Some("next"));
        // A prompt after -r is not an id.
        let a = parse_ok(&["-r", "fix the bug"]);
        assert_eq!(a.resume, Some(Resume::Pick));
        assert_eq!(a.prompt.as_deref(), Some("fix the bug"));
    }

    #[test]
    fn subcommands() {
        assert_eq!(
            parse_ok(&["sessions", "--all"]).command,
            Command::Sessions {
                all: true,
                json: false
            }
        );
        assert_eq!(parse_ok(&["undo", "2"]).command, Command::Undo { count: 2 });
        assert_eq!(parse_ok(&["undo"]).command, Command::Undo { count: 1 });
        assert_eq!(parse_ok(&["trust"]).command, Command::Trust);
        assert_eq!(parse_ok(&["-p", "trust"]).command, Command::Run);
        assert!(parse_err(&["trust", "x"]).contains("usage: nib trust"));
        assert_eq!(
            parse_ok(&["--model", "m", "undo"]).command,
            Command::Undo { count: 1 }
        );
        // A subcommand's --help is its help, never the subcommand.
        for words in [
            &["undo", "--help"][..],
            &["undo", "3", "-h"],
            &["sessions", "--help"],
        ] {
            assert!(
                matches!(parse_ok(words).command, Command::SubcommandHelp(_)),
                "{words:?}"
            );
        }
        // Anything else is a usage error that shows the usage.
        let e = parse_err(&["undo", "1", "8abb4126"]);
        assert!(
            e.contains("unexpected argument \"8abb4126\"") && e.contains("usage: nib undo [N]"),
            "{e}"
        );
        assert!(parse_err(&["undo", "x"]).contains("usage: nib undo"));
        assert!(parse_err(&["sessions", "--bogus"]).contains("usage: nib sessions"));
        assert!(parse_err(&["sessions", "all"]).contains("unexpected argument"));
        // With -p, or after another word, it is a prompt word.
        let a = parse_ok(&["-p", "sessions"]);
        assert_eq!(a.command, Command::Run);
        assert_eq!(a.prompt.as_deref(), Some("sessions"));
        let a = parse_ok(&["-p", "list", "sessions"]);
        assert_eq!(a.command, Command::Run);
        assert_eq!(a.prompt.as_deref(), Some("list sessions"));
    }

    #[test]
    fn arguments_that_are_not_utf8_are_usage_errors() {
        use std::os::unix::ffi::OsStringExt;
        let argv = vec![
            std::ffi::OsString::from("-p"),
            std::ffi::OsString::from_vec(b"caf\xe9".to_vec()),
        ];
        let e = parse_os(argv).expect_err("not UTF-8");
        assert!(
            e.to_string().contains("argument 2") && e.to_string().contains("not valid UTF-8"),
            "{e}"
        );
    }

    #[test]
    fn help_lists_exactly_the_options_parse_takes() {
        let help = help();
        for row in OPTIONS {
            let Opt(names, ..) = row else { continue };
            for name in *names {
                assert!(help.contains(name), "{name} is not in --help");
                let err = parse(&[name.to_string(), "1".into()]).err();
                assert!(
                    !err.is_some_and(|e| e.to_string().starts_with("unknown option")),
                    "{name} is in --help but parse does not take it"
                );
            }
        }
        assert!(
            help.contains("  -m, --model NAME              model name"),
            "{help}"
        );
        let tools_line = help
            .lines()
            .find(|l| l.contains("--tools LIST"))
            .unwrap_or_default();
        for tool in Tool::ALL {
            assert!(
                tools_line.contains(tool.name()),
                "--tools help omits {tool:?}"
            );
        }
        // The control: a spelling the table does not have is refused.
        for flag in ["--bogus", "-M", "--models"] {
            assert!(parse_err(&[flag]).contains("unknown option"), "{flag}");
        }
    }

    #[test]
    fn the_tools_error_names_every_tool() {
        let e = parse_err(&["--tools", "web"]);
        for tool in Tool::ALL {
            assert!(e.contains(tool.name()), "{e}");
        }
    }

    #[test]
    fn tools_flag() {
        assert_eq!(parse_ok(&["--tools", "bash"]).tools, Some(vec![Tool::Bash]));
        assert_eq!(
            parse_ok(&["--tools", "Bash,read"]).tools,
            Some(vec![Tool::Bash, Tool::Read])
        );
    }
}
