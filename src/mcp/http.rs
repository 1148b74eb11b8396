//! The streamable HTTP transport: every message is a POST to one
//! endpoint with `Accept: application/json, text/event-stream`; the reply is JSON or
//! an SSE stream carrying it. The `Mcp-Session-Id` of the initialize reply and the
//! negotiated `MCP-Protocol-Version` go with every later request.

use crate::model::sse::SseReader;
use serde_json::Value;
use std::io::{BufReader, Read};
use std::time::Duration;

/// Bytes of an error reply quoted in the message.
const ERROR_BODY: u64 = 300;

/// How long ending the session (a DELETE at exit) may delay nib's exit.
const CLOSE_TIMEOUT: Duration = Duration::from_millis(500);

pub struct Http {
    agent: ureq::Agent,
    url: String,
    headers: Vec<(String, String)>,
    session: Option<String>,
    /// Set once `initialize` has agreed on one.
    pub protocol_version: Option<String>,
}

impl Http {
    pub fn new(url: &str, headers: Vec<(String, String)>, timeout: Duration) -> Http {
        Http {
            agent: ureq::AgentBuilder::new()
                .timeout_connect(Duration::from_secs(10))
                .timeout_read(timeout)
                .user_agent(concat!("nib/", env!("CARGO_PKG_VERSION")))
                .build(),
            url: url.to_string(),
            headers,
            session: None,
            protocol_version: None,
        }
    }

    /// Sends a request and returns the response with its id.
    pub fn request(&mut self, message: &Value, id: u64) -> Result<Value, String> {
        self.post(message)?
            .into_iter()
            .find(|m| m["id"] == id && m.get("method").is_none())
            .ok_or_else(|| "the server's reply held no response to the request".to_string())
    }

    /// POSTs one message; returns the messages of the reply (none for 202 Accepted).
    pub fn post(&mut self, message: &Value) -> Result<Vec<Value>, String> {
        let mut request = self
            .agent
            .post(&self.url)
            .set("content-type", "application/json")
            .set("accept", "application/json, text/event-stream");
        for (name, value) in &self.headers {
            request = request.set(name, value);
        }
        if let Some(id) = &self.session {
            request = request.set("mcp-session-id", id);
        }
        if let Some(v) = &self.protocol_version {
            request = request.set("mcp-protocol-version", v);
        }
        let response = match request.send_string(&message.to_string()) {
            Ok(r) => r,
            Err(ureq::Error::Status(code, r)) => {
                let mut body = String::new();
                let _ = r.into_reader().take(ERROR_BODY).read_to_string(&mut body);
                return Err(format!("HTTP {code} from {}: {}", self.url, body.trim()));
            }
            Err(e) => return Err(format!("cannot reach {}: {e}", self.url)),
        };
        if let Some(id) = response.header("mcp-session-id") {
            self.session = Some(id.to_string());
        }
        if response.status() == 202 {
            return Ok(Vec::new());
        }
        let sse = response.content_type() == "text/event-stream";
        let reader = response.into_reader().take(super::stdio::MAX_MESSAGE);
        match sse {
            true => read_events(reader),
            false => {
                let value: Value = serde_json::from_reader(reader)
                    .map_err(|e| format!("the server's reply is not JSON ({e})"))?;
                Ok(match value {
                    Value::Array(items) => items,
                    other => vec![other],
                })
            }
        }
    }
}

impl Drop for Http {
    /// Ends the session, as the protocol asks of a client that leaves.
    fn drop(&mut self) {
        let Some(id) = &self.session else {
            return;
        };
        let mut request = self.agent.delete(&self.url).timeout(CLOSE_TIMEOUT);
        for (name, value) in &self.headers {
            request = request.set(name, value);
        }
        let _ = request.set("mcp-session-id", id).call();
    }
}

/// The JSON messages of an SSE reply, up to the first response (a stream may stay
/// open for more notifications).
fn read_events(reader: impl Read) -> Result<Vec<Value>, String> {
    let mut events = SseReader::new(BufReader::new(reader));
    let mut messages = Vec::new();
    while let Some(event) = events
        .next_event()
        .map_err(|e| format!("reading the stream: {e}"))?
    {
        let Ok(message) = serde_json::from_str::<Value>(&event.data) else {
            continue;
        };
        let response = message.get("id").is_some() && message.get("method").is_none();
        messages.push(message);
        if response {
            break;
        }
    }
    Ok(messages)
}
