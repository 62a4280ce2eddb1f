//! `model-NAME`, one target per model: a hop made from a hop table (the model's presets, the
//! byte-preserving chain elements of `proxies-sim/tests/chains.rs`, and tables of random
//! parameters, valid or not), one to three connections through it fed event sequences as the
//! driver would deliver them, in any order the driver allows: `Accepted` first; `Dialed` or
//! `DialFailed` once, only after the model dials (never after it abandons the dial with a
//! reset); data, FIN and reset from the client until it is closed for reading, from the
//! upstream once dialed; timers at their times, as the clock jumps; the streams cut anywhere.
//!
//! Held to, for every model: no panic; a table the model refuses is refused with a message;
//! a dial names a backend the hop has; the bytes a model sends stay within a bound of what it
//! was given (no runaway amplification). For `pass` and `l4-balancer`, the opaque relays:
//! every byte reaches the other side unchanged and in order, and every FIN and reset is
//! carried across at once (`relay`'s contract). For the models that promise an unchanged
//! tunnel (`header-mangler` without rules, an upgrade-tunnelling `l7-balancer` without TLS or
//! draining, `connect-proxy` after its 200): once the 101 (or 200) reaches the client and no
//! timer has fired, every byte after the heads arrives unchanged, in order, both ways (the
//! property `chains.rs` states for whole chains).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use gauntlet_proxies::l7_balancer::Upgrade;
use gauntlet_proxies::tls_intercepting_proxy::Material;
use gauntlet_proxies::{
    Action, CloseHow, Connection, Cx, Event, Hop, HopEnv, ModelInfo, ModelSpec, Side,
};
use proptest::prelude::*;

use super::inputs::{self, show_bytes};
use super::runner::Checked;

/// TLS material for the models that terminate TLS, made once per target.
pub fn env() -> anyhow::Result<HopEnv> {
    let ca = gauntlet::tls::Ca::generate("Gauntlet fuzz CA")?;
    let names = ["server", "localhost", "victim", "hop1"].map(String::from);
    Ok(HopEnv {
        tls: Some(Material {
            server: ca.server_config(&names, gauntlet::tls::TlsVersions::default())?,
            upstream: gauntlet::tls::client_config(&[&ca])?,
        }),
    })
}

// ---------------------------------------------------------------------------------------------
// Hop tables
// ---------------------------------------------------------------------------------------------

const MS: &[&str] = &[
    "1",
    "2",
    "50",
    "1000",
    "30000",
    "60000",
    "3600000",
    "0",
    "31536000000",
    "-1",
    "\"x\"",
];
const BOOL: &[&str] = &["true", "false", "true", "1"];
const PORTS: &[&str] = &[
    "[80]",
    "[443]",
    "[80, 443]",
    "[]",
    "[3128]",
    "[80, 3128]",
    "[70000]",
];
const BYTES: &[&str] = &[
    "1",
    "2",
    "16",
    "100",
    "4096",
    "65536",
    "0",
    "18446744073709551615",
];
const BACKENDS: &[&str] = &["1", "2", "3", "5", "64", "0", "65"];

/// Values of every TOML type, for a key [`keys`] gives no values for (a new parameter).
const ANY: &[&str] = &["0", "1", "1000", "-1", "true", "\"x\"", "[80]", "[]"];

