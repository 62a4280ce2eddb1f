//! One Engine.IO session: its state behind a mutex, shared by the requests and the WebSocket
//! that carry it (on any worker thread), and what each event does to it. Whoever waits for a
//! change (a held GET, the WebSocket's writer, the heartbeat) waits on the session's `Notify`,
//! and every change wakes them all to look again.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

use super::Cx;
use super::packet::{DecodeError, Packet, PacketType};

/// What a queued packet costs beyond its data: its place in the queue.
const PACKET_COST: usize = std::mem::size_of::<Packet>();

/// The most packets one poll's answer carries; the rest wait for the next poll. engine.io
/// sends every packet it has, but python-engineio's client refuses a payload of more than 16
/// (`Payload.max_decode_packets`), and every client polls again at once.
pub(super) const MAX_POLL_PACKETS: usize = 16;

/// The transport a session's packets go out on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Transport {
    Polling,
    WebSocket,
}

impl Transport {
    pub(super) fn name(self) -> &'static str {
        match self {
            Transport::Polling => "polling",
            Transport::WebSocket => "websocket",
        }
    }
}

/// How far an upgrade of a polling session to a WebSocket has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Upgrade {
    /// No WebSocket has come for it.
    None,
    /// A WebSocket has come, and has not sent `2probe` yet.
    Attached,
    /// `3probe` has gone out: a GET held now or next is answered with a noop, so that the
    /// client stops polling.
    Probed,
    /// That noop has gone out: a GET waits for packets, or for the next upgrade check
    /// (`tasks::upgrade_checks`, every 100 ms as engine.io's), which makes it `Probed` again.
    Paused,
    /// `5` has come: packets go out on the WebSocket.
    Done,
}

/// What the application does with the client's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum App {
    /// Sends every message back as it came.
    Echo,
    /// Sends messages `from` to `count - 1` of `size` bytes, `interval` apart, and ignores
    /// the client's.
    Push {
        count: u32,
        from: u32,
        interval: Duration,
        size: usize,
    },
}

/// Why the session ended, and what a GET still held gets: engine.io answers it with a close
/// packet when the server ends the session, and with a noop when the client's close packet
/// came by POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Closed {
    pub(super) reason: String,
    pub(super) poll_answer: PacketType,
}

#[derive(Debug)]
pub(super) struct State {
    pub(super) transport: Transport,
    pub(super) upgrade: Upgrade,
    /// Packets for the client, in order, and what they cost.
    outbox: VecDeque<Packet>,
    queued: usize,
    /// A GET is held for the session.
    pub(super) polling: bool,
    /// A POST's payload is being read.
    pub(super) posting: bool,
    pub(super) closed: Option<Closed>,
    /// Pongs received so far.
    pub(super) pongs: u64,
}

/// What the WebSocket's writer is to do next.
#[derive(Debug)]
pub(super) enum Outgoing {
    Packets(Vec<Packet>),
    Closed,
}

/// Where the session stands after a packet from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Taken {
    /// Open still.
    Open,
    /// Closed by the client's close packet.
    ClosedByClient,
    /// Closed because the packet broke the protocol (or was not one).
    Broken,
}

#[derive(Debug)]
pub(super) struct Session {
    pub(super) sid: String,
    pub(super) app: App,
    state: Mutex<State>,
    changed: Notify,
}

impl State {
    /// Queues `packet` for the client, unless the session is closed; `Err` when that would
    /// hold more than `limit` bytes.
    fn queue(&mut self, packet: Packet, limit: usize) -> Result<(), usize> {
        if self.closed.is_some() {
            return Ok(());
        }
        let cost = packet.data_len() + PACKET_COST;
        if self.queued + cost > limit {
            return Err(self.queued + cost);
        }
        self.queued += cost;
        self.outbox.push_back(packet);
        Ok(())
    }

    /// Takes the first `most` packets queued.
    fn drain(&mut self, most: usize) -> Vec<Packet> {
        let taken: Vec<Packet> = self.outbox.drain(..most.min(self.outbox.len())).collect();
        let cost: usize = taken.iter().map(|p| p.data_len() + PACKET_COST).sum();
        self.queued = self.queued.saturating_sub(cost);
        taken
    }

