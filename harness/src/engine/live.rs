//! The `live` engine: every host as tasks on one thread, over real TCP sockets on 127.0.0.1
//! and the wall clock, so a run can meet real processes.
//!
//! - Addresses: a host's `listen(port)` binds 127.0.0.1 on an ephemeral port and registers
//!   it under (host, port); `connect(host, port)` applies the topology's interceptions, looks
//!   the pair up and connects to the real address. A pair nobody listens on is refused
//!   (`ConnectionRefused`), an unknown host is `NotFound`. [`Net::publish`] registers an
//!   address by hand (a process outside the run); a host that publishes an address and then
//!   listens on the same port binds that address. A host that is not one of the run's but a
//!   literal loopback IPv4 address (`127.0.0.1`, any of 127.0.0.0/8) is dialed directly, as
//!   an address outside the run (its streams are not gated): a forward proxy model run by
//!   `gauntlet proxy` reaches the real address a client names in its CONNECT. Any other
//!   address (`10.0.0.1`) is `NotFound`, saying only loopback is dialed.
//! - Peers: before connecting, a host binds its socket and registers the local address under
//!   its name, so the accepting side's [`Io::peer`] is the connecting host's name (what a
//!   source-hash balancer hashes), stable from run to run. A connection from outside the run
//!   gives its real address instead. A connecting side's peer is the host it reached.
//! - Time: [`Net::now`] is wall time since the run started, timers are tokio's, and the
//!   topology's limit is enforced in wall time. The client starts 10 ms after the hosts, and
//!   not before every real program a host announced ([`Net::starting`]) is up.
//! - Not modelled: latency and jitter are not applied (loopback is as fast as it is);
//!   bandwidth, loss, buffer sizes and host crashes ([`Topology::crash`]) are refused with
//!   [`EngineError::Unsupported`], as they cannot be honoured on real sockets.
//! - Link faults: every stream between two hosts of the run passes a gate. Writes go to the
//!   stream's outbox (64 KiB; a writer waits beyond that), and a task per stream moves them
//!   to the socket while the link is open; while the outbox is empty and the link open, a
//!   write the socket takes at once goes straight to it instead. While the link is held,
//!   neither the outbox nor reads move: nothing is lost, and everything is delivered, in
//!   order, once released.
//!   A connection attempt waits for the release. A blackhole silences every stream open on
//!   the link for good: writes and FINs are swallowed, reads never complete, and its socket
//!   stays open, unheard, until the run ends; connection attempts get no answer. Streams to
//!   and from addresses outside the run are not gated.
//! - Events are recorded like the other engines', with wall-clock times, so the event log's
//!   hash differs from run to run.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::LocalBoxFuture;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::LocalSet;
use tokio::time::Instant;

use super::local::{Failure, race_client, spawn_caught, start_host, verdict};
use super::{
    Engine, EngineError, EventLog, Intercept, Io, LinkFault, Listener, Net, NetRef, RunEnd, Stream,
    Topology, pair, record_read, route,
};

/// The engine's name.
pub const NAME: &str = "live";

/// Every socket binds here: loopback, an ephemeral port.
const LOOPBACK: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

/// Bytes a stream's outbox holds before a writer waits (the kernel's buffers come after it).
const OUTBOX: usize = 64 * 1024;

/// How long the hosts run before the client starts.
const HEAD_START: Duration = Duration::from_millis(10);

/// Real TCP on 127.0.0.1, on the wall clock.
#[derive(Debug, Default)]
pub struct Live;

impl Engine for Live {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Runs the topology on real sockets. The seed is not used: nothing here is drawn at
    /// random (the hosts' software still reads its own seeds).
    fn run(&self, topology: Topology, _seed: u64) -> Result<RunEnd, EngineError> {
        self.run_since(topology, Instant::now())
    }
}

