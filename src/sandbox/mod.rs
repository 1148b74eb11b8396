//! The kernel sandbox for the commands nib runs: what a command may read, write and
//! reach, enforced by Landlock (raw syscalls through `libc`) and, where unprivileged
//! user namespaces work, read-only bind mounts for the files inside a writable
//! workspace that run code later (`.git/hooks`, `.git/config`, `.claude/`).
//!
//! Everything is prepared in the parent (paths opened, the Landlock ruleset built,
//! strings made); the child between fork and exec only makes system calls on what was
//! prepared, so it never allocates. Whether a command may run at all is the gate's
//! job; this module only decides how far it reaches once it runs.

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

mod landlock;
mod namespace;

use crate::paths::canonical_prefix;
use namespace::{Maps, Mount};

/// How far commands reach (`--sandbox`, settings `sandbox`), named as Codex names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Every command: read the workspace and the system, write nothing, no network.
    ReadOnly,
    /// Commands someone allowed write the workspace and the temp dir.
    WorkspaceWrite,
    /// Commands run unconfined.
    Off,
}

/// Each level and its name, for `parse` and `name` alike.
const LEVELS: [(Level, &str); 3] = [
    (Level::ReadOnly, "read-only"),
    (Level::WorkspaceWrite, "workspace-write"),
    (Level::Off, "off"),
];

impl Level {
    pub const NAMES: &str = "read-only, workspace-write or off";

    pub fn parse(s: &str) -> Option<Level> {
        LEVELS.iter().find(|(_, name)| *name == s).map(|(l, _)| *l)
    }

    pub fn name(self) -> &'static str {
        LEVELS
            .iter()
            .find(|(l, _)| *l == self)
            .map_or("", |(_, n)| n)
    }
}

/// Why a command runs: decides how far it reaches at `workspace-write`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    /// nib's built-in read-only set, run without asking anyone.
    Unasked,
    /// A rule, a person or `--yes` allowed it.
    Approved,
    /// `--auto` ran a call that would have asked.
    Auto,
}

/// What one command gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Read the workspace and system locations; write nothing; no network.
    Read,
    /// Read all but `deny_read`; write the workspace, the temp dir and `writable`.
    Write { network: bool },
    /// Unconfined.
    All,
}

/// Credentials no command needs to read, relative to home.
const DENY_READ_IN_HOME: &[&str] = &[
    ".ssh",
    ".gnupg",
    ".aws",
    ".azure",
    ".config/gcloud",
    ".config/gh",
    ".config/hub",
    ".netrc",
    ".git-credentials",
    ".docker",
    ".kube",
    ".npmrc",
    ".pypirc",
    ".cargo/credentials",
    ".cargo/credentials.toml",
    ".password-store",
];

/// Where programs live and find their configuration: readable by every command.
const SYSTEM_READ: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc",
];

/// Devices every command may read and write (writing them stores nothing).
const DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/urandom",
    "/dev/random",
];

/// Writable to commands that may write, like the temp dir: POSIX shared memory and
/// semaphores (Python's multiprocessing, databases) live there.
const SHARED_MEMORY: &str = "/dev/shm";

/// The temp dir when `TMPDIR` names none.
const DEFAULT_TEMP: &str = "/tmp";

/// Inside the workspace: pinned in place (cannot be moved aside and replaced).
const PINNED: &[&str] = &[".git"];

/// Inside the workspace: read-only to every confined command, because they run code
/// or grant permissions later.
const READ_ONLY_INSIDE: &[&str] = &[".git/hooks", ".git/config", ".claude", ".mcp.json"];

/// Folders of `READ_ONLY_INSIDE` made (empty) when missing, so that they can be mounted
/// read-only too: `.git/hooks` only in a repository. Git ignores empty folders.
const MADE_IF_MISSING: &[&str] = &[".git/hooks", ".claude"];

/// Files of `READ_ONLY_INSIDE` that cannot be mounted when missing (a mount needs a
/// file to cover): one that a confined command creates is removed when it ends.
const REMOVED_IF_CREATED: &[&str] = &[".mcp.json"];

