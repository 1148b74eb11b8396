//! Which session the REPL is in: `/clear`, `/resume` and its picker, `/sessions`,
//! `/undo`, and the recap a resumed session opens with. The sessions themselves are
//! `session.rs`'s.

use super::{PROMPT, Repl, say};
use crate::journal;
use crate::model::{Block, Message, Role};
use crate::sessions;
use crate::ui::editor::{Editor, ReadResult};
use crate::ui::term::{self, sanitize};
use std::path::Path;

/// Lines of a resumed session's last prompt and answer shown; enough to remember it.
const RECAP_LINES: usize = 12;
/// Sessions the picker offers; older ones are reached with `/resume ID`.
const PICK_LIMIT: usize = 20;

impl Repl {
    /// The last exchange of a resumed session, so the user knows where they are.
    pub(super) fn recap(&self) {
        let session = self.agent.session();
        let (prompt, answer) = last_exchange(&session.messages);
        self.dim(&format!(
            "── resumed session {} ({})",
            session.id(),
            term::plural(session.messages.len(), "message")
        ));
        let Some(p) = prompt else { return };
        let asked = head_lines(&p, RECAP_LINES);
        say(&format!("{PROMPT}{}", sanitize(&asked)));
        match answer {
            Some(a) => say(&sanitize(&tail_lines(&a, RECAP_LINES))),
            None => self.dim("(no answer: the request failed or was interrupted)"),
        }
    }

    /// `/clear`: a fresh session, empty conversation, zero totals, a new id.
    pub(super) fn clear(&mut self) {
        let endpoint = self.agent.endpoint().clone();
        self.agent.session_mut().clear(&endpoint);
        self.notes.clear();
        self.dim(&format!("new session {}", self.agent.session().id()));
    }

    /// `/resume ID`: the session whose id starts so.
    pub(super) fn resume_id(&mut self, id: &str) -> Result<(), String> {
        let root = self.agent.session().root();
        let path = journal::find_by_prefix(root, id).map_err(|e| e.to_string())?;
        self.resume(&path)
    }

    fn resume(&mut self, path: &Path) -> Result<(), String> {
        self.agent.session_mut().resume(path)?;
        self.notes.clear();
        self.recap();
        Ok(())
    }

    /// The sessions a picker offers: this directory's, newest first, not this one,
    /// not empty.
    fn pickable(&self) -> Vec<sessions::Summary> {
        let session = self.agent.session();
        sessions::list(session.root(), Some(&self.view.workspace.root))
            .into_iter()
            .filter(|s| s.id != session.id() && !s.first_prompt.trim().is_empty())
            .take(PICK_LIMIT)
            .collect()
    }

    pub(super) fn list_sessions(&self) {
        let list = self.pickable();
        if list.is_empty() {
            say("no other sessions in this directory");
        }
        for (i, s) in list.iter().enumerate() {
            say(&session_line(i + 1, s, term::terminal_width()));
        }
    }

    pub(super) fn pick_session(&mut self) {
        let list = self.pickable();
        if list.is_empty() {
            say("no earlier sessions in this directory");
            return;
        }
        self.list_sessions();
        let mut picker = Editor::new(None);
        let read = picker.read_line("resume which? (number or ID, Enter to cancel) ", &|_, _| {
            Vec::new()
        });
        let Ok(ReadResult::Line(answer)) = read else {
            return;
        };
        let answer = answer.trim();
        let chosen = match answer.parse::<usize>() {
            Ok(n) if (1..=list.len()).contains(&n) => Some(list[n - 1].path.clone()),
            _ => list
                .iter()
                .find(|s| !answer.is_empty() && s.id.starts_with(answer))
                .map(|s| s.path.clone()),
        };
        match chosen {
            Some(path) => self.resume(&path).unwrap_or_else(|e| self.warn(&e)),
            None if answer.is_empty() => {}
            None => self.warn(&format!("no session {answer} in the list")),
        }
    }

