//! The approval question: what would run, shown in full before anyone says yes (a
//! command made visible; a write's content or its diff against the file on disk; an
//! edit's diff with line numbers), then one key for the answer. Keys typed before the
//! question was shown never answer it; "always" answers are offered only when the rule
//! they add would take effect; saving a rule to disk asks for Enter first. Also the
//! question whether to trust a folder whose own settings would allow tools.

use super::editor::{self, Editor, ReadResult};
use super::term::{self, Paint, Style, sanitize};
use super::view::{DIFF_INDENT, View, capped_diff, indent};
use crate::agent::{Answer, Approval};
use crate::approval::Gate;
use crate::tools::Action;
use crate::tools::fs::Plan;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::path::Path;
use std::sync::atomic::Ordering;

/// Where a "project" answer is saved (Claude Code's personal settings file).
pub const PROJECT_SETTINGS: &str = ".claude/settings.local.json";
/// Lines shown from each end of a new file's content; the rest are counted.
const NEW_FILE_LINES: usize = 8;

/// A key's meaning at the approval question.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    Once,
    Session,
    Project,
    No,
    /// Ctrl-C: refuse and stop the task.
    Interrupt,
}

impl Choice {
    /// The key and what it means, as echoed after the answer.
    fn said(self, rule: &str) -> String {
        match self {
            Choice::Once => "y · yes, once".to_string(),
            Choice::Session => format!("a · yes, and always this session: {}", sanitize(rule)),
            Choice::Project => format!("p · yes, and always in this project: {}", sanitize(rule)),
            Choice::No => "n · no".to_string(),
            Choice::Interrupt => "no, and stop".to_string(),
        }
    }
}

/// The key's meaning; `lasting`: the "always" answers are on offer.
pub fn choice_for(key: &KeyEvent, lasting: bool) -> Option<Choice> {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    match key.code {
        KeyCode::Char('c' | 'd') if ctrl => Some(Choice::Interrupt),
        KeyCode::Char('y' | 'Y') => Some(Choice::Once),
        KeyCode::Char('a' | 'A') if lasting => Some(Choice::Session),
        KeyCode::Char('p' | 'P') if lasting => Some(Choice::Project),
        KeyCode::Char('n' | 'N') | KeyCode::Esc => Some(Choice::No),
        _ => None,
    }
}

/// Whether an "always" answer would do what it says: the suggested rule exists and is
/// the one that would let this action run (an ask rule or a protected path decides
/// otherwise, and then the rule would be saved for nothing).
pub fn lasting(request: &Approval<'_>) -> bool {
    request.suggestion.is_some() && request.allowed_by == request.suggestion
}

/// Asks, with the keyboard taken from the task's watch for as long as it takes.
pub fn ask(view: &mut View, request: &Approval<'_>) -> Answer {
    view.stop_spin();
    view.end_line();
    let keys = view.keys.take();
    let paused = keys.as_ref().map(|k| k.pause());
    let lasting = lasting(request);
    let preview = preview(view.style, request.plan);
    let width = term::terminal_width();
    let question = approval_text(view.style, request, &view.workspace.root, width, &preview);
    view.write(&question);
    let rule = request.suggestion.clone().unwrap_or_default();
    let choice = loop {
        let Ok(key) = editor::read_key() else {
            break Choice::Interrupt;
        };
        match choice_for(&key, lasting) {
            Some(Choice::Project) if !confirm_save(view, &rule) => continue,
            Some(choice) => break choice,
            None => continue,
        }
    };
    let answer = answer(view, choice, rule);
    if let (Answer::Once | Answer::Session(_) | Answer::Project(_), Some(Ok(plan))) =
        (&answer, request.plan)
    {
        view.previewed = Some(plan.diff().to_string());
    }
    drop(paused);
    view.keys = keys;
    answer
}