    /// What a held GET is answered with now, if anything: the close or noop of a closed
    /// session, the packets queued, or a noop once a WebSocket has answered the probe (once)
    /// or taken the session over.
    pub(super) fn take_poll(&mut self) -> Option<Vec<Packet>> {
        if let Some(closed) = &self.closed {
            return Some(vec![Packet::bare(closed.poll_answer)]);
        }
        if !self.outbox.is_empty() {
            return Some(self.drain(MAX_POLL_PACKETS));
        }
        match self.upgrade {
            Upgrade::Probed => self.upgrade = Upgrade::Paused,
            Upgrade::Done => {}
            Upgrade::None | Upgrade::Attached | Upgrade::Paused => return None,
        }
        Some(vec![Packet::bare(PacketType::Noop)])
    }

    /// What the WebSocket carrying the session sends now, if anything.
    pub(super) fn take_websocket(&mut self) -> Option<Outgoing> {
        if self.closed.is_some() {
            return Some(Outgoing::Closed);
        }
        (self.transport == Transport::WebSocket && !self.outbox.is_empty())
            .then(|| Outgoing::Packets(self.drain(usize::MAX)))
    }
}

impl Session {
    pub(super) fn new(sid: String, transport: Transport, app: App) -> Self {
        Self {
            sid,
            app,
            state: Mutex::new(State {
                transport,
                upgrade: Upgrade::None,
                outbox: VecDeque::new(),
                queued: 0,
                polling: false,
                posting: false,
                closed: None,
                pongs: 0,
            }),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the state.
    pub(super) fn peek<T>(&self, look: impl FnOnce(&State) -> T) -> T {
        look(&self.lock())
    }

    /// Changes the state and wakes everyone waiting on it.
    pub(super) fn update<T>(&self, change: impl FnOnce(&mut State) -> T) -> T {
        let value = change(&mut self.lock());
        self.changed.notify_waiters();
        value
    }

    /// Waits until `ready` gives a value (it may change the state when it does, and then
    /// everyone else waiting is woken).
    pub(super) async fn wait_until<T>(&self, mut ready: impl FnMut(&mut State) -> Option<T>) -> T {
        loop {
            let mut notified = std::pin::pin!(self.changed.notified());
            notified.as_mut().enable();
            let value = ready(&mut self.lock());
            if let Some(value) = value {
                self.changed.notify_waiters();
                return value;
            }
            notified.await;
        }
    }

    /// [`Session::wait_until`], or `None` once the worker's clock reaches `deadline`.
    pub(super) async fn wait_until_or<T>(
        &self,
        cx: &Cx,
        deadline: Duration,
        ready: impl FnMut(&mut State) -> Option<T>,
    ) -> Option<T> {
        tokio::select! {
            biased;
            value = self.wait_until(ready) => Some(value),
            () = cx.net.sleep_until(deadline) => None,
        }
    }

    /// Whether the session has ended.
    pub(super) fn is_closed(&self) -> bool {
        self.peek(|s| s.closed.is_some())
    }

    /// Queues `packet` for the client; closes the session if the client has left that many
    /// unread already.
    pub(super) fn send(&self, cx: &Cx, packet: Packet) {
        let limit = cx.options().max_buffered;
        if let Err(bytes) = self.update(|s| s.queue(packet, limit)) {
            let reason = format!(
                "{bytes} bytes of packets waiting for the client, over the {limit} the server holds"
            );
            self.close(cx, &reason, PacketType::Close);
        }
    }

    /// Ends the session (once): a held GET gets `poll_answer`, a WebSocket carrying it is
    /// closed, its timers stop, and its id is forgotten.
    pub(super) fn close(&self, cx: &Cx, reason: &str, poll_answer: PacketType) {
        let first = self.update(|s| {
            if s.closed.is_some() {
                return false;
            }
            s.closed = Some(Closed {
                reason: reason.to_string(),
                poll_answer,
            });
            s.drain(usize::MAX);
            true
        });
        if first {
            cx.engine.remove(&self.sid);
            cx.log(format!("engine.io {} closed: {reason}", self.sid));
        }
    }

    /// Acts on what the client sent, a packet or bytes that are not one, and closes the
    /// session when it must: for bytes that are not a packet or a packet that breaks the
    /// protocol (a held GET gets a close packet), or for the client's close packet (a held
    /// GET gets `on_client_close`).
    pub(super) fn take(
        &self,
        cx: &Cx,
        packet: Result<Packet, DecodeError>,
        on_client_close: PacketType,
    ) -> Taken {
        let broken = match packet {
            Err(e) => format!("parse error: {e}"),
            Ok(packet) => match self.receive(cx, packet) {
                Ok(false) => return Taken::Open,
                Ok(true) => {
                    self.close(cx, "the client's close packet", on_client_close);
                    return Taken::ClosedByClient;
                }
                Err(why) => format!("transport error: {why}"),
            },
        };
        self.close(cx, &broken, PacketType::Close);
        Taken::Broken
    }

    /// Acts on a packet from the client: a pong feeds the heartbeat, a message goes to the
    /// application; other packets are ignored, as engine.io ignores them. `Ok(true)` for a
    /// close packet; `Err` for a ping, which breaks the protocol (in v4 only the server pings).
    fn receive(&self, cx: &Cx, packet: Packet) -> Result<bool, &'static str> {
        if self.is_closed() {
            return Ok(false);
        }
        match packet.kind() {
            PacketType::Pong => self.update(|s| s.pongs += 1),
            PacketType::Message => {
                let what = message_words(&packet);
                match self.app {
                    App::Echo => {
                        cx.log(format!("engine.io {} echoes {what}", self.sid));
                        self.send(cx, packet);
                    }
                    App::Push { .. } => cx.log(format!("engine.io {} ignored {what}", self.sid)),
                }
            }
            PacketType::Close => return Ok(true),
            PacketType::Ping => return Err("a ping from the client (in v4 only the server pings)"),
            PacketType::Open | PacketType::Upgrade | PacketType::Noop => {
                cx.log(format!("engine.io {} ignored a {packet} packet", self.sid));
            }
        }
        Ok(false)
    }
}

/// `a text message (5 bytes)` or `a binary message (4 bytes)`.
fn message_words(packet: &Packet) -> String {
    let kind = match packet {
        Packet::Text(..) => "text",
        Packet::Binary(_) => "binary",
    };
    format!("a {kind} message ({} bytes)", packet.data_len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State {
        Session::new("s".into(), Transport::Polling, App::Echo)
            .state
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
    }

    #[test]
    fn a_poll_takes_everything_queued_then_waits() {
        let mut s = state();
        assert_eq!(s.take_poll(), None);
        s.queue(Packet::message("a"), 1000).expect("room");
        s.queue(Packet::bare(PacketType::Ping), 1000).expect("room");
        assert_eq!(
            s.take_poll(),
            Some(vec![Packet::message("a"), Packet::bare(PacketType::Ping)])
        );
        assert_eq!(s.take_poll(), None);
        assert_eq!(s.queued, 0);
    }

    #[test]
    fn a_poll_takes_sixteen_packets_at_most() {
        let mut s = state();
        for i in 0..20 {
            s.queue(Packet::message(i.to_string()), 10_000)
                .expect("room");
        }
        assert_eq!(s.take_poll().map(|p| p.len()), Some(MAX_POLL_PACKETS));
        assert_eq!(s.take_poll().map(|p| p.len()), Some(4));
        assert_eq!(s.queued, 0);
    }

    #[test]
    fn the_queue_holds_its_limit_and_no_more() {
        let mut s = state();
        let one = 1 + PACKET_COST;
        s.queue(Packet::message("a"), 2 * one).expect("room");
        s.queue(Packet::message("b"), 2 * one).expect("room");
        assert_eq!(s.queue(Packet::message("c"), 2 * one), Err(3 * one));
        assert_eq!(s.outbox.len(), 2);
    }

    #[test]
    fn once_probed_a_held_poll_gets_one_noop_unless_packets_wait() {
        let mut s = state();
        s.upgrade = Upgrade::Attached;
        assert_eq!(s.take_poll(), None);
        s.upgrade = Upgrade::Probed;
        s.queue(Packet::message("a"), 1000).expect("room");
        assert_eq!(s.take_poll(), Some(vec![Packet::message("a")]));
        assert_eq!(s.take_poll(), Some(vec![Packet::bare(PacketType::Noop)]));
        assert_eq!(s.take_poll(), None, "one noop only");
        s.upgrade = Upgrade::Done;
        assert_eq!(s.take_poll(), Some(vec![Packet::bare(PacketType::Noop)]));
    }

    #[test]
    fn packets_go_to_the_websocket_only_once_it_carries_the_session() {
        let mut s = state();
        s.queue(Packet::message("a"), 1000).expect("room");
        assert!(s.take_websocket().is_none());
        s.transport = Transport::WebSocket;
        assert!(matches!(s.take_websocket(), Some(Outgoing::Packets(p)) if p.len() == 1));
        s.closed = Some(Closed {
            reason: "r".into(),
            poll_answer: PacketType::Close,
        });
        assert!(matches!(s.take_websocket(), Some(Outgoing::Closed)));
        assert_eq!(s.take_poll(), Some(vec![Packet::bare(PacketType::Close)]));
    }
}
