//! OpenAI Chat Completions wire format.
