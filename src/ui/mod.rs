//! Everything that talks to the person: headless output, the interactive REPL, its
//! line editor and the output helpers it draws with.

pub mod approve;
pub mod attach;
pub mod editor;
pub mod headless;
pub mod keys;
pub mod markdown;
pub mod repl;
pub mod report;
pub mod slash;
pub mod term;
pub mod view;

/// Everything a run needs besides the prompt, as the wiring (`app`) builds it for the
/// REPL or a headless run: the agent, and what the UI shows.
pub struct Setup {
    pub agent: crate::agent::Agent,
    pub system: Vec<crate::context::Part>,
    pub tools: Vec<crate::tools::Tool>,
    pub config: crate::config::Config,
}

/// Said once when every call runs without asking.
pub const BYPASS_WARNING: &str =
    "--yes: every tool call runs without asking (deny rules still apply)";

/// What trimming the conversation did, in one line.
pub fn trimmed_line(cleared: usize, cut: usize) -> String {
    let mut done = Vec::new();
    if cleared > 0 {
        done.push(format!("cleared {cleared} old tool results"));
    }
    if cut > 0 {
        done.push(format!("cut the latest {cut}"));
    }
    format!("context: {} to fit the context window", done.join(", "))
}

/// A request about to be tried again, in one line.
pub fn retry_line(retry: &crate::model::Retry) -> String {
    let (reason, wait) = (term::sanitize(&retry.reason), retry.wait.as_secs_f64());
    let attempt = retry.attempt + 1;
    format!("nib: {reason}; retrying in {wait:.1} s (attempt {attempt})")
}

/// How full the context window is, in one line: `context: 6012 / 8192 tokens (73%)`.
pub fn context_line(used: u64, window: u64) -> String {
    let percent = used * 100 / window.max(1);
    format!("context: {used} / {window} tokens ({percent}%)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Retry;
    use std::time::Duration;

    #[test]
    fn a_retry_is_one_sanitized_line() {
        let retry = |reason: &str| Retry {
            attempt: 1,
            wait: Duration::from_millis(1500),
            reason: reason.into(),
        };
        let line = retry_line(&retry("server overloaded (HTTP 503)"));
        assert_eq!(
            line,
            "nib: server overloaded (HTTP 503); retrying in 1.5 s (attempt 2)"
        );
        let hostile = retry_line(&retry("bad\x1b[2Jgateway"));
        assert!(!hostile.contains('\x1b'), "{hostile:?}");
        assert!(
            hostile.starts_with("nib: bad") && hostile.contains("gateway;"),
            "{hostile:?}"
        );
    }
}
