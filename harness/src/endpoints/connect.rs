//! A client's way to the server, shared by the reference client's workloads (the WebSocket
//! session in [`client`](crate::endpoints::client), the cache-poisoning demonstration in
//! [`smuggle`](crate::endpoints::smuggle)): what a run asks of the client ([`Plan`]), what it
//! reports ([`Report`]), and the transport (TCP, directly or through an explicit proxy's
//! CONNECT tunnel, then TLS for wss), with the phase it is in and the failures that end it.

use crate::endpoints::browser::Browser;
use crate::endpoints::killable::{Killable, Reset};
use crate::endpoints::wire::{Wire, WireBytes};
use crate::engine::{NetRef, Stream};
use crate::scenario::{Handshake, RequestShape, Scheme, Workload};
use crate::verdict::outcome::Outcome;
use crate::verdict::transcript::Transcript;
use gauntlet_proxies::http::{self, base64};
use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The name the client logs under.
const WHO: &str = "client";

/// The origin of the page a browser's requests come from: `http://host` for ws, `https://host`
/// for wss.
pub(crate) fn origin(plan: &Plan) -> String {
    let scheme = match plan.scheme {
        Scheme::Ws => "http",
        Scheme::Wss => "https",
    };
    format!("{scheme}://{}", plan.host)
}

/// What the client is to do in one run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// ws or wss.
    pub scheme: Scheme,
    /// The host name the client dials, sends as `Host` and checks the certificate against.
    pub host: String,
    /// Budget for TCP, TLS and upgrade together.
    pub handshake_timeout: Duration,
    /// The traffic.
    pub workload: Workload,
    /// Seeds the key and the payloads.
    pub seed: u64,
    /// Trusts the run's CA.
    pub tls: Arc<rustls::ClientConfig>,
    /// Ping keepalive interval, counted from the open.
    pub ping_interval: Option<Duration>,
    /// An explicit proxy to ask for a tunnel with CONNECT.
    pub proxy: Option<ProxyPlan>,
    /// Masks client frames (RFC 6455 §5.3). Only the `smuggle` workload can send them
    /// unmasked, for demonstration.
    pub mask: bool,
    /// Put before the request's path (`/ws`: `/ws/echo`); empty for none.
    pub path_prefix: String,
    /// The subprotocols offered in `Sec-WebSocket-Protocol`, in order; empty for none. The
    /// 101 must name the one the reference server picks from them
    /// ([`crate::endpoints::subprotocol::choose`]).
    pub subprotocols: Vec<String>,
    /// Counts the bytes every connection of the run carries (clones share the counts).
    pub wire: Wire,
    /// Whose request heads the client writes (and whether it keeps HTTP connections open).
    pub browser: Browser,
    /// How the WebSocket is opened: RFC 6455's upgrade, or Huang et al.'s CONNECT.
    pub handshake: Handshake,
    /// How the upgrade request departs from the usual one (`[client.request]`).
    pub request: RequestShape,
    /// What tells the first hop to stop (`stop-proxy-after`): the client notifies it, the hop
    /// waits for it.
    pub stop_proxy: Option<Arc<tokio::sync::Notify>>,
}

impl Plan {
    /// A plan for `host` on `scheme` with `workload` and `seed`, trusting `tls`, and otherwise
    /// the scenario format's defaults: a 5 s handshake, no keepalive, no proxy, masked frames,
    /// no path prefix.
    pub fn new(
        scheme: Scheme,
        host: impl Into<String>,
        workload: Workload,
        seed: u64,
        tls: Arc<rustls::ClientConfig>,
    ) -> Self {
        Self {
            scheme,
            host: host.into(),
            handshake_timeout: Duration::from_secs(5),
            workload,
            seed,
            tls,
            ping_interval: None,
            proxy: None,
            mask: true,
            path_prefix: String::new(),
            subprotocols: Vec::new(),
            wire: Wire::default(),
            browser: Browser::Minimal,
            handshake: Handshake::Upgrade,
            request: RequestShape::default(),
            stop_proxy: None,
        }
    }
}

/// The explicit proxy the client is configured with.
#[derive(Debug, Clone)]
pub struct ProxyPlan {
    /// Its host name.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// `user:password`, sent after a 407.
    pub credentials: Option<String>,
    /// The proxy is a real program (live engine): CONNECT names the server's real address,
    /// since the proxy cannot resolve the run's host names.
    pub real_target: bool,
}

