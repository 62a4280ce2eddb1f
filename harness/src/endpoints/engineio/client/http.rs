//! One HTTP/1.1 exchange of the polling transport, on a connection of its own. engine.io-client
//! under Node makes each request with `xmlhttprequest-ssl` and `agent: false`, so each one is a
//! new connection with `Connection: close`; so does this client. The connection is the plan's
//! transport (TCP, an explicit proxy's tunnel, TLS), the request is written by hand, and the
//! answer is read with the models' head parser, its body by `Content-Length`, chunked coding
//! or the close.

use gauntlet_proxies::http::{self, Framing};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::endpoints::connect::{AsyncIo, Fail, Phase, Plan, describe_io, transport};
use crate::engine::NetRef;
use crate::verdict::transcript::Transcript;

/// The most body bytes an answer may carry: 64 MiB, far above what an Engine.IO server sends
/// in one answer (16 packets of at most `maxPayload` bytes, 1 MB by default, in base64).
const MAX_BODY: usize = 64 << 20;

/// An answer.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    /// The status code.
    pub(crate) status: u16,
    /// The reason phrase as sent.
    pub(crate) reason: String,
    /// The body, decoded from chunked coding if it was chunked.
    pub(crate) body: Vec<u8>,
}

impl Reply {
    /// `HTTP 400 Bad Request: {"code":1,…}`: the status line and the body's first line, for a
    /// detail.
    pub(crate) fn describe(&self) -> String {
        let body = crate::endpoints::connect::printable_up_to(&self.body, 80);
        let reason = if self.reason.is_empty() {
            String::new()
        } else {
            format!(" {}", self.reason)
        };
        if body.is_empty() {
            format!("HTTP {}{reason}", self.status)
        } else {
            format!("HTTP {}{reason}: {body}", self.status)
        }
    }
}

/// Why an exchange brought no answer.
#[derive(Debug)]
pub(crate) enum Unanswered {
    /// No connection: refused, a proxy's refusal of CONNECT, TLS; the failure says which.
    Connect(Fail),
    /// The connection was made and ended, or broke, before a whole answer came: how.
    Broken(String),
}

/// Where a request goes: the network, the plan's way to the server, the transcript.
pub(crate) type Way<'a> = (&'a NetRef, &'a Plan, &'a Transcript);

/// The `Content-Type` of the Engine.IO client's POSTs, as engine.io-client sends them.
pub(super) const TEXT_PLAIN: &str = "text/plain;charset=UTF-8";

/// `method target` with `body` (a payload of `content_type` for a POST), and its answer.
pub(crate) async fn exchange(
    way: Way<'_>,
    method: &str,
    target: &str,
    (body, content_type): (&[u8], &str),
) -> Result<Reply, Unanswered> {
    let (mut io, head, rest) = request(way, method, target, (body, content_type)).await?;
    read_reply(&mut io, method, head, rest).await
}

/// Sends `method target` (with `body` of `content_type` for a POST) on a connection of its
/// own, and reads the answer's head: the connection, the head, and the bytes read after it.
pub(crate) async fn request(
    (net, plan, t): Way<'_>,
    method: &str,
    target: &str,
    (body, content_type): (&[u8], &str),
) -> Result<(Box<dyn AsyncIo>, http::Head, Vec<u8>), Unanswered> {
    let phase = Phase::new(net.now());
    let mut io = transport(net, plan, t, &phase)
        .await
        .map_err(Unanswered::Connect)?;
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {}\r\nAccept: */*\r\nConnection: close\r\n",
        plan.host
    );
    if method == "POST" {
        head.push_str(&format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    let broken = |e: std::io::Error| Unanswered::Broken(describe_io(&e));
    io.write_all(head.as_bytes()).await.map_err(broken)?;
    io.write_all(body).await.map_err(broken)?;
    io.flush().await.map_err(broken)?;
    let mut buf = Vec::new();
    let (head, len) = loop {
        match http::parse_response(&buf, http::MAX_HEAD_BYTES) {
            http::Parsed::Complete(head, len) => break (head, len),
            http::Parsed::Invalid(reason) => {
                return Err(Unanswered::Broken(format!(
                    "an answer that is not HTTP ({reason})"
                )));
            }
            http::Parsed::Partial => {
                if !fill(&mut io, &mut buf).await? {
                    return Err(Unanswered::Broken("connection closed".into()));
                }
            }
        }
    };
    let rest = buf.split_off(len);
    Ok((io, head, rest))
}

/// The status code and reason phrase of a response head.
pub(crate) fn status(head: &http::Head) -> (u16, String) {
    let reason = match &head.start {
        http::StartLine::Response { reason, .. } => reason.clone(),
        http::StartLine::Request { .. } => String::new(),
    };
    (head.status().unwrap_or_default(), reason)
}

/// Reads the body of the answer to a `method` request whose `head` was read, `rest` its
/// first bytes, from `io`.
async fn read_reply(
    io: &mut Box<dyn AsyncIo>,
    method: &str,
    head: http::Head,
    mut rest: Vec<u8>,
) -> Result<Reply, Unanswered> {
    let (status, reason) = status(&head);
    let framing = head
        .framing(Some(method))
        .map_err(|e| Unanswered::Broken(format!("an answer whose body cannot be read ({e})")))?;
    let body = match framing {
        Framing::None => Vec::new(),
        Framing::Length(n) => {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            if n > MAX_BODY {
                return Err(Unanswered::Broken(format!("a body of {n} bytes")));
            }
            while rest.len() < n {
                if !fill(io, &mut rest).await? {
                    return Err(Unanswered::Broken(format!(
                        "connection closed after {} of {n} body bytes",
                        rest.len()
                    )));
                }
            }
            rest.truncate(n);
            rest
        }
        Framing::Chunked(mut scanner) => {
            let mut data = Vec::new();
            loop {
                let (used, ended) = scanner.decode(&rest, &mut data).map_err(|e| {
                    Unanswered::Broken(format!("a chunked body that is not chunked coding ({e})"))
                })?;
                rest.drain(..used);
                if data.len() > MAX_BODY {
                    return Err(Unanswered::Broken(format!(
                        "an answer of more than {MAX_BODY} bytes"
                    )));
                }
                if ended {
                    break;
                }
                if !fill(io, &mut rest).await? {
                    return Err(Unanswered::Broken(
                        "connection closed in a chunked body".into(),
                    ));
                }
            }
            data
        }
        Framing::UntilClose => {
            while fill(io, &mut rest).await? {}
            rest
        }
    };
    Ok(Reply {
        status,
        reason,
        body,
    })
}

/// Reads more of the answer into `buf`: `false` at its end. More than [`MAX_BODY`] is a broken
/// answer.
pub(crate) async fn fill(io: &mut Box<dyn AsyncIo>, buf: &mut Vec<u8>) -> Result<bool, Unanswered> {
    let mut chunk = [0u8; 8192];
    let n = io
        .read(&mut chunk)
        .await
        .map_err(|e| Unanswered::Broken(describe_io(&e)))?;
    if buf.len() + n > MAX_BODY + http::MAX_HEAD_BYTES {
        return Err(Unanswered::Broken(format!(
            "an answer of more than {MAX_BODY} bytes"
        )));
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_is_described_by_its_status_and_first_body_line() {
        let reply = Reply {
            status: 400,
            reason: "Bad Request".into(),
            body: br#"{"code":1,"message":"Session ID unknown"}"#.to_vec(),
        };
        assert_eq!(
            reply.describe(),
            r#"HTTP 400 Bad Request: {"code":1,"message":"Session ID unknown"}"#
        );
    }
}
