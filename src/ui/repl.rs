//! The interactive REPL: reads prompts with the line editor, runs each as a task,
//! shows the answer as it streams, tool calls compactly and approval questions inline,
//! and handles the slash commands. What the agent does is `agent.rs`'s business; how a
//! line is edited is `editor.rs`'s; how text is made safe and coloured is `term.rs`'s.

use super::editor::{self, Editor, ReadResult};
use super::headless::describe;
use super::term::{self, Paint, Spinner, Style, sanitize};
use crate::agent::{Agent, Answer, Approval, Event, Stop, Ui};
use crate::app::{self, Dirs, Resumed, Setup};
use crate::cli::{self, Args, Resume};
use crate::config::Settings;
use crate::context;
use crate::journal::{self, Journal, Meta};
use crate::model::{Block, Client, Message, Provider, Role, Usage};
use crate::sessions;
use crate::tools::{Action, Outcome};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// An `@file` brings at most this much: the same 12 KB a tool result may (REFERENCE §6).
const ATTACH_LIMIT: usize = 12 * 1024;
/// Lines of a resumed session's last prompt and answer shown; enough to remember it.
const RECAP_LINES: usize = 12;
/// Diff lines shown after a write or edit; the rest are counted.
const DIFF_LINES: usize = 60;
/// Indent of a diff under its tool call.
const DIFF_INDENT: &str = "    ";
/// Lines of an edit shown in its approval question.
const PREVIEW_LINES: usize = 16;
/// Sessions the picker offers; older ones are reached with `/resume ID`.
const PICK_LIMIT: usize = 20;
/// Path completions offered at once; a directory with more is narrowed by typing.
const COMPLETION_LIMIT: usize = 200;
/// Characters of a skill's description `/skills` shows.
const SKILL_LINE: usize = 72;
/// The prompt the editor shows.
const PROMPT: &str = "› ";
/// Where a "project" answer is saved (Claude Code's personal settings file).
const PROJECT_SETTINGS: &str = ".claude/settings.local.json";

/// The slash commands, with the line `/help` shows for each.
const COMMANDS: [(&str, &str); 15] = [
    ("/help", "this list"),
    ("/clear", "start a new session"),
    (
        "/resume",
        "continue an earlier session (/resume ID, or pick from a list)",
    ),
    ("/sessions", "list the sessions of this directory"),
    (
        "/model",
        "show or switch the model (/model NAME [--base-url URL], /model anthropic:NAME)",
    ),
    ("/cost", "tokens and dollars so far"),
    ("/compact", "summarize the conversation to save context"),
    ("/undo", "revert the last file change (/undo N for more)"),
    ("/context", "the system prompt's parts and their sizes"),
    ("/skills", "the skills nib knows"),
    ("/mcp", "the MCP servers: state, tools, schema sizes"),
    (
        "/permissions",
        "the permission mode and the rules allowed this session",
    ),
    ("/exit", "leave nib"),
    ("/quit", "leave nib"),
    ("/?", "this list"),
];

/// Runs the REPL until the user leaves; returns the exit code.
pub fn run(args: &Args, dirs: &Dirs, setup: Setup) -> Result<i32, String> {
    install_panic_hook();
    let mut repl = Repl::new(args, dirs, setup);
    repl.greet();
    match &args.resume {
        Some(Resume::Pick) => repl.pick_session(),
        Some(_) => repl.recap(),
        None => {}
    }
    if let Some(prompt) = &args.prompt {
        let _ = writeln!(io::stdout(), "{PROMPT}{}", sanitize(prompt));
        repl.submit(prompt);
    }
    let result = repl.read_loop();
    repl.agent.end_session("prompt_input_exit", &mut repl.view);
    repl.farewell();
    result.map(|()| 0)
}

/// Whatever happens, a panic leaves the terminal usable: raw mode off, then the default
/// report.
fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        editor::restore_terminal();
        default(info);
    }));
}

