//! What `gauntlet proxy` and `gauntlet serve` share: a run on the
//! [`live`](crate::engine::live) engine that stands, on addresses given on the command line,
//! until interrupted.
//!
//! Its hosts publish the addresses they are to listen on ([`published`]), so their listeners
//! bind there; its client ([`until_stopped`]) waits until they listen, hands the bound
//! addresses to the caller, and ends the run when told to stop.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::LocalBoxFuture;

use crate::engine::{LinkConfig, NetRef, Software, Topology};

/// How long a host may take to bind its listener.
const BIND_WAIT: Duration = Duration::from_secs(10);

/// A live topology without a time limit and without latency (the live engine applies none):
/// the run lasts until its client returns.
pub fn topology() -> Topology {
    Topology::new(
        LinkConfig::new(Duration::ZERO, Duration::ZERO),
        Duration::MAX,
    )
}

/// Software that publishes `addr` for `port` on its host (port 0: for every port), then runs
/// `then` (or waits).
pub fn published(port: u16, addr: SocketAddr, then: Option<Software>) -> Software {
    std::rc::Rc::new(move |net: NetRef| {
        let published = net.publish(port, addr);
        let then = then.as_ref().map(|s| s(net.clone()));
        async move {
            published?;
            match then {
                Some(run) => run.await,
                None => std::future::pending().await,
            }
        }
        .boxed_local()
    })
}

/// A run's client: waits until every `(host, port)` of `listeners` listens, calls `ready`
/// with their bound addresses (in the same order), and returns when `stop` completes. `stop`
/// is polled once before anything else, so that whatever it sets up (signal handlers) is in
/// place by the time `ready` announces the addresses.
pub async fn until_stopped(
    net: NetRef,
    listeners: &[(&str, u16)],
    stop: LocalBoxFuture<'static, ()>,
    ready: impl FnOnce(Vec<SocketAddr>),
) -> anyhow::Result<()> {
    let mut stop = stop;
    if (&mut stop).now_or_never().is_some() {
        return Ok(());
    }
    let give_up = net.now() + BIND_WAIT;
    let mut bound = Vec::with_capacity(listeners.len());
    for &(host, port) in listeners {
        let addr = loop {
            if let Some(addr) = net.real_addr(host, port) {
                break addr;
            }
            if net.now() >= give_up {
                anyhow::bail!("{host} was not listening on its port {port} after {BIND_WAIT:?}");
            }
            net.sleep_until(net.now() + Duration::from_millis(1)).await;
        };
        bound.push(addr);
    }
    ready(bound);
    stop.await;
    Ok(())
}
