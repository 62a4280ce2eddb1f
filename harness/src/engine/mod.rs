//! Network engines: the one small abstraction the client, server, models and driver run on.
//!
//! An [`Engine`] runs a [`Topology`] (named hosts, each with its software, one client, the
//! link settings and the interceptions) and gives each host a [`Net`]: listen, connect,
//! spawn, the clock, and link faults. Code written against [`Net`] never knows which engine
//! runs it. Engines:
//!
//! - [`sim`] (the default): a stream-level network the harness owns, on tokio's
//!   paused clock. It jumps from event to event, so idle simulated time costs nothing.
//! - [`turmoil`]: turmoil 0.7's `Sim`, a tick-driven deterministic simulator,
//!   kept as an independent cross-check.
//! - [`live`]: real TCP sockets on 127.0.0.1 and the wall clock, so the same
//!   hosts can meet real processes (a proxy the harness did not write, a real client).
//!
//! A simulated engine must be deterministic for a given seed: the same topology and seed give
//! the same sequence of events, byte for byte (the live engine cannot be). Each engine records every socket operation a host makes
//! (connect, accept, read, write, FIN, reset, with its simulated time) in an [`EventLog`],
//! whose hash a run reports.

pub mod live;
pub(crate) mod local;
pub(crate) mod scratch;
pub mod sim;
pub mod turmoil;

use std::collections::BTreeMap;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
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

/// How long a server waits after a transient accept failure before it accepts again.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Whether an accept failure passes: the process or system is out of descriptors or memory
/// for now (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`), or one connection went away before it
/// was accepted. A server logs it, waits [`ACCEPT_BACKOFF`] and accepts again, as nginx and
/// HAProxy do; any other failure means the listener itself is gone.
pub fn accept_error_is_transient(e: &io::Error) -> bool {
    const ENOMEM: i32 = 12;
    const ENFILE: i32 = 23;
    const EMFILE: i32 = 24;
    const ENOBUFS: i32 = 105;
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::OutOfMemory
    ) || matches!(e.raw_os_error(), Some(ENOMEM | ENFILE | EMFILE | ENOBUFS))
}

/// How a server or a hop takes connections: the numbers it gives them, and how many it holds
/// at once. Clones share both, so copies of one server on several threads (the workers of
/// `gauntlet proxy` and `gauntlet serve`) number their connections as one and hold at most
/// the limit between them. Thread-safe, and deterministic on one thread: the simulated
/// engines' runs get the same numbers for the same seed.
#[derive(Debug, Clone, Default)]
pub struct Intake {
    ids: Arc<AtomicU64>,
    limit: Option<(usize, Arc<tokio::sync::Semaphore>)>,
}

/// A place among an [`Intake`]'s connections, held while the connection is open.
#[derive(Debug)]
pub struct Held {
    _place: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Intake {
    /// An intake that holds any number of connections.
    pub fn unlimited() -> Self {
        Self::default()
    }

    /// An intake that holds at most `max` connections at once (at least 1).
    pub fn limited(max: usize) -> Self {
        let max = max.clamp(1, tokio::sync::Semaphore::MAX_PERMITS);
        Self {
            ids: Arc::default(),
            limit: Some((max, Arc::new(tokio::sync::Semaphore::new(max)))),
        }
    }

    /// An intake limited to `max` when there is one.
    pub fn with_limit(max: Option<usize>) -> Self {
        max.map_or_else(Self::unlimited, Self::limited)
    }

    /// The limit, if any.
    pub fn max(&self) -> Option<usize> {
        self.limit.as_ref().map(|(max, _)| *max)
    }

    /// The next connection number: 1, 2, 3, … across every clone.
    pub fn next_id(&self) -> u64 {
        self.ids.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Whether every place is taken now.
    pub fn full(&self) -> bool {
        self.limit
            .as_ref()
            .is_some_and(|(_, places)| places.available_permits() == 0)
    }

    /// Waits until a place is free, without taking it: a listener that waits here before it
    /// accepts leaves connections beyond the limit in the kernel's listen queue.
    pub async fn until_free(&self) {
        if let Some((_, places)) = &self.limit {
            // The semaphore is never closed, so this only waits.
            drop(places.acquire().await);
        }
    }

    /// Takes a place, waiting for one to be free (another clone may have taken the last
    /// one since [`Intake::until_free`]).
    pub async fn hold(&self) -> Held {
        match &self.limit {
            Some((_, places)) => Held {
                _place: places.clone().acquire_owned().await.ok(),
            },
            None => Held { _place: None },
        }
    }

    /// Takes a place if one is free now.
    pub fn try_hold(&self) -> Option<Held> {
        match &self.limit {
            Some((_, places)) => places
                .clone()
                .try_acquire_owned()
                .ok()
                .map(|p| Held { _place: Some(p) }),
            None => Some(Held { _place: None }),
        }
    }
}

/// A bound listening socket.
pub trait Listener {
    /// The next accepted connection.
    fn accept(&mut self) -> LocalBoxFuture<'_, io::Result<Stream>>;
}

/// A fault to set on the link between two hosts, both directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkFault {
    /// A partition: the link carries nothing, and TCP keeps what it could not send. Nothing is
    /// lost: once released, everything held is delivered, in order.
    Hold,
    /// Repairs the link: delivers what was held, and everything after; lifts a blackhole for
    /// new connections.
    Release,
    /// A blackhole: bytes sent over the link vanish and the peer sees nothing; connection
    /// attempts get no answer. A stream that lost bytes stays silent for good, so no stream
    /// ever delivers a byte out of order.
    Blackhole,
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
    /// Live engines only: the real address at which `host:port` accepts connections, or did
    /// (a listener that has closed keeps its address, where connecting is refused; the
    /// literal host: interception rules are not applied). `None` on simulated engines, and
    /// for a port nobody has listened on or published.
    fn real_addr(&self, host: &str, port: u16) -> Option<SocketAddr> {
        let _ = (host, port);
        None
    }
    /// Live engines only: declares that this host serves `port` at `addr` (for example a
    /// proxy process the harness started, or an address outside the run); connections to
    /// this host's `port` go there. Simulated engines refuse with `Unsupported`.
    fn publish(&self, port: u16, addr: SocketAddr) -> io::Result<()> {
        let _ = (port, addr);
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "only a live engine can publish a real address",
        ))
    }
    /// Live engines only: this host is starting a real program, and the client must not start
    /// before it is up. Each call is matched by one [`Net::started`].
    fn starting(&self) {}
    /// Live engines only: the program announced by [`Net::starting`] is up, or failed.
    fn started(&self) {}
}

