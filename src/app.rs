//! One function per way in: a headless task, the REPL, `nib sessions`, `nib undo`.
//! Builds the pieces (endpoint, gate, session, system prompt) from `Args` and hands
//! them to the agent.

use crate::agent::{self, Agent};

mod claude;
use crate::approval::{self, Mode};
use crate::cli::{Args, Command, DEFAULT_MAX_TURNS, HELP, Resume};
use crate::compact::Window;
use crate::config::{self, Settings};
use crate::context;
use crate::journal::{self, JournalError, Record};
use crate::model::{self, Client, Limits};
use crate::paths::Workspace;
use crate::price;
use crate::sandbox::{self, Sandbox};
use crate::session::{self, Session};
use crate::sessions;
use crate::tools::{self, Tool};
use crate::ui::headless::Headless;
use crate::ui::term::sanitize;
use claude::{ClaudeSetup, claude_model, mcp_servers};
use serde_json::Value;
use std::io::{BufRead, IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long nib reads stdin silently; after this it says why it waits.
const STDIN_NOTICE: Duration = Duration::from_secs(3);
/// Piped input beyond this is refused (exit 2): a prompt, not a data channel; a build
/// log of this size would not fit any model's context window anyway.
const STDIN_MAX: u64 = 8 * 1024 * 1024;

/// A failure before or around a task: one line for stderr, and an exit code.
#[derive(Debug)]
pub enum Error {
    /// Bad usage: exit 2.
    Usage(String),
    /// Anything else that stops nib before the task runs: exit 1.
    Setup(String),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 2,
            Error::Setup(_) => 1,
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

/// Reports a failure that stops nib: one line on stderr and, when the output is JSON,
/// one result object on stdout so a script reading it always gets an answer. Returns
/// the exit code.
pub fn fail(e: &Error, json: bool) -> i32 {
    eprintln!("nib: {}", sanitize(&e.to_string()));
    if json {
        crate::ui::headless::print_failure(&e.to_string());
    }
    e.exit_code()
}

impl From<JournalError> for Error {
    fn from(e: JournalError) -> Error {
        Error::Setup(e.to_string())
    }
}

impl From<session::Error> for Error {
    fn from(e: session::Error) -> Error {
        match e {
            session::Error::Usage(m) => Error::Usage(m),
            session::Error::Failed(m) => Error::Setup(m),
        }
    }
}

/// The directories nib uses; from `dirs`, overridable for tests through XDG variables.
pub struct Dirs {
    pub home: Option<PathBuf>,
    pub config: Option<PathBuf>,
    pub data: Option<PathBuf>,
}

impl Dirs {
    pub fn from_env() -> Dirs {
        Dirs {
            home: dirs::home_dir(),
            config: dirs::config_dir(),
            data: dirs::data_dir(),
        }
    }

    fn sessions(&self) -> Result<PathBuf, Error> {
        self.data
            .as_deref()
            .map(journal::sessions_root)
            .ok_or_else(|| Error::Setup("no data directory (set HOME or XDG_DATA_HOME)".into()))
    }
}

pub fn run(args: Args) -> Result<i32, Error> {
    match args.command {
        Command::Help => {
            print!("{HELP}");
            Ok(0)
        }
        Command::SubcommandHelp(sub) => {
            print!("{}", sub.help());
            Ok(0)
        }
        Command::Version => {
            println!("nib {}", env!("CARGO_PKG_VERSION"));
            Ok(0)
        }
        Command::Sessions { all, json } => list_sessions(&Dirs::from_env(), all, json),
        Command::Undo { count } => undo(&Dirs::from_env(), count),
        Command::Trust => trust_folder(&Dirs::from_env()),
        Command::Run => run_task(args, &Dirs::from_env()),
    }
}

/// A path as printed: control characters in a file name made visible.
fn shown(path: &Path) -> String {
    sanitize(&path.display().to_string()).into_owned()
}

fn current_dir() -> Result<PathBuf, Error> {
    std::env::current_dir()
        .and_then(|d| d.canonicalize())
        .map_err(|e| Error::Setup(format!("cannot use the current directory: {e}")))
}

fn list_sessions(dirs: &Dirs, all: bool, json: bool) -> Result<i32, Error> {
    let cwd = current_dir()?;
    // A session that never got a message (older nibs left such files) is not listed.
    let list: Vec<sessions::Summary> =
        sessions::list(&dirs.sessions()?, (!all).then_some(cwd.as_path()))
            .into_iter()
            .filter(|s| !s.first_prompt.is_empty())
            .collect();
    if list.is_empty() && !json {
        let hint = if all {
            ""
        } else {
            " in this directory (try --all)"
        };
        eprintln!("no sessions{hint}");
        return Ok(0);
    }
    let text = if json {
        serde_json::to_string_pretty(&list).unwrap_or_default() + "\n"
    } else {
        list.iter()
            .map(|s| format!("{}\n", crate::ui::term::sanitize(&sessions::row(s))))
            .collect()
    };
    // A closed pipe (`nib sessions | head`) is not an error worth a message.
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes());
    Ok(0)
}

fn undo(dirs: &Dirs, count: usize) -> Result<i32, Error> {
    let cwd = current_dir()?;
    // The latest session that changed a file: later ones may only have talked.
    let path = sessions::list(&dirs.sessions()?, Some(&cwd))
        .into_iter()
        .map(|s| s.path)
        .find(|p| changed_files(p))
        .ok_or_else(|| {
            Error::Setup("nothing to undo: no session in this directory changed a file".into())
        })?;
    let done = sessions::undo(&path, &cwd, count).map_err(Error::Setup)?;
    for d in &done {
        match d {
            sessions::Undone::Restored(p) => println!("restored {}", shown(p)),
            sessions::Undone::Deleted(p) => println!("removed {} (nib had created it)", shown(p)),
        }
    }
    if done.len() < count {
        eprintln!(
            "nib: undid {} of {}",
            done.len(),
            crate::ui::term::plural(count, "change")
        );
    }
    Ok(0)
}

/// `nib trust`: this folder's own settings may allow tools and set the mode from now on.
fn trust_folder(dirs: &Dirs) -> Result<i32, Error> {
    let cwd = current_dir()?;
    let data = dirs.data.as_ref().map(|d| d.join("nib"));
    let data =
        data.ok_or_else(|| Error::Setup("no data directory (set HOME or XDG_DATA_HOME)".into()))?;
    approval::trust::trust_folder(&data, &cwd).map_err(Error::Setup)?;
    println!(
        "trusted {}: its .claude/settings.json and .claude/settings.local.json now apply in full",
        cwd.display()
    );
    Ok(0)
}

/// Whether a journal records a file change (undone or not).
fn changed_files(path: &Path) -> bool {
    journal::load(path).is_ok_and(|l| {
        l.entries.iter().any(|e| {
            matches!(
                e.record,
                Record::Change { .. }
                    | Record::ToolResult {
                        change: Some(_),
                        ..
                    }
            )
        })
    })
}

fn run_task(args: Args, dirs: &Dirs) -> Result<i32, Error> {
    let cwd = current_dir()?;
    let settings = Settings::load(dirs.config.as_deref()).map_err(Error::Setup)?;
    let nib_config = dirs.config.as_ref().map(|c| c.join("nib"));
    let (skills, skipped) = context::find_skills(&cwd, dirs.home.as_deref(), nib_config.as_deref());
    for w in skipped {
        eprintln!("nib: warning: {}", sanitize(&w));
    }
    let system = system_prompt(&args, &settings, &cwd, dirs, &skills)?;
    if args.print_system_prompt {
        for part in &system {
            println!("── {} ({} bytes)", part.label, part.text.len());
            println!("{}\n", part.text);
        }
        println!("── total {} bytes", context::render(&system).len());
        let specs = tools::specs(&enabled_tools(&args, &skills));
        let bytes: usize = specs.iter().map(crate::mcp::spec_bytes).sum();
        println!(
            "── tools: {} ({bytes} bytes of schemas in every request)",
            specs.len()
        );
        let claude = ClaudeSetup::load(&args, dirs, &cwd)?;
        let servers = mcp_servers(&args, dirs, &cwd, &settings, &claude);
        servers.wait();
        for s in servers.status() {
            println!(
                "── MCP server {}: {} ({} tools, {} bytes of schemas in every request)",
                s.name, s.state, s.tools, s.schema_bytes
            );
        }
        return Ok(0);
    }
    let headless = args.print || !std::io::stdin().is_terminal();
    if !headless {
        // `nib -r` without an id: the REPL starts fresh and shows its session picker.
        let mut fresh = args.clone();
        fresh.resume = fresh.resume.filter(|r| *r != Resume::Pick);
        let setup = prepare(&fresh, dirs, settings, system, skills, cwd)?;
        return crate::ui::repl::run(&args, dirs, setup).map_err(Error::Setup);
    }
    let prompt = match args.stream_input {
        true => String::new(),
        false => headless_prompt(args.prompt.clone())?,
    };
    let setup = prepare(&args, dirs, settings, system, skills, cwd)?;
    if let Some(notice) = setup.agent.parts().gate.untrusted_notice() {
        eprintln!("nib: warning: {notice}");
    }
    let Setup {
        mut agent,
        tools: enabled,
        cwd,
        ..
    } = setup;
    agent.session_mut().begin()?;
    let mut ui = Headless {
        format: args.output_format,
        progress: args.verbose || std::io::stderr().is_terminal(),
        session_id: agent.session().id().to_string(),
        model: agent.endpoint().model.clone(),
    };
    if ui.progress && agent.parts().gate.mode() == Mode::Bypass {
        eprintln!("nib: warning: {}", crate::ui::BYPASS_WARNING);
    }
    // MCP tools are listed too: the first request waits for the servers anyway.
    let mcp_specs = agent.parts().mcp.specs();
    let mut tool_names: Vec<&str> = enabled.iter().map(|t| t.name()).collect();
    tool_names.extend(mcp_specs.iter().map(|s| s.name.as_ref()));
    ui.start(
        &cwd.to_string_lossy(),
        &tool_names,
        agent.parts().gate.mode().name(),
    );
    if args.stream_input {
        let code = stream_tasks(&mut agent, &mut ui);
        agent.end_session("other", &mut ui);
        return Ok(code);
    }
    let started = Instant::now();
    let result = task(&mut agent, prompt, &mut ui);
    agent.end_session("other", &mut ui);
    if let Some(path) = &args.output_last_message {
        std::fs::write(path, format!("{}\n", result.text.trim_end()))
            .map_err(|e| Error::Setup(format!("cannot write {}: {e}", path.display())))?;
    }
    let deleted = agent.session().journal().filter(|j| !j.path.exists());
    if let Some(journal) = deleted {
        eprintln!(
            "nib: warning: the session journal {} was deleted while nib ran; this session cannot be resumed",
            journal.path.display()
        );
    }
    let saved = agent.session().journal().is_some() && deleted.is_none();
    let totals = agent.session().totals();
    let code = ui.finish(
        &result,
        &totals.usage,
        totals.cost_usd,
        started.elapsed(),
        saved,
    );
    // Stopped by SIGTERM, SIGHUP or SIGQUIT: exit as the signal would have.
    Ok(crate::signals::stopped_by().map_or(code, |signal| 128 + signal))
}

/// One headless task: a custom command, a skill, or the prompt as it is.
fn task(agent: &mut Agent, prompt: String, ui: &mut Headless) -> crate::agent::TaskResult {
    let commands = agent.parts().commands.to_vec();
    match context::commands::find(&commands, &prompt) {
        Some((command, args)) => agent.run_command(command, args, ui),
        None => {
            let prompt = context::skills::expand(&agent.parts().skills, &prompt).unwrap_or(prompt);
            agent.run(&prompt, ui)
        }
    }
}

/// `--input-format stream-json`: each `{"type":"user","message":{...}}` line on stdin
/// is a task, answered with its result before the next line is read. Returns the last
/// task's exit code.
fn stream_tasks(agent: &mut Agent, ui: &mut Headless) -> i32 {
    let mut code = 0;
    for line in std::io::stdin().lock().lines().map_while(Result::ok) {
        let prompt = match user_text(&line) {
            Ok(Some(prompt)) => prompt,
            Ok(None) => continue,
            Err(e) => {
                eprintln!("nib: warning: skipped an input line: {e}");
                continue;
            }
        };
        let started = Instant::now();
        let result = task(agent, prompt, ui);
        let saved = agent.session().journal().is_some();
        let totals = agent.session().totals();
        code = ui.finish(
            &result,
            &totals.usage,
            totals.cost_usd,
            started.elapsed(),
            saved,
        );
    }
    code
}

/// The text of a stream-json user message; `None` for other lines (blank, other types).
fn user_text(line: &str) -> Result<Option<String>, String> {
    if line.trim().is_empty() {
        return Ok(None);
    }
    let value: Value = serde_json::from_str(line)
        .map_err(|e| format!("not JSON ({e}); send one object a line"))?;
    if value["type"] != "user" {
        return Ok(None);
    }
    let content = &value["message"]["content"];
    let text = match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => {
            let texts = parts.iter().filter_map(|p| p["text"].as_str());
            texts.collect::<Vec<_>>().join("\n")
        }
        _ => String::new(),
    };
    match text.trim().is_empty() {
        true => Err("a user message without text".into()),
        false => Ok(Some(text)),
    }
}

