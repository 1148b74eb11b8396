//! The line editor the REPL reads prompts with: raw-mode key handling, multi-line
//! input, history that persists across runs, and Tab completion through a callback.
//!
//! Editing (buffer, cursor, history) is a pure state machine (`State`) driven by
//! `Command`s, so it is tested without a terminal; `Screen` only draws that state.
//! What a completion means is left to the caller.

use super::term::{
    char_width, display_width, sanitize, strip_ansi, terminal_width, truncate_to_width,
};
use crossterm::cursor::{MoveDown, MoveToColumn, MoveUp};
use crossterm::event::{
    self, DisableBracketedPaste, EnableBracketedPaste, Event, KeyCode, KeyEvent, KeyEventKind,
    KeyModifiers,
};
use crossterm::terminal::{self, Clear, ClearType};
use crossterm::{execute, queue};
use std::borrow::Cow;
use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

/// Entries kept in memory and loaded from the file: plenty to scroll, cheap to load.
const HISTORY_LIMIT: usize = 1000;
/// When the file holds this many lines it is rewritten with the newest `HISTORY_LIMIT`,
/// so it cannot grow without bound.
const HISTORY_COMPACT_AT: usize = 2 * HISTORY_LIMIT;
/// Columns a pasted tab is drawn as (the buffer keeps the tab itself).
const TAB_WIDTH: usize = 4;
/// Rows of completion candidates listed under the input; the rest are counted.
const MAX_LISTING_ROWS: usize = 8;

/// What one `read_line` produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadResult {
    Line(String),
    /// Ctrl-C.
    Interrupted,
    /// Ctrl-D on an empty line.
    Eof,
    /// Shift-Tab, with the text typed so far (the caller switches the permission mode
    /// and reads on with `prefill`).
    ShiftTab(String),
}

/// Leaves raw mode and bracketed paste. For panic hooks; errors are ignored because
/// there is nothing left to do about them.
pub fn restore_terminal() {
    let _ = execute!(io::stdout(), DisableBracketedPaste);
    let _ = terminal::disable_raw_mode();
}

/// `restore_terminal`, and echo and line editing back on (a task turns them off), for
/// the way out when nothing else will restore them: a panic, a signal.
pub fn restore_terminal_fully() {
    restore_terminal();
    super::keys::echo_on();
}

/// Waits for one key press in raw mode, for single-key questions; keys typed before
/// the call (before the question was shown) are dropped first. The terminal is
/// restored before it returns.
pub fn read_key() -> io::Result<KeyEvent> {
    let _raw = RawMode::enter()?;
    super::keys::drop_typed();
    loop {
        if let Event::Key(key) = event::read()?
            && key.kind != KeyEventKind::Release
        {
            return Ok(key);
        }
    }
}

/// Raw mode for as long as it lives; dropping it restores the terminal, also on error.
struct RawMode;

