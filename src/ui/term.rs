//! Output helpers for the terminal: make untrusted text harmless, colour it only when
//! the terminal wants colour, and build the compact lines the REPL shows (diffs, tool
//! calls, the thinking spinner). Reading keys is `editor.rs`'s job; deciding what to
//! show is the REPL's.

use std::borrow::Cow;
use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::io::{self, IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Width assumed when the terminal cannot be asked (output is a pipe, or the query fails).
const FALLBACK_WIDTH: usize = 80;
/// Output lines shown from each end of a tool result; enough to see how it began and ended.
const PREVIEW_LINES: usize = 3;
/// Spaces a tab becomes in previews, so truncation can count columns exactly.
const PREVIEW_TAB: &str = "    ";
/// Indent of preview lines under a tool call.
const PREVIEW_INDENT: &str = "    ";
/// Spinner redraw interval: fast enough to look alive, slow enough to cost nothing.
const SPINNER_TICK: Duration = Duration::from_millis(80);
/// Spinner frames (braille dots, the frames most terminal tools use).
const SPINNER_FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
/// Returns to column 0 and erases the line (the spinner's only cursor movement).
const CLEAR_LINE: &str = "\r\x1b[2K";
/// Ends any colour or attribute.
const RESET: &str = "\x1b[0m";

/// Makes control characters and escape sequences visible and harmless, so model and
/// command output can never move the cursor or reconfigure the terminal. Newlines and
/// tabs pass through, as does `\r` directly before `\n`.
pub fn sanitize(s: &str) -> Cow<'_, str> {
    let clean = s
        .char_indices()
        .all(|(i, c)| !needs_escape(c) || (c == '\r' && s[i + 1..].starts_with('\n')));
    if clean {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if chars.peek() == Some(&'\n') => out.push('\r'),
            _ => push_visible(&mut out, c),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t') || is_bidi_control(c)
}

/// Bidirectional overrides reorder what is shown without changing what runs.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn push_visible(out: &mut String, c: char) {
    match c {
        '\n' | '\t' => out.push(c),
        '\x1b' => out.push_str("^["),
        '\x7f' => out.push_str("^?"),
        '\0'..='\x1f' => {
            out.push('^');
            out.push(char::from(c as u8 + 0x40));
        }
        _ if needs_escape(c) => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
        _ => out.push(c),
    }
}

/// Columns a printable character takes: 2 for East Asian wide and most emoji, 0 for
/// combining marks and zero-width characters, else 1. An approximation of Unicode's
/// East Asian Width that is right for the common scripts.
pub fn char_width(c: char) -> usize {
    match c as u32 {
        0x0300..=0x036f | 0x200b..=0x200f | 0x20d0..=0x20ff | 0xfe00..=0xfe0f => 0,
        0x1100..=0x115f
        | 0x2e80..=0x303e
        | 0x3041..=0x33ff
        | 0x3400..=0x4dbf
        | 0x4e00..=0x9fff
        | 0xa000..=0xa4cf
        | 0xac00..=0xd7a3
        | 0xf900..=0xfaff
        | 0xfe30..=0xfe4f
        | 0xff00..=0xff60
        | 0xffe0..=0xffe6
        | 0x1f300..=0x1f64f
        | 0x1f900..=0x1f9ff
        | 0x20000..=0x3fffd => 2,
        _ => 1,
    }
}

/// Removes CSI escape sequences (colours), leaving the text a terminal would show.
pub fn strip_ansi(s: &str) -> Cow<'_, str> {
    if !s.contains('\x1b') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        if chars.next() == Some('[') {
            // Parameters and intermediates run up to a final byte in '@'..='~'.
            for p in chars.by_ref() {
                if ('@'..='~').contains(&p) {
                    break;
                }
            }
        }
    }
    Cow::Owned(out)
}

/// Columns `s` takes on screen, ignoring colour sequences.
pub fn display_width(s: &str) -> usize {
    strip_ansi(s).chars().map(char_width).sum()
}

