//! nib's own settings file, `<config_dir>/nib/settings.json`, as one typed struct.
//!
//! Read leniently, as nib always has: a key of the wrong type counts as unset, an empty
//! string too; only a file that is not JSON at all is an error.

use crate::model::{self, Limits};
use serde::{Deserialize, Deserializer, de::DeserializeOwned};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// The user's settings; every key nib reads has a field.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Settings {
    #[serde(deserialize_with = "text")]
    pub model: Option<String>,
    #[serde(deserialize_with = "text")]
    pub provider: Option<String>,
    #[serde(deserialize_with = "text")]
    pub base_url: Option<String>,
    /// The variable that holds the key for `base_url`.
    #[serde(deserialize_with = "text")]
    pub api_key_env: Option<String>,
    /// A provider profile by name (beats the one the host suggests).
    #[serde(deserialize_with = "text")]
    pub profile: Option<String>,
    #[serde(deserialize_with = "text")]
    pub max_tokens_field: Option<String>,
    #[serde(rename = "defaultMode", deserialize_with = "text")]
    pub default_mode: Option<String>,
    #[serde(deserialize_with = "lenient")]
    pub auto: Option<bool>,
    #[serde(deserialize_with = "lenient")]
    pub terse: Option<bool>,
    /// Names of environment variables the user lets through to commands.
    #[serde(deserialize_with = "texts")]
    pub env_passthrough: Vec<String>,
    #[serde(deserialize_with = "lenient")]
    max_output_tokens: Option<u64>,
    #[serde(deserialize_with = "lenient")]
    idle_timeout_secs: Option<u64>,
    #[serde(deserialize_with = "lenient")]
    pub context_window: Option<u64>,
    /// `prices`, read by `price::Table::from_settings` (which names what is wrong).
    pub prices: Option<Value>,
    /// `sandbox`, read by `sandbox::from_settings` (which names what is wrong).
    pub sandbox: Option<Value>,
    /// The whole file, for MCP's `mcpServers` and `mcp.<server>` keys that `mcp` reads.
    #[serde(skip)]
    pub json: Value,
}

impl Settings {
    pub fn load(config_dir: Option<&Path>) -> Result<Settings, String> {
        let Some(dir) = config_dir else {
            return Ok(Settings::default());
        };
        let path = dir.join("nib").join("settings.json");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Settings::default()),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let path = path.display();
        let json: Value = serde_json::from_str(&text)
            .map_err(|e| format!("{path} is not valid JSON: {e}; fix or remove it"))?;
        if !json.is_object() {
            return Err(format!("{path} must hold a JSON object; fix or remove it"));
        }
        Ok(Settings::from_json(json))
    }

    /// The settings a JSON value holds (none but the raw JSON when it is not an object).
    pub fn from_json(json: Value) -> Settings {
        let typed = match json.is_object() {
            true => Settings::deserialize(&json).unwrap_or_default(),
            false => Settings::default(),
        };
        Settings { json, ..typed }
    }

    /// `max_output_tokens` when it is a usable cap (above 0, fits a u32).
    pub fn max_output_tokens(&self) -> Option<u32> {
        let n = self.max_output_tokens.and_then(|n| u32::try_from(n).ok());
        n.filter(|n| *n > 0)
    }

    /// Request limits: the defaults, with `idle_timeout_secs` for the idle limit.
    pub fn limits(&self) -> Limits {
        let idle = self.idle_timeout_secs.filter(|secs| *secs > 0);
        Limits {
            idle_timeout: idle.map_or(model::IDLE_TIMEOUT, Duration::from_secs),
            ..Limits::default()
        }
    }
}

/// A value of type `T`, or unset when it has another type.
fn lenient<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Option<T>, D::Error> {
    Ok(T::deserialize(Value::deserialize(d)?).ok())
}

/// A string that is not empty, or unset.
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s: Option<String> = lenient(d)?;
    Ok(s.filter(|s| !s.is_empty()))
}

/// The strings of a list (other items left out), or none.
fn texts<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let list: Option<Vec<Value>> = lenient(d)?;
    let strings = list
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string));
    Ok(strings.collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_the_wrong_type_count_as_unset() {
        let s = Settings::from_json(serde_json::json!({
            "model": "m", "provider": "", "auto": "yes", "terse": true,
            "env_passthrough": ["A", 1, "B"], "max_output_tokens": 0,
            "idle_timeout_secs": 7, "context_window": "big"
        }));
        assert_eq!(s.model.as_deref(), Some("m"));
        assert_eq!(s.provider, None, "empty is unset");
        assert_eq!((s.auto, s.terse), (None, Some(true)));
        assert_eq!(s.env_passthrough, ["A", "B"]);
        assert_eq!(s.max_output_tokens(), None, "0 is no cap");
        assert_eq!(s.limits().idle_timeout, Duration::from_secs(7));
        assert_eq!(s.context_window, None);
        let s = Settings::from_json(serde_json::json!({"max_output_tokens": 9}));
        assert_eq!(s.max_output_tokens(), Some(9));
        assert_eq!(s.limits().idle_timeout, model::IDLE_TIMEOUT);
    }

    #[test]
    fn a_file_that_is_not_an_object_sets_nothing() {
        let s = Settings::from_json(serde_json::json!(["model", "m"]));
        assert_eq!(s.model, None);
        assert!(s.json.is_array());
    }
}
