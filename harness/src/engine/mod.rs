//! Network engines: the one small abstraction the client, server, models and driver run on.
//!
//! An [`Engine`] runs a [`Topology`] (named hosts, each with its software, one client, the
//! link settings and the interceptions) and gives each host a [`Net`]: listen, connect,
//! spawn, the clock, and link faults. Code written against [`Net`] never knows which engine
//! runs it. Engines:
//!
//! - [`turmoil`](self::turmoil): turmoil 0.7's `Sim`, a tick-driven deterministic simulator.
//!
//! An engine must be deterministic for a given seed: the same topology and seed give the same
//! sequence of events, byte for byte.

pub mod turmoil;

use std::fmt;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use futures_util::future::LocalBoxFuture;
use tokio::io::{AsyncRead, AsyncWrite};

/// A connected byte stream on some engine.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// Aborts the connection: the peer's next read fails with `ConnectionReset`.
    fn reset(self: Box<Self>);
    /// The peer's address, as text (a balancer's source hash reads it).
    fn peer(&self) -> String;
}

/// A boxed [`Io`].
pub type Stream = Box<dyn Io>;

/// A bound listening socket.
pub trait Listener {
    /// The next accepted connection.
    fn accept(&mut self) -> LocalBoxFuture<'_, io::Result<Stream>>;
}

/// A fault to set on the link between two hosts, both directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkFault {
    /// Hold every message on the link until released; nothing is lost.
    Hold,
    /// Deliver what was held, and everything after.
    Release,
}

/// A host's view of the network.
pub trait Net {
    /// This host's name.
    fn host(&self) -> &str;
    /// Listens on `port` on every address of this host.
    fn listen(&self, port: u16) -> LocalBoxFuture<'_, io::Result<Box<dyn Listener>>>;
    /// Connects to `host:port`. The network may deliver the connection elsewhere (see
    /// [`Topology::intercept`]); the caller cannot tell.
    fn connect(&self, host: &str, port: u16) -> LocalBoxFuture<'_, io::Result<Stream>>;
    /// Time since the simulation started (simulated time on simulated engines).
    fn now(&self) -> Duration;
    /// Completes when [`Net::now`] reaches `at`.
    fn sleep_until(&self, at: Duration) -> LocalBoxFuture<'static, ()>;
    /// Runs `task` on this host, concurrently with the caller.
    fn spawn(&self, task: LocalBoxFuture<'static, ()>);
    /// Sets a fault on the link between hosts `a` and `b`.
    fn link_fault(&self, a: &str, b: &str, fault: LinkFault);
}

/// A shared handle to a host's [`Net`].
pub type NetRef = Rc<dyn Net>;

/// A host's software: called with the host's network each time the host starts. It runs for
/// as long as the simulation does.
pub type Software = Rc<dyn Fn(NetRef) -> LocalBoxFuture<'static, anyhow::Result<()>>>;

/// The client's software: the simulation ends when it returns.
pub type ClientSoftware = Box<dyn FnOnce(NetRef) -> LocalBoxFuture<'static, anyhow::Result<()>>>;

/// Latency on every link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkConfig {
    /// One-way latency of each message.
    pub latency: Duration,
    /// Extra latency drawn from the run's seed, up to this much.
    pub jitter: Duration,
}

/// Hosts, the client and how the network joins them.
pub struct Topology {
    pub(crate) hosts: Vec<(String, Software)>,
    pub(crate) client: Option<(String, ClientSoftware)>,
    pub(crate) intercepts: Vec<Intercept>,
    pub(crate) link: LinkConfig,
    pub(crate) limit: Duration,
}

/// Connections from `from` to `to` are delivered to `via` instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Intercept {
    pub from: String,
    pub to: String,
    pub via: String,
}

impl fmt::Debug for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Topology")
            .field(
                "hosts",
                &self.hosts.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("client", &self.client.as_ref().map(|(n, _)| n))
            .field("intercepts", &self.intercepts)
            .field("link", &self.link)
            .finish()
    }
}

impl Topology {
    /// An empty topology whose links have `link`'s latency; the engine stops the simulation
    /// at simulated time `limit` if the client has not finished.
    pub fn new(link: LinkConfig, limit: Duration) -> Self {
        Self {
            hosts: Vec::new(),
            client: None,
            intercepts: Vec::new(),
            link,
            limit,
        }
    }

    /// Adds a host running `software`.
    pub fn host(&mut self, name: &str, software: Software) {
        self.hosts.push((name.to_string(), software));
    }

    /// Sets the client; the simulation ends when it returns.
    pub fn client(&mut self, name: &str, software: ClientSoftware) {
        self.client = Some((name.to_string(), software));
    }

    /// Delivers connections that `from` opens to `to` to host `via` instead: transparent
    /// interception. `from` believes it reached `to`.
    pub fn intercept(&mut self, from: &str, to: &str, via: &str) {
        self.intercepts.push(Intercept {
            from: from.to_string(),
            to: to.to_string(),
            via: via.to_string(),
        });
    }
}

/// What went wrong inside an engine: a harness fault, never a network misbehaviour (those are
/// outcomes).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The topology has no client.
    #[error("the topology has no client")]
    NoClient,
    /// The simulation reached its time limit before the client finished.
    #[error("the client had not finished after {0:?} of simulated time")]
    TimeLimit(Duration),
    /// A host's software failed.
    #[error("host software failed: {0}")]
    Software(String),
}

/// A simulator.
pub trait Engine {
    /// The engine's name, as `--engine` spells it.
    fn name(&self) -> &'static str;
    /// Runs the topology with `seed` until the client returns; gives the simulated time at
    /// which it did.
    fn run(&self, topology: Topology, seed: u64) -> Result<Duration, EngineError>;
}

/// The engines, by name, in the order `--engine` lists them.
pub const ENGINES: &[&str] = &["turmoil"];

/// The engine called `name`.
pub fn by_name(name: &str) -> Option<Box<dyn Engine>> {
    match name {
        "turmoil" => Some(Box::new(self::turmoil::Turmoil)),
        _ => None,
    }
}
