//! The close handshake: the client closes with the workload's code and reason and the
//! server's Close must carry both back, or the server closes first with the code the scenario
//! asked for and its own reason ([`server::SERVER_CLOSE_REASON`]) and the client answers.

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::WHO;
use super::handshake::Ws;
use super::session::{Doing, Session};
use crate::endpoints::connect::{Fail, fail, ms};
use crate::endpoints::server;
use crate::verdict::outcome::Outcome;

impl Session<'_> {
    /// Closes with the workload's code and waits for the server's Close, which must carry
    /// the same code (the reference server echoes it).
    pub(super) async fn close(&mut self, ws: &mut Ws) -> Result<(), Fail> {
        let code = self.plan.workload.close_code;
        let reason = self.plan.workload.close_reason.clone();
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: reason.clone().into(),
        };
        if let Err(e) = ws.close(Some(frame)).await {
            return Err(self.broken(e, Doing::Closing));
        }
        self.t
            .log(self.net.now(), WHO, format!("close {code} sent"));
        if self.plan.workload.half_close {
            // The write side ends here (close_notify first, over TLS); the read side stays
            // open for the server's Close.
            if let Err(e) = tokio::io::AsyncWriteExt::shutdown(ws.get_mut()).await {
                return Err(fail(
                    Outcome::Dropped,
                    format!("half-close failed: {e}, at {}", ms(self.net.now())),
                ));
            }
            self.t.log(
                self.net.now(),
                WHO,
                "half-closed: no more bytes from the client",
            );
        }
        self.close_handshake(ws, true, |got, got_reason| {
            if got != code {
                Some(format!("sent close {code}, got back {got}"))
            } else {
                (got_reason != reason)
                    .then(|| format!("sent close {code} `{reason}`, got back {got} `{got_reason}`"))
            }
        })
        .await
    }

    /// Waits for the server to close first with `code` (`server-close-code`), and answers.
    pub(super) async fn closed_by_server(&mut self, ws: &mut Ws, code: u16) -> Result<(), Fail> {
        self.t.log(
            self.net.now(),
            WHO,
            format!("awaiting the server's close {code}"),
        );
        let reason = server::SERVER_CLOSE_REASON;
        self.close_handshake(ws, false, |got, got_reason| {
            if got != code {
                Some(format!("expected the server's close {code}, got {got}"))
            } else {
                (got_reason != reason).then(|| {
                    format!("the server's close {code} came with the reason `{got_reason}`, not `{reason}`")
                })
            }
        })
        .await
    }

    /// Waits for the connection to end after the last message, which the server resets
    /// (`server-reset`): `dropped` once it ends, however it does (a reset, a FIN, a Close the
    /// proxy made), `stalled` if it is still open after the reply timeout: a proxy that keeps
    /// the client's side of a dead tunnel open.
    pub(super) async fn reset_by_server(&mut self, ws: &mut Ws) -> Fail {
        self.t.log(
            self.net.now(),
            WHO,
            "awaiting the end of the connection the server resets",
        );
        let timeout = self.plan.workload.reply_timeout;
        let deadline = self.net.now().saturating_add(timeout);
        loop {
            let next = tokio::select! {
                biased;
                m = ws.next() => m,
                () = self.net.sleep_until(deadline) => return fail(
                    Outcome::Stalled,
                    format!("the connection still open {} after the last message, though the server reset it", ms(timeout)),
                ),
            };
            let how = match next {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Close(frame))) => {
                    format!("a Close {} came", frame.map_or(1005, |f| u16::from(f.code)))
                }
                Some(Ok(other)) => return self.unexpected(other, Doing::Closing),
                Some(Err(e)) => format!("{e}"),
                None => "the stream ended".to_string(),
            };
            let n = self.report.received;
            return fail(
                Outcome::Dropped,
                format!(
                    "{n}/{} messages, then the connection the server reset ended ({how}) at {}",
                    self.plan.workload.messages,
                    ms(self.net.now())
                ),
            );
        }
    }

    /// Reads until the connection ends, within the reply timeout: a Close must arrive, then the
    /// connection's end (a connection left open after the close handshake is `stalled`), and
    /// `wrong` says what is wrong with its code and reason, if anything (`corrupted`).
    /// Tungstenite answers a Close the client did not start with the same code and reason. `sent` says whether the
    /// client closed first: if so, data still in flight from the server is skipped; if not,
    /// nothing but the Close is expected after the last message.
    async fn close_handshake(
        &mut self,
        ws: &mut Ws,
        sent: bool,
        wrong: impl Fn(u16, &str) -> Option<String>,
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
                    if answered {
                        // The Close came, but the connection did not end: the server closes
                        // TCP first (RFC 6455 §7.1.1), and nothing passed that on.
                        format!(
                            "the connection still open {} after the close handshake: nothing ended the client's side of a tunnel that is over",
                            ms(self.plan.workload.reply_timeout)
                        )
                    } else {
                        format!("close handshake unanswered within {}", ms(self.plan.workload.reply_timeout))
                    },
                )),
            };
            match next {
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = frame.map_or((1005, String::new()), |f| {
                        (u16::from(f.code), f.reason.to_string())
                    });
                    let replying = if sent { "" } else { ", replying" };
                    self.t.log(
                        self.net.now(),
                        WHO,
                        format!("close {code} received{replying}"),
                    );
                    if let Some(detail) = wrong(code, &reason) {
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
                // After a half-close, a tunnel may end both ways at the client's FIN
                // (RFC 9110 §9.3.6): the connection ending is what the client waits for.
                Some(Err(_)) | None if sent && self.plan.workload.half_close => {
                    self.t.log(
                        self.net.now(),
                        WHO,
                        "the connection ended after the half-close, without the server's Close",
                    );
                    self.half_close_cut = true;
                    return Ok(());
                }
                None => return Err(self.ended(Doing::Closing)),
                // Once the close handshake is complete, how the transport ends (a TLS
                // stream without close_notify, say) no longer matters (RFC 6455 §7.1.1).
                Some(Err(_)) if answered => return Ok(()),
                Some(Err(e)) => return Err(self.fail_connection(ws, e, Doing::Closing).await),
            }
        }
    }
}
