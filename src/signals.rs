//! Signals to nib: Ctrl-C (SIGINT) cancels what runs; SIGTERM, SIGHUP (the terminal
//! closed) and SIGQUIT stop nib without leaving anything behind: the running command's
//! group is killed (by the tool itself, TERM then KILL), the journal gets the tool's
//! result and the task's end, the terminal is restored, and nib exits 128 + signal.
//!
//! The handlers are signal-hook's (they only set flags, or exit on a second signal);
//! the statics here are the only process-wide state nib has, because a signal handler
//! can reach nothing else.

use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use signal_hook::flag;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

/// Set by SIGINT, taken by the forwarding thread.
static INTERRUPTED: LazyLock<Arc<AtomicBool>> = LazyLock::new(Arc::default);

/// The signal that asked nib to stop (SIGTERM, SIGHUP, SIGQUIT); 0 until one came.
static STOP: LazyLock<Arc<AtomicUsize>> = LazyLock::new(Arc::default);

/// True while nib only waits for the person (the REPL prompt): nothing to finish, so a
/// stop signal exits at once.
static IDLE: AtomicBool = AtomicBool::new(false);

/// The signals that stop nib.
const STOP_SIGNALS: [i32; 3] = [SIGTERM, SIGHUP, SIGQUIT];

/// The exit status of a second Ctrl-C that comes before the first was handled.
const INTERRUPTED_STATUS: i32 = 130;

/// How often the forwarding thread looks at the flags.
const POLL: Duration = Duration::from_millis(20);

/// How long a stop waits for the task to wind down (a command's group gets TERM, a
/// one-second grace and KILL; the journal its records) before nib exits regardless.
const STOP_DEADLINE: Duration = Duration::from_secs(5);

/// Installs the handlers and the thread that turns them into `cancel`; a stop signal
/// then ends nib through `stop` once the task has wound down (or nib is idle). A second
/// signal while the first is handled exits at once, with the status the signal gives.
pub fn forward(cancel: Arc<AtomicBool>, stop: fn(i32) -> !) {
    // The shutdowns go first: they fire only once the flag is set (by the first signal).
    let _ = flag::register_conditional_shutdown(SIGINT, INTERRUPTED_STATUS, INTERRUPTED.clone());
    let _ = flag::register(SIGINT, INTERRUPTED.clone());
    let stopping = Arc::new(AtomicBool::new(false));
    for signal in STOP_SIGNALS {
        let _ = flag::register_conditional_shutdown(signal, 128 + signal, stopping.clone());
        let _ = flag::register_usize(signal, STOP.clone(), signal as usize);
        let _ = flag::register(signal, stopping.clone());
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
                stop(signal);
            }
        }
    });
}

/// The signal that asked nib to stop, if one did.
pub fn stopped_by() -> Option<i32> {
    match STOP.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(signal as i32),
    }
}

/// The name people know a stop signal by.
pub fn name(signal: i32) -> &'static str {
    match signal {
        SIGTERM => "SIGTERM",
        SIGHUP => "SIGHUP",
        SIGQUIT => "SIGQUIT",
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
