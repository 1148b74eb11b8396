//! The kernel sandbox for the commands nib runs: what a command may read, write and
//! reach, enforced by Landlock (raw syscalls through `libc`) and, where unprivileged
//! user namespaces work, read-only bind mounts for the files inside a writable
//! workspace that run code later (`.git/hooks`, `.git/config`, `.claude/`).
//!
//! Everything is prepared in the parent (paths opened, the Landlock ruleset built,
//! strings made); the child between fork and exec only makes system calls on what was
//! prepared, so it never allocates. Whether a command may run at all is the gate's
//! job; this module only decides how far it reaches once it runs.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

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

impl Level {
    pub const NAMES: &str = "read-only, workspace-write or off";

    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "read-only" => Some(Level::ReadOnly),
            "workspace-write" => Some(Level::WorkspaceWrite),
            "off" => Some(Level::Off),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Level::ReadOnly => "read-only",
            Level::WorkspaceWrite => "workspace-write",
            Level::Off => "off",
        }
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

/// Inside the workspace: pinned in place (cannot be moved aside and replaced).
const PINNED: &[&str] = &[".git"];

/// Inside the workspace: read-only to every confined command, because they run code
/// or grant permissions later.
const READ_ONLY_INSIDE: &[&str] = &[".git/hooks", ".git/config", ".claude"];

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
}

/// Settings that shape the sandbox (`sandbox.*` in the user's settings).
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub writable: Vec<PathBuf>,
    pub deny_read: Vec<PathBuf>,
    /// `sandbox.network`: approved commands reach the network (default true).
    pub network: Option<bool>,
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
            _ => Support::probe(),
        };
        let mut deny_read: Vec<PathBuf> = home
            .map(|h| DENY_READ_IN_HOME.iter().map(|p| h.join(p)).collect())
            .unwrap_or_default();
        deny_read.extend(nib_dirs.iter().cloned());
        deny_read.extend(options.deny_read);
        let temp = std::env::var_os("TMPDIR")
            .filter(|t| !t.is_empty())
            .map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
        Sandbox {
            level,
            support,
            workspace: workspace.to_path_buf(),
            temp: canonical(&temp),
            read_dirs: Vec::new(),
            writable: options.writable.iter().map(|p| canonical(p)).collect(),
            deny_read: deny_read.iter().map(|p| canonical(p)).collect(),
            read_only: nib_dirs.iter().map(|p| canonical(p)).collect(),
            network: options.network.unwrap_or(true),
        }
    }

    /// No confinement at all.
    #[cfg(test)]
    pub fn off(workspace: &Path) -> Sandbox {
        Sandbox::new(Level::Off, workspace, None, &[], Options::default())
    }

    /// Lets commands of the read-only set read under `dir` too (a skill's folder).
    pub fn add_read_dir(&mut self, dir: &Path) {
        self.read_dirs.push(canonical(dir));
    }

    /// The level in effect: `Off` where the kernel offers no sandbox.
    pub fn level(&self) -> Level {
        match self.support.landlock {
            0 => Level::Off,
            _ => self.level,
        }
    }

    /// One line for people about what the kernel could not do, if anything.
    pub fn notice(&self) -> Option<String> {
        if self.level == Level::Off {
            return None;
        }
        if self.support.landlock == 0 {
            return Some("no sandbox: this kernel has no Landlock; commands run unconfined".into());
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
        format!("{} ({what})", level.name())
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
                let shared = Path::new(SHARED_MEMORY);
                let roots = [&self.workspace, &self.temp]
                    .into_iter()
                    .chain(&self.writable)
                    .map(PathBuf::as_path)
                    .chain([shared]);
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
            maps: Maps::current()?,
            mounts,
            new_net,
        })
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
        let inside = READ_ONLY_INSIDE.iter().map(|rel| self.workspace.join(rel));
        for path in inside.chain(self.read_only.iter().cloned()) {
            let writable = [&self.workspace, &self.temp]
                .into_iter()
                .chain(&self.writable)
                .any(|w| path.starts_with(w));
            if writable && path.exists() {
                out.push(Mount::new(&path, true)?);
            }
        }
        Ok(out)
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
            "this command ran without approval, so nib's sandbox let it read only the \
             workspace and system files, write nothing and reach no network"
        }
        (_, Reach::Write { network }) => match network {
            true => {
                "nib's sandbox lets commands write only the workspace and the temp dir (not \
                 .git/hooks, .git/config, .claude/), and read nothing under ~/.ssh and other \
                 credential folders"
            }
            false => {
                "nib's sandbox lets this command write only the workspace and the temp dir \
                 (not .git/hooks, .git/config, .claude/), read nothing under ~/.ssh and other \
                 credential folders, and reach no network"
            }
        },
    };
    Some(format!(
        "note: {what}; if this is needed, the user can allow the command with a rule, add \
         the path to sandbox.writable in settings, or run nib with --sandbox off\n"
    ))
}

