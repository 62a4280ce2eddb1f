//! RFC 6455 conformance of the reference server and client, case by case, the cases written
//! out as bytes in two tables ([`server_cases`], [`client_cases`]).
//!
//! Server role: each case is a request (a handshake, or a valid handshake and then frames)
//! written by hand over a fresh connection, and what the server answers: a status, the echo
//! of the messages sent, or the Close frame it fails the connection with, followed by the
//! closing of the TCP connection. The table runs against the server software on the
//! simulated network, against `gauntlet serve` on real sockets, and against a Python
//! `websockets` echo server (`harness/tests/python/echo_server.py`), with which it must agree
//! case by case, apart from the divergences the table names with their references.
//!
//! Client role: each case is what a hand-written server answers the reference client's
//! upgrade with, and the frames it sends right after; the client must report the failure
//! the case calls for and, once the connection is open, send the Close frame with the code
//! the RFC assigns before closing the connection.
//!
//! Live runs bind and connect on 127.0.0.1 only; every wait has a timeout ([`PATIENCE`]), a
//! safety net after which the case is reported as silent: nothing here measures time.

use std::cell::RefCell;
use std::fmt;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::LocalBoxFuture;
use gauntlet::endpoints::client::{self, Plan, Report};
use gauntlet::engine::sim::Sim;
use gauntlet::engine::{Engine, LinkConfig, NetRef, Software, Topology};
use gauntlet::scenario::{Scheme, Workload, WorkloadKind};
use gauntlet::tls::Tls;
use gauntlet::verdict::outcome::Outcome;
use gauntlet::verdict::transcript::{self, Transcript};
use gauntlet_proxies::http::{self, Parsed};
use gauntlet_proxies::ws_frames::encode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::interop::{Serve, script};
use crate::process::Process;

/// How long a case waits for the peer's next bytes before calling it silent (a safety net).
const PATIENCE: Duration = Duration::from_secs(10);

/// Opcodes (RFC 6455 §5.2), the reserved ones included.
const CONT: u8 = 0x0;
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const RESERVED_DATA: u8 = 0x3;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;
const RESERVED_CONTROL: u8 = 0xB;

/// The masking key of every client frame the tables write.
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// The key of RFC 6455 §1.3's example handshake.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// The largest message the reference endpoints take (`scenario::MAX_PAYLOAD_BYTES`).
const LIMIT: usize = 16 << 20;

/// An HTTP head written field by field, so a case can say what it changes.
#[derive(Debug, Clone)]
struct Head {
    line: String,
    fields: Vec<(String, String)>,
}

impl Head {
    /// The valid opening handshake every server-role case starts from (RFC 6455 §4.1).
    fn request() -> Self {
        Self::new(
            "GET /echo HTTP/1.1",
            &[
                ("Host", "127.0.0.1"),
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Key", KEY),
                ("Sec-WebSocket-Version", "13"),
            ],
        )
    }

    /// The valid 101 every client-role case starts from (RFC 6455 §4.2.2); `{accept}` is
    /// replaced with the accept value of the key the client sent.
    fn switching() -> Self {
        Self::new(
            "HTTP/1.1 101 Switching Protocols",
            &[
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Accept", "{accept}"),
            ],
        )
    }

    fn new(line: &str, fields: &[(&str, &str)]) -> Self {
        Self {
            line: line.to_string(),
            fields: fields
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// Another start line.
    fn line(mut self, line: &str) -> Self {
        self.line = line.to_string();
        self
    }

    /// `name` (whatever its case) gets `value`, in its place.
    fn set(mut self, name: &str, value: &str) -> Self {
        for (n, v) in &mut self.fields {
            if n.eq_ignore_ascii_case(name) {
                *v = value.to_string();
            }
        }
        self
    }

    /// Without the field `name`.
    fn without(mut self, name: &str) -> Self {
        self.fields.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    /// With one more field line.
    fn with(mut self, name: &str, value: &str) -> Self {
        self.fields.push((name.to_string(), value.to_string()));
        self
    }

    /// Every field name in lower case.
    fn lowercase(mut self) -> Self {
        for (n, _) in &mut self.fields {
            *n = n.to_ascii_lowercase();
        }
        self
    }

    fn bytes(&self) -> Vec<u8> {
        let mut text = format!("{}\r\n", self.line);
        for (n, v) in &self.fields {
            text.push_str(&format!("{n}: {v}\r\n"));
        }
        text.push_str("\r\n");
        text.into_bytes()
    }
}

/// A frame with every bit of its first byte chosen: FIN, the RSV bits (`rsv`, 0 to 7) and the
/// opcode; masked (as a client's frames must be, RFC 6455 §5.3) when `masked`.
fn frame(fin: bool, rsv: u8, op: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut bytes = encode(op, payload, masked.then_some(MASK));
    bytes[0] = (u8::from(fin) << 7) | (rsv << 4) | op;
    bytes
}

/// A client's frame: masked.
fn cf(fin: bool, op: u8, payload: &[u8]) -> Vec<u8> {
    frame(fin, 0, op, payload, true)
}

/// A server's frame: not masked.
fn sf(fin: bool, op: u8, payload: &[u8]) -> Vec<u8> {
    frame(fin, 0, op, payload, false)
}

/// A Close frame's payload: the code, then the reason.
fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason);
    payload
}

/// The header of a binary frame announcing 2^32 payload bytes (and none following), masked
/// or not.
fn four_gib_header(masked: bool) -> Vec<u8> {
    let mut bytes = vec![
        0x82,
        if masked { 0xFF } else { 0x7F },
        0,
        0,
        0,
        1,
        0,
        0,
        0,
        0,
    ];
    if masked {
        bytes.extend_from_slice(&MASK);
    }
    bytes
}

/// What a case saw of a server.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    /// The handshake was answered with this status, carrying this `Sec-WebSocket-Version`.
    Status(u16, Option<String>),
    /// 101; every message sent came back unchanged and every Ping was answered with its
    /// payload; the client's Close 1000 was answered with 1000; the server closed the
    /// connection (FIN).
    Echoed,
    /// 101; then a Close frame with this code (`None`: no code) and no message before it; the
    /// server closed the connection (FIN).
    Close(Option<u16>),
    /// Anything else, described.
    Other(String),
}

