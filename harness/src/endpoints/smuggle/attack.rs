//! The attack: the upgrade to the attacker's endpoint, written and checked by hand, then one
//! text frame carrying an HTTP request for the victim's script, masked or (with
//! `mask = false`) not, the answer read, and a close. What happens is logged, never an
//! outcome.

use gauntlet_proxies::http::{self, Parsed};
use gauntlet_proxies::rng::Rng;
use tokio::io::AsyncWriteExt;

use super::raw::{Answer, Raw, status_line};
use super::{ATTACKER_PATH, MAX_HEAD, WHO, encode, opcode, printable, smuggled_request};
use crate::endpoints::accept::invalid_101;
use crate::endpoints::connect::{AsyncIo, Fail, Phase, Plan, Report, fail, ms};
use crate::endpoints::frames::{Decoded, decode};
use crate::engine::NetRef;
use crate::verdict::outcome::Outcome;
use crate::verdict::transcript::Transcript;

/// The upgrade to [`ATTACKER_PATH`], written and checked by hand.
pub(super) async fn upgrade(
    net: &NetRef,
    plan: &Plan,
    t: &Transcript,
    mut io: Box<dyn AsyncIo>,
    phase: &Phase,
) -> Result<Raw, Fail> {
    phase.set("upgrade", net.now());
    let mut key = [0u8; 16];
    Rng::derive(plan.seed, 0x6b6579).fill(&mut key);
    let key = http::base64(&key);
    let request = format!(
        "GET {ATTACKER_PATH} HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n",
        plan.host
    );
    t.log(
        net.now(),
        WHO,
        format!("upgrade request GET {ATTACKER_PATH}"),
    );
    let rejected = |what: String| fail(Outcome::HandshakeRejected, what);
    if let Err(e) = io.write_all(request.as_bytes()).await {
        return Err(rejected(format!(
            "no HTTP response: the request could not be sent ({e}) at {}",
            ms(net.now())
        )));
    }
    let mut raw = Raw {
        io,
        buf: Vec::new(),
    };
    let (head, len) = loop {
        match http::parse_response(&raw.buf, MAX_HEAD) {
            Parsed::Complete(head, len) => break (head, len),
            Parsed::Invalid(reason) => {
                return Err(rejected(format!(
                    "no HTTP response: {reason} at {}: `{}`",
                    ms(net.now()),
                    printable(&raw.buf)
                )));
            }
            Parsed::Partial => match raw.fill().await {
                Ok(0) => {
                    return Err(rejected(format!(
                        "no HTTP response: connection closed at {}",
                        ms(net.now())
                    )));
                }
                Ok(_) => {}
                Err(e) => {
                    return Err(rejected(format!(
                        "no HTTP response: {e} at {}",
                        ms(net.now())
                    )));
                }
            },
        }
    };
    raw.buf.drain(..len);
    let status = head.status().unwrap_or_default();
    if status != 101 {
        t.log(
            net.now(),
            WHO,
            format!("upgrade answered {}", status_line(&head)),
        );
        return Err(rejected(format!(
            "HTTP {} at {}",
            status_line(&head),
            ms(net.now())
        )));
    }
    if let Some(what) = invalid_101(&head, &key, &[], false) {
        return Err(fail(
            Outcome::HandshakeInvalid,
            format!("101 not valid: {what} at {}", ms(net.now())),
        ));
    }
    t.log(net.now(), WHO, status_line(&head));
    Ok(raw)
}

/// Sends the smuggling frame, reads the answer, closes. What happens here is logged, never an
/// outcome: the victim's fetch decides.
pub(super) async fn attack(
    net: &NetRef,
    plan: &Plan,
    t: &Transcript,
    report: &mut Report,
    mut raw: Raw,
) {
    let mut rng = Rng::derive(plan.seed, 0x6d61_736b);
    let mut mask = || {
        plan.mask.then(|| {
            let mut m = [0u8; 4];
            rng.fill(&mut m);
            m
        })
    };
    let payload = smuggled_request();
    let frame = encode(opcode::TEXT, payload.as_bytes(), mask());
    if let Err(e) = raw.io.write_all(&frame).await {
        t.log(
            net.now(),
            WHO,
            format!("the smuggling frame could not be sent ({e})"),
        );
        return;
    }
    report.sent = 1;
    t.log(
        net.now(),
        WHO,
        format!(
            "sent {} text frame, {}-byte payload `{}`{}",
            if plan.mask { "a masked" } else { "an unmasked" },
            payload.len(),
            printable(payload.as_bytes()),
            if plan.mask {
                ""
            } else {
                " (a deliberate RFC 6455 §5.3 violation)"
            }
        ),
    );
    let reply = plan.workload.reply_timeout;
    match raw.response(net, net.now().saturating_add(reply)).await {
        Answer::Response(head, body) => t.log(
            net.now(),
            WHO,
            format!(
                "answered on the WebSocket connection with HTTP {}, {}-byte body `{}`",
                status_line(&head),
                body.len(),
                printable(&body)
            ),
        ),
        Answer::NotHttp(bytes) => t.log(
            net.now(),
            WHO,
            format!(
                "answered with {} bytes that are not HTTP (frames, say)",
                bytes.len()
            ),
        ),
        Answer::Ended(how) => {
            t.log(net.now(), WHO, format!("no answer: {how}"));
            return;
        }
        Answer::Timeout => t.log(net.now(), WHO, format!("no answer within {}", ms(reply))),
    }
    let close = encode(opcode::CLOSE, &1000u16.to_be_bytes(), mask());
    if let Err(e) = raw.io.write_all(&close).await {
        t.log(net.now(), WHO, format!("close could not be sent ({e})"));
        return;
    }
    t.log(net.now(), WHO, "close 1000 sent");
    let deadline = net.now().saturating_add(reply);
    let ended = async {
        loop {
            while let Decoded::Frame(frame, len) = decode(&raw.buf) {
                raw.buf.drain(..len);
                if frame.opcode == opcode::CLOSE {
                    let code = frame
                        .payload
                        .get(..2)
                        .map_or(1005, |c| u16::from_be_bytes([c[0], c[1]]));
                    t.log(net.now(), WHO, format!("close {code} received"));
                }
            }
            match raw.fill().await {
                Ok(0) => return "the connection closed".to_string(),
                Ok(_) => {}
                Err(e) => return format!("the connection failed ({e})"),
            }
        }
    };
    let how = tokio::select! {
        biased;
        how = ended => how,
        () = net.sleep_until(deadline) => format!("the connection was still open after {}", ms(reply)),
    };
    let _ = raw.io.shutdown().await;
    t.log(net.now(), WHO, format!("attack over: {how}"));
}