impl Live {
    /// [`Engine::run`], with the run's clock started at `start` rather than now: runs on
    /// several threads that started together (the workers of `gauntlet proxy` and `gauntlet
    /// serve`) then log on one clock.
    pub fn run_since(&self, topology: Topology, start: Instant) -> Result<RunEnd, EngineError> {
        let what = topology.shaping().or_else(|| {
            topology
                .crashes
                .first()
                .map(|(host, _)| format!("host crashes (`{host}` is to crash)"))
        });
        if let Some(what) = what {
            return Err(EngineError::Unsupported { engine: NAME, what });
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| EngineError::Start(e.to_string()))?;
        LocalSet::new().block_on(&runtime, run(topology, start))
    }
}

async fn run(topology: Topology, start: Instant) -> Result<RunEnd, EngineError> {
    let Topology {
        hosts,
        client,
        intercepts,
        limit,
        ..
    } = topology;
    let (client_name, client_software) = client.ok_or(EngineError::NoClient)?;
    let world: Shared = Arc::new(Mutex::new(World::new(start)));
    let failure = Rc::new(Failure::default());
    let starting = Rc::new(Starting::default());
    let mut names: BTreeSet<String> = hosts.iter().map(|(n, _)| n.clone()).collect();
    names.insert(client_name.clone());
    let (names, intercepts) = (Rc::new(names), Rc::new(intercepts));
    let handle = |name: &str| -> NetRef {
        Rc::new(LiveNet {
            world: world.clone(),
            start,
            name: name.to_string(),
            hosts: names.clone(),
            intercepts: intercepts.clone(),
            failure: failure.clone(),
            starting: starting.clone(),
        })
    };
    for (name, software) in &hosts {
        start_host(&handle(name), software, &failure);
    }
    // The client starts a little after the hosts, standing in for the latency that separates
    // them on the simulated engines: software that listens as it starts is listening, and
    // what hosts do at time 0 (a crash, say) has happened, before the client connects.
    tokio::time::sleep(HEAD_START).await;
    // Real programs the hosts start (a product, a proxy command) take their own time to listen.
    starting.none_left().await;
    // A limit beyond what the clock can count means no limit (a proxy that runs until
    // interrupted).
    let deadline = start.checked_add(limit);
    let limit_reached = async move {
        match deadline {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    let end = race_client(
        &failure,
        limit_reached,
        client_software(handle(&client_name)),
    )
    .await;
    let at = start.elapsed();
    verdict(&failure, end, limit)?;
    Ok(RunEnd {
        at,
        events: lock(&world).log,
    })
}

/// The loopback address `host` spells (`127.0.0.1`, any of 127.0.0.0/8), which a host dials
/// directly, outside the run; any other name that is not a host of the run is `NotFound`.
fn loopback(host: &str) -> io::Result<Ipv4Addr> {
    match host.parse::<Ipv4Addr>() {
        Ok(ip) if ip.is_loopback() => Ok(ip),
        Ok(ip) => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "no host named {ip}: only loopback addresses (127.0.0.0/8) are dialed outside \
                 the run"
            ),
        )),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no host named {host}"),
        )),
    }
}

/// The state every host's handle, stream and pump share.
type Shared = Arc<Mutex<World>>;

fn lock(world: &Shared) -> MutexGuard<'_, World> {
    world.lock().unwrap_or_else(|e| e.into_inner())
}

/// The run's addresses, links and log.
struct World {
    start: Instant,
    /// Where each (host, port) accepts connections.
    ports: BTreeMap<(String, u16), Port>,
    /// Hosts that published port 0: their every other port is there.
    anywhere: BTreeMap<String, SocketAddr>,
    /// The local address of each socket a host connected from, and the host.
    sources: BTreeMap<SocketAddr, String>,
    /// Links with a fault set at some point, by host pair.
    links: BTreeMap<(String, String), Link>,
    /// Write halves of silenced streams: their sockets stay open, unheard, until the run ends.
    silenced: Vec<OwnedWriteHalf>,
    log: EventLog,
}

