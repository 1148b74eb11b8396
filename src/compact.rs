//! Keeping a conversation inside the model's context window: how big the window is
//! (a table per model family, the user's setting, or what a local llama.cpp server
//! reports), when a conversation is too full, and how it is cut: which messages a
//! summary replaces and which stay verbatim, and what is cheaper to lose first: old
//! tool results become one-line stubs, then the latest results are cut.
//!
//! Pure: the agent sends the summary request and journals the result.

use crate::model::{Block, Endpoint, Message, Provider, Role};
use crate::price;

/// Context windows (tokens) by model-name prefix; the longest matching prefix wins.
const WINDOWS: &[(&str, u64)] = &[
    ("claude", 200_000),
    ("gpt-5", 400_000),
    ("gpt-4.1", 1_047_576),
    ("gpt-4o", 128_000),
    ("gpt-4-turbo", 128_000),
    ("o1", 200_000),
    ("o3", 200_000),
    ("o4-mini", 200_000),
    ("gemini-2", 1_048_576),
    ("qwen2.5-coder", 32_768),
    ("qwen3", 32_768),
    ("llama3.1", 131_072),
    ("llama-3.1", 131_072),
];

/// The window of a model nib knows nothing about: llama.cpp's usual default.
pub const DEFAULT_WINDOW: u64 = 8192;
/// Compact when the next request would fill this share of the window (percent): the
/// rest is room for the reply.
const COMPACT_AT_PERCENT: u64 = 80;
/// No server nib meets has a smaller window, so below 80% of this nib need not ask.
const SMALLEST_WINDOW: u64 = 2048;
/// A compaction must free at least this share of the request (percent), else it is
/// not worth a model request.
const MIN_FREED_PERCENT: u64 = 20;
/// Recent user prompts kept verbatim after a compaction.
const KEEP_PROMPTS: usize = 3;
/// Kept prompts fill at most this share of the window (percent); older or bigger
/// ones survive only in the summary.
const KEEP_PROMPTS_PERCENT: u64 = 20;
/// Each tool result is cut to this many bytes in the text the summariser reads.
const TRANSCRIPT_RESULT_BYTES: usize = 2000;
/// The transcript to summarise fills at most this share of the window (percent);
/// its oldest part is cut.
const TRANSCRIPT_PERCENT: u64 = 50;
/// The summary's length: at most this many tokens, and at most an eighth of the window.
const SUMMARY_MAX_TOKENS: u64 = 2048;

/// Results shorter than this stay when old results are cleared: a stub saves nothing.
const STUB_MIN_BYTES: usize = 300;
/// The call's arguments shown in a stub, at most.
const STUB_ARGS_BYTES: usize = 120;
/// How a cleared result starts.
pub const STUB_MARK: &str = "[result cleared to save context:";

/// How the summary starts, so people and models can tell it from a prompt.
pub const SUMMARY_MARK: &str = "[summary of earlier conversation]";

/// The system prompt of the summary request.
pub const SUMMARISE_SYSTEM: &str = "You summarise a coding session so it can go on \
without its full history.";

/// The instruction after the transcript.
const SUMMARISE_ASK: &str = "Summarise the conversation above for yourself, to continue \
the task: the user's goals and constraints, what was done and found (files, commands, \
results, errors), decisions, and what is left to do. Be concise and concrete; keep \
paths, names and numbers exact.";

/// A model's context window: known, or to be asked of a local server when it matters.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    tokens: Option<u64>,
    /// The base URL of a local OpenAI-compatible server that may report its window.
    probe: Option<String>,
    /// Nobody said: `tokens` is `DEFAULT_WINDOW`, a guess.
    guessed: bool,
}

impl Window {
    /// From the user's setting, else the table; else the local server at `local_base`
    /// is asked later, and failing that `DEFAULT_WINDOW`.
    pub fn new(model: &str, setting: Option<u64>, local_base: Option<String>) -> Window {
        let tokens = setting.or_else(|| lookup(model));
        Window {
            probe: local_base.filter(|_| tokens.is_none()),
            tokens,
            guessed: false,
        }
    }

