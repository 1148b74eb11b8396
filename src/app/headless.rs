//! A headless run (`-p`, or stdin not a terminal): the prompt from the argument and
//! piped stdin, or one task per `--input-format stream-json` line; the answer in the
//! chosen output format, and the exit code.

use super::setup::prepare;
use crate::agent::{Agent, TaskResult};
use crate::approval::Mode;
use crate::cli::{Args, Error, ExitCode};
use crate::config::Config;
use crate::context;
use crate::ui::headless::Headless;
use crate::ui::{Setup, report};
use serde_json::Value;
use std::io::{BufRead, IsTerminal, Read};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long nib reads stdin silently; after this it says why it waits.
const STDIN_NOTICE: Duration = Duration::from_secs(3);
/// Piped input beyond this is refused (exit 2): a prompt, not a data channel; a build
/// log of this size would not fit any model's context window anyway.
const STDIN_MAX: u64 = 8 * 1024 * 1024;

/// Runs the task (or the stream of tasks) and reports it.
pub fn run(
    args: &Args,
    config: Config,
    system: Vec<context::Part>,
    skills: Vec<context::Skill>,
) -> Result<ExitCode, Error> {
    let prompt = match args.stream_input {
        true => String::new(),
        false => headless_prompt(args.prompt.clone())?,
    };
    let setup = prepare(args, config, system, skills)?;
    if let Some(notice) = setup.agent.parts().gate.untrusted_notice() {
        report::warning(&notice);
    }
    let Setup {
        mut agent,
        tools: enabled,
        config,
        ..
    } = setup;
    agent.session_mut().begin()?;
    let mut ui = Headless {
        format: args.output_format,
        progress: args.verbose || report::stderr_is_terminal(),
        session_id: agent.session().id().to_string(),
        model: agent.endpoint().model.clone(),
    };
    let mode = agent.parts().gate.mode();
    if ui.progress && mode == Mode::Bypass {
        report::warning(crate::ui::BYPASS_WARNING);
    }
    // MCP tools are listed too: the first request waits for the servers anyway.
    let mcp_specs = agent.parts().mcp.specs();
    let mut tool_names: Vec<&str> = enabled.iter().map(|t| t.name()).collect();
    tool_names.extend(mcp_specs.iter().map(|s| s.name.as_ref()));
    let servers = agent.parts().mcp.status();
    let cwd = config.cwd.to_string_lossy();
    ui.start(&cwd, &tool_names, mode.name(), &servers);
    if args.stream_input {
        let code = stream_tasks(&mut agent, &mut ui);
        agent.end_session("other", &mut ui);
        return Ok(code);
    }
    let started = Instant::now();
    let result = task(&mut agent, prompt, &mut ui);
    agent.end_session("other", &mut ui);
    if let Some(path) = &args.output_last_message {
        std::fs::write(path, format!("{}\n", result.text.trim_end()))
            .map_err(|e| Error::Setup(format!("cannot write {}: {e}", path.display())))?;
    }
    let deleted = agent.session().journal().filter(|j| !j.path.exists());
    if let Some(journal) = deleted {
        report::warning(&format!(
            "the session journal {} was deleted while nib ran; this session cannot be resumed",
            journal.path.display()
        ));
    }
    let saved = agent.session().journal().is_some() && deleted.is_none();
    let code = finish(&agent, &mut ui, &result, started, saved);
    // Stopped by SIGTERM, SIGHUP or SIGQUIT: exit as the signal would have.
    Ok(crate::signals::stopped_by().map_or(code, ExitCode::Signal))
}

/// One headless task: a custom command, a skill, or the prompt as it is.
fn task(agent: &mut Agent, prompt: String, ui: &mut Headless) -> TaskResult {
    let commands = agent.parts().commands.to_vec();
    match context::commands::find(&commands, &prompt) {
        Some((command, args)) => agent.run_command(command, args, ui),
        None => {
            let prompt = context::skills::expand(&agent.parts().skills, &prompt).unwrap_or(prompt);
            agent.run(&prompt, ui)
        }
    }
}

