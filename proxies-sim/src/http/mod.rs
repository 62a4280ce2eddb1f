//! HTTP/1.1 heads as intermediaries see them: parsing (httparse), hop-by-hop fields
//! (RFC 9110 §7.6.1), and where a message body ends (RFC 9112 §6); [`message`] reads a
//! direction of a connection as a sequence of messages.

use std::fmt;

pub mod message;

pub use message::{
    ChunkError, ChunkedScanner, ExchangeError, Framing, HeadReader, Item, Kind, MessageError,
    Messages, Progress, answer, interim,
};

/// The most header fields a head may carry.
const MAX_HEADERS: usize = 96;

/// The longest head (start line, fields and the empty line that ends them) every model reads,
/// in bytes: Squid's defaults, `request_header_max_size 64 KB` and `reply_header_max_size
/// 64 KB` (squid-cache.org/Doc/config/request_header_max_size). It is the largest of the
/// common products' limits (nginx reads a request head into at most 4 buffers of 8 KiB,
/// `large_client_header_buffers 4 8k`; HAProxy into one `tune.bufsize` of 16 KiB), so a head
/// any of them accepts passes. A longer request head is answered 431 (RFC 6585 §5), a longer
/// response head 502, and the connection is closed.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// How long an HTTP model waits for a connection's first complete request head: nginx's
/// `client_header_timeout 60s` (nginx.org/en/docs/http/ngx_http_core_module.html), which
/// answers 408 Request Time-out. A client that dribbles a head (slowloris) is closed then,
/// not held for ever. (Apache waits 20 to 40 s, `RequestReadTimeout header=20-40`; Squid
/// 5 minutes, `request_start_timeout`.)
pub const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The timer id every HTTP model uses for [`HEADER_TIMEOUT`] (apart from the ids the models
/// use for their own timers).
pub const HEADER_TIMER: u64 = 0x4845_4144;

/// What a model does when a connection's first request head is not complete within
/// `timeout` (`held` bytes of it came): the transcript note, and the 408 for the client.
pub fn header_timed_out(timeout: std::time::Duration, held: usize) -> (String, Vec<u8>) {
    let note = format!(
        "no complete request head within {} ms ({held} bytes of one): answering 408 Request Timeout and closing",
        timeout.as_millis()
    );
    let answer = error_response(
        408,
        "Request Timeout",
        "The request head did not arrive in time.",
    );
    (note, answer)
}

/// What a model does with a head longer than `max` bytes (`held` of them came without its
/// end): the transcript note, and the answer for the client: 431 (RFC 6585 §5) for a
/// request, 502 for a response (as nginx answers an upstream that "sent too big header").
pub fn head_too_long(kind: Kind, max: usize, held: usize) -> (String, Vec<u8>) {
    let (what, answer) = match kind {
        Kind::Request => (
            "request",
            error_response(
                431,
                "Request Header Fields Too Large",
                "The request head is too long.",
            ),
        ),
        Kind::Response => (
            "response",
            error_response(
                502,
                "Bad Gateway",
                "The upstream's response head is too long.",
            ),
        ),
    };
    let note = format!(
        "{what} head longer than {max} bytes ({held} bytes without its end): discarded, answering {} and closing",
        first_line(&answer).trim_start_matches("HTTP/1.1 ")
    );
    (note, answer)
}

/// The first line of `bytes` (up to CRLF), as text.
pub fn first_line(bytes: &[u8]) -> String {
    let end = bytes
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).to_string()
}

#[cfg(test)]
thread_local! {
    /// Bytes examined by the head parser and the end-of-head search on this thread.
    static EXAMINED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Bytes the head parser and the end-of-head search have examined on this thread so far, for
/// tests that hold head reading to linear time.
#[cfg(test)]
pub(crate) fn examined() -> u64 {
    EXAMINED.with(|c| c.get())
}

/// Counts `n` bytes examined (tests only).
pub(crate) fn examine(n: usize) {
    #[cfg(test)]
    EXAMINED.with(|c| c.set(c.get() + n as u64));
    #[cfg(not(test))]
    let _ = n;
}

/// A request line or a status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    /// `METHOD target HTTP/1.x`
    Request {
        /// The method, as sent.
        method: String,
        /// The request target, as sent.
        target: String,
        /// The minor version: 0 or 1.
        minor: u8,
    },
    /// `HTTP/1.x status reason`
    Response {
        /// The minor version: 0 or 1.
        minor: u8,
        /// The status code.
        status: u16,
        /// The reason phrase, as sent.
        reason: String,
    },
}

