//! Shared test support: the fake model server (`fake`), the nib runner (`nib`), and
//! `both_protocols!`, which turns one test body into an OpenAI and an Anthropic test.

pub mod deps;
pub mod fake;
pub mod nib;
pub mod pane;
pub mod providers;

pub use fake::{FakeServer, Protocol, Reply, call};
pub use nib::{Nib, Output, parse_json_lines};

/// Defines, for each `fn name(p: Protocol) { ... }`, a module `name` with the tests
/// `openai` and `anthropic`, so a failure names the protocol it failed on.
macro_rules! both_protocols {
    ($(fn $name:ident($p:ident: Protocol) $body:block)*) => {
        $(
            mod $name {
                use super::*;

                fn body($p: Protocol) $body

                #[test]
                fn openai() {
                    body(Protocol::OpenAi)
                }

                #[test]
                fn anthropic() {
                    body(Protocol::Anthropic)
                }
            }
        )*
    };
}
pub(crate) use both_protocols;