/// The port hops listen on for clients that use them as an explicit proxy (Squid's 3128).
pub const PROXY_PORT: u16 = 3128;

/// The longest CONNECT answer head the client reads.
const MAX_PROXY_HEAD: usize = 8192;

/// What the client saw.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// How the run ended.
    pub outcome: Outcome,
    /// One line: status, close code, simulated time.
    pub detail: String,
    /// From the start of the TCP connect to the 101.
    pub handshake: Option<Duration>,
    /// The handshake, phase by phase, as far as it got.
    pub phases: Phases,
    /// Round trips (echo), one-way latencies (push) or the victim fetch's round trip
    /// (smuggle), in order.
    pub latencies: Vec<Duration>,
    /// Messages sent (smuggle: the smuggling frame).
    pub sent: u64,
    /// Messages received intact (smuggle: 1 when the victim fetch got the origin's script).
    pub received: u64,
    /// When the first message arrived intact, in simulated time since the run began.
    pub first_message: Option<Duration>,
    /// For a run of a strategy: its attempts and the transport it ended on; `None` for a
    /// run of a scheme.
    pub strategy: Option<Trail>,
    /// Bytes the run's client connections carried, each direction (filled in when the run
    /// ends).
    pub wire: WireBytes,
}

impl Report {
    /// A report of nothing yet: `delivered` until something fails.
    pub fn new() -> Self {
        Self {
            outcome: Outcome::Delivered,
            detail: String::new(),
            handshake: None,
            phases: Phases::default(),
            latencies: Vec::new(),
            sent: 0,
            received: 0,
            first_message: None,
            strategy: None,
            wire: WireBytes::default(),
        }
    }
}

impl Default for Report {
    fn default() -> Self {
        Self::new()
    }
}

/// How a strategy's run went ([`crate::endpoints::strategy`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trail {
    /// The transport the run ended on: `ws`, `wss`, `polling` or `websocket`.
    pub transport: &'static str,
    /// Every attempt, in the order each began.
    pub attempts: Vec<Attempt>,
    /// How many messages the workload meant to exchange: those not received are lost.
    pub messages: u64,
    /// How many times the client reconnected after a failure (`[client.reconnect]`).
    pub reconnects: u32,
}

/// One attempt of a strategy: a transport tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// `ws`, `wss`, `polling` or `websocket`.
    pub transport: &'static str,
    /// When it began, in simulated time since the run began.
    pub began: Duration,
    /// How it ended: an outcome's name; `upgraded` for a polling session that moved onto a
    /// WebSocket; `unfinished` for a probe still under way when its session ended.
    pub result: String,
    /// What was seen, in one line.
    pub detail: String,
}

/// How long each phase of a handshake took; a phase that did not happen or did not finish is
/// `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Phases {
    /// TCP connect (through an explicit proxy: until its answer to CONNECT).
    pub connect: Option<Duration>,
    /// TLS handshake (wss).
    pub tls: Option<Duration>,
    /// HTTP upgrade, request to 101.
    pub upgrade: Option<Duration>,
}

/// Where a handshake is, and when each phase began.
#[derive(Debug)]
pub(crate) struct Phase {
    name: Cell<&'static str>,
    began: RefCell<Vec<(&'static str, Duration)>>,
}

impl Phase {
    /// A handshake starting now with its TCP connect.
    pub(crate) fn new(now: Duration) -> Self {
        Self {
            name: Cell::new("tcp connect"),
            began: RefCell::new(vec![("tcp connect", now)]),
        }
    }

    /// The handshake enters phase `name` at `now`.
    pub(crate) fn set(&self, name: &'static str, now: Duration) {
        self.name.set(name);
        self.began.borrow_mut().push((name, now));
    }

    /// When phase `name` began, if it did.
    pub(crate) fn began(&self, name: &str) -> Option<Duration> {
        let began = self.began.borrow();
        began.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
    }

    /// The current phase.
    pub(crate) fn get(&self) -> &'static str {
        self.name.get()
    }

    /// Each phase's duration, given that the handshake completed at `done` (or `None`).
    pub(crate) fn phases(&self, done: Option<Duration>) -> Phases {
        let began = self.began.borrow();
        let first = |name: &str| began.iter().find(|(n, _)| *n == name).map(|(_, t)| *t);
        let start = began.first().map(|(_, t)| *t);
        let tls = first("tls handshake");
        let upgrade = first("upgrade");
        let span = |a: Option<Duration>, b: Option<Duration>| Some(b?.saturating_sub(a?));
        Phases {
            connect: span(start, tls.or(upgrade)),
            tls: span(tls, upgrade),
            upgrade: span(upgrade, done),
        }
    }
}

