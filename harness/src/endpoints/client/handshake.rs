//! Opening the WebSocket: the transport (`connect.rs`), then the upgrade request written by
//! hand with a seeded key and the server's options in its query, and the answer read and
//! checked as RFC 6455 §4.1 lists before tungstenite takes the stream over. [`open`] does it
//! for any target and key: the Engine.IO client opens its WebSockets with it too.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use gauntlet_proxies::http::{self, Framing, base64};
use gauntlet_proxies::rng::Rng;
use gauntlet_proxies::ws_frames::{encode, opcode};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::{WHO, census, payload};
use crate::endpoints::accept::invalid_101;
use crate::endpoints::connect::{
    AsyncIo, Fail, Phase, Plan, describe_io, fail, ms, origin, proxy_target, to_proxy,
    transport_keeping,
};
use crate::endpoints::killable::Reset;
use crate::endpoints::{answer, body, smuggle, subprotocol};
use crate::engine::{NetRef, scratch};
use crate::scenario::{CONNECT_AUTHORITY, CONNECT_PATH_FIELD, Handshake, Workload, WorkloadKind};
use crate::verdict::outcome::Outcome;
use crate::verdict::transcript::Transcript;
use crate::ws_config;

/// The most the client reads at a time of the answer to its upgrade request.
const HEAD_CHUNK: usize = 4096;

/// How long the server reads nothing after the last echo when the client half-closes after
/// its Close (`half-close`): the Close and the FIN reach the proxy first, so that a proxy that
/// ends the tunnel on the FIN has done so before the server's Close reply exists.
const HALF_CLOSE_PAUSE: std::time::Duration = std::time::Duration::from_millis(200);

/// The most of a refusal's body the client reads (`refuse`): 16 times the body sent.
const MAX_REFUSAL_BODY: usize = 16 * answer::REFUSAL_BYTES;

/// Keeps the bytes of the most recent read, so a failure can say what arrived.
pub(crate) struct Tap<S> {
    inner: S,
    last: Arc<Mutex<Vec<u8>>>,
    /// What resets the connection under it, when the workload does (`client-reset`).
    pub(super) reset: Option<Reset>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tap<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            if let Ok(mut last) = self.last.lock() {
                last.clear();
                last.extend_from_slice(&buf.filled()[before..]);
            }
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tap<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        b: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, b)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A WebSocket the client opened.
pub(crate) type Ws = WebSocketStream<Tap<Box<dyn AsyncIo>>>;

/// Opens the workload's WebSocket: its path, with the key the seed gives.
pub(super) async fn handshake(
    net: &NetRef,
    plan: &Plan,
    t: &Transcript,
    phase: &Phase,
    last: Arc<Mutex<Vec<u8>>>,
) -> Result<Ws, Fail> {
    let watch = (plan.workload.client_reset).then(|| census::watch_id(plan.seed, plan.scheme));
    let path = format!(
        "{}{}",
        plan.path_prefix,
        request_path(&plan.workload, watch.as_deref())
    );
    let mut key = [0u8; 16];
    Rng::derive(plan.seed, 0x6b6579).fill(&mut key);
    open(net, plan, &path, &base64(&key), t, phase, last).await
}

