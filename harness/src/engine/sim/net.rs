//! The `sim` engine's network: TCP as a host sees it, at the level of streams, with every
//! delivery scheduled on the simulated clock.
//!
//! A connection has two directions ([`Half`]), each a queue of segments stamped with the
//! simulated time they arrive. A write computes its arrival time from the link (latency,
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

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use gauntlet_proxies::rng::Rng;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

use super::super::{EventLog, Intercept, Io, LinkConfig, LinkFault};

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

/// One host's addressing and state.
#[derive(Debug)]
struct Host {
    name: String,
    ip: String,
    next_port: u16,
    crashed: bool,
}

/// What a segment carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Data,
    Fin,
    Rst,
}

/// A write, a FIN or a RST on its way.
#[derive(Debug)]
struct Segment {
    /// When it arrives; `None` while a held link keeps it.
    at: Option<Duration>,
    kind: Kind,
    data: Vec<u8>,
    /// Bytes of `data` already read.
    read: usize,
}

/// One direction of a connection.
#[derive(Debug, Default)]
struct Half {
    queue: VecDeque<Segment>,
    /// Bytes in flight or unread: the writer waits when this reaches the buffer size.
    unread: usize,
    /// Arrival time of the last segment sent: nothing sent later arrives earlier.
    last_at: Duration,
    reader: Option<Waker>,
    writer: Option<Waker>,
    /// The writer sent FIN or RST, or its host crashed: it sends nothing more.
    shut: bool,
    /// Nobody will read: the reading end closed, reset or crashed.
    reader_gone: bool,
    /// A blackhole swallowed bytes: this direction delivers nothing ever again.
    dead: bool,
    /// When a RST travelling this way arrives.
    rst_at: Option<Duration>,
}

impl Half {
    fn wake_reader(&mut self) {
        if let Some(w) = self.reader.take() {
            w.wake();
        }
    }

    fn wake_writer(&mut self) {
        if let Some(w) = self.writer.take() {
            w.wake();
        }
    }

    /// Whether bytes are still to be read, arrived or not.
    fn has_data(&self) -> bool {
        self.queue.iter().any(|s| s.kind == Kind::Data)
    }
}

/// A connection between end 0 (the side that connected) and end 1 (the side that accepted).
/// `halves[i]` carries bytes from end `i` to the other end.
#[derive(Debug)]
struct Conn {
    hosts: [usize; 2],
    ports: [u16; 2],
    halves: [Half; 2],
    /// Each end's stream is gone (dropped, reset, or its host crashed).
    closed: [bool; 2],
}

/// A listening socket's queue of connections not yet accepted.
#[derive(Debug, Default)]
struct Listening {
    queue: VecDeque<u64>,
    waker: Option<Waker>,
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

    /// The host `from` connects to `to`: where the attempt goes (after interception), and when
    /// its SYN arrives there.
    pub(crate) fn syn(&mut self, from: usize, to: usize) -> (usize, Syn) {
        let to = self
            .intercepts
            .iter()
            .find(|(f, t, _)| *f == from && *t == to)
            .map_or(to, |(_, _, via)| *via);
        let syn = if self.faults[from][to] == Some(LinkFault::Blackhole) {
            Syn::Lost
        } else {
            // No arrival time while the link holds what it carries.
            match self.arrival(from, to, 0) {
                Some(at) => Syn::Arrives(at),
                None => Syn::Held(self.released.clone()),
            }
        };
        (to, syn)
    }

    /// The SYN from `from` reached `to:port`: opens the connection if something listens
    /// there. Gives the new connection's id and when the answer (SYN-ACK or RST) reaches
    /// `from`.
    pub(crate) fn open(&mut self, from: usize, to: usize, port: u16) -> (Option<u64>, Duration) {
        let back = self
            .arrival(to, from, 0)
            .unwrap_or_else(|| self.now() + self.links[to][from].latency);
        if self.hosts[to].crashed || !self.listeners.contains_key(&(to, port)) {
            let ip = self.hosts[to].ip.clone();
            self.record(from, format_args!("connect {ip}:{port} refused"));
            return (None, back);
        }
        let local = self.hosts[from].next_port;
        self.hosts[from].next_port = local.checked_add(1).unwrap_or(FIRST_EPHEMERAL_PORT);
        let mut conn = Conn {
            hosts: [from, to],
            ports: [local, port],
            halves: [Half::default(), Half::default()],
            closed: [false; 2],
        };
        // The accepting side's first bytes cannot overtake its SYN-ACK.
        conn.halves[1].last_at = back;
        let id = self.conns.insert(conn);
        if let Some(l) = self.listeners.get_mut(&(to, port)) {
            l.queue.push_back(id);
            if let Some(w) = l.waker.take() {
                w.wake();
            }
        }
        let ip = self.hosts[to].ip.clone();
        self.record(from, format_args!("#{id} connect {ip}:{port} from {local}"));
        (Some(id), back)
    }

