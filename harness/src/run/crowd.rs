//! A crowd: one scenario's client many times at once on one engine ([`run_crowd`], for
//! benchmarks and the reconnect storm), every client a future of the engine's client task.
//!
//! The clients share that task's cooperative budget (tokio's, 128 operations a poll). Once it
//! is spent, a client that polls a timer is told to wait, and the wake-up that would let it go
//! on is deferred until the task yields: a set of futures polled in turn would go on polling
//! every other ready client for nothing, each again at every later poll of the task, a cost
//! that grows with the square of the crowd. [`Budgeted`] polls a client only while budget
//! remains and otherwise asks to be polled again at once, which the set takes as a client
//! yielding: after two it yields the task too, and the clients still ready wait their turn.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::FutureExt;
use gauntlet_proxies::rng::Rng;

use super::{RunError, build};
use crate::endpoints::client::{self, Report};
use crate::endpoints::strategy;
use crate::engine::{Engine, EventLog, NetRef};
use crate::real::hop::Started;
use crate::scenario::{Scenario, Scheme};
use crate::verdict::outcome::Outcome;
use crate::verdict::transcript::Transcript;

/// What a run with many clients produced.
#[derive(Debug, Clone)]
pub struct CrowdOutput {
    /// Clients run, all at once.
    pub clients: usize,
    /// How many clients ended in each outcome.
    pub outcomes: BTreeMap<Outcome, usize>,
    /// Messages sent and received back, over all clients.
    pub sent: u64,
    /// Messages received intact, over all clients.
    pub received: u64,
    /// When the last client finished, in simulated time.
    pub sim_end: Duration,
    /// The engine's log of every socket operation in the run.
    pub events: EventLog,
    /// Every client's report, in the order the clients were made.
    pub reports: Vec<Report>,
}

/// Runs `scenario` for `scheme` with `clients` copies of its client at once, each with its
/// own seed drawn from `seed`, as its strategy says if it runs one (a strategy's case, from
/// [`Scenario::cases`]). Nothing is logged: a crowd's transcript would be its own cost.
pub fn run_crowd(
    engine: &dyn Engine,
    scenario: &Scenario,
    scheme: Scheme,
    seed: u64,
    clients: usize,
) -> Result<CrowdOutput, RunError> {
    let t = Transcript::discarding();
    let started = Started::default();
    let (mut topology, plan) = build(scenario, scheme, seed, &t, &started)?;
    let reports: Rc<RefCell<Vec<Report>>> = Rc::default();
    let out = reports.clone();
    let strategy = scenario.strategy.clone().map(Rc::new);
    topology.client(
        "client",
        Box::new(move |net: NetRef| {
            async move {
                let runs = (0..clients).map(|i| {
                    let mut plan = plan.clone();
                    plan.seed = Rng::derive(seed, i as u64).next_u64();
                    let (net, t) = (net.clone(), t.clone());
                    // Each client's future is as large as what it runs: a strategy's, or the
                    // reference client's alone.
                    Budgeted(match strategy.clone() {
                        Some(s) => {
                            async move { strategy::run(net, plan, &s, t).await }.boxed_local()
                        }
                        None => client::run(net, plan, t).boxed_local(),
                    })
                });
                *out.borrow_mut() = futures_util::future::join_all(runs).await;
                Ok(())
            }
            .boxed_local()
        }),
    );
    let end = engine.run(topology, seed)?;
    let reports = reports.take();
    let mut outcomes = BTreeMap::new();
    for r in &reports {
        *outcomes.entry(r.outcome).or_default() += 1;
    }
    Ok(CrowdOutput {
        clients: reports.len(),
        outcomes,
        sent: reports.iter().map(|r| r.sent).sum(),
        received: reports.iter().map(|r| r.received).sum(),
        sim_end: end.at,
        events: end.events,
        reports,
    })
}

/// One client of a crowd, polled only while the task has cooperative budget left; without,
/// it asks to be polled again and waits.
struct Budgeted<F>(F);

impl<F: Future + Unpin> Future for Budgeted<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        if !tokio::task::coop::has_budget_remaining() {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Pin::new(&mut self.0).poll(cx)
    }
}