/// Cuts plain (uncoloured, sanitized) text to at most `width` columns, ending with `…`
/// when something was cut.
pub fn truncate_to_width(s: &str, width: usize) -> Cow<'_, str> {
    if display_width(s) <= width {
        return Cow::Borrowed(s);
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = char_width(c);
        if used + w + 1 > width {
            break;
        }
        used += w;
        out.push(c);
    }
    if width > 0 {
        out.push('…');
    }
    Cow::Owned(out)
}

/// The terminal's width in columns, or a sensible default when there is none.
pub fn terminal_width() -> usize {
    match crossterm::terminal::size() {
        Ok((w, _)) if w > 0 => usize::from(w),
        _ => FALLBACK_WIDTH,
    }
}

/// The colours and attributes nib uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Paint {
    Red,
    Green,
    Yellow,
    Cyan,
    Dim,
    Bold,
}

impl Paint {
    fn sgr(self) -> &'static str {
        match self {
            Paint::Red => "\x1b[31m",
            Paint::Green => "\x1b[32m",
            Paint::Yellow => "\x1b[33m",
            Paint::Cyan => "\x1b[36m",
            Paint::Dim => "\x1b[2m",
            Paint::Bold => "\x1b[1m",
        }
    }
}

/// Whether output gets colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Style {
    pub color: bool,
}

impl Style {
    /// Colour when stdout is a terminal and `no_color` (`NO_COLOR`) is unset or empty
    /// (no-color.org).
    pub fn detect(no_color: Option<&OsStr>) -> Style {
        let no_color = no_color.map(OsStr::to_os_string);
        Style::decide(no_color, io::stdout().is_terminal())
    }

    fn decide(no_color: Option<OsString>, is_terminal: bool) -> Style {
        let opted_out = no_color.is_some_and(|v| !v.is_empty());
        Style {
            color: is_terminal && !opted_out,
        }
    }

    /// `text` wrapped in the colour, or unchanged when colour is off.
    pub fn paint(self, paint: Paint, text: &str) -> String {
        match self.color {
            true => format!("{}{text}{RESET}", paint.sgr()),
            false => text.to_string(),
        }
    }
}

