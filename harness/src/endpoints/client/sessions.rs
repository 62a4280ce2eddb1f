//! Concurrent sessions (`[client] sessions = N`): N copies of the client's session at once,
//! each with its own seed (so its own key and payloads: an echo that belongs to another
//! session is `corrupted`), every one open before any starts its workload, and one report
//! for them all.
//!
//! A session that opens waits at a [`Gathering`] until every session has opened or failed to
//! (each within its handshake budget, so the wait is bounded); only then does any send a
//! message, and so none closes before all are open. A proxy that serves one connection at a
//! time holds the second session's upgrade until the first ends, which never comes while the
//! first waits: the second's handshake times out.

use std::cell::Cell;
use std::collections::BTreeMap;

use gauntlet_proxies::rng::Rng;
use tokio::sync::Notify;

use super::{Plan, Report, run_in};
use crate::engine::NetRef;
use crate::verdict::outcome::Outcome;
use crate::verdict::transcript::Transcript;

/// Where sessions wait until each has opened or failed to.
#[derive(Debug)]
pub(super) struct Gathering {
    expected: usize,
    arrived: Cell<usize>,
    opened: Cell<usize>,
    all_here: Notify,
}

impl Gathering {
    fn new(expected: usize) -> Self {
        Self {
            expected,
            arrived: Cell::new(0),
            opened: Cell::new(0),
            all_here: Notify::new(),
        }
    }

    /// A session's handshake ended, opened or not.
    pub(super) fn arrive(&self, opened: bool) {
        self.arrived.set(self.arrived.get() + 1);
        if opened {
            self.opened.set(self.opened.get() + 1);
        }
        if self.arrived.get() >= self.expected {
            self.all_here.notify_waiters();
        }
    }

    /// Waits until every session's handshake has ended.
    pub(super) async fn everyone(&self) {
        loop {
            // Registered before the check, so a wake between the two is not lost.
            let notified = self.all_here.notified();
            if self.arrived.get() >= self.expected {
                return;
            }
            notified.await;
        }
    }
}

/// The seed of session `i` (from 0) of a run seeded `seed`.
fn session_seed(seed: u64, i: usize) -> u64 {
    Rng::derive(seed, 0x7365_7373 + i as u64).next_u64()
}

/// Runs `count` sessions of `plan` at once, each logging as `client#N`, and reports them as
/// one: delivered when every session was, else the first failed session's outcome, its detail
/// prefixed with which session it was and followed by how every session ended.
pub async fn run_sessions(net: NetRef, plan: Plan, count: usize, t: Transcript) -> Report {
    let gathering = Gathering::new(count);
    let runs = (0..count).map(|i| {
        let mut plan = plan.clone();
        plan.seed = session_seed(plan.seed, i);
        run_in(
            net.clone(),
            plan,
            t.labelled(&format!("#{}", i + 1)),
            Some(&gathering),
        )
    });
    let reports = futures_util::future::join_all(runs).await;
    let report = combine(&reports, gathering.opened.get());
    t.log(
        net.now(),
        "client",
        format!("{count} sessions: {} {}", report.outcome, report.detail),
    );
    report
}

/// One report for many sessions' (see [`run_sessions`]); `opened` sessions were open at
/// once.
fn combine(reports: &[Report], opened: usize) -> Report {
    let n = reports.len();
    let mut outcomes: BTreeMap<Outcome, usize> = BTreeMap::new();
    for r in reports {
        *outcomes.entry(r.outcome).or_default() += 1;
    }
    let tally = outcomes
        .iter()
        .map(|(o, k)| format!("{k} {o}"))
        .collect::<Vec<_>>()
        .join(", ");
    let failed = reports
        .iter()
        .enumerate()
        .find(|(_, r)| r.outcome != Outcome::Delivered);
    let (outcome, detail) = match failed {
        None => (
            Outcome::Delivered,
            format!(
                "{n} sessions open at once, each with its own echoes: {}",
                reports.first().map_or("", |r| r.detail.as_str())
            ),
        ),
        Some((i, r)) => (
            r.outcome,
            format!(
                "session {} of {n}: {}; {opened} of {n} opened; sessions: {tally}",
                i + 1,
                r.detail
            ),
        ),
    };
    Report {
        outcome,
        detail,
        handshake: reports.iter().map(|r| r.handshake).max().flatten(),
        phases: reports.first().map(|r| r.phases).unwrap_or_default(),
        latencies: reports.iter().flat_map(|r| r.latencies.clone()).collect(),
        sent: reports.iter().map(|r| r.sent).sum(),
        received: reports.iter().map(|r| r.received).sum(),
        first_message: reports.iter().filter_map(|r| r.first_message).min(),
        strategy: None,
        // The sessions share the plan's counts; the run reads them when it ends.
        wire: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::connect::Phases;
    use std::time::Duration;

    fn report(outcome: Outcome, detail: &str) -> Report {
        Report {
            outcome,
            detail: detail.to_string(),
            handshake: Some(Duration::from_millis(3)),
            phases: Phases::default(),
            latencies: vec![Duration::from_millis(1)],
            sent: 3,
            received: 3,
            ..Report::new()
        }
    }

    #[test]
    fn many_sessions_are_delivered_only_when_every_one_is() {
        let all = vec![report(Outcome::Delivered, "3/3 echoed, closed 1000"); 3];
        let one = combine(&all, 3);
        assert_eq!(one.outcome, Outcome::Delivered);
        assert_eq!(
            one.detail,
            "3 sessions open at once, each with its own echoes: 3/3 echoed, closed 1000"
        );
        assert_eq!((one.sent, one.received, one.latencies.len()), (9, 9, 3));

        let mut some = all.clone();
        some[1] = report(Outcome::HandshakeTimeout, "no 101 within 5000 ms");
        some[2] = report(Outcome::Corrupted, "echo 1 differs");
        let one = combine(&some, 1);
        assert_eq!(one.outcome, Outcome::HandshakeTimeout);
        assert_eq!(
            one.detail,
            "session 2 of 3: no 101 within 5000 ms; 1 of 3 opened; sessions: \
             1 delivered, 1 handshake-timeout, 1 corrupted"
        );
    }

    #[test]
    fn each_session_has_a_seed_of_its_own() {
        let seeds: std::collections::BTreeSet<u64> = (0..100).map(|i| session_seed(1, i)).collect();
        assert_eq!(seeds.len(), 100);
    }
}
