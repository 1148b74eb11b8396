//! Integration tests: drive the real nib binary against a scripted fake model server.
//!
//! One test binary (`cargo test --test integration`); `support/` holds the harness,
//! each other module one area of behaviour.

mod support;

mod claude_setup;
mod commands;
mod context;
mod economy;
mod fake_selftest;
mod gate;
mod headless;
mod hooks;
mod mcp;
mod real_model;
mod repl;
mod sessions;
mod tools;
mod wire;