fn status(code: u16) -> Seen {
    Seen::Status(code, None)
}

/// A status with `Sec-WebSocket-Version: 13`, as RFC 6455 §4.4 asks of a refused version.
fn status_v13(code: u16) -> Seen {
    Seen::Status(code, Some("13".into()))
}

fn close(code: u16) -> Seen {
    Seen::Close(Some(code))
}

impl fmt::Display for Seen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Seen::Status(code, None) => write!(f, "{code}"),
            Seen::Status(code, Some(v)) => write!(f, "{code} (Sec-WebSocket-Version: {v})"),
            Seen::Echoed => f.write_str("101, echoed"),
            Seen::Close(Some(code)) => write!(f, "close {code}"),
            Seen::Close(None) => f.write_str("close (no code)"),
            Seen::Other(what) => f.write_str(what),
        }
    }
}

/// How Python's `websockets` answers a case.
#[derive(Debug, Clone)]
enum Python {
    /// As the reference server does.
    Agrees,
    /// Differently, where the RFC leaves the choice open (the reference says where).
    Allowed(Seen, &'static str),
    /// Differently, where the RFC asks otherwise: recorded, not the reference server's
    /// problem (the reference says what is asked).
    Deviates(Seen, &'static str),
}

/// What a server-role case sends.
#[derive(Debug, Clone)]
enum Send {
    /// A handshake; after a 101, a text message, then (once it is echoed) a Close 1000.
    Handshake(Vec<u8>),
    /// A valid handshake, then these frames; once every message in them has come back, and
    /// unless the server has closed, a Close 1000.
    Frames(Vec<u8>),
}

/// One server-role case.
#[derive(Debug, Clone)]
struct ServerCase {
    group: &'static str,
    name: &'static str,
    send: Send,
    expect: Seen,
    python: Python,
}

fn handshake(name: &'static str, head: Head, expect: Seen, python: Python) -> ServerCase {
    ServerCase {
        group: "handshake",
        name,
        send: Send::Handshake(head.bytes()),
        expect,
        python,
    }
}

fn framing(name: &'static str, frames: Vec<u8>, expect: Seen, python: Python) -> ServerCase {
    ServerCase {
        group: "framing",
        name,
        send: Send::Frames(frames),
        expect,
        python,
    }
}

/// The server-role table.
///
/// Where RFC 6455 leaves a choice, the reference server takes these:
///
/// - A request with no `Upgrade` field at all is a plain HTTP request to a resource that
///   needs one: 426 with `Upgrade: websocket` (RFC 9110 §15.5.22). That is what a proxy that
///   strips hop-by-hop fields delivers, and what the catalogue's stripping scenarios show.
/// - A request that does ask to upgrade but gets a field of §4.2.1 wrong (an `Upgrade` that
///   does not name `websocket`, no `upgrade` in `Connection`, HTTP/1.0, no `Host`, a missing,
///   malformed or repeated `Sec-WebSocket-Key`, a repeated `Sec-WebSocket-Version`) is a bad
///   request: 400, the code §4.2.1 names.
/// - A method other than GET: 405 with `Allow: GET` (RFC 9110 §15.5.6), which says more than
///   400 and is what `websockets` sends too.
/// - A missing or unsupported `Sec-WebSocket-Version`: 426 with `Sec-WebSocket-Version: 13`
///   (§4.4: "such as 426", and the field is required), so that the client learns what to
///   send.
/// - Failing the connection (§7.1.7) after the opening handshake: always a Close frame first
///   (§7.1.7 says SHOULD), with 1002 for a framing violation, 1007 for text or a Close reason
///   that is not UTF-8, 1009 for a frame or message over the 16 MiB limit (§7.4.1 names 1009
///   for exactly that; 1002 would also do), then the server closes the TCP connection at once
///   (§7.1.1: the server closes first), without waiting for the client's Close.
///
/// Python `websockets` 17 chooses differently where the RFCs leave the choice open (426 for
/// any `Upgrade`/`Connection` problem, 505 for HTTP/1.0, 400 for a missing version: allowed
/// divergences) and departs from what they ask in three cases (no `Sec-WebSocket-Version`
/// with a refused version and no check of `Host`, both MUSTs; no answer to a request line
/// that is not HTTP, a SHOULD): each such case names its reference.
fn server_cases() -> Vec<ServerCase> {
    use Python::{Agrees, Allowed, Deviates};
    let req = Head::request;
    let upgrade_choice = "RFC 6455 §4.2.1 asks for \"an appropriate error code (such as 400 \
                          Bad Request)\"; RFC 9110 §15.5.22 makes 426 appropriate too";
    let g_clef = "G clef: \u{1D11E}!".as_bytes().to_vec();
    vec![
        // The opening handshake (RFC 6455 §4.2.1).
        handshake("a valid opening handshake", req(), Seen::Echoed, Agrees),
        handshake(
            "field names in lower case, `Upgrade: WebSocket`",
            req().lowercase().set("upgrade", "WebSocket"),
            Seen::Echoed,
            Agrees,
        ),
        handshake(
            "`Connection: keep-alive, Upgrade`",
            req().set("Connection", "keep-alive, Upgrade"),
            Seen::Echoed,
            Agrees,
        ),
        handshake(
            "a key of 24 characters ending in `==` that is not base64",
            req().set("Sec-WebSocket-Key", "!!!!!!!!!!!!!!!!!!!!!!=="),
            status(400),
            Agrees,
        ),
        handshake(
            "a key that is base64 of 15 bytes",
            req().set("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAA"),
            status(400),
            Agrees,
        ),
        handshake(
            "a key of 24 characters that is base64 of 17 bytes",
            req().set("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAAA="),
            status(400),
            Agrees,
        ),
        handshake(
            "a key of 16 bytes in base64 without its padding",
            req().set("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAA"),
            status(400),
            Agrees,
        ),
        handshake(
            "no key",
            req().without("Sec-WebSocket-Key"),
            status(400),
            Agrees,
        ),
        handshake(
            "two `Sec-WebSocket-Key` fields",
            req().with("Sec-WebSocket-Key", "AQIDBAUGBwgJCgsMDQ4PEA=="),
            status(400),
            Agrees,
        ),
        handshake(
            "two keys in one `Sec-WebSocket-Key` field",
            req().set(
                "Sec-WebSocket-Key",
                &format!("{KEY}, AQIDBAUGBwgJCgsMDQ4PEA=="),
            ),
            status(400),
            Agrees,
        ),
        handshake(
            "`Sec-WebSocket-Version: 8`",
            req().set("Sec-WebSocket-Version", "8"),
            status_v13(426),
            Deviates(
                status(400),
                "RFC 6455 §4.4 leaves the status open (\"such as 426\") but requires a \
                 Sec-WebSocket-Version field naming the versions understood",
            ),
        ),
        handshake(
            "no `Sec-WebSocket-Version`",
            req().without("Sec-WebSocket-Version"),
            status_v13(426),
            Allowed(
                status(400),
                "RFC 6455 §4.2.1: a missing field gets \"an appropriate error code (such as \
                 400)\"; 426 with the version (§4.4) is appropriate too",
            ),
        ),
        handshake(
            "two `Sec-WebSocket-Version: 13` fields",
            req().with("Sec-WebSocket-Version", "13"),
            status(400),
            Agrees,
        ),
        handshake(
            "no `Upgrade` (what a stripping proxy delivers)",
            req().without("Upgrade"),
            status(426),
            Agrees,
        ),
        handshake(
            "`Upgrade: h2c`",
            req().set("Upgrade", "h2c"),
            status(400),
            Allowed(status(426), upgrade_choice),
        ),
        handshake(
            "no `Connection`",
            req().without("Connection"),
            status(400),
            Allowed(status(426), upgrade_choice),
        ),
        handshake(
            "`Connection: keep-alive` (no `upgrade` token)",
            req().set("Connection", "keep-alive"),
            status(400),
            Allowed(status(426), upgrade_choice),
        ),
        handshake(
            "a POST",
            req().line("POST /echo HTTP/1.1"),
            status(405),
            Agrees,
        ),
        handshake(
            "HTTP/1.0",
            req().line("GET /echo HTTP/1.0"),
            status(400),
            Allowed(
                status(505),
                "RFC 6455 §4.2.1 requires HTTP/1.1 or higher and leaves the error code open \
                 (\"such as 400\")",
            ),
        ),
        handshake(
            "no `Host`",
            req().without("Host"),
            status(400),
            Deviates(
                Seen::Echoed,
                "RFC 6455 §4.2.1 item 2 requires Host; RFC 9112 §3.2: a request without one \
                 MUST get 400",
            ),
        ),
        handshake(
            "two `Host` fields",
            req().with("Host", "127.0.0.2"),
            status(400),
            Deviates(
                Seen::Echoed,
                "RFC 9112 §3.2: a request with more than one Host MUST get 400",
            ),
        ),
        ServerCase {
            group: "handshake",
            name: "a request line that is not HTTP",
            send: Send::Handshake(b"HELLO\r\n\r\n".to_vec()),
            expect: status(400),
            python: Deviates(
                Seen::Other("FIN before an HTTP answer".into()),
                "RFC 9112 §3: an invalid request line SHOULD be answered with 400",
            ),
        },
        // Frames after the upgrade: valid ones (RFC 6455 §5).
        framing(
            "a masked text message",
            cf(true, TEXT, b"Hello, world"),
            Seen::Echoed,
            Agrees,
        ),
        framing(
            "a binary message that is not UTF-8",
            cf(true, BINARY, &[0xFF, 0xFE, 0x00, 0x80]),
            Seen::Echoed,
            Agrees,
        ),
        framing(
            "a text message in three fragments",
            [
                cf(false, TEXT, b"Hel"),
                cf(false, CONT, b"lo, "),
                cf(true, CONT, b"world"),
            ]
            .concat(),
            Seen::Echoed,
            Agrees,
        ),
        framing(
            "a Ping of 125 bytes between two fragments",
            [
                cf(false, TEXT, b"Hello, "),
                cf(true, PING, &[b'p'; 125]),
                cf(true, CONT, b"world"),
            ]
            .concat(),
            Seen::Echoed,
            Agrees,
        ),
        framing(
            "an empty text message",
            cf(true, TEXT, b""),
            Seen::Echoed,
            Agrees,
        ),
        framing(
            "a four-byte character split across fragments",
            [
                cf(false, TEXT, &g_clef[..10]),
                cf(true, CONT, &g_clef[10..]),
            ]
            .concat(),
            Seen::Echoed,
            Agrees,
        ),
        framing(
            "a binary message of 70 000 bytes (64-bit length)",
            cf(true, BINARY, &vec![0xA5; 70_000]),
            Seen::Echoed,
            Agrees,
        ),
        framing(
            "Close 4000 with a UTF-8 reason (answered with 4000)",
            cf(true, CLOSE, &close_payload(4000, "au revoir ✓".as_bytes())),
            close(4000),
            Agrees,
        ),
        framing(
            "a Close without a code (answered without one)",
            cf(true, CLOSE, b""),
            Seen::Close(None),
            Agrees,
        ),
        // Frames after the upgrade that fail the connection (RFC 6455 §5, §7.1.7, §7.4.1).
        framing(
            "an unmasked text frame",
            sf(true, TEXT, b"Hello"),
            close(1002),
            Agrees,
        ),
        framing(
            "RSV1 set, no extension negotiated",
            frame(true, 0b100, TEXT, b"Hello", true),
            close(1002),
            Agrees,
        ),
        framing(
            "RSV2 and RSV3 set",
            frame(true, 0b011, BINARY, b"Hello", true),
            close(1002),
            Agrees,
        ),
        framing(
            "reserved data opcode 0x3",
            cf(true, RESERVED_DATA, b"Hello"),
            close(1002),
            Agrees,
        ),
        framing(
            "reserved control opcode 0xB",
            cf(true, RESERVED_CONTROL, b""),
            close(1002),
            Agrees,
        ),
        framing(
            "reserved opcode 0x3, then a message (not processed)",
            [
                cf(true, RESERVED_DATA, b"Hello"),
                cf(true, BINARY, &vec![0x5A; 256 << 10]),
            ]
            .concat(),
            close(1002),
            Agrees,
        ),
        framing(
            "a Ping of 126 bytes",
            cf(true, PING, &[b'p'; 126]),
            close(1002),
            Agrees,
        ),
        framing(
            "a fragmented Ping",
            cf(false, PING, b"ping"),
            close(1002),
            Agrees,
        ),
        framing(
            "a continuation frame with no message started",
            cf(true, CONT, b"orphan"),
            close(1002),
            Agrees,
        ),
        framing(
            "a text frame inside a fragmented message",
            [cf(false, TEXT, b"first"), cf(true, TEXT, b"second")].concat(),
            close(1002),
            Agrees,
        ),
        framing(
            "a Close with a one-byte payload",
            cf(true, CLOSE, &[0x03]),
            close(1002),
            Agrees,
        ),
        framing(
            "Close 1005 (never sent on the wire)",
            cf(true, CLOSE, &close_payload(1005, b"")),
            close(1002),
            Agrees,
        ),
        framing(
            "Close 1006 (never sent on the wire)",
            cf(true, CLOSE, &close_payload(1006, b"")),
            close(1002),
            Agrees,
        ),
        framing(
            "Close 999 (not a close code)",
            cf(true, CLOSE, &close_payload(999, b"")),
            close(1002),
            Agrees,
        ),
        framing(
            "a text message that is not UTF-8",
            cf(true, TEXT, b"\xFF\xFE not text"),
            close(1007),
            Agrees,
        ),
        framing(
            "text fragments whose joint is not UTF-8",
            [cf(false, TEXT, b"abc\xE2\x82"), cf(true, CONT, b"(def")].concat(),
            close(1007),
            Agrees,
        ),
        framing(
            "a text message ending inside a character",
            [cf(false, TEXT, b"abc"), cf(true, CONT, b"\xE2\x82")].concat(),
            close(1007),
            Agrees,
        ),
        framing(
            "a Close reason that is not UTF-8",
            cf(true, CLOSE, &close_payload(1000, b"\xFF")),
            close(1007),
            Agrees,
        ),
        framing(
            "a frame announcing 4 GiB",
            four_gib_header(true),
            close(1009),
            Agrees,
        ),
        framing(
            "a message of 16 MiB + 2 bytes in two fragments (over the limit)",
            [
                cf(false, BINARY, &vec![0x5A; LIMIT / 2 + 1]),
                cf(true, CONT, &vec![0x5A; LIMIT / 2 + 1]),
            ]
            .concat(),
            close(1009),
            Agrees,
        ),
    ]
}

/// The data messages and Pings in a run of frames (up to the first Close), as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Messages {
    messages: Vec<(u8, Vec<u8>)>,
    pings: Vec<Vec<u8>>,
}

impl Messages {
    fn of(mut bytes: &[u8]) -> Self {
        let mut out = Messages::default();
        let mut partial: Option<(u8, Vec<u8>)> = None;
        while let Some((f, used)) = parse_frame(bytes) {
            bytes = &bytes[used..];
            match f.op {
                CLOSE => break,
                PING => out.pings.push(f.payload),
                PONG => {}
                op => {
                    let (_, data) = partial.get_or_insert((op, Vec::new()));
                    data.extend_from_slice(&f.payload);
                    if f.fin {
                        out.messages.extend(partial.take());
                    }
                }
            }
        }
        out
    }

