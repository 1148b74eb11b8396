//! One reply's tool calls: each parsed, gated (rules, hooks, the person asked), run
//! with what it needs, journaled before it changes a file, its result clipped and
//! masked; every failure is a result for the model.

use super::{Agent, Answer, Approval, Denial, Event, Stop, Ui};
use crate::approval::Verdict;
use crate::guard::CallCheck;
use crate::hooks;
use crate::journal::Record;
use crate::model::{Block, Message, Role, ToolCall};
use crate::sandbox::Grant;
use crate::tools::disk::Links;
use crate::tools::fs::Plan;
use crate::tools::{self, Action, Outcome};
use serde_json::json;
use std::path::Path;
use std::sync::atomic::Ordering;

impl Agent {
    /// Runs one reply's tool calls in order. Returns a stop when the user interrupted
    /// or the model is stuck repeating a call.
    pub(super) fn run_calls(
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
            if ended.is_none() && self.parts.cancel.load(Ordering::SeqCst) {
                ended = Some(Stop::Interrupted);
            }
            let record = Record::ToolResult {
                id: call.id.clone(),
                name: call.name.clone(),
                content: outcome.content.clone(),
                is_error: outcome.is_error,
                change: None,
            };
            self.record(ui, record);
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
        self.session.messages.push(message);
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
        let grant = match self.permit(call, &action, ui) {
            Ok(grant) => grant,
            Err(why) => {
                denials.push(Denial {
                    tool_name: call.name.clone(),
                    tool_use_id: call.id.clone(),
                    tool_input: call.input.clone(),
                });
                return Outcome::error(why);
            }
        };
        ui.event(Event::ToolStart(call, &action));
        let limit = tools::clip::limit_for_window(self.window_tokens());
        let gate = &self.parts.gate;
        let may_read = |path: &Path| gate.may_search(&action, path);
        let ctx = self.tool_context(grant, &may_read);
        let mut outcome = match (&action, tools::plan(&action, &ctx)) {
            (Action::Skill { name }, _) => {
                match crate::context::skills::invoke(&self.parts.skills, name) {
                    Ok(text) => Outcome::ok(tools::clip::clip(text.as_bytes())),
                    Err(e) => Outcome::error(e),
                }
            }
            (Action::Mcp { name, input }, _) => {
                self.parts.mcp.call(name, input, &self.parts.cancel)
            }
            (_, None) => tools::execute(&action, &ctx),
            (_, Some(Err(why))) => Outcome::error(why),
            (_, Some(Ok(plan))) => self.apply(call, plan, ui),
        };
        outcome.content = tools::clip::shrink(&outcome.content, limit);
        outcome.content = self.session.redact(&outcome.content);
        if !outcome.is_error {
            self.note_file(&action, &mut outcome, ui);
        }
        self.post_tool_hooks(call, &action, &mut outcome, ui);
        ui.event(Event::ToolDone(call, &outcome));
        outcome
    }

    /// Whether a call may run, and how confined: as the rules, a PreToolUse hook or
    /// the person asked say. The decision is journaled; a refusal is the message for
    /// the model.
    fn permit(
        &mut self,
        call: &ToolCall,
        action: &Action,
        ui: &mut dyn Ui,
    ) -> Result<Grant, String> {
        let said = self.pre_tool_hooks(call, action, ui);
        let by_rules = if said.is_some() { "hook" } else { "rules" };
        let mut grant = Grant::Approved;
        let (by, rule) = match hooks::overrule(self.parts.gate.check(action), said) {
            Verdict::Allow => {
                if by_rules == "rules" && self.parts.gate.allows_unasked(action) {
                    grant = Grant::Unasked;
                }
                (by_rules, None)
            }
            Verdict::Deny(why) => {
                self.decision(ui, call, false, by_rules, None);
                ui.event(Event::Refused {
                    call,
                    action: Some(action),
                    why: &why,
                });
                return Err(format!("denied: {why}"));
            }
            // --auto: what the bare tool rule would allow (not protected paths, not
            // ask rules) runs confined instead of asking.
            // (Not when a PreToolUse hook asked: a person must answer.)
            Verdict::Ask(_)
                if by_rules == "rules"
                    && self.parts.sandbox.auto()
                    && self.parts.gate.allowing_rule(action, None).is_some() =>
            {
                grant = Grant::Auto;
                ("auto", None)
            }
            Verdict::Ask(reason) => ("user", self.ask_person(call, action, &reason, ui)?),
        };
        self.decision(ui, call, true, by, rule);
        Ok(grant)
    }

