//! Runs one shell command for the model: `bash -c` in the workspace root, in its own
//! session, with the scrubbed environment; stdout and stderr interleaved through one
//! pipe into a bounded `Capture`; the whole process group killed at the deadline or on
//! interrupt. Whether the command may run at all is decided before it gets here.
//!
//! One thread does everything: it polls the pipe with a short timeout, so it can read
//! at full speed, notice the child's exit, the deadline and `ctx.cancel`, and never
//! block forever on a pipe that an escaped process still holds.

use super::clip::Capture;
use super::{Context, Outcome, watchdog};
use crate::sandbox::{self, Grant};
use std::io::{self, PipeReader, PipeWriter, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long a command may run when the model does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// The longest timeout the model may ask for: a build or test suite, not a server.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(600);

/// How often the child and `ctx.cancel` are checked while the output is quiet.
const POLL: Duration = Duration::from_millis(50);

/// The first look at the shell after its output closed (it is usually exiting then).
const CLOSED_POLL: Duration = Duration::from_millis(1);

/// Time between SIGTERM and SIGKILL for the group to clean up.
const GRACE: Duration = Duration::from_secs(1);

/// How long to keep reading after the shell is gone: output still in the pipe, or
/// background jobs that keep it open (`sleep 999 &`) before they are stopped.
const DRAIN: Duration = Duration::from_millis(200);

/// One read from the pipe: the kernel's default pipe buffer.
const CHUNK: usize = 64 * 1024;

/// Shells to try, in order: bash when there is one, else a POSIX shell.
const SHELLS: [&str; 3] = ["bash", "sh", "/bin/sh"];

/// Set for every command so that nothing waits for a person.
const QUIET_ENV: [(&str, &str); 3] = [
    ("PAGER", "cat"),
    ("GIT_PAGER", "cat"),
    ("GIT_TERMINAL_PROMPT", "0"),
];

/// For commands run without asking anyone: git executes nothing the repository
/// configures (hooks, fsmonitor, pagers, credential helpers, signing programs) and
/// ignores bare repositories it was not pointed at. (Settings whose names the
/// repository chooses, such as filter and diff drivers, and `diff.external`, which
/// cannot be unset here, make git ask instead: `approval/git.rs`.)
const DEFUSED_GIT: [(&str, &str); 11] = [
    ("core.fsmonitor", "false"),
    ("core.hooksPath", "/dev/null"),
    ("core.pager", "cat"),
    ("core.editor", "false"),
    ("core.attributesFile", "/dev/null"),
    ("credential.helper", ""),
    ("gpg.program", "false"),
    ("gpg.ssh.program", "false"),
    ("gpg.x509.program", "false"),
    ("safe.bareRepository", "explicit"),
    ("protocol.allow", "never"),
];

/// How the wait for the shell ended.
enum End {
    Exited(ExitStatus),
    TimedOut,
    Interrupted,
}

/// Runs `command`; the first line of the result is its exit status.
pub fn run(command: &str, timeout: Duration, ctx: &Context) -> Outcome {
    if let Err(e) = check_root(ctx) {
        return Outcome::error(e);
    }
    let (reader, writer) = match io::pipe() {
        Ok(pipe) => pipe,
        Err(e) => return Outcome::error(format!("cannot create a pipe for the command: {e}")),
    };
    let created = sandbox::watch_created(ctx.sandbox, ctx.grant);
    let spawned = spawn(command, [&writer, &writer], false, ctx);
    // Only the child may hold the write end, or the pipe would never reach end of file.
    drop(writer);
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => return Outcome::error(format!("cannot start a shell: {e}")),
    };
    let mut pipe = Pipe::new(reader);
    let end = wait(&mut child, &mut pipe, timeout, ctx.cancel);
    let stopped_jobs = finish(&end, &mut child, &mut pipe);
    let mut outcome = report(&end, timeout, stopped_jobs, &pipe.capture);
    let reach = ctx.sandbox.reach(ctx.grant);
    if let Some(note) = sandbox::blocked_note(reach, outcome.is_error, &outcome.content) {
        outcome.content.push_str(&note);
    }
    if let Some(note) = created.undo() {
        outcome.content.push_str(&note);
    }
    outcome
}