impl RawMode {
    fn enter() -> io::Result<RawMode> {
        terminal::enable_raw_mode()?;
        let guard = RawMode;
        execute!(io::stdout(), EnableBracketedPaste)?;
        Ok(guard)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// The line editor: history plus what it needs between reads.
pub struct Editor {
    state: State,
    /// Text the next read starts with (type-ahead, or a line Shift-Tab interrupted).
    prefill: String,
    history_path: Option<PathBuf>,
    history_error: Option<io::Error>,
}

impl Editor {
    /// Loads the newest entries of the history file, if given. A missing file is an
    /// empty history; other failures are kept for `take_history_error`.
    pub fn new(history_path: Option<PathBuf>) -> Editor {
        let (entries, history_error) = match &history_path {
            Some(path) => match load_history(path) {
                Ok(entries) => (entries, None),
                Err(e) => (Vec::new(), Some(e)),
            },
            None => (Vec::new(), None),
        };
        Editor {
            state: State::new(entries),
            prefill: String::new(),
            history_path,
            history_error,
        }
    }

    /// The first error met reading or writing the history file, once. Editing goes on
    /// without persistence; the REPL decides whether to tell the user.
    pub fn take_history_error(&mut self) -> Option<io::Error> {
        self.history_error.take()
    }

    /// Makes the next read start with `text` in the buffer.
    pub fn prefill(&mut self, text: &str) {
        self.prefill = text.to_string();
    }

    /// Reads one entry. `complete(buffer, cursor)` gets the whole buffer and the cursor
    /// as a byte offset and returns candidates that replace the word before the cursor
    /// (the run of non-whitespace ending there). When stdin is not a terminal, reads a
    /// plain line instead.
    pub fn read_line(
        &mut self,
        prompt: &str,
        complete: &dyn Fn(&str, usize) -> Vec<String>,
    ) -> io::Result<ReadResult> {
        if !io::stdin().is_terminal() {
            return read_plain(prompt);
        }
        let result = {
            let _raw = RawMode::enter()?;
            self.edit(prompt, complete)?
        };
        if let ReadResult::Line(line) = &result {
            self.remember(line);
        }
        Ok(result)
    }

    fn edit(
        &mut self,
        prompt: &str,
        complete: &dyn Fn(&str, usize) -> Vec<String>,
    ) -> io::Result<ReadResult> {
        self.state.start();
        let prefill = std::mem::take(&mut self.prefill);
        self.state.input.insert(&prefill);
        let mut screen = Screen::new(prompt, terminal_width());
        let mut out = io::stdout();
        screen.draw(&mut out, &self.state.input, &[])?;
        loop {
            let step = match event::read()? {
                Event::Key(key) if key.kind != KeyEventKind::Release => {
                    self.state.apply(decode(key))
                }
                Event::Paste(text) => self.state.apply(Command::Insert(normalize_paste(&text))),
                Event::Resize(..) => {
                    screen.resize(terminal_width(), &self.state.input);
                    Step::Continue
                }
                _ => continue,
            };
            let mut listing = Vec::new();
            match step {
                Step::Continue => {}
                Step::Complete => {
                    let input = &mut self.state.input;
                    let candidates = complete(&input.text(), input.byte_cursor());
                    listing = input.complete(&candidates);
                }
                Step::ClearScreen => screen.clear_screen(&mut out)?,
                Step::Done(result) => {
                    screen.finish(&mut out, &self.state.input)?;
                    return Ok(result);
                }
            }
            screen.draw(&mut out, &self.state.input, &listing)?;
        }
    }

    /// Adds an accepted line to history and appends it to the file.
    fn remember(&mut self, line: &str) {
        if !self.state.history.push(line) {
            return;
        }
        let Some(path) = &self.history_path else {
            return;
        };
        if let Err(e) = append_history(path, line) {
            self.history_error.get_or_insert(e);
        }
    }
}

/// Without a terminal there is nothing to edit: show the prompt, read up to a newline.
fn read_plain(prompt: &str) -> io::Result<ReadResult> {
    let mut out = io::stdout();
    write!(out, "{prompt}")?;
    out.flush()?;
    let mut line = String::new();
    if io::stdin().lock().read_line(&mut line)? == 0 {
        return Ok(ReadResult::Eof);
    }
    let trimmed = line.strip_suffix('\n').unwrap_or(&line);
    Ok(ReadResult::Line(
        trimmed.strip_suffix('\r').unwrap_or(trimmed).to_string(),
    ))
}

/// History file: one JSON string per line, so multi-line entries stay one line.
/// Lines that are not JSON strings (edited by hand) are taken as they are.
fn load_history(path: &Path) -> io::Result<Vec<String>> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut entries: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<String>(l).unwrap_or_else(|_| l.to_string()))
        .collect();
    let total = entries.len();
    entries.drain(..total.saturating_sub(HISTORY_LIMIT));
    if total >= HISTORY_COMPACT_AT {
        rewrite_history(path, &entries)?;
    }
    Ok(entries)
}

fn rewrite_history(path: &Path, entries: &[String]) -> io::Result<()> {
    let mut text = String::new();
    for entry in entries {
        text.push_str(&serde_json::to_string(entry)?);
        text.push('\n');
    }
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, text)?;
    fs::rename(&tmp, path)
}

