//! The WebSocket transport, the client's side: a WebSocket opened with the reference client's
//! handshake (the upgrade request written by hand, the 101 checked as RFC 6455 §4.1 lists), a
//! session opened on one (its first message the open packet), the probe of a polling
//! session's upgrade, and packets as messages.

use std::sync::{Arc, Mutex};

use futures_util::future::LocalBoxFuture;
use futures_util::{FutureExt, SinkExt, StreamExt};
use gauntlet_proxies::http::base64;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::Cx;
use crate::endpoints::client::handshake::{Ws, open as open_websocket};
use crate::endpoints::connect::{Fail, Phase, describe_io, fail, ms};
use crate::endpoints::engineio::packet::{Frame, Handshake, Packet};
use crate::verdict::outcome::Outcome;

/// A WebSocket to `target`, with a key from the seed.
async fn connect(cx: &Cx, target: &str) -> Result<Ws, Fail> {
    let mut key = [0u8; 16];
    cx.next_rng().fill(&mut key);
    let phase = Phase::new(cx.net.now());
    let last = Arc::new(Mutex::new(Vec::new()));
    open_websocket(
        &cx.net,
        &cx.plan,
        target,
        &base64(&key),
        &cx.t,
        &phase,
        last,
    )
    .await
}

/// Opens a session on a WebSocket: the handshake, then the open packet as its first message;
/// gives the handshake and the WebSocket.
pub(super) async fn open(cx: &Cx) -> Result<(Handshake, Box<Ws>), Fail> {
    let target = cx.target("websocket", None);
    cx.log(format!("engine.io handshake: websocket GET {target}"));
    let mut ws = connect(cx, &target).await?;
    let first = next_message(cx, &mut ws, "before the open packet").await?;
    let handshake = packet(first)
        .and_then(|p| Handshake::from_packet(&p).ok())
        .ok_or_else(|| {
            fail(
                Outcome::Corrupted,
                format!(
                    "the websocket's first message is not an open packet, at {}",
                    ms(cx.net.now())
                ),
            )
        })?;
    cx.log(format!(
        "engine.io {} opened over websocket (ping every {} ms, timeout {} ms)",
        handshake.sid, handshake.ping_interval, handshake.ping_timeout
    ));
    Ok((handshake, Box::new(ws)))
}

/// The probe of session `sid`'s upgrade: a WebSocket with its `sid`, `2probe` sent, `3probe`
/// awaited (within the options' probe deadline, if any). Gives the WebSocket once answered.
pub(super) fn probe(cx: &Cx, sid: &str) -> LocalBoxFuture<'static, Result<Box<Ws>, Fail>> {
    let (cx, target) = (cx.clone(), cx.target("websocket", Some(sid)));
    async move {
        let started = cx.net.now();
        let probing = async {
            cx.log(format!("engine.io probe: websocket GET {target}"));
            let mut ws = connect(&cx, &target).await?;
            ws.send(Message::text("2probe"))
                .await
                .map_err(|e| gone(&cx, "sending 2probe", &e))?;
            match next_message(&cx, &mut ws, "before 3probe").await? {
                Message::Text(t) if t.as_str() == "3probe" => {
                    cx.log("engine.io probe answered: 3probe");
                    Ok(Box::new(ws))
                }
                other => Err(fail(
                    Outcome::Corrupted,
                    format!(
                        "the probe was answered with a {}-byte message other than 3probe, at {}",
                        other.len(),
                        ms(cx.net.now())
                    ),
                )),
            }
        };
        match cx.options.probe_timeout {
            None => probing.await,
            Some(limit) => {
                tokio::select! {
                    biased;
                    r = probing => r,
                    () = cx.net.sleep_until(started.saturating_add(limit)) => Err(fail(
                        Outcome::HandshakeTimeout,
                        format!("no 3probe within {}, at {}", ms(limit), ms(cx.net.now())),
                    )),
                }
            }
        }
    }
    .boxed_local()
}

/// The next message on `ws` other than a ping or a pong, awaited `before` something (for the
/// detail of a failure): a Close or the end is `dropped`.
async fn next_message(cx: &Cx, ws: &mut Ws, before: &str) -> Result<Message, Fail> {
    let closed = |how: String| {
        fail(
            Outcome::Dropped,
            format!("{how} {before}, at {}", ms(cx.net.now())),
        )
    };
    loop {
        match ws.next().await {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            Some(Ok(Message::Close(frame))) => {
                let code = frame.map_or(1005, |f| u16::from(f.code));
                return Err(closed(format!(
                    "the server closed the websocket with {code}"
                )));
            }
            Some(Ok(m)) => return Ok(m),
            Some(Err(e)) => return Err(gone(cx, before, &e)),
            None => return Err(closed("the websocket closed".into())),
        }
    }
}

/// The packet a WebSocket message carries, if it is one.
pub(super) fn packet(message: Message) -> Option<Packet> {
    match message {
        Message::Text(text) => Packet::from_frame(Frame::Text(text.as_str().to_string())).ok(),
        Message::Binary(bytes) => Some(Packet::Binary(bytes.to_vec())),
        _ => None,
    }
}

/// The message carrying `packet`.
pub(super) fn message(packet: &Packet) -> Message {
    match packet.to_frame() {
        Frame::Text(text) => Message::text(text),
        Frame::Binary(bytes) => Message::binary(bytes),
    }
}

/// Sends `packets` on `ws`, each one message.
pub(super) async fn send_all(ws: &mut Ws, packets: &[Packet]) -> Result<(), WsError> {
    for p in packets {
        ws.feed(message(p)).await?;
    }
    ws.flush().await
}

/// A WebSocket that broke (`e`) while the client was doing `what`.
pub(super) fn gone(cx: &Cx, what: &str, e: &WsError) -> Fail {
    let how = match e {
        WsError::Io(io) => describe_io(io),
        other => other.to_string(),
    };
    fail(
        Outcome::Dropped,
        format!(
            "the websocket broke {what} ({how}), at {}",
            ms(cx.net.now())
        ),
    )
}