/// The sandbox as configured for this session.
#[derive(Clone, Debug)]
pub struct Sandbox {
    level: Level,
    support: Support,
    workspace: PathBuf,
    temp: PathBuf,
    /// Extra readable directories for `Reach::Read` (skill folders).
    read_dirs: Vec<PathBuf>,
    writable: Vec<PathBuf>,
    deny_read: Vec<PathBuf>,
    /// Read-only inside writable trees besides `READ_ONLY_INSIDE` (nib's settings).
    read_only: Vec<PathBuf>,
    network: bool,
    auto: bool,
}

/// Settings that shape the sandbox (`sandbox.*` in the user's settings).
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub writable: Vec<PathBuf>,
    pub deny_read: Vec<PathBuf>,
    /// `sandbox.network`: approved commands reach the network (default true).
    pub network: Option<bool>,
    /// `--auto` (settings `auto`): calls that would ask run confined instead.
    pub auto: bool,
    /// `$TMPDIR`: the temp dir commands may write (`/tmp` when unset).
    pub temp: Option<PathBuf>,
}

impl Sandbox {
    /// A sandbox at `level` for `workspace`; `home` and `nib_dirs` (config, data) are
    /// kept from commands. Probes what the kernel offers.
    pub fn new(
        level: Level,
        workspace: &Path,
        home: Option<&Path>,
        nib_dirs: &[PathBuf],
        options: Options,
    ) -> Sandbox {
        let support = match level {
            Level::Off => Support::default(),
            _ => Support {
                landlock: landlock::abi(),
                namespaces: namespace::works(),
            },
        };
        let mut deny_read: Vec<PathBuf> = home
            .map(|h| DENY_READ_IN_HOME.iter().map(|p| h.join(p)).collect())
            .unwrap_or_default();
        deny_read.extend(nib_dirs.iter().cloned());
        deny_read.extend(options.deny_read);
        let temp = options.temp.unwrap_or_else(|| PathBuf::from(DEFAULT_TEMP));
        Sandbox {
            level,
            support,
            workspace: workspace.to_path_buf(),
            temp: canonical_prefix(&temp),
            read_dirs: Vec::new(),
            writable: options
                .writable
                .iter()
                .map(|p| canonical_prefix(p))
                .collect(),
            deny_read: deny_read.iter().map(|p| canonical_prefix(p)).collect(),
            read_only: nib_dirs.iter().map(|p| canonical_prefix(p)).collect(),
            network: options.network.unwrap_or(true),
            auto: options.auto,
        }
    }

    /// No confinement at all.
    #[cfg(test)]
    pub fn off(workspace: &Path) -> Sandbox {
        Sandbox::new(Level::Off, workspace, None, &[], Options::default())
    }

    /// Lets commands of the read-only set read under `dir` too (a skill's folder).
    pub fn add_read_dir(&mut self, dir: &Path) {
        self.read_dirs.push(canonical_prefix(dir));
    }

    /// The level in effect: `Off` where the kernel offers no sandbox.
    pub fn level(&self) -> Level {
        match self.support.landlock {
            0 => Level::Off,
            _ => self.level,
        }
    }

    /// `--auto` in effect: only inside a sandbox, never unconfined.
    pub fn auto(&self) -> bool {
        self.auto && self.level() != Level::Off
    }

    /// One line for people about what the kernel could not do, if anything.
    pub fn notice(&self) -> Option<String> {
        let auto = match self.auto {
            true => "; --auto is off: calls that would ask still ask",
            false => "",
        };
        if self.level == Level::Off {
            return (!auto.is_empty()).then(|| format!("no sandbox (--sandbox off){auto}"));
        }
        if self.support.landlock == 0 {
            return Some(format!(
                "no sandbox: this kernel has no Landlock; commands run unconfined{auto}"
            ));
        }
        if !self.support.namespaces {
            return Some(
                "sandbox without user namespaces: .git/hooks, .git/config and .claude/ stay \
                 writable to approved commands"
                    .into(),
            );
        }
        None
    }

    /// One line for the banner and `/permissions`.
    pub fn describe(&self) -> String {
        let level = self.level();
        let what = match level {
            Level::Off if self.level != Level::Off => {
                return "no sandbox (this kernel has no Landlock)".into();
            }
            Level::Off => "commands run unconfined",
            Level::ReadOnly => "commands read the workspace and write nothing",
            Level::WorkspaceWrite if self.network => {
                "approved commands write the workspace and temp dir"
            }
            Level::WorkspaceWrite => {
                "approved commands write the workspace and temp dir, no network"
            }
        };
        let auto = match self.auto() {
            true => "; --auto: calls that would ask run here without network",
            false => "",
        };
        format!("{} ({what}){auto}", level.name())
    }

