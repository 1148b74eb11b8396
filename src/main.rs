//! nib: a minimal, local-first terminal coding agent. Wiring only: parse → run → exit code.

mod approval;
mod model;
mod tools;
mod ui;

fn main() {
    println!("nib {}", env!("CARGO_PKG_VERSION"));
}
