//! The checks of an opening handshake the server accepts (RFC 6455 §4.2.1), and the answer
//! to a request that is not one ([`Refusal`]).

use hyper::Request;
use hyper::StatusCode;
use hyper::header::{HeaderMap, HeaderValue};

use crate::endpoints::subprotocol;

/// A request the server does not upgrade: the status, the body's line, extra fields.
pub(super) struct Refusal(
    pub(super) StatusCode,
    pub(super) &'static str,
    pub(super) &'static [(&'static str, &'static str)],
);

/// Why `req` is not an opening handshake the server accepts (RFC 6455 §4.2.1), or `None`.
///
/// A request without `Upgrade` is no handshake at all but a plain request for a resource
/// that needs one: 426 naming `websocket` (RFC 9110 §15.5.22), what a proxy that strips
/// hop-by-hop fields delivers. A method other than GET is 405 with `Allow: GET` (RFC 9110
/// §15.5.6). A missing or unsupported `Sec-WebSocket-Version` is 426 with the one version
/// the server speaks (§4.4). Every other departure from §4.2.1 is 400: an `Upgrade` that does
/// not name `websocket`, HTTP/1.0, no `upgrade` in `Connection`, not exactly one `Host`
/// (RFC 9112 §3.2), a repeated `Sec-WebSocket-Version`, and a `Sec-WebSocket-Key` that is
/// missing, repeated or not base64 of 16 bytes.
pub(super) fn refusal<B>(req: &Request<B>) -> Option<Refusal> {
    let headers = req.headers();
    let count = |name: &str| headers.get_all(name).iter().count();
    let refuse = |status, body, extra| Some(Refusal(status, body, extra));
    if count("upgrade") == 0 {
        return refuse(
            StatusCode::UPGRADE_REQUIRED,
            "This endpoint speaks WebSocket: send an Upgrade request.\n",
            &[("upgrade", "websocket"), ("connection", "Upgrade")],
        );
    }
    if !has_token(headers, "upgrade", "websocket") {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Upgrade must name websocket.\n",
            &[],
        );
    }
    if req.version() < hyper::Version::HTTP_11 {
        return refuse(
            StatusCode::BAD_REQUEST,
            "A WebSocket handshake needs HTTP/1.1.\n",
            &[],
        );
    }
    if req.method() != hyper::Method::GET {
        return refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            "A WebSocket upgrade must be a GET.\n",
            &[("allow", "GET")],
        );
    }
    if !has_token(headers, "connection", "upgrade") {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Upgrade: websocket needs Connection: upgrade.\n",
            &[],
        );
    }
    if count("host") != 1 {
        return refuse(
            StatusCode::BAD_REQUEST,
            "A request needs exactly one Host.\n",
            &[],
        );
    }
    if count("sec-websocket-version") > 1 {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Sec-WebSocket-Version more than once.\n",
            &[],
        );
    }
    if header_text(headers, "sec-websocket-version") != "13" {
        return refuse(
            StatusCode::UPGRADE_REQUIRED,
            "Unsupported Sec-WebSocket-Version.\n",
            &[("sec-websocket-version", "13")],
        );
    }
    let key = headers.get("sec-websocket-key").map(HeaderValue::as_bytes);
    if count("sec-websocket-key") != 1 || !key.is_some_and(key_is_valid) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Missing or malformed Sec-WebSocket-Key.\n",
            &[],
        );
    }
    None
}

/// The subprotocol the 101 names, the server's pick among those `headers` offer
/// ([`subprotocol::choose`]), with the transcript's line saying what was offered; `None`
/// when nothing was.
pub(super) fn subprotocol(headers: &HeaderMap) -> Option<(HeaderValue, String)> {
    let values = headers
        .get_all(subprotocol::FIELD)
        .iter()
        .map(|v| v.to_str().unwrap_or_default());
    let offer = subprotocol::offered(values);
    let pick = subprotocol::choose(&offer)?;
    let value = HeaderValue::from_str(pick).ok()?;
    Some((
        value,
        format!("subprotocols offered: {}; chose {pick}", offer.join(", ")),
    ))
}

fn has_token(headers: &HeaderMap, name: &str, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .unwrap_or_default()
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    })
}

/// Whether `key` is base64 (RFC 4648 §4, padded) of exactly 16 bytes, as RFC 6455 §4.2.1
/// item 5 requires: 22 characters of the alphabet, then `==`. The 4 bits the last character
/// carries beyond the 16 bytes are not checked (RFC 4648 §3.5 lets a decoder ignore them).
fn key_is_valid(key: &[u8]) -> bool {
    let alphabet = |b: &u8| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/';
    key.len() == 24 && key.ends_with(b"==") && key[..22].iter().all(alphabet)
}

pub(super) fn header_text(headers: &HeaderMap, name: &str) -> String {
    let values: Vec<&str> = headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap_or("<non-ASCII>"))
        .collect();
    if values.is_empty() {
        "-".to_string()
    } else {
        values.join(", ")
    }
}
