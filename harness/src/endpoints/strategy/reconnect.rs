//! Reconnecting after a cut (`[client.reconnect]`), as socket.io-client's Manager does: the
//! strategy runs its workload; when the connection fails (cut mid-session, or not opened),
//! the client waits its backoff and runs the strategy again for the rest of the workload,
//! until every message is through or the attempts in a row run out.
//!
//! - The backoff is socket.io-client's (`Reconnect::backoff`): the delay doubles with each
//!   attempt in a row that carries no message, and starts again from the first once one does
//!   (the Manager's `backoff.reset()` on open; here on a message, so that a path cutting
//!   every session before its first message cannot keep the run going for ever). The draws
//!   come from the run's seed.
//! - The rest of the workload starts at the first message that did not arrive
//!   (`while-disconnected = "buffer"`, socket.io-client's `sendBuffer`: the message in flight
//!   is sent again; a push is asked for again from there), or at the first message not yet
//!   due when the client is back (`"drop"`: the messages due while disconnected are lost).
//!   Message `i` is due `i × interval-ms` after the run began.
//! - A corrupted message ends the run: it is not the network cutting the client off.
//!
//! Each connection's runner checks every message's index and content, so a message that
//! arrives twice or out of order ends that connection as `corrupted`: a run that ends
//! `reconnected` or `partial` had none.

use std::time::Duration;

use gauntlet_proxies::rng::Rng;

use super::{WHO, once};
use crate::endpoints::connect::{Plan, Report, Trail, ms};
use crate::engine::NetRef;
use crate::scenario::{Reconnect, Strategy, WhileDisconnected};
use crate::verdict::outcome::Outcome;
use crate::verdict::transcript::Transcript;

/// The strategy's runs until the workload is through or the attempts run out, to one report:
/// every connection's messages, latencies and attempts, and the reconnections made.
pub(super) async fn run(
    net: &NetRef,
    plan: Plan,
    strategy: &Strategy,
    reconnect: &Reconnect,
    t: &Transcript,
) -> Report {
    let total = plan.workload.messages;
    let interval = plan.workload.interval;
    let began = net.now();
    let mut rng = Rng::derive(plan.seed, 0x7265_636f_6e6e_6563);
    let mut all = Report::new();
    let mut trail = Trail {
        transport: "",
        attempts: Vec::new(),
        messages: u64::from(total),
        reconnects: 0,
    };
    let (mut from, mut in_a_row, mut dropped) = (0u32, 0u32, 0u64);
    loop {
        let mut p = plan.clone();
        p.workload.from = from;
        let mut report = once(net, p, strategy, t).await;
        let next = from.saturating_add(u32::try_from(report.received).unwrap_or(u32::MAX));
        if let Some(attempted) = report.strategy.take() {
            trail.transport = attempted.transport;
            trail.attempts.extend(attempted.attempts);
        }
        merge(&mut all, &report);
        let outcome = report.outcome;
        if matches!(outcome, Outcome::Delivered | Outcome::FellBack) && next >= total {
            if trail.reconnects == 0 {
                report.strategy = Some(trail);
                return report;
            }
            return end(net, all, trail, dropped, t);
        }
        // A connection that carried a message starts the backoff again, as an open resets
        // socket.io-client's; one that carried none counts as an attempt that failed, so a
        // path that cuts every session before its first message ends the run.
        if report.received > 0 {
            in_a_row = 0;
        }
        if outcome == Outcome::Corrupted || in_a_row >= reconnect.attempts {
            let why = if outcome == Outcome::Corrupted {
                String::new()
            } else {
                format!(
                    "; gave up after {} reconnection attempts in a row",
                    reconnect.attempts
                )
            };
            all.outcome = outcome;
            all.detail = format!("{}{why}", report.detail);
            all.strategy = Some(trail);
            return all;
        }
        let draw = rng.next_u64() as f64 / 2f64.powi(64);
        let delay = reconnect.backoff(in_a_row, draw);
        in_a_row += 1;
        t.log(
            net.now(),
            WHO,
            format!(
                "{outcome} at message {next} of {total}: reconnecting in {} (attempt {in_a_row} of {})",
                ms(delay),
                reconnect.attempts
            ),
        );
        net.sleep_until(net.now().saturating_add(delay)).await;
        trail.reconnects += 1;
        from = match reconnect.while_disconnected {
            WhileDisconnected::Buffer => next,
            WhileDisconnected::Drop => next.max(due(net.now() - began, interval, total)),
        };
        if from > next {
            let lost = u64::from(from - next);
            dropped += lost;
            t.log(
                net.now(),
                WHO,
                format!(
                    "dropped messages {next} to {} (due while disconnected)",
                    from - 1
                ),
            );
        }
        if from >= total {
            all.outcome = Outcome::Partial;
            all.detail = format!("{dropped} of {total} messages dropped while disconnected");
            all.strategy = Some(trail);
            return all;
        }
    }
}

/// The first message not yet due `elapsed` into the run: message `i` is due at
/// `i × interval`.
fn due(elapsed: Duration, interval: Duration, total: u32) -> u32 {
    if interval.is_zero() {
        return total;
    }
    let n = elapsed.as_nanos().div_ceil(interval.as_nanos());
    u32::try_from(n).unwrap_or(u32::MAX).min(total)
}

/// Adds one connection's report to the run's: messages, latencies, the first arrival, and
/// the first connection's handshake.
fn merge(all: &mut Report, one: &Report) {
    all.sent += one.sent;
    all.received += one.received;
    all.latencies.extend(one.latencies.iter().copied());
    all.first_message = all.first_message.or(one.first_message);
    if all.handshake.is_none() {
        all.handshake = one.handshake;
        all.phases = one.phases;
    }
}

/// The run's end once the workload is through after a reconnection: `partial` if messages
/// were dropped, else `reconnected`.
fn end(net: &NetRef, mut all: Report, trail: Trail, dropped: u64, t: &Transcript) -> Report {
    let over = format!("over {}", trail.transport);
    let (outcome, detail) = if dropped > 0 {
        (
            Outcome::Partial,
            format!(
                "{dropped} of {} messages dropped while disconnected, {} reconnections, the rest {over}",
                trail.messages, trail.reconnects
            ),
        )
    } else {
        (
            Outcome::Reconnected,
            format!(
                "every message after {} reconnections, the last {over}",
                trail.reconnects
            ),
        )
    };
    t.log(net.now(), WHO, format!("outcome {outcome}: {detail}"));
    all.outcome = outcome;
    all.detail = detail;
    all.strategy = Some(trail);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_due_at_its_index_times_the_interval() {
        let s = Duration::from_secs(1);
        assert_eq!(due(Duration::ZERO, s, 10), 0);
        assert_eq!(due(Duration::from_millis(1), s, 10), 1);
        assert_eq!(due(Duration::from_millis(3000), s, 10), 3);
        assert_eq!(due(Duration::from_millis(3001), s, 10), 4);
        assert_eq!(due(Duration::from_secs(60), s, 10), 10);
        assert_eq!(due(Duration::from_secs(1), Duration::ZERO, 10), 10);
    }
}