    /// Starts listening on `host:port`.
    pub(crate) fn listen(&mut self, host: usize, port: u16) -> io::Result<()> {
        if self.listeners.contains_key(&(host, port)) {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{}:{port} is already listening", self.hosts[host].name),
            ));
        }
        self.listeners.insert((host, port), Listening::default());
        self.record(host, format_args!("listen {port}"));
        Ok(())
    }

    /// Stops listening on `host:port`; connections never accepted are reset.
    pub(crate) fn unlisten(&mut self, host: usize, port: u16) {
        if let Some(l) = self.listeners.remove(&(host, port)) {
            for id in l.queue {
                self.close(id, 1, true);
            }
        }
    }

    /// The next connection accepted on `host:port`, or `Pending` with `cx` registered.
    pub(crate) fn poll_accept(
        &mut self,
        host: usize,
        port: u16,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<u64>> {
        if self.hosts[host].crashed {
            return Poll::Ready(Err(io::Error::other("the host crashed")));
        }
        let Some(l) = self.listeners.get_mut(&(host, port)) else {
            return Poll::Ready(Err(io::Error::other("the listener is closed")));
        };
        match l.queue.pop_front() {
            Some(id) => {
                let peer = self.conns.get(id).map(|c| (c.hosts[0], c.ports[0]));
                if let Some((h, p)) = peer {
                    let ip = self.hosts[h].ip.clone();
                    self.record(host, format_args!("#{id} accept {port} from {ip}:{p}"));
                }
                Poll::Ready(Ok(id))
            }
            None => {
                l.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// The address of end `side`'s peer, as text (its IP).
    pub(crate) fn peer_ip(&self, id: u64, side: usize) -> String {
        self.conns
            .get(id)
            .map(|c| self.hosts[c.hosts[1 - side]].ip.clone())
            .unwrap_or_default()
    }

    /// Sets or lifts a fault on the link between `a` and `b`, both directions.
    pub(crate) fn fault(&mut self, a: usize, b: usize, fault: LinkFault) {
        let now = self.now();
        match fault {
            LinkFault::Hold => {
                self.faults[a][b] = Some(LinkFault::Hold);
                self.faults[b][a] = Some(LinkFault::Hold);
                // What is still on the wire is held too.
                for conn in self.conns.values_mut() {
                    if !is_between(conn, a, b) {
                        continue;
                    }
                    for half in &mut conn.halves {
                        for seg in &mut half.queue {
                            if seg.at.is_some_and(|t| t > now) {
                                seg.at = None;
                            }
                        }
                    }
                }
            }
            LinkFault::Blackhole => {
                self.faults[a][b] = Some(LinkFault::Blackhole);
                self.faults[b][a] = Some(LinkFault::Blackhole);
            }
            LinkFault::Release => {
                self.faults[a][b] = None;
                self.faults[b][a] = None;
                let ids: Vec<u64> = self
                    .conns
                    .iter()
                    .filter(|(_, c)| is_between(c, a, b))
                    .map(|(id, _)| id)
                    .collect();
                for id in ids {
                    for from in 0..2 {
                        self.release_half(id, from);
                    }
                }
                self.released.notify_waiters();
            }
        }
        let (na, nb) = (self.hosts[a].name.clone(), self.hosts[b].name.clone());
        self.record(a, format_args!("link {na}-{nb} {fault:?}"));
    }

    /// Schedules every held segment of one direction, in order.
    fn release_half(&mut self, id: u64, from: usize) {
        let Some(conn) = self.conns.get(id) else {
            return;
        };
        let (a, b) = (conn.hosts[from], conn.hosts[1 - from]);
        let held: Vec<(usize, usize)> = conn.halves[from]
            .queue
            .iter()
            .enumerate()
            .filter(|(_, s)| s.at.is_none())
            .map(|(i, s)| (i, s.data.len()))
            .collect();
        for (i, len) in held {
            let at = self.arrival(a, b, len).unwrap_or_else(|| self.now());
            if let Some(conn) = self.conns.get_mut(id) {
                let half = &mut conn.halves[from];
                let at = at.max(half.last_at);
                half.last_at = at;
                half.queue[i].at = Some(at);
                if half.queue[i].kind == Kind::Rst {
                    half.rst_at = Some(at);
                }
            }
        }
        if let Some(conn) = self.conns.get_mut(id) {
            conn.halves[from].wake_reader();
        }
    }

    /// Crashes `host`: its listeners close and its connections go silent, as a machine that
    /// lost power. Peers hear nothing until they send.
    pub(crate) fn crash(&mut self, host: usize) {
        self.hosts[host].crashed = true;
        let ports: Vec<u16> = self
            .listeners
            .keys()
            .filter(|(h, _)| *h == host)
            .map(|(_, p)| *p)
            .collect();
        for port in ports {
            if let Some(l) = self.listeners.remove(&(host, port)) {
                if let Some(w) = l.waker {
                    w.wake();
                }
            }
        }
        let ids: Vec<(u64, usize)> = self
            .conns
            .iter()
            .flat_map(|(id, c)| {
                (0..2)
                    .filter(move |s| c.hosts[*s] == host && !c.closed[*s])
                    .map(move |s| (id, s))
            })
            .collect();
        for (id, side) in ids {
            if let Some(conn) = self.conns.get_mut(id) {
                conn.closed[side] = true;
                conn.halves[side].shut = true;
                let incoming = &mut conn.halves[1 - side];
                incoming.reader_gone = true;
                incoming.queue.clear();
                incoming.unread = 0;
                incoming.wake_writer();
                if conn.closed[1 - side] {
                    self.conns.remove(id);
                }
            }
        }
        self.record(host, format_args!("crash"));
    }

    /// End `side` of `id` closes: with RST if `reset` or if it leaves bytes unread, else with
    /// FIN. Either way it reads no more; bytes that reach it later are answered with RST.
    pub(crate) fn close(&mut self, id: u64, side: usize, reset: bool) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        if conn.closed[side] {
            return;
        }
        conn.closed[side] = true;
        let host = conn.hosts[side];
        let crashed = self.hosts[host].crashed;
        let reset = reset || conn.halves[1 - side].has_data();
        let incoming = &mut conn.halves[1 - side];
        incoming.reader_gone = true;
        incoming.queue.clear();
        incoming.unread = 0;
        incoming.wake_writer();
        let was_shut = conn.halves[side].shut;
        conn.halves[side].shut = true;
        if !crashed {
            if reset {
                if conn.halves[side].rst_at.is_none() {
                    self.send(id, side, Kind::Rst, Vec::new());
                }
                self.record(host, format_args!("#{id} reset"));
            } else if !was_shut {
                self.send(id, side, Kind::Fin, Vec::new());
                self.record(host, format_args!("#{id} close"));
            }
        }
        if self
            .conns
            .get(id)
            .is_some_and(|c| c.closed[0] && c.closed[1])
        {
            self.conns.remove(id);
        }
    }

    /// Reads what has arrived for end `side` into `buf`. `Pending` when nothing has: then the
    /// caller sleeps until `Some(at)`, the next arrival, or waits for a wake-up.
    fn read(
        &mut self,
        id: u64,
        side: usize,
        buf: &mut ReadBuf<'_>,
        cx: &mut Context<'_>,
    ) -> Result<io::Result<()>, Option<Duration>> {
        let now = self.now();
        let Some(conn) = self.conns.get_mut(id) else {
            return Ok(Err(reset_error()));
        };
        let host = conn.hosts[side];
        let half = &mut conn.halves[1 - side];
        let mut copied = 0;
        while buf.remaining() > 0 {
            let Some(seg) = half.queue.front_mut() else {
                break;
            };
            match seg.at {
                Some(t) if t <= now => {}
                _ => break,
            }
            match seg.kind {
                Kind::Data => {
                    let n = buf.remaining().min(seg.data.len() - seg.read);
                    buf.put_slice(&seg.data[seg.read..seg.read + n]);
                    seg.read += n;
                    copied += n;
                    if seg.read == seg.data.len() {
                        half.queue.pop_front();
                    }
                }
                Kind::Fin | Kind::Rst => break,
            }
        }
        if copied > 0 {
            half.unread -= copied;
            half.wake_writer();
            self.record(host, format_args!("#{id} read {copied}"));
            return Ok(Ok(()));
        }
        match half.queue.front() {
            Some(seg) if seg.at.is_some_and(|t| t <= now) => {
                let kind = seg.kind;
                if kind == Kind::Rst {
                    self.record(host, format_args!("#{id} read reset"));
                    Ok(Err(reset_error()))
                } else {
                    self.record(host, format_args!("#{id} read end"));
                    Ok(Ok(()))
                }
            }
            Some(seg) => {
                let next = seg.at;
                half.reader = Some(cx.waker().clone());
                Err(next)
            }
            None => {
                half.reader = Some(cx.waker().clone());
                Err(None)
            }
        }
    }

    /// Writes from end `side`: how many bytes were taken, or, while the direction is full,
    /// `Err` with `cx` registered and the time of the RST on its way to this end, if one is
    /// (the writer learns of it then: the write fails).
    fn write(
        &mut self,
        id: u64,
        side: usize,
        buf: &[u8],
        cx: &mut Context<'_>,
    ) -> Result<io::Result<usize>, Option<Duration>> {
        let now = self.now();
        let buffer = self.buffer;
        let Some(conn) = self.conns.get_mut(id) else {
            return Ok(Err(reset_error()));
        };
        let host = conn.hosts[side];
        let rst_at = conn.halves[1 - side].rst_at;
        if rst_at.is_some_and(|t| t <= now) {
            return Ok(Err(reset_error()));
        }
        if conn.halves[side].shut {
            return Ok(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "write after shutdown",
            )));
        }
        if buf.is_empty() {
            return Ok(Ok(0));
        }
        let half = &mut conn.halves[side];
        let room = buffer.saturating_sub(half.unread);
        if room == 0 {
            half.writer = Some(cx.waker().clone());
            return Err(rst_at);
        }
        let n = room.min(buf.len());
        if half.reader_gone {
            // The bytes reach a closed socket, which answers with RST; a crashed host answers
            // nothing. Nobody acknowledges them, so they stay in the buffer: a writer that
            // goes on waits for the RST, as a TCP sender waits for its send buffer.
            half.unread += n;
            let (a, b) = (conn.hosts[side], conn.hosts[1 - side]);
            if rst_at.is_none() && !self.hosts[b].crashed {
                let round_trip = now
                    .saturating_add(self.links[a][b].latency)
                    .saturating_add(self.links[b][a].latency);
                self.send_no_earlier(id, 1 - side, Kind::Rst, Vec::new(), round_trip);
            }
            self.record(host, format_args!("#{id} write {n} to a closed socket"));
            return Ok(Ok(n));
        }
        self.send(id, side, Kind::Data, buf[..n].to_vec());
        self.record(host, format_args!("#{id} write {n}"));
        Ok(Ok(n))
    }

    /// End `side` sends FIN.
    fn shutdown(&mut self, id: u64, side: usize) -> io::Result<()> {
        let Some(conn) = self.conns.get_mut(id) else {
            return Err(reset_error());
        };
        if conn.halves[side].shut {
            return Ok(());
        }
        let host = conn.hosts[side];
        if !conn.halves[side].reader_gone {
            self.send(id, side, Kind::Fin, Vec::new());
        }
        if let Some(conn) = self.conns.get_mut(id) {
            conn.halves[side].shut = true;
        }
        self.record(host, format_args!("#{id} shutdown"));
        Ok(())
    }
}