/// `1 line`, `2 lines`: a count and its noun, singular when the count is one.
pub fn plural(n: impl TryInto<u64>, noun: &str) -> String {
    match n.try_into().unwrap_or(u64::MAX) {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}

/// A unified diff, sanitized, each hunk line after its line number (the old file's for
/// removed and unchanged lines, the new file's for added ones); added lines green,
/// removed red, hunk headers cyan and file headers bold. Each line ends with `\n`.
/// The one renderer for a change, before it is approved and after it ran.
pub fn render_diff(style: Style, diff: &str) -> String {
    let mut out = String::with_capacity(diff.len() + 64);
    // The next old and new line numbers inside a hunk.
    let mut at: Option<(u64, u64)> = None;
    for line in diff.lines() {
        let paint = match line {
            l if l.starts_with("@@") => {
                at = hunk_start(l);
                Some(Paint::Cyan)
            }
            l if l.starts_with("diff ") => {
                at = None;
                Some(Paint::Bold)
            }
            l if at.is_none() && (l.starts_with("--- ") || l.starts_with("+++ ")) => {
                Some(Paint::Bold)
            }
            l if l.starts_with('+') => Some(Paint::Green),
            l if l.starts_with('-') => Some(Paint::Red),
            _ => None,
        };
        if let Some((old, new)) = at.as_mut().filter(|_| !line.starts_with("@@")) {
            let n = match line.chars().next() {
                Some('+') => std::mem::replace(new, *new + 1),
                Some('-') => std::mem::replace(old, *old + 1),
                _ => {
                    *new += 1;
                    std::mem::replace(old, *old + 1)
                }
            };
            let _ = write!(out, "{n:>4} ");
        }
        let clean = sanitize(line);
        match paint {
            Some(p) => out.push_str(&style.paint(p, &clean)),
            None => out.push_str(&clean),
        }
        out.push('\n');
    }
    out
}

/// The first old and new line numbers of a hunk header `@@ -3,4 +3,5 @@`.
fn hunk_start(header: &str) -> Option<(u64, u64)> {
    let mut parts = header.split_whitespace().skip(1);
    let mut number = |sign: char| -> Option<u64> {
        let part = parts.next()?.strip_prefix(sign)?;
        part.split(',').next()?.parse().ok()
    };
    let old = number('-')?;
    let new = number('+')?;
    // An empty side (`-0,0`) starts before line 1.
    Some((old.max(1), new.max(1)))
}

/// The line announcing a tool call: `● bash  ls -la`, cut to `width` columns. Only the
/// first line of a multi-line summary is shown.
pub fn tool_call_line(style: Style, name: &str, summary: &str, width: usize) -> String {
    let name = sanitize(name);
    let first = summary.lines().next().unwrap_or("");
    let more = if summary.trim_end().contains('\n') {
        " …"
    } else {
        ""
    };
    let head = 2 + display_width(&name) + 2;
    if head >= width {
        return truncate_to_width(&format!("● {name}"), width).into_owned();
    }
    let rest = format!("{}{more}", sanitize(first));
    let rest = truncate_to_width(&rest, width - head);
    let bullet = style.paint(Paint::Cyan, "●");
    format!("{bullet} {}  {rest}", style.paint(Paint::Bold, &name))
}

/// The result under a tool call: `  ⎿ exit 0 · 12 lines`, then the first and last
/// few lines of output, dimmed and cut to `width`. `failed` paints the status red.
/// `printed`: how many lines the command printed, when more than `output` kept.
pub fn tool_result_lines(
    style: Style,
    status: &str,
    failed: bool,
    output: &str,
    printed: Option<u64>,
    width: usize,
) -> String {
    let clean = sanitize(output);
    let lines: Vec<&str> = clean.lines().collect();
    let total = printed.unwrap_or(lines.len() as u64);
    let count = match total {
        0 => "no output".to_string(),
        n => plural(n, "line"),
    };
    let status = sanitize(status);
    let status = match failed {
        true => style.paint(Paint::Red, &status),
        false => status.into_owned(),
    };
    let mut out = format!("  ⎿ {status} · {count}\n");
    let room = width.saturating_sub(PREVIEW_INDENT.len());
    let mut push = |text: &str| {
        let wide = text.replace('\t', PREVIEW_TAB);
        let cut = truncate_to_width(&wide, room);
        out.push_str(PREVIEW_INDENT);
        out.push_str(&style.paint(Paint::Dim, &cut));
        out.push('\n');
    };
    if lines.len() <= 2 * PREVIEW_LINES {
        lines.iter().for_each(|l| push(l));
        return out;
    }
    lines[..PREVIEW_LINES].iter().for_each(|l| push(l));
    let hidden = total.saturating_sub(2 * PREVIEW_LINES as u64);
    push(&format!("… {}", plural(hidden, "more line")));
    lines[lines.len() - PREVIEW_LINES..]
        .iter()
        .for_each(|l| push(l));
    out
}

/// A token count for people: `532`, `1.2k`, `3.4M`.
pub fn format_tokens(n: u64) -> String {
    match n {
        0..=999 => n.to_string(),
        1_000..=999_949 => format!("{:.1}k", n as f64 / 1e3),
        _ => format!("{:.1}M", n as f64 / 1e6),
    }
}

fn format_elapsed(d: Duration) -> String {
    let secs = d.as_secs_f64();
    match d.as_secs() {
        0..=59 => format!("{secs:.1}s"),
        s => format!("{}m {:02}s", s / 60, s % 60),
    }
}

/// One spinner frame: `⠋ thinking 3.2s · 1.2k tokens` (no tokens part while zero).
fn spinner_line(frame: usize, label: &str, elapsed: Duration, tokens: u64) -> String {
    let glyph = SPINNER_FRAMES[frame % SPINNER_FRAMES.len()];
    let mut line = format!("{glyph} {} {}", sanitize(label), format_elapsed(elapsed));
    match tokens {
        0 => {}
        1 => line.push_str(" · 1 token"),
        n => {
            let _ = write!(line, " · {} tokens", format_tokens(n));
        }
    }
    line
}

/// An animated status line on stderr, redrawn in place from a background thread until
/// stopped. Draws nothing when stderr is not a terminal.
pub struct Spinner {
    tokens: Arc<AtomicU64>,
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Spinner {
    pub fn start(label: &str, style: Style) -> Spinner {
        let mut spinner = Spinner {
            tokens: Arc::default(),
            stop: None,
            thread: None,
        };
        if !io::stderr().is_terminal() {
            return spinner;
        }
        let (tx, rx) = mpsc::channel::<()>();
        let shared = Arc::clone(&spinner.tokens);
        let label = label.to_string();
        spinner.stop = Some(tx);
        spinner.thread = Some(thread::spawn(move || {
            let started = Instant::now();
            for frame in 0.. {
                let n = shared.load(Ordering::Relaxed);
                let line = spinner_line(frame, &label, started.elapsed(), n);
                // One column spare: a line that fills the row would wrap and break `\r`.
                let cut = truncate_to_width(&line, terminal_width().saturating_sub(1));
                let shown = style.paint(Paint::Dim, &cut);
                let _ = write!(io::stderr(), "{CLEAR_LINE}{shown}");
                let _ = io::stderr().flush();
                if rx.recv_timeout(SPINNER_TICK) != Err(RecvTimeoutError::Timeout) {
                    break;
                }
            }
            let _ = write!(io::stderr(), "{CLEAR_LINE}");
            let _ = io::stderr().flush();
        }));
        spinner
    }

    pub fn set_tokens(&self, n: u64) {
        self.tokens.store(n, Ordering::Relaxed);
    }

    /// Stops the animation and clears its line; returns once the line is clear.
    pub fn stop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_makes_controls_visible() {
        fn check(input: &str, expected: &str) {
            assert_eq!(sanitize(input), expected, "input {input:?}");
        }
        check("plain text", "plain text");
        check("tab\tand\nnewline", "tab\tand\nnewline");
        check("\x1b[31mred\x1b[0m", "^[[31mred^[[0m");
        check("\x1b]0;title\x07", "^[]0;title^G");
        check("bell\x07 back\x08", "bell^G back^H");
        check("nul\0", "nul^@");
        check("crlf\r\nline", "crlf\r\nline");
        check("over\rwrite", "over^Mwrite");
        check("end\r", "end^M");
        check("del\x7f", "del^?");
        check("csi\u{9b}2J", "csi\\u{9b}2J");
        check("evil\u{202e}txt", "evil\\u{202e}txt");
        check("wide 中文 ok", "wide 中文 ok");
    }

    #[test]
    fn sanitize_borrows_clean_text() {
        assert!(matches!(sanitize("clean\r\n"), Cow::Borrowed(_)));
        assert!(matches!(sanitize("dirty\x1b"), Cow::Owned(_)));
    }

    #[test]
    fn widths_and_truncation() {
        fn check(input: &str, width: usize, expected: &str) {
            assert_eq!(
                truncate_to_width(input, width),
                expected,
                "{input:?} at {width}"
            );
        }
        check("hello", 10, "hello");
        check("hello", 5, "hello");
        check("hello world", 8, "hello w…");
        check("中文中文", 5, "中文…");
        check("中文中文", 4, "中…");
        check("abc", 0, "");
        assert_eq!(display_width("\x1b[1mbold\x1b[0m 中"), 7);
        assert_eq!(char_width('e'), 1);
        assert_eq!(char_width('\u{301}'), 0);
        assert_eq!(char_width('😀'), 2);
    }

    #[test]
    fn colour_follows_no_color_and_terminal() {
        fn check(no_color: Option<&str>, tty: bool, expected: bool) {
            let style = Style::decide(no_color.map(OsString::from), tty);
            assert_eq!(style.color, expected, "NO_COLOR={no_color:?} tty={tty}");
        }
        check(None, true, true);
        check(None, false, false);
        check(Some("1"), true, false);
        check(Some(""), true, true);
    }

    const DIFF: &str = "--- a/f.rs\n+++ b/f.rs\n@@ -1,2 +1,2 @@\n ctx\n-old\n+new\x1b[2J\n";

    #[test]
    fn diff_is_plain_without_colour() {
        let out = render_diff(Style { color: false }, DIFF);
        assert_eq!(
            out,
            "--- a/f.rs\n+++ b/f.rs\n@@ -1,2 +1,2 @@\n   1  ctx\n   2 -old\n   2 +new^[[2J\n"
        );
        let numbered = render_diff(
            Style { color: false },
            "@@ -7,3 +7,2 @@\n a\n-b\n-c\n+d\n e\n",
        );
        assert_eq!(
            numbered,
            "@@ -7,3 +7,2 @@\n   7  a\n   8 -b\n   9 -c\n   8 +d\n  10  e\n"
        );
    }

    #[test]
    fn diff_colours_lines_by_kind() {
        let out = render_diff(Style { color: true }, DIFF);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "\x1b[1m--- a/f.rs\x1b[0m");
        assert_eq!(lines[2], "\x1b[36m@@ -1,2 +1,2 @@\x1b[0m");
        assert_eq!(lines[3], "   1  ctx");
        assert_eq!(lines[4], "   2 \x1b[31m-old\x1b[0m");
        assert_eq!(lines[5], "   2 \x1b[32m+new^[[2J\x1b[0m");
    }

    #[test]
    fn diff_removed_line_in_hunk_that_looks_like_header_is_red() {
        let out = render_diff(Style { color: true }, "@@ -1 +1 @@\n--- x\n");
        assert_eq!(out.lines().nth(1), Some("   1 \x1b[31m--- x\x1b[0m"));
    }

    #[test]
    fn tool_call_line_fits_width() {
        let plain = Style { color: false };
        assert_eq!(
            tool_call_line(plain, "bash", "ls -la", 80),
            "● bash  ls -la"
        );
        assert_eq!(
            tool_call_line(plain, "bash", "echo one\necho two", 80),
            "● bash  echo one …"
        );
        assert_eq!(
            tool_call_line(plain, "bash", "cargo test --all", 12),
            "● bash  car…"
        );
        let coloured = tool_call_line(Style { color: true }, "bash", "ls", 80);
        assert_eq!(coloured, "\x1b[36m●\x1b[0m \x1b[1mbash\x1b[0m  ls");
    }

    #[test]
    fn tool_result_shows_head_and_tail() {
        let plain = Style { color: false };
        let output: String = (1..=10).map(|i| format!("line {i}\n")).collect();
        let out = tool_result_lines(plain, "exit 0", false, &output, None, 80);
        let expected = "  ⎿ exit 0 · 10 lines\n    line 1\n    line 2\n    line 3\n    \
                        … 4 more lines\n    line 8\n    line 9\n    line 10\n";
        assert_eq!(out, expected);
    }

    #[test]
    fn tool_result_short_empty_and_failed() {
        let plain = Style { color: false };
        assert_eq!(
            tool_result_lines(plain, "exit 0", false, "", None, 80),
            "  ⎿ exit 0 · no output\n"
        );
        assert_eq!(
            tool_result_lines(plain, "exit 1", false, "a\tb\x1b[H\n", None, 80),
            "  ⎿ exit 1 · 1 line\n    a    b^[[H\n"
        );
        let red = tool_result_lines(Style { color: true }, "exit 2", true, "x", None, 80);
        assert!(red.starts_with("  ⎿ \x1b[31mexit 2\x1b[0m · 1 line\n"));
        let narrow = tool_result_lines(plain, "ok", false, "abcdefghijkl", None, 10);
        assert_eq!(narrow, "  ⎿ ok · 1 line\n    abcde…\n");
    }

    #[test]
    fn spinner_text() {
        fn check(frame: usize, ms: u64, tokens: u64, expected: &str) {
            let line = spinner_line(frame, "thinking", Duration::from_millis(ms), tokens);
            assert_eq!(line, expected);
        }
        check(0, 3_200, 1_234, "⠋ thinking 3.2s · 1.2k tokens");
        check(1, 500, 0, "⠙ thinking 0.5s");
        check(10, 65_000, 532, "⠋ thinking 1m 05s · 532 tokens");
        check(2, 100, 1, "⠹ thinking 0.1s · 1 token");
        assert_eq!(format_tokens(2_500_000), "2.5M");
        assert_eq!(format_tokens(999_999), "1.0M");
    }

    #[test]
    fn spinner_stop_is_idempotent_and_counts_tokens() {
        let mut spinner = Spinner::start("thinking", Style { color: false });
        spinner.set_tokens(42);
        assert_eq!(spinner.tokens.load(Ordering::Relaxed), 42);
        spinner.stop();
        spinner.stop();
    }
}
