//! The client side of Engine.IO v4, as engine.io-client 6 (the client under socket.io-client
//! 4) speaks it, on an engine's streams, so that it runs on every engine.
//!
//! - HTTP long-polling (`polling.rs`): the handshake GET answered with the open packet, then a
//!   GET held by the server until it has packets (answered, then made again at once), and a
//!   POST of the client's packets whenever it has some and none is under way. Each request
//!   goes on a connection of its own (`http.rs`), as engine.io-client under Node makes them.
//! - WebSocket (`websocket.rs`): a session opened on a WebSocket (`transport=websocket`, the
//!   open packet its first message), or a polling session's upgrade: the probe (`2probe`
//!   answered `3probe` on a WebSocket with the session's `sid`), polling paused (no new GET or
//!   POST; the server answers the held GET with a noop), then `5` and every packet on the
//!   WebSocket. A probe that fails leaves the session on polling.
//! - The heartbeat (`session.rs`): every ping is answered with a pong, and a session that has
//!   heard no ping for `pingInterval + pingTimeout` (from the open packet) is deemed dead, as
//!   engine.io-client's `_resetPingTimeout` deems it.
//!
//! The application's messages go out with `Session::send` and come in from `Session::next`;
//! `Session::close` ends the session (a close packet by POST, or the
//! WebSocket's Close). Everything the session does goes to the transcript; its randomness (the
//! polling requests' cache-buster `t`, the WebSocket keys) comes from the run's seed.

pub(crate) mod http;
mod polling;
mod session;
mod websocket;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

pub(crate) use session::{ProbeEnd, Probed, Session};

use gauntlet_proxies::rng::Rng;

use crate::endpoints::connect::Plan;
use crate::engine::NetRef;
use crate::verdict::transcript::Transcript;

/// The name the client logs under.
const WHO: &str = "client";

/// What the client asks of the server, as engine.io-client's options say it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The path of every request (engine.io-client's `path`: `/engine.io/`, after the plan's
    /// path prefix).
    pub path: String,
    /// The application's query, put before Engine.IO's own keys as engine.io-client puts
    /// `query` (`app=push&count=5…`); empty for none.
    pub query: String,
    /// After opening by polling, probe a WebSocket and upgrade if it answers (engine.io-client's
    /// `upgrade`, true by default).
    pub upgrade: bool,
    /// Give up a probe that has not been answered within this. engine.io-client sets no such
    /// deadline (`None`): an unanswered probe waits while polling goes on.
    pub probe_timeout: Option<Duration>,
}

impl Options {
    /// engine.io-client's defaults on `path`: upgrade, no probe deadline, no query.
    pub fn new(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            query: String::new(),
            upgrade: true,
            probe_timeout: None,
        }
    }
}

/// Where a session runs: the network, the plan's way to the server, the transcript, the
/// options; clones share the count of requests made.
#[derive(Clone)]
pub(crate) struct Cx {
    net: NetRef,
    plan: Rc<Plan>,
    t: Transcript,
    options: Rc<Options>,
    /// Requests made so far: each one's cache-buster and WebSocket key comes from its number.
    made: Rc<Cell<u64>>,
    /// Connections kept alive after an exchange, for the next ones (a browser's).
    idle: Rc<http::Idle>,
}

impl Cx {
    /// A client reaching the server as `plan` says, asking what `options` say.
    pub(crate) fn new(net: NetRef, plan: Rc<Plan>, t: Transcript, options: Options) -> Self {
        Self {
            net,
            plan,
            t,
            options: Rc::new(options),
            made: Rc::new(Cell::new(0)),
            idle: Rc::default(),
        }
    }

    fn log(&self, what: impl Into<String>) {
        self.t.log(self.net.now(), WHO, what);
    }

    /// Where its requests go.
    fn way(&self) -> http::Way<'_> {
        (&self.net, &self.plan, &self.t)
    }

    /// The next request's number, and a generator seeded with it.
    fn next_rng(&self) -> Rng {
        let n = self.made.get();
        self.made.set(n + 1);
        Rng::derive(self.plan.seed, 0x656e_6769_6f00 + n)
    }

    /// The target of a request on `transport` (`polling` or `websocket`), for session `sid` if
    /// any: the path, the application's query, `EIO=4`, the transport, the `sid`, and for
    /// polling the cache-buster `t` engine.io-client adds to every polling request (8
    /// characters of base 36, from the seed).
    fn target(&self, transport: &str, sid: Option<&str>) -> String {
        let mut query = Vec::new();
        if !self.options.query.is_empty() {
            query.push(self.options.query.clone());
        }
        query.push("EIO=4".to_string());
        query.push(format!("transport={transport}"));
        if let Some(sid) = sid {
            query.push(format!("sid={sid}"));
        }
        if transport == "polling" {
            let mut rng = self.next_rng();
            let t: String = (0..8)
                .map(|_| {
                    char::from(b"0123456789abcdefghijklmnopqrstuvwxyz"[rng.below(36) as usize])
                })
                .collect();
            query.push(format!("t={t}"));
        }
        format!("{}?{}", self.options.path, query.join("&"))
    }
}

#[cfg(test)]
mod tests;
