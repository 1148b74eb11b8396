//! Keeping secrets out of the model's reach (placeholder until the full module lands).

use std::borrow::Cow;

pub fn redact<'a>(text: &'a str, known: &[String]) -> Cow<'a, str> {
    let mut out = Cow::Borrowed(text);
    for k in known.iter().filter(|k| k.len() >= 8) {
        if out.contains(k.as_str()) {
            out = Cow::Owned(out.replace(k.as_str(), "[REDACTED]"));
        }
    }
    out
}

pub fn child_env(_passthrough: &[String]) -> Vec<(String, String)> {
    std::env::vars().collect()
}
