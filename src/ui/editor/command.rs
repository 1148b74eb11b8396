//! Keys → editing commands: what each key (and Ctrl chord) asks the editor to do.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// One editing command, decoded from a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
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

pub fn decode(key: KeyEvent) -> Command {
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
