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
    Engine, EngineError, Intercept, Io, LinkFault, Listener, Net, NetRef, Stream, Topology,
};

/// The tick: every host is polled once per tick of simulated time.
pub const TICK: Duration = Duration::from_millis(1);

/// turmoil 0.7's `Sim`.
#[derive(Debug, Default)]
pub struct Turmoil;

/// Connections reset on purpose, as (resetting side, peer) address pairs.
type Resets = Arc<Mutex<BTreeSet<(SocketAddr, SocketAddr)>>>;

impl Engine for Turmoil {
    fn name(&self) -> &'static str {
        "turmoil"
    }

    fn run(&self, topology: Topology, seed: u64) -> Result<Duration, EngineError> {
        let (client_name, client) = topology.client.ok_or(EngineError::NoClient)?;
        let mut builder = ::turmoil::Builder::new();
        builder
            .simulation_duration(topology.limit)
            .tick_duration(TICK)
            .min_message_latency(topology.link.latency)
            .max_message_latency(topology.link.latency + topology.link.jitter)
            .rng_seed(seed)
            .epoch(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
        let mut sim = builder.build();
        let resets: Resets = Arc::default();
        let intercepts = Rc::new(topology.intercepts);
        let net = |name: &str| -> NetRef {
            Rc::new(TurmoilNet {
                host: name.to_string(),
                intercepts: intercepts.clone(),
                resets: resets.clone(),
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
        match sim.run() {
            Ok(()) => Ok(finished.get().unwrap_or_else(|| sim.elapsed())),
            Err(e) if e.to_string().contains("Ran for duration") => {
                Err(EngineError::TimeLimit(topology.limit))
            }
            Err(e) => Err(EngineError::Software(e.to_string())),
        }
    }
}

struct TurmoilNet {
    host: String,
    intercepts: Rc<Vec<Intercept>>,
    resets: Resets,
}

impl Net for TurmoilNet {
    fn host(&self) -> &str {
        &self.host
    }

    fn listen(&self, port: u16) -> LocalBoxFuture<'_, io::Result<Box<dyn Listener>>> {
        async move {
            let inner = ::turmoil::net::TcpListener::bind(("0.0.0.0", port)).await?;
            Ok(Box::new(TurmoilListener {
                inner,
                resets: self.resets.clone(),
            }) as Box<dyn Listener>)
        }
        .boxed_local()
    }

    fn connect(&self, host: &str, port: u16) -> LocalBoxFuture<'_, io::Result<Stream>> {
        let target = self
            .intercepts
            .iter()
            .find(|i| i.from == self.host && i.to == host)
            .map_or(host, |i| i.via.as_str())
            .to_string();
        async move {
            let inner = ::turmoil::net::TcpStream::connect(format!("{target}:{port}")).await?;
            Ok(TurmoilStream::new(inner, self.resets.clone())? as Stream)
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
        match fault {
            LinkFault::Hold => ::turmoil::hold(a, b),
            LinkFault::Release => ::turmoil::release(a, b),
        }
    }
}

struct TurmoilListener {
    inner: ::turmoil::net::TcpListener,
    resets: Resets,
}

impl Listener for TurmoilListener {
    fn accept(&mut self) -> LocalBoxFuture<'_, io::Result<Stream>> {
        async move {
            let (inner, _) = self.inner.accept().await?;
            Ok(TurmoilStream::new(inner, self.resets.clone())? as Stream)
        }
        .boxed_local()
    }
}

struct TurmoilStream {
    inner: ::turmoil::net::TcpStream,
    local: SocketAddr,
    peer: SocketAddr,
    resets: Resets,
    /// The peer reset the connection: reads and writes fail from now on.
    peer_reset: bool,
}

impl TurmoilStream {
    fn new(inner: ::turmoil::net::TcpStream, resets: Resets) -> io::Result<Box<Self>> {
        Ok(Box::new(Self {
            local: inner.local_addr()?,
            peer: inner.peer_addr()?,
            inner,
            resets,
            peer_reset: false,
        }))
    }

    fn reset_error() -> io::Error {
        io::Error::new(io::ErrorKind::ConnectionReset, "connection reset by peer")
    }
}

impl Io for TurmoilStream {
    fn reset(self: Box<Self>) {
        if let Ok(mut set) = self.resets.lock() {
            set.insert((self.local, self.peer));
        }
        drop(self);
    }

    fn peer(&self) -> String {
        self.peer.ip().to_string()
    }
}

impl AsyncRead for TurmoilStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.peer_reset {
            return Poll::Ready(Err(Self::reset_error()));
        }
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) if buf.filled().len() == before && buf.remaining() > 0 => {
                let key = (this.peer, this.local);
                let was_reset = this
                    .resets
                    .lock()
                    .map(|mut s| s.remove(&key))
                    .unwrap_or(false);
                if was_reset {
                    this.peer_reset = true;
                    return Poll::Ready(Err(Self::reset_error()));
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => {
                if let Ok(mut s) = this.resets.lock() {
                    s.remove(&(this.peer, this.local));
                }
                this.peer_reset = e.kind() == io::ErrorKind::ConnectionReset;
                Poll::Ready(Err(e))
            }
            other => other,
        }
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
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
