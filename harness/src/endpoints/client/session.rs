//! An open session ([`Session`]): what the workload, the keepalive and the close handshake
//! share, and how each way a session can break is classified: closed while idle
//! (`idle-closed`) or not (`dropped`), bytes that are not frames or text that is not UTF-8
//! (`corrupted`), a server that breaks the protocol failed with a Close first.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::SinkExt;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use super::WHO;
use super::handshake::Ws;
use crate::endpoints::connect::{Fail, Plan, Report, fail, ms, printable};
use crate::endpoints::violation;
use crate::engine::NetRef;
use crate::verdict::outcome::Outcome;
use crate::verdict::transcript::Transcript;

/// The workload on an open WebSocket.
pub(super) struct Session<'a> {
    pub(super) net: &'a NetRef,
    pub(super) plan: &'a Plan,
    pub(super) t: &'a Transcript,
    pub(super) report: &'a mut Report,
    pub(super) last: &'a Arc<Mutex<Vec<u8>>>,
    pub(super) keepalive: Option<Keepalive>,
    /// When the first message went out with the request head
    /// (`first-message-with-request`), until the workload takes it as sent.
    pub(super) pipelined: Option<Duration>,
    /// Whether the connection ended at the client's half-close, before the server's Close
    /// came back (`half-close`).
    pub(super) half_close_cut: bool,
    /// When the client had the proxy told to stop (`stop-proxy-after`), if it has.
    pub(super) stopped_at: Option<Duration>,
    /// The payload of the Ping sent between a message's fragments
    /// (`ping-between-fragments`), until its Pong comes.
    pub(super) pong_due: Option<Vec<u8>>,
}

/// Ping keepalive on a fixed schedule from the open.
pub(super) struct Keepalive {
    pub(super) every: Duration,
    /// When the next Ping is due.
    pub(super) next: Duration,
    /// When the oldest unanswered Ping was sent.
    pub(super) unanswered: Option<Duration>,
    /// Pings sent so far.
    pub(super) sent: u64,
}

/// What the client is doing when something goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Doing {
    Waiting,
    Idle,
    Closing,
}

impl Session<'_> {
    pub(super) fn abnormal(&self, doing: Doing, what: &str) -> Fail {
        let at = ms(self.net.now());
        match doing {
            Doing::Idle => fail(Outcome::IdleClosed, format!("{what} while idle, at {at}")),
            Doing::Waiting | Doing::Closing => fail(Outcome::Dropped, format!("{what} at {at}")),
        }
    }

    pub(super) fn ended(&self, doing: Doing) -> Fail {
        self.abnormal(doing, "closed without a Close frame (1006)")
    }

    pub(super) fn unexpected(&self, message: Message, doing: Doing) -> Fail {
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
    pub(super) async fn closed_early(
        &mut self,
        ws: &mut Ws,
        frame: Option<CloseFrame>,
        doing: Doing,
    ) -> Fail {
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
    pub(super) async fn fail_connection(&mut self, ws: &mut Ws, e: WsError, doing: Doing) -> Fail {
        if let Some(code) = violation::close_code(&e) {
            let line = match violation::fail(ws, code).await {
                Ok(()) => format!("close {code} sent, closing"),
                Err(sending) => format!("close {code} failed: {sending}"),
            };
            self.t.log(self.net.now(), WHO, line);
        }
        self.broken(e, doing)
    }

    pub(super) fn broken(&self, e: WsError, doing: Doing) -> Fail {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_stops_at_the_first_line_end() {
        assert_eq!(
            printable(b"HTTP/1.1 400 Bad Request\r\nX: y"),
            "HTTP/1.1 400 Bad Request"
        );
        assert_eq!(printable(&[0x81, 0x02, b'h', b'i']), "..hi");
    }
}
