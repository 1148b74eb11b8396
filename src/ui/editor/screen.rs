//! Drawing the input: where the prompt and buffer land when the terminal wraps them
//! (`layout`), the completion listing under them, and `Screen`, which redraws only the
//! input area.

use super::state::Input;
/// Columns a pasted tab is drawn as (the buffer keeps the tab itself).
use crate::ui::term::{char_width, display_width, sanitize, strip_ansi, truncate_to_width};
use crossterm::cursor::{MoveDown, MoveToColumn, MoveUp};
use crossterm::queue;
use crossterm::terminal::{Clear, ClearType};
use std::borrow::Cow;
use std::io::{self, Write};

const TAB_WIDTH: usize = 4;
/// Rows of completion candidates listed under the input; the rest are counted.
pub const MAX_LISTING_ROWS: usize = 8;

/// A screen position relative to the first row of the input area.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pos {
    pub row: usize,
    pub col: usize,
}

/// Where the cursor and the end of the text land when the prompt and buffer are
/// printed with the terminal wrapping them at `width`.
#[derive(Debug, PartialEq, Eq)]
pub struct Layout {
    pub cursor: Pos,
    pub end: Pos,
    /// The text filled its last row exactly; the terminal is waiting to wrap.
    pub end_wrapped: bool,
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

pub fn layout(prompt: &str, chars: &[char], cursor: usize, width: usize) -> Layout {
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
pub fn listing_rows(candidates: &[String], width: usize) -> Vec<String> {
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
pub struct Screen<'p> {
    prompt: &'p str,
    plain_prompt: String,
    width: usize,
    cursor_row: usize,
}

impl<'p> Screen<'p> {
    pub fn new(prompt: &'p str, width: usize) -> Screen<'p> {
        Screen {
            prompt,
            plain_prompt: strip_ansi(prompt).into_owned(),
            width,
            cursor_row: 0,
        }
    }

    pub fn layout(&self, input: &Input) -> Layout {
        layout(&self.plain_prompt, &input.chars, input.cursor, self.width)
    }

    /// The terminal has re-wrapped what was drawn to its new width and kept the cursor
    /// on its character; work out which row that is now.
    pub fn resize(&mut self, width: usize, input: &Input) {
        self.width = width;
        self.cursor_row = self.layout(input).cursor.row;
    }

    pub fn draw(
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

    pub fn clear_screen(&mut self, out: &mut impl Write) -> io::Result<()> {
        queue!(out, Clear(ClearType::All), crossterm::cursor::MoveTo(0, 0))?;
        self.cursor_row = 0;
        Ok(())
    }

    /// Redraws without any listing and leaves the cursor at the start of the line
    /// after the input, where the REPL's output goes.
    pub fn finish(&mut self, out: &mut impl Write, input: &Input) -> io::Result<()> {
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
