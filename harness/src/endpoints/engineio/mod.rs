//! Engine.IO v4, the transport layer under Socket.IO 3 and 4, as the reference server speaks
//! it on `/engine.io/` and `/socket.io/` (Socket.IO's path for the same layer).
//!
//! A session opens with a GET (`?EIO=4&transport=polling`, answered with the open packet) or a
//! WebSocket (`?EIO=4&transport=websocket`, the open packet as its first message). Over HTTP
//! long-polling the client's GETs are held until the server has packets for it (at the latest
//! its next ping) and its POSTs carry packets, answered `ok`; a WebSocket with `sid` upgrades a
//! polling session (`2probe`, `3probe`, `5`; a held GET is answered with a noop). The server
//! pings every [`Options::ping_interval`] and closes a session whose pong has not come within
//! [`Options::ping_timeout`]. The application on top echoes every message, text or binary, as
//! `/echo` does; with `app=push` in the handshake's query it pushes `count` messages of `size`
//! bytes every `interval` ms instead, as `/push` does. A request the server refuses gets
//! engine.io's answer: 400 (403 for Forbidden) and `{"code":N,"message":"..."}`, or, for a
//! WebSocket handshake, 400 and the message alone.
//!
//! Sessions live in an [`EngineIo`], one per server: every connection of the server (each
//! polling request may come on a new one) and every worker thread of `gauntlet serve` shares
//! it (it is `Send + Sync`: a mutex over an ordered map of sessions, each with a
//! `tokio::sync::Notify` for whoever waits on it). A session's timers run on the worker that
//! opened it, on that worker's [`Net`](crate::engine::Net) clock; the others only queue
//! packets and wake it.
//!
//! [`client`] is the other side: an Engine.IO client (polling, the WebSocket, the upgrade,
//! the heartbeat), as engine.io-client speaks it.
//!
//! Its files: `packet.rs` the codec (the client uses it too); `session.rs` a session's
//! state and what each event does to it; `request.rs` reading a request's query and checking
//! it as engine.io does; `polling.rs` the GETs and POSTs; `websocket.rs` a WebSocket session
//! and the upgrade; `tasks.rs` the heartbeat and the push.

pub mod client;
pub mod packet;
mod polling;
mod request;
mod session;
mod tasks;
mod websocket;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use gauntlet_proxies::rng::{Rng, fnv1a};

use crate::endpoints::census::Census;
use crate::endpoints::streaming::Streams;
use crate::engine::NetRef;
use crate::verdict::transcript::Transcript;
pub(crate) use polling::answer as polling;
pub(crate) use request::websocket as websocket_plan;
use session::Session;
pub(crate) use websocket::{config as websocket_config, run as run_websocket};

/// The paths under which the server speaks Engine.IO: engine.io's default, and Socket.IO's.
/// A request whose path starts with one of them is an Engine.IO request, as engine.io's
/// `attach` matches them.
pub const PATHS: [&str; 2] = ["/engine.io/", "/socket.io/"];

/// Whether a request for `path` is an Engine.IO request.
pub fn handles(path: &str) -> bool {
    PATHS.iter().any(|p| path.starts_with(p))
}

/// The Engine.IO server's settings. The defaults are engine.io's (`ServerOptions` in its
/// `lib/server.ts`), apart from the two bounds engine.io does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// How long after the open, or after the last pong, the server sends a ping
    /// (`pingInterval`, engine.io's default 25,000 ms). A held GET is answered by then.
    pub ping_interval: Duration,
    /// How long the server waits for the pong before it closes the session (`pingTimeout`,
    /// engine.io's default 20,000 ms).
    pub ping_timeout: Duration,
    /// The most bytes a POST's payload or a WebSocket message may hold, advertised as
    /// `maxPayload` (`maxHttpBufferSize`, engine.io's default 1,000,000). A longer POST is
    /// answered 413; a longer WebSocket message closes it with 1009, as `ws` does.
    pub max_payload: usize,
    /// How long a WebSocket has to complete an upgrade (`upgradeTimeout`, engine.io's default
    /// 10,000 ms); it is closed then, and the session goes on polling.
    pub upgrade_timeout: Duration,
    /// The most sessions open at once; a handshake beyond them is refused as engine.io
    /// refuses one its `allowRequest` rejects (403, code 4 Forbidden). engine.io sets no
    /// limit; the default, 768, is `gauntlet serve`'s connection limit (Debian's nginx
    /// `worker_connections`), so sessions cost no more than connections may.
    pub max_sessions: usize,
    /// The most bytes of packets a session keeps for a client that does not read them (each
    /// counted with its bookkeeping); beyond them the session is closed. engine.io's write
    /// buffer has no limit; the default, 16 MiB, is the largest WebSocket message the
    /// reference server takes (`ws_config`).
    pub max_buffered: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            max_payload: 1_000_000,
            upgrade_timeout: Duration::from_millis(10_000),
            max_sessions: 768,
            max_buffered: 16 * 1024 * 1024,
        }
    }
}

