//! The line editor the REPL reads prompts with: raw-mode key handling, multi-line
//! input, history that persists across runs, and Tab completion through a callback.
//!
//! This file holds the `Editor` itself (raw mode, the read loop, the history file).
//! Editing (buffer, cursor, history) is a pure state machine (`state.rs`) driven by
//! `Command`s decoded from keys (`command.rs`), so it is tested without a terminal;
//! `Screen` (`screen.rs`) only draws that state. What a completion means is left to
//! the caller.

mod command;
mod screen;
mod state;

use super::term::terminal_width;
use command::{Command, decode};
use crossterm::event::{
    self, DisableBracketedPaste, EnableBracketedPaste, Event, KeyEvent, KeyEventKind,
};
use crossterm::execute;
use crossterm::terminal;
use screen::Screen;
use state::{State, Step};
use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

/// Entries kept in memory and loaded from the file: plenty to scroll, cheap to load.
const HISTORY_LIMIT: usize = 1000;
/// When the file holds this many lines it is rewritten with the newest `HISTORY_LIMIT`,
/// so it cannot grow without bound.
const HISTORY_COMPACT_AT: usize = 2 * HISTORY_LIMIT;

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

#[cfg(test)]
#[path = "editor_tests.rs"]
mod tests;
