//! Why a model request failed: one `Error` for everything `Client` and the protocol
//! readers return, each kind saying what the user can do about it, and the one place
//! (`Display`) that renders it. Whether a kind is worth another attempt is `retry.rs`'s
//! call; the flags here only carry what the transport or the stream knew.

use super::profile;
use crate::secrets::Redactor;
use std::fmt;
use std::io;

/// What stands for the API key in an error: the user should know it was the key.
const KEY_MASK: &str = "[api key]";

/// A failed request (after retries), or why reading one reply stream failed.
#[derive(Debug, PartialEq)]
pub enum Error {
    /// Could not connect (server down, DNS, TLS); `retry` when it may be restarting.
    Connect {
        url: String,
        detail: String,
        retry: bool,
    },
    /// The server answered with an error status: a bad key, a bad request, a rate limit,
    /// a context too long, a server failure (the rendering says which from `code`).
    Status {
        code: u16,
        url: String,
        body: String,
    },
    /// The account cannot pay (`insufficient_quota`, 402): retrying cannot help.
    Billing {
        code: u16,
        url: String,
        body: String,
    },
    /// The stream was malformed, cut before its end marker, or carried an error event;
    /// `retry` when another attempt may go through (a dropped connection, an overload).
    Stream { detail: String, retry: bool },
    /// No data for `idle_timeout`.
    Timeout { url: String, secs: u64 },
    /// The server asked to wait longer than `max_backoff` before trying again.
    Later {
        url: String,
        code: u16,
        wait: u64,
        max: u64,
    },
    /// The user cancelled.
    Interrupted,
}

impl Error {
    /// Bytes that are not the protocol (a chunk that is not JSON): a retry reads the same.
    pub fn malformed(detail: String) -> Error {
        Error::Stream {
            detail,
            retry: false,
        }
    }

    /// The stream ended before its end marker (`[DONE]` / `message_stop`).
    pub fn incomplete() -> Error {
        Error::Stream {
            detail: "the reply ended before its end marker".to_string(),
            retry: true,
        }
    }

    /// The server sent an error event; `retry` when it names a passing condition.
    pub fn server(message: &str, retry: bool) -> Error {
        Error::Stream {
            detail: format!("the server reported an error: {message}"),
            retry,
        }
    }

    /// The error with `key` masked in every text it carries, even when a server echoes
    /// it back. (Built only for an error: a redactor costs a regex.)
    pub fn redacted(mut self, key: Option<&str>) -> Error {
        let Some(key) = key else {
            return self;
        };
        let redactor = Redactor::new(&[key.to_string()]);
        let texts = match &mut self {
            Error::Connect { url, detail, .. } => vec![url, detail],
            Error::Status { url, body, .. } | Error::Billing { url, body, .. } => vec![url, body],
            Error::Stream { detail, .. } => vec![detail],
            Error::Timeout { url, .. } | Error::Later { url, .. } => vec![url],
            Error::Interrupted => vec![],
        };
        for text in texts {
            *text = redactor.replace_known(text, KEY_MASK).into_owned();
        }
        self
    }
}

/// Reading the body failed: the connection was lost, or a line was too long
/// (`InvalidData`, which another attempt would meet again).
impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Stream {
            detail: format!("the connection failed mid-reply: {e}"),
            retry: e.kind() != io::ErrorKind::InvalidData,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Connect { url, detail, .. } => write!(
                f,
                "cannot reach the model server at {url} ({detail}); is it running?"
            ),
            Error::Status { code, url, body } => {
                let hint = match code {
                    _ if profile::is_context_limit(body) => {
                        "; lower max_output_tokens in settings.json, or start a new session"
                    }
                    401 | 403 => "; check the API key",
                    404 => "; check --base-url and --model",
                    429 => "; rate limited, try again later",
                    _ => "",
                };
                write!(f, "model server {url} answered {code}: {body}{hint}")
            }
            Error::Billing { code, url, body } => write!(
                f,
                "model server {url} answered {code}: {body}; this is billing, not a rate limit: \
                 check the account's plan and credit"
            ),
            Error::Stream { detail, .. } => {
                write!(f, "bad stream from the model server: {detail}")
            }
            Error::Timeout { url, secs } => write!(
                f,
                "model server {url} sent nothing for {secs} s; if the model needs longer, \
                 raise idle_timeout_secs in settings"
            ),
            Error::Later {
                url,
                code,
                wait,
                max,
            } => write!(
                f,
                "model server {url} answered {code} and asks to wait {wait} s, longer than nib \
                 waits ({max} s); try again later"
            ),
            Error::Interrupted => write!(f, "interrupted"),
        }
    }
}
