//! The victim's fetch of `http://victim/script.js`, on a new connection over the same route
//! as the WebSocket: the origin's script is `delivered`, the attacker's `corrupted`
//! (`cache poisoned:`).

use tokio::io::AsyncWriteExt;

use super::raw::{Answer, Raw, status_line};
use super::{ATTACKER_BODY, ORIGIN_BODY, VICTIM_HOST, VICTIM_PATH, WHO, printable};
use crate::endpoints::connect::{Fail, Phase, Plan, Report, fail, ms, transport};
use crate::engine::NetRef;
use crate::verdict::outcome::Outcome;
use crate::verdict::transcript::Transcript;

/// The victim's fetch of `http://victim/script.js`, over the same route as the WebSocket.
pub(super) async fn victim_fetch(
    net: &NetRef,
    plan: &Plan,
    t: &Transcript,
    report: &mut Report,
) -> Result<String, Fail> {
    let url = format!("http://{VICTIM_HOST}{VICTIM_PATH}");
    t.log(
        net.now(),
        WHO,
        format!("victim fetch of {url}, on a new connection"),
    );
    let start = net.now();
    let phase = Phase::new(net.now());
    let connected = tokio::select! {
        biased;
        r = transport(net, plan, t, &phase) => r,
        () = net.sleep_until(start.saturating_add(plan.handshake_timeout)) => Err(fail(
            Outcome::HandshakeTimeout,
            format!("victim fetch: no connection within {} (stuck in {}) at {}", ms(plan.handshake_timeout), phase.get(), ms(net.now())),
        )),
    };
    let mut raw = Raw {
        io: connected?,
        buf: Vec::new(),
    };
    let request =
        format!("GET {VICTIM_PATH} HTTP/1.1\r\nHost: {VICTIM_HOST}\r\nConnection: close\r\n\r\n");
    let sent_at = net.now();
    if let Err(e) = raw.io.write_all(request.as_bytes()).await {
        return Err(fail(
            Outcome::Dropped,
            format!(
                "victim fetch of {url} could not be sent ({e}) at {}",
                ms(net.now())
            ),
        ));
    }
    let reply = plan.workload.reply_timeout;
    let answer = raw.response(net, sent_at.saturating_add(reply)).await;
    let _ = raw.io.shutdown().await;
    let (head, body) = match answer {
        Answer::Response(head, body) => (head, body),
        Answer::NotHttp(bytes) => {
            return Err(fail(
                Outcome::Corrupted,
                format!(
                    "victim fetch of {url} answered with bytes that are not HTTP at {}: `{}`",
                    ms(net.now()),
                    printable(&bytes)
                ),
            ));
        }
        Answer::Ended(how) => {
            return Err(fail(
                Outcome::Dropped,
                format!(
                    "victim fetch of {url} unanswered: {how} at {}",
                    ms(net.now())
                ),
            ));
        }
        Answer::Timeout => {
            return Err(fail(
                Outcome::Stalled,
                format!(
                    "victim fetch of {url} unanswered within {} (sent at {})",
                    ms(reply),
                    ms(sent_at)
                ),
            ));
        }
    };
    let rtt = net.now() - sent_at;
    report.latencies.push(rtt);
    let cache = head
        .get("x-cache")
        .map(|v| format!(", X-Cache: {}", String::from_utf8_lossy(v)))
        .unwrap_or_default();
    t.log(
        net.now(),
        WHO,
        format!(
            "victim fetch answered {}{cache}, {}-byte body `{}`",
            status_line(&head),
            body.len(),
            printable(&body)
        ),
    );
    let status = head.status().unwrap_or_default();
    if status == 200 && body == ORIGIN_BODY.as_bytes() {
        report.received = 1;
        Ok(format!(
            "cache clean: GET {url} answered with the origin's script ({} bytes{cache}), round trip {}",
            body.len(),
            ms(rtt)
        ))
    } else if body == ATTACKER_BODY.as_bytes() {
        Err(fail(
            Outcome::Corrupted,
            format!(
                "cache poisoned: GET {url} answered with the attacker's body `{}` ({status}{cache}) at {}",
                printable(&body),
                ms(net.now())
            ),
        ))
    } else {
        Err(fail(
            Outcome::Corrupted,
            format!(
                "victim fetch of {url} answered {} with a {}-byte body that is not the origin's script{cache}, at {}",
                status_line(&head),
                body.len(),
                ms(net.now())
            ),
        ))
    }
}
