//! Provider profiles: what a server needs beyond its wire protocol, chosen from its host
//! (or settings `profile`), and the fixes nib applies once when a server's answer says
//! what it wants (the output-cap field, no `stream_options`, a cap that fits the window).
//!
//! Pure: the request bodies read these options; `Client::send` applies `adapt`.

use super::{Endpoint, Provider, Request, stable_hash};
use regex::Regex;
use std::sync::LazyLock;

/// Who is behind an OpenAI-compatible URL, when it matters for the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    Generic,
    OpenAi,
    /// `/openai/deployments/NAME?api-version=…`, key in `api-key`.
    Azure,
    /// No `stream_options`; tool-call ids of 9 letters and digits; no `user` right after `tool`.
    Mistral,
    /// Thinking mode: `reasoning_content` must come back on assistant messages with calls.
    DeepSeek,
    /// Gemini's OpenAI-compatible API: each call's thought signature must come back.
    Gemini,
    /// `reasoning_details` must come back unchanged.
    OpenRouter,
    /// Usage in `x_groq.usage`.
    Groq,
}

impl Profile {
    pub const ALL: [Profile; 8] = [
        Profile::Generic,
        Profile::OpenAi,
        Profile::Azure,
        Profile::Mistral,
        Profile::DeepSeek,
        Profile::Gemini,
        Profile::OpenRouter,
        Profile::Groq,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Profile::Generic => "generic",
            Profile::OpenAi => "openai",
            Profile::Azure => "azure",
            Profile::Mistral => "mistral",
            Profile::DeepSeek => "deepseek",
            Profile::Gemini => "gemini",
            Profile::OpenRouter => "openrouter",
            Profile::Groq => "groq",
        }
    }

    pub fn from_name(name: &str) -> Option<Profile> {
        Profile::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The profile a base URL implies: its host, or Azure's deployment path.
    pub fn detect(base_url: &str) -> Profile {
        let host = super::host_of(base_url);
        let host = host.split(':').next().unwrap_or("");
        let is = |domain: &str| host == domain || host.ends_with(&format!(".{domain}"));
        match () {
            _ if is("openai.azure.com") || base_url.contains("/openai/deployments/") => {
                Profile::Azure
            }
            _ if is("api.mistral.ai") => Profile::Mistral,
            _ if is("api.deepseek.com") => Profile::DeepSeek,
            _ if is("generativelanguage.googleapis.com") => Profile::Gemini,
            _ if is("openrouter.ai") => Profile::OpenRouter,
            _ if is("api.groq.com") => Profile::Groq,
            _ if is("api.openai.com") => Profile::OpenAi,
            _ => Profile::Generic,
        }
    }
}

/// `--effort`: how hard a reasoning model thinks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effort {
    Low,
    Medium,
    High,
}

impl Effort {
    pub fn parse(text: &str) -> Option<Effort> {
        [Effort::Low, Effort::Medium, Effort::High]
            .into_iter()
            .find(|e| e.name() == text)
    }

    pub fn name(self) -> &'static str {
        match self {
            Effort::Low => "low",
            Effort::Medium => "medium",
            Effort::High => "high",
        }
    }

    /// Anthropic's thinking budget for this effort (the API's minimum is 1,024).
    pub fn thinking_budget(self) -> u32 {
        match self {
            Effort::Low => 1024,
            Effort::Medium => 4096,
            Effort::High => 16384,
        }
    }
}

/// Which field carries the output cap on Chat Completions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapField {
    /// What local servers and most providers read.
    MaxTokens,
    /// OpenAI's reasoning models reject `max_tokens`.
    MaxCompletionTokens,
}

impl CapField {
    pub fn name(self) -> &'static str {
        match self {
            CapField::MaxTokens => "max_tokens",
            CapField::MaxCompletionTokens => "max_completion_tokens",
        }
    }

    pub fn from_name(name: &str) -> Option<CapField> {
        [CapField::MaxTokens, CapField::MaxCompletionTokens]
            .into_iter()
            .find(|f| f.name() == name)
    }

    /// A guess from the model name: OpenAI's reasoning families.
    pub fn for_model(model: &str) -> CapField {
        let name = model.rsplit('/').next().unwrap_or("");
        match ["o1", "o3", "o4", "gpt-5"]
            .iter()
            .any(|p| name.starts_with(p))
        {
            true => CapField::MaxCompletionTokens,
            false => CapField::MaxTokens,
        }
    }
}