/// Where a host's port is.
struct Port {
    addr: SocketAddr,
    state: PortState,
}

/// What is at a port's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortState {
    /// An address published by hand: a process outside the run, or where a listener is to
    /// bind.
    Published,
    /// A listener of the run is bound there.
    Listening,
    /// A listener of the run was bound there and has closed (its host crashed or stopped
    /// listening): connecting is refused, but the address stays the host's, so that a real
    /// program configured after the close (a product whose backend is down from the start)
    /// is given the address it would have had.
    Closed,
}

/// A link's fault state.
#[derive(Default)]
struct Link {
    held: bool,
    blackholed: bool,
    /// How many times the link was blackholed: a stream opened before the latest blackhole is
    /// silent for good.
    blackholes: u64,
    /// Tasks waiting for the link to change.
    waiting: Vec<Waker>,
}

impl World {
    fn new(start: Instant) -> Self {
        Self {
            start,
            ports: BTreeMap::new(),
            anywhere: BTreeMap::new(),
            sources: BTreeMap::new(),
            links: BTreeMap::new(),
            silenced: Vec::new(),
            log: EventLog::default(),
        }
    }

    fn record(&mut self, host: &str, what: std::fmt::Arguments<'_>) {
        let at = self.start.elapsed();
        self.log.record(at, host, what);
    }

    /// The real address of `host:port`, as registered (port 0 means not bound yet).
    fn lookup(&self, host: &str, port: u16) -> Option<SocketAddr> {
        match self.ports.get(&(host.to_string(), port)) {
            Some(p) if p.state == PortState::Closed => None,
            Some(p) => Some(p.addr),
            None => self.anywhere.get(host).copied(),
        }
    }

    /// Where `host:port` is or was: [`World::lookup`], or the address of a listener that
    /// has closed.
    fn address(&self, host: &str, port: u16) -> Option<SocketAddr> {
        match self.ports.get(&(host.to_string(), port)) {
            Some(p) => Some(p.addr),
            None => self.anywhere.get(host).copied(),
        }
    }

    /// Registers where (host, port) accepts connections, unless a listener of the run is
    /// there already (then says false).
    fn set_port(&mut self, key: (String, u16), addr: SocketAddr, state: PortState) -> bool {
        if self
            .ports
            .get(&key)
            .is_some_and(|p| p.state == PortState::Listening)
        {
            return false;
        }
        self.ports.insert(key, Port { addr, state });
        true
    }

    fn blackholes(&self, key: &(String, String)) -> u64 {
        self.links.get(key).map_or(0, |l| l.blackholes)
    }
}

/// What a link lets a stream (or a connection attempt) do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    Open,
    /// Held: wait for the release.
    Wait,
    /// Blackholed, now or since the stream opened: silent for good.
    Silent,
}

/// A stream's view of its link: which link, and how many blackholes it had when the stream
/// opened. Streams to or from outside the run have no link and are always open.
#[derive(Clone)]
struct Gate {
    world: Shared,
    link: Option<(String, String)>,
    born: u64,
}

impl Gate {
    fn new(world: &Shared, link: Option<(String, String)>) -> Self {
        let born = link.as_ref().map_or(0, |k| lock(world).blackholes(k));
        Self {
            world: world.clone(),
            link,
            born,
        }
    }

    /// What the link lets through now; when it says wait, `waker` is woken at the change.
    fn pass(&self, waker: Option<&Waker>) -> Pass {
        let Some(key) = &self.link else {
            return Pass::Open;
        };
        let mut world = lock(&self.world);
        let Some(link) = world.links.get_mut(key) else {
            return Pass::Open;
        };
        if link.blackholes > self.born {
            return Pass::Silent;
        }
        if !link.held {
            return Pass::Open;
        }
        if let Some(w) = waker {
            if !link.waiting.iter().any(|x| x.will_wake(w)) {
                link.waiting.push(w.clone());
            }
        }
        Pass::Wait
    }
}

