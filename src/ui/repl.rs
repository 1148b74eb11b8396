//! The interactive REPL: reads prompts with the line editor, runs each as a task, and
//! handles the slash commands, `!command` (a shell command of the user's own) and
//! `# note` (kept in the project's instruction file). Which session it is in is
//! `repl/resume.rs`'s business, what the read-only commands show `repl/show.rs`'s,
//! parsing a slash line `slash.rs`'s; what the agent does is `agent.rs`'s; what a task
//! shows is `view.rs`'s, its approval questions `approve.rs`'s, `@file` and completion
//! `attach.rs`'s; how a line is edited is `editor.rs`'s; how text is made safe and
//! coloured is `term.rs`'s.

use super::Setup;
use super::attach::{attach, complete};
use super::editor::{self, Editor, ReadResult};
use super::headless::{describe, refusal_line};
use super::slash::{COMMANDS, ModelSwitch, Slash, is_command, parse_slash};
use super::term::{self, Paint, Style, sanitize};
use super::view::View;
use crate::agent::{Agent, Stop};
use crate::approval::{Mode, Verdict};
use crate::cli::{Args, ExitCode, Resume};
use crate::config::{Config, Dirs};
use crate::context;
use crate::model::Client;
use crate::tools::{self, Action};
use std::io::{self, Write};

mod resume;
mod show;
use show::mode_said;

/// The prompt the editor shows.
const PROMPT: &str = "› ";
/// Where `# note` keeps a note: the instruction file Claude Code's `#` writes to.
const NOTES_FILE: &str = "CLAUDE.md";
/// The modes Shift-Tab goes through, in Claude Code's order.
const MODE_CYCLE: [Mode; 3] = [Mode::Default, Mode::AcceptEdits, Mode::Plan];

/// Runs the REPL until the user leaves; returns the exit code.
pub fn run(args: &Args, dirs: &Dirs, setup: Setup) -> Result<ExitCode, String> {
    install_panic_hook();
    let mut repl = Repl::new(args, dirs, setup);
    repl.greet();
    super::approve::ask_trust(&mut repl.view, repl.agent.gate_mut());
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
    result.map(|()| ExitCode::Success)
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
    /// The arguments nib started with: `/model NAME` starts from them, so a provider
    /// one switch named does not stick to the next.
    start_args: Args,
    config: Config,
    system: Vec<context::Part>,
    /// The mode nib started in, which Shift-Tab also goes through when it is not one
    /// of `MODE_CYCLE` (so `--yes` can be had back).
    start_mode: Mode,
    /// Told to the model with the next prompt (e.g. that the user undid a change).
    notes: Vec<String>,
}

impl Repl {
    fn new(args: &Args, dirs: &Dirs, setup: Setup) -> Repl {
        let history = dirs.data.as_ref().map(|d| d.join("nib").join("history"));
        let view = View::new(
            Style::detect(setup.config.env.var_os("NO_COLOR")),
            setup.agent.parts().cancel.clone(),
            setup.agent.parts().workspace.clone(),
        );
        Repl {
            start_mode: setup.agent.parts().gate.mode(),
            agent: setup.agent,
            view,
            editor: Editor::new(history),
            start_args: args.clone(),
            config: setup.config,
            system: setup.system,
            notes: Vec::new(),
        }
    }

    fn dim(&self, text: &str) {
        say(&self.view.style.paint(Paint::Dim, text));
    }

    fn warn(&self, text: &str) {
        let text = format!("nib: {}", sanitize(text));
        say(&self.view.style.paint(Paint::Yellow, &text));
    }

    fn greet(&self) {
        let e = self.agent.endpoint();
        let line = format!(
            "nib {} · {} ({} {}) · {}",
            env!("CARGO_PKG_VERSION"),
            e.model,
            e.provider.name(),
            e.base_url,
            self.view.workspace.root.display()
        );
        self.dim(&sanitize(&line));
        let parts = self.agent.parts();
        self.dim(&format!("sandbox: {}", parts.sandbox.describe()));
        self.dim(
            "/help · @path attaches a file · !cmd runs a command · Esc interrupts · \
             Shift-Tab: mode",
        );
        if parts.gate.mode() == Mode::Bypass {
            self.warn(&format!("warning: {}", super::BYPASS_WARNING));
        }
    }

