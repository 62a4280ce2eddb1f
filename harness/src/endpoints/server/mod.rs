//! The reference server: hyper for HTTP/1.1 (it answers plain requests as real servers do),
//! then tokio-tungstenite on the upgraded connection. Paths:
//!
//! - `/echo`: every text or binary message is sent back unchanged, as the same kind.
//! - `/push?count=N&interval=MS&size=B`: N text messages of B bytes, MS apart, each carrying
//!   its send time (`push <i> at <µs>`) so the client can measure one-way latency.
//! - Both take `fragment=N` (every message goes out fragmented, in frames of at most N payload
//!   bytes) and `close=CODE` (the server closes first with CODE once `count` messages have
//!   gone out: pushed, or, for `/echo?count=N`, echoed). A Close from the client is answered
//!   with the same code (tungstenite's reply echoes it), or with 1002 for a code that must
//!   never be sent. A client that breaks the protocol gets a Close with 1002, 1007 or 1009
//!   ([`crate::endpoints::violation`]), and the server closes the connection, reading nothing more.
//! - Both also take what the request asks of the answer ([`crate::endpoints::answer`]):
//!   `reply-field=NAME:VALUE` (the 101 carries the field), `refuse=STATUS` (a refusal with
//!   `Retry-After`, a JSON type and a 1 KiB body instead of the 101), and, for `/push`,
//!   `push-with-101` (the 101 and the first push leave in one write).
//! - Both take `reset=1` (once `count` messages have gone out the server resets the
//!   connection, 100 ms later, with no Close) and `pause=MS` (once `count` messages have gone
//!   out the server reads nothing for MS: a half-closing client's FIN reaches the proxy first),
//!   and, with `close`, `half-close=1` (the server ends its side right after its Close).
//! - `/attacker`: the cache-poisoning demonstration's accomplice
//!   ([`smuggle::attacker_endpoint`](crate::endpoints::smuggle::attacker_endpoint)): frames
//!   read by hand, masked or not; a frame carrying an HTTP request is answered with a
//!   raw HTTP response holding the attacker's script.
//!
//! - `/engine.io/` and `/socket.io/`: Engine.IO v4 ([`engineio`]), by HTTP long-polling
//!   and WebSocket, with the upgrade from one to the other; every message is echoed (or, with
//!   `app=push`, messages are pushed). Its sessions are an [`EngineIo`] that copies of the
//!   server on other threads share.
//!
//! A request that is not a valid opening handshake (RFC 6455 §4.2.1) gets a real answer
//! (`refusal`): 426 with `Upgrade: websocket` for a request without `Upgrade` (a plain GET),
//! 405 for a method other than GET, 426 with `Sec-WebSocket-Version: 13` for a missing or other
//! version, and 400 for the rest (a key that is not base64 of 16 bytes, a key or version sent
//! twice, HTTP/1.0, no `Connection: upgrade`, not exactly one `Host`). One plain GET is
//! served: `/script.js`, the victim origin's script in the cache-poisoning demonstration (200,
//! `Cache-Control: max-age=3600`), whatever the `Host`; and one more, `…/instance`, the
//! gateway's answer to the `redirect` strategy: 200, `text/plain`, the server's own host
//! name (`server2`), `Cache-Control: no-store`.
//!
//! A failed accept (out of file descriptors, say) is logged and retried after
//! [`ACCEPT_BACKOFF`]: the server keeps serving. Facing real clients (`gauntlet serve`), the
//! server also has [`Limits`]: a time for each request head to arrive, and a maximum number of
//! connections held at once. Both run on the engine's clock ([`crate::engine::Net::now`]), so
//! a simulated run stays deterministic; the simulated runs' server has none. The time for a
//! request head runs from the accept or from the previous answer, and stops while a request
//! is being answered (an Engine.IO poll is held until the server has something to send).
//!
//! This file holds the server's software and its accept loop (the limits, a failed accept);
//! `crash.rs` the crash that resets every connection; `http.rs` hyper's connection and the
//! answer to each request; `handshake.rs` the checks of an opening handshake and the
//! refusals; `app.rs` what runs on an upgraded connection (`/echo`, `/push`).

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;

use crate::endpoints::engineio::{self, EngineIo};
use crate::endpoints::killable::Killable;
use crate::engine::ACCEPT_BACKOFF;
use crate::engine::{Held, Intake, Listener, NetRef, Software};
use crate::verdict::transcript::Transcript;
use crash::Crash;
use http::{Conn, serve_http};

