//! The model's text as the REPL shows it while it streams: wrapped at word boundaries
//! to the terminal's width and, when the terminal has colour, a minimal markdown
//! rendering (headings, bold, inline code, fenced blocks, bullet lists) that only
//! restyles: it drops the markers, never a word. Without colour the text is shown as
//! written, only wrapped. Text arrives in arbitrary pieces and leaves word by word;
//! everything shown is made visible by `sanitize` first.

use super::term::{Paint, Style, display_width, sanitize};

/// A line starts with at most this many columns of markers and spaces before its kind
/// is known (`   - `, `###### `, a fence); longer runs are ordinary text.
const LINE_START: usize = 10;

/// What the current source line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Not decided yet: too little of it has arrived.
    Unknown,
    Text,
    Heading,
    /// A fence line (```), or a line inside a fenced block: shown as it is.
    Code,
}

pub struct Markdown {
    style: Style,
    width: usize,
    /// Text received and not yet shown: the rest of an undecided line start, or a
    /// partial word.
    pending: String,
    kind: Kind,
    in_fence: bool,
    bold: bool,
    code: bool,
    /// Columns used on the screen line.
    col: usize,
    /// Spaces not shown yet: they are shown before the next word when it fits on the
    /// line, and become the line break when it does not.
    spaces: String,
    /// A `\r` that ended a piece, kept until the next shows whether `\n` follows.
    held_cr: bool,
    /// Where wrapped lines of this source line start (under a bullet's text).
    indent: usize,
}

impl Markdown {
    pub fn new(style: Style, width: usize) -> Markdown {
        Markdown {
            style,
            width: width.max(20),
            pending: String::new(),
            kind: Kind::Unknown,
            in_fence: false,
            bold: false,
            code: false,
            col: 0,
            spaces: String::new(),
            held_cr: false,
            indent: 0,
        }
    }

    /// Takes a piece of streamed text; returns what can be shown now.
    pub fn push(&mut self, piece: &str) -> String {
        if std::mem::take(&mut self.held_cr) {
            self.pending.push('\r');
        }
        match piece.strip_suffix('\r') {
            Some(rest) => {
                self.held_cr = true;
                self.pending.push_str(rest);
            }
            None => self.pending.push_str(piece),
        }
        self.drain(false)
    }

    /// Shows whatever is still held (the reply ended); the next text starts afresh.
    pub fn finish(&mut self) -> String {
        if std::mem::take(&mut self.held_cr) {
            self.pending.push('\r');
        }
        let out = self.drain(true);
        self.in_fence = false;
        self.spaces.clear();
        out
    }

    fn drain(&mut self, all: bool) -> String {
        // A line break is `\n`; in `\r\n` the `\r` goes (a lone one is shown as `^M`).
        if self.pending.contains("\r\n") {
            self.pending = self.pending.replace("\r\n", "\n");
        }
        let mut out = String::new();
        loop {
            if self.kind == Kind::Unknown && !self.decide(all, &mut out) {
                return out;
            }
            let Some(end) = self.next_unit(all) else {
                return out;
            };
            let unit: String = self.pending.drain(..end).collect();
            self.show(&unit, &mut out);
        }
    }

    /// Decides the current line's kind from its start and shows its marker; false
    /// when more text is needed.
    fn decide(&mut self, all: bool, out: &mut String) -> bool {
        if self.pending.is_empty() {
            return false;
        }
        let line = self.pending.split('\n').next().unwrap_or("");
        let complete = self.pending.contains('\n') || all;
        let trimmed = line.trim_start_matches(' ');
        let lead = line.len() - trimmed.len();
        if self.in_fence || trimmed.starts_with("```") {
            if !complete {
                return false;
            }
            self.kind = Kind::Code;
            return true;
        }
        let undecided = !complete
            && line.len() < LINE_START
            && trimmed
                .chars()
                .all(|c| matches!(c, '#' | '-' | '*' | '+' | '`'));
        if undecided {
            return false;
        }
        self.kind = Kind::Text;
        if !self.style.color {
            return true;
        }
        let hashes = trimmed.chars().take_while(|&c| c == '#').count();
        if (1..=6).contains(&hashes) && trimmed[hashes..].starts_with(' ') {
            self.kind = Kind::Heading;
            self.pending.drain(..lead + hashes + 1);
        } else if ["- ", "* ", "+ "].iter().any(|m| trimmed.starts_with(m)) {
            self.pending.drain(..lead + 2);
            let bullet = format!("{}• ", " ".repeat(lead));
            self.col = display_width(&bullet);
            self.indent = self.col;
            out.push_str(&bullet);
        }
        true
    }

