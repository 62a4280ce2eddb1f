//! The `sim` engine's network: TCP as a host sees it, at the level of streams, with every
//! delivery scheduled on the simulated clock.
//!
//! A connection has two directions ([`Half`](conn::Half)), each a queue of segments stamped
//! with the simulated time they arrive. A write computes its arrival time from the link (latency,
//! seeded jitter, bandwidth, retransmission delay after a loss) and can never arrive before
//! the segment ahead of it, so a stream stays in order. A reader takes what has arrived and
//! otherwise sleeps until the next arrival; tokio's paused clock jumps straight there when
//! nothing else can run. A direction holds at most `buffer` bytes in flight or unread; a
//! writer beyond that waits for the reader (backpressure).
//!
//! Closing follows TCP as Linux does it: a clean close sends FIN, a close with unread data or
//! a deliberate reset sends RST, and bytes that reach a closed socket are answered with RST.
//! A crashed host is a machine without power: it answers nothing at all.
//!
//! All state sits behind one mutex: the engine runs on one thread, and streams must be `Send`
//! only because hyper's upgrades ask for it.
//!
//! This file holds the [`Network`], its clock and the wire: when a segment sent now arrives
//! (latency, jitter, bandwidth, loss) and how it is queued. `conn.rs` holds a connection's
//! state (its two directions and their segments) and the slab of connections;
//! `sockets.rs` connecting, listening, accepting and closing; `faults.rs` held and
//! blackholed links and crashed hosts; `stream.rs` reading and writing, and [`SimStream`],
//! one end of a connection as a host's software sees it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use gauntlet_proxies::rng::Rng;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::engine::{EventLog, Intercept, LinkConfig, LinkFault};
use conn::{Host, Kind, Listening, Segment, Slab};

mod conn;
mod faults;
mod sockets;
mod stream;

pub(crate) use stream::SimStream;

/// Payload bytes in one packet, for counting the packets a write makes (loss is per packet).
const MSS: usize = 1460;
/// The shortest retransmission timeout, as Linux's `TCP_RTO_MIN`.
const RTO_MIN: Duration = Duration::from_millis(200);
/// Retransmissions of one segment before the model stops drawing more losses.
const MAX_RETRIES: u32 = 6;
/// The first local port a host's outgoing connections use.
const FIRST_EPHEMERAL_PORT: u16 = 49152;
/// Simulated time that never comes: about 35 million years, later than any run's time limit
/// (a scenario's is at most about a million years: a million messages, each with a reply
/// timeout of at most a year), and early enough that tokio's clock can count it.
const NEVER: Duration = Duration::from_secs(1 << 50);

/// The network, shared by every host's handle and every stream.
pub(crate) type Shared = Arc<Mutex<Network>>;

/// Locks the network. The engine runs on one thread and nothing panics while holding the
/// lock, so a poisoned lock still holds consistent state.
pub(crate) fn lock(shared: &Shared) -> MutexGuard<'_, Network> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// The whole simulated network.
#[derive(Debug)]
pub(crate) struct Network {
    start: Instant,
    hosts: Vec<Host>,
    /// `links[a][b]`: the link from host `a` to host `b`.
    links: Vec<Vec<LinkConfig>>,
    /// `busy[a][b]`: when the link from `a` to `b` finishes sending what it has (bandwidth).
    busy: Vec<Vec<Duration>>,
    faults: Vec<Vec<Option<LinkFault>>>,
    intercepts: Vec<(usize, usize, usize)>,
    listeners: BTreeMap<(usize, u16), Listening>,
    conns: Slab,
    rng: Rng,
    buffer: usize,
    /// Wakes connection attempts waiting on a held link.
    released: Arc<Notify>,
    pub(crate) log: EventLog,
}

/// Where a connection attempt stands after its SYN reached the far host.
pub(crate) enum Syn {
    /// The link holds the SYN: wait for a release, then try again.
    Held(Arc<Notify>),
    /// The SYN vanished: the attempt never hears back.
    Lost,
    /// The SYN arrives at this time.
    Arrives(Duration),
}

