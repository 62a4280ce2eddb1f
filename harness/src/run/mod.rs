//! One run: a scenario, a scheme and a seed, on an engine. Builds the topology (client, hops,
//! server), runs it, and turns what the client saw into a verdict.

pub mod bench;
mod crowd;
pub mod file;
pub mod overhead;
pub mod suite;

pub use crowd::{CrowdOutput, run_crowd};

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use gauntlet_proxies::tls_intercepting_proxy::Material;
use gauntlet_proxies::{HopEnv, ModelSpec};
use gauntlet_reports::Latency;
use tokio::sync::Notify;

use crate::driver::hop_software;
use crate::endpoints::client::{self, Plan, ProxyPlan, Report};
use crate::endpoints::server;
use crate::endpoints::strategy;
use crate::endpoints::wire::Wire;
use crate::engine::{
    Engine, EngineError, EventLog, Intake, LinkConfig, NetRef, Software, Topology,
};
use crate::real::hop::{self, Started};
use crate::real::product::command::Role;
use crate::scenario::{Hop, Route, Scenario, Scheme, host_names};
use crate::tls::{Ca, Tls, TlsError, TlsVersions, client_config};
use crate::verdict::outcome::Outcome;
use crate::verdict::transcript::{self, Entry, Transcript};

/// What one run produced.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// The scheme run.
    pub scheme: Scheme,
    /// The seed run.
    pub seed: u64,
    /// The outcome the scenario expects.
    pub expected: Outcome,
    /// What the client saw.
    pub report: Report,
    /// When the client finished, in simulated time.
    pub sim_end: Duration,
    /// The engine's log of every socket operation in the run.
    pub events: EventLog,
    /// Percentiles of the client's message latencies.
    pub latency: Option<Latency>,
    /// Every host's log, in order.
    pub transcript: Vec<Entry>,
}

impl RunOutput {
    /// What the client saw, classified.
    pub fn outcome(&self) -> Outcome {
        self.report.outcome
    }

    /// Whether the outcome is the expected one.
    pub fn pass(&self) -> bool {
        self.report.outcome == self.expected
    }

    /// The median latency (round trip for echo, one way for push).
    pub fn median_latency(&self) -> Option<Duration> {
        let mut l = self.report.latencies.clone();
        l.sort();
        l.get(l.len().saturating_sub(1) / 2).copied()
    }

    /// The run's transcript as text.
    pub fn rendered(&self) -> String {
        transcript::render(&self.transcript)
    }
}

/// Why the harness could not carry out a run: a fault of the harness or of the scenario's
/// setup, never of the network (a misbehaving network ends in an outcome).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The scenario does not run this scheme (it expects nothing for it).
    #[error("{file} does not run {scheme}")]
    Scheme {
        /// The scenario file.
        file: String,
        /// The scheme asked for.
        scheme: Scheme,
    },
    /// An engine name that is not one of [`crate::engine::ENGINES`].
    #[error("unknown engine `{name}`: expected one of {}", crate::engine::ENGINES.join(", "))]
    UnknownEngine {
        /// The name as given.
        name: String,
    },
    /// The run's TLS material could not be made.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A hop that a real program stands for cannot stand where it is.
    #[error("{file}: hop {hop} is {why}")]
    Placement {
        /// The scenario file.
        file: String,
        /// The hop's place in the path, from 1.
        hop: usize,
        /// Why it cannot stand there.
        why: Placement,
    },
    /// The engine refused the topology or ended the run on a fault (a host's software
    /// failed, the time limit passed).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The client's software ended without leaving its report.
    #[error("the client finished without a report")]
    NoReport,
    /// A real program in the path stopped listening during the run (it exited, or closed a
    /// listener): what the client saw after it went says nothing of the path the scenario
    /// describes. Recorded as outcome [`PROGRAM_EXITED`](suite::PROGRAM_EXITED).
    #[error("{0}")]
    ProgramExited(String),
}

/// Why a command hop cannot stand where a scenario puts it ([`RunError::Placement`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Placement {
    /// A forward proxy's command anywhere but first on an explicit route.
    #[error(
        "a forward proxy's command, which must be the first hop of a client with route = \"explicit\""
    )]
    ForwardNotFirst,
    /// A reverse proxy's command without a TLS listener in a wss run.
    #[error(
        "a command without a TLS listener, which carries ws only (give it {{tls_listen}} with {{cert}} and {{key}} to carry wss)"
    )]
    CommandOnWss,
    /// A reverse proxy's command before several backends.
    #[error("a command, which has one upstream")]
    CommandUpstreams,
}

