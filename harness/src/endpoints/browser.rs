//! Request heads as a browser writes them ([`Browser`]), for measuring what headers cost on
//! the wire: the reference client's own heads are minimal, a browser's are not.
//!
//! [`Browser::Chromium`] is Chromium 156's header set, field by field and in its order, as
//! Debian's `chromium` 156.0.8078 sent it to a logging server on 127.0.0.1 from a page that
//! made a same-origin `XMLHttpRequest` GET, an `XMLHttpRequest` POST of `text/plain` and a
//! `new WebSocket(…)`: headless, whose `User-Agent` says `HeadlessChrome`, written here as a
//! desktop Chromium's `Chrome`. No cookies: a site's own cookies ride on every polling
//! request and on no WebSocket frame, so they only widen the gap measured here.

use std::fmt::Write as _;

pub use crate::scenario::Browser;

/// Chromium's `User-Agent` on Linux.
const USER_AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";

/// Chromium's client hints, sent on fetches (not on WebSocket handshakes).
const SEC_CH_UA: &str = "\"Not:A-Brand\";v=\"8\", \"Chromium\";v=\"156\"";

/// `Accept-Encoding` and `Accept-Language` as Chromium sends them, in that order.
const ACCEPT_TAIL: &str =
    "Accept-Encoding: gzip, deflate, br, zstd\r\nAccept-Language: en-US,en;q=0.9\r\n";

impl Browser {
    /// The head of an HTTP request of an `XMLHttpRequest` from a page at `origin`
    /// (`http://host`): `method target`, `Host: host`, and, for a POST, its body's length and
    /// `Content-Type`. Ends with the blank line.
    pub fn xhr(
        self,
        method: &str,
        target: &str,
        host: &str,
        origin: &str,
        body: Option<(usize, &str)>,
    ) -> String {
        let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\n");
        match self {
            Browser::Minimal => {
                head.push_str("Accept: */*\r\nConnection: close\r\n");
                if let Some((n, content_type)) = body {
                    let _ = write!(
                        head,
                        "Content-Type: {content_type}\r\nContent-Length: {n}\r\n"
                    );
                }
            }
            Browser::Chromium => {
                head.push_str("Connection: keep-alive\r\n");
                if let Some((n, _)) = body {
                    let _ = write!(head, "Content-Length: {n}\r\n");
                }
                let _ = write!(
                    head,
                    "sec-ch-ua-platform: \"Linux\"\r\nUser-Agent: {USER_AGENT}\r\nsec-ch-ua: {SEC_CH_UA}\r\n"
                );
                if let Some((_, content_type)) = body {
                    let _ = write!(head, "Content-Type: {content_type}\r\n");
                }
                head.push_str("sec-ch-ua-mobile: ?0\r\nAccept: */*\r\n");
                if body.is_some() {
                    let _ = write!(head, "Origin: {origin}\r\n");
                }
                let _ = write!(
                    head,
                    "Sec-Fetch-Site: same-origin\r\nSec-Fetch-Mode: cors\r\nSec-Fetch-Dest: empty\r\nReferer: {origin}/\r\n{ACCEPT_TAIL}"
                );
            }
        }
        head.push_str("\r\n");
        head
    }

    /// Whether the browser keeps a connection open for the next request (HTTP/1.1's
    /// persistent connections, RFC 9112 §9.3); the minimal client closes each.
    pub fn keeps_alive(self) -> bool {
        self == Browser::Chromium
    }

    /// The head of a WebSocket handshake for `path` on `host` from a page at `origin`, with
    /// `key` and the optional `Sec-WebSocket-Protocol` line `offer`. Ends with the blank line.
    /// Chromium offers `permessage-deflate`; a server that takes the offer gets a 101 the
    /// client refuses (it inflates nothing), so only a server that declines it (the reference
    /// server does) fits this head.
    pub fn websocket(self, path: &str, host: &str, origin: &str, key: &str, offer: &str) -> String {
        match self {
            // The request tungstenite's client would write, byte for byte, and the offer.
            Browser::Minimal => format!(
                "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n{offer}\r\n"
            ),
            Browser::Chromium => format!(
                "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nPragma: no-cache\r\nCache-Control: no-cache\r\nUser-Agent: {USER_AGENT}\r\nUpgrade: websocket\r\nOrigin: {origin}\r\nSec-WebSocket-Version: 13\r\n{ACCEPT_TAIL}Sec-WebSocket-Key: {key}\r\n{offer}Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sizes of the heads Chromium 156 sent in the capture the module describes, with
    /// its `HeadlessChrome` user agent (8 bytes longer than `Chrome`) and its targets.
    #[test]
    fn chromium_heads_are_the_size_of_the_captured_ones() {
        let host = "127.0.0.1:18777";
        let origin = "http://127.0.0.1:18777";
        let headless = "Headless".len();
        let get = Browser::Chromium.xhr(
            "GET",
            "/socket.io/?EIO=4&transport=polling&t=PQx1a2b",
            host,
            origin,
            None,
        );
        assert_eq!(get.len() + headless, 531, "{get}");
        let post = Browser::Chromium.xhr(
            "POST",
            "/socket.io/?EIO=4&transport=polling&t=PQx1a2c&sid=abc",
            host,
            origin,
            Some((6, "text/plain;charset=UTF-8")),
        );
        assert_eq!(post.len() + headless, 631, "{post}");
        let ws = Browser::Chromium.websocket(
            "/socket.io/?EIO=4&transport=websocket&sid=abc",
            host,
            origin,
            "EsdIy/xce0v2mbC2nedEkg==",
            "",
        );
        assert_eq!(ws.len() + headless, 541, "{ws}");
    }

    #[test]
    fn every_head_is_one_parseable_request() {
        for browser in [Browser::Minimal, Browser::Chromium] {
            for head in [
                browser.xhr("GET", "/a", "h", "http://h", None),
                browser.xhr("POST", "/a", "h", "http://h", Some((3, "text/plain"))),
                browser.websocket("/a", "h", "http://h", "k", "Sec-WebSocket-Protocol: x\r\n"),
            ] {
                match gauntlet_proxies::http::parse_request(head.as_bytes(), 8192) {
                    gauntlet_proxies::http::Parsed::Complete(_, n) => {
                        assert_eq!(n, head.len(), "{head}")
                    }
                    other => panic!("{other:?}: {head}"),
                }
            }
        }
    }
}
