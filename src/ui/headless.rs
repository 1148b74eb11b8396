//! Headless mode (`nib -p`): nothing waits for a person. Answers go to stdout as text,
//! one JSON result, or a JSON-lines stream (Claude Code's formats, README "Headless mode");
//! progress goes to stderr; anything that would ask is denied and the model told why.

use super::term::{plural, sanitize};
use crate::agent::{Answer, Approval, Event, Stop, TaskResult, Ui};
use crate::cli::{ExitCode, OutputFormat};
use crate::mcp;
use crate::model::{Block, Message, Reply, StopReason, ToolCall, Usage};
use crate::tools::Action;
use serde_json::{Value, json};
use std::io::Write;
use std::time::Duration;

pub struct Headless {
    pub format: OutputFormat,
    /// Progress lines on stderr (when stderr is a terminal, or with --verbose).
    pub progress: bool,
    pub session_id: String,
    pub model: String,
}

impl Headless {
    /// The `system/init` line that opens a stream-json run; `mcp`: each MCP server and
    /// how it started (`connected`, `failed`, `pending`), as Claude Code lists them.
    pub fn start(&self, cwd: &str, tools: &[&str], mode: &str, mcp: &[mcp::Status]) {
        if self.format == OutputFormat::StreamJson {
            let servers: Vec<Value> = (mcp.iter())
                .map(|s| json!({"name": s.name, "status": s.word}))
                .collect();
            line(json!({
                "type": "system", "subtype": "init", "session_id": self.session_id,
                "cwd": cwd, "tools": tools, "mcp_servers": servers, "model": self.model,
                "permissionMode": mode,
            }));
        }
    }

    /// Prints the outcome in the chosen format; returns the exit code. `saved`: the
    /// session has a journal, so it can be resumed.
    pub fn finish(
        &self,
        r: &TaskResult,
        usage: &Usage,
        cost: f64,
        duration: Duration,
        saved: bool,
    ) -> ExitCode {
        let is_error = r.stop != Stop::Done;
        match self.format {
            OutputFormat::Text => {
                if is_error {
                    eprintln!("nib: {}", sanitize(&describe(&r.stop)));
                }
                if !r.text.is_empty() || !is_error {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{}", r.text.trim_end());
                }
                if saved {
                    let id = &self.session_id;
                    eprintln!("session: {id} (resume with: nib -r {id})");
                }
            }
            OutputFormat::Json | OutputFormat::StreamJson => {
                line(result_json(r, usage, cost, duration, &self.session_id));
            }
        }
        match r.stop {
            Stop::Done => ExitCode::Success,
            Stop::Interrupted => ExitCode::Interrupted,
            _ => ExitCode::Failure,
        }
    }
}

/// The result object of a run that failed before or around its task (bad usage, no
/// server), so `--output-format json` always prints one.
pub fn print_failure(message: &str) {
    let failed = TaskResult::new(Stop::Error(message.to_string()));
    let mut value = result_json(&failed, &Usage::default(), 0.0, Duration::ZERO, "");
    value["session_id"] = Value::Null;
    line(value);
}