/// One line on stdout, ignoring a closed stdout (there is no one left to tell).
fn say(text: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// Whether the loop goes on after a line.
#[derive(Debug, PartialEq)]
enum Flow {
    Continue,
    Exit,
}

/// The REPL's state between prompts.
struct Repl {
    agent: Agent,
    view: View,
    editor: Editor,
    /// The arguments as last changed by `/model`.
    args: Args,
    settings: Settings,
    system: Vec<context::Part>,
    session_id: String,
    /// Where journals live; `None` when there is no data directory.
    sessions_root: Option<PathBuf>,
    /// A session `/clear` started, created on its first prompt so an unused one leaves
    /// no file behind.
    pending: Option<Meta>,
    /// Told to the model with the next prompt (e.g. that the user undid a change).
    notes: Vec<String>,
}

impl Repl {
    fn new(args: &Args, dirs: &Dirs, setup: Setup) -> Repl {
        let history = dirs.data.as_ref().map(|d| d.join("nib").join("history"));
        let view = View {
            style: Style::detect(),
            spinner: None,
            label: "",
            line_start: true,
            held_cr: false,
            streamed: false,
            tokens: 0,
            rules: Vec::new(),
            cancel: setup.agent.cancel.clone(),
            cwd: setup.cwd.clone(),
        };
        Repl {
            agent: setup.agent,
            view,
            editor: Editor::new(history),
            args: args.clone(),
            settings: setup.settings,
            system: setup.system,
            session_id: setup.session_id,
            sessions_root: dirs.data.as_deref().map(journal::sessions_root),
            pending: None,
            notes: Vec::new(),
        }
    }

    fn style(&self) -> Style {
        self.view.style
    }

    fn dim(&self, text: &str) {
        say(&self.style().paint(Paint::Dim, text));
    }

    fn warn(&self, text: &str) {
        say(&self
            .style()
            .paint(Paint::Yellow, &format!("nib: {}", sanitize(text))));
    }

    fn greet(&self) {
        let e = &self.agent.client.endpoint;
        let line = format!(
            "nib {} · {} ({} {}) · {}",
            env!("CARGO_PKG_VERSION"),
            e.model,
            e.provider.name(),
            e.base_url,
            self.view.cwd.display()
        );
        self.dim(&sanitize(&line));
        self.dim(&format!("sandbox: {}", self.agent.sandbox.describe()));
        self.dim("/help for commands · @path attaches a file · Ctrl-C interrupts, twice exits");
    }

    /// The last exchange of a resumed session, so the user knows where they are.
    fn recap(&self) {
        let (prompt, answer) = last_exchange(&self.agent.messages);
        self.dim(&format!(
            "── resumed session {} ({} messages)",
            self.session_id,
            self.agent.messages.len()
        ));
        if let Some(p) = prompt {
            say(&format!(
                "{PROMPT}{}",
                sanitize(&head_lines(&p, RECAP_LINES))
            ));
        }
        if let Some(a) = answer {
            say(&sanitize(&tail_lines(&a, RECAP_LINES)));
        }
    }

    fn read_loop(&mut self) -> Result<(), String> {
        let mut armed = false;
        loop {
            if let Some(e) = self.editor.take_history_error() {
                self.warn(&format!("history is not saved: {e}"));
            }
            let root = self.view.cwd.clone();
            let prompt = self.style().paint(Paint::Bold, PROMPT);
            let custom = self.custom_names();
            let idle = crate::signals::Idle::enter();
            let read = self
                .editor
                .read_line(&prompt, &|buffer, cursor| {
                    complete(buffer, cursor, &root, &custom)
                })
                .map_err(|e| format!("cannot read from the terminal: {e}"))?;
            drop(idle);
            match read {
                ReadResult::Eof => return Ok(()),
                ReadResult::Interrupted if armed => return Ok(()),
                ReadResult::Interrupted => {
                    armed = true;
                    self.dim("press Ctrl-C again or Ctrl-D to exit");
                }
                ReadResult::Line(line) => {
                    armed = false;
                    if self.handle(&line) == Flow::Exit {
                        return Ok(());
                    }
                }
            }
        }
    }

    fn handle(&mut self, line: &str) -> Flow {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            return Flow::Continue;
        }
        if !is_command(trimmed) {
            self.submit(line);
            return Flow::Continue;
        }
        match parse_slash(trimmed) {
            Ok(Slash::Exit) => Flow::Exit,
            Ok(command) => {
                if let Err(e) = self.command(command) {
                    self.warn(&e);
                }
                Flow::Continue
            }
            Err(e) => {
                let first = trimmed.split_whitespace().next();
                let builtin = COMMANDS.iter().any(|(n, _)| first == Some(*n));
                let custom = context::commands::find(&self.agent.commands, trimmed).is_some()
                    || context::skills::expand(&self.agent.skills, trimmed).is_some();
                match custom && !builtin {
                    true => self.submit(line),
                    false => self.warn(&e),
                }
                Flow::Continue
            }
        }
    }

    /// Sends one prompt (with its attachments and notes) and shows how it went.
    fn submit(&mut self, line: &str) {
        let custom = context::commands::find(&self.agent.commands, line)
            .map(|(command, args)| (command.clone(), args.to_string()));
        if let Some((command, args)) = custom {
            return self.run_task(|agent, view| agent.run_command(&command, &args, view));
        }
        let (mut prompt, attached) = attach(line, &self.view.cwd);
        for a in &attached {
            self.dim(&a.describe());
        }
        if let Some(expanded) = context::skills::expand(&self.agent.skills, &prompt) {
            prompt = expanded;
        }
        if !self.notes.is_empty() {
            prompt = format!("{}\n\n{prompt}", self.notes.join("\n"));
            self.notes.clear();
        }
        self.run_task(|agent, view| agent.run(&prompt, view));
    }

    /// Runs one task with the spinner, and says how it ended.
    fn run_task(&mut self, task: impl FnOnce(&mut Agent, &mut View) -> crate::agent::TaskResult) {
        self.open_pending();
        self.view.tokens = 0;
        self.view.streamed = false;
        self.view.spin("thinking");
        let result = task(&mut self.agent, &mut self.view);
        self.view.stop_spin();
        self.view.end_line();
        match &result.stop {
            Stop::Done => {}
            Stop::Interrupted => say(&self.style().paint(Paint::Yellow, "interrupted")),
            other => self.warn(&describe(other)),
        }
    }

    /// Creates the journal of a session `/clear` started.
    fn open_pending(&mut self) {
        let (Some(meta), Some(root)) = (self.pending.take(), self.sessions_root.as_ref()) else {
            return;
        };
        match Journal::create(root, meta) {
            Ok(j) => self.agent.journal = Some(j),
            Err(e) => self.warn(&format!("{e}; this session is not being saved")),
        }
    }

    fn command(&mut self, command: Slash) -> Result<(), String> {
        match command {
            Slash::Help => self.help(),
            Slash::Clear => self.clear(),
            Slash::Resume(Some(id)) => {
                let root = self.root()?;
                let path = journal::find_by_prefix(&root, &id).map_err(|e| e.to_string())?;
                self.resume(&path)?;
            }
            Slash::Resume(None) => self.pick_session(),
            Slash::Sessions => self.list_sessions(),
            Slash::Model(None) => self.show_model(),
            Slash::Model(Some(switch)) => self.switch_model(switch)?,
            Slash::Cost => self.cost(),
            Slash::Compact => self.compact(),
            Slash::Undo(count) => self.undo(count)?,
            Slash::Context => self.context(),
            Slash::Skills => self.skills(),
            Slash::Permissions => self.permissions(),
            Slash::Mcp => self.mcp(),
            Slash::Exit => {}
        }
        Ok(())
    }

    /// `/compact`: the same summary the agent makes when the context window fills.
    fn compact(&mut self) {
        // Nothing said yet: no server to ask about its window, no journal to open.
        if self.agent.messages.is_empty() {
            return say("nothing to compact: the conversation is empty");
        }
        self.open_pending();
        self.agent
            .cancel
            .store(false, std::sync::atomic::Ordering::SeqCst);
        self.view.spin("summarizing");
        let done = self.agent.compact(&mut self.view);
        self.view.stop_spin();
        match done {
            Ok(0) => say("nothing to compact: the conversation is already short"),
            Ok(_) => {}
            Err(stop) => self.warn(&describe(&stop)),
        }
    }

    fn help(&self) {
        for (name, what) in COMMANDS.iter().filter(|(n, _)| *n != "/?") {
            say(&format!("  {name:<13} {what}"));
        }
        for c in &self.agent.commands {
            let name = format!("/{} {}", c.name, c.argument_hint.as_deref().unwrap_or(""));
            say(&sanitize(&format!("  {name:<13} {}", c.description)));
        }
        for s in &self.agent.skills {
            let what: String = s.description.chars().take(SKILL_LINE).collect();
            say(&sanitize(&format!("  /{:<12} {what} (skill)", s.name)));
        }
        self.dim("  @path attaches a file (Tab completes) · Tab completes commands");
        self.dim("  Alt-Enter or Ctrl-J: new line · Up/Down: history · Ctrl-C: interrupt");
    }

    /// `/name` of each custom command and skill, for Tab.
    fn custom_names(&self) -> Vec<String> {
        let commands = self.agent.commands.iter().map(|c| &c.name);
        let skills = self.agent.skills.iter().map(|s| &s.name);
        commands.chain(skills).map(|n| format!("/{n}")).collect()
    }

    fn root(&self) -> Result<PathBuf, String> {
        self.sessions_root
            .clone()
            .ok_or_else(|| "no data directory (set HOME or XDG_DATA_HOME)".to_string())
    }

    /// A fresh session: empty conversation, zero totals, a new id.
    fn clear(&mut self) {
        let e = &self.agent.client.endpoint;
        let meta = Meta {
            id: journal::new_id(),
            cwd: self.view.cwd.clone(),
            model: e.model.clone(),
            provider: e.provider.name().to_string(),
            nib: env!("CARGO_PKG_VERSION").to_string(),
            started: journal::rfc3339(journal::now_ms()),
            format: journal::FORMAT,
            forked_from: None,
        };
        self.session_id = meta.id.clone();
        self.pending = (!self.args.no_session_persistence).then_some(meta);
        self.agent.journal = None;
        self.adopt(Resumed::default());
        self.notes.clear();
        self.dim(&format!("new session {}", self.session_id));
    }

    fn adopt(&mut self, r: Resumed) {
        self.agent.instructed.clear();
        self.agent.messages = r.messages;
        self.agent.usage = r.usage;
        self.agent.cost_usd = r.cost_usd;
        self.agent.turns_total = r.turns;
        self.agent.seen = r.seen;
    }

    fn resume(&mut self, path: &Path) -> Result<(), String> {
        let loaded = journal::load(path).map_err(|e| e.to_string())?;
        if loaded.meta.id == self.session_id {
            return Err(format!("already in session {}", self.session_id));
        }
        let journal = match self.args.no_session_persistence {
            true => None,
            false => Some(Journal::reopen(path, &loaded.meta.id).map_err(|e| e.to_string())?),
        };
        self.agent.journal = journal;
        self.pending = None;
        self.notes.clear();
        self.session_id = loaded.meta.id.clone();
        self.adopt(Resumed::from_entries(&loaded.entries));
        self.recap();
        Ok(())
    }

    /// The sessions a picker offers: this directory's, newest first, not this one,
    /// not empty.
    fn pickable(&self) -> Vec<sessions::Summary> {
        let Some(root) = &self.sessions_root else {
            return Vec::new();
        };
        sessions::list(root, Some(&self.view.cwd))
            .into_iter()
            .filter(|s| s.id != self.session_id && !s.first_prompt.trim().is_empty())
            .take(PICK_LIMIT)
            .collect()
    }

    fn list_sessions(&self) {
        let list = self.pickable();
        if list.is_empty() {
            say("no other sessions in this directory");
        }
        for (i, s) in list.iter().enumerate() {
            say(&session_line(i + 1, s, term::terminal_width()));
        }
    }

    fn pick_session(&mut self) {
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
            Some(path) => {
                if let Err(e) = self.resume(&path) {
                    self.warn(&e);
                }
            }
            None if answer.is_empty() => {}
            None => self.warn(&format!("no session {answer} in the list")),
        }
    }

    fn show_model(&self) {
        let e = &self.agent.client.endpoint;
        say(&sanitize(&format!(
            "model: {} · {} · {}",
            e.model,
            e.provider.name(),
            e.base_url
        )));
    }

    /// Switches model (and maybe provider or server) through the same rules that chose
    /// the first one, so keys only go where they belong.
    fn switch_model(&mut self, switch: ModelSwitch) -> Result<(), String> {
        let mut args = self.args.clone();
        args.model = Some(switch.name);
        if let Some(p) = switch.provider {
            if p != self.agent.client.endpoint.provider && switch.base_url.is_none() {
                args.base_url = None;
            }
            args.provider = Some(p);
        }
        if switch.base_url.is_some() {
            args.base_url = switch.base_url;
        }
        let endpoint = app::endpoint(&args, &self.settings).map_err(|e| e.to_string())?;
        let mut known: Vec<String> = endpoint.api_key.iter().cloned().collect();
        known.extend(crate::secrets::secret_values(std::env::vars()));
        self.agent.redactor = crate::secrets::Redactor::new(&known);
        self.agent.client = Client::new(
            endpoint,
            app::limits(&self.settings),
            self.agent.cancel.clone(),
        );
        self.args = args;
        self.show_model();
        Ok(())
    }

    fn cost(&self) {
        for line in cost_lines(
            &self.agent.usage,
            self.agent.cost_usd,
            self.agent.turns_total,
        ) {
            say(&line);
        }
    }

    fn undo(&mut self, count: usize) -> Result<(), String> {
        let journal = self.agent.journal.as_mut().ok_or_else(|| {
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

    fn context(&self) {
        for part in &self.system {
            say(&format!(
                "  {:<14} {:>7} bytes",
                sanitize(&part.label),
                part.text.len()
            ));
        }
        say(&format!(
            "  {:<14} {:>7} bytes · {} messages in the conversation",
            "total",
            self.agent.system.len(),
            self.agent.messages.len()
        ));
        let tools: usize = self.agent.specs.iter().map(crate::mcp::spec_bytes).sum();
        say(&format!(
            "  {:<14} {tools:>7} bytes in every request",
            "tool schemas"
        ));
        for s in self.agent.mcp.status() {
            let name = format!("mcp {}", s.name);
            say(&sanitize(&format!(
                "  {name:<14} {:>7} bytes ({} tools)",
                s.schema_bytes, s.tools
            )));
        }
    }

    fn mcp(&self) {
        let servers = self.agent.mcp.status();
        if servers.is_empty() {
            say(
                "no MCP servers: add them to .mcp.json ({\"mcpServers\": {...}}) or pass --mcp-config",
            );
        }
        for s in servers {
            say(&sanitize(&format!(
                "  {:<16} {} · {} tools · {} bytes of schemas",
                s.name, s.state, s.tools, s.schema_bytes
            )));
        }
    }

    fn skills(&self) {
        let home = dirs::home_dir();
        for s in &self.agent.skills {
            let place = s.dir.as_deref().map_or("bundled".into(), |d| {
                context::short_path(d, home.as_deref())
            });
            let what: String = s.description.chars().take(SKILL_LINE).collect();
            say(&sanitize(&format!("  /{:<16} {what}", s.name)));
            self.dim(&sanitize(&format!("   {:<16} {place}", "")));
        }
        if self.agent.skills.is_empty() {
            say("no skills: add one as .claude/skills/NAME/SKILL.md");
        }
        self.dim("/NAME [arguments] runs a skill; the model loads them itself when a task fits");
    }

    fn permissions(&self) {
        say(&format!("mode: {}", self.agent.gate.mode().name()));
        say(&format!("sandbox: {}", self.agent.sandbox.describe()));
        if self.view.rules.is_empty() {
            say("allowed this session: none");
        }
        for rule in &self.view.rules {
            say(&format!("allowed: {}", sanitize(rule)));
        }
        self.dim(&format!(
            "rules are read from ~/.claude/settings.json, .claude/settings.json and {PROJECT_SETTINGS}"
        ));
    }

    fn farewell(&self) {
        let u = &self.agent.usage;
        self.dim(&format!(
            "session {}: {} tokens in · {} out · {} cache read · ${:.4}",
            self.session_id,
            term::format_tokens(u.input_tokens),
            term::format_tokens(u.output_tokens),
            term::format_tokens(u.cache_read_input_tokens),
            self.agent.cost_usd
        ));
        if self.agent.journal.is_some() {
            say(&format!("resume with: nib -r {}", self.session_id));
        }
    }
}

fn cost_lines(u: &Usage, cost: f64, turns: u32) -> Vec<String> {
    vec![
        format!(
            "tokens: {} in · {} out · {} cache read · {} cache write",
            u.input_tokens,
            u.output_tokens,
            u.cache_read_input_tokens,
            u.cache_creation_input_tokens
        ),
        format!("cost: ${cost:.4} over {turns} model replies (list prices; local models cost $0)"),
    ]
}

fn session_line(n: usize, s: &sessions::Summary, width: usize) -> String {
    let line = format!("{n:>3}  {}", sessions::row(s));
    term::truncate_to_width(&sanitize(&line), width.saturating_sub(1)).into_owned()
}

/// The last prompt the user typed and the last text the assistant wrote.
fn last_exchange(messages: &[Message]) -> (Option<String>, Option<String>) {
    let text_of = |role: Role| {
        messages
            .iter()
            .rev()
            .filter(|m| m.role == role)
            .find_map(|m| {
                m.content.iter().rev().find_map(|b| match b {
                    Block::Text { text } if !text.trim().is_empty() => Some(text.clone()),
                    _ => None,
                })
            })
    };
    (text_of(Role::User), text_of(Role::Assistant))
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

// ── Display during a task ──────────────────────────────────────────────────────────

/// The `Ui` the agent talks to while a task runs.
struct View {
    style: Style,
    spinner: Option<Spinner>,
    /// What the running spinner says.
    label: &'static str,
    /// Nothing printed since the last newline.
    line_start: bool,
    /// A `\r` that ended a streamed piece, kept until the next shows whether `\n` follows.
    held_cr: bool,
    /// Text streamed since the last request began.
    streamed: bool,
    /// Output tokens of this task, for the spinner.
    tokens: u64,
    /// Rules the user allowed during this session.
    rules: Vec<String>,
    /// Set on Ctrl-C at an approval question, like the signal would.
    cancel: Arc<AtomicBool>,
    cwd: PathBuf,
}

impl View {
    fn spin(&mut self, label: &'static str) {
        self.stop_spin();
        self.end_line();
        let spinner = Spinner::start(label, self.style);
        spinner.set_tokens(self.tokens);
        self.spinner = Some(spinner);
        self.label = label;
    }

    fn stop_spin(&mut self) {
        if let Some(mut s) = self.spinner.take() {
            s.stop();
        }
    }

    fn write(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        let mut out = io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
        self.line_start = text.ends_with('\n');
    }

    fn end_line(&mut self) {
        if std::mem::take(&mut self.held_cr) {
            self.write("^M");
        }
        if !self.line_start {
            self.write("\n");
        }
    }

    fn text(&mut self, piece: &str) {
        self.stop_spin();
        self.streamed = true;
        let mut piece = piece.to_string();
        if std::mem::take(&mut self.held_cr) {
            piece.insert(0, '\r');
        }
        if piece.ends_with('\r') {
            piece.pop();
            self.held_cr = true;
        }
        let clean = sanitize(&piece).into_owned();
        self.write(&clean);
    }

    fn line(&mut self, text: &str) {
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

    fn tool_start(&mut self, name: &str, action: &Action) {
        self.stop_spin();
        let summary = action.summary();
        let shown = summary
            .strip_prefix(&format!("{name} "))
            .unwrap_or(&summary);
        let width = term::terminal_width();
        self.line(&term::tool_call_line(self.style, name, shown, width));
        self.spin("running");
    }

    fn tool_done(&mut self, action_is_bash: bool, outcome: &Outcome) {
        self.stop_spin();
        self.end_line();
        let text = result_text(self.style, action_is_bash, outcome, term::terminal_width());
        self.write(&text);
    }
}

/// The lines under a finished tool call: its status and the ends of its output, or the
/// diff of a file change.
fn result_text(style: Style, bash: bool, outcome: &Outcome, width: usize) -> String {
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
    term::tool_result_lines(style, &status, outcome.is_error, output, width)
}

fn capped_diff(style: Style, diff: &str) -> String {
    let lines: Vec<&str> = diff.lines().collect();
    let shown = lines[..lines.len().min(DIFF_LINES)].join("\n");
    let mut text = term::render_diff(style, &shown);
    if lines.len() > DIFF_LINES {
        let more = format!("… {} more diff lines\n", lines.len() - DIFF_LINES);
        text.push_str(&style.paint(Paint::Dim, &more));
    }
    text
}

impl Ui for View {
    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Text(t) => self.text(t),
            Event::Retry {
                attempt,
                wait,
                reason,
            } => {
                self.stop_spin();
                let over = if self.streamed {
                    ", the answer starts over"
                } else {
                    ""
                };
                let line = format!(
                    "nib: {}; retrying in {:.1} s (attempt {}){over}",
                    sanitize(reason),
                    wait.as_secs_f64(),
                    attempt + 1
                );
                self.line(&self.style.paint(Paint::Yellow, &line));
                self.spin("retrying");
            }
            Event::Reply(reply) => {
                self.tokens += reply.usage.map_or(0, |u| u.output_tokens);
                self.stop_spin();
                if !self.streamed && !reply.text.is_empty() {
                    let clean = sanitize(&reply.text).into_owned();
                    self.write(&clean);
                }
                self.end_line();
            }
            Event::ToolStart(call, action) => self.tool_start(&call.name, action),
            Event::ToolDone(call, outcome) => self.tool_done(call.name == "bash", outcome),
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
                    "compacted: {replaced} earlier messages {how} to fit the context window"
                );
                self.aside(&self.style.paint(Paint::Dim, &line));
            }
            Event::Warning(w) => {
                let line = format!("nib: warning: {}", sanitize(&w));
                self.aside(&self.style.paint(Paint::Yellow, &line));
            }
        }
    }

    fn approve(&mut self, request: &Approval<'_>) -> Answer {
        self.stop_spin();
        self.end_line();
        let width = term::terminal_width();
        let question = approval_text(self.style, request, &self.cwd, width);
        self.write(&question);
        let has_rule = request.suggestion.is_some();
        let choice = loop {
            match editor::read_key() {
                Ok(key) => match choice_for(&key, has_rule) {
                    Some(choice) => break choice,
                    None => continue,
                },
                Err(_) => break Choice::Interrupt,
            }
        };
        self.answer(choice, request.suggestion.clone().unwrap_or_default())
    }
}