/// Everything a run needs besides the prompt: the agent, and what the UI shows.
pub struct Setup {
    pub agent: Agent,
    pub system: Vec<context::Part>,
    pub tools: Vec<Tool>,
    pub settings: Settings,
    pub cwd: PathBuf,
}

/// Endpoint, gate, session and agent from the arguments, the system prompt and skills.
pub fn prepare(
    args: &Args,
    dirs: &Dirs,
    settings: Settings,
    system: Vec<context::Part>,
    skills: Vec<context::Skill>,
    cwd: PathBuf,
) -> Result<Setup, Error> {
    let claude = ClaudeSetup::load(args, dirs, &cwd)?;
    let mcp = mcp_servers(args, dirs, &cwd, &settings, &claude);
    let endpoint = endpoint_with(args, &settings, claude.model.clone())?;
    let workspace = Workspace {
        root: cwd.clone(),
        home: dirs.home.clone(),
    };
    let mode = args
        .permission_mode
        .or(claude.mode)
        .or_else(|| settings.str("defaultMode").and_then(|m| Mode::parse(&m)));
    let mut rules = claude.rules.clone();
    rules.allow.extend(args.allowed_tools.clone());
    rules.deny.extend(args.disallowed_tools.clone());
    let places = approval::settings::Places {
        nib_config: dirs.config.as_ref().map(|c| c.join("nib")),
        nib_data: dirs.data.as_ref().map(|d| d.join("nib")),
    };
    let mut gate =
        approval::settings::load(rules, mode, workspace.clone(), places).map_err(Error::Setup)?;
    for w in gate.warnings() {
        eprintln!("nib: warning: {}", sanitize(w));
    }
    let mut sandbox = sandbox_for(args, dirs, &settings, &cwd, &claude.roots)?;
    for dir in skills.iter().filter_map(|s| s.dir.as_deref()) {
        gate.allow_read_dir(dir);
        sandbox.add_read_dir(dir);
    }
    for dir in &claude.roots {
        gate.add_root(dir);
    }

    let enabled = enabled_tools(args, &skills);
    let cancel = Arc::new(AtomicBool::new(false));
    crate::signals::forward(cancel.clone(), crate::ui::editor::restore_terminal_fully);
    let origin = session::Origin {
        root: dirs.sessions()?,
        cwd: cwd.clone(),
        env_secrets: crate::secrets::secret_values(std::env::vars()),
        persist: !args.no_session_persistence,
    };
    let (session, warnings) = Session::open(args, origin, &endpoint)?;
    for w in warnings {
        eprintln!("nib: warning: {}", sanitize(&w));
    }
    let prices = price::Table::from_settings(settings.json.get("prices")).map_err(Error::Setup)?;
    let window_setting = settings.json.get("context_window").and_then(Value::as_u64);
    let window = Window::for_endpoint(&endpoint, window_setting);
    let default_output_cap = if model::is_loopback(&endpoint.base_url) {
        crate::agent::LOCAL_MAX_OUTPUT_TOKENS
    } else {
        crate::agent::MAX_OUTPUT_TOKENS
    };
    let mut env = crate::secrets::child_env(&settings.env_passthrough());
    env.retain(|(k, _)| !claude.env.iter().any(|(name, _)| name == k));
    env.extend(claude.env.iter().cloned());
    let mut hooks = claude.hooks;
    hooks.session_id = session.id().to_string();
    // A new session's journal is written with its first message: hooks before that get
    // the path it will have.
    hooks.transcript_path = session.transcript_path();
    let options = config::options(&endpoint, args, &settings).map_err(Error::Setup)?;
    let parts = agent::Parts {
        client: Client::new(endpoint, limits(&settings), cancel.clone()).with_options(options),
        gate,
        specs: tools::specs(&enabled),
        system: context::render(&system),
        workspace,
        env,
        max_turns: args.max_turns.unwrap_or(DEFAULT_MAX_TURNS),
        max_output_tokens: settings
            .json
            .get("max_output_tokens")
            .and_then(serde_json::Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n > 0)
            .unwrap_or(default_output_cap),
        max_budget_usd: args.max_budget_usd,
        prices,
        window,
        cancel,
        skills,
        sandbox,
        hooks,
        mcp,
        commands: context::find_commands(&cwd, dirs.home.as_deref()),
    };
    Ok(Setup {
        agent: Agent::new(parts, session),
        system,
        tools: enabled,
        settings,
        cwd,
    })
}

