//! `gauntlet serve`: the reference [`server`] (`/echo`, `/push` and their query options) on
//! real sockets, for WebSocket clients written elsewhere, until interrupted.
//!
//! The server is a run on the [`live`](crate::engine::live) engine: one host, named
//! [`SERVER`], runs [`server::software`] after publishing the listening address for port 80
//! (ws) and, when TLS is asked for, the TLS listening address for port 443 (wss), so its
//! listeners bind there. The run's client is the caller's: it learns the bound addresses and
//! waits for the interruption ([`run`]). It runs as [`Plan::workers`] copies, one thread
//! each, on the same addresses (see [`standing::run_workers`]), sharing one [`Intake`] and one
//! [`EngineIo`] (an Engine.IO client's requests reach any worker).
//!
//! The server holds connections within [`server::Limits`] (by default [`Limits::SERVE`],
//! nginx's as Debian ships it): a client that does not finish its request head in time is
//! closed, and connections beyond the maximum are closed as soon as they are accepted.
//!
//! wss needs a certificate: [`Tls::generate`] makes a fresh CA and a certificate signed by
//! it for `localhost` and the TLS listening address's IP, and gives the CA's PEM, which the
//! caller hands to clients so they can trust the server. Both are ECDSA P-256, which every
//! client accepts (browsers do not take Ed25519, the simulated runs' choice), and the server
//! speaks TLS 1.2 and 1.3 unless pinned to one (`--tls-version`): a reverse proxy's upstream
//! session may offer 1.2 at most, as nginx's does before 1.23.4. It sends no TLS 1.3 session
//! tickets (see [`Tls::generate`]).

use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::future::LocalBoxFuture;

use crate::endpoints::engineio::{self, EngineIo};
use crate::endpoints::server;
use crate::endpoints::server::Limits;
use crate::engine::{Intake, Topology};
use crate::real::standing::{self, StandingError};
use crate::tls;
use crate::tls::{KeyKind, TlsError, TlsVersions};
use crate::verdict::transcript::Transcript;

/// The host that runs the reference server.
pub const SERVER: &str = "server";

/// The port the server's ws listener has in the run.
const WS_PORT: u16 = 80;

/// The port the server's wss listener has in the run.
const WSS_PORT: u16 = 443;

/// The TLS side of `gauntlet serve`: where to listen and what to present.
#[derive(Debug, Clone)]
pub struct Tls {
    /// Where the wss listener listens (port 0: an ephemeral port).
    pub listen: SocketAddr,
    /// Presents a certificate signed by the CA whose PEM is [`Tls::ca_pem`].
    pub config: Arc<rustls::ServerConfig>,
    /// The CA's certificate, PEM, for clients to trust.
    pub ca_pem: String,
}

impl Tls {
    /// A fresh CA and a server certificate it signs for `localhost` and `listen`'s IP, both
    /// ECDSA P-256; the server accepts `versions`.
    pub fn generate(listen: SocketAddr, versions: TlsVersions) -> Result<Self, TlsError> {
        let ca = tls::Ca::generate_with("gauntlet serve CA", KeyKind::EcdsaP256)?;
        Self::signed_by(&ca, listen, versions)
    }

    /// A server certificate signed by `ca` for `localhost` and `listen`'s IP (its key of the
    /// CA's kind); the server accepts `versions` and sends no TLS 1.3 session tickets, as
    /// [`Tls::generate`]'s does.
    pub fn signed_by(
        ca: &tls::Ca,
        listen: SocketAddr,
        versions: TlsVersions,
    ) -> Result<Self, TlsError> {
        let names = ["localhost".to_string(), listen.ip().to_string()];
        let mut config = ca.server_config(&names, versions)?;
        // No TLS 1.3 session tickets. They arrive just after the handshake, as a client sends
        // its upgrade request, and a client that reads and writes one OpenSSL connection from
        // two threads at once (Python websockets' sync client: its reader thread starts
        // before the request goes out; CPython's ssl module does not serialise the two, and
        // OpenSSL forbids it) sometimes loses the request or its view of the stream: measured
        // under load, 12 of 3,000 connections hung or failed with tickets, none of 3,000
        // without. Resumption is worth nothing here: the CA is new at each start.
        Arc::make_mut(&mut config).send_tls13_tickets = 0;
        Ok(Self {
            listen,
            config,
            ca_pem: ca.root_pem().to_string(),
        })
    }
}

/// What `gauntlet serve` runs.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Where the ws listener listens (port 0: an ephemeral port).
    pub listen: SocketAddr,
    /// The wss listener, if asked for.
    pub tls: Option<Tls>,
    /// What the server refuses to hold (its connection limit for all workers together).
    pub limits: Limits,
    /// How many copies of the server run, one thread each, on the same addresses.
    pub workers: usize,
    /// The Engine.IO settings (the sessions are shared by every worker).
    pub engineio: engineio::Options,
}

/// Where the server listens, once bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    /// The ws listener's address.
    pub ws: SocketAddr,
    /// The wss listener's address, if there is one.
    pub wss: Option<SocketAddr>,
}

/// The live topology for `plan`: the server, logging to `transcript` and holding
/// connections in `intake` and Engine.IO sessions in `engineio`; the caller adds the client
/// (see [`run`]).
pub fn topology(
    plan: &Plan,
    (intake, engineio): (&Intake, &EngineIo),
    transcript: &Transcript,
) -> Topology {
    let mut topology = standing::topology();
    let config = plan.tls.as_ref().map(|t| t.config.clone());
    let mut software = server::software_sharing(
        transcript.clone(),
        config,
        None,
        plan.limits.header_timeout,
        intake.clone(),
        engineio.clone(),
    );
    if let Some(tls) = &plan.tls {
        software = standing::published(WSS_PORT, tls.listen, Some(software));
    }
    software = standing::published(WS_PORT, plan.listen, Some(software));
    topology.host(SERVER, software);
    topology
}

/// Runs the server `plan` describes on `plan.workers` threads until `stop` completes;
/// `ready` learns the bound addresses once every worker listens there (see
/// [`standing::run_workers`]). The workers hold at most `plan.limits.max_connections`
/// between them.
pub fn run(
    plan: &Plan,
    transcript: Transcript,
    stop: LocalBoxFuture<'static, ()>,
    ready: impl FnOnce(Bound) + 'static,
) -> Result<(), StandingError> {
    let intake = Intake::with_limit(plan.limits.max_connections);
    // One table of sessions for every worker: a client's polls may reach any of them. Keyed
    // with the process id, so that a session id from an earlier run of the server is unknown.
    let engineio = EngineIo::with_key(plan.engineio, u64::from(std::process::id()));
    let mut listeners = vec![(SERVER.to_string(), WS_PORT)];
    if plan.tls.is_some() {
        listeners.push((SERVER.to_string(), WSS_PORT));
    }
    let mine = plan.clone();
    let build: standing::Build = Arc::new(move |worker| {
        let mut plan = mine.clone();
        if let Some(bound) = &worker.bound {
            if let Some(&ws) = bound.first() {
                plan.listen = ws;
            }
            if let (Some(tls), Some(&wss)) = (plan.tls.as_mut(), bound.get(1)) {
                tls.listen = wss;
            }
        }
        topology(&plan, (&intake, &engineio), &worker.transcript)
    });
    standing::run_workers(
        plan.workers,
        transcript,
        "serve",
        listeners,
        build,
        stop,
        move |bound| {
            if let Some(&ws) = bound.first() {
                ready(Bound {
                    ws,
                    wss: bound.get(1).copied(),
                });
            }
        },
    )
}