// ── Approval ───────────────────────────────────────────────────────────────────────

/// A key's meaning at the approval question.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Choice {
    Once,
    Session,
    Project,
    No,
    /// Ctrl-C: refuse and stop the task.
    Interrupt,
}

fn choice_for(key: &KeyEvent, has_rule: bool) -> Option<Choice> {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    match key.code {
        KeyCode::Char('c' | 'd') if ctrl => Some(Choice::Interrupt),
        KeyCode::Char('y' | 'Y') => Some(Choice::Once),
        KeyCode::Char('a' | 'A') if has_rule => Some(Choice::Session),
        KeyCode::Char('p' | 'P') if has_rule => Some(Choice::Project),
        KeyCode::Char('n' | 'N') | KeyCode::Esc => Some(Choice::No),
        _ => None,
    }
}

impl View {
    fn answer(&mut self, choice: Choice, rule: String) -> Answer {
        let said = match choice {
            Choice::Once => "yes, once".to_string(),
            Choice::Session => format!("yes, and always this session: {}", sanitize(&rule)),
            Choice::Project => format!("yes, and always in this project: {}", sanitize(&rule)),
            Choice::No => "no".to_string(),
            Choice::Interrupt => "no, and stop".to_string(),
        };
        self.line(&self.style.paint(Paint::Dim, &format!("  → {said}")));
        match choice {
            Choice::Once => Answer::Once,
            Choice::Session => {
                self.rules.push(rule.clone());
                Answer::Session(rule)
            }
            Choice::Project => {
                self.rules
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
                self.cancel.store(true, Ordering::SeqCst);
                Answer::Deny("denied: the user refused this call and stopped the task".into())
            }
        }
    }
}

