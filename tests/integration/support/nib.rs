//! Runs the real `nib` binary in a sandbox: a fresh temp dir per test with `work/`
//! (the cwd), `home/` (HOME) and the XDG dirs, an environment cleared down to PATH
//! (so no real key ever reaches a test), and a hard timeout. `NIB_BIN` points the
//! suite at another build. What to assert about the
//! output is left to the tests.

use crate::support::fake::{FakeServer, MODEL, Protocol};
use serde_json::Value;
use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A run that takes longer than this is a hang: nib is killed and the test fails.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// After nib exits, how long its output pipes may stay open (a leaked grandchild can
/// hold them) before we take what arrived.
const PIPE_GRACE: Duration = Duration::from_secs(2);
/// The Anthropic key tests run with: any value, the fake never checks it.
pub const FAKE_KEY: &str = "sk-fake-test";
/// Set this to run the suite against another nib binary (e.g. a release build).
const BIN_VAR: &str = "NIB_BIN";
/// Set this to keep the sandboxes of failed tests.
const KEEP_VAR: &str = "NIB_KEEP_TEST_DIRS";
/// How often a waiting run checks whether nib exited.
const POLL: Duration = Duration::from_millis(10);

/// A fresh directory tree for one test, removed on drop (kept when the test failed and
/// `NIB_KEEP_TEST_DIRS` is set, so its files can be looked at).
pub struct Sandbox {
    root: PathBuf,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let test = thread::current()
            .name()
            .unwrap_or("test")
            .replace("::", "-");
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("nib-it-{}-{test}-{nanos}", std::process::id());
        let root = std::env::temp_dir().join(name);
        for dir in ["work", "home", "config", "data", "cache"] {
            fs::create_dir_all(root.join(dir)).expect("create the test sandbox");
        }
        Sandbox { root }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if thread::panicking() && std::env::var_os(KEEP_VAR).is_some() {
            eprintln!("test files kept in {}", self.root.display());
            return;
        }
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// A builder for one nib invocation. Reusable: `run` takes `&self`.
pub struct Nib {
    sandbox: Sandbox,
    program: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    stdin: Option<Vec<u8>>,
    /// Give nib a stdin pipe that stays open and silent until it exits.
    silent_stdin: bool,
    timeout: Duration,
}

impl Default for Nib {
    fn default() -> Self {
        Nib::new()
    }
}

impl Nib {
    pub fn new() -> Nib {
        Nib {
            sandbox: Sandbox::new(),
            program: std::env::var_os(BIN_VAR)
                .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_nib")), PathBuf::from),
            args: Vec::new(),
            env: Vec::new(),
            stdin: None,
            silent_stdin: false,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// `--base-url`, `--model fake-model` and `--provider` for this server: the base
    /// with `/v1` for OpenAI, the host root (and a dummy key) for Anthropic.
    pub fn against(server: &FakeServer, protocol: Protocol) -> Nib {
        let nib = Nib::new().args(["--model", MODEL, "--provider", protocol.flag()]);
        match protocol {
            Protocol::OpenAi | Protocol::Responses => nib.args(["--base-url", &server.base_v1()]),
            Protocol::Anthropic => nib
                .args(["--base-url", &server.base()])
                .env("ANTHROPIC_API_KEY", FAKE_KEY),
        }
    }

    /// Runs another program in the same sandbox (for checking the harness itself).
    pub fn program(mut self, path: impl Into<PathBuf>) -> Nib {
        self.program = path.into();
        self
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Nib {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Nib
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Nib {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Bytes on nib's stdin (a pipe); without this, stdin is `/dev/null`.
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Nib {
        self.stdin = Some(bytes.into());
        self
    }

    /// stdin is a pipe nobody writes to or closes while nib runs.
    pub fn silent_stdin(mut self) -> Nib {
        self.silent_stdin = true;
        self
    }

    pub fn timeout(mut self, secs: u64) -> Nib {
        self.timeout = Duration::from_secs(secs);
        self
    }

    /// The program this runs (the nib binary unless `program` changed it).
    pub fn bin(&self) -> &Path {
        &self.program
    }

    /// The working directory nib runs in.
    pub fn work(&self) -> PathBuf {
        self.sandbox.root.join("work")
    }

    pub fn home(&self) -> PathBuf {
        self.sandbox.root.join("home")
    }

    pub fn data_home(&self) -> PathBuf {
        self.sandbox.root.join("data")
    }

    pub fn config_home(&self) -> PathBuf {
        self.sandbox.root.join("config")
    }

    /// Writes the user's `settings.json`.
    pub fn settings(&self, value: &Value) {
        let dir = self.config_home().join("nib");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("settings.json"), value.to_string()).unwrap();
    }

    /// Writes a file relative to `work/`, creating its directories.
    pub fn put(&self, rel: &str, content: &str) {
        let path = self.work().join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }

    /// Reads a file relative to `work/`; `None` when it does not exist.
    pub fn read(&self, rel: &str) -> Option<String> {
        fs::read_to_string(self.work().join(rel)).ok()
    }

    fn command(&self, dir: &str, extra: &[OsString]) -> Command {
        let mut cmd = self.base(dir);
        cmd.args(&self.args).args(extra);
        match (&self.stdin, self.silent_stdin) {
            (Some(_), _) | (None, true) => cmd.stdin(Stdio::piped()),
            (None, false) => cmd.stdin(Stdio::null()),
        };
        cmd
    }

    /// nib in `dir` under `work/`, with the sandbox's environment and no arguments.
    fn base(&self, dir: &str) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.current_dir(self.work().join(dir)).env_clear();
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
        cmd.env("HOME", self.home())
            .env("XDG_CONFIG_HOME", self.config_home())
            .env("XDG_DATA_HOME", self.data_home())
            .env("XDG_CACHE_HOME", self.sandbox.root.join("cache"));
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd
    }

    /// Starts nib and returns at once (for kill and interrupt tests).
    pub fn spawn(&self) -> Running {
        self.spawn_with::<_, OsString>([])
    }

    /// Starts nib with `extra` after the builder's arguments, in the same sandbox (a
    /// later run of the same user: resume, `nib sessions`, `nib undo`).
    pub fn spawn_with<I, S>(&self, extra: I) -> Running
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.spawn_in("", extra)
    }

    /// `spawn_with`, run in `dir` under `work/` (created if needed).
    pub fn spawn_in<I, S>(&self, dir: &str, extra: I) -> Running
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        fs::create_dir_all(self.work().join(dir)).expect("create the run's directory");
        let extra: Vec<OsString> = extra.into_iter().map(Into::into).collect();
        let mut child = self
            .command(dir, &extra)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.program.display()));
        let mut held_stdin = None;
        match (self.stdin.clone(), child.stdin.take()) {
            (Some(bytes), Some(mut pipe)) => {
                // A writer thread, so a nib that never reads stdin cannot block the test.
                thread::spawn(move || {
                    let _ = pipe.write_all(&bytes);
                });
            }
            (None, pipe) => held_stdin = pipe,
            (Some(_), None) => {}
        }
        let stdout = Capture::start(child.stdout.take().unwrap());
        let stderr = Capture::start(child.stderr.take().unwrap());
        Running {
            child,
            _held_stdin: held_stdin,
            stdout,
            stderr,
            started: Instant::now(),
            timeout: self.timeout,
        }
    }