    /// The end of the next piece to show: a whole line for code, else a word, a run of
    /// spaces, or a line break. `None` when it has not all arrived.
    fn next_unit(&self, all: bool) -> Option<usize> {
        let p = &self.pending;
        let first = p.chars().next()?;
        if self.kind == Kind::Code {
            return match p.find('\n') {
                Some(i) => Some(i + 1),
                None => all.then_some(p.len()),
            };
        }
        let end = match first {
            '\n' => Some(1),
            ' ' => Some(p.find(|c| c != ' ').unwrap_or(p.len())),
            _ => p.find([' ', '\n']),
        };
        // A word longer than a line is shown as it comes; else it waits for its end.
        end.or_else(|| (all || display_width(p) >= self.width).then_some(p.len()))
    }

    fn show(&mut self, unit: &str, out: &mut String) {
        match (self.kind, unit) {
            (Kind::Code, line) => self.show_code(line, out),
            (_, "\n") => self.end_line(out),
            (_, spaces) if spaces.starts_with(' ') => self.spaces.push_str(spaces),
            (_, word) => self.show_word(word, out),
        }
    }

    fn show_word(&mut self, word: &str, out: &mut String) {
        let (text, styled) = self.inline(word);
        let clean = sanitize(&text);
        let w = display_width(&clean);
        let spaces = std::mem::take(&mut self.spaces);
        if self.col > self.indent && self.col + spaces.len() + w > self.width {
            out.push('\n');
            out.push_str(&" ".repeat(self.indent));
            self.col = self.indent;
        } else {
            out.push_str(&spaces);
            self.col += spaces.len();
        }
        out.push_str(&styled.unwrap_or_else(|| clean.into_owned()));
        // A word longer than the line wraps on the terminal by itself.
        self.col = match self.col + w {
            c if c > self.width => c % self.width,
            c => c,
        };
    }