/// The TLS side of interception and offload: each `tls-intercepting-proxy` hop gets its own
/// corporate CA and a certificate for every name (as does each `l7-balancer` that terminates
/// TLS, from a "public" CA every client trusts); the client trusts the run's CA and each corporate CA whose
/// hop says `client-trusts-ca`; an interceptor's upstream session trusts the run's CA and the
/// CAs of interceptors further along the path. Their certificates accept TLS 1.2 and 1.3
/// (`[server] tls-version` pins the reference server only). Returns the client's
/// configuration and each hop's environment.
fn interception(
    path: &[Hop],
    hops: &[String],
    names: &[String],
    run_ca: &Ca,
    tls: &Tls,
) -> Result<(std::sync::Arc<rustls::ClientConfig>, Vec<HopEnv>), TlsError> {
    let mut cas = Vec::new();
    for (i, hop) in path.iter().enumerate() {
        match hop.model() {
            Some(ModelSpec::TlsInterceptingProxy(p)) => {
                let ca = Ca::generate(&format!("Gauntlet corporate CA ({})", hops[i]))?;
                cas.push((i, p.client_trusts_ca, ca));
            }
            Some(ModelSpec::L7Balancer(p)) if p.terminate_tls => {
                // A public site's certificate: every client trusts it.
                let ca = Ca::generate(&format!("Gauntlet public CA ({})", hops[i]))?;
                cas.push((i, true, ca));
            }
            _ => {}
        }
    }
    if cas.is_empty() {
        return Ok((tls.client.clone(), vec![HopEnv::default(); path.len()]));
    }
    let mut trusted = vec![run_ca];
    trusted.extend(cas.iter().filter(|c| c.1).map(|c| &c.2));
    let client = client_config(&trusted)?;
    let mut envs = vec![HopEnv::default(); path.len()];
    for (i, _, ca) in &cas {
        let mut further = vec![run_ca];
        further.extend(cas.iter().filter(|c| c.0 > *i).map(|c| &c.2));
        envs[*i].tls = Some(Material {
            server: ca.server_config(names, TlsVersions::Any)?,
            upstream: client_config(&further)?,
        });
    }
    Ok((client, envs))
}

/// What a command hop is given of TLS: a certificate from the run's CA for `names`, and the CA.
fn command_tls(run_ca: &Ca, names: &[String]) -> Result<hop::CommandTls, TlsError> {
    let (cert, key) = run_ca.issue_pem(names)?;
    Ok(hop::CommandTls {
        cert,
        key,
        ca: run_ca.root_pem().to_string(),
    })
}

