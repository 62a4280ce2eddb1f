//! Acceptance: any chain of byte-preserving models delivers every byte unchanged.
//!
//! A chain is one to five hops between a WebSocket client and a WebSocket server. Each hop is
//! a model that must leave the stream alone: `pass`, `l4-balancer`, an upgrade-aware HTTP
//! proxy, and `connect-proxy` (first only: a client is configured to use an explicit proxy,
//! so it is the first thing the client reaches). Proptest generates the chain, the messages
//! each side sends (sizes 0 to 70 000 bytes, around the WebSocket length boundaries 125/126
//! and 65 535/65 536 often), how every stream is cut into segments, and the order in which the
//! network delivers what is in flight.
//!
//! The network is a small deterministic simulation with no runtime: every element (client,
//! hops, server) is a sans-IO [`Connection`], and [`Net`] carries their actions to their
//! neighbours as events, one delivery at a time, on a simulated clock. For every generated
//! case the test checks that the upgrade request reaches the server with its `Upgrade` and
//! `Connection` fields intact, that the 101 reaches the client intact, that each side receives
//! exactly the bytes the other sent after the handshake, that a FIN travels end to end both
//! ways (the client half-closes first and the server still sends after it), and that no model
//! lost bytes by breaking the driver contract.
//!
//! Ordinary tests at the end show the harness detects change: a transparent proxy that strips
//! `Upgrade`, one that chokes on the first frame, and a lifetime cap that closes mid-exchange
//! all fail the same checks.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use gauntlet_proxies::http::{self, Head, Parsed, StartLine, base64};
use gauntlet_proxies::rng::Rng;
use gauntlet_proxies::ws_frames;
use gauntlet_proxies::{Action, CloseHow, Connection, Cx, Event, Hop, HopEnv, ModelSpec, Side};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Chain elements
// ---------------------------------------------------------------------------------------------

/// Byte-preserving models that may sit anywhere in a chain, each as the keys of a `[[path]]`
/// table in a scenario file. Adding a model to the property is adding a line here.
const ANYWHERE: &[&str] = &[
    "model = 'pass'",
    "model = 'l4-balancer'\nbackends = 1",
    "model = 'l4-balancer'\nbackends = 3",
    "model = 'l4-balancer'\nbackends = 4\npolicy = 'least-connections'",
    "model = 'l4-balancer'\nbackends = 5\npolicy = 'source-hash'",
    // An upgrade-aware HTTP proxy: reads the handshake, adds `Via`, tunnels after the 101.
    "model = 'header-mangler'\nadd-via = '1.1 gauntlet'",
    // Upgrade-aware L7 balancers: HAProxy with the seed's ACLs and stickiness, and an ALB.
    "model = 'l7-balancer'\npreset = 'haproxy-tunnel'\nbackends = 3\nws-backends = [2, 3]\nweb-backends = [1]\nsticky-cookie = 'SRV'\nterminate-tls = false",
    "model = 'l7-balancer'\npreset = 'aws-alb'\nbackends = 2\nbalance = 'least-connections'\nterminate-tls = false",
];

/// Explicit proxies: the client sends `CONNECT` to them, so they only sit first.
const FIRST_ONLY: &[&str] = &[
    "model = 'connect-proxy'\npreset = 'tinyproxy'",
    "model = 'connect-proxy'\nallowed-ports = [80]\nallowed-hosts = ['server']",
];

/// The model a chain element configures.
fn spec(element: &str) -> ModelSpec {
    toml::from_str(element).unwrap_or_else(|e| panic!("chain element `{element}`: {e}"))
}

/// Whether the client must ask this hop for a tunnel with `CONNECT`.
fn explicit(spec: &ModelSpec) -> bool {
    matches!(spec, ModelSpec::ConnectProxy(_))
}

// ---------------------------------------------------------------------------------------------
// What the endpoints send
// ---------------------------------------------------------------------------------------------

/// The port the client's explicit proxy listens on.
const PROXY_PORT: u16 = 3128;
/// The ws:// port.
const WS_PORT: u16 = 80;
/// RFC 6455 §1.3.
const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const CONNECT_REQUEST: &[u8] = b"CONNECT server:80 HTTP/1.1\r\nHost: server:80\r\n\r\n";

/// Text that an HTTP reader would take for a message, to send as opaque payload.
const HTTP_LOOKALIKES: &[&str] = &[
    "GET /echo HTTP/1.1\r\nHost: server\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    "CONNECT server:443 HTTP/1.1\r\nHost: server:443\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
];

/// How a message's bytes are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A binary WebSocket frame with a `len`-byte random payload, masked from the client.
    Frame,
    /// `len` random bytes.
    Random,
    /// `len` bytes of HTTP-looking text.
    HttpLike,
}

/// One message, as a recipe rather than bytes so failing cases print and shrink well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Payload {
    kind: Kind,
    len: usize,
    seed: u64,
}

