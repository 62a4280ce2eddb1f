//! An open session, the client's side: the transport carrying it (polling, or a WebSocket),
//! the upgrade under way, the packets waiting to go out and those come in, and the heartbeat.
//!
//! One loop ([`Session::next`]) drives everything a session has under way at once, as
//! engine.io-client's callbacks do: the held GET (made again as soon as it is answered), the
//! POST of whatever is queued, the probe's WebSocket, the WebSocket carrying the session after
//! the upgrade, the ping deadline, and the caller's own deadline.

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::LocalBoxFuture;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::Cx;
use super::http::{Reply, Unanswered};
use super::polling::{self, Answer, Pending};
use super::websocket::{self, gone, send_all};
use crate::endpoints::client::handshake::Ws;
use crate::endpoints::connect::{Fail, fail, ms};
use crate::endpoints::engineio::packet::{Handshake, Packet, PacketType};
use crate::verdict::outcome::Outcome;

/// An open Engine.IO session.
pub(crate) struct Session {
    cx: Cx,
    handshake: Handshake,
    carrier: Carrier,
    probe: Probe,
    /// Packets for the server, waiting for a POST (or the WebSocket, after an upgrade).
    outbox: Vec<Packet>,
    /// Messages from the server the caller has not taken yet.
    inbox: VecDeque<Packet>,
    /// When the session is deemed dead if no ping comes first.
    ping_deadline: Duration,
    probes: Vec<ProbeEnd>,
}

/// What carries the session's packets.
enum Carrier {
    /// HTTP long-polling: the GET and the POST under way, if any.
    Polling {
        get: Option<Pending>,
        post: Option<Pending>,
    },
    /// A WebSocket: every packet one message.
    WebSocket(Box<Ws>),
}

/// Where the upgrade to a WebSocket stands.
enum Probe {
    /// None under way: not asked for, or over.
    Idle,
    /// The probe's WebSocket is opening or awaiting `3probe`, since `began`.
    Running {
        began: Duration,
        probe: LocalBoxFuture<'static, Result<Box<Ws>, Fail>>,
    },
    /// `3probe` came: polling pauses (no new GET or POST), then `5` goes on `ws`.
    Answered { began: Duration, ws: Box<Ws> },
}

/// How a probe ended: when it began, and whether the session moved onto its WebSocket (or
/// why not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProbeEnd {
    /// When the probe began.
    pub(crate) began: Duration,
    /// How it ended.
    pub(crate) result: Probed,
}

/// How a probe ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Probed {
    /// The session moved onto its WebSocket.
    Upgraded,
    /// It failed: the WebSocket's outcome, and what was seen.
    Failed(Fail),
    /// It was still under way when the session ended: where it stood.
    Unfinished(String),
}

/// What woke the session's loop.
enum Step {
    Polled(Result<Reply, Unanswered>),
    Posted(Result<Reply, Unanswered>),
    Frame(Option<Result<Message, WsError>>),
    Probed(Duration, Result<Box<Ws>, Fail>),
    PingTimeout,
}

impl Session {
    /// Opens a session by polling; with `upgrade`, its probe begins at once.
    pub(crate) async fn open_polling(cx: &Cx) -> Result<Session, Fail> {
        let (handshake, queued) = polling::open(cx).await?;
        Ok(Session::polling(cx.clone(), handshake, queued))
    }

    /// Opens a session on a WebSocket.
    pub(crate) async fn open_websocket(cx: &Cx) -> Result<Session, Fail> {
        let (handshake, ws) = websocket::open(cx).await?;
        Ok(Session::new(
            cx.clone(),
            handshake,
            Carrier::WebSocket(ws),
            Probe::Idle,
        ))
    }

    /// A session opened by polling, with what came after the open packet.
    fn polling(cx: Cx, handshake: Handshake, queued: Vec<Packet>) -> Session {
        let probe = if cx.options.upgrade && handshake.upgrades.iter().any(|u| u == "websocket") {
            Probe::Running {
                began: cx.net.now(),
                probe: websocket::probe(&cx, &handshake.sid),
            }
        } else {
            Probe::Idle
        };
        let carrier = Carrier::Polling {
            get: None,
            post: None,
        };
        let mut session = Session::new(cx, handshake, carrier, probe);
        session.inbox.extend(
            queued
                .into_iter()
                .filter(|p| p.kind() == PacketType::Message),
        );
        session
    }

