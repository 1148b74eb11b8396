//! nib: a minimal, local-first terminal coding agent. Wiring only: parse → run → exit code.

mod agent;
mod app;
mod approval;
mod cli;
mod compact;
mod config;
mod context;
mod guard;
mod hooks;
mod journal;
mod mcp;
mod model;
mod paths;
mod price;
mod sandbox;
mod secrets;
mod session;
mod sessions;
mod signals;
#[cfg(test)]
mod testing;
mod tools;
mod ui;

use cli::{Error, ExitCode};
use config::env::Env;

fn main() {
    let started = Env::read();
    if started.has(tools::watchdog::VAR) {
        tools::watchdog::serve();
        std::process::exit(ExitCode::Success.code());
    }
    if let Some(warning) = secrets::hide_keys(started.vars_os()) {
        ui::report::warning(&warning);
    }
    // Read again: the keys `hide_keys` put back are the user's too.
    let env = Env::read();
    let argv: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let code = match cli::parse_os(argv.clone()) {
        Err(e) => fail(&e, cli::json_output(&argv)),
        Ok(args) => {
            let json = args.output_format != cli::OutputFormat::Text;
            app::run(args, env).unwrap_or_else(|e| fail(&e, json))
        }
    };
    std::process::exit(code.code());
}

/// The one place an error that stops nib is shown, and its exit code chosen.
fn fail(e: &Error, json: bool) -> ExitCode {
    ui::report::failure(e, json);
    e.exit_code()
}