/// Connections by id: a vector whose free slots are reused, so a lookup is an index. An id
/// carries its slot's generation (high 32 bits) beside the index (low 32), so a stream end that
/// outlives its connection (a crashed host's, until its task is dropped) never reaches the
/// connection that reuses the slot.
#[derive(Debug, Default)]
struct Slab {
    slots: Vec<(u32, Option<Conn>)>,
    free: Vec<usize>,
}

impl Slab {
    fn insert(&mut self, conn: Conn) -> u64 {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push((0, None));
                self.slots.len() - 1
            }
        };
        let slot = &mut self.slots[index];
        slot.0 = slot.0.wrapping_add(1);
        slot.1 = Some(conn);
        (u64::from(slot.0) << 32) | index as u64
    }

    fn get(&self, id: u64) -> Option<&Conn> {
        let slot = self.slots.get((id & 0xffff_ffff) as usize)?;
        (u64::from(slot.0) == id >> 32).then_some(slot.1.as_ref())?
    }

    fn get_mut(&mut self, id: u64) -> Option<&mut Conn> {
        let slot = self.slots.get_mut((id & 0xffff_ffff) as usize)?;
        if u64::from(slot.0) != id >> 32 {
            return None;
        }
        slot.1.as_mut()
    }

    fn remove(&mut self, id: u64) {
        if self.get(id).is_some() {
            let index = (id & 0xffff_ffff) as usize;
            self.slots[index].1 = None;
            self.free.push(index);
        }
    }

    fn iter(&self) -> impl Iterator<Item = (u64, &Conn)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, (generation, c))| {
                Some(((u64::from(*generation) << 32) | i as u64, c.as_ref()?))
            })
    }

    fn values_mut(&mut self) -> impl Iterator<Item = &mut Conn> {
        self.slots.iter_mut().filter_map(|(_, c)| c.as_mut())
    }
}

