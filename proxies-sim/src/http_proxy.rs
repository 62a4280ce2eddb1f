//! The HTTP/1.1 proxy engine shared by every model that reads HTTP: it parses requests from
//! the client and responses from upstream, asks a [`Policy`] what to do with each head, frames
//! bodies (RFC 9112 §6), and after a 101 either opens a tunnel (an upgrade-aware proxy) or
//! keeps reading HTTP (one that is not, and chokes on the first frame).
//!
//! A model is a [`Policy`]: it rewrites heads and routes requests. [`HttpProxy`] does the rest
//! and is the model's [`Connection`].
//!
//! What every model built on it shares, as real proxies do:
//!
//! - Heads are read in linear time ([`http::HeadReader`]), up to `max_head_bytes`; a longer
//!   request head is answered 431, a longer response head 502, and both sides are closed.
//! - Pipelined requests are read one at a time ([`PIPELINE_DEPTH`]): the client's next bytes
//!   wait, unread, for the answer to the last request, up to [`MAX_HELD_BYTES`]; beyond that the
//!   connection is closed, with a note.
//! - After the client's FIN, the upstream gets a FIN once every byte the client sent is
//!   forwarded, and the client gets one once the last response has been relayed (or at once,
//!   when nothing was asked): a half-closed client is never left open waiting for requests it
//!   cannot send.

use std::collections::VecDeque;

use crate::http::{
    self, ExchangeError, Framing, Head, Item, Kind, MessageError, Messages, StartLine,
};
use crate::model::{Connection, Cx, Event, Side};
use crate::pass::relay;

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// To the upstream: `backend` of the hop's upstream hosts, on `port`. A connection is
    /// bound to the backend its first request chose.
    Upstream {
        /// Which upstream host, from 0.
        backend: usize,
        /// The destination port.
        port: u16,
    },
    /// To the host the request named (a forward proxy's absolute-form target), on `port`:
    /// the hop's first upstream host when it has one (the driver's [`Action::DialNamed`]).
    ///
    /// [`Action::DialNamed`]: crate::model::Action::DialNamed
    Named {
        /// The host as named.
        host: String,
        /// The destination port.
        port: u16,
    },
    /// Answered by the proxy itself with these bytes (a complete response); the connection
    /// is then closed.
    Answer(Vec<u8>),
}

/// What a model decides about heads.
pub trait Policy: std::fmt::Debug {
    /// Rewrites a request head from the client in place and says where it goes. `port` is
    /// the port the connection was accepted on.
    fn request(&mut self, cx: &mut Cx, head: &mut Head, port: u16) -> Route;

    /// Rewrites a response head in place before it goes to the client. `request` is the
    /// request it answers, as forwarded.
    fn response(&mut self, cx: &mut Cx, head: &mut Head, request: &Head);

    /// Whether a 101 answering a request that asked to upgrade turns the connection into an
    /// opaque tunnel. A proxy that says no keeps reading HTTP after the 101.
    fn tunnels_upgrades(&self) -> bool;

    /// Whether, once tunnelling, what the client sent between its request head and the 101
    /// goes to the upstream (as it must: the bytes are the new protocol's). A proxy that
    /// relays from the connection rather than from what it already read says no.
    fn keeps_early_data(&self) -> bool {
        true
    }
}

/// The answer to bytes that are not HTTP where a head is expected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
pub enum OnGarbage {
    /// An HTML error page (400 to the client, 502 if the server sent the garbage), then FIN.
    #[default]
    #[serde(rename = "400")]
    ErrorPage,
    /// RST both ways.
    #[serde(rename = "reset")]
    Reset,
}

impl OnGarbage {
    /// The name scenario files use.
    pub fn as_str(self) -> &'static str {
        match self {
            OnGarbage::ErrorPage => "400",
            OnGarbage::Reset => "reset",
        }
    }
}

/// How many forwarded requests may await their responses at once: one. nginx and HAProxy read
/// a client's next pipelined request only once the previous one is answered, and so does Squid
/// by default (`pipeline_prefetch 0`: "Squid will try to receive and process up to 1+N
/// requests on the same connection concurrently"). Bytes the client sends meanwhile wait,
/// unread, up to [`MAX_HELD_BYTES`].
pub const PIPELINE_DEPTH: usize = 1;

