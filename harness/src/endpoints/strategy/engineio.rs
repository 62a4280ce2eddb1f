//! The Engine.IO strategies, on the Engine.IO client
//! ([`crate::endpoints::engineio::client`]): `polling-then-upgrade` (one attempt, opened by
//! polling, upgraded if the probe is answered) and `websocket-then-polling` (an attempt on a
//! WebSocket; if it does not open, after socket.io-client's reconnection delay, one by
//! polling), both [`run`].
//! Each attempt must open within socket.io-client's `timeout`, then carries the workload: the
//! same echoes and pushes as the WebSocket workload, as Engine.IO messages (binary messages
//! as binary packets), with the server's heartbeat answered throughout; then it closes.

use std::rc::Rc;
use std::time::Duration;

use gauntlet_proxies::rng::Rng;

use super::{Attempted, UNFINISHED, UPGRADED, WHO};
use crate::endpoints::client::{binary_payload, payload, push_stamp};
use crate::endpoints::connect::{Attempt, Fail, Plan, Report, fail, ms, no_echo};
use crate::endpoints::engineio::client::{Cx, Options, ProbeEnd, Probed, Session};
use crate::endpoints::engineio::packet::{Packet, PacketType};
use crate::engine::NetRef;
use crate::scenario::{EngineIoParams, WorkloadKind};
use crate::verdict::outcome::Outcome;
use crate::verdict::transcript::Transcript;

/// How an attempt opens its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Open {
    /// By polling (the handshake GET).
    Polling,
    /// On a WebSocket (`transport=websocket`, no `sid`).
    WebSocket,
}

impl Open {
    fn transport(self) -> &'static str {
        match self {
            Open::Polling => "polling",
            Open::WebSocket => "websocket",
        }
    }
}

/// What one attempt came to.
struct Run {
    /// The workload's detail, or why the attempt failed.
    result: Result<String, Fail>,
    /// Whether the session opened.
    opened: bool,
    /// The transport it was on at the end (or tried to open on).
    transport: &'static str,
    /// How its probes ended.
    probes: Vec<ProbeEnd>,
}

impl Run {
    /// The attempt's entries in a trail: the transport it opened on (`upgraded` if the session
    /// moved onto a WebSocket), then each probe's WebSocket.
    fn attempts(&self, began: Duration, open: Open) -> Vec<Attempt> {
        let (result, detail) = match &self.result {
            Ok(d) => (Outcome::Delivered.to_string(), d.clone()),
            Err(f) => (f.outcome.to_string(), f.detail.clone()),
        };
        let upgraded = self.probes.iter().find(|p| p.result == Probed::Upgraded);
        let first = match upgraded {
            Some(p) => Attempt {
                transport: open.transport(),
                began,
                result: UPGRADED.to_string(),
                detail: format!(
                    "the session moved onto a websocket probed at {}",
                    ms(p.began)
                ),
            },
            None => Attempt {
                transport: open.transport(),
                began,
                result: result.clone(),
                detail: detail.clone(),
            },
        };
        let probes = self.probes.iter().map(|p| {
            let (result, detail) = match &p.result {
                Probed::Upgraded => (result.clone(), detail.clone()),
                Probed::Failed(f) => (f.outcome.to_string(), format!("probe: {}", f.detail)),
                Probed::Unfinished(why) => (UNFINISHED.to_string(), format!("probe: {why}")),
            };
            Attempt {
                transport: "websocket",
                began: p.began,
                result,
                detail,
            }
        });
        std::iter::once(first).chain(probes).collect()
    }
}

/// The client of both strategies: the plan's server, `/engine.io/` after the path prefix, the
/// push's parameters in the query for a push workload.
fn client(net: &NetRef, plan: Plan, params: &EngineIoParams, t: &Transcript) -> Cx {
    let w = &plan.workload;
    let mut options = Options::new(format!("{}/engine.io/", plan.path_prefix));
    if w.kind == WorkloadKind::Push {
        options.query = format!(
            "app=push&count={}&interval={}&size={}{}",
            w.messages,
            w.interval.as_millis(),
            w.payload_bytes,
            w.from_query()
        );
    }
    options.upgrade = params.upgrade;
    options.probe_timeout = params.probe_timeout;
    Cx::new(net.clone(), Rc::new(plan), t.clone(), options)
}