/// A parsed HTTP/1.x head: start line and fields in their original order and case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Request or status line.
    pub start: StartLine,
    /// Field names and values, in order, names as sent.
    pub fields: Vec<(String, Vec<u8>)>,
}

/// What parsing a buffer that should begin with a head found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A complete head of `len` bytes.
    Complete(Head, usize),
    /// More bytes are needed.
    Partial,
    /// The bytes are not an HTTP/1.x head; the reason says why.
    Invalid(String),
}

/// Parses a request head at the start of `buf`.
pub fn parse_request(buf: &[u8], max_len: usize) -> Parsed {
    examine(buf.len());
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => {
            let start = StartLine::Request {
                method: req.method.unwrap_or_default().to_string(),
                target: req.path.unwrap_or_default().to_string(),
                minor: req.version.unwrap_or(1),
            };
            Parsed::Complete(Head::new(start, req.headers), len)
        }
        Ok(httparse::Status::Partial) if buf.len() > max_len => {
            Parsed::Invalid(format!("request head longer than {max_len} bytes"))
        }
        Ok(httparse::Status::Partial) => Parsed::Partial,
        Err(e) => Parsed::Invalid(format!("not an HTTP request: {e}")),
    }
}

/// Parses a response head at the start of `buf`.
pub fn parse_response(buf: &[u8], max_len: usize) -> Parsed {
    examine(buf.len());
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut headers);
    match res.parse(buf) {
        Ok(httparse::Status::Complete(len)) => {
            let start = StartLine::Response {
                minor: res.version.unwrap_or(1),
                status: res.code.unwrap_or_default(),
                reason: res.reason.unwrap_or_default().to_string(),
            };
            Parsed::Complete(Head::new(start, res.headers), len)
        }
        Ok(httparse::Status::Partial) if buf.len() > max_len => {
            Parsed::Invalid(format!("response head longer than {max_len} bytes"))
        }
        Ok(httparse::Status::Partial) => Parsed::Partial,
        Err(e) => Parsed::Invalid(format!("not an HTTP response: {e}")),
    }
}

/// The fields RFC 9110 §7.6.1 names as hop-by-hop besides those listed in `Connection`.
pub const HOP_BY_HOP: &[&str] = &[
    "connection",
    "proxy-connection",
    "keep-alive",
    "te",
    "transfer-encoding",
    "upgrade",
];

