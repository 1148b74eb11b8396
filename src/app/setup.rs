//! Everything a run needs besides the prompt, built from `Args` and `Config`: the
//! endpoint, the approval gate, the sandbox, the session, the system prompt and the
//! agent that holds them.

use super::claude::{ClaudeSetup, claude_model, mcp_servers};
use crate::agent::{self, Agent};
use crate::approval::{self, Gate, Mode};
use crate::cli::{Args, DEFAULT_MAX_TURNS, Error, ExitCode};
use crate::compact::Window;
use crate::config::endpoint::Source;
use crate::config::{self, Config};
use crate::context;
use crate::model::{self, Client, Endpoint};
use crate::paths::Workspace;
use crate::price;
use crate::sandbox::{self, Level, Sandbox};
use crate::secrets;
use crate::session::{self, Session};
use crate::tools::Tool;
use crate::ui::{Setup, report};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// Endpoint, gate, session and agent from the arguments, the configuration, the system
/// prompt and skills.
pub fn prepare(
    args: &Args,
    config: Config,
    system: Vec<context::Part>,
    skills: Vec<context::Skill>,
) -> Result<Setup, Error> {
    let claude = ClaudeSetup::load(args, &config)?;
    let mcp = mcp_servers(args, &config, &claude);
    let endpoint = endpoint(args, &config, claude.model.clone())?;
    let cwd = config.cwd.clone();
    let mut gate = gate(args, &config, &claude)?;
    let mut sandbox = sandbox_for(args, &config, &claude.roots)?;
    for dir in skills.iter().filter_map(|s| s.dir.as_deref()) {
        gate.allow_read_dir(dir);
        sandbox.add_read_dir(dir);
    }
    for dir in &claude.roots {
        gate.add_root(dir);
    }
    let enabled = enabled_tools(args, &skills);
    let cancel = Arc::new(AtomicBool::new(false));
    crate::signals::forward(cancel.clone(), stop);
    let origin = session::Origin {
        root: config.dirs.sessions()?,
        cwd: cwd.clone(),
        env_secrets: secrets::secret_values(config.env.vars().into_iter()),
        persist: !args.no_session_persistence,
    };
    let (session, warnings) = Session::open(args, origin, &endpoint)?;
    report::warnings(&warnings);
    let settings = &config.settings;
    let prices = price::Table::from_settings(settings.prices.as_ref()).map_err(Error::Setup)?;
    let window = Window::for_endpoint(&endpoint, settings.context_window);
    let default_output_cap = match model::is_loopback(&endpoint.base_url) {
        true => crate::agent::LOCAL_MAX_OUTPUT_TOKENS,
        false => crate::agent::MAX_OUTPUT_TOKENS,
    };
    let mut env = secrets::child_env(config.env.vars(), &settings.env_passthrough);
    env.retain(|(k, _)| !claude.env.iter().any(|(name, _)| name == k));
    env.extend(claude.env.iter().cloned());
    let mut hooks = claude.hooks;
    hooks.session_id = session.id().to_string();
    // A new session's journal is written with its first message: hooks before that get
    // the path it will have.
    hooks.transcript_path = session.transcript_path();
    let options = config::endpoint::options(&endpoint, args, settings).map_err(Error::Setup)?;
    let trusted = config.dirs.trusted(&cwd);
    let parts = agent::Parts {
        client: Client::new(endpoint, settings.limits(), cancel.clone()).with_options(options),
        gate,
        specs: crate::tools::specs(&enabled),
        system: context::render(&system),
        workspace: workspace(&config),
        env,
        max_turns: args.max_turns.unwrap_or(DEFAULT_MAX_TURNS),
        max_output_tokens: settings.max_output_tokens().unwrap_or(default_output_cap),
        max_budget_usd: args.max_budget_usd,
        prices,
        window,
        cancel,
        skills,
        sandbox,
        hooks,
        mcp,
        commands: context::find_commands(&cwd, config.dirs.home.as_deref(), trusted),
    };
    Ok(Setup {
        agent: Agent::new(parts, session),
        system,
        tools: enabled,
        config,
    })
}

/// How a stop signal ends nib once the task has wound down: the terminal put back,
/// and the exit status the signal would have given.
fn stop(signal: i32) -> ! {
    crate::ui::editor::restore_terminal_fully();
    std::process::exit(ExitCode::Signal(signal).code())
}

impl From<session::Error> for Error {
    fn from(e: session::Error) -> Error {
        match e {
            session::Error::Usage(m) => Error::Usage(m),
            session::Error::Failed(m) => Error::Setup(m),
        }
    }
}

