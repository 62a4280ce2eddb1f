//! `transparent-proxy`: an intercepting HTTP proxy that is not upgrade-aware.
//!
//! It intercepts the ports in `intercept-ports` (port 80 by default, as transparent proxies
//! do) and relays anything else opaquely, which is why wss:// passes it. On an intercepted
//! port it reads HTTP/1.1 messages in both directions and rewrites each head according to its
//! `behaviour`, after the seed articles:
//!
//! - `strip`: a proxy that follows RFC 9110 §7.6.1: it removes `Connection`, every field
//!   `Connection` names, and the other hop-by-hop fields, `Upgrade` among them, so the server
//!   sees a plain GET and answers it (426 from the reference server).
//! - `forward-then-choke`: forwards heads unchanged, `Upgrade` and the 101 included, but still
//!   reads what follows as HTTP: the client's first frame is parsed as the next request.
//! - `http10-upstream`: talks HTTP/1.0 upstream with `Connection: close` and without the
//!   hop-by-hop fields, as nginx does by default before 1.29.7 (`proxy_http_version 1.0`, no
//!   `proxy_set_header Upgrade`); answers the client in HTTP/1.1.
//!
//! Whatever the behaviour, bytes that are not HTTP where a head is expected (a WebSocket frame
//! after a 101, say) get the `on-garbage` answer: `"400"` (an HTML error page, 400 toward the
//! client or 502 when the server sent them, then FIN both ways) or `"reset"` (RST both ways).

use std::collections::VecDeque;

use serde::Deserialize;

use crate::http::{self, Framing, Head, Parsed};
use crate::model::{Connection, Cx, Event, Side};
use crate::pass::relay;

/// Parameters of `transparent-proxy`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Params {
    /// What the proxy does to each head. Required.
    pub behaviour: Behaviour,
    /// The answer to bytes that are not HTTP where a head is expected. Default `"400"`.
    #[serde(default)]
    pub on_garbage: OnGarbage,
    /// Ports whose traffic is read as HTTP; other ports are relayed opaquely. Default `[80]`
    /// (interception proxies redirect port 80; TLS on 443 is opaque to them).
    #[serde(default = "default_intercept_ports")]
    pub intercept_ports: Vec<u16>,
    /// The longest head accepted, in bytes; a longer one is garbage. Default 8192 (nginx's
    /// `large_client_header_buffers` of 8 KiB).
    #[serde(default = "default_max_head_bytes")]
    pub max_head_bytes: usize,
}

fn default_intercept_ports() -> Vec<u16> {
    vec![80]
}

fn default_max_head_bytes() -> usize {
    8192
}

/// What `transparent-proxy` does to heads.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Behaviour {
    /// Remove hop-by-hop fields (RFC 9110 §7.6.1), `Upgrade` and `Connection` among them.
    Strip,
    /// Forward heads unchanged, then read the first frame as the next request.
    ForwardThenChoke,
    /// Talk HTTP/1.0 upstream without hop-by-hop fields, like nginx's default.
    Http10Upstream,
}

impl Behaviour {
    /// The name scenario files use.
    pub fn as_str(self) -> &'static str {
        match self {
            Behaviour::Strip => "strip",
            Behaviour::ForwardThenChoke => "forward-then-choke",
            Behaviour::Http10Upstream => "http10-upstream",
        }
    }
}

/// The answer to bytes that are not HTTP.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
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
}

/// Where a direction is within its current message.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Head,
    Body(Framing),
}

#[derive(Debug)]
struct Stream {
    buf: Vec<u8>,
    phase: Phase,
}

