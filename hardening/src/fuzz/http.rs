//! `http-head` and `http-chunked`: the HTTP reading every model shares
//! (`gauntlet_proxies::http`).
//!
//! `http-head` feeds heads (well formed, nearly, or not at all, then mutated byte by byte) to
//! the parsers and to `HeadReader` in pieces, and holds them to: no panic; a parsed head
//! written back out parses to itself; the head's accessors and `framing` answer; and the
//! reader, however the bytes are cut, says what parsing everything received so far says
//! (complete with the same head and length within the limit, invalid only for bytes the
//! parser calls invalid, too long only past the limit).
//!
//! `http-chunked` feeds chunked bodies (valid, mutated or random) to `ChunkedScanner` whole
//! and in pieces: the same end, or the same refusal, either way; a valid body ends exactly
//! where it was written to.

use gauntlet_proxies::http::{
    self, ChunkedScanner, Head, HeadReader, Kind, MAX_HEAD_BYTES, Parsed, Progress,
};
use proptest::prelude::*;

use super::inputs::{self, cuts, pieces, show_bytes};
use super::runner::Checked;

/// One `http-head` case.
#[derive(Debug, Clone)]
pub struct HeadCase {
    request: bool,
    bytes: Vec<u8>,
    /// The head limit: `None` for [`MAX_HEAD_BYTES`], else this modulo the length plus 8.
    limit: Option<usize>,
    cuts: Vec<usize>,
}

impl HeadCase {
    fn max(&self) -> usize {
        self.limit
            .map_or(MAX_HEAD_BYTES, |l| l % (self.bytes.len() + 8))
    }
}

pub fn head_case() -> impl Strategy<Value = HeadCase> {
    any::<bool>().prop_flat_map(|request| {
        let bytes = prop_oneof![
            8 => inputs::mutated(inputs::head(request), 4),
            1 => prop::collection::vec(any::<u8>(), 0..200),
            1 => inputs::mutated(inputs::head(!request), 2),
        ];
        (
            bytes,
            prop_oneof![3 => Just(None), 1 => any::<usize>().prop_map(Some)],
            cuts(),
        )
            .prop_map(move |(bytes, limit, cuts)| HeadCase {
                request,
                bytes,
                limit,
                cuts,
            })
    })
}

pub fn show_head(c: &HeadCase) -> String {
    format!(
        "{} head, limit {}, cut into pieces of {:?}:\n{}",
        if c.request { "request" } else { "response" },
        c.max(),
        c.cuts,
        show_bytes(&c.bytes)
    )
}

fn parse(request: bool, buf: &[u8], max: usize) -> Parsed {
    if request {
        http::parse_request(buf, max)
    } else {
        http::parse_response(buf, max)
    }
}

/// What a caller does with a parsed head: every accessor, as the models use them.
fn exercise(head: &Head) -> Result<(), String> {
    let _ = (
        head.get("host"),
        head.has("upgrade"),
        head.status(),
        head.method(),
    );
    let tokens = head.connection_tokens();
    let _ = head.connection_has("upgrade");
    for method in [None, Some("GET"), Some("HEAD"), Some("CONNECT")] {
        let _ = head.framing(method);
    }
    let _ = head.to_string();
    let mut stripped = head.clone();
    stripped.strip_hop_by_hop(&["transfer-encoding"]);
    for (name, _) in &stripped.fields {
        let lower = name.to_ascii_lowercase();
        let hop = http::HOP_BY_HOP.contains(&lower.as_str()) && lower != "transfer-encoding";
        if hop || (tokens.contains(&lower) && lower != "transfer-encoding") {
            return Err(format!(
                "strip_hop_by_hop left `{name}` in place (Connection lists {tokens:?})"
            ));
        }
    }
    let mut downgraded = head.clone();
    downgraded.set_minor(0);
    let _ = downgraded.to_bytes();
    Ok(())
}

pub fn check_head(c: &HeadCase) -> Checked {
    let max = c.max();
    let label = match parse(c.request, &c.bytes, max) {
        Parsed::Complete(head, len) => {
            if len > c.bytes.len() {
                return Err(format!(
                    "a complete head of {len} bytes in a {}-byte buffer",
                    c.bytes.len()
                ));
            }
            let written = head.to_bytes();
            match parse(c.request, &written, usize::MAX) {
                Parsed::Complete(again, n) if again == head && n == written.len() => {}
                other => {
                    return Err(format!(
                        "the parsed head written back out ({}) parses as {other:?}, not as itself: {head:?}",
                        show_bytes(&written)
                    ));
                }
            }
            exercise(&head)?;
            "complete"
        }
        Parsed::Partial => "partial",
        Parsed::Invalid(reason) if reason.is_empty() => {
            return Err("invalid, with an empty reason".into());
        }
        Parsed::Invalid(_) => "invalid",
    };
    check_reader(c, max)?;
    Ok(label)
}