/// Opens a WebSocket to `path` (with its query) on the plan's server, sending `key`: the
/// transport, the upgrade request, the answer checked. A refusal is `handshake-rejected` (the
/// status and the first line of the body in the detail), a 101 the client must refuse
/// `handshake-invalid`; the transport's failures keep their own outcomes.
pub(crate) async fn open(
    net: &NetRef,
    plan: &Plan,
    path: &str,
    key: &str,
    t: &Transcript,
    phase: &Phase,
    last: Arc<Mutex<Vec<u8>>>,
) -> Result<Ws, Fail> {
    let host = plan.host.as_str();
    // An absolute-form request through an explicit proxy goes to the proxy itself, as a
    // forward proxy's `GET http://…` with `Upgrade`; anything else over the plan's transport.
    let mut reset = None;
    let io: Box<dyn AsyncIo> = match (&plan.proxy, plan.request.absolute) {
        (Some(proxy), true) => Box::new(to_proxy(net, plan, t, proxy, &mut reset).await?),
        _ => transport_keeping(net, plan, t, phase, &mut reset).await?,
    };
    phase.set("upgrade", net.now());
    let offer = if plan.subprotocols.is_empty() {
        String::new()
    } else {
        format!(
            "Sec-WebSocket-Protocol: {}\r\n",
            plan.subprotocols.join(", ")
        )
    };
    let connect = plan.handshake == Handshake::Connect;
    let request = if connect {
        format!(
            "CONNECT {CONNECT_AUTHORITY} HTTP/1.1\r\nHost: {CONNECT_AUTHORITY}\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{CONNECT_PATH_FIELD}: {path}\r\n{offer}\r\n"
        )
    } else {
        let head = plan
            .browser
            .websocket(path, host, &origin(plan), key, &offer);
        // An absolute target through a real proxy names the real address, which it can reach.
        let authority = match &plan.proxy {
            Some(proxy) => proxy_target(net, proxy, host, 80),
            None => host.to_string(),
        };
        plan.request.apply(&head, &authority)
    };
    let offering = if plan.subprotocols.is_empty() {
        String::new()
    } else {
        format!(", offering {}", plan.subprotocols.join(", "))
    };
    let asked = if connect {
        format!("CONNECT {CONNECT_AUTHORITY} for {path}")
    } else if plan.request.is_usual() {
        format!("GET {path}")
    } else {
        // A shaped request: its request line and the fields it changed, as sent.
        let changed: Vec<&str> = request
            .lines()
            .filter(|l| {
                let name = l.split_once(':').map_or("", |(n, _)| n);
                [
                    "upgrade",
                    "connection",
                    "content-length",
                    "sec-websocket-extensions",
                ]
                .iter()
                .any(|n| name.eq_ignore_ascii_case(n))
                    || plan
                        .request
                        .fields
                        .keys()
                        .any(|n| name.eq_ignore_ascii_case(n))
            })
            .collect();
        format!(
            "{} ({})",
            request.lines().next().unwrap_or_default(),
            changed.join(", ")
        )
    };
    t.log(net.now(), WHO, format!("upgrade request {asked}{offering}"));
    let mut tap = Tap {
        inner: io,
        last,
        reset,
    };
    let no_response = |what: String| {
        fail(
            Outcome::HandshakeRejected,
            format!("no HTTP response: {what} at {}", ms(net.now())),
        )
    };
    let mut request = request.into_bytes();
    if let Some(len) = plan.request.body.filter(|_| !connect) {
        request.extend(body::bytes(len));
    }
    if plan.request.first_message_with_request && !connect {
        request.extend(first_message(plan, net, t));
    }
    if let Err(e) = tap.write_all(&request).await {
        return Err(no_response(describe_io(&e)));
    }
    let mut buf = Vec::new();
    let (head, len) = loop {
        match http::parse_response(&buf, http::MAX_HEAD_BYTES) {
            http::Parsed::Complete(head, len) => break (head, len),
            http::Parsed::Invalid(reason) => return Err(no_response(reason)),
            http::Parsed::Partial => {
                match scratch::read_into(&mut tap, HEAD_CHUNK, &mut buf).await {
                    Ok(0) => return Err(no_response("connection closed".into())),
                    Ok(_) => {}
                    Err(e) => return Err(no_response(describe_io(&e))),
                }
            }
        }
    };
    let tail = buf.split_off(len);
    let status = head.status().unwrap_or_default();
    let reason = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    // A CONNECT is accepted by any 2xx (RFC 9110 §9.3.6), an upgrade by a 101.
    let accepted = if connect {
        (200..300).contains(&status)
    } else {
        status == 101
    };
    if !accepted {
        t.log(
            net.now(),
            WHO,
            format!("upgrade answered {status} {reason}"),
        );
        if let Some(want) = plan.request.refuse.filter(|_| !connect) {
            return Err(refused_as_sent(&mut tap, want, &head, tail, net).await);
        }
        // The body's first line says why (the reference server's 403 names a field); a body
        // framed by its length or chunks is read whole, one that runs to the close is not
        // waited for.
        let framed = matches!(
            head.framing(Some("GET")),
            Ok(Framing::Length(_) | Framing::Chunked(_))
        );
        let body = if framed {
            read_body(&mut tap, &head, tail).await.0
        } else {
            tail
        };
        let body = String::from_utf8_lossy(&body)
            .lines()
            .next()
            .unwrap_or("")
            .to_string();
        return Err(fail(
            Outcome::HandshakeRejected,
            format!(
                "HTTP {status} {reason} at {}{}",
                ms(net.now()),
                if body.is_empty() {
                    String::new()
                } else {
                    format!(": {body}")
                }
            ),
        ));
    }
    let invalid = if connect {
        invalid_connect_answer(&head, key)
    } else {
        invalid_101(&head, key, &plan.subprotocols, plan.request.deflate)
    };
    if let Some(what) = invalid {
        return Err(fail(
            Outcome::HandshakeInvalid,
            format!("{status} not valid: {what} at {}", ms(net.now())),
        ));
    }
    if let Some(what) = answer::reply_fields_differ(&plan.request.reply_fields, &head) {
        return Err(fail(
            Outcome::Corrupted,
            format!("the {status} arrived changed: {what}, at {}", ms(net.now())),
        ));
    }
    let chosen = head
        .fields
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(subprotocol::FIELD))
        .map(|(_, v)| format!(", subprotocol {}", String::from_utf8_lossy(v).trim()))
        .unwrap_or_default();
    t.log(net.now(), WHO, format!("{status} {reason}{chosen}"));
    Ok(WebSocketStream::from_partially_read(tap, tail, Role::Client, Some(ws_config())).await)
}

