//! The live run's registry, which every host's handle, listener, stream and pump shares:
//! where each (host, port) is and in what state, the link faults and the gate each stream
//! passes through them, the local addresses hosts connect from, and the event log.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;

use tokio::net::tcp::OwnedWriteHalf;
use tokio::time::Instant;

use crate::engine::EventLog;

/// The state every host's handle, stream and pump share.
pub(super) type Shared = Arc<Mutex<World>>;

pub(super) fn lock(world: &Shared) -> MutexGuard<'_, World> {
    world.lock().unwrap_or_else(|e| e.into_inner())
}

/// The run's addresses, links and log.
pub(super) struct World {
    pub(super) start: Instant,
    /// Where each (host, port) accepts connections.
    pub(super) ports: BTreeMap<(String, u16), Port>,
    /// Hosts that published port 0: their every other port is there.
    pub(super) anywhere: BTreeMap<String, SocketAddr>,
    /// The local address of each socket a host connected from, and the host.
    pub(super) sources: BTreeMap<SocketAddr, String>,
    /// Links with a fault set at some point, by host pair.
    pub(super) links: BTreeMap<(String, String), Link>,
    /// Write halves of silenced streams: their sockets stay open, unheard, until the run ends.
    pub(super) silenced: Vec<OwnedWriteHalf>,
    pub(super) log: EventLog,
}

/// Where a host's port is.
pub(super) struct Port {
    pub(super) addr: SocketAddr,
    pub(super) state: PortState,
}

/// What is at a port's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PortState {
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
pub(super) struct Link {
    pub(super) held: bool,
    pub(super) blackholed: bool,
    /// How many times the link was blackholed: a stream opened before the latest blackhole is
    /// silent for good.
    pub(super) blackholes: u64,
    /// Tasks waiting for the link to change.
    pub(super) waiting: Vec<Waker>,
}

impl World {
    pub(super) fn new(start: Instant) -> Self {
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

    pub(super) fn record(&mut self, host: &str, what: std::fmt::Arguments<'_>) {
        let at = self.start.elapsed();
        self.log.record(at, host, what);
    }

    /// The real address of `host:port`, as registered (port 0 means not bound yet).
    pub(super) fn lookup(&self, host: &str, port: u16) -> Option<SocketAddr> {
        match self.ports.get(&(host.to_string(), port)) {
            Some(p) if p.state == PortState::Closed => None,
            Some(p) => Some(p.addr),
            None => self.anywhere.get(host).copied(),
        }
    }

    /// Where `host:port` is or was: [`World::lookup`], or the address of a listener that
    /// has closed.
    pub(super) fn address(&self, host: &str, port: u16) -> Option<SocketAddr> {
        match self.ports.get(&(host.to_string(), port)) {
            Some(p) => Some(p.addr),
            None => self.anywhere.get(host).copied(),
        }
    }

    /// Registers where (host, port) accepts connections, unless a listener of the run is
    /// there already (then says false).
    pub(super) fn set_port(
        &mut self,
        key: (String, u16),
        addr: SocketAddr,
        state: PortState,
    ) -> bool {
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
pub(super) enum Pass {
    Open,
    /// Held: wait for the release.
    Wait,
    /// Blackholed, now or since the stream opened: silent for good.
    Silent,
}

/// A stream's view of its link: which link, and how many blackholes it had when the stream
/// opened. Streams to or from outside the run have no link and are always open.
#[derive(Clone)]
pub(super) struct Gate {
    pub(super) world: Shared,
    pub(super) link: Option<(String, String)>,
    pub(super) born: u64,
}

impl Gate {
    pub(super) fn new(world: &Shared, link: Option<(String, String)>) -> Self {
        let born = link.as_ref().map_or(0, |k| lock(world).blackholes(k));
        Self {
            world: world.clone(),
            link,
            born,
        }
    }

    /// What the link lets through now; when it says wait, `waker` is woken at the change.
    pub(super) fn pass(&self, waker: Option<&Waker>) -> Pass {
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
