//! The reference client: tokio-tungstenite over an engine stream, ws or wss (rustls, ring),
//! with a handshake timeout, an echo or push workload, and a timestamp in simulated time for
//! every send and receive. It observes the run and decides its [`Outcome`]. It checks the 101
//! itself, as RFC 6455 §4.1 lists (`invalid_101`), fails the connection with a Close (1002,
//! 1007, 1009: [`crate::endpoints::violation`]) when the server breaks the protocol, and answers a Close
//! the server sends first before it reports it. The `smuggle` workload (the cache-poisoning
//! demonstration) writes its frames by hand: see [`crate::endpoints::smuggle`].
//!
//! This file runs a plan to its report; `handshake.rs` opens the WebSocket (the upgrade
//! request and the 101 checked by hand); `session.rs` holds an open session and how each
//! failure is classified; `workload.rs` the echo and push workloads and the Ping keepalive;
//! `close.rs` the close handshake; `payload.rs` the seeded messages; `sessions.rs` many
//! sessions at once (`[client] sessions`), each open before any starts its workload.

use std::rc::Rc;
use std::sync::{Arc, Mutex};

pub use crate::endpoints::connect::{Attempt, PROXY_PORT, Phases, Plan, ProxyPlan, Report, Trail};
use crate::endpoints::connect::{Fail, Phase, fail, ms};
use crate::endpoints::smuggle;
use crate::engine::NetRef;
use crate::scenario::WorkloadKind;
use crate::verdict::outcome::Outcome;
use crate::verdict::transcript::Transcript;
use handshake::handshake;
pub use payload::{binary_payload, message, payload, push_stamp, push_text};
use session::{Keepalive, Session};
use sessions::Gathering;
pub use sessions::run_sessions;

mod census;
mod close;
mod deflate;
pub(crate) mod handshake;
mod lifecycle;
mod payload;
mod session;
mod sessions;
mod workload;

/// The name the client logs under.
const WHO: &str = "client";

/// Runs the plan to its outcome. Never fails: everything the network does is an outcome.
pub fn run(net: NetRef, plan: Plan, t: Transcript) -> impl Future<Output = Report> {
    run_in(net, plan, t, None)
}

/// [`run`], one of a [`Gathering`] of sessions when given one: once open, the session waits
/// for every other to open or fail before its workload. An `async` block rather than an
/// `async fn`, whose arguments would be held twice in its state (once as arguments, once
/// moved into its body), and the handshake boxed, its state freed once the session is open:
/// a crowd holds one of these per client for the whole run.
#[allow(clippy::manual_async_fn)]
fn run_in(
    net: NetRef,
    plan: Plan,
    t: Transcript,
    gathering: Option<&Gathering>,
) -> impl Future<Output = Report> + '_ {
    async move {
        let mut report = Report::new();
        let start = net.now();
        if plan.workload.kind == WorkloadKind::Smuggle {
            // Boxed: the demonstration's state is large, and every other run's future would
            // otherwise be as large.
            let result = Box::pin(smuggle::run(&net, &plan, &t, &mut report, start)).await;
            finish(&net, &t, &mut report, result);
            return report;
        }
        let last = Arc::new(Mutex::new(Vec::new()));
        let phase = Rc::new(Phase::new(net.now()));
        let handshake = tokio::select! {
            biased;
            r = Box::pin(handshake(&net, &plan, &t, &phase, last.clone())) => r,
            () = net.sleep_until(start.saturating_add(plan.handshake_timeout)) => Err(fail(
                Outcome::HandshakeTimeout,
                format!("no 101 within {} (stuck in {}) at {}", ms(plan.handshake_timeout), phase.get(), ms(net.now())),
            )),
        };
        let done = handshake.is_ok().then(|| net.now());
        report.phases = phase.phases(done);
        if let Some(gathering) = gathering {
            gathering.arrive(handshake.is_ok());
            if handshake.is_ok() {
                gathering.everyone().await;
            }
        }
        let result = match handshake {
            Ok(mut ws) => {
                report.handshake = done.map(|at| at - start);
                let mut session = Session {
                    net: &net,
                    plan: &plan,
                    t: &t,
                    report: &mut report,
                    last: &last,
                    keepalive: plan.ping_interval.map(|every| Keepalive {
                        every,
                        next: net.now().saturating_add(every),
                        unanswered: None,
                        sent: 0,
                    }),
                    pipelined: (plan.request.first_message_with_request)
                        .then(|| phase.began("upgrade"))
                        .flatten(),
                    half_close_cut: false,
                    stopped_at: None,
                    pong_due: None,
                };
                let result = session.workload(&mut ws).await;
                session.drained_or_cut(result)
            }
            Err(f) => Err(f),
        };
        finish(&net, &t, &mut report, result);
        report
    }
}

/// Puts the workload's result into the report; a failure is logged.
fn finish(net: &NetRef, t: &Transcript, report: &mut Report, result: Result<String, Fail>) {
    match result {
        Ok(detail) => report.detail = detail,
        Err(f) => {
            report.outcome = f.outcome;
            report.detail = f.detail;
            t.log(
                net.now(),
                WHO,
                format!("outcome {}: {}", f.outcome, report.detail),
            );
        }
    }
}
