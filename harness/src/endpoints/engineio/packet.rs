//! The Engine.IO v4 wire format, for a server and a client alike: packets, how each transport
//! carries them, the open packet's handshake and the server's error bodies.
//!
//! A packet is its type's digit followed by its data ([`Packet::Text`], `4hello`), or a binary
//! message ([`Packet::Binary`]). Over a WebSocket each packet is one message ([`Frame`]): text
//! packets as text, binary messages as they are. Over HTTP long-polling a request or response
//! body is a payload: the packets' text forms joined by the record separator 0x1e, a binary
//! message written as `b` and its base64 ([`encode_payload`], [`decode_payload`]). Decoding
//! never panics; what it cannot read is a [`DecodeError`] saying why.

use std::fmt;
use std::str;

use data_encoding::{BASE64, BASE64_NOPAD};
use serde::{Deserialize, Serialize};

/// The record separator that joins the packets of a polling payload.
pub const SEPARATOR: u8 = 0x1e;

/// The type of a packet, its digit on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PacketType {
    /// `0`: the server's first packet, carrying the [`Handshake`].
    Open,
    /// `1`: the transport can be closed.
    Close,
    /// `2`: the server's heartbeat (and the client's `2probe` during an upgrade).
    Ping,
    /// `3`: the answer to a ping.
    Pong,
    /// `4`: application data.
    Message,
    /// `5`: completes an upgrade to WebSocket.
    Upgrade,
    /// `6`: nothing; ends a pending poll during an upgrade.
    Noop,
}

impl PacketType {
    /// Every type, in the order of their digits.
    pub const ALL: [PacketType; 7] = [
        PacketType::Open,
        PacketType::Close,
        PacketType::Ping,
        PacketType::Pong,
        PacketType::Message,
        PacketType::Upgrade,
        PacketType::Noop,
    ];

    /// The type's digit, as an ASCII byte.
    pub fn digit(self) -> u8 {
        b'0' + self as u8
    }

    /// The type whose ASCII digit is `byte`, if any.
    pub fn from_digit(byte: u8) -> Option<PacketType> {
        let index = byte.checked_sub(b'0')?;
        Self::ALL.get(usize::from(index)).copied()
    }

    /// The type's name, as the protocol document spells it.
    pub fn name(self) -> &'static str {
        match self {
            PacketType::Open => "open",
            PacketType::Close => "close",
            PacketType::Ping => "ping",
            PacketType::Pong => "pong",
            PacketType::Message => "message",
            PacketType::Upgrade => "upgrade",
            PacketType::Noop => "noop",
        }
    }
}

/// One Engine.IO packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// A packet carried as text: its type and its data (possibly empty).
    Text(PacketType, String),
    /// A binary message: type 4, its bytes.
    Binary(Vec<u8>),
}

/// One WebSocket message carrying a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A text message: the packet's type digit and data.
    Text(String),
    /// A binary message: a binary packet's bytes, as they are.
    Binary(Vec<u8>),
}

/// What is wrong with bytes that were to be a packet or a payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A packet with no bytes at all: not even a type.
    #[error("an empty packet: no type")]
    Empty,
    /// The first byte names no packet type.
    #[error("unknown packet type {0:?}")]
    UnknownType(char),
    /// A packet carried as text whose bytes are not UTF-8.
    #[error("a text packet that is not UTF-8")]
    NotUtf8,
    /// A `b` packet whose data is not base64.
    #[error("binary data that is not base64: {0}")]
    Base64(String),
    /// An open packet whose data is not the handshake's JSON.
    #[error("an open packet whose data is not a handshake: {0}")]
    Handshake(String),
    /// A packet of another type where an open packet was expected.
    #[error("expected an open packet, got a {0} packet")]
    NotOpen(&'static str),
}

/// Why packets cannot be written as a polling payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A text packet's data holds the record separator, which would split it in two.
    #[error("a {0} packet's text holds the record separator 0x1e")]
    Separator(&'static str),
}

impl Packet {
    /// A packet of `kind` with no data (`2`, `3`, `5`, `6`, …).
    pub fn bare(kind: PacketType) -> Packet {
        Packet::Text(kind, String::new())
    }

    /// A text message.
    pub fn message(text: impl Into<String>) -> Packet {
        Packet::Text(PacketType::Message, text.into())
    }

