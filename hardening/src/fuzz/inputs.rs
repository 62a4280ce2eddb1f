//! Generators the targets share: HTTP heads that are valid, nearly valid or not at all,
//! WebSocket frames with any header, and byte-level mutations of any of them.

use gauntlet_proxies::ws_frames;
use proptest::prelude::*;

/// Methods, including some no server knows and some that are not tokens.
const METHODS: &[&str] = &[
    "GET", "POST", "HEAD", "PUT", "CONNECT", "OPTIONS", "DELETE", "PATCH", "TRACE", "get",
    "G\u{e9}T", "", "GET GET", "M-SEARCH", "PRI",
];

/// Request targets: origin-form, absolute-form, authority-form, asterisk, and broken ones.
const TARGETS: &[&str] = &[
    "/",
    "/echo",
    "/push?count=3&interval=1&size=8",
    "/echo?fragment=3&close=4000&count=1",
    "/attacker",
    "/script.js",
    "http://server/echo",
    "http://victim/script.js",
    "server:80",
    "127.0.0.1:443",
    "[::1]:80",
    "*",
    "",
    "/a b",
    "/\u{7f}",
    "/%00",
    "server:99999",
    "server:",
    ":80",
];

const VERSIONS: &[&str] = &[
    "HTTP/1.1",
    "HTTP/1.0",
    "HTTP/2.0",
    "HTTP/1.",
    "HTTP/1.12",
    "http/1.1",
    "HTTP/0.9",
    "",
    "HTTP/1.1 ",
];

const STATUSES: &[&str] = &[
    "101 Switching Protocols",
    "200 OK",
    "200 Connection established",
    "204 No Content",
    "304 Not Modified",
    "100 Continue",
    "407 Proxy Authentication Required",
    "426 Upgrade Required",
    "502 Bad Gateway",
    "999 Odd",
    "20 Short",
    "2000 Long",
    "abc Nope",
    "200",
    "200 ",
    "101 Switching Protocols\u{80}",
];

const NAMES: &[&str] = &[
    "Host",
    "Upgrade",
    "Connection",
    "Sec-WebSocket-Key",
    "Sec-WebSocket-Version",
    "Sec-WebSocket-Accept",
    "Sec-WebSocket-Protocol",
    "Sec-WebSocket-Extensions",
    "Content-Length",
    "Transfer-Encoding",
    "Proxy-Connection",
    "Proxy-Authorization",
    "Keep-Alive",
    "TE",
    "Via",
    "Cache-Control",
    "Cookie",
    "Set-Cookie",
    "X-Accel-Buffering",
    "X-Forwarded-For",
    "upgrade",
    "CONNECTION",
    "content-length",
    "Bad Name",
    "",
    "X:Y",
    "X\u{e9}",
];

const VALUES: &[&str] = &[
    "websocket",
    "WebSocket",
    "Upgrade",
    "upgrade, keep-alive",
    "keep-alive, Upgrade",
    "close",
    ", ,upgrade,",
    "server",
    "server:80",
    "127.0.0.1:443",
    "13",
    "8",
    "dGhlIHNhbXBsZSBub25jZQ==",
    "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
    "0",
    "5",
    "-1",
    "18446744073709551616",
    " 12 ",
    "1, 2",
    "chunked",
    "gzip, chunked",
    "chunked, gzip",
    "identity",
    "Basic dXNlcjpwYXNz",
    "1.1 gauntlet",
    "max-age=3600",
    "public, max-age=31536000",
    "no",
    "SRV=s2",
    "",
    " ",
    "a\tb",
    "\u{e9}t\u{e9}",
    "x\u{7f}y",
];

/// A line ending as a sender might write it: CRLF mostly, sometimes LF alone or a stray CR.
fn eol() -> impl Strategy<Value = &'static str> {
    prop_oneof![8 => Just("\r\n"), 2 => Just("\n"), 1 => Just("\r"), 1 => Just("\r\r\n"), 1 => Just("\n\r")]
}

/// A header field line's name and value, with the separator a sender might use.
fn field() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        6 => prop::sample::select(NAMES).prop_map(str::to_string),
        1 => "[!-~]{0,12}",
    ];
    let value = prop_oneof![
        6 => prop::sample::select(VALUES).prop_map(str::to_string),
        1 => "[ -~]{0,40}",
        1 => "\\PC{0,10}",
    ];
    let sep = prop_oneof![8 => Just(": "), 1 => Just(":"), 1 => Just(" : "), 1 => Just(":\t")];
    (name, sep, value).prop_map(|(n, s, v)| format!("{n}{s}{v}"))
}

