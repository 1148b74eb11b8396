//! Integration tests: drive the real nib binary against a scripted fake model server.
//!
//! One test binary (`cargo test --test integration`); `support/` holds the harness,
//! each other module one area of behaviour.

mod support;

mod approvals;
mod claude_setup;
mod cli;
mod commands;
mod config_errors;
mod context;
mod durable;
mod economy;
mod fake_selftest;
mod gate;
mod gate_classes;
mod guards;
mod headless;
mod hooks;
mod keys;
mod mcp;
mod polish;
mod providers;
mod real_model;
mod real_protocols;
mod real_window;
mod repl;
mod sandbox;
mod search;
mod sessions;
mod signals;
mod tools;
mod window;
mod wire;