fn append_history(path: &Path, line: &str) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut record = serde_json::to_string(line)?;
    record.push('\n');
    // One write per entry: appends from several nib processes do not interleave.
    options.open(path)?.write_all(record.as_bytes())
}

/// Pasted line breaks arrive as `\r` or `\r\n`; the buffer holds `\n`.
fn normalize_paste(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// One editing command, decoded from a key.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Command {
    Insert(String),
    Left,
    Right,
    WordLeft,
    WordRight,
    LineStart,
    LineEnd,
    Up,
    Down,
    Backspace,
    Delete,
    /// Ctrl-D: end of input on an empty line, else delete forward.
    EofOrDelete,
    KillToEnd,
    KillToStart,
    /// Ctrl-W: back to whitespace.
    KillBigWordBack,
    /// Alt-Backspace: back over one word.
    KillWordBack,
    KillWordForward,
    Yank,
    Newline,
    Enter,
    Complete,
    Interrupt,
    ClearScreen,
    ShiftTab,
    Nothing,
}

fn decode(key: KeyEvent) -> Command {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let alt = key.modifiers.contains(KeyModifiers::ALT);
    match key.code {
        KeyCode::Char(c) if ctrl => decode_ctrl(c),
        KeyCode::Char('b') if alt => Command::WordLeft,
        KeyCode::Char('f') if alt => Command::WordRight,
        KeyCode::Char('d') if alt => Command::KillWordForward,
        KeyCode::Char(_) if alt => Command::Nothing,
        KeyCode::Char(c) => Command::Insert(c.to_string()),
        KeyCode::Enter if alt || ctrl || key.modifiers.contains(KeyModifiers::SHIFT) => {
            Command::Newline
        }
        KeyCode::Enter => Command::Enter,
        KeyCode::Left if ctrl || alt => Command::WordLeft,
        KeyCode::Right if ctrl || alt => Command::WordRight,
        KeyCode::Left => Command::Left,
        KeyCode::Right => Command::Right,
        KeyCode::Home => Command::LineStart,
        KeyCode::End => Command::LineEnd,
        KeyCode::Up => Command::Up,
        KeyCode::Down => Command::Down,
        KeyCode::Backspace if ctrl || alt => Command::KillWordBack,
        KeyCode::Backspace => Command::Backspace,
        KeyCode::Delete => Command::Delete,
        KeyCode::Tab => Command::Complete,
        KeyCode::BackTab => Command::ShiftTab,
        _ => Command::Nothing,
    }
}

fn decode_ctrl(c: char) -> Command {
    match c {
        'a' => Command::LineStart,
        'e' => Command::LineEnd,
        'b' => Command::Left,
        'f' => Command::Right,
        'p' => Command::Up,
        'n' => Command::Down,
        'h' => Command::Backspace,
        'd' => Command::EofOrDelete,
        'k' => Command::KillToEnd,
        'u' => Command::KillToStart,
        'w' => Command::KillBigWordBack,
        'y' => Command::Yank,
        'j' => Command::Newline,
        'c' => Command::Interrupt,
        'l' => Command::ClearScreen,
        _ => Command::Nothing,
    }
}

/// What the loop does after a command.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Continue,
    Complete,
    ClearScreen,
    Done(ReadResult),
}

/// Everything editing changes: the input being typed and the history.
struct State {
    input: Input,
    history: History,
}

impl State {
    fn new(entries: Vec<String>) -> State {
        State {
            input: Input::default(),
            history: History::new(entries),
        }
    }

    /// Begins a new read: empty buffer, history positioned after the newest entry.
    fn start(&mut self) {
        self.input.set("", false);
        self.history.reset();
    }