fn canonical(path: &Path) -> PathBuf {
    crate::tools::canonical_prefix(path)
}

/// What this kernel offers.
#[derive(Clone, Copy, Debug, Default)]
struct Support {
    /// The Landlock ABI version, 0 when there is none.
    landlock: u32,
    /// Unprivileged user and mount namespaces work.
    namespaces: bool,
}

impl Support {
    fn probe() -> Support {
        Support {
            landlock: landlock::abi(),
            namespaces: namespaces_work(),
        }
    }
}

/// Forks a child that tries `unshare`; the only way to know (sysctls, LSMs and
/// container runtimes each can forbid it).
fn namespaces_work() -> bool {
    // SAFETY: the child only calls unshare and _exit, both async-signal-safe.
    unsafe {
        match libc::fork() {
            -1 => false,
            0 => {
                let ok = libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) == 0;
                libc::_exit(if ok { 0 } else { 1 })
            }
            pid => {
                let mut status = 0;
                libc::waitpid(pid, &mut status, 0) == pid
                    && libc::WIFEXITED(status)
                    && libc::WEXITSTATUS(status) == 0
            }
        }
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
            self.ruleset.restrict()
        }
    }
}

fn check(ret: libc::c_int) -> io::Result<()> {
    match ret {
        -1 => Err(io::Error::last_os_error()),
        _ => Ok(()),
    }
}

/// The uid and gid maps of the new user namespace: the same ids inside as outside.
struct Maps {
    uid: Vec<u8>,
    gid: Vec<u8>,
}

impl Maps {
    fn current() -> io::Result<Maps> {
        // SAFETY: getuid and getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        Ok(Maps {
            uid: format!("{uid} {uid} 1").into_bytes(),
            gid: format!("{gid} {gid} 1").into_bytes(),
        })
    }

    /// In the child.
    fn write(&self) -> io::Result<()> {
        write_file(c"/proc/self/setgroups", b"deny")?;
        write_file(c"/proc/self/uid_map", &self.uid)?;
        write_file(c"/proc/self/gid_map", &self.gid)
    }
}

fn write_file(path: &std::ffi::CStr, bytes: &[u8]) -> io::Result<()> {
    // SAFETY: open/write/close on a valid C string and buffer; async-signal-safe.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        libc::close(fd);
        match n {
            n if n == bytes.len() as isize => Ok(()),
            _ => Err(io::Error::last_os_error()),
        }
    }
}

/// One bind mount of a path onto itself, read-only or just pinned.
struct Mount {
    path: CString,
    read_only: bool,
    /// Flags of the mount the path is on, which a remount in a user namespace must
    /// keep (they are locked).
    locked: libc::c_ulong,
}