/// The most client bytes held unread while a request awaits its response: Squid's
/// `client_request_buffer_max_size` (512 KB by default), "the maximum buffer size of a client
/// request". A real proxy stops reading the socket there; a model cannot, so a client that
/// sends more without reading the answers has its connection closed, with a note saying how
/// many bytes were discarded.
pub const MAX_HELD_BYTES: usize = 512 * 1024;

/// How the engine reads a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Ports read as HTTP; others are relayed opaquely. `None`: every port.
    pub http_ports: Option<Vec<u16>>,
    /// The answer to bytes that are not HTTP.
    pub on_garbage: OnGarbage,
    /// The longest head accepted, in bytes (usually [`http::MAX_HEAD_BYTES`]); a longer request
    /// head is answered 431, a longer response head 502, and the connection is closed.
    pub max_head_bytes: usize,
    /// How long the first request head may take to arrive (usually [`http::HEADER_TIMEOUT`]);
    /// then the client is answered 408 and the connection closed. `None`: no limit.
    pub header_timeout: Option<std::time::Duration>,
}

/// Which way a message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    /// Requests, client to upstream.
    Up,
    /// Responses, upstream to client.
    Down,
}

impl Dir {
    fn from(self) -> Side {
        match self {
            Dir::Up => Side::Client,
            Dir::Down => Side::Upstream,
        }
    }