    fn apply(&mut self, command: Command) -> Step {
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
    fn enter(&mut self) -> Step {
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
    fn up(&mut self) {
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
struct Input {
    chars: Vec<char>,
    cursor: usize,
    /// The last killed text, for Ctrl-Y.
    killed: String,
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

impl Input {
    fn text(&self) -> String {
        self.chars.iter().collect()
    }

    fn byte_cursor(&self) -> usize {
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

    fn insert(&mut self, s: &str) {
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
    fn complete(&mut self, candidates: &[String]) -> Vec<String> {
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
struct History {
    entries: Vec<String>,
    index: usize,
    draft: String,
}

impl History {
    fn new(entries: Vec<String>) -> History {
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
    fn push(&mut self, line: &str) -> bool {
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

/// A screen position relative to the first row of the input area.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pos {
    row: usize,
    col: usize,
}

/// Where the cursor and the end of the text land when the prompt and buffer are
/// printed with the terminal wrapping them at `width`.
#[derive(Debug, PartialEq, Eq)]
struct Layout {
    cursor: Pos,
    end: Pos,
    /// The text filled its last row exactly; the terminal is waiting to wrap.
    end_wrapped: bool,
}

/// How a buffer character is drawn: pasted tabs as spaces, controls made visible.
fn glyph(c: char) -> Cow<'static, str> {
    match c {
        '\t' => Cow::Borrowed(&"        "[..TAB_WIDTH]),
        c if c.is_control() => Cow::Owned(sanitize(&c.to_string()).into_owned()),
        c => Cow::Owned(c.to_string()),
    }
}

fn glyph_width(c: char) -> usize {
    match c {
        '\t' => TAB_WIDTH,
        c if c.is_control() => glyph(c).chars().count(),
        c => char_width(c),
    }
}

/// Continuation lines are indented under the prompt, if the prompt leaves room.
fn indent_width(prompt_width: usize, width: usize) -> usize {
    if prompt_width < width / 2 {
        prompt_width
    } else {
        0
    }
}

/// Advances past a character `w` columns wide, wrapping as terminals do.
fn place(pos: &mut Pos, w: usize, width: usize) {
    if w > 0 && pos.col + w > width {
        pos.row += 1;
        pos.col = 0;
    }
    pos.col += w;
}

/// Where the terminal shows the cursor before a character `w` columns wide.
fn shown_at(pos: Pos, w: usize, width: usize) -> Pos {
    match pos.col + w.max(1) > width {
        true => Pos {
            row: pos.row + 1,
            col: 0,
        },
        false => pos,
    }
}

fn layout(prompt: &str, chars: &[char], cursor: usize, width: usize) -> Layout {
    let width = width.max(1);
    let mut pos = Pos { row: 0, col: 0 };
    let mut prompt_width = 0;
    for c in prompt.chars() {
        place(&mut pos, char_width(c), width);
        prompt_width += char_width(c);
    }
    let indent = indent_width(prompt_width, width);
    let mut cursor_pos = None;
    for (i, &c) in chars.iter().enumerate() {
        let w = if c == '\n' { 1 } else { glyph_width(c) };
        if i == cursor {
            cursor_pos = Some(shown_at(pos, w, width));
        }
        match c {
            '\n' => {
                pos.row += 1;
                pos.col = indent;
            }
            _ => place(&mut pos, w, width),
        }
    }
    let end_wrapped = pos.col >= width;
    let end = shown_at(pos, 1, width);
    Layout {
        cursor: cursor_pos.unwrap_or(end),
        end,
        end_wrapped,
    }
}

/// Lays candidates out in columns, at most `MAX_LISTING_ROWS` rows, each row narrower
/// than the terminal so nothing wraps.
fn listing_rows(candidates: &[String], width: usize) -> Vec<String> {
    let names: Vec<String> = candidates
        .iter()
        .map(|c| sanitize(c).into_owned())
        .collect();
    let widest = names.iter().map(|n| display_width(n)).max();
    let column = widest.unwrap_or(0) + 2;
    let per_row = (width.saturating_sub(1) / column).max(1);
    let mut rows: Vec<String> = names
        .chunks(per_row)
        .map(|chunk| {
            let cells: Vec<String> = chunk
                .iter()
                .map(|n| {
                    let pad = column - display_width(n);
                    format!("{n}{}", " ".repeat(pad))
                })
                .collect();
            cells.concat().trim_end().to_string()
        })
        .collect();
    if rows.len() > MAX_LISTING_ROWS {
        let hidden: usize = rows[MAX_LISTING_ROWS - 1..]
            .iter()
            .map(|r| r.split_whitespace().count())
            .sum();
        rows.truncate(MAX_LISTING_ROWS - 1);
        rows.push(format!("… and {hidden} more"));
    }
    rows.into_iter()
        .map(|r| truncate_to_width(&r, width.saturating_sub(1)).into_owned())
        .collect()
}

/// Draws the input area below whatever was printed before it, redrawing it whole on
/// each change. Remembers which row of the area the cursor is on.
struct Screen<'p> {
    prompt: &'p str,
    plain_prompt: String,
    width: usize,
    cursor_row: usize,
}

impl<'p> Screen<'p> {
    fn new(prompt: &'p str, width: usize) -> Screen<'p> {
        Screen {
            prompt,
            plain_prompt: strip_ansi(prompt).into_owned(),
            width,
            cursor_row: 0,
        }
    }

    fn layout(&self, input: &Input) -> Layout {
        layout(&self.plain_prompt, &input.chars, input.cursor, self.width)
    }

    /// The terminal has re-wrapped what was drawn to its new width and kept the cursor
    /// on its character; work out which row that is now.
    fn resize(&mut self, width: usize, input: &Input) {
        self.width = width;
        self.cursor_row = self.layout(input).cursor.row;
    }

    fn draw(
        &mut self,
        out: &mut impl Write,
        input: &Input,
        candidates: &[String],
    ) -> io::Result<()> {
        let lay = self.layout(input);
        let mut buf = Vec::new();
        self.to_area_top(&mut buf)?;
        buf.extend_from_slice(self.prompt.as_bytes());
        // Cleared after the prompt, not at the area's start: tmux takes an erase from
        // the top-left corner as "clear screen" and copies the screen to its scrollback.
        queue!(buf, Clear(ClearType::FromCursorDown))?;
        let indent = " ".repeat(indent_width(display_width(self.prompt), self.width.max(1)));
        for &c in &input.chars {
            match c {
                '\n' => {
                    buf.extend_from_slice(b"\r\n");
                    buf.extend_from_slice(indent.as_bytes());
                }
                c => buf.extend_from_slice(glyph(c).as_bytes()),
            }
        }
        if lay.end_wrapped {
            // Make the terminal wrap now, so the cursor is where the layout says.
            buf.extend_from_slice(b" \r");
        }
        let mut bottom = lay.end.row;
        for row in listing_rows(candidates, self.width) {
            buf.extend_from_slice(b"\r\n");
            buf.extend_from_slice(row.as_bytes());
            bottom += 1;
        }
        if bottom > lay.cursor.row {
            queue!(buf, MoveUp(to_u16(bottom - lay.cursor.row)))?;
        }
        queue!(buf, MoveToColumn(to_u16(lay.cursor.col)))?;
        self.cursor_row = lay.cursor.row;
        out.write_all(&buf)?;
        out.flush()
    }

    fn to_area_top(&self, buf: &mut Vec<u8>) -> io::Result<()> {
        if self.cursor_row > 0 {
            queue!(buf, MoveUp(to_u16(self.cursor_row)))?;
        }
        buf.push(b'\r');
        Ok(())
    }

    fn clear_screen(&mut self, out: &mut impl Write) -> io::Result<()> {
        queue!(out, Clear(ClearType::All), crossterm::cursor::MoveTo(0, 0))?;
        self.cursor_row = 0;
        Ok(())
    }

    /// Redraws without any listing and leaves the cursor at the start of the line
    /// after the input, where the REPL's output goes.
    fn finish(&mut self, out: &mut impl Write, input: &Input) -> io::Result<()> {
        self.draw(out, input, &[])?;
        let lay = self.layout(input);
        if lay.end.row > lay.cursor.row {
            queue!(out, MoveDown(to_u16(lay.end.row - lay.cursor.row)))?;
        }
        match lay.end_wrapped {
            true => write!(out, "\r")?,
            false => write!(out, "\r\n")?,
        }
        self.cursor_row = 0;
        out.flush()
    }
}

fn to_u16(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;
    use Command::*;

    /// Parses `text` with `|` marking the cursor.
    fn input(marked: &str) -> Input {
        let cursor = marked
            .chars()
            .position(|c| c == '|')
            .expect("cursor marker");
        Input {
            chars: marked.chars().filter(|&c| c != '|').collect(),
            cursor,
            killed: String::new(),
        }
    }

    fn marked(input: &Input) -> String {
        let mut s: String = input.chars[..input.cursor].iter().collect();
        s.push('|');
        s.extend(&input.chars[input.cursor..]);
        s
    }

    fn run(history: &[&str], start: &str, commands: Vec<Command>) -> (State, Vec<Step>) {
        let mut state = State::new(history.iter().map(|s| s.to_string()).collect());
        state.input = input(start);
        let steps = commands.into_iter().map(|c| state.apply(c)).collect();
        (state, steps)
    }

    fn check(start: &str, commands: Vec<Command>, expected: &str) {
        let (state, _) = run(&[], start, commands.clone());
        assert_eq!(
            marked(&state.input),
            expected,
            "{start:?} after {commands:?}"
        );
    }

    #[test]
    fn insert_and_move() {
        check("|", vec![Insert("héllo".into())], "héllo|");
        check("ab|cd", vec![Insert("中".into())], "ab中|cd");
        check("abc|", vec![Left, Left, Insert("X".into())], "aX|bc");
        check("|abc", vec![Left, Right, Right], "ab|c");
        check("abc|", vec![Right], "abc|");
        check("ab|c", vec![LineStart], "|abc");
        check("a|bc", vec![LineEnd], "abc|");
    }

    #[test]
    fn word_jumps() {
        check("hello big_world.rs|", vec![WordLeft], "hello big_world.|rs");
        check(
            "hello big_world.rs|",
            vec![WordLeft, WordLeft],
            "hello |big_world.rs",
        );
        check("|  foo-bar baz", vec![WordRight], "  foo|-bar baz");
        check(
            "|  foo-bar baz",
            vec![WordRight, WordRight],
            "  foo-bar| baz",
        );
        check("foo  |", vec![WordLeft], "|foo  ");
    }

    #[test]
    fn deleting() {
        check("ab|c", vec![Backspace], "a|c");
        check("|abc", vec![Backspace], "|abc");
        check("ab|c", vec![Delete], "ab|");
        check("abc|", vec![Delete], "abc|");
        check("ab|c", vec![EofOrDelete], "ab|");
    }

    #[test]
    fn kill_and_yank() {
        check("one two|", vec![KillToStart], "|");
        check("one t|wo", vec![KillToEnd], "one t|");
        check("cat src/main.rs|", vec![KillBigWordBack], "cat |");
        check("cat src/main.rs|", vec![KillWordBack], "cat src/main.|");
        check("|foo bar", vec![KillWordForward], "| bar");
        check(
            "one two|",
            vec![KillBigWordBack, LineStart, Yank],
            "two|one ",
        );
        check("one\ntw|o\nthree", vec![KillToStart], "one\n|o\nthree");
        check("one|\ntwo", vec![KillToEnd], "one|two");
        check("one\nt|wo", vec![KillToEnd], "one\nt|");
    }

    #[test]
    fn multi_line_cursor_movement() {
        check("one\ntwo|", vec![Up], "one|\ntwo");
        check("longer\nt|w", vec![Up], "l|onger\ntw");
        check("ab\nlong|er", vec![Up], "ab|\nlonger");
        check("a|b\nc", vec![Down], "ab\nc|");
        check("one\n|two", vec![LineEnd], "one\ntwo|");
        check("one\ntw|o", vec![LineStart], "one\n|two");
        check("x|", vec![Newline, Insert("y".into())], "x\ny|");
        check("one\ntwo|", vec![Up, Up], "one|\ntwo");
    }

    #[test]
    fn trailing_backslash_continues_the_line() {
        let (state, steps) = run(&[], "ls \\|", vec![Enter]);
        assert_eq!(steps, vec![Step::Continue]);
        assert_eq!(marked(&state.input), "ls \n|");
        let (_, steps) = run(&[], "a\\b|", vec![Enter]);
        assert_eq!(steps, vec![Step::Done(ReadResult::Line("a\\b".into()))]);
    }

    #[test]
    fn results() {
        let (_, steps) = run(&[], "|", vec![EofOrDelete]);
        assert_eq!(steps, vec![Step::Done(ReadResult::Eof)]);
        let (_, steps) = run(&[], "half|", vec![Interrupt]);
        assert_eq!(steps, vec![Step::Done(ReadResult::Interrupted)]);
        let (_, steps) = run(&[], "one\n|two", vec![Enter]);
        assert_eq!(steps, vec![Step::Done(ReadResult::Line("one\ntwo".into()))]);
    }

    #[test]
    fn history_keeps_the_line_being_typed() {
        let history = ["first", "two\nlines", "third"];
        let table: Vec<(Vec<Command>, &str)> = vec![
            (vec![Up], "third|"),
            (vec![Up, Up], "two|\nlines"),
            (vec![Up, Up, Up], "first|"),
            (vec![Up, Up, Up, Up], "first|"),
            (vec![Up, Up, Down], "two\nlin|es"),
            (vec![Up, Up, Down, Down], "third|"),
            (vec![Up, Down], "draft|"),
            (vec![Down], "dra|ft"),
        ];
        for (commands, expected) in table {
            let (state, _) = run(&history, "dra|ft", commands.clone());
            assert_eq!(marked(&state.input), expected, "after {commands:?}");
        }
    }

    #[test]
    fn history_push_skips_blanks_and_repeats() {
        let mut h = History::new(vec!["a".into()]);
        assert!(!h.push("a"));
        assert!(!h.push("  "));
        assert!(h.push("b"));
        assert_eq!(h.entries, vec!["a", "b"]);
    }

    #[test]
    fn completion() {
        fn check(start: &str, candidates: &[&str], expected: &str, listed: usize) {
            let mut input = input(start);
            let candidates: Vec<String> = candidates.iter().map(|s| s.to_string()).collect();
            let listing = input.complete(&candidates);
            assert_eq!(marked(&input), expected, "{start:?} with {candidates:?}");
            assert_eq!(listing.len(), listed);
        }
        check("/he|", &["/help"], "/help|", 0);
        check("read src/ma| x", &["src/main.rs"], "read src/main.rs| x", 0);
        check("/m|", &["/model", "/models"], "/model|", 2);
        check("/m|", &["/model", "/mode"], "/mode|", 2);
        check("x|", &["apple", "banana"], "x|", 2);
        check("x|", &[], "x|", 0);
        check("é|", &["éa", "éb"], "é|", 2);
    }

    #[test]
    fn completion_gets_byte_cursor() {
        assert_eq!(input("中|x").byte_cursor(), 3);
    }

    #[test]
    fn keys_decode() {
        fn check(code: KeyCode, modifiers: KeyModifiers, expected: Command) {
            assert_eq!(
                decode(KeyEvent::new(code, modifiers)),
                expected,
                "{code:?} {modifiers:?}"
            );
        }
        let none = KeyModifiers::NONE;
        let ctrl = KeyModifiers::CONTROL;
        let alt = KeyModifiers::ALT;
        check(KeyCode::Char('x'), none, Insert("x".into()));
        check(KeyCode::Char('X'), KeyModifiers::SHIFT, Insert("X".into()));
        check(KeyCode::Char('a'), ctrl, LineStart);
        check(KeyCode::Char('c'), ctrl, Interrupt);
        check(KeyCode::Char('j'), ctrl, Newline);
        check(KeyCode::Char('b'), alt, WordLeft);
        check(KeyCode::Char('f'), alt, WordRight);
        check(KeyCode::Left, ctrl, WordLeft);
        check(KeyCode::Right, ctrl, WordRight);
        check(KeyCode::Enter, none, Enter);
        check(KeyCode::Enter, alt, Newline);
        check(KeyCode::Backspace, alt, KillWordBack);
        check(KeyCode::Tab, none, Complete);
        check(KeyCode::Char('q'), alt, Nothing);
    }

    #[test]
    fn paste_line_breaks() {
        assert_eq!(normalize_paste("a\r\nb\rc\n"), "a\nb\nc\n");
    }

    #[test]
    fn layout_wraps_like_a_terminal() {
        fn check(marked_text: &str, width: usize, cursor: (usize, usize), end: (usize, usize)) {
            let inp = input(marked_text);
            let lay = layout("> ", &inp.chars, inp.cursor, width);
            let got = ((lay.cursor.row, lay.cursor.col), (lay.end.row, lay.end.col));
            assert_eq!(got, (cursor, end), "{marked_text:?} at width {width}");
        }
        check("abc|", 10, (0, 5), (0, 5));
        check("a|bc", 10, (0, 3), (0, 5));
        // Exactly full row: the cursor shows on the next row.
        check("abcdefgh|", 10, (1, 0), (1, 0));
        check("abcdefghi|", 10, (1, 1), (1, 1));
        check("abc\nde|", 10, (1, 4), (1, 4));
        // A wide char that does not fit moves whole to the next row.
        check("abcdefg中|", 10, (1, 2), (1, 2));
        check("abcdefg|中", 10, (1, 0), (1, 2));
        check("a\tb|", 10, (0, 8), (0, 8));
        // A pasted escape is drawn as `^[`, two columns.
        check("a\x1b|", 10, (0, 5), (0, 5));
    }

    #[test]
    fn layout_reports_pending_wrap() {
        let inp = input("abcdefgh|");
        assert!(layout("> ", &inp.chars, inp.cursor, 10).end_wrapped);
        let inp = input("abcdefg|");
        assert!(!layout("> ", &inp.chars, inp.cursor, 10).end_wrapped);
    }

    #[test]
    fn listing_fits_the_width() {
        let names: Vec<String> = ["/help", "/model", "/clear"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(listing_rows(&names, 80), vec!["/help   /model  /clear"]);
        assert_eq!(listing_rows(&names, 18), vec!["/help   /model", "/clear"]);
        let many: Vec<String> = (0..40).map(|i| format!("item{i:02}")).collect();
        let rows = listing_rows(&many, 16);
        assert_eq!(rows.len(), MAX_LISTING_ROWS);
        assert_eq!(rows.last().unwrap(), "… and 33 more");
    }

    #[test]
    fn history_file_round_trip() {
        let dir = TempDir::new("history");
        let path = dir.join("sub").join("history");
        assert_eq!(load_history(&path).unwrap(), Vec::<String>::new());
        append_history(&path, "one").unwrap();
        append_history(&path, "two\nlines \"quoted\"").unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2, "one line per entry: {text:?}");
        fs::write(&path, format!("{text}hand written\n")).unwrap();
        let loaded = load_history(&path).unwrap();
        assert_eq!(loaded, vec!["one", "two\nlines \"quoted\"", "hand written"]);
    }

    #[test]
    fn history_file_keeps_the_newest_and_compacts() {
        let dir = TempDir::new("history-big");
        let path = dir.join("history");
        let text: String = (0..HISTORY_COMPACT_AT)
            .map(|i| format!("\"e{i}\"\n"))
            .collect();
        fs::write(&path, text).unwrap();
        let loaded = load_history(&path).unwrap();
        assert_eq!(loaded.len(), HISTORY_LIMIT);
        assert_eq!(
            loaded[0],
            format!("e{}", HISTORY_COMPACT_AT - HISTORY_LIMIT)
        );
        let lines = fs::read_to_string(&path).unwrap().lines().count();
        assert_eq!(lines, HISTORY_LIMIT);
    }
}
