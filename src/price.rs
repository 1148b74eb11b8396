//! Money: what a request costs, from a price table of common hosted models (local
//! models cost nothing), and token estimates for servers that report no usage.

use crate::model::{Block, Message, Reply, Usage};

/// Dollars per million tokens.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    pub cache_read: f64,
    pub cache_write: f64,
}

const fn p(input: f64, output: f64, cache_read: f64, cache_write: f64) -> Price {
    Price {
        input,
        output,
        cache_read,
        cache_write,
    }
}

/// Published list prices (USD per million tokens), matched by model-name prefix,
/// longest prefix first. Anthropic cache writes cost 1.25× input, reads 0.1×.
const TABLE: &[(&str, Price)] = &[
    ("claude-opus-4-5", p(5.0, 25.0, 0.5, 6.25)),
    ("claude-opus-4", p(15.0, 75.0, 1.5, 18.75)),
    ("claude-sonnet-4", p(3.0, 15.0, 0.3, 3.75)),
    ("claude-3-7-sonnet", p(3.0, 15.0, 0.3, 3.75)),
    ("claude-3-5-sonnet", p(3.0, 15.0, 0.3, 3.75)),
    ("claude-haiku-4", p(1.0, 5.0, 0.1, 1.25)),
    ("claude-3-5-haiku", p(0.8, 4.0, 0.08, 1.0)),
    ("gpt-5-nano", p(0.05, 0.4, 0.005, 0.0)),
    ("gpt-5-mini", p(0.25, 2.0, 0.025, 0.0)),
    ("gpt-5", p(1.25, 10.0, 0.125, 0.0)),
    ("gpt-4.1-nano", p(0.1, 0.4, 0.025, 0.0)),
    ("gpt-4.1-mini", p(0.4, 1.6, 0.1, 0.0)),
    ("gpt-4.1", p(2.0, 8.0, 0.5, 0.0)),
    ("gpt-4o-mini", p(0.15, 0.6, 0.075, 0.0)),
    ("gpt-4o", p(2.5, 10.0, 1.25, 0.0)),
    ("o4-mini", p(1.1, 4.4, 0.275, 0.0)),
    ("o3", p(2.0, 8.0, 0.5, 0.0)),
];

/// The price of a model; `None` for unknown (local) models, which cost nothing.
pub fn lookup(model: &str) -> Option<Price> {
    // OpenRouter-style names carry a vendor prefix: "anthropic/claude-sonnet-4.5".
    let name = model.rsplit('/').next().unwrap_or(model).replace('.', "-");
    TABLE
        .iter()
        .filter(|(prefix, _)| name.starts_with(&prefix.replace('.', "-")))
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(_, price)| *price)
}

/// Dollars for one request's usage.
pub fn cost(model: &str, usage: &Usage) -> f64 {
    let Some(price) = lookup(model) else {
        return 0.0;
    };
    let m = 1_000_000.0;
    usage.input_tokens as f64 * price.input / m
        + usage.output_tokens as f64 * price.output / m
        + usage.cache_read_input_tokens as f64 * price.cache_read / m
        + usage.cache_creation_input_tokens as f64 * price.cache_write / m
}

/// Roughly four bytes of English or code per token.
const BYTES_PER_TOKEN: u64 = 4;

/// Tokens in a conversation, estimated from its size.
pub fn estimate_tokens(messages: &[Message]) -> u64 {
    let bytes: usize = messages
        .iter()
        .flat_map(|m| &m.content)
        .map(|b| match b {
            Block::Text { text } => text.len(),
            Block::ToolCall(c) => c.name.len() + c.input.to_string().len(),
            Block::ToolResult { content, .. } => content.len(),
        })
        .sum();
    bytes as u64 / BYTES_PER_TOKEN
}

/// Usage for a server that reported none.
pub fn estimate_usage(messages: &[Message], system: &str, reply: &Reply) -> Usage {
    let out: usize = reply.text.len()
        + reply
            .calls
            .iter()
            .map(|c| c.input.to_string().len())
            .sum::<usize>();
    Usage {
        input_tokens: estimate_tokens(messages) + system.len() as u64 / BYTES_PER_TOKEN,
        output_tokens: out as u64 / BYTES_PER_TOKEN,
        ..Usage::default()
    }
}

/// Output tokens assumed for the next reply when checking a budget.
const EXPECTED_OUTPUT_TOKENS: u64 = 1024;

/// What the next request will cost at least: its input, plus a typical reply.
pub fn estimate_request(model: &str, messages: &[Message]) -> f64 {
    let usage = Usage {
        input_tokens: estimate_tokens(messages),
        output_tokens: EXPECTED_OUTPUT_TOKENS,
        ..Usage::default()
    };
    cost(model, &usage)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_by_longest_prefix() {
        let check = |model: &str, input: Option<f64>| {
            assert_eq!(lookup(model).map(|p| p.input), input, "{model}");
        };
        check("claude-sonnet-4-5-20250929", Some(3.0));
        check("claude-opus-4-5", Some(5.0));
        check("claude-opus-4-1", Some(15.0));
        check("gpt-4.1-mini", Some(0.4));
        check("gpt-4.1", Some(2.0));
        check("anthropic/claude-haiku-4.5", Some(1.0));
        check("smollm2-135m", None);
        check("qwen2.5-coder:7b", None);
    }

    #[test]
    fn cost_adds_all_kinds() {
        let u = Usage {
            input_tokens: 1_000_000,
            output_tokens: 1_000_000,
            cache_read_input_tokens: 1_000_000,
            cache_creation_input_tokens: 0,
        };
        assert!((cost("claude-sonnet-4-5", &u) - 18.3).abs() < 1e-9);
        assert_eq!(cost("local", &u), 0.0);
    }
}
