//! HTTP streaming: the fallback transport of seed 001's Kaazing gateway ("如果中间代理服务器被
//! 检测到,那么下行 HTTP 信息流就会使用一个高度优化的加密流式连接": if an intermediary is
//! detected, the downstream HTTP traffic uses a highly optimised encrypted streaming
//! connection), as Server-Sent Events (the WHATWG HTML standard's `text/event-stream`) over a
//! held response, with the client's messages sent by POST. The reference server speaks it on
//! `/stream` (or any path ending in `/stream`, as a reverse proxy passes `/rooms/1/stream` on);
//! the client ([`client`]) runs the workload over it on every engine, through the plan's
//! transport (TCP, an explicit proxy's CONNECT tunnel, TLS for https on port 443).
//!
//! The wire, one stream:
//!
//! ```text
//! GET /stream[?app=push&count=N&interval=MS&size=B]
//!   ─▶ 200, Content-Type: text/event-stream, Cache-Control: no-cache, chunked, held open:
//!      event: open        data: SID             the stream's id, always first
//!      data: TEXT                               a text message (each of its lines a `data:`)
//!      event: binary      data: BASE64          a binary message, base64 (RFC 4648, padded)
//!      event: text-base64 data: BASE64          a text message holding a CR, which SSE
//!                                               reads as a line end
//!      event: close       data: bye             the last event; the body ends after it
//! POST   /stream?sid=SID  body: one message     ─▶ 204 once its echo is queued on the stream;
//!        (`Content-Type: application/octet-stream`: binary; else text, UTF-8)
//! DELETE /stream?sid=SID                        ─▶ 204; the stream's `close` event, its end
//! ```
//!
//! With `app=push` the server pushes `count` messages (default 1) of `size` bytes (default 32)
//! every `interval` ms (default 100), as `/push` does; POSTs are echoed on any stream. A POST
//! or DELETE naming a stream that is not open is answered as engine.io answers an unknown
//! session: `400 {"code":1,"message":"Session ID unknown"}`; one naming none, `400
//! {"code":3,"message":"Bad request"}`; a message over 16 MiB, `413`. The server sends no
//! heartbeat and no `X-Accel-Buffering: no`: what an intermediary does to a held response
//! (buffer it, cut it when quiet) is what a run shows.
//!
//! Its files: `sse.rs` the event-stream format (the encoder, and the client's incremental,
//! bounded reader); `server.rs` the server's streams and its answers; `client.rs` the client
//! and its workload; `tests.rs` both through the simulated network.

pub mod client;
pub mod server;
pub mod sse;

use std::time::Duration;

use data_encoding::BASE64;

use crate::endpoints::client::push_text;
use crate::scenario::MAX_PAYLOAD_BYTES;
pub use server::{Body, Streams};

/// The path the server streams on, alone or at the end of a longer one.
pub const PATH: &str = "/stream";

/// Whether a request for `path` (not an upgrade) is a streaming request.
pub fn handles(path: &str) -> bool {
    path.ends_with(PATH)
}

/// What a request's query asks: the stream it names, and for a GET the push.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Query {
    /// `sid=`: the stream a POST or DELETE is for.
    pub(crate) sid: Option<String>,
    /// `app=push` with `from` (default 0) to `count`, `interval`, `size`.
    pub(crate) push: Option<(std::ops::Range<u32>, Duration, usize)>,
}

impl Query {
    pub(crate) fn parse(query: &str) -> Self {
        let (mut sid, mut push) = (None, false);
        let (mut count, mut interval, mut size, mut from) = (1u32, 100u64, 32usize, 0u32);
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "sid" => sid = Some(v.to_string()).filter(|s| !s.is_empty()),
                "app" => push = v == "push",
                "count" => count = v.parse().unwrap_or(count),
                "interval" => interval = v.parse().unwrap_or(interval),
                "size" => size = v.parse().unwrap_or(size),
                "from" => from = v.parse().unwrap_or(from),
                _ => {}
            }
        }
        let size = size.clamp(1, MAX_PAYLOAD_BYTES);
        Self {
            sid,
            push: push.then_some((from..count, Duration::from_millis(interval), size)),
        }
    }
}

/// The events of the wire format, as the server writes them.
pub mod encode {
    use super::{BASE64, sse};

    /// The first event: the stream's id.
    pub fn open(sid: &str) -> String {
        sse::event(Some("open"), sid)
    }

    /// A message's event: text as `data:` lines, unless it holds a CR (`text-base64`);
    /// binary as `binary`, in base64.
    pub fn message(bytes: &[u8], binary: bool) -> String {
        match std::str::from_utf8(bytes) {
            Ok(text) if !binary && !text.contains('\r') => sse::event(None, text),
            _ if binary => sse::event(Some("binary"), &BASE64.encode(bytes)),
            _ => sse::event(Some("text-base64"), &BASE64.encode(bytes)),
        }
    }

    /// The last event.
    pub fn close() -> String {
        sse::event(Some("close"), "bye")
    }
}

/// A message as the stream carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Text.
    Text(String),
    /// Bytes.
    Binary(Vec<u8>),
}

/// What an event of the stream is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// `open`, with the stream's id.
    Open(String),
    /// A message.
    Message(Message),
    /// `close`.
    Close,
}

/// An event the wire format does not have, or whose data it cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// An event type the format does not have.
    #[error("an event of unknown type `{0}`")]
    UnknownType(String),
    /// A `binary` or `text-base64` event whose data is not base64.
    #[error("a `{0}` event whose data is not base64")]
    NotBase64(&'static str),
    /// A `text-base64` event whose bytes are not UTF-8.
    #[error("a `text-base64` event whose text is not UTF-8")]
    NotUtf8,
}

impl Received {
    /// What `event` is.
    pub fn read(event: sse::Event) -> Result<Self, EventError> {
        let decoded = |what: &'static str| {
            BASE64
                .decode(event.data.as_bytes())
                .map_err(|_| EventError::NotBase64(what))
        };
        Ok(match event.name.as_str() {
            "open" => Received::Open(event.data),
            sse::MESSAGE => Received::Message(Message::Text(event.data)),
            "binary" => Received::Message(Message::Binary(decoded("binary")?)),
            "text-base64" => {
                let text =
                    String::from_utf8(decoded("text-base64")?).map_err(|_| EventError::NotUtf8)?;
                Received::Message(Message::Text(text))
            }
            "close" => Received::Close,
            other => return Err(EventError::UnknownType(other.to_string())),
        })
    }
}

#[cfg(test)]
mod tests;