    fn read_loop(&mut self) -> Result<(), String> {
        let mut armed = false;
        loop {
            if let Some(e) = self.editor.take_history_error() {
                self.warn(&format!("history is not saved: {e}"));
            }
            let root = self.view.workspace.root.clone();
            let prompt = self.view.style.paint(Paint::Bold, PROMPT);
            let gate = &self.agent.parts().gate;
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
                let custom = context::commands::find(&self.agent.parts().commands, trimmed)
                    .is_some()
                    || context::skills::expand(&self.agent.parts().skills, trimmed).is_some();
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
        let custom = context::commands::find(&self.agent.parts().commands, line)
            .map(|(command, args)| (command.clone(), args.to_string()));
        if let Some((command, args)) = custom {
            return self.run_task(|agent, view| agent.run_command(&command, &args, view));
        }
        let root = self.view.workspace.root.clone();
        let (mut prompt, attached) = attach(line, &root, &self.agent.parts().gate);
        for a in &attached {
            self.dim(&a.describe());
        }
        if let Some(expanded) = context::skills::expand(&self.agent.parts().skills, &prompt) {
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
        self.editor.prefill(&self.view.end_task());
        match &result.stop {
            Stop::Done => {}
            Stop::Interrupted => say(&self.view.style.paint(Paint::Yellow, "interrupted")),
            other => self.warn(&describe(other)),
        }
    }

    /// Creates the journal of a session not written yet (new, forked, or `/clear`ed).
    fn open_pending(&mut self) {
        if let Err(e) = self.agent.session_mut().begin() {
            self.warn(&format!(
                "{e}; this session is not being saved, and nib changes no files"
            ));
        }
    }

    fn command(&mut self, command: Slash) -> Result<(), String> {
        match command {
            Slash::Help => self.help(),
            Slash::Clear => self.clear(),
            Slash::Resume(Some(id)) => self.resume_id(&id)?,
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
        if self.agent.session().messages.is_empty() {
            return say("nothing to compact: the conversation is empty");
        }
        self.open_pending();
        self.view.start_task("summarizing");
        let done = self.agent.make_room(&mut self.view, true);
        self.editor.prefill(&self.view.end_task());
        match done {
            Ok(0) => say("nothing to compact: the conversation is already short"),
            Ok(_) => {}
            Err(stop) => self.warn(&describe(&stop)),
        }
    }

    /// `/name` of each custom command and skill, for Tab.
    fn custom_names(&self) -> Vec<String> {
        let commands = self.agent.parts().commands.iter().map(|c| &c.name);
        let skills = self.agent.parts().skills.iter().map(|s| &s.name);
        commands.chain(skills).map(|n| format!("/{n}")).collect()
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
        args.base_url = switch.base_url.or(args.base_url);
        let resolved = self.config.endpoint(&args).map_err(|e| e.to_string())?;
        if resolved.source == crate::config::endpoint::Source::Probe {
            super::report::found_locally(&resolved.endpoint);
        }
        let cancel = self.agent.parts().cancel.clone();
        let client = Client::new(resolved.endpoint, self.config.settings.limits(), cancel);
        self.agent.set_client(client);
        self.show_model();
        Ok(())
    }

    /// Shift-Tab: the next mode of `MODE_CYCLE` (and the start mode, if it is another).
    fn cycle_mode(&mut self) {
        let mut cycle = MODE_CYCLE.to_vec();
        if !cycle.contains(&self.start_mode) {
            cycle.push(self.start_mode);
        }
        let now = self.agent.parts().gate.mode();
        let at = cycle.iter().position(|m| *m == now);
        let next = at.map_or(Mode::Default, |i| cycle[(i + 1) % cycle.len()]);
        self.agent.gate_mut().set_mode(next);
        let said = mode_said(next);
        self.dim(&format!("mode: {said} (Shift-Tab for the next)"));
    }

    /// `/permissions MODE`. Bypassing permissions only when nib started that way.
    fn set_mode(&mut self, mode: Mode) -> Result<(), String> {
        if mode == Mode::Bypass && self.start_mode != Mode::Bypass {
            return Err(
                "bypassPermissions only when nib starts with it: restart with --yes".into(),
            );
        }
        self.agent.gate_mut().set_mode(mode);
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
        if let Verdict::Deny(why) = self.agent.parts().gate.check(&action) {
            let line = refusal_line(&sanitize(command), &why);
            return say(&self.view.style.paint(Paint::Red, &line));
        }
        self.view.start_task("running");
        let outcome = self.agent.run_user_command(&action);
        self.editor.prefill(&self.view.end_task());
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
        let mut text = std::fs::read_to_string(&path).unwrap_or_default();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!("- {note}\n"));
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

    fn farewell(&self) {
        let session = self.agent.session();
        let u = &session.totals().usage;
        self.dim(&format!(
            "session {}: {} tokens in · {} out · {} cache read · ${:.4}",
            session.id(),
            term::format_tokens(u.input_tokens),
            term::format_tokens(u.output_tokens),
            term::format_tokens(u.cache_read_input_tokens),
            session.totals().cost_usd
        ));
        if session.journal().is_some() {
            say(&format!("resume with: nib -r {}", session.id()));
        }
    }
}