/// The tool result a refusal gives the model.
fn denial(message: &str) -> String {
    match message.trim() {
        "" => {
            "denied: the user refused this call. Do not retry it; ask the user or find another way."
                .to_string()
        }
        m => format!("denied: the user refused this call and said: {m}"),
    }
}

/// The question: what would run (all of it, made visible), where, why it asks, and the
/// answers on offer.
fn approval_text(style: Style, request: &Approval<'_>, cwd: &Path, width: usize) -> String {
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
    if let Action::Edit { old, new, .. } = request.action {
        text.push_str(&indent(&edit_preview(style, old, new), "    "));
    }
    if let Action::Write { content, .. } = request.action {
        let lines = content.lines().count();
        text.push_str(&format!("    ({lines} lines, {} bytes)\n", content.len()));
    }
    text.push_str("  [y] yes, once · [n] no (then optionally tell the model why)\n");
    if let Some(rule) = &request.suggestion {
        text.push_str(&format!(
            "  [a] always this session: {} · [p] always in this project (saved to {PROJECT_SETTINGS})\n",
            sanitize(rule)
        ));
    }
    text
}

/// An edit's old and new text as removed and added lines, capped.
fn edit_preview(style: Style, old: &str, new: &str) -> String {
    let lines: Vec<String> = old
        .lines()
        .map(|l| format!("-{l}"))
        .chain(new.lines().map(|l| format!("+{l}")))
        .collect();
    let shown = lines[..lines.len().min(PREVIEW_LINES)].join("\n");
    let mut text = term::render_diff(style, &format!("@@ edit @@\n{shown}"));
    if lines.len() > PREVIEW_LINES {
        text.push_str(&format!("… {} more lines\n", lines.len() - PREVIEW_LINES));
    }
    text
}

