//! The `turmoil` engine: turmoil 0.7's `Sim`, which advances every host by a fixed tick.
//!
//! turmoil has no call that resets a TCP stream on demand (it sends RST only when a stream is
//! dropped with unread data), so this engine carries a deliberate reset beside the FIN: the
//! resetting side records the connection in a shared set and closes; when the FIN reaches the
//! peer, the peer's read fails with `ConnectionReset` instead of ending cleanly. The reset is
//! seen after one link latency, as a real RST would be.

use std::collections::BTreeSet;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, UNIX_EPOCH};

use futures_util::FutureExt;
use futures_util::future::LocalBoxFuture;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{
    Engine, EngineError, EventLog, Intercept, Io, LinkFault, Listener, Net, NetRef, RunEnd, Stream,
    Topology, record_read, route,
};

/// The tick: every host is polled once per tick of simulated time.
pub const TICK: Duration = Duration::from_millis(1);

/// Segments a host's TCP buffer holds (turmoil's default is 64).
const TCP_CAPACITY: usize = 1 << 20;

/// turmoil 0.7's `Sim`.
#[derive(Debug, Default)]
pub struct Turmoil;

/// Connections reset on purpose, as (resetting side, peer) address pairs.
type Resets = Arc<Mutex<BTreeSet<(SocketAddr, SocketAddr)>>>;

/// The run's event log, shared by every stream.
type Log = Arc<Mutex<EventLog>>;

fn record(log: &Log, host: &str, what: std::fmt::Arguments<'_>) {
    if let Ok(mut l) = log.lock() {
        l.record(::turmoil::sim_elapsed().unwrap_or_default(), host, what);
    }
}

impl Engine for Turmoil {
    fn name(&self) -> &'static str {
        "turmoil"
    }

    fn run(&self, topology: Topology, seed: u64) -> Result<RunEnd, EngineError> {
        if let Some(what) = topology.shaping() {
            return Err(EngineError::Unsupported {
                engine: "turmoil",
                what,
            });
        }
        let (client_name, client) = topology.client.ok_or(EngineError::NoClient)?;
        let mut builder = ::turmoil::Builder::new();
        builder
            .simulation_duration(topology.limit)
            .tick_duration(TICK)
            .min_message_latency(topology.link.latency)
            .max_message_latency(topology.link.latency.saturating_add(topology.link.jitter))
            .rng_seed(seed)
            // turmoil panics, rather than pushing back, when a host's TCP buffer fills: size
            // it beyond any workload (thousands of connections at once).
            .tcp_capacity(TCP_CAPACITY)
            .epoch(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
        let mut sim = builder.build();
        for ((a, b), link) in &topology.links {
            sim.set_link_latency(a.as_str(), b.as_str(), link.latency);
            sim.set_link_max_message_latency(
                a.as_str(),
                b.as_str(),
                link.latency.saturating_add(link.jitter),
            );
        }
        let resets: Resets = Arc::default();
        let log: Log = Arc::default();
        let intercepts = Rc::new(topology.intercepts);
        let net = |name: &str| -> NetRef {
            Rc::new(TurmoilNet {
                host: name.to_string(),
                intercepts: intercepts.clone(),
                resets: resets.clone(),
                log: log.clone(),
            })
        };
        for (name, software) in topology.hosts {
            let net = net(&name);
            sim.host(name.as_str(), move || {
                let fut = software(net.clone());
                async move { fut.await.map_err(|e| format!("{e:#}").into()) }
            });
        }
        let finished = Rc::new(std::cell::Cell::new(None));
        let done = finished.clone();
        let client_net = net(&client_name);
        sim.client(client_name.as_str(), async move {
            let now = client_net.clone();
            let result = client(client_net).await;
            done.set(Some(now.now()));
            result.map_err(|e| format!("{e:#}").into())
        });
        let mut crashes = topology.crashes;
        crashes.sort_by_key(|(_, at)| *at);
        let mut crashes = crashes.into_iter().peekable();
        loop {
            while let Some((host, _)) = crashes.next_if(|(_, at)| *at <= sim.elapsed()) {
                sim.crash(host.as_str());
                record(&log, &host, format_args!("crash"));
            }
            match sim.step() {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) if e.to_string().contains("Ran for duration") => {
                    return Err(EngineError::TimeLimit(topology.limit));
                }
                Err(e) => return Err(EngineError::Software(e.to_string())),
            }
        }
        let events = log.lock().map(|l| *l).unwrap_or_default();
        Ok(RunEnd {
            at: finished.get().unwrap_or_else(|| sim.elapsed()),
            events,
        })
    }
}

struct TurmoilNet {
    host: String,
    intercepts: Rc<Vec<Intercept>>,
    resets: Resets,
    log: Log,
}

impl Net for TurmoilNet {
    fn host(&self) -> &str {
        &self.host
    }