    fn new(cx: Cx, handshake: Handshake, carrier: Carrier, probe: Probe) -> Session {
        let ping_deadline = cx.net.now().saturating_add(heartbeat(&handshake));
        Session {
            cx,
            handshake,
            carrier,
            probe,
            outbox: Vec::new(),
            inbox: VecDeque::new(),
            ping_deadline,
            probes: Vec::new(),
        }
    }

    /// The transport carrying the session now: `polling` or `websocket`.
    pub(crate) fn transport(&self) -> &'static str {
        match self.carrier {
            Carrier::Polling { .. } => "polling",
            Carrier::WebSocket(_) => "websocket",
        }
    }

    /// How each probe ended, in order; a probe still under way counts as unfinished now
    /// (engine.io-client would go on waiting).
    pub(crate) fn probes(&self) -> Vec<ProbeEnd> {
        let mut probes = self.probes.clone();
        let now = ms(self.cx.net.now());
        let pending = match &self.probe {
            Probe::Idle => None,
            Probe::Running { began, .. } => Some((*began, format!("no 3probe by {now}"))),
            Probe::Answered { began, .. } => Some((
                *began,
                format!("3probe came, but polling had not paused by {now}"),
            )),
        };
        if let Some((began, why)) = pending {
            probes.push(ProbeEnd {
                began,
                result: Probed::Unfinished(why),
            });
        }
        probes
    }

    /// Queues `packet` for the server: it goes by the next POST, or at once on a WebSocket.
    pub(crate) async fn send(&mut self, packet: Packet) -> Result<(), Fail> {
        self.outbox.push(packet);
        self.flush_websocket().await
    }

    /// The next message from the server, or `None` if `deadline` passes first. Everything else
    /// (pings, the upgrade, polls made again) happens meanwhile. A session lost while `idle`
    /// is `idle-closed`, else `dropped`.
    pub(crate) async fn next(
        &mut self,
        deadline: Duration,
        idle: bool,
    ) -> Result<Option<Packet>, Fail> {
        self.until(deadline).await.map_err(|f| match f.outcome {
            Outcome::Dropped if idle => {
                fail(Outcome::IdleClosed, format!("{} while idle", f.detail))
            }
            _ => f,
        })
    }

    async fn until(&mut self, deadline: Duration) -> Result<Option<Packet>, Fail> {
        loop {
            if let Some(packet) = self.inbox.pop_front() {
                return Ok(Some(packet));
            }
            self.upgrade_if_paused().await?;
            self.start_requests();
            let net = self.cx.net.clone();
            let ping = self.ping_deadline;
            let step = tokio::select! {
                biased;
                s = carrier_step(&mut self.carrier) => s,
                (began, r) = probe_step(&mut self.probe) => Step::Probed(began, r),
                () = net.sleep_until(ping) => Step::PingTimeout,
                () = net.sleep_until(deadline) => return Ok(None),
            };
            self.handle(step).await?;
        }
    }

    /// On polling, not paused: a GET if none is under way, a POST of the outbox if it holds
    /// packets and none is.
    fn start_requests(&mut self) {
        if matches!(self.probe, Probe::Answered { .. }) {
            return;
        }
        let Carrier::Polling { get, post } = &mut self.carrier else {
            return;
        };
        if get.is_none() {
            *get = Some(polling::poll(&self.cx, &self.handshake.sid));
        }
        if post.is_none() && !self.outbox.is_empty() {
            let packets = std::mem::take(&mut self.outbox);
            *post = Some(polling::post(&self.cx, &self.handshake.sid, &packets));
        }
    }

    /// Once the probe is answered and polling has paused (its GET and POST answered), sends
    /// `5` on the probe's WebSocket and moves the session there; what is queued follows.
    async fn upgrade_if_paused(&mut self) -> Result<(), Fail> {
        let paused = matches!(
            self.carrier,
            Carrier::Polling {
                get: None,
                post: None
            }
        );
        if !paused || !matches!(self.probe, Probe::Answered { .. }) {
            return Ok(());
        }
        let Probe::Answered { began, mut ws } = std::mem::replace(&mut self.probe, Probe::Idle)
        else {
            return Ok(());
        };
        if let Err(e) = send_all(&mut ws, &[Packet::bare(PacketType::Upgrade)]).await {
            let f = gone(&self.cx, "sending the upgrade packet", &e);
            self.cx
                .log(format!("engine.io upgrade failed: {}", f.detail));
            self.probes.push(ProbeEnd {
                began,
                result: Probed::Failed(f),
            });
            return Ok(());
        }
        self.cx.log(format!(
            "engine.io {} upgraded to websocket",
            self.handshake.sid
        ));
        self.carrier = Carrier::WebSocket(ws);
        self.probes.push(ProbeEnd {
            began,
            result: Probed::Upgraded,
        });
        self.flush_websocket().await
    }

    /// On a WebSocket, sends what is queued.
    async fn flush_websocket(&mut self) -> Result<(), Fail> {
        let Carrier::WebSocket(ws) = &mut self.carrier else {
            return Ok(());
        };
        if self.outbox.is_empty() {
            return Ok(());
        }
        let packets = std::mem::take(&mut self.outbox);
        send_all(ws, &packets)
            .await
            .map_err(|e| gone(&self.cx, "sending", &e))
    }

    async fn handle(&mut self, step: Step) -> Result<(), Fail> {
        match step {
            Step::Polled(answer) => {
                let reply = self.answered(answer, "a poll")?;
                let packets = polling::packets(reply, "a poll").map_err(|a| self.refused(a))?;
                let names: Vec<String> = packets.iter().map(Packet::to_string).collect();
                self.cx
                    .log(format!("engine.io poll answered: {}", names.join(", ")));
                for packet in packets {
                    self.take(packet).await?;
                }
            }
            Step::Posted(answer) => {
                let reply = self.answered(answer, "a POST")?;
                polling::posted(&reply).map_err(|a| self.refused(a))?;
            }
            Step::Frame(Some(Ok(Message::Close(frame)))) => {
                let code = frame.map_or(1005, |f| u16::from(f.code));
                return Err(self.lost(&format!("the server closed the websocket with {code}")));
            }
            Step::Frame(Some(Ok(m @ (Message::Text(_) | Message::Binary(_))))) => {
                let packet = websocket::packet(m).ok_or_else(|| {
                    self.corrupted("a websocket message that is not an Engine.IO packet")
                })?;
                self.take(packet).await?;
            }
            Step::Frame(Some(Ok(_))) => {}
            Step::Frame(Some(Err(e))) => return Err(broken(&self.cx, &e)),
            Step::Frame(None) => {
                return Err(self.lost("the websocket closed without a Close frame (1006)"));
            }
            Step::Probed(began, Ok(ws)) => self.probe = Probe::Answered { began, ws },
            Step::Probed(began, Err(f)) => {
                self.cx.log(format!(
                    "engine.io probe failed ({}): {}; the session stays on polling",
                    f.outcome, f.detail
                ));
                self.probes.push(ProbeEnd {
                    began,
                    result: Probed::Failed(f),
                });
            }
            Step::PingTimeout => {
                return Err(self.lost(&format!(
                    "no ping from the server within pingInterval + pingTimeout ({}): the server is deemed gone",
                    ms(heartbeat(&self.handshake))
                )));
            }
        }
        Ok(())
    }

    /// Waits by `deadline` for `post`, the POST `what`, to be answered `ok`.
    async fn posted(&self, post: Pending, deadline: Duration, what: &str) -> Result<(), Fail> {
        let answer = tokio::select! {
            biased;
            a = post => a,
            () = self.cx.net.sleep_until(deadline) => {
                return Err(fail(Outcome::Stalled, format!("{what} unanswered by {}", ms(deadline))));
            }
        };
        let reply = self.answered(answer, what)?;
        polling::posted(&reply).map_err(|a| self.refused(a))
    }

    /// The reply `answer` brought to `what`, or the session lost.
    fn answered(&self, answer: Result<Reply, Unanswered>, what: &str) -> Result<Reply, Fail> {
        answer.map_err(|u| match u {
            Unanswered::Broken(how) => self.lost(&format!(
                "{what}'s connection ended without an answer ({how})"
            )),
            Unanswered::Connect(f) => self.lost(&format!("{what} found no server ({})", f.detail)),
        })
    }

    /// What a packet from the server does: a ping is answered and pushes the deadline back, a
    /// message waits for the caller, a close packet ends the session.
    async fn take(&mut self, packet: Packet) -> Result<(), Fail> {
        match packet.kind() {
            PacketType::Ping => {
                self.ping_deadline = self.cx.net.now().saturating_add(heartbeat(&self.handshake));
                self.outbox.push(Packet::bare(PacketType::Pong));
                self.flush_websocket().await?;
            }
            PacketType::Message => self.inbox.push_back(packet),
            PacketType::Close => {
                return Err(self.lost("the server closed the session (a close packet)"));
            }
            PacketType::Noop | PacketType::Open | PacketType::Pong | PacketType::Upgrade => {}
        }
        Ok(())
    }

    /// What a wrong answer makes of the session: lost to a refusal, corrupted by bytes that
    /// are not a payload.
    fn refused(&self, answer: Answer) -> Fail {
        match answer {
            Answer::Refused(what) => self.lost(&what),
            Answer::NotPayload(what) => self.corrupted(&what),
        }
    }

    /// The session lost: `what`, and when.
    fn lost(&self, what: &str) -> Fail {
        fail(
            Outcome::Dropped,
            format!("{what}, at {}", ms(self.cx.net.now())),
        )
    }

    /// Bytes that are not what the protocol says: `what`, and when.
    fn corrupted(&self, what: &str) -> Fail {
        fail(
            Outcome::Corrupted,
            format!("{what}, at {}", ms(self.cx.net.now())),
        )
    }

    /// Ends the session by `deadline`: on polling, a close packet by POST (after the POST
    /// under way, with whatever is queued), then the held GET's answer; on a WebSocket, its
    /// Close, and the server's. A probe under way is dropped.
    pub(crate) async fn close(mut self, deadline: Duration) -> Result<(), Fail> {
        self.probe = Probe::Idle;
        let net = self.cx.net.clone();
        let late = |what: &str| {
            fail(
                Outcome::Stalled,
                format!("{what} unanswered by {}", ms(deadline)),
            )
        };
        match std::mem::replace(
            &mut self.carrier,
            Carrier::Polling {
                get: None,
                post: None,
            },
        ) {
            Carrier::Polling { get, post } => {
                if let Some(post) = post {
                    self.posted(post, deadline, "a POST").await?;
                }
                let mut packets = std::mem::take(&mut self.outbox);
                packets.push(Packet::bare(PacketType::Close));
                let closing = polling::post(&self.cx, &self.handshake.sid, &packets);
                self.posted(closing, deadline, "the close packet's POST")
                    .await?;
                if let Some(get) = get {
                    // The server answers the held GET (a noop) once it has the close packet.
                    tokio::select! {
                        biased;
                        _ = get => {}
                        () = net.sleep_until(deadline) => {}
                    }
                }
            }
            Carrier::WebSocket(mut ws) => {
                // engine.io-client closes a WebSocket transport with its Close alone.
                self.outbox.clear();
                if ws.close(None).await.is_ok() {
                    self.cx.log("engine.io close: websocket Close sent");
                    tokio::select! {
                        biased;
                        () = async { while let Some(Ok(_)) = ws.next().await {} } => {}
                        () = net.sleep_until(deadline) => return Err(late("the websocket's Close")),
                    }
                }
            }
        }
        self.cx
            .log(format!("engine.io {} closed", self.handshake.sid));
        Ok(())
    }
}