fn indent(text: &str, by: &str) -> String {
    text.lines().map(|l| format!("{by}{l}\n")).collect()
}

// ── Slash commands ─────────────────────────────────────────────────────────────────

/// What a slash line asks for.
#[derive(Clone, Debug, PartialEq)]
enum Slash {
    Help,
    Clear,
    Resume(Option<String>),
    Sessions,
    Model(Option<ModelSwitch>),
    Cost,
    Compact,
    Undo(usize),
    Context,
    Skills,
    Permissions,
    Mcp,
    Exit,
}

/// `/model [provider:]NAME [--base-url URL]`.
#[derive(Clone, Debug, PartialEq)]
struct ModelSwitch {
    provider: Option<Provider>,
    name: String,
    base_url: Option<String>,
}

/// A line is a command when its first word is `/name` without another `/` (so a
/// message that starts with a path such as `/etc/hosts` is sent as a message).
fn is_command(line: &str) -> bool {
    let first = line.split_whitespace().next().unwrap_or("");
    first.starts_with('/') && !first[1..].contains('/')
}

fn parse_slash(line: &str) -> Result<Slash, String> {
    let mut words = line.split_whitespace();
    let name = words.next().unwrap_or("");
    let rest: Vec<&str> = words.collect();
    let no_args = |s: Slash| match rest.is_empty() {
        true => Ok(s),
        false => Err(format!("{name} takes no arguments")),
    };
    match name {
        "/help" | "/?" => no_args(Slash::Help),
        "/clear" | "/new" => no_args(Slash::Clear),
        "/resume" => match rest[..] {
            [] => Ok(Slash::Resume(None)),
            [id] => Ok(Slash::Resume(Some(id.to_string()))),
            _ => Err("/resume takes one session ID".into()),
        },
        "/sessions" => no_args(Slash::Sessions),
        "/model" => parse_model(&rest).map(Slash::Model),
        "/cost" => no_args(Slash::Cost),
        "/compact" => Ok(Slash::Compact),
        "/undo" => match rest[..] {
            [] => Ok(Slash::Undo(1)),
            [n] => match n.parse::<usize>() {
                Ok(n) if n > 0 => Ok(Slash::Undo(n)),
                _ => Err(format!("/undo takes a count above 0, not {n:?}")),
            },
            _ => Err("/undo takes one count".into()),
        },
        "/context" => no_args(Slash::Context),
        "/skills" => no_args(Slash::Skills),
        "/permissions" => no_args(Slash::Permissions),
        "/mcp" => no_args(Slash::Mcp),
        "/exit" | "/quit" => Ok(Slash::Exit),
        other => Err(format!("unknown command {other}; /help lists them")),
    }
}

