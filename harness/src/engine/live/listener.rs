//! Listening sockets of the run: on a fresh loopback port, or on a published address shared
//! with the same host of other runs of this process (`SO_REUSEPORT`), and what a listener
//! leaves in the registry when it closes.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};

use futures_util::FutureExt;
use futures_util::future::LocalBoxFuture;
use tokio::net::{TcpListener, TcpSocket};

use super::stream::LiveStream;
use super::world::{Gate, PortState, Shared, lock};
use crate::engine::{Listener, Stream, pair};

/// A listener on a published address, with `SO_REUSEPORT`, so that the same address can be
/// bound by the same host of another run, on another thread of this process: the kernel then
/// spreads the connections among those listeners by their addresses (the workers of
/// `gauntlet proxy` and `gauntlet serve`). Only runs of this process share an address: the
/// first to bind a given port checks that nothing else listens there (another process's
/// `SO_REUSEPORT` listener would otherwise share its connections without a word). Also
/// `SO_REUSEADDR`, as tokio's `bind` sets it: a restarted server binds its port while old
/// connections linger in `TIME_WAIT`.
pub(super) fn bind_shared(addr: SocketAddr) -> io::Result<(TcpListener, SharedAddr)> {
    let socket = |reuseport: bool| -> io::Result<TcpSocket> {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.set_reuseport(reuseport)?;
        Ok(socket)
    };
    let named = |e: io::Error| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}"));
    let mut bound = shared_addrs();
    if addr.port() != 0 && !bound.contains_key(&addr) {
        // Fails with `AddrInUse` if anything listens there.
        socket(false)?.bind(addr).map_err(named)?;
    }
    let socket = socket(true)?;
    socket.bind(addr).map_err(named)?;
    let listener = socket.listen(1024).map_err(named)?;
    let addr = listener.local_addr()?;
    *bound.entry(addr).or_default() += 1;
    Ok((listener, SharedAddr(addr)))
}

/// The published addresses this process listens on, with how many listeners each.
fn shared_addrs() -> MutexGuard<'static, BTreeMap<SocketAddr, usize>> {
    static ADDRS: Mutex<BTreeMap<SocketAddr, usize>> = Mutex::new(BTreeMap::new());
    ADDRS.lock().unwrap_or_else(|e| e.into_inner())
}

/// One listener's place among [`shared_addrs`], given up when it is dropped.
pub(super) struct SharedAddr(SocketAddr);

impl Drop for SharedAddr {
    fn drop(&mut self) {
        let mut bound = shared_addrs();
        if let Some(count) = bound.get_mut(&self.0) {
            *count -= 1;
            if *count == 0 {
                bound.remove(&self.0);
            }
        }
    }
}

/// A listening socket of the run.
pub(super) struct LiveListener {
    pub(super) inner: TcpListener,
    pub(super) world: Shared,
    pub(super) host: String,
    pub(super) port: u16,
    /// For a listener on a published address: its place among [`shared_addrs`].
    pub(super) _shared: Option<SharedAddr>,
}

impl Listener for LiveListener {
    fn accept(&mut self) -> LocalBoxFuture<'_, io::Result<Stream>> {
        async move {
            loop {
                let (inner, from) = self.inner.accept().await?;
                let named = lock(&self.world).sources.get(&from).cloned();
                let link = named.as_ref().map(|p| pair(&self.host, p));
                let shown = named.clone().unwrap_or_else(|| from.to_string());
                lock(&self.world).record(
                    &self.host,
                    format_args!("accept {} from {shown}", self.port),
                );
                // A host of the run is its name; a client from outside it is its address
                // without the port, as a balancer's source hash takes it (nginx `ip_hash`,
                // HAProxy `balance source`): one client, one backend.
                let peer = named.unwrap_or_else(|| from.ip().to_string());
                let gate = Gate::new(&self.world, link);
                match LiveStream::new(inner, &self.host, peer, gate, None) {
                    Ok(stream) => return Ok(Box::new(stream) as Stream),
                    // The connection went away between the accept and its set-up (a reset
                    // makes `setsockopt` or `getsockname` fail): that is its end, not the
                    // listener's.
                    Err(e) => lock(&self.world).record(
                        &self.host,
                        format_args!("accept {} dropped: {e}", self.port),
                    ),
                }
            }
        }
        .boxed_local()
    }
}

impl Drop for LiveListener {
    fn drop(&mut self) {
        let mut world = lock(&self.world);
        let key = (self.host.clone(), self.port);
        if let Some(p) = world
            .ports
            .get_mut(&key)
            .filter(|p| p.state == PortState::Listening)
        {
            p.state = PortState::Closed;
        }
    }
}