    /// How far a command with this grant reaches.
    pub fn reach(&self, grant: Grant) -> Reach {
        match (self.level(), grant) {
            (Level::Off, _) => Reach::All,
            (Level::ReadOnly, _) | (Level::WorkspaceWrite, Grant::Unasked) => Reach::Read,
            (Level::WorkspaceWrite, Grant::Approved) => Reach::Write {
                network: self.network,
            },
            (Level::WorkspaceWrite, Grant::Auto) => Reach::Write { network: false },
        }
    }

    /// Makes `cmd` run confined as a command with `grant`: the public way to run
    /// anything "like an approved command". Call before `spawn`; the prepared state
    /// lives in the closure until the child execs.
    pub fn confine(&self, cmd: &mut Command, grant: Grant) -> io::Result<()> {
        let reach = self.reach(grant);
        if reach == Reach::All {
            return Ok(());
        }
        let prepared = self.prepare(reach)?;
        // SAFETY: `apply` only makes system calls on memory prepared before the fork.
        unsafe {
            cmd.pre_exec(move || prepared.apply());
        }
        Ok(())
    }

    /// Opens what the child needs and builds the Landlock ruleset.
    fn prepare(&self, reach: Reach) -> io::Result<Prepared> {
        let abi = self.support.landlock;
        let network = matches!(reach, Reach::Write { network: true });
        let ruleset = Ruleset::new(abi, !network)?;
        let read = landlock::READ;
        let write = landlock::handled_fs(abi);
        let device = landlock::DEVICE & write;
        match reach {
            Reach::Read => {
                let roots = [&self.workspace]
                    .into_iter()
                    .chain(&self.read_dirs)
                    .cloned()
                    .chain(SYSTEM_READ.iter().map(PathBuf::from));
                for root in roots {
                    ruleset.cover(&root, read, &self.deny_read)?;
                }
            }
            Reach::Write { .. } => {
                ruleset.cover(Path::new("/"), read, &self.deny_read)?;
                let roots = self.writable_roots().chain([Path::new(SHARED_MEMORY)]);
                for root in roots {
                    ruleset.cover(root, write, &self.deny_read)?;
                }
            }
            Reach::All => {}
        }
        for dev in DEVICES {
            ruleset.add(Path::new(dev), device)?;
        }
        // Namespaces cost a millisecond or two per command: only where they are the
        // only way. Read-only mounts for writers; for a writer without network, a
        // network namespace with no interfaces (Landlock stops TCP only); for the
        // read-only set Landlock's TCP rules suffice where the ABI has them.
        let mounts = match self.support.namespaces {
            true => self.mounts(reach)?,
            false => Vec::new(),
        };
        let writer = matches!(reach, Reach::Write { .. });
        let new_net = !network && self.support.namespaces && (writer || abi < landlock::NET_ABI);
        Ok(Prepared {
            ruleset,
            namespaces: !mounts.is_empty() || new_net,
            maps: Maps::current(),
            mounts,
            new_net,
        })
    }

    /// The trees a writing command may write: the workspace, the temp dir, `writable`.
    fn writable_roots(&self) -> impl Iterator<Item = &Path> {
        let roots = [&self.workspace, &self.temp].into_iter();
        roots.chain(&self.writable).map(PathBuf::as_path)
    }

    /// Bind mounts for the child: pins, then read-only files and folders inside the
    /// trees this reach may write.
    fn mounts(&self, reach: Reach) -> io::Result<Vec<Mount>> {
        let Reach::Write { .. } = reach else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for rel in PINNED {
            let path = self.workspace.join(rel);
            if path.is_dir() {
                out.push(Mount::new(&path, false)?);
            }
        }
        for rel in MADE_IF_MISSING {
            let path = self.workspace.join(rel);
            if path.parent().is_some_and(Path::is_dir) && fs::symlink_metadata(&path).is_err() {
                fs::create_dir(&path)?;
            }
        }
        let inside = READ_ONLY_INSIDE.iter().map(|rel| self.workspace.join(rel));
        for path in inside.chain(self.read_only.iter().cloned()) {
            let writable = self.writable_roots().any(|w| path.starts_with(w));
            if writable && path.exists() {
                out.push(Mount::new(&path, true)?);
            }
        }
        Ok(out)
    }
}

