//! HTTP long-polling, the client's side: the handshake GET, and the GETs and POSTs of an open
//! session as futures the session drives side by side (a held GET does not stop a POST), each
//! on a connection of its own.

use futures_util::FutureExt;
use futures_util::future::LocalBoxFuture;

use super::Cx;
use super::http::{Reply, TEXT_PLAIN, Unanswered, exchange_kept};
use crate::endpoints::connect::{Fail, fail, ms};
use crate::endpoints::engineio::packet::{
    DecodeError, Handshake, Packet, decode_payload, encode_payload,
};
use crate::verdict::outcome::Outcome;

/// A polling request under way: its answer, or why none came.
pub(super) type Pending = LocalBoxFuture<'static, Result<Reply, Unanswered>>;

/// Opens a session by polling: the handshake GET, answered with the open packet (and whatever
/// the server queued after it): the handshake and those packets.
pub(super) async fn open(cx: &Cx) -> Result<(Handshake, Vec<Packet>), Fail> {
    let target = cx.target("polling", None);
    cx.log(format!("engine.io handshake: GET {target}"));
    let refused = |what: String| {
        fail(
            Outcome::HandshakeRejected,
            format!("{what} at {}", ms(cx.net.now())),
        )
    };
    let reply = match exchange_kept(cx, "GET", &target, (&[], TEXT_PLAIN)).await {
        Ok(reply) => reply,
        Err(Unanswered::Connect(f)) => return Err(f),
        Err(Unanswered::Broken(why)) => {
            return Err(refused(format!("no HTTP response to the handshake: {why}")));
        }
    };
    if reply.status != 200 {
        return Err(refused(format!(
            "the handshake was answered {}",
            reply.describe()
        )));
    }
    let mut packets = decode_payload(&reply.body)
        .map_err(|e| refused(format!("the handshake's answer is not a payload ({e})")))?
        .into_iter();
    let handshake = packets
        .next()
        .map_or(Err(DecodeError::Empty), |open| {
            Handshake::from_packet(&open)
        })
        .map_err(|e| {
            refused(format!(
                "the handshake's answer is not an open packet ({e})"
            ))
        })?;
    cx.log(format!(
        "engine.io {} opened over polling (ping every {} ms, timeout {} ms, upgrades: {})",
        handshake.sid,
        handshake.ping_interval,
        handshake.ping_timeout,
        if handshake.upgrades.is_empty() {
            "none".to_string()
        } else {
            handshake.upgrades.join(", ")
        }
    ));
    Ok((handshake, packets.collect()))
}

/// A GET for session `sid`, held by the server until it has packets.
pub(super) fn poll(cx: &Cx, sid: &str) -> Pending {
    let (cx, target) = (cx.clone(), cx.target("polling", Some(sid)));
    async move {
        cx.log(format!("engine.io poll: GET {target}"));
        exchange_kept(&cx, "GET", &target, (&[], TEXT_PLAIN)).await
    }
    .boxed_local()
}

/// A POST of `packets` for session `sid`.
pub(super) fn post(cx: &Cx, sid: &str, packets: &[Packet]) -> Pending {
    let (cx, target) = (cx.clone(), cx.target("polling", Some(sid)));
    // The client's packets are its own messages and control packets, never holding 0x1e.
    let body = encode_payload(packets).unwrap_or_default();
    let what: Vec<String> = packets.iter().map(Packet::to_string).collect();
    async move {
        cx.log(format!(
            "engine.io send by POST {target}: {}",
            what.join(", ")
        ));
        exchange_kept(&cx, "POST", &target, (body.as_bytes(), TEXT_PLAIN)).await
    }
    .boxed_local()
}

/// What an answer to a session's GET carries: its packets, or what went wrong (`what`: "a
/// poll", "a POST").
pub(super) fn packets(reply: Reply, what: &str) -> Result<Vec<Packet>, Answer> {
    if reply.status != 200 {
        return Err(Answer::Refused(format!(
            "{what} was answered {}",
            reply.describe()
        )));
    }
    decode_payload(&reply.body).map_err(|e| {
        Answer::NotPayload(format!(
            "{what} was answered with bytes that are not a payload ({e})"
        ))
    })
}

/// What is wrong with a session's answer.
#[derive(Debug)]
pub(super) enum Answer {
    /// Not a 200: the server (or something on the way) refused the request.
    Refused(String),
    /// A 200 whose body is not an Engine.IO payload.
    NotPayload(String),
}

/// Whether a POST's answer is the server's `ok`; if not, what it was.
pub(super) fn posted(reply: &Reply) -> Result<(), Answer> {
    if reply.status == 200 {
        Ok(())
    } else {
        Err(Answer::Refused(format!(
            "a POST was answered {}",
            reply.describe()
        )))
    }
}