    fn is_empty(&self) -> bool {
        self.messages.is_empty() && self.pings.is_empty()
    }
}

/// A frame as read, unmasked.
#[derive(Debug)]
struct Frame {
    fin: bool,
    op: u8,
    masked: bool,
    payload: Vec<u8>,
}

/// The frame at the start of `buf` and its length, once it is all there. Any bits are
/// accepted: the tables judge them.
fn parse_frame(buf: &[u8]) -> Option<(Frame, usize)> {
    let (&b0, &b1) = (buf.first()?, buf.get(1)?);
    let masked = b1 & 0x80 != 0;
    let (len, mut at) = match b1 & 0x7f {
        126 => (
            u64::from(u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?])),
            4,
        ),
        127 => (u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?), 10),
        n => (u64::from(n), 2),
    };
    let mask: Option<[u8; 4]> = if masked {
        at += 4;
        Some(buf.get(at - 4..at)?.try_into().ok()?)
    } else {
        None
    };
    let end = at.checked_add(usize::try_from(len).ok()?)?;
    let mut payload = buf.get(at..end)?.to_vec();
    if let Some(m) = mask {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= m[i % 4];
        }
    }
    let frame = Frame {
        fin: b0 & 0x80 != 0,
        op: b0 & 0x0f,
        masked,
        payload,
    };
    Some((frame, end))
}