/// The protected files a confined command at `grant` could create, because they do
/// not exist yet (`REMOVED_IF_CREATED`); `Created::undo` after the command.
pub fn watch_created(sandbox: &Sandbox, grant: Grant) -> Created {
    let writer = matches!(sandbox.reach(grant), Reach::Write { .. });
    let missing = REMOVED_IF_CREATED
        .iter()
        .map(|rel| sandbox.workspace.join(rel))
        .filter(|path| writer && fs::symlink_metadata(path).is_err());
    Created(missing.collect())
}

/// Protected files that did not exist before a confined command.
pub struct Created(Vec<PathBuf>);

impl Created {
    /// Removes those the command created; the tool result's note saying so, if any.
    pub fn undo(self) -> Option<String> {
        let removed: Vec<String> = (self.0.into_iter())
            .filter(|path| match fs::symlink_metadata(path) {
                Ok(meta) if meta.is_dir() => fs::remove_dir_all(path).is_ok(),
                Ok(_) => fs::remove_file(path).is_ok(),
                Err(_) => false,
            })
            .map(|path| {
                path.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        (!removed.is_empty()).then(|| {
            format!(
                "\nnote: nib's sandbox removed {}, which this command created: it would start \
                 commands when nib next runs here; write it with the write tool, which asks",
                removed.join(", ")
            )
        })
    }
}

/// A tool result's note when a confined command hit the sandbox, if it seems to have.
pub fn blocked_note(reach: Reach, failed: bool, output: &str) -> Option<String> {
    const SIGNS: [&str; 3] = [
        "Permission denied",
        "Operation not permitted",
        "Read-only file system",
    ];
    let hit = failed && SIGNS.iter().any(|s| output.contains(s));
    let what = match (hit, reach) {
        (false, _) | (_, Reach::All) => return None,
        (_, Reach::Read) => {
            "nib's sandbox let this command read only the workspace and system files, write \
             nothing and reach no network (so it does for commands run without asking, and \
             for every command at --sandbox read-only)"
        }
        (_, Reach::Write { network: true }) => {
            "nib's sandbox lets commands write only the workspace and the temp dir (not \
             .git/hooks, .git/config, .claude/), and read nothing under ~/.ssh and other \
             credential folders"
        }
        (_, Reach::Write { network: false }) => {
            "nib's sandbox lets this command write only the workspace and the temp dir \
             (not .git/hooks, .git/config, .claude/), read nothing under ~/.ssh and other \
             credential folders, and reach no network"
        }
    };
    Some(format!(
        "note: {what}; if this is needed, the user can allow the command with a rule, add \
         the path to sandbox.writable in settings, or run nib with --sandbox off\n"
    ))
}

/// What this kernel offers.
#[derive(Clone, Copy, Debug, Default)]
struct Support {
    /// The Landlock ABI version, 0 when there is none.
    landlock: u32,
    /// Unprivileged user and mount namespaces work.
    namespaces: bool,
}

/// A system call's result: -1 is the error in `errno`.
fn check(ret: impl Into<i64>) -> io::Result<()> {
    match ret.into() {
        -1 => Err(io::Error::last_os_error()),
        _ => Ok(()),
    }
}

/// Everything the child needs, ready before the fork.
struct Prepared {
    ruleset: Ruleset,
    namespaces: bool,
    maps: Maps,
    mounts: Vec<Mount>,
    new_net: bool,
}

impl Prepared {
    /// In the child, between fork and exec: async-signal-safe system calls only.
    fn apply(&self) -> io::Result<()> {
        // SAFETY: plain system calls on memory prepared before the fork.
        unsafe {
            check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))?;
            if self.namespaces {
                let net = if self.new_net { libc::CLONE_NEWNET } else { 0 };
                check(libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS | net))?;
                self.maps.write()?;
                check(libc::mount(
                    std::ptr::null(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ))?;
                for m in &self.mounts {
                    m.apply()?;
                }
            }
            // Last: a restricted process can no longer change mounts, so the read-only
            // binds above cannot be undone even by root in the new namespace.
            landlock::restrict(self.ruleset.fd.as_raw_fd())
        }
    }
}

