//! What a Claude Code setup adds to the loop: its hooks at their points (prompt,
//! tool call, stop, session start and end) and its custom commands. The loop
//! (`agent.rs`, `agent/calls.rs`) only calls in here.

use super::{Agent, Event, TaskResult, Ui};
use crate::hooks;
use crate::journal::Record;
use crate::model::ToolCall;
use crate::sandbox::Grant;
use crate::tools::{self, Action, Outcome};
use serde_json::{Value, json};

impl Agent {
    /// Runs a custom command as one task: its `allowed-tools` rules and `model` hold
    /// until it ends.
    pub fn run_command(
        &mut self,
        command: &crate::context::commands::Command,
        args: &str,
        ui: &mut dyn Ui,
    ) -> TaskResult {
        let gate = self.parts.gate.clone();
        let model = self.parts.client.endpoint.model.clone();
        for rule in &command.allowed_tools {
            if let Err(e) = self.parts.gate.allow(rule) {
                let name = &command.name;
                ui.event(Event::Warning(format!("/{name}: allowed-tools: {e}")));
            }
        }
        if let Some(m) = &command.model {
            self.parts.client.endpoint.model = m.clone();
        }
        // Only commands run here (command lines, hooks): nothing searches files.
        // Hooks run as approved commands do; a command's `!` lines get their own.
        let ctx = self.tool_context(Grant::Approved, &|_| false);
        let expanded = crate::context::commands::expand(command, args, &self.parts.gate, &ctx);
        for note in expanded.notes {
            ui.event(Event::Warning(note));
        }
        let result = self.run(&expanded.prompt, ui);
        (self.parts.gate, self.parts.client.endpoint.model) = (gate, model);
        result
    }

    /// Runs the hooks of `event`, journals each run and shows their warnings.
    pub(super) fn hook(
        &mut self,
        ui: &mut dyn Ui,
        event: hooks::Event,
        tool: Option<&str>,
        fields: Value,
    ) -> hooks::Report {
        if !self.parts.hooks.has(event) {
            return hooks::Report::default();
        }
        let mut env = self.parts.env.clone();
        let root = self.parts.workspace.root.to_string_lossy().into_owned();
        env.push(("CLAUDE_PROJECT_DIR".into(), root));
        let ctx = tools::Context {
            env: &env,
            ..self.tool_context(Grant::Approved, &|_| false)
        };
        let report = self.parts.hooks.fire(event, tool, fields, &ctx);
        for run in &report.runs {
            let record = Record::Hook {
                event: run.event.name().to_string(),
                command: run.command.clone(),
                code: run.code,
                ms: run.duration.as_millis() as u64,
            };
            self.record(ui, record);
        }
        for warning in &report.warnings {
            ui.event(Event::Warning(warning.clone()));
        }
        report
    }

    /// SessionStart (before the first prompt) and UserPromptSubmit: the prompt with the
    /// context they add, or why a hook blocked it.
    pub(super) fn prompt_hooks(&mut self, prompt: &str, ui: &mut dyn Ui) -> Result<String, String> {
        let mut context = Vec::new();
        if !self.parts.hooks.started {
            self.parts.hooks.started = true;
            let source = if self.session.messages.is_empty() {
                "startup"
            } else {
                "resume"
            };
            let fields = json!({"source": source});
            context = self
                .hook(ui, hooks::Event::SessionStart, None, fields)
                .context;
        }
        let fields = json!({"prompt": prompt});
        let submit = self.hook(ui, hooks::Event::UserPromptSubmit, None, fields);
        if let Some(why) = submit.block {
            return Err(format!("a UserPromptSubmit hook blocked the prompt: {why}"));
        }
        context.extend(submit.context);
        Ok(hooks::with_context(prompt, &context))
    }

    /// Stop hooks when the model is done; true when one blocked, with its reason added
    /// for the model to act on.
    pub(super) fn stop_hooks(&mut self, ui: &mut dyn Ui, blocks: &mut u32) -> bool {
        let fields = json!({"stop_hook_active": *blocks > 0});
        let report = self.hook(ui, hooks::Event::Stop, None, fields);
        let Some(why) = report.block.filter(|_| *blocks < hooks::MAX_STOP_BLOCKS) else {
            return false;
        };
        *blocks += 1;
        let text = format!("A Stop hook asks you to go on: {why}");
        self.user_message(ui, text);
        true
    }

    /// PreToolUse: what the hooks said about this call (exit 2 is a refusal).
    pub(super) fn pre_tool_hooks(
        &mut self,
        call: &ToolCall,
        action: &Action,
        ui: &mut dyn Ui,
    ) -> Option<hooks::Permission> {
        if !self.parts.hooks.has(hooks::Event::PreToolUse) {
            return None;
        }
        let input = hooks::tool_input(action, &self.parts.workspace.root);
        let name = hooks::tool_name(action);
        let fields = json!({"tool_name": name, "tool_input": input, "tool_use_id": call.id});
        let report = self.hook(ui, hooks::Event::PreToolUse, Some(&name), fields);
        match report.block {
            Some(why) => Some(hooks::Permission::Deny(why)),
            None => report.permission,
        }
    }

    /// PostToolUse: a block or added context reaches the model after the result.
    pub(super) fn post_tool_hooks(
        &mut self,
        call: &ToolCall,
        action: &Action,
        outcome: &mut Outcome,
        ui: &mut dyn Ui,
    ) {
        if !self.parts.hooks.has(hooks::Event::PostToolUse) {
            return;
        }
        let input = hooks::tool_input(action, &self.parts.workspace.root);
        let response = json!({"output": outcome.content, "is_error": outcome.is_error});
        let name = hooks::tool_name(action);
        let fields = json!({"tool_name": name, "tool_input": input,
            "tool_response": response, "tool_use_id": call.id});
        let report = self.hook(ui, hooks::Event::PostToolUse, Some(&name), fields);
        for note in report.block.into_iter().chain(report.context) {
            outcome.content += &format!("\n[PostToolUse hook] {note}");
        }
    }

    /// Fires SessionEnd hooks; the caller says why the session ends.
    pub fn end_session(&mut self, reason: &str, ui: &mut dyn Ui) {
        let fields = json!({"reason": reason});
        self.hook(ui, hooks::Event::SessionEnd, None, fields);
        self.sync(ui);
    }
}