impl Stream {
    fn new() -> Self {
        Self {
            buf: Vec::new(),
            phase: Phase::Head,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Waiting for `Accepted`.
    New,
    /// A port it does not intercept: bytes pass unread.
    Opaque,
    /// Reading HTTP.
    Http { port: u16 },
    /// It gave up on the connection (garbage answered); nothing more is forwarded.
    Closed,
}

/// A connection through `transparent-proxy`.
#[derive(Debug)]
pub struct TransparentProxy {
    params: Params,
    mode: Mode,
    dialed: bool,
    up: Stream,
    down: Stream,
    /// Methods of forwarded requests not yet answered, oldest first.
    methods: VecDeque<String>,
}

impl TransparentProxy {
    /// A fresh connection with these parameters.
    pub fn new(params: Params) -> Self {
        Self {
            params,
            mode: Mode::New,
            dialed: false,
            up: Stream::new(),
            down: Stream::new(),
            methods: VecDeque::new(),
        }
    }

    fn stream(&mut self, dir: Dir) -> &mut Stream {
        match dir {
            Dir::Up => &mut self.up,
            Dir::Down => &mut self.down,
        }
    }

    /// Consumes as much of the direction's buffer as it can.
    fn pump(&mut self, cx: &mut Cx, dir: Dir) {
        let to = dir.from().other();
        loop {
            if self.mode == Mode::Closed {
                return;
            }
            let phase = self.stream(dir).phase.clone();
            match phase {
                Phase::Head => {
                    let max = self.params.max_head_bytes;
                    let buf = &self.stream(dir).buf;
                    if buf.is_empty() {
                        return;
                    }
                    let parsed = match dir {
                        Dir::Up => http::parse_request(buf, max),
                        Dir::Down => http::parse_response(buf, max),
                    };
                    match parsed {
                        Parsed::Partial => return,
                        Parsed::Invalid(reason) => return self.garbage(cx, dir, &reason),
                        Parsed::Complete(head, len) => {
                            self.stream(dir).buf.drain(..len);
                            if let Err(reason) = self.forward_head(cx, dir, head) {
                                return self.garbage(cx, dir, &reason);
                            }
                        }
                    }
                }
                Phase::Body(Framing::None) => self.stream(dir).phase = Phase::Head,
                Phase::Body(Framing::UntilClose) => {
                    let bytes = std::mem::take(&mut self.stream(dir).buf);
                    cx.send(to, bytes);
                    return;
                }
                Phase::Body(Framing::Length(left)) => {
                    let stream = self.stream(dir);
                    let take = (left.min(stream.buf.len() as u64)) as usize;
                    let bytes: Vec<u8> = stream.buf.drain(..take).collect();
                    let left = left - take as u64;
                    stream.phase = if left == 0 {
                        Phase::Head
                    } else {
                        Phase::Body(Framing::Length(left))
                    };
                    cx.send(to, bytes);
                    if left > 0 {
                        return;
                    }
                }
                Phase::Body(Framing::Chunked(mut scanner)) => {
                    let stream = self.stream(dir);
                    match scanner.scan(&stream.buf) {
                        Ok((used, done)) => {
                            let bytes: Vec<u8> = stream.buf.drain(..used).collect();
                            stream.phase = if done {
                                Phase::Head
                            } else {
                                Phase::Body(Framing::Chunked(scanner))
                            };
                            cx.send(to, bytes);
                            if !done {
                                return;
                            }
                        }
                        Err(reason) => return self.garbage(cx, dir, &reason),
                    }
                }
            }
        }
    }

    /// Rewrites and forwards one head, and sets the body phase that follows it.
    fn forward_head(&mut self, cx: &mut Cx, dir: Dir, mut head: Head) -> Result<(), String> {
        let behaviour = self.params.behaviour;
        // A relay that forwards bodies unchanged keeps their transfer coding.
        let keep: &[&str] = &["transfer-encoding"];
        let removed = match (behaviour, dir) {
            (Behaviour::ForwardThenChoke, _) => Vec::new(),
            (Behaviour::Strip, _) => head.strip_hop_by_hop(keep),
            (Behaviour::Http10Upstream, Dir::Up) => {
                let removed = head.strip_hop_by_hop(&[]);
                head.set_minor(0);
                head.push("Connection", "close");
                removed
            }
            (Behaviour::Http10Upstream, Dir::Down) => {
                let removed = head.strip_hop_by_hop(keep);
                head.set_minor(1);
                removed
            }
        };
        let line = match &head.start {
            http::StartLine::Request {
                method,
                target,
                minor,
            } => format!("request {method} {target} HTTP/1.{minor}"),
            http::StartLine::Response { status, reason, .. } => {
                format!("response {status} {reason}")
            }
        };
        if removed.is_empty() {
            cx.note(format!("{line}: forwarded"));
        } else {
            cx.note(format!("{line}: forwarded without {}", removed.join(", ")));
        }
        let framing = match dir {
            Dir::Up => {
                let framing = head.framing(None)?;
                self.methods
                    .push_back(head.method().unwrap_or_default().to_string());
                if !self.dialed {
                    if let Mode::Http { port } = self.mode {
                        cx.dial(port);
                        self.dialed = true;
                    }
                }
                framing
            }
            Dir::Down => {
                let status = head.status().unwrap_or_default();
                let interim = (100..200).contains(&status) && status != 101;
                let method = if interim {
                    self.methods.front().cloned()
                } else {
                    self.methods.pop_front()
                };
                if status == 101 {
                    cx.note(
                        "101 forwarded; not upgrade-aware: reading what follows as HTTP messages",
                    );
                }
                head.framing(method.as_deref())?
            }
        };
        cx.send(dir.from().other(), head.to_bytes());
        self.stream(dir).phase = Phase::Body(framing);
        Ok(())
    }

    /// Answers bytes that are not HTTP and gives up on the connection.
    fn garbage(&mut self, cx: &mut Cx, dir: Dir, reason: &str) {
        let pending = self.stream(dir).buf.len();
        let who = dir.from().as_str();
        match self.params.on_garbage {
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
                cx.fin(Side::Client);
                if self.dialed {
                    cx.fin(Side::Upstream);
                }
            }
            OnGarbage::Reset => {
                cx.note(format!(
                    "{who} sent {pending} bytes that are not HTTP ({reason}): resetting both sides"
                ));
                cx.reset(Side::Client);
                if self.dialed {
                    cx.reset(Side::Upstream);
                }
            }
        }
        self.up.buf.clear();
        self.down.buf.clear();
        self.mode = Mode::Closed;
    }
}

impl Connection for TransparentProxy {
    fn on_event(&mut self, cx: &mut Cx, event: Event<'_>) {
        match (self.mode, event) {
            (Mode::New, Event::Accepted { port }) => {
                if self.params.intercept_ports.contains(&port) {
                    self.mode = Mode::Http { port };
                } else {
                    cx.note(format!("port {port} not intercepted: relaying opaquely"));
                    self.mode = Mode::Opaque;
                    relay(cx, Event::Accepted { port });
                }
            }
            (Mode::Opaque, event) => relay(cx, event),
            (Mode::Closed, Event::Data { from, bytes }) => cx.note(format!(
                "discarded {} bytes from {} after giving up on the connection",
                bytes.len(),
                from.as_str()
            )),
            (Mode::Closed, _) => {}
            (Mode::Http { .. }, Event::Data { from, bytes }) => {
                let dir = match from {
                    Side::Client => Dir::Up,
                    Side::Upstream => Dir::Down,
                };
                self.stream(dir).buf.extend_from_slice(bytes);
                self.pump(cx, dir);
            }
            (Mode::Http { .. }, Event::Fin { from }) => {
                let dir = match from {
                    Side::Client => Dir::Up,
                    Side::Upstream => Dir::Down,
                };
                let left = self.stream(dir).buf.len();
                if left > 0 {
                    cx.note(format!(
                        "{} closed with {left} bytes of an incomplete message: discarded",
                        from.as_str()
                    ));
                    self.stream(dir).buf.clear();
                }
                let other = from.other();
                if other == Side::Client || self.dialed {
                    cx.fin(other);
                }
            }
            (Mode::Http { .. }, Event::Reset { from }) => {
                let other = from.other();
                if other == Side::Client || self.dialed {
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
                self.mode = Mode::Closed;
            }
            (Mode::Http { .. }, Event::Dialed | Event::Timer { .. } | Event::Accepted { .. }) => {}
            (Mode::New, _) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Action, CloseHow};

    const UPGRADE: &[u8] = b"GET /echo HTTP/1.1\r\nHost: server\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    const SWITCH: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    /// A masked text frame "hi" as a client sends it.
    const FRAME: &[u8] = &[0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2];

    fn proxy(behaviour: Behaviour, on_garbage: OnGarbage) -> TransparentProxy {
        TransparentProxy::new(Params {
            behaviour,
            on_garbage,
            intercept_ports: vec![80],
            max_head_bytes: 8192,
        })
    }

    fn feed(p: &mut TransparentProxy, cx: &mut Cx, from: Side, bytes: &[u8]) {
        p.on_event(cx, Event::Data { from, bytes });
    }

    fn sent(actions: &[Action], to: Side) -> Vec<u8> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send { to: t, bytes } if *t == to => Some(bytes.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    fn closes(actions: &[Action]) -> Vec<(Side, CloseHow)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Close { side, how } => Some((*side, *how)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn strip_removes_upgrade_and_connection_from_the_request() {
        let mut cx = Cx::new(1);
        let mut p = proxy(Behaviour::Strip, OnGarbage::ErrorPage);
        p.on_event(&mut cx, Event::Accepted { port: 80 });
        feed(&mut p, &mut cx, Side::Client, UPGRADE);
        let actions = cx.take_actions();
        assert!(actions.contains(&Action::Dial {
            backend: 0,
            port: 80
        }));
        let up = String::from_utf8(sent(&actions, Side::Upstream)).unwrap();
        assert!(up.starts_with("GET /echo HTTP/1.1\r\n"));
        assert!(!up.to_ascii_lowercase().contains("upgrade"), "{up}");
        assert!(up.contains("Sec-WebSocket-Key"));
    }

    #[test]
    fn strip_relays_a_length_delimited_response_whole() {
        let mut cx = Cx::new(1);
        let mut p = proxy(Behaviour::Strip, OnGarbage::ErrorPage);
        p.on_event(&mut cx, Event::Accepted { port: 80 });
        feed(&mut p, &mut cx, Side::Client, UPGRADE);
        cx.take_actions();
        let response = b"HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\nConnection: upgrade\r\nContent-Length: 5\r\n\r\nhello";
        for chunk in response.chunks(7) {
            feed(&mut p, &mut cx, Side::Upstream, chunk);
        }
        let down = String::from_utf8(sent(&cx.take_actions(), Side::Client)).unwrap();
        assert_eq!(
            down,
            "HTTP/1.1 426 Upgrade Required\r\nContent-Length: 5\r\n\r\nhello"
        );
    }

    #[test]
    fn choke_forwards_the_upgrade_then_answers_the_first_frame_with_400() {
        let mut cx = Cx::new(1);
        let mut p = proxy(Behaviour::ForwardThenChoke, OnGarbage::ErrorPage);
        p.on_event(&mut cx, Event::Accepted { port: 80 });
        feed(&mut p, &mut cx, Side::Client, UPGRADE);
        feed(&mut p, &mut cx, Side::Upstream, SWITCH);
        let actions = cx.take_actions();
        assert_eq!(sent(&actions, Side::Upstream), UPGRADE);
        assert_eq!(sent(&actions, Side::Client), SWITCH);
        feed(&mut p, &mut cx, Side::Client, FRAME);
        let actions = cx.take_actions();
        assert!(sent(&actions, Side::Client).starts_with(b"HTTP/1.1 400 Bad Request\r\n"));
        assert!(
            sent(&actions, Side::Upstream).is_empty(),
            "the frame must not reach the server"
        );
        assert_eq!(
            closes(&actions),
            vec![
                (Side::Client, CloseHow::Fin),
                (Side::Upstream, CloseHow::Fin)
            ]
        );
        feed(&mut p, &mut cx, Side::Client, FRAME);
        assert!(
            matches!(&cx.take_actions()[..], [Action::Note(n)] if n.contains("discarded 8 bytes"))
        );
    }

    #[test]
    fn choke_resets_both_sides_when_told_to() {
        let mut cx = Cx::new(1);
        let mut p = proxy(Behaviour::ForwardThenChoke, OnGarbage::Reset);
        p.on_event(&mut cx, Event::Accepted { port: 80 });
        feed(&mut p, &mut cx, Side::Client, UPGRADE);
        feed(&mut p, &mut cx, Side::Upstream, SWITCH);
        cx.take_actions();
        feed(&mut p, &mut cx, Side::Client, FRAME);
        let actions = cx.take_actions();
        assert!(sent(&actions, Side::Client).is_empty());
        assert_eq!(
            closes(&actions),
            vec![
                (Side::Client, CloseHow::Reset),
                (Side::Upstream, CloseHow::Reset)
            ]
        );
    }

    #[test]
    fn http10_upstream_downgrades_and_closes() {
        let mut cx = Cx::new(1);
        let mut p = proxy(Behaviour::Http10Upstream, OnGarbage::ErrorPage);
        p.on_event(&mut cx, Event::Accepted { port: 80 });
        feed(&mut p, &mut cx, Side::Client, UPGRADE);
        let up = String::from_utf8(sent(&cx.take_actions(), Side::Upstream)).unwrap();
        assert!(up.starts_with("GET /echo HTTP/1.0\r\n"), "{up}");
        assert!(up.ends_with("Connection: close\r\n\r\n"), "{up}");
        assert!(!up.contains("Upgrade:"), "{up}");
        feed(
            &mut p,
            &mut cx,
            Side::Upstream,
            b"HTTP/1.0 426 Upgrade Required\r\n\r\nbody",
        );
        p.on_event(
            &mut cx,
            Event::Fin {
                from: Side::Upstream,
            },
        );
        let actions = cx.take_actions();
        assert_eq!(
            String::from_utf8(sent(&actions, Side::Client)).unwrap(),
            "HTTP/1.1 426 Upgrade Required\r\n\r\nbody"
        );
        assert_eq!(closes(&actions), vec![(Side::Client, CloseHow::Fin)]);
    }

    #[test]
    fn ports_not_intercepted_are_relayed_opaquely() {
        let mut cx = Cx::new(1);
        let mut p = proxy(Behaviour::Strip, OnGarbage::ErrorPage);
        p.on_event(&mut cx, Event::Accepted { port: 443 });
        p.on_event(
            &mut cx,
            Event::Data {
                from: Side::Client,
                bytes: &[0x16, 3, 1],
            },
        );
        let actions = cx.take_actions();
        assert!(actions.contains(&Action::Dial {
            backend: 0,
            port: 443
        }));
        assert_eq!(sent(&actions, Side::Upstream), vec![0x16, 3, 1]);
    }

    #[test]
    fn a_request_split_anywhere_is_forwarded_the_same() {
        let whole = {
            let mut cx = Cx::new(1);
            let mut p = proxy(Behaviour::Strip, OnGarbage::ErrorPage);
            p.on_event(&mut cx, Event::Accepted { port: 80 });
            feed(&mut p, &mut cx, Side::Client, UPGRADE);
            sent(&cx.take_actions(), Side::Upstream)
        };
        for split in 1..UPGRADE.len() {
            let mut cx = Cx::new(1);
            let mut p = proxy(Behaviour::Strip, OnGarbage::ErrorPage);
            p.on_event(&mut cx, Event::Accepted { port: 80 });
            feed(&mut p, &mut cx, Side::Client, &UPGRADE[..split]);
            feed(&mut p, &mut cx, Side::Client, &UPGRADE[split..]);
            assert_eq!(
                sent(&cx.take_actions(), Side::Upstream),
                whole,
                "split at {split}"
            );
        }
    }
}
