//! What the REPL shows while a task runs: the answer as it streams (through the
//! markdown renderer), tool calls and their results, refusals, warnings and the
//! spinner. Approval questions are `approve.rs`'s; the keyboard during a task is
//! `keys.rs`'s.

use super::headless::{refusal_line, refused_what};
use super::keys::TaskKeys;
use super::markdown::Markdown;
use super::term::{self, Paint, Spinner, Style, sanitize};
use crate::agent::{Answer, Approval, Event, Ui};
use crate::paths::Workspace;
use crate::tools::Outcome;
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Diff lines shown for a write or edit, before and after it ran; the rest are counted.
pub const DIFF_LINES: usize = 60;
/// Indent of a diff or preview under its tool call or question.
pub const DIFF_INDENT: &str = "    ";

/// The `Ui` the agent talks to while a task runs.
pub struct View {
    pub style: Style,
    spinner: Option<Spinner>,
    /// What the running spinner says.
    label: &'static str,
    /// Nothing printed since the last newline.
    line_start: bool,
    /// Text streamed since the last request began.
    pub streamed: bool,
    /// Output tokens of this task, for the spinner.
    pub tokens: u64,
    /// Rules the user allowed during this session.
    pub rules: Vec<String>,
    /// Set on Ctrl-C at an approval question, like the signal would.
    pub cancel: Arc<AtomicBool>,
    pub workspace: Workspace,
    markdown: Markdown,
    /// The keyboard while a task runs (no echo, Esc interrupts).
    pub keys: Option<TaskKeys>,
    /// The diff the last approval question showed: not shown again when the change
    /// that ran is the same.
    pub previewed: Option<String>,
}

impl View {
    pub fn new(style: Style, cancel: Arc<AtomicBool>, workspace: Workspace) -> View {
        View {
            style,
            spinner: None,
            label: "",
            line_start: true,
            streamed: false,
            tokens: 0,
            rules: Vec::new(),
            cancel,
            workspace,
            markdown: Markdown::new(style, term::terminal_width()),
            keys: None,
            previewed: None,
        }
    }

    /// A task begins: the keyboard is watched until `end_task`.
    pub fn start_task(&mut self, label: &'static str) {
        self.tokens = 0;
        self.streamed = false;
        self.markdown = Markdown::new(self.style, term::terminal_width());
        self.cancel.store(false, Ordering::SeqCst);
        self.keys = Some(TaskKeys::start(self.cancel.clone()));
        self.spin(label);
    }

    /// The task ended; returns what the user typed meanwhile.
    pub fn end_task(&mut self) -> String {
        self.stop_spin();
        self.end_line();
        self.keys.take().map(TaskKeys::stop).unwrap_or_default()
    }

    pub fn spin(&mut self, label: &'static str) {
        self.stop_spin();
        self.end_line();
        let spinner = Spinner::start(label, self.style);
        spinner.set_tokens(self.tokens);
        self.spinner = Some(spinner);
        self.label = label;
    }

    pub fn stop_spin(&mut self) {
        if let Some(mut s) = self.spinner.take() {
            s.stop();
        }
    }

    pub fn write(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        let mut out = io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
        self.line_start = text.ends_with('\n');
    }

    pub fn end_line(&mut self) {
        let rest = self.markdown.finish();
        self.write(&rest);
        if !self.line_start {
            self.write("\n");
        }
    }

    fn text(&mut self, piece: &str) {
        self.stop_spin();
        self.streamed = true;
        let shown = self.markdown.push(piece);
        self.write(&shown);
    }

    pub fn line(&mut self, text: &str) {
        self.end_line();
        self.write(&format!("{text}\n"));
    }

    /// A line said while the spinner may run: on its own line, the spinner after it.
    fn aside(&mut self, text: &str) {
        let running = self.spinner.is_some().then_some(self.label);
        self.stop_spin();
        self.line(text);
        if let Some(label) = running {
            self.spin(label);
        }
    }

    fn tool_start(&mut self, name: &str, summary: &str) {
        self.stop_spin();
        let shown = summary.strip_prefix(&format!("{name} ")).unwrap_or(summary);
        let width = term::terminal_width();
        self.line(&term::tool_call_line(self.style, name, shown, width));
        self.spin("running");
    }

    pub fn tool_done(&mut self, action_is_bash: bool, outcome: &Outcome) {
        self.stop_spin();
        self.end_line();
        let text = match (self.previewed.take(), &outcome.diff) {
            (Some(shown), Some(diff)) if shown == *diff => {
                let first = outcome.content.lines().next().unwrap_or_default();
                format!("  ⎿ {} (shown above)\n", sanitize(first))
            }
            _ => result_text(self.style, action_is_bash, outcome, term::terminal_width()),
        };
        self.write(&text);
    }
}

/// The lines under a finished tool call: its status and the ends of its output (with
/// the number of lines the command printed, not how many were kept), or the diff of a
/// file change.
pub fn result_text(style: Style, bash: bool, outcome: &Outcome, width: usize) -> String {
    let content = outcome.content.as_str();
    let (first, rest) = content.split_once('\n').unwrap_or((content, ""));
    if let Some(diff) = &outcome.diff {
        let mut text = format!("  ⎿ {}\n", sanitize(first));
        text.push_str(&indent(&capped_diff(style, diff), DIFF_INDENT));
        return text;
    }
    let (status, output) = match (bash, outcome.is_error) {
        (true, _) => (first.replace("exit status: ", "exit "), rest),
        (false, true) => ("error".to_string(), content),
        (false, false) => ("ok".to_string(), content),
    };
    let printed = outcome.printed_lines;
    term::tool_result_lines(style, &status, outcome.is_error, output, printed, width)
}

