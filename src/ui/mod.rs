//! The terminal side of nib: the line editor and the output helpers the REPL draws with.

pub mod editor;
pub mod term;
