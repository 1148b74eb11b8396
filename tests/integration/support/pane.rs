//! A real terminal for REPL tests: each `Pane` is its own tmux server with one pane of
//! 100×30 running a clean shell in a test sandbox; tests type into it with `send-keys`
//! and read the screen with `capture-pane`. Without tmux, `Pane::start` says so and
//! returns `None` (CI installs it).

use super::fake::{self, FakeServer};
use super::nib::{self, Nib};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// How long the screen may take to show what a test waits for (nib starts in well
/// under a second; this leaves room for a loaded machine).
const SCREEN_WAIT: Duration = Duration::from_secs(15);
/// How often the screen is read while waiting.
const POLL: Duration = Duration::from_millis(50);
/// The pane's size: the common 100×30, with room for the approval question.
const SIZE: (&str, &str) = ("100", "30");

/// Tells tmux servers of parallel tests apart.
static SERVERS: AtomicUsize = AtomicUsize::new(0);

/// One tmux server with one pane running a shell in the sandbox's `work/`.
pub struct Pane {
    socket: String,
    pub nib: Nib,
}

impl Pane {
    /// `None` (after saying why) when tmux is not installed.
    pub fn start() -> Option<Pane> {
        let found = Command::new("tmux")
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            eprintln!("skipped: tmux is not installed (the REPL tests need a real terminal)");
            return None;
        }
        let n = SERVERS.fetch_add(1, Ordering::SeqCst);
        let pane = Pane {
            socket: format!("nibtest-{}-{n}", std::process::id()),
            nib: Nib::new(),
        };
        let shell = format!(
            "env -i PATH={path} HOME={home} XDG_DATA_HOME={data} XDG_CONFIG_HOME={config} \
             TERM=screen PS1='$ ' ANTHROPIC_API_KEY={key} bash --norc --noprofile",
            path = std::env::var("PATH").unwrap_or_default(),
            home = pane.nib.home().display(),
            data = pane.nib.data_home().display(),
            config = pane.nib.config_home().display(),
            key = nib::FAKE_KEY,
        );
        let work = pane.nib.work();
        let (x, y) = SIZE;
        pane.tmux(&["new-session", "-d", "-x", x, "-y", y, "-c"])
            .arg(&work)
            .arg(shell)
            .status()
            .expect("start tmux");
        pane.wait_for("$ ");
        Some(pane)
    }

    pub fn tmux(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.args(["-L", &self.socket, "-f", "/dev/null"]).args(args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::null());
        cmd
    }

    /// Starts nib against the fake (OpenAI protocol) with `extra` arguments.
    pub fn nib(&self, server: &FakeServer, extra: &str) {
        let bin = std::env::var("NIB_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_nib").into());
        let line = format!(
            "{bin} --base-url {} --model {} {extra}",
            server.base_v1(),
            fake::MODEL
        );
        self.line(&line);
    }

    /// Types `text` literally, then Enter.
    pub fn line(&self, text: &str) {
        self.keys_literal(text);
        self.key("Enter");
    }

    pub fn keys_literal(&self, text: &str) {
        let status = self.tmux(&["send-keys", "-l", text]).status();
        assert!(status.is_ok_and(|s| s.success()), "send-keys {text:?}");
    }

    /// A tmux key name: `Enter`, `C-c`, `Up`, a single letter.
    pub fn key(&self, name: &str) {
        let status = self.tmux(&["send-keys", name]).status();
        assert!(status.is_ok_and(|s| s.success()), "send-keys {name}");
    }

    /// The pane's text, scrollback included.
    pub fn screen(&self) -> String {
        let out = self
            .tmux(&["capture-pane", "-p", "-J", "-S", "-"])
            .output()
            .expect("capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen contains `text`; fails the test with the screen if not.
    pub fn wait_for(&self, text: &str) -> String {
        self.wait_until(&format!("{text:?} on screen"), |s| s.contains(text))
    }

    pub fn wait_until(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + SCREEN_WAIT;
        loop {
            let screen = self.screen();
            if ok(&screen) {
                return screen;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; the screen:\n{screen}");
            }
            thread::sleep(POLL);
        }
    }

    /// Waits until the editor shows an empty prompt on the last line, so keys reach it.
    pub fn wait_prompt(&self) {
        self.wait_until("an empty prompt", |_| {
            let out = self
                .tmux(&["capture-pane", "-p"])
                .output()
                .expect("capture-pane");
            let visible = String::from_utf8_lossy(&out.stdout).into_owned();
            visible
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(str::trim_end)
                == Some("›")
        });
    }

    /// Waits for the prompt, then types a line into it.
    pub fn ask(&self, text: &str) {
        self.wait_prompt();
        self.line(text);
    }

    /// Clears the screen and its scrollback, so old text cannot satisfy a wait.
    pub fn reset(&self) {
        self.line("clear");
        thread::sleep(Duration::from_millis(200));
        let _ = self.tmux(&["clear-history"]).status();
        self.wait_for("$ ");
    }

    /// Waits for `text` to appear `n` times (prompts repeat on screen).
    pub fn wait_for_count(&self, text: &str, n: usize) -> String {
        self.wait_until(&format!("{n}× {text:?}"), |s| s.matches(text).count() >= n)
    }

    /// After nib exited: the shell prompt is back and the terminal is in cooked mode
    /// with echo on.
    pub fn assert_restored(&self) {
        // Keys typed before nib has exited would be read by nib, not the shell.
        self.wait_until("the shell prompt after nib", |s| {
            s.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(str::trim_end)
                == Some("$")
        });
        self.line(
            "stty -a | tr ' ' '\\n' | grep -x -e icanon -e echo -e -icanon -e -echo; echo stty-done",
        );
        let screen = self.wait_until("stty output", |s| s.lines().any(|l| l == "stty-done"));
        let lines: Vec<&str> = screen.lines().collect();
        assert!(lines.contains(&"icanon"), "icanon off after nib:\n{screen}");
        assert!(lines.contains(&"echo"), "echo off after nib:\n{screen}");
        assert!(!lines.contains(&"-icanon") && !lines.contains(&"-echo"));
    }

    pub fn work(&self) -> PathBuf {
        self.nib.work()
    }
}

impl Drop for Pane {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]).status();
    }
}