/// The scenario's hosts and network for `scheme` and `seed`, logging to `t`, and the plan for
/// its client; the caller adds the client.
fn build(
    scenario: &Scenario,
    scheme: Scheme,
    seed: u64,
    t: &Transcript,
    started: &Started,
) -> Result<(Topology, Plan), RunError> {
    let (hops, servers) = host_names(&scenario.path);
    let mut names = hops.clone();
    names.extend(servers.iter().cloned());
    if !names.iter().any(|n| n == "server") {
        // The name a transparently intercepted client dials.
        names.push("server".to_string());
    }
    let (tls, run_ca) = Tls::generate_with(&names, scenario.server.tls_version)?;
    let (client_tls, envs) = interception(&scenario.path, &hops, &names, &run_ca, &tls)?;
    let link = LinkConfig::new(
        Duration::from_millis(scenario.network.latency_ms),
        Duration::from_millis(scenario.network.jitter_ms),
    );
    let mut topology = Topology::new(link, scenario.time_limit());
    for name in &servers {
        let crash = scenario
            .faults
            .iter()
            .filter(|f| &f.crash == name)
            .map(|f| f.at)
            .min();
        let software = match &scenario.server.command {
            Some(command) => hop::server_software(command.clone(), started.clone(), t.clone()),
            None => server::software(t.clone(), Some(tls.server.clone()), crash),
        };
        topology.host(name, software);
    }
    let stop = (scenario.client.workload.stop_proxy_after).map(|_| Arc::new(Notify::new()));
    // The first hop's software, told to stop when the client says (`stop-proxy-after`).
    let real = |software: Software, i: usize| match (&stop, i) {
        (Some(stop), 0) => hop::stopped_by(software, stop.clone(), started.clone(), t.clone()),
        _ => software,
    };
    for (i, hop) in scenario.path.iter().enumerate() {
        let placement = |why| RunError::Placement {
            file: scenario.file.clone(),
            hop: i + 1,
            why,
        };
        let upstreams = match hops.get(i + 1) {
            Some(next) => vec![next.clone()],
            None => servers.clone(),
        };
        let spec = match hop {
            Hop::Model(spec) => spec,
            Hop::Product(p) => {
                let tls = run_ca.issue_pem(&names)?;
                topology.host(
                    &hops[i],
                    real(
                        hop::product_software(
                            p.clone(),
                            upstreams,
                            tls,
                            started.clone(),
                            t.clone(),
                        ),
                        i,
                    ),
                );
                continue;
            }
            Hop::Command(c) if c.command.role() == Role::Forward => {
                let tls = command_tls(&run_ca, &names)?;
                if (i, scenario.client.route) != (0, Route::Explicit) {
                    return Err(placement(Placement::ForwardNotFirst));
                }
                topology.host(
                    &hops[i],
                    real(
                        hop::command_software(c.clone(), None, tls, started.clone(), t.clone()),
                        i,
                    ),
                );
                continue;
            }
            Hop::Command(c) if scheme == Scheme::Wss && !c.command.tls_listener() => {
                return Err(placement(Placement::CommandOnWss));
            }
            Hop::Command(c) => {
                let [upstream] = upstreams.as_slice() else {
                    return Err(placement(Placement::CommandUpstreams));
                };
                let tls = command_tls(&run_ca, &names)?;
                topology.host(
                    &hops[i],
                    real(
                        hop::command_software(
                            c.clone(),
                            Some(upstream.clone()),
                            tls,
                            started.clone(),
                            t.clone(),
                        ),
                        i,
                    ),
                );
                continue;
            }
        };
        topology.host(
            &hops[i],
            hop_software(
                Rc::new(spec.clone()),
                envs[i].clone(),
                upstreams,
                vec![80, 443, client::PROXY_PORT],
                seed ^ ((i as u64 + 1) << 32),
                t.clone(),
                (Intake::unlimited(), stop.clone().filter(|_| i == 0)),
            ),
        );
    }
    let mut proxy = None;
    let host = match (scenario.client.route, scenario.path.is_empty()) {
        (Route::Direct, false) => hops[0].clone(),
        (Route::Explicit, false) => {
            proxy = Some(ProxyPlan {
                host: hops[0].clone(),
                port: client::PROXY_PORT,
                credentials: scenario.client.proxy_credentials.clone(),
                // A real proxy cannot resolve the run's host names: it is given the address.
                real_target: scenario.path[0].is_real(),
            });
            "server".to_string()
        }
        (Route::Transparent, false) => {
            topology.intercept("client", "server", &hops[0]);
            "server".to_string()
        }
        (_, true) => "server".to_string(),
    };
    let plan = Plan {
        scheme,
        host,
        handshake_timeout: scenario.client.handshake_timeout,
        workload: scenario.client.workload.clone(),
        seed,
        tls: client_tls,
        ping_interval: scenario.client.ping_interval,
        proxy,
        mask: scenario.client.mask,
        path_prefix: scenario.client.path_prefix.clone(),
        subprotocols: scenario.client.subprotocols.clone(),
        wire: Wire::default(),
        browser: scenario.client.browser,
        handshake: scenario.client.handshake,
        request: scenario.client.request.clone(),
        stop_proxy: stop,
    };
    Ok((topology, plan))
}

/// Runs `scenario` for `scheme` with `seed` on `engine`.
pub fn run(
    engine: &dyn Engine,
    scenario: &Scenario,
    scheme: Scheme,
    seed: u64,
) -> Result<RunOutput, RunError> {
    let expected = scenario.expected(scheme).ok_or_else(|| RunError::Scheme {
        file: scenario.file.clone(),
        scheme,
    })?;
    let t = Transcript::default();
    let started = Started::default();
    let (mut topology, plan) = build(scenario, scheme, seed, &t, &started)?;
    let slot: Rc<RefCell<Option<Report>>> = Rc::default();
    let (out, ct) = (slot.clone(), t.clone());
    let sessions = scenario.client.sessions as usize;
    let strategy = scenario.strategy.clone();
    let wire = plan.wire.clone();
    topology.client(
        "client",
        Box::new(move |net: NetRef| {
            async move {
                let report = match &strategy {
                    Some(s) => strategy::run(net, plan, s, ct).await,
                    None if sessions > 1 => client::run_sessions(net, plan, sessions, ct).await,
                    None => client::run(net, plan, ct).await,
                };
                *out.borrow_mut() = Some(report);
                Ok(())
            }
            .boxed_local()
        }),
    );
    let end = engine.run(topology, seed);
    let at = end.as_ref().map_or(Duration::ZERO, |e| e.at);
    let gone = started.stop_all(&t, at);
    let end = end?;
    if let Some(first) = gone.into_iter().next() {
        return Err(RunError::ProgramExited(first));
    }
    let mut report = slot.borrow_mut().take().ok_or(RunError::NoReport)?;
    report.wire = wire.bytes();
    let latency = crate::verdict::metrics::latency(&report.latencies);
    crate::verdict::metrics::apply_bounds(&scenario.bounds, latency.as_ref(), &mut report);
    if report.outcome == Outcome::Degraded {
        t.log(
            end.at,
            "client",
            format!("outcome degraded: {}", report.detail),
        );
    }
    let mut entries = t.entries();
    entries.sort_by_key(|e| e.at);
    Ok(RunOutput {
        scheme,
        seed,
        expected,
        report,
        sim_end: end.at,
        latency,
        events: end.events,
        transcript: entries,
    })
}