/// A request or status line.
fn start_line(request: bool) -> BoxedStrategy<String> {
    if request {
        (
            prop::sample::select(METHODS),
            prop::sample::select(TARGETS),
            prop::sample::select(VERSIONS),
        )
            .prop_map(|(m, t, v)| format!("{m} {t} {v}"))
            .boxed()
    } else {
        (
            prop::sample::select(&["HTTP/1.1", "HTTP/1.0", "HTTP/1.1", "HTTP/2", "HTTP/1.1 "]),
            prop::sample::select(STATUSES),
        )
            .prop_map(|(v, s)| format!("{v} {s}"))
            .boxed()
    }
}

/// A well-formed head: a request line or status line from the usual ones, fields from the
/// usual names and values, CRLF line ends, the empty line; sometimes a body after it.
pub fn clean_head(request: bool) -> impl Strategy<Value = Vec<u8>> {
    let start = if request {
        (
            prop::sample::select(&["GET", "POST", "HEAD", "CONNECT", "OPTIONS"]),
            prop::sample::select(&TARGETS[..12]),
            prop::sample::select(&["HTTP/1.1", "HTTP/1.0"]),
        )
            .prop_map(|(m, t, v)| format!("{m} {t} {v}"))
            .boxed()
    } else {
        (
            prop::sample::select(&["HTTP/1.1", "HTTP/1.0"]),
            prop::sample::select(&STATUSES[..9]),
        )
            .prop_map(|(v, s)| format!("{v} {s}"))
            .boxed()
    };
    let field = (
        prop::sample::select(&NAMES[..21]),
        prop::sample::select(&VALUES[..30]),
    )
        .prop_map(|(n, v)| format!("{n}: {v}\r\n"));
    (
        start,
        prop::collection::vec(field, 0..8),
        prop::collection::vec(any::<u8>(), 0..16),
    )
        .prop_map(|(start, fields, body)| {
            let mut out = format!("{start}\r\n{}\r\n", fields.concat()).into_bytes();
            out.extend(body);
            out
        })
}

/// An HTTP head, request or response: well formed, or more or less broken (odd line ends,
/// names and values, unfinished), possibly with a body or the next message after it.
pub fn head(request: bool) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![clean_head(request).boxed(), rough_head(request).boxed()]
}

fn rough_head(request: bool) -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(eol(), 0..2),
        start_line(request),
        prop::collection::vec((field(), eol()), 0..10),
        eol(),
        eol(),
        prop_oneof![3 => Just(true), 1 => Just(false)],
        prop::collection::vec(any::<u8>(), 0..24),
    )
        .prop_map(|(lead, start, fields, end1, end2, finished, tail)| {
            let mut out = lead.concat();
            out.push_str(&start);
            out.push_str(end1);
            for (f, e) in fields {
                out.push_str(&f);
                out.push_str(e);
            }
            if finished {
                out.push_str(end2);
            }
            let mut bytes = out.into_bytes();
            bytes.extend(tail);
            bytes
        })
}