impl Head {
    fn new(start: StartLine, headers: &[httparse::Header<'_>]) -> Self {
        let fields = headers
            .iter()
            .map(|h| (h.name.to_string(), h.value.to_vec()))
            .collect();
        Self { start, fields }
    }

    /// The value of the first field named `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// Whether a field named `name` is present (case-insensitive).
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Removes every field named `name` (case-insensitive); returns how many were removed.
    pub fn remove(&mut self, name: &str) -> usize {
        let before = self.fields.len();
        self.fields.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        before - self.fields.len()
    }

    /// Appends a field.
    pub fn push(&mut self, name: &str, value: &str) {
        self.fields
            .push((name.to_string(), value.as_bytes().to_vec()));
    }

    /// The tokens of every `Connection` field, read as one comma-separated list, lowercased,
    /// empty elements skipped (RFC 9110 §5.6.1).
    pub fn connection_tokens(&self) -> Vec<String> {
        comma_list(self, "connection")
    }

    /// Whether any `Connection` field lists `token` (case-insensitive).
    pub fn connection_has(&self, token: &str) -> bool {
        self.connection_tokens()
            .iter()
            .any(|t| t.eq_ignore_ascii_case(token))
    }

    /// Removes the hop-by-hop fields, as a proxy must (RFC 9110 §7.6.1): every field named in
    /// `Connection`, `Connection` itself, and the other hop-by-hop fields. Fields in `keep`
    /// are left in place (a relay that forwards a body unchanged keeps `Transfer-Encoding`,
    /// since the body is still in that encoding). Returns the names removed, lowercased, in
    /// the order first seen.
    pub fn strip_hop_by_hop(&mut self, keep: &[&str]) -> Vec<String> {
        let mut doomed: Vec<String> = self.connection_tokens();
        doomed.extend(HOP_BY_HOP.iter().map(|s| s.to_string()));
        let mut removed = Vec::new();
        self.fields.retain(|(name, _)| {
            let lower = name.to_ascii_lowercase();
            let strip =
                doomed.contains(&lower) && !keep.iter().any(|k| k.eq_ignore_ascii_case(&lower));
            if strip && !removed.contains(&lower) {
                removed.push(lower);
            }
            !strip
        });
        removed
    }

    /// The head's status code, if it is a response.
    pub fn status(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { status, .. } => Some(*status),
            StartLine::Request { .. } => None,
        }
    }

    /// The method, if it is a request.
    pub fn method(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The request target as sent, if it is a request.
    pub fn target(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { target, .. } => Some(target),
            StartLine::Response { .. } => None,
        }
    }

    /// Sets the HTTP minor version of the start line.
    pub fn set_minor(&mut self, to: u8) {
        match &mut self.start {
            StartLine::Request { minor, .. } | StartLine::Response { minor, .. } => *minor = to,
        }
    }

    /// The head serialised with CRLF line ends and the closing empty line.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        match &self.start {
            StartLine::Request {
                method,
                target,
                minor,
            } => out.extend_from_slice(format!("{method} {target} HTTP/1.{minor}\r\n").as_bytes()),
            StartLine::Response {
                minor,
                status,
                reason,
            } => out.extend_from_slice(format!("HTTP/1.{minor} {status} {reason}\r\n").as_bytes()),
        }
        for (name, value) in &self.fields {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    /// How the body after this head is delimited (RFC 9112 §6.3, its rules in order).
    /// `request_method` is the method of the request a response answers: a response to HEAD
    /// has no body, and a 2xx to CONNECT turns the connection into a tunnel, read as one body
    /// that ends at the close.
    pub fn framing(&self, request_method: Option<&str>) -> Result<Framing, FramingError> {
        if let Some(status) = self.status() {
            let method = |name: &str| request_method.is_some_and(|m| m.eq_ignore_ascii_case(name));
            if (100..200).contains(&status) || status == 204 || status == 304 || method("HEAD") {
                return Ok(Framing::None);
            }
            if (200..300).contains(&status) && method("CONNECT") {
                return Ok(Framing::UntilClose);
            }
        }
        let codings = comma_list(self, "transfer-encoding");
        if let Some(last) = codings.last() {
            return if last == "chunked" {
                Ok(Framing::Chunked(ChunkedScanner::default()))
            } else if self.status().is_some() {
                Ok(Framing::UntilClose)
            } else {
                Err(FramingError::RequestCoding(last.clone()))
            };
        }
        let lengths: Vec<&[u8]> = self
            .fields
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.as_slice())
            .collect();
        if let Some(first) = lengths.first() {
            if lengths.iter().any(|l| l != first) {
                return Err(FramingError::ConflictingLengths);
            }
            let text = std::str::from_utf8(first).map_err(|_| FramingError::LengthNotAscii)?;
            let n: u64 = text
                .trim()
                .parse()
                .map_err(|_| FramingError::LengthNotNumber(text.trim().to_string()))?;
            return Ok(if n == 0 {
                Framing::None
            } else {
                Framing::Length(n)
            });
        }
        Ok(if self.status().is_some() {
            Framing::UntilClose
        } else {
            Framing::None
        })
    }
}

