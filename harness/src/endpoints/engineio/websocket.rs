//! The WebSocket transport: a session opened on a WebSocket (its open packet the first
//! message), or a polling session's upgrade (`2probe` answered `3probe`, then `5`, within
//! [`Options::upgrade_timeout`](super::Options::upgrade_timeout)), then every packet of the
//! session as one message each way until it ends.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::packet::{DecodeError, Frame, Packet, PacketType};
use super::request::{Target, WebSocketPlan};
use super::session::{Outgoing, Session, Taken, Transport, Upgrade};
use super::{Cx, Options, tasks};
use crate::endpoints::violation;

/// How long the server waits for the client's Close after sending its own, as `ws` (the
/// WebSocket server under engine.io) does: its `closeTimeout`, 30 s.
const CLOSE_WAIT: Duration = Duration::from_secs(30);

/// The WebSocket settings of an Engine.IO session: messages of at most `maxPayload` bytes,
/// as engine.io sets `ws`'s `maxPayload`.
pub(crate) fn config(options: &Options) -> WebSocketConfig {
    crate::ws_config()
        .max_frame_size(Some(options.max_payload))
        .max_message_size(Some(options.max_payload))
}

/// Runs what `plan` says on an upgraded connection, until the session or the WebSocket ends.
pub(crate) async fn run<S>(cx: Cx, plan: WebSocketPlan, mut ws: WebSocketStream<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match plan.0 {
        Target::Handshake(_, app) => match tasks::open(&cx, Transport::WebSocket, app) {
            Ok(session) => carry(&cx, &session, &mut ws).await,
            Err(refused) => {
                cx.log(format!("engine.io refused a session: {}", refused.message));
                close(&cx, &mut ws).await;
            }
        },
        Target::Session(session) => {
            let attached = session.update(|s| {
                let free = s.closed.is_none()
                    && s.transport == Transport::Polling
                    && s.upgrade == Upgrade::None;
                if free {
                    s.upgrade = Upgrade::Attached;
                }
                free
            });
            if !attached {
                // engine.io closes a WebSocket for a session that has (or is getting) one.
                cx.log(format!(
                    "engine.io {}: closed a websocket for a session that has one or is getting one",
                    session.sid
                ));
                close(&cx, &mut ws).await;
            } else {
                match probe(&cx, &session, &mut ws).await {
                    Ok(()) => carry(&cx, &session, &mut ws).await,
                    Err(why) => {
                        session.update(|s| s.upgrade = Upgrade::None);
                        cx.log(format!("engine.io {}: no upgrade: {why}", session.sid));
                        close(&cx, &mut ws).await;
                    }
                }
            }
        }
    }
    let _ = tokio::io::AsyncWriteExt::shutdown(ws.get_mut()).await;
}

/// What came from the client's side of the WebSocket.
enum Incoming {
    /// A message: a packet, or bytes that are not one.
    Packet(Result<Packet, DecodeError>),
    /// A ping, a pong: nothing for the session.
    Other,
    /// The WebSocket has ended, for this reason.
    Ended(String),
}

/// Reads `next` (what `ws.next()` gave); fails a WebSocket that broke the protocol with the
/// Close code that says how ([`violation`]).
async fn incoming<S>(
    ws: &mut WebSocketStream<S>,
    next: Option<Result<Message, WsError>>,
) -> Incoming
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match next {
        Some(Ok(Message::Text(text))) => {
            Incoming::Packet(Packet::from_frame(Frame::Text(text.as_str().to_string())))
        }
        Some(Ok(Message::Binary(bytes))) => Incoming::Packet(Ok(Packet::Binary(bytes.to_vec()))),
        Some(Ok(Message::Close(frame))) => {
            let code = frame.map_or("no code".to_string(), |f| u16::from(f.code).to_string());
            Incoming::Ended(format!("the client closed the websocket ({code})"))
        }
        Some(Ok(_)) => Incoming::Other,
        None => Incoming::Ended("the websocket ended".into()),
        Some(Err(e)) => match violation::close_code(&e) {
            Some(code) => {
                let _ = violation::fail(ws, code).await;
                Incoming::Ended(format!("websocket error: {e}: close {code} sent"))
            }
            None => Incoming::Ended(format!("websocket error: {e}")),
        },
    }
}

/// Why a polling session's upgrade did not happen; the text goes to the transcript.
#[derive(Debug, thiserror::Error)]
enum NoUpgrade {
    /// The session closed meanwhile.
    #[error("the session closed")]
    Closed,
    /// No `5` within the upgrade timeout.
    #[error("no upgrade packet within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// A message that is not a packet.
    #[error("parse error: {0}")]
    Parse(DecodeError),
    /// `3probe` could not be sent.
    #[error("sending 3probe: {0}")]
    Send(WsError),
    /// The WebSocket ended: how.
    #[error("{0}")]
    Ended(String),
    /// A packet other than `2probe` or `5`.
    #[error("a {0} packet before the upgrade")]
    Unexpected(Packet),
}