/// A host's handle on the live network.
struct LiveNet {
    world: Shared,
    start: Instant,
    name: String,
    hosts: Rc<BTreeSet<String>>,
    intercepts: Rc<Vec<Intercept>>,
    failure: Rc<Failure>,
    starting: Rc<Starting>,
}

/// Real programs the hosts are starting; the client waits for none to be left.
#[derive(Default)]
struct Starting {
    count: std::cell::Cell<usize>,
    done: tokio::sync::Notify,
}

impl Starting {
    async fn none_left(&self) {
        loop {
            let done = self.done.notified();
            if self.count.get() == 0 {
                return;
            }
            done.await;
        }
    }
}

impl LiveNet {
    fn record(&self, what: std::fmt::Arguments<'_>) {
        lock(&self.world).record(&self.name, what);
    }

    /// Completes when a connection attempt over the link to `target` may go: at once, after
    /// a hold's release, or never (a blackhole loses it).
    async fn syn(&self, target: &str) {
        let key = pair(&self.name, target);
        let mut lost = false;
        std::future::poll_fn(|cx| {
            let mut world = lock(&self.world);
            let Some(link) = world.links.get_mut(&key) else {
                return Poll::Ready(());
            };
            lost |= link.blackholed;
            if lost {
                return Poll::Pending;
            }
            if link.held {
                link.waiting.push(cx.waker().clone());
                return Poll::Pending;
            }
            Poll::Ready(())
        })
        .await;
    }

    /// A socket bound to loopback when `to` is on loopback, its local address registered under
    /// this host's name so the accepting side can name its peer.
    fn socket_for(&self, to: SocketAddr) -> io::Result<(TcpSocket, Option<SocketAddr>)> {
        let socket = if to.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if !(to.is_ipv4() && to.ip().is_loopback()) {
            return Ok((socket, None));
        }
        socket.bind(LOOPBACK)?;
        let local = socket.local_addr()?;
        lock(&self.world).sources.insert(local, self.name.clone());
        Ok((socket, Some(local)))
    }

    fn in_use(&self, port: u16) -> io::Error {
        io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("{} already listens on port {port}", self.name),
        )
    }

    /// Connects to `addr`, which stands for `target:port`, its stream gated by `link` (none:
    /// an address outside the run).
    async fn dial(
        &self,
        addr: SocketAddr,
        target: &str,
        port: u16,
        link: Option<(String, String)>,
    ) -> io::Result<Stream> {
        let (socket, local) = self.socket_for(addr)?;
        let inner = match socket.connect(addr).await {
            Ok(s) => s,
            Err(e) => {
                let mut world = lock(&self.world);
                if let Some(local) = local {
                    world.sources.remove(&local);
                }
                world.record(
                    &self.name,
                    format_args!("connect {target}:{port} {:?}", e.kind()),
                );
                return Err(e);
            }
        };
        let gate = Gate::new(&self.world, link);
        let s = LiveStream::new(inner, &self.name, target.to_string(), gate, local)?;
        self.record(format_args!(
            "connect {target}:{port} from {}",
            s.local.port()
        ));
        Ok(Box::new(s) as Stream)
    }

    fn refused(&self, host: &str, port: u16) -> io::Error {
        self.record(format_args!("connect {host}:{port} refused"));
        io::Error::new(
            io::ErrorKind::ConnectionRefused,
            format!("{host}:{port} refused the connection"),
        )
    }
}

impl Net for LiveNet {
    fn host(&self) -> &str {
        &self.name
    }

