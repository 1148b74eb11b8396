//! The interactive REPL: reads prompts with the line editor, runs each as a task, and
//! handles the slash commands, `!command` (a shell command of the user's own) and
//! `# note` (kept in the project's instruction file). What the agent does is
//! `agent.rs`'s business; what a task shows is `view.rs`'s, its approval questions
//! `approve.rs`'s, `@file` and completion `attach.rs`'s; how a line is edited is
//! `editor.rs`'s; how text is made safe and coloured is `term.rs`'s.

use super::approve::PROJECT_SETTINGS;
use super::attach::{attach, complete};
use super::editor::{self, Editor, ReadResult};
use super::headless::{describe, refusal_line};
use super::slash::{COMMANDS, ModelSwitch, Slash, is_command, parse_slash};
use super::term::{self, Paint, Style, sanitize};
use super::view::View;
use crate::agent::{Agent, Stop};
use crate::app::{self, Dirs, NewSession, Resumed, Setup};
use crate::approval::{Mode, Verdict};
use crate::cli::{Args, Resume};
use crate::config::Settings;
use crate::context;
use crate::journal::{self, Journal};
use crate::model::{Block, Client, Message, Role, Usage};
use crate::paths::Workspace;
use crate::price;
use crate::sessions;
use crate::tools::{self, Action};
use crossterm::event::{KeyCode, KeyModifiers};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Lines of a resumed session's last prompt and answer shown; enough to remember it.
const RECAP_LINES: usize = 12;
/// Sessions the picker offers; older ones are reached with `/resume ID`.
const PICK_LIMIT: usize = 20;
/// Characters of a skill's description `/skills` shows.
const SKILL_LINE: usize = 72;
/// The prompt the editor shows.
const PROMPT: &str = "› ";
/// Where `# note` keeps a note: the instruction file Claude Code's `#` writes to.
const NOTES_FILE: &str = "CLAUDE.md";
/// Asking a local server for its context window (`/context`): it answers at once or not.
const WINDOW_PROBE: Duration = Duration::from_millis(500);
/// The modes Shift-Tab goes through, in Claude Code's order.
const MODE_CYCLE: [Mode; 3] = [Mode::Default, Mode::AcceptEdits, Mode::Plan];

/// Runs the REPL until the user leaves; returns the exit code.
pub fn run(args: &Args, dirs: &Dirs, setup: Setup) -> Result<i32, String> {
    install_panic_hook();
    let mut repl = Repl::new(args, dirs, setup);
    repl.greet();
    repl.ask_trust();
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
    repl.view.stop_spin();
    repl.agent.end_session("prompt_input_exit", &mut repl.view);
    repl.farewell();
    result.map(|()| 0)
}

/// Whatever happens, a panic leaves the terminal usable: raw mode off, then the default
/// report.
fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        editor::restore_terminal_fully();
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
    /// The arguments nib started with: `/model NAME` starts from them, so a provider
    /// one switch named does not stick to the next.
    start_args: Args,
    settings: Settings,
    system: Vec<context::Part>,
    session_id: String,
    /// Where journals live; `None` when there is no data directory.
    sessions_root: Option<PathBuf>,
    /// A session not written yet, created with its first prompt so an unused one
    /// leaves no file behind.
    pending: Option<NewSession>,
    /// The mode nib started in, which Shift-Tab also goes through when it is not one
    /// of `MODE_CYCLE` (so `--yes` can be had back).
    start_mode: Mode,
    /// Told to the model with the next prompt (e.g. that the user undid a change).
    notes: Vec<String>,
}

impl Repl {
    fn new(args: &Args, dirs: &Dirs, setup: Setup) -> Repl {
        let history = dirs.data.as_ref().map(|d| d.join("nib").join("history"));
        let workspace = Workspace {
            root: setup.cwd.clone(),
            home: dirs.home.clone(),
        };
        let view = View::new(Style::detect(), setup.agent.cancel.clone(), workspace);
        Repl {
            start_mode: setup.agent.gate.mode(),
            agent: setup.agent,
            view,
            editor: Editor::new(history),
            args: args.clone(),
            start_args: args.clone(),
            settings: setup.settings,
            system: setup.system,
            session_id: setup.session_id,
            sessions_root: dirs.data.as_deref().map(journal::sessions_root),
            pending: setup.pending,
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
            self.view.workspace.root.display()
        );
        self.dim(&sanitize(&line));
        self.dim(&format!("sandbox: {}", self.agent.sandbox.describe()));
        self.dim(
            "/help · @path attaches a file · !cmd runs a command · Esc interrupts · \
             Shift-Tab: mode",
        );
        if self.agent.gate.mode() == Mode::Bypass {
            self.warn(&format!("warning: {}", app::BYPASS_WARNING));
        }
    }