    /// A word without its markdown markers, and how it is painted (`None`: plain).
    /// Markers toggle bold (`**`) and inline code (`` ` ``) for what follows them.
    fn inline(&mut self, word: &str) -> (String, Option<String>) {
        if !self.style.color {
            return (word.to_string(), None);
        }
        let mut text = String::new();
        let mut painted = String::new();
        let mut rest = word;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('`') {
                self.code = !self.code;
                rest = after;
                continue;
            }
            if let Some(after) = rest.strip_prefix("**").filter(|_| !self.code) {
                self.bold = !self.bold;
                rest = after;
                continue;
            }
            let end = rest
                .char_indices()
                .skip(1)
                .find(|(_, c)| matches!(c, '`' | '*'))
                .map_or(rest.len(), |(i, _)| i);
            let part = &rest[..end];
            text.push_str(part);
            let clean = sanitize(part);
            let shown = match (self.code, self.bold || self.kind == Kind::Heading) {
                (true, _) => self.style.paint(Paint::Cyan, &clean),
                (false, true) => self.style.paint(Paint::Bold, &clean),
                (false, false) => clean.into_owned(),
            };
            painted.push_str(&shown);
            rest = &rest[end..];
        }
        (text, Some(painted))
    }

    /// A fence line or a line of a fenced block. With colour, a fence shows only its
    /// language (dimmed; an empty fence no line at all) and code is indented and cyan.
    fn show_code(&mut self, line: &str, out: &mut String) {
        let body = line.strip_suffix('\n').unwrap_or(line);
        let fence = body.trim_start().strip_prefix("```");
        if fence.is_some() {
            self.in_fence = !self.in_fence;
        }
        let shown = match (self.style.color, fence) {
            (false, _) => sanitize(body).into_owned(),
            (true, Some(info)) if info.trim().is_empty() => {
                self.kind = Kind::Unknown;
                return;
            }
            (true, Some(info)) => self.style.paint(Paint::Dim, &sanitize(info.trim())),
            (true, None) => format!("  {}", self.style.paint(Paint::Cyan, &sanitize(body))),
        };
        self.col = display_width(&shown);
        out.push_str(&shown);
        if line.ends_with('\n') {
            self.end_line(out);
        }
    }

    fn end_line(&mut self, out: &mut String) {
        out.push('\n');
        self.col = 0;
        self.indent = 0;
        self.spaces.clear();
        self.kind = Kind::Unknown;
        self.bold = false;
        self.code = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::term::strip_ansi;

    fn render(style: Style, width: usize, pieces: &[&str]) -> String {
        let mut md = Markdown::new(style, width);
        let mut out: String = pieces.iter().map(|p| md.push(p)).collect();
        out.push_str(&md.finish());
        out
    }

    fn words(text: &str) -> Vec<String> {
        text.split_whitespace().map(String::from).collect()
    }

    const COLOR: Style = Style { color: true };
    const PLAIN: Style = Style { color: false };

    #[test]
    fn markers_go_and_words_stay() {
        fn check(input: &str, expected: &str) {
            let shown = render(COLOR, 80, &[input]);
            assert_eq!(strip_ansi(&shown), expected, "{input:?}");
        }
        check("# Title\nbody", "Title\nbody");
        check("### Deep heading", "Deep heading");
        check("**bold** and `code` here", "bold and code here");
        check("- one\n- two", "• one\n• two");
        check("  * nested", "  • nested");
        check(
            "```rust\nlet **x** = 1;\n```\nafter",
            "rust\n  let **x** = 1;\nafter",
        );
        check("```\ncode\n```\n", "  code\n");
        check("#hashtag stays", "#hashtag stays");
        check("a - b * c", "a - b * c");
        check("2 * 3 = 6", "2 * 3 = 6");
        check("esc \x1b[2J gone", "esc ^[[2J gone");
        // Without colour the text is as written.
        assert_eq!(render(PLAIN, 80, &["# T\n**b** `c`"]), "# T\n**b** `c`");
        assert_eq!(render(PLAIN, 80, &["```sh\nls\n```\n"]), "```sh\nls\n```\n");
        assert_eq!(render(PLAIN, 80, &["```sh\nls\n```\n"]), "```sh\nls\n```\n");
    }

    #[test]
    fn styles_are_painted() {
        let shown = render(COLOR, 80, &["# Title\n**bold** `code`"]);
        assert!(shown.contains("\x1b[1mTitle\x1b[0m"), "{shown:?}");
        assert!(shown.contains("\x1b[1mbold\x1b[0m"), "{shown:?}");
        assert!(shown.contains("\x1b[36mcode\x1b[0m"), "{shown:?}");
    }

    #[test]
    fn wraps_at_word_boundaries_whatever_the_pieces() {
        let text = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi \
                    omicron pi rho sigma tau upsilon phi chi psi omega";
        for size in [1, 2, 3, 5, 7, 200] {
            let pieces: Vec<String> = text
                .chars()
                .collect::<Vec<_>>()
                .chunks(size)
                .map(|c| c.iter().collect())
                .collect();
            let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
            let shown = render(PLAIN, 24, &refs);
            assert_eq!(words(&shown), words(text), "pieces of {size}");
            for line in shown.lines() {
                assert!(display_width(line) <= 24, "{line:?} in\n{shown}");
                for w in words(line) {
                    assert!(text.split(' ').any(|t| t == w), "{w:?} was cut");
                }
            }
        }
    }

    #[test]
    fn bullets_wrap_under_their_text_and_long_words_break() {
        let shown = render(COLOR, 20, &["- aaaa bbbb cccc dddd eeee"]);
        assert_eq!(strip_ansi(&shown), "• aaaa bbbb cccc\n  dddd eeee");
        let long = "x".repeat(45);
        let shown = render(PLAIN, 20, &[&long]);
        assert_eq!(shown.replace('\n', ""), long);
    }

    #[test]
    fn line_breaks_split_across_pieces() {
        assert_eq!(render(PLAIN, 80, &["a\r", "\nb"]), "a\nb");
        assert_eq!(render(PLAIN, 80, &["a\r", "b"]), "a^Mb");
    }
}
