//! One function per way in: a headless task (`app/headless.rs`), the REPL, `nib
//! sessions`, `nib undo`, `nib trust` and `--print-system-prompt`. Builds the pieces of
//! a run (`app/setup.rs`) from `Args` and `Config` and hands them to the agent or the
//! REPL; what it says goes through `ui::report`.

mod claude;
mod headless;
pub mod setup;

use crate::approval;
use crate::cli::{self, Args, Command, Error, ExitCode, Resume};
use crate::config::env::Env;
use crate::config::{Config, Dirs, current_dir};
use crate::context;
use crate::journal::{self, Journal, JournalError, Meta, Record};
use crate::model::{self, Message, Usage};
use crate::sessions;
use crate::tools::{self, fs::Seen};
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
    let list: Vec<sessions::Summary> =
        sessions::list(&dirs.sessions()?, (!all).then_some(cwd.as_path()))
            .into_iter()
            .filter(|s| !s.first_prompt.is_empty())
            .collect();
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

fn run_task(args: Args, config: Config) -> Result<ExitCode, Error> {
    let (skills, skipped) = context::find_skills(
        &config.cwd,
        config.dirs.home.as_deref(),
        config.dirs.nib_config().as_deref(),
    );
    for w in skipped {
        report::warning(&w);
    }
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

/// A session not written yet: its journal is created with the first user message, so
/// starting nib and leaving leaves no empty session behind.
pub struct NewSession {
    pub meta: Meta,
    /// Records of the session it forks, copied in when it is created.
    pub carried: Vec<Record>,
}

impl NewSession {
    /// A fresh session of `cwd` on `endpoint`.
    pub fn new(id: String, cwd: &Path, endpoint: &model::Endpoint) -> NewSession {
        NewSession {
            meta: Meta {
                id,
                cwd: cwd.to_path_buf(),
                model: endpoint.model.clone(),
                provider: endpoint.provider.name().to_string(),
                nib: env!("CARGO_PKG_VERSION").to_string(),
                started: journal::rfc3339(journal::now_ms()),
                format: journal::FORMAT,
                forked_from: None,
            },
            carried: Vec::new(),
        }
    }

    pub fn create(self, root: &Path) -> Result<Journal, JournalError> {
        let mut journal = Journal::create(root, self.meta)?;
        for record in self.carried {
            journal.append(record)?;
        }
        Ok(journal)
    }
}

/// What a resumed session brings along.
#[derive(Default)]
pub struct Resumed {
    pub messages: Vec<Message>,
    pub usage: Usage,
    pub cost_usd: f64,
    pub turns: u32,
    /// What the model had read or written, so it need not read it again.
    pub seen: Seen,
}

impl Resumed {
    pub fn from_entries(entries: &[journal::Entry]) -> Resumed {
        let mut r = Resumed {
            messages: journal::conversation(entries),
            ..Resumed::default()
        };
        for e in entries {
            if let journal::Record::Seen { path, stamp } = &e.record {
                r.seen.note(path, stamp.clone());
            }
        }
        for e in entries.iter().rev() {
            if let journal::Record::End {
                usage,
                cost_usd,
                session_turns,
                ..
            } = &e.record
            {
                (r.usage, r.cost_usd, r.turns) = (*usage, *cost_usd, *session_turns);
                break;
            }
        }
        r
    }
}

/// The session `-c` / `-r ID` names (forked with `--fork-session`), or a new one to
/// create with the first message.
fn open_session(
    args: &Args,
    dirs: &Dirs,
    cwd: &Path,
    endpoint: &model::Endpoint,
) -> Result<(Option<Journal>, Option<NewSession>, Resumed), Error> {
    let root = dirs.sessions()?;
    if let Some(id) = &args.session_id {
        if !journal::valid_id(id) {
            return Err(Error::Usage(format!(
                "--session-id {id:?}: use letters, digits, - and _ only (a UUID is best)"
            )));
        }
        if args.resume.is_some() && !args.fork_session {
            return Err(Error::Usage(
                "--session-id with -c or -r needs --fork-session: a resumed session keeps its ID"
                    .into(),
            ));
        }
    }
    let previous = match &args.resume {
        None => None,
        // The latest session with a conversation: an empty one has nothing to go on with.
        Some(Resume::Latest) => Some(
            sessions::list(&root, Some(cwd))
                .into_iter()
                .find(|s| !s.first_prompt.is_empty())
                .map(|s| s.path)
                .ok_or_else(|| {
                    Error::Setup(
                        "no previous session in this directory: start one with nib -p \"task\""
                            .into(),
                    )
                })?,
        ),
        Some(Resume::Id(id)) => Some(journal::find_by_prefix(&root, id)?),
        Some(Resume::Pick) => {
            return Err(Error::Usage(
                "-r needs a session ID when nib runs headless; list them with nib sessions".into(),
            ));
        }
    };
    let mut resumed = Resumed::default();
    let mut forked_from = None;
    let mut carried = Vec::new();
    if let Some(path) = &previous {
        let loaded = journal::load(path)?;
        for s in &loaded.skipped {
            report::warning(&format!("skipped an unreadable journal line: {s}"));
        }
        resumed = Resumed::from_entries(&loaded.entries);
        if !args.fork_session {
            if args.no_session_persistence {
                return Ok((None, None, resumed));
            }
            let journal = Journal::reopen(path, &loaded.meta.id)?;
            return Ok((Some(journal), None, resumed));
        }
        forked_from = Some(loaded.meta.id.clone());
        carried = loaded.entries.into_iter().map(|e| e.record).collect();
    }
    if args.no_session_persistence {
        return Ok((None, None, resumed));
    }
    let id = args.session_id.clone().unwrap_or_else(journal::new_id);
    if journal::exists(&root, &id) {
        return Err(JournalError::Taken(id).into());
    }
    let mut new = NewSession::new(id, cwd, endpoint);
    new.meta.forked_from = forked_from;
    new.carried = carried;
    Ok((None, Some(new), resumed))
}