fn is_between(conn: &Conn, a: usize, b: usize) -> bool {
    (conn.hosts[0] == a && conn.hosts[1] == b) || (conn.hosts[0] == b && conn.hosts[1] == a)
}

fn reset_error() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, "connection reset by peer")
}

/// One end of a simulated connection.
pub(crate) struct SimStream {
    net: Shared,
    id: u64,
    side: usize,
    peer: String,
    /// Wakes the reader when the next segment arrives.
    sleep: Option<Pin<Box<Sleep>>>,
    /// Wakes a writer waiting for room when a RST arrives.
    write_sleep: Option<Pin<Box<Sleep>>>,
}

impl SimStream {
    pub(crate) fn new(net: Shared, id: u64, side: usize) -> Self {
        let peer = lock(&net).peer_ip(id, side);
        Self {
            net,
            id,
            side,
            peer,
            sleep: None,
            write_sleep: None,
        }
    }
}

impl Io for SimStream {
    fn reset(self: Box<Self>) {
        lock(&self.net).close(self.id, self.side, true);
    }

    fn peer(&self) -> String {
        self.peer.clone()
    }
}

impl Drop for SimStream {
    fn drop(&mut self) {
        lock(&self.net).close(self.id, self.side, false);
    }
}

/// Sleeps in `sleep` until `deadline`: `Ready` once it has passed, so the caller tries again;
/// `Pending` with `cx` registered before then, or for good with no deadline (the caller's
/// waker is registered elsewhere).
fn sleep_until(
    sleep: &mut Option<Pin<Box<Sleep>>>,
    deadline: Option<tokio::time::Instant>,
    cx: &mut Context<'_>,
) -> Poll<()> {
    let Some(deadline) = deadline else {
        return Poll::Pending;
    };
    let sleep = match sleep {
        Some(s) => {
            s.as_mut().reset(deadline);
            s
        }
        None => sleep.insert(Box::pin(tokio::time::sleep_until(deadline))),
    };
    sleep.as_mut().poll(cx)
}

impl AsyncRead for SimStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            let (result, instant) = {
                let mut net = lock(&this.net);
                match net.read(this.id, this.side, buf, cx) {
                    Ok(r) => (Some(r), None),
                    Err(next) => (None, next.map(|at| net.instant(at))),
                }
            };
            if let Some(r) = result {
                return Poll::Ready(r);
            }
            if sleep_until(&mut this.sleep, instant, cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

impl AsyncWrite for SimStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        loop {
            let instant = {
                let mut net = lock(&this.net);
                match net.write(this.id, this.side, buf, cx) {
                    Ok(r) => return Poll::Ready(r),
                    Err(rst_at) => rst_at.map(|at| net.instant(at)),
                }
            };
            if sleep_until(&mut this.write_sleep, instant, cx).is_pending() {
                return Poll::Pending;
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(lock(&self.net).shutdown(self.id, self.side))
    }
}
