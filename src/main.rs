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

fn main() {
    if tools::watchdog::requested() {
        std::process::exit(tools::watchdog::serve());
    }
    if let Some(warning) = secrets::hide_keys() {
        eprintln!("nib: warning: {}", ui::term::sanitize(&warning));
    }
    let argv: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let code = match cli::parse_os(argv.clone()) {
        Err(e) => app::fail(&app::Error::Usage(e.to_string()), cli::json_output(&argv)),
        Ok(args) => {
            let json = args.output_format != cli::OutputFormat::Text;
            match app::run(args) {
                Ok(code) => code,
                Err(e) => app::fail(&e, json),
            }
        }
    };
    std::process::exit(code);
}