fn parse_model(words: &[&str]) -> Result<Option<ModelSwitch>, String> {
    let mut name = None;
    let mut base_url = None;
    let mut words = words.iter();
    while let Some(w) = words.next() {
        match *w {
            "--base-url" => {
                let url = words.next().ok_or("--base-url needs a URL")?;
                base_url = Some(url.to_string());
            }
            w if w.starts_with('-') => return Err(format!("/model does not know {w}")),
            w if name.is_none() => name = Some(w),
            _ => return Err("/model takes one model name".into()),
        }
    }
    let Some(name) = name else {
        return match base_url {
            None => Ok(None),
            Some(_) => Err("/model --base-url needs a model name too".into()),
        };
    };
    // `anthropic:NAME` names a provider; `llama3:8b` is just an Ollama model name.
    let (provider, name) = match name.split_once(':') {
        Some((p, n)) if !n.is_empty() => match cli::provider_from_str(p) {
            Some(p) => (Some(p), n),
            None => (None, name),
        },
        _ => (None, name),
    };
    Ok(Some(ModelSwitch {
        provider,
        name: name.to_string(),
        base_url,
    }))
}

// ── Attachments ────────────────────────────────────────────────────────────────────

/// What became of one `@path` in a message.
#[derive(Debug, PartialEq)]
enum Attachment {
    Attached {
        path: String,
        bytes: usize,
        total: u64,
    },
    Refused {
        path: String,
        why: &'static str,
    },
}

impl Attachment {
    fn describe(&self) -> String {
        match self {
            Attachment::Attached { path, bytes, total } if (*bytes as u64) < *total => format!(
                "attached {} (first {} of {} bytes)",
                sanitize(path),
                bytes,
                total
            ),
            Attachment::Attached { path, bytes, .. } => {
                format!("attached {} ({bytes} bytes)", sanitize(path))
            }
            Attachment::Refused { path, why } => {
                format!("not attached: {} {why}", sanitize(path))
            }
        }
    }
}