/// Each of `model`'s keys (as its declaration lists them) with the values to try: those
/// [`keys`] gives, or else [`ANY`].
fn values(model: &str) -> Vec<(&'static str, &'static [&'static str])> {
    let chosen = keys(model);
    ModelInfo::get(model)
        .map_or(&[][..], ModelInfo::keys)
        .iter()
        .map(|&key| {
            chosen
                .iter()
                .find(|(k, _)| *k == key)
                .copied()
                .unwrap_or((key, ANY))
        })
        .collect()
}

/// Values to try (TOML), mostly valid, for the parameters of each model.
fn keys(model: &str) -> &'static [(&'static str, &'static [&'static str])] {
    match model {
        "transparent-proxy" => &[
            (
                "behaviour",
                &[
                    "\"strip\"",
                    "\"forward-then-choke\"",
                    "\"http10-upstream\"",
                    "\"nope\"",
                ],
            ),
            ("on-garbage", &["\"400\"", "\"reset\"", "400"]),
            ("intercept-ports", PORTS),
            ("max-head-bytes", BYTES),
        ],
        "idle-killer" => &[
            (
                "preset",
                &[
                    "\"nginx\"",
                    "\"aws-alb\"",
                    "\"heroku\"",
                    "\"azure-lb\"",
                    "\"aws-nlb\"",
                    "\"squid\"",
                    "\"envoy\"",
                    "\"cloudflare\"",
                    "\"haproxy-30s\"",
                ],
            ),
            ("timeout-ms", MS),
            (
                "rearm",
                &["\"either\"", "\"from-client\"", "\"from-upstream\""],
            ),
            (
                "close",
                &[
                    "\"fin\"",
                    "\"reset\"",
                    "\"drop\"",
                    "\"reset-on-next-packet\"",
                ],
            ),
            (
                "close-upstream",
                &[
                    "\"fin\"",
                    "\"reset\"",
                    "\"drop\"",
                    "\"reset-on-next-packet\"",
                ],
            ),
            ("http-ports", PORTS),
        ],
        "l4-balancer" => &[
            ("backends", BACKENDS),
            (
                "policy",
                &[
                    "\"round-robin\"",
                    "\"least-connections\"",
                    "\"source-hash\"",
                ],
            ),
        ],
        "l7-balancer" => &[
            (
                "preset",
                &[
                    "\"nginx\"",
                    "\"nginx-http11\"",
                    "\"nginx-websocket\"",
                    "\"haproxy\"",
                    "\"haproxy-tunnel\"",
                    "\"httpd-wstunnel\"",
                    "\"httpd-http\"",
                    "\"aws-alb\"",
                ],
            ),
            ("backends", BACKENDS),
            (
                "balance",
                &[
                    "\"round-robin\"",
                    "\"least-connections\"",
                    "\"source-hash\"",
                ],
            ),
            ("upgrade", &["\"tunnel\"", "\"strip\"", "\"http10\""]),
            ("ws-backends", &["[1]", "[2, 3]", "[0]", "[9]", "[]"]),
            ("web-backends", &["[1]", "[2]", "[0]", "[9]"]),
            ("sticky-cookie", &["\"SRV\"", "\"a b\"", "\"\""]),
            ("timeout-ms", MS),
            ("timeout-tunnel-ms", MS),
            ("close-backend", &["\"fin\"", "\"reset\""]),
            ("drain-at-ms", MS),
            ("drain-deadline-ms", MS),
            ("drain", &["\"close-1001\"", "\"cut\""]),
            ("http-ports", PORTS),
            ("terminate-tls", &["false", "false", "true"]),
            ("tls-ports", PORTS),
        ],
        "connect-proxy" => &[
            ("preset", &["\"squid\"", "\"tinyproxy\""]),
            ("allowed-ports", &["[443]", "[80, 443]", "[]", "[80]"]),
            ("allowed-hosts", &["[\"server\"]", "[]", "[\"127.0.0.1\"]"]),
            ("auth", &["\"user:pass\"", "\"nocolon\""]),
            ("forward-upgrade", BOOL),
        ],
        "lifetime-cap" => &[
            ("preset", &["\"gcp-backend\"", "\"front-door\""]),
            ("max-age-ms", MS),
            ("close", &["\"fin\"", "\"reset\""]),
        ],
        "header-mangler" => &[
            (
                "rules",
                &[
                    "[{ field = \"Upgrade\", action = \"drop\" }]",
                    "[{ field = \"Connection\", action = \"lowercase-value\", on = \"both\" }]",
                    "[{ field = \"Sec-WebSocket-Accept\", action = \"drop\", on = \"response\" }]",
                    "[{ field = \"Upgrade\", action = \"uppercase-value\" }, { field = \"X-A\", action = \"set\", value = \"b\" }]",
                    "[{ field = \"Host\", action = \"duplicate\" }, { field = \"upgrade\", action = \"uppercase-name\" }]",
                    "[{ field = \"X\", action = \"set\" }]",
                    "[]",
                ],
            ),
            ("add-via", &["\"1.1 gauntlet\"", "\"\""]),
            ("connection-close", BOOL),
            ("http-ports", PORTS),
        ],
        "tls-intercepting-proxy" => &[
            (
                "inner",
                &[
                    "\"pass\"",
                    "\"strip\"",
                    "\"forward-then-choke\"",
                    "\"http10-upstream\"",
                ],
            ),
            ("client-trusts-ca", BOOL),
            ("tls-ports", PORTS),
        ],
        "buffering-proxy" => &[
            (
                "preset",
                &[
                    "\"nginx\"",
                    "\"antivirus-hold-until-close\"",
                    "\"antivirus-hold-first\"",
                ],
            ),
            (
                "hold",
                &["\"size\"", "\"whole-response\"", "\"first-chunk\""],
            ),
            ("hold-bytes", BYTES),
            ("flush-interval-ms", MS),
            ("hold-head", BOOL),
            ("upgrade-aware", BOOL),
            ("x-accel-buffering", BOOL),
            ("http-ports", PORTS),
            ("other-ports", &["\"relay\"", "\"hold\""]),
            ("max-held-bytes", BYTES),
        ],
        "caching-proxy" => &[
            ("http-ports", PORTS),
            ("max-entries", &["1", "2", "16", "0", "100000"]),
        ],
        _ => &[],
    }
}