    /// Runs nib to the end; kills it and fails the test past the timeout.
    pub fn run(&self) -> Output {
        self.run_with::<_, OsString>([])
    }

    /// `run` with `extra` after the builder's arguments, in the same sandbox.
    pub fn run_with<I, S>(&self, extra: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.run_in("", extra)
    }

    /// `run_with` in `dir` under `work/` (created if needed): another directory of the
    /// same user.
    pub fn run_in<I, S>(&self, dir: &str, extra: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let running = self.spawn_in(dir, extra);
        let timeout = running.timeout;
        running.wait(timeout)
    }

    /// The builder, after `nib trust` in the workspace.
    pub fn trusted(self) -> Nib {
        self.trust();
        self
    }

    /// `nib trust` in the workspace, as a user does before a repository's own settings,
    /// hooks, `.mcp.json` and commands apply.
    pub fn trust(&self) {
        fs::create_dir_all(self.work()).expect("create the workspace");
        let out = self
            .base("")
            .arg("trust")
            .stdin(Stdio::null())
            .output()
            .expect("run nib trust");
        assert!(out.status.success(), "nib trust: {out:?}");
    }

    /// Runs nib with only `args` (not the builder's) in the same sandbox: a command the
    /// same user runs first, like `nib trust`.
    pub fn run_alone(&mut self, args: &[&str]) -> Output {
        let kept = std::mem::take(&mut self.args);
        let out = self.run_with(args);
        self.args = kept;
        out
    }