/// Why a head's body cannot be delimited ([`Head::framing`]): a request whose body no
/// product could find the end of, or lengths that disagree or do not read. A model answers a
/// request 400 and a response 502, and notes this text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// A request whose last transfer coding, named, is not `chunked` (RFC 9112 §6.3 rule 4).
    #[error("request body transfer coding `{0}` is not chunked")]
    RequestCoding(String),
    /// Content-Length fields with different values (rule 5).
    #[error("conflicting Content-Length fields")]
    ConflictingLengths,
    /// A Content-Length value that is not ASCII.
    #[error("Content-Length is not ASCII")]
    LengthNotAscii,
    /// A Content-Length value, as sent (trimmed), that is not a number.
    #[error("Content-Length `{0}` is not a number")]
    LengthNotNumber(String),
}

impl fmt::Display for Head {
    /// The head as text, one line per field, without the closing empty line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.to_bytes();
        let text = String::from_utf8_lossy(&bytes);
        write!(f, "{}", text.trim_end().replace("\r\n", "\n"))
    }
}

fn comma_list(head: &Head, name: &str) -> Vec<String> {
    head.fields
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| {
            String::from_utf8_lossy(v)
                .split(',')
                .map(|t| t.trim().to_ascii_lowercase())
                .filter(|t| !t.is_empty())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A complete response with a small HTML body and `Connection: close`, as proxies send when
/// they refuse or fail a request.
pub fn error_response(status: u16, reason: &str, body_text: &str) -> Vec<u8> {
    error_response_with(status, reason, body_text, &[])
}

/// The answer of a proxy that handles CONNECT itself to a CONNECT whose authority is a name
/// under `.invalid`: RFC 9110 §9.3.6 has the proxy open the tunnel to the named host, and a
/// name under `.invalid` never resolves (RFC 6761 §6.4), so it answers 502. `None` for any
/// other request. Huang et al.'s CONNECT-based WebSocket handshake (W2SP 2011) names
/// `websocket.invalid:443` for exactly this: a proxy that reads it fails it rather than
/// relaying bytes it does not understand.
pub fn connect_to_invalid(head: &Head) -> Option<Vec<u8>> {
    if !head.method()?.eq_ignore_ascii_case("CONNECT") {
        return None;
    }
    let authority = head.target()?;
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    (host == "invalid" || host.ends_with(".invalid")).then(|| {
        error_response(
            502,
            "Bad Gateway",
            &format!("Cannot resolve {authority}: the tunnel cannot be opened."),
        )
    })
}

/// As [`error_response`], with `extra` fields first after the status line (a 407's
/// `Proxy-Authenticate`, say).
pub fn error_response_with(
    status: u16,
    reason: &str,
    body_text: &str,
    extra: &[(&str, &str)],
) -> Vec<u8> {
    let body = format!("<html><body><h1>{status} {reason}</h1><p>{body_text}</p></body></html>\n");
    let fields: String = extra
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\n{fields}Content-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

/// Standard base64 with padding (RFC 4648 §4).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: server\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nX-Trace: 1\r\nSec-WebSocket-Version: 13\r\n\r\n";

    fn head(bytes: &[u8]) -> Head {
        match parse_request(bytes, 8192) {
            Parsed::Complete(h, len) => {
                assert_eq!(len, bytes.len());
                h
            }
            other => panic!("expected a complete head, got {other:?}"),
        }
    }

    #[test]
    fn only_a_connect_to_a_name_under_invalid_is_answered_502() {
        let connect = |target: &str| {
            head(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes())
        };
        for target in [
            "websocket.invalid:443",
            "WebSocket.INVALID:80",
            "invalid:443",
            "a.invalid.",
        ] {
            let answer = connect_to_invalid(&connect(target)).expect(target);
            assert!(
                answer.starts_with(b"HTTP/1.1 502 Bad Gateway\r\n"),
                "{target}"
            );
        }
        for target in ["server:443", "invalid.example:443", "notinvalid:443"] {
            assert_eq!(connect_to_invalid(&connect(target)), None, "{target}");
        }
        assert_eq!(connect_to_invalid(&head(UPGRADE)), None);
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn connection_is_read_as_a_case_insensitive_comma_list() {
        let h =
            head(b"GET / HTTP/1.1\r\nconnection: , Keep-Alive ,UPGRADE\r\nCONNECTION: x-a\r\n\r\n");
        assert_eq!(h.connection_tokens(), vec!["keep-alive", "upgrade", "x-a"]);
        assert!(h.connection_has("Upgrade"));
    }

    #[test]
    fn strip_removes_connection_the_fields_it_names_and_upgrade() {
        let mut h = head(b"GET / HTTP/1.1\r\nHost: s\r\nConnection: upgrade, x-secret\r\nX-Secret: 1\r\nUpgrade: websocket\r\nKeep-Alive: 5\r\nX-Kept: 2\r\n\r\n");
        let removed = h.strip_hop_by_hop(&[]);
        assert_eq!(
            removed,
            vec!["connection", "x-secret", "upgrade", "keep-alive"]
        );
        assert_eq!(h.fields.len(), 2);
        assert!(h.has("host") && h.has("x-kept"));
    }

    #[test]
    fn serialising_a_parsed_head_gives_the_same_bytes() {
        assert_eq!(head(UPGRADE).to_bytes(), UPGRADE);
    }

    #[test]
    fn partial_and_invalid_heads_are_told_apart() {
        assert_eq!(parse_request(&UPGRADE[..20], 8192), Parsed::Partial);
        assert!(matches!(
            parse_request(&[0x81, 0x85, 1, 2, 3, 4], 8192),
            Parsed::Invalid(_)
        ));
        assert!(matches!(
            parse_request(&UPGRADE[..30], 10),
            Parsed::Invalid(_)
        ));
    }

    #[test]
    fn chunked_scanner_finds_the_end_across_any_split() {
        let body = b"4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        let end = body.len() - 4;
        for split in 0..=end {
            let mut s = ChunkedScanner::default();
            let (a, done_a) = s.scan(&body[..split]).unwrap();
            assert_eq!(a, split);
            assert_eq!(done_a, split == end);
            let (b, done) = if done_a {
                (0, true)
            } else {
                s.scan(&body[split..]).unwrap()
            };
            assert!(done);
            assert_eq!(a + b, end, "split at {split}");
        }
        assert!(ChunkedScanner::default().scan(b"zz\r\n").is_err());
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn field() -> impl Strategy<Value = (String, String)> {
        (
            prop_oneof![
                Just("Connection".to_string()),
                Just("Upgrade".to_string()),
                Just("Keep-Alive".to_string()),
                Just("X-Custom".to_string()),
                Just("Host".to_string()),
                "[A-Za-z][A-Za-z-]{0,8}",
            ],
            prop_oneof![
                Just("upgrade, x-custom".to_string()),
                Just("keep-alive".to_string()),
                "[a-z ,-]{0,12}",
            ],
        )
    }

    /// Pieces of heads, line ends of every kind, and bytes that are not HTTP.
    fn token() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            Just(b"GET / HTTP/1.1".to_vec()),
            Just(b"HTTP/1.1 200 OK".to_vec()),
            Just(b"\r\n".to_vec()),
            Just(b"\n".to_vec()),
            Just(b"\r".to_vec()),
            Just(b"Host: a".to_vec()),
            Just(b"X-Y:z".to_vec()),
            Just(b" ".to_vec()),
            Just(b"\x01".to_vec()),
            Just(b"\x81".to_vec()),
            "[a-z:/ ]{1,6}".prop_map(String::into_bytes),
        ]
    }

    /// A request or response head (whether it is a response, and its bytes) with line ends of
    /// either kind, maybe empty lines before it, and tokens after it.
    fn head_like() -> impl Strategy<Value = (bool, Vec<u8>)> {
        let eol = || prop_oneof![Just(b"\r\n".to_vec()), Just(b"\n".to_vec())];
        (
            any::<bool>(),
            proptest::collection::vec(eol(), 0..2),
            eol(),
            proptest::collection::vec(("[A-Za-z-]{1,8}", "[ -~]{0,12}", eol()), 0..5),
            eol(),
            proptest::collection::vec(token(), 0..3),
        )
            .prop_map(|(response, before, first, fields, last, after)| {
                let mut out: Vec<u8> = before.concat();
                out.extend_from_slice(if response {
                    b"HTTP/1.1 200 OK"
                } else {
                    b"GET /x HTTP/1.1"
                });
                out.extend(first);
                for (name, value, eol) in fields {
                    out.extend(format!("{name}: {value}").into_bytes());
                    out.extend(eol);
                }
                out.extend(last);
                out.extend(after.concat());
                (response, out)
            })
    }

    proptest! {
        /// Stripping hop-by-hop fields twice removes nothing more the second time, and no
        /// field that RFC 9110 calls hop-by-hop survives the first.
        #[test]
        fn stripping_is_idempotent(fields in proptest::collection::vec(field(), 0..12)) {
            let mut text = String::from("GET / HTTP/1.1\r\n");
            for (n, v) in &fields {
                text.push_str(&format!("{n}: {v}\r\n"));
            }
            text.push_str("\r\n");
            let Parsed::Complete(mut head, _) = parse_request(text.as_bytes(), 1 << 16) else {
                return Ok(());
            };
            let named = head.connection_tokens();
            head.strip_hop_by_hop(&[]);
            let once = head.clone();
            prop_assert!(head.strip_hop_by_hop(&[]).is_empty());
            prop_assert_eq!(&head, &once);
            for (n, _) in &once.fields {
                let lower = n.to_ascii_lowercase();
                prop_assert!(!HOP_BY_HOP.contains(&lower.as_str()), "{} survived", n);
                prop_assert!(!named.contains(&lower), "{} was named in Connection", n);
            }
        }

        /// However the bytes are cut, the incremental reader says what httparse says of the
        /// whole buffer: the same head at the same length as soon as httparse finds one
        /// within `max` bytes; `Invalid` only where httparse fails; `Partial` only where it
        /// says `Partial` or fails (a failure is found once the buffer has doubled, or the head
        /// ended); `TooLong` only where the first `max` bytes hold no complete head.
        #[test]
        fn the_incremental_reader_agrees_with_httparse(
            (response, mut bytes) in head_like(),
            noise in proptest::collection::vec((any::<prop::sample::Index>(), token()), 0..3),
            cuts in proptest::collection::vec(1usize..24, 1..8),
            max in 8usize..400,
        ) {
            for (at, token) in noise {
                let at = at.index(bytes.len() + 1);
                bytes.splice(at..at, token);
            }
            let kind = if response { Kind::Response } else { Kind::Request };
            let whole = |buf: &[u8]| match kind {
                Kind::Request => parse_request(buf, usize::MAX),
                Kind::Response => parse_response(buf, usize::MAX),
            };
            let mut reader = HeadReader::new(kind);
            let mut end = 0;
            for cut in cuts.iter().copied().cycle() {
                if end >= bytes.len() {
                    break;
                }
                end = (end + cut).min(bytes.len());
                let buf = &bytes[..end];
                let within = &buf[..buf.len().min(max)];
                let expected = whole(within);
                match reader.read(buf, max) {
                    Progress::Complete(head, len) => {
                        prop_assert_eq!(expected, Parsed::Complete(head, len));
                        break;
                    }
                    Progress::Invalid(_) => {
                        prop_assert!(matches!(whole(buf), Parsed::Invalid(_)), "{:?}", whole(buf));
                        break;
                    }
                    Progress::TooLong => {
                        prop_assert!(buf.len() > max);
                        prop_assert_eq!(expected, Parsed::Partial);
                        break;
                    }
                    Progress::Partial => {
                        prop_assert!(!matches!(expected, Parsed::Complete(..)), "{:?}", expected);
                    }
                }
            }
        }

        /// The parser never panics on arbitrary bytes.
        #[test]
        fn parsing_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_request(&bytes, 256);
            let _ = parse_response(&bytes, 256);
        }
    }
}
