//! The reference client's settings (`[client]`, `[client.workload]`): the schemes (or the
//! strategies, `strategy.rs`) it runs, the route it takes, its workload, and the close codes a
//! scenario may ask for.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use super::Strategy;
use crate::endpoints::{answer, body, deflate, fields};

/// A WebSocket URL scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// `ws://`, plain TCP, port 80.
    Ws,
    /// `wss://`, TLS, port 443.
    Wss,
}

impl Scheme {
    /// `ws` or `wss`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Ws => "ws",
            Scheme::Wss => "wss",
        }
    }

    /// The default port.
    pub fn port(self) -> u16 {
        match self {
            Scheme::Ws => 80,
            Scheme::Wss => 443,
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the client's connection reaches the first hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Route {
    /// The client dials the server's name; the network delivers the connection to the first
    /// hop (an interception proxy). The client cannot tell.
    #[default]
    Transparent,
    /// The client dials the first hop by its own name (a reverse proxy or balancer in front
    /// of the server), or the server when the path is empty.
    Direct,
    /// The client is configured to use the first hop as its proxy: it connects to the hop's
    /// port 3128 and asks for a tunnel with `CONNECT server:port` (RFC 6455 §4.1), for ws and
    /// wss alike; a non-2xx answer fails the connection (`connect-refused`).
    Explicit,
}

/// What the client does once connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkloadKind {
    /// The client sends messages; the server echoes each; round trips are measured.
    #[default]
    Echo,
    /// The server sends messages at the interval; one-way latencies are measured.
    Push,
    /// The cache-poisoning demonstration (Huang et al. 2011): one text frame whose payload is
    /// an HTTP request for `http://victim/script.js`, sent to the attacker's endpoint, then a
    /// victim's fetch of that URL over the same route. See [`crate::endpoints::smuggle`].
    Smuggle,
}

/// A pause in the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Idle {
    /// After this many messages have been exchanged (0: before the first).
    pub after_message: u32,
    /// How long nothing is sent, in milliseconds.
    pub ms: u64,
}

/// The client's traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// Echo or push.
    pub kind: WorkloadKind,
    /// How many messages.
    pub messages: u32,
    /// The first message this connection carries: 0, unless a session cut short resumes on
    /// a new connection (`[client.reconnect]`), which carries the rest, from this one. A push
    /// asks the server to start there (`from=N`).
    pub from: u32,
    /// Time between messages.
    pub interval: Duration,
    /// Bytes per message.
    pub payload_bytes: usize,
    /// How long to wait for each expected message before calling the run stalled.
    pub reply_timeout: Duration,
    /// How long to wait for the first expected message, if not `reply_timeout`: shorter, for
    /// a strategy that takes a first message that does not come as a sign of an uncooperative
    /// intermediary (`detect-then-wss`'s `detect-timeout-ms`).
    pub first_reply_timeout: Option<Duration>,
    /// Pauses, in order of `after_message`.
    pub idle: Vec<Idle>,
    /// Echo: binary messages of seeded bytes that are not UTF-8, rather than text.
    pub binary: bool,
    /// Echo: the client sends each message fragmented, in frames of at most this many payload
    /// bytes (at least two frames per message).
    pub fragment_bytes: Option<usize>,
    /// The server sends each message (echo or push) fragmented, in frames of at most this
    /// many payload bytes (at least two frames per message).
    pub server_fragment_bytes: Option<usize>,
    /// The code the client closes with at the end; the server's Close reply must carry it.
    /// 1000 unless the scenario says otherwise.
    pub close_code: u16,
    /// The server closes first, with this code, right after the last message; the client
    /// must see exactly this code.
    pub server_close_code: Option<u16>,
    /// The server resets the connection (no Close) shortly after the last message
    /// (`server-reset`); the client must see its connection end.
    pub server_reset: bool,
    /// The client half-closes (TCP FIN; TLS close_notify first for wss) right after sending
    /// its Close (`half-close`), and still expects the server's Close back.
    pub half_close: bool,
    /// The server half-closes right after the Close it sends first (`server-half-close`,
    /// with `server-close-code`), still reading the client's reply; the client must get the
    /// Close.
    pub server_half_close: bool,
    /// The client resets its connection (no Close; no close_notify for wss) after the last
    /// message (`client-reset`), then asks the server in a second session whether its side
    /// ended ([`crate::endpoints::census`]).
    pub client_reset: bool,
    /// Once this many messages are echoed, the first hop is told to stop
    /// (`stop-proxy-after`): SIGTERM to a real program, a model closes its listeners and its
    /// open connections drain. The session goes on; the proxy drains it or cuts it, and the
    /// detail says which.
    pub stop_proxy_after: Option<u32>,
    /// A push's client reads nothing for this long after the 101 (`read-pause-ms`): a slow
    /// reader, whose stalled reads must hold the server back through the proxy
    /// (backpressure) and then get every push, in order.
    pub read_pause: Option<Duration>,
    /// An echo's client writes each message's frame one byte at a time, this far apart
    /// (`byte-interval-ms`): a slow writer.
    pub byte_interval: Option<Duration>,
    /// The reason the client's Close carries (`close-reason`; `done` by default); the
    /// server's reply must carry it back.
    pub close_reason: String,
    /// Each fragmented message goes out with a Ping between its first and second frames
    /// (`ping-between-fragments`, RFC 6455 §5.4), whose Pong must come before the echo.
    pub ping_between_fragments: bool,
}