    fn listen(&self, port: u16) -> LocalBoxFuture<'_, io::Result<Box<dyn Listener>>> {
        async move {
            let key = (self.name.clone(), port);
            let published = match lock(&self.world).ports.get(&key).map(|p| (p.state, p.addr)) {
                Some((PortState::Listening, _)) => return Err(self.in_use(port)),
                Some((PortState::Published, addr)) => Some(addr),
                // Listening again after a close: a fresh address, as at first.
                Some((PortState::Closed, _)) | None => None,
            };
            let (inner, shared) = match published {
                Some(addr) => {
                    let (listener, shared) = bind_shared(addr)?;
                    (listener, Some(shared))
                }
                None => (TcpListener::bind(LOOPBACK).await?, None),
            };
            let addr = inner.local_addr()?;
            let mut world = lock(&self.world);
            if !world.set_port(key, addr, PortState::Listening) {
                return Err(self.in_use(port));
            }
            world.record(&self.name, format_args!("listen {port} at {addr}"));
            Ok(Box::new(LiveListener {
                inner,
                world: self.world.clone(),
                host: self.name.clone(),
                port,
                _shared: shared,
            }) as Box<dyn Listener>)
        }
        .boxed_local()
    }

    fn connect(&self, host: &str, port: u16) -> LocalBoxFuture<'_, io::Result<Stream>> {
        let target = route(&self.intercepts, &self.name, host).to_string();
        async move {
            let known =
                self.hosts.contains(&target) || lock(&self.world).anywhere.contains_key(&target);
            if !known {
                let ip = loopback(&target)?;
                return self
                    .dial(SocketAddr::from((ip, port)), &target, port, None)
                    .await;
            }
            self.syn(&target).await;
            let addr = lock(&self.world).lookup(&target, port);
            let Some(addr) = addr.filter(|a| a.port() != 0) else {
                return Err(self.refused(&target, port));
            };
            let link = pair(&self.name, &target);
            self.dial(addr, &target, port, Some(link)).await
        }
        .boxed_local()
    }

    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn sleep_until(&self, at: Duration) -> LocalBoxFuture<'static, ()> {
        match self.start.checked_add(at) {
            Some(when) => tokio::time::sleep_until(when).boxed_local(),
            None => std::future::pending().boxed_local(),
        }
    }

    fn spawn(&self, task: LocalBoxFuture<'static, ()>) {
        spawn_caught(&self.failure, &self.name, task);
    }

    fn link_fault(&self, a: &str, b: &str, fault: LinkFault) {
        let mut world = lock(&self.world);
        world.record(&self.name, format_args!("link {a}-{b} {fault:?}"));
        let link = world.links.entry(pair(a, b)).or_default();
        match fault {
            LinkFault::Hold => link.held = true,
            LinkFault::Release => {
                link.held = false;
                link.blackholed = false;
            }
            LinkFault::Blackhole => {
                link.blackholed = true;
                link.blackholes += 1;
            }
        }
        let waiting = std::mem::take(&mut link.waiting);
        drop(world);
        for w in waiting {
            w.wake();
        }
    }

    fn real_addr(&self, host: &str, port: u16) -> Option<SocketAddr> {
        lock(&self.world)
            .address(host, port)
            .filter(|a| a.port() != 0)
    }

    fn starting(&self) {
        self.starting.count.set(self.starting.count.get() + 1);
        self.record(format_args!("starting a program"));
    }

    fn started(&self) {
        self.starting
            .count
            .set(self.starting.count.get().saturating_sub(1));
        self.starting.done.notify_waiters();
        self.record(format_args!("program started"));
    }

    /// Port 0 publishes `addr` for every port of this host that has no address of its own.
    fn publish(&self, port: u16, addr: SocketAddr) -> io::Result<()> {
        let mut world = lock(&self.world);
        if port == 0 {
            world.anywhere.insert(self.name.clone(), addr);
        } else {
            if !world.set_port((self.name.clone(), port), addr, PortState::Published) {
                return Err(self.in_use(port));
            }
        }
        world.record(&self.name, format_args!("publish {port} at {addr}"));
        Ok(())
    }
}

