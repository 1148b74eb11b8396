//! The 12 KB cap on what a tool shows the model: head + tail, never split inside a
//! UTF-8 character, with a marker that gives the original size.

/// Most bytes of tool output the model ever sees (REFERENCE §6: 12 KB).
pub const LIMIT: usize = 12_288;
