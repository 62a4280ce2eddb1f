//! The reference server on loopback: [`spawn_server`] and [`spawn_server_with`] start what
//! `gauntlet serve` runs ([`real::serve`](crate::real::serve)) on 127.0.0.1, ephemeral
//! ports, one worker, on a thread of its own; [`ServerHandle`] tells its addresses and stops
//! it.

use std::net::SocketAddr;

use super::background::{Background, loopback};
use crate::endpoints::engineio;
use crate::endpoints::server::Limits;
use crate::error::Error;
use crate::real::serve::{self, Bound, Plan, Tls};
use crate::testing::TestCa;
use crate::tls::TlsVersions;
use crate::verdict::transcript::Entry;

/// How [`spawn_server_with`] runs the reference server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    tls: Option<Tls>,
    limits: Limits,
    engineio: engineio::Options,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerOptions {
    /// ws only, with `gauntlet serve`'s limits ([`Limits::SERVE`], nginx's defaults as
    /// Debian ships them: 60 s for each request head, the TLS handshake included, and at most
    /// 768 connections at once).
    pub fn new() -> Self {
        Self {
            tls: None,
            limits: Limits::SERVE,
            engineio: engineio::Options::default(),
        }
    }

    /// wss too, on a second listener ([`ServerHandle::tls_addr`]): the server presents a
    /// certificate signed by `ca` for `localhost` and `127.0.0.1`, and accepts `versions`
    /// (TLS 1.2 and 1.3: [`TlsVersions::Any`]). A client trusting
    /// [`TestCa::client_config`] or [`TestCa::root_pem`] accepts it.
    pub fn tls(mut self, ca: &TestCa, versions: TlsVersions) -> Result<Self, Error> {
        let tls = Tls::signed_by(ca.ca(), loopback(), versions)?;
        self.tls = Some(tls);
        Ok(self)
    }

    /// What the server refuses to hold: a time for each request head, and a most
    /// connections at once ([`Limits::NONE`]: no limits).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The Engine.IO settings of `/engine.io/` and `/socket.io/` (by default engine.io's:
    /// a ping every 25 s, 20 s for its pong, payloads of 1,000,000 bytes).
    pub fn engineio(mut self, options: engineio::Options) -> Self {
        self.engineio = options;
        self
    }
}

/// The reference WebSocket server running on loopback, on a thread of its own. Stop it with
/// [`ServerHandle::shutdown`], or drop it.
///
/// Its paths (see [`endpoints::server`](crate::endpoints::server)): `/push` sends messages
/// (`?count=N&interval=MS&size=B`); `/attacker` is the cache-poisoning demonstration's; every
/// other path, `/echo` for one, echoes each text or binary message back as it came. Each
/// takes `close=CODE` with `count=N` (close first after N messages) and `fragment=N`.
/// `/engine.io/` and `/socket.io/` speak Engine.IO v4 (see
/// [`endpoints::engineio`](crate::endpoints::engineio)).
#[derive(Debug)]
pub struct ServerHandle {
    bound: Bound,
    running: Background,
}

impl ServerHandle {
    /// Where the server listens for ws (127.0.0.1, an ephemeral port).
    pub fn addr(&self) -> SocketAddr {
        self.bound.ws
    }

    /// Where it listens for wss, when started with [`ServerOptions::tls`].
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.bound.wss
    }

    /// Stops the server: it stops accepting, every connection is closed, and its thread is
    /// joined. Returns what it logged (each session's messages and closes; the last 100,000
    /// lines at most, as [`ProxyHandle::shutdown`](super::ProxyHandle::shutdown) keeps), or the
    /// fault it stopped on ([`Error::Failed`]). Dropping the handle stops it too.
    pub async fn shutdown(self) -> Result<Vec<Entry>, Error> {
        self.running.shutdown().await
    }
}

/// Starts the reference server for ws on 127.0.0.1 (an ephemeral port) with
/// [`ServerOptions::new`]'s limits, and returns once it listens. It runs on the `live`
/// engine on a thread of its own, as `gauntlet serve` does with one worker, so this works
/// from any async code.
pub async fn spawn_server() -> Result<ServerHandle, Error> {
    spawn_server_with(ServerOptions::new()).await
}

/// [`spawn_server`] as `options` say: wss too, other limits.
pub async fn spawn_server_with(options: ServerOptions) -> Result<ServerHandle, Error> {
    let plan = Plan {
        listen: loopback(),
        tls: options.tls,
        limits: options.limits,
        workers: 1,
        engineio: options.engineio,
    };
    let (bound, running) = Background::start(
        "server",
        Box::new(move |transcript, stop, ready| serve::run(&plan, transcript, stop, ready)),
    )
    .await?;
    Ok(ServerHandle { bound, running })
}
