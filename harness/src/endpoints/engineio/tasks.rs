//! Opening a session, and the tasks it starts on the worker that opened it: the heartbeat (a
//! ping every `pingInterval` after the open or the last pong; the session closed when the
//! pong is `pingTimeout` late, as engine.io v4's `schedulePing` and `resetPingTimeout` do)
//! and, for `app=push`, the pushed messages. Both read time from the worker's
//! [`Net`](crate::engine::Net) clock only, and end when the session does.

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;

use super::Cx;
use super::packet::{Handshake, Packet, PacketType};
use super::request::Refused;
use super::session::{App, Session, Transport, Upgrade};
use crate::endpoints::client::push_text;

/// Opens a session on `transport` running `app`: its open packet queued, its heartbeat (and
/// push) started. Refused when the server holds its most sessions already.
pub(super) fn open(cx: &Cx, transport: Transport, app: App) -> Result<Arc<Session>, Refused> {
    let Some(session) = cx.engine.open(cx.net.host(), transport, app) else {
        return Err(Refused::full(cx.options().max_sessions));
    };
    let options = cx.options();
    let upgrades = match transport {
        Transport::Polling => vec![Transport::WebSocket.name().to_string()],
        Transport::WebSocket => Vec::new(),
    };
    let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let handshake = Handshake {
        sid: session.sid.clone(),
        upgrades,
        ping_interval: millis(options.ping_interval),
        ping_timeout: millis(options.ping_timeout),
        max_payload: u64::try_from(options.max_payload).unwrap_or(u64::MAX),
    };
    session.send(cx, handshake.to_packet());
    let app_words = match app {
        App::Echo => "echo".to_string(),
        App::Push {
            count,
            interval,
            size,
            ..
        } => format!(
            "push {count} messages of {size} bytes every {} ms",
            interval.as_millis()
        ),
    };
    cx.log(format!(
        "engine.io {} opened over {} ({app_words})",
        session.sid,
        transport.name()
    ));
    let (c, s) = (cx.clone(), session.clone());
    cx.net.spawn(heartbeat(c, s).boxed_local());
    if let App::Push {
        count,
        from,
        interval,
        size,
    } = app
    {
        let (c, s) = (cx.clone(), session.clone());
        cx.net
            .spawn(push(c, s, from..count, interval, size).boxed_local());
    }
    Ok(session)
}

/// How often, while an upgrade is under way, a GET held for the session is answered with a
/// noop: engine.io's `checkIntervalTimer` (`_maybeUpgrade`, "writing a noop packet to polling
/// for fast upgrade"), every 100 ms.
const UPGRADE_CHECK: Duration = Duration::from_millis(100);

/// Starts the upgrade's checks on the worker that answered the probe: every [`UPGRADE_CHECK`]
/// from `3probe` until `5` comes, the upgrade fails or the session closes, a GET held for the
/// session is let go with a noop, so that a client that polled again before it saw `3probe`
/// (its poll's noop arriving first) can pause polling and complete the upgrade.
pub(super) fn upgrade_checks(cx: &Cx, session: Arc<Session>) {
    let c = cx.clone();
    cx.net.spawn(upgrade_check(c, session).boxed_local());
}

async fn upgrade_check(cx: Cx, session: Arc<Session>) {
    loop {
        let at = cx.net.now().saturating_add(UPGRADE_CHECK);
        let over = session
            .wait_until_or(&cx, at, |s| {
                let over = s.closed.is_some() || matches!(s.upgrade, Upgrade::None | Upgrade::Done);
                over.then_some(())
            })
            .await;
        if over.is_some() {
            return;
        }
        session.update(|s| {
            if s.polling && s.upgrade == Upgrade::Paused {
                s.upgrade = Upgrade::Probed;
            }
        });
    }
}

/// What the heartbeat saw while it waited.
enum Seen {
    Closed,
    Pong(u64),
}

/// Pings every `pingInterval` after the open or the last pong; closes the session when a
/// pong has not come `pingTimeout` after the ping.
async fn heartbeat(cx: Cx, session: Arc<Session>) {
    let (interval, timeout) = (cx.options().ping_interval, cx.options().ping_timeout);
    let mut pongs = session.peek(|s| s.pongs);
    let mut next_ping = cx.net.now().saturating_add(interval);
    // When a ping is out: the time by which its pong must come.
    let mut pong_due: Option<Duration> = None;
    loop {
        let seen = session
            .wait_until_or(&cx, pong_due.unwrap_or(next_ping), |s| {
                if s.closed.is_some() {
                    Some(Seen::Closed)
                } else {
                    (s.pongs != pongs).then_some(Seen::Pong(s.pongs))
                }
            })
            .await;
        match seen {
            Some(Seen::Closed) => return,
            Some(Seen::Pong(n)) => {
                pongs = n;
                pong_due = None;
                next_ping = cx.net.now().saturating_add(interval);
            }
            None if pong_due.is_some() => {
                let reason = format!("ping timeout: no pong within {} ms", timeout.as_millis());
                session.close(&cx, &reason, PacketType::Close);
                return;
            }
            None => {
                session.send(&cx, Packet::bare(PacketType::Ping));
                pong_due = Some(cx.net.now().saturating_add(timeout));
            }
        }
    }
}

/// Sends the messages `which` of `size` bytes, `interval` apart from the open, each carrying
/// its index and send time (`push <i> at <µs>`, as `/push` writes them).
async fn push(
    cx: Cx,
    session: Arc<Session>,
    which: std::ops::Range<u32>,
    interval: Duration,
    size: usize,
) {
    let start = cx.net.now();
    let first = which.start;
    for i in which {
        let at = start.saturating_add(interval.saturating_mul(i - first));
        let closed = session
            .wait_until_or(&cx, at, |s| s.closed.is_some().then_some(()))
            .await;
        if closed.is_some() {
            return;
        }
        let text = push_text(i, cx.net.now(), size);
        session.send(&cx, Packet::message(text));
        cx.log(format!(
            "engine.io {} pushed #{i} ({size} bytes)",
            session.sid
        ));
    }
}