/// The Engine.IO strategies: an attempt opened as `first` says; if that was a WebSocket and
/// its session did not open, after the reconnection delay, an attempt by polling (with its
/// upgrade). `polling-then-upgrade` starts by polling, `websocket-then-polling` on a WebSocket.
pub(super) async fn run(
    net: &NetRef,
    plan: Plan,
    params: &EngineIoParams,
    t: &Transcript,
    first: Open,
) -> Attempted {
    let mut plan = plan;
    if params.secure {
        plan.scheme = crate::scenario::Scheme::Wss;
    }
    let cx = client(net, plan.clone(), params, t);
    let mut report = Report::new();
    let began = net.now();
    let run = attempt(net, &cx, &plan, first, params, t, &mut report).await;
    let mut attempts = run.attempts(began, first);
    if run.opened || first == Open::Polling {
        conclude(&mut report, &run);
        return (report, attempts, run.transport);
    }
    let draw = Rng::derive(plan.seed, 0x6261_636b_6f66).next_u64() as f64 / 2f64.powi(64);
    let delay = params.backoff(0, draw);
    t.log(
        net.now(),
        WHO,
        format!(
            "reconnecting by polling in {} (socket.io-client's reconnection delay), transports [\"polling\", \"websocket\"]",
            ms(delay)
        ),
    );
    net.sleep_until(net.now().saturating_add(delay)).await;
    let began = net.now();
    let second = attempt(net, &cx, &plan, Open::Polling, params, t, &mut report).await;
    attempts.extend(second.attempts(began, Open::Polling));
    conclude(&mut report, &second);
    (report, attempts, second.transport)
}

/// Puts the attempt's result into the report.
fn conclude(report: &mut Report, run: &Run) {
    match &run.result {
        Ok(detail) => report.detail = detail.clone(),
        Err(f) => {
            report.outcome = f.outcome;
            report.detail = f.detail.clone();
        }
    }
}

/// Opens a session as `open` says within the strategy's `timeout`, carries the workload, and
/// closes.
async fn attempt(
    net: &NetRef,
    cx: &Cx,
    plan: &Plan,
    open: Open,
    params: &EngineIoParams,
    t: &Transcript,
    report: &mut Report,
) -> Run {
    let start = net.now();
    let opening = async {
        match open {
            Open::Polling => Session::open_polling(cx).await,
            Open::WebSocket => Session::open_websocket(cx).await,
        }
    };
    let opened = tokio::select! {
        biased;
        s = opening => s,
        () = net.sleep_until(start.saturating_add(params.timeout)) => Err(fail(
            Outcome::HandshakeTimeout,
            format!("no open packet within {} (socket.io-client's `timeout`), at {}", ms(params.timeout), ms(net.now())),
        )),
    };
    let mut session = match opened {
        Ok(session) => session,
        Err(f) => {
            failed(net, t, open.transport(), &f);
            return Run {
                result: Err(f),
                opened: false,
                transport: open.transport(),
                probes: Vec::new(),
            };
        }
    };
    report.handshake = Some(net.now().saturating_sub(start));
    let mut work = Work {
        net,
        plan,
        t,
        report,
        session: &mut session,
    };
    let mut result = work.run().await;
    let (transport, probes) = (session.transport(), session.probes());
    if let Ok(detail) = result {
        let deadline = net.now().saturating_add(plan.workload.reply_timeout);
        result = session
            .close(deadline)
            .await
            .map(|()| format!("{detail}, closed"));
    }
    if let Err(f) = &result {
        failed(net, t, transport, f);
    }
    Run {
        result,
        opened: true,
        transport,
        probes,
    }
}

/// Logs an attempt's failure.
fn failed(net: &NetRef, t: &Transcript, transport: &str, f: &Fail) {
    t.log(
        net.now(),
        WHO,
        format!(
            "engine.io over {transport}: outcome {}: {}",
            f.outcome, f.detail
        ),
    );
}

/// The workload on an open session.
struct Work<'a> {
    net: &'a NetRef,
    plan: &'a Plan,
    t: &'a Transcript,
    report: &'a mut Report,
    session: &'a mut Session,
}