/// How requests to one endpoint are shaped. `Client` starts from these and keeps what
/// the server's answers taught it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    pub profile: Profile,
    pub effort: Option<Effort>,
    pub cap_field: CapField,
    /// Ask for a usage chunk with `stream_options` (Mistral rejects the field).
    pub stream_options: bool,
    /// A cap the server said fits its window; below the configured one.
    pub cap_clamp: Option<u32>,
}

/// One fix `adapt` can make; each is tried at most once per request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fix {
    CapField,
    StreamOptions,
    Clamp,
}

/// Output tokens kept free when clamping to a window: servers count the template too.
const CLAMP_MARGIN: u64 = 64;
/// A clamp smaller than this leaves no room for an answer: say so instead.
const MIN_CLAMPED_CAP: u64 = 256;

impl Options {
    /// The defaults for an endpoint: profile from its URL, cap field from its model.
    pub fn for_endpoint(endpoint: &Endpoint) -> Options {
        let profile = Profile::detect(&endpoint.base_url);
        Options {
            profile,
            effort: None,
            cap_field: CapField::for_model(&endpoint.model),
            stream_options: profile != Profile::Mistral,
            cap_clamp: None,
        }
    }

    /// The wire family opaque data of this endpoint belongs to.
    pub fn family(&self, provider: Provider) -> String {
        match (provider, self.profile) {
            (Provider::Anthropic, _) => "anthropic".into(),
            (Provider::OpenAiResponses, _) => "responses".into(),
            (Provider::OpenAi, Profile::Generic) => "openai".into(),
            (Provider::OpenAi, p) => format!("openai/{}", p.name()),
        }
    }

    /// The request with the learned cap applied.
    pub fn clamp<'a>(&self, req: Request<'a>) -> Request<'a> {
        match self.cap_clamp {
            Some(cap) if cap < req.max_tokens => Request {
                max_tokens: cap,
                ..req
            },
            _ => req,
        }
    }

    /// What a rejected request (status `code`, message `body`) asks to change, and the
    /// options with that change; `None` when nib knows no fix.
    pub fn adapt(&self, code: u16, body: &str, max_tokens: u32) -> Option<(Fix, Options)> {
        if !matches!(code, 400 | 422) {
            return None;
        }
        let lower = body.to_ascii_lowercase();
        let unsupported = UNSUPPORTED
            .captures(body)
            .and_then(|c| c.get(1).or(c.get(2)))
            .map(|m| m.as_str());
        let mut next = *self;
        next.cap_field = match (self.cap_field, unsupported) {
            (CapField::MaxTokens, Some("max_tokens")) => CapField::MaxCompletionTokens,
            (CapField::MaxCompletionTokens, Some("max_completion_tokens")) => CapField::MaxTokens,
            _ => self.cap_field,
        };
        if next.cap_field != self.cap_field {
            return Some((Fix::CapField, next));
        }
        if self.stream_options
            && lower.contains("stream_options")
            && ["extra_forbidden", "extra inputs", "unrecognized", "unknown"]
                .iter()
                .any(|k| lower.contains(k))
        {
            next.stream_options = false;
            return Some((Fix::StreamOptions, next));
        }
        let (window, input) = context_numbers(body)?;
        let cap = window.saturating_sub(input + CLAMP_MARGIN);
        let current = self.cap_clamp.unwrap_or(max_tokens);
        next.cap_clamp = Some(cap as u32);
        (cap >= MIN_CLAMPED_CAP && cap < u64::from(current)).then_some((Fix::Clamp, next))
    }
}

/// Whether an error body is about the context window being too small for the request.
pub fn is_context_limit(body: &str) -> bool {
    let lower = body.to_ascii_lowercase();
    [
        "context length",
        "context window",
        "context_length_exceeded",
    ]
    .iter()
    .any(|k| lower.contains(k))
}

/// "Unsupported parameter: 'max_tokens' …" (OpenAI, Azure) or "'max_tokens' is not supported".
static UNSUPPORTED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)unsupported parameter:? '(\w+)'|'(\w+)' is not supported")
        .expect("valid regex")
});
static WINDOW: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:maximum context length|context window|context length) (?:is|of) (\d+)")
        .expect("valid regex")
});
static INPUT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?:request has|prompt contains at least|messages resulted in|prompt has|input has) (\d+)(?: input)? tokens",
    )
    .expect("valid regex")
});