/// A failure, before it becomes a report.
/// Why a client's run ended before it was done: its outcome and what was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fail {
    pub(crate) outcome: Outcome,
    pub(crate) detail: String,
}

pub(crate) fn fail(outcome: Outcome, detail: impl Into<String>) -> Fail {
    Fail {
        outcome,
        detail: detail.into(),
    }
}

/// The echo of message `i`, sent at `sent_at`, did not come back within `timeout`: `stalled`.
pub(crate) fn no_echo(i: u32, timeout: Duration, sent_at: Duration) -> Fail {
    fail(
        Outcome::Stalled,
        format!(
            "no echo of #{i} within {} (sent at {})",
            ms(timeout),
            ms(sent_at)
        ),
    )
}

pub(crate) fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Any byte stream the client can speak WebSocket over.
pub(crate) trait AsyncIo: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> AsyncIo for T {}

/// A byte stream to the server as the plan reaches it: TCP, directly or through the explicit
/// proxy's tunnel, then TLS for wss.
pub(crate) async fn transport(
    net: &NetRef,
    plan: &Plan,
    t: &Transcript,
    phase: &Phase,
) -> Result<Box<dyn AsyncIo>, Fail> {
    transport_keeping(net, plan, t, phase, &mut None).await
}

/// [`transport`], its TCP connection (to the server or to the explicit proxy) resettable
/// from aside when the workload resets it (`client-reset`), with what resets it put in
/// `reset`.
pub(crate) async fn transport_keeping(
    net: &NetRef,
    plan: &Plan,
    t: &Transcript,
    phase: &Phase,
    reset: &mut Option<Reset>,
) -> Result<Box<dyn AsyncIo>, Fail> {
    let port = plan.scheme.port();
    let host = plan.host.as_str();
    let tcp = match &plan.proxy {
        None => tcp_connect(net, t, &plan.wire, host, port).await?,
        Some(proxy) => tunnel(net, t, &plan.wire, proxy, host, port, phase).await?,
    };
    let tcp = resettable(tcp, plan, reset);
    Ok(match plan.scheme {
        Scheme::Ws => Box::new(tcp),
        Scheme::Wss => {
            phase.set("tls handshake", net.now());
            let name = rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| {
                fail(
                    Outcome::TlsFailed,
                    format!("`{host}` is not a server name: {e}"),
                )
            })?;
            let tls = tokio_rustls::TlsConnector::from(plan.tls.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| {
                    fail(
                        Outcome::TlsFailed,
                        format!("tls handshake with {host} failed: {e}"),
                    )
                })?;
            t.log(net.now(), WHO, "tls established");
            Box::new(tls)
        }
    })
}

/// An I/O error in a few words.
pub(crate) fn describe_io(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionReset => "connection reset".into(),
        std::io::ErrorKind::UnexpectedEof => "connection closed".into(),
        _ => e.to_string(),
    }
}

/// A TCP connection to `host:port`, its bytes counted in `wire`.
async fn tcp_connect(
    net: &NetRef,
    t: &Transcript,
    wire: &Wire,
    host: &str,
    port: u16,
) -> Result<crate::engine::Stream, Fail> {
    t.log(net.now(), WHO, format!("connecting to {host}:{port}"));
    let tcp = net.connect(host, port).await.map_err(|e| {
        fail(
            Outcome::ConnectRefused,
            format!("tcp connect to {host}:{port} failed: {e}"),
        )
    })?;
    t.log(net.now(), WHO, "tcp connected");
    Ok(wire.count(tcp))
}

/// Asks the explicit proxy for a tunnel to `host:port` (RFC 6455 §4.1), retrying once with
/// credentials after a 407 if it has them. Any other non-2xx answer fails the connection.
/// The explicit proxy a plain-HTTP request (not a WebSocket, not https) goes to as itself,
/// its target in absolute form, as browsers send XHRs and fetches through a configured
/// proxy; `None` without one, or for https, which tunnels with CONNECT.
pub(crate) fn forwarding_proxy(plan: &Plan) -> Option<&ProxyPlan> {
    plan.proxy.as_ref().filter(|_| plan.scheme == Scheme::Ws)
}