/// One JSON object on a line of its own, flushed.
fn line(value: Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

/// What a refused call would have done: its summary, or the tool's name when its
/// arguments did not parse.
pub fn refused_what(call: &ToolCall, action: Option<&Action>) -> String {
    match action {
        Some(action) => first_line(&action.summary(), 200),
        None => first_line(&call.name, 80),
    }
}

/// A refused call in one line: what was refused, and why (made visible).
pub fn refusal_line(what: &str, why: &str) -> String {
    let line = format!("✗ {what} · refused: {}", first_line(why, 300));
    sanitize(&line).into_owned()
}

/// One line for a person about how a task ended.
pub fn describe(stop: &Stop) -> String {
    match stop {
        Stop::Done => "done".into(),
        Stop::MaxTurns => "stopped at the turn limit (raise it with --max-turns N)".into(),
        Stop::Budget { spent, limit } => format!(
            "stopped: the next request would exceed the budget of ${limit:.4} (spent ${spent:.4}); raise --max-budget-usd"
        ),
        Stop::Error(e) => e.clone(),
        Stop::Interrupted => "interrupted".into(),
        Stop::Incomplete(reason) => match reason {
            StopReason::MaxTokens => "the reply was cut by the output token limit, also after \
                one \"continue\"; raise max_output_tokens in settings.json"
                .into(),
            StopReason::Refusal => "the model declined to answer (stop reason: refusal)".into(),
            StopReason::ContextWindowExceeded => "the reply filled the model's context window; \
                start a new session or compact the conversation"
                .into(),
            other => format!("the reply ended early (stop reason: {})", other.name()),
        },
    }
}

/// Claude Code's result object.
pub fn result_json(r: &TaskResult, usage: &Usage, cost: f64, d: Duration, id: &str) -> Value {
    let is_error = r.stop != Stop::Done;
    let denials: Vec<Value> = r
        .denials
        .iter()
        .map(|d| json!({"tool_name": d.tool_name, "tool_use_id": d.tool_use_id, "tool_input": d.tool_input}))
        .collect();
    let mut v = json!({
        "type": "result",
        "subtype": r.stop.subtype(),
        "is_error": is_error,
        "duration_ms": d.as_millis() as u64,
        "duration_api_ms": r.api_time.as_millis() as u64,
        "num_turns": r.turns,
        "result": r.text,
        "stop_reason": r.stop_reason.as_ref().map(StopReason::name),
        "session_id": id,
        "total_cost_usd": cost,
        "usage": usage,
        "permission_denials": denials,
    });
    if is_error {
        v["errors"] = json!([describe(&r.stop)]);
    }
    v
}

/// An assistant reply in Anthropic's message shape (what stream-json readers expect).
fn assistant_json(reply: &Reply, model: &str) -> Value {
    let mut content = Vec::new();
    if !reply.text.is_empty() {
        content.push(json!({"type": "text", "text": reply.text}));
    }
    for c in &reply.calls {
        content.push(json!({"type": "tool_use", "id": c.id, "name": c.name, "input": c.input}));
    }
    json!({"role": "assistant", "type": "message", "model": model, "content": content,
           "stop_reason": reply.stop.name(), "usage": reply.usage})
}

fn results_json(message: &Message) -> Value {
    let content: Vec<Value> = message
        .content
        .iter()
        .filter_map(|b| match b {
            Block::ToolResult {
                id,
                content,
                is_error,
            } => Some(
                json!({"type": "tool_result", "tool_use_id": id, "content": content,
                              "is_error": is_error}),
            ),
            _ => None,
        })
        .collect();
    json!({"role": "user", "content": content})
}

impl Ui for Headless {
    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Text(_) => {}
            Event::Retry(retry) => eprintln!("{}", super::retry_line(retry)),
            Event::Reply(reply) if self.format == OutputFormat::StreamJson => line(json!({
                "type": "assistant", "message": assistant_json(reply, &self.model),
                "parent_tool_use_id": null, "session_id": self.session_id,
            })),
            Event::Reply(_) => {}
            Event::ToolStart(_, action) if self.progress => {
                eprintln!("● {}", sanitize(&first_line(&action.summary(), 200)));
            }
            Event::ToolDone(_, outcome) if self.progress => {
                eprintln!("  ⎿ {}", sanitize(&first_line(&outcome.content, 120)));
            }
            Event::Results(message) if self.format == OutputFormat::StreamJson => line(json!({
                "type": "user", "message": results_json(message),
                "parent_tool_use_id": null, "session_id": self.session_id,
            })),
            Event::Compacted {
                replaced,
                summarised,
            } if self.progress => {
                let how = if summarised { "summarised" } else { "dropped" };
                eprintln!(
                    "nib: compacted: {} {how} to fit the context window",
                    plural(replaced, "earlier message")
                );
            }
            Event::Trimmed { cleared, cut } if self.progress => {
                eprintln!("nib: {}", super::trimmed_line(cleared, cut));
            }
            Event::Context { used, window } if self.progress => {
                eprintln!("nib: {}", super::context_line(used, window));
            }
            Event::Warning(w) => eprintln!("nib: warning: {}", sanitize(&w)),
            // Always said: a script's author must see what the gate held back.
            Event::Refused { call, action, why } => {
                eprintln!("{}", refusal_line(&refused_what(call, action), why))
            }
            _ => {}
        }
    }

    fn approve(&mut self, request: &Approval<'_>) -> Answer {
        let how = match &request.allowed_by {
            Some(rule) if rule.contains(['(', ' ']) => format!(
                "The user can allow it with --allowedTools \"{rule}\" \
or --dangerously-skip-permissions."
            ),
            Some(rule) => format!(
                "The user can allow it with --allowedTools {rule} or --dangerously-skip-permissions."
            ),
            None => "No rule can allow it; only --dangerously-skip-permissions would.".to_string(),
        };
        let why = format!("{}; nobody can approve it headless", request.reason);
        let what = first_line(&request.action.summary(), 200);
        eprintln!("{}", refusal_line(&what, &why));
        Answer::Deny(format!(
            "denied: {} and nib runs headless, so nobody can approve it. \
Do not retry it; find another way or finish. {how}",
            request.reason
        ))
    }
}

fn first_line(s: &str, max: usize) -> String {
    let line = s.lines().next().unwrap_or("");
    match line.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_string(),
    }
}