/// pingInterval + pingTimeout: how long the client waits for a ping (engine.io-client's
/// `_resetPingTimeout`).
fn heartbeat(h: &Handshake) -> Duration {
    Duration::from_millis(h.ping_interval.saturating_add(h.ping_timeout))
}

/// A WebSocket carrying the session that broke: bytes that are not frames are `corrupted`,
/// the rest `dropped`, a connection that ended without a Close among them (RFC 6455 §7.1.5:
/// 1006, abnormal closure).
fn broken(cx: &Cx, e: &WsError) -> Fail {
    match e {
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            gone(cx, "carrying the session", e)
        }
        WsError::Protocol(_) | WsError::Utf8(_) | WsError::Capacity(_) => fail(
            Outcome::Corrupted,
            format!(
                "bytes that are not WebSocket frames ({e}), at {}",
                ms(cx.net.now())
            ),
        ),
        other => gone(cx, "carrying the session", other),
    }
}

/// What the carrier brings next.
async fn carrier_step(carrier: &mut Carrier) -> Step {
    match carrier {
        Carrier::Polling { get, post } => {
            tokio::select! {
                biased;
                a = settle(get) => Step::Polled(a),
                a = settle(post) => Step::Posted(a),
            }
        }
        Carrier::WebSocket(ws) => Step::Frame(ws.next().await),
    }
}

/// The answer of the request in `slot`, which is then empty; never, for an empty slot.
async fn settle(slot: &mut Option<Pending>) -> Result<Reply, Unanswered> {
    let Some(request) = slot.as_mut() else {
        return std::future::pending().await;
    };
    let answer = request.await;
    *slot = None;
    answer
}

/// How the probe under way ends; never, without one. The probe is then over.
async fn probe_step(probe: &mut Probe) -> (Duration, Result<Box<Ws>, Fail>) {
    let Probe::Running { began, probe: p } = probe else {
        return std::future::pending().await;
    };
    let began = *began;
    let result = p.await;
    *probe = Probe::Idle;
    (began, result)
}