/// The code in a Close frame's payload, if it has one.
fn close_code(payload: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*payload.first()?, *payload.get(1)?]))
}

/// Waits for a duration, on whatever clock the run uses.
type Timer<'a> = &'a dyn Fn(Duration) -> LocalBoxFuture<'static, ()>;

/// How reading ended.
#[derive(Debug)]
enum End {
    Fin,
    Reset(std::io::ErrorKind),
    Silent,
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            End::Fin => f.write_str("FIN"),
            End::Reset(kind) => write!(f, "{kind}"),
            End::Silent => write!(f, "nothing for {} s", PATIENCE.as_secs()),
        }
    }
}

/// Reads what comes next into `buf`; says how reading ended if it did.
async fn read_more<S: AsyncRead + Unpin>(
    io: &mut S,
    buf: &mut Vec<u8>,
    timer: Timer<'_>,
) -> Option<End> {
    let mut chunk = vec![0u8; 64 << 10];
    tokio::select! {
        biased;
        read = io.read(&mut chunk) => match read {
            Ok(0) => Some(End::Fin),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                None
            }
            Err(e) => Some(End::Reset(e.kind())),
        },
        () = timer(PATIENCE) => Some(End::Silent),
    }
}

/// Runs one server-role case over `io`, a fresh connection to the server.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut io: S,
    send: &Send,
    timer: Timer<'_>,
) -> Seen {
    let (request, after) = match send {
        Send::Handshake(request) => (request.clone(), cf(true, TEXT, b"conformance probe")),
        Send::Frames(frames) => (Head::request().bytes(), frames.clone()),
    };
    if let Err(e) = io.write_all(&request).await {
        return Seen::Other(format!("the request could not be sent: {e}"));
    }
    let mut buf = Vec::new();
    let head = loop {
        match http::parse_response(&buf, 64 << 10) {
            Parsed::Complete(head, len) => {
                buf.drain(..len);
                break head;
            }
            Parsed::Invalid(reason) => return Seen::Other(format!("not an HTTP answer: {reason}")),
            Parsed::Partial => {
                if let Some(end) = read_more(&mut io, &mut buf, timer).await {
                    return Seen::Other(format!("{end} before an HTTP answer"));
                }
            }
        }
    };
    let code = head.status().unwrap_or_default();
    if code != 101 {
        let version = head
            .get("sec-websocket-version")
            .map(|v| String::from_utf8_lossy(v).into_owned());
        return Seen::Status(code, version);
    }
    // The server may fail the connection before it has read all of this: a write that fails
    // then is no finding, what it answered is.
    tokio::select! {
        biased;
        _ = io.write_all(&after) => {}
        () = timer(PATIENCE) => return Seen::Other("101, then the frames could not be written".into()),
    }
    let sent = Messages::of(&after);
    let mut got = Messages::default();
    let mut partial: Option<(u8, Vec<u8>)> = None;
    let (mut close, mut closing, mut wrong) = (None, false, None::<String>);
    let end = loop {
        while let Some((f, used)) = parse_frame(&buf) {
            buf.drain(..used);
            if close.is_some() {
                wrong.get_or_insert(format!("a frame (opcode {:#x}) after its Close", f.op));
            } else if f.masked {
                wrong.get_or_insert("a masked frame from the server".into());
            }
            match f.op {
                CLOSE => close = Some(close_code(&f.payload)),
                PONG => got.pings.push(f.payload),
                PING => {}
                op => {
                    let (_, data) = partial.get_or_insert((op, Vec::new()));
                    data.extend_from_slice(&f.payload);
                    if f.fin {
                        got.messages.extend(partial.take());
                    }
                }
            }
        }
        if close.is_none() && !closing && !sent.is_empty() && got == sent {
            closing = true;
            let _ = io
                .write_all(&cf(true, CLOSE, &close_payload(1000, b"")))
                .await;
        }
        if let Some(end) = read_more(&mut io, &mut buf, timer).await {
            break end;
        }
    };
    let back = match got.messages.len() {
        0 => String::new(),
        n => format!("{n} message(s) back, then "),
    };
    match (close, end, wrong) {
        (_, _, Some(wrong)) => Seen::Other(format!("101, then {wrong}")),
        (Some(Some(1000)), End::Fin, None) if closing && got == sent => Seen::Echoed,
        (Some(code), End::Fin, None) if !closing && got.messages.is_empty() => Seen::Close(code),
        (Some(code), end, None) => Seen::Other(format!("{back}{}, then {end}", Seen::Close(code))),
        (None, end, None) => Seen::Other(format!("{back}{end} without a Close")),
    }
}

