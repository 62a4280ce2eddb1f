//! The reference server's side of HTTP streaming: the streams open now ([`Streams`]), and the
//! answer to each request on a streaming path (`answer`): a GET opens a stream (a held `200`
//! whose body is events), a POST puts a message on one, a DELETE ends one.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::FutureExt;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::header::HeaderValue;
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::mpsc;

use super::{Query, encode, push_text};
use crate::engine::NetRef;
use crate::scenario::MAX_PAYLOAD_BYTES;
use crate::verdict::transcript::Transcript;

/// The body of every answer the reference server gives: whole ([`Full`]), or a stream's
/// events as they come.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// The most streams open at once: `gauntlet serve`'s connection limit (Debian's nginx
/// `worker_connections`, 768), as for Engine.IO sessions, since each stream holds a connection.
/// A GET beyond them is answered `503`.
pub const MAX_STREAMS: usize = 768;

/// How many events wait for a client that does not read its stream before whoever sends the
/// next one waits too (a POST is answered only once its echo is queued).
const QUEUED_EVENTS: usize = 64;

/// What goes into a stream: an event's bytes, or its end.
#[derive(Debug)]
enum Out {
    Event(Bytes),
    End,
}

/// One server's open streams, by id, shared by its connections and the worker threads of
/// `gauntlet serve` (clones share them): a POST may come on another connection, or another
/// worker, than its stream.
#[derive(Debug, Clone, Default)]
pub struct Streams(Arc<Mutex<Table>>);

#[derive(Debug, Default)]
struct Table {
    /// Stream ids made so far.
    made: u64,
    open: BTreeMap<String, mpsc::Sender<Out>>,
}

impl Streams {
    fn table(&self) -> MutexGuard<'_, Table> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many streams are open.
    pub fn open_streams(&self) -> usize {
        self.table().open.len()
    }

    /// A new stream's id (from `id`, given the count of ids made) and where its events go, if
    /// there is room for it.
    fn open(&self, id: impl Fn(u64) -> String) -> Option<(String, mpsc::Receiver<Out>)> {
        let mut table = self.table();
        if table.open.len() >= MAX_STREAMS {
            return None;
        }
        let (tx, rx) = mpsc::channel(QUEUED_EVENTS);
        loop {
            let sid = id(table.made);
            table.made += 1;
            if !table.open.contains_key(&sid) {
                table.open.insert(sid.clone(), tx);
                return Some((sid, rx));
            }
        }
    }

    fn sender(&self, sid: &str) -> Option<mpsc::Sender<Out>> {
        self.table().open.get(sid).cloned()
    }

    fn remove(&self, sid: &str) -> Option<mpsc::Sender<Out>> {
        self.table().open.remove(sid)
    }
}

/// A stream's body: its events as they are queued, until its end; dropped (its connection
/// closed, or the end sent), the stream is forgotten.
struct EventBody {
    rx: mpsc::Receiver<Out>,
    ended: bool,
    streams: Streams,
    sid: String,
}

impl hyper::body::Body for EventBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(Out::Event(bytes))) => Poll::Ready(Some(Ok(Frame::data(bytes)))),
            Poll::Ready(Some(Out::End) | None) => {
                self.ended = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }
}

impl Drop for EventBody {
    fn drop(&mut self) {
        self.streams.remove(&self.sid);
    }
}

/// Where a request is answered: the worker's network and transcript, the server's streams,
/// and how it makes a stream's id.
pub(crate) struct Cx<'a> {
    pub(crate) net: &'a NetRef,
    pub(crate) transcript: &'a Transcript,
    pub(crate) streams: &'a Streams,
    /// A stream id from the count of ids made.
    pub(crate) id: &'a dyn Fn(u64) -> String,
}

impl Cx<'_> {
    fn log(&self, what: impl Into<String>) {
        self.transcript.log(self.net.now(), self.net.host(), what);
    }
}

/// The answer to a request on a streaming path.
pub(crate) async fn answer(cx: &Cx<'_>, req: Request<Incoming>) -> Response<Body> {
    let query = Query::parse(req.uri().query().unwrap_or_default());
    match (req.method().clone(), query.sid.clone()) {
        (Method::GET, None) => open(cx, &query),
        (Method::POST, Some(sid)) => post(cx, &sid, req).await,
        (Method::DELETE, Some(sid)) => close(cx, &sid).await,
        (Method::GET | Method::POST | Method::DELETE, _) => refusal(
            StatusCode::BAD_REQUEST,
            r#"{"code":3,"message":"Bad request"}"#,
        ),
        _ => {
            let mut r = whole(StatusCode::METHOD_NOT_ALLOWED, "text/plain", String::new());
            r.headers_mut()
                .insert("allow", HeaderValue::from_static("GET, POST, DELETE"));
            r
        }
    }
}

