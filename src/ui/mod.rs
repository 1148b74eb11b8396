//! Everything that talks to the person: headless output and the interactive REPL.

pub mod headless;

use std::borrow::Cow;

/// Control characters and escape sequences made visible, so nothing a model or a
/// command prints can move the cursor or change the terminal.
pub fn visible(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' | '\t' => out.push(c),
            '\u{1b}' => out.push_str("^["),
            c if (c as u32) < 0x20 => {
                out.push('^');
                out.push((b'@' + c as u8) as char);
            }
            c if c.is_control() => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

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
