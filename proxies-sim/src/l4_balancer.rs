//! `l4-balancer`: a TCP balancer. Each accepted connection goes to one of `backends`
//! upstream hosts, chosen by `policy`, and its bytes are relayed unchanged; it never reads
//! HTTP, so ws and wss pass alike (BRIEF §1: "one backend per connection; fine").
//!
//! A backend that resets (a crash mid-tunnel) is passed on: the client sees a reset too, as
//! with Linux IPVS, HAProxy in `mode tcp` or an AWS NLB, none of which can move an open TCP
//! connection to another backend. A backend that refuses the connection gets the client a
//! reset.
//!
//! Policies (HAProxy's `balance` names in brackets):
//! - `round-robin` (`roundrobin`): backends in turn, per hop, starting with the first;
//! - `least-connections` (`leastconn`): the backend with the fewest open connections through
//!   this hop, the lowest-numbered on a tie;
//! - `source-hash` (`source`): FNV-1a of the client's address, modulo `backends`, so one
//!   client always lands on the same backend.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use serde::Deserialize;

use crate::model::{Connection, Cx, Event, Hop};
use crate::pass::relay;
use crate::registry::{HopError, Model, ParamError};
use crate::rng::fnv1a;
use crate::spec::HopEnv;

/// The most backends a hop may have.
pub const MAX_BACKENDS: usize = 64;

/// How a backend is chosen.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// In turn.
    #[default]
    RoundRobin,
    /// The fewest open connections.
    LeastConnections,
    /// A hash of the client's address.
    SourceHash,
}

impl Policy {
    /// The name scenario files use.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::RoundRobin => "round-robin",
            Policy::LeastConnections => "least-connections",
            Policy::SourceHash => "source-hash",
        }
    }
}

/// Parameters of `l4-balancer`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(try_from = "RawParams")]
pub struct Params {
    /// How many backends (server hosts `server1` … `serverN`). Required, 1 to 64.
    pub backends: usize,
    /// How one is chosen. Default `"round-robin"`.
    pub policy: Policy,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawParams {
    backends: usize,
    #[serde(default)]
    policy: Policy,
}

impl TryFrom<RawParams> for Params {
    type Error = ParamError;

    fn try_from(raw: RawParams) -> Result<Self, ParamError> {
        check_backends(raw.backends)?;
        Ok(Params {
            backends: raw.backends,
            policy: raw.policy,
        })
    }
}

impl Model for Params {
    const NAME: &'static str = "l4-balancer";
    const DESCRIPTION: &'static str = concat!(
        "a TCP balancer: each connection to one of `backends` servers, bytes unchanged; a ",
        "backend's reset is passed on",
    );
    const PARAMETERS: &'static str = concat!(
        "`backends` (1 to 64, required), `policy`: `round-robin` (default), `least-connections`, ",
        "`source-hash`",
    );
    const SHARED_STATE: Option<&'static str> = Some("its rotation among the backends");

    fn hop(&self, _: &HopEnv) -> Result<Box<dyn Hop>, HopError> {
        Ok(Box::new(L4Hop::new(self)))
    }

    fn summary(&self) -> String {
        format!(
            "l4-balancer backends={} policy={}",
            self.backends,
            self.policy.as_str()
        )
    }

    fn backends(&self) -> usize {
        self.backends
    }
}

/// Checks a balancer's backend count.
pub fn check_backends(n: usize) -> Result<(), ParamError> {
    if (1..=MAX_BACKENDS).contains(&n) {
        Ok(())
    } else {
        Err(ParamError::OutOfRange {
            key: "backends",
            max: MAX_BACKENDS,
            got: n,
        })
    }
}

/// What a balancer's connections share: the rotation and the open connections per backend.
#[derive(Debug)]
pub struct Rotation {
    policy: Policy,
    /// Round-robin turns, one counter per candidate list.
    next: BTreeMap<Vec<usize>, usize>,
    open: Vec<usize>,
}

impl Rotation {
    /// A rotation over `backends` backends.
    pub fn new(policy: Policy, backends: usize) -> Self {
        Self {
            policy,
            next: BTreeMap::new(),
            open: vec![0; backends.max(1)],
        }
    }

    /// Picks the backend for a connection from `peer`, and counts it open.
    pub fn pick(&mut self, peer: &str) -> usize {
        let all: Vec<usize> = (0..self.open.len()).collect();
        self.pick_from(&all, peer)
    }

    /// Picks among `candidates` (backend numbers from 0; an empty or out-of-range list means
    /// every backend) for a connection from `peer`, and counts it open. Round-robin keeps one
    /// turn counter per candidate list, as HAProxy keeps one per backend section.
    pub fn pick_from(&mut self, candidates: &[usize], peer: &str) -> usize {
        let n = self.open.len();
        let all: Vec<usize>;
        let candidates = if candidates.is_empty() || candidates.iter().any(|&b| b >= n) {
            all = (0..n).collect();
            &all
        } else {
            candidates
        };
        let k = candidates.len();
        let chosen = match self.policy {
            Policy::RoundRobin => {
                let next = self.next.entry(candidates.to_vec()).or_insert(0);
                let b = candidates[*next % k];
                *next = (*next + 1) % k;
                b
            }
            Policy::LeastConnections => candidates
                .iter()
                .copied()
                .min_by_key(|&b| (self.open[b], b))
                .unwrap_or(candidates[0]),
            Policy::SourceHash => candidates[(fnv1a(peer.as_bytes()) % k as u64) as usize],
        };
        self.open[chosen] += 1;
        chosen
    }

