//! One connection's HTTP/1.1, served by hyper with upgrades, and the answer to each request:
//! on an Engine.IO path ([`engineio::PATHS`]), what [`engineio`] answers; elsewhere the
//! victim's script, a refusal, or a 101 whose upgraded connection runs an [`App`]; on a
//! streaming path without an upgrade ([`streaming::handles`]), what [`streaming`] answers.

use std::cell::Cell;
use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::LocalBoxFuture;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::HeaderValue;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::upgrade::Upgraded;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::app::{self, App};
use super::handshake::{Refusal, header_text, refusal, subprotocol};
use crate::endpoints::census::{self, Census};
use crate::endpoints::engineio::{self, EngineIo};
use crate::endpoints::killable::Reset;
use crate::endpoints::{answer, body, deflate, fields, smuggle, streaming};
use crate::engine::{Held, NetRef, scratch};
use crate::scenario::{CONNECT_AUTHORITY, CONNECT_PATH_FIELD};
use crate::verdict::transcript::Transcript;
use crate::ws_config;

/// What stream ids are made for, beside Engine.IO's sessions ([`EngineIo::id`]).
const STREAM_IDS: u64 = 0x7374_7265_616d;

/// How long a request's body has to arrive, on the engine's clock: nginx's
/// `client_body_timeout` default.
const BODY_TIMEOUT: Duration = Duration::from_secs(60);

/// The most hyper reads first from a connection: its read buffer's first size (hyper 1's
/// `INIT_BUFFER_SIZE`).
const FIRST_READ: usize = 8192;

/// Serves one connection's requests. `last_head`, when there is a header timeout, is `None`
/// while a request is being answered (an Engine.IO poll may be held for a while) and the time
/// its answer was ready otherwise.
///
/// With `read_first`, hyper's connection is made only once the connection's first bytes (or
/// its end, or a failure) have come: until a request arrives the connection holds no more
/// than its stream, where hyper's would hold two buffers of 8 KiB, and a crowd's
/// connections, accepted together, all wait at once. The first read is the one hyper would
/// make (at most [`FIRST_READ`] bytes), and hyper finds what it read before anything else
/// ([`Primed`]).
pub(super) async fn serve_http<S>(
    net: NetRef,
    mut io: S,
    transcript: Transcript,
    conn: Conn,
    last_head: Option<Rc<Cell<Option<Duration>>>>,
    engineio: EngineIo,
    read_first: bool,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut first = None;
    if read_first {
        let mut bytes = Vec::new();
        let read = scratch::read_into(&mut io, FIRST_READ, &mut bytes).await;
        first = Some(read.map(|_| bytes));
    }
    let io = Primed {
        first,
        at: 0,
        io,
        hold: conn.hold.clone(),
        held: Vec::new(),
        out: None,
    };
    let (n, t) = (net.clone(), transcript.clone());
    let service = service_fn(move |req| {
        if let Some(last_head) = &last_head {
            last_head.set(None);
        }
        let (n, t, conn, last_head) = (n.clone(), t.clone(), conn.clone(), last_head.clone());
        let engineio = engineio.clone();
        async move {
            let response = respond(n.clone(), t, req, conn, engineio).await;
            if let Some(last_head) = &last_head {
                last_head.set(Some(n.now()));
            }
            Ok::<_, Infallible>(response)
        }
    });
    // Boxed: a connection waiting for its first bytes does not carry hyper's state.
    let result = Box::pin(
        http1::Builder::new()
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades(),
    )
    .await;
    if let Err(e) = result {
        transcript.log(net.now(), net.host(), format!("http connection error: {e}"));
    }
}

/// What the server keeps of one connection: its place among those held ([`Held`]), what
/// resets it (`reset=1`), and what holds its 101 for the first push ([`Hold`]).
#[derive(Clone)]
pub(super) struct Conn {
    held: Rc<Held>,
    reset: Reset,
    hold: Hold,
    /// The server's watched connections, which a `watch=ID` session joins.
    census: Census,
}

impl Conn {
    pub(super) fn new(held: Rc<Held>, reset: Reset, census: Census) -> Self {
        Self {
            held,
            reset,
            hold: Hold::default(),
            census,
        }
    }
}

/// Asks a connection's stream to hold what is written (the 101) until the first bytes after
/// it, and write them together ([`Primed`]): `first-push-with-101`.
#[derive(Clone, Default)]
struct Hold(Arc<AtomicBool>);