/// The frame of the workload's first message, masked, to go in the same write as the
/// request head (`first-message-with-request`), logged as sent.
fn first_message(plan: &Plan, net: &NetRef, t: &Transcript) -> Vec<u8> {
    let w = &plan.workload;
    let i = w.range().start;
    let message = payload::message(plan.seed, i, w.payload_bytes, w.binary);
    let code = if w.binary {
        opcode::BINARY
    } else {
        opcode::TEXT
    };
    let mut mask = [0u8; 4];
    Rng::derive(plan.seed, 0x6669_7273).fill(&mut mask);
    let frame = encode(code, &message.into_data(), Some(mask));
    t.log(
        net.now(),
        WHO,
        format!(
            "sent #{i} ({} bytes) in the same write as the request head",
            w.payload_bytes
        ),
    );
    frame
}

/// The failure a refusal asked for with `refuse=want` ends in, once its body (`tail`, then
/// what follows, as its framing says; at most [`MAX_REFUSAL_BODY`] bytes) has been read:
/// `handshake-rejected` when the status, fields and body came back as the server sent them,
/// `corrupted` saying what differs otherwise.
async fn refused_as_sent<S: AsyncRead + Unpin>(
    io: &mut S,
    want: u16,
    head: &http::Head,
    tail: Vec<u8>,
    net: &NetRef,
) -> Fail {
    let (body, read_error) = read_body(io, head, tail).await;
    let status = head.status().unwrap_or_default();
    match read_error.or_else(|| answer::refusal_differs(want, head, &body)) {
        Some(what) => fail(
            Outcome::Corrupted,
            format!("the refusal arrived changed: {what}, at {}", ms(net.now())),
        ),
        None => fail(
            Outcome::HandshakeRejected,
            format!(
                "HTTP {status} at {}, relayed intact (Retry-After, Content-Type and {} bytes of body as the server sent them)",
                ms(net.now()),
                body.len()
            ),
        ),
    }
}