/// What a command given input left behind (hooks): stdout and stderr apart, each
/// clipped to `clip::LIMIT`.
#[derive(Debug)]
pub struct Ran {
    /// `None` when it was killed (timeout, interrupt, signal).
    pub code: Option<i32>,
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `command` like `run`, the same way (session, scrubbed environment, sandbox at
/// `ctx.grant`, group kill at the deadline), with `input` on its stdin and stderr kept
/// apart from stdout.
pub fn run_with_input(
    command: &str,
    input: &[u8],
    timeout: Duration,
    ctx: &Context,
) -> Result<Ran, String> {
    check_root(ctx)?;
    let pipe_error = |e: io::Error| format!("cannot create a pipe for the command: {e}");
    let (out_reader, out_writer) = io::pipe().map_err(pipe_error)?;
    let (err_reader, err_writer) = io::pipe().map_err(pipe_error)?;
    let spawned = spawn(command, [&out_writer, &err_writer], true, ctx);
    drop((out_writer, err_writer));
    let mut child = spawned.map_err(|e| format!("cannot start a shell: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let input = input.to_vec();
        // A command that never reads its input must not block nib.
        std::thread::spawn(move || stdin.write_all(&input));
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut errors = Pipe::new(err_reader);
        while errors.is_open() {
            errors.pump(POLL);
        }
        let _ = tx.send(errors.capture.render(""));
    });
    let mut pipe = Pipe::new(out_reader);
    let end = wait(&mut child, &mut pipe, timeout, ctx.cancel);
    finish(&end, &mut child, &mut pipe);
    Ok(Ran {
        code: match end {
            End::Exited(status) => status.code(),
            End::TimedOut | End::Interrupted => None,
        },
        timed_out: matches!(end, End::TimedOut),
        stdout: pipe.capture.render(""),
        stderr: rx.recv_timeout(DRAIN).unwrap_or_default(),
    })
}

fn check_root(ctx: &Context) -> Result<(), String> {
    let root = &ctx.workspace.root;
    match root.is_dir() {
        true => Ok(()),
        false => Err(format!(
            "the workspace {} is not a directory; restart nib in an existing one",
            root.display()
        )),
    }
}

/// After the wait: reads what is left, and stops the group when the time is up, the
/// user interrupted, or background jobs still hold the output (true in that case);
/// a group that is gone is taken off the watchdog's list.
fn finish(end: &End, child: &mut Child, pipe: &mut Pipe) -> bool {
    // setsid made the shell the leader of its own group: its pid is the group id.
    let group = child.id() as libc::pid_t;
    let mut stopped_jobs = false;
    match end {
        End::Exited(_) => {
            pipe.drain(DRAIN);
            if pipe.is_open() {
                // Else the pipe is held by a process that left the group: stop reading.
                stopped_jobs = group_alive(group, child);
                terminate(child, pipe);
            }
        }
        End::TimedOut | End::Interrupted => terminate(child, pipe),
    }
    if !group_alive(group, child) {
        watchdog::release(group);
    }
    stopped_jobs
}

/// Starts `command` in its own session with the scrubbed environment, confined by the
/// sandbox; `outputs` are its stdout and stderr (the same pipe for the bash tool);
/// stdin is a pipe when `input`, else empty. Every command nib runs for the model or a
/// hook starts here.
fn spawn(
    command: &str,
    outputs: [&PipeWriter; 2],
    input: bool,
    ctx: &Context,
) -> io::Result<Child> {
    let mut not_found = None;
    for shell in SHELLS {
        let mut cmd = Command::new(shell);
        cmd.arg("-c")
            .arg(command)
            .current_dir(&ctx.workspace.root)
            .env_clear()
            .envs(ctx.env.iter().map(|(k, v)| (k, v)))
            .envs(QUIET_ENV)
            .stdin(if input { Stdio::piped() } else { Stdio::null() })
            .stdout(outputs[0].try_clone()?)
            .stderr(outputs[1].try_clone()?);
        if ctx.grant == Grant::Unasked {
            defuse_git(&mut cmd);
        }
        // SAFETY: getpid before the fork; the child only makes system calls.
        let parent = unsafe { libc::getpid() };
        let watchdog = watchdog::pipe_fd();
        unsafe {
            cmd.pre_exec(move || own_group(parent, watchdog));
        }
        ctx.sandbox.confine(&mut cmd, ctx.grant)?;
        match cmd.spawn() {
            Err(e) if e.kind() == io::ErrorKind::NotFound => not_found = Some(e),
            result => return result,
        }
    }
    Err(not_found.unwrap_or_else(|| io::Error::from(io::ErrorKind::NotFound)))
}

/// In the child: a session (and process group) of its own, listed with the watchdog
/// and killed by the kernel if nib dies before it (the backstops for SIGKILL of nib).
fn own_group(parent: libc::pid_t, watchdog: Option<RawFd>) -> io::Result<()> {
    // SAFETY: setsid, prctl and getppid are async-signal-safe system calls.
    unsafe {
        if libc::setsid() == -1 {
            return Err(io::Error::last_os_error());
        }
        if let Some(fd) = watchdog {
            watchdog::guard_from_child(fd);
        }
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        // nib died between the fork and the prctl: the signal would never come.
        if libc::getppid() != parent {
            libc::_exit(1);
        }
    }
    Ok(())
}

/// Git configuration by environment, which outranks every configuration file.
fn defuse_git(cmd: &mut Command) {
    cmd.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_ATTR_NOSYSTEM", "1")
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env("GIT_CONFIG_COUNT", DEFUSED_GIT.len().to_string());
    for (i, (key, value)) in DEFUSED_GIT.iter().enumerate() {
        cmd.env(format!("GIT_CONFIG_KEY_{i}"), key)
            .env(format!("GIT_CONFIG_VALUE_{i}"), value);
    }
}

/// Reads output until the shell exits, the deadline passes, or the user cancels.
fn wait(child: &mut Child, pipe: &mut Pipe, timeout: Duration, cancel: &AtomicBool) -> End {
    let deadline = Instant::now() + timeout;
    // Once the output closed, the shell is usually exiting: look again soon, then
    // less and less often.
    let mut closed_wait = CLOSED_POLL;
    loop {
        if cancel.load(Ordering::Relaxed) {
            return End::Interrupted;
        }
        if Instant::now() >= deadline {
            return End::TimedOut;
        }
        if let Ok(Some(status)) = child.try_wait() {
            return End::Exited(status);
        }
        if pipe.is_open() {
            pipe.pump(POLL);
        } else {
            std::thread::sleep(closed_wait);
            closed_wait = (closed_wait * 2).min(POLL);
        }
    }
}

/// SIGTERM to the whole group, a grace period, then SIGKILL to whatever is left; the
/// shell is reaped and what is still in the pipe read.
fn terminate(child: &mut Child, pipe: &mut Pipe) {
    // setsid made the shell the leader of its own group: its pid is the group id.
    let group = child.id() as libc::pid_t;
    signal_group(group, libc::SIGTERM);
    let grace_end = Instant::now() + GRACE;
    while Instant::now() < grace_end && group_alive(group, child) {
        pipe.pump(POLL);
    }
    if group_alive(group, child) {
        signal_group(group, libc::SIGKILL);
    }
    // Does nothing if the shell was already reaped; else it cannot outlive this.
    let _ = child.kill();
    let _ = child.wait();
    pipe.drain(DRAIN);
}

fn signal_group(group: libc::pid_t, signal: libc::c_int) {
    // SAFETY: kill has no memory effects; a negative pid addresses the process group.
    unsafe {
        libc::kill(-group, signal);
    }
}

/// True while any process of the group runs. Reaps the shell first, so that its
/// zombie does not count.
fn group_alive(group: libc::pid_t, child: &mut Child) -> bool {
    let _ = child.try_wait();
    // SAFETY: signal 0 only checks that the group exists.
    unsafe { libc::kill(-group, 0) == 0 }
}

/// The read end of the output pipe and what came through it.
struct Pipe {
    /// `None` once the pipe reached end of file or failed.
    reader: Option<PipeReader>,
    buf: Vec<u8>,
    capture: Capture,
}

impl Pipe {
    fn new(reader: PipeReader) -> Pipe {
        Pipe {
            reader: Some(reader),
            buf: vec![0; CHUNK],
            capture: Capture::default(),
        }
    }

    fn is_open(&self) -> bool {
        self.reader.is_some()
    }

    /// Waits up to `wait` for output and reads one chunk of it.
    fn pump(&mut self, wait: Duration) {
        let Some(reader) = self.reader.as_mut() else {
            std::thread::sleep(wait);
            return;
        };
        let mut fds = libc::pollfd {
            fd: reader.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let millis = wait.as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: fds is one valid pollfd that lives across the call.
        if unsafe { libc::poll(&mut fds, 1, millis) } <= 0 {
            return;
        }
        match reader.read(&mut self.buf) {
            Ok(0) => self.reader = None,
            Ok(n) => self.capture.push(&self.buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => self.reader = None,
        }
    }

    /// Reads until end of file or until `limit` has passed.
    fn drain(&mut self, limit: Duration) {
        let end = Instant::now() + limit;
        while self.is_open() {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            self.pump(left.min(POLL));
        }
    }
}

fn report(end: &End, timeout: Duration, stopped_jobs: bool, capture: &Capture) -> Outcome {
    let (status, is_error) = match end {
        End::Exited(s) => match (s.code(), s.signal()) {
            (Some(code), _) => (format!("exit status: {code}"), code != 0),
            (None, Some(signal)) => (format!("killed by signal {signal}"), true),
            (None, None) => ("exit status: unknown".to_string(), true),
        },
        End::TimedOut => (format!("timed out after {} s", timeout.as_secs()), true),
        End::Interrupted => match crate::signals::stopped_by() {
            Some(signal) => (
                format!(
                    "killed: nib received {} and stopped this command with its process \
                     group; it did not finish",
                    crate::signals::name(signal)
                ),
                true,
            ),
            None => ("interrupted".to_string(), true),
        },
    };
    let mut prefix = format!("{status}\n");
    if stopped_jobs {
        prefix.push_str(
            "note: background processes still holding the output were stopped; \
             redirect their output (> file 2>&1 &) to keep them running\n",
        );
    }
    let mut content = capture.render(&prefix);
    if capture.total() == 0 {
        content.pop();
    }
    Outcome {
        is_error,
        printed_lines: Some(capture.lines()),
        ..Outcome::ok(content)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Surroundings;
    use crate::tools::clip::LIMIT;

    fn env() -> Vec<(String, String)> {
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".to_string());
        vec![
            ("PATH".to_string(), path),
            ("NIB_TEST".to_string(), "yes".to_string()),
        ]
    }

    /// Surroundings with a small environment for commands.
    fn bench(name: &str) -> Surroundings {
        let mut s = Surroundings::new(name);
        s.env = env();
        s
    }

    fn run_in(s: &Surroundings, command: &str, timeout: Duration) -> Outcome {
        run(command, timeout, &s.ctx())
    }

    /// Runs `command` and checks that its result came within `within`.
    fn run_within(name: &str, command: &str, timeout: Duration, within: Duration) -> Outcome {
        let started = Instant::now();
        let out = run_in(&bench(name), command, timeout);
        let took = started.elapsed();
        assert!(took < within, "{command}: {took:?}");
        out
    }

    fn check(command: &str, expected: &str, is_error: bool) {
        let out = run_in(&bench("check"), command, Duration::from_secs(10));
        assert_eq!(out.content, expected, "command {command:?}");
        assert_eq!(out.is_error, is_error, "command {command:?}");
    }

    /// True while `pid` runs (a zombie waiting to be reaped does not count).
    fn alive(pid: i32) -> bool {
        // SAFETY: signal 0 only checks that the process exists.
        let exists = unsafe { libc::kill(pid, 0) } == 0;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let zombie = stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z'));
        exists && !zombie
    }

    fn gone_soon(pid: i32) -> bool {
        let end = Instant::now() + Duration::from_secs(3);
        while Instant::now() < end {
            if !alive(pid) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn last_pid(content: &str) -> i32 {
        let pid = content.lines().rev().find_map(|l| l.trim().parse().ok());
        pid.expect("a pid")
    }

    #[test]
    fn status_line_and_interleaved_output() {
        check(
            "echo hi; echo err >&2; echo again",
            "exit status: 0\nhi\nerr\nagain\n",
            false,
        );
        check("echo out; exit 3", "exit status: 3\nout\n", true);
        check("true", "exit status: 0", false);
        check("cat", "exit status: 0", false);
        check("kill -9 $$", "killed by signal 9", true);
        check(
            "printf 'a\\0b\\r\\n'",
            "exit status: 0\na\u{FFFD}b\n",
            false,
        );
    }

    #[test]
    fn environment_is_scrubbed_and_quiet() {
        check(
            "echo \"$NIB_TEST $PAGER $GIT_PAGER $GIT_TERMINAL_PROMPT ${HOME:-nohome}\"",
            "exit status: 0\nyes cat cat 0 nohome\n",
            false,
        );
    }

    #[test]
    fn runs_in_the_root_in_its_own_session() {
        let tmp = bench("session");
        let out = run_in(
            &tmp,
            "pwd; read -r -a f < /proc/$$/stat; [ \"${f[5]}\" = \"$$\" ] && echo own",
            Duration::from_secs(10),
        );
        assert_eq!(
            out.content,
            format!("exit status: 0\n{}\nown\n", tmp.dir.path().display())
        );
    }

    #[test]
    fn a_gigabyte_of_output_is_fast_and_bounded() {
        let before = peak_rss_kb();
        let out = run_within(
            "big",
            "yes | head -c 1000000000",
            Duration::from_secs(120),
            Duration::from_secs(60),
        );
        assert!(
            out.content.starts_with("exit status: 0\ny\ny\n"),
            "{}",
            &out.content[..40]
        );
        assert!(out.content.contains("bytes omitted of 1000000000 …]"));
        assert!(out.content.ends_with("y\ny\n"));
        assert!(out.content.len() <= LIMIT);
        let grown = peak_rss_kb().saturating_sub(before);
        assert!(grown < 64 * 1024, "peak RSS grew by {grown} kB");
    }

    fn peak_rss_kb() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let line = status.lines().find(|l| l.starts_with("VmHWM:"));
        let kb = line.and_then(|l| l.split_whitespace().nth(1)?.parse().ok());
        kb.unwrap_or(0)
    }

    #[test]
    fn binary_output_is_harmless() {
        let out = run_in(
            &bench("binary"),
            "head -c 4096 /dev/urandom",
            Duration::from_secs(10),
        );
        assert!(out.content.starts_with("exit status: 0\n"));
        assert!(out.content.len() <= LIMIT);
        let bad = out
            .content
            .chars()
            .find(|&c| c.is_control() && c != '\n' && c != '\t');
        assert_eq!(bad, None);
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        let out = run_within(
            "timeout",
            "sleep 300 & echo $!; wait",
            Duration::from_secs(1),
            Duration::from_secs(5),
        );
        assert!(
            out.content.starts_with("timed out after 1 s\n"),
            "{}",
            out.content
        );
        assert!(out.is_error);
        assert!(gone_soon(last_pid(&out.content)), "grandchild survived");
    }

    #[test]
    fn a_term_ignoring_command_is_killed() {
        let out = run_within(
            "stubborn",
            "trap '' TERM; echo ready; while :; do sleep 0.1; done",
            Duration::from_secs(1),
            Duration::from_secs(5),
        );
        assert_eq!(out.content, "timed out after 1 s\nready\n");
    }

    #[test]
    fn background_jobs_holding_the_pipe_do_not_hang_the_result() {
        let out = run_within(
            "background",
            "sleep 999 & echo $!",
            Duration::from_secs(30),
            Duration::from_secs(3),
        );
        assert!(out.content.starts_with("exit status: 0\nnote: background"));
        assert!(!out.is_error);
        assert!(gone_soon(last_pid(&out.content)), "background job survived");
    }

    #[test]
    fn an_escaped_process_cannot_hold_the_result() {
        if Command::new("setsid").arg("--version").output().is_err() {
            return;
        }
        let started = Instant::now();
        let out = run_in(
            &bench("escaped"),
            "setsid sleep 30 & echo $!",
            Duration::from_secs(1),
        );
        let pid = last_pid(&out.content);
        // SAFETY: this test started `pid`; it is ended by its own id.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(
            out.content.starts_with("exit status: 0\n"),
            "{}",
            out.content
        );
    }

    #[test]
    fn cancel_interrupts_a_running_command() {
        let bench = bench("cancel");
        let (ctx, cancel) = (bench.ctx(), &bench.cancel);
        let started = Instant::now();
        let out = std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(300));
                cancel.store(true, Ordering::Relaxed);
            });
            run("echo started; sleep 30", Duration::from_secs(60), &ctx)
        });
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(out.content, "interrupted\nstarted\n");
        assert!(out.is_error);
    }
}