/// A listener on a published address, with `SO_REUSEPORT`, so that the same address can be
/// bound by the same host of another run, on another thread of this process: the kernel then
/// spreads the connections among those listeners by their addresses (the workers of
/// `gauntlet proxy` and `gauntlet serve`). Only runs of this process share an address: the
/// first to bind a given port checks that nothing else listens there (another process's
/// `SO_REUSEPORT` listener would otherwise share its connections without a word). Also
/// `SO_REUSEADDR`, as tokio's `bind` sets it: a restarted server binds its port while old
/// connections linger in `TIME_WAIT`.
fn bind_shared(addr: SocketAddr) -> io::Result<(TcpListener, SharedAddr)> {
    let socket = |reuseport: bool| -> io::Result<TcpSocket> {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.set_reuseport(reuseport)?;
        Ok(socket)
    };
    let named = |e: io::Error| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}"));
    let mut bound = shared_addrs();
    if addr.port() != 0 && !bound.contains_key(&addr) {
        // Fails with `AddrInUse` if anything listens there.
        socket(false)?.bind(addr).map_err(named)?;
    }
    let socket = socket(true)?;
    socket.bind(addr).map_err(named)?;
    let listener = socket.listen(1024).map_err(named)?;
    let addr = listener.local_addr()?;
    *bound.entry(addr).or_default() += 1;
    Ok((listener, SharedAddr(addr)))
}

/// The published addresses this process listens on, with how many listeners each.
fn shared_addrs() -> MutexGuard<'static, BTreeMap<SocketAddr, usize>> {
    static ADDRS: Mutex<BTreeMap<SocketAddr, usize>> = Mutex::new(BTreeMap::new());
    ADDRS.lock().unwrap_or_else(|e| e.into_inner())
}

/// One listener's place among [`shared_addrs`], given up when it is dropped.
struct SharedAddr(SocketAddr);

impl Drop for SharedAddr {
    fn drop(&mut self) {
        let mut bound = shared_addrs();
        if let Some(count) = bound.get_mut(&self.0) {
            *count -= 1;
            if *count == 0 {
                bound.remove(&self.0);
            }
        }
    }
}

/// A listening socket of the run.
struct LiveListener {
    inner: TcpListener,
    world: Shared,
    host: String,
    port: u16,
    /// For a listener on a published address: its place among [`shared_addrs`].
    _shared: Option<SharedAddr>,
}

impl Listener for LiveListener {
    fn accept(&mut self) -> LocalBoxFuture<'_, io::Result<Stream>> {
        async move {
            loop {
                let (inner, from) = self.inner.accept().await?;
                let peer = lock(&self.world).sources.get(&from).cloned();
                let link = peer.as_ref().map(|p| pair(&self.host, p));
                let peer = peer.unwrap_or_else(|| from.to_string());
                lock(&self.world)
                    .record(&self.host, format_args!("accept {} from {peer}", self.port));
                let gate = Gate::new(&self.world, link);
                match LiveStream::new(inner, &self.host, peer, gate, None) {
                    Ok(stream) => return Ok(Box::new(stream) as Stream),
                    // The connection went away between the accept and its set-up (a reset
                    // makes `setsockopt` or `getsockname` fail): that is its end, not the
                    // listener's.
                    Err(e) => lock(&self.world).record(
                        &self.host,
                        format_args!("accept {} dropped: {e}", self.port),
                    ),
                }
            }
        }
        .boxed_local()
    }
}

impl Drop for LiveListener {
    fn drop(&mut self) {
        let mut world = lock(&self.world);
        let key = (self.host.clone(), self.port);
        if let Some(p) = world
            .ports
            .get_mut(&key)
            .filter(|p| p.state == PortState::Listening)
        {
            p.state = PortState::Closed;
        }
    }
}