/// A shared handle to a host's [`Net`].
pub type NetRef = Rc<dyn Net>;

/// A host's software: called with the host's network each time the host starts. It runs for
/// as long as the simulation does.
pub type Software = Rc<dyn Fn(NetRef) -> LocalBoxFuture<'static, anyhow::Result<()>>>;

/// The client's software: the simulation ends when it returns.
pub type ClientSoftware = Box<dyn FnOnce(NetRef) -> LocalBoxFuture<'static, anyhow::Result<()>>>;

/// A link's behaviour, each direction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkConfig {
    /// One-way latency of each message.
    pub latency: Duration,
    /// Extra latency drawn from the run's seed, up to this much.
    pub jitter: Duration,
    /// Bytes per second each direction carries; `None` for no limit.
    pub bandwidth: Option<u64>,
    /// Probability that a packet (1460 bytes or part) is lost. TCP resends it, so a loss
    /// delays the stream by a retransmission timeout; it never loses or changes bytes.
    pub loss: f64,
}

impl LinkConfig {
    /// A link with `latency` and up to `jitter` more, no bandwidth limit and no loss.
    pub fn new(latency: Duration, jitter: Duration) -> Self {
        Self {
            latency,
            jitter,
            bandwidth: None,
            loss: 0.0,
        }
    }
}

/// Bytes each direction of a connection holds in flight and unread (send buffer plus the
/// receive window) before a writer waits, unless [`Topology::buffer`] says otherwise.
pub const DEFAULT_BUFFER: usize = 256 * 1024;

