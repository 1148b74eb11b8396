//! Signals to nib: Ctrl-C (SIGINT) cancels what runs; SIGTERM, SIGHUP (the terminal
//! closed) and SIGQUIT stop nib without leaving anything behind: the running command's
//! group is killed (by the tool itself, TERM then KILL), the journal gets the tool's
//! result and the task's end, the terminal is restored, and nib exits 128 + signal.
//!
//! The statics here are the only process-wide state nib has, because a signal handler
//! can reach nothing else.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant};

/// Set by the SIGINT handler, taken by the forwarding thread.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// The signal that asked nib to stop (SIGTERM, SIGHUP, SIGQUIT); 0 until one came.
static STOP: AtomicI32 = AtomicI32::new(0);

/// True while nib only waits for the person (the REPL prompt): nothing to finish, so a
/// stop signal exits at once.
static IDLE: AtomicBool = AtomicBool::new(false);

/// The signals that stop nib.
const STOP_SIGNALS: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

/// How often the forwarding thread looks at the flags.
const POLL: Duration = Duration::from_millis(20);

/// How long a stop waits for the task to wind down (a command's group gets TERM, a
/// one-second grace and KILL; the journal its records) before nib exits regardless.
const STOP_DEADLINE: Duration = Duration::from_secs(5);

extern "C" fn on_sigint(_: libc::c_int) {
    if INTERRUPTED.swap(true, Ordering::SeqCst) {
        // A second Ctrl-C while the first is still being handled: leave now.
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(130) };
    }
}

extern "C" fn on_stop(signal: libc::c_int) {
    if STOP.swap(signal, Ordering::SeqCst) != 0 {
        // A second stop signal while the first is being handled: leave now.
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(128 + signal) };
    }
}

/// Installs the handlers and the thread that turns them into `cancel`; a stop signal
/// then exits once the task has wound down (or nib is idle), after `restore` has put
/// the terminal back.
pub fn forward(cancel: Arc<AtomicBool>, restore: fn()) {
    // SAFETY: the handlers only touch atomics and call _exit.
    unsafe {
        libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t);
        for signal in STOP_SIGNALS {
            libc::signal(signal, on_stop as *const () as libc::sighandler_t);
        }
    }
    std::thread::spawn(move || {
        let mut stopping: Option<Instant> = None;
        loop {
            std::thread::sleep(POLL);
            if INTERRUPTED.swap(false, Ordering::SeqCst) {
                cancel.store(true, Ordering::SeqCst);
            }
            let Some(signal) = stopped_by() else {
                continue;
            };
            cancel.store(true, Ordering::SeqCst);
            let since = *stopping.get_or_insert_with(Instant::now);
            if IDLE.load(Ordering::SeqCst) || since.elapsed() > STOP_DEADLINE {
                restore();
                std::process::exit(128 + signal);
            }
        }
    });
}

/// The signal that asked nib to stop, if one did.
pub fn stopped_by() -> Option<i32> {
    match STOP.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(signal),
    }
}

/// The name people know a stop signal by.
pub fn name(signal: i32) -> &'static str {
    match signal {
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        libc::SIGQUIT => "SIGQUIT",
        _ => "a signal",
    }
}

/// Marks nib idle (waiting for the person) while it lives.
pub struct Idle;

impl Idle {
    pub fn enter() -> Idle {
        IDLE.store(true, Ordering::SeqCst);
        Idle
    }
}

impl Drop for Idle {
    fn drop(&mut self) {
        IDLE.store(false, Ordering::SeqCst);
    }
}