/// What a stream's writer has asked for and its pump has not done yet.
#[derive(Default)]
struct Outbox {
    bytes: Vec<u8>,
    /// The pump holds bytes it took from here and has not finished writing them.
    writing: bool,
    /// The writer shut the stream down: a FIN follows the bytes.
    fin: bool,
    fin_sent: bool,
    /// The writer is gone: how to close once the bytes are out.
    closed: Option<Close>,
    /// A write to the socket failed: the writer's next write fails so.
    error: Option<io::ErrorKind>,
    /// A writer waiting for room.
    writer: Option<Waker>,
    /// The pump, waiting for work.
    pump: Option<Waker>,
}

/// How a stream's writer left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Close {
    /// Dropped: the socket closes normally once the outbox is sent.
    Drop,
    /// Reset: RST after what was already written.
    Reset,
}

impl Outbox {
    fn wake_pump(&mut self) {
        if let Some(w) = self.pump.take() {
            w.wake();
        }
    }
}

/// The pump's next job.
enum Job {
    /// Write the bytes `next_job` left in the pump's buffer.
    Write,
    Fin,
    Close(Close),
    /// The link was blackholed: keep the socket open and never speak again.
    Silence,
}

/// Moves a stream's outbox to its socket while its link is open.
async fn pump(
    mut half: OwnedWriteHalf,
    out: Arc<Mutex<Outbox>>,
    gate: Gate,
    source: Option<SocketAddr>,
) {
    let mut chunk = Vec::new();
    loop {
        let job = std::future::poll_fn(|cx| next_job(&out, &gate, &mut chunk, cx)).await;
        match job {
            Job::Write => {
                let written = half.write_all(&chunk).await;
                chunk.clear();
                let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
                o.writing = false;
                if let Err(e) = written {
                    o.error = Some(e.kind());
                    o.bytes.clear();
                    if let Some(w) = o.writer.take() {
                        w.wake();
                    }
                }
            }
            Job::Fin => {
                let _ = half.shutdown().await;
            }
            Job::Close(Close::Drop) => break,
            Job::Close(Close::Reset) => {
                let _ = half.as_ref().set_zero_linger();
                // The read half is gone: the socket closes, with the RST, at once.
                half.forget();
                break;
            }
            Job::Silence => {
                lock(&gate.world).silenced.push(half);
                break;
            }
        }
    }
    if let Some(local) = source {
        lock(&gate.world).sources.remove(&local);
    }
}

/// The pump's next job; a write's bytes are left in `spare` (which must be empty).
fn next_job(
    out: &Mutex<Outbox>,
    gate: &Gate,
    spare: &mut Vec<u8>,
    cx: &mut Context<'_>,
) -> Poll<Job> {
    match gate.pass(Some(cx.waker())) {
        Pass::Silent => return Poll::Ready(Job::Silence),
        Pass::Wait => return Poll::Pending,
        Pass::Open => {}
    }
    let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
    if !o.bytes.is_empty() {
        // The whole outbox at once, by swapping buffers: no byte is copied here, and the
        // writer gets back the pump's emptied buffer, capacity and all.
        std::mem::swap(&mut o.bytes, spare);
        o.writing = true;
        if let Some(w) = o.writer.take() {
            w.wake();
        }
        return Poll::Ready(Job::Write);
    }
    if o.fin && !o.fin_sent {
        o.fin_sent = true;
        return Poll::Ready(Job::Fin);
    }
    if let Some(close) = o.closed {
        return Poll::Ready(Job::Close(close));
    }
    o.pump = Some(cx.waker().clone());
    Poll::Pending
}

/// A real TCP stream of the run: reads from the socket, writes through the outbox and its
/// pump, both behind the link's gate.
struct LiveStream {
    read: OwnedReadHalf,
    out: Arc<Mutex<Outbox>>,
    gate: Gate,
    host: String,
    local: SocketAddr,
    peer: String,
}