/// A refusal's body (`head`'s, `tail` already read after it), as its framing says: a length,
/// chunks, or to the connection's end; at most [`MAX_REFUSAL_BODY`] bytes. With what went
/// wrong reading it, if anything.
async fn read_body<S: AsyncRead + Unpin>(
    io: &mut S,
    head: &http::Head,
    mut tail: Vec<u8>,
) -> (Vec<u8>, Option<String>) {
    let mut body = Vec::new();
    let framing = head.framing(Some("GET"));
    let mut chunked = match &framing {
        Ok(Framing::Chunked(scanner)) => Some(scanner.clone()),
        _ => None,
    };
    let length = match framing {
        Ok(Framing::Length(n)) => Some(n as usize),
        Ok(Framing::None) => Some(0),
        _ => None,
    };
    let read_error = loop {
        if let Some(scanner) = chunked.as_mut() {
            match scanner.decode(&tail, &mut body) {
                Ok((_, true)) => break None,
                Ok((used, false)) => {
                    tail.drain(..used);
                }
                Err(e) => break Some(format!("a chunked body that is not: {e}")),
            }
        } else {
            body.append(&mut tail);
            if length.is_some_and(|n| body.len() >= n) {
                body.truncate(length.unwrap_or_default());
                break None;
            }
        }
        if body.len() + tail.len() > MAX_REFUSAL_BODY {
            break Some(format!("a body past {MAX_REFUSAL_BODY} bytes"));
        }
        match scratch::read_into(io, HEAD_CHUNK, &mut tail).await {
            Ok(0) if length.is_none() && chunked.is_none() => break None,
            Ok(0) => break Some(format!("the body cut at {} bytes", body.len())),
            Ok(_) => {}
            Err(e) => {
                break Some(format!(
                    "the body cut at {} bytes ({})",
                    body.len(),
                    describe_io(&e)
                ));
            }
        }
    };
    (body, read_error)
}

/// What is wrong with a 2xx answering a CONNECT handshake: its `Sec-WebSocket-Accept` must be
/// the key's, as a 101's must (RFC 6455 §4.1); `None` when it is right.
fn invalid_connect_answer(head: &http::Head, key: &str) -> Option<String> {
    let accept = head
        .fields
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-accept"))
        .map(|(_, v)| String::from_utf8_lossy(v).trim().to_string());
    let want = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    match accept {
        None => Some("no Sec-WebSocket-Accept".into()),
        Some(a) if a != want => Some(format!("Sec-WebSocket-Accept {a}, not {want}")),
        Some(_) => None,
    }
}

/// The path the upgrade asks for: `/echo`, `/push` with what to push, or the attacker's
/// endpoint; the server's own options (`fragment`, `close`) in the query, and the ID the
/// server counts the connection under (`watch`), if any.
fn request_path(w: &Workload, watch: Option<&str>) -> String {
    let mut query = Vec::new();
    match w.kind {
        WorkloadKind::Smuggle => return smuggle::ATTACKER_PATH.to_string(),
        WorkloadKind::Echo if w.server_close_code.is_some() || w.server_reset || w.half_close => {
            query.push(format!("count={}", w.messages));
        }
        WorkloadKind::Echo => {}
        WorkloadKind::Push => {
            query.extend([
                format!("count={}", w.messages),
                format!("interval={}", w.interval.as_millis()),
                format!("size={}", w.payload_bytes),
            ]);
            if w.from > 0 {
                query.push(format!("from={}", w.from));
            }
        }
    }
    if let Some(n) = w.server_fragment_bytes {
        query.push(format!("fragment={n}"));
    }
    if let Some(code) = w.server_close_code {
        query.push(format!("close={code}"));
    }
    if w.server_reset {
        query.push("reset=1".to_string());
    }
    if w.server_half_close {
        query.push("half-close=1".to_string());
    }
    if w.half_close {
        query.push(format!("pause={}", HALF_CLOSE_PAUSE.as_millis()));
    }
    if let Some(id) = watch {
        query.push(format!("{}={id}", crate::endpoints::census::WATCH_PARAM));
    }
    let path = if w.kind == WorkloadKind::Push {
        "/push"
    } else {
        "/echo"
    };
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_path_carries_the_servers_options() {
        let mut w = Workload::new(WorkloadKind::Echo);
        assert_eq!(request_path(&w, None), "/echo");
        w.server_fragment_bytes = Some(10);
        w.server_close_code = Some(4002);
        assert_eq!(
            request_path(&w, Some("ab")),
            "/echo?count=5&fragment=10&close=4002&watch=ab"
        );
        let mut p = Workload::new(WorkloadKind::Push);
        p.server_close_code = Some(3000);
        assert_eq!(
            request_path(&p, None),
            "/push?count=5&interval=100&size=32&close=3000"
        );
    }
}
