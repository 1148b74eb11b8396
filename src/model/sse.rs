//! Server-sent events framing.
