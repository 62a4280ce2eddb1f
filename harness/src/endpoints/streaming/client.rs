//! The HTTP streaming client: the stream opened by a GET through the plan's transport (so
//! through an explicit proxy's tunnel, and TLS on port 443 for https), its answer's head read
//! with the models' parser and its body decoded from chunked coding as it arrives
//! ([`gauntlet_proxies::http::ChunkedScanner::decode`]), the events read from it by the
//! bounded reader ([`super::sse::Reader`]); each message sent by a POST on a connection of its
//! own (the Engine.IO client's exchange); at the end a DELETE, answered by the `close` event
//! and the end of the body. The workload is the reference client's: echoes (round trips) or
//! pushes (one way), with idle periods, each expected message within `reply-timeout-ms`.

use std::time::Duration;

use gauntlet_proxies::http::{ChunkedScanner, Framing, Head};

use super::sse::{self, SseError};
use super::{EventError, Message, PATH, Received};
use crate::endpoints::client::{binary_payload, payload, push_stamp};
use crate::endpoints::connect::{AsyncIo, Fail, Plan, Report, describe_io, fail, ms, no_echo};
use crate::endpoints::engineio::client::http::{Unanswered, Way, exchange, request, status};
use crate::engine::{NetRef, scratch};
use crate::scenario::{Scheme, WorkloadKind};
use crate::verdict::outcome::Outcome;
use crate::verdict::transcript::Transcript;

/// The name the client logs under.
const WHO: &str = "client";
/// The most read from the stream at a time.
const CHUNK: usize = 8192;

/// The transport's name in a strategy's trail: on port 80, or over TLS on 443.
pub fn transport_name(scheme: Scheme) -> &'static str {
    match scheme {
        Scheme::Ws => "streaming",
        Scheme::Wss => "https-streaming",
    }
}

/// Runs the plan's workload over a stream (https for a wss plan), to its report. Never
/// fails: everything the network does is an outcome.
pub async fn run(net: &NetRef, plan: &Plan, t: &Transcript) -> Report {
    let mut report = Report::new();
    let result = match open(net, plan, t, &mut report).await {
        Ok(stream) => {
            let mut work = Work {
                net,
                plan,
                t,
                report: &mut report,
                stream,
            };
            work.run().await
        }
        Err(f) => Err(f),
    };
    match result {
        Ok(detail) => report.detail = detail,
        Err(f) => {
            t.log(
                net.now(),
                WHO,
                format!(
                    "{}: outcome {}: {}",
                    transport_name(plan.scheme),
                    f.outcome,
                    f.detail
                ),
            );
            report.outcome = f.outcome;
            report.detail = f.detail;
        }
    }
    report
}

/// How the stream's body is delimited.
enum Body {
    Chunked(ChunkedScanner),
    Length(u64),
    UntilClose,
}

/// An open stream: its connection, the body's framing, the events read.
struct Stream {
    io: Box<dyn AsyncIo>,
    body: Body,
    events: sse::Reader,
    sid: String,
    /// Bytes of the body read with the head, not yet read as events.
    pending: Vec<u8>,
    /// The body has ended: once its events are taken, nothing more comes.
    ended: bool,
}

/// Why no event came.
enum Cut {
    /// The body ended (after the `close` event, as it should).
    Ended,
    /// The connection closed or broke: how.
    Broken(String),
    /// The bytes are not an event stream, or an event not one the format has.
    Corrupt(String),
}

impl From<SseError> for Cut {
    fn from(e: SseError) -> Self {
        Cut::Corrupt(e.to_string())
    }
}

impl From<EventError> for Cut {
    fn from(e: EventError) -> Self {
        Cut::Corrupt(e.to_string())
    }
}

impl Stream {
    /// The next event, or `None` if none has come by `deadline`.
    async fn next(&mut self, net: &NetRef, deadline: Duration) -> Result<Option<Received>, Cut> {
        loop {
            if let Some(event) = self.events.take() {
                return Ok(Some(Received::read(event)?));
            }
            if self.ended {
                return Err(Cut::Ended);
            }
            if !self.pending.is_empty() {
                let bytes = std::mem::take(&mut self.pending);
                self.ended = self.feed(&bytes)?;
                continue;
            }
            let mut buf = Vec::new();
            let n = tokio::select! {
                biased;
                r = scratch::read_into(&mut self.io, CHUNK, &mut buf) => {
                    r.map_err(|e| Cut::Broken(describe_io(&e)))?
                }
                () = net.sleep_until(deadline) => return Ok(None),
            };
            if n == 0 {
                return match self.body {
                    Body::UntilClose => Err(Cut::Ended),
                    _ => Err(Cut::Broken("connection closed".into())),
                };
            }
            self.ended = self.feed(&buf)?;
        }
    }

