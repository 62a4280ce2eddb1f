//! The `live` engine: every host as tasks on one thread, over real TCP sockets on 127.0.0.1
//! and the wall clock, so a run can meet real processes.
//!
//! - Addresses: a host's `listen(port)` binds 127.0.0.1 on an ephemeral port and registers
//!   it under (host, port); `connect(host, port)` applies the topology's interceptions, looks
//!   the pair up and connects to the real address. A pair nobody listens on is refused
//!   (`ConnectionRefused`), an unknown host is `NotFound`. [`Net::publish`](super::Net::publish) registers an
//!   address by hand (a process outside the run); a host that publishes an address and then
//!   listens on the same port binds that address. A host that is not one of the run's but a
//!   literal loopback IPv4 address (`127.0.0.1`, any of 127.0.0.0/8) is dialed directly, as
//!   an address outside the run (its streams are not gated): a forward proxy model run by
//!   `gauntlet proxy` reaches the real address a client names in its CONNECT. Any other
//!   address (`10.0.0.1`) is `NotFound`, saying only loopback is dialed.
//! - Peers: before connecting, a host binds its socket and registers the local address under
//!   its name, so the accepting side's [`Io::peer`](super::Io::peer) is the connecting host's name (what a
//!   source-hash balancer hashes), stable from run to run. A connection from outside the run
//!   gives its real address instead. A connecting side's peer is the host it reached.
//! - Time: [`Net::now`](super::Net::now) is wall time since the run started, timers are tokio's, and the
//!   topology's limit is enforced in wall time. The client starts 10 ms after the hosts, and
//!   not before every real program a host announced ([`Net::starting`](super::Net::starting)) is up.
//! - Not modelled: latency and jitter are not applied (loopback is as fast as it is);
//!   bandwidth, loss, buffer sizes and host crashes ([`Topology::crash`]) are refused with
//!   [`EngineError::Unsupported`], as they cannot be honoured on real sockets.
//! - Link faults: every stream between two hosts of the run passes a gate. Writes go to the
//!   stream's outbox (64 KiB; a writer waits beyond that), and a task per stream moves them
//!   to the socket while the link is open; while the outbox is empty and the link open, a
//!   write the socket takes at once goes straight to it instead. While the link is held,
//!   neither the outbox nor reads move: nothing is lost, and everything is delivered, in
//!   order, once released.
//!   A connection attempt waits for the release. A blackhole silences every stream open on
//!   the link for good: writes and FINs are swallowed, reads never complete, and its socket
//!   stays open, unheard, until the run ends; connection attempts get no answer. Streams to
//!   and from addresses outside the run are not gated.
//! - Events are recorded like the other engines', with wall-clock times, so the event log's
//!   hash differs from run to run.
//!
//! The files: `world.rs`, the registry every host's handle shares (addresses, links and their
//! gates, the log); `net.rs`, a host's handle ([`Net`](super::Net): listen, connect, publish, link
//! faults); `listener.rs`, listening sockets, shared between runs of this process on a
//! published address; `stream.rs`, a stream, its outbox and the pump that empties it.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::LocalSet;
use tokio::time::Instant;

use super::local::{Failure, race_client, start_host, verdict};
use super::{Engine, EngineError, NetRef, RunEnd, Topology};
use net::{LiveNet, Starting};
use world::{Shared, World, lock};

mod listener;
mod net;
mod stream;
mod world;

/// The engine's name.
pub const NAME: &str = "live";

/// Every socket binds here: loopback, an ephemeral port.
const LOOPBACK: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

/// How long the hosts run before the client starts.
const HEAD_START: Duration = Duration::from_millis(10);

/// Real TCP on 127.0.0.1, on the wall clock.
#[derive(Debug, Default)]
pub struct Live;

impl Engine for Live {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Runs the topology on real sockets. The seed is not used: nothing here is drawn at
    /// random (the hosts' software still reads its own seeds).
    fn run(&self, topology: Topology, _seed: u64) -> Result<RunEnd, EngineError> {
        self.run_since(topology, Instant::now())
    }
}

impl Live {
    /// [`Engine::run`], with the run's clock started at `start` rather than now: runs on
    /// several threads that started together (the workers of `gauntlet proxy` and `gauntlet
    /// serve`) then log on one clock.
    pub fn run_since(&self, topology: Topology, start: Instant) -> Result<RunEnd, EngineError> {
        let what = topology.shaping().or_else(|| {
            topology
                .crashes
                .first()
                .map(|(host, _)| format!("host crashes (`{host}` is to crash)"))
        });
        if let Some(what) = what {
            return Err(EngineError::Unsupported { engine: NAME, what });
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| EngineError::Start(e.to_string()))?;
        LocalSet::new().block_on(&runtime, run(topology, start))
    }
}

async fn run(topology: Topology, start: Instant) -> Result<RunEnd, EngineError> {
    let Topology {
        hosts,
        client,
        intercepts,
        limit,
        ..
    } = topology;
    let (client_name, client_software) = client.ok_or(EngineError::NoClient)?;
    let world: Shared = Arc::new(Mutex::new(World::new(start)));
    let failure = Rc::new(Failure::default());
    let starting = Rc::new(Starting::default());
    let mut names: BTreeSet<String> = hosts.iter().map(|(n, _)| n.clone()).collect();
    names.insert(client_name.clone());
    let (names, intercepts) = (Rc::new(names), Rc::new(intercepts));
    let handle = |name: &str| -> NetRef {
        Rc::new(LiveNet {
            world: world.clone(),
            start,
            name: name.to_string(),
            hosts: names.clone(),
            intercepts: intercepts.clone(),
            failure: failure.clone(),
            starting: starting.clone(),
        })
    };
    for (name, software) in &hosts {
        start_host(&handle(name), software, &failure);
    }
    // The client starts a little after the hosts, standing in for the latency that separates
    // them on the simulated engines: software that listens as it starts is listening, and
    // what hosts do at time 0 (a crash, say) has happened, before the client connects.
    tokio::time::sleep(HEAD_START).await;
    // Real programs the hosts start (a product, a proxy command) take their own time to listen.
    starting.none_left().await;
    // A limit beyond what the clock can count means no limit (a proxy that runs until
    // interrupted).
    let deadline = start.checked_add(limit);
    let limit_reached = async move {
        match deadline {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    let end = race_client(
        &failure,
        limit_reached,
        client_software(handle(&client_name)),
    )
    .await;
    let at = start.elapsed();
    verdict(&failure, end, limit)?;
    Ok(RunEnd {
        at,
        events: lock(&world).log,
    })
}