/// The window and the input size a context-limit error states (vLLM, OpenAI, llama.cpp
/// wordings); `None` unless it says both.
fn context_numbers(body: &str) -> Option<(u64, u64)> {
    let number = |re: &Regex| re.captures(body)?.get(1)?.as_str().parse::<u64>().ok();
    Some((number(&WINDOW)?, number(&INPUT)?))
}

/// A tool-call id as Mistral accepts it: exactly 9 letters and digits. Valid ids pass
/// unchanged; others map through a stable hash, so a call and its result agree.
pub fn mistral_id(id: &str) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    if id.len() == 9 && id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return id.to_string();
    }
    let mut h = stable_hash(id.as_bytes());
    (0..9)
        .map(|_| {
            let c = DIGITS[(h % 62) as usize] as char;
            h /= 62;
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_from_urls() {
        let check = |url: &str, p: Profile| assert_eq!(Profile::detect(url), p, "{url}");
        check("https://api.mistral.ai/v1", Profile::Mistral);
        check(
            "https://r.openai.azure.com/openai/deployments/gpt?api-version=2024-10-21",
            Profile::Azure,
        );
        check(
            "http://127.0.0.1:9/openai/deployments/x?api-version=1",
            Profile::Azure,
        );
        check("https://api.deepseek.com", Profile::DeepSeek);
        check(
            "https://generativelanguage.googleapis.com/v1beta/openai",
            Profile::Gemini,
        );
        check("https://openrouter.ai/api/v1", Profile::OpenRouter);
        check("https://api.groq.com/openai/v1", Profile::Groq);
        check("https://api.openai.com/v1", Profile::OpenAi);
        check("http://127.0.0.1:8080/v1", Profile::Generic);
        check("https://mistral.ai.example.com/v1", Profile::Generic);
    }

    fn options() -> Options {
        Options {
            profile: Profile::Generic,
            effort: None,
            cap_field: CapField::MaxTokens,
            stream_options: true,
            cap_clamp: None,
        }
    }

    #[test]
    fn adapts_to_what_the_server_says() {
        let o = options();
        let body = "Unsupported parameter: 'max_tokens' is not supported with this model. \
                    Use 'max_completion_tokens' instead.";
        let (fix, next) = o.adapt(400, body, 8192).unwrap();
        assert_eq!(
            (fix, next.cap_field),
            (Fix::CapField, CapField::MaxCompletionTokens)
        );
        // Learned: the same answer again has no fix left.
        assert_eq!(next.adapt(400, body, 8192), None);
        assert_eq!(
            o.adapt(500, body, 8192),
            None,
            "only a 400/422 is a request to change"
        );

        let mistral = r#"[{"type":"extra_forbidden","loc":["body","stream_options"],"msg":"Extra inputs are not permitted"}]"#;
        let (fix, next) = o.adapt(422, mistral, 8192).unwrap();
        assert_eq!((fix, next.stream_options), (Fix::StreamOptions, false));

        let vllm = "This model's maximum context length is 8192 tokens. However, you requested \
                    8192 output tokens and your prompt contains at least 1000 input tokens, for a \
                    total of at least 9192 tokens.";
        let (fix, next) = o.adapt(400, vllm, 8192).unwrap();
        assert_eq!((fix, next.cap_clamp), (Fix::Clamp, Some(8192 - 1000 - 64)));
        let openai = "'max_tokens' is too large: 8192. This model's maximum context length is \
                      4096 tokens and your request has 3900 input tokens (8192 > 4096 - 3900).";
        assert_eq!(o.adapt(400, openai, 8192), None, "no room left: no clamp");
        assert!(is_context_limit(openai));
        assert_eq!(o.adapt(400, "model not found", 8192), None);
    }

    #[test]
    fn mistral_ids_are_nine_alphanumerics_and_stable() {
        assert_eq!(mistral_id("abcDEF123"), "abcDEF123");
        let a = mistral_id("toolu_01ABCdef");
        assert_eq!(a.len(), 9);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(a, mistral_id("toolu_01ABCdef"));
        assert_ne!(a, mistral_id("toolu_01ABCdeg"));
    }

    #[test]
    fn cap_field_guess() {
        assert_eq!(
            CapField::for_model("openai/gpt-5-mini"),
            CapField::MaxCompletionTokens
        );
        assert_eq!(
            CapField::for_model("o4-mini"),
            CapField::MaxCompletionTokens
        );
        assert_eq!(CapField::for_model("prod-gpt5"), CapField::MaxTokens);
        assert_eq!(CapField::for_model("qwen3"), CapField::MaxTokens);
    }
}
