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
//! - `/attacker`: the cache-poisoning demonstration's accomplice ([`smuggle::attacker_endpoint`]):
//!   frames read by hand, masked or not; a frame carrying an HTTP request is answered with a
//!   raw HTTP response holding the attacker's script.
//!
//! A request that is not a valid opening handshake (RFC 6455 §4.2.1) gets a real answer
//! (`refusal`): 426 with `Upgrade: websocket` for a request without `Upgrade` (a plain GET),
//! 405 for a method other than GET, 426 with `Sec-WebSocket-Version: 13` for a missing or other
//! version, and 400 for the rest (a key that is not base64 of 16 bytes, a key or version sent
//! twice, HTTP/1.0, no `Connection: upgrade`, not exactly one `Host`). One plain GET is
//! served: `/script.js`, the victim origin's script in the cache-poisoning demonstration (200,
//! `Cache-Control: max-age=3600`), whatever the `Host`.
//!
//! A failed accept (out of file descriptors, say) is logged and retried after
//! [`ACCEPT_BACKOFF`]: the server keeps serving. Facing real clients (`gauntlet serve`), the
//! server also has [`Limits`]: a time for each request head to arrive, and a maximum number of
//! connections held at once. Both run on the engine's clock ([`crate::engine::Net::now`]), so
//! a simulated run stays deterministic; the simulated runs' server has none.

use std::cell::{Cell, RefCell};
use std::convert::Infallible;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderMap, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};

use crate::endpoints::{fragment, smuggle, violation};
use crate::engine::ACCEPT_BACKOFF;
use crate::engine::{Held, Intake, Listener, NetRef, Software, Stream};
use crate::scenario;
use crate::verdict::transcript::Transcript;
use crate::ws_config;

/// What a server facing real clients refuses to hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How long a connection has to deliver a complete request head, from its accept (a TLS
    /// handshake included) or from its previous request; it is closed when the time is up.
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
/// holds is reset and it stops listening, as a crashed backend does. No [`Limits`].
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
    software_sharing(transcript, tls, crash, limits.header_timeout, intake)
}

/// The server with `header_timeout` ([`Limits::header_timeout`]), holding its connections in
/// `intake`, which copies of the server on other threads share (`gauntlet serve`'s workers),
/// with the connection limit (see [`Intake::with_limit`]).
pub fn software_sharing(
    transcript: Transcript,
    tls: Option<Arc<rustls::ServerConfig>>,
    crash: Option<Duration>,
    header_timeout: Option<Duration>,
    intake: Intake,
) -> Software {
    std::rc::Rc::new(move |net: NetRef| {
        let transcript = transcript.clone();
        let tls = tls.clone();
        let intake = intake.clone();
        async move {
            let server = Server {
                net: net.clone(),
                transcript: transcript.clone(),
                crash: Crash::new(crash),
                header_timeout,
                intake,
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
}

/// A connection's stream, which a crash can take away and reset.
type Slot = Arc<Mutex<Option<Stream>>>;

/// When the server crashes, and the connections a crash resets.
#[derive(Clone)]
struct Crash {
    at: Option<Duration>,
    conns: Rc<RefCell<Vec<Slot>>>,
}

impl Crash {
    fn new(at: Option<Duration>) -> Self {
        Self {
            at,
            conns: Rc::default(),
        }
    }

    /// Keeps `stream` where a crash can reach it.
    fn register(&self, stream: Stream) -> Killable {
        let slot: Slot = Arc::new(Mutex::new(Some(stream)));
        if self.at.is_some() {
            self.conns.borrow_mut().push(slot.clone());
        }
        Killable { slot }
    }

    /// Resets every registered connection still open; returns how many.
    fn reset_all(&self) -> usize {
        let mut count = 0;
        for slot in self.conns.borrow_mut().drain(..) {
            if let Some(stream) = slot.lock().ok().and_then(|mut s| s.take()) {
                stream.reset();
                count += 1;
            }
        }
        count
    }

    async fn wait(&self, net: &NetRef) {
        match self.at {
            Some(at) => net.sleep_until(at).await,
            None => std::future::pending().await,
        }
    }
}

/// A stream that fails every operation once a crash has taken it.
struct Killable {
    slot: Slot,
}

impl Killable {
    fn with<R>(
        &self,
        f: impl FnOnce(Pin<&mut Stream>) -> Poll<std::io::Result<R>>,
    ) -> Poll<std::io::Result<R>> {
        let Ok(mut guard) = self.slot.lock() else {
            return Poll::Ready(Err(std::io::Error::other("connection state poisoned")));
        };
        match guard.as_mut() {
            Some(stream) => f(Pin::new(stream)),
            None => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the server crashed",
            ))),
        }
    }
}

impl AsyncRead for Killable {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.with(|s| s.poll_read(cx, buf))
    }
}

