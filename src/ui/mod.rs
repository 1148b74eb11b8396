//! Everything that talks to the person: headless output, the interactive REPL, its
//! line editor and the output helpers it draws with.

pub mod approve;
pub mod attach;
pub mod editor;
pub mod headless;
pub mod keys;
pub mod markdown;
pub mod repl;
pub mod slash;
pub mod term;
pub mod view;

/// Set by the SIGINT handler; the only process-wide state nib has, because a signal
/// handler can reach nothing else.
static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    use std::sync::atomic::Ordering;
    if INTERRUPTED.swap(true, Ordering::SeqCst) {
        // A second Ctrl-C while the first is still being handled: leave now.
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(130) };
    }
}

/// Ctrl-C sets `cancel` (the agent then stops the request or kills the running
/// command); a second Ctrl-C before that is handled exits at once with 130.
pub fn forward_interrupts(cancel: std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use std::sync::atomic::Ordering;
    // SAFETY: the handler only touches an atomic and calls _exit.
    unsafe {
        libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t);
    }
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(std::time::Duration::from_millis(50));
            if INTERRUPTED.swap(false, Ordering::SeqCst) {
                cancel.store(true, Ordering::SeqCst);
            }
        }
    });
}