/// `--input-format stream-json`: each `{"type":"user","message":{...}}` line on stdin
/// is a task, answered with its result before the next line is read. Returns the last
/// task's exit code.
fn stream_tasks(agent: &mut Agent, ui: &mut Headless) -> ExitCode {
    let mut code = ExitCode::Success;
    for line in std::io::stdin().lock().lines().map_while(Result::ok) {
        let prompt = match user_text(&line) {
            Ok(Some(prompt)) => prompt,
            Ok(None) => continue,
            Err(e) => {
                report::warning(&format!("skipped an input line: {e}"));
                continue;
            }
        };
        let started = Instant::now();
        let result = task(agent, prompt, ui);
        let saved = agent.session().journal().is_some();
        code = finish(agent, ui, &result, started, saved);
    }
    code
}

/// A task's result, with the session's totals so far; its exit code.
fn finish(
    agent: &Agent,
    ui: &mut Headless,
    result: &TaskResult,
    started: Instant,
    saved: bool,
) -> ExitCode {
    let totals = agent.session().totals();
    let elapsed = started.elapsed();
    ui.finish(result, &totals.usage, totals.cost_usd, elapsed, saved)
}

/// The text of a stream-json user message; `None` for other lines (blank, other types).
fn user_text(line: &str) -> Result<Option<String>, String> {
    if line.trim().is_empty() {
        return Ok(None);
    }
    let value: Value = serde_json::from_str(line)
        .map_err(|e| format!("not JSON ({e}); send one object a line"))?;
    if value["type"] != "user" {
        return Ok(None);
    }
    let content = &value["message"]["content"];
    let text = match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => {
            let texts = parts.iter().filter_map(|p| p["text"].as_str());
            texts.collect::<Vec<_>>().join("\n")
        }
        _ => String::new(),
    };
    match text.trim().is_empty() {
        true => Err("a user message without text".into()),
        false => Ok(Some(text)),
    }
}

/// The prompt argument, then piped stdin (Claude Code's order). A terminal on stdin is
/// never read; a pipe or file is read to its end, however long that takes.
fn headless_prompt(arg: Option<String>) -> Result<String, Error> {
    let piped = (!std::io::stdin().is_terminal())
        .then(read_stdin)
        .transpose()?;
    let prompt = match (arg, piped) {
        (Some(a), Some(p)) if !p.trim().is_empty() => format!("{a}\n{p}"),
        (Some(a), _) => a,
        (None, Some(p)) if !p.trim().is_empty() => p,
        _ => String::new(),
    };
    if prompt.trim().is_empty() {
        return Err(Error::Setup(
            "Error: Input must be provided either through stdin or as a prompt argument when using --print"
                .into(),
        ));
    }
    Ok(prompt)
}

/// Reads piped stdin to its end (`cargo build 2>&1 | nib -p …` waits for the build),
/// saying so on stderr when that takes longer than `STDIN_NOTICE`. More than
/// `STDIN_MAX` bytes is a usage error: nothing is cut silently.
fn read_stdin() -> Result<String, Error> {
    let (tx, rx) = mpsc::channel::<std::io::Result<Vec<u8>>>();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let read = std::io::stdin()
            .lock()
            .take(STDIN_MAX + 1)
            .read_to_end(&mut buf);
        let _ = tx.send(read.map(|_| buf));
    });
    let read = match rx.recv_timeout(STDIN_NOTICE) {
        Ok(read) => read,
        Err(_) => {
            report::notice("reading stdin… (it is still open; close it or press Ctrl-D)");
            rx.recv()
                .unwrap_or_else(|_| Err(std::io::ErrorKind::BrokenPipe.into()))
        }
    };
    let bytes = read.map_err(|e| Error::Setup(format!("cannot read stdin: {e}")))?;
    if bytes.len() as u64 > STDIN_MAX {
        return Err(Error::Usage(format!(
            "stdin holds more than {} MiB; pass a smaller excerpt (e.g. | tail -n 2000) or name a file in the prompt",
            STDIN_MAX / (1024 * 1024)
        )));
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