/// The tools offered: `--tools`, or all; `skill` only when there are skills.
fn enabled_tools(args: &Args, skills: &[context::Skill]) -> Vec<Tool> {
    let mut enabled: Vec<Tool> = args.tools.clone().unwrap_or_else(|| Tool::ALL.to_vec());
    enabled.retain(|&t| t != Tool::Skill || !skills.is_empty());
    enabled
}

/// The sandbox from `--sandbox` and the user's settings (a project cannot change it),
/// with the extra workspace `roots` (`--add-dir`, `additionalDirectories`) writable;
/// what the kernel cannot do is said in one line.
fn sandbox_for(
    args: &Args,
    dirs: &Dirs,
    settings: &Settings,
    cwd: &std::path::Path,
    roots: &[PathBuf],
) -> Result<Sandbox, Error> {
    let (level, mut options) =
        sandbox::from_settings(settings.json.get("sandbox"), dirs.home.as_deref())
            .map_err(Error::Setup)?;
    options.writable.extend(roots.iter().cloned());
    options.auto = args.auto || settings.bool("auto");
    let level = args
        .sandbox
        .or(level)
        .unwrap_or(sandbox::Level::WorkspaceWrite);
    let nib_dirs: Vec<PathBuf> = [&dirs.config, &dirs.data]
        .into_iter()
        .flatten()
        .map(|d| d.join("nib"))
        .collect();
    let sandbox = Sandbox::new(level, cwd, dirs.home.as_deref(), &nib_dirs, options);
    if let Some(notice) = sandbox.notice() {
        eprintln!("nib: {notice}");
    }
    Ok(sandbox)
}

