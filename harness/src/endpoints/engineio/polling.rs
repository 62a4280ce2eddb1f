//! HTTP long-polling: the handshake GET, the GETs held until the server has packets, and the
//! POSTs that carry the client's, each answered as engine.io's `Polling` transport answers it.

use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::HeaderValue;
use hyper::{Method, Request, Response, StatusCode};

use super::packet::{ErrorCode, Packet, PacketType, encode_payload, payload_packets};
use super::request::{Query, Refused, Target, verify};
use super::session::{Session, State, Taken, Transport};
use super::{Cx, tasks};

/// The answer to an Engine.IO request that is not a WebSocket handshake.
pub(crate) async fn answer(cx: &Cx, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let query = req.uri().query().unwrap_or_default().to_string();
    let target = verify(&cx.engine, req.method(), &Query::parse(&query), false);
    match target {
        Err(refused) => refusal(&refused),
        Ok(Target::Handshake(transport, app)) => {
            // `verify` lets a handshake through without an upgrade only for polling.
            debug_assert_eq!(transport, Transport::Polling);
            match tasks::open(cx, Transport::Polling, app) {
                Ok(session) => {
                    let packets = session.update(|s| s.take_poll()).unwrap_or_default();
                    payload(cx, &session, &packets)
                }
                Err(refused) => refusal(&refused),
            }
        }
        Ok(Target::Session(session)) => match *req.method() {
            Method::GET => poll(cx, &session).await,
            Method::POST => post(cx, &session, req).await,
            _ => refusal(&Refused::from(ErrorCode::BadRequest)),
        },
    }
}

/// A GET for an open session: held until there is something to send. A second GET while one
/// is held breaks the protocol: engine.io closes the session (the held GET gets a close
/// packet) and answers the second 400.
async fn poll(cx: &Cx, session: &Session) -> Response<Full<Bytes>> {
    let Some(mut held) = Busy::start(cx, session, |s| &mut s.polling, "GET") else {
        return refusal(&Refused::from(ErrorCode::BadRequest));
    };
    let packets = session
        .wait_until(|s| {
            let packets = s.take_poll()?;
            s.polling = false;
            Some(packets)
        })
        .await;
    held.done = true;
    payload(cx, session, &packets)
}

/// A GET held or a POST being read, marked by `flag` in the session's state: if hyper drops
/// it before it is done (its connection closed), the flag is cleared and the session ends, as
/// engine.io ends it when a poll's or a POST's connection closes early.
struct Busy<'a> {
    cx: &'a Cx,
    session: &'a Session,
    flag: fn(&mut State) -> &mut bool,
    what: &'static str,
    done: bool,
}

impl<'a> Busy<'a> {
    /// Marks a `what` (GET or POST) under way; `None` for one while another is, which breaks
    /// the protocol: the session is closed.
    fn start(
        cx: &'a Cx,
        session: &'a Session,
        flag: fn(&mut State) -> &mut bool,
        what: &'static str,
    ) -> Option<Self> {
        if session.update(|s| std::mem::replace(flag(s), true)) {
            let reason = format!("transport error: a second {what} while one was under way");
            session.close(cx, &reason, PacketType::Close);
            return None;
        }
        Some(Self {
            cx,
            session,
            flag,
            what,
            done: false,
        })
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.session.update(|s| *(self.flag)(s) = false);
            let reason = format!(
                "transport close: a {}'s connection closed before it was done",
                self.what
            );
            self.session.close(self.cx, &reason, PacketType::Close);
        }
    }
}

/// A POST for an open session: its payload's packets, acted on in order, then `ok`.
async fn post(cx: &Cx, session: &Session, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let binary = req.headers().get("content-type").is_some_and(|v| {
        v.as_bytes()
            .eq_ignore_ascii_case(b"application/octet-stream")
    });
    if binary {
        // v4 carries binary data in base64 inside text payloads.
        return broken(cx, session, "transport error: a binary payload");
    }
    let Some(mut reading) = Busy::start(cx, session, |s| &mut s.posting, "POST") else {
        return refusal(&Refused::from(ErrorCode::BadRequest));
    };
    let limit = cx.options().max_payload;
    let body = tokio::select! {
        biased;
        () = session.wait_until(|s| s.closed.is_some().then_some(())) => None,
        body = Limited::new(req.into_body(), limit).collect() => Some(body),
    };
    session.update(|s| s.posting = false);
    reading.done = true;
    let body = match body {
        None => return refusal(&Refused::from(ErrorCode::SessionIdUnknown)),
        Some(Ok(body)) => body.to_bytes(),
        Some(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            cx.log(format!(
                "engine.io {}: a payload over {limit} bytes refused",
                session.sid
            ));
            return text(StatusCode::PAYLOAD_TOO_LARGE, "text/html", String::new());
        }
        Some(Err(e)) => {
            let reason = format!("transport close: the payload did not arrive: {e}");
            return broken(cx, session, &reason);
        }
    };
    for packet in payload_packets(&body) {
        // engine.io's polling transport ends a held GET with a noop when the client closes.
        match session.take(cx, packet, PacketType::Noop) {
            Taken::Open => {}
            Taken::ClosedByClient => break,
            Taken::Broken => return refusal(&Refused::from(ErrorCode::BadRequest)),
        }
    }
    // text/html, as engine.io answers, so that no browser offers to download it.
    text(StatusCode::OK, "text/html", "ok".into())
}

/// A 200 carrying `packets` as a payload.
fn payload(cx: &Cx, session: &Session, packets: &[Packet]) -> Response<Full<Bytes>> {
    match encode_payload(packets) {
        Ok(body) => text(StatusCode::OK, "text/plain; charset=UTF-8", body),
        Err(e) => broken(cx, session, &format!("transport error: {e}")),
    }
}

/// Closes the session, whose client broke the protocol, and answers 400 (code 3, Bad request).
fn broken(cx: &Cx, session: &Session, reason: &str) -> Response<Full<Bytes>> {
    session.close(cx, reason, PacketType::Close);
    refusal(&Refused::from(ErrorCode::BadRequest))
}

/// engine.io's answer to a polling request it refuses: 400 (403 for Forbidden) and JSON.
fn refusal(refused: &Refused) -> Response<Full<Bytes>> {
    let status = StatusCode::from_u16(refused.status()).unwrap_or(StatusCode::BAD_REQUEST);
    text(status, "application/json", refused.json())
}

/// An answer with `Cache-Control: no-store`, as engine.io 6.6 marks every polling answer (its
/// `cache-control: no-store`, seen from the pinned engine.io on a handshake GET), so that no
/// cache that honours it serves a poll.
fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static(content_type));
    headers.insert("cache-control", HeaderValue::from_static("no-store"));
    response
}