    /// The session journals: `$XDG_DATA_HOME/nib/sessions/**.jsonl`, sorted.
    pub fn journal_files(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        collect_jsonl(&self.data_home().join("nib").join("sessions"), &mut found);
        found.sort();
        found
    }
}

fn collect_jsonl(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_jsonl(&path, found);
        } else if path.extension().is_some_and(|e| e == "jsonl") {
            found.push(path);
        }
    }
}

/// One output pipe, read to its end on a thread.
struct Capture {
    bytes: Arc<Mutex<Vec<u8>>>,
    reader: JoinHandle<()>,
}

impl Capture {
    fn start(mut pipe: impl Read + Send + 'static) -> Capture {
        let bytes = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&bytes);
        let reader = thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut chunk) {
                if n == 0 {
                    return;
                }
                sink.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        });
        Capture { bytes, reader }
    }

    /// What arrived, waiting up to `grace` for the pipe to close.
    fn take(self, grace: Duration) -> String {
        let deadline = Instant::now() + grace;
        while !self.reader.is_finished() && Instant::now() < deadline {
            thread::sleep(POLL);
        }
        let bytes = self.bytes.lock().unwrap();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// A nib process under way.
pub struct Running {
    child: Child,
    /// Kept open (and silent) for as long as nib runs.
    _held_stdin: Option<std::process::ChildStdin>,
    stdout: Capture,
    stderr: Capture,
    started: Instant,
    timeout: Duration,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGINT, as Ctrl-C would.
    pub fn interrupt(&self) {
        self.signal("-INT");
    }

    /// Sends SIGKILL: nib dies wherever it is, as on a crash or power loss.
    pub fn kill9(&self) {
        self.signal("-KILL");
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {sig} {} failed", self.pid());
    }

    /// Waits up to `timeout` for nib to exit; past it, kills nib and fails the test.
    pub fn wait(mut self, timeout: Duration) -> Output {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for nib") {
                return self.finish(status);
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let status = self.child.wait().expect("reap nib");
                let out = self.finish(status);
                panic!(
                    "nib did not finish within {} s\n{out}",
                    timeout.as_secs_f32()
                );
            }
            thread::sleep(POLL);
        }
    }

    fn finish(self, status: ExitStatus) -> Output {
        Output {
            status,
            stdout: self.stdout.take(PIPE_GRACE),
            stderr: self.stderr.take(PIPE_GRACE),
            elapsed: self.started.elapsed(),
        }
    }
}

/// What a finished run left.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Output {
    /// The exit code; -1 when nib died of a signal.
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }

    /// stdout as one JSON value (`--output-format json`); fails the test otherwise.
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not one JSON value ({e})\n{self}"))
    }

    /// stdout as JSON lines (`--output-format stream-json`).
    pub fn lines(&self) -> Vec<Value> {
        parse_json_lines(&self.stdout)
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "exit: {:?} after {:.1} s\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status.code(),
            self.elapsed.as_secs_f32(),
            self.stdout,
            self.stderr
        )
    }
}

/// Parses one JSON value per non-empty line; fails the test on a line that is not JSON.
pub fn parse_json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("line {} is not JSON ({e}): {l}", i + 1))
        })
        .collect()
}
