//! Live model proxies: [`spawn`] and [`spawn_chain`] start what `gauntlet proxy` runs
//! ([`real::proxy`](crate::real::proxy)) on 127.0.0.1, an ephemeral port, one worker, on a
//! thread of its own; [`ProxyHandle`] tells its address and stops it.

use std::net::SocketAddr;

use gauntlet_proxies::HopEnv;

use super::background::{Background, loopback};
use super::model::Model;
use crate::error::Error;
use crate::real::proxy::{self, Plan};
use crate::verdict::transcript::Entry;

/// The port the models see connections arrive on: 80, as in `gauntlet proxy` by default
/// (models that read HTTP only on some ports, `intercept-ports`, `http-ports`, decide by it).
const MODEL_PORT: u16 = 80;

/// A live proxy running models on real sockets, on a thread of its own. Stop it with
/// [`ProxyHandle::shutdown`], or drop it.
#[derive(Debug)]
pub struct ProxyHandle {
    addr: SocketAddr,
    running: Background,
}

impl ProxyHandle {
    /// Where the proxy listens (127.0.0.1 and an ephemeral port): connect clients here.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the proxy: it stops accepting, every connection through it is closed (dropped
    /// with the proxy's tasks: the kernel closes the sockets), and its thread is joined.
    /// Returns what its hops logged (accepts, dials, FINs and resets, the models' notes such
    /// as an idle killer's expiry; [`render`](crate::verdict::transcript::render) prints
    /// them), or the fault the proxy stopped on ([`Error::Failed`]). The lines are kept in
    /// memory while the proxy runs, a few per connection, the last 100,000 at most (the first
    /// line then says how many earlier ones were dropped).
    ///
    /// Dropping the handle stops the proxy too, blocking the dropping thread the moment it
    /// takes the proxy to drop its tasks.
    pub async fn shutdown(self) -> Result<Vec<Entry>, Error> {
        self.running.shutdown().await
    }
}

/// Starts a live proxy running `model` between a listener on 127.0.0.1 (an ephemeral port:
/// see [`ProxyHandle::addr`]) and `upstream`, and returns once it listens.
///
/// It runs on the `live` engine, as `gauntlet proxy --model …` does with one worker: real
/// TCP and the wall clock, each connection a task of the proxy's own current-thread tokio
/// runtime on a thread of its own, since that engine runs its runtime itself. So `spawn`
/// works from any async code (any tokio runtime, flavour or executor); the thread ends when
/// the handle is shut down or dropped. Every connection the model dials goes to `upstream`.
/// Models that need TLS material from the harness (`tls-intercepting-proxy`, an `l7-balancer`
/// with `terminate-tls`) are refused ([`Error::Hop`]).
pub async fn spawn(model: Model, upstream: SocketAddr) -> Result<ProxyHandle, Error> {
    spawn_chain([model], upstream).await
}

/// [`spawn`] with a chain of models: the first faces the clients, each dials the next, the
/// last dials `upstream`; every backend of a balancer is the next hop. Each hop is one host
/// of the proxy's run, on loopback. An empty chain is [`Error::EmptyChain`].
pub async fn spawn_chain(
    models: impl IntoIterator<Item = Model>,
    upstream: SocketAddr,
) -> Result<ProxyHandle, Error> {
    let mut specs = Vec::new();
    for (i, model) in models.into_iter().enumerate() {
        let spec = model.spec()?;
        if let Err(error) = spec.hop(&HopEnv::default()) {
            return Err(Error::Hop {
                at: format!("hop {} ({})", i + 1, spec.name()),
                error,
            });
        }
        specs.push(spec);
    }
    if specs.is_empty() {
        return Err(Error::EmptyChain);
    }
    let plan = Plan {
        models: specs,
        listen: loopback(),
        upstreams: vec![upstream],
        model_port: MODEL_PORT,
        max_connections: proxy::default_max_connections(),
        workers: 1,
    };
    let (addr, running) = Background::start(
        "proxy",
        Box::new(move |transcript, stop, ready| proxy::run(&plan, transcript, stop, ready)),
    )
    .await?;
    Ok(ProxyHandle { addr, running })
}
