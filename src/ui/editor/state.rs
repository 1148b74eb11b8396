//! What editing changes, without a terminal: the buffer and its cursor (`Input`), the
//! history being browsed (`History`), and the state machine (`State`) that applies one
//! `Command` at a time and says what the loop does next (`Step`).

use super::HISTORY_LIMIT;
use super::ReadResult;
use super::command::Command;

/// What the loop does after a command.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Continue,
    Complete,
    ClearScreen,
    Done(ReadResult),
}

/// Everything editing changes: the input being typed and the history.
pub struct State {
    pub input: Input,
    pub history: History,
}

impl State {
    pub fn new(entries: Vec<String>) -> State {
        State {
            input: Input::default(),
            history: History::new(entries),
        }
    }

    /// Begins a new read: empty buffer, history positioned after the newest entry.
    pub fn start(&mut self) {
        self.input.set("", false);
        self.history.reset();
    }

    pub fn apply(&mut self, command: Command) -> Step {
        let input = &mut self.input;
        match command {
            Command::Insert(s) => input.insert(&s),
            Command::Left => input.cursor = input.cursor.saturating_sub(1),
            Command::Right => input.cursor = (input.cursor + 1).min(input.chars.len()),
            Command::WordLeft => input.cursor = input.word_left(),
            Command::WordRight => input.cursor = input.word_right(),
            Command::LineStart => input.cursor = input.line_start(),
            Command::LineEnd => input.cursor = input.line_end(),
            Command::Up => self.up(),
            Command::Down => self.down(),
            Command::Backspace => input.kill(input.cursor.saturating_sub(1), input.cursor, false),
            Command::Delete => input.kill(input.cursor, input.cursor + 1, false),
            Command::EofOrDelete if input.chars.is_empty() => return Step::Done(ReadResult::Eof),
            Command::EofOrDelete => input.kill(input.cursor, input.cursor + 1, false),
            Command::KillToEnd => input.kill_to_end(),
            Command::KillToStart => input.kill(input.line_start(), input.cursor, true),
            Command::KillBigWordBack => input.kill(input.big_word_left(), input.cursor, true),
            Command::KillWordBack => input.kill(input.word_left(), input.cursor, true),
            Command::KillWordForward => input.kill(input.cursor, input.word_right(), true),
            Command::Yank => input.insert(&input.killed.clone()),
            Command::Newline => input.insert("\n"),
            Command::Enter => return self.enter(),
            Command::Complete => return Step::Complete,
            Command::Interrupt => return Step::Done(ReadResult::Interrupted),
            Command::ClearScreen => return Step::ClearScreen,
            Command::ShiftTab => return Step::Done(ReadResult::ShiftTab(input.text())),
            Command::Nothing => {}
        }
        Step::Continue
    }

    /// Submits, unless the buffer ends in `\`: then the backslash becomes a newline.
    pub fn enter(&mut self) -> Step {
        let input = &mut self.input;
        if input.chars.last() == Some(&'\\') {
            input.chars.pop();
            input.chars.push('\n');
            input.cursor = input.chars.len();
            return Step::Continue;
        }
        Step::Done(ReadResult::Line(input.text()))
    }

    /// Up a line inside a multi-line buffer, else to the previous history entry.
    pub fn up(&mut self) {
        if self.input.line_up() {
            return;
        }
        let current = self.input.text();
        if let Some(entry) = self.history.older(&current) {
            // On the first line, so the next Up goes on back through history.
            self.input.set(entry, true);
        }
    }

    fn down(&mut self) {
        if self.input.line_down() {
            return;
        }
        if let Some(entry) = self.history.newer() {
            self.input.set(entry, false);
        }
    }
}

/// The buffer being edited, with the cursor as a char index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Input {
    pub chars: Vec<char>,
    pub cursor: usize,
    /// The last killed text, for Ctrl-Y.
    pub killed: String,
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

impl Input {
    pub fn text(&self) -> String {
        self.chars.iter().collect()
    }

    pub fn byte_cursor(&self) -> usize {
        self.chars[..self.cursor].iter().map(|c| c.len_utf8()).sum()
    }

    /// Replaces the buffer; the cursor goes to the end of its first line or of all of it.
    fn set(&mut self, text: &str, cursor_on_first_line: bool) {
        self.chars = text.chars().collect();
        self.cursor = match cursor_on_first_line {
            true => self.chars.iter().position(|&c| c == '\n'),
            false => None,
        }
        .unwrap_or(self.chars.len());
    }

    pub fn insert(&mut self, s: &str) {
        let at = self.cursor;
        self.chars.splice(at..at, s.chars());
        self.cursor += s.chars().count();
    }

    /// Removes `from..to` (clamped) and leaves the cursor at `from`; `save` keeps it for Ctrl-Y.
    fn kill(&mut self, from: usize, to: usize, save: bool) {
        let to = to.min(self.chars.len());
        if from >= to {
            return;
        }
        let gone: String = self.chars.drain(from..to).collect();
        if save {
            self.killed = gone;
        }
        self.cursor = from;
    }