impl Mount {
    fn new(path: &Path, read_only: bool) -> io::Result<Mount> {
        let path = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: statvfs writes into the zeroed struct; path is a valid C string.
        let flags = unsafe {
            let mut st: libc::statvfs = std::mem::zeroed();
            check(libc::statvfs(path.as_ptr(), &mut st))?;
            st.f_flag
        };
        let keep = [
            (libc::ST_NOSUID, libc::MS_NOSUID),
            (libc::ST_NODEV, libc::MS_NODEV),
            (libc::ST_NOEXEC, libc::MS_NOEXEC),
            (libc::ST_NOATIME, libc::MS_NOATIME),
            (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
            (libc::ST_RELATIME, libc::MS_RELATIME),
        ];
        let locked = keep
            .iter()
            .filter(|(st, _)| flags & st != 0)
            .fold(0, |acc, (_, ms)| acc | ms);
        Ok(Mount {
            path,
            read_only,
            locked,
        })
    }

    /// In the child.
    fn apply(&self) -> io::Result<()> {
        let p = self.path.as_ptr();
        let (none, data) = (std::ptr::null(), std::ptr::null());
        // SAFETY: mount on valid C strings.
        unsafe {
            check(libc::mount(p, p, none, libc::MS_BIND | libc::MS_REC, data))?;
            if self.read_only {
                let flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | self.locked;
                check(libc::mount(none, p, none, flags, data))?;
            }
        }
        Ok(())
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

    /// In the child.
    fn restrict(&self) -> io::Result<()> {
        landlock::restrict(self.fd.as_raw_fd())
    }
}

/// The Landlock ABI (linux/landlock.h), by hand: three system calls.
mod landlock {
    use std::io;

    const CREATE_RULESET_VERSION: u32 = 1;
    const RULE_PATH_BENEATH: libc::c_int = 1;

    const EXECUTE: u64 = 1 << 0;
    const WRITE_FILE: u64 = 1 << 1;
    const READ_FILE: u64 = 1 << 2;
    const READ_DIR: u64 = 1 << 3;
    /// Every right of ABI 1 (bits 0–12).
    const ABI1: u64 = (1 << 13) - 1;
    const REFER: u64 = 1 << 13;
    const TRUNCATE: u64 = 1 << 14;
    const IOCTL_DEV: u64 = 1 << 15;
    /// The first ABI that handles TCP.
    pub const NET_ABI: u32 = 4;
    const NET_BIND_TCP: u64 = 1 << 0;
    const NET_CONNECT_TCP: u64 = 1 << 1;
    const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1 << 0;
    const SCOPE_SIGNAL: u64 = 1 << 1;

    /// Reading and running files and listing directories.
    pub const READ: u64 = EXECUTE | READ_FILE | READ_DIR;
    /// Rights that make sense on a file (not a directory).
    pub const FILE: u64 = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV;
    /// What a device like /dev/null needs.
    pub const DEVICE: u64 = READ_FILE | WRITE_FILE | TRUNCATE | IOCTL_DEV;

    #[repr(C)]
    struct RulesetAttr {
        handled_access_fs: u64,
        handled_access_net: u64,
        scoped: u64,
    }

    #[repr(C, packed)]
    struct PathBeneathAttr {
        allowed_access: u64,
        parent_fd: i32,
    }

    /// The ABI version, 0 without Landlock.
    pub fn abi() -> u32 {
        // SAFETY: the version query takes no attribute.
        let v = unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                std::ptr::null::<RulesetAttr>(),
                0usize,
                CREATE_RULESET_VERSION,
            )
        };
        u32::try_from(v).unwrap_or(0)
    }

    /// The filesystem rights this ABI handles.
    pub fn handled_fs(abi: u32) -> u64 {
        let mut rights = ABI1;
        for (since, right) in [(2, REFER), (3, TRUNCATE), (5, IOCTL_DEV)] {
            if abi >= since {
                rights |= right;
            }
        }
        rights
    }

