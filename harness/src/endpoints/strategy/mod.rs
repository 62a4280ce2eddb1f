//! Client strategies: what a real-time application does when its WebSocket fails, each a way
//! of running the scenario's workload through one or more transports in turn
//! ([`crate::scenario::StrategyKind`]).
//!
//! - `ws`, `wss`: the reference client ([`client::run`]) on one scheme.
//! - `ws-then-wss`: `ws`, then, if it failed before its first message arrived, `wss` at once.
//! - `polling-then-upgrade`, `websocket-then-polling`: the Engine.IO client (`engineio.rs`).
//! - `streaming`: HTTP streaming on port 80 ([`streaming::client`]).
//! - `wss-then-streaming`: `wss`, then, if it failed before its first message arrived, HTTP
//!   streaming over TLS on port 443 (Kaazing's fallback, seed 001).
//! - `detect-then-wss`: `ws` whose first message is due within `detect-timeout-ms`; a failed
//!   handshake or a first message that does not come in time, then `wss` at once.
//! - `redirect`: the instance asked for through the balancer, then `ws` to it directly
//!   (`redirect.rs`).
//!
//! Every run of a strategy reports its [`Trail`]: each attempt (the transport, when it began,
//! how it ended) and the transport the run ended on. A run that delivered every message on a
//! transport other than the one its strategy prefers (`ws` for `ws-then-wss` and
//! `detect-then-wss`, `wss` for `wss-then-streaming`, the WebSocket
//! for the Engine.IO strategies that upgrade or start there) is `fell-back`, its detail naming
//! that transport and what failed before.

mod engineio;
mod reconnect;
mod redirect;

use engineio::Open;

use crate::endpoints::connect::{Attempt, Plan, Report, Trail};
use crate::endpoints::{client, streaming};
use crate::engine::NetRef;
use crate::scenario::{Scheme, Strategy, StrategyKind};
use crate::verdict::outcome::Outcome;
use crate::verdict::transcript::Transcript;

/// The name the client logs under.
const WHO: &str = "client";

/// Runs the plan's workload as `strategy` does, to its report, reconnecting after a cut if
/// the strategy says so (`reconnect.rs`). Never fails: everything the network does is an
/// outcome.
pub async fn run(net: NetRef, plan: Plan, strategy: &Strategy, t: Transcript) -> Report {
    match &strategy.reconnect {
        Some(r) => reconnect::run(&net, plan, strategy, r, &t).await,
        None => once(&net, plan, strategy, &t).await,
    }
}

/// One go of the strategy: the plan's workload, from its first message due, through the
/// strategy's transports, to its report.
async fn once(net: &NetRef, plan: Plan, strategy: &Strategy, t: &Transcript) -> Report {
    let (net, t) = (net.clone(), t.clone());
    let messages = u64::from(plan.workload.messages);
    let (mut report, attempts, transport) = match strategy.kind {
        StrategyKind::Ws | StrategyKind::Wss => {
            let scheme = strategy.kind.scheme();
            let (report, attempt) = websocket(&net, plan, scheme, &t).await;
            (report, vec![attempt], scheme.as_str())
        }
        StrategyKind::WsThenWss => ws_then_wss(&net, plan, &t).await,
        StrategyKind::PollingThenUpgrade => {
            engineio::run(&net, plan, &strategy.engineio, &t, Open::Polling).await
        }
        StrategyKind::WebsocketThenPolling => {
            engineio::run(&net, plan, &strategy.engineio, &t, Open::WebSocket).await
        }
        StrategyKind::Streaming => {
            let (report, attempt) = stream(&net, plan, Scheme::Ws, &t).await;
            (report, vec![attempt], attempt_transport(Scheme::Ws))
        }
        StrategyKind::WssThenStreaming => wss_then_streaming(&net, plan, &t).await,
        StrategyKind::DetectThenWss => detect_then_wss(&net, plan, strategy, &t).await,
        StrategyKind::Redirect => redirect::run(&net, plan, &t).await,
    };
    let preferred = preferred(strategy);
    if report.outcome == Outcome::Delivered && transport != preferred {
        report.outcome = Outcome::FellBack;
        t.log(
            net.now(),
            WHO,
            format!("outcome fell-back: every message over {transport}, not {preferred}"),
        );
    }
    if matches!(report.outcome, Outcome::Delivered | Outcome::FellBack) {
        report.detail = format!("{} over {transport}{}", report.detail, failed(&attempts));
    }
    report.strategy = Some(Trail {
        transport,
        attempts,
        messages,
        reconnects: 0,
    });
    report
}

/// The result of a polling attempt whose session moved onto a WebSocket.
const UPGRADED: &str = "upgraded";

/// The result of a probe still under way when its session ended.
const UNFINISHED: &str = "unfinished";

