//! A request body sent with the upgrade request (`[client.request] body-bytes`): content
//! before the protocol switch, which the server must read whole before its 101 and which must
//! not be taken for the first WebSocket bytes. RFC 9112 §6.3 frames it (`Content-Length`), and
//! the new protocol starts once the request has ended (RFC 9110 §7.8; RFC 7540 §3.2 says the
//! same of an h2c upgrade: content is sent in its entirety before the new protocol's frames).
//! A proxy that forwards the head and not the body, or tunnels from the end of the head, loses
//! it or hands it to the server as frames.
//!
//! The client sends [`bytes`] of the length asked and names the length in the query
//! (`expect-body=N`: [`param`]); the reference server reads the body (at most [`MAX_BYTES`])
//! before it answers and refuses one that did not arrive as sent with 403, saying how
//! ([`not_as_sent`]).

/// The query parameter's name.
pub const PARAM: &str = "expect-body";

/// The longest body a request may carry, in bytes, and the most `body-bytes` may be: the
/// reference server refuses a longer `Content-Length` with 413 without reading the body, and a
/// chunked body that runs past it with 400 once it has read this much.
pub const MAX_BYTES: usize = 65_536;

/// `expect-body=N`.
pub fn param(len: usize) -> String {
    format!("{PARAM}={len}")
}

/// The body of `len` bytes the client sends: lines of printable ASCII, each ending in a line
/// feed, numbered so that a lost or repeated piece shows where.
pub fn bytes(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut line = 0u32;
    while out.len() < len {
        let text = format!("body line {line:05} {}\n", "x".repeat(40));
        out.extend_from_slice(text.as_bytes());
        line += 1;
    }
    out.truncate(len);
    out
}

/// What is wrong with `body`, as it arrived, for a request whose query is `query`: the line
/// the refusal's body carries; `None` when the query asks for no body or it arrived as sent.
pub fn not_as_sent(query: &str, body: &[u8]) -> Option<String> {
    let asked = query
        .split('&')
        .find_map(|pair| pair.strip_prefix(PARAM)?.strip_prefix('='))?;
    let Some(len) = asked.parse::<usize>().ok().filter(|n| *n <= MAX_BYTES) else {
        return Some(format!(
            "`{PARAM}={asked}` is not a length up to {MAX_BYTES}.\n"
        ));
    };
    let sent = bytes(len);
    if body == sent.as_slice() {
        return None;
    }
    let same = body.iter().zip(&sent).take_while(|(a, b)| a == b).count();
    Some(format!(
        "the request's body arrived as {} bytes; the client sent {len} (the first {same} alike).\n",
        body.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_checked_against_the_length_the_query_names() {
        let body = bytes(100);
        assert_eq!(body.len(), 100);
        assert!(body.starts_with(b"body line 00000 "), "{body:?}");
        assert_eq!(not_as_sent("a=1&expect-body=100", &body), None);
        assert_eq!(not_as_sent("a=1", b"anything"), None);
        assert_eq!(
            not_as_sent("expect-body=100", &body[..60]).as_deref(),
            Some(
                "the request's body arrived as 60 bytes; the client sent 100 (the first 60 alike).\n"
            )
        );
        assert_eq!(
            not_as_sent("expect-body=100", b"").as_deref(),
            Some(
                "the request's body arrived as 0 bytes; the client sent 100 (the first 0 alike).\n"
            )
        );
        assert!(
            not_as_sent("expect-body=99999999", b"")
                .is_some_and(|m| m.contains("not a length up to 65536"))
        );
    }
}
