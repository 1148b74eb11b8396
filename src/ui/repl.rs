//! The interactive REPL.

use crate::app::{Dirs, Setup};
use crate::cli::Args;

/// Runs the REPL until the user leaves; returns the exit code.
pub fn run(_args: &Args, _dirs: &Dirs, _setup: Setup) -> Result<i32, String> {
    Err("the interactive REPL is not in this build; use nib -p \"task\"".into())
}
