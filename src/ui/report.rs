//! What nib says outside a task: the one rendering of an error that stops nib, warnings
//! and notices on stderr, and the output of `--help`, `--version`, `nib sessions`,
//! `nib undo`, `nib trust` and `--print-system-prompt`.

use super::term::{plural, sanitize};
use crate::cli::Error;
use crate::context::Part;
use crate::mcp::Status;
use crate::model::Endpoint;
use crate::sessions::Undone;
use std::io::{IsTerminal, Write};
use std::path::Path;

/// An error that stops nib: one line on stderr and, when the output is JSON, one result
/// object on stdout so a script reading it always gets an answer.
pub fn failure(e: &Error, json: bool) {
    eprintln!("nib: {}", sanitize(&e.to_string()));
    if json {
        super::headless::print_failure(&e.to_string());
    }
}

/// `nib: warning: …` on stderr.
pub fn warning(text: &str) {
    eprintln!("nib: warning: {}", sanitize(text));
}

/// Each line a `warning`.
pub fn warnings(lines: &[String]) {
    lines.iter().for_each(|line| warning(line));
}

/// `nib: …` on stderr: something nib did or left out that is not a problem.
pub fn notice(text: &str) {
    eprintln!("nib: {}", sanitize(text));
}

/// Whether stderr is a terminal (a person watches it).
pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// A local server nib found by itself, said when a person watches.
pub fn found_locally(endpoint: &Endpoint) {
    if stderr_is_terminal() {
        notice(&format!(
            "using {} at {} (found running on this machine)",
            endpoint.model, endpoint.base_url
        ));
    }
}

/// Text on stdout as it is (help, version, `nib sessions`): a closed pipe (`nib
/// sessions | head`) is not an error worth a message.
pub fn stdout(text: &str) {
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// `nib sessions` with nothing to list.
pub fn no_sessions(all: bool) {
    let hint = match all {
        true => "",
        false => " in this directory (try --all)",
    };
    eprintln!("no sessions{hint}");
}

/// `nib undo`: what was put back, and how many of `count` when fewer.
pub fn undone(done: &[Undone], count: usize) {
    for d in done {
        match d {
            Undone::Restored(p) => println!("restored {}", shown(p)),
            Undone::Deleted(p) => println!("removed {} (nib had created it)", shown(p)),
        }
    }
    let n = done.len();
    if n < count {
        notice(&format!("undid {n} of {}", plural(count, "change")));
    }
}

/// `nib trust`: the folder that is now trusted.
pub fn trusted(cwd: &Path) {
    println!(
        "trusted {}: its .claude/settings.json and .claude/settings.local.json now apply in full",
        cwd.display()
    );
}

/// `--print-system-prompt`: each part with its size, the total, and the tools.
pub fn system_prompt(parts: &[Part], total: usize, tools: usize, schema_bytes: usize) {
    for part in parts {
        println!("── {} ({} bytes)", part.label, part.text.len());
        println!("{}\n", part.text);
    }
    println!("── total {total} bytes");
    println!("── tools: {tools} ({schema_bytes} bytes of schemas in every request)");
}

/// `--print-system-prompt`: the MCP servers, once they started (or failed).
pub fn mcp_servers(servers: &[Status]) {
    for s in servers {
        println!(
            "── MCP server {}: {} ({} tools, {} bytes of schemas in every request)",
            s.name, s.state, s.tools, s.schema_bytes
        );
    }
}

/// A path as printed: control characters in a file name made visible.
fn shown(path: &Path) -> String {
    sanitize(&path.display().to_string()).into_owned()
}
