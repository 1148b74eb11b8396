//! Money: what a request costs, from a price table of common hosted models (local
//! models cost nothing), and token estimates for servers that report no usage,
//! calibrated by the counts a server gives (`Tally`).

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

/// Roughly four bytes of English or code per token (also how `compact` turns a token
/// budget into bytes).
pub const BYTES_PER_TOKEN: u64 = 4;
/// Characters beyond ASCII (CJK, accents) take about two bytes a token (SmolLM2: 1.9).
const WIDE_BYTES_PER_TOKEN: u64 = 2;
/// Per-message tokens a chat template adds (role markers); also makes the upper bound safe.
const MESSAGE_OVERHEAD: u64 = 8;
/// A calibration factor stays within these bounds (per mille): a tokenizer is never
/// that far from the estimate, so a stray count cannot throw the estimate off.
const CALIBRATION_PER_MILLE: (u64, u64) = (250, 4000);

/// Tokens in a text, estimated from what it is made of: digits and line breaks one
/// each (many tokenizers split numbers into digits), other ASCII four bytes a token,
/// anything else two bytes a token.
pub fn estimate_text(text: &str) -> u64 {
    let (mut digits, mut ascii, mut wide) = (0u64, 0u64, 0u64);
    for b in text.bytes() {
        match b {
            b'0'..=b'9' | b'\n' => digits += 1,
            0..=0x7f => ascii += 1,
            _ => wide += 1,
        }
    }
    digits + ascii.div_ceil(BYTES_PER_TOKEN) + wide.div_ceil(WIDE_BYTES_PER_TOKEN)
}

/// The text of a block as it weighs in a request.
fn block_text(b: &Block) -> std::borrow::Cow<'_, str> {
    match b {
        Block::Text { text } => text.into(),
        Block::ToolCall(c) => format!("{}{}", c.name, c.input).into(),
        Block::ToolResult { content, .. } => content.into(),
        Block::Opaque(o) => o.data.to_string().into(),
    }
}

/// Tokens in a conversation, estimated from its content.
pub fn estimate_tokens(messages: &[Message]) -> u64 {
    sum_blocks(messages, estimate_text)
}

/// The most tokens a conversation can be: no tokenizer makes more than one token of a
/// byte (byte-level BPE and byte fallback alike), plus the template's overhead.
pub fn most_tokens(messages: &[Message]) -> u64 {
    sum_blocks(messages, |text| text.len() as u64)
}

/// `tokens` of every block's text, plus the template's overhead per message.
fn sum_blocks(messages: &[Message], tokens: impl Fn(&str) -> u64) -> u64 {
    let blocks = |m: &Message| {
        m.content
            .iter()
            .map(|b| tokens(&block_text(b)))
            .sum::<u64>()
    };
    messages.iter().map(|m| MESSAGE_OVERHEAD + blocks(m)).sum()
}

/// Tokens in a piece of text (a system prompt, tool schemas), estimated from its size.
pub fn estimate_bytes(bytes: usize) -> u64 {
    bytes as u64 / BYTES_PER_TOKEN
}

/// A server's count of a request: the whole request held `messages[..messages]`,
/// whose estimate was `estimate` (so a conversation replaced since is noticed).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Counted {
    tokens: u64,
    messages: usize,
    estimate: u64,
}

/// What nib knows of a conversation's size in tokens: the server's last count (from a
/// reply's usage or a count request) and, from it, how the server's tokenizer compares
/// with the estimate, which then scales every estimate of what was added since.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tally {
    last: Option<Counted>,
    /// Server tokens per thousand estimated tokens.
    per_mille: u64,
    /// The server answered a count request with nothing: do not ask again.
    pub no_counts: bool,
}

impl Default for Tally {
    fn default() -> Tally {
        Tally {
            last: None,
            per_mille: 1000,
            no_counts: false,
        }
    }
}

impl Tally {
    /// The server counted `tokens` for a request of `messages`, plus system prompt and
    /// tools estimated at `fixed` tokens.
    pub fn record(&mut self, tokens: u64, messages: &[Message], fixed: u64) {
        let estimate = estimate_tokens(messages);
        let (low, high) = CALIBRATION_PER_MILLE;
        self.per_mille = (tokens * 1000 / (estimate + fixed).max(1)).clamp(low, high);
        self.last = Some(Counted {
            tokens,
            messages: messages.len(),
            estimate,
        });
    }

    /// Forgets the last count (the conversation was rewritten); keeps the calibration.
    pub fn forget(&mut self) {
        self.last = None;
    }

    fn calibrated(&self, estimate: u64) -> u64 {
        estimate * self.per_mille / 1000
    }

    /// The counted prefix's tokens and how many messages it covers, when it still holds.
    fn counted(&self, messages: &[Message]) -> Option<(u64, usize)> {
        let c = self.last?;
        let prefix = messages.get(..c.messages)?;
        (estimate_tokens(prefix) == c.estimate).then_some((c.tokens, c.messages))
    }

    /// Whether the last count is of exactly this conversation.
    pub fn is_exact(&self, messages: &[Message]) -> bool {
        self.counted(messages)
            .is_some_and(|(_, n)| n == messages.len())
    }

    /// The request's tokens: the last count plus a calibrated estimate of what came
    /// since, or a calibrated estimate of the whole.
    pub fn tokens(&self, messages: &[Message], fixed: u64) -> u64 {
        match self.counted(messages) {
            Some((tokens, n)) => tokens + self.calibrated(estimate_tokens(&messages[n..])),
            None => self.calibrated(estimate_tokens(messages) + fixed),
        }
    }
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

    #[test]
    fn estimates_weigh_digits_and_wide_characters() {
        assert_eq!(estimate_text("abcdefgh"), 2);
        assert_eq!(estimate_text("12345678"), 8);
        assert_eq!(estimate_text("a\nb\n"), 3);
        assert_eq!(estimate_text("这是"), 3);
    }

    #[test]
    fn a_count_calibrates_what_comes_after_it() {
        let first = vec![Message::user_text("a".repeat(400))];
        let mut tally = Tally::default();
        assert_eq!(tally.tokens(&first, 0), 8 + 100);
        assert!(!tally.is_exact(&first));
        // The server counted twice the estimate: later additions are doubled too.
        tally.record(216, &first, 0);
        assert!(tally.is_exact(&first));
        assert_eq!(tally.tokens(&first, 0), 216);
        let mut more = first.clone();
        more.push(Message::user_text("b".repeat(400)));
        assert_eq!(tally.tokens(&more, 0), 216 + 216);
        // A rewritten conversation is estimated afresh, still calibrated.
        let rewritten = vec![Message::user_text("c".repeat(800))];
        assert_eq!(tally.tokens(&rewritten, 0), 2 * 208);
        tally.forget();
        assert!(!tally.is_exact(&first));
        // A wild count is clamped.
        tally.record(1_000_000, &first, 0);
        assert_eq!(tally.tokens(&rewritten, 0), 4 * 208);
    }
}
