//! The workload on an open session: echo (send, wait for the same message back, measure the
//! round trip) or push (receive the server's timestamped messages, measure one way), the idle
//! periods, and the Ping keepalive on its fixed schedule; then the close.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use gauntlet_proxies::rng::Rng;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;

use super::WHO;
use super::handshake::Ws;
use super::payload::{message, push_stamp};
use super::session::{Doing, Session};
use crate::endpoints::connect::{Fail, fail, ms, no_echo};
use crate::endpoints::fragment;
use crate::engine::NetRef;
use crate::scenario::{Workload, WorkloadKind};
use crate::verdict::outcome::Outcome;
use gauntlet_proxies::ws_frames::{encode, opcode};

impl Session<'_> {
    pub(super) async fn workload(&mut self, ws: &mut Ws) -> Result<String, Fail> {
        let w = self.plan.workload.clone();
        if self.plan.request.deflate {
            return self.deflate_echo(ws).await;
        }
        match w.kind {
            WorkloadKind::Echo => {
                for i in w.range() {
                    self.idle(ws, i).await?;
                    if i > w.from {
                        let until = self.net.now().saturating_add(w.interval);
                        self.quiet(ws, until, Doing::Waiting).await?;
                    }
                    self.echo(ws, i).await?;
                    self.stop_proxy_after(i);
                }
                self.idle(ws, w.messages).await?;
            }
            WorkloadKind::Push => {
                if let Some(pause) = w.read_pause {
                    self.t.log(
                        self.net.now(),
                        WHO,
                        format!("reading nothing for {} ms", pause.as_millis()),
                    );
                    self.net
                        .sleep_until(self.net.now().saturating_add(pause))
                        .await;
                    self.t.log(self.net.now(), WHO, "reading again");
                }
                for i in w.range() {
                    self.receive_push(ws, i).await?;
                }
            }
            // Run by `smuggle::run`, never on a tungstenite session.
            WorkloadKind::Smuggle => {}
        }
        if w.server_reset {
            return Err(self.reset_by_server(ws).await);
        }
        let n = self.report.received;
        let shape = shape(&w);
        if w.client_reset {
            let ended = self.reset_and_ask(ws).await?;
            return Ok(match w.kind {
                WorkloadKind::Push => format!("{n}/{} pushes received{shape}, {ended}", w.messages),
                _ => format!("{n}/{} echoed{shape}, {ended}", w.messages),
            });
        }
        let closed = match w.server_close_code {
            Some(code) => {
                self.closed_by_server(ws, code).await?;
                format!("server closed {code}")
            }
            None => {
                self.close(ws).await?;
                let half = match (w.half_close, self.half_close_cut) {
                    (false, _) => "",
                    (true, false) => ", half-closed, the server's Close came back",
                    (true, true) => ", half-closed, the connection ended at the FIN",
                };
                format!("closed {}{half}", w.close_code)
            }
        };
        Ok(match w.kind {
            WorkloadKind::Echo => format!("{n}/{} echoed{shape}, {closed}", w.messages),
            WorkloadKind::Push => format!("{n}/{} pushes received{shape}, {closed}", w.messages),
            WorkloadKind::Smuggle => format!("{n} received, {closed}"),
        })
    }

    async fn idle(&mut self, ws: &mut Ws, after: u32) -> Result<(), Fail> {
        for period in self
            .plan
            .workload
            .idle
            .iter()
            .filter(|p| p.after_message == after)
        {
            self.t
                .log(self.net.now(), WHO, format!("idle for {} ms", period.ms));
            let until = self
                .net
                .now()
                .saturating_add(Duration::from_millis(period.ms));
            self.quiet(ws, until, Doing::Idle).await?;
        }
        Ok(())
    }

    /// The next text or binary message before `deadline`, skipping pings and pongs; `None`
    /// when the deadline passes first. Anything else ends the workload.
    async fn next_data(
        &mut self,
        ws: &mut Ws,
        deadline: Duration,
        doing: Doing,
    ) -> Result<Option<Message>, Fail> {
        loop {
            let wake = self.keepalive_due();
            let next = tokio::select! {
                biased;
                m = ws.next() => m,
                () = self.net.sleep_until(deadline) => return Ok(None),
                () = sleep_opt(self.net, wake) => {
                    self.keepalive(ws, doing).await?;
                    continue;
                }
            };
            match next {
                Some(Ok(Message::Pong(payload))) => {
                    if self.pong_due.as_deref() == Some(&payload[..]) {
                        self.pong_due = None;
                        self.t.log(
                            self.net.now(),
                            WHO,
                            "pong for the ping between the fragments",
                        );
                    } else if let Some(k) = self.keepalive.as_mut() {
                        k.unanswered = None;
                    }
                    continue;
                }
                Some(Ok(Message::Ping(_))) => continue,
                Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => return Ok(Some(m)),
                Some(Ok(Message::Close(frame))) => {
                    return Err(self.closed_early(ws, frame, doing).await);
                }
                Some(Ok(other)) => return Err(self.unexpected(other, doing)),
                Some(Err(e)) => return Err(self.fail_connection(ws, e, doing).await),
                None => return Err(self.ended(doing)),
            }
        }
    }

    /// When the keepalive next needs attention: a Ping due, or an unanswered one expiring.
    fn keepalive_due(&self) -> Option<Duration> {
        let k = self.keepalive.as_ref()?;
        let expiry = k
            .unanswered
            .map(|s| s.saturating_add(self.plan.workload.reply_timeout));
        Some(expiry.map_or(k.next, |e| e.min(k.next)))
    }

    /// Sends the Ping that is due, or fails the run on one that went unanswered.
    async fn keepalive(&mut self, ws: &mut Ws, doing: Doing) -> Result<(), Fail> {
        let now = self.net.now();
        let timeout = self.plan.workload.reply_timeout;
        let Some(k) = self.keepalive.as_mut() else {
            return Ok(());
        };
        if let Some(sent) = k.unanswered.filter(|s| s.saturating_add(timeout) <= now) {
            return Err(fail(
                Outcome::Stalled,
                format!(
                    "ping sent at {} unanswered within {}",
                    ms(sent),
                    ms(timeout)
                ),
            ));
        }
        if k.next <= now {
            k.sent += 1;
            k.next = k.next.saturating_add(k.every);
            k.unanswered.get_or_insert(now);
            let n = k.sent;
            if let Err(e) = ws
                .send(Message::Ping(n.to_be_bytes().to_vec().into()))
                .await
            {
                return Err(self.broken(e, doing));
            }
            self.t.log(now, WHO, format!("ping #{n}"));
        }
        Ok(())
    }

    /// Reads until `until`, expecting nothing: anything but a ping is a failure.
    async fn quiet(&mut self, ws: &mut Ws, until: Duration, doing: Doing) -> Result<(), Fail> {
        match self.next_data(ws, until, doing).await? {
            None => Ok(()),
            Some(m) => Err(self.unexpected(m, doing)),
        }
    }

    /// Counts a message that arrived intact, with its latency.
    fn arrived(&mut self, latency: Duration, line: String) {
        self.report.latencies.push(latency);
        self.report.first_message.get_or_insert(self.net.now());
        self.report.received += 1;
        self.t.log(self.net.now(), WHO, line);
    }

    async fn echo(&mut self, ws: &mut Ws, i: u32) -> Result<(), Fail> {
        let w = &self.plan.workload;
        let message = message(self.plan.seed, i, w.payload_bytes, w.binary);
        let len = message.len();
        // The first message may have gone out with the request head, and been logged then.
        if let Some(sent_at) = self.pipelined.take().filter(|_| i == w.range().start) {
            self.report.sent += 1;
            return self.echoed(ws, i, message, sent_at).await;
        }
        if let Some(gap) = w.byte_interval {
            let sent_at = self.trickle(ws, i, &message, gap).await?;
            self.report.sent += 1;
            return self.echoed(ws, i, message, sent_at).await;
        }
        let sent_at = self.net.now();
        let sending = match (w.fragment_bytes, w.ping_between_fragments) {
            (Some(max), true) => {
                let ping = format!("between the fragments of #{i}").into_bytes();
                self.pong_due = Some(ping.clone());
                fragment::send_with_ping(ws, message.clone(), max, ping.into()).await
            }
            (max, _) => fragment::send(ws, message.clone(), max).await,
        };
        let frames = match sending {
            Ok(frames) => frames,
            Err(e) => return Err(self.broken(e, Doing::Waiting)),
        };
        self.report.sent += 1;
        let mut how = String::new();
        if w.binary {
            how.push_str(", binary");
        }
        if w.fragment_bytes.is_some() {
            how.push_str(&format!(", in {frames} frames"));
        }
        if self.pong_due.is_some() {
            how.push_str(", a Ping between the first two");
        }
        self.t
            .log(sent_at, WHO, format!("sent #{i} ({len} bytes{how})"));
        self.echoed(ws, i, message, sent_at).await?;
        // The server answers the Ping as it reads it, before the last fragment: its Pong
        // comes before the echo.
        if self.pong_due.take().is_some() {
            return Err(fail(
                Outcome::Stalled,
                format!(
                    "echo #{i} came, but no Pong for the Ping sent between its fragments, at {}",
                    ms(self.net.now())
                ),
            ));
        }
        Ok(())
    }

    /// Writes message `i`'s frame one byte at a time, `gap` apart (`byte-interval-ms`), on
    /// the session's stream, which tungstenite has nothing left to write on; returns when the
    /// last byte went out.
    async fn trickle(
        &mut self,
        ws: &mut Ws,
        i: u32,
        message: &Message,
        gap: Duration,
    ) -> Result<Duration, Fail> {
        let op = if matches!(message, Message::Binary(_)) {
            opcode::BINARY
        } else {
            opcode::TEXT
        };
        let mut mask = [0u8; 4];
        Rng::derive(self.plan.seed, 0x7472_6963 ^ u64::from(i)).fill(&mut mask);
        let frame = encode(op, &message.clone().into_data(), Some(mask));
        let began = self.net.now();
        for (k, byte) in frame.iter().enumerate() {
            if k > 0 {
                self.net
                    .sleep_until(self.net.now().saturating_add(gap))
                    .await;
            }
            let raw = ws.get_mut();
            if let Err(e) = raw.write_all(&[*byte]).await.and(raw.flush().await) {
                let what = format!("byte {} of #{i}'s frame could not be sent: {e}", k + 1);
                return Err(self.abnormal(Doing::Waiting, &what));
            }
        }
        self.t.log(
            self.net.now(),
            WHO,
            format!(
                "sent #{i} ({} bytes) as a {}-byte frame, a byte every {} ms, over {}",
                message.len(),
                frame.len(),
                gap.as_millis(),
                ms(self.net.now() - began)
            ),
        );
        Ok(self.net.now())
    }

    /// Waits for the echo of message `i`, sent at `sent_at`.
    async fn echoed(
        &mut self,
        ws: &mut Ws,
        i: u32,
        message: Message,
        sent_at: Duration,
    ) -> Result<(), Fail> {
        let w = &self.plan.workload;
        let (len, sent_kind) = (message.len(), kind(&message));
        let timeout = w.reply_timeout_for(i);
        match self
            .next_data(ws, sent_at.saturating_add(timeout), Doing::Waiting)
            .await?
        {
            Some(echo) if echo == message => {
                let rtt = self.net.now() - sent_at;
                self.arrived(rtt, format!("echo #{i}, round trip {}", ms(rtt)));
                Ok(())
            }
            Some(other) if kind(&other) != sent_kind => Err(fail(
                Outcome::Corrupted,
                format!(
                    "echo of #{i} came back {}, sent {sent_kind}, at {}",
                    kind(&other),
                    ms(self.net.now())
                ),
            )),
            Some(other) => Err(fail(
                Outcome::Corrupted,
                format!(
                    "echo of #{i} differs: {len} bytes sent, {} received, at {}",
                    other.len(),
                    ms(self.net.now())
                ),
            )),
            None => Err(no_echo(i, timeout, sent_at)),
        }
    }

    async fn receive_push(&mut self, ws: &mut Ws, i: u32) -> Result<(), Fail> {
        let w = &self.plan.workload;
        let (size, deadline) = (
            w.payload_bytes,
            match w.first_reply_timeout {
                Some(first) if i == 0 => self.net.now().saturating_add(first),
                _ => self
                    .net
                    .now()
                    .saturating_add(w.interval)
                    .saturating_add(w.reply_timeout),
            },
        );
        let message = self.next_data(ws, deadline, Doing::Waiting).await?;
        let Some(message) = message else {
            return Err(fail(
                Outcome::Stalled,
                format!("push #{i} did not arrive by {}", ms(deadline)),
            ));
        };
        let stamp = match &message {
            Message::Text(text) => push_stamp(text, i, size),
            _ => None,
        };
        let Some(us) = stamp else {
            return Err(fail(
                Outcome::Corrupted,
                format!(
                    "push #{i} arrived changed ({} bytes) at {}",
                    message.len(),
                    ms(self.net.now())
                ),
            ));
        };
        let latency = self.net.now().saturating_sub(Duration::from_micros(us));
        self.arrived(latency, format!("push #{i}, one way {}", ms(latency)));
        Ok(())
    }
}

/// Completes at `at`, or never.
async fn sleep_opt(net: &NetRef, at: Option<Duration>) {
    match at {
        Some(at) => net.sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// What the detail adds about the messages' form: nothing for unfragmented text, else for
/// example ` (binary, sent in frames of at most 100 bytes)`.
fn shape(w: &Workload) -> String {
    let mut parts = Vec::new();
    if w.binary {
        parts.push("binary".to_string());
    }
    if let Some(n) = w.fragment_bytes {
        parts.push(format!("sent in frames of at most {n} bytes"));
    }
    if let Some(n) = w.server_fragment_bytes {
        let verb = match w.kind {
            WorkloadKind::Push => "pushed",
            _ => "echoed",
        };
        parts.push(format!("{verb} in frames of at most {n} bytes"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

/// `text` or `binary`, for a data message; `other` for the rest.
fn kind(message: &Message) -> &'static str {
    match message {
        Message::Text(_) => "text",
        Message::Binary(_) => "binary",
        _ => "other",
    }
}