/// The approval gate: `--permission-mode`, `--settings`, then settings `defaultMode`;
/// the rules of `--settings` and the flags on top of the files the gate reads itself.
fn gate(args: &Args, config: &Config, claude: &ClaudeSetup) -> Result<Gate, Error> {
    let mode = args.permission_mode.or(claude.mode).or_else(|| {
        let named = config.settings.default_mode.as_deref();
        named.and_then(Mode::parse)
    });
    let mut rules = claude.rules.clone();
    rules.allow.extend(args.allowed_tools.clone());
    rules.deny.extend(args.disallowed_tools.clone());
    let places = approval::settings::Places {
        nib_config: config.dirs.nib_config(),
        nib_data: config.dirs.nib_data(),
    };
    let gate = approval::settings::load(rules, mode, workspace(config), places);
    let gate = gate.map_err(Error::Setup)?;
    report::warnings(gate.warnings());
    Ok(gate)
}

/// The workspace: the current directory (and home, for `~`).
fn workspace(config: &Config) -> Workspace {
    Workspace {
        root: config.cwd.clone(),
        home: config.dirs.home.clone(),
    }
}

/// The tools offered: `--tools`, or all; `skill` only when there are skills.
pub fn enabled_tools(args: &Args, skills: &[context::Skill]) -> Vec<Tool> {
    let mut enabled: Vec<Tool> = args.tools.clone().unwrap_or_else(|| Tool::ALL.to_vec());
    enabled.retain(|&t| t != Tool::Skill || !skills.is_empty());
    enabled
}

/// The sandbox from `--sandbox` and the user's settings (a project cannot change it),
/// with the extra workspace `roots` (`--add-dir`, `additionalDirectories`) writable;
/// what the kernel cannot do is said in one line.
fn sandbox_for(args: &Args, config: &Config, roots: &[PathBuf]) -> Result<Sandbox, Error> {
    let home = config.dirs.home.as_deref();
    let (level, mut options) =
        sandbox::from_settings(config.settings.sandbox.as_ref(), home).map_err(Error::Setup)?;
    options.writable.extend(roots.iter().cloned());
    options.auto = args.auto || config.settings.auto.unwrap_or_default();
    options.temp = config.env.tmpdir();
    let level = args.sandbox.or(level).unwrap_or(Level::WorkspaceWrite);
    let nib_dirs = [config.dirs.nib_config(), config.dirs.nib_data()];
    let nib_dirs: Vec<PathBuf> = nib_dirs.into_iter().flatten().collect();
    let sandbox = Sandbox::new(level, &config.cwd, home, &nib_dirs, options);
    if let Some(notice) = sandbox.notice() {
        report::notice(&notice);
    }
    Ok(sandbox)
}

/// The endpoint the arguments, environment and settings name, with a model; `claude`
/// is the `model` of Claude Code's settings (and the file naming it).
fn endpoint(
    args: &Args,
    config: &Config,
    claude: Option<(String, String)>,
) -> Result<Endpoint, Error> {
    let resolved = config.resolve(args)?;
    let mut endpoint = resolved.endpoint;
    if let Some(ignored) = claude_model(&mut endpoint, args, config, claude) {
        report::notice(&ignored);
    }
    if resolved.source == Source::Probe {
        report::found_locally(&endpoint);
    }
    config::fill_model(&mut endpoint)?;
    Ok(endpoint)
}

/// The system prompt's parts: nib's, the instruction files, skills, and what
/// `--system-prompt` and `--append-system-prompt` (or their files) say.
pub fn system_prompt(
    args: &Args,
    config: &Config,
    skills: &[context::Skill],
) -> Result<Vec<context::Part>, Error> {
    let read = |p: &Option<PathBuf>| match p {
        Some(p) => std::fs::read_to_string(p)
            .map(Some)
            .map_err(|e| Error::Usage(format!("cannot read {}: {e}", p.display()))),
        None => Ok(None),
    };
    let file = read(&args.system_prompt_file)?;
    let replace = args.system_prompt.clone().or(file);
    let file = read(&args.append_system_prompt_file)?;
    let append = [args.append_system_prompt.clone(), file].into_iter();
    let append = append.flatten().reduce(|a, b| format!("{a}\n\n{b}"));
    let nib_config = config.dirs.nib_config();
    let (parts, left_out) = context::parts(&context::Options {
        root: &config.cwd,
        home: config.dirs.home.as_deref(),
        nib_config: nib_config.as_deref(),
        skills,
        replace,
        append,
        terse: args.terse || config.settings.terse.unwrap_or_default(),
    });
    report::warnings(&left_out);
    Ok(parts)
}