/// `HeadReader` over the bytes in pieces agrees with parsing everything received so far.
fn check_reader(c: &HeadCase, max: usize) -> Result<(), String> {
    let kind = if c.request {
        Kind::Request
    } else {
        Kind::Response
    };
    let mut reader = HeadReader::new(kind);
    let mut buf: Vec<u8> = Vec::new();
    for piece in pieces(&c.bytes, &c.cuts) {
        buf.extend_from_slice(piece);
        let got = reader.read(&buf, max);
        let reference = parse(c.request, &buf, usize::MAX);
        let fits = matches!(&reference, Parsed::Complete(_, n) if *n <= max);
        let at = buf.len();
        match got {
            Progress::Complete(head, n) => {
                if n > max || reference != Parsed::Complete(head.clone(), n) {
                    return Err(format!(
                        "after {at} bytes the reader found a complete head of {n} bytes (limit {max}), parsing them gives {reference:?}"
                    ));
                }
                return Ok(());
            }
            Progress::Invalid(reason) => {
                if !matches!(reference, Parsed::Invalid(_)) {
                    return Err(format!(
                        "after {at} bytes the reader said invalid ({reason}), parsing them gives {reference:?}"
                    ));
                }
                return Ok(());
            }
            Progress::TooLong => {
                let first = parse(c.request, &buf[..max.min(at)], usize::MAX);
                if at <= max || fits || matches!(first, Parsed::Invalid(_)) {
                    return Err(format!(
                        "after {at} bytes the reader said too long (limit {max}), parsing them gives {reference:?}, the first {max} {first:?}"
                    ));
                }
                return Ok(());
            }
            Progress::Partial => {
                if fits || at > max {
                    return Err(format!(
                        "after {at} bytes the reader still waits (limit {max}), parsing them gives {reference:?}"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// One `http-chunked` case: a body, where a valid one ends (if it is valid), and the cuts.
#[derive(Debug, Clone)]
pub struct ChunkedCase {
    body: Vec<u8>,
    ends_at: Option<usize>,
    cuts: Vec<usize>,
}

/// A chunked body as a sender writes it: chunks, a last chunk, trailers, the empty line.
fn chunked_body() -> impl Strategy<Value = Vec<u8>> {
    let chunk = (
        prop::collection::vec(any::<u8>(), 1..80),
        prop_oneof![3 => Just(""), 1 => Just(";ext=1"), 1 => Just(" ; a"), 1 => Just("\t")],
        any::<bool>(),
    );
    (
        prop::collection::vec(chunk, 0..5),
        prop_oneof![2 => Just(Vec::new()), 1 => prop::collection::vec("[A-Za-z-]{1,8}: [ -~]{0,10}", 1..3)],
        prop_oneof![Just("0"), Just("000"), Just("0;last")],
    )
        .prop_map(|(chunks, trailers, last)| {
            let mut out = Vec::new();
            for (data, ext, upper) in chunks {
                let size = if upper {
                    format!("{:X}", data.len())
                } else {
                    format!("{:x}", data.len())
                };
                out.extend_from_slice(format!("{size}{ext}\r\n").as_bytes());
                out.extend_from_slice(&data);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(format!("{last}\r\n").as_bytes());
            for t in trailers {
                out.extend_from_slice(format!("{t}\r\n").as_bytes());
            }
            out.extend_from_slice(b"\r\n");
            out
        })
}

pub fn chunked_case() -> impl Strategy<Value = ChunkedCase> {
    let valid =
        (chunked_body(), prop::collection::vec(any::<u8>(), 0..16)).prop_map(|(body, tail)| {
            let end = body.len();
            let mut bytes = body;
            bytes.extend(tail);
            (bytes, Some(end))
        });
    let broken = prop_oneof![
        inputs::mutated(chunked_body(), 3),
        prop::collection::vec(any::<u8>(), 0..64),
        "[0-9a-fA-F;\r\n xz]{0,40}".prop_map(String::into_bytes),
    ]
    .prop_map(|b| (b, None));
    (prop_oneof![2 => valid, 3 => broken], cuts()).prop_map(|((body, ends_at), cuts)| ChunkedCase {
        body,
        ends_at,
        cuts,
    })
}

pub fn show_chunked(c: &ChunkedCase) -> String {
    format!(
        "body (valid, ending at {:?}), cut into pieces of {:?}:\n{}",
        c.ends_at,
        c.cuts,
        show_bytes(&c.body)
    )
}

pub fn check_chunked(c: &ChunkedCase) -> Checked {
    let whole = ChunkedScanner::default().scan(&c.body);
    if let Some(end) = c.ends_at {
        if whole != Ok((end, true)) {
            return Err(format!("a valid body of {end} bytes scanned as {whole:?}"));
        }
    }
    let mut scanner = ChunkedScanner::default();
    let mut used = 0;
    let mut pieced: Result<(usize, bool), gauntlet_proxies::http::ChunkError> = Ok((0, false));
    for piece in pieces(&c.body, &c.cuts) {
        match scanner.scan(piece) {
            Ok((n, done)) => {
                if n > piece.len() || (!done && n != piece.len()) {
                    return Err(format!(
                        "scanning a {}-byte piece used {n} bytes without ending the body",
                        piece.len()
                    ));
                }
                used += n;
                pieced = Ok((used, done));
                if done {
                    break;
                }
            }
            Err(e) => {
                pieced = Err(e);
                break;
            }
        }
    }
    match (&whole, &pieced) {
        (Ok(a), Ok(b)) if a == b => Ok(if a.1 { "ended" } else { "unfinished" }),
        (Err(_), Err(_)) => Ok("refused"),
        _ => Err(format!("scanned whole: {whole:?}; in pieces: {pieced:?}")),
    }
}