/// Request limits: the defaults, with settings `idle_timeout_secs` for the idle limit.
pub fn limits(settings: &Settings) -> Limits {
    let idle = settings
        .json
        .get("idle_timeout_secs")
        .and_then(Value::as_u64)
        .filter(|secs| *secs > 0);
    Limits {
        idle_timeout: idle.map_or(model::IDLE_TIMEOUT, Duration::from_secs),
        ..Limits::default()
    }
}

/// The endpoint the arguments, environment and settings name, with a model.
pub fn endpoint(args: &Args, settings: &Settings) -> Result<model::Endpoint, Error> {
    endpoint_with(args, settings, None)
}

/// `endpoint`, with the `model` of Claude Code's settings (and the file naming it).
fn endpoint_with(
    args: &Args,
    settings: &Settings,
    claude: Option<(String, String)>,
) -> Result<model::Endpoint, Error> {
    let env_lookup = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let resolved = config::resolve_endpoint(args, &env_lookup, settings, &config::probe_local)
        .map_err(|e| match e {
            config::NoEndpoint::Missing(m) => Error::Setup(m),
            config::NoEndpoint::BadUrl(m) => Error::Usage(m),
        })?;
    let mut endpoint = resolved.endpoint;
    claude_model(&mut endpoint, args, settings, claude);
    if resolved.source == config::Source::Probe && std::io::stderr().is_terminal() {
        let line = format!(
            "nib: using {} at {} (found running on this machine)",
            endpoint.model, endpoint.base_url
        );
        eprintln!("{}", sanitize(&line));
    }
    if endpoint.model.is_empty() {
        let listed = model::list_models(&endpoint.base_url, Duration::from_secs(5))
            .map_err(|e| Error::Setup(unreachable(&endpoint.base_url, e)))?;
        endpoint.model = listed.into_iter().next().ok_or_else(|| {
            Error::Setup(format!(
                "no model given and {} lists none: pass --model NAME",
                endpoint.base_url
            ))
        })?;
    }
    Ok(endpoint)
}