impl Hold {
    fn ask(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
    fn asked(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
    fn done(&self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

/// A stream whose first read may have been made: its next read gives that read's bytes (or
/// its end, or its failure), the reads after it go to the stream. While its [`Hold`] is
/// asked, what is written is kept, and flushes do nothing, until what is kept holds a
/// complete head and bytes after it: then it goes out in one write.
struct Primed<S> {
    first: Option<io::Result<Vec<u8>>>,
    /// How much of the first read's bytes has been given.
    at: usize,
    io: S,
    hold: Hold,
    /// What is kept while the hold is asked.
    held: Vec<u8>,
    /// How much of `held` has gone out, once it is going.
    out: Option<usize>,
}

impl<S: AsyncWrite + Unpin> Primed<S> {
    /// Writes what is held, if it is going out, to its end.
    fn poll_release(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some(at) = self.out {
            if at == self.held.len() {
                self.out = None;
                self.held = Vec::new();
                break;
            }
            match Pin::new(&mut self.io).poll_write(cx, &self.held[at..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => self.out = Some(at + n),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Whether what is held is a complete head with bytes after it.
    fn head_and_more(&self) -> bool {
        (self.held.windows(4).position(|w| w == b"\r\n\r\n"))
            .is_some_and(|end| end + 4 < self.held.len())
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Primed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match this.first.take() {
            None => Pin::new(&mut this.io).poll_read(cx, buf),
            Some(Err(e)) => Poll::Ready(Err(e)),
            Some(Ok(bytes)) => {
                let n = buf.remaining().min(bytes.len() - this.at);
                buf.put_slice(&bytes[this.at..this.at + n]);
                this.at += n;
                if this.at < bytes.len() {
                    this.first = Some(Ok(bytes));
                }
                Poll::Ready(Ok(()))
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Primed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.poll_release(cx))?;
        if this.hold.asked() {
            this.held.extend_from_slice(buf);
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.hold.asked() {
            if !this.head_and_more() {
                return Poll::Ready(Ok(()));
            }
            this.hold.done();
            this.out = Some(0);
        }
        ready!(this.poll_release(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.hold.asked() {
            this.hold.done();
            this.out = Some(0);
        }
        ready!(this.poll_release(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
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

/// The answer to `req`, logged with the request; an upgraded connection's session holds
/// `held` until it ends.
async fn respond(
    net: NetRef,
    transcript: Transcript,
    req: Request<Incoming>,
    conn: Conn,
    engineio: EngineIo,
) -> Response<streaming::Body> {
    let held = conn.held.clone();
    let headers = req.headers();
    let line = format!(
        "request {} {} {:?}, Upgrade: {}, Connection: {}",
        req.method(),
        req.uri(),
        req.version(),
        header_text(headers, "upgrade"),
        header_text(headers, "connection"),
    );
    let path = req.uri().path();
    let response = if req.method() == hyper::Method::CONNECT
        && req.uri().authority().map(|a| a.as_str()) == Some(CONNECT_AUTHORITY)
    {
        connect_websocket(&net, &transcript, req, conn).map(BodyExt::boxed_unsync)
    } else if engineio::handles(path) {
        let cx = engineio::Cx {
            net: net.clone(),
            transcript: transcript.clone(),
            engine: engineio,
        };
        engine_io(cx, req, held).await.map(BodyExt::boxed_unsync)
    } else if streaming::handles(path) && !req.headers().contains_key("upgrade") {
        let host = net.host().to_string();
        let id = |n| engineio.id(&host, STREAM_IDS, n);
        let cx = streaming::server::Cx {
            net: &net,
            transcript: &transcript,
            streams: engineio.streams(),
            id: &id,
        };
        streaming::server::answer(&cx, req).await
    } else {
        let deadline = net.now().saturating_add(BODY_TIMEOUT);
        let read = tokio::select! {
            biased;
            r = read_body(req) => r,
            () = net.sleep_until(deadline) => Err(text_response(
                StatusCode::REQUEST_TIMEOUT,
                &format!("The request's body did not arrive within {} s.\n", BODY_TIMEOUT.as_secs()),
                &[("connection", "close")],
            )),
        };
        match read {
            Ok((req, body)) => {
                websocket(&net, &transcript, req, &body, conn).map(BodyExt::boxed_unsync)
            }
            Err(refused) => refused.map(BodyExt::boxed_unsync),
        }
    };
    transcript.log(
        net.now(),
        net.host(),
        format!("{line} -> {}", response.status()),
    );
    response
}

/// The answer to a request on an Engine.IO path: a polling request's, or, for a WebSocket
/// handshake that RFC 6455 and engine.io both accept, a 101 whose connection carries a session.
/// engine.io refuses a WebSocket handshake with 400 and the error's message alone.
async fn engine_io(
    cx: engineio::Cx,
    req: Request<Incoming>,
    held: Rc<Held>,
) -> Response<Full<Bytes>> {
    if !req.headers().contains_key("upgrade") {
        return engineio::polling(&cx, req).await;
    }
    if let Some(Refusal(status, body, extra)) = refusal(&req) {
        return text_response(status, body, extra);
    }
    let query = req.uri().query().unwrap_or_default();
    match engineio::websocket_plan(&cx, req.method(), query) {
        Err(refused) => text_response(
            StatusCode::BAD_REQUEST,
            &refused.message,
            &[("content-type", "text/html"), ("connection", "close")],
        ),
        Ok(plan) => {
            let config = engineio::websocket_config(cx.engine.options());
            let (net, transcript) = (cx.net.clone(), cx.transcript.clone());
            upgrade((&net, &transcript), req, held, move |upgraded| {
                async move {
                    let io = TokioIo::new(upgraded);
                    let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
                    engineio::run_websocket(cx, plan, ws).await;
                }
                .boxed_local()
            })
        }
    }
}

/// `req` with its body read ([`body`]): at most [`body::MAX_BYTES`], and a longer one, or a
/// body that breaks off, is answered with 413 or 400 instead. A request without a body
/// reads as an empty one.
async fn read_body(req: Request<Incoming>) -> Result<(Request<()>, Bytes), Response<Full<Bytes>>> {
    let declared = (req.headers().get("content-length"))
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > body::MAX_BYTES as u64) {
        return Err(text_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("A request body is at most {} bytes.\n", body::MAX_BYTES),
            &[("connection", "close")],
        ));
    }
    let (parts, incoming) = req.into_parts();
    let limited = http_body_util::Limited::new(incoming, body::MAX_BYTES);
    match limited.collect().await {
        Ok(collected) => Ok((Request::from_parts(parts, ()), collected.to_bytes())),
        Err(e) => Err(text_response(
            StatusCode::BAD_REQUEST,
            &format!("The request's body could not be read: {e}.\n"),
            &[("connection", "close")],
        )),
    }
}

/// The answer to a request elsewhere: the victim's script, a refusal, or a 101 whose upgraded
/// connection runs an [`App`], with what the query asks of it ([`answer`]): its fields, or a
/// refusal instead, or its first push in the same write (`hold`).
fn websocket(
    net: &NetRef,
    transcript: &Transcript,
    req: Request<()>,
    body: &[u8],
    conn: Conn,
) -> Response<Full<Bytes>> {
    if !req.headers().contains_key("upgrade")
        && req.method() == hyper::Method::GET
        && req.uri().path() == smuggle::VICTIM_PATH
    {
        return text_response(
            StatusCode::OK,
            smuggle::ORIGIN_BODY,
            &[
                ("content-type", "application/javascript"),
                ("cache-control", smuggle::ORIGIN_CACHE_CONTROL),
            ],
        );
    }
    if !req.headers().contains_key("upgrade")
        && req.method() == hyper::Method::GET
        && req.uri().path().ends_with(super::INSTANCE_PATH)
    {
        return text_response(StatusCode::OK, net.host(), &[("cache-control", "no-store")]);
    }
    if let Some(Refusal(status, body, extra)) = refusal(&req) {
        return text_response(status, body, extra);
    }
    let query = req.uri().query().unwrap_or_default();
    if let Some(body) = fields::not_as_sent(query, |name| header_text(req.headers(), name)) {
        return text_response(StatusCode::FORBIDDEN, &body, &[]);
    }
    if let Some(body) = body::not_as_sent(query, body) {
        return text_response(StatusCode::FORBIDDEN, &body, &[]);
    }
    if let Some(status) = answer::refusal(query).and_then(|s| StatusCode::from_u16(s).ok()) {
        return text_response(
            status,
            &answer::refusal_body(status.as_u16()),
            &[
                ("content-type", answer::REFUSAL_TYPE),
                ("retry-after", answer::RETRY_AFTER),
            ],
        );
    }
    if req.uri().path().ends_with(census::PATH) {
        return match census::request(query) {
            Ok((id, wait)) => {
                let (n, t, c) = (net.clone(), transcript.clone(), conn.census.clone());
                upgrade((net, transcript), req, conn.held, move |upgraded| {
                    async move {
                        let io = TokioIo::new(upgraded);
                        let ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
                        app::census(n, ws, t, &c, &id, wait).await;
                    }
                    .boxed_local()
                })
            }
            Err(e) => text_response(StatusCode::BAD_REQUEST, &format!("{e}\n"), &[]),
        };
    }
    let watched = census::watched(query).map(|id| conn.census.enter(id));
    let reply_fields = answer::reply_fields(query);
    let with_101 = answer::push_with_101(query);
    let app = App::from_uri(req.uri());
    if with_101 && matches!(app, App::Push { .. }) {
        conn.hold.ask();
    }
    let protocol = subprotocol(req.headers());
    // permessage-deflate, accepted when the query asks and the request offers it.
    let deflate = deflate::asked(query)
        && matches!(app, App::Echo(_))
        && deflate::offered(&header_text(req.headers(), "sec-websocket-extensions"));
    let (n, t, reset) = (net.clone(), transcript.clone(), conn.reset);
    let mut response = upgrade((net, transcript), req, conn.held, move |upgraded| {
        async move {
            let _watched = watched;
            if deflate {
                deflate::echo(TokioIo::new(upgraded), n, t).await;
                return;
            }
            if app == App::Attacker {
                // Boxed, as large as it is, so that every other connection's task is not.
                Box::pin(smuggle::attacker_endpoint(n, TokioIo::new(upgraded), t)).await;
                return;
            }
            let io = TokioIo::new(upgraded);
            let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(ws_config())).await;
            app.run(n, ws, t, &reset).await;
        }
        .boxed_local()
    });
    if deflate {
        response.headers_mut().insert(
            "sec-websocket-extensions",
            HeaderValue::from_static(deflate::ACCEPT),
        );
        transcript.log(net.now(), net.host(), "permessage-deflate accepted");
    }
    if let Some((value, offered)) = protocol {
        response
            .headers_mut()
            .insert("sec-websocket-protocol", value);
        transcript.log(net.now(), net.host(), offered);
    }
    for (name, value) in reply_fields {
        let name = hyper::header::HeaderName::from_bytes(name.as_bytes());
        if let (Ok(name), Ok(value)) = (name, HeaderValue::from_str(&value)) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

/// The answer to Huang et al.'s CONNECT-based handshake (`CONNECT websocket.invalid:443`,
/// its path in `Sec-WebSocket-Path`): 200 with `Sec-WebSocket-Accept`, and the app of that
/// path (`/echo` without one) on the connection hyper hands over.
fn connect_websocket(
    net: &NetRef,
    transcript: &Transcript,
    req: Request<Incoming>,
    conn: Conn,
) -> Response<Full<Bytes>> {
    let path = req
        .headers()
        .get(CONNECT_PATH_FIELD)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("/echo");
    let Ok(uri) = path.parse::<hyper::Uri>() else {
        return text_response(
            StatusCode::BAD_REQUEST,
            "Sec-WebSocket-Path is not a path.\n",
            &[],
        );
    };
    let app = App::from_uri(&uri);
    let (n, t, reset) = (net.clone(), transcript.clone(), conn.reset);
    let mut response = upgrade((net, transcript), req, conn.held, move |upgraded| {
        async move {
            let io = TokioIo::new(upgraded);
            let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(ws_config())).await;
            app.run(n, ws, t, &reset).await;
        }
        .boxed_local()
    });
    // A CONNECT is accepted with a 2xx and nothing of an upgrade (RFC 9110 §9.3.6).
    *response.status_mut() = StatusCode::OK;
    let h = response.headers_mut();
    h.remove("upgrade");
    h.remove("connection");
    response
}

/// The 101 accepting `req`'s opening handshake; once hyper has handed the connection over,
/// `then` runs on it, holding `held`.
fn upgrade<B>(
    (net, transcript): (&NetRef, &Transcript),
    mut req: Request<B>,
    held: Rc<Held>,
    then: impl FnOnce(Upgraded) -> LocalBoxFuture<'static, ()> + 'static,
) -> Response<Full<Bytes>> {
    let key = req
        .headers()
        .get("sec-websocket-key")
        .map(HeaderValue::as_bytes)
        .unwrap_or_default();
    let accept = derive_accept_key(key);
    let upgrade = hyper::upgrade::on(&mut req);
    let (n, t) = (net.clone(), transcript.clone());
    net.spawn(
        async move {
            let _held = held;
            match upgrade.await {
                Ok(upgraded) => then(upgraded).await,
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
}