/// A Landlock ruleset being built in the parent; restricts the child.
struct Ruleset {
    fd: OwnedFd,
    abi: u32,
}

impl Ruleset {
    fn new(abi: u32, no_network: bool) -> io::Result<Ruleset> {
        let fd = landlock::create(abi, no_network)?;
        // SAFETY: a fresh descriptor the kernel just returned (close-on-exec).
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Ruleset { fd, abi })
    }

    /// Allows `access` on `path` and beneath (skipped when it does not exist).
    fn add(&self, path: &Path, access: u64) -> io::Result<()> {
        let Ok(file) = std::fs::File::options()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
            .open(path)
        else {
            return Ok(());
        };
        let is_dir = file.metadata().is_ok_and(|m| m.is_dir());
        let access = match is_dir {
            true => access,
            false => access & landlock::FILE,
        } & landlock::handled_fs(self.abi);
        landlock::add_path(self.fd.as_raw_fd(), file.as_raw_fd(), access)
    }

    /// Allows `access` on `root` and beneath, except the `denied` paths: directories
    /// on the way to a denied path are split into their entries (Landlock only allows).
    fn cover(&self, root: &Path, access: u64, denied: &[PathBuf]) -> io::Result<()> {
        if denied.iter().any(|d| root.starts_with(d)) {
            return Ok(());
        }
        let splits = denied.iter().any(|d| d.starts_with(root));
        let is_dir = std::fs::symlink_metadata(root).is_ok_and(|m| m.is_dir());
        if !splits || !is_dir {
            return self.add(root, access);
        }
        let Ok(entries) = std::fs::read_dir(root) else {
            return Ok(());
        };
        // A symlink among the entries is not followed: its target is covered (or
        // denied) where it lives.
        let entries = entries
            .flatten()
            .filter(|e| !e.file_type().is_ok_and(|t| t.is_symlink()));
        for entry in entries {
            self.cover(&entry.path(), access, denied)?;
        }
        Ok(())
    }
}

/// The level and options in the user's settings: `"sandbox": "read-only"`, or an
/// object with `level`, `writable`, `deny_read` (paths, `~/` is home) and `network`.
/// Anything unreadable is an error naming the key, so nothing runs less confined than
/// the user wrote.
pub fn from_settings(
    value: Option<&serde_json::Value>,
    home: Option<&Path>,
) -> Result<(Option<Level>, Options), String> {
    use serde_json::Value;
    let bad = |key: &str, what: &str| {
        format!("settings: sandbox{key} must be {what}; fix it in settings.json")
    };
    let level = |v: &Value, key: &str| match v.as_str().and_then(Level::parse) {
        Some(l) => Ok(l),
        None => Err(bad(key, Level::NAMES)),
    };
    let paths = |v: Option<&Value>, key: &str| -> Result<Vec<PathBuf>, String> {
        let Some(v) = v else { return Ok(Vec::new()) };
        let list = v.as_array().ok_or_else(|| bad(key, "a list of paths"))?;
        list.iter()
            .map(|p| match (p.as_str(), home) {
                (Some(s), Some(h)) if s.starts_with("~/") => Ok(h.join(&s[2..])),
                (Some(s), _) if s.starts_with('/') => Ok(PathBuf::from(s)),
                _ => Err(bad(key, "a list of absolute or ~/ paths")),
            })
            .collect()
    };
    match value {
        None => Ok((None, Options::default())),
        Some(v @ Value::String(_)) => Ok((Some(level(v, "")?), Options::default())),
        Some(Value::Object(map)) => {
            let known = ["level", "writable", "deny_read", "network"];
            if let Some(k) = map.keys().find(|k| !known.contains(&k.as_str())) {
                return Err(bad(
                    &format!(".{k}"),
                    "one of level, writable, deny_read, network",
                ));
            }
            let network = match map.get("network") {
                None => None,
                Some(Value::Bool(b)) => Some(*b),
                Some(_) => return Err(bad(".network", "true or false")),
            };
            let options = Options {
                writable: paths(map.get("writable"), ".writable")?,
                deny_read: paths(map.get("deny_read"), ".deny_read")?,
                network,
                ..Options::default()
            };
            let level = map.get("level").map(|v| level(v, ".level")).transpose()?;
            Ok((level, options))
        }
        Some(_) => Err(bad("", "a level or an object")),
    }
}

#[cfg(test)]
mod tests;