impl Payload {
    fn bytes(&self, from_client: bool) -> Vec<u8> {
        let mut rng = Rng::new(self.seed);
        match self.kind {
            Kind::Random => {
                let mut out = vec![0; self.len];
                rng.fill(&mut out);
                out
            }
            Kind::HttpLike => {
                let text = HTTP_LOOKALIKES[(self.seed % HTTP_LOOKALIKES.len() as u64) as usize];
                text.bytes().cycle().take(self.len).collect()
            }
            Kind::Frame => {
                let mut payload = vec![0; self.len];
                rng.fill(&mut payload);
                let mask = from_client.then(|| (rng.next_u64() as u32).to_be_bytes());
                frame(&payload, mask)
            }
        }
    }
}

/// A final binary frame (RFC 6455 §5.2).
fn frame(payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    ws_frames::encode(ws_frames::opcode::BINARY, payload, mask)
}

/// SHA-1 (FIPS 180-4), for `Sec-WebSocket-Accept`.
fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&(data.len() as u64 * 8).to_be_bytes());
    for block in msg.chunks(64) {
        let mut w = [0u32; 80];
        for (word, bytes) in w.iter_mut().zip(block.chunks(4)) {
            *word = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, word) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*word);
            (e, d, c, b, a) = (d, c, b.rotate_left(30), a, t);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0; 20];
    for (chunk, x) in out.chunks_mut(4).zip(h) {
        chunk.copy_from_slice(&x.to_be_bytes());
    }
    out
}

/// The `Sec-WebSocket-Accept` value for a key (RFC 6455 §4.2.2).
fn accept(key: &str) -> String {
    base64(&sha1(format!("{key}{WS_GUID}").as_bytes()))
}