/// Why a server could not be asked, the cause first: "nothing listens on
/// 127.0.0.1:1: connection refused".
fn unreachable(base_url: &str, e: model::Error) -> String {
    match e {
        model::Error::Connect { detail, .. } if detail.contains("refused") => format!(
            "nothing listens on {}: {detail}; start the model server or pass --base-url URL",
            config::host_of(base_url)
        ),
        e => format!("{e}; or pass --model NAME"),
    }
}

fn system_prompt(
    args: &Args,
    settings: &Settings,
    cwd: &Path,
    dirs: &Dirs,
    skills: &[context::Skill],
) -> Result<Vec<context::Part>, Error> {
    let read = |p: &Option<PathBuf>| -> Result<Option<String>, Error> {
        p.as_ref()
            .map(|p| {
                std::fs::read_to_string(p)
                    .map_err(|e| Error::Usage(format!("cannot read {}: {e}", p.display())))
            })
            .transpose()
    };
    let replace = args
        .system_prompt
        .clone()
        .or(read(&args.system_prompt_file)?);
    let append = match (
        &args.append_system_prompt,
        read(&args.append_system_prompt_file)?,
    ) {
        (Some(a), Some(b)) => Some(format!("{a}\n\n{b}")),
        (a, b) => a.clone().or(b),
    };
    let nib_config = dirs.config.as_ref().map(|c| c.join("nib"));
    let (parts, left_out) = context::parts(&context::Options {
        root: cwd,
        home: dirs.home.as_deref(),
        nib_config: nib_config.as_deref(),
        skills,
        replace,
        append,
        terse: args.terse || settings.bool("terse"),
    });
    for w in left_out {
        eprintln!("nib: warning: {}", crate::ui::term::sanitize(&w));
    }
    Ok(parts)
}

