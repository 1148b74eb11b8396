//! nib: a minimal, local-first terminal coding agent. Wiring only: parse → run → exit code.

mod approval;
mod model;
mod secrets;
mod tools;

fn main() {
    println!("nib {}", env!("CARGO_PKG_VERSION"));
}