fn upgrade_request(key: &str) -> Vec<u8> {
    format!(
        "GET /echo HTTP/1.1\r\nHost: server\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes()
}

/// Every value of the fields named `name`, as text.
fn values(head: &Head, name: &str) -> Vec<String> {
    head.fields
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The endpoints, as sans-IO connections
// ---------------------------------------------------------------------------------------------

/// What the client saw.
#[derive(Debug, Default)]
struct ClientLog {
    /// The answer to `CONNECT`.
    connect: Option<Head>,
    /// The answer to the upgrade request.
    handshake: Option<Head>,
    /// Every byte after the handshake answer.
    received: Vec<u8>,
    fin: bool,
    reset: bool,
    trouble: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientState {
    Connecting,
    Upgrading,
    Open,
    Done,
}

/// The WebSocket client. Started with [`Event::Accepted`]; its only side is upstream. Through
/// an explicit proxy it sends `CONNECT` first and, unless it pipelines, waits for the 200.
/// After the 101 it sends its messages, then FIN.
#[derive(Debug)]
struct Client {
    via_proxy: bool,
    pipeline: bool,
    request: Vec<u8>,
    messages: Vec<Vec<u8>>,
    state: ClientState,
    buf: Vec<u8>,
    log: Rc<RefCell<ClientLog>>,
}

impl Client {
    fn advance(&mut self, cx: &mut Cx) {
        loop {
            let awaiting = match self.state {
                ClientState::Open => {
                    let bytes = std::mem::take(&mut self.buf);
                    self.log.borrow_mut().received.extend_from_slice(&bytes);
                    return;
                }
                ClientState::Done => {
                    if !self.buf.is_empty() {
                        let n = self.buf.len();
                        self.trouble(format!("{n} bytes after giving up"));
                        self.buf.clear();
                    }
                    return;
                }
                ClientState::Connecting => 200,
                ClientState::Upgrading => 101,
            };
            let (head, len) = match http::parse_response(&self.buf, 1 << 16) {
                Parsed::Partial => return,
                Parsed::Invalid(reason) => {
                    self.trouble(format!("expected a {awaiting} answer: {reason}"));
                    return self.give_up(cx);
                }
                Parsed::Complete(head, len) => (head, len),
            };
            self.buf.drain(..len);
            let ok = head.status() == Some(awaiting);
            if awaiting == 200 {
                self.log.borrow_mut().connect = Some(head);
                if !ok {
                    return self.give_up(cx);
                }
                if !self.pipeline {
                    cx.send(Side::Upstream, self.request.clone());
                }
                self.state = ClientState::Upgrading;
            } else {
                self.log.borrow_mut().handshake = Some(head);
                if !ok {
                    return self.give_up(cx);
                }
                for m in &self.messages {
                    cx.send(Side::Upstream, m.clone());
                }
                cx.fin(Side::Upstream);
                self.state = ClientState::Open;
            }
        }
    }

    fn give_up(&mut self, cx: &mut Cx) {
        self.state = ClientState::Done;
        self.buf.clear();
        cx.fin(Side::Upstream);
    }

    fn trouble(&self, what: String) {
        self.log.borrow_mut().trouble.push(what);
    }
}

impl Connection for Client {
    fn on_event(&mut self, cx: &mut Cx, event: Event<'_>) {
        match event {
            Event::Accepted { .. } => {
                if self.via_proxy {
                    cx.dial(PROXY_PORT);
                    cx.send(Side::Upstream, CONNECT_REQUEST);
                    if self.pipeline {
                        cx.send(Side::Upstream, self.request.clone());
                    }
                    self.state = ClientState::Connecting;
                } else {
                    cx.dial(WS_PORT);
                    cx.send(Side::Upstream, self.request.clone());
                    self.state = ClientState::Upgrading;
                }
            }
            Event::Data {
                from: Side::Upstream,
                bytes,
            } => {
                self.buf.extend_from_slice(bytes);
                self.advance(cx);
            }
            Event::Fin { .. } => self.log.borrow_mut().fin = true,
            Event::Reset { .. } => self.log.borrow_mut().reset = true,
            Event::DialFailed { reason } => self.trouble(format!("dial failed: {reason}")),
            Event::Data { from, .. } => self.trouble(format!("data from {}", from.as_str())),
            Event::Dialed | Event::Timer { .. } => {}
        }
    }
}

/// What the server saw.
#[derive(Debug, Default)]
struct ServerLog {
    /// The port it was reached on.
    port: Option<u16>,
    /// The request head as it arrived.
    request: Option<Head>,
    /// Every byte after the request head.
    received: Vec<u8>,
    fin: bool,
    reset: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerState {
    Reading,
    Open,
    Done,
}

/// The WebSocket server: answers a valid upgrade request with 101 and its `early` messages,
/// anything else with 426; when the client half-closes it sends its `late` messages, then FIN.
#[derive(Debug)]
struct Server {
    early: Vec<Vec<u8>>,
    late: Vec<Vec<u8>>,
    state: ServerState,
    buf: Vec<u8>,
    log: Rc<RefCell<ServerLog>>,
}

impl Server {
    fn answer(&mut self, cx: &mut Cx, head: &Head) {
        let one = |name: &str| -> Option<String> {
            let v = values(head, name);
            (v.len() == 1).then(|| v[0].clone())
        };
        let key = one("sec-websocket-key");
        let upgrade = head.get("upgrade").is_some_and(|v| v == b"websocket")
            && head.connection_has("upgrade")
            && one("sec-websocket-version").as_deref() == Some("13");
        match key {
            Some(key) if upgrade => {
                let answer = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                     Sec-WebSocket-Accept: {}\r\n\r\n",
                    accept(&key)
                );
                cx.send(Side::Client, answer.into_bytes());
                for m in &self.early {
                    cx.send(Side::Client, m.clone());
                }
                self.state = ServerState::Open;
            }
            _ => {
                cx.send(
                    Side::Client,
                    b"HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\n\
                      Content-Length: 0\r\nConnection: close\r\n\r\n"
                        .to_vec(),
                );
                cx.fin(Side::Client);
                self.state = ServerState::Done;
            }
        }
    }
}

impl Connection for Server {
    fn on_event(&mut self, cx: &mut Cx, event: Event<'_>) {
        match event {
            Event::Accepted { port } => self.log.borrow_mut().port = Some(port),
            Event::Data { bytes, .. } => match self.state {
                ServerState::Reading => {
                    self.buf.extend_from_slice(bytes);
                    match http::parse_request(&self.buf, 1 << 16) {
                        Parsed::Partial => {}
                        Parsed::Invalid(_) => {
                            self.state = ServerState::Done;
                            cx.reset(Side::Client);
                        }
                        Parsed::Complete(head, len) => {
                            let rest = self.buf.split_off(len);
                            self.answer(cx, &head);
                            let mut log = self.log.borrow_mut();
                            log.request = Some(head);
                            log.received.extend_from_slice(&rest);
                        }
                    }
                }
                ServerState::Open | ServerState::Done => {
                    self.log.borrow_mut().received.extend_from_slice(bytes);
                }
            },
            Event::Fin { .. } => {
                self.log.borrow_mut().fin = true;
                if self.state == ServerState::Open {
                    for m in &self.late {
                        cx.send(Side::Client, m.clone());
                    }
                    cx.fin(Side::Client);
                    self.state = ServerState::Done;
                }
            }
            Event::Reset { .. } => self.log.borrow_mut().reset = true,
            Event::Dialed | Event::DialFailed { .. } | Event::Timer { .. } => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The network
// ---------------------------------------------------------------------------------------------

/// Simulated time one delivery takes.
const TICK: Duration = Duration::from_micros(100);
/// Deliveries and timer firings before a run counts as stuck.
const MAX_STEPS: usize = 2_000_000;

/// Something in flight from one element to its neighbour.
#[derive(Debug)]
enum Item {
    /// The connection a dial opened (first on a down channel).
    Accepted(u16),
    /// The dial completed (first on an up channel).
    Dialed,
    /// Stream bytes; consecutive sends coalesce, as in TCP.
    Bytes(VecDeque<u8>),
    Fin,
    Reset,
}

/// One direction of a link, FIFO, and where its next segment length comes from.
#[derive(Debug, Default)]
struct Channel {
    items: VecDeque<Item>,
    cursor: usize,
}

impl Channel {
    fn push_bytes(&mut self, bytes: &[u8]) {
        if let Some(Item::Bytes(q)) = self.items.back_mut() {
            q.extend(bytes);
        } else {
            self.items
                .push_back(Item::Bytes(bytes.iter().copied().collect()));
        }
    }
}

/// A hop made of one prepared connection (an endpoint).
struct Prepared(Option<Box<dyn Connection>>);

impl Hop for Prepared {
    fn connection(&mut self) -> Box<dyn Connection> {
        self.0.take().expect("an endpoint accepts one connection")
    }
}

/// One element of the chain: the client (index 0), a hop, or the server (last).
struct Node {
    name: String,
    hop: Box<dyn Hop>,
    conn: Option<Box<dyn Connection>>,
    cx: Cx,
    backends: usize,
    dialed: bool,
    /// Per side: this node sent FIN on it.
    finned: [bool; 2],
    /// Per side: reset, by this node or its peer; nothing more travels on it.
    gone: [bool; 2],
    timers: BTreeMap<u64, Duration>,
}

/// A deterministic in-memory network running a chain of sans-IO elements. Link `l` joins node
/// `l`'s upstream side to node `l + 1`'s client side; `down[l]` carries node `l`'s sends to
/// node `l + 1`, `up[l]` the other way.
struct Net {
    nodes: Vec<Node>,
    down: Vec<Channel>,
    up: Vec<Channel>,
    now: Duration,
    /// Segment lengths, cycled per channel.
    cuts: Vec<usize>,
    /// Which ready channel delivers next, cycled.
    schedule: Vec<usize>,
    steps: usize,
    /// Contract breaches: bytes a node lost, dials it could not make.
    faults: Vec<String>,
    /// Notes, dials and closes, for failure reports.
    transcript: Vec<String>,
}

impl Net {
    fn new(
        elements: Vec<(String, Box<dyn Hop>, usize)>,
        cuts: Vec<usize>,
        schedule: Vec<usize>,
        seed: u64,
    ) -> Self {
        let links = elements.len() - 1;
        let nodes = elements
            .into_iter()
            .enumerate()
            .map(|(i, (name, hop, backends))| {
                let mut cx = Cx::new(Rng::derive(seed, i as u64).next_u64());
                cx.set_peer(if i == 1 {
                    format!("192.0.2.{}:{}", seed % 250 + 1, 1024 + seed % 60_000)
                } else {
                    format!("10.0.0.{i}:{}", 40_000 + i)
                });
                Node {
                    name,
                    hop,
                    conn: None,
                    cx,
                    backends,
                    dialed: false,
                    finned: [false; 2],
                    gone: [false; 2],
                    timers: BTreeMap::new(),
                }
            })
            .collect();
        Self {
            nodes,
            down: (0..links).map(|_| Channel::default()).collect(),
            up: (0..links).map(|_| Channel::default()).collect(),
            now: Duration::ZERO,
            cuts: if cuts.is_empty() { vec![1 << 16] } else { cuts },
            schedule: if schedule.is_empty() {
                vec![0]
            } else {
                schedule
            },
            steps: 0,
            faults: Vec::new(),
            transcript: Vec::new(),
        }
    }

    fn log(&mut self, node: usize, what: String) {
        let line = format!("{:>10?} {}: {what}", self.now, self.nodes[node].name);
        self.transcript.push(line);
    }

    fn fault(&mut self, node: usize, what: String) {
        self.log(node, format!("FAULT {what}"));
        let line = format!("{}: {what}", self.nodes[node].name);
        self.faults.push(line);
    }

    /// Starts the client and runs until nothing is in flight and no timer is set.
    fn run(&mut self) {
        let client = self.nodes[0].hop.connection();
        self.nodes[0].conn = Some(client);
        self.call(0, Event::Accepted { port: 0 });
        loop {
            if self.steps >= MAX_STEPS {
                self.fault(0, format!("the run did not settle in {MAX_STEPS} steps"));
                return;
            }
            if let Some((node, id)) = self.next_timer(true) {
                self.steps += 1;
                self.nodes[node].timers.remove(&id);
                self.call(node, Event::Timer { id });
                continue;
            }
            let ready: Vec<(bool, usize)> = (0..self.down.len())
                .flat_map(|l| [(true, l), (false, l)])
                .filter(|&(down, l)| {
                    let ch = if down { &self.down[l] } else { &self.up[l] };
                    !ch.items.is_empty()
                })
                .collect();
            if ready.is_empty() {
                match self.next_timer(false) {
                    Some((node, id)) => self.now = self.now.max(self.nodes[node].timers[&id]),
                    None => return,
                }
                continue;
            }
            let choice = self.schedule[self.steps % self.schedule.len()] % ready.len();
            self.steps += 1;
            self.now += TICK;
            let (down, link) = ready[choice];
            self.deliver(down, link);
        }
    }

    /// The earliest timer (by time, then node, then id); with `due`, only one due now.
    fn next_timer(&self, due: bool) -> Option<(usize, u64)> {
        self.nodes
            .iter()
            .enumerate()
            .flat_map(|(i, n)| n.timers.iter().map(move |(id, at)| (*at, i, *id)))
            .filter(|(at, _, _)| !due || *at <= self.now)
            .min()
            .map(|(_, i, id)| (i, id))
    }

    /// Delivers the next item of a channel: bytes up to the next cut length.
    fn deliver(&mut self, down: bool, link: usize) {
        let (ch, to, from) = if down {
            (&mut self.down[link], link + 1, Side::Client)
        } else {
            (&mut self.up[link], link, Side::Upstream)
        };
        let cut = self.cuts[ch.cursor % self.cuts.len()];
        let item = match ch.items.front_mut() {
            Some(Item::Bytes(q)) if q.len() > cut => {
                ch.cursor += 1;
                Item::Bytes(q.drain(..cut).collect())
            }
            Some(Item::Bytes(_)) => {
                ch.cursor += 1;
                ch.items.pop_front().expect("a front item")
            }
            _ => ch.items.pop_front().expect("a ready channel"),
        };
        if self.nodes[to].gone[from.index()] {
            let what = match &item {
                Item::Bytes(q) => format!("{} bytes", q.len()),
                other => format!("{other:?}"),
            };
            let what = format!("dropped {what} from {}: reset", from.as_str());
            return self.log(to, what);
        }
        match item {
            Item::Accepted(port) => {
                let conn = self.nodes[to].hop.connection();
                self.nodes[to].conn = Some(conn);
                self.log(to, format!("accepted on port {port}"));
                self.call(to, Event::Accepted { port });
            }
            Item::Dialed => self.call(to, Event::Dialed),
            Item::Bytes(q) => {
                let bytes: Vec<u8> = q.into();
                self.call(
                    to,
                    Event::Data {
                        from,
                        bytes: &bytes,
                    },
                );
            }
            Item::Fin => {
                self.log(to, format!("FIN from {}", from.as_str()));
                self.call(to, Event::Fin { from });
            }
            Item::Reset => {
                self.log(to, format!("RST from {}", from.as_str()));
                self.nodes[to].gone[from.index()] = true;
                self.call(to, Event::Reset { from });
            }
        }
    }

    fn call(&mut self, i: usize, event: Event<'_>) {
        let node = &mut self.nodes[i];
        node.cx.set_now(self.now);
        let conn = node.conn.as_mut().expect("events follow the accept");
        conn.on_event(&mut node.cx, event);
        for action in node.cx.take_actions() {
            self.act(i, action);
        }
    }

    /// The channel a node's side sends on, if that side exists.
    fn outgoing(&mut self, i: usize, side: Side) -> Option<&mut Channel> {
        match side {
            Side::Upstream if i + 1 < self.nodes.len() && self.nodes[i].dialed => {
                Some(&mut self.down[i])
            }
            Side::Client if i > 0 => Some(&mut self.up[i - 1]),
            _ => None,
        }
    }

    fn act(&mut self, i: usize, action: Action) {
        match action {
            Action::Send { to, bytes } => {
                let n = bytes.len();
                let node = &self.nodes[i];
                if node.gone[to.index()] {
                    return self.log(i, format!("{n} bytes for {} discarded: reset", to.as_str()));
                }
                if node.finned[to.index()] {
                    return self.fault(i, format!("sent {n} bytes to {} after FIN", to.as_str()));
                }
                match self.outgoing(i, to) {
                    Some(ch) => ch.push_bytes(&bytes),
                    None => self.fault(
                        i,
                        format!(
                            "sent {n} bytes to a {} side that does not exist (not dialed)",
                            to.as_str()
                        ),
                    ),
                }
            }
            // Every hop of a chain has a next hop: a named destination is reached through it.
            Action::DialNamed { port, .. } => self.act(i, Action::Dial { backend: 0, port }),
            Action::Dial { backend, port } => {
                let (dialed, backends) = (self.nodes[i].dialed, self.nodes[i].backends);
                if i + 1 == self.nodes.len() {
                    return self.fault(i, "dialed but has no upstream".into());
                }
                if dialed {
                    return self.fault(i, "dialed a second time".into());
                }
                if backend >= backends {
                    return self.fault(i, format!("dialed backend {backend} of {backends}"));
                }
                self.nodes[i].dialed = true;
                self.log(i, format!("dials backend {backend} on port {port}"));
                self.down[i].items.push_back(Item::Accepted(port));
                self.up[i].items.push_back(Item::Dialed);
            }
            Action::Close { side, how } => {
                let node = &self.nodes[i];
                let s = side.index();
                if node.gone[s] || (how == CloseHow::Fin && node.finned[s]) {
                    return;
                }
                let Some(ch) = self.outgoing(i, side) else {
                    let what = format!("{how:?} to a {} side that does not exist", side.as_str());
                    return self.log(i, what);
                };
                match how {
                    CloseHow::Fin => {
                        ch.items.push_back(Item::Fin);
                        self.nodes[i].finned[s] = true;
                    }
                    CloseHow::Reset => {
                        // A reset discards what is still in flight.
                        ch.items.retain(|item| !matches!(item, Item::Bytes(_)));
                        ch.items.push_back(Item::Reset);
                        self.nodes[i].gone[s] = true;
                    }
                }
                self.log(i, format!("{how:?} to {}", side.as_str()));
            }
            Action::SetTimer { id, at } => {
                self.nodes[i].timers.insert(id, at);
            }
            Action::CancelTimer { id } => {
                self.nodes[i].timers.remove(&id);
            }
            Action::Note(line) => self.log(i, line),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A case, its run, and the checks
// ---------------------------------------------------------------------------------------------

/// One generated situation.
#[derive(Debug, Clone)]
struct Case {
    /// The hops, client side first.
    chain: Vec<&'static str>,
    /// Through an explicit proxy: send the upgrade request right after `CONNECT`, without
    /// waiting for the 200.
    pipeline: bool,
    /// What the client sends after the 101.
    client: Vec<Payload>,
    /// What the server sends: the first `server_early` right after its 101, the rest after
    /// the client's FIN.
    server: Vec<Payload>,
    server_early: usize,
    /// Segment lengths, cycled per channel.
    cuts: Vec<usize>,
    /// Delivery order choices, cycled.
    schedule: Vec<usize>,
    seed: u64,
}

struct Outcome {
    client: ClientLog,
    server: ServerLog,
    faults: Vec<String>,
    transcript: Vec<String>,
}

fn key(seed: u64) -> String {
    let mut nonce = [0; 16];
    Rng::derive(seed, 0x006b_6579).fill(&mut nonce);
    base64(&nonce)
}

fn run(case: &Case) -> Outcome {
    let specs: Vec<ModelSpec> = case.chain.iter().map(|e| spec(e)).collect();
    let client_log = Rc::new(RefCell::new(ClientLog::default()));
    let server_log = Rc::new(RefCell::new(ServerLog::default()));
    let client = Client {
        via_proxy: specs.first().is_some_and(explicit),
        pipeline: case.pipeline,
        request: upgrade_request(&key(case.seed)),
        messages: case.client.iter().map(|p| p.bytes(true)).collect(),
        state: ClientState::Connecting,
        buf: Vec::new(),
        log: client_log.clone(),
    };
    let early = case.server_early.min(case.server.len());
    let server_bytes: Vec<Vec<u8>> = case.server.iter().map(|p| p.bytes(false)).collect();
    let server = Server {
        early: server_bytes[..early].to_vec(),
        late: server_bytes[early..].to_vec(),
        state: ServerState::Reading,
        buf: Vec::new(),
        log: server_log.clone(),
    };
    let mut elements: Vec<(String, Box<dyn Hop>, usize)> = vec![(
        "client".into(),
        Box::new(Prepared(Some(Box::new(client)))),
        1,
    )];
    for (i, s) in specs.iter().enumerate() {
        let hop = s
            .hop(&HopEnv::default())
            .unwrap_or_else(|e| panic!("hop{} {}: {e}", i + 1, s.name()));
        elements.push((format!("hop{} {}", i + 1, s.name()), hop, s.backends()));
    }
    elements.push((
        "server".into(),
        Box::new(Prepared(Some(Box::new(server)))),
        1,
    ));
    let mut net = Net::new(
        elements,
        case.cuts.clone(),
        case.schedule.clone(),
        case.seed,
    );
    net.run();
    let Net {
        faults, transcript, ..
    } = net;
    Outcome {
        client: client_log.take(),
        server: server_log.take(),
        faults,
        transcript,
    }
}

/// Where two byte strings first differ, for failure messages.
fn compare(what: &str, got: &[u8], want: &[u8]) -> Option<String> {
    if got == want {
        return None;
    }
    let at = got.iter().zip(want).take_while(|(a, b)| a == b).count();
    Some(format!(
        "{what}: got {} bytes, expected {}; first difference at byte {at}",
        got.len(),
        want.len()
    ))
}

/// Everything the property promises, as a list of what went wrong.
fn check(case: &Case, out: &Outcome) -> Vec<String> {
    let mut wrong: Vec<String> = out.faults.iter().map(|f| format!("fault: {f}")).collect();
    let via_proxy = case.chain.first().is_some_and(|e| explicit(&spec(e)));
    let key = key(case.seed);
    let (client, server) = (&out.client, &out.server);
    wrong.extend(client.trouble.iter().map(|t| format!("client: {t}")));

    if server.port != Some(WS_PORT) {
        wrong.push(format!(
            "server reached on port {:?}, not {WS_PORT}",
            server.port
        ));
    }
    match &server.request {
        None => wrong.push("the upgrade request never reached the server".into()),
        Some(head) => {
            let expected = StartLine::Request {
                method: "GET".into(),
                target: "/echo".into(),
                minor: 1,
            };
            if head.start != expected {
                wrong.push(format!("request line changed: {:?}", head.start));
            }
            for (name, value) in [
                ("Host", "server"),
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Key", key.as_str()),
                ("Sec-WebSocket-Version", "13"),
            ] {
                let got = values(head, name);
                if got != [value] {
                    wrong.push(format!(
                        "the upgrade request reached the server with {name}: {got:?}, not [{value:?}]"
                    ));
                }
            }
        }
    }
    if via_proxy {
        let status = client.connect.as_ref().and_then(Head::status);
        if status != Some(200) {
            wrong.push(format!("CONNECT answered {status:?}, not 200"));
        }
    }
    match &client.handshake {
        None => wrong.push("no answer to the upgrade request reached the client".into()),
        Some(head) => {
            if head.status() != Some(101) {
                wrong.push(format!("the client got {:?}, not 101", head.start));
            }
            let accept = accept(&key);
            for (name, value) in [
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Accept", accept.as_str()),
            ] {
                let got = values(head, name);
                if got != [value] {
                    wrong.push(format!(
                        "the 101 reached the client with {name}: {got:?}, not [{value:?}]"
                    ));
                }
            }
        }
    }

    let sent_up: Vec<u8> = case.client.iter().flat_map(|p| p.bytes(true)).collect();
    let sent_down: Vec<u8> = case.server.iter().flat_map(|p| p.bytes(false)).collect();
    wrong.extend(compare(
        "server received what the client sent",
        &server.received,
        &sent_up,
    ));
    wrong.extend(compare(
        "client received what the server sent",
        &client.received,
        &sent_down,
    ));
    if !server.fin {
        wrong.push("the client's FIN did not reach the server".into());
    }
    if !client.fin {
        wrong.push("the server's FIN did not reach the client".into());
    }
    if server.reset || client.reset {
        wrong.push(format!(
            "a reset reached the server ({}) or the client ({})",
            server.reset, client.reset
        ));
    }
    wrong
}

fn report(case: &Case, out: &Outcome, wrong: &[String]) -> String {
    let tail = out.transcript.len().saturating_sub(60);
    format!(
        "chain {:?}\n{}\ntranscript (last lines):\n{}",
        case.chain,
        wrong.join("\n"),
        out.transcript[tail..].join("\n")
    )
}

// ---------------------------------------------------------------------------------------------
// Strategies and the property
// ---------------------------------------------------------------------------------------------

/// Sizes on the WebSocket length boundaries (7-bit, 16-bit, 64-bit lengths) and the extremes.
const EDGES: &[usize] = &[
    0, 1, 124, 125, 126, 127, 65_534, 65_535, 65_536, 65_537, 70_000,
];

fn chain() -> impl Strategy<Value = Vec<&'static str>> {
    let anywhere = || prop::sample::select(ANYWHERE);
    prop_oneof![
        prop::collection::vec(anywhere(), 1..=5),
        (
            prop::sample::select(FIRST_ONLY),
            prop::collection::vec(anywhere(), 0..=4)
        )
            .prop_map(|(first, rest)| std::iter::once(first).chain(rest).collect()),
    ]
}

fn payload() -> impl Strategy<Value = Payload> {
    let kind = prop_oneof![Just(Kind::Frame), Just(Kind::Random), Just(Kind::HttpLike)];
    let len = prop_oneof![
        3 => 0usize..=300,
        2 => 0usize..=70_000,
        2 => prop::sample::select(EDGES),
    ];
    (kind, len, any::<u64>()).prop_map(|(kind, len, seed)| Payload { kind, len, seed })
}

/// About how many deliveries a case may take. A case whose bytes would need more in 1-byte
/// segments gets a longer shortest segment, so every case stays well under a second.
const DELIVERY_BUDGET: usize = 300_000;

/// The shortest segment a case may use: 1 byte unless it sends a lot through a long chain.
fn shortest_cut(chain: &[&str], client: &[Payload], server: &[Payload]) -> usize {
    let bytes = client
        .iter()
        .chain(server)
        .map(|p| p.len + 14)
        .sum::<usize>()
        + 512;
    (bytes * (chain.len() + 1)).div_ceil(DELIVERY_BUDGET).max(1)
}

/// Segment lengths: a few bytes (heads split anywhere), up to an MSS, up to 64 KiB.
fn cuts(shortest: usize) -> impl Strategy<Value = Vec<usize>> {
    let cut = prop_oneof![
        1 => 1usize..=8,
        3 => 9usize..=1460,
        2 => 1461usize..=65_536,
    ];
    prop::collection::vec(cut.prop_map(move |c| c.max(shortest)), 1..=8)
}

prop_compose! {
    fn case()(
        chain in chain(),
        pipeline in any::<bool>(),
        client in prop::collection::vec(payload(), 0..=4),
        server in prop::collection::vec(payload(), 0..=4),
        server_early in 0usize..=4,
        schedule in prop::collection::vec(0usize..16, 1..=16),
        seed in any::<u64>(),
    )(
        cuts in cuts(shortest_cut(&chain, &client, &server)),
        chain in Just(chain),
        pipeline in Just(pipeline),
        client in Just(client),
        server in Just(server),
        server_early in Just(server_early),
        schedule in Just(schedule),
        seed in Just(seed),
    ) -> Case {
        Case { chain, pipeline, client, server, server_early, cuts, schedule, seed }
    }
}

proptest! {
    // At least 256 cases; PROPTEST_CASES may ask for more.
    #![proptest_config(ProptestConfig {
        cases: ProptestConfig::default().cases.max(256),
        ..ProptestConfig::default()
    })]

    /// Any chain of byte-preserving models delivers every byte unchanged, both ways, with the
    /// handshake's upgrade fields intact and FINs carried end to end.
    #[test]
    fn byte_preserving_chains_deliver_every_byte_unchanged(case in case()) {
        let out = run(&case);
        let wrong = check(&case, &out);
        prop_assert!(wrong.is_empty(), "{}", report(&case, &out, &wrong));
    }
}

// ---------------------------------------------------------------------------------------------
// Fixed cases: the harness itself, and that it detects change
// ---------------------------------------------------------------------------------------------

fn fixed(chain: Vec<&'static str>) -> Case {
    let p = |kind, len, seed| Payload { kind, len, seed };
    Case {
        chain,
        pipeline: false,
        client: vec![
            p(Kind::Frame, 125, 1),
            p(Kind::HttpLike, 300, 2),
            p(Kind::Frame, 65_536, 3),
        ],
        server: vec![p(Kind::Frame, 126, 4), p(Kind::Random, 5_000, 5)],
        server_early: 1,
        cuts: vec![7, 1460, 3],
        schedule: vec![0, 3, 1],
        seed: 42,
    }
}

#[test]
fn sha1_gives_the_rfc_6455_accept_value() {
    assert_eq!(
        accept("dGhlIHNhbXBsZSBub25jZQ=="),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
    let hex: String = sha1(b"abc").iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
}

#[test]
fn frames_use_the_length_encoding_their_size_needs() {
    assert_eq!(frame(&[0; 125], None)[..2], [0x82, 125]);
    assert_eq!(frame(&[0; 126], None)[..4], [0x82, 126, 0, 126]);
    assert_eq!(frame(&[0; 65_536], None)[1], 127);
    assert_eq!(
        frame(&[1, 2], Some([1, 1, 1, 1])),
        vec![0x82, 0x82, 1, 1, 1, 1, 0, 3]
    );
}

#[test]
fn every_chain_element_is_a_valid_model() {
    for element in ANYWHERE {
        assert!(!explicit(&spec(element)), "{element} may sit anywhere");
    }
    for element in FIRST_ONLY {
        assert!(explicit(&spec(element)), "{element} is an explicit proxy");
    }
}

#[test]
fn every_element_preserves_bytes_in_a_fixed_case() {
    for first in FIRST_ONLY {
        for rest in ANYWHERE.chunks(4) {
            let case = fixed(
                std::iter::once(*first)
                    .chain(rest.iter().copied())
                    .collect(),
            );
            let out = run(&case);
            let wrong = check(&case, &out);
            assert!(wrong.is_empty(), "{}", report(&case, &out, &wrong));
        }
    }
    for chain in ANYWHERE.chunks(5) {
        let case = fixed(chain.to_vec());
        let out = run(&case);
        let wrong = check(&case, &out);
        assert!(wrong.is_empty(), "{}", report(&case, &out, &wrong));
    }
}

#[test]
fn every_element_reads_heads_delivered_one_byte_at_a_time() {
    let p = |kind, len, seed| Payload { kind, len, seed };
    let one_byte = |chain: Vec<&'static str>| Case {
        client: vec![p(Kind::Frame, 126, 1), p(Kind::HttpLike, 200, 2)],
        server: vec![p(Kind::HttpLike, 300, 3), p(Kind::Frame, 125, 4)],
        cuts: vec![1],
        ..fixed(chain)
    };
    let chains = ANYWHERE
        .iter()
        .map(|e| vec![*e])
        .chain(FIRST_ONLY.iter().map(|e| vec![*e, "model = 'pass'"]));
    for chain in chains {
        for pipeline in [false, true] {
            let mut case = one_byte(chain.clone());
            case.pipeline = pipeline;
            let out = run(&case);
            let wrong = check(&case, &out);
            assert!(wrong.is_empty(), "{}", report(&case, &out, &wrong));
        }
    }
}

#[test]
fn a_client_that_pipelines_after_connect_loses_nothing() {
    for first in FIRST_ONLY {
        let mut case = fixed(vec![first, "model = 'pass'"]);
        case.pipeline = true;
        let out = run(&case);
        let wrong = check(&case, &out);
        assert!(wrong.is_empty(), "{}", report(&case, &out, &wrong));
    }
}

#[test]
fn a_proxy_that_strips_upgrade_is_caught() {
    let case = fixed(vec![
        "model = 'pass'",
        "model = 'transparent-proxy'\nbehaviour = 'strip'",
    ]);
    let wrong = check(&case, &run(&case));
    assert!(
        wrong
            .iter()
            .any(|w| w.contains("reached the server with Upgrade: []")),
        "{wrong:#?}"
    );
    assert!(wrong.iter().any(|w| w.contains("not 101")), "{wrong:#?}");
}

#[test]
fn a_proxy_that_chokes_on_the_first_frame_is_caught() {
    let case = fixed(vec![
        "model = 'transparent-proxy'\nbehaviour = 'forward-then-choke'",
    ]);
    let wrong = check(&case, &run(&case));
    assert!(
        wrong.iter().any(|w| w.starts_with("server received")),
        "{wrong:#?}"
    );
    assert!(
        !wrong.iter().any(|w| w.contains("reached the server with")),
        "the handshake itself passes: {wrong:#?}"
    );
}

#[test]
fn a_lifetime_cap_fires_on_the_simulated_clock_and_is_caught() {
    // 1 ms is ten deliveries: the cap's timer fires in the middle of the exchange.
    let case = fixed(vec![
        "model = 'lifetime-cap'\nmax-age-ms = 1",
        "model = 'pass'",
    ]);
    let out = run(&case);
    assert!(
        out.transcript.iter().any(|l| l.contains("maximum age")),
        "{:#?}",
        out.transcript
    );
    let wrong = check(&case, &out);
    assert!(!wrong.is_empty(), "the cap cut the exchange short");
    // A generous cap never fires before the run ends.
    let case = fixed(vec![
        "model = 'lifetime-cap'\nmax-age-ms = 60000",
        "model = 'pass'",
    ]);
    let out = run(&case);
    let wrong = check(&case, &out);
    assert!(wrong.is_empty(), "{}", report(&case, &out, &wrong));
}