/// The transport a strategy means to end on: anything else is a fallback.
fn preferred(strategy: &Strategy) -> &'static str {
    match strategy.kind {
        StrategyKind::Ws
        | StrategyKind::WsThenWss
        | StrategyKind::DetectThenWss
        | StrategyKind::Redirect => "ws",
        StrategyKind::Wss | StrategyKind::WssThenStreaming => "wss",
        StrategyKind::Streaming => attempt_transport(Scheme::Ws),
        StrategyKind::PollingThenUpgrade if !strategy.engineio.upgrade => "polling",
        StrategyKind::PollingThenUpgrade | StrategyKind::WebsocketThenPolling => "websocket",
    }
}

/// `; after ws handshake-rejected (HTTP 426 …)`: the attempts that failed, for a detail.
fn failed(attempts: &[Attempt]) -> String {
    let failures: Vec<String> = attempts
        .iter()
        .filter(|a| a.result != UPGRADED && a.result != Outcome::Delivered.as_str())
        .map(|a| format!("{} {} ({})", a.transport, a.result, a.detail))
        .collect();
    if failures.is_empty() {
        String::new()
    } else {
        format!("; {}", failures.join("; "))
    }
}

/// The reference client on `scheme`: its report, and the attempt it was.
async fn websocket(
    net: &NetRef,
    mut plan: Plan,
    scheme: Scheme,
    t: &Transcript,
) -> (Report, Attempt) {
    let began = net.now();
    plan.scheme = scheme;
    let report = client::run(net.clone(), plan, t.clone()).await;
    let attempt = Attempt {
        transport: scheme.as_str(),
        began,
        result: report.outcome.to_string(),
        detail: report.detail.clone(),
    };
    (report, attempt)
}

/// What a strategy's attempts came to: the last attempt's report (with what the others sent),
/// every attempt, and the transport the run ended on.
type Attempted = (Report, Vec<Attempt>, &'static str);

/// The HTTP streaming client on `scheme`'s port (TLS for wss): its report, and the attempt.
async fn stream(net: &NetRef, mut plan: Plan, scheme: Scheme, t: &Transcript) -> (Report, Attempt) {
    let began = net.now();
    plan.scheme = scheme;
    let report = streaming::client::run(net, &plan, t).await;
    let attempt = Attempt {
        transport: attempt_transport(scheme),
        began,
        result: report.outcome.to_string(),
        detail: report.detail.clone(),
    };
    (report, attempt)
}

/// HTTP streaming's name in a trail, on `scheme`'s port.
fn attempt_transport(scheme: Scheme) -> &'static str {
    streaming::client::transport_name(scheme)
}

/// `ws`; if it failed before its first message arrived, `wss`.
async fn ws_then_wss(net: &NetRef, plan: Plan, t: &Transcript) -> Attempted {
    let (first, attempt) = websocket(net, plan.clone(), Scheme::Ws, t).await;
    then_wss(net, plan, t, first, attempt).await
}

/// `ws` whose first message must come within the strategy's `detect-timeout-ms`; if it
/// failed before its first message arrived, `wss` with the workload's own timeouts.
async fn detect_then_wss(
    net: &NetRef,
    plan: Plan,
    strategy: &Strategy,
    t: &Transcript,
) -> Attempted {
    let mut detecting = plan.clone();
    detecting.workload.first_reply_timeout = Some(strategy.detect_timeout);
    t.log(
        net.now(),
        WHO,
        format!(
            "ws, its first message due within {} (detect-timeout-ms)",
            crate::endpoints::connect::ms(strategy.detect_timeout)
        ),
    );
    let (first, attempt) = websocket(net, detecting, Scheme::Ws, t).await;
    then_wss(net, plan, t, first, attempt).await
}

/// After a `ws` attempt: its report if it delivered a message; else `wss`.
async fn then_wss(
    net: &NetRef,
    plan: Plan,
    t: &Transcript,
    first: Report,
    attempt: Attempt,
) -> Attempted {
    let mut attempts = vec![attempt];
    if first.outcome == Outcome::Delivered || first.received > 0 {
        return (first, attempts, "ws");
    }
    t.log(
        net.now(),
        WHO,
        format!(
            "ws failed before its first message ({}): falling back to wss",
            first.outcome
        ),
    );
    let (mut second, attempt) = websocket(net, plan, Scheme::Wss, t).await;
    attempts.push(attempt);
    second.sent += first.sent;
    (second, attempts, "wss")
}

/// `wss`; if it failed before its first message arrived, HTTP streaming over TLS on port 443.
async fn wss_then_streaming(net: &NetRef, plan: Plan, t: &Transcript) -> Attempted {
    let (first, attempt) = websocket(net, plan.clone(), Scheme::Wss, t).await;
    let mut attempts = vec![attempt];
    if first.outcome == Outcome::Delivered || first.received > 0 {
        return (first, attempts, "wss");
    }
    t.log(
        net.now(),
        WHO,
        format!(
            "wss failed before its first message ({}): falling back to https streaming",
            first.outcome
        ),
    );
    let (mut second, attempt) = stream(net, plan, Scheme::Wss, t).await;
    attempts.push(attempt);
    second.sent += first.sent;
    (second, attempts, attempt_transport(Scheme::Wss))
}

#[cfg(test)]
mod tests;