impl Workload {
    /// The idle periods after message `after`, in milliseconds, in order.
    pub fn idle_after(&self, after: u32) -> Vec<u64> {
        (self.idle.iter())
            .filter(|p| p.after_message == after)
            .map(|p| p.ms)
            .collect()
    }

    /// How long to wait for expected message `i`.
    pub fn reply_timeout_for(&self, i: u32) -> Duration {
        match self.first_reply_timeout {
            Some(first) if i == 0 => first,
            _ => self.reply_timeout,
        }
    }

    /// The messages this connection carries: from [`Workload::from`] to the last.
    pub fn range(&self) -> std::ops::Range<u32> {
        self.from.min(self.messages)..self.messages
    }

    /// `&from=N` for a push's query when this connection starts past the first message.
    pub fn from_query(&self) -> String {
        if self.from > 0 {
            format!("&from={}", self.from)
        } else {
            String::new()
        }
    }
}

impl WorkloadKind {
    /// The name scenario files use.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Echo => "echo",
            WorkloadKind::Push => "push",
            WorkloadKind::Smuggle => "smuggle",
        }
    }
}

impl Workload {
    /// A workload of `kind` with the documented defaults: 5 messages of 32 bytes, 100 ms
    /// apart, replies within 5 s, text, unfragmented, closed by the client with 1000.
    pub fn new(kind: WorkloadKind) -> Self {
        Self {
            kind,
            messages: 5,
            from: 0,
            interval: Duration::from_millis(100),
            payload_bytes: 32,
            reply_timeout: Duration::from_secs(5),
            first_reply_timeout: None,
            idle: Vec::new(),
            binary: false,
            fragment_bytes: None,
            server_fragment_bytes: None,
            close_code: NORMAL_CLOSE,
            server_close_code: None,
            server_reset: false,
            half_close: false,
            server_half_close: false,
            client_reset: false,
            stop_proxy_after: None,
            read_pause: None,
            byte_interval: None,
            close_reason: DEFAULT_CLOSE_REASON.to_string(),
            ping_between_fragments: false,
        }
    }
}

/// The close code of a normal closure (RFC 6455 §7.4.1).
pub const NORMAL_CLOSE: u16 = 1000;

/// Whether `code` may be sent in a Close frame: 1000-1003 and 1007-1013 (RFC 6455 §7.4.1 and
/// the IANA registry, as far as the reference peers accept them), 3000-4999 (§7.4.2:
/// registered and private codes). 1004-1006 and 1015 are reserved and never sent; 1014 and
/// 1016-2999 are not accepted by the reference server (tungstenite answers them with 1002).
pub fn close_code_valid(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1013 | 3000..=4999)
}