impl Work<'_> {
    async fn run(&mut self) -> Result<String, Fail> {
        let w = self.plan.workload.clone();
        let n = |r: &Report| r.received;
        match w.kind {
            WorkloadKind::Echo => {
                for i in w.range() {
                    self.idle(i).await?;
                    if i > w.from {
                        self.quiet(self.net.now().saturating_add(w.interval), false)
                            .await?;
                    }
                    self.echo(i).await?;
                }
                self.idle(w.messages).await?;
                let binary = if w.binary { " (binary)" } else { "" };
                Ok(format!("{}/{} echoed{binary}", n(self.report), w.messages))
            }
            WorkloadKind::Push => {
                for i in w.range() {
                    self.push(i).await?;
                }
                Ok(format!("{}/{} pushes received", n(self.report), w.messages))
            }
            // The scenario reader refuses it with an Engine.IO strategy.
            WorkloadKind::Smuggle => Ok("nothing sent".into()),
        }
    }

    /// The idle periods after message `after`: nothing sent, the heartbeat answered.
    async fn idle(&mut self, after: u32) -> Result<(), Fail> {
        let periods = self.plan.workload.idle_after(after);
        for period in periods {
            self.t
                .log(self.net.now(), WHO, format!("idle for {period} ms"));
            let until = self.net.now().saturating_add(Duration::from_millis(period));
            self.quiet(until, true).await?;
        }
        Ok(())
    }

    /// Until `until`, expecting no message.
    async fn quiet(&mut self, until: Duration, idle: bool) -> Result<(), Fail> {
        match self.session.next(until, idle).await? {
            None => Ok(()),
            Some(p) => Err(fail(
                Outcome::Corrupted,
                format!("an unexpected {p}, at {}", ms(self.net.now())),
            )),
        }
    }

    /// Counts a message that arrived intact, with its latency.
    fn arrived(&mut self, latency: Duration, line: String) {
        self.report.latencies.push(latency);
        self.report.received += 1;
        self.report.first_message.get_or_insert(self.net.now());
        self.t.log(self.net.now(), WHO, line);
    }

    async fn echo(&mut self, i: u32) -> Result<(), Fail> {
        let w = &self.plan.workload;
        let (seed, len, timeout) = (self.plan.seed, w.payload_bytes, w.reply_timeout);
        let sent = if w.binary {
            Packet::Binary(binary_payload(seed, i, len))
        } else {
            Packet::message(payload(seed, i, len))
        };
        let sent_at = self.net.now();
        self.session.send(sent.clone()).await?;
        self.report.sent += 1;
        let binary = if w.binary { ", binary" } else { "" };
        self.t.log(
            sent_at,
            WHO,
            format!(
                "sent #{i} ({len} bytes{binary}) over {}",
                self.session.transport()
            ),
        );
        match self
            .session
            .next(sent_at.saturating_add(timeout), false)
            .await?
        {
            Some(echo) if echo == sent => {
                let rtt = self.net.now().saturating_sub(sent_at);
                let over = self.session.transport();
                self.arrived(
                    rtt,
                    format!("echo #{i} over {over}, round trip {}", ms(rtt)),
                );
                Ok(())
            }
            Some(other) => Err(fail(
                Outcome::Corrupted,
                format!(
                    "echo of #{i} differs: {sent} sent, {other} received, at {}",
                    ms(self.net.now())
                ),
            )),
            None => Err(no_echo(i, timeout, sent_at)),
        }
    }

    async fn push(&mut self, i: u32) -> Result<(), Fail> {
        let w = &self.plan.workload;
        let size = w.payload_bytes;
        let deadline = self
            .net
            .now()
            .saturating_add(w.interval)
            .saturating_add(w.reply_timeout);
        let Some(packet) = self.session.next(deadline, false).await? else {
            return Err(fail(
                Outcome::Stalled,
                format!("push #{i} did not arrive by {}", ms(deadline)),
            ));
        };
        let stamp = match &packet {
            Packet::Text(PacketType::Message, text) => push_stamp(text, i, size),
            _ => None,
        };
        let Some(us) = stamp else {
            return Err(fail(
                Outcome::Corrupted,
                format!(
                    "push #{i} arrived changed ({packet}), at {}",
                    ms(self.net.now())
                ),
            ));
        };
        let latency = self.net.now().saturating_sub(Duration::from_micros(us));
        let over = self.session.transport();
        self.arrived(
            latency,
            format!("push #{i} over {over}, one way {}", ms(latency)),
        );
        Ok(())
    }
}