    pub(super) fn undo(&mut self, count: usize) -> Result<(), String> {
        let journal = self.agent.session_mut().journal_mut().ok_or_else(|| {
            "this session is not saved, so nib has no record of its changes to undo".to_string()
        })?;
        for done in sessions::undo_in(journal, count)? {
            let (path, what) = match &done {
                sessions::Undone::Restored(p) => (p, "restored"),
                sessions::Undone::Deleted(p) => (p, "removed (nib had created it)"),
            };
            say(&format!("{what} {}", sanitize(&path.display().to_string())));
            self.notes.push(format!(
                "[nib: the user undid your last change to {}; it is back as it was before]",
                path.display()
            ));
        }
        Ok(())
    }
}

fn session_line(n: usize, s: &sessions::Summary, width: usize) -> String {
    let line = format!("{n:>3}  {}", sessions::row(s));
    term::truncate_to_width(&sanitize(&line), width.saturating_sub(1)).into_owned()
}

/// The last prompt the user typed and the text the assistant wrote after it (none
/// when that prompt failed: an earlier answer would belong to another question).
fn last_exchange(messages: &[Message]) -> (Option<String>, Option<String>) {
    let text_in = |m: &Message| {
        m.content.iter().rev().find_map(|b| match b {
            Block::Text { text } if !text.trim().is_empty() => Some(text.clone()),
            _ => None,
        })
    };
    let Some(asked) = messages
        .iter()
        .rposition(|m| m.role == Role::User && text_in(m).is_some())
    else {
        return (None, None);
    };
    let answer = messages[asked + 1..]
        .iter()
        .rev()
        .filter(|m| m.role == Role::Assistant)
        .find_map(text_in);
    (text_in(&messages[asked]), answer)
}

fn head_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    match lines.len() > n {
        true => format!("{}\n…", lines[..n].join("\n")),
        false => text.trim_end().to_string(),
    }
}

fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    match lines.len() > n {
        true => format!("…\n{}", lines[lines.len() - n..].join("\n")),
        false => text.trim_end().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ToolCall;

    fn call() -> ToolCall {
        ToolCall {
            id: "c1".into(),
            name: "bash".into(),
            input: serde_json::json!({}),
            invalid: None,
        }
    }

    #[test]
    fn last_exchange_skips_tool_results() {
        let messages = vec![
            Message::user_text("first"),
            Message {
                role: Role::Assistant,
                content: vec![Block::Text {
                    text: "answer one".into(),
                }],
            },
            Message::user_text("second \x1b[2J"),
            Message {
                role: Role::Assistant,
                content: vec![Block::ToolCall(call())],
            },
            Message {
                role: Role::User,
                content: vec![Block::ToolResult {
                    id: "c1".into(),
                    content: "out".into(),
                    is_error: false,
                }],
            },
            Message {
                role: Role::Assistant,
                content: vec![Block::Text {
                    text: "answer two".into(),
                }],
            },
        ];
        let (prompt, answer) = last_exchange(&messages);
        assert_eq!(prompt.as_deref(), Some("second \x1b[2J"));
        assert_eq!(answer.as_deref(), Some("answer two"));
        assert_eq!(last_exchange(&[]), (None, None));
    }

    #[test]
    fn a_failed_last_prompt_has_no_answer() {
        let answered = Message {
            role: Role::Assistant,
            content: vec![Block::Text {
                text: "old answer".into(),
            }],
        };
        let messages = vec![
            Message::user_text("first"),
            answered,
            Message::user_text("failed one"),
        ];
        assert_eq!(
            last_exchange(&messages),
            (Some("failed one".into()), None),
            "an earlier answer belongs to another question"
        );
    }

    #[test]
    fn recap_cuts_long_text() {
        assert_eq!(head_lines("a\nb\nc", 2), "a\nb\n…");
        assert_eq!(tail_lines("a\nb\nc", 2), "…\nb\nc");
        assert_eq!(tail_lines("a\n", 2), "a");
    }
}