/// The path (after any prefix) at which the server names itself: the `redirect` strategy's
/// gateway lookup.
pub const INSTANCE_PATH: &str = "/instance";

mod app;
pub use app::SERVER_CLOSE_REASON;
mod crash;
mod handshake;
mod http;

/// What a server facing real clients refuses to hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How long a connection has to deliver a complete request head, from its accept (a TLS
    /// handshake included) or from its previous answer; it is closed when the time is up.
    pub header_timeout: Option<Duration>,
    /// How many connections the server holds at once, WebSocket sessions included; a
    /// connection accepted beyond them is closed at once.
    pub max_connections: Option<usize>,
}

impl Limits {
    /// No limits: the server of the simulated runs, whose clients are the harness's own.
    pub const NONE: Limits = Limits {
        header_timeout: None,
        max_connections: None,
    };

    /// `gauntlet serve`'s defaults, nginx's as Debian ships it: `client_header_timeout 60s`
    /// (nginx's default, which bounds the TLS handshake and the request head alike) and
    /// `worker_connections 768` (Debian's `/etc/nginx/nginx.conf`).
    pub const SERVE: Limits = Limits {
        header_timeout: Some(Duration::from_secs(60)),
        max_connections: Some(768),
    };
}

/// The reference server as a host's software: ws on port 80, and, given a TLS
/// configuration, wss on port 443. With `crash`, at that simulated time every connection it
/// holds is reset and it stops listening, as a crashed backend does. No [`Limits`]; Engine.IO
/// with engine.io's defaults ([`engineio::Options::default`]).
pub fn software(
    transcript: Transcript,
    tls: Option<Arc<rustls::ServerConfig>>,
    crash: Option<Duration>,
) -> Software {
    software_with(transcript, tls, crash, Limits::NONE)
}

/// [`software`] with `limits`.
pub fn software_with(
    transcript: Transcript,
    tls: Option<Arc<rustls::ServerConfig>>,
    crash: Option<Duration>,
    limits: Limits,
) -> Software {
    let intake = Intake::with_limit(limits.max_connections);
    let engineio = EngineIo::new(engineio::Options::default());
    software_sharing(
        transcript,
        tls,
        crash,
        limits.header_timeout,
        intake,
        engineio,
    )
}

/// The server with `header_timeout` ([`Limits::header_timeout`]), holding its connections in
/// `intake` and its Engine.IO sessions in `engineio`, which copies of the server on other
/// threads share (`gauntlet serve`'s workers), with the connection limit (see
/// [`Intake::with_limit`]).
pub fn software_sharing(
    transcript: Transcript,
    tls: Option<Arc<rustls::ServerConfig>>,
    crash: Option<Duration>,
    header_timeout: Option<Duration>,
    intake: Intake,
    engineio: EngineIo,
) -> Software {
    std::rc::Rc::new(move |net: NetRef| {
        let transcript = transcript.clone();
        let tls = tls.clone();
        let intake = intake.clone();
        let engineio = engineio.clone();
        async move {
            let server = Server {
                net: net.clone(),
                transcript: transcript.clone(),
                crash: Crash::new(crash),
                header_timeout,
                intake,
                engineio,
            };
            let plain = net.listen(80).await?;
            if let Some(tls) = tls {
                let secure = net.listen(443).await?;
                net.spawn(server.clone().accept_loop(secure, Some(tls)).boxed_local());
            }
            if let Some(at) = server.crash.at {
                let (n, t, c) = (net.clone(), transcript.clone(), server.crash.clone());
                net.spawn(
                    async move {
                        n.sleep_until(at).await;
                        let count = c.reset_all();
                        t.log(
                            n.now(),
                            n.host(),
                            format!("crashed: {count} connections reset, listeners closed"),
                        );
                    }
                    .boxed_local(),
                );
            }
            server.accept_loop(plain, None).await;
            std::future::pending::<()>().await;
            Ok(())
        }
        .boxed_local()
    })
}

/// What the server's listeners share.
#[derive(Clone)]
struct Server {
    net: NetRef,
    transcript: Transcript,
    crash: Crash,
    /// How long a connection has for a request head, if limited.
    header_timeout: Option<Duration>,
    /// Connections held now, and the limit.
    intake: Intake,
    /// The Engine.IO sessions.
    engineio: EngineIo,
}