    fn of(side: Side) -> Dir {
        match side {
            Side::Client => Dir::Up,
            Side::Upstream => Dir::Down,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Waiting for `Accepted`.
    New,
    /// A port it does not read: bytes pass unread.
    Opaque,
    /// Reading HTTP.
    Http { port: u16 },
    /// Upgraded: bytes pass unread both ways.
    Tunnel,
    /// It gave up on the connection; nothing more is forwarded.
    Closed,
}

/// A connection through an HTTP proxy whose decisions are `P`'s.
#[derive(Debug)]
pub struct HttpProxy<P> {
    policy: P,
    settings: Settings,
    mode: Mode,
    dialed: Option<usize>,
    /// Requests, from the client.
    up: Messages,
    /// Responses, from the upstream.
    down: Messages,
    /// Forwarded requests not yet answered, oldest first (at most [`PIPELINE_DEPTH`]).
    pending: VecDeque<Head>,
    /// Which ends have closed.
    ends: Ends,
    /// The header timer runs: no request head has come yet.
    awaiting_head: bool,
}

impl<P: Policy> HttpProxy<P> {
    /// A fresh connection.
    pub fn new(policy: P, settings: Settings) -> Self {
        let max_head = settings.max_head_bytes;
        Self {
            policy,
            settings,
            mode: Mode::New,
            dialed: None,
            up: Messages::new(Kind::Request, max_head),
            down: Messages::new(Kind::Response, max_head),
            pending: VecDeque::new(),
            ends: Ends::default(),
            awaiting_head: false,
        }
    }

    /// The policy, for models that keep state in it.
    pub fn policy(&self) -> &P {
        &self.policy
    }

    /// Starts a connection with a request head another model has already read (a forward
    /// proxy that read the first request to decide what to do with the connection), and the
    /// client's bytes after it: the same as receiving them, without reading the head again.
    pub fn accept_read(&mut self, cx: &mut Cx, port: u16, head: Head, rest: &[u8]) {
        self.on_event(cx, Event::Accepted { port });
        if !matches!(self.mode, Mode::Http { .. }) {
            let mut bytes = head.to_bytes();
            bytes.extend_from_slice(rest);
            return self.on_event(
                cx,
                Event::Data {
                    from: Side::Client,
                    bytes: &bytes,
                },
            );
        }
        if let Err(reason) = self.forward_request(cx, head) {
            return self.garbage(cx, Dir::Up, &reason);
        }
        self.on_event(
            cx,
            Event::Data {
                from: Side::Client,
                bytes: rest,
            },
        );
    }

    /// Whether a forwarded request still waits for its response.
    pub fn awaiting_response(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Whether the connection has become an upgraded tunnel.
    pub fn tunnelling(&self) -> bool {
        self.mode == Mode::Tunnel
    }

    /// Whether the proxy has closed the connection and forwards nothing more.
    pub fn closed(&self) -> bool {
        self.mode == Mode::Closed
    }

    /// Client bytes held unread, and requests awaiting answers (tests only).
    #[cfg(test)]
    pub(crate) fn held(&self) -> (usize, usize) {
        (self.up.buffered(), self.pending.len())
    }

    fn stream(&mut self, dir: Dir) -> &mut Messages {
        match dir {
            Dir::Up => &mut self.up,
            Dir::Down => &mut self.down,
        }
    }

    /// Reads as much of the direction's bytes as it can.
    fn pump(&mut self, cx: &mut Cx, dir: Dir) {
        let to = dir.from().other();
        loop {
            match self.mode {
                Mode::Closed => return,
                Mode::Tunnel => {
                    let bytes = self.stream(dir).take();
                    cx.send(to, bytes);
                    return;
                }
                _ => {}
            }
            if dir == Dir::Up && self.up.between() && self.pending.len() >= PIPELINE_DEPTH {
                // The next request waits, unread, for the answer to the last.
                return self.check_held(cx);
            }
            match self.stream(dir).read() {
                Ok(None) => return,
                Ok(Some(Item::Head { head, .. })) => {
                    let done = match dir {
                        Dir::Up => self.forward_request(cx, head),
                        Dir::Down => self.forward_response(cx, head),
                    };
                    if let Err(reason) = done {
                        return self.garbage(cx, dir, &reason);
                    }
                }
                Ok(Some(Item::Body(bytes))) => cx.send(to, bytes),
                Ok(Some(Item::End)) => {}
                Err(MessageError::HeadTooLong { held, .. }) => return self.too_long(cx, dir, held),
                Err(e) => return self.garbage(cx, dir, &e),
            }
        }
    }

    fn forward_request(&mut self, cx: &mut Cx, mut head: Head) -> Result<(), ExchangeError> {
        let Mode::Http { port } = self.mode else {
            self.up.body(Framing::None);
            return Ok(());
        };
        self.stop_header_timer(cx);
        let before = head.clone();
        let (backend, named) = match self.policy.request(cx, &mut head, port) {
            Route::Answer(response) => {
                cx.note(format!(
                    "{}: answered by the proxy: {}",
                    describe(&before),
                    http::first_line(&response)
                ));
                cx.send(Side::Client, response);
                self.close_both(cx);
                return Ok(());
            }
            Route::Upstream { backend, port } => ((backend, port), None),
            Route::Named { host, port } => ((0, port), Some(host)),
        };
        let framing = before.framing(None)?;
        cx.note(format!(
            "{}: forwarded{}",
            describe(&before),
            changes(&before, &head)
        ));
        let (backend, port) = backend;
        match self.dialed {
            None => {
                match named {
                    Some(host) => cx.dial_named(host, port),
                    None => cx.dial_backend(backend, port),
                }
                self.dialed = Some(backend);
            }
            Some(bound) if bound != backend => cx.note(format!(
                "the policy chose backend {} but the connection is bound to backend {}: kept",
                backend + 1,
                bound + 1
            )),
            Some(_) => {}
        }
        cx.send(Side::Upstream, head.to_bytes());
        self.up.body(framing);
        self.pending.push_back(head);
        Ok(())
    }

    fn forward_response(&mut self, cx: &mut Cx, mut head: Head) -> Result<(), ExchangeError> {
        let status = head.status().unwrap_or_default();
        let request =
            http::answer(&mut self.pending, status).ok_or(ExchangeError::Unanswered(status))?;
        let before = head.clone();
        self.policy.response(cx, &mut head, &request);
        cx.note(format!(
            "{}: forwarded{}",
            describe(&before),
            changes(&before, &head)
        ));
        let asked = request.has("upgrade") && request.connection_has("upgrade");
        if status == 101 {
            if asked && self.policy.tunnels_upgrades() {
                cx.note("101 answers an upgrade: tunnelling");
                cx.send(Side::Client, head.to_bytes());
                self.mode = Mode::Tunnel;
                let early = self.up.take();
                if self.policy.keeps_early_data() {
                    cx.send(Side::Upstream, early);
                } else if !early.is_empty() {
                    cx.note(format!(
                        "lost {} bytes the client sent before the 101: the tunnel relays from the connection, not from what was read",
                        early.len()
                    ));
                }
                self.ends.tunnel(cx);
                return Ok(());
            }
            cx.note("101 forwarded; not upgrade-aware: reading what follows as HTTP messages");
        }
        let framing = before.framing(request.method())?;
        cx.send(Side::Client, head.to_bytes());
        self.down.body(framing);
        Ok(())
    }

    fn close_both(&mut self, cx: &mut Cx) {
        self.ends.close_both(cx, self.dialed.is_some());
        self.give_up(cx);
    }

    /// Starts the wait for the first request head, if the settings set one.
    fn start_header_timer(&mut self, cx: &mut Cx) {
        if let Some(timeout) = self.settings.header_timeout {
            cx.set_timer(http::HEADER_TIMER, cx.now().saturating_add(timeout));
            self.awaiting_head = true;
        }
    }

    fn stop_header_timer(&mut self, cx: &mut Cx) {
        if std::mem::take(&mut self.awaiting_head) {
            cx.cancel_timer(http::HEADER_TIMER);
        }
    }

    /// The first request head did not arrive in time: 408, and the connection closes.
    fn header_timed_out(&mut self, cx: &mut Cx) {
        self.awaiting_head = false;
        let timeout = self.settings.header_timeout.unwrap_or_default();
        let (note, answer) = http::header_timed_out(timeout, self.up.buffered());
        cx.note(note);
        cx.send(Side::Client, answer);
        self.close_both(cx);
    }

    /// Forgets buffered bytes and forwards nothing more.
    fn give_up(&mut self, cx: &mut Cx) {
        self.stop_header_timer(cx);
        self.up.clear();
        self.down.clear();
        self.mode = Mode::Closed;
    }

    /// While a request awaits its answer, the client's next bytes wait unread; beyond
    /// [`MAX_HELD_BYTES`] the client is sending without reading the answers, and the
    /// connection is closed.
    fn check_held(&mut self, cx: &mut Cx) {
        let held = self.up.buffered();
        if held <= MAX_HELD_BYTES {
            return;
        }
        cx.note(format!(
            "the client sent {held} bytes while its request awaits an answer, more than the {MAX_HELD_BYTES} a proxy holds unread: discarded, closing"
        ));
        self.close_both(cx);
    }

    /// Answers a head longer than the settings allow and gives up on the connection
    /// ([`http::head_too_long`]).
    fn too_long(&mut self, cx: &mut Cx, dir: Dir, held: usize) {
        let kind = match dir {
            Dir::Up => Kind::Request,
            Dir::Down => Kind::Response,
        };
        let (note, answer) = http::head_too_long(kind, self.settings.max_head_bytes, held);
        cx.note(note);
        cx.send(Side::Client, answer);
        self.close_both(cx);
    }

    /// After the client's FIN: once every byte it sent is forwarded (or discarded as an
    /// incomplete message), the upstream gets a FIN; once the last response has been relayed,
    /// so does the client, and the connection is done (as nginx, HAProxy and Squid close a
    /// connection whose client has closed once its last answer is sent).
    fn settle(&mut self, cx: &mut Cx) {
        if !matches!(self.mode, Mode::Http { .. }) {
            return;
        }
        let held = self.up.between() && self.pending.len() >= PIPELINE_DEPTH;
        let answered = self.pending.is_empty() && self.down.idle();
        if self
            .ends
            .settle(cx, &mut self.up, held, answered, self.dialed.is_some())
        {
            self.give_up(cx);
        }
    }

    /// Answers bytes that are not HTTP and gives up on the connection.
    fn garbage(&mut self, cx: &mut Cx, dir: Dir, reason: &dyn std::fmt::Display) {
        let pending = self.stream(dir).buffered();
        let who = dir.from().as_str();
        match self.settings.on_garbage {
            OnGarbage::ErrorPage => {
                let (status, text) = match dir {
                    Dir::Up => (400, "Bad Request"),
                    Dir::Down => (502, "Bad Gateway"),
                };
                cx.note(format!(
                    "{who} sent {pending} bytes that are not HTTP ({reason}): answering {status} and closing"
                ));
                cx.send(
                    Side::Client,
                    http::error_response(status, text, "The proxy could not read the message."),
                );
                self.close_both(cx);
            }
            OnGarbage::Reset => {
                cx.note(format!(
                    "{who} sent {pending} bytes that are not HTTP ({reason}): resetting both sides"
                ));
                cx.reset(Side::Client);
                if self.dialed.is_some() {
                    cx.reset(Side::Upstream);
                }
                self.give_up(cx);
            }
        }
    }
}

/// Which ends of a proxied HTTP connection have closed, and what follows from the client's
/// FIN: shared by [`HttpProxy`] and `caching-proxy`, which read HTTP the same way.
#[derive(Debug, Default)]
pub(crate) struct Ends {
    /// The client sent FIN: it will send no more requests.
    pub(crate) client_fin: bool,
    /// The upstream was sent FIN (or would have been, had it been dialed).
    pub(crate) upstream_fin: bool,
    /// The upstream sent FIN (and the client was sent one then).
    pub(crate) upstream_eof: bool,
}

impl Ends {
    /// After the client's FIN: once every byte it sent is forwarded (or discarded as an
    /// incomplete message), the upstream gets a FIN; once the last response has been relayed,
    /// so does the client (as nginx, HAProxy and Squid close a connection whose client has
    /// closed once its last answer is sent). `up` holds the client's bytes not forwarded,
    /// `held` says they wait unread for an answer, `answered` that every request is answered
    /// and relayed, `dialed` that there is an upstream to FIN. True: the connection is done,
    /// and the caller gives up on it.
    pub(crate) fn settle(
        &mut self,
        cx: &mut Cx,
        up: &mut Messages,
        held: bool,
        answered: bool,
        dialed: bool,
    ) -> bool {
        if !self.client_fin {
            return false;
        }
        if !self.upstream_fin {
            if held && up.buffered() > 0 && !self.upstream_eof {
                return false;
            }
            let left = up.buffered();
            if left > 0 {
                cx.note(if self.upstream_eof {
                    format!("discarded {left} bytes from client not forwarded: the upstream closed")
                } else {
                    format!("client closed with {left} bytes of an incomplete message: discarded")
                });
                up.clear();
            }
            self.upstream_fin = true;
            if dialed {
                cx.fin(Side::Upstream);
            }
        }
        if self.upstream_eof {
            // The client was sent its FIN when the upstream's came.
            return true;
        }
        if answered {
            cx.note("client closed and every answer is relayed: closing");
            cx.fin(Side::Client);
        }
        answered
    }

    /// Closes both sides with FIN, the upstream only if it was dialed and has not had one.
    pub(crate) fn close_both(&self, cx: &mut Cx, dialed: bool) {
        cx.fin(Side::Client);
        if dialed && !self.upstream_fin {
            cx.fin(Side::Upstream);
        }
    }

    /// The connection became a tunnel: a FIN the client sent before goes to the upstream now.
    pub(crate) fn tunnel(&mut self, cx: &mut Cx) {
        if self.client_fin && !self.upstream_fin {
            self.upstream_fin = true;
            cx.fin(Side::Upstream);
        }
    }
}

/// `request GET /x HTTP/1.1` or `response 101 Switching Protocols`.
fn describe(head: &Head) -> String {
    match &head.start {
        StartLine::Request {
            method,
            target,
            minor,
        } => format!("request {method} {target} HTTP/1.{minor}"),
        StartLine::Response { status, reason, .. } => format!("response {status} {reason}"),
    }
}

/// What changed between two versions of a head, as a transcript suffix.
fn changes(before: &Head, after: &Head) -> String {
    let lower = |h: &Head| -> Vec<String> {
        h.fields
            .iter()
            .map(|(n, _)| n.to_ascii_lowercase())
            .collect()
    };
    let (b, a) = (lower(before), lower(after));
    let mut removed: Vec<String> = Vec::new();
    for name in &b {
        if !a.contains(name) && !removed.contains(name) {
            removed.push(name.clone());
        }
    }
    let mut added: Vec<String> = Vec::new();
    for name in &a {
        if !b.contains(name) && !added.contains(name) {
            added.push(name.clone());
        }
    }
    let mut out = String::new();
    if before.start != after.start {
        out.push_str(&format!(" as `{}`", http::first_line(&after.to_bytes())));
    }
    if !removed.is_empty() {
        out.push_str(&format!(" without {}", removed.join(", ")));
    }
    if !added.is_empty() {
        out.push_str(&format!(" adding {}", added.join(", ")));
    }
    let values = |h: &Head, name: &str| -> Vec<Vec<u8>> {
        h.fields
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(n, v)| [n.as_bytes(), b":", v].concat())
            .collect()
    };
    let mut rewritten: Vec<String> = Vec::new();
    for name in &a {
        if b.contains(name)
            && !rewritten.contains(name)
            && values(before, name) != values(after, name)
        {
            rewritten.push(name.clone());
        }
    }
    if !rewritten.is_empty() {
        out.push_str(&format!(" rewriting {}", rewritten.join(", ")));
    }
    out
}

impl<P: Policy> Connection for HttpProxy<P> {
    fn on_event(&mut self, cx: &mut Cx, event: Event<'_>) {
        match (self.mode, event) {
            (Mode::New, Event::Accepted { port }) => {
                let reads = self
                    .settings
                    .http_ports
                    .as_ref()
                    .is_none_or(|p| p.contains(&port));
                if reads {
                    self.mode = Mode::Http { port };
                    self.start_header_timer(cx);
                } else {
                    cx.note(format!("port {port} not read as HTTP: relaying opaquely"));
                    self.mode = Mode::Opaque;
                    relay(cx, Event::Accepted { port });
                }
            }
            (Mode::New, _) => {}
            (Mode::Opaque, event) => relay(cx, event),
            (Mode::Tunnel, Event::Timer { .. }) => {}
            (Mode::Tunnel, event) => relay(cx, event),
            (Mode::Closed, Event::Data { from, bytes }) => cx.note(format!(
                "discarded {} bytes from {} after giving up on the connection",
                bytes.len(),
                from.as_str()
            )),
            (Mode::Closed, _) => {}
            (Mode::Http { .. }, Event::Data { from, bytes }) => {
                let dir = Dir::of(from);
                self.stream(dir).push(bytes);
                self.pump(cx, dir);
                if dir == Dir::Down && self.up.buffered() > 0 {
                    // An answer may have made room for the next request.
                    self.pump(cx, Dir::Up);
                }
                self.settle(cx);
            }
            (Mode::Http { .. }, Event::Fin { from: Side::Client }) => {
                self.ends.client_fin = true;
                self.settle(cx);
            }
            (
                Mode::Http { .. },
                Event::Fin {
                    from: Side::Upstream,
                },
            ) => {
                let left = self.down.buffered();
                if left > 0 {
                    cx.note(format!(
                        "upstream closed with {left} bytes of an incomplete message: discarded"
                    ));
                    self.down.clear();
                }
                cx.fin(Side::Client);
                self.ends.upstream_eof = true;
                self.settle(cx);
            }
            (Mode::Http { .. }, Event::Reset { from }) => {
                let other = from.other();
                if other == Side::Client || self.dialed.is_some() {
                    cx.reset(other);
                }
            }
            (Mode::Http { .. }, Event::DialFailed { reason }) => {
                cx.note(format!("upstream dial failed ({reason}): answering 502"));
                cx.send(
                    Side::Client,
                    http::error_response(502, "Bad Gateway", "The upstream is unreachable."),
                );
                cx.fin(Side::Client);
                self.dialed = None;
                self.give_up(cx);
            }
            (
                Mode::Http { .. },
                Event::Timer {
                    id: http::HEADER_TIMER,
                },
            ) if self.awaiting_head => self.header_timed_out(cx),
            (Mode::Http { .. }, Event::Dialed | Event::Timer { .. } | Event::Accepted { .. }) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Action, CloseHow};
    use crate::testkit::{closes, notes, sent};
    use crate::transparent_proxy::{self, Behaviour};

    const GET: &[u8] = b"GET /x HTTP/1.1\r\nHost: server\r\n\r\n";

    fn answer(body: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    fn proxy() -> (HttpProxy<transparent_proxy::Rewrite>, Cx) {
        let mut p = transparent_proxy::connection(&transparent_proxy::Params {
            behaviour: Behaviour::Strip,
            on_garbage: OnGarbage::ErrorPage,
            intercept_ports: vec![80],
            max_head_bytes: http::MAX_HEAD_BYTES,
            header_timeout_ms: 60_000,
        });
        let mut cx = Cx::new(1);
        p.on_event(&mut cx, Event::Accepted { port: 80 });
        (p, cx)
    }

    fn data<P: Policy>(
        p: &mut HttpProxy<P>,
        cx: &mut Cx,
        from: Side,
        bytes: &[u8],
    ) -> Vec<crate::Action> {
        p.on_event(cx, Event::Data { from, bytes });
        cx.take_actions()
    }

    #[test]
    fn a_head_that_does_not_arrive_within_the_header_timeout_is_answered_408_and_closed() {
        let (mut p, mut cx) = proxy();
        let armed = cx.take_actions();
        assert!(
            armed.contains(&Action::SetTimer {
                id: http::HEADER_TIMER,
                at: http::HEADER_TIMEOUT
            }),
            "{armed:?}"
        );
        // Slowloris: part of a head, a byte at a time.
        for b in b"GET /x HTTP/1.1\r\nHost: ser" {
            let actions = data(&mut p, &mut cx, Side::Client, &[*b]);
            assert!(sent(&actions, Side::Upstream).is_empty(), "{actions:?}");
        }
        let actions = crate::testkit::header_timer_runs_out(&mut p, &mut cx);
        let answer = String::from_utf8(sent(&actions, Side::Client)).unwrap();
        assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
        assert_eq!(closes(&actions), vec![(Side::Client, CloseHow::Fin)]);
        assert!(
            notes(&actions)[0].contains("no complete request head within 60000 ms (26 bytes"),
            "{:?}",
            notes(&actions)
        );
        assert!(p.closed());
    }

    #[test]
    fn a_complete_head_stops_the_header_timer() {
        let (mut p, mut cx) = proxy();
        cx.take_actions();
        let actions = data(&mut p, &mut cx, Side::Client, GET);
        assert!(
            actions.contains(&Action::CancelTimer {
                id: http::HEADER_TIMER
            }),
            "{actions:?}"
        );
    }

    #[test]
    fn pipelined_requests_go_upstream_one_at_a_time_as_each_is_answered() {
        let (mut p, mut cx) = proxy();
        let three = [GET, GET, GET].concat();
        let actions = data(&mut p, &mut cx, Side::Client, &three);
        assert_eq!(
            sent(&actions, Side::Upstream),
            GET,
            "the second waits for the first answer"
        );
        assert_eq!(p.held(), (2 * GET.len(), 1));
        for left in [1, 0] {
            let actions = data(&mut p, &mut cx, Side::Upstream, &answer("ok"));
            assert_eq!(sent(&actions, Side::Client), answer("ok"));
            assert_eq!(sent(&actions, Side::Upstream), GET);
            assert_eq!(p.held(), (left * GET.len(), 1));
        }
        let actions = data(&mut p, &mut cx, Side::Upstream, &answer("ok"));
        assert_eq!(sent(&actions, Side::Client), answer("ok"));
        assert_eq!(p.held(), (0, 0));
    }

    #[test]
    fn a_client_that_pipelines_without_reading_is_bounded_then_closed() {
        let (mut p, mut cx) = proxy();
        let segment: Vec<u8> = GET.iter().copied().cycle().take(64 * 1024).collect();
        let mut actions = Vec::new();
        let mut fed = 0;
        while fed < 16 << 20 && !p.closed() {
            actions.extend(data(&mut p, &mut cx, Side::Client, &segment));
            fed += segment.len();
            let (held, pending) = p.held();
            assert!(held <= MAX_HELD_BYTES, "{held} bytes held after {fed} sent");
            assert!(
                pending <= PIPELINE_DEPTH,
                "{pending} requests pending after {fed} sent"
            );
        }
        assert!(p.closed(), "still open after 16 MiB");
        assert_eq!(sent(&actions, Side::Upstream), GET, "one request forwarded");
        assert!(
            notes(&actions).iter().any(|n| n.contains(&format!(
                "while its request awaits an answer, more than the {MAX_HELD_BYTES} a proxy holds unread: discarded, closing"
            ))),
            "{:?}",
            notes(&actions)
        );
        assert_eq!(
            closes(&actions),
            vec![
                (Side::Client, CloseHow::Fin),
                (Side::Upstream, CloseHow::Fin)
            ]
        );
        let later = data(&mut p, &mut cx, Side::Client, &segment);
        assert!(
            notes(&later)[0].starts_with("discarded 65536 bytes from client"),
            "{later:?}"
        );
    }
}