/// Hosts, the client and how the network joins them.
pub struct Topology {
    pub(crate) hosts: Vec<(String, Software)>,
    pub(crate) client: Option<(String, ClientSoftware)>,
    pub(crate) intercepts: Vec<Intercept>,
    pub(crate) link: LinkConfig,
    /// Links that differ from `link`, by host pair (the smaller name first).
    pub(crate) links: BTreeMap<(String, String), LinkConfig>,
    /// Hosts that crash, and when.
    pub(crate) crashes: Vec<(String, Duration)>,
    pub(crate) buffer: usize,
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
            .field("links", &self.links)
            .field("crashes", &self.crashes)
            .field("buffer", &self.buffer)
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
            links: BTreeMap::new(),
            crashes: Vec::new(),
            buffer: DEFAULT_BUFFER,
            limit,
        }
    }

    /// Gives the link between `a` and `b` its own settings.
    pub fn link(&mut self, a: &str, b: &str, config: LinkConfig) {
        self.links.insert(pair(a, b), config);
    }

    /// The settings of the link between `a` and `b`.
    pub fn link_between(&self, a: &str, b: &str) -> LinkConfig {
        self.links.get(&pair(a, b)).copied().unwrap_or(self.link)
    }

    /// Crashes host `name` at simulated time `at`, as a machine losing power: its software
    /// stops, its listeners close, and its connections go silent; peers hear nothing at all.
    pub fn crash(&mut self, name: &str, at: Duration) {
        self.crashes.push((name.to_string(), at));
    }

    /// Sets how many bytes each direction of a connection holds before a writer waits.
    pub fn buffer(&mut self, bytes: usize) {
        self.buffer = bytes.max(1);
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

impl Topology {
    /// The first link or buffer setting an engine on real (or turmoil's) TCP cannot honour:
    /// a bandwidth limit, packet loss, or a buffer size other than the default.
    pub(crate) fn shaping(&self) -> Option<String> {
        for link in std::iter::once(&self.link).chain(self.links.values()) {
            if link.bandwidth.is_some() {
                return Some("link bandwidth".into());
            }
            if link.loss > 0.0 {
                return Some("packet loss".into());
            }
        }
        (self.buffer != DEFAULT_BUFFER).then(|| "buffer sizes".into())
    }
}

/// Where a connection `from` opens to `to` is delivered: the intercepting host, if any.
pub(crate) fn route<'a>(intercepts: &'a [Intercept], from: &str, to: &'a str) -> &'a str {
    intercepts
        .iter()
        .find(|i| i.from == from && i.to == to)
        .map_or(to, |i| i.via.as_str())
}

/// The key of the link between `a` and `b`: the pair in name order.
pub(crate) fn pair(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_string(), b.to_string())
    } else {
        (b.to_string(), a.to_string())
    }
}

/// A running record of every socket operation in a run, kept as a count and an FNV-1a hash
/// of its lines (`{micros} {host} {what}`), so it costs no memory however long the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventLog {
    hash: u64,
    count: u64,
}

impl Default for EventLog {
    fn default() -> Self {
        Self {
            hash: 0xcbf2_9ce4_8422_2325,
            count: 0,
        }
    }
}

impl EventLog {
    /// Adds a line.
    pub fn record(&mut self, at: Duration, host: &str, what: fmt::Arguments<'_>) {
        use fmt::Write;
        let _ = writeln!(self, "{} {host} {what}", at.as_micros());
        self.count += 1;
    }

    /// Lines recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The hash of every line so far.
    pub fn hash(&self) -> u64 {
        self.hash
    }
}

impl fmt::Write for EventLog {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            self.hash ^= u64::from(b);
            self.hash = self.hash.wrapping_mul(0x0100_0000_01b3);
        }
        Ok(())
    }
}

/// Records a stream read's result as every engine's event log words it: `read N`, `read end`
/// or `read KIND`; nothing while it waits. `got` is how many bytes it read.
pub(crate) fn record_read(
    r: &Poll<io::Result<()>>,
    got: usize,
    record: impl FnOnce(fmt::Arguments<'_>),
) {
    match r {
        Poll::Ready(Ok(())) if got == 0 => record(format_args!("read end")),
        Poll::Ready(Ok(())) => record(format_args!("read {got}")),
        Poll::Ready(Err(e)) => record(format_args!("read {:?}", e.kind())),
        Poll::Pending => {}
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunEnd {
    /// The simulated time at which the client returned.
    pub at: Duration,
    /// The run's event log.
    pub events: EventLog,
}

/// What went wrong inside an engine: a harness fault, never a network misbehaviour (those are
/// outcomes).
#[derive(Debug, Clone, thiserror::Error)]
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
    /// The topology asks for something this engine does not model.
    #[error("the {engine} engine does not model {what}")]
    Unsupported {
        /// The engine.
        engine: &'static str,
        /// What it lacks.
        what: String,
    },
    /// The engine could not start.
    #[error("the engine could not start: {0}")]
    Start(String),
}

/// A simulator.
pub trait Engine {
    /// The engine's name, as `--engine` spells it.
    fn name(&self) -> &'static str;
    /// Runs the topology with `seed` until the client returns; gives the simulated time at
    /// which it did and the run's event log.
    fn run(&self, topology: Topology, seed: u64) -> Result<RunEnd, EngineError>;
}

/// The engines, by name, in the order `--engine` lists them; the first is the default.
pub const ENGINES: &[&str] = &["sim", "turmoil", "live"];

/// The simulated engines: deterministic, on simulated time (the ones the cross-checks compare).
pub const SIMULATED: &[&str] = &["sim", "turmoil"];

/// The default engine's name.
pub const DEFAULT: &str = ENGINES[0];

/// The engine called `name`.
pub fn by_name(name: &str) -> Option<Box<dyn Engine>> {
    match name {
        "sim" => Some(Box::new(self::sim::Sim)),
        "turmoil" => Some(Box::new(self::turmoil::Turmoil)),
        "live" => Some(Box::new(self::live::Live)),
        _ => None,
    }
}
