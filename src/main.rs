//! nib: a minimal, local-first terminal coding agent. Wiring only: parse → run → exit code.

mod agent;
mod app;
mod approval;
mod cli;
mod compact;
mod config;
mod context;
mod hooks;
mod journal;
mod mcp;
mod model;
mod price;
mod sandbox;
mod secrets;
mod sessions;
mod signals;
#[cfg(test)]
mod testing;
mod tools;
mod ui;

fn main() {
    if tools::watchdog::requested() {
        std::process::exit(tools::watchdog::serve());
    }
    if let Some(warning) = secrets::hide_keys() {
        eprintln!("nib: warning: {warning}");
    }
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let code = match cli::parse(&argv) {
        Err(e) => {
            eprintln!("nib: {e}");
            2
        }
        Ok(args) => match app::run(args) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("nib: {e}");
                e.exit_code()
            }
        },
    };
    std::process::exit(code);
}
