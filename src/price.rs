//! Money: what a request costs, from a price table of common hosted models (local
//! models cost nothing), and token estimates for servers that report no usage.

use crate::model::{Block, Message, Reply, Usage};
use serde_json::Value;

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

/// Prices: the user's overrides (from settings) first, then the built-in list.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    /// Model-name prefix → price, as the user wrote them.
    overrides: Vec<(String, Price)>,
}

impl Table {
    /// Reads settings' `"prices": {"model-prefix": {"input": …, "output": …,
    /// "cache_read": …, "cache_write": …}}` (dollars per million tokens). A missing
    /// cache price is the input price.
    pub fn from_settings(prices: Option<&Value>) -> Result<Table, String> {
        let Some(prices) = prices else {
            return Ok(Table::default());
        };
        let Some(map) = prices.as_object() else {
            return Err("settings: `prices` must be an object of model prefix → prices".into());
        };
        let overrides = map
            .iter()
            .map(|(prefix, v)| {
                parse_price(v).map(|p| (prefix.clone(), p)).map_err(|e| {
                    format!("settings: prices.{prefix}: {e}; give dollars per million tokens")
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Table { overrides })
    }

    /// The price of a model; `None` for unknown (local) models, which cost nothing.
    pub fn lookup(&self, model: &str) -> Option<Price> {
        let name = normalise(model);
        let custom = self.overrides.iter().map(|(k, p)| (k.as_str(), *p));
        let custom = longest_prefix(&name, custom);
        custom.or_else(|| longest_prefix(&name, TABLE.iter().copied()))
    }

    /// Dollars for one request's usage.
    pub fn cost(&self, model: &str, usage: &Usage) -> f64 {
        let Some(price) = self.lookup(model) else {
            return 0.0;
        };
        let m = 1_000_000.0;
        usage.input_tokens as f64 * price.input / m
            + usage.output_tokens as f64 * price.output / m
            + usage.cache_read_input_tokens as f64 * price.cache_read / m
            + usage.cache_creation_input_tokens as f64 * price.cache_write / m
    }

    /// What the next request will cost at least: its input, plus a typical reply.
    pub fn estimate_request(&self, model: &str, input_tokens: u64) -> f64 {
        let usage = Usage {
            input_tokens,
            output_tokens: EXPECTED_OUTPUT_TOKENS,
            ..Usage::default()
        };
        self.cost(model, &usage)
    }
}

fn parse_price(v: &Value) -> Result<Price, String> {
    let field = |name: &str| match v.get(name) {
        None => Ok(None),
        Some(x) => x
            .as_f64()
            .filter(|x| x.is_finite() && *x >= 0.0)
            .map(Some)
            .ok_or_else(|| format!("`{name}` must be a number ≥ 0")),
    };
    let input = field("input")?.ok_or("`input` is missing")?;
    let output = field("output")?.ok_or("`output` is missing")?;
    Ok(Price {
        input,
        output,
        cache_read: field("cache_read")?.unwrap_or(input),
        cache_write: field("cache_write")?.unwrap_or(input),
    })
}

/// OpenRouter-style names carry a vendor prefix ("anthropic/claude-sonnet-4.5");
/// dots and dashes are the same ("4.5" = "4-5").
fn normalise(model: &str) -> String {
    model.rsplit('/').next().unwrap_or(model).replace('.', "-")
}

/// The entry whose prefix is the longest one `name` starts with.
fn longest_prefix<'a>(
    name: &str,
    entries: impl Iterator<Item = (&'a str, Price)>,
) -> Option<Price> {
    entries
        .filter(|(prefix, _)| name.starts_with(&normalise(prefix)))
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(_, price)| price)
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
            Block::Opaque(o) => o.data.to_string().len(),
        })
        .sum();
    estimate_bytes(bytes)
}

/// Tokens in a piece of text (a system prompt, tool schemas), estimated from its size.
pub fn estimate_bytes(bytes: usize) -> u64 {
    bytes as u64 / BYTES_PER_TOKEN
}

/// Usage for a server that reported none: the estimated input, and the reply's size.
pub fn estimate_usage(input_tokens: u64, reply: &Reply) -> Usage {
    let out: usize = reply.text.len()
        + reply
            .calls
            .iter()
            .map(|c| c.input.to_string().len())
            .sum::<usize>();
    Usage {
        input_tokens,
        output_tokens: estimate_bytes(out),
        ..Usage::default()
    }
}

/// Output tokens assumed for the next reply when checking a budget.
const EXPECTED_OUTPUT_TOKENS: u64 = 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lookup_by_longest_prefix() {
        let table = Table::default();
        let check = |model: &str, input: Option<f64>| {
            assert_eq!(table.lookup(model).map(|p| p.input), input, "{model}");
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
        let table = Table::default();
        assert!((table.cost("claude-sonnet-4-5", &u) - 18.3).abs() < 1e-9);
        assert_eq!(table.cost("local", &u), 0.0);
    }

    #[test]
    fn settings_override_the_built_in_prices() {
        let prices = json!({
            "claude-sonnet-4": {"input": 1.0, "output": 2.0, "cache_read": 0.5, "cache_write": 0.25},
            "qwen": {"input": 0.1, "output": 0.2},
        });
        let table = Table::from_settings(Some(&prices)).unwrap();
        let check = |model: &str, expected: Option<Price>| {
            assert_eq!(table.lookup(model), expected, "{model}");
        };
        check("claude-sonnet-4-5", Some(p(1.0, 2.0, 0.5, 0.25)));
        // A missing cache price is the input price.
        check("qwen2.5-coder:7b", Some(p(0.1, 0.2, 0.1, 0.1)));
        // Models the user did not name keep the built-in price.
        check("gpt-4o", Some(p(2.5, 10.0, 1.25, 0.0)));
        check("smollm2", None);
    }

    #[test]
    fn bad_price_settings_are_refused_with_the_key() {
        let check = |prices: Value, expected: &str| {
            let err = Table::from_settings(Some(&prices)).unwrap_err();
            assert!(err.contains(expected), "{err}");
        };
        check(json!([1, 2]), "must be an object");
        check(
            json!({"m": {"output": 1.0}}),
            "prices.m: `input` is missing",
        );
        check(
            json!({"m": {"input": -1, "output": 1}}),
            "`input` must be a number",
        );
        check(
            json!({"m": {"input": 1, "output": "x"}}),
            "`output` must be a number",
        );
    }
}