/// A GET: a stream opened, its id the first event; with `app=push`, its pushes on schedule.
fn open(cx: &Cx<'_>, query: &Query) -> Response<Body> {
    let Some((sid, rx)) = cx.streams.open(cx.id) else {
        cx.log(format!(
            "stream refused: {MAX_STREAMS} streams open, the maximum"
        ));
        return whole(StatusCode::SERVICE_UNAVAILABLE, "text/plain", String::new());
    };
    let tx = cx.streams.sender(&sid);
    let app = match &query.push {
        Some((which, interval, size)) => {
            format!(
                "push {} messages of {size} bytes every {} ms",
                which.len(),
                interval.as_millis()
            )
        }
        None => "echo".to_string(),
    };
    cx.log(format!("stream {sid} opened ({app})"));
    if let (Some(tx), Some((which, interval, size))) = (tx.clone(), query.push.clone()) {
        let net = cx.net.clone();
        cx.net
            .spawn(push(net, tx, which, interval, size).boxed_local());
    }
    if let Some(tx) = tx {
        // Room for the first of the channel's events: it was just made.
        let _ = tx.try_send(Out::Event(Bytes::from(encode::open(&sid))));
    }
    let body = EventBody {
        rx,
        ended: false,
        streams: cx.streams.clone(),
        sid,
    };
    let mut response = Response::new(body.boxed_unsync());
    let h = response.headers_mut();
    h.insert(
        "content-type",
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert("cache-control", HeaderValue::from_static("no-cache"));
    response
}

/// Pushes `which` of `size` bytes, `interval` apart from now, until the stream is gone.
async fn push(
    net: NetRef,
    tx: mpsc::Sender<Out>,
    which: std::ops::Range<u32>,
    interval: Duration,
    size: usize,
) {
    let start = net.now();
    let first = which.start;
    for i in which {
        net.sleep_until(start.saturating_add(interval.saturating_mul(i - first)))
            .await;
        let text = push_text(i, net.now(), size);
        let event = encode::message(text.as_bytes(), false);
        if tx.send(Out::Event(Bytes::from(event))).await.is_err() {
            return;
        }
    }
}

/// A POST: its body, one message (binary with `Content-Type: application/octet-stream`, text
/// otherwise), echoed on stream `sid`; answered `204` once the echo is queued.
async fn post(cx: &Cx<'_>, sid: &str, req: Request<Incoming>) -> Response<Body> {
    let Some(tx) = cx.streams.sender(sid) else {
        return unknown(cx, sid, "POST");
    };
    let binary = req
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"application/octet-stream"));
    let body = match Limited::new(req.into_body(), MAX_PAYLOAD_BYTES)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            cx.log(format!(
                "stream {sid}: a message over {MAX_PAYLOAD_BYTES} bytes refused"
            ));
            return whole(StatusCode::PAYLOAD_TOO_LARGE, "text/plain", String::new());
        }
        Err(e) => {
            cx.log(format!("stream {sid}: a POST's body did not arrive: {e}"));
            return refusal(
                StatusCode::BAD_REQUEST,
                r#"{"code":3,"message":"Bad request"}"#,
            );
        }
    };
    if !binary && std::str::from_utf8(&body).is_err() {
        cx.log(format!(
            "stream {sid}: a text message that is not UTF-8 refused"
        ));
        return refusal(
            StatusCode::BAD_REQUEST,
            r#"{"code":3,"message":"Bad request"}"#,
        );
    }
    let event = encode::message(&body, binary);
    if tx.send(Out::Event(Bytes::from(event))).await.is_err() {
        return unknown(cx, sid, "POST");
    }
    no_content()
}

/// A DELETE: the `close` event, then the end of stream `sid`'s body.
async fn close(cx: &Cx<'_>, sid: &str) -> Response<Body> {
    let Some(tx) = cx.streams.remove(sid) else {
        return unknown(cx, sid, "DELETE");
    };
    let closing = tx.send(Out::Event(Bytes::from(encode::close()))).await;
    if closing.is_err() || tx.send(Out::End).await.is_err() {
        return unknown(cx, sid, "DELETE");
    }
    cx.log(format!("stream {sid} closed by the client"));
    no_content()
}

/// A request naming a stream that is not open: engine.io's answer to an unknown session.
fn unknown(cx: &Cx<'_>, sid: &str, method: &str) -> Response<Body> {
    cx.log(format!("{method} for stream {sid}, which is not open"));
    refusal(
        StatusCode::BAD_REQUEST,
        r#"{"code":1,"message":"Session ID unknown"}"#,
    )
}

fn refusal(status: StatusCode, json: &str) -> Response<Body> {
    whole(status, "application/json", json.to_string())
}

fn no_content() -> Response<Body> {
    whole(StatusCode::NO_CONTENT, "text/plain", String::new())
}

/// A whole answer.
pub fn whole(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed_unsync());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if status != StatusCode::NO_CONTENT {
        headers.insert("content-type", HeaderValue::from_static(content_type));
    }
    headers.insert("cache-control", HeaderValue::from_static("no-store"));
    response
}