/// The upgrade of a polling session: `2probe` is answered `3probe` (from then on a held GET
/// gets a noop, and another every 100 ms: `tasks::upgrade_checks`), and `5` moves the session
/// onto the WebSocket. Anything else, the session
/// ending or the upgrade timeout leaves the session on polling.
async fn probe<S>(
    cx: &Cx,
    session: &Arc<Session>,
    ws: &mut WebSocketStream<S>,
) -> Result<(), NoUpgrade>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let timeout = cx.options().upgrade_timeout;
    let deadline = cx.net.now().saturating_add(timeout);
    loop {
        let next = tokio::select! {
            biased;
            () = session.wait_until(|s| s.closed.is_some().then_some(())) => {
                return Err(NoUpgrade::Closed);
            }
            () = cx.net.sleep_until(deadline) => {
                return Err(NoUpgrade::Timeout(timeout));
            }
            () = cx.net.sleep_until(deadline) => return Err(NoUpgrade::Timeout(timeout)),
            next = ws.next() => next,
        };
        let packet = match incoming(ws, next).await {
            Incoming::Packet(packet) => packet.map_err(NoUpgrade::Parse)?,
            Incoming::Other => continue,
            Incoming::Ended(why) => return Err(NoUpgrade::Ended(why)),
        };
        if packet.is(PacketType::Ping, "probe") {
            let pong = Packet::Text(PacketType::Pong, "probe".into());
            ws.send(message(pong)).await.map_err(NoUpgrade::Send)?;
            session.update(|s| s.upgrade = Upgrade::Probed);
            cx.log(format!(
                "engine.io {}: probe answered on a websocket",
                session.sid
            ));
            tasks::upgrade_checks(cx, session.clone());
        } else if packet.is(PacketType::Upgrade, "") {
            let moved = session.update(|s| {
                let open = s.closed.is_none();
                if open {
                    s.transport = Transport::WebSocket;
                    s.upgrade = Upgrade::Done;
                }
                open
            });
            if !moved {
                return Err(NoUpgrade::Closed);
            }
            cx.log(format!("engine.io {} upgraded to websocket", session.sid));
            return Ok(());
        } else {
            return Err(NoUpgrade::Unexpected(packet));
        }
    }
}

/// Carries the session on the WebSocket: its packets out as they are queued, the client's in,
/// until either side ends it.
async fn carry<S>(cx: &Cx, session: &Session, ws: &mut WebSocketStream<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        let next = tokio::select! {
            biased;
            out = session.wait_until(|s| s.take_websocket()) => match out {
                Outgoing::Packets(packets) => {
                    if let Err(e) = send_all(ws, packets).await {
                        session.close(cx, &format!("transport error: {e}"), PacketType::Close);
                        return;
                    }
                    continue;
                }
                Outgoing::Closed => {
                    close(cx, ws).await;
                    return;
                }
            },
            next = ws.next() => next,
        };
        match incoming(ws, next).await {
            // A broken packet or a close packet closes the session; the next turn closes the
            // WebSocket.
            Incoming::Packet(packet) => {
                let _: Taken = session.take(cx, packet, PacketType::Close);
            }
            Incoming::Other => {}
            Incoming::Ended(why) => {
                session.close(cx, &format!("transport close: {why}"), PacketType::Close);
                // Let tungstenite answer a Close and end: read until the end, within limits.
                drain(cx, ws).await;
                return;
            }
        }
    }
}

async fn send_all<S>(ws: &mut WebSocketStream<S>, packets: Vec<Packet>) -> Result<(), WsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    for packet in packets {
        ws.feed(message(packet)).await?;
    }
    ws.flush().await
}

fn message(packet: Packet) -> Message {
    match packet.to_frame() {
        Frame::Text(text) => Message::text(text),
        Frame::Binary(bytes) => Message::binary(bytes),
    }
}

/// Closes the WebSocket as engine.io's transport does (a Close without a code), then waits
/// for the client's.
async fn close<S>(cx: &Cx, ws: &mut WebSocketStream<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if ws.close(None).await.is_ok() {
        drain(cx, ws).await;
    }
}

/// Reads what is left until the WebSocket ends, for at most [`CLOSE_WAIT`].
async fn drain<S>(cx: &Cx, ws: &mut WebSocketStream<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let deadline = cx.net.now().saturating_add(CLOSE_WAIT);
    tokio::select! {
        biased;
        () = async { while let Some(Ok(_)) = ws.next().await {} } => {}
        () = cx.net.sleep_until(deadline) => {}
    }
}
