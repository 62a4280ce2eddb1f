//! The echo with permessage-deflate negotiated (`[client.request] permessage-deflate`): each
//! message goes out compressed in one masked frame with RSV1, and its echo must come back
//! compressed (RSV1 set) and inflate to what was sent; then the client closes and waits for
//! the server's Close and the connection's end. tungstenite refuses RSV1, so the frames are
//! read and written by hand on the session's stream ([`crate::endpoints::deflate`]), which
//! tungstenite has read nothing of: the server sends nothing before the first echo.

use std::time::Duration;

use gauntlet_proxies::rng::Rng;
use tokio::io::AsyncWriteExt;

use super::WHO;
use super::handshake::Ws;
use super::payload::message;
use super::session::{Doing, Session};
use crate::endpoints::connect::{Fail, fail, ms, no_echo};
use crate::endpoints::deflate::{self, MAX_MESSAGE, read_frame};
use crate::endpoints::frames::Frame;
use crate::verdict::outcome::Outcome;
use gauntlet_proxies::ws_frames::{encode, opcode};

impl Session<'_> {
    /// The workload's echoes, compressed both ways, then the close.
    pub(super) async fn deflate_echo(&mut self, ws: &mut Ws) -> Result<String, Fail> {
        let w = self.plan.workload.clone();
        let mut buf = Vec::new();
        let mut compressed_out = 0usize;
        for i in w.range() {
            let mut rest = w.idle_after(i).iter().sum::<u64>();
            if i > w.from {
                rest += w.interval.as_millis() as u64;
            }
            if rest > 0 {
                let until = self.net.now().saturating_add(Duration::from_millis(rest));
                self.net.sleep_until(until).await;
            }
            let data = message(self.plan.seed, i, w.payload_bytes, w.binary).into_data();
            let op = if w.binary {
                opcode::BINARY
            } else {
                opcode::TEXT
            };
            let frame = deflate::frame(op, &data, Some(self.mask(i)));
            let sent_at = self.net.now();
            if let Err(e) = ws.get_mut().write_all(&frame).await {
                return Err(self.abnormal(Doing::Waiting, &format!("send failed: {e}")));
            }
            self.report.sent += 1;
            compressed_out += frame.len();
            self.t.log(
                sent_at,
                WHO,
                format!(
                    "sent #{i} ({} bytes, compressed into a {}-byte frame)",
                    data.len(),
                    frame.len()
                ),
            );
            let deadline = sent_at.saturating_add(w.reply_timeout_for(i));
            let echo = loop {
                let frame = self.next_frame(ws, &mut buf, deadline).await?;
                match frame {
                    None => return Err(no_echo(i, w.reply_timeout_for(i), sent_at)),
                    Some(f) if f.opcode == 0xA => continue,
                    Some(f) if f.opcode == 0x9 => {
                        let pong = encode(0xA, &f.payload, Some(self.mask(i)));
                        let _ = ws.get_mut().write_all(&pong).await;
                        continue;
                    }
                    Some(f) => break f,
                }
            };
            self.check_echo(i, &echo, op, &data)?;
            let rtt = self.net.now() - sent_at;
            self.report.latencies.push(rtt);
            self.report.first_message.get_or_insert(self.net.now());
            self.report.received += 1;
            self.t.log(
                self.net.now(),
                WHO,
                format!("echo #{i}, compressed, round trip {}", ms(rtt)),
            );
        }
        let last = w.idle_after(w.messages).iter().sum::<u64>();
        if last > 0 {
            let until = self.net.now().saturating_add(Duration::from_millis(last));
            self.net.sleep_until(until).await;
        }
        self.deflate_close(ws, &mut buf).await?;
        Ok(format!(
            "{}/{} echoed, compressed both ways (permessage-deflate; {} bytes of frames sent), closed {}",
            self.report.received, w.messages, compressed_out, w.close_code
        ))
    }

    /// The mask of the client's `i`th frame.
    fn mask(&self, i: u32) -> [u8; 4] {
        let mut mask = [0u8; 4];
        Rng::derive(self.plan.seed, 0x6465_666c ^ u64::from(i)).fill(&mut mask);
        mask
    }

    /// The next frame before `deadline`, `None` when the deadline passes first; the
    /// connection's end or bytes that are not a frame end the session.
    async fn next_frame(
        &mut self,
        ws: &mut Ws,
        buf: &mut Vec<u8>,
        deadline: Duration,
    ) -> Result<Option<Frame>, Fail> {
        let read = tokio::select! {
            biased;
            r = read_frame(ws.get_mut(), buf) => r,
            () = self.net.sleep_until(deadline) => return Ok(None),
        };
        match read {
            Ok(Some(frame)) => Ok(Some(frame)),
            Ok(None) => Err(self.ended(Doing::Waiting)),
            Err(why) => Err(fail(
                Outcome::Corrupted,
                format!(
                    "bytes that are not a frame arrived: {why}, at {}",
                    ms(self.net.now())
                ),
            )),
        }
    }

    /// Whether `echo` is message `i` (`data`, sent as `op`) come back compressed.
    fn check_echo(&self, i: u32, echo: &Frame, op: u8, data: &[u8]) -> Result<(), Fail> {
        let at = ms(self.net.now());
        let wrong = |what: String| {
            Err(fail(
                Outcome::Corrupted,
                format!("echo #{i} {what}, at {at}"),
            ))
        };
        if echo.opcode == opcode::CLOSE {
            let code = echo
                .payload
                .get(..2)
                .map_or(1005, |c| u16::from_be_bytes([c[0], c[1]]));
            return Err(fail(
                Outcome::Dropped,
                format!("a Close {code} came instead of echo #{i}, at {at}"),
            ));
        }
        if echo.opcode != op || !echo.fin {
            return wrong(format!(
                "came as opcode {:#x}{}, not one frame of opcode {op:#x}",
                echo.opcode,
                if echo.fin { "" } else { " unfinished" }
            ));
        }
        if !echo.rsv1 {
            return wrong(
                "came uncompressed (no RSV1), though the server compresses every message: something on the way inflated it"
                    .to_string(),
            );
        }
        match deflate::decompress(&echo.payload, MAX_MESSAGE) {
            Err(why) => wrong(format!("does not inflate: {why}")),
            Ok(got) if got != data => wrong(format!(
                "inflates to {} bytes that differ from the {} sent",
                got.len(),
                data.len()
            )),
            Ok(_) => Ok(()),
        }
    }

    /// Sends the Close with the workload's code, reads to the server's Close, which must
    /// carry it, then to the connection's end, within the reply timeout.
    async fn deflate_close(&mut self, ws: &mut Ws, buf: &mut Vec<u8>) -> Result<(), Fail> {
        let code = self.plan.workload.close_code;
        let reason = self.plan.workload.close_reason.clone();
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(reason.as_bytes());
        let close = encode(opcode::CLOSE, &payload, Some(self.mask(u32::MAX)));
        if let Err(e) = ws.get_mut().write_all(&close).await {
            return Err(self.abnormal(Doing::Closing, &format!("close failed: {e}")));
        }
        self.t
            .log(self.net.now(), WHO, format!("close {code} sent"));
        let timeout = self.plan.workload.reply_timeout;
        let deadline = self.net.now().saturating_add(timeout);
        let unanswered = || {
            fail(
                Outcome::Stalled,
                format!("close handshake unanswered within {}", ms(timeout)),
            )
        };
        loop {
            let read = tokio::select! {
                biased;
                r = read_frame(ws.get_mut(), buf) => r,
                () = self.net.sleep_until(deadline) => return Err(unanswered()),
            };
            match read {
                Ok(Some(f)) if f.opcode == opcode::CLOSE => {
                    let got = f
                        .payload
                        .get(..2)
                        .map_or(1005, |c| u16::from_be_bytes([c[0], c[1]]));
                    let got_reason =
                        String::from_utf8_lossy(f.payload.get(2..).unwrap_or_default());
                    self.t
                        .log(self.net.now(), WHO, format!("close {got} received"));
                    if (got, got_reason.as_ref()) != (code, reason.as_str()) {
                        return Err(fail(
                            Outcome::Corrupted,
                            format!(
                                "sent close {code} `{reason}`, got back {got} `{got_reason}`, at {}",
                                ms(self.net.now())
                            ),
                        ));
                    }
                    break;
                }
                Ok(Some(_)) => continue,
                Ok(None) => return Err(self.ended(Doing::Closing)),
                Err(why) => {
                    return Err(fail(
                        Outcome::Corrupted,
                        format!(
                            "bytes that are not a frame arrived: {why}, at {}",
                            ms(self.net.now())
                        ),
                    ));
                }
            }
        }
        // The server closes the connection first (RFC 6455 §7.1.1).
        loop {
            let read = tokio::select! {
                biased;
                r = read_frame(ws.get_mut(), buf) => r,
                () = self.net.sleep_until(deadline) => return Err(fail(
                    Outcome::Stalled,
                    format!(
                        "the connection still open {} after the close handshake: nothing ended the client's side of a tunnel that is over",
                        ms(timeout)
                    ),
                )),
            };
            match read {
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => return Ok(()),
            }
        }
    }
}