impl Server {
    fn log(&self, what: String) {
        self.transcript.log(self.net.now(), self.net.host(), what);
    }

    /// Accepts connections until a crash. A failed accept is logged (the first of a run of
    /// failures, and the recovery) and retried after [`ACCEPT_BACKOFF`].
    async fn accept_loop(
        self,
        mut listener: Box<dyn Listener>,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) {
        let mut failed = 0u64;
        loop {
            let accepted = tokio::select! {
                biased;
                () = self.crash.wait(&self.net) => return,
                s = listener.accept() => s,
            };
            let stream = match accepted {
                Ok(stream) => stream,
                Err(e) => {
                    if failed == 0 {
                        self.log(format!(
                            "accept failed: {e}; trying again every {} ms",
                            ACCEPT_BACKOFF.as_millis()
                        ));
                    }
                    failed += 1;
                    let retry = self.net.now() + ACCEPT_BACKOFF;
                    tokio::select! {
                        biased;
                        () = self.crash.wait(&self.net) => return,
                        () = self.net.sleep_until(retry) => {}
                    }
                    continue;
                }
            };
            if failed > 0 {
                self.log(format!("accepting again after {failed} failed accepts"));
                failed = 0;
            }
            let Some(held) = self.intake.try_hold() else {
                self.log(format!(
                    "closed a connection from {} at once: {} connections open, the maximum",
                    stream.peer(),
                    self.intake.max().unwrap_or_default()
                ));
                drop(stream);
                continue;
            };
            let held = Rc::new(held);
            let peer = stream.peer();
            let stream = self.crash.register(stream);
            let task = match self.header_timeout {
                None => self
                    .clone()
                    .connection(stream, tls.clone(), held, None)
                    .boxed_local(),
                Some(limit) => {
                    let server = self.clone();
                    let last_head = Rc::new(Cell::new(Some(self.net.now())));
                    let connection = server.clone().connection(
                        stream,
                        tls.clone(),
                        held,
                        Some(last_head.clone()),
                    );
                    async move {
                        tokio::select! {
                            biased;
                            () = connection => {}
                            () = head_deadline(&server.net, &last_head, limit) => {
                                server.log(format!(
                                    "closed the connection from {peer}: no request head within {} ms",
                                    limit.as_millis()
                                ));
                            }
                        }
                    }
                    .boxed_local()
                }
            };
            self.net.spawn(task);
        }
    }

    /// One accepted connection: the TLS handshake (for wss), then HTTP. `last_head`, when
    /// there is a header timeout, is `None` while a request is answered, and the time its
    /// answer was ready after (see [`serve_http`]).
    async fn connection(
        self,
        stream: Killable,
        tls: Option<Arc<rustls::ServerConfig>>,
        held: Rc<Held>,
        last_head: Option<Rc<Cell<Option<Duration>>>>,
    ) {
        let (n, t, e) = (
            self.net.clone(),
            self.transcript.clone(),
            self.engineio.clone(),
        );
        let conn = Conn::new(held, stream.resetter(), self.engineio.census().clone());
        match tls {
            None => serve_http(n, stream, t, conn, last_head, e, true).await,
            // Boxed: a plain connection's task does not carry TLS's state.
            Some(config) => {
                Box::pin(async move {
                    match tokio_rustls::TlsAcceptor::from(config).accept(stream).await {
                        Ok(tls) => serve_http(n, tls, t, conn, last_head, e, false).await,
                        Err(e) => self.log(format!("tls handshake failed: {e}")),
                    }
                })
                .await;
            }
        }
    }
}

/// Completes once `limit` has passed since `last_head` without a new request head. While a
/// request is being answered (`None`: an Engine.IO poll is held until the server has
/// something to send), the connection is not idle and the time does not run.
async fn head_deadline(net: &NetRef, last_head: &Cell<Option<Duration>>, limit: Duration) {
    loop {
        let now = net.now();
        match last_head.get() {
            Some(idle_since) if now >= idle_since.saturating_add(limit) => return,
            Some(idle_since) => net.sleep_until(idle_since.saturating_add(limit)).await,
            None => net.sleep_until(now.saturating_add(limit)).await,
        }
    }
}