    /// Reads body bytes as they came: `true` once the body has ended (its events read).
    fn feed(&mut self, bytes: &[u8]) -> Result<bool, Cut> {
        let ended = match &mut self.body {
            Body::Chunked(scanner) => {
                let mut data = Vec::new();
                let (_, ended) = scanner.decode(bytes, &mut data).map_err(|e| {
                    Cut::Corrupt(format!("a body that is not chunked coding ({e})"))
                })?;
                self.events.push(&data)?;
                ended
            }
            Body::Length(left) => {
                let take = usize::try_from(*left)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                *left -= take as u64;
                self.events.push(&bytes[..take])?;
                *left == 0
            }
            Body::UntilClose => {
                self.events.push(bytes)?;
                false
            }
        };
        Ok(ended)
    }
}

/// The stream's target: the path after the plan's prefix, the push in the query.
fn target(plan: &Plan) -> String {
    let w = &plan.workload;
    let path = format!("{}{PATH}", plan.path_prefix);
    match w.kind {
        WorkloadKind::Push => format!(
            "{path}?app=push&count={}&interval={}&size={}{}",
            w.messages,
            w.interval.as_millis(),
            w.payload_bytes,
            w.from_query()
        ),
        _ => path,
    }
}

/// The longest line or event the client takes: a message of the workload's size in base64,
/// and room for the field's name; at least 1 KiB.
fn max_event(plan: &Plan) -> usize {
    (plan.workload.payload_bytes.div_ceil(3) * 4 + 64).max(1024)
}

/// Opens the stream within the handshake budget: the GET, a `200` of `text/event-stream`,
/// the `open` event.
async fn open(
    net: &NetRef,
    plan: &Plan,
    t: &Transcript,
    report: &mut Report,
) -> Result<Stream, Fail> {
    let start = net.now();
    let deadline = start.saturating_add(plan.handshake_timeout);
    let target = target(plan);
    t.log(net.now(), WHO, format!("stream GET {target}"));
    let way: Way<'_> = (net, plan, t);
    let timeout = || {
        fail(
            Outcome::HandshakeTimeout,
            format!(
                "the stream did not open within {} (at {})",
                ms(plan.handshake_timeout),
                ms(net.now())
            ),
        )
    };
    let answered = tokio::select! {
        biased;
        r = request(way, "GET", &target, (&[], "")) => r,
        () = net.sleep_until(deadline) => return Err(timeout()),
    };
    let (io, head, rest) = answered.map_err(|e| match e {
        Unanswered::Connect(f) => f,
        Unanswered::Broken(how) => fail(
            Outcome::HandshakeRejected,
            format!("no answer to the stream's GET: {how}, at {}", ms(net.now())),
        ),
    })?;
    let mut stream = accept(io, &head, rest, plan)?;
    let first = match stream.next(net, deadline).await {
        Ok(Some(first)) => first,
        Ok(None) => return Err(timeout()),
        Err(cut) => return Err(broken(net, cut, "before its `open` event", false)),
    };
    let Received::Open(sid) = first else {
        return Err(fail(
            Outcome::HandshakeInvalid,
            format!("the stream's first event is not `open`: {first:?}"),
        ));
    };
    report.handshake = Some(net.now().saturating_sub(start));
    t.log(net.now(), WHO, format!("stream {sid} open"));
    stream.sid = sid;
    Ok(stream)
}

/// The stream that the answer `head` opens, or why it opens none.
fn accept(io: Box<dyn AsyncIo>, head: &Head, rest: Vec<u8>, plan: &Plan) -> Result<Stream, Fail> {
    let (code, reason) = status(head);
    if code != 200 {
        return Err(fail(
            Outcome::HandshakeRejected,
            format!("the stream's GET answered HTTP {code} {reason}"),
        ));
    }
    let content_type = head
        .fields
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| String::from_utf8_lossy(v).to_ascii_lowercase())
        .unwrap_or_default();
    if !content_type.trim_start().starts_with("text/event-stream") {
        return Err(fail(
            Outcome::HandshakeInvalid,
            format!("the stream's answer is `{content_type}`, not `text/event-stream`"),
        ));
    }
    let body = match head.framing(Some("GET")) {
        Ok(Framing::Chunked(scanner)) => Body::Chunked(scanner),
        Ok(Framing::Length(n)) => Body::Length(n),
        Ok(Framing::UntilClose) => Body::UntilClose,
        Ok(Framing::None) => Body::Length(0),
        Err(e) => {
            return Err(fail(
                Outcome::HandshakeInvalid,
                format!("the stream's body cannot be read ({e})"),
            ));
        }
    };
    Ok(Stream {
        io,
        events: sse::Reader::new(max_event(plan)),
        sid: String::new(),
        ended: matches!(body, Body::Length(0)),
        body,
        pending: rest,
    })
}

