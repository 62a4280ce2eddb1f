//! The model contract: events a connection receives, actions it answers with, and the context
//! that carries time, randomness and the action list.

use std::time::Duration;

use crate::rng::Rng;

/// One side of a proxied connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    /// The connection the hop accepted (toward the client).
    Client,
    /// The connection the hop dialed (toward the next hop or the server).
    Upstream,
}

impl Side {
    /// The other side.
    pub fn other(self) -> Side {
        match self {
            Side::Client => Side::Upstream,
            Side::Upstream => Side::Client,
        }
    }

    /// 0 for the client, 1 for the upstream: an index into per-side arrays.
    pub fn index(self) -> usize {
        match self {
            Side::Client => 0,
            Side::Upstream => 1,
        }
    }

    /// `client` or `upstream`, for transcripts.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Upstream => "upstream",
        }
    }
}

/// Something that happened to a connection, delivered by the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    /// The hop accepted a connection on `port`. Always the first event.
    Accepted {
        /// The local port the client connected to (80 for ws, 443 for wss by default).
        port: u16,
    },
    /// The upstream connection asked for with [`Cx::dial`] is established.
    Dialed,
    /// The upstream connection could not be established.
    DialFailed {
        /// What the network said, for the transcript.
        reason: &'a str,
    },
    /// Bytes arrived from a side.
    Data {
        /// Where they came from.
        from: Side,
        /// The bytes, in order; a segment boundary carries no meaning.
        bytes: &'a [u8],
    },
    /// The side half-closed: it will send nothing more, but may still receive.
    Fin {
        /// Which side.
        from: Side,
    },
    /// The side reset the connection: gone in both directions.
    Reset {
        /// Which side.
        from: Side,
    },
    /// A timer set with [`Cx::set_timer`] fired.
    Timer {
        /// The id it was set with.
        id: u64,
    },
}

/// How a side is closed. Parameters spell it `fin` or `reset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CloseHow {
    /// Half-close our sending direction (TCP FIN), after everything already sent.
    Fin,
    /// Abort (TCP RST): the peer sees a reset; unsent bytes are discarded.
    Reset,
}

/// What a model asks the driver to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write bytes to a side.
    Send {
        /// Where to.
        to: Side,
        /// What.
        bytes: Vec<u8>,
    },
    /// Open the upstream connection, to backend `backend` of the next hop (or server) on
    /// `port`. Hops with one upstream have only backend 0.
    Dial {
        /// Which upstream host, counted from 0.
        backend: usize,
        /// The destination port.
        port: u16,
    },
    /// Open the upstream side toward `host:port`, the destination the client named (a
    /// CONNECT's authority). A hop with a next hop (every hop of a scenario's path) dials its
    /// first backend on `port`, as [`Action::Dial`] does: the path is the way to the
    /// destination. A hop with no backend (a forward proxy run alone, `gauntlet proxy`
    /// without `--upstream`) dials `host` itself.
    DialNamed {
        /// The destination host as the client wrote it.
        host: String,
        /// The destination port.
        port: u16,
    },
    /// Close a side.
    Close {
        /// Which side.
        side: Side,
        /// FIN or RST.
        how: CloseHow,
    },
    /// Deliver [`Event::Timer`] with `id` at simulated time `at` (replaces a timer with the
    /// same id).
    SetTimer {
        /// Chosen by the model.
        id: u64,
        /// Absolute simulated time.
        at: Duration,
    },
    /// Forget the timer with `id`, if set.
    CancelTimer {
        /// Chosen by the model.
        id: u64,
    },
    /// A line for the run's transcript, saying what the model did and why.
    Note(String),
}

/// The context of one event: the simulated time, the connection's seeded RNG, and the actions
/// the model answers with.
#[derive(Debug)]
pub struct Cx {
    now: Duration,
    rng: Rng,
    peer: String,
    actions: Vec<Action>,
}

impl Cx {
    /// A context at simulated time zero whose RNG is seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            now: Duration::ZERO,
            rng: Rng::new(seed),
            peer: String::new(),
            actions: Vec::new(),
        }
    }

    /// Sets the client's address (driver side).
    pub fn set_peer(&mut self, peer: impl Into<String>) {
        self.peer = peer.into();
    }

    /// The address of the client that opened this connection, as text.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// Sets the simulated time of the next event (driver side).
    pub fn set_now(&mut self, now: Duration) {
        self.now = now;
    }

    /// The simulated time of the event being handled.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// The connection's seeded random source.
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// Write `bytes` to `to`. Empty writes are skipped.
    pub fn send(&mut self, to: Side, bytes: impl Into<Vec<u8>>) {
        let bytes = bytes.into();
        if !bytes.is_empty() {
            self.actions.push(Action::Send { to, bytes });
        }
    }

    /// Open the upstream side on `port` of the first (or only) backend.
    pub fn dial(&mut self, port: u16) {
        self.dial_backend(0, port);
    }

    /// Open the upstream side on `port` of backend `backend` (counted from 0).
    pub fn dial_backend(&mut self, backend: usize, port: u16) {
        self.actions.push(Action::Dial { backend, port });
    }

    /// Open the upstream side toward `host:port`, the destination the client named (see
    /// [`Action::DialNamed`]).
    pub fn dial_named(&mut self, host: impl Into<String>, port: u16) {
        self.actions.push(Action::DialNamed {
            host: host.into(),
            port,
        });
    }

    /// Half-close `side` (FIN).
    pub fn fin(&mut self, side: Side) {
        self.actions.push(Action::Close {
            side,
            how: CloseHow::Fin,
        });
    }

    /// Reset `side` (RST).
    pub fn reset(&mut self, side: Side) {
        self.actions.push(Action::Close {
            side,
            how: CloseHow::Reset,
        });
    }

    /// Ask for [`Event::Timer`] with `id` at simulated time `at`.
    pub fn set_timer(&mut self, id: u64, at: Duration) {
        self.actions.push(Action::SetTimer { id, at });
    }

    /// Forget timer `id`.
    pub fn cancel_timer(&mut self, id: u64) {
        self.actions.push(Action::CancelTimer { id });
    }

    /// Record a transcript line.
    pub fn note(&mut self, line: impl Into<String>) {
        self.actions.push(Action::Note(line.into()));
    }

    /// Push an action as it is; for models that wrap another model and pass some of its
    /// actions through.
    pub fn push(&mut self, action: Action) {
        self.actions.push(action);
    }

    /// The actions pushed since the last call, in order.
    pub fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }
}

/// One model instance on one host: makes a [`Connection`] for each accepted connection.
/// State shared between a hop's connections (a balancer's rotation, a cache) lives here.
pub trait Hop {
    /// A fresh state machine for the next accepted connection.
    fn connection(&mut self) -> Box<dyn Connection>;
}

/// A [`Hop`] whose connections share nothing: each is made by the closure.
pub struct Independent<F>(pub F);

impl<F> std::fmt::Debug for Independent<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Independent")
    }
}

impl<F: FnMut() -> Box<dyn Connection>> Hop for Independent<F> {
    fn connection(&mut self) -> Box<dyn Connection> {
        (self.0)()
    }
}

/// One proxied connection's state machine. See the crate docs for the contract.
pub trait Connection: std::fmt::Debug {
    /// Handle one event, pushing actions into `cx`.
    fn on_event(&mut self, cx: &mut Cx, event: Event<'_>);
}