/// The reference client's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// The schemes to run, each a separate run. In a scenario read from a file that lists
    /// `strategies`, empty; in each of its [`cases`](super::Scenario::cases), the scheme of the
    /// case's strategy.
    pub schemes: Vec<Scheme>,
    /// The strategies to run, each a separate run (`strategies`), in the file's order; empty
    /// when the file lists `schemes`.
    pub strategies: Vec<Strategy>,
    /// How the connection reaches the first hop.
    pub route: Route,
    /// Budget for TCP connect, TLS and upgrade together.
    pub handshake_timeout: Duration,
    /// The traffic.
    pub workload: Workload,
    /// `user:password` for an explicit proxy that answers 407.
    pub proxy_credentials: Option<String>,
    /// Sends a Ping this often, counted from the open (as Python `websockets` does); an
    /// unanswered Ping is a stall. `None`: no keepalive.
    pub ping_interval: Option<Duration>,
    /// Masks client frames, as RFC 6455 §5.3 requires. `false` only with the `smuggle`
    /// workload: a deliberate violation, for demonstration.
    pub mask: bool,
    /// Put before the request's path (`/ws` asks for `/ws/echo`), for a reverse proxy that
    /// maps a prefix to the server, as the seed's `ProxyPass /ws/ ws://…/` does. Empty: none.
    pub path_prefix: String,
    /// How many sessions the client opens at once (1: one), each with its own seed, every
    /// one open before any starts its workload; the run is delivered only if each is.
    pub sessions: u32,
    /// The subprotocols the client offers in `Sec-WebSocket-Protocol` (RFC 6455 §4.1), in
    /// order; empty: none. The reference server picks the last one offered, and the client
    /// requires the 101 to name it.
    pub subprotocols: Vec<String>,
    /// Whose request heads the client writes (`[client] browser`).
    pub browser: Browser,
    /// How the client opens its WebSocket (`[client] handshake`).
    pub handshake: Handshake,
    /// How the upgrade request is written (`[client.request]`).
    pub request: RequestShape,
}

/// The reason the client's Close carries unless `close-reason` says otherwise.
pub const DEFAULT_CLOSE_REASON: &str = "done";

/// How the upgrade request departs from the usual one (`[client.request]`): the field values
/// and forms RFC 9110 and RFC 9112 allow and proxies get wrong.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestShape {
    /// The `Upgrade` field's value (`WebSocket`: tokens are case-insensitive, RFC 9110
    /// §7.8); `None`: `websocket`.
    pub upgrade: Option<String>,
    /// The `Connection` field's value (`keep-alive, Upgrade`, as Firefox sends it); `None`:
    /// `Upgrade`.
    pub connection: Option<String>,
    /// The request target in absolute form, `http://host/path` (RFC 9112 §3.2.2: a server
    /// must accept it). Through an explicit proxy (`route = "explicit"`), the request then
    /// goes to the proxy itself instead of a CONNECT tunnel: a forward proxy's `GET http://`
    /// with `Upgrade`.
    pub absolute: bool,
    /// An HTTP/1.0 request, whose `Upgrade` a recipient must ignore (RFC 9110 §7.8).
    pub http10: bool,
    /// Fields sent with the request, by name as written, in name order (replacing one the
    /// head has, such as `Origin`), each named with its value in the query for the reference
    /// server to check ([`crate::endpoints::fields`]).
    pub fields: BTreeMap<String, String>,
    /// Fields the server puts in its 101 (`[client.request.reply-fields]`), asked for in the
    /// query; the client must find each as the server sent it
    /// ([`crate::endpoints::answer`]).
    pub reply_fields: BTreeMap<String, String>,
    /// The server refuses the upgrade with this status (`refuse`), a `Retry-After`, a JSON
    /// type and a 1 KiB body; the client must get all of it back.
    pub refuse: Option<u16>,
    /// The first message's frame goes out in the same write as the request head
    /// (`first-message-with-request`), before the 101: what a client that does not wait
    /// (RFC 6455 §4.1 says it must) sends, and a proxy must still deliver.
    pub first_message_with_request: bool,
    /// The server writes its first push in the same write as the 101
    /// (`first-push-with-101`).
    pub push_with_101: bool,
    /// A body of this many bytes goes with the request (`body-bytes`), framed by
    /// `Content-Length` and named in the query for the server to check
    /// ([`crate::endpoints::body`]).
    pub body: Option<usize>,
    /// The request offers permessage-deflate (`permessage-deflate`), asking the reference
    /// server to accept it; the 101 must accept it and every message goes compressed both
    /// ways ([`crate::endpoints::deflate`]).
    pub deflate: bool,
}