    fn listen(&self, port: u16) -> LocalBoxFuture<'_, io::Result<Box<dyn Listener>>> {
        async move {
            let inner = ::turmoil::net::TcpListener::bind(("0.0.0.0", port)).await?;
            record(&self.log, &self.host, format_args!("listen {port}"));
            Ok(Box::new(TurmoilListener {
                inner,
                port,
                host: self.host.clone(),
                resets: self.resets.clone(),
                log: self.log.clone(),
            }) as Box<dyn Listener>)
        }
        .boxed_local()
    }

    fn connect(&self, host: &str, port: u16) -> LocalBoxFuture<'_, io::Result<Stream>> {
        let target = route(&self.intercepts, &self.host, host).to_string();
        async move {
            let inner = match ::turmoil::net::TcpStream::connect(format!("{target}:{port}")).await {
                Ok(s) => s,
                Err(e) => {
                    record(
                        &self.log,
                        &self.host,
                        format_args!("connect {target}:{port} {e}"),
                    );
                    return Err(e);
                }
            };
            let s = TurmoilStream::new(inner, &self.host, self.resets.clone(), self.log.clone())?;
            record(
                &self.log,
                &self.host,
                format_args!("connect {}:{port} from {}", s.peer.ip(), s.local.port()),
            );
            Ok(s as Stream)
        }
        .boxed_local()
    }

    fn now(&self) -> Duration {
        ::turmoil::sim_elapsed().unwrap_or_default()
    }

    fn sleep_until(&self, at: Duration) -> LocalBoxFuture<'static, ()> {
        let wait = at.saturating_sub(self.now());
        tokio::time::sleep(wait).boxed_local()
    }

    fn spawn(&self, task: LocalBoxFuture<'static, ()>) {
        tokio::task::spawn_local(task);
    }

    fn link_fault(&self, a: &str, b: &str, fault: LinkFault) {
        record(
            &self.log,
            &self.host,
            format_args!("link {a}-{b} {fault:?}"),
        );
        match fault {
            LinkFault::Hold => ::turmoil::hold(a, b),
            LinkFault::Release => {
                ::turmoil::repair(a, b);
                ::turmoil::release(a, b);
            }
            // turmoil drops what a partition meets, and its TCP does not resend.
            LinkFault::Blackhole => ::turmoil::partition(a, b),
        }
    }
}

struct TurmoilListener {
    inner: ::turmoil::net::TcpListener,
    port: u16,
    host: String,
    resets: Resets,
    log: Log,
}

impl Listener for TurmoilListener {
    fn accept(&mut self) -> LocalBoxFuture<'_, io::Result<Stream>> {
        async move {
            let (inner, from) = self.inner.accept().await?;
            let port = self.port;
            record(
                &self.log,
                &self.host,
                format_args!("accept {port} from {from}"),
            );
            Ok(
                TurmoilStream::new(inner, &self.host, self.resets.clone(), self.log.clone())?
                    as Stream,
            )
        }
        .boxed_local()
    }
}

struct TurmoilStream {
    inner: ::turmoil::net::TcpStream,
    host: String,
    local: SocketAddr,
    peer: SocketAddr,
    resets: Resets,
    log: Log,
    /// The peer reset the connection: reads and writes fail from now on.
    peer_reset: bool,
}

impl TurmoilStream {
    fn new(
        inner: ::turmoil::net::TcpStream,
        host: &str,
        resets: Resets,
        log: Log,
    ) -> io::Result<Box<Self>> {
        Ok(Box::new(Self {
            local: inner.local_addr()?,
            peer: inner.peer_addr()?,
            host: host.to_string(),
            inner,
            resets,
            log,
            peer_reset: false,
        }))
    }

    fn record(&self, what: std::fmt::Arguments<'_>) {
        record(
            &self.log,
            &self.host,
            format_args!("{} {what}", self.local.port()),
        );
    }

    fn reset_error() -> io::Error {
        io::Error::new(io::ErrorKind::ConnectionReset, "connection reset by peer")
    }
}

impl Io for TurmoilStream {
    fn reset(self: Box<Self>) {
        self.record(format_args!("reset"));
        if let Ok(mut set) = self.resets.lock() {
            set.insert((self.local, self.peer));
        }
        drop(self);
    }

    fn peer(&self) -> String {
        self.peer.ip().to_string()
    }
}

impl TurmoilStream {
    fn read_inner(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.peer_reset {
            return Poll::Ready(Err(Self::reset_error()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) if buf.filled().len() == before && buf.remaining() > 0 => {
                let key = (self.peer, self.local);
                let was_reset = self
                    .resets
                    .lock()
                    .map(|mut s| s.remove(&key))
                    .unwrap_or(false);
                if was_reset {
                    self.peer_reset = true;
                    return Poll::Ready(Err(Self::reset_error()));
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => {
                if let Ok(mut s) = self.resets.lock() {
                    s.remove(&(self.peer, self.local));
                }
                self.peer_reset = e.kind() == io::ErrorKind::ConnectionReset;
                Poll::Ready(Err(e))
            }
            other => other,
        }
    }
}

impl AsyncRead for TurmoilStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = self.read_inner(cx, buf);
        record_read(&r, buf.filled().len() - before, |what| self.record(what));
        r
    }
}

impl AsyncWrite for TurmoilStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.peer_reset {
            return Poll::Ready(Err(Self::reset_error()));
        }
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        match &r {
            Poll::Ready(Ok(n)) => self.record(format_args!("write {n}")),
            Poll::Ready(Err(e)) => self.record(format_args!("write {:?}", e.kind())),
            Poll::Pending => {}
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_shutdown(cx);
        if r.is_ready() {
            self.record(format_args!("shutdown"));
        }
        r
    }
}
