//! Everything that talks to the person: headless output, the interactive REPL, its
//! line editor and the output helpers it draws with.

pub mod editor;
pub mod headless;
pub mod repl;
pub mod term;