    /// The policy's name.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// How many backends.
    pub fn backends(&self) -> usize {
        self.open.len()
    }

    /// Counts a connection to `backend` closed.
    pub fn release(&mut self, backend: usize) {
        if let Some(c) = self.open.get_mut(backend) {
            *c = c.saturating_sub(1);
        }
    }
}

/// The balancer on one host.
#[derive(Debug)]
pub struct L4Hop {
    rotation: Rc<RefCell<Rotation>>,
}

impl L4Hop {
    /// A hop with these parameters.
    pub fn new(params: &Params) -> Self {
        Self {
            rotation: Rc::new(RefCell::new(Rotation::new(params.policy, params.backends))),
        }
    }
}

impl Hop for L4Hop {
    fn connection(&mut self) -> Box<dyn Connection> {
        Box::new(L4Connection {
            rotation: self.rotation.clone(),
            backend: None,
        })
    }
}

/// A connection through `l4-balancer`.
#[derive(Debug)]
pub struct L4Connection {
    rotation: Rc<RefCell<Rotation>>,
    backend: Option<usize>,
}

impl Connection for L4Connection {
    fn on_event(&mut self, cx: &mut Cx, event: Event<'_>) {
        match event {
            Event::Accepted { port } => {
                let (b, policy) = {
                    let mut r = self.rotation.borrow_mut();
                    (r.pick(cx.peer()), r.policy)
                };
                self.backend = Some(b);
                cx.note(format!(
                    "backend {} of {} ({})",
                    b + 1,
                    self.rotation.borrow().open.len(),
                    policy.as_str()
                ));
                cx.dial_backend(b, port);
            }
            other => relay(cx, other),
        }
    }
}

impl Drop for L4Connection {
    fn drop(&mut self) {
        if let Some(b) = self.backend {
            self.rotation.borrow_mut().release(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Action, CloseHow, Side};

    fn dials(conn: &mut dyn Connection, peer: &str) -> usize {
        let mut cx = Cx::new(1);
        cx.set_peer(peer);
        conn.on_event(&mut cx, Event::Accepted { port: 80 });
        cx.take_actions()
            .iter()
            .find_map(|a| match a {
                Action::Dial { backend, port: 80 } => Some(*backend),
                _ => None,
            })
            .expect("a dial")
    }

    fn hop(policy: Policy, backends: usize) -> L4Hop {
        L4Hop::new(&Params { backends, policy })
    }

    #[test]
    fn round_robin_takes_backends_in_turn() {
        let mut h = hop(Policy::RoundRobin, 3);
        let mut conns: Vec<_> = (0..4).map(|_| h.connection()).collect();
        let picked: Vec<usize> = conns.iter_mut().map(|c| dials(&mut **c, "a")).collect();
        assert_eq!(picked, vec![0, 1, 2, 0]);
    }

    #[test]
    fn least_connections_counts_open_connections_and_forgets_closed_ones() {
        let mut h = hop(Policy::LeastConnections, 2);
        let mut a = h.connection();
        let mut b = h.connection();
        assert_eq!(dials(&mut *a, "x"), 0);
        assert_eq!(dials(&mut *b, "x"), 1);
        drop(a);
        let mut c = h.connection();
        assert_eq!(dials(&mut *c, "x"), 0, "backend 0 was freed");
        let mut d = h.connection();
        assert_eq!(dials(&mut *d, "x"), 0, "a tie goes to the lowest");
    }

    #[test]
    fn source_hash_is_sticky_per_client() {
        let mut h = hop(Policy::SourceHash, 4);
        let first = dials(&mut *h.connection(), "192.168.0.7");
        for _ in 0..5 {
            assert_eq!(dials(&mut *h.connection(), "192.168.0.7"), first);
        }
        let spread: std::collections::BTreeSet<usize> = (0..32)
            .map(|i| dials(&mut *h.connection(), &format!("10.0.0.{i}")))
            .collect();
        assert!(spread.len() > 1, "different clients spread: {spread:?}");
    }

    #[test]
    fn a_backend_reset_reaches_the_client_as_a_reset() {
        let mut h = hop(Policy::RoundRobin, 2);
        let mut c = h.connection();
        let mut cx = Cx::new(1);
        c.on_event(&mut cx, Event::Accepted { port: 443 });
        c.on_event(&mut cx, Event::Dialed);
        c.on_event(
            &mut cx,
            Event::Data {
                from: Side::Client,
                bytes: b"\x16\x03\x01",
            },
        );
        c.on_event(
            &mut cx,
            Event::Reset {
                from: Side::Upstream,
            },
        );
        let actions = cx.take_actions();
        assert!(actions.contains(&Action::Send {
            to: Side::Upstream,
            bytes: b"\x16\x03\x01".to_vec()
        }));
        assert_eq!(
            actions.last(),
            Some(&Action::Close {
                side: Side::Client,
                how: CloseHow::Reset
            })
        );
    }

    #[test]
    fn backend_counts_are_checked() {
        assert_eq!(
            check_backends(0).unwrap_err().to_string(),
            "`backends` must be between 1 and 64, not 0"
        );
        assert!(check_backends(65).is_err());
        assert!(check_backends(4).is_ok());
    }
}
