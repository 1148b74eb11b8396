//! The stdio transport: the server is a child process in its own process group; each
//! JSON-RPC message is one line on its stdin / stdout; stderr is its log, of which the
//! last lines are kept to say why it failed. Lines that are not JSON are skipped.
//!
//! The whole group is stopped when the transport is dropped, and by the watchdog
//! (`tools::watchdog`) when nib is killed.

use crate::tools::watchdog;
use serde_json::Value;
use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio as Pipe};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Largest message accepted from a server: a 12 MB tool result fits; more is a broken
/// server, and reading it would only cost memory (the model sees 12 KB of it).
pub const MAX_MESSAGE: u64 = 64 << 20;

/// Lines of the server's stderr kept for the failure message.
const STDERR_LINES: usize = 20;

/// Longest stderr line kept.
const STDERR_LINE: usize = 400;

/// Time between SIGTERM and SIGKILL when the server is stopped.
const GRACE: Duration = Duration::from_millis(500);

/// A running stdio server.
pub struct Stdio {
    child: Child,
    stdin: ChildStdin,
    /// Messages from its stdout, in order; disconnected when it closed stdout.
    pub incoming: Receiver<Value>,
    stderr: Arc<Mutex<VecDeque<String>>>,
}

impl Stdio {
    pub fn spawn(command: &str, args: &[String], env: &[(String, String)]) -> io::Result<Stdio> {
        let mut cmd = Command::new(command);
        cmd.args(args)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Pipe::piped())
            .stdout(Pipe::piped())
            .stderr(Pipe::piped());
        let watchdog = watchdog::pipe_fd();
        // SAFETY: setpgid and a write are async-signal-safe system calls.
        unsafe {
            cmd.pre_exec(move || {
                // Its own group: Ctrl-C in the terminal is nib's to handle, and stopping
                // the server stops whatever it started...
                if libc::setpgid(0, 0) == -1 {
                    return Err(io::Error::last_os_error());
                }
                // ...even when nib is killed: the watchdog stops listed groups.
                if let Some(fd) = watchdog {
                    watchdog::guard_from_child(fd);
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn()?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(io::Error::other("the server's pipes were not set up"));
        };
        let (tx, incoming) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = Vec::new();
            loop {
                line.clear();
                match (&mut reader).take(MAX_MESSAGE).read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) if !line.ends_with(b"\n") && line.len() as u64 >= MAX_MESSAGE => return,
                    Ok(_) => {}
                }
                let Ok(message) = serde_json::from_slice::<Value>(&line) else {
                    continue;
                };
                if tx.send(message).is_err() {
                    return;
                }
            }
        });
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut lines = sink.lock().unwrap_or_else(|e| e.into_inner());
                if lines.len() == STDERR_LINES {
                    lines.pop_front();
                }
                lines.push_back(line.chars().take(STDERR_LINE).collect());
            }
        });
        Ok(Stdio {
            child,
            stdin,
            incoming,
            stderr: log,
        })
    }

    pub fn send(&mut self, message: &Value) -> io::Result<()> {
        let mut line = message.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes())?;
        self.stdin.flush()
    }

    /// The last non-empty line the server wrote to stderr, if any.
    pub fn last_error(&self) -> Option<String> {
        let lines = self.stderr.lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().rev().find(|l| !l.trim().is_empty()).cloned()
    }

    /// Its process group (the server is the group's leader).
    pub fn group(&self) -> libc::pid_t {
        self.child.id() as libc::pid_t
    }

    /// How it exited, if it did.
    pub fn exited(&mut self) -> Option<String> {
        let status = self.child.try_wait().ok()??;
        Some(status.to_string())
    }
}

/// Asks a server's whole group to stop (SIGTERM).
pub fn terminate(group: libc::pid_t) {
    // SAFETY: kill has no memory effects; a negative pid addresses the group.
    unsafe { libc::kill(-group, libc::SIGTERM) };
}

impl Drop for Stdio {
    fn drop(&mut self) {
        let group = self.group();
        terminate(group);
        let end = Instant::now() + GRACE;
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                // SAFETY: as above; signal 0 checks whether any of the group is left.
                if unsafe { libc::kill(-group, 0) } != 0 {
                    watchdog::release(group);
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // SAFETY: as above.
        unsafe { libc::kill(-group, libc::SIGKILL) };
        let _ = self.child.wait();
        watchdog::release(group);
    }
}