/// Runs every server-role case against the server at `addr` on real sockets.
fn against_real(addr: SocketAddr, cases: &[ServerCase]) -> Vec<Seen> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let timer = |d: Duration| tokio::time::sleep(d).boxed_local();
    runtime.block_on(async {
        let mut seen = Vec::new();
        for case in cases {
            let io = tokio::net::TcpStream::connect(addr)
                .await
                .unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
            seen.push(exchange(io, &case.send, &timer).await);
        }
        seen
    })
}

/// Runs every server-role case against the reference server's software on the simulated
/// network; gives what each saw and the server's transcript.
fn against_simulated(cases: &[ServerCase]) -> (Vec<Seen>, String) {
    let transcript = Transcript::default();
    let mut topology = Topology::new(
        LinkConfig::new(Duration::from_millis(1), Duration::ZERO),
        Duration::from_secs(3600),
    );
    topology.host(
        "server",
        gauntlet::endpoints::server::software(transcript.clone(), None, None),
    );
    let seen: Rc<RefCell<Vec<Seen>>> = Rc::default();
    let (out, cases) = (seen.clone(), cases.to_vec());
    topology.client(
        "client",
        Box::new(move |net: NetRef| {
            async move {
                let timer = |d: Duration| {
                    let net = net.clone();
                    async move { net.sleep_until(net.now() + d).await }.boxed_local()
                };
                for case in &cases {
                    let io = net.connect("server", 80).await?;
                    let seen = exchange(io, &case.send, &timer).await;
                    out.borrow_mut().push(seen);
                }
                Ok(())
            }
            .boxed_local()
        }),
    );
    Sim.run(topology, 1).expect("the run completes");
    let text = transcript::render(&transcript.entries());
    (seen.take(), text)
}

