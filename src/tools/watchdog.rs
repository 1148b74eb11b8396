//! The backstop that keeps commands from outliving nib, however nib ends (SIGKILL
//! included): a small process, nib itself re-executed, that holds the read end of a
//! pipe only nib writes to. Each command's child lists its own process group before it
//! execs, and nib takes it off (negated) once the group is gone; when the pipe closes because nib is
//! gone, the watchdog stops every group still listed (TERM, a grace, KILL) and exits.

use std::collections::HashSet;
use std::io::{self, PipeWriter, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Set in the watchdog's environment: `main` then serves instead of running nib.
pub const VAR: &str = "NIB_WATCHDOG";

/// Time between SIGTERM and SIGKILL for the groups left behind.
const GRACE: Duration = Duration::from_secs(1);

/// How often the watchdog looks whether the groups are gone during the grace.
const POLL: Duration = Duration::from_millis(20);

/// The write end of the watchdog's pipe; `None` when it could not be started.
static PIPE: OnceLock<Option<Mutex<PipeWriter>>> = OnceLock::new();

/// The descriptor a command's child writes its group to, between fork and exec (with
/// `guard_from_child`), so no command is ever unlisted; the watchdog starts on first use.
pub fn pipe_fd() -> Option<RawFd> {
    pipe().map(|p| p.lock().map_or(-1, |w| w.as_raw_fd()))
}

/// In the child, between fork and exec: lists the child's own group. A four-byte
/// write is async-signal-safe and atomic.
pub fn guard_from_child(fd: RawFd) {
    // SAFETY: getpid and write on an inherited descriptor and a stack buffer.
    unsafe {
        let group = libc::getpid().to_le_bytes();
        libc::write(fd, group.as_ptr().cast(), group.len());
    }
}

/// Takes `group` off the list: it is gone, and its id may be reused.
pub fn release(group: libc::pid_t) {
    send(-group);
}

fn pipe() -> Option<&'static Mutex<PipeWriter>> {
    PIPE.get_or_init(|| start().ok().map(Mutex::new)).as_ref()
}

fn send(value: i32) {
    if let Some(pipe) = pipe()
        && let Ok(mut pipe) = pipe.lock()
    {
        // Four bytes are written at once (less than PIPE_BUF): never interleaved.
        let _ = pipe.write_all(&value.to_le_bytes());
    }
}

fn start() -> io::Result<PipeWriter> {
    // In a unit-test binary, /proc/self/exe is the test harness, which would run the
    // whole suite again instead of serving (and start watchdogs of its own).
    if cfg!(test) {
        return Err(io::Error::other("no watchdog in unit tests"));
    }
    let (reader, writer) = io::pipe()?;
    let mut cmd = Command::new("/proc/self/exe");
    cmd.env_clear()
        .env(VAR, "1")
        .stdin(reader)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: setsid is async-signal-safe. Its own session: the terminal's signals
    // (Ctrl-C, hangup) that stop nib do not stop the watchdog.
    unsafe {
        cmd.pre_exec(|| match libc::setsid() {
            -1 => Err(io::Error::last_os_error()),
            _ => Ok(()),
        });
    }
    cmd.spawn()?;
    Ok(writer)
}

/// The watchdog's whole life: collect groups until nib is gone, then stop them.
pub fn serve() {
    let mut groups = HashSet::new();
    let mut stdin = io::stdin().lock();
    let mut buf = [0u8; 4];
    while stdin.read_exact(&mut buf).is_ok() {
        match i32::from_le_bytes(buf) {
            g if g > 0 => groups.insert(g),
            g => groups.remove(&g.saturating_neg()),
        };
    }
    stop(&groups);
}

fn stop(groups: &HashSet<i32>) {
    // SAFETY: kill has no memory effects; negative pids address process groups.
    let signal = |sig| {
        groups
            .iter()
            .filter(|&&g| unsafe { libc::kill(-g, sig) } == 0)
            .count()
    };
    if signal(libc::SIGTERM) == 0 {
        return;
    }
    let end = Instant::now() + GRACE;
    while Instant::now() < end && signal(0) > 0 {
        std::thread::sleep(POLL);
    }
    signal(libc::SIGKILL);
}
