//! The keyboard while a task runs: what the user types is not echoed into the answer,
//! Esc interrupts like Ctrl-C, and typed text is kept for the next prompt. An approval
//! question pauses the watch and drops every key typed before it was shown, so
//! type-ahead can never answer it. Ctrl-C stays a signal (`ui::forward_interrupts`).

use crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use std::io::{self, IsTerminal};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// How long the watch waits for a key before it checks whether to stop or pause.
const POLL: Duration = Duration::from_millis(30);

/// Watches the keyboard from a thread until stopped; inert without a terminal.
pub struct TaskKeys {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// The terminal settings before the watch began, put back when it ends.
    saved: Option<libc::termios>,
}

struct Shared {
    stop: AtomicBool,
    paused: AtomicBool,
    /// Held while the watch reads keys; a question takes it to have the keyboard.
    reading: Mutex<()>,
    typed: Mutex<String>,
}

/// The keyboard, lent to a question; the watch resumes when this is dropped.
pub struct Paused<'a> {
    shared: &'a Shared,
    _reading: Option<MutexGuard<'a, ()>>,
}

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        self.shared.paused.store(false, Ordering::SeqCst);
    }
}

impl TaskKeys {
    /// Starts watching: echo and line editing off (signals stay on), Esc sets `cancel`.
    pub fn start(cancel: Arc<AtomicBool>) -> TaskKeys {
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            paused: AtomicBool::new(false),
            reading: Mutex::new(()),
            typed: Mutex::new(String::new()),
        });
        let mut keys = TaskKeys {
            shared,
            thread: None,
            saved: None,
        };
        if io::stdin().is_terminal() {
            keys.saved = quiet_terminal();
            let watcher = Arc::clone(&keys.shared);
            keys.thread = Some(thread::spawn(move || watch(&watcher, &cancel)));
        }
        keys
    }

    /// Takes the keyboard for a question: waits for the watch to let go, then drops
    /// whatever was typed until now.
    pub fn pause(&self) -> Paused<'_> {
        self.shared.paused.store(true, Ordering::SeqCst);
        let reading = self.thread.as_ref().map(|_| {
            self.shared
                .reading
                .lock()
                .unwrap_or_else(|e| e.into_inner())
        });
        if let Ok(mut typed) = self.shared.typed.lock() {
            typed.clear();
        }
        Paused {
            shared: &self.shared,
            _reading: reading,
        }
    }

    /// Stops watching and gives back the terminal and what was typed.
    pub fn stop(mut self) -> String {
        self.finish();
        let typed = self.shared.typed.lock().map(|t| t.clone());
        typed.unwrap_or_default()
    }

    fn finish(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if let Some(saved) = self.saved.take() {
            // SAFETY: restores settings read from the same descriptor.
            unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &saved) };
        }
    }
}

impl Drop for TaskKeys {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Echo and canonical mode off, signals on; returns the settings to restore.
fn quiet_terminal() -> Option<libc::termios> {
    // SAFETY: tcgetattr fills the struct it is given; the fd is stdin, a terminal.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(libc::STDIN_FILENO, &mut t) != 0 {
            return None;
        }
        let saved = t;
        t.c_lflag &= !(libc::ECHO | libc::ICANON);
        t.c_cc[libc::VMIN] = 1;
        t.c_cc[libc::VTIME] = 0;
        libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &t);
        Some(saved)
    }
}

/// Echo, line editing and signals on, whatever a watch left (after a panic).
pub fn echo_on() {
    // SAFETY: reads and writes the settings of stdin; a failure leaves them as they are.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::isatty(libc::STDIN_FILENO) == 1 && libc::tcgetattr(libc::STDIN_FILENO, &mut t) == 0
        {
            t.c_lflag |= libc::ECHO | libc::ICANON | libc::ISIG;
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &t);
        }
    }
}

/// Drops keys typed but not read yet (the kernel's queue and crossterm's).
pub fn drop_typed() {
    // SAFETY: discards pending input of stdin; nothing else is touched.
    unsafe { libc::tcflush(libc::STDIN_FILENO, libc::TCIFLUSH) };
    while event::poll(Duration::ZERO).unwrap_or(false) {
        if event::read().is_err() {
            break;
        }
    }
}

fn watch(shared: &Shared, cancel: &AtomicBool) {
    while !shared.stop.load(Ordering::SeqCst) {
        if shared.paused.load(Ordering::SeqCst) {
            thread::sleep(POLL);
            continue;
        }
        let Ok(_reading) = shared.reading.lock() else {
            return;
        };
        if !event::poll(POLL).unwrap_or(false) {
            continue;
        }
        let Ok(Event::Key(key)) = event::read() else {
            continue;
        };
        if key.kind == KeyEventKind::Release {
            continue;
        }
        let Ok(mut typed) = shared.typed.lock() else {
            return;
        };
        match key.code {
            KeyCode::Esc => cancel.store(true, Ordering::SeqCst),
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => typed.push(c),
            KeyCode::Backspace => {
                typed.pop();
            }
            _ => {}
        }
    }
}