/// Lines of `table`, columns padded to their widest cell.
fn render(table: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..table[0].len())
        .map(|c| {
            table
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in table {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// The cases whose `seen` differs from what they expect, one line each.
fn mismatches(cases: &[ServerCase], seen: &[Seen]) -> Vec<String> {
    cases
        .iter()
        .zip(seen)
        .filter(|(case, seen)| **seen != case.expect)
        .map(|(case, seen)| format!("{}: expected {}, got {seen}", case.name, case.expect))
        .collect()
}

#[test]
fn the_tables_hold_both_groups_for_both_roles_and_at_least_40_cases() {
    let server = server_cases();
    let client = client_cases();
    assert!(server.len() + client.len() >= 40);
    for group in ["handshake", "framing"] {
        assert!(
            server.iter().filter(|c| c.group == group).count() >= 10,
            "{group}"
        );
        assert!(
            client.iter().filter(|c| c.group == group).count() >= 10,
            "{group}"
        );
    }
}

#[test]
fn the_reference_server_software_answers_every_case_on_the_simulated_network() {
    let cases = server_cases();
    let (seen, transcript) = against_simulated(&cases);
    assert_eq!(seen.len(), cases.len(), "{transcript}");
    let wrong = mismatches(&cases, &seen);
    assert!(
        wrong.is_empty(),
        "{} of {} cases:\n{}\n\n{transcript}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}

#[test]
fn gauntlet_serve_and_python_websockets_answer_every_case_alike() {
    let cases = server_cases();
    let serve = Serve::start(None);
    let mut python = Process::start("echo_server.py", &mut script("echo_server.py", &[]));
    let python_addr = python.address("listening on ");
    let ours = against_real(serve.ws, &cases);
    let theirs = against_real(python_addr, &cases);
    let mut table = vec![
        [
            "group",
            "case",
            "expected",
            "gauntlet serve",
            "websockets",
            "verdict",
        ]
        .map(String::from)
        .to_vec(),
    ];
    let mut problems = Vec::new();
    let mut divergences = Vec::new();
    for ((case, ours), theirs) in cases.iter().zip(&ours).zip(&theirs) {
        let verdict = match &case.python {
            _ if *ours != case.expect => {
                problems.push(format!(
                    "{}: gauntlet serve {ours}, expected {}",
                    case.name, case.expect
                ));
                "WRONG (gauntlet)".to_string()
            }
            Python::Agrees if theirs == ours => "agree".to_string(),
            Python::Allowed(p, why) | Python::Deviates(p, why) if theirs == p => {
                let kind = match case.python {
                    Python::Allowed(..) => "allowed divergence",
                    _ => "websockets deviates",
                };
                divergences.push(format!("{}: {kind}: {why}", case.name));
                kind.to_string()
            }
            python => {
                let expected = match python {
                    Python::Agrees => ours,
                    Python::Allowed(p, _) | Python::Deviates(p, _) => p,
                };
                problems.push(format!(
                    "{}: websockets {theirs}, the table says {expected}",
                    case.name
                ));
                "WRONG (table)".to_string()
            }
        };
        table.push(vec![
            case.group.to_string(),
            case.name.to_string(),
            case.expect.to_string(),
            ours.to_string(),
            theirs.to_string(),
            verdict,
        ]);
    }
    eprintln!("{}\n{}", render(&table), divergences.join("\n"));
    drop(python);
    let log = serve.stop();
    assert!(
        problems.is_empty(),
        "{} of {} cases:\n{}\n\ngauntlet serve's log:\n{log}",
        problems.len(),
        cases.len(),
        problems.join("\n")
    );
}

/// What the client sent a client-role server, and whether it closed the connection.
#[derive(Debug, Default)]
struct Heard {
    frames: Vec<(u8, Vec<u8>)>,
    hung_up: bool,
    /// Told once the client has closed the connection.
    done: Rc<tokio::sync::Notify>,
}

impl Heard {
    /// The code of the Close frame the client sent last, if its last frame was a Close
    /// (`Some(None)`: a Close without a code).
    fn close(&self) -> Option<Option<u16>> {
        self.frames
            .last()
            .filter(|(op, _)| *op == CLOSE)
            .map(|(_, p)| close_code(p))
    }
}

/// One client-role case: what the server answers the upgrade with, the bytes it sends right
/// after, and what the client must report and the code of the Close it must send (`None`:
/// no Close, the connection never opened).
#[derive(Debug, Clone)]
struct ClientCase {
    group: &'static str,
    name: &'static str,
    answer: Vec<u8>,
    then: Vec<u8>,
    expect: (Outcome, Option<u16>),
}

fn answer(name: &'static str, head: Head, expect: (Outcome, Option<u16>)) -> ClientCase {
    ClientCase {
        group: "handshake",
        name,
        answer: head.bytes(),
        then: Vec::new(),
        expect,
    }
}

fn sends(name: &'static str, then: Vec<u8>, expect: (Outcome, Option<u16>)) -> ClientCase {
    ClientCase {
        group: "framing",
        name,
        answer: Head::switching().bytes(),
        then,
        expect,
    }
}

/// The client-role table. The client's workload is one echoed 16-byte text message, then a
/// Close 1000; the server echoes messages and answers a Close with its code, so a valid case
/// is `delivered`, closed with 1000.
///
/// A 101 the client must refuse (RFC 6455 §4.1, "the client MUST _Fail the WebSocket
/// Connection_") is `handshake-invalid`, and no Close can be sent: the connection never
/// opened. A non-101 answer is `handshake-rejected`. After the upgrade, a frame the client
/// must fail the connection on is `corrupted` (bytes that are not the WebSocket frames the
/// server should send) and the client sends a Close with 1002, 1007 or 1009 (the same choices
/// as the server's) before closing the connection; a Close from the server while the client
/// waits for an echo is `dropped`, and answered (§5.5.1) with its code, or with 1002 when the
/// code is one that must never be sent.
fn client_cases() -> Vec<ClientCase> {
    let invalid = (Outcome::HandshakeInvalid, None);
    let rejected = (Outcome::HandshakeRejected, None);
    let delivered = (Outcome::Delivered, Some(1000));
    let corrupted = |code| (Outcome::Corrupted, Some(code));
    let ok = Head::switching;
    vec![
        answer("a valid 101", ok(), delivered),
        answer(
            "`Connection: keep-alive, Upgrade`",
            ok().set("Connection", "keep-alive, Upgrade"),
            delivered,
        ),
        answer(
            "`Upgrade: WebSocket`, field names in lower case",
            ok().lowercase().set("upgrade", "WebSocket"),
            delivered,
        ),
        answer(
            "a wrong `Sec-WebSocket-Accept`",
            ok().set("Sec-WebSocket-Accept", "d3JvbmcgYWNjZXB0IGtleSE="),
            invalid,
        ),
        answer(
            "no `Sec-WebSocket-Accept`",
            ok().without("Sec-WebSocket-Accept"),
            invalid,
        ),
        answer("no `Upgrade`", ok().without("Upgrade"), invalid),
        answer("`Upgrade: h2c`", ok().set("Upgrade", "h2c"), invalid),
        answer("no `Connection`", ok().without("Connection"), invalid),
        answer(
            "`Connection: keep-alive` (no `upgrade` token)",
            ok().set("Connection", "keep-alive"),
            invalid,
        ),
        answer(
            "an extension the client did not ask for",
            ok().with("Sec-WebSocket-Extensions", "permessage-deflate"),
            invalid,
        ),
        answer(
            "a subprotocol the client did not ask for",
            ok().with("Sec-WebSocket-Protocol", "chat"),
            invalid,
        ),
        answer(
            "`HTTP/1.0 101`",
            ok().line("HTTP/1.0 101 Switching Protocols"),
            invalid,
        ),
        answer(
            "426 Upgrade Required",
            Head::new(
                "HTTP/1.1 426 Upgrade Required",
                &[("Upgrade", "websocket"), ("Content-Length", "0")],
            ),
            rejected,
        ),
        answer(
            "200 OK",
            Head::new("HTTP/1.1 200 OK", &[("Content-Length", "0")]),
            rejected,
        ),
        ClientCase {
            group: "handshake",
            name: "an answer that is not HTTP",
            answer: b"SSH-2.0-OpenSSH_9.2\r\n\r\n".to_vec(),
            then: Vec::new(),
            expect: rejected,
        },
        sends(
            "a Ping of 125 bytes right after the 101",
            sf(true, PING, &[b'p'; 125]),
            delivered,
        ),
        sends("a masked frame", cf(true, TEXT, b"masked"), corrupted(1002)),
        sends(
            "RSV1 set, no extension negotiated",
            frame(true, 0b100, TEXT, b"Hello", false),
            corrupted(1002),
        ),
        sends(
            "reserved data opcode 0x3",
            sf(true, RESERVED_DATA, b"Hello"),
            corrupted(1002),
        ),
        sends(
            "reserved control opcode 0xB",
            sf(true, RESERVED_CONTROL, b""),
            corrupted(1002),
        ),
        sends(
            "a Ping of 126 bytes",
            sf(true, PING, &[b'p'; 126]),
            corrupted(1002),
        ),
        sends(
            "a fragmented Ping",
            sf(false, PING, b"ping"),
            corrupted(1002),
        ),
        sends(
            "a continuation frame with no message started",
            sf(true, CONT, b"orphan"),
            corrupted(1002),
        ),
        sends(
            "a text frame inside a fragmented message",
            [sf(false, TEXT, b"first"), sf(true, TEXT, b"second")].concat(),
            corrupted(1002),
        ),
        sends(
            "a Close with a one-byte payload",
            sf(true, CLOSE, &[0x03]),
            corrupted(1002),
        ),
        sends(
            "a text message that is not UTF-8",
            sf(true, TEXT, b"\xFF\xFE not text"),
            corrupted(1007),
        ),
        sends(
            "a Close reason that is not UTF-8",
            sf(true, CLOSE, &close_payload(1000, b"\xFF")),
            corrupted(1007),
        ),
        sends(
            "a frame announcing 4 GiB",
            four_gib_header(false),
            corrupted(1009),
        ),
        sends(
            "Close 1001 before the echo (answered with 1001)",
            sf(true, CLOSE, &close_payload(1001, b"going away")),
            (Outcome::Dropped, Some(1001)),
        ),
        sends(
            "Close 1005 before the echo (answered with 1002)",
            sf(true, CLOSE, &close_payload(1005, b"")),
            (Outcome::Dropped, Some(1002)),
        ),
    ]
}

/// A server that answers the upgrade with `answer` (its `{accept}` filled in) and `then`,
/// then echoes every message and answers a Close with its payload, noting what it reads.
fn raw_server(answer: Vec<u8>, then: Vec<u8>, heard: Rc<RefCell<Heard>>) -> Software {
    Rc::new(move |net: NetRef| {
        let (answer, then, heard) = (answer.clone(), then.clone(), heard.clone());
        async move {
            let mut listener = net.listen(80).await?;
            let mut s = listener.accept().await?;
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") {
                s.read_exact(&mut byte).await?;
                request.push(byte[0]);
            }
            let text = String::from_utf8_lossy(&request).to_string();
            let key = text
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("sec-websocket-key")
                        .then(|| value.trim().to_string())
                })
                .unwrap_or_default();
            let answer = String::from_utf8_lossy(&answer)
                .replace("{accept}", &derive_accept_key(key.as_bytes()));
            s.write_all(&[answer.as_bytes(), &then].concat()).await?;
            let (mut buf, mut partial, mut closed) = (Vec::new(), None::<(u8, Vec<u8>)>, false);
            loop {
                while let Some((f, used)) = parse_frame(&buf) {
                    buf.drain(..used);
                    heard.borrow_mut().frames.push((f.op, f.payload.clone()));
                    match f.op {
                        CLOSE if !closed => {
                            closed = true;
                            let _ = s.write_all(&sf(true, CLOSE, &f.payload)).await;
                            let _ = s.shutdown().await;
                        }
                        CLOSE | PING | PONG => {}
                        op => {
                            let (first, data) = partial.get_or_insert((op, Vec::new()));
                            data.extend_from_slice(&f.payload);
                            let first = *first;
                            if f.fin && !closed {
                                let data = partial.take().map(|(_, d)| d).unwrap_or_default();
                                let _ = s.write_all(&sf(true, first, &data)).await;
                            }
                        }
                    }
                }
                let mut chunk = [0u8; 4096];
                match s.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            heard.borrow_mut().hung_up = true;
            heard.borrow().done.notify_one();
            std::future::pending::<()>().await;
            Ok(())
        }
        .boxed_local()
    })
}

/// Runs the reference client against `case`'s server on the simulated network; the run ends
/// once the server has seen the client close the connection (or [`PATIENCE`] after the
/// client's report, a safety net).
fn run_client(case: &ClientCase) -> (Report, Heard, String) {
    let (tls, _) = Tls::generate(&["server".to_string()]).expect("TLS material");
    let mut topology = Topology::new(
        LinkConfig::new(Duration::from_millis(1), Duration::ZERO),
        Duration::from_secs(60),
    );
    let heard: Rc<RefCell<Heard>> = Rc::default();
    let done = heard.borrow().done.clone();
    topology.host(
        "server",
        raw_server(case.answer.clone(), case.then.clone(), heard.clone()),
    );
    let plan = Plan {
        scheme: Scheme::Ws,
        host: "server".into(),
        handshake_timeout: Duration::from_secs(1),
        workload: Workload {
            messages: 1,
            payload_bytes: 16,
            reply_timeout: Duration::from_secs(2),
            ..Workload::new(WorkloadKind::Echo)
        },
        seed: 1,
        tls: tls.client,
        ping_interval: None,
        proxy: None,
        mask: true,
        path_prefix: String::new(),
        subprotocols: Vec::new(),
        wire: Default::default(),
        browser: Default::default(),
        handshake: Default::default(),
        request: Default::default(),
        stop_proxy: None,
    };
    let transcript = Transcript::default();
    let report: Rc<RefCell<Option<Report>>> = Rc::default();
    let (out, t) = (report.clone(), transcript.clone());
    topology.client(
        "client",
        Box::new(move |net: NetRef| {
            async move {
                *out.borrow_mut() = Some(client::run(net.clone(), plan, t).await);
                tokio::select! {
                    biased;
                    () = done.notified() => {}
                    () = net.sleep_until(net.now() + PATIENCE) => {}
                }
                Ok(())
            }
            .boxed_local()
        }),
    );
    Sim.run(topology, 1).expect("the run completes");
    let report = report.take().expect("the client reported");
    let heard = heard.take();
    (report, heard, transcript::render(&transcript.entries()))
}

#[test]
fn the_reference_client_fails_every_bad_server_as_the_rfc_says() {
    let cases = client_cases();
    let mut table = vec![
        ["group", "case", "expected", "got", ""]
            .map(String::from)
            .to_vec(),
    ];
    let mut problems = Vec::new();
    let show = |(outcome, close): (Outcome, Option<Option<u16>>)| match close {
        None => outcome.to_string(),
        Some(Some(code)) => format!("{outcome}, close {code}"),
        Some(None) => format!("{outcome}, close (no code)"),
    };
    for case in &cases {
        let (report, heard, transcript) = run_client(case);
        let expected = (case.expect.0, case.expect.1.map(Some));
        let got = (report.outcome, heard.close());
        let mut verdict = if got == expected { "ok" } else { "WRONG" };
        if !heard.hung_up {
            verdict = "WRONG (connection left open)";
        }
        if verdict != "ok" {
            problems.push(format!(
                "{}: expected {}, got {} ({verdict}): {}\n{transcript}",
                case.name,
                show(expected),
                show(got),
                report.detail
            ));
        }
        table.push(vec![
            case.group.to_string(),
            case.name.to_string(),
            show(expected),
            show(got),
            verdict.to_string(),
        ]);
    }
    eprintln!("{}", render(&table));
    assert!(
        problems.is_empty(),
        "{} of {} cases:\n{}",
        problems.len(),
        cases.len(),
        problems.join("\n")
    );
}
