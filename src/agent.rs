//! The loop: ask the model → gate each tool call → run it → journal → feed results back,
//! until the model answers without tool calls or a limit is reached.
//!
//! The agent prints nothing: it reports through the `Ui` trait, which also answers
//! approval questions (the REPL asks a person; headless mode denies).

use crate::approval::{Gate, Verdict};
use crate::compact::{self, Window};
use crate::guard::{self, CallCheck};
use crate::hooks::{self, Hooks};
use crate::journal::{Journal, Record};
use crate::model::{
    self, Block, Client, Message, Reply, Request, Role, StopReason, ToolCall, ToolSpec, Usage,
};
use crate::paths::Workspace;
use crate::price;
use crate::sandbox::{Grant, Sandbox};
use crate::tools::disk::Links;
use crate::tools::fs::{Plan, Seen};
use crate::tools::{self, Action, Outcome, Tool};
use serde_json::{Value, json};
use std::borrow::Cow;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

mod setup_points;

/// Output tokens a reply may use unless settings say otherwise: enough for a large edit.
pub const MAX_OUTPUT_TOKENS: u32 = 8192;
/// The same for a server on this machine: CPU inference makes 10–50 tokens a second,
/// and a longer reply from a small local model is most likely a loop.
pub const LOCAL_MAX_OUTPUT_TOKENS: u32 = 2048;
/// Asking a local server for its context window: it answers in milliseconds or not at all.
const WINDOW_PROBE_TIMEOUT: Duration = Duration::from_millis(500);
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

/// Output room a request must leave in the window, else it is refused rather than
/// sent to fail: a few words of answer (compaction aims far lower, at 80%).
const MIN_REPLY_TOKENS: u64 = 32;
/// Compaction halves the latest result until the request fits, down to this size.
const MIN_CUT_BYTES: usize = 512;

/// Everything the loop needs, passed in explicitly.
pub struct Agent {
    pub client: Client,
    pub gate: Gate,
    pub specs: Vec<ToolSpec>,
    pub system: String,
    pub messages: Vec<Message>,
    pub journal: Option<Journal>,
    pub workspace: Workspace,
    /// Environment for commands, secrets removed.
    pub env: Vec<(String, String)>,
    /// Masks keys and secret-looking values before they reach the journal, and nib's
    /// own keys in tool output before the model or the UI sees it.
    pub redactor: crate::secrets::Redactor,
    pub max_turns: u32,
    /// Output-token cap per reply.
    pub max_output_tokens: u32,
    pub max_budget_usd: Option<f64>,
    pub prices: price::Table,
    pub window: Window,
    /// The conversation's size as the server last counted it, to size the next request.
    pub tally: price::Tally,
    /// Watches for the same tool call made again and again.
    pub calls: guard::Calls,
    /// Tokens and dollars over the whole session.
    pub usage: Usage,
    pub cost_usd: f64,
    /// Model replies over the whole session.
    pub turns_total: u32,
    pub cancel: Arc<AtomicBool>,
    /// What the `skill` tool can load.
    pub skills: Vec<crate::context::Skill>,
    /// Subdirectories whose instruction files were already added to a tool result.
    pub instructed: HashSet<PathBuf>,
    /// Confines the commands the model runs.
    pub sandbox: Sandbox,
    /// What the model has read or written (rebuilt from the journal on resume).
    pub seen: Seen,
    /// Why the journal stopped being written, once it has: from then on no file is
    /// changed, since no change could be undone.
    pub unsaved: Option<String>,
    /// Commands the settings files run at points of the loop.
    pub hooks: Hooks,
    /// MCP servers; their tools join `specs` before the first request.
    pub mcp: crate::mcp::Servers,
    /// Custom slash commands (`.claude/commands`).
    pub commands: Vec<crate::context::commands::Command>,
}