    /// For an endpoint: a local OpenAI-compatible server (llama.cpp) may be asked.
    pub fn for_endpoint(endpoint: &Endpoint, setting: Option<u64>) -> Window {
        let local = crate::model::is_loopback(&endpoint.base_url);
        let probe =
            (local && endpoint.provider != Provider::Anthropic).then(|| endpoint.base_url.clone());
        Window::new(&endpoint.model, setting, probe)
    }

    /// The window in tokens, asking the server once (through `ask`) when not known.
    pub fn tokens(&mut self, ask: &dyn Fn(&str) -> Option<u64>) -> u64 {
        if let Some(tokens) = self.tokens {
            return tokens;
        }
        let told = self.probe.take().and_then(|base| ask(&base));
        self.guessed = told.is_none();
        let tokens = told.unwrap_or(DEFAULT_WINDOW);
        self.tokens = Some(tokens);
        tokens
    }

    /// Whether the window is known (a setting, the table, the server), not assumed.
    pub fn is_known(&mut self, ask: &dyn Fn(&str) -> Option<u64>) -> bool {
        self.tokens(ask);
        !self.guessed
    }

    /// The tokens a request may fill before it is compacted.
    pub fn mark(&mut self, ask: &dyn Fn(&str) -> Option<u64>) -> u64 {
        self.tokens(ask) * COMPACT_AT_PERCENT / 100
    }

    /// Whether a request of `used` tokens fills the window past the compaction mark.
    pub fn is_full(&mut self, used: u64, ask: &dyn Fn(&str) -> Option<u64>) -> bool {
        if used * 100 < SMALLEST_WINDOW * COMPACT_AT_PERCENT && self.tokens.is_none() {
            return false;
        }
        used * 100 > self.tokens(ask) * COMPACT_AT_PERCENT
    }
}

/// The table's window for a model (OpenRouter vendor prefixes ignored).
pub fn lookup(model: &str) -> Option<u64> {
    let name = model.rsplit('/').next().unwrap_or(model);
    WINDOWS
        .iter()
        .filter(|(prefix, _)| name.starts_with(prefix))
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(_, tokens)| *tokens)
}

/// How a conversation is cut.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The summary replaces `messages[..head]`.
    pub head: usize,
    /// What follows the summary verbatim: recent prompts from the head, then
    /// `messages[head..]` (the most recent tool exchange and what came after it).
    pub kept: Vec<Message>,
}

/// Where to cut `messages` for a window of `window` tokens; `None` when a summary
/// would not free enough to be worth it. The kept part starts at the most recent
/// assistant message with tool calls, so no call is parted from its result.
pub fn plan(messages: &[Message], window: u64) -> Option<Plan> {
    let has_calls = |m: &Message| {
        m.role == Role::Assistant && m.content.iter().any(|b| matches!(b, Block::ToolCall(_)))
    };
    let head = messages
        .iter()
        .rposition(has_calls)
        .unwrap_or(messages.len().saturating_sub(1));
    let prompts = recent_prompts(&messages[..head], window);
    let kept_prompts: u64 = prompts.iter().map(|p| p.len() as u64).sum();
    let freed = price::estimate_tokens(&messages[..head])
        .saturating_sub(price::estimate_bytes(kept_prompts as usize));
    // Nothing older than the latest exchange, or too little of it: no summary helps.
    if head == 0 || freed * 100 < price::estimate_tokens(messages) * MIN_FREED_PERCENT {
        return None;
    }
    let mut kept: Vec<Message> = prompts.into_iter().map(Message::user_text).collect();
    kept.extend_from_slice(&messages[head..]);
    Some(Plan { head, kept })
}

/// The last few prompts the user typed (not tool results, not earlier summaries),
/// oldest first, within their share of the window.
fn recent_prompts(head: &[Message], window: u64) -> Vec<String> {
    let mut budget = window * KEEP_PROMPTS_PERCENT / 100 * price::BYTES_PER_TOKEN;
    let mut prompts = Vec::new();
    let texts = head
        .iter()
        .rev()
        .filter(|m| m.role == Role::User)
        .flat_map(|m| m.content.iter().rev())
        .filter_map(|b| match b {
            Block::Text { text } if !text.starts_with(SUMMARY_MARK) => Some(text),
            _ => None,
        });
    for text in texts.take(KEEP_PROMPTS) {
        if text.len() as u64 > budget {
            break;
        }
        budget -= text.len() as u64;
        prompts.push(text.clone());
    }
    prompts.reverse();
    prompts
}