/// Hop tables of note for each model: its presets and the byte-preserving chain elements.
fn curated(model: &str) -> &'static [&'static str] {
    match model {
        "pass" => &["model = 'pass'"],
        "l4-balancer" => &[
            "model = 'l4-balancer'\nbackends = 1",
            "model = 'l4-balancer'\nbackends = 3",
            "model = 'l4-balancer'\nbackends = 4\npolicy = 'least-connections'",
            "model = 'l4-balancer'\nbackends = 5\npolicy = 'source-hash'",
        ],
        "header-mangler" => &["model = 'header-mangler'\nadd-via = '1.1 gauntlet'"],
        "l7-balancer" => &[
            "model = 'l7-balancer'\npreset = 'haproxy-tunnel'\nbackends = 3\nws-backends = [2, 3]\nweb-backends = [1]\nsticky-cookie = 'SRV'\nterminate-tls = false",
            "model = 'l7-balancer'\npreset = 'aws-alb'\nbackends = 2\nbalance = 'least-connections'\nterminate-tls = false",
            "model = 'l7-balancer'\npreset = 'nginx'\nterminate-tls = false",
            "model = 'l7-balancer'\npreset = 'aws-alb'\nterminate-tls = true",
        ],
        "connect-proxy" => &[
            "model = 'connect-proxy'\npreset = 'tinyproxy'",
            "model = 'connect-proxy'\nallowed-ports = [80]\nallowed-hosts = ['server']",
            "model = 'connect-proxy'\npreset = 'squid'\nauth = 'user:pass'",
        ],
        "transparent-proxy" => &[
            "model = 'transparent-proxy'\nbehaviour = 'strip'",
            "model = 'transparent-proxy'\nbehaviour = 'forward-then-choke'\non-garbage = 'reset'",
            "model = 'transparent-proxy'\nbehaviour = 'http10-upstream'",
        ],
        "idle-killer" => &[
            "model = 'idle-killer'\npreset = 'aws-nlb'",
            "model = 'idle-killer'\npreset = 'nginx'\ntimeout-ms = 50",
        ],
        "lifetime-cap" => &["model = 'lifetime-cap'\nmax-age-ms = 50\nclose = 'reset'"],
        "tls-intercepting-proxy" => &["model = 'tls-intercepting-proxy'"],
        "buffering-proxy" => &[
            "model = 'buffering-proxy'",
            "model = 'buffering-proxy'\npreset = 'antivirus-hold-until-close'",
            "model = 'buffering-proxy'\npreset = 'antivirus-hold-first'",
        ],
        "caching-proxy" => &[
            "model = 'caching-proxy'",
            "model = 'caching-proxy'\nmax-entries = 1",
        ],
        _ => &[],
    }
}

/// One of the hop tables of note for `model` (its presets, the chain elements).
pub fn curated_table(model: &'static str) -> BoxedStrategy<String> {
    match curated(model) {
        [] => Just(format!("model = \"{model}\"")).boxed(),
        some => prop::sample::select(some).prop_map(str::to_string).boxed(),
    }
}

/// A hop table for `model`: a curated one, or `model = "..."` and random parameters.
pub fn table(model: &'static str) -> BoxedStrategy<String> {
    let head = format!("model = \"{model}\"");
    // About two parameters a table, whatever the model's count.
    let values = values(model);
    let p = (2.5 / values.len().max(1) as f64).min(0.35);
    let picks: Vec<BoxedStrategy<Option<String>>> = values
        .into_iter()
        .map(|(key, values)| {
            prop::option::weighted(p, prop::sample::select(values))
                .prop_map(move |v| v.map(|v| format!("{key} = {v}")))
                .boxed()
        })
        .collect();
    let random = (picks, prop::option::weighted(0.03, Just("bogus-key = 1")))
        .prop_map(move |(lines, bogus)| {
            let mut out = vec![head.clone()];
            out.extend(lines.into_iter().flatten());
            out.extend(bogus.map(str::to_string));
            out.join("\n")
        })
        .boxed();
    let curated = curated(model);
    if curated.is_empty() {
        return random;
    }
    prop_oneof![
        1 => prop::sample::select(curated).prop_map(str::to_string),
        2 => random,
    ]
    .boxed()
}

// ---------------------------------------------------------------------------------------------
// Streams and steps
// ---------------------------------------------------------------------------------------------

const UPGRADE: &str = "GET /echo HTTP/1.1\r\nHost: server\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
const SWITCHING: &str = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
const CONNECT: &str = "CONNECT server:80 HTTP/1.1\r\nHost: server:80\r\n\r\n";

/// Requests and answers, whole, for building streams.
const REQUESTS: &[&str] = &[
    UPGRADE,
    CONNECT,
    "CONNECT server:443 HTTP/1.1\r\nHost: server:443\r\nProxy-Authorization: Basic dXNlcjpwYXNz\r\n\r\n",
    "GET /script.js HTTP/1.1\r\nHost: victim\r\n\r\n",
    "GET http://server/echo HTTP/1.1\r\nHost: server\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: a2V5a2V5a2V5a2V5a2V5aw==\r\nSec-WebSocket-Version: 13\r\nCookie: SRV=s2\r\n\r\n",
    "POST /x HTTP/1.1\r\nHost: server\r\nContent-Length: 5\r\n\r\nhello",
    "POST /x HTTP/1.1\r\nHost: server\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "GET / HTTP/1.0\r\n\r\n",
    "GET /echo HTTP/1.1\r\nHost: server\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nX-Accel-Buffering: no\r\n\r\n",
];
const ANSWERS: &[&str] = &[
    SWITCHING,
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nCache-Control: public, max-age=3600\r\n\r\nhello",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "HTTP/1.1 200 OK\r\n\r\nuntil close",
    "HTTP/1.1 100 Continue\r\n\r\n",
    "HTTP/1.1 204 No Content\r\n\r\n",
    "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "HTTP/1.1 426 Upgrade Required\r\nContent-Length: 0\r\n\r\n",
    "HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\n\r\n",
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n",
];
/// Tunnel bytes that look like HTTP to a reader that should not be reading them.
const LOOKALIKES: &[&str] = &[
    "GET /echo HTTP/1.1\r\nHost: server\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    "0\r\n\r\n",
];
/// The start of a TLS ClientHello record.
const TLS_HELLO: &[u8] = &[
    0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x00, 0x00, 0x3c, 0x03, 0x03,
];