    /// Asks the person (through the UI) whether a call may run, showing what it would
    /// do. Returns the rule an "always" answer added, or the refusal for the model.
    fn ask_person(
        &mut self,
        call: &ToolCall,
        action: &Action,
        reason: &str,
        ui: &mut dyn Ui,
    ) -> Result<Option<String>, String> {
        let message = format!("nib needs your permission to use {}", call.name);
        let fields = json!({"message": message});
        self.hook(ui, hooks::Event::Notification, None, fields);
        let gate = &self.parts.gate;
        let suggestion = gate.suggest_rule(action);
        let may_read = |path: &Path| gate.may_search(action, path);
        // A plan only reads: the grant (which confines commands) is moot.
        let plan = tools::plan(action, &self.tool_context(Grant::Approved, &may_read));
        let request = Approval {
            action,
            reason,
            allowed_by: gate.allowing_rule(action, suggestion.as_deref()),
            suggestion,
            plan: plan.as_ref(),
        };
        match ui.approve(&request) {
            Answer::Once => Ok(None),
            Answer::Session(rule) => {
                let _ = self.parts.gate.allow(&rule);
                Ok(Some(rule))
            }
            Answer::Project(rule) => {
                if let Err(e) = self.parts.gate.save_project_rule(&rule) {
                    ui.event(Event::Warning(e));
                }
                Ok(Some(rule))
            }
            Answer::Deny(message) => {
                self.decision(ui, call, false, "user", None);
                Err(message)
            }
        }
    }

    /// A file read or written: journaled as seen (a later change to it by someone
    /// else is caught), and the instruction files of its folder added once.
    fn note_file(&mut self, action: &Action, outcome: &mut Outcome, ui: &mut dyn Ui) {
        let (Action::Read { path, .. } | Action::Write { path, .. } | Action::Edit { path, .. }) =
            action
        else {
            return;
        };
        let path = self.parts.workspace.resolve(path);
        if let Some(stamp) = self.session.seen().get(&path) {
            let seen = Record::Seen {
                path: path.clone(),
                stamp,
            };
            self.record(ui, seen);
        }
        let workspace = &self.parts.workspace;
        let (added, left_out) =
            crate::context::instructions::for_path(workspace, &path, self.session.instructed());
        outcome.content.push_str(&added);
        for w in left_out {
            ui.event(Event::Warning(w));
        }
    }

    /// Applies a write or edit once the journal holds its change, synced: no journal,
    /// no change. A session run without a journal changes files, but no hard-linked one
    /// (that is rewritten in place, with nothing to restore it from).
    fn apply(&mut self, call: &ToolCall, plan: Plan, ui: &mut dyn Ui) -> Outcome {
        let links = match &plan.change {
            None => Links::InPlace,
            Some(change) => match self.session.save_change(&call.id, change) {
                Ok(true) => Links::InPlace,
                Ok(false) => Links::Refuse,
                Err(unsaved) => {
                    if let Some(warning) = unsaved.warning {
                        ui.event(Event::Warning(warning));
                    }
                    return unjournaled(&unsaved.why);
                }
            },
        };
        plan.apply(links, self.session.seen())
    }

    fn decision(
        &mut self,
        ui: &mut dyn Ui,
        call: &ToolCall,
        allowed: bool,
        by: &str,
        rule: Option<String>,
    ) {
        let record = Record::Decision {
            id: call.id.clone(),
            tool: call.name.clone(),
            allowed,
            by: by.to_string(),
            rule,
        };
        self.record(ui, record);
    }

    /// What a tool needs from the agent to run: commands confined as `grant` says,
    /// files a search finds read when `may_read` allows.
    pub(super) fn tool_context<'a>(
        &'a self,
        grant: Grant,
        may_read: &'a dyn Fn(&Path) -> bool,
    ) -> tools::Context<'a> {
        tools::Context {
            workspace: &self.parts.workspace,
            cancel: &self.parts.cancel,
            env: &self.parts.env,
            sandbox: &self.parts.sandbox,
            grant,
            may_read,
            seen: self.session.seen(),
        }
    }

    /// A command the user typed (`!command`): run as an approved one, nib's keys
    /// masked in what it printed.
    pub fn run_user_command(&self, action: &Action) -> Outcome {
        // The person typed it: approved, and confined as any approved command.
        let mut outcome = tools::execute(action, &self.tool_context(Grant::Approved, &|_| true));
        outcome.content = self.session.redact(&outcome.content);
        outcome
    }
}

/// The answer to a write or edit when the journal cannot take its change.
fn unjournaled(why: &str) -> Outcome {
    Outcome::error(format!(
        "not changed: the session journal cannot be written ({why}), and nib changes no file \
         it could not undo; tell the user"
    ))
}