/// A folder whose own settings would allow tools or set the mode: shows what they
/// would apply and asks once (the answer is kept in nib's data directory).
pub fn ask_trust(view: &mut View, gate: &mut Gate) {
    let held = gate.trust_question().to_vec();
    if held.is_empty() {
        return;
    }
    // Keys typed before the question is shown never answer it.
    super::keys::drop_typed();
    let title = "? trust this folder? Its own settings would apply:";
    view.line(&view.style.paint(Paint::Yellow, title));
    for h in &held {
        for rule in &h.allow {
            view.line(&sanitize(&format!("    allow {rule}  ({})", h.file)));
        }
        if let Some(mode) = &h.mode {
            view.line(&sanitize(&format!("    defaultMode {mode}  ({})", h.file)));
        }
    }
    view.line("  [y] yes, trust it · [n] no (its deny and ask rules apply either way)");
    let trusted = loop {
        let Ok(key) = editor::read_key() else {
            break false;
        };
        if let Some(choice) = choice_for(&key, false) {
            break choice == Choice::Once;
        }
    };
    let said = match trusted {
        true => "  → trusted: its rules apply",
        false => {
            "  → not trusted: its allow rules and defaultMode are ignored (nib trust changes that)"
        }
    };
    view.line(&view.style.paint(Paint::Dim, said));
    if let Err(e) = gate.answer_trust(trusted) {
        let warning = format!("nib: {}", sanitize(&e));
        view.line(&view.style.paint(Paint::Yellow, &warning));
    }
}

/// `p` writes a file: Enter confirms, any other key goes back to the question.
fn confirm_save(view: &mut View, rule: &str) -> bool {
    let line = format!(
        "  save {} to {PROJECT_SETTINGS}? Enter saves it · any other key: back to the question",
        sanitize(rule)
    );
    view.line(&view.style.paint(Paint::Yellow, &line));
    let confirmed = editor::read_key().is_ok_and(|k| k.code == KeyCode::Enter);
    if !confirmed {
        view.line(
            &view
                .style
                .paint(Paint::Dim, "  not saved; answer y, n, a or p"),
        );
    }
    confirmed
}

fn answer(view: &mut View, choice: Choice, rule: String) -> Answer {
    let echo = format!("  → {}", choice.said(&rule));
    view.line(&view.style.paint(Paint::Dim, &echo));
    match choice {
        Choice::Once => Answer::Once,
        Choice::Session => {
            view.rules.push(rule.clone());
            Answer::Session(rule)
        }
        Choice::Project => {
            view.rules
                .push(format!("{rule} (saved to {PROJECT_SETTINGS})"));
            Answer::Project(rule)
        }
        Choice::No => {
            let mut asker = Editor::new(None);
            let read =
                asker.read_line("  tell the model why (Enter to skip): ", &|_, _| Vec::new());
            let message = match read {
                Ok(ReadResult::Line(m)) => m,
                _ => String::new(),
            };
            Answer::Deny(denial(&message))
        }
        Choice::Interrupt => {
            view.cancel.store(true, Ordering::SeqCst);
            Answer::Deny("denied: the user refused this call and stopped the task".into())
        }
    }
}

/// The tool result a refusal gives the model.
pub fn denial(message: &str) -> String {
    match message.trim() {
        "" => {
            "denied: the user refused this call. Do not retry it; ask the user or find another way."
                .to_string()
        }
        m => format!("denied: the user refused this call and said: {m}"),
    }
}

/// What a write or edit would change, for the question: a new file's first and last
/// lines, else the diff against the file on disk, through the renderer used after it
/// ran; or why it would fail. Empty for other tools.
pub fn preview(style: Style, plan: Option<&Result<Plan, String>>) -> String {
    let text = match plan {
        None => return String::new(),
        Some(Ok(p)) => match &p.change {
            None => style.paint(
                Paint::Dim,
                "(no change: the file already has this content)\n",
            ),
            Some(c) if c.before.is_none() => new_file(style, p.after()),
            Some(_) => capped_diff(style, p.diff()),
        },
        Some(Err(why)) => style.paint(
            Paint::Yellow,
            &format!("(this will fail: {})\n", sanitize(why)),
        ),
    };
    indent(&text, DIFF_INDENT)
}