fn part(from_client: bool) -> BoxedStrategy<Vec<u8>> {
    let whole = if from_client { REQUESTS } else { ANSWERS };
    prop_oneof![
        4 => prop::sample::select(whole).prop_map(|s| s.as_bytes().to_vec()),
        2 => inputs::mutated(prop::sample::select(whole).prop_map(|s| s.as_bytes().to_vec()), 3),
        2 => inputs::mutated(inputs::head(from_client), 2),
        3 => inputs::valid_frame(from_client),
        1 => inputs::frame(),
        1 => prop::sample::select(LOOKALIKES).prop_map(|s| s.as_bytes().to_vec()),
        1 => prop::collection::vec(any::<u8>(), 0..64),
        1 => Just(TLS_HELLO.to_vec()),
        1 => (1usize..3000).prop_map(|n| vec![b'a'; n]),
    ]
    .boxed()
}

/// Bytes after a tunnel opens: frames, bytes that look like HTTP, anything.
fn tunnel_tail(from_client: bool) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            3 => inputs::valid_frame(from_client),
            1 => prop::sample::select(LOOKALIKES).prop_map(|s| s.as_bytes().to_vec()),
            1 => prop::collection::vec(any::<u8>(), 0..100),
        ],
        0..5,
    )
    .prop_map(|p| p.concat())
}

/// What one connection's two peers will send, and on which port it arrives.
#[derive(Debug, Clone)]
pub struct Script {
    port: u16,
    peer: &'static str,
    client: Vec<u8>,
    upstream: Vec<u8>,
}

fn script() -> impl Strategy<Value = Script> {
    let peer = prop::sample::select(&["client", "192.168.0.1:40000", "10.0.0.7:1", ""]);
    let shaped = prop_oneof![
        // An upgrade, then a tunnel.
        3 => (tunnel_tail(true), tunnel_tail(false)).prop_map(|(c, u)| {
            (80u16, [UPGRADE.as_bytes(), &c].concat(), [SWITCHING.as_bytes(), &u].concat())
        }),
        // A CONNECT tunnel.
        1 => (prop::sample::select(&[3128u16, 80]), tunnel_tail(true), tunnel_tail(false))
            .prop_map(|(port, c, u)| (port, [CONNECT.as_bytes(), &c].concat(), u)),
        // Anything.
        4 => (
            prop::sample::select(&[80u16, 443, 3128, 8080]),
            prop::collection::vec(part(true), 0..4),
            prop::collection::vec(part(false), 0..4),
        )
            .prop_map(|(port, c, u)| (port, c.concat(), u.concat())),
    ];
    (shaped, peer).prop_map(|((port, client, upstream), peer)| Script {
        port,
        peer,
        client,
        upstream,
    })
}

/// One thing the driver may do next, if the connection's state allows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The next `n` bytes from the client.
    Client(usize),
    /// The next `n` bytes from the upstream.
    Upstream(usize),
    /// The pending dial succeeds.
    Dialed,
    /// The pending dial fails.
    DialFailed,
    /// A side half-closes.
    Fin(Side),
    /// A side resets.
    Reset(Side),
    /// The earliest timer fires.
    Timer,
    /// The clock moves on this many milliseconds, firing timers due on the way.
    Advance(u64),
}

fn step() -> impl Strategy<Value = Step> {
    let n = prop_oneof![3 => 1usize..=8, 3 => 9usize..=300, 1 => 301usize..=5000];
    let side = prop_oneof![Just(Side::Client), Just(Side::Upstream)];
    prop_oneof![
        8 => n.clone().prop_map(Step::Client),
        8 => n.prop_map(Step::Upstream),
        4 => Just(Step::Dialed),
        1 => Just(Step::DialFailed),
        2 => side.clone().prop_map(Step::Fin),
        1 => side.prop_map(Step::Reset),
        1 => Just(Step::Timer),
        2 => prop_oneof![0u64..5, 5u64..2000, 2000u64..4_000_000].prop_map(Step::Advance),
    ]
}

/// One case: a hop table, the connections through the hop, and the driver's steps (each for
/// connection `index % connections`).
#[derive(Debug, Clone)]
pub struct ModelCase {
    table: String,
    scripts: Vec<Script>,
    steps: Vec<(usize, Step)>,
}

pub fn case(model: &'static str) -> impl Strategy<Value = ModelCase> {
    (
        table(model),
        prop_oneof![4 => Just(1usize), 1 => 2usize..=3]
            .prop_flat_map(|n| prop::collection::vec(script(), n)),
        prop::collection::vec((0usize..3, step()), 0..64),
    )
        .prop_map(|(table, scripts, steps)| ModelCase {
            table,
            scripts,
            steps,
        })
}