impl AsyncWrite for Killable {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.with(|s| s.poll_write(cx, buf))
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.with(|s| s.poll_flush(cx))
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.with(|s| s.poll_shutdown(cx))
    }
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
                    let last_head = Rc::new(Cell::new(self.net.now()));
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
    /// there is a header timeout, is set to the time of each request head.
    async fn connection(
        self,
        stream: Killable,
        tls: Option<Arc<rustls::ServerConfig>>,
        held: Rc<Held>,
        last_head: Option<Rc<Cell<Duration>>>,
    ) {
        let (n, t) = (self.net.clone(), self.transcript.clone());
        match tls {
            None => serve_http(n, stream, t, held, last_head).await,
            Some(config) => match tokio_rustls::TlsAcceptor::from(config).accept(stream).await {
                Ok(tls_stream) => serve_http(n, tls_stream, t, held, last_head).await,
                Err(e) => self.log(format!("tls handshake failed: {e}")),
            },
        }
    }
}

/// Completes once `limit` has passed since `last_head` without a new request head.
async fn head_deadline(net: &NetRef, last_head: &Cell<Duration>, limit: Duration) {
    loop {
        let deadline = last_head.get() + limit;
        if net.now() >= deadline {
            return;
        }
        net.sleep_until(deadline).await;
    }
}

async fn serve_http<S>(
    net: NetRef,
    io: S,
    transcript: Transcript,
    held: Rc<Held>,
    last_head: Option<Rc<Cell<Duration>>>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (n, t) = (net.clone(), transcript.clone());
    let service = service_fn(move |req| {
        if let Some(last_head) = &last_head {
            last_head.set(n.now());
        }
        let (n, t, held) = (n.clone(), t.clone(), held.clone());
        async move { Ok::<_, Infallible>(respond(n, t, req, held)) }
    });
    let result = http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades()
        .await;
    if let Err(e) = result {
        transcript.log(net.now(), net.host(), format!("http connection error: {e}"));
    }
}

fn has_token(headers: &HeaderMap, name: &str, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .unwrap_or_default()
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    })
}

fn text_response(
    status: StatusCode,
    body: &str,
    extra: &[(&'static str, &str)],
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("text/plain"));
    for (name, value) in extra {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(*name, v);
        }
    }
    response
}

/// The answer to `req`; an upgraded connection's session holds `held` until it ends.
fn respond(
    net: NetRef,
    transcript: Transcript,
    mut req: Request<Incoming>,
    held: Rc<Held>,
) -> Response<Full<Bytes>> {
    let headers = req.headers();
    let line = format!(
        "request {} {} {:?}, Upgrade: {}, Connection: {}",
        req.method(),
        req.uri(),
        req.version(),
        header_text(headers, "upgrade"),
        header_text(headers, "connection"),
    );
    let response = if !headers.contains_key("upgrade")
        && req.method() == hyper::Method::GET
        && req.uri().path() == smuggle::VICTIM_PATH
    {
        text_response(
            StatusCode::OK,
            smuggle::ORIGIN_BODY,
            &[
                ("content-type", "application/javascript"),
                ("cache-control", smuggle::ORIGIN_CACHE_CONTROL),
            ],
        )
    } else if let Some(Refusal(status, body, extra)) = refusal(&req) {
        text_response(status, body, extra)
    } else {
        let key = headers
            .get("sec-websocket-key")
            .map(HeaderValue::as_bytes)
            .unwrap_or_default();
        let accept = derive_accept_key(key);
        let app = App::from_uri(req.uri());
        let upgrade = hyper::upgrade::on(&mut req);
        let (n, t) = (net.clone(), transcript.clone());
        net.spawn(
            async move {
                let _held = held;
                match upgrade.await {
                    Ok(upgraded) if app == App::Attacker => {
                        smuggle::attacker_endpoint(n, TokioIo::new(upgraded), t).await;
                    }
                    Ok(upgraded) => {
                        let ws = WebSocketStream::from_raw_socket(
                            TokioIo::new(upgraded),
                            Role::Server,
                            Some(ws_config()),
                        )
                        .await;
                        app.run(n, ws, t).await;
                    }
                    Err(e) => t.log(n.now(), n.host(), format!("upgrade failed: {e}")),
                }
            }
            .boxed_local(),
        );
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let h = response.headers_mut();
        h.insert("upgrade", HeaderValue::from_static("websocket"));
        h.insert("connection", HeaderValue::from_static("Upgrade"));
        if let Ok(v) = HeaderValue::from_str(&accept) {
            h.insert("sec-websocket-accept", v);
        }
        response
    };
    transcript.log(
        net.now(),
        net.host(),
        format!("{line} -> {}", response.status()),
    );
    response
}