impl RequestShape {
    /// `head`, a WebSocket upgrade request written by [`crate::endpoints::browser`], as this
    /// shape has it: its request line's target (`http://host` before it when absolute) and
    /// version, its `Upgrade` and `Connection` values.
    pub fn apply(&self, head: &str, host: &str) -> String {
        let mut lines: Vec<String> = head.split("\r\n").map(str::to_string).collect();
        if let Some(first) = lines.first_mut() {
            let mut parts: Vec<String> = first.splitn(3, ' ').map(str::to_string).collect();
            if parts.len() == 3 {
                let asked = (self.fields.iter())
                    .map(|(name, value)| fields::param(name, value))
                    .chain(answer::query(
                        &self.reply_fields,
                        self.refuse,
                        self.push_with_101,
                    ))
                    .chain(self.body.map(body::param))
                    .chain(self.deflate.then(|| format!("{}=1", deflate::PARAM)));
                for param in asked {
                    let joint = if parts[1].contains('?') { '&' } else { '?' };
                    parts[1] = format!("{}{joint}{param}", parts[1]);
                }
                if self.absolute {
                    parts[1] = format!("http://{host}{}", parts[1]);
                }
                if self.http10 {
                    parts[2] = "HTTP/1.0".into();
                }
                *first = parts.join(" ");
            }
        }
        for line in &mut lines {
            let Some((name, _)) = line.split_once(": ") else {
                continue;
            };
            let value = match name.to_ascii_lowercase().as_str() {
                "upgrade" => self.upgrade.as_deref(),
                "connection" => self.connection.as_deref(),
                "sec-websocket-extensions" if self.deflate => Some(deflate::OFFER),
                _ => None,
            };
            let field = self
                .fields
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str());
            if let Some(v) = value.or(field) {
                *line = format!("{name}: {v}");
            }
        }
        // The fields the head does not have go before its empty line.
        let end = lines
            .iter()
            .position(String::is_empty)
            .unwrap_or(lines.len());
        let has = |name: &str| {
            lines[..end].iter().any(|l| {
                l.split_once(':')
                    .is_some_and(|(n, _)| n.eq_ignore_ascii_case(name))
            })
        };
        let added: Vec<String> = self
            .fields
            .iter()
            .filter(|(n, _)| !has(n))
            .map(|(n, v)| format!("{n}: {v}"))
            .chain(self.body.map(|n| format!("Content-Length: {n}")))
            .chain(
                (self.deflate && !has("sec-websocket-extensions"))
                    .then(|| format!("Sec-WebSocket-Extensions: {}", deflate::OFFER)),
            )
            .collect();
        lines.splice(end..end, added);
        lines.join("\r\n")
    }

    /// Whether the request is the usual one.
    pub fn is_usual(&self) -> bool {
        *self == RequestShape::default()
    }
}

/// How the client opens its WebSocket (`[client] handshake`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Handshake {
    /// RFC 6455's: a `GET` with `Upgrade: websocket`, answered 101.
    #[default]
    Upgrade,
    /// The CONNECT-based handshake Huang, Chen, Barth, Rescorla and Jackson measured
    /// ("Talking to Yourself for Fun and Profit", W2SP 2011) among the proposals for
    /// RFC 6455: `CONNECT websocket.invalid:443` sent to the server itself, answered 200
    /// with `Sec-WebSocket-Accept`, then frames. A proxy that carries out CONNECT cannot
    /// resolve a name under `.invalid` (RFC 6761 §6.4) and fails it instead of relaying bytes
    /// it does not understand. The path (`/echo`, `/push?…`) goes in `Sec-WebSocket-Path`.
    Connect,
}

/// The authority a [`Handshake::Connect`] names, as Huang et al.'s experiment did.
pub const CONNECT_AUTHORITY: &str = "websocket.invalid:443";

/// The field a [`Handshake::Connect`] names its path in: the reference server's own.
pub const CONNECT_PATH_FIELD: &str = "Sec-WebSocket-Path";

/// Whose request heads the client writes (`[client] browser`); the heads themselves are in
/// [`crate::endpoints::browser`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Browser {
    /// The reference client's: the fields the protocol needs and nothing else, a new
    /// connection for every polling request.
    #[default]
    Minimal,
    /// Chromium 156 on Linux: its header set, field by field, and persistent connections.
    Chromium,
}
