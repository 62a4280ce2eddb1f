//! The reference client: tokio-tungstenite over an engine stream, ws or wss (rustls, ring),
//! with a handshake timeout, an echo or push workload, and a timestamp in simulated time for
//! every send and receive. It observes the run and decides its [`Outcome`]. It checks the 101
//! itself, as RFC 6455 §4.1 lists (`invalid_101`), fails the connection with a Close (1002,
//! 1007, 1009: [`crate::endpoints::violation`]) when the server breaks the protocol, and answers a Close
//! the server sends first before it reports it. The `smuggle` workload (the cache-poisoning
//! demonstration) writes its frames by hand: see [`crate::endpoints::smuggle`].

use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use gauntlet_proxies::http::{self, base64};
use gauntlet_proxies::rng::Rng;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};

use crate::endpoints::connect::{
    AsyncIo, Fail, Phase, describe_io, fail, invalid_101, ms, printable, transport,
};
pub use crate::endpoints::connect::{PROXY_PORT, Phases, Plan, ProxyPlan, Report};
use crate::endpoints::{fragment, smuggle, violation};
use crate::engine::NetRef;
use crate::scenario::{Workload, WorkloadKind};
use crate::verdict::outcome::Outcome;
use crate::verdict::transcript::Transcript;
use crate::ws_config;

/// The name the client logs under.
const WHO: &str = "client";