/// How a request to the proxy names `host:port`: the real address behind it for a real
/// proxy, which cannot resolve the run's host names.
pub(crate) fn proxy_target(net: &NetRef, proxy: &ProxyPlan, host: &str, port: u16) -> String {
    match net.real_addr(host, port) {
        Some(addr) if proxy.real_target => addr.to_string(),
        _ if port == 80 => host.to_string(),
        _ => format!("{host}:{port}"),
    }
}

/// A TCP connection to the explicit proxy itself.
pub(crate) async fn to_proxy(
    net: &NetRef,
    plan: &Plan,
    t: &Transcript,
    proxy: &ProxyPlan,
    reset: &mut Option<Reset>,
) -> Result<crate::engine::Stream, Fail> {
    let tcp = tcp_connect(net, t, &plan.wire, &proxy.host, proxy.port).await?;
    Ok(resettable(tcp, plan, reset))
}

/// `tcp`, in a slot from which `reset` can reset it when the workload resets its connection
/// (`client-reset`).
fn resettable(tcp: Stream, plan: &Plan, reset: &mut Option<Reset>) -> Stream {
    if !plan.workload.client_reset {
        return tcp;
    }
    let killable = Killable::new(tcp, "the client reset the connection");
    *reset = Some(killable.resetter());
    Box::new(killable)
}

async fn tunnel(
    net: &NetRef,
    t: &Transcript,
    wire: &Wire,
    proxy: &ProxyPlan,
    host: &str,
    port: u16,
    phase: &Phase,
) -> Result<crate::engine::Stream, Fail> {
    let mut authorization: Option<String> = None;
    loop {
        phase.set("tcp connect", net.now());
        let mut tcp = tcp_connect(net, t, wire, &proxy.host, proxy.port).await?;
        phase.set("connect", net.now());
        let target = match net.real_addr(host, port) {
            Some(addr) if proxy.real_target => addr.to_string(),
            _ => format!("{host}:{port}"),
        };
        let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
        if let Some(a) = &authorization {
            request.push_str(&format!("Proxy-Authorization: Basic {a}\r\n"));
        }
        request.push_str("\r\n");
        t.log(
            net.now(),
            WHO,
            format!("CONNECT {target} via {}", proxy.host),
        );
        let refused = |detail: String| fail(Outcome::ConnectRefused, detail);
        tcp.write_all(request.as_bytes())
            .await
            .map_err(|e| refused(format!("CONNECT could not be sent: {e}")))?;
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        let parsed = loop {
            let n = tcp.read(&mut byte).await.map_err(|e| {
                refused(format!(
                    "the proxy reset the connection before answering CONNECT ({e}) at {}",
                    ms(net.now())
                ))
            })?;
            if n == 0 {
                return Err(refused(format!(
                    "the proxy closed the connection without answering CONNECT, at {}",
                    ms(net.now())
                )));
            }
            head.push(byte[0]);
            if !head.ends_with(b"\r\n\r\n") && head.len() <= MAX_PROXY_HEAD {
                continue;
            }
            match http::parse_response(&head, MAX_PROXY_HEAD) {
                http::Parsed::Partial => continue,
                http::Parsed::Invalid(reason) => {
                    return Err(refused(format!(
                        "the proxy's answer to CONNECT is not HTTP ({reason})"
                    )));
                }
                http::Parsed::Complete(h, _) => break h,
            }
        };
        let status = parsed.status().unwrap_or_default();
        let reason = match &parsed.start {
            http::StartLine::Response { reason, .. } => reason.clone(),
            http::StartLine::Request { .. } => String::new(),
        };
        t.log(net.now(), WHO, format!("proxy answered {status} {reason}"));
        if (200..300).contains(&status) {
            return Ok(tcp);
        }
        if status == 407 && authorization.is_none() {
            if let Some(c) = &proxy.credentials {
                authorization = Some(base64(c.as_bytes()));
                continue;
            }
        }
        return Err(refused(format!(
            "proxy answered {status} {reason} to CONNECT {target} at {}",
            ms(net.now())
        )));
    }
}

/// The first line of `bytes`, printable ASCII only, at most 40 characters.
pub(crate) fn printable(bytes: &[u8]) -> String {
    printable_up_to(bytes, 40)
}

/// The first line of `bytes`, printable ASCII only, at most `max` characters.
pub(crate) fn printable_up_to(bytes: &[u8], max: usize) -> String {
    bytes
        .iter()
        .take_while(|b| **b != b'\r' && **b != b'\n')
        .take(max)
        .map(|&b| {
            if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '.'
            }
        })
        .collect()
}
