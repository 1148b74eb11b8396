//! The loop: ask the model → gate each tool call → run it → journal → feed results back,
//! until the model answers without tool calls or a limit is reached.
//!
//! The agent prints nothing: it reports through the `Ui` trait, which also answers
//! approval questions (the REPL asks a person; headless mode denies). The conversation
//! it works on is a `Session`'s; one reply's tool calls are `agent/calls.rs`'s, room in
//! the context window `agent/room.rs`'s, hooks and custom commands
//! `agent/setup_points.rs`'s.

use crate::approval::Gate;
use crate::compact::Window;
use crate::guard;
use crate::hooks::Hooks;
use crate::journal::Record;
use crate::model::{
    self, Block, Client, Message, Reply, Request, Role, StopReason, ToolCall, ToolSpec, Usage,
};
use crate::paths::Workspace;
use crate::price;
use crate::sandbox::Sandbox;
use crate::session::Session;
use crate::tools::fs::Plan;
use crate::tools::{Action, Outcome, Tool};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

mod calls;
mod room;
mod setup_points;

/// Output tokens a reply may use unless settings say otherwise: enough for a large edit.
pub const MAX_OUTPUT_TOKENS: u32 = 8192;
/// The same for a server on this machine: CPU inference makes 10–50 tokens a second,
/// and a longer reply from a small local model is most likely a loop.
pub const LOCAL_MAX_OUTPUT_TOKENS: u32 = 2048;
/// What the model is told when its reply was cut by the output cap (once per task).
const CONTINUE_PROMPT: &str = "Your last reply was cut off by the output token limit. \
     Continue exactly where it stopped, without repeating anything.";

/// A person's (or the headless policy's) answer to "may this run?".
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    Once,
    /// Allow this rule for the rest of the session.
    Session(String),
    /// Allow this rule in this project from now on (saved to settings).
    Project(String),
    /// Refuse, with a message for the model.
    Deny(String),
}

/// What the UI is asked to decide.
pub struct Approval<'a> {
    pub action: &'a Action,
    pub reason: &'a str,
    /// The rule an "always" answer would add, if one is safe.
    pub suggestion: Option<String>,
    /// A rule that would let this action run (the suggestion, or a broader one such as
    /// `Bash`); `None` when no rule can (protected paths), only bypassing permissions.
    pub allowed_by: Option<String>,
    /// For a write or edit, what it would do (planned as it will be, written nowhere),
    /// or why it would fail: a person approves what will happen, not a file name.
    pub plan: Option<&'a Result<Plan, String>>,
}

