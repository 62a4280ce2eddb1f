//! A stream read by hand ([`Raw`]), with the bytes read but not yet used, and an HTTP
//! response read from it before a deadline ([`Answer`]).

use std::time::Duration;

use gauntlet_proxies::http::{self, Head, Parsed};
use tokio::io::AsyncReadExt;

use super::MAX_HEAD;
use crate::endpoints::connect::AsyncIo;
use crate::engine::NetRef;

/// A stream read by hand, with the bytes read but not yet used.
pub(super) struct Raw {
    pub(super) io: Box<dyn AsyncIo>,
    pub(super) buf: Vec<u8>,
}

/// How reading an HTTP response by hand ended.
pub(super) enum Answer {
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
    pub(super) async fn fill(&mut self) -> std::io::Result<usize> {
        let mut chunk = [0u8; 4096];
        let n = self.io.read(&mut chunk).await?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Reads a response head and its `Content-Length` body (or, without one, the body up to
    /// the end of the stream) before `deadline`.
    pub(super) async fn response(&mut self, net: &NetRef, deadline: Duration) -> Answer {
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

pub(super) fn status_line(head: &Head) -> String {
    match &head.start {
        http::StartLine::Response { status, reason, .. } => format!("{status} {reason}"),
        http::StartLine::Request { method, target, .. } => format!("{method} {target}"),
    }
}