impl LiveStream {
    fn new(
        inner: TcpStream,
        host: &str,
        peer: String,
        gate: Gate,
        source: Option<SocketAddr>,
    ) -> io::Result<Self> {
        // Small writes go out at once, as on the simulated networks.
        inner.set_nodelay(true)?;
        let local = inner.local_addr()?;
        let (read, write) = inner.into_split();
        let out = Arc::new(Mutex::new(Outbox::default()));
        tokio::task::spawn_local(pump(write, out.clone(), gate.clone(), source));
        Ok(Self {
            read,
            out,
            gate,
            host: host.to_string(),
            local,
            peer,
        })
    }

    fn outbox(&self) -> MutexGuard<'_, Outbox> {
        self.out.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, what: std::fmt::Arguments<'_>) {
        lock(&self.gate.world).record(&self.host, format_args!("{} {what}", self.local.port()));
    }

    /// Tells the pump how the writer left, unless it already knows.
    fn close(&self, how: Close) {
        let mut o = self.outbox();
        if o.closed.is_none() {
            o.closed = Some(how);
            o.wake_pump();
        }
    }
}

impl Io for LiveStream {
    fn reset(self: Box<Self>) {
        self.record(format_args!("reset"));
        self.close(Close::Reset);
    }

    fn peer(&self) -> String {
        self.peer.clone()
    }
}

impl Drop for LiveStream {
    fn drop(&mut self) {
        self.close(Close::Drop);
    }
}

impl AsyncRead for LiveStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.gate.pass(Some(cx.waker())) != Pass::Open {
            return Poll::Pending;
        }
        let before = buf.filled().len();
        let mut r = Pin::new(&mut self.read).poll_read(cx, buf);
        let eof = matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() == before;
        if eof && buf.remaining() > 0 && self.outbox().error == Some(io::ErrorKind::ConnectionReset)
        {
            // Linux tells of a reset once, to whichever call comes first: when a write heard
            // it, the read that follows sees only the end of the stream. The peer reset it,
            // and the reader hears so too, as on the simulated engines.
            r = Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        }
        record_read(&r, buf.filled().len() - before, |what| self.record(what));
        r
    }
}

impl AsyncWrite for LiveStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let pass = self.gate.pass(None);
        if pass == Pass::Silent {
            self.record(format_args!("write {} lost", buf.len()));
            return Poll::Ready(Ok(buf.len()));
        }
        let mut o = self.outbox();
        if let Some(kind) = o.error {
            drop(o);
            self.record(format_args!("write {kind:?}"));
            return Poll::Ready(Err(io::Error::from(kind)));
        }
        if o.fin {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "write after shutdown",
            )));
        }
        if o.bytes.is_empty() && !o.writing && pass == Pass::Open {
            // Nothing waits before these bytes and the link is open: straight to the socket,
            // with no copy and no hand-over to the pump, if it takes them now. Only the pump
            // ever waits for the socket to take bytes: tokio keeps one write waker per
            // socket, and a writer waiting there could take the place of another task waiting
            // on the same socket (the pump, or a second task writing to the stream), which
            // would then never be woken: measured, TLS handshakes stalled in the soak.
            let socket: &TcpStream = self.read.as_ref();
            match socket.try_write(buf) {
                Ok(n) => {
                    drop(o);
                    self.record(format_args!("write {n}"));
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    o.error = Some(e.kind());
                    drop(o);
                    self.record(format_args!("write {:?}", e.kind()));
                    return Poll::Ready(Err(e));
                }
            }
        }
        let room = OUTBOX.saturating_sub(o.bytes.len());
        if room == 0 {
            o.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = room.min(buf.len());
        o.bytes.extend_from_slice(&buf[..n]);
        o.wake_pump();
        drop(o);
        self.record(format_args!("write {n}"));
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut o = self.outbox();
        if !o.fin {
            o.fin = true;
            o.wake_pump();
            drop(o);
            self.record(format_args!("shutdown"));
        }
        Poll::Ready(Ok(()))
    }
}