/// Keeps the bytes of the most recent read, so a failure can say what arrived.
struct Tap<S> {
    inner: S,
    last: Arc<Mutex<Vec<u8>>>,
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

type Ws = WebSocketStream<Tap<Box<dyn AsyncIo>>>;

/// Runs the plan to its outcome. Never fails: everything the network does is an outcome.
pub async fn run(net: NetRef, plan: Plan, t: Transcript) -> Report {
    let mut report = Report {
        outcome: Outcome::Delivered,
        detail: String::new(),
        handshake: None,
        phases: Phases::default(),
        latencies: Vec::new(),
        sent: 0,
        received: 0,
    };
    let start = net.now();
    if plan.workload.kind == WorkloadKind::Smuggle {
        let result = smuggle::run(&net, &plan, &t, &mut report, start).await;
        finish(&net, &t, &mut report, result);
        return report;
    }
    let last = Arc::new(Mutex::new(Vec::new()));
    let phase = Rc::new(Phase::new(net.now()));
    let handshake = tokio::select! {
        biased;
        r = handshake(&net, &plan, &t, &phase, last.clone()) => r,
        () = net.sleep_until(start.saturating_add(plan.handshake_timeout)) => Err(fail(
            Outcome::HandshakeTimeout,
            format!("no 101 within {} (stuck in {}) at {}", ms(plan.handshake_timeout), phase.get(), ms(net.now())),
        )),
    };
    let done = handshake.is_ok().then(|| net.now());
    report.phases = phase.phases(done);
    let result = match handshake {
        Ok(mut ws) => {
            report.handshake = Some(net.now() - start);
            let mut session = Session {
                net: &net,
                plan: &plan,
                t: &t,
                report: &mut report,
                last: &last,
                keepalive: plan.ping_interval.map(|every| Keepalive {
                    every,
                    next: net.now().saturating_add(every),
                    unanswered: None,
                    sent: 0,
                }),
            };
            session.workload(&mut ws).await
        }
        Err(f) => Err(f),
    };
    finish(&net, &t, &mut report, result);
    report
}

/// Puts the workload's result into the report; a failure is logged.
fn finish(net: &NetRef, t: &Transcript, report: &mut Report, result: Result<String, Fail>) {
    match result {
        Ok(detail) => report.detail = detail,
        Err(f) => {
            report.outcome = f.outcome;
            report.detail = f.detail;
            t.log(
                net.now(),
                WHO,
                format!("outcome {}: {}", f.outcome, report.detail),
            );
        }
    }
}

async fn handshake(
    net: &NetRef,
    plan: &Plan,
    t: &Transcript,
    phase: &Phase,
    last: Arc<Mutex<Vec<u8>>>,
) -> Result<Ws, Fail> {
    let host = plan.host.as_str();
    let io = transport(net, plan, t, phase).await?;
    phase.set("upgrade", net.now());
    let path = format!("{}{}", plan.path_prefix, request_path(&plan.workload));
    let mut key = [0u8; 16];
    Rng::derive(plan.seed, 0x6b6579).fill(&mut key);
    let key = base64(&key);
    // The request tungstenite's client would write, byte for byte.
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n"
    );
    t.log(net.now(), WHO, format!("upgrade request GET {path}"));
    let mut tap = Tap { inner: io, last };
    let no_response = |what: String| {
        fail(
            Outcome::HandshakeRejected,
            format!("no HTTP response: {what} at {}", ms(net.now())),
        )
    };
    if let Err(e) = tap.write_all(request.as_bytes()).await {
        return Err(no_response(describe_io(&e)));
    }
    let mut buf = Vec::new();
    let (head, len) = loop {
        match http::parse_response(&buf, http::MAX_HEAD_BYTES) {
            http::Parsed::Complete(head, len) => break (head, len),
            http::Parsed::Invalid(reason) => return Err(no_response(reason)),
            http::Parsed::Partial => {
                let mut chunk = [0u8; 4096];
                match tap.read(&mut chunk).await {
                    Ok(0) => return Err(no_response("connection closed".into())),
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
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
    if status != 101 {
        t.log(
            net.now(),
            WHO,
            format!("upgrade answered {status} {reason}"),
        );
        let body = String::from_utf8_lossy(&tail)
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
    if let Some(what) = invalid_101(&head, &key) {
        return Err(fail(
            Outcome::HandshakeInvalid,
            format!("101 not valid: {what} at {}", ms(net.now())),
        ));
    }
    t.log(net.now(), WHO, format!("{status} {reason}"));
    Ok(WebSocketStream::from_partially_read(tap, tail, Role::Client, Some(ws_config())).await)
}

/// The path the upgrade asks for: `/echo`, `/push` with what to push, or the attacker's
/// endpoint; the server's own options (`fragment`, `close`) in the query.
fn request_path(w: &Workload) -> String {
    let mut query = Vec::new();
    match w.kind {
        WorkloadKind::Smuggle => return smuggle::ATTACKER_PATH.to_string(),
        WorkloadKind::Echo if w.server_close_code.is_some() => {
            query.push(format!("count={}", w.messages));
        }
        WorkloadKind::Echo => {}
        WorkloadKind::Push => query.extend([
            format!("count={}", w.messages),
            format!("interval={}", w.interval.as_millis()),
            format!("size={}", w.payload_bytes),
        ]),
    }
    if let Some(n) = w.server_fragment_bytes {
        query.push(format!("fragment={n}"));
    }
    if let Some(code) = w.server_close_code {
        query.push(format!("close={code}"));
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

fn describe(e: &WsError) -> String {
    match e {
        WsError::Io(io) if io.kind() == std::io::ErrorKind::ConnectionReset => {
            "connection reset".into()
        }
        WsError::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            "connection closed".into()
        }
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            "closed without a Close frame (1006)".into()
        }
        other => other.to_string(),
    }
}

/// The workload on an open WebSocket.
struct Session<'a> {
    net: &'a NetRef,
    plan: &'a Plan,
    t: &'a Transcript,
    report: &'a mut Report,
    last: &'a Arc<Mutex<Vec<u8>>>,
    keepalive: Option<Keepalive>,
}

/// Ping keepalive on a fixed schedule from the open.
struct Keepalive {
    every: Duration,
    /// When the next Ping is due.
    next: Duration,
    /// When the oldest unanswered Ping was sent.
    unanswered: Option<Duration>,
    /// Pings sent so far.
    sent: u64,
}

/// What the client is doing when something goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Doing {
    Waiting,
    Idle,
    Closing,
}

impl Session<'_> {
    async fn workload(&mut self, ws: &mut Ws) -> Result<String, Fail> {
        let w = self.plan.workload.clone();
        match w.kind {
            WorkloadKind::Echo => {
                for i in 0..w.messages {
                    self.idle(ws, i).await?;
                    if i > 0 {
                        let until = self.net.now().saturating_add(w.interval);
                        self.quiet(ws, until, Doing::Waiting).await?;
                    }
                    self.echo(ws, i).await?;
                }
                self.idle(ws, w.messages).await?;
            }
            WorkloadKind::Push => {
                for i in 0..w.messages {
                    self.receive_push(ws, i).await?;
                }
            }
            // Run by `smuggle::run`, never on a tungstenite session.
            WorkloadKind::Smuggle => {}
        }
        let closed = match w.server_close_code {
            Some(code) => {
                self.closed_by_server(ws, code).await?;
                format!("server closed {code}")
            }
            None => {
                self.close(ws).await?;
                format!("closed {}", w.close_code)
            }
        };
        let n = self.report.received;
        let shape = shape(&w);
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
                Some(Ok(Message::Pong(_))) => {
                    if let Some(k) = self.keepalive.as_mut() {
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
        self.report.received += 1;
        self.t.log(self.net.now(), WHO, line);
    }

    async fn echo(&mut self, ws: &mut Ws, i: u32) -> Result<(), Fail> {
        let w = &self.plan.workload;
        let message = message(self.plan.seed, i, w.payload_bytes, w.binary);
        let (len, sent_kind) = (message.len(), kind(&message));
        let sent_at = self.net.now();
        let frames = match fragment::send(ws, message.clone(), w.fragment_bytes).await {
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
        self.t
            .log(sent_at, WHO, format!("sent #{i} ({len} bytes{how})"));
        let timeout = w.reply_timeout;
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
            None => Err(fail(
                Outcome::Stalled,
                format!(
                    "no echo of #{i} within {} (sent at {})",
                    ms(timeout),
                    ms(sent_at)
                ),
            )),
        }
    }

    async fn receive_push(&mut self, ws: &mut Ws, i: u32) -> Result<(), Fail> {
        let w = &self.plan.workload;
        let (size, deadline) = (
            w.payload_bytes,
            self.net
                .now()
                .saturating_add(w.interval)
                .saturating_add(w.reply_timeout),
        );
        let message = self.next_data(ws, deadline, Doing::Waiting).await?;
        let Some(message) = message else {
            return Err(fail(
                Outcome::Stalled,
                format!("push #{i} did not arrive by {}", ms(deadline)),
            ));
        };
        let stamp = match &message {
            Message::Text(text) if text.len() == size => text
                .strip_prefix(&format!("push {i} at "))
                .and_then(|rest| rest.split('.').next())
                .and_then(|us| us.parse::<u64>().ok()),
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

    /// Closes with the workload's code and waits for the server's Close, which must carry
    /// the same code (the reference server echoes it).
    async fn close(&mut self, ws: &mut Ws) -> Result<(), Fail> {
        let code = self.plan.workload.close_code;
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: "done".into(),
        };
        if let Err(e) = ws.close(Some(frame)).await {
            return Err(self.broken(e, Doing::Closing));
        }
        self.t
            .log(self.net.now(), WHO, format!("close {code} sent"));
        self.close_handshake(ws, true, |got| {
            (got != code).then(|| format!("sent close {code}, got back {got}"))
        })
        .await
    }

    /// Waits for the server to close first with `code` (`server-close-code`), and answers.
    async fn closed_by_server(&mut self, ws: &mut Ws, code: u16) -> Result<(), Fail> {
        self.t.log(
            self.net.now(),
            WHO,
            format!("awaiting the server's close {code}"),
        );
        self.close_handshake(ws, false, |got| {
            (got != code).then(|| format!("expected the server's close {code}, got {got}"))
        })
        .await
    }

    /// Reads until the connection ends, within the reply timeout: a Close must arrive, and
    /// `wrong` says what is wrong with its code, if anything (`corrupted`). Tungstenite
    /// answers a Close the client did not start with the same code. `sent` says whether the
    /// client closed first: if so, data still in flight from the server is skipped; if not,
    /// nothing but the Close is expected after the last message.
    async fn close_handshake(
        &mut self,
        ws: &mut Ws,
        sent: bool,
        wrong: impl Fn(u16) -> Option<String>,
    ) -> Result<(), Fail> {
        let deadline = self
            .net
            .now()
            .saturating_add(self.plan.workload.reply_timeout);
        let mut answered = false;
        loop {
            let next = tokio::select! {
                biased;
                m = ws.next() => m,
                () = self.net.sleep_until(deadline) => return Err(fail(
                    Outcome::Stalled,
                    format!("close handshake unanswered within {}", ms(self.plan.workload.reply_timeout)),
                )),
            };
            match next {
                Some(Ok(Message::Close(frame))) => {
                    let code = frame.map_or(1005, |f| u16::from(f.code));
                    let replying = if sent { "" } else { ", replying" };
                    self.t.log(
                        self.net.now(),
                        WHO,
                        format!("close {code} received{replying}"),
                    );
                    if let Some(detail) = wrong(code) {
                        let at = ms(self.net.now());
                        return Err(fail(Outcome::Corrupted, format!("{detail}, at {at}")));
                    }
                    answered = true;
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(other)) if !sent && !answered => {
                    return Err(self.unexpected(other, Doing::Closing));
                }
                Some(Ok(_)) => continue,
                Some(Err(WsError::ConnectionClosed)) | None if answered => return Ok(()),
                None => return Err(self.ended(Doing::Closing)),
                // Once the close handshake is complete, how the transport ends (a TLS
                // stream without close_notify, say) no longer matters (RFC 6455 §7.1.1).
                Some(Err(_)) if answered => return Ok(()),
                Some(Err(e)) => return Err(self.fail_connection(ws, e, Doing::Closing).await),
            }
        }
    }

    fn abnormal(&self, doing: Doing, what: &str) -> Fail {
        let at = ms(self.net.now());
        match doing {
            Doing::Idle => fail(Outcome::IdleClosed, format!("{what} while idle, at {at}")),
            Doing::Waiting | Doing::Closing => fail(Outcome::Dropped, format!("{what} at {at}")),
        }
    }

    fn ended(&self, doing: Doing) -> Fail {
        self.abnormal(doing, "closed without a Close frame (1006)")
    }

    fn unexpected(&self, message: Message, doing: Doing) -> Fail {
        match message {
            Message::Close(frame) => {
                let code = frame.map_or(1005, |f| u16::from(f.code));
                self.abnormal(doing, &format!("server closed with {code}"))
            }
            other => fail(
                Outcome::Corrupted,
                format!(
                    "unexpected {}-byte message at {}",
                    other.len(),
                    ms(self.net.now())
                ),
            ),
        }
    }

    /// The server closed while the client was not closing: the client answers its Close
    /// (RFC 6455 §5.5.1: tungstenite has queued the answer, with the same code, or with 1002
    /// for a code that must never be sent, which it then reports as 1002 too), closes its side
    /// of the connection, and reports it.
    async fn closed_early(&mut self, ws: &mut Ws, frame: Option<CloseFrame>, doing: Doing) -> Fail {
        let code = frame.map_or(1005, |f| u16::from(f.code));
        self.t.log(
            self.net.now(),
            WHO,
            format!("close {code} received, replying"),
        );
        if SinkExt::flush(ws).await.is_ok() {
            let _ = ws.get_mut().shutdown().await;
        }
        self.abnormal(doing, &format!("server closed with {code}"))
    }

    /// After `e`, the server's violation of the protocol, fails the connection (RFC 6455
    /// §7.1.7): a Close with the code the violation calls for, then the client closes its side;
    /// any other error is only reported.
    async fn fail_connection(&mut self, ws: &mut Ws, e: WsError, doing: Doing) -> Fail {
        if let Some(code) = violation::close_code(&e) {
            let line = match violation::fail(ws, code).await {
                Ok(()) => format!("close {code} sent, closing"),
                Err(sending) => format!("close {code} failed: {sending}"),
            };
            self.t.log(self.net.now(), WHO, line);
        }
        self.broken(e, doing)
    }

    fn broken(&self, e: WsError, doing: Doing) -> Fail {
        match e {
            WsError::Io(_)
            | WsError::ConnectionClosed
            | WsError::AlreadyClosed
            | WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => self.abnormal(
                doing,
                &format!("{} (1006)", describe(&e).trim_end_matches(" (1006)")),
            ),
            WsError::Protocol(_) => {
                let last = self.last.lock().map(|b| printable(&b)).unwrap_or_default();
                fail(
                    Outcome::Corrupted,
                    format!(
                        "bytes that are not WebSocket frames ({e}) at {}: `{last}`",
                        ms(self.net.now())
                    ),
                )
            }
            WsError::Utf8(_) => fail(
                Outcome::Corrupted,
                format!("text that is not UTF-8 ({e}) at {}", ms(self.net.now())),
            ),
            WsError::Capacity(_) => fail(
                Outcome::Corrupted,
                format!("a message over the limit ({e}) at {}", ms(self.net.now())),
            ),
            other => self.abnormal(doing, &other.to_string()),
        }
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

/// Message `i` of a run: text from [`payload`], or binary from [`binary_payload`].
pub fn message(seed: u64, i: u32, len: usize, binary: bool) -> Message {
    if binary {
        Message::binary(binary_payload(seed, i, len))
    } else {
        Message::text(payload(seed, i, len))
    }
}

/// Binary message `i` of a run: 0xFF (a byte UTF-8 never contains, so the message is not
/// text), the index in four bytes (big-endian), then seeded bytes of any value, `len` bytes in
/// all.
pub fn binary_payload(seed: u64, i: u32, len: usize) -> Vec<u8> {
    let mut rng = Rng::derive(seed, 0x6269_6e61 + u64::from(i));
    let mut bytes = vec![0xFF];
    bytes.extend_from_slice(&i.to_be_bytes());
    while bytes.len() < len {
        bytes.push(rng.below(256) as u8);
    }
    bytes.truncate(len);
    bytes
}

/// Message `i` of a run: its index, then seeded letters, `len` bytes in all.
pub fn payload(seed: u64, i: u32, len: usize) -> String {
    let mut rng = Rng::derive(seed, 0x7061_7969 + u64::from(i));
    let mut text = format!("#{i:05} ");
    while text.len() < len {
        text.push((b'a' + rng.below(26) as u8) as char);
    }
    text.truncate(len);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_have_the_asked_length_and_depend_on_seed_and_index() {
        assert_eq!(payload(1, 0, 32).len(), 32);
        assert_eq!(payload(1, 3, 3), "#00");
        assert_eq!(payload(1, 2, 40), payload(1, 2, 40));
        assert_ne!(payload(1, 2, 40), payload(2, 2, 40));
        assert_ne!(payload(1, 2, 40), payload(1, 3, 40));
    }

    #[test]
    fn binary_payloads_are_seeded_and_never_utf8() {
        assert_eq!(binary_payload(1, 0, 0), Vec::<u8>::new());
        assert_eq!(binary_payload(1, 7, 5), [0xFF, 0, 0, 0, 7]);
        let long = binary_payload(1, 2, 1000);
        assert_eq!(long.len(), 1000);
        assert!(std::str::from_utf8(&long).is_err());
        assert_eq!(long, binary_payload(1, 2, 1000));
        assert_ne!(long, binary_payload(2, 2, 1000));
        assert!(long.iter().any(|b| *b >= 0x80 && *b != 0xFF));
    }

    #[test]
    fn the_request_path_carries_the_servers_options() {
        let mut w = Workload::new(WorkloadKind::Echo);
        assert_eq!(request_path(&w), "/echo");
        w.server_fragment_bytes = Some(10);
        w.server_close_code = Some(4002);
        assert_eq!(request_path(&w), "/echo?count=5&fragment=10&close=4002");
        let mut p = Workload::new(WorkloadKind::Push);
        p.server_close_code = Some(3000);
        assert_eq!(
            request_path(&p),
            "/push?count=5&interval=100&size=32&close=3000"
        );
    }

    #[test]
    fn printable_stops_at_the_first_line_end() {
        assert_eq!(
            printable(b"HTTP/1.1 400 Bad Request\r\nX: y"),
            "HTTP/1.1 400 Bad Request"
        );
        assert_eq!(printable(&[0x81, 0x02, b'h', b'i']), "..hi");
    }
}