/// The failure a cut stream is: `dropped` (`idle-closed` while idle) for a stream that ended
/// or broke, `corrupted` for bytes that are not events.
fn broken(net: &NetRef, cut: Cut, when: &str, idle: bool) -> Fail {
    let outcome = if idle {
        Outcome::IdleClosed
    } else {
        Outcome::Dropped
    };
    match cut {
        Cut::Ended => fail(
            outcome,
            format!("the stream ended {when}, at {}", ms(net.now())),
        ),
        Cut::Broken(how) => fail(
            outcome,
            format!("stream {how} {when}, at {}", ms(net.now())),
        ),
        Cut::Corrupt(what) => fail(Outcome::Corrupted, format!("{what}, at {}", ms(net.now()))),
    }
}

/// The workload on an open stream.
struct Work<'a> {
    net: &'a NetRef,
    plan: &'a Plan,
    t: &'a Transcript,
    report: &'a mut Report,
    stream: Stream,
}

impl Work<'_> {
    async fn run(&mut self) -> Result<String, Fail> {
        let w = self.plan.workload.clone();
        match w.kind {
            WorkloadKind::Echo => {
                for i in w.range() {
                    self.idle(i).await?;
                    if i > w.from {
                        self.quiet(self.net.now().saturating_add(w.interval), false)
                            .await?;
                    }
                    self.echo(i).await?;
                }
                self.idle(w.messages).await?;
            }
            WorkloadKind::Push => {
                for i in w.range() {
                    self.push(i).await?;
                }
            }
            // The scenario reader refuses it with a streaming strategy.
            WorkloadKind::Smuggle => {}
        }
        self.close().await?;
        let (n, binary) = (
            self.report.received,
            if w.binary { " (binary)" } else { "" },
        );
        Ok(match w.kind {
            WorkloadKind::Push => format!("{n}/{} pushes received, closed", w.messages),
            _ => format!("{n}/{} echoed{binary}, closed", w.messages),
        })
    }

    /// The idle periods after message `after`.
    async fn idle(&mut self, after: u32) -> Result<(), Fail> {
        let periods = self.plan.workload.idle_after(after);
        for period in periods {
            self.t
                .log(self.net.now(), WHO, format!("idle for {period} ms"));
            let until = self.net.now().saturating_add(Duration::from_millis(period));
            self.quiet(until, true).await?;
        }
        Ok(())
    }

    /// Until `until`, expecting no event.
    async fn quiet(&mut self, until: Duration, idle: bool) -> Result<(), Fail> {
        match self.stream.next(self.net, until).await {
            Ok(None) => Ok(()),
            Ok(Some(e)) => Err(fail(
                Outcome::Corrupted,
                format!("an unexpected event {e:?}, at {}", ms(self.net.now())),
            )),
            Err(cut) => Err(broken(self.net, cut, "while quiet", idle)),
        }
    }

    /// Counts a message that arrived intact, with its latency.
    fn arrived(&mut self, latency: Duration, line: String) {
        self.report.latencies.push(latency);
        self.report.received += 1;
        self.report.first_message.get_or_insert(self.net.now());
        self.t.log(self.net.now(), WHO, line);
    }

    /// A request about the stream (`POST` a message, `DELETE` it) and its answer, which must
    /// be a 2xx; otherwise the stream is lost (`dropped`).
    async fn send(&mut self, method: &str, body: &[u8], binary: bool) -> Result<(), Fail> {
        let target = format!("{}{PATH}?sid={}", self.plan.path_prefix, self.stream.sid);
        let content_type = if binary {
            "application/octet-stream"
        } else {
            "text/plain;charset=UTF-8"
        };
        let way: Way<'_> = (self.net, self.plan, self.t);
        match exchange(way, method, &target, (body, content_type)).await {
            Ok(reply) if (200..300).contains(&reply.status) => Ok(()),
            Ok(reply) => Err(fail(
                Outcome::Dropped,
                format!(
                    "{method} {target} answered {}, at {}",
                    reply.describe(),
                    ms(self.net.now())
                ),
            )),
            Err(Unanswered::Connect(f)) => Err(f),
            Err(Unanswered::Broken(how)) => Err(fail(
                Outcome::Dropped,
                format!(
                    "no answer to {method} {target}: {how}, at {}",
                    ms(self.net.now())
                ),
            )),
        }
    }

    async fn echo(&mut self, i: u32) -> Result<(), Fail> {
        let w = &self.plan.workload;
        let (seed, len, timeout, binary) =
            (self.plan.seed, w.payload_bytes, w.reply_timeout, w.binary);
        let sent = if binary {
            Message::Binary(binary_payload(seed, i, len))
        } else {
            Message::Text(payload(seed, i, len))
        };
        let bytes = match &sent {
            Message::Binary(b) => b.clone(),
            Message::Text(s) => s.clone().into_bytes(),
        };
        let sent_at = self.net.now();
        self.send("POST", &bytes, binary).await?;
        self.report.sent += 1;
        let how = if binary { ", binary" } else { "" };
        self.t.log(
            sent_at,
            WHO,
            format!("sent #{i} ({len} bytes{how}) by POST"),
        );
        match self
            .stream
            .next(self.net, sent_at.saturating_add(timeout))
            .await
        {
            Ok(Some(Received::Message(echo))) if echo == sent => {
                let rtt = self.net.now().saturating_sub(sent_at);
                self.arrived(
                    rtt,
                    format!("echo #{i} on the stream, round trip {}", ms(rtt)),
                );
                Ok(())
            }
            Ok(Some(other)) => Err(fail(
                Outcome::Corrupted,
                format!(
                    "echo of #{i} differs: {other:?} received, at {}",
                    ms(self.net.now())
                ),
            )),
            Ok(None) => Err(no_echo(i, timeout, sent_at)),
            Err(cut) => Err(broken(self.net, cut, &format!("awaiting echo #{i}"), false)),
        }
    }

    async fn push(&mut self, i: u32) -> Result<(), Fail> {
        let w = &self.plan.workload;
        let size = w.payload_bytes;
        let deadline = self
            .net
            .now()
            .saturating_add(w.interval)
            .saturating_add(w.reply_timeout);
        let received = match self.stream.next(self.net, deadline).await {
            Ok(Some(r)) => r,
            Ok(None) => {
                return Err(fail(
                    Outcome::Stalled,
                    format!("push #{i} did not arrive by {}", ms(deadline)),
                ));
            }
            Err(cut) => return Err(broken(self.net, cut, &format!("awaiting push #{i}"), false)),
        };
        let stamp = match &received {
            Received::Message(Message::Text(text)) => push_stamp(text, i, size),
            _ => None,
        };
        let Some(us) = stamp else {
            return Err(fail(
                Outcome::Corrupted,
                format!(
                    "push #{i} arrived changed ({received:?}), at {}",
                    ms(self.net.now())
                ),
            ));
        };
        let latency = self.net.now().saturating_sub(Duration::from_micros(us));
        self.arrived(
            latency,
            format!("push #{i} on the stream, one way {}", ms(latency)),
        );
        Ok(())
    }

    /// The DELETE, then the `close` event and the body's end within `reply-timeout-ms`.
    async fn close(&mut self) -> Result<(), Fail> {
        let timeout = self.plan.workload.reply_timeout;
        let deadline = self.net.now().saturating_add(timeout);
        self.send("DELETE", &[], false).await?;
        let unanswered = || {
            fail(
                Outcome::Stalled,
                format!("the stream did not close within {}", ms(timeout)),
            )
        };
        match self.stream.next(self.net, deadline).await {
            Ok(Some(Received::Close)) => {}
            Ok(Some(other)) => {
                return Err(fail(
                    Outcome::Corrupted,
                    format!("{other:?} where `close` was due, at {}", ms(self.net.now())),
                ));
            }
            Ok(None) => return Err(unanswered()),
            Err(cut) => return Err(broken(self.net, cut, "before its `close` event", false)),
        }
        match self.stream.next(self.net, deadline).await {
            Err(Cut::Ended) => {
                self.t.log(
                    self.net.now(),
                    WHO,
                    format!("stream {} closed", self.stream.sid),
                );
                Ok(())
            }
            Ok(None) => Err(unanswered()),
            Ok(Some(other)) => Err(fail(
                Outcome::Corrupted,
                format!("{other:?} after `close`, at {}", ms(self.net.now())),
            )),
            Err(cut) => Err(broken(self.net, cut, "after its `close` event", false)),
        }
    }
}