/// One byte-level change to a buffer.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Flip bits of the byte at (position modulo length).
    Flip(usize, u8),
    /// Insert a byte.
    Insert(usize, u8),
    /// Remove up to `n` bytes.
    Remove(usize, usize),
    /// Repeat a span.
    Repeat(usize, usize),
    /// Keep only a prefix.
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..).prop_map(|(p, b)| Mutation::Flip(p, b)),
        (
            any::<usize>(),
            prop_oneof![
                any::<u8>(),
                prop::sample::select(b"\r\n:; \t,\0\x80".as_slice())
            ]
        )
            .prop_map(|(p, b)| Mutation::Insert(p, b)),
        (any::<usize>(), 1usize..8).prop_map(|(p, n)| Mutation::Remove(p, n)),
        (any::<usize>(), 1usize..16).prop_map(|(p, n)| Mutation::Repeat(p, n)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

/// Applies `m` to `bytes`.
pub fn mutate(bytes: &mut Vec<u8>, m: &Mutation) {
    let len = bytes.len();
    let at = |p: usize| if len == 0 { 0 } else { p % len };
    match *m {
        Mutation::Flip(p, b) if len > 0 => bytes[at(p)] ^= b,
        Mutation::Flip(..) => {}
        Mutation::Insert(p, b) => bytes.insert(if len == 0 { 0 } else { p % (len + 1) }, b),
        Mutation::Remove(p, n) if len > 0 => {
            let s = at(p);
            bytes.drain(s..(s + n).min(len));
        }
        Mutation::Remove(..) => {}
        Mutation::Repeat(p, n) if len > 0 => {
            let s = at(p);
            let span = bytes[s..(s + n).min(len)].to_vec();
            bytes.splice(s..s, span);
        }
        Mutation::Repeat(..) => {}
        Mutation::Truncate(p) => bytes.truncate(if len == 0 { 0 } else { p % (len + 1) }),
    }
}

/// `base`'s bytes with up to `most` mutations applied (none, often).
pub fn mutated<S: Strategy<Value = Vec<u8>>>(
    base: S,
    most: usize,
) -> impl Strategy<Value = Vec<u8>> {
    (
        base,
        prop_oneof![
            2 => Just(Vec::new()),
            1 => prop::collection::vec(mutation(), 1..=most.max(1)),
        ],
    )
        .prop_map(|(mut bytes, ms)| {
            for m in &ms {
                mutate(&mut bytes, m);
            }
            bytes
        })
}

/// A WebSocket frame header with any bits, and a payload that may be shorter or longer than
/// the header says.
pub fn frame() -> impl Strategy<Value = Vec<u8>> {
    let len = prop_oneof![
        4 => 0u64..=130,
        1 => prop::sample::select(&[125u64, 126, 127, 65_535, 65_536, 16 << 20, (16 << 20) + 1, u64::MAX / 2, u64::MAX]),
        1 => any::<u64>(),
    ];
    let encoding = prop_oneof![Just(None), Just(Some(126u8)), Just(Some(127u8))];
    (
        any::<u8>(),
        any::<bool>(),
        len,
        encoding,
        any::<[u8; 4]>(),
        prop::collection::vec(any::<u8>(), 0..160),
        prop_oneof![3 => Just(true), 1 => Just(false)],
    )
        .prop_map(|(b0, masked, len, encoding, mask, payload, exact)| {
            let mut out = vec![b0];
            let bit = if masked { 0x80 } else { 0 };
            match encoding {
                None if len < 126 => out.push(bit | len as u8),
                Some(126) | None if len <= u64::from(u16::MAX) => {
                    out.push(bit | 126);
                    out.extend_from_slice(&(len as u16).to_be_bytes());
                }
                _ => {
                    out.push(bit | 127);
                    out.extend_from_slice(&len.to_be_bytes());
                }
            }
            if masked {
                out.extend_from_slice(&mask);
            }
            if exact && len <= 160 {
                let mut p = payload;
                p.resize(len as usize, 0xAB);
                out.extend(p);
            } else {
                out.extend(payload);
            }
            out
        })
}

/// A well-formed final frame (RFC 6455 §5.2) with a known opcode.
pub fn valid_frame(masked: bool) -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(&[0x1u8, 0x2, 0x8, 0x9, 0xA]),
        prop::collection::vec(any::<u8>(), 0..300),
        any::<[u8; 4]>(),
    )
        .prop_map(move |(op, mut payload, mask)| {
            if op >= 0x8 {
                payload.truncate(125);
            }
            ws_frames::encode(op, &payload, masked.then_some(mask))
        })
}

/// Cut points: piece lengths to deliver a stream in, mostly small.
pub fn cuts() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(
        prop_oneof![4 => 1usize..=8, 2 => 9usize..=200, 1 => 201usize..=5000],
        1..24,
    )
}

/// `bytes` cut into pieces of the lengths in `cuts`, cycled.
pub fn pieces<'a>(bytes: &'a [u8], cuts: &'a [usize]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = bytes;
    let mut lens = cuts.iter().copied().cycle();
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = lens.next().unwrap_or(rest.len()).clamp(1, rest.len());
        let (piece, tail) = rest.split_at(n);
        rest = tail;
        Some(piece)
    })
}

/// Bytes as text for a report: printable ASCII as is, the rest escaped, in Rust byte-string
/// syntax so the input can be pasted into a test.
pub fn show_bytes(bytes: &[u8]) -> String {
    let mut out = String::from("b\"");
    for &b in bytes {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
    out.push_str(&format!(" ({} bytes)", bytes.len()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_stay_in_bounds_on_empty_and_short_buffers() {
        for m in [
            Mutation::Flip(5, 1),
            Mutation::Insert(9, 1),
            Mutation::Remove(3, 7),
            Mutation::Repeat(2, 15),
            Mutation::Truncate(100),
        ] {
            for len in 0..4 {
                let mut b = vec![7u8; len];
                mutate(&mut b, &m);
            }
        }
    }

    #[test]
    fn pieces_cover_the_bytes_in_order() {
        let bytes: Vec<u8> = (0..100).collect();
        let joined: Vec<u8> = pieces(&bytes, &[3, 0, 50]).flatten().copied().collect();
        assert_eq!(joined, bytes);
    }

    #[test]
    fn bytes_show_as_a_byte_string() {
        assert_eq!(
            show_bytes(b"GET /\r\n\x00\""),
            "b\"GET /\\r\\n\\x00\\\"\" (9 bytes)"
        );
    }
}
