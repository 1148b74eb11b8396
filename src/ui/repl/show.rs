//! What the REPL shows on request: `/help`, `/model`, `/cost`, `/context`, `/mcp`,
//! `/skills` and `/permissions`. Each only reads; changing anything is `repl.rs`'s.

use super::{NOTES_FILE, Repl, say};
use crate::approval::Mode;
use crate::model::Usage;
use crate::price;
use crate::ui::approve::PROJECT_SETTINGS;
use crate::ui::slash::COMMANDS;
use crate::ui::term::{self, sanitize};

/// Characters of a skill's description `/skills` shows.
const SKILL_LINE: usize = 72;

impl Repl {
    pub(super) fn help(&self) {
        for (name, what) in COMMANDS.iter().filter(|(n, _)| *n != "/?") {
            say(&format!("  {name:<13} {what}"));
        }
        for c in &self.agent.parts().commands {
            let name = format!("/{} {}", c.name, c.argument_hint.as_deref().unwrap_or(""));
            say(&sanitize(&format!("  {name:<13} {}", c.description)));
        }
        for s in &self.agent.parts().skills {
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

    pub(super) fn show_model(&self) {
        let e = self.agent.endpoint();
        say(&sanitize(&format!(
            "model: {} · {} · {}",
            e.model,
            e.provider.name(),
            e.base_url
        )));
    }

    pub(super) fn cost(&self) {
        let totals = self.agent.session().totals();
        for line in cost_lines(&totals.usage, totals.cost_usd, totals.turns) {
            say(&line);
        }
    }

    /// `/context`: what the next request holds, in (estimated) tokens and as a share
    /// of the context window, one aligned row per part.
    pub(super) fn context(&mut self) {
        let parts = self.agent.parts();
        let tools: usize = parts.specs.iter().map(crate::mcp::spec_bytes).sum();
        let specs: usize = parts
            .specs
            .iter()
            .map(|s| s.schema.to_string().len() + s.description.len())
            .sum();
        let mut rows: Vec<(String, u64)> = self
            .system
            .iter()
            .map(|p| (p.label.clone(), price::estimate_bytes(p.text.len())))
            .collect();
        rows.push(("tool definitions".into(), price::estimate_bytes(specs)));
        let messages = &self.agent.session().messages;
        let conversation = format!("conversation ({})", term::plural(messages.len(), "message"));
        rows.push((conversation, price::estimate_tokens(messages)));
        let total: u64 = rows.iter().map(|(_, t)| t).sum();
        let window = self.agent.window_tokens();
        rows.push(("total".into(), total));
        for line in context_rows(&rows, window) {
            say(&line);
        }
        let tokens = term::format_tokens(window);
        self.dim(&format!("estimated tokens · window {tokens} tokens"));
        let used = self.agent.input_tokens();
        say(&format!("  {}", crate::ui::context_line(used, window)));
        say(&format!(
            "  {:<14} {tools:>7} bytes in every request",
            "tool schemas"
        ));
        for s in self.agent.parts().mcp.status() {
            let name = format!("mcp {}", s.name);
            say(&sanitize(&format!(
                "  {name:<14} {:>7} bytes ({} tools)",
                s.schema_bytes, s.tools
            )));
        }
    }

    pub(super) fn mcp(&self) {
        let servers = self.agent.parts().mcp.status();
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

    pub(super) fn skills(&self) {
        let home = &self.view.workspace.home;
        for s in &self.agent.parts().skills {
            let place = s.dir.as_deref().map_or("bundled".into(), |d| {
                crate::paths::short_path(d, home.as_deref())
            });
            let what: String = s.description.chars().take(SKILL_LINE).collect();
            say(&sanitize(&format!("  /{:<16} {what}", s.name)));
            self.dim(&sanitize(&format!("   {:<16} {place}", "")));
        }
        if self.agent.parts().skills.is_empty() {
            say("no skills: add one as .claude/skills/NAME/SKILL.md");
        }
        self.dim("/NAME [arguments] runs a skill; the model loads them itself when a task fits");
    }

    pub(super) fn permissions(&self) {
        let parts = self.agent.parts();
        let gate = &parts.gate;
        say(&format!("mode: {}", mode_said(gate.mode())));
        say(&format!("sandbox: {}", parts.sandbox.describe()));
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
}

/// A mode and what it means.
pub(super) fn mode_said(mode: Mode) -> String {
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
    let head = format!("  {:<width$}  {:>8}  {:>6}", "", "tokens", "window");
    let mut out = vec![head];
    for (label, (_, tokens)) in labels.iter().zip(rows) {
        let pad = " ".repeat(width - term::display_width(label));
        let share = 100.0 * *tokens as f64 / window.max(1) as f64;
        out.push(format!("  {label}{pad}  {tokens:>8}  {share:>5.1}%"));
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

#[cfg(test)]
mod tests {
    use super::*;

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