    /// The last exchange of a resumed session, so the user knows where they are.
    fn recap(&self) {
        let (prompt, answer) = last_exchange(&self.agent.messages);
        self.dim(&format!(
            "── resumed session {} ({})",
            self.session_id,
            term::plural(self.agent.messages.len(), "message")
        ));
        let Some(p) = prompt else { return };
        say(&format!(
            "{PROMPT}{}",
            sanitize(&head_lines(&p, RECAP_LINES))
        ));
        match answer {
            Some(a) => say(&sanitize(&tail_lines(&a, RECAP_LINES))),
            None => self.dim("(no answer: the request failed or was interrupted)"),
        }
    }

    fn read_loop(&mut self) -> Result<(), String> {
        let mut armed = false;
        loop {
            if let Some(e) = self.editor.take_history_error() {
                self.warn(&format!("history is not saved: {e}"));
            }
            let root = self.view.workspace.root.clone();
            let prompt = self.style().paint(Paint::Bold, PROMPT);
            let gate = &self.agent.gate;
            let custom = self.custom_names();
            let mut commands: Vec<&str> = COMMANDS.iter().map(|(n, _)| *n).collect();
            commands.extend(custom.iter().map(String::as_str));
            let idle = crate::signals::Idle::enter();
            let read = self
                .editor
                .read_line(&prompt, &|buffer, cursor| {
                    complete(buffer, cursor, &root, gate, &commands)
                })
                .map_err(|e| format!("cannot read from the terminal: {e}"))?;
            drop(idle);
            match read {
                ReadResult::Eof => return Ok(()),
                ReadResult::ShiftTab(typed) => {
                    self.cycle_mode();
                    self.editor.prefill(&typed);
                }
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
        if let Some(command) = trimmed.strip_prefix('!') {
            self.shell(command.trim());
            return Flow::Continue;
        }
        if let Some(note) = trimmed
            .strip_prefix("# ")
            .filter(|_| !trimmed.contains('\n'))
        {
            self.note(note.trim());
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
        let root = self.view.workspace.root.clone();
        let (mut prompt, attached) = attach(line, &root, &self.agent.gate);
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
        self.view.start_task("thinking");
        let result = task(&mut self.agent, &mut self.view);
        let typed = self.view.end_task();
        self.editor.prefill(&typed);
        match &result.stop {
            Stop::Done => {}
            Stop::Interrupted => say(&self.style().paint(Paint::Yellow, "interrupted")),
            other => self.warn(&describe(other)),
        }
    }

    /// Creates the journal of a session not written yet (new, forked, or `/clear`ed).
    fn open_pending(&mut self) {
        let (Some(new), Some(root)) = (self.pending.take(), self.sessions_root.as_ref()) else {
            return;
        };
        match new.create(root) {
            Ok(j) => self.agent.journal = Some(j),
            Err(e) => {
                self.warn(&format!(
                    "{e}; this session is not being saved, and nib changes no files"
                ));
                self.agent.unsaved = Some(e.to_string());
            }
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
            Slash::Permissions(None) => self.permissions(),
            Slash::Permissions(Some(mode)) => self.set_mode(mode)?,
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
        self.view.start_task("summarizing");
        let done = self.agent.compact(&mut self.view);
        let typed = self.view.end_task();
        self.editor.prefill(&typed);
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
        self.dim("  !command runs a shell command and adds its output to the conversation");
        self.dim(&format!(
            "  # note keeps a note in {NOTES_FILE} (not sent as a message)"
        ));
        self.dim("  Alt-Enter or Ctrl-J: new line · Up/Down: history · Shift-Tab: permission mode");
        self.dim("  Esc or Ctrl-C: interrupt the task · Ctrl-C twice at the prompt: exit");
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
        let new = NewSession::new(
            journal::new_id(),
            &self.view.workspace.root,
            &self.agent.client.endpoint,
        );
        self.session_id = new.meta.id.clone();
        self.pending = (!self.args.no_session_persistence).then_some(new);
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
        sessions::list(root, Some(&self.view.workspace.root))
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
        let mut args = self.start_args.clone();
        args.model = Some(switch.name);
        if let Some(p) = switch.provider {
            if args.provider.is_some_and(|start| start != p) && switch.base_url.is_none() {
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

    /// `/context`: what the next request holds, in (estimated) tokens and as a share
    /// of the context window, one aligned row per part.
    fn context(&mut self) {
        let mut rows: Vec<(String, u64)> = self
            .system
            .iter()
            .map(|p| (p.label.clone(), price::estimate_bytes(p.text.len())))
            .collect();
        let specs: usize = self
            .agent
            .specs
            .iter()
            .map(|s| s.schema.to_string().len() + s.description.len())
            .sum();
        rows.push(("tool definitions".into(), price::estimate_bytes(specs)));
        let messages = self.agent.messages.len() as u64;
        let conversation = format!("conversation ({})", term::plural(messages, "message"));
        rows.push((conversation, price::estimate_tokens(&self.agent.messages)));
        let total: u64 = rows.iter().map(|(_, t)| t).sum();
        let window = self
            .agent
            .window
            .tokens(&|base| crate::model::server_window(base, WINDOW_PROBE));
        rows.push(("total".into(), total));
        for line in context_rows(&rows, window) {
            say(&line);
        }
        self.dim(&format!(
            "estimated tokens · window {} tokens",
            term::format_tokens(window)
        ));
        let (used, window) = self.agent.fill();
        say(&format!("  {}", super::context_line(used, window)));
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
                crate::paths::short_path(d, home.as_deref())
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

    /// Shift-Tab: the next mode of `MODE_CYCLE` (and the start mode, if it is another).
    fn cycle_mode(&mut self) {
        let mut cycle = MODE_CYCLE.to_vec();
        if !cycle.contains(&self.start_mode) {
            cycle.push(self.start_mode);
        }
        let now = self.agent.gate.mode();
        let at = cycle.iter().position(|m| *m == now);
        let next = at.map_or(Mode::Default, |i| cycle[(i + 1) % cycle.len()]);
        self.agent.gate.set_mode(next);
        self.dim(&format!(
            "mode: {} (Shift-Tab for the next)",
            mode_said(next)
        ));
    }

    /// `/permissions MODE`. Bypassing permissions only when nib started that way.
    fn set_mode(&mut self, mode: Mode) -> Result<(), String> {
        if mode == Mode::Bypass && self.start_mode != Mode::Bypass {
            return Err(
                "bypassPermissions only when nib starts with it: restart with --yes".into(),
            );
        }
        self.agent.gate.set_mode(mode);
        say(&format!("mode: {}", mode_said(mode)));
        Ok(())
    }

    /// `!command`: a command the user runs through nib's shell, checked by the gate as
    /// if typed into an approval (deny rules refuse it; it asks nothing, the user typed
    /// it); what it printed goes to the model with the next prompt.
    fn shell(&mut self, command: &str) {
        if command.is_empty() {
            return self.warn("!command runs a shell command, e.g. !git status");
        }
        let action = Action::Bash {
            command: command.to_string(),
            timeout: tools::shell::DEFAULT_TIMEOUT,
        };
        if let Verdict::Deny(why) = self.agent.gate.check(&action) {
            let line = refusal_line(&sanitize(command), &why);
            return say(&self.style().paint(Paint::Red, &line));
        }
        self.view.start_task("running");
        let ctx = tools::Context {
            workspace: &self.agent.workspace,
            cancel: &self.agent.cancel,
            env: &self.agent.env,
            // The person typed it: approved, and confined as any approved command.
            sandbox: &self.agent.sandbox,
            grant: crate::sandbox::Grant::Approved,
            may_read: &|_| true,
            seen: &self.agent.seen,
        };
        let mut outcome = tools::execute(&action, &ctx);
        outcome.content = self
            .agent
            .redactor
            .redact_known(&outcome.content)
            .into_owned();
        let typed = self.view.end_task();
        self.editor.prefill(&typed);
        self.view.tool_done(true, &outcome);
        self.notes.push(format!(
            "[the user ran a shell command themselves: `{command}`; it printed:]\n{}",
            outcome.content
        ));
    }

    /// `# note`: appended to the project's `CLAUDE.md` (read into the system prompt of
    /// later sessions) and told to the model with the next prompt; never sent alone.
    fn note(&mut self, note: &str) {
        let path = self.view.workspace.root.join(NOTES_FILE);
        let line = format!("- {note}\n");
        let mut text = std::fs::read_to_string(&path).unwrap_or_default();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&line);
        if let Err(e) = std::fs::write(&path, text) {
            return self.warn(&format!(
                "cannot write {NOTES_FILE}: {e}; the note is not kept"
            ));
        }
        self.notes
            .push(format!("[the user noted in {NOTES_FILE}: {note}]"));
        self.dim(&format!(
            "noted in {NOTES_FILE} (the model is told with your next message)"
        ));
    }

    fn permissions(&self) {
        let gate = &self.agent.gate;
        say(&format!("mode: {}", mode_said(gate.mode())));
        say(&format!("sandbox: {}", self.agent.sandbox.describe()));
        let rules = gate.rules_in_force();
        if rules.is_empty() {
            say("no rules in force");
        }
        for rule in &rules {
            say(&sanitize(rule));
        }
        if let Some(notice) = gate.untrusted_notice() {
            self.warn(&notice);
        }
        self.dim(&format!(
            "rules are read from ~/.claude/settings.json, .claude/settings.json and {PROJECT_SETTINGS}"
        ));
    }

    /// A folder whose own settings would allow tools or set the mode: shows what they
    /// would apply and asks once (the answer is kept in nib's data directory).
    fn ask_trust(&mut self) {
        let held = self.agent.gate.trust_question().to_vec();
        if held.is_empty() {
            return;
        }
        // Keys typed before the question is shown never answer it.
        super::keys::drop_typed();
        let title = "? trust this folder? Its own settings would apply:";
        say(&self.style().paint(Paint::Yellow, title));
        for h in &held {
            for rule in &h.allow {
                say(&sanitize(&format!("    allow {rule}  ({})", h.file)));
            }
            if let Some(mode) = &h.mode {
                say(&sanitize(&format!("    defaultMode {mode}  ({})", h.file)));
            }
        }
        say("  [y] yes, trust it · [n] no (its deny and ask rules apply either way)");
        let trusted = loop {
            let Ok(key) = editor::read_key() else {
                break false;
            };
            let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
            match key.code {
                KeyCode::Char('y' | 'Y') => break true,
                KeyCode::Char('c' | 'd') if ctrl => break false,
                KeyCode::Char('n' | 'N') | KeyCode::Esc => break false,
                _ => {}
            }
        };
        self.dim(match trusted {
            true => "  → trusted: its rules apply",
            false => "  → not trusted: its allow rules and defaultMode are ignored (nib trust changes that)",
        });
        if let Err(e) = self.agent.gate.answer_trust(trusted) {
            self.warn(&e);
        }
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

/// A mode and what it means.
fn mode_said(mode: Mode) -> String {
    let means = match mode {
        Mode::Default => "asks before commands and file changes",
        Mode::AcceptEdits => "file changes in the workspace run without asking",
        Mode::Plan => "read-only: no file changes, only read-only commands",
        Mode::DontAsk => "refuses whatever is not allowed by a rule",
        Mode::Bypass => "everything runs without asking (deny rules still apply)",
    };
    format!("{} · {means}", mode.name())
}

/// `/context` rows: label, tokens and share of the window, in aligned columns.
fn context_rows(rows: &[(String, u64)], window: u64) -> Vec<String> {
    let labels: Vec<String> = rows
        .iter()
        .map(|(l, _)| term::truncate_to_width(&sanitize(l), 32).into_owned())
        .collect();
    let width = labels
        .iter()
        .map(|l| term::display_width(l))
        .max()
        .unwrap_or(0);
    let mut out = vec![format!(
        "  {:<width$}  {:>8}  {:>6}",
        "", "tokens", "window"
    )];
    for (label, (_, tokens)) in labels.iter().zip(rows) {
        let pad = width - term::display_width(label);
        let share = 100.0 * *tokens as f64 / window.max(1) as f64;
        out.push(format!(
            "  {label}{}  {tokens:>8}  {share:>5.1}%",
            " ".repeat(pad)
        ));
    }
    out
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
        format!(
            "cost: ${cost:.4} over {} (list prices; local models cost $0)",
            match turns {
                1 => "1 model reply".to_string(),
                n => format!("{n} model replies"),
            }
        ),
    ]
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
    fn context_rows_align() {
        let rows = vec![
            ("base prompt".to_string(), 1200),
            ("AGENTS.md".to_string(), 34),
            ("total".to_string(), 1234),
        ];
        let lines = context_rows(&rows, 10_000);
        assert_eq!(lines[0], "                 tokens  window");
        assert_eq!(lines[1], "  base prompt      1200   12.0%");
        assert_eq!(lines[2], "  AGENTS.md          34    0.3%");
        assert_eq!(lines[3], "  total            1234   12.3%");
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