/// The message with the content of each `@path` file appended, and what was attached.
fn attach(message: &str, root: &Path) -> (String, Vec<Attachment>) {
    let mut text = message.to_string();
    let mut seen: Vec<String> = Vec::new();
    let mut notes = Vec::new();
    for word in message.split_whitespace() {
        let Some(raw) = word.strip_prefix('@').filter(|r| !r.is_empty()) else {
            continue;
        };
        let trimmed = raw.trim_end_matches(['.', ',', ';', ':', '!', '?', ')', '"', '\'']);
        let name = match root.join(raw).exists() {
            true => raw,
            false => trimmed,
        };
        if name.is_empty() || seen.iter().any(|s| s == name) {
            continue;
        }
        seen.push(name.to_string());
        match read_attachment(&root.join(name)) {
            Ok((content, total)) => {
                text.push_str(&format!("\n\n<file path=\"{name}\">\n{content}"));
                if (content.len() as u64) < total {
                    text.push_str(&format!(
                        "\n[nib: only the first {} of {total} bytes are attached; read the file for the rest]",
                        content.len()
                    ));
                }
                text.push_str("\n</file>");
                notes.push(Attachment::Attached {
                    path: name.to_string(),
                    bytes: content.len(),
                    total,
                });
            }
            Err(why) => notes.push(Attachment::Refused {
                path: name.to_string(),
                why,
            }),
        }
    }
    (text, notes)
}

/// A file's text, up to `ATTACH_LIMIT` bytes, and its full size. Binary files are refused.
fn read_attachment(path: &Path) -> Result<(String, u64), &'static str> {
    let meta = fs::metadata(path).map_err(|_| "does not exist; sent as text")?;
    if meta.is_dir() {
        return Err("is a directory; name a file");
    }
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|f| f.take(ATTACH_LIMIT as u64).read_to_end(&mut bytes))
        .map_err(|_| "cannot be read")?;
    if bytes.contains(&0) {
        return Err("is binary");
    }
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        // Cut inside a character at the limit: keep the whole characters before it.
        Err(e) if e.utf8_error().error_len().is_none() => {
            let valid = e.utf8_error().valid_up_to();
            let mut bytes = e.into_bytes();
            bytes.truncate(valid);
            String::from_utf8(bytes).map_err(|_| "is binary")?
        }
        Err(_) => return Err("is binary"),
    };
    Ok((text, meta.len()))
}

// ── Completion ─────────────────────────────────────────────────────────────────────

/// Tab: slash commands (built in, then `custom` commands and skills) at the start of
/// the line, workspace paths after `@`.
fn complete(buffer: &str, cursor: usize, root: &Path, custom: &[String]) -> Vec<String> {
    let before = &buffer[..cursor.min(buffer.len())];
    let start = before
        .char_indices()
        .rev()
        .find(|(_, c)| c.is_whitespace())
        .map_or(0, |(i, c)| i + c.len_utf8());
    let word = &before[start..];
    if start == 0 && word.starts_with('/') {
        let builtin = COMMANDS.iter().map(|(name, _)| name.to_string());
        return builtin
            .chain(custom.iter().cloned())
            .filter(|name| name.starts_with(word) && name != "/?")
            .collect();
    }
    match word.strip_prefix('@') {
        Some(partial) => complete_path(partial, root)
            .into_iter()
            .map(|p| format!("@{p}"))
            .collect(),
        None => Vec::new(),
    }
}