/// A unified diff through the one diff renderer, cut to `DIFF_LINES` lines.
pub fn capped_diff(style: Style, diff: &str) -> String {
    let lines: Vec<&str> = diff.lines().collect();
    let shown = lines[..lines.len().min(DIFF_LINES)].join("\n");
    let mut text = term::render_diff(style, &shown);
    if lines.len() > DIFF_LINES {
        let more = format!(
            "… {}\n",
            term::plural(lines.len() - DIFF_LINES, "more diff line")
        );
        text.push_str(&style.paint(Paint::Dim, &more));
    }
    text
}

pub fn indent(text: &str, by: &str) -> String {
    text.lines().map(|l| format!("{by}{l}\n")).collect()
}

impl Ui for View {
    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Text(t) => self.text(t),
            Event::Retry(retry) => {
                self.stop_spin();
                let over = if self.streamed {
                    ", the answer starts over"
                } else {
                    ""
                };
                let line = format!("{}{over}", super::retry_line(retry));
                self.line(&self.style.paint(Paint::Yellow, &line));
                self.spin("retrying");
            }
            Event::Reply(reply) => {
                self.tokens += reply.usage.map_or(0, |u| u.output_tokens);
                self.stop_spin();
                if !self.streamed && !reply.text.is_empty() {
                    let shown = self.markdown.push(&reply.text);
                    self.write(&shown);
                }
                self.end_line();
            }
            Event::ToolStart(call, action) => self.tool_start(&call.name, &action.summary()),
            Event::ToolDone(call, outcome) => self.tool_done(call.name == "bash", outcome),
            Event::Refused { call, action, why } => {
                let line = refusal_line(&refused_what(call, action), why);
                self.aside(&self.style.paint(Paint::Red, &line));
            }
            Event::Results(_) => {
                self.streamed = false;
                self.spin("thinking");
            }
            Event::Compacted {
                replaced,
                summarised,
            } => {
                let how = if summarised { "summarized" } else { "dropped" };
                let line = format!(
                    "compacted: {} {how} to fit the context window",
                    term::plural(replaced, "earlier message")
                );
                self.aside(&self.style.paint(Paint::Dim, &line));
            }
            Event::Trimmed { cleared, cut } => {
                let line = super::trimmed_line(cleared, cut);
                self.aside(&self.style.paint(Paint::Dim, &line));
            }
            // The window's fill is worth a line once it is past half full.
            Event::Context { used, window } if used * 2 > window => {
                let line = super::context_line(used, window);
                self.aside(&self.style.paint(Paint::Dim, &line));
            }
            Event::Context { .. } => {}
            Event::Warning(w) => {
                let line = format!("nib: warning: {}", sanitize(&w));
                self.aside(&self.style.paint(Paint::Yellow, &line));
            }
        }
    }

    fn approve(&mut self, request: &Approval<'_>) -> Answer {
        super::approve::ask(self, request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain() -> Style {
        Style { color: false }
    }

    #[test]
    fn tool_results_show_status_and_diff() {
        let bash = Outcome::ok("exit status: 0\nhello");
        assert_eq!(
            result_text(plain(), true, &bash, 80),
            "  ⎿ exit 0 · 1 line\n    hello\n"
        );
        let failed = Outcome::error("exit status: 2\n");
        assert_eq!(
            result_text(plain(), true, &failed, 80),
            "  ⎿ exit 2 · no output\n"
        );
        let mut write = Outcome::ok("wrote f.rs\n@@ compact @@");
        write.diff = Some("--- a/f.rs\n+++ b/f.rs\n@@ -1 +1 @@\n-a\n+b\n".into());
        assert_eq!(
            result_text(plain(), false, &write, 80),
            "  ⎿ wrote f.rs\n    --- a/f.rs\n    +++ b/f.rs\n    @@ -1 +1 @@\n       1 -a\n       1 +b\n"
        );
        let err = Outcome::error("no such file");
        assert_eq!(
            result_text(plain(), false, &err, 80),
            "  ⎿ error · 1 line\n    no such file\n"
        );
    }

    #[test]
    fn line_counts_are_what_the_command_printed() {
        let mut clipped = Outcome::ok(
            "exit status: 0\n1\n2\n3\n[… 100 bytes omitted of 200 …]\n4998\n4999\n5000\n",
        );
        clipped.printed_lines = Some(5000);
        let text = result_text(plain(), true, &clipped, 80);
        assert!(text.starts_with("  ⎿ exit 0 · 5000 lines\n"), "{text}");
        assert!(text.contains("… 4994 more lines"), "{text}");
    }

    #[test]
    fn long_diffs_are_capped() {
        let diff: String = (0..DIFF_LINES + 5).map(|i| format!("+{i}\n")).collect();
        let text = capped_diff(plain(), &diff);
        assert_eq!(text.lines().count(), DIFF_LINES + 1);
        assert!(text.ends_with("… 5 more diff lines\n"));
        let diff: String = (0..DIFF_LINES + 1).map(|i| format!("+{i}\n")).collect();
        assert!(capped_diff(plain(), &diff).ends_with("… 1 more diff line\n"));
    }
}