    /// A ruleset that denies every handled right until rules allow it; with
    /// `no_network` (ABI 4+) TCP bind and connect are denied too, and (ABI 6+)
    /// signals and abstract sockets outside the sandbox are out of reach.
    pub fn create(abi: u32, no_network: bool) -> io::Result<libc::c_int> {
        let net = match (no_network, abi >= NET_ABI) {
            (true, true) => NET_BIND_TCP | NET_CONNECT_TCP,
            _ => 0,
        };
        let scoped = match abi >= 6 {
            true if no_network => SCOPE_SIGNAL | SCOPE_ABSTRACT_UNIX_SOCKET,
            true => SCOPE_SIGNAL,
            false => 0,
        };
        let attr = RulesetAttr {
            handled_access_fs: handled_fs(abi),
            handled_access_net: net,
            scoped,
        };
        // SAFETY: attr is a valid ruleset attribute of the given size.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                &attr,
                std::mem::size_of::<RulesetAttr>(),
                0u32,
            )
        };
        match fd {
            -1 => Err(io::Error::last_os_error()),
            fd => Ok(fd as libc::c_int),
        }
    }

    pub fn add_path(ruleset: libc::c_int, parent: libc::c_int, access: u64) -> io::Result<()> {
        if access == 0 {
            return Ok(());
        }
        let attr = PathBeneathAttr {
            allowed_access: access,
            parent_fd: parent,
        };
        // SAFETY: attr is a valid path-beneath attribute; both fds are open.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_landlock_add_rule,
                ruleset,
                RULE_PATH_BENEATH,
                &attr,
                0u32,
            )
        };
        match ret {
            -1 => Err(io::Error::last_os_error()),
            _ => Ok(()),
        }
    }

    /// In the child: async-signal-safe.
    pub fn restrict(ruleset: libc::c_int) -> io::Result<()> {
        // SAFETY: a plain system call on an open descriptor.
        match unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset, 0u32) } {
            -1 => Err(io::Error::last_os_error()),
            _ => Ok(()),
        }
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
            };
            let level = map.get("level").map(|v| level(v, ".level")).transpose()?;
            Ok((level, options))
        }
        Some(_) => Err(bad("", "a level or an object")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn settings_are_read_strictly() {
        let home = Path::new("/home/u");
        let check = |value: serde_json::Value, expected: Result<Option<Level>, &str>| {
            let got = from_settings(Some(&value), Some(home)).map(|(level, _)| level);
            match (got, expected) {
                (Ok(level), Ok(want)) => assert_eq!(level, want, "{value}"),
                (Err(e), Err(key)) => assert!(e.contains(key), "{value}: {e}"),
                (got, want) => panic!("{value}: got {got:?}, want {want:?}"),
            }
        };
        check(json!("read-only"), Ok(Some(Level::ReadOnly)));
        check(json!({"level": "off"}), Ok(Some(Level::Off)));
        check(json!({"network": false}), Ok(None));
        check(
            json!("none"),
            Err("sandbox must be read-only, workspace-write or off"),
        );
        check(json!({"level": 1}), Err("sandbox.level"));
        check(json!({"network": "no"}), Err("sandbox.network"));
        check(json!({"writable": "~/x"}), Err("sandbox.writable"));
        check(json!({"deny_read": ["relative"]}), Err("sandbox.deny_read"));
        check(json!({"enabled": true}), Err("sandbox.enabled"));
        check(json!(true), Err("sandbox must be"));
        let (_, options) = from_settings(
            Some(&json!({"writable": ["~/.cache", "/opt/x"]})),
            Some(home),
        )
        .unwrap();
        assert_eq!(
            options.writable,
            [PathBuf::from("/home/u/.cache"), PathBuf::from("/opt/x")]
        );
    }

    #[test]
    fn reach_by_level_and_grant() {
        let sandbox = |level| {
            let mut s = Sandbox::off(Path::new("/w"));
            s.level = level;
            s.support.landlock = 4;
            s
        };
        let write = Reach::Write { network: true };
        let cases = [
            (Level::WorkspaceWrite, Grant::Unasked, Reach::Read),
            (Level::WorkspaceWrite, Grant::Approved, write),
            (
                Level::WorkspaceWrite,
                Grant::Auto,
                Reach::Write { network: false },
            ),
            (Level::ReadOnly, Grant::Approved, Reach::Read),
            (Level::ReadOnly, Grant::Auto, Reach::Read),
            (Level::Off, Grant::Unasked, Reach::All),
        ];
        for (level, grant, reach) in cases {
            assert_eq!(sandbox(level).reach(grant), reach, "{level:?} {grant:?}");
        }
        // No Landlock: no sandbox, whatever the level.
        let mut none = sandbox(Level::ReadOnly);
        none.support.landlock = 0;
        assert_eq!(none.reach(Grant::Unasked), Reach::All);
        assert!(none.describe().starts_with("no sandbox"));
    }

    #[test]
    fn blocked_commands_get_a_note() {
        let write = Reach::Write { network: true };
        let note = |reach, failed, out| blocked_note(reach, failed, out).is_some();
        assert!(note(
            write,
            true,
            "touch: cannot touch 'x': Permission denied"
        ));
        assert!(note(Reach::Read, true, "x: Read-only file system"));
        assert!(!note(write, false, "Permission denied"));
        assert!(!note(Reach::All, true, "Permission denied"));
        assert!(!note(write, true, "no such file"));
    }
}
