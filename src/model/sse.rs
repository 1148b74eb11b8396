//! Server-sent events framing: turns a byte stream into `event:` / `data:` events.
//!
//! Only the framing lives here; what an event means is the business of `openai.rs`,
//! `anthropic.rs` and `responses.rs`. Follows the WHATWG event-stream rules nib needs: multi-line data is
//! joined with "\n", comment lines (`:`) and unknown fields are ignored, CRLF is
//! tolerated, an event is dispatched on a blank line, and a last event without its
//! blank line is still delivered at end of stream when its lines are whole. A line cut
//! off by the end of the stream (a dropped connection) is an `UnexpectedEof` error: the
//! reply is incomplete, and retried like any dropped connection.

use super::Error;
use serde_json::Value;
use std::io::{self, BufRead, Read};

/// Longest line accepted; a bigger one means a broken or hostile server, not a reply.
pub const MAX_LINE: usize = 8 << 20;

/// One dispatched event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field; empty when the server sent none.
    pub event: String,
    /// The `data:` lines, joined with "\n".
    pub data: String,
}

/// Reads events one at a time from a buffered byte stream.
pub struct SseReader<R> {
    inner: R,
    line: Vec<u8>,
}

impl<R: BufRead> SseReader<R> {
    pub fn new(inner: R) -> SseReader<R> {
        SseReader {
            inner,
            line: Vec::new(),
        }
    }

    /// The next event, or `None` at end of stream. Errors come from the reader, or
    /// are `InvalidData` for a line longer than `MAX_LINE`, or `UnexpectedEof` for a
    /// line the end of the stream cut short.
    pub fn next_event(&mut self) -> io::Result<Option<SseEvent>> {
        let mut event = String::new();
        let mut data: Option<String> = None;
        while let Some(line) = self.next_line()? {
            if line.is_empty() {
                match data.take() {
                    Some(data) => return Ok(Some(SseEvent { event, data })),
                    None => event.clear(),
                }
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
                None => (line.as_str(), ""),
            };
            match field {
                "event" => event = value.to_string(),
                "data" => match &mut data {
                    Some(data) => {
                        data.push('\n');
                        data.push_str(value);
                    }
                    None => data = Some(value.to_string()),
                },
                // Comments (empty field name), `id`, `retry` and anything unknown.
                _ => {}
            }
        }
        Ok(data.map(|data| SseEvent { event, data }))
    }

    /// The next event with data as JSON, and its type (the `type` field, else the
    /// `event:` line); events whose data is empty or one of `skip` are passed over.
    /// `None` at end of stream.
    pub fn next_json(&mut self, skip: &[&str]) -> Result<Option<(String, Value)>, Error> {
        while let Some(event) = self.next_event()? {
            let trimmed = event.data.trim();
            if trimmed.is_empty() || skip.contains(&trimmed) {
                continue;
            }
            let data: Value = serde_json::from_str(&event.data).map_err(|e| {
                Error::malformed(format!("an event is not JSON ({e}): {}", event.data))
            })?;
            let kind = data["type"].as_str().unwrap_or(&event.event).to_string();
            return Ok(Some((kind, data)));
        }
        Ok(None)
    }

    /// One line without its terminator, or `None` at end of stream.
    fn next_line(&mut self) -> io::Result<Option<String>> {
        self.line.clear();
        let limit = MAX_LINE as u64 + 1;
        let n = (&mut self.inner)
            .take(limit)
            .read_until(b'\n', &mut self.line)?;
        if n == 0 {
            return Ok(None);
        }
        if self.line.last() == Some(&b'\n') {
            self.line.pop();
        } else if self.line.len() > MAX_LINE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a stream line is longer than {} MiB", MAX_LINE >> 20),
            ));
        } else {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the stream ended in the middle of an event",
            ));
        }
        if self.line.last() == Some(&b'\r') {
            self.line.pop();
        }
        Ok(Some(String::from_utf8_lossy(&self.line).into_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(input: &[u8]) -> Vec<(String, String)> {
        let mut reader = SseReader::new(input);
        let mut out = Vec::new();
        while let Some(e) = reader.next_event().unwrap() {
            out.push((e.event, e.data));
        }
        out
    }

    fn check(input: &str, expected: &[(&str, &str)]) {
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(e, d)| (e.to_string(), d.to_string()))
            .collect();
        assert_eq!(events(input.as_bytes()), expected, "input: {input:?}");
    }

    #[test]
    fn framing() {
        check("data: a\n\n", &[("", "a")]);
        check("event: ping\ndata: {}\n\n", &[("ping", "{}")]);
        check("data: one\ndata: two\n\n", &[("", "one\ntwo")]);
        check("data:no-space\n\n", &[("", "no-space")]);
        check("data:  two-spaces\n\n", &[("", " two-spaces")]);
        check("data: a\r\n\r\ndata: b\r\n\r\n", &[("", "a"), ("", "b")]);
        check(
            ": comment\ndata: x\nid: 7\nretry: 10\nfoo: bar\n\n",
            &[("", "x")],
        );
        check("data\n\n", &[("", "")]);
        // An event name without data is not dispatched, and does not leak into the next.
        check("event: lonely\n\ndata: y\n\n", &[("", "y")]);
        // A last event without its blank line is still delivered.
        check("data: a\n\ndata: tail\n", &[("", "a"), ("", "tail")]);
        check("\n\n\n", &[]);
        check("", &[]);
    }

    #[test]
    fn a_line_cut_by_the_end_of_the_stream_is_an_error() {
        let mut reader = SseReader::new(&b"data: {\"a\":1}\n\ndata: {\"choi"[..]);
        assert_eq!(reader.next_event().unwrap().unwrap().data, r#"{"a":1}"#);
        let err = reader.next_event().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn over_long_line_is_an_error() {
        let mut input = b"data: ".to_vec();
        input.resize(MAX_LINE + 10, b'x');
        input.extend_from_slice(b"\n\n");
        let err = SseReader::new(&input[..]).next_event().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn line_at_the_limit_is_accepted() {
        let mut input = b"data: ".to_vec();
        input.resize(MAX_LINE, b'x');
        input.extend_from_slice(b"\n\n");
        let event = SseReader::new(&input[..]).next_event().unwrap().unwrap();
        assert_eq!(event.data.len(), MAX_LINE - 6);
    }
}