/// The conversation after a compaction: the summary (if any: clearing results writes
/// none) as a user message, then what was kept, messages of the same role in a row
/// merged (every provider accepts that).
pub fn rebuild(summary: &str, kept: &[Message]) -> Vec<Message> {
    let mut messages = Vec::new();
    if !summary.is_empty() {
        messages.push(Message::user_text(format!("{SUMMARY_MARK}\n{summary}")));
    }
    for message in kept {
        match messages.last_mut() {
            Some(last) if last.role == message.role => {
                last.content.extend(message.content.iter().cloned())
            }
            _ => messages.push(message.clone()),
        }
    }
    messages
}

/// The single message the summariser reads: the replaced messages as plain text (no
/// tool blocks, so any provider takes it without tool definitions), newest part kept
/// when it is too long, then the instruction.
pub fn summary_request(head: &[Message], window: u64) -> Message {
    let mut text = String::new();
    for message in head {
        for block in &message.content {
            let line = match (block, message.role) {
                (Block::Text { text }, Role::User) => format!("user: {text}"),
                (Block::Text { text }, Role::Assistant) => format!("assistant: {text}"),
                (Block::ToolCall(c), _) => format!("assistant called {} {}", c.name, c.input),
                (Block::ToolResult { content, .. }, _) => {
                    format!("result: {}", clip(content, TRANSCRIPT_RESULT_BYTES))
                }
                (Block::Opaque(_), _) => continue,
            };
            text.push_str(&line);
            text.push('\n');
        }
    }
    let max = (window * TRANSCRIPT_PERCENT / 100 * price::BYTES_PER_TOKEN) as usize;
    let start = text.len().saturating_sub(max);
    let start = (start..=text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    Message::user_text(format!("{}\n{SUMMARISE_ASK}", &text[start..]))
}

/// The summary's length limit for a window.
pub fn summary_tokens(window: u64) -> u32 {
    SUMMARY_MAX_TOKENS.min(window / 8).max(1) as u32
}

/// Where the latest tool results are: the last message that holds any.
fn latest_results(messages: &[Message]) -> Option<usize> {
    messages.iter().rposition(|m| {
        m.content
            .iter()
            .any(|b| matches!(b, Block::ToolResult { .. }))
    })
}

/// Replaces every tool result but the latest ones by a one-line stub naming the call
/// (as Anthropic's context editing clears old results). Returns how many were cleared.
pub fn clear_old_results(messages: &mut [Message]) -> usize {
    let Some(latest) = latest_results(messages) else {
        return 0;
    };
    let calls: std::collections::HashMap<String, String> = messages
        .iter()
        .flat_map(|m| &m.content)
        .filter_map(|b| match b {
            Block::ToolCall(c) => {
                let args = clip(&c.input.to_string(), STUB_ARGS_BYTES);
                Some((c.id.clone(), format!("{} {args}", c.name)))
            }
            _ => None,
        })
        .collect();
    let mut cleared = 0;
    for block in messages[..latest].iter_mut().flat_map(|m| &mut m.content) {
        let Block::ToolResult { id, content, .. } = block else {
            continue;
        };
        if content.len() < STUB_MIN_BYTES || content.starts_with(STUB_MARK) {
            continue;
        }
        let call = calls.get(id.as_str()).map_or("a tool call", String::as_str);
        *content = format!(
            "{STUB_MARK} {call} returned {} bytes; run it again if you need them]",
            content.len()
        );
        cleared += 1;
    }
    cleared
}

/// The biggest of the latest tool results, in bytes (0 when there are none).
pub fn latest_result_bytes(messages: &[Message]) -> usize {
    let Some(latest) = latest_results(messages) else {
        return 0;
    };
    messages[latest]
        .content
        .iter()
        .filter_map(|b| match b {
            Block::ToolResult { content, .. } => Some(content.len()),
            _ => None,
        })
        .max()
        .unwrap_or(0)
}

/// Cuts each of the latest tool results to at most `max` bytes (head, marker, tail).
/// Returns how many were cut.
pub fn cut_latest_results(messages: &mut [Message], max: usize) -> usize {
    let Some(latest) = latest_results(messages) else {
        return 0;
    };
    let mut cut = 0;
    for block in &mut messages[latest].content {
        if let Block::ToolResult { content, .. } = block
            && content.len() > max
        {
            *content = crate::tools::clip::shrink(content, max);
            cut += 1;
        }
    }
    cut
}

/// What stands for the replaced messages when the summary request failed.
pub fn dropped_note(replaced: usize) -> String {
    format!(
        "{replaced} earlier messages were dropped to fit the context window (summarising them failed); \
         ask the user if something from them is needed"
    )
}

/// The first `max` bytes of `s` (at a character boundary), marked when cut.
fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let end = (0..=max)
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0);
    format!("{}… [{} bytes]", &s[..end], s.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ToolCall;
    use serde_json::json;

    fn user(text: &str) -> Message {
        Message::user_text(text)
    }

    fn said(text: &str) -> Message {
        Message {
            role: Role::Assistant,
            content: vec![Block::Text { text: text.into() }],
        }
    }

    fn call(id: &str) -> Message {
        Message {
            role: Role::Assistant,
            content: vec![Block::ToolCall(ToolCall {
                id: id.into(),
                name: "bash".into(),
                input: json!({"command": "ls"}),
                invalid: None,
            })],
        }
    }

    fn result(id: &str, size: usize) -> Message {
        Message {
            role: Role::User,
            content: vec![Block::ToolResult {
                id: id.into(),
                content: "r".repeat(size),
                is_error: false,
            }],
        }
    }

    #[test]
    fn windows_by_model_family() {
        let check = |model: &str, setting: Option<u64>, expected: u64| {
            let mut window = Window::new(model, setting, None);
            assert_eq!(window.tokens(&|_| None), expected, "{model}");
        };
        check("claude-sonnet-4-5", None, 200_000);
        check("anthropic/claude-haiku-4.5", None, 200_000);
        check("gpt-4.1-mini", None, 1_047_576);
        check("gpt-4o-mini", None, 128_000);
        check("gpt-5", None, 400_000);
        check("smollm2-135m", None, DEFAULT_WINDOW);
        check("gpt-4o", Some(1000), 1000);
    }

    #[test]
    fn a_local_server_is_asked_once_and_only_when_it_matters() {
        let asked = std::cell::Cell::new(0);
        let ask = |base: &str| {
            assert_eq!(base, "http://127.0.0.1:8080/v1");
            asked.set(asked.get() + 1);
            Some(4096)
        };
        let mut window = Window::new("smollm2", None, Some("http://127.0.0.1:8080/v1".into()));
        assert!(!window.is_full(100, &ask));
        assert_eq!(asked.get(), 0, "a small request needs no window");
        assert!(!window.is_full(3000, &ask));
        assert!(window.is_full(3400, &ask));
        assert_eq!(asked.get(), 1);
        // A known model never asks.
        let mut known = Window::new("gpt-4o", None, Some("http://127.0.0.1:8080/v1".into()));
        assert!(!known.is_full(100_000, &ask));
        assert_eq!(asked.get(), 1);
        // A server that does not say: the default.
        let mut silent = Window::new("x", None, Some("http://h/v1".into()));
        assert_eq!(silent.tokens(&|_| None), DEFAULT_WINDOW);
    }

    #[test]
    fn only_local_openai_servers_are_asked() {
        let check = |provider: Provider, base: &str, asks: bool| {
            let endpoint = Endpoint {
                provider,
                base_url: base.into(),
                api_key: None,
                model: "unknown".into(),
            };
            let window = Window::for_endpoint(&endpoint, None);
            assert_eq!(window.probe.is_some(), asks, "{base}");
        };
        check(Provider::OpenAi, "http://127.0.0.1:8080/v1", true);
        check(Provider::OpenAi, "http://localhost:11434/v1", true);
        check(Provider::OpenAi, "https://openrouter.ai/api/v1", false);
        check(Provider::Anthropic, "http://127.0.0.1:9000", false);
    }

    #[test]
    fn plan_keeps_recent_prompts_and_the_last_exchange() {
        let messages = vec![
            user("first task"),
            call("a"),
            result("a", 4000),
            said("done a"),
            user("second task"),
            call("b"),
            result("b", 4000),
        ];
        let plan = plan(&messages, 100_000).expect("worth compacting");
        assert_eq!(plan.head, 5);
        let expected = vec![
            user("first task"),
            user("second task"),
            call("b"),
            result("b", 4000),
        ];
        assert_eq!(plan.kept, expected);
        let rebuilt = rebuild("S", &plan.kept);
        assert_eq!(rebuilt.len(), 3, "{rebuilt:?}");
        assert_eq!(
            rebuilt[0].content,
            vec![
                Block::Text {
                    text: format!("{SUMMARY_MARK}\nS")
                },
                Block::Text {
                    text: "first task".into()
                },
                Block::Text {
                    text: "second task".into()
                },
            ]
        );
        assert_eq!(rebuilt[1], call("b"));
    }

    #[test]
    fn plan_refuses_when_there_is_nothing_older() {
        assert!(plan(&[user("hi")], 100).is_none());
        assert!(plan(&[], 100).is_none());
    }

    #[test]
    fn plan_refuses_when_little_would_be_freed() {
        // Only the prompt precedes the last exchange: nothing to summarise.
        let messages = vec![user("task"), call("a"), result("a", 9000)];
        assert_eq!(plan(&messages, 100_000), None);
    }

    #[test]
    fn old_summaries_and_big_prompts_are_not_kept_verbatim() {
        let big = "p".repeat(5000);
        let messages = vec![
            user(&format!("{SUMMARY_MARK}\nold")),
            user(&big),
            call("a"),
            result("a", 9000),
            user("small"),
            call("b"),
            result("b", 10),
        ];
        let plan = plan(&messages, 5_000).expect("worth compacting");
        // The budget is 20% of 5k tokens = 4000 bytes: "small" fits, then the big
        // one does not, and the old summary never counts as a prompt.
        assert_eq!(plan.kept[0], user("small"));
        assert_eq!(plan.kept.len(), 3);
    }

    #[test]
    fn summary_request_is_plain_text_clipped_and_newest_first_kept() {
        let messages = vec![
            user("OLDEST"),
            call("a"),
            result("a", 50_000),
            said("NEWEST"),
        ];
        let Block::Text { text } = &summary_request(&messages, 100_000).content[0] else {
            panic!("text expected");
        };
        assert!(text.contains("user: OLDEST\nassistant called bash"));
        assert!(text.contains("… [50000 bytes]"), "results are clipped");
        assert!(text.contains("assistant: NEWEST\n"));
        assert!(text.ends_with(SUMMARISE_ASK));
        // A tiny window: only the newest part of the transcript stays.
        let Block::Text { text } = &summary_request(&messages, 40).content[0] else {
            panic!("text expected");
        };
        assert!(
            !text.contains("OLDEST") && text.contains("NEWEST"),
            "{text}"
        );
    }

    #[test]
    fn old_results_become_stubs_and_the_latest_stays() {
        let mut messages = vec![
            user("task"),
            call("a"),
            result("a", 5000),
            call("b"),
            result("b", 100),
            call("c"),
            result("c", 5000),
        ];
        assert_eq!(clear_old_results(&mut messages), 1, "small results stay");
        let Block::ToolResult { content, .. } = &messages[2].content[0] else {
            panic!("a result");
        };
        assert_eq!(
            content,
            "[result cleared to save context: bash {\"command\":\"ls\"} returned 5000 bytes; \
             run it again if you need them]"
        );
        assert_eq!(messages[4], result("b", 100));
        assert_eq!(messages[6], result("c", 5000));
        assert_eq!(
            clear_old_results(&mut messages),
            0,
            "stubs are not stubbed again"
        );
    }

    #[test]
    fn the_latest_results_are_cut_to_a_size() {
        let mut messages = vec![user("task"), call("a"), result("a", 5000)];
        assert_eq!(latest_result_bytes(&messages), 5000);
        assert_eq!(cut_latest_results(&mut messages, 1000), 1);
        assert!(latest_result_bytes(&messages) <= 1000);
        assert_eq!(cut_latest_results(&mut messages, 1000), 0);
        assert_eq!(latest_result_bytes(&[user("no results")]), 0);
    }

    #[test]
    fn rebuilding_without_a_summary_keeps_only_what_was_kept() {
        let kept = vec![user("task"), call("a"), result("a", 10)];
        assert_eq!(rebuild("", &kept), kept);
    }
}