/// A request the server does not upgrade: the status, the body's line, extra fields.
struct Refusal(
    StatusCode,
    &'static str,
    &'static [(&'static str, &'static str)],
);

/// Why `req` is not an opening handshake the server accepts (RFC 6455 §4.2.1), or `None`.
///
/// A request without `Upgrade` is no handshake at all but a plain request for a resource
/// that needs one: 426 naming `websocket` (RFC 9110 §15.5.22), what a proxy that strips
/// hop-by-hop fields delivers. A method other than GET is 405 with `Allow: GET` (RFC 9110
/// §15.5.6). A missing or unsupported `Sec-WebSocket-Version` is 426 with the one version
/// the server speaks (§4.4). Every other departure from §4.2.1 is 400: an `Upgrade` that does
/// not name `websocket`, HTTP/1.0, no `upgrade` in `Connection`, not exactly one `Host`
/// (RFC 9112 §3.2), a repeated `Sec-WebSocket-Version`, and a `Sec-WebSocket-Key` that is
/// missing, repeated or not base64 of 16 bytes.
fn refusal(req: &Request<Incoming>) -> Option<Refusal> {
    let headers = req.headers();
    let count = |name: &str| headers.get_all(name).iter().count();
    let refuse = |status, body, extra| Some(Refusal(status, body, extra));
    if count("upgrade") == 0 {
        return refuse(
            StatusCode::UPGRADE_REQUIRED,
            "This endpoint speaks WebSocket: send an Upgrade request.\n",
            &[("upgrade", "websocket"), ("connection", "Upgrade")],
        );
    }
    if !has_token(headers, "upgrade", "websocket") {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Upgrade must name websocket.\n",
            &[],
        );
    }
    if req.version() < hyper::Version::HTTP_11 {
        return refuse(
            StatusCode::BAD_REQUEST,
            "A WebSocket handshake needs HTTP/1.1.\n",
            &[],
        );
    }
    if req.method() != hyper::Method::GET {
        return refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            "A WebSocket upgrade must be a GET.\n",
            &[("allow", "GET")],
        );
    }
    if !has_token(headers, "connection", "upgrade") {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Upgrade: websocket needs Connection: upgrade.\n",
            &[],
        );
    }
    if count("host") != 1 {
        return refuse(
            StatusCode::BAD_REQUEST,
            "A request needs exactly one Host.\n",
            &[],
        );
    }
    if count("sec-websocket-version") > 1 {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Sec-WebSocket-Version more than once.\n",
            &[],
        );
    }
    if header_text(headers, "sec-websocket-version") != "13" {
        return refuse(
            StatusCode::UPGRADE_REQUIRED,
            "Unsupported Sec-WebSocket-Version.\n",
            &[("sec-websocket-version", "13")],
        );
    }
    let key = headers.get("sec-websocket-key").map(HeaderValue::as_bytes);
    if count("sec-websocket-key") != 1 || !key.is_some_and(key_is_valid) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Missing or malformed Sec-WebSocket-Key.\n",
            &[],
        );
    }
    None
}

/// Whether `key` is base64 (RFC 4648 §4, padded) of exactly 16 bytes, as RFC 6455 §4.2.1
/// item 5 requires: 22 characters of the alphabet, then `==`. The 4 bits the last character
/// carries beyond the 16 bytes are not checked (RFC 4648 §3.5 lets a decoder ignore them).
fn key_is_valid(key: &[u8]) -> bool {
    let alphabet = |b: &u8| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/';
    key.len() == 24 && key.ends_with(b"==") && key[..22].iter().all(alphabet)
}

fn header_text(headers: &HeaderMap, name: &str) -> String {
    let values: Vec<&str> = headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap_or("<non-ASCII>"))
        .collect();
    if values.is_empty() {
        "-".to_string()
    } else {
        values.join(", ")
    }
}

/// What the server does on an upgraded connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum App {
    Echo(Options),
    Attacker,
    Push {
        interval: Duration,
        size: usize,
        options: Options,
    },
}

/// The query parameters `/echo` and `/push` share.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Options {
    /// `count=N`: how many messages (push: to send; echo: after which `close` applies).
    count: Option<u32>,
    /// `fragment=N`: every message goes out in frames of at most N payload bytes.
    fragment: Option<usize>,
    /// `close=CODE`: the server closes first, with CODE, once `count` messages are sent.
    close: Option<u16>,
}

impl Options {
    /// The code to close with once `sent` messages have gone out, if it is time.
    fn close_after(&self, sent: u32) -> Option<u16> {
        self.close.filter(|_| self.count == Some(sent))
    }
}