    /// The packet's type.
    pub fn kind(&self) -> PacketType {
        match self {
            Packet::Text(kind, _) => *kind,
            Packet::Binary(_) => PacketType::Message,
        }
    }

    /// How many bytes of data it carries.
    pub fn data_len(&self) -> usize {
        match self {
            Packet::Text(_, data) => data.len(),
            Packet::Binary(bytes) => bytes.len(),
        }
    }

    /// Whether this is `kind` with exactly `data` (`2probe`: `is(Ping, "probe")`).
    pub fn is(&self, kind: PacketType, data: &str) -> bool {
        matches!(self, Packet::Text(k, d) if *k == kind && d == data)
    }

    /// The WebSocket message that carries the packet.
    pub fn to_frame(&self) -> Frame {
        match self {
            Packet::Text(kind, data) => {
                let mut text = String::with_capacity(1 + data.len());
                text.push(char::from(kind.digit()));
                text.push_str(data);
                Frame::Text(text)
            }
            Packet::Binary(bytes) => Frame::Binary(bytes.clone()),
        }
    }

    /// The packet a WebSocket message carries: a text message is read as a polling packet is
    /// (type digit and data, or `b` and base64), a binary message is a binary packet.
    pub fn from_frame(frame: Frame) -> Result<Packet, DecodeError> {
        match frame {
            Frame::Text(text) => Packet::decode_text(&text),
            Frame::Binary(bytes) => Ok(Packet::Binary(bytes)),
        }
    }

    /// Appends the packet's text form (as a polling payload holds it) to `out`.
    fn encode_text(&self, out: &mut String) -> Result<(), EncodeError> {
        match self {
            Packet::Text(kind, data) => {
                if data.as_bytes().contains(&SEPARATOR) {
                    return Err(EncodeError::Separator(kind.name()));
                }
                out.push(char::from(kind.digit()));
                out.push_str(data);
            }
            Packet::Binary(bytes) => {
                out.push('b');
                out.push_str(&BASE64.encode(bytes));
            }
        }
        Ok(())
    }

    /// Reads one packet's text form: a type digit and its data, or `b` and base64 (padded or
    /// not, as Node's decoder takes it) of a binary message.
    pub fn decode_text(text: &str) -> Result<Packet, DecodeError> {
        let Some(&first) = text.as_bytes().first() else {
            return Err(DecodeError::Empty);
        };
        // `first` is ASCII below, so the data starts at byte 1 on a character boundary.
        if first == b'b' {
            let rest = &text[1..];
            let decoder = if rest.ends_with('=') {
                BASE64
            } else {
                BASE64_NOPAD
            };
            return decoder
                .decode(rest.as_bytes())
                .map(Packet::Binary)
                .map_err(|e| DecodeError::Base64(e.to_string()));
        }
        match PacketType::from_digit(first) {
            Some(kind) => Ok(Packet::Text(kind, text[1..].to_string())),
            None => Err(DecodeError::UnknownType(
                text.chars().next().unwrap_or_default(),
            )),
        }
    }
}

impl fmt::Display for Packet {
    /// A short description for logs: the type and the size of the data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Packet::Text(kind, data) if data.is_empty() => write!(f, "{}", kind.name()),
            Packet::Text(kind, data) => write!(f, "{} ({} bytes of text)", kind.name(), data.len()),
            Packet::Binary(bytes) => write!(f, "binary message ({} bytes)", bytes.len()),
        }
    }
}

/// The body of a polling response or request carrying `packets`: their text forms joined by
/// the record separator.
pub fn encode_payload<'a>(
    packets: impl IntoIterator<Item = &'a Packet>,
) -> Result<String, EncodeError> {
    let mut out = String::new();
    for (i, packet) in packets.into_iter().enumerate() {
        if i > 0 {
            out.push(char::from(SEPARATOR));
        }
        packet.encode_text(&mut out)?;
    }
    Ok(out)
}

/// The packets of a polling payload, one at a time, in order: a reader can act on each before
/// the next is decoded, and stop at the first error, as engine.io does. An empty payload is
/// one empty packet, an error.
pub fn payload_packets(payload: &[u8]) -> impl Iterator<Item = Result<Packet, DecodeError>> + '_ {
    payload.split(|b| *b == SEPARATOR).map(|piece| {
        str::from_utf8(piece)
            .map_err(|_| DecodeError::NotUtf8)
            .and_then(Packet::decode_text)
    })
}