/// One server's Engine.IO sessions, shared by its connections and its worker threads (clones
/// share them). Session ids come from a counter and a key, so a simulated run gives the same
/// ids for the same seed; they are predictable, as befits a test server.
#[derive(Debug, Clone)]
pub struct EngineIo(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    options: Options,
    /// Mixed into every session id (`gauntlet serve` uses its process id, so that a client
    /// holding an id from an earlier run of the server gets "Session ID unknown").
    key: u64,
    /// Session ids made so far.
    made: AtomicU64,
    sessions: Mutex<BTreeMap<String, Arc<Session>>>,
    /// The server's HTTP streams, whose ids are made as the sessions' are.
    streams: Streams,
    /// The server's watched WebSocket connections ([`crate::endpoints::census`]).
    census: Census,
}

impl EngineIo {
    /// A server's sessions with `options`, their ids from key 0.
    pub fn new(options: Options) -> Self {
        Self::with_key(options, 0)
    }

    /// A server's sessions with `options`, their ids mixed with `key`.
    pub fn with_key(options: Options, key: u64) -> Self {
        Self(Arc::new(Shared {
            options,
            key,
            made: AtomicU64::new(0),
            sessions: Mutex::new(BTreeMap::new()),
            streams: Streams::default(),
            census: Census::default(),
        }))
    }

    /// The settings.
    pub fn options(&self) -> &Options {
        &self.0.options
    }

    /// The server's HTTP streams (`/stream`), which its connections and workers share as
    /// they share the sessions.
    pub fn streams(&self) -> &Streams {
        &self.0.streams
    }

    /// The server's watched WebSocket connections (`watch=ID`), which its connections and
    /// workers share as they share the sessions.
    pub fn census(&self) -> &Census {
        &self.0.census
    }

    /// Id number `n` of those made on `host` for `what` (0 for sessions; streams have their
    /// own): 20 characters of URL-safe base64 from 15 bytes, as engine.io's `base64id` makes
    /// them, from the key, so a simulated run gives the same ids for the same seed.
    pub fn id(&self, host: &str, what: u64, n: u64) -> String {
        let mut bytes = [0u8; 15];
        let key = self.0.key ^ fnv1a(host.as_bytes()) ^ what.rotate_left(32);
        Rng::derive(key, n).fill(&mut bytes);
        data_encoding::BASE64URL_NOPAD.encode(&bytes)
    }

    /// How many sessions are open.
    pub fn open_sessions(&self) -> usize {
        self.table().len()
    }

    fn table(&self) -> MutexGuard<'_, BTreeMap<String, Arc<Session>>> {
        self.0
            .sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The open session `sid`.
    fn session(&self, sid: &str) -> Option<Arc<Session>> {
        self.table().get(sid).cloned()
    }

    /// Whether another session may open now.
    fn has_room(&self) -> bool {
        self.open_sessions() < self.0.options.max_sessions
    }

    /// Opens a session on `host` with `app`, if there is room: 20 characters of URL-safe
    /// base64 from 15 bytes, as engine.io's `base64id` makes them.
    fn open(
        &self,
        host: &str,
        transport: session::Transport,
        app: session::App,
    ) -> Option<Arc<Session>> {
        let mut table = self.table();
        if table.len() >= self.0.options.max_sessions {
            return None;
        }
        loop {
            let n = self.0.made.fetch_add(1, Ordering::Relaxed);
            let sid = self.id(host, 0, n);
            if let std::collections::btree_map::Entry::Vacant(place) = table.entry(sid) {
                let sid = place.key().clone();
                let session = Arc::new(Session::new(sid, transport, app));
                place.insert(session.clone());
                return Some(session);
            }
        }
    }

    /// Forgets session `sid`.
    fn remove(&self, sid: &str) {
        self.table().remove(sid);
    }
}

/// Where a piece of the Engine.IO server runs: the worker's network and transcript, and the
/// server's sessions.
#[derive(Clone)]
pub(crate) struct Cx {
    pub(crate) net: NetRef,
    pub(crate) transcript: Transcript,
    pub(crate) engine: EngineIo,
}

impl Cx {
    fn log(&self, what: impl Into<String>) {
        self.transcript.log(self.net.now(), self.net.host(), what);
    }

    fn options(&self) -> &Options {
        self.engine.options()
    }
}

#[cfg(test)]
pub(crate) mod tests;
