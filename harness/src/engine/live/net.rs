//! A host's handle on the live network ([`Net`]): listening, connecting (through the
//! interceptions, to a registered address, or to a loopback address outside the run),
//! publishing addresses, link faults, and the real programs hosts announce as starting.

use std::collections::BTreeSet;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::LocalBoxFuture;
use tokio::net::{TcpListener, TcpSocket};
use tokio::time::Instant;

use super::LOOPBACK;
use super::listener::{LiveListener, bind_shared};
use super::stream::LiveStream;
use super::world::{Gate, PortState, Shared, lock};
use crate::engine::local::{Failure, spawn_caught};
use crate::engine::{Intercept, LinkFault, Listener, Net, Stream, pair, route};

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

/// A host's handle on the live network.
pub(super) struct LiveNet {
    pub(super) world: Shared,
    pub(super) start: Instant,
    pub(super) name: String,
    pub(super) hosts: Rc<BTreeSet<String>>,
    pub(super) intercepts: Rc<Vec<Intercept>>,
    pub(super) failure: Rc<Failure>,
    pub(super) starting: Rc<Starting>,
}

/// Real programs the hosts are starting; the client waits for none to be left.
#[derive(Default)]
pub(super) struct Starting {
    count: std::cell::Cell<usize>,
    done: tokio::sync::Notify,
}

impl Starting {
    pub(super) async fn none_left(&self) {
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