/// Every packet of a polling payload, or the first error.
pub fn decode_payload(payload: &[u8]) -> Result<Vec<Packet>, DecodeError> {
    payload_packets(payload).collect()
}

/// What the open packet carries (its data is this, in JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Handshake {
    /// The session's id, which the client sends as `sid` in every later request.
    pub sid: String,
    /// The transports the client may upgrade to: `["websocket"]` from polling, none from a
    /// WebSocket.
    pub upgrades: Vec<String>,
    /// Milliseconds between the server's pings.
    pub ping_interval: u64,
    /// Milliseconds the server waits for a pong before it closes the session.
    pub ping_timeout: u64,
    /// The most bytes a payload may hold; the client joins at most that many per request.
    pub max_payload: u64,
}

impl Handshake {
    /// The open packet carrying it.
    pub fn to_packet(&self) -> Packet {
        // Serialising a struct of strings and numbers cannot fail.
        let json = serde_json::to_string(self).unwrap_or_default();
        Packet::Text(PacketType::Open, json)
    }

    /// The handshake an open packet carries.
    pub fn from_packet(packet: &Packet) -> Result<Handshake, DecodeError> {
        match packet {
            Packet::Text(PacketType::Open, json) => {
                serde_json::from_str(json).map_err(|e| DecodeError::Handshake(e.to_string()))
            }
            other => Err(DecodeError::NotOpen(other.kind().name())),
        }
    }
}

/// The server's error codes, as engine.io's `Server.errors` numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorCode {
    /// 0: the `transport` query parameter is missing or names no transport the server has.
    TransportUnknown,
    /// 1: the `sid` names no session the server holds (never made, or closed).
    SessionIdUnknown,
    /// 2: a handshake (a request without `sid`) that is not a GET.
    BadHandshakeMethod,
    /// 3: anything else the server will not take (a transport other than the session's, a
    /// second concurrent poll, an undecodable payload, …).
    BadRequest,
    /// 4: the server refuses the session (engine.io's `allowRequest` said no).
    Forbidden,
    /// 5: an `EIO` other than 4.
    UnsupportedProtocolVersion,
}

impl ErrorCode {
    /// Every code, by number.
    pub const ALL: [ErrorCode; 6] = [
        ErrorCode::TransportUnknown,
        ErrorCode::SessionIdUnknown,
        ErrorCode::BadHandshakeMethod,
        ErrorCode::BadRequest,
        ErrorCode::Forbidden,
        ErrorCode::UnsupportedProtocolVersion,
    ];

    /// The code's number.
    pub fn number(self) -> u8 {
        self as u8
    }

    /// The code with `number`, if any.
    pub fn from_number(number: u8) -> Option<ErrorCode> {
        Self::ALL.get(usize::from(number)).copied()
    }

    /// engine.io's message for the code (`Server.errorMessages`).
    pub fn message(self) -> &'static str {
        match self {
            ErrorCode::TransportUnknown => "Transport unknown",
            ErrorCode::SessionIdUnknown => "Session ID unknown",
            ErrorCode::BadHandshakeMethod => "Bad handshake method",
            ErrorCode::BadRequest => "Bad request",
            ErrorCode::Forbidden => "Forbidden",
            ErrorCode::UnsupportedProtocolVersion => "Unsupported protocol version",
        }
    }

    /// The HTTP status engine.io answers a polling request with: 403 for
    /// [`ErrorCode::Forbidden`], 400 for the others.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::Forbidden => 403,
            _ => 400,
        }
    }
}

/// The JSON body of the server's answer to a request it refuses: `{"code":1,"message":"Session
/// ID unknown"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The [`ErrorCode`]'s number.
    pub code: u8,
    /// The code's message, or a more precise one (engine.io's `allowRequest` may give one).
    pub message: String,
}

impl ErrorBody {
    /// The body for `code` with its own message.
    pub fn new(code: ErrorCode) -> ErrorBody {
        ErrorBody::with_message(code, code.message())
    }

    /// The body for `code` with `message`.
    pub fn with_message(code: ErrorCode, message: impl Into<String>) -> ErrorBody {
        ErrorBody {
            code: code.number(),
            message: message.into(),
        }
    }

    /// The body's JSON.
    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The error code, if the number is one.
    pub fn error_code(&self) -> Option<ErrorCode> {
        ErrorCode::from_number(self.code)
    }
}

#[cfg(test)]
#[path = "packet_tests.rs"]
mod tests;
