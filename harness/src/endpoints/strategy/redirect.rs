//! `redirect`: the balancer-aware gateway of seed 001 (Kaazing): the balancer handles only
//! the client's first request, the gateway instance it reached names itself, and the client
//! connects to that instance directly, the balancer out of the path. Here the first request
//! is `GET {path-prefix}/instance` to the plan's host (the balancer), answered by the
//! reference server with its host name, and the direct connection is the reference client's
//! `ws` to that host. With `[client.reconnect]`, a failure sends the client through the
//! balancer again, which may name another instance.

use super::{Attempted, WHO, websocket};
use crate::endpoints::connect::{Attempt, Plan, Report};
use crate::endpoints::engineio::client::http::{Unanswered, Way, exchange};
use crate::endpoints::server::INSTANCE_PATH;
use crate::engine::NetRef;
use crate::scenario::Scheme;
use crate::verdict::outcome::Outcome;
use crate::verdict::transcript::Transcript;

/// The transport the lookup is named by in a trail.
const GATEWAY: &str = "gateway";

/// The longest host name the client accepts (RFC 1035 §2.3.4: 255 octets, 253 as text).
const MAX_NAME: usize = 253;

/// The lookup through the balancer, then the workload on a WebSocket to the instance named.
pub(super) async fn run(net: &NetRef, plan: Plan, t: &Transcript) -> Attempted {
    let began = net.now();
    let target = format!("{}{INSTANCE_PATH}", plan.path_prefix);
    t.log(
        net.now(),
        WHO,
        format!("asking the gateway for an instance: GET {target}"),
    );
    let way: Way<'_> = (net, &plan, t);
    let failed = |outcome: Outcome, detail: String| {
        let mut report = Report::new();
        report.outcome = outcome;
        report.detail = detail.clone();
        let attempt = Attempt {
            transport: GATEWAY,
            began,
            result: outcome.to_string(),
            detail,
        };
        (report, vec![attempt], GATEWAY)
    };
    let reply = match exchange(way, "GET", &target, (&[], "")).await {
        Ok(reply) => reply,
        Err(Unanswered::Connect(f)) => return failed(f.outcome, f.detail),
        Err(Unanswered::Broken(why)) => {
            return failed(
                Outcome::HandshakeRejected,
                format!("no answer from the gateway: {why}"),
            );
        }
    };
    if reply.status != 200 {
        return failed(
            Outcome::HandshakeRejected,
            format!("the gateway answered {}", reply.describe()),
        );
    }
    let Some(instance) = host_name(&reply.body) else {
        return failed(
            Outcome::HandshakeInvalid,
            format!(
                "the gateway's answer is not a host name: `{}`",
                crate::endpoints::connect::printable_up_to(&reply.body, 80)
            ),
        );
    };
    t.log(
        net.now(),
        WHO,
        format!("the gateway names {instance}: connecting to it directly"),
    );
    let lookup = Attempt {
        transport: GATEWAY,
        began,
        result: Outcome::Delivered.to_string(),
        detail: format!("instance {instance}"),
    };
    let mut direct = plan;
    direct.host = instance;
    let (report, attempt) = websocket(net, direct, Scheme::Ws, t).await;
    (report, vec![lookup, attempt], Scheme::Ws.as_str())
}

/// The instance's name in an answer's body: one DNS name (letters, digits, `-` and `.`, at
/// most [`MAX_NAME`] bytes), surrounding whitespace aside.
fn host_name(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?.trim();
    let valid = !text.is_empty()
        && text.len() <= MAX_NAME
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    valid.then(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_a_host_name_or_nothing() {
        assert_eq!(host_name(b"server2\n"), Some("server2".into()));
        assert_eq!(
            host_name(b"gw-1.example.net"),
            Some("gw-1.example.net".into())
        );
        assert_eq!(host_name(b""), None);
        assert_eq!(host_name(b"<html>"), None);
        assert_eq!(host_name(b"server 2"), None);
        assert_eq!(host_name(&[b'a'; 254]), None);
        assert_eq!(host_name(b"\xff"), None);
    }
}
