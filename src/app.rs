//! One function per way in: a headless task (`app/headless.rs`), the REPL, `nib
//! sessions`, `nib undo`, `nib trust` and `--print-system-prompt`. Builds the pieces of
//! a run (`app/setup.rs`) from `Args` and `Config` and hands them to the agent or the
//! REPL; what it says goes through `ui::report`.

mod claude;
mod headless;
mod setup;

use crate::approval;
use crate::cli::{self, Args, Command, Error, ExitCode, Resume};
use crate::config::env::Env;
use crate::config::{Config, Dirs, current_dir};
use crate::context;
use crate::journal::{self, Record};
use crate::sessions;
use crate::tools;
use crate::ui::report;
use claude::{ClaudeSetup, mcp_servers};
use setup::{enabled_tools, prepare, system_prompt};
use std::io::IsTerminal;
use std::path::Path;

/// Runs what the arguments ask for, in the environment `env`.
pub fn run(args: Args, env: Env) -> Result<ExitCode, Error> {
    let dirs = Dirs::read();
    match args.command {
        Command::Help => report::stdout(&cli::help()),
        Command::SubcommandHelp(sub) => report::stdout(sub.help()),
        Command::Version => report::stdout(&format!("nib {}\n", env!("CARGO_PKG_VERSION"))),
        Command::Sessions { all, json } => list_sessions(&dirs, all, json)?,
        Command::Undo { count } => undo(&dirs, count)?,
        Command::Trust => trust_folder(&dirs)?,
        Command::Run => return run_task(args, Config::load(env, dirs)?),
    }
    Ok(ExitCode::Success)
}

fn list_sessions(dirs: &Dirs, all: bool, json: bool) -> Result<(), Error> {
    let cwd = current_dir()?;
    // A session that never got a message (older nibs left such files) is not listed.
    let mut list = sessions::list(&dirs.sessions()?, (!all).then_some(cwd.as_path()));
    list.retain(|s| !s.first_prompt.is_empty());
    if list.is_empty() && !json {
        report::no_sessions(all);
        return Ok(());
    }
    let text = if json {
        serde_json::to_string_pretty(&list).unwrap_or_default() + "\n"
    } else {
        list.iter()
            .map(|s| format!("{}\n", crate::ui::term::sanitize(&sessions::row(s))))
            .collect()
    };
    report::stdout(&text);
    Ok(())
}

fn undo(dirs: &Dirs, count: usize) -> Result<(), Error> {
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
    report::undone(&done, count);
    Ok(())
}

/// `nib trust`: this folder's own settings may allow tools and set the mode from now on.
fn trust_folder(dirs: &Dirs) -> Result<(), Error> {
    let cwd = current_dir()?;
    approval::trust::trust_folder(&dirs.need_data()?, &cwd).map_err(Error::Setup)?;
    report::trusted(&cwd);
    Ok(())
}

/// Whether a journal records a file change (undone or not).
fn changed_files(path: &Path) -> bool {
    let changed = |record: &Record| match record {
        Record::Change { .. } => true,
        Record::ToolResult { change, .. } => change.is_some(),
        _ => false,
    };
    journal::load(path).is_ok_and(|l| l.entries.iter().any(|e| changed(&e.record)))
}

fn run_task(args: Args, config: Config) -> Result<ExitCode, Error> {
    let (skills, skipped) = context::find_skills(
        &config.cwd,
        config.dirs.home.as_deref(),
        config.dirs.nib_config().as_deref(),
    );
    report::warnings(&skipped);
    let system = system_prompt(&args, &config, &skills)?;
    if args.print_system_prompt {
        show_context(&args, &config, &system, &skills)?;
        return Ok(ExitCode::Success);
    }
    if args.print || !std::io::stdin().is_terminal() {
        return headless::run(&args, config, system, skills);
    }
    // `nib -r` without an id: the REPL starts fresh and shows its session picker.
    let mut fresh = args.clone();
    fresh.resume = fresh.resume.filter(|r| *r != Resume::Pick);
    let dirs = config.dirs.clone();
    let setup = prepare(&fresh, config, system, skills)?;
    crate::ui::repl::run(&args, &dirs, setup).map_err(Error::Setup)
}

/// `--print-system-prompt`: the prompt's parts, the tools and the MCP servers with
/// their sizes.
fn show_context(
    args: &Args,
    config: &Config,
    system: &[context::Part],
    skills: &[context::Skill],
) -> Result<(), Error> {
    let specs = tools::specs(&enabled_tools(args, skills));
    let bytes: usize = specs.iter().map(crate::mcp::spec_bytes).sum();
    let total = context::render(system).len();
    report::system_prompt(system, total, specs.len(), bytes);
    let claude = ClaudeSetup::load(args, config)?;
    let servers = mcp_servers(args, config, &claude);
    servers.wait();
    report::mcp_servers(&servers.status());
    Ok(())
}
