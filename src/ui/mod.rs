//! Everything that talks to the person: headless output, the interactive REPL, its
//! line editor and the output helpers it draws with.

pub mod approve;
pub mod attach;
pub mod editor;
pub mod headless;
pub mod keys;
pub mod markdown;
pub mod repl;
pub mod slash;
pub mod term;
pub mod view;