/// Entries of the directory `partial` names that start with its last part; directories
/// end in `/`. Hidden entries only when asked for with a leading dot.
fn complete_path(partial: &str, root: &Path) -> Vec<String> {
    let (dir, prefix) = match partial.rfind('/') {
        Some(i) => (&partial[..=i], &partial[i + 1..]),
        None => ("", partial),
    };
    let Ok(entries) = fs::read_dir(root.join(dir)) else {
        return Vec::new();
    };
    let mut found: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let wanted =
                name.starts_with(prefix) && (prefix.starts_with('.') || !name.starts_with('.'));
            let slash = if e.path().is_dir() { "/" } else { "" };
            wanted.then(|| format!("{dir}{name}{slash}"))
        })
        .take(COMPLETION_LIMIT)
        .collect();
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ToolCall;
    use crate::testing::TempDir;

    fn call() -> ToolCall {
        ToolCall {
            id: "c1".into(),
            name: "bash".into(),
            input: serde_json::json!({}),
            invalid: None,
        }
    }
    use std::time::Duration;

    fn plain() -> Style {
        Style { color: false }
    }

    #[test]
    fn slash_commands_parse() {
        fn check(line: &str, expected: Result<Slash, &str>) {
            assert_eq!(parse_slash(line), expected.map_err(String::from), "{line}");
        }
        let switch = |provider, name: &str, base: Option<&str>| {
            Slash::Model(Some(ModelSwitch {
                provider,
                name: name.into(),
                base_url: base.map(String::from),
            }))
        };
        check("/help", Ok(Slash::Help));
        check("/quit", Ok(Slash::Exit));
        check("/resume", Ok(Slash::Resume(None)));
        check("/resume 3f2a", Ok(Slash::Resume(Some("3f2a".into()))));
        check("/undo", Ok(Slash::Undo(1)));
        check("/undo 3", Ok(Slash::Undo(3)));
        check("/undo 0", Err("/undo takes a count above 0, not \"0\""));
        check("/model", Ok(Slash::Model(None)));
        check("/model qwen3", Ok(switch(None, "qwen3", None)));
        check("/model llama3:8b", Ok(switch(None, "llama3:8b", None)));
        check(
            "/model anthropic:claude-x",
            Ok(switch(Some(Provider::Anthropic), "claude-x", None)),
        );
        check(
            "/model m --base-url http://127.0.0.1:8080/v1",
            Ok(switch(None, "m", Some("http://127.0.0.1:8080/v1"))),
        );
        check("/model --base-url", Err("--base-url needs a URL"));
        check("/model a b", Err("/model takes one model name"));
        check("/cost now", Err("/cost takes no arguments"));
        check(
            "/frobnicate",
            Err("unknown command /frobnicate; /help lists them"),
        );
    }

    #[test]
    fn paths_at_line_start_are_messages() {
        assert!(is_command("/help"));
        assert!(is_command("/model x"));
        assert!(!is_command("/etc/hosts looks odd"));
        assert!(!is_command("hello /help"));
    }

    #[test]
    fn completes_commands_and_paths() {
        let dir = TempDir::new("complete");
        dir.put("src/main.rs", b"");
        dir.put("src/model.rs", b"");
        dir.put("README.md", b"");
        dir.put(".hidden", b"");
        let check = |buffer: &str, expected: &[&str]| {
            let custom = ["/fixit".to_string(), "/frontend:test".to_string()];
            let got = complete(buffer, buffer.len(), dir.path(), &custom);
            assert_eq!(got, expected, "{buffer:?}");
        };
        check("/he", &["/help"]);
        check("/f", &["/fixit", "/frontend:test"]);
        check("/c", &["/clear", "/cost", "/compact", "/context"]);
        check("look at /he", &[]);
        check("see @s", &["@src/"]);
        check("see @src/m", &["@src/main.rs", "@src/model.rs"]);
        check("@src/ma", &["@src/main.rs"]);
        check("@", &["@README.md", "@src/"]);
        check("@.h", &["@.hidden"]);
        check("@nope/x", &[]);
        check("plain wor", &[]);
    }

    #[test]
    fn attaches_named_files() {
        let dir = TempDir::new("attach");
        dir.put("a.txt", b"alpha\n");
        dir.put("bin.dat", b"\x00\x01\x02");
        dir.put("big.txt", vec![b'x'; ATTACH_LIMIT + 100]);
        let (text, notes) = attach("check @a.txt, @a.txt and @bin.dat", dir.path());
        assert_eq!(
            text,
            "check @a.txt, @a.txt and @bin.dat\n\n<file path=\"a.txt\">\nalpha\n\n</file>"
        );
        assert_eq!(
            notes,
            vec![
                Attachment::Attached {
                    path: "a.txt".into(),
                    bytes: 6,
                    total: 6
                },
                Attachment::Refused {
                    path: "bin.dat".into(),
                    why: "is binary"
                },
            ]
        );
        let (text, notes) = attach("@big.txt", dir.path());
        assert!(text.contains(&format!(
            "only the first {ATTACH_LIMIT} of {} bytes",
            ATTACH_LIMIT + 100
        )));
        assert_eq!(
            notes[0].describe(),
            format!(
                "attached big.txt (first {ATTACH_LIMIT} of {} bytes)",
                ATTACH_LIMIT + 100
            )
        );
        let (text, notes) = attach("mail me@example.com or @ghost", dir.path());
        assert_eq!(text, "mail me@example.com or @ghost");
        assert_eq!(
            notes[0].describe(),
            "not attached: ghost does not exist; sent as text"
        );
    }

    #[test]
    fn attachment_cut_inside_a_character_keeps_whole_characters() {
        let dir = TempDir::new("utf8");
        let mut content = vec![b'a'; ATTACH_LIMIT - 1];
        content.extend("é and more".as_bytes());
        dir.put("u.txt", &content);
        let (text, _) = read_attachment(&dir.join("u.txt")).unwrap();
        assert_eq!(text.len(), ATTACH_LIMIT - 1);
    }

    #[test]
    fn keys_map_to_choices() {
        fn check(code: KeyCode, mods: KeyModifiers, has_rule: bool, expected: Option<Choice>) {
            let key = KeyEvent::new(code, mods);
            assert_eq!(
                choice_for(&key, has_rule),
                expected,
                "{code:?} rule={has_rule}"
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
            allowed_by: None,
        };
        let text = approval_text(plain(), &request, Path::new("/w"), 80);
        assert_eq!(
            text,
            "? allow bash? in /w · bash runs a command\n    printf '^[[2J'\n    rm -rf build\n  \
             [y] yes, once · [n] no (then optionally tell the model why)\n  \
             [a] always this session: Bash(rm *) · [p] always in this project (saved to .claude/settings.local.json)\n"
        );
        request.suggestion = None;
        let text = approval_text(plain(), &request, Path::new("/w"), 80);
        assert!(!text.contains("[a]") && !text.contains("[p]"), "{text}");
    }

    #[test]
    fn edit_approval_previews_the_change() {
        let action = Action::Edit {
            path: "f.rs".into(),
            old: "old line".into(),
            new: "new line".into(),
            replace_all: false,
        };
        let request = Approval {
            action: &action,
            reason: "it changes a file",
            suggestion: None,
            allowed_by: None,
        };
        let text = approval_text(plain(), &request, Path::new("/w"), 80);
        assert!(
            text.contains("    edit f.rs\n    @@ edit @@\n    -old line\n    +new line\n"),
            "{text}"
        );
    }

    #[test]
    fn denial_tells_the_model() {
        assert!(denial("  ").starts_with("denied: the user refused this call. Do not retry"));
        assert_eq!(
            denial("use cargo"),
            "denied: the user refused this call and said: use cargo"
        );
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
            "  ⎿ wrote f.rs\n    --- a/f.rs\n    +++ b/f.rs\n    @@ -1 +1 @@\n    -a\n    +b\n"
        );
        let err = Outcome::error("no such file");
        assert_eq!(
            result_text(plain(), false, &err, 80),
            "  ⎿ error · 1 line\n    no such file\n"
        );
    }

    #[test]
    fn long_diffs_are_capped() {
        let diff: String = (0..DIFF_LINES + 5).map(|i| format!("+{i}\n")).collect();
        let text = capped_diff(plain(), &diff);
        assert_eq!(text.lines().count(), DIFF_LINES + 1);
        assert!(text.ends_with("… 5 more diff lines\n"));
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
    fn recap_cuts_long_text() {
        assert_eq!(head_lines("a\nb\nc", 2), "a\nb\n…");
        assert_eq!(tail_lines("a\nb\nc", 2), "…\nb\nc");
        assert_eq!(tail_lines("a\n", 2), "a");
    }

    #[test]
    fn cost_lists_every_counter() {
        let usage = Usage {
            input_tokens: 10,
            output_tokens: 20,
            cache_read_input_tokens: 30,
            cache_creation_input_tokens: 40,
        };
        let lines = cost_lines(&usage, 0.5, 3);
        assert_eq!(
            lines[0],
            "tokens: 10 in · 20 out · 30 cache read · 40 cache write"
        );
        assert!(lines[1].starts_with("cost: $0.5000 over 3 model replies"));
    }
}
