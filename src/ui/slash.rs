//! Slash commands as typed: the list `/help` shows and Tab completes, and parsing a
//! line into what it asks for. Doing it is the REPL's job.

use crate::approval::Mode;
use crate::cli;
use crate::model::Provider;

/// The slash commands, with the line `/help` shows for each.
pub const COMMANDS: [(&str, &str); 15] = [
    ("/help", "this list"),
    ("/clear", "start a new session"),
    (
        "/resume",
        "continue an earlier session (/resume ID, or pick from a list)",
    ),
    ("/sessions", "list the sessions of this directory"),
    (
        "/model",
        "show or switch the model (/model NAME [--base-url URL], /model anthropic:NAME)",
    ),
    ("/cost", "tokens and dollars so far"),
    ("/compact", "summarize the conversation to save context"),
    ("/undo", "revert the last file change (/undo N for more)"),
    ("/context", "the system prompt's parts and their sizes"),
    ("/skills", "the skills nib knows"),
    ("/mcp", "the MCP servers: state, tools, schema sizes"),
    (
        "/permissions",
        "the permission mode and rules (/permissions MODE switches: default, acceptEdits, plan)",
    ),
    ("/exit", "leave nib"),
    ("/quit", "leave nib"),
    ("/?", "this list"),
];

/// What a slash line asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum Slash {
    Help,
    Clear,
    Resume(Option<String>),
    Sessions,
    Model(Option<ModelSwitch>),
    Cost,
    Compact,
    Undo(usize),
    Context,
    Skills,
    Mcp,
    Permissions(Option<Mode>),
    Exit,
}

/// `/model [provider:]NAME [--base-url URL]`.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSwitch {
    pub provider: Option<Provider>,
    pub name: String,
    pub base_url: Option<String>,
}

/// A line is a command when its first word is `/name` without another `/` (so a
/// message that starts with a path such as `/etc/hosts` is sent as a message).
pub fn is_command(line: &str) -> bool {
    let first = line.split_whitespace().next().unwrap_or("");
    first.starts_with('/') && !first[1..].contains('/')
}

pub fn parse_slash(line: &str) -> Result<Slash, String> {
    let mut words = line.split_whitespace();
    let name = words.next().unwrap_or("");
    let rest: Vec<&str> = words.collect();
    let no_args = |s: Slash| match rest.is_empty() {
        true => Ok(s),
        false => Err(format!("{name} takes no arguments")),
    };
    match name {
        "/help" | "/?" => no_args(Slash::Help),
        "/clear" | "/new" => no_args(Slash::Clear),
        "/resume" => match rest[..] {
            [] => Ok(Slash::Resume(None)),
            [id] => Ok(Slash::Resume(Some(id.to_string()))),
            _ => Err("/resume takes one session ID".into()),
        },
        "/sessions" => no_args(Slash::Sessions),
        "/model" => parse_model(&rest).map(Slash::Model),
        "/cost" => no_args(Slash::Cost),
        "/compact" => Ok(Slash::Compact),
        "/undo" => match rest[..] {
            [] => Ok(Slash::Undo(1)),
            [n] => match n.parse::<usize>() {
                Ok(n) if n > 0 => Ok(Slash::Undo(n)),
                _ => Err(format!("/undo takes a count above 0, not {n:?}")),
            },
            _ => Err("/undo takes one count".into()),
        },
        "/context" => no_args(Slash::Context),
        "/skills" => no_args(Slash::Skills),
        "/mcp" => no_args(Slash::Mcp),
        "/permissions" => match rest[..] {
            [] => Ok(Slash::Permissions(None)),
            [m] => Mode::parse(m).map(|m| Slash::Permissions(Some(m))).ok_or_else(|| {
                format!(
                    "unknown mode {m:?}: use default, acceptEdits, plan, dontAsk or bypassPermissions"
                )
            }),
            _ => Err("/permissions takes one mode".into()),
        },
        "/exit" | "/quit" => Ok(Slash::Exit),
        other => Err(format!("unknown command {other}; /help lists them")),
    }
}

fn parse_model(words: &[&str]) -> Result<Option<ModelSwitch>, String> {
    let mut name = None;
    let mut base_url = None;
    let mut words = words.iter();
    while let Some(w) = words.next() {
        match *w {
            "--base-url" => {
                let url = words.next().ok_or("--base-url needs a URL")?;
                base_url = Some(url.to_string());
            }
            w if w.starts_with('-') => return Err(format!("/model does not know {w}")),
            w if name.is_none() => name = Some(w),
            _ => return Err("/model takes one model name".into()),
        }
    }
    let Some(name) = name else {
        return match base_url {
            None => Ok(None),
            Some(_) => Err("/model --base-url needs a model name too".into()),
        };
    };
    // `anthropic:NAME` names a provider; `llama3:8b` is just an Ollama model name.
    let (provider, name) = match name.split_once(':') {
        Some((p, n)) if !n.is_empty() => match cli::parse_provider(p) {
            Some(p) => (Some(p), n),
            None => (None, name),
        },
        _ => (None, name),
    };
    Ok(Some(ModelSwitch {
        provider,
        name: name.to_string(),
        base_url,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slash_commands_parse() {
        fn check(line: &str, expected: Result<Slash, &str>) {
            assert_eq!(parse_slash(line), expected.map_err(String::from), "{line}");
        }
        let switch = |provider, name: &str, base: Option<&str>| {
            Slash::Model(Some(ModelSwitch {
                provider,
                name: name.into(),
                base_url: base.map(String::from),
            }))
        };
        check("/help", Ok(Slash::Help));
        check("/quit", Ok(Slash::Exit));
        check("/resume", Ok(Slash::Resume(None)));
        check("/resume 3f2a", Ok(Slash::Resume(Some("3f2a".into()))));
        check("/undo", Ok(Slash::Undo(1)));
        check("/undo 3", Ok(Slash::Undo(3)));
        check("/undo 0", Err("/undo takes a count above 0, not \"0\""));
        check("/model", Ok(Slash::Model(None)));
        check("/model qwen3", Ok(switch(None, "qwen3", None)));
        check("/model llama3:8b", Ok(switch(None, "llama3:8b", None)));
        check(
            "/model anthropic:claude-x",
            Ok(switch(Some(Provider::Anthropic), "claude-x", None)),
        );
        check(
            "/model m --base-url http://127.0.0.1:8080/v1",
            Ok(switch(None, "m", Some("http://127.0.0.1:8080/v1"))),
        );
        check("/model --base-url", Err("--base-url needs a URL"));
        check("/model a b", Err("/model takes one model name"));
        check("/cost now", Err("/cost takes no arguments"));
        check("/permissions", Ok(Slash::Permissions(None)));
        check(
            "/permissions acceptEdits",
            Ok(Slash::Permissions(Some(Mode::AcceptEdits))),
        );
        check(
            "/permissions sometimes",
            Err(
                "unknown mode \"sometimes\": use default, acceptEdits, plan, dontAsk or bypassPermissions",
            ),
        );
        check(
            "/frobnicate",
            Err("unknown command /frobnicate; /help lists them"),
        );
    }

    #[test]
    fn paths_at_line_start_are_messages() {
        assert!(is_command("/help"));
        assert!(is_command("/model x"));
        assert!(!is_command("/etc/hosts looks odd"));
        assert!(!is_command("hello /help"));
    }
}