    /// Ctrl-K: to the end of the line; at the end of a line, joins the next one.
    fn kill_to_end(&mut self) {
        let end = self.line_end();
        let end = if end == self.cursor { end + 1 } else { end };
        self.kill(self.cursor, end, true);
    }

    fn word_left(&self) -> usize {
        let mut i = self.cursor;
        while i > 0 && !is_word(self.chars[i - 1]) {
            i -= 1;
        }
        while i > 0 && is_word(self.chars[i - 1]) {
            i -= 1;
        }
        i
    }

    fn word_right(&self) -> usize {
        let mut i = self.cursor;
        let n = self.chars.len();
        while i < n && !is_word(self.chars[i]) {
            i += 1;
        }
        while i < n && is_word(self.chars[i]) {
            i += 1;
        }
        i
    }

    fn big_word_left(&self) -> usize {
        let mut i = self.cursor;
        while i > 0 && self.chars[i - 1].is_whitespace() {
            i -= 1;
        }
        while i > 0 && !self.chars[i - 1].is_whitespace() {
            i -= 1;
        }
        i
    }

    fn line_start(&self) -> usize {
        self.chars[..self.cursor]
            .iter()
            .rposition(|&c| c == '\n')
            .map_or(0, |i| i + 1)
    }

    fn line_end(&self) -> usize {
        self.chars[self.cursor..]
            .iter()
            .position(|&c| c == '\n')
            .map_or(self.chars.len(), |i| self.cursor + i)
    }

    /// Moves to the same column of the previous line; false on the first line.
    fn line_up(&mut self) -> bool {
        let start = self.line_start();
        if start == 0 {
            return false;
        }
        let column = self.cursor - start;
        self.cursor = start - 1;
        let above = self.line_start();
        self.cursor = above + column.min(start - 1 - above);
        true
    }

    /// Moves to the same column of the next line; false on the last line.
    fn line_down(&mut self) -> bool {
        let end = self.line_end();
        if end == self.chars.len() {
            return false;
        }
        let column = self.cursor - self.line_start();
        self.cursor = end + 1;
        let below_end = self.line_end();
        self.cursor = (end + 1 + column).min(below_end);
        true
    }

    /// Applies completion candidates to the word before the cursor: one replaces it,
    /// several extend it to their common prefix. Returns what to list (several only).
    pub fn complete(&mut self, candidates: &[String]) -> Vec<String> {
        let start = self.big_word_left_of_cursor();
        let word: String = self.chars[start..self.cursor].iter().collect();
        let replacement = match candidates {
            [] => return Vec::new(),
            [one] => one.clone(),
            many => common_prefix(many),
        };
        let extends = replacement.starts_with(&word) && replacement.len() > word.len();
        if candidates.len() == 1 || extends {
            self.kill(start, self.cursor, false);
            self.insert(&replacement);
        }
        match candidates.len() {
            1 => Vec::new(),
            _ => candidates.to_vec(),
        }
    }

    fn big_word_left_of_cursor(&self) -> usize {
        self.chars[..self.cursor]
            .iter()
            .rposition(|c| c.is_whitespace())
            .map_or(0, |i| i + 1)
    }
}

fn common_prefix(words: &[String]) -> String {
    let first = &words[0];
    let mut len = first.len();
    for w in &words[1..] {
        len = first
            .char_indices()
            .zip(w.chars())
            .take_while(|((_, a), b)| a == b)
            .last()
            .map_or(0, |((i, a), _)| i + a.len_utf8())
            .min(len);
    }
    first[..len].to_string()
}

/// Entries oldest first, and where Up/Down has got to. `index == entries.len()` is the
/// line being typed, kept in `draft` while browsing.
pub struct History {
    pub entries: Vec<String>,
    index: usize,
    draft: String,
}

impl History {
    pub fn new(entries: Vec<String>) -> History {
        let index = entries.len();
        History {
            entries,
            index,
            draft: String::new(),
        }
    }

    fn reset(&mut self) {
        self.index = self.entries.len();
        self.draft.clear();
    }

    fn older(&mut self, current: &str) -> Option<&str> {
        if self.index == 0 {
            return None;
        }
        if self.index == self.entries.len() {
            self.draft = current.to_string();
        }
        self.index -= 1;
        Some(&self.entries[self.index])
    }

    fn newer(&mut self) -> Option<&str> {
        if self.index >= self.entries.len() {
            return None;
        }
        self.index += 1;
        match self.entries.get(self.index) {
            Some(entry) => Some(entry),
            None => Some(&self.draft),
        }
    }

    /// Adds an accepted line; false for blank lines and repeats of the newest entry.
    pub fn push(&mut self, line: &str) -> bool {
        if line.trim().is_empty() || self.entries.last().is_some_and(|l| l == line) {
            return false;
        }
        self.entries.push(line.to_string());
        if self.entries.len() > HISTORY_LIMIT {
            self.entries.remove(0);
        }
        self.reset();
        true
    }
}