impl App {
    fn from_uri(uri: &hyper::Uri) -> App {
        if uri.path() == smuggle::ATTACKER_PATH {
            return App::Attacker;
        }
        let mut options = Options::default();
        let (mut interval, mut size) = (100u64, 32usize);
        for pair in uri.query().unwrap_or_default().split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "count" => options.count = v.parse().ok().or(options.count),
                "interval" => interval = v.parse().unwrap_or(interval),
                "size" => size = v.parse().unwrap_or(size),
                "fragment" => options.fragment = v.parse().ok().filter(|n| *n > 0),
                "close" => {
                    options.close = v.parse().ok().filter(|c| scenario::close_code_valid(*c));
                }
                _ => {}
            }
        }
        if uri.path() != "/push" {
            return App::Echo(options);
        }
        options.count.get_or_insert(1);
        App::Push {
            interval: Duration::from_millis(interval),
            size: size.clamp(1, scenario::MAX_PAYLOAD_BYTES),
            options,
        }
    }

    fn options(&self) -> Options {
        match *self {
            App::Echo(options) | App::Push { options, .. } => options,
            App::Attacker => Options::default(),
        }
    }

    async fn run<S>(self, net: NetRef, mut ws: WebSocketStream<S>, t: Transcript)
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let options = self.options();
        let mut sent = 0u32;
        if let App::Push { interval, size, .. } = self {
            let start = net.now();
            for i in 0..options.count.unwrap_or(1) {
                net.sleep_until(start.saturating_add(interval.saturating_mul(i)))
                    .await;
                let stamp = format!("push {i} at {}", net.now().as_micros());
                let mut text = stamp.clone();
                text.extend(std::iter::repeat_n('.', size.saturating_sub(text.len())));
                let done = |frames: &str| format!("pushed #{i} ({size} bytes{frames})");
                let message = Message::text(text);
                if !send(
                    &mut ws,
                    message,
                    options,
                    (&net, &t),
                    done,
                    &format!("push {i}"),
                )
                .await
                {
                    return;
                }
                sent += 1;
            }
        }
        let mut closed_first = false;
        loop {
            if let Some(code) = options.close_after(sent).filter(|_| !closed_first) {
                closed_first = true;
                let frame = CloseFrame {
                    code: CloseCode::from(code),
                    reason: "the server closes".into(),
                };
                if let Err(e) = ws.close(Some(frame)).await {
                    t.log(net.now(), net.host(), format!("close {code} failed: {e}"));
                    return;
                }
                t.log(net.now(), net.host(), format!("close {code} sent"));
            }
            let Some(message) = ws.next().await else {
                break;
            };
            match message {
                Ok(Message::Close(frame)) => {
                    let code = frame.map_or("none".to_string(), |f| u16::from(f.code).to_string());
                    let what = if closed_first { "" } else { ", replying" };
                    t.log(
                        net.now(),
                        net.host(),
                        format!("close {code} received{what}"),
                    );
                }
                Ok(m @ (Message::Text(_) | Message::Binary(_))) => {
                    let len = m.len();
                    if matches!(self, App::Echo(_)) {
                        let done = |frames: &str| format!("echoed {len} bytes{frames}");
                        if !send(&mut ws, m, options, (&net, &t), done, "echo").await {
                            return;
                        }
                        sent += 1;
                    } else {
                        t.log(
                            net.now(),
                            net.host(),
                            format!("ignored a {len}-byte message"),
                        );
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    let Some(code) = violation::close_code(&e) else {
                        t.log(net.now(), net.host(), format!("websocket error: {e}"));
                        return;
                    };
                    match violation::fail(&mut ws, code).await {
                        Ok(()) => t.log(
                            net.now(),
                            net.host(),
                            format!("websocket error: {e}: close {code} sent, closing"),
                        ),
                        Err(sending) => t.log(
                            net.now(),
                            net.host(),
                            format!("websocket error: {e}: close {code} failed: {sending}"),
                        ),
                    }
                    return;
                }
            }
        }
        // End the transport politely (TLS close_notify, then FIN).
        let _ = tokio::io::AsyncWriteExt::shutdown(ws.get_mut()).await;
        t.log(net.now(), net.host(), "websocket closed");
    }
}

/// Sends `message`, fragmented if `options` say so, and logs the line `done` makes of
/// ` in N frames` (fragmented) or nothing, or `{name} failed` with the error. Returns whether
/// the message went out.
async fn send<S>(
    ws: &mut WebSocketStream<S>,
    message: Message,
    options: Options,
    (net, t): (&NetRef, &Transcript),
    done: impl FnOnce(&str) -> String,
    name: &str,
) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match fragment::send(ws, message, options.fragment).await {
        Ok(frames) => {
            let in_frames = match options.fragment {
                Some(_) => format!(" in {frames} frames"),
                None => String::new(),
            };
            t.log(net.now(), net.host(), done(&in_frames));
            true
        }
        Err(e) => {
            t.log(net.now(), net.host(), format!("{name} failed: {e}"));
            false
        }
    }
}
