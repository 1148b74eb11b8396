//! One MCP session over either transport: `initialize` with protocol
//! version negotiation, `notifications/initialized`, `tools/list` page by page, and
//! `tools/call`, whose result becomes text for the model.
//!
//! Requests the server sends us (`roots/list`, `sampling/...`) are answered "method not
//! found"; notifications are ignored.

use super::http::Http;
use super::stdio::Stdio;
use crate::tools::Outcome;
use crate::tools::clip;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

/// Protocol versions nib speaks, newest first; the first is offered.
pub const VERSIONS: [&str; 4] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// `tools/list` pages read at most: a server that keeps paging is broken.
const MAX_PAGES: usize = 100;

/// How often a waiting call checks for an interrupt.
const POLL: Duration = Duration::from_millis(50);

/// JSON-RPC's "method not found".
const METHOD_NOT_FOUND: i64 = -32601;

/// The closed set of transports.
pub enum Transport {
    Stdio(Stdio),
    Http(Http),
}

/// A tool a server offers, as it described it.
#[derive(Clone, Debug)]
pub struct ServerTool {
    pub name: String,
    pub description: String,
    pub schema: Value,
}

pub struct Client {
    transport: Transport,
    next_id: u64,
}

impl Client {
    /// Connects: `initialize`, `notifications/initialized`.
    pub fn connect(transport: Transport, timeout: Duration) -> Result<Client, String> {
        let mut client = Client {
            transport,
            next_id: 0,
        };
        let params = json!({
            "protocolVersion": VERSIONS[0],
            "capabilities": {},
            "clientInfo": {"name": "nib", "version": env!("CARGO_PKG_VERSION")},
        });
        let never = AtomicBool::new(false);
        let result = client.request("initialize", params, timeout, &never)?;
        let version = result["protocolVersion"].as_str().unwrap_or("");
        if !VERSIONS.contains(&version) {
            return Err(format!(
                "the server speaks MCP protocol version {version:?}; nib speaks {}",
                VERSIONS.join(", ")
            ));
        }
        if let Transport::Http(http) = &mut client.transport {
            http.protocol_version = Some(version.to_string());
        }
        client.notify("notifications/initialized")?;
        Ok(client)
    }

    /// Every tool, following `nextCursor`.
    pub fn list_tools(&mut self, timeout: Duration) -> Result<Vec<ServerTool>, String> {
        let never = AtomicBool::new(false);
        let mut tools = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let params = match &cursor {
                Some(c) => json!({"cursor": c}),
                None => json!({}),
            };
            let page = self.request("tools/list", params, timeout, &never)?;
            for tool in page["tools"].as_array().into_iter().flatten() {
                let Some(name) = tool["name"].as_str() else {
                    continue;
                };
                tools.push(ServerTool {
                    name: name.to_string(),
                    description: tool["description"].as_str().unwrap_or("").to_string(),
                    schema: match &tool["inputSchema"] {
                        Value::Object(_) => tool["inputSchema"].clone(),
                        _ => json!({"type": "object"}),
                    },
                });
            }
            cursor = page["nextCursor"].as_str().map(str::to_string);
            if cursor.is_none() {
                return Ok(tools);
            }
        }
        Err(format!(
            "tools/list went on for more than {MAX_PAGES} pages"
        ))
    }

    pub fn call_tool(
        &mut self,
        name: &str,
        arguments: &Value,
        timeout: Duration,
        cancel: &AtomicBool,
    ) -> Result<Outcome, String> {
        let params = json!({"name": name, "arguments": arguments});
        let result = self.request("tools/call", params, timeout, cancel)?;
        Ok(outcome(&result))
    }

    fn notify(&mut self, method: &str) -> Result<(), String> {
        let message = json!({"jsonrpc": "2.0", "method": method});
        match &mut self.transport {
            Transport::Stdio(s) => s.send(&message).map_err(|e| self.gone(&e.to_string())),
            Transport::Http(h) => h.post(&message).map(|_| ()),
        }
    }

    /// Sends one request and waits for its response.
    fn request(
        &mut self,
        method: &str,
        params: Value,
        timeout: Duration,
        cancel: &AtomicBool,
    ) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let response = match &mut self.transport {
            Transport::Http(h) => h.request(&message, id)?,
            Transport::Stdio(_) => self.stdio_request(&message, id, timeout, cancel)?,
        };
        let Some(error) = response.get("error") else {
            return Ok(response["result"].clone());
        };
        let message = error["message"].as_str();
        let message = message.unwrap_or("an error without a message");
        Err(format!("{method} failed: {message}"))
    }

    fn stdio_request(
        &mut self,
        message: &Value,
        id: u64,
        timeout: Duration,
        cancel: &AtomicBool,
    ) -> Result<Value, String> {
        let Transport::Stdio(stdio) = &mut self.transport else {
            return Err("not a stdio server".into());
        };
        if let Err(e) = stdio.send(message) {
            return Err(self.gone(&e.to_string()));
        }
        let deadline = Instant::now() + timeout;
        loop {
            if cancel.load(Ordering::Relaxed) {
                let cancelled = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                    "params": {"requestId": id, "reason": "interrupted by the user"}});
                if let Transport::Stdio(stdio) = &mut self.transport {
                    let _ = stdio.send(&cancelled);
                }
                return Err("interrupted by the user".into());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!("no answer within {} s", timeout.as_secs_f32()));
            }
            let Transport::Stdio(stdio) = &mut self.transport else {
                return Err("not a stdio server".into());
            };
            match stdio.incoming.recv_timeout(left.min(POLL)) {
                Ok(reply) if reply["id"] == json!(id) && reply.get("method").is_none() => {
                    return Ok(reply);
                }
                Ok(reply) => {
                    if let (Some(their_id), Some(_)) = (reply.get("id"), reply.get("method")) {
                        let refusal = json!({"jsonrpc": "2.0", "id": their_id,
                            "error": {"code": METHOD_NOT_FOUND, "message": "nib does not offer this"}});
                        let _ = stdio.send(&refusal);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(self.gone("it closed its output"));
                }
            }
        }
    }

    /// Why a stdio server is gone: how it exited and the last line of its stderr.
    fn gone(&mut self, what: &str) -> String {
        let Transport::Stdio(stdio) = &mut self.transport else {
            return what.to_string();
        };
        // Give it a moment to exit and to finish its last stderr line.
        std::thread::sleep(POLL);
        let mut why = match stdio.exited() {
            Some(status) => format!("the server exited ({status})"),
            None => format!("the server stopped answering ({what})"),
        };
        if let Some(line) = stdio.last_error() {
            why.push_str(&format!(": {line}"));
        }
        why
    }

    /// A stdio server's process group.
    pub fn group(&self) -> Option<libc::pid_t> {
        match &self.transport {
            Transport::Stdio(s) => Some(s.group()),
            Transport::Http(_) => None,
        }
    }

    /// False once a stdio server has exited.
    pub fn alive(&mut self) -> bool {
        match &mut self.transport {
            Transport::Stdio(s) => s.exited().is_none(),
            Transport::Http(_) => true,
        }
    }
}