/// The prompt argument, then piped stdin (Claude Code's order). A terminal on stdin is
/// never read; a pipe or file is read to its end, however long that takes.
fn headless_prompt(arg: Option<String>) -> Result<String, Error> {
    let piped = if std::io::stdin().is_terminal() {
        None
    } else {
        Some(read_stdin()?)
    };
    let prompt = match (arg, piped) {
        (Some(a), Some(p)) if !p.trim().is_empty() => format!("{a}\n{p}"),
        (Some(a), _) => a,
        (None, Some(p)) if !p.trim().is_empty() => p,
        _ => String::new(),
    };
    if prompt.trim().is_empty() {
        return Err(Error::Setup(
            "Error: Input must be provided either through stdin or as a prompt argument when using --print"
                .into(),
        ));
    }
    Ok(prompt)
}

/// Reads piped stdin to its end (`cargo build 2>&1 | nib -p …` waits for the build),
/// saying so on stderr when that takes longer than `STDIN_NOTICE`. More than
/// `STDIN_MAX` bytes is a usage error: nothing is cut silently.
fn read_stdin() -> Result<String, Error> {
    let (tx, rx) = mpsc::channel::<std::io::Result<Vec<u8>>>();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let read = std::io::stdin()
            .lock()
            .take(STDIN_MAX + 1)
            .read_to_end(&mut buf);
        let _ = tx.send(read.map(|_| buf));
    });
    let read = match rx.recv_timeout(STDIN_NOTICE) {
        Ok(read) => read,
        Err(_) => {
            eprintln!("nib: reading stdin… (it is still open; close it or press Ctrl-D)");
            rx.recv()
                .unwrap_or_else(|_| Err(std::io::ErrorKind::BrokenPipe.into()))
        }
    };
    let bytes = read.map_err(|e| Error::Setup(format!("cannot read stdin: {e}")))?;
    if bytes.len() as u64 > STDIN_MAX {
        return Err(Error::Usage(format!(
            "stdin holds more than {} MiB; pass a smaller excerpt (e.g. | tail -n 2000) or name a file in the prompt",
            STDIN_MAX / (1024 * 1024)
        )));
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