/// A new file's content: its first and last lines, the rest counted.
fn new_file(style: Style, content: &str) -> String {
    let lines: Vec<&str> = content.lines().collect();
    let head = format!(
        "new file · {} · {}\n",
        term::plural(lines.len() as u64, "line"),
        term::plural(content.len() as u64, "byte")
    );
    let mut text = style.paint(Paint::Dim, &head);
    let added = |l: &&str| style.paint(Paint::Green, &format!("+{}", sanitize(l))) + "\n";
    if lines.len() <= 2 * NEW_FILE_LINES {
        text.extend(lines.iter().map(added));
        return text;
    }
    text.extend(lines[..NEW_FILE_LINES].iter().map(added));
    let hidden = lines.len() - 2 * NEW_FILE_LINES;
    let more = format!("… {}\n", term::plural(hidden as u64, "more line"));
    text.push_str(&style.paint(Paint::Dim, &more));
    text.extend(lines[lines.len() - NEW_FILE_LINES..].iter().map(added));
    text
}

/// The question: what would run (all of it, made visible), where, why it asks, what it
/// would change, and the answers on offer.
pub fn approval_text(
    style: Style,
    request: &Approval<'_>,
    cwd: &Path,
    width: usize,
    preview: &str,
) -> String {
    let tool = request.action.tool().name();
    let place = format!(" in {} · {}", cwd.display(), request.reason);
    let place = sanitize(&place).into_owned();
    let place = term::truncate_to_width(&place, width.saturating_sub(tool.len() + 9));
    let mut text = format!(
        "{}{place}\n",
        style.paint(Paint::Yellow, &format!("? allow {tool}?"))
    );
    let body = match request.action {
        Action::Bash { command, .. } => command.clone(),
        other => other.summary(),
    };
    for line in sanitize(&body).lines() {
        text.push_str(&format!("    {}\n", style.paint(Paint::Bold, line)));
    }
    text.push_str(preview);
    text.push_str("  [y] yes, once · [n] no (then optionally tell the model why)\n");
    match &request.suggestion {
        Some(rule) if lasting(request) => text.push_str(&format!(
            "  [a] always this session: {} · [p] always in this project (saved to {PROJECT_SETTINGS})\n",
            sanitize(rule)
        )),
        Some(_) => text.push_str(&style.paint(
            Paint::Dim,
            "  (no \"always\": a rule that asks, or a protected path, would ask again)\n",
        )),
        None => {}
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;
    use crate::tools::{self, Context, fs::Seen};
    use std::sync::atomic::AtomicBool;
    use std::time::Duration;

    fn plain() -> Style {
        Style { color: false }
    }

    #[test]
    fn keys_map_to_choices() {
        fn check(code: KeyCode, mods: KeyModifiers, lasting: bool, expected: Option<Choice>) {
            let key = KeyEvent::new(code, mods);
            assert_eq!(
                choice_for(&key, lasting),
                expected,
                "{code:?} lasting={lasting}"
            );
        }
        let none = KeyModifiers::NONE;
        check(KeyCode::Char('y'), none, false, Some(Choice::Once));
        check(KeyCode::Char('a'), none, true, Some(Choice::Session));
        check(KeyCode::Char('a'), none, false, None);
        check(KeyCode::Char('p'), none, true, Some(Choice::Project));
        check(KeyCode::Char('p'), none, false, None);
        check(KeyCode::Char('n'), none, false, Some(Choice::No));
        check(KeyCode::Esc, none, true, Some(Choice::No));
        check(KeyCode::Enter, none, true, None);
        check(
            KeyCode::Char('c'),
            KeyModifiers::CONTROL,
            true,
            Some(Choice::Interrupt),
        );
    }

    #[test]
    fn approval_shows_everything_made_visible() {
        let action = Action::Bash {
            command: "printf '\x1b[2J'\nrm -rf build".into(),
            timeout: Duration::from_secs(1),
        };
        let mut request = Approval {
            action: &action,
            reason: "bash runs a command",
            suggestion: Some("Bash(rm *)".into()),
            allowed_by: Some("Bash(rm *)".into()),
            plan: None,
        };
        let text = approval_text(plain(), &request, Path::new("/w"), 80, "");
        assert_eq!(
            text,
            "? allow bash? in /w · bash runs a command\n    printf '^[[2J'\n    rm -rf build\n  \
             [y] yes, once · [n] no (then optionally tell the model why)\n  \
             [a] always this session: Bash(rm *) · [p] always in this project (saved to .claude/settings.local.json)\n"
        );
        // An ask rule decides: the rule would be saved for nothing, so it is not offered.
        request.allowed_by = None;
        let text = approval_text(plain(), &request, Path::new("/w"), 80, "");
        assert!(!text.contains("[a]") && !text.contains("[p]"), "{text}");
        assert!(text.contains("would ask again"), "{text}");
        request.suggestion = None;
        let text = approval_text(plain(), &request, Path::new("/w"), 80, "");
        assert!(!text.contains("[a]") && !text.contains("[p]"), "{text}");
    }

    #[test]
    fn writes_and_edits_are_previewed() {
        let dir = TempDir::new("preview");
        let ws = dir.workspace();
        dir.put("f.rs", b"one\ntwo\nthree\n");
        let cancel = AtomicBool::new(false);
        let seen = Seen::default();
        let ctx = Context {
            workspace: &ws,
            cancel: &cancel,
            env: &[],
            sandbox: &crate::sandbox::Sandbox::off(&ws.root),
            grant: crate::sandbox::Grant::Approved,
            may_read: &|_| true,
            seen: &seen,
        };
        let shown = |action: &Action| preview(plain(), tools::plan(action, &ctx).as_ref());
        let edit = Action::Edit {
            path: "f.rs".into(),
            old: "two".into(),
            new: "2".into(),
            replace_all: false,
        };
        // Not read yet: the edit would be refused, and the question says so.
        assert!(
            shown(&edit).contains("(this will fail:"),
            "{}",
            shown(&edit)
        );
        let read = Action::Read {
            path: "f.rs".into(),
            offset: None,
            limit: None,
        };
        assert!(!tools::execute(&read, &ctx).is_error);
        assert_eq!(
            shown(&edit),
            "    --- a/f.rs\n    +++ b/f.rs\n    @@ -1,3 +1,3 @@\n       1  one\n       2 -two\n       2 +2\n       3  three\n"
        );
        let overwrite = Action::Write {
            path: "f.rs".into(),
            content: "one\n".into(),
        };
        assert!(shown(&overwrite).contains("       2 -two\n"));
        let content: String = (1..=20).map(|i| format!("line {i}\n")).collect();
        let new = Action::Write {
            path: "new.txt".into(),
            content,
        };
        let text = shown(&new);
        assert!(
            text.starts_with("    new file · 20 lines · 151 bytes\n    +line 1\n"),
            "{text}"
        );
        assert!(
            text.contains("    … 4 more lines\n    +line 13\n"),
            "{text}"
        );
        assert!(text.ends_with("    +line 20\n"), "{text}");
        assert!(!dir.join("new.txt").exists(), "a preview writes nothing");
        assert_eq!(preview(plain(), None), "");
    }

    #[test]
    fn denial_tells_the_model() {
        assert!(denial("  ").starts_with("denied: the user refused this call. Do not retry"));
        assert_eq!(
            denial("use cargo"),
            "denied: the user refused this call and said: use cargo"
        );
    }
}
