//! permessage-deflate (RFC 7692), end to end through the intermediaries
//! (`[client.request] permessage-deflate`): the client offers the extension, the reference
//! server accepts it when the query asks (`deflate=1`), and every message then goes
//! compressed both ways, RSV1 set on its first frame (RFC 7692 §6). An intermediary that drops
//! the offer or the acceptance, or passes one and not the other, or touches the frames
//! (clearing RSV1, or decompressing without saying so) breaks the session.
//!
//! Neither side keeps a compression context between messages (`server_no_context_takeover`,
//! `client_no_context_takeover`, RFC 7692 §7.1.1), so each message stands alone. tungstenite
//! has no compression, so both ends read and write these frames by hand ([`echo`] is the
//! server's loop; the client's is in the client's session).

use std::io::Write;

use flate2::write::DeflateEncoder;
use flate2::{Compression, Decompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::endpoints::frames::{Decoded, Frame, decode_with};
use crate::engine::NetRef;
use crate::verdict::transcript::Transcript;
use gauntlet_proxies::ws_frames::{encode, opcode};

/// The query parameter that asks the server to accept the extension.
pub const PARAM: &str = "deflate";

/// The extension's name.
pub const NAME: &str = "permessage-deflate";

/// The client's offer: neither side keeps its context.
pub const OFFER: &str =
    "permessage-deflate; client_no_context_takeover; server_no_context_takeover";

/// The server's acceptance of [`OFFER`].
pub const ACCEPT: &str =
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

/// The most a message may inflate to: what the scenario format allows a payload.
pub const MAX_MESSAGE: usize = crate::scenario::MAX_PAYLOAD_BYTES;

/// The longest message `permessage-deflate` may send: each goes in one frame, which the frame
/// reader takes up to 1 MiB, and data that does not compress grows a little.
pub const MAX_PAYLOAD: usize = 512 * 1024;

/// The four bytes a sync flush ends with, which the sender removes and the receiver puts
/// back (RFC 7692 §7.2.1, §7.2.2).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// What is wrong with a compressed message, or with the bytes a frame was read from.
#[derive(Debug, thiserror::Error)]
pub enum DeflateError {
    /// The payload is not DEFLATE data.
    #[error("not DEFLATE data: {0}")]
    NotDeflate(#[from] flate2::DecompressError),
    /// The payload stops before its data does.
    #[error("not DEFLATE data: it stops short")]
    Short,
    /// The payload inflates beyond the limit.
    #[error("inflates beyond {0} bytes")]
    TooLarge(usize),
    /// The bytes are not a WebSocket frame.
    #[error("{0}")]
    NotAFrame(String),
    /// Reading failed.
    #[error("read failed: {0}")]
    Read(#[from] std::io::Error),
}

/// The bit a compressed message's first frame carries.
pub const RSV1: u8 = 0x40;

/// Whether a query asks the server to accept the extension.
pub fn asked(query: &str) -> bool {
    query.split('&').any(|pair| pair == format!("{PARAM}=1"))
}

/// Whether an offer (a `Sec-WebSocket-Extensions` value) names permessage-deflate with no
/// parameter the server cannot honour (it accepts the no-context-takeover ones alone).
pub fn offered(value: &str) -> bool {
    value.split(',').any(|offer| {
        let mut parts = offer.split(';').map(str::trim);
        parts.next().is_some_and(|n| n.eq_ignore_ascii_case(NAME))
            && parts.all(|p| {
                p.eq_ignore_ascii_case("client_no_context_takeover")
                    || p.eq_ignore_ascii_case("server_no_context_takeover")
            })
    })
}

/// What is wrong with a 101's `Sec-WebSocket-Extensions` values after the client offered
/// [`OFFER`], or `None`: it must accept permessage-deflate, with `server_no_context_takeover`
/// (a server accepting that parameter must name it, RFC 7692 §7.1.1.1) and nothing else but
/// `client_no_context_takeover`.
pub fn acceptance_wrong(values: &[String]) -> Option<String> {
    let named: Vec<&str> = values
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    let [one] = named.as_slice() else {
        return Some(if named.is_empty() {
            "no `Sec-WebSocket-Extensions`, though the client offered permessage-deflate (the \
             offer did not reach the server, or its acceptance did not come back)"
                .to_string()
        } else {
            format!("more than one extension (`{}`)", named.join(", "))
        });
    };
    let mut parts = one.split(';').map(str::trim);
    if !parts.next().is_some_and(|n| n.eq_ignore_ascii_case(NAME)) {
        return Some(format!("an extension the client did not offer (`{one}`)"));
    }
    let params: Vec<&str> = parts.collect();
    if let Some(p) = params.iter().find(|p| {
        !p.eq_ignore_ascii_case("server_no_context_takeover")
            && !p.eq_ignore_ascii_case("client_no_context_takeover")
    }) {
        return Some(format!(
            "a parameter the client did not offer (`{p}` in `{one}`)"
        ));
    }
    if !params
        .iter()
        .any(|p| p.eq_ignore_ascii_case("server_no_context_takeover"))
    {
        return Some(format!(
            "no `server_no_context_takeover` in `{one}`, which the client offered"
        ));
    }
    None
}

/// `data` compressed as a message's payload: DEFLATE, sync-flushed, the flush's last four
/// bytes removed (RFC 7692 §7.2.1).
pub fn compress(data: &[u8]) -> Vec<u8> {
    let mut encoder = DeflateEncoder::new(Vec::new(), Compression::default());
    // Writing to and flushing into a Vec cannot fail.
    let _ = encoder.write_all(data);
    let _ = encoder.flush();
    let mut out = encoder.get_ref().clone();
    if out.ends_with(&TAIL) {
        out.truncate(out.len() - TAIL.len());
    }
    out
}

/// A compressed message's payload inflated (RFC 7692 §7.2.2), or what is wrong with it: not
/// DEFLATE, or inflating beyond `limit` bytes.
pub fn decompress(payload: &[u8], limit: usize) -> Result<Vec<u8>, DeflateError> {
    let mut input = payload.to_vec();
    input.extend_from_slice(&TAIL);
    let mut inflate = Decompress::new(false);
    let mut out: Vec<u8> = Vec::with_capacity((payload.len() * 4).clamp(1, limit + 1));
    loop {
        if out.len() == out.capacity() {
            out.reserve(out.capacity().min(limit + 1 - out.len().min(limit)).max(1));
        }
        let (was_in, was_out) = (inflate.total_in(), inflate.total_out());
        let used = was_in as usize;
        let status = inflate.decompress_vec(&input[used..], &mut out, FlushDecompress::Sync)?;
        if out.len() > limit {
            return Err(DeflateError::TooLarge(limit));
        }
        let all_in = inflate.total_in() as usize == input.len();
        if status == Status::StreamEnd || (all_in && out.len() < out.capacity()) {
            return Ok(out);
        }
        if (inflate.total_in(), inflate.total_out()) == (was_in, was_out) {
            return if all_in {
                Ok(out)
            } else {
                Err(DeflateError::Short)
            };
        }
    }
}

/// A final data frame with `op` carrying `data` compressed (RSV1 set), masked with `mask`
/// if given.
pub fn frame(op: u8, data: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut frame = encode(op, &compress(data), mask);
    frame[0] |= RSV1;
    frame
}

/// Reads the next frame from `io` into `buf`, RSV1 allowed: `Ok(None)` at the connection's
/// end, `Err` with what is wrong for bytes that are not a frame or a failed read.
pub async fn read_frame<S: AsyncRead + Unpin>(
    io: &mut S,
    buf: &mut Vec<u8>,
) -> Result<Option<Frame>, DeflateError> {
    loop {
        match decode_with(buf, true) {
            Decoded::Frame(frame, used) => {
                buf.drain(..used);
                return Ok(Some(frame));
            }
            Decoded::Invalid(why) => return Err(DeflateError::NotAFrame(why)),
            Decoded::Partial => {}
        }
        let mut chunk = [0u8; 16 * 1024];
        match io.read(&mut chunk).await {
            Ok(0) => return Ok(None),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(DeflateError::Read(e)),
        }
    }
}

/// The server's `/echo` with the extension accepted: each message (fragmented or not) is
/// inflated if its first frame has RSV1, checked (text must be UTF-8), and sent back whole
/// and compressed; a Ping is answered; a Close is answered with its code and the connection
/// ends. A client that breaks the protocol gets a Close with 1002 (bytes that are not a
/// frame, an unmasked frame) or 1007 (data that does not inflate, text that is not UTF-8).
pub async fn echo<S: AsyncRead + AsyncWrite + Unpin>(mut io: S, net: NetRef, t: Transcript) {
    let log = |what: String| t.log(net.now(), net.host(), what);
    let mut buf = Vec::new();
    let mut message: Option<(u8, bool, Vec<u8>)> = None;
    let end = loop {
        let read = match read_frame(&mut io, &mut buf).await {
            Ok(Some(read)) => read,
            Ok(None) => break "the client's connection ended".to_string(),
            Err(why) => break fail(&mut io, 1002, &why.to_string()).await,
        };
        // RFC 6455 §5.3: a client's frames are masked; §5.5: control frames whole, short and
        // without RSV1; §5.4: a continuation only inside a message, a new message only
        // outside one; RFC 7692 §6.1: RSV1 only on a message's first frame.
        let control = read.opcode >= 0x8;
        let wrong = if !read.masked {
            Some("an unmasked frame")
        } else if control && (!read.fin || read.rsv1 || read.payload.len() > 125) {
            Some("a control frame fragmented, over 125 bytes or with RSV1")
        } else if !control && message.is_some() != (read.opcode == 0) {
            Some("a continuation frame outside a message, or a new message inside one")
        } else if read.opcode == 0 && read.rsv1 {
            Some("RSV1 on a continuation frame")
        } else {
            None
        };
        if let Some(why) = wrong {
            break fail(&mut io, 1002, why).await;
        }
        match read.opcode {
            0x9 => {
                let _ = io.write_all(&encode(0xA, &read.payload, None)).await;
                continue;
            }
            0xA => continue,
            opcode::CLOSE => {
                // The reply carries the Close's code and reason back, as tungstenite's does.
                let code = read
                    .payload
                    .get(..2)
                    .map_or(1000, |c| u16::from_be_bytes([c[0], c[1]]));
                let _ = io
                    .write_all(&encode(opcode::CLOSE, &read.payload, None))
                    .await;
                log(format!("close {code} received, replying"));
                break "websocket closed".to_string();
            }
            _ => {}
        }
        let (op, compressed, payload) = message.get_or_insert((read.opcode, read.rsv1, Vec::new()));
        payload.extend_from_slice(&read.payload);
        if payload.len() > MAX_MESSAGE {
            break fail(&mut io, 1009, "a message beyond the most the server takes").await;
        }
        if !read.fin {
            continue;
        }
        let (op, compressed, payload) = (*op, *compressed, std::mem::take(payload));
        message = None;
        let data = if compressed {
            match decompress(&payload, MAX_MESSAGE) {
                Ok(data) => data,
                Err(why) => break fail(&mut io, 1007, &why.to_string()).await,
            }
        } else {
            payload.clone()
        };
        if op == opcode::TEXT && std::str::from_utf8(&data).is_err() {
            break fail(&mut io, 1007, "text that is not UTF-8").await;
        }
        let reply = frame(op, &data, None);
        if let Err(e) = io.write_all(&reply).await {
            break format!("echo failed: {e}");
        }
        let how = if compressed {
            "compressed"
        } else {
            "uncompressed"
        };
        log(format!(
            "echoed {} bytes ({} {how} in, a {}-byte compressed frame out)",
            data.len(),
            payload.len(),
            reply.len()
        ));
    };
    let _ = io.shutdown().await;
    log(end);
}

/// Fails the connection with a Close carrying `code`; says why, for the transcript.
async fn fail<S: AsyncWrite + Unpin>(io: &mut S, code: u16, why: &str) -> String {
    let _ = io
        .write_all(&encode(opcode::CLOSE, &code.to_be_bytes(), None))
        .await;
    format!("websocket error: {why}: close {code} sent, closing")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_the_rfc_example_inflates() {
        // RFC 7692 §7.2.3.1: "Hello", compressed, sync-flushed, tail removed.
        let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        assert_eq!(decompress(&hello, 100).unwrap(), b"Hello");
        // §7.2.3.4: a block with BFINAL set, then the empty block's first byte.
        let bfinal = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
        assert_eq!(decompress(&bfinal, 100).unwrap(), b"Hello");
        let random: Vec<u8> = (0..70_000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        for data in [&b""[..], b"a", &[7u8; 100_000], &random] {
            let packed = compress(data);
            assert!(!packed.ends_with(&TAIL), "{packed:?}");
            assert_eq!(decompress(&packed, MAX_MESSAGE).unwrap(), data);
        }
        assert!(compress(&[7u8; 100_000]).len() < 1000);
        let big = decompress(&compress(&[7u8; 100_000]), 1000).unwrap_err();
        assert!(big.to_string().contains("beyond 1000"), "{big}");
        assert!(decompress(&[0xff, 0xff, 0xff], 100).is_err());
    }

    #[test]
    fn the_offer_and_the_acceptance_are_read_as_rfc_7692_has_them() {
        assert!(offered(OFFER));
        assert!(offered("x-other, permessage-deflate"));
        assert!(!offered("permessage-deflate; client_max_window_bits"));
        assert!(!offered("x-webkit-deflate-frame"));
        assert!(asked("count=2&deflate=1"));
        assert_eq!(acceptance_wrong(&[ACCEPT.to_string()]), None);
        assert_eq!(
            acceptance_wrong(&["permessage-deflate; server_no_context_takeover".to_string()]),
            None
        );
        let wrong = |v: &str| acceptance_wrong(&[v.to_string()]).unwrap_or_default();
        assert!(wrong("permessage-deflate").contains("no `server_no_context_takeover`"));
        assert!(wrong("x-foo").contains("did not offer"));
        assert!(
            wrong("permessage-deflate; server_no_context_takeover; server_max_window_bits=10")
                .contains("a parameter the client did not offer")
        );
        assert!(
            acceptance_wrong(&[])
                .unwrap_or_default()
                .contains("no `Sec-WebSocket-Extensions`")
        );
    }

    #[test]
    fn a_compressed_frame_has_rsv1_and_reads_back() {
        let bytes = frame(opcode::TEXT, b"hello hello hello", Some([1, 2, 3, 4]));
        assert_eq!(bytes[0], 0x80 | RSV1 | opcode::TEXT);
        let Decoded::Frame(f, used) = decode_with(&bytes, true) else {
            panic!("a frame");
        };
        assert_eq!(used, bytes.len());
        assert!(f.rsv1 && f.fin && f.masked);
        assert_eq!(decompress(&f.payload, 100).unwrap(), b"hello hello hello");
        assert!(matches!(
            crate::endpoints::frames::decode(&bytes),
            Decoded::Invalid(_)
        ));
    }
}