impl Network {
    /// A network of `hosts` (in order: their addresses are 192.168.0.1, .2, … as turmoil
    /// numbers them), whose links are `link(a, b)`.
    pub(crate) fn new(
        start: Instant,
        hosts: &[String],
        link: impl Fn(&str, &str) -> LinkConfig,
        intercepts: &[Intercept],
        buffer: usize,
        seed: u64,
    ) -> Self {
        let n = hosts.len();
        let index = |name: &str| hosts.iter().position(|h| h == name);
        Self {
            start,
            hosts: hosts
                .iter()
                .enumerate()
                .map(|(i, name)| Host {
                    name: name.clone(),
                    ip: format!("192.168.{}.{}", (i + 1) >> 8, (i + 1) & 0xff),
                    next_port: FIRST_EPHEMERAL_PORT,
                    crashed: false,
                })
                .collect(),
            links: hosts
                .iter()
                .map(|a| hosts.iter().map(|b| link(a, b)).collect())
                .collect(),
            busy: vec![vec![Duration::ZERO; n]; n],
            faults: vec![vec![None; n]; n],
            intercepts: intercepts
                .iter()
                .filter_map(|i| Some((index(&i.from)?, index(&i.to)?, index(&i.via)?)))
                .collect(),
            listeners: BTreeMap::new(),
            conns: Slab::default(),
            rng: Rng::derive(seed, 0x0051_574e_4554),
            buffer,
            released: Arc::new(Notify::new()),
            log: EventLog::default(),
        }
    }

    /// Simulated time now.
    pub(crate) fn now(&self) -> Duration {
        Instant::now().saturating_duration_since(self.start)
    }

    /// The tokio instant of simulated time `at`; any time from [`NEVER`] on is `NEVER`.
    pub(crate) fn instant(&self, at: Duration) -> Instant {
        self.start + at.min(NEVER)
    }

    /// The index of the host called `name`.
    pub(crate) fn host_index(&self, name: &str) -> Option<usize> {
        self.hosts.iter().position(|h| h.name == name)
    }

    fn record(&mut self, host: usize, what: std::fmt::Arguments<'_>) {
        let now = self.now();
        let name = &self.hosts[host].name;
        self.log.record(now, name, what);
    }

    /// When `bytes` sent now from `a` arrive at `b`, or `None` while the link holds them.
    fn arrival(&mut self, a: usize, b: usize, bytes: usize) -> Option<Duration> {
        if self.faults[a][b] == Some(LinkFault::Hold) {
            return None;
        }
        let now = self.now();
        let link = self.links[a][b];
        // Times saturate rather than overflow: a link's settings come from scenario files,
        // which keep them within a year, but a topology can be built by hand.
        let mut sent = now;
        if let Some(rate) = link.bandwidth.filter(|r| *r > 0) {
            let start = sent.max(self.busy[a][b]);
            let nanos = (bytes as u128 * 1_000_000_000).div_ceil(u128::from(rate));
            sent = start.saturating_add(Duration::from_nanos(
                u64::try_from(nanos).unwrap_or(u64::MAX),
            ));
            self.busy[a][b] = sent;
        }
        let mut at = sent.saturating_add(link.latency);
        if !link.jitter.is_zero() {
            let steps = u64::try_from(link.jitter.as_millis()).unwrap_or(u64::MAX);
            let drawn = self.rng.below(steps.saturating_add(1));
            at = at.saturating_add(Duration::from_millis(drawn));
        }
        if link.loss > 0.0 {
            let packets = i32::try_from(bytes.div_ceil(MSS).max(1)).unwrap_or(i32::MAX);
            let any_lost = 1.0 - (1.0 - link.loss.min(1.0)).powi(packets);
            let mut rto = RTO_MIN.max(link.latency.saturating_mul(2));
            for _ in 0..MAX_RETRIES {
                if (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 >= any_lost {
                    break;
                }
                at = at.saturating_add(rto);
                rto = rto.saturating_mul(2);
            }
        }
        Some(at)
    }

    /// Puts a segment on the direction of `id` from its end `from`, unless that direction is
    /// dead (a blackhole swallowed it).
    fn send(&mut self, id: u64, from: usize, kind: Kind, data: Vec<u8>) {
        self.send_no_earlier(id, from, kind, data, Duration::ZERO);
    }

    /// [`Network::send`], arriving no earlier than `earliest`.
    fn send_no_earlier(
        &mut self,
        id: u64,
        from: usize,
        kind: Kind,
        data: Vec<u8>,
        earliest: Duration,
    ) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        let (a, b) = (conn.hosts[from], conn.hosts[1 - from]);
        if self.faults[a][b] == Some(LinkFault::Blackhole) || conn.halves[from].dead {
            conn.halves[from].dead = true;
            return;
        }
        let at = self.arrival(a, b, data.len());
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        let half = &mut conn.halves[from];
        let at = at.map(|t| t.max(half.last_at).max(earliest));
        if let Some(t) = at {
            half.last_at = t;
        }
        if kind == Kind::Rst {
            half.rst_at = at.or(Some(Duration::MAX));
        }
        half.unread += data.len();
        half.queue.push_back(Segment {
            at,
            kind,
            data,
            read: 0,
        });
        half.wake_reader();
    }
}