/// A `tools/call` result as the model sees it: text parts joined, a note for images,
/// audio and resources, clipped to `clip::LIMIT`.
pub fn outcome(result: &Value) -> Outcome {
    let mut parts: Vec<String> = Vec::new();
    for item in result["content"].as_array().into_iter().flatten() {
        let kind = item["type"].as_str().unwrap_or("");
        let mime = item["mimeType"].as_str().unwrap_or("unknown type");
        parts.push(match kind {
            "text" => item["text"].as_str().unwrap_or("").to_string(),
            "image" | "audio" => {
                let bytes = item["data"].as_str().map_or(0, |d| d.len() * 3 / 4);
                format!("[{kind} ({mime}, about {bytes} bytes) not shown to the model]")
            }
            "resource_link" => format!("[resource link: {}]", item["uri"].as_str().unwrap_or("")),
            "resource" => match item["resource"]["text"].as_str() {
                Some(text) => text.to_string(),
                None => format!(
                    "[resource {} not shown to the model]",
                    item["resource"]["uri"].as_str().unwrap_or("")
                ),
            },
            other => format!("[content of type {other:?} not shown to the model]"),
        });
    }
    if parts.is_empty() && !result["structuredContent"].is_null() {
        parts.push(result["structuredContent"].to_string());
    }
    let text = clip::clip(parts.join("\n").as_bytes());
    match result["isError"].as_bool() {
        Some(true) => Outcome::error(text),
        _ => Outcome::ok(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_become_text_for_the_model() {
        let result = json!({"content": [
            {"type": "text", "text": "first"},
            {"type": "image", "mimeType": "image/png", "data": "AAAA"},
            {"type": "resource", "resource": {"uri": "file:///a", "text": "inline"}},
            {"type": "resource", "resource": {"uri": "file:///b.bin", "blob": "AA=="}},
            {"type": "resource_link", "uri": "file:///c"},
        ]});
        let mixed = outcome(&result);
        assert!(!mixed.is_error);
        assert_eq!(
            mixed.content,
            "first\n[image (image/png, about 3 bytes) not shown to the model]\ninline\n\
             [resource file:///b.bin not shown to the model]\n[resource link: file:///c]"
        );
        let failed =
            outcome(&json!({"content": [{"type": "text", "text": "bad"}], "isError": true}));
        assert!(failed.is_error && failed.content == "bad");
        let structured = outcome(&json!({"content": [], "structuredContent": {"sum": 3}}));
        assert_eq!(structured.content, "{\"sum\":3}");
    }
}