/// What happened, for the UI to show.
pub enum Event<'a> {
    /// A piece of the assistant's text as it streams.
    Text(&'a str),
    Retry(&'a model::Retry),
    /// An assistant reply is complete.
    Reply(&'a Reply),
    ToolStart(&'a ToolCall, &'a Action),
    /// A call refused before it ran: malformed, an unknown tool, or a deny rule (the
    /// action when it parsed, and why).
    Refused {
        call: &'a ToolCall,
        action: Option<&'a Action>,
        why: &'a str,
    },
    ToolDone(&'a ToolCall, &'a Outcome),
    /// All results of one turn, as the message that goes back to the model.
    Results(&'a Message),
    /// The conversation was compacted: `replaced` older messages became a summary
    /// (`summarised` false: they were dropped, summarising failed).
    Compacted {
        replaced: usize,
        summarised: bool,
    },
    /// To make room, `cleared` old tool results became one-line stubs and `cut` of the
    /// latest ones were shortened.
    Trimmed {
        cleared: usize,
        cut: usize,
    },
    /// Before each request: how full the context window will be.
    Context {
        used: u64,
        window: u64,
    },
    Warning(String),
}

pub trait Ui {
    fn event(&mut self, event: Event<'_>);
    fn approve(&mut self, request: &Approval<'_>) -> Answer;
}

/// A call that was refused, as `permission_denials` lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct Denial {
    pub tool_name: String,
    pub tool_use_id: String,
    pub tool_input: Value,
}

/// How a task ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Stop {
    Done,
    MaxTurns,
    Budget {
        spent: f64,
        limit: f64,
    },
    Error(String),
    Interrupted,
    /// The last reply did not finish: cut by the output cap (after one "continue"),
    /// declined by the model, or the context window was full.
    Incomplete(StopReason),
}

impl Stop {
    /// The result subtype of Claude Code's result JSON.
    pub fn subtype(&self) -> &'static str {
        match self {
            Stop::Done => "success",
            Stop::MaxTurns => "error_max_turns",
            Stop::Budget { .. } => "error_max_budget_usd",
            Stop::Error(_) | Stop::Interrupted | Stop::Incomplete(_) => "error_during_execution",
        }
    }
}

/// The outcome of one task (one user prompt).
#[derive(Clone, Debug)]
pub struct TaskResult {
    pub stop: Stop,
    /// The final assistant text (the last reply's text).
    pub text: String,
    pub turns: u32,
    pub denials: Vec<Denial>,
    pub api_time: Duration,
    /// Why the last reply ended; `None` before any reply.
    pub stop_reason: Option<StopReason>,
}

impl TaskResult {
    /// A task that has done nothing yet, to end as `stop` says.
    pub fn new(stop: Stop) -> TaskResult {
        TaskResult {
            stop,
            text: String::new(),
            turns: 0,
            denials: Vec::new(),
            api_time: Duration::ZERO,
            stop_reason: None,
        }
    }
}

/// What the loop works with besides the conversation, as the wiring builds it.
pub struct Parts {
    pub client: Client,
    pub gate: Gate,
    pub specs: Vec<ToolSpec>,
    pub system: String,
    pub workspace: Workspace,
    /// Environment for commands, secrets removed.
    pub env: Vec<(String, String)>,
    pub max_turns: u32,
    /// Output-token cap per reply.
    pub max_output_tokens: u32,
    pub max_budget_usd: Option<f64>,
    pub prices: price::Table,
    pub window: Window,
    pub cancel: Arc<AtomicBool>,
    /// What the `skill` tool can load.
    pub skills: Vec<crate::context::Skill>,
    /// Confines the commands the model runs.
    pub sandbox: Sandbox,
    /// Commands the settings files run at points of the loop.
    pub hooks: Hooks,
    /// MCP servers; their tools join `specs` before the first request.
    pub mcp: crate::mcp::Servers,
    /// Custom slash commands (`.claude/commands`).
    pub commands: Vec<crate::context::commands::Command>,
}

/// The loop and everything it needs: a session, a model client, a gate, the tools.
pub struct Agent {
    parts: Parts,
    session: Session,
    /// The conversation's size as the server last counted it, to size the next request.
    tally: price::Tally,
    /// Watches for the same tool call made again and again.
    calls: guard::Calls,
}

impl Agent {
    pub fn new(parts: Parts, session: Session) -> Agent {
        Agent {
            parts,
            session,
            tally: Default::default(),
            calls: Default::default(),
        }
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    pub fn session_mut(&mut self) -> &mut Session {
        &mut self.session
    }

    /// What the loop works with: the client, the gate, the tools and the rest.
    pub fn parts(&self) -> &Parts {
        &self.parts
    }

    pub fn endpoint(&self) -> &model::Endpoint {
        &self.parts.client.endpoint
    }

    /// `/model`: requests go through `client` from now on, its key masked too.
    pub fn set_client(&mut self, client: Client) {
        self.session.mask_key(&client.endpoint);
        self.parts.client = client;
    }

    /// The permission mode and trust answers change as the session goes.
    pub fn gate_mut(&mut self) -> &mut Gate {
        &mut self.parts.gate
    }

    /// Runs one task to its end.
    pub fn run(&mut self, prompt: &str, ui: &mut dyn Ui) -> TaskResult {
        self.parts.cancel.store(false, Ordering::SeqCst);
        self.calls = guard::Calls::default();
        let prompt = match self.prompt_hooks(prompt, ui) {
            Ok(prompt) => prompt,
            Err(why) => return TaskResult::new(Stop::Error(why)),
        };
        let mut result = TaskResult::new(Stop::MaxTurns);
        self.user_message(ui, prompt);
        result.stop = self.turns(ui, &mut result);
        let totals = *self.session.totals();
        let end = Record::End {
            subtype: result.stop.subtype().to_string(),
            turns: result.turns,
            usage: totals.usage,
            cost_usd: totals.cost_usd,
            session_turns: totals.turns,
        };
        self.record(ui, end);
        self.sync(ui);
        result
    }

    fn turns(&mut self, ui: &mut dyn Ui, result: &mut TaskResult) -> Stop {
        let mut stop_blocks = 0;
        let mut continued = false;
        while result.turns < self.parts.max_turns {
            if let Some(stop) = self.over_budget() {
                return stop;
            }
            if self.window_full() {
                if let Err(stop) = self.make_room(ui, false) {
                    return stop;
                }
                if let Some(stop) = self.over_budget() {
                    return stop;
                }
            }
            if let Some(stop) = self.too_big(ui) {
                return stop;
            }
            let started = Instant::now();
            let reply = self.ask(ui);
            result.api_time += started.elapsed();
            let reply = match reply {
                Ok(reply) => reply,
                Err(stop) => return stop,
            };
            result.turns += 1;
            self.session.count_turn();
            match result.stop_reason {
                Some(StopReason::MaxTokens) if continued => result.text.push_str(&reply.text),
                _ => result.text = reply.text.clone(),
            }
            result.stop_reason = Some(reply.stop.clone());
            if reply.calls.is_empty() {
                self.sync(ui);
                match reply.stop {
                    StopReason::MaxTokens if !continued => {
                        continued = true;
                        self.ask_to_continue(ui);
                        continue;
                    }
                    stop if stop.cut() || stop == StopReason::Refusal => {
                        return Stop::Incomplete(stop);
                    }
                    _ if self.stop_hooks(ui, &mut stop_blocks) => continue,
                    _ => return Stop::Done,
                }
            }
            let ended = self.run_calls(&reply.calls, ui, &mut result.denials);
            self.sync(ui);
            if let Some(stop) = ended {
                return stop;
            }
            let changes_files =
                |c: &ToolCall| matches!(Tool::from_name(&c.name), Some(Tool::Write | Tool::Edit));
            if let Some(why) = self.session.unsaved()
                && reply.calls.iter().any(changes_files)
            {
                return Stop::Error(format!(
                    "the session journal cannot be written ({why}); nib stopped before changing \
                     files: free space in the data directory, or run with --no-session-persistence"
                ));
            }
        }
        Stop::MaxTurns
    }

    /// A reply cut by the output cap: tell the model, once, and let it go on.
    fn ask_to_continue(&mut self, ui: &mut dyn Ui) {
        ui.event(Event::Warning(
            "the reply was cut by the output token limit; asking the model to continue".into(),
        ));
        self.user_message(ui, CONTINUE_PROMPT.to_string());
    }

    /// A user message joins the conversation and the journal.
    fn user_message(&mut self, ui: &mut dyn Ui, text: String) {
        self.session.messages.push(Message::user_text(&text));
        self.record(ui, Record::User { text });
    }

    /// A stop when the next request could take the spending past the budget.
    fn over_budget(&mut self) -> Option<Stop> {
        let limit = self.parts.max_budget_usd?;
        let input = self.input_tokens();
        let model = &self.parts.client.endpoint.model;
        let next = self.parts.prices.estimate_request(model, input);
        let spent = self.session.totals().cost_usd;
        (spent + next > limit).then_some(Stop::Budget { spent, limit })
    }

    /// One model request; the reply is added to the conversation and the journal.
    fn ask(&mut self, ui: &mut dyn Ui) -> Result<Reply, Stop> {
        let (specs, failures) = self.parts.mcp.take_specs();
        self.parts.specs.extend(specs);
        failures
            .into_iter()
            .for_each(|w| ui.event(Event::Warning(w)));
        let request = self.request();
        let mut partial = String::new();
        let mut repetition = guard::Repetition::new();
        let mut looped = None;
        let cancel = &self.parts.cancel;
        let sent = self.parts.client.send(&request, &mut |event| match event {
            model::Event::Text(_) if looped.is_some() => {}
            model::Event::Text(t) => {
                partial.push_str(t);
                ui.event(Event::Text(t));
                looped = repetition.push(t);
                if looped.is_some() {
                    // Stop reading: the rest of this reply would be more of the same.
                    cancel.store(true, Ordering::SeqCst);
                }
            }
            model::Event::Retry(retry) => {
                partial.clear();
                repetition = guard::Repetition::new();
                ui.event(Event::Retry(&retry));
            }
            model::Event::Stalled { silent, limit } => ui.event(Event::Warning(format!(
                "the model server has sent nothing for {} s; nib waits up to {} s \
                 (settings idle_timeout_secs)",
                silent.as_secs_f64(),
                limit.as_secs_f64()
            ))),
        });
        let reply = match (sent, looped) {
            (_, Some(keep)) => {
                self.parts.cancel.store(false, Ordering::SeqCst);
                partial.truncate(keep);
                ui.event(Event::Warning(
                    "the model's reply fell into a loop, repeating the same text; nib cut it there"
                        .into(),
                ));
                Reply {
                    text: partial,
                    calls: Vec::new(),
                    stop: StopReason::Other(guard::REPETITION_STOP.into()),
                    usage: None,
                    opaque: Vec::new(),
                }
            }
            (Ok(reply), None) => reply,
            (Err(model::Error::Interrupted), None) => {
                self.keep_partial(partial, ui);
                return Err(Stop::Interrupted);
            }
            (Err(e), None) => return Err(Stop::Error(e.to_string())),
        };
        let fixed = self.fixed_tokens();
        let usage = match reply.usage {
            Some(usage) => {
                let tokens = usage.input_tokens
                    + usage.cache_read_input_tokens
                    + usage.cache_creation_input_tokens;
                self.tally.record(tokens, &self.session.messages, fixed);
                usage
            }
            None => price::estimate_usage(self.input_tokens(), &reply),
        };
        self.charge(&usage);
        let record = Record::Assistant {
            text: reply.text.clone(),
            calls: reply.calls.clone(),
            stop: reply.stop.clone(),
            usage: Some(usage),
            model: self.parts.client.endpoint.model.clone(),
            interrupted: false,
            opaque: reply.opaque.clone(),
        };
        self.record(ui, record);
        self.session.messages.push(reply.message());
        if reply.stop == StopReason::Refusal {
            model::withhold_refusal(&mut self.session.messages);
        }
        ui.event(Event::Reply(&reply));
        Ok(reply)
    }

    /// The next request: the conversation with the system prompt and the tools.
    fn request(&self) -> Request<'_> {
        Request {
            model: &self.parts.client.endpoint.model,
            system: &self.parts.system,
            messages: &self.session.messages,
            tools: &self.parts.specs,
            max_tokens: self.parts.max_output_tokens,
        }
    }

    /// An interrupted reply keeps what had streamed, marked as interrupted.
    fn keep_partial(&mut self, partial: String, ui: &mut dyn Ui) {
        if partial.is_empty() {
            return;
        }
        let record = Record::Assistant {
            text: partial.clone(),
            calls: Vec::new(),
            stop: model::StopReason::Other("interrupted".into()),
            usage: None,
            model: self.parts.client.endpoint.model.clone(),
            interrupted: true,
            opaque: Vec::new(),
        };
        self.record(ui, record);
        self.session.messages.push(Message {
            role: Role::Assistant,
            content: vec![Block::Text {
                text: format!("{partial}\n[interrupted by the user]"),
            }],
        });
    }

    /// Appends to the journal; a journal that fails is reported once and dropped.
    fn record(&mut self, ui: &mut dyn Ui, record: Record) {
        if let Some(warning) = self.session.record(record) {
            ui.event(Event::Warning(warning));
        }
    }

    fn sync(&mut self, ui: &mut dyn Ui) {
        if let Err(e) = self.session.sync() {
            ui.event(Event::Warning(e.to_string()));
        }
    }

    /// Adds one request's tokens and their price to the session's totals.
    fn charge(&mut self, usage: &Usage) {
        let model = &self.parts.client.endpoint.model;
        let cost = self.parts.prices.cost(model, usage);
        self.session.charge(usage, cost);
    }
}