// ---------------------------------------------------------------------------------------------
// The driver's part, without sockets
// ---------------------------------------------------------------------------------------------

/// A close: which side, and how.
type Close = (Side, CloseHow);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dial {
    None,
    Pending,
    Connected,
    Failed,
    Abandoned,
}

/// What the model's connection was given and what it did, with the driver's view of its state.
#[derive(Debug)]
struct Driven {
    conn: Box<dyn Connection>,
    cx: Cx,
    client_at: usize,
    upstream_at: usize,
    client_read: bool,
    client_alive: bool,
    dial: Dial,
    upstream_read: bool,
    upstream_alive: bool,
    timers: BTreeMap<u64, Duration>,
    /// Bytes delivered from each side, and sent to each side, indexed by `Side::index`.
    delivered: [Vec<u8>; 2],
    sent: [Vec<u8>; 2],
    timer_fired: bool,
    reset_seen: bool,
    /// What went against a promise, checked as events go.
    wrong: Vec<String>,
    /// For each FIN, reset and failed dial delivered: the close `relay` answers it with, and
    /// the closes the model asked for.
    relayed: Vec<(Close, Vec<Close>)>,
}

/// Runs a case; returns every connection's record and, when `trace` is given, each event and
/// the actions it drew.
struct Run {
    conns: Vec<Driven>,
    opaque: bool,
    tunnel: Option<TunnelKind>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TunnelKind {
    /// After a 101 answered to the upgrade request.
    Upgrade,
    /// After a CONNECT answered 200 by the model itself.
    Connect,
}

/// The most bytes a connection may send for what it was given: a model answers, copies,
/// rewrites and repeats cached responses, never without bound.
fn send_bound(given: usize) -> usize {
    16 * given + 256 * 1024
}

fn describe(event: &Event<'_>) -> String {
    match event {
        Event::Data { from, bytes } => {
            format!("Data from {}: {}", from.as_str(), show_bytes(bytes))
        }
        other => format!("{other:?}"),
    }
}

impl Driven {
    fn deliver(
        &mut self,
        now: Duration,
        event: Event<'_>,
        backends: usize,
        trace: &mut Option<String>,
    ) {
        self.cx.set_now(now);
        if let Some(t) = trace.as_mut() {
            let _ = writeln!(
                t,
                "  {:>10.3} ms  {}",
                now.as_secs_f64() * 1000.0,
                describe(&event)
            );
        }
        let relay = match &event {
            Event::Fin { from } => Some((from.other(), CloseHow::Fin)),
            Event::Reset { from } => Some((from.other(), CloseHow::Reset)),
            Event::DialFailed { .. } => Some((Side::Client, CloseHow::Reset)),
            _ => None,
        };
        if let Event::Reset { .. } | Event::DialFailed { .. } = event {
            self.reset_seen = true;
        }
        if let Event::Timer { .. } = event {
            self.timer_fired = true;
        }
        self.conn.on_event(&mut self.cx, event);
        let actions = self.cx.take_actions();
        let mut closes = Vec::new();
        for action in actions {
            if let Some(t) = trace.as_mut() {
                let shown = match &action {
                    Action::Send { to, bytes } => {
                        format!("Send to {}: {}", to.as_str(), show_bytes(bytes))
                    }
                    other => format!("{other:?}"),
                };
                let _ = writeln!(t, "                 -> {shown}");
            }
            match action {
                Action::Send { to, bytes } => {
                    self.sent[to.index()].extend_from_slice(&bytes);
                    let given = self.delivered[0].len() + self.delivered[1].len();
                    if self.sent[to.index()].len() > send_bound(given) {
                        self.wrong.push(format!(
                            "sent {} bytes to {} for {given} bytes received",
                            self.sent[to.index()].len(),
                            to.as_str()
                        ));
                    }
                }
                Action::Dial { backend, .. } => {
                    if backend >= backends {
                        self.wrong
                            .push(format!("dialed backend {backend} of a hop with {backends}"));
                    }
                    if self.dial == Dial::None {
                        self.dial = Dial::Pending;
                    }
                }
                Action::DialNamed { .. } => {
                    if self.dial == Dial::None {
                        self.dial = Dial::Pending;
                    }
                }
                Action::Close { side, how } => {
                    closes.push((side, how));
                    match (side, how) {
                        (Side::Upstream, CloseHow::Reset) if self.dial == Dial::Pending => {
                            self.dial = Dial::Abandoned;
                        }
                        (Side::Upstream, CloseHow::Reset) => {
                            self.upstream_read = false;
                            self.upstream_alive = false;
                        }
                        (Side::Client, CloseHow::Reset) => {
                            self.client_read = false;
                            self.client_alive = false;
                        }
                        (_, CloseHow::Fin) => {}
                    }
                }
                Action::SetTimer { id, at } => {
                    self.timers.insert(id, at);
                }
                Action::CancelTimer { id } => {
                    self.timers.remove(&id);
                }
                Action::Note(n) => {
                    if n.is_empty() {
                        self.wrong.push("an empty note".into());
                    }
                }
            }
        }
        if let Some(expected) = relay {
            self.relayed.push((expected, closes));
        }
    }
}

impl ModelCase {
    fn run(&self, env: &HopEnv, trace: &mut Option<String>) -> Result<Option<Run>, String> {
        let spec: ModelSpec = match toml::from_str(&self.table) {
            Ok(spec) => spec,
            Err(e) => {
                let message = e.to_string();
                if message.trim().is_empty() {
                    return Err("a refused hop table without a message".into());
                }
                return Ok(None);
            }
        };
        let mut hop: Box<dyn Hop> = spec.hop(env).map_err(|e| format!("the hop: {e}"))?;
        let backends = spec.backends();
        let opaque = matches!(spec, ModelSpec::Pass(_) | ModelSpec::L4Balancer(_));
        let tunnel = match &spec {
            ModelSpec::HeaderMangler(p) if p.rules.is_empty() && !p.connection_close => {
                Some(TunnelKind::Upgrade)
            }
            ModelSpec::L7Balancer(p)
                if p.upgrade == Upgrade::Tunnel && !p.terminate_tls && p.drain.is_none() =>
            {
                Some(TunnelKind::Upgrade)
            }
            ModelSpec::ConnectProxy(_) => Some(TunnelKind::Connect),
            _ => None,
        };
        let mut now = Duration::ZERO;
        if let Some(t) = trace.as_mut() {
            let _ = writeln!(t, "hop: {}", spec.summary());
        }
        let mut conns: Vec<Driven> = Vec::new();
        for (i, s) in self.scripts.iter().enumerate() {
            let mut cx = Cx::new(0x5eed ^ i as u64);
            cx.set_peer(s.peer);
            let mut d = Driven {
                conn: hop.connection(),
                cx,
                client_at: 0,
                upstream_at: 0,
                client_read: true,
                client_alive: true,
                dial: Dial::None,
                upstream_read: false,
                upstream_alive: false,
                timers: BTreeMap::new(),
                delivered: [Vec::new(), Vec::new()],
                sent: [Vec::new(), Vec::new()],
                timer_fired: false,
                reset_seen: false,
                wrong: Vec::new(),
                relayed: Vec::new(),
            };
            if let Some(t) = trace.as_mut() {
                let _ = writeln!(t, "connection {i}:");
            }
            d.deliver(now, Event::Accepted { port: s.port }, backends, trace);
            conns.push(d);
        }
        let n = conns.len();
        for &(which, step) in &self.steps {
            let i = which % n;
            let s = &self.scripts[i];
            if let Some(t) = trace.as_mut() {
                let _ = writeln!(t, "connection {i}, {step:?}:");
            }
            let d = &mut conns[i];
            match step {
                Step::Client(k) if d.client_read && d.client_at < s.client.len() => {
                    let end = (d.client_at + k).min(s.client.len());
                    let bytes = &s.client[d.client_at..end];
                    d.client_at = end;
                    d.delivered[0].extend_from_slice(bytes);
                    d.deliver(
                        now,
                        Event::Data {
                            from: Side::Client,
                            bytes,
                        },
                        backends,
                        trace,
                    );
                }
                Step::Upstream(k)
                    if d.dial == Dial::Connected
                        && d.upstream_read
                        && d.upstream_at < s.upstream.len() =>
                {
                    let end = (d.upstream_at + k).min(s.upstream.len());
                    let bytes = &s.upstream[d.upstream_at..end];
                    d.upstream_at = end;
                    d.delivered[1].extend_from_slice(bytes);
                    d.deliver(
                        now,
                        Event::Data {
                            from: Side::Upstream,
                            bytes,
                        },
                        backends,
                        trace,
                    );
                }
                Step::Dialed if d.dial == Dial::Pending => {
                    d.dial = Dial::Connected;
                    d.upstream_read = true;
                    d.upstream_alive = true;
                    d.deliver(now, Event::Dialed, backends, trace);
                }
                Step::DialFailed if d.dial == Dial::Pending => {
                    d.dial = Dial::Failed;
                    d.deliver(
                        now,
                        Event::DialFailed {
                            reason: "connection refused",
                        },
                        backends,
                        trace,
                    );
                }
                Step::Fin(Side::Client) if d.client_read => {
                    d.client_read = false;
                    d.deliver(now, Event::Fin { from: Side::Client }, backends, trace);
                }
                Step::Fin(Side::Upstream) if d.dial == Dial::Connected && d.upstream_read => {
                    d.upstream_read = false;
                    d.deliver(
                        now,
                        Event::Fin {
                            from: Side::Upstream,
                        },
                        backends,
                        trace,
                    );
                }
                Step::Reset(Side::Client) if d.client_alive => {
                    d.client_alive = false;
                    d.client_read = false;
                    d.deliver(now, Event::Reset { from: Side::Client }, backends, trace);
                }
                Step::Reset(Side::Upstream) if d.dial == Dial::Connected && d.upstream_alive => {
                    d.upstream_alive = false;
                    d.upstream_read = false;
                    d.deliver(
                        now,
                        Event::Reset {
                            from: Side::Upstream,
                        },
                        backends,
                        trace,
                    );
                }
                Step::Timer => {
                    if let Some((&id, &at)) = d.timers.iter().min_by_key(|(_, at)| **at) {
                        d.timers.remove(&id);
                        now = now.max(at);
                        d.deliver(now, Event::Timer { id }, backends, trace);
                    }
                }
                Step::Advance(ms) => {
                    let until = now + Duration::from_millis(ms);
                    for d in conns.iter_mut() {
                        fire_due(d, &mut now, until, backends, trace);
                    }
                    now = until;
                }
                _ => {}
            }
        }
        // The timers still set fire in turn (a model may set more: a few rounds only).
        for _ in 0..8 {
            for d in conns.iter_mut() {
                if let Some((&id, &at)) = d.timers.iter().min_by_key(|(_, at)| **at) {
                    d.timers.remove(&id);
                    now = now.max(at);
                    d.deliver(now, Event::Timer { id }, backends, trace);
                }
            }
        }
        Ok(Some(Run {
            conns,
            opaque,
            tunnel,
        }))
    }
}

/// Fires `d`'s timers due by `until`, in order of their times, moving the clock to each.
fn fire_due(
    d: &mut Driven,
    now: &mut Duration,
    until: Duration,
    backends: usize,
    trace: &mut Option<String>,
) {
    // A model that re-arms a timer at or before the present would fire forever: a few
    // hundred rounds is far more than any model needs.
    for _ in 0..256 {
        let Some((&id, &at)) = d.timers.iter().min_by_key(|(_, at)| **at) else {
            return;
        };
        if at > until {
            return;
        }
        d.timers.remove(&id);
        let at = (*now).max(at);
        d.deliver(at, Event::Timer { id }, backends, trace);
    }
}

/// Where the request head at the start of `bytes` ends, as the models' parser reads it.
fn request_end(bytes: &[u8]) -> Option<usize> {
    match gauntlet_proxies::http::parse_request(bytes, usize::MAX) {
        gauntlet_proxies::http::Parsed::Complete(_, len) => Some(len),
        _ => None,
    }
}

/// Where the response head at the start of `bytes` ends.
fn response_end(bytes: &[u8]) -> Option<usize> {
    match gauntlet_proxies::http::parse_response(bytes, usize::MAX) {
        gauntlet_proxies::http::Parsed::Complete(_, len) => Some(len),
        _ => None,
    }
}

/// Whether `bytes` start with a request asking to upgrade to WebSocket (RFC 6455 §4.1).
fn asks_upgrade(bytes: &[u8]) -> bool {
    match gauntlet_proxies::http::parse_request(bytes, usize::MAX) {
        gauntlet_proxies::http::Parsed::Complete(head, _) => {
            head.get("upgrade")
                .is_some_and(|v| v.eq_ignore_ascii_case(b"websocket"))
                && head.connection_has("upgrade")
        }
        _ => false,
    }
}

/// `got` must equal `want`, or, when `may_stop` (a reset was seen), be a prefix of it.
fn same_stream(what: &str, got: &[u8], want: &[u8], may_stop: bool) -> Option<String> {
    if got == want || (may_stop && want.starts_with(got)) {
        return None;
    }
    let common = got.iter().zip(want).take_while(|(a, b)| a == b).count();
    Some(format!(
        "{what}: {} bytes relayed for {} received, first difference at byte {common}: relayed {} where {} came in",
        got.len(),
        want.len(),
        show_bytes(&got[common..got.len().min(common + 24)]),
        show_bytes(&want[common..want.len().min(common + 24)]),
    ))
}

fn check_conn(run: &Run, d: &Driven) -> Vec<String> {
    let mut wrong = d.wrong.clone();
    let [from_client, from_upstream] = &d.delivered;
    let [to_client, to_upstream] = &d.sent;
    if run.opaque {
        wrong.extend(same_stream(
            "client to upstream",
            to_upstream,
            from_client,
            false,
        ));
        wrong.extend(same_stream(
            "upstream to client",
            to_client,
            from_upstream,
            false,
        ));
        for (expected, closes) in &d.relayed {
            if closes != &[*expected] {
                wrong.push(format!(
                    "an event `relay` answers with {expected:?} drew the closes {closes:?}"
                ));
            }
        }
        return wrong;
    }
    if d.timer_fired {
        return wrong;
    }
    match run.tunnel {
        Some(TunnelKind::Upgrade)
            if to_client.starts_with(b"HTTP/1.1 101 ")
                && from_upstream.starts_with(b"HTTP/1.1 101 ")
                && asks_upgrade(from_client) =>
        {
            if let (Some(c), Some(su), Some(u), Some(sc)) = (
                request_end(from_client),
                request_end(to_upstream),
                response_end(from_upstream),
                response_end(to_client),
            ) {
                wrong.extend(same_stream(
                    "tunnel, client to upstream",
                    &to_upstream[su..],
                    &from_client[c..],
                    d.reset_seen,
                ));
                wrong.extend(same_stream(
                    "tunnel, upstream to client",
                    &to_client[sc..],
                    &from_upstream[u..],
                    d.reset_seen,
                ));
            }
        }
        Some(TunnelKind::Connect)
            if to_client.starts_with(b"HTTP/1.1 200 ") && from_client.starts_with(b"CONNECT ") =>
        {
            if let (Some(c), Some(sc)) = (request_end(from_client), response_end(to_client)) {
                wrong.extend(same_stream(
                    "CONNECT tunnel, client to upstream",
                    to_upstream,
                    &from_client[c..],
                    d.reset_seen,
                ));
                wrong.extend(same_stream(
                    "CONNECT tunnel, upstream to client",
                    &to_client[sc..],
                    from_upstream,
                    d.reset_seen,
                ));
            }
        }
        _ => {}
    }
    wrong
}

/// The check of `model-NAME`.
pub fn check(c: &ModelCase, env: &HopEnv) -> Checked {
    let Some(run) = c.run(env, &mut None)? else {
        return Ok("table refused");
    };
    let mut wrong = Vec::new();
    for (i, d) in run.conns.iter().enumerate() {
        for w in check_conn(&run, d) {
            wrong.push(format!("connection {i}: {w}"));
        }
    }
    if !wrong.is_empty() {
        return Err(wrong.join("\n"));
    }
    let tunnels = run.conns.iter().any(|d| {
        d.sent[0].starts_with(b"HTTP/1.1 101 ") || d.sent[0].starts_with(b"HTTP/1.1 200 Connection")
    });
    Ok(if tunnels { "tunnel opened" } else { "driven" })
}

/// A case as text: the table, the scripts and steps, then the events and actions of a run.
pub fn show(c: &ModelCase, env: &HopEnv) -> String {
    let mut out = format!("hop table:\n{}\n", c.table);
    for (i, s) in c.scripts.iter().enumerate() {
        let _ = writeln!(
            out,
            "connection {i}: port {}, peer {:?}\n  client sends {}\n  upstream sends {}",
            s.port,
            s.peer,
            show_bytes(&s.client),
            show_bytes(&s.upstream)
        );
    }
    let _ = writeln!(out, "steps (connection, step): {:?}", c.steps);
    let mut trace = Some(String::new());
    match c.run(env, &mut trace) {
        Ok(_) => {
            let text = trace.unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(200);
            if from > 0 {
                let _ = writeln!(out, "events and actions (the last 200 lines):");
            } else {
                let _ = writeln!(out, "events and actions:");
            }
            out.push_str(&lines[from..].join("\n"));
        }
        Err(e) => {
            let _ = write!(out, "(the run failed: {e})");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass_case(steps: Vec<Step>) -> ModelCase {
        ModelCase {
            table: "model = 'pass'".into(),
            scripts: vec![Script {
                port: 80,
                peer: "client",
                client: b"hello".to_vec(),
                upstream: b"world".to_vec(),
            }],
            steps: steps.into_iter().map(|s| (0, s)).collect(),
        }
    }

    #[test]
    fn values_are_given_only_for_keys_the_models_take() {
        for &model in gauntlet_proxies::MODEL_NAMES {
            let known = ModelInfo::get(model).unwrap().keys();
            for (key, _) in keys(model) {
                assert!(known.contains(key), "{model} takes no `{key}`: {known:?}");
            }
        }
    }

    #[test]
    fn the_driver_delivers_only_what_the_connection_state_allows() {
        let env = HopEnv::default();
        // Upstream bytes before the dial completes are not delivered; after it they are.
        let run = pass_case(vec![
            Step::Upstream(5),
            Step::Client(2),
            Step::Dialed,
            Step::Upstream(5),
        ])
        .run(&env, &mut None)
        .unwrap()
        .unwrap();
        assert_eq!(run.conns[0].delivered[0], b"he");
        assert_eq!(run.conns[0].delivered[1], b"world");
        assert_eq!(
            check(&pass_case(vec![Step::Dialed, Step::Client(9)]), &env),
            Ok("driven")
        );
    }

    #[test]
    fn a_model_that_drops_a_byte_is_caught() {
        let env = HopEnv::default();
        let c = pass_case(vec![Step::Dialed, Step::Client(5)]);
        let mut run = c.run(&env, &mut None).unwrap().unwrap();
        run.conns[0].sent[1].pop();
        let wrong = check_conn(&run, &run.conns[0]);
        assert!(
            wrong[0].starts_with("client to upstream: 4 bytes relayed for 5"),
            "{wrong:?}"
        );
    }

    #[test]
    fn a_connect_head_ended_by_lf_cr_lf_opens_a_tunnel_of_what_follows() {
        // Heads end where the models' parser says (here LF CR LF), not at the first CRLF CRLF.
        let c = ModelCase {
            table: "model = 'connect-proxy'".into(),
            scripts: vec![Script {
                port: 80,
                peer: "client",
                client: b"CONNECT server:443 HTTP/1.1\n\r\nt: x\r\n\r\n".to_vec(),
                upstream: Vec::new(),
            }],
            steps: vec![(0, Step::Client(100)), (0, Step::Dialed)],
        };
        assert_eq!(check(&c, &HopEnv::default()), Ok("tunnel opened"));
    }

    #[test]
    fn a_transcript_of_the_run_comes_with_a_failing_case() {
        let text = show(
            &pass_case(vec![Step::Dialed, Step::Fin(Side::Client)]),
            &HopEnv::default(),
        );
        assert!(text.contains("Fin { from: Client }"), "{text}");
        assert!(
            text.contains("Close { side: Upstream, how: Fin }"),
            "{text}"
        );
    }
}