impl Agent {
    /// Runs one task to its end.
    pub fn run(&mut self, prompt: &str, ui: &mut dyn Ui) -> TaskResult {
        self.cancel.store(false, Ordering::SeqCst);
        self.calls = guard::Calls::default();
        let mut result = TaskResult {
            stop: Stop::MaxTurns,
            text: String::new(),
            turns: 0,
            denials: Vec::new(),
            api_time: Duration::ZERO,
            stop_reason: None,
        };
        let prompt = match self.prompt_hooks(prompt, ui) {
            Ok(prompt) => prompt,
            Err(why) => {
                result.stop = Stop::Error(why);
                return result;
            }
        };
        self.messages.push(Message::user_text(&prompt));
        self.record(ui, Record::User { text: prompt });
        result.stop = self.turns(ui, &mut result);
        let end = Record::End {
            subtype: result.stop.subtype().to_string(),
            turns: result.turns,
            usage: self.usage,
            cost_usd: self.cost_usd,
            session_turns: self.turns_total,
        };
        self.record(ui, end);
        self.sync(ui);
        result
    }

    fn turns(&mut self, ui: &mut dyn Ui, result: &mut TaskResult) -> Stop {
        let mut stop_blocks = 0;
        let mut continued = false;
        while result.turns < self.max_turns {
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
            self.turns_total += 1;
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
            if let (None, Some(why)) = (&self.journal, &self.unsaved)
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
        self.messages.push(Message::user_text(CONTINUE_PROMPT));
        let text = CONTINUE_PROMPT.to_string();
        self.record(ui, Record::User { text });
    }

    /// A stop when the next request could take the spending past the budget.
    fn over_budget(&mut self) -> Option<Stop> {
        let limit = self.max_budget_usd?;
        let input = self.input_tokens();
        let model = &self.client.endpoint.model;
        let next = self.prices.estimate_request(model, input);
        (self.cost_usd + next > limit).then_some(Stop::Budget {
            spent: self.cost_usd,
            limit,
        })
    }

    /// Refuses a request that cannot fit the window even after compaction, rather
    /// than sending it to fail on the server; otherwise reports how full it is.
    fn too_big(&mut self, ui: &mut dyn Ui) -> Option<Stop> {
        let used = self.input_tokens();
        let window = self.window_tokens();
        ui.event(Event::Context { used, window });
        let known = self
            .window
            .is_known(&|base| model::server_window(base, WINDOW_PROBE_TIMEOUT));
        (known && used + MIN_REPLY_TOKENS > window).then(|| {
            Stop::Error(format!(
                "the conversation needs about {used} tokens, more than the model's context window \
                 of {window} even after compacting; start a new conversation (/clear, or nib \
                 without -c), shorten the prompt, or give the model a larger window (llama.cpp \
                 --ctx-size, settings \"context_window\")"
            ))
        })
    }

    /// The system prompt and tool schemas, estimated.
    fn fixed_tokens(&self) -> u64 {
        let specs: usize = self
            .specs
            .iter()
            .map(|s| s.name.len() + s.description.len() + s.schema.to_string().len())
            .sum();
        price::estimate_bytes(self.system.len() + specs)
    }

    /// Input tokens of the next request: the server's count when it can give one (a
    /// llama.cpp on this machine answers in milliseconds; Anthropic is asked only when
    /// the request might come near the compaction mark, which the upper bound of a
    /// token a byte tells), else the last count plus a calibrated estimate of the rest.
    fn input_tokens(&mut self) -> u64 {
        let fixed = self.fixed_tokens();
        let estimate = self.tally.tokens(&self.messages, fixed);
        if self.tally.is_exact(&self.messages) || self.tally.no_counts {
            return estimate;
        }
        let worst = price::most_tokens(&self.messages) + fixed * 4;
        let endpoint = &self.client.endpoint;
        let local =
            endpoint.provider == model::Provider::OpenAi && model::is_loopback(&endpoint.base_url);
        if !local
            && !self.window.is_full(worst, &|base| {
                model::server_window(base, WINDOW_PROBE_TIMEOUT)
            })
        {
            return estimate;
        }
        let request = Request {
            model: &self.client.endpoint.model,
            system: &self.system,
            messages: &self.messages,
            tools: &self.specs,
            max_tokens: self.max_output_tokens,
        };
        match self.client.count_tokens(&request) {
            Some(tokens) => {
                self.tally.record(tokens, &self.messages, fixed);
                tokens
            }
            None => {
                self.tally.no_counts = true;
                estimate
            }
        }
    }

    fn window_tokens(&mut self) -> u64 {
        self.window
            .tokens(&|base| model::server_window(base, WINDOW_PROBE_TIMEOUT))
    }

    fn window_mark(&mut self) -> u64 {
        self.window
            .mark(&|base| model::server_window(base, WINDOW_PROBE_TIMEOUT))
    }

    fn window_full(&mut self) -> bool {
        let used = self.input_tokens();
        self.window.is_full(used, &|base| {
            model::server_window(base, WINDOW_PROBE_TIMEOUT)
        })
    }

    /// How full the window is: (tokens the next request would take, the window).
    pub fn fill(&mut self) -> (u64, u64) {
        (self.input_tokens(), self.window_tokens())
    }

    /// `/compact`: makes room on demand (see `make_room`), summarising when it can.
    /// Returns how many messages changed (0 when nothing was worth it).
    pub fn compact(&mut self, ui: &mut dyn Ui) -> Result<usize, Stop> {
        self.make_room(ui, true)
    }

    /// Makes room in the context window, cheapest loss first: old tool results become
    /// one-line stubs, then the latest results are cut until the request fits under the
    /// compaction mark; if it still does not (or `summarise` asks for it), the older
    /// part of the conversation becomes a summary written by the model, recent prompts
    /// and the latest tool exchange kept verbatim. When the summary request fails, the
    /// older part is dropped with a note. Returns how many messages changed.
    fn make_room(&mut self, ui: &mut dyn Ui, summarise: bool) -> Result<usize, Stop> {
        let mark = self.window_mark();
        let cleared = compact::clear_old_results(&mut self.messages);
        let mut cut = 0;
        let mut max = compact::latest_result_bytes(&self.messages);
        self.tally.forget();
        while max > MIN_CUT_BYTES && self.input_tokens() > mark {
            max = (max / 2).max(MIN_CUT_BYTES);
            cut = compact::cut_latest_results(&mut self.messages, max).max(cut);
            self.tally.forget();
        }
        if cleared + cut > 0 {
            ui.event(Event::Trimmed { cleared, cut });
        }
        let replaced = if summarise || self.input_tokens() > mark {
            self.summarise_older(ui)?
        } else {
            0
        };
        if replaced == 0 && cleared + cut > 0 {
            let kept = self.messages.clone();
            self.record(
                ui,
                Record::Compacted {
                    summary: String::new(),
                    replaced: 0,
                    kept,
                },
            );
            self.sync(ui);
        }
        Ok(cleared + cut + replaced)
    }

    /// The older part of the conversation becomes a summary (or is dropped with a
    /// note when summarising fails). Returns how many messages were replaced.
    fn summarise_older(&mut self, ui: &mut dyn Ui) -> Result<usize, Stop> {
        let window = self.window_tokens();
        let Some(plan) = compact::plan(&self.messages, window) else {
            return Ok(0);
        };
        let (summary, summarised) = match self.summarise(plan.head, window, ui) {
            Ok(summary) => (summary, true),
            Err(model::Error::Interrupted) => return Err(Stop::Interrupted),
            Err(e) => {
                ui.event(Event::Warning(format!(
                    "could not summarise the conversation ({e}); dropping its older part instead"
                )));
                (compact::dropped_note(plan.head), false)
            }
        };
        self.messages = compact::rebuild(&summary, &plan.kept);
        self.tally.forget();
        let replaced = plan.head;
        let record = Record::Compacted {
            summary,
            replaced,
            kept: plan.kept,
        };
        self.record(ui, record);
        self.sync(ui);
        ui.event(Event::Compacted {
            replaced,
            summarised,
        });
        Ok(replaced)
    }

    /// Asks the model, without tools, to summarise `messages[..head]`.
    fn summarise(
        &mut self,
        head: usize,
        window: u64,
        ui: &mut dyn Ui,
    ) -> Result<String, model::Error> {
        let messages = [compact::summary_request(&self.messages[..head], window)];
        let request = Request {
            model: &self.client.endpoint.model,
            system: compact::SUMMARISE_SYSTEM,
            messages: &messages,
            tools: &[],
            max_tokens: compact::summary_tokens(window),
        };
        let reply = self.client.send(&request, &mut |event| {
            if let model::Event::Retry(retry) = event {
                ui.event(Event::Retry(&retry));
            }
        })?;
        let usage = reply.usage.unwrap_or_else(|| {
            let input = price::estimate_tokens(&messages);
            price::estimate_usage(input, &reply)
        });
        self.usage.add(&usage);
        self.cost_usd += self.prices.cost(&self.client.endpoint.model, &usage);
        match reply.text.trim() {
            "" => Err(model::Error::malformed("the summary was empty".into())),
            text => Ok(text.to_string()),
        }
    }

    /// One model request; the reply is added to the conversation and the journal.
    fn ask(&mut self, ui: &mut dyn Ui) -> Result<Reply, Stop> {
        let (specs, failures) = self.mcp.take_specs();
        self.specs.extend(specs);
        failures
            .into_iter()
            .for_each(|w| ui.event(Event::Warning(w)));
        let request = Request {
            model: &self.client.endpoint.model,
            system: &self.system,
            messages: &self.messages,
            tools: &self.specs,
            max_tokens: self.max_output_tokens,
        };
        let mut partial = String::new();
        let mut repetition = guard::Repetition::new();
        let mut looped = None;
        let cancel = &self.cancel;
        let sent = self.client.send(&request, &mut |event| match event {
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
                self.cancel.store(false, Ordering::SeqCst);
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
                self.tally.record(tokens, &self.messages, fixed);
                usage
            }
            None => price::estimate_usage(self.input_tokens(), &reply),
        };
        self.usage.add(&usage);
        self.cost_usd += self.prices.cost(&self.client.endpoint.model, &usage);
        self.record(
            ui,
            Record::Assistant {
                text: reply.text.clone(),
                calls: reply.calls.clone(),
                stop: reply.stop.clone(),
                usage: Some(usage),
                model: self.client.endpoint.model.clone(),
                interrupted: false,
                opaque: reply.opaque.clone(),
            },
        );
        self.messages.push(reply.message());
        if reply.stop == StopReason::Refusal {
            model::withhold_refusal(&mut self.messages);
        }
        ui.event(Event::Reply(&reply));
        Ok(reply)
    }

    /// An interrupted reply keeps what had streamed, marked as interrupted.
    fn keep_partial(&mut self, partial: String, ui: &mut dyn Ui) {
        if partial.is_empty() {
            return;
        }
        self.record(
            ui,
            Record::Assistant {
                text: partial.clone(),
                calls: Vec::new(),
                stop: model::StopReason::Other("interrupted".into()),
                usage: None,
                model: self.client.endpoint.model.clone(),
                interrupted: true,
                opaque: Vec::new(),
            },
        );
        self.messages.push(Message {
            role: Role::Assistant,
            content: vec![Block::Text {
                text: format!("{partial}\n[interrupted by the user]"),
            }],
        });
    }

    /// Runs one reply's tool calls in order. Returns a stop when the user interrupted
    /// or the model is stuck repeating a call.
    fn run_calls(
        &mut self,
        calls: &[ToolCall],
        ui: &mut dyn Ui,
        denials: &mut Vec<Denial>,
    ) -> Option<Stop> {
        let mut results = Vec::new();
        let mut ended = None;
        for call in calls {
            let outcome = match (&ended, self.calls.check(call)) {
                (Some(Stop::Interrupted), _) => {
                    Outcome::error("interrupted: the user stopped nib before this call ran")
                }
                (Some(_), _) => Outcome::error("not run: the task ended before this call ran"),
                (None, CallCheck::Run) => {
                    let outcome = self.run_call(call, ui, denials);
                    self.calls.ran(&outcome.content);
                    outcome
                }
                (None, CallCheck::Remind(text)) => Outcome::error(text),
                (None, CallCheck::Stop(why)) => {
                    ended = Some(Stop::Error(why));
                    Outcome::error("not run: the same call was made too many times in a row")
                }
            };
            if ended.is_none() && self.cancel.load(Ordering::SeqCst) {
                ended = Some(Stop::Interrupted);
            }
            self.record(
                ui,
                Record::ToolResult {
                    id: call.id.clone(),
                    name: call.name.clone(),
                    content: outcome.content.clone(),
                    is_error: outcome.is_error,
                    change: None,
                },
            );
            results.push(Block::ToolResult {
                id: call.id.clone(),
                content: outcome.content,
                is_error: outcome.is_error,
            });
        }
        let message = Message {
            role: Role::User,
            content: results,
        };
        ui.event(Event::Results(&message));
        self.messages.push(message);
        ended
    }

    /// Gate → run one call. Every failure is a result for the model.
    fn run_call(&mut self, call: &ToolCall, ui: &mut dyn Ui, denials: &mut Vec<Denial>) -> Outcome {
        let action = match tools::parse(call) {
            Ok(action) => action,
            Err(message) => {
                ui.event(Event::Refused {
                    call,
                    action: None,
                    why: &message,
                });
                return Outcome::error(message);
            }
        };
        let denied = |denials: &mut Vec<Denial>, why: String| {
            denials.push(Denial {
                tool_name: call.name.clone(),
                tool_use_id: call.id.clone(),
                tool_input: call.input.clone(),
            });
            Outcome::error(why)
        };
        let said = self.pre_tool_hooks(call, &action, ui);
        let by_rules = if said.is_some() { "hook" } else { "rules" };
        let mut grant = Grant::Approved;
        let (allowed, by, rule) = match hooks::overrule(self.gate.check(&action), said) {
            Verdict::Allow => {
                if by_rules == "rules" && self.gate.allows_unasked(&action) {
                    grant = Grant::Unasked;
                }
                (true, by_rules, None)
            }
            Verdict::Deny(why) => {
                self.decision(ui, call, false, by_rules, None);
                ui.event(Event::Refused {
                    call,
                    action: Some(&action),
                    why: &why,
                });
                return denied(denials, format!("denied: {why}"));
            }
            // --auto: what the bare tool rule would allow (not protected paths, not
            // ask rules) runs confined instead of asking.
            // (Not when a PreToolUse hook asked: a person must answer.)
            Verdict::Ask(_)
                if by_rules == "rules"
                    && self.sandbox.auto()
                    && self.gate.allowing_rule(&action, None).is_some() =>
            {
                grant = Grant::Auto;
                (true, "auto", None)
            }
            Verdict::Ask(reason) => {
                let message = format!("nib needs your permission to use {}", call.name);
                self.hook(
                    ui,
                    hooks::Event::Notification,
                    None,
                    json!({"message": message}),
                );
                let suggestion = self.gate.suggest_rule(&action);
                let gate = &self.gate;
                // A plan only reads: the grant (which confines commands) is moot.
                let ctx = tools::Context {
                    workspace: &self.workspace,
                    cancel: &self.cancel,
                    env: &self.env,
                    sandbox: &self.sandbox,
                    grant: Grant::Approved,
                    may_read: &|path| gate.may_search(&action, path),
                    seen: &self.seen,
                };
                let plan = tools::plan(&action, &ctx);
                let request = Approval {
                    action: &action,
                    reason: &reason,
                    allowed_by: self.gate.allowing_rule(&action, suggestion.as_deref()),
                    suggestion,
                    plan: plan.as_ref(),
                };
                match ui.approve(&request) {
                    Answer::Once => (true, "user", None),
                    Answer::Session(rule) => {
                        let _ = self.gate.allow(&rule);
                        (true, "user", Some(rule))
                    }
                    Answer::Project(rule) => {
                        if let Err(e) = self.gate.save_project_rule(&rule) {
                            ui.event(Event::Warning(e));
                        }
                        (true, "user", Some(rule))
                    }
                    Answer::Deny(message) => {
                        self.decision(ui, call, false, "user", None);
                        return denied(denials, message);
                    }
                }
            }
        };
        self.decision(ui, call, allowed, by, rule);
        ui.event(Event::ToolStart(call, &action));
        let limit = tools::clip::limit_for_window(self.window_tokens());
        let gate = &self.gate;
        let ctx = tools::Context {
            workspace: &self.workspace,
            cancel: &self.cancel,
            env: &self.env,
            sandbox: &self.sandbox,
            grant,
            may_read: &|path| gate.may_search(&action, path),
            seen: &self.seen,
        };
        let mut outcome = match (&action, tools::plan(&action, &ctx)) {
            (Action::Skill { name }, _) => match crate::context::skills::invoke(&self.skills, name)
            {
                Ok(text) => Outcome::ok(tools::clip::clip(text.as_bytes())),
                Err(e) => Outcome::error(e),
            },
            (Action::Mcp { name, input }, _) => self.mcp.call(name, input, &self.cancel),
            (_, None) => tools::execute(&action, &ctx),
            (_, Some(Err(why))) => Outcome::error(why),
            (_, Some(Ok(plan))) => self.apply(call, plan, ui),
        };
        outcome.content = tools::clip::shrink(&outcome.content, limit);
        if let Cow::Owned(masked) = self.redactor.redact_known(&outcome.content) {
            outcome.content = masked;
        }
        if let (
            Action::Read { path, .. } | Action::Write { path, .. } | Action::Edit { path, .. },
            false,
        ) = (&action, outcome.is_error)
        {
            let path = self.workspace.resolve(path);
            if let Some(stamp) = self.seen.get(&path) {
                let seen = Record::Seen {
                    path: path.clone(),
                    stamp,
                };
                self.record(ui, seen);
            }
            let root = &self.workspace.root;
            let (added, left_out) =
                crate::context::instructions::for_path(root, &path, &mut self.instructed);
            outcome.content.push_str(&added);
            for w in left_out {
                ui.event(Event::Warning(w));
            }
        }
        self.post_tool_hooks(call, &action, &mut outcome, ui);
        ui.event(Event::ToolDone(call, &outcome));
        outcome
    }

    /// Applies a write or edit once the journal holds its change, synced: no journal,
    /// no change. A session run without a journal changes files, but no hard-linked one
    /// (that is rewritten in place, with nothing to restore it from).
    fn apply(&mut self, call: &ToolCall, plan: Plan, ui: &mut dyn Ui) -> Outcome {
        let links = match (&plan.change, self.journal.as_mut(), &self.unsaved) {
            (None, ..) => Links::InPlace,
            (Some(change), Some(journal), _) => {
                let record = Record::Change {
                    id: call.id.clone(),
                    change: change.clone(),
                };
                match journal.append(record).and_then(|()| journal.sync()) {
                    Ok(()) => Links::InPlace,
                    Err(e) => {
                        self.lose_journal(ui, e.to_string());
                        return unjournaled(&e.to_string());
                    }
                }
            }
            (Some(_), None, Some(why)) => return unjournaled(why),
            (Some(_), None, None) => Links::Refuse,
        };
        plan.apply(links, &self.seen)
    }

    fn decision(
        &mut self,
        ui: &mut dyn Ui,
        call: &ToolCall,
        allowed: bool,
        by: &str,
        rule: Option<String>,
    ) {
        self.record(
            ui,
            Record::Decision {
                id: call.id.clone(),
                tool: call.name.clone(),
                allowed,
                by: by.to_string(),
                rule,
            },
        );
    }

    /// Appends to the journal; a journal that fails is reported once and dropped.
    fn record(&mut self, ui: &mut dyn Ui, record: Record) {
        let Some(journal) = self.journal.as_mut() else {
            return;
        };
        let record = crate::journal::redact_record(record, &self.redactor);
        if let Err(e) = journal.append(record) {
            self.lose_journal(ui, e.to_string());
        }
    }

    fn lose_journal(&mut self, ui: &mut dyn Ui, why: String) {
        ui.event(Event::Warning(format!(
            "{why}; this session is no longer being saved, and nib changes no more files"
        )));
        self.journal = None;
        self.unsaved = Some(why);
    }

    fn sync(&mut self, ui: &mut dyn Ui) {
        if let Some(Err(e)) = self.journal.as_mut().map(Journal::sync) {
            ui.event(Event::Warning(e.to_string()));
        }
    }
}

/// The answer to a write or edit when the journal cannot take its change.
fn unjournaled(why: &str) -> Outcome {
    Outcome::error(format!(
        "not changed: the session journal cannot be written ({why}), and nib changes no file \
         it could not undo; tell the user"
    ))
}
