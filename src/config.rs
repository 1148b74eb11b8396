//! Everything nib learns from outside its arguments, read once and then passed down as
//! one `Config`: the process environment (`config/env.rs`), the directories nib uses,
//! nib's own settings file (`config/settings.rs`), Claude Code's settings files
//! (`config/claude.rs`) and the model server to talk to (`config/endpoint.rs`).
//!
//! Nothing else in nib reads the environment or the `dirs` crate.

pub mod claude;
pub mod endpoint;
pub mod env;
pub mod settings;

use crate::cli::{Args, Error};
use crate::journal;
use crate::model::{self, Endpoint};
use endpoint::Resolved;
use env::Env;
use settings::Settings;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long nib waits for a server to list its models when no model was named.
const LIST_TIMEOUT: Duration = Duration::from_secs(5);

/// Looks up an environment variable (`Env::var`, or a test's table).
pub type EnvFn<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The directories nib uses; from `dirs`, overridable for tests through XDG variables.
#[derive(Clone, Debug)]
pub struct Dirs {
    pub home: Option<PathBuf>,
    pub config: Option<PathBuf>,
    pub data: Option<PathBuf>,
}

impl Dirs {
    pub fn read() -> Dirs {
        Dirs {
            home: dirs::home_dir(),
            config: dirs::config_dir(),
            data: dirs::data_dir(),
        }
    }

    /// `<config_dir>/nib`: nib's settings, skills and commands.
    pub fn nib_config(&self) -> Option<PathBuf> {
        self.config.as_ref().map(|c| c.join("nib"))
    }

    /// `<data_dir>/nib`: sessions, history, trusted folders.
    pub fn nib_data(&self) -> Option<PathBuf> {
        self.data.as_ref().map(|d| d.join("nib"))
    }

    /// `nib_data`, or the error saying how to get one.
    pub fn need_data(&self) -> Result<PathBuf, Error> {
        self.nib_data().ok_or_else(no_data)
    }

    /// Where session journals are kept.
    pub fn sessions(&self) -> Result<PathBuf, Error> {
        let data = self.data.as_deref();
        data.map(journal::sessions_root).ok_or_else(no_data)
    }

    /// Whether the project's own configuration (its hooks, `.mcp.json`, commands,
    /// settings `env` and model) may run in `root`: only in a folder the user trusted.
    pub fn trusted(&self, root: &Path) -> bool {
        self.nib_data()
            .is_some_and(|d| crate::approval::trust::folder_trusted(&d, root))
    }
}

fn no_data() -> Error {
    Error::Setup("no data directory (set HOME or XDG_DATA_HOME)".into())
}

/// The current directory, resolved (symlinks followed).
pub fn current_dir() -> Result<PathBuf, Error> {
    std::env::current_dir()
        .and_then(|d| d.canonicalize())
        .map_err(|e| Error::Setup(format!("cannot use the current directory: {e}")))
}

/// What a task runs with besides its arguments, read once.
#[derive(Clone, Debug)]
pub struct Config {
    pub env: Env,
    pub dirs: Dirs,
    pub settings: Settings,
    pub cwd: PathBuf,
}

impl Config {
    /// The directories, the settings file and the current directory for `env`.
    pub fn load(env: Env, dirs: Dirs) -> Result<Config, Error> {
        let cwd = current_dir()?;
        let settings = Settings::load(dirs.config.as_deref()).map_err(Error::Setup)?;
        Ok(Config {
            env,
            dirs,
            settings,
            cwd,
        })
    }

    /// The endpoint the arguments, environment and settings name (a local server when
    /// none is), and where it came from; its model may still be empty (`fill_model`).
    pub fn resolve(&self, args: &Args) -> Result<Resolved, Error> {
        let env = |k: &str| self.env.non_empty(k);
        let probe = &endpoint::probe_local;
        endpoint::resolve_endpoint(args, &env, &self.settings, probe)
    }

    /// `resolve` with a model: what `/model` in the REPL re-resolves through.
    pub fn endpoint(&self, args: &Args) -> Result<Resolved, Error> {
        let mut resolved = self.resolve(args)?;
        fill_model(&mut resolved.endpoint)?;
        Ok(resolved)
    }
}

/// An endpoint without a model gets the first one its server lists.
pub fn fill_model(endpoint: &mut Endpoint) -> Result<(), Error> {
    if !endpoint.model.is_empty() {
        return Ok(());
    }
    let listed = model::list_models(&endpoint.base_url, LIST_TIMEOUT)
        .map_err(|e| Error::Setup(unreachable(&endpoint.base_url, e)))?;
    endpoint.model = listed.into_iter().next().ok_or_else(|| {
        Error::Setup(format!(
            "no model given and {} lists none: pass --model NAME",
            endpoint.base_url
        ))
    })?;
    Ok(())
}

/// Why a server could not be asked, the cause first: "nothing listens on
/// 127.0.0.1:1: connection refused".
fn unreachable(base_url: &str, e: model::Error) -> String {
    match e {
        model::Error::Connect { detail, .. } if detail.contains("refused") => format!(
            "nothing listens on {}: {detail}; start the model server or pass --base-url URL",
            model::host_of(base_url)
        ),
        e => format!("{e}; or pass --model NAME"),
    }
}
