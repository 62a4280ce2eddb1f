//! The checks of a 101 (RFC 6455 §4.1): what makes the client _Fail the WebSocket
//! Connection_, and, beyond the RFC, a subprotocol a browser would refuse or a pick the offer
//! did not lead to; shared by the reference client's handshake and the cache-poisoning
//! demonstration's.

use gauntlet_proxies::http;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::endpoints::{deflate, subprotocol};

/// What is wrong with a 101 answering an upgrade that sent `key`, asked for no extension and
/// offered the subprotocols `offered`, if anything: RFC 6455 §4.1 lists what makes the client
/// _Fail the WebSocket Connection_: an `Upgrade` other than `websocket` (one token, any case),
/// no `upgrade` token in `Connection`, a `Sec-WebSocket-Accept` other than the key's (§4.2.2),
/// and an extension or a subprotocol it did not ask for; and, after an offer, a 101 that
/// names no subprotocol or another than the reference server's pick. A 101 is HTTP/1.1 (RFC 9110 §15.2:
/// HTTP/1.0 has no 1xx).
pub(crate) fn invalid_101(
    head: &http::Head,
    key: &str,
    offered: &[String],
    deflate: bool,
) -> Option<String> {
    let values = |name: &str| -> Vec<String> {
        head.fields
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).trim().to_string())
            .collect()
    };
    let upgrade: Vec<String> = values("upgrade")
        .iter()
        .flat_map(|v| v.split(',').map(|t| t.trim().to_ascii_lowercase()))
        .filter(|t| !t.is_empty())
        .collect();
    let accept = values("sec-websocket-accept");
    let extensions = values("sec-websocket-extensions");
    let protocol = values("sec-websocket-protocol");
    let wrong = if matches!(head.start, http::StartLine::Response { minor: 0, .. }) {
        "the 101 is HTTP/1.0".to_string()
    } else if upgrade != ["websocket"] {
        "no `Upgrade: websocket`".to_string()
    } else if !head.connection_has("upgrade") {
        "no `Connection: upgrade`".to_string()
    } else if accept.is_empty() {
        "no `Sec-WebSocket-Accept`".to_string()
    } else if accept != [derive_accept_key(key.as_bytes())] {
        format!("a wrong `Sec-WebSocket-Accept` (`{}`)", accept.join(", "))
    } else if deflate {
        match deflate::acceptance_wrong(&extensions) {
            Some(wrong) => wrong,
            None => return subprotocol_wrong(&protocol, offered),
        }
    } else if let Some(e) = extensions.iter().find(|e| !e.is_empty()) {
        format!("an extension the client did not ask for (`{e}`)")
    } else {
        return subprotocol_wrong(&protocol, offered);
    };
    Some(wrong)
}

/// What is wrong with the subprotocol a 101 names (`protocol`, its `Sec-WebSocket-Protocol`
/// values), the client having offered `offered`, or `None`. RFC 6455 §4.1 fails a 101 naming
/// one the client did not offer; a 101 naming none after an offer is valid to the RFC but
/// fails in browsers (Chromium: "Sent non-empty 'Sec-WebSocket-Protocol' header but no
/// response was received"), and the client knows the reference server's pick, so a pick made
/// from an offer changed on the way shows too.
fn subprotocol_wrong(protocol: &[String], offered: &[String]) -> Option<String> {
    let offer = offered.join(", ");
    let named = protocol.join(", ");
    if protocol.is_empty() {
        return (!offered.is_empty()).then(|| {
            format!(
                "no `Sec-WebSocket-Protocol`, though the client offered `{offer}` (the offer \
                 did not reach the server, or its answer did not come back)"
            )
        });
    }
    if offered.is_empty() {
        return Some(format!(
            "a subprotocol the client did not ask for (`{named}`)"
        ));
    }
    if protocol.len() > 1 || named.contains(',') {
        return Some(format!("more than one subprotocol (`{named}`)"));
    }
    if !offered.contains(&named) {
        return Some(format!(
            "a subprotocol the client did not offer (`{named}`; it offered `{offer}`)"
        ));
    }
    let pick = subprotocol::choose(offered).unwrap_or_default();
    (named != pick).then(|| {
        format!(
            "subprotocol `{named}`, where the server picks `{pick}` from the offer `{offer}`: \
             the offer reached it changed"
        )
    })
}
