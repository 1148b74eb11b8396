//! What the model's unit tests share: a stream read through a protocol reader, an
//! SSE event named after its type, a tool and a request.

use super::http::ReadReply;
use super::{Error, Message, Reply, Request, ToolSpec};
use serde_json::{Value, json};

/// The reply `read` makes of `input`, and the text it streamed on the way.
pub fn parse(read: ReadReply, input: &str) -> (Result<Reply, Error>, String) {
    let mut streamed = String::new();
    let reply = read(&mut input.as_bytes(), &mut |t| streamed.push_str(t));
    (reply, streamed)
}

/// An event whose `event:` line is its data's `type` (Anthropic, Responses).
pub fn ev(data: Value) -> String {
    format!(
        "event: {}\ndata: {data}\n\n",
        data["type"].as_str().unwrap()
    )
}

/// A tool taking any object.
pub fn tool(name: &str, description: &str) -> ToolSpec {
    ToolSpec {
        name: name.to_string().into(),
        description: description.to_string().into(),
        schema: json!({"type": "object"}),
    }
}

/// A request for `messages` to model `m`: no system prompt, no tools, 5 tokens out.
/// Tests set what they check with struct update syntax.
pub fn request(messages: &[Message]) -> Request<'_> {
    Request {
        model: "m",
        system: "",
        messages,
        tools: &[],
        max_tokens: 5,
    }
}
