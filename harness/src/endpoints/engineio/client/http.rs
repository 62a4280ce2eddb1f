//! One HTTP/1.1 exchange of the polling transport. engine.io-client under Node makes each
//! request with `xmlhttprequest-ssl` and `agent: false`, so each one is a new connection with
//! `Connection: close`; so does this client, unless its plan's browser keeps connections alive
//! (Chromium: the idle connections of earlier exchanges carry the next ones). The head is the
//! browser's ([`crate::endpoints::browser`]). The connection is the plan's
//! transport (TCP, an explicit proxy's tunnel, TLS), the request is written by hand, and the
//! answer is read with the models' head parser, its body by `Content-Length`, chunked coding
//! or the close.

use gauntlet_proxies::http::{self, Framing};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Cx;
use crate::endpoints::connect::{AsyncIo, Fail, Phase, describe_io, origin, transport};

/// The most body bytes an answer may carry: 64 MiB, far above what an Engine.IO server sends
/// in one answer (16 packets of at most `maxPayload` bytes, 1 MB by default, in base64).
const MAX_BODY: usize = 64 << 20;

/// An answer.
#[derive(Debug, Clone)]
pub(super) struct Reply {
    /// The status code.
    pub(super) status: u16,
    /// The reason phrase as sent.
    pub(super) reason: String,
    /// The body, decoded from chunked coding if it was chunked.
    pub(super) body: Vec<u8>,
}

impl Reply {
    /// `HTTP 400 Bad Request: {"code":1,…}`: the status line and the body's first line, for a
    /// detail.
    pub(super) fn describe(&self) -> String {
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
pub(super) enum Unanswered {
    /// No connection: refused, a proxy's refusal of CONNECT, TLS; the failure says which.
    Connect(Fail),
    /// The connection was made and ended, or broke, before a whole answer came: how.
    Broken(String),
}

/// `method target` with `body` (a `text/plain` payload when not empty), and its answer. The
/// plan's browser writes the head; one that keeps connections alive sends the request on an
/// idle connection of an earlier exchange when there is one, and sends it again once on a
/// new connection if that one turns out closed before any answer came (RFC 9112 §9.3.1: the
/// server may close an idle connection at any time), as Chromium does.
pub(super) async fn exchange(
    cx: &Cx,
    method: &str,
    target: &str,
    body: &[u8],
) -> Result<Reply, Unanswered> {
    let browser = cx.plan.browser;
    let head = browser.xhr(
        method,
        target,
        &cx.plan.host,
        &origin(&cx.plan),
        (method == "POST").then_some(body.len()),
    );
    if browser.keeps_alive() {
        let idle = cx.idle.borrow_mut().pop();
        if let Some(mut io) = idle {
            cx.log(format!("{method} on a kept-alive connection"));
            match send(&mut io, &head, body, method).await {
                Ok((reply, reusable)) => {
                    if reusable {
                        cx.idle.borrow_mut().push(io);
                    }
                    return Ok(reply);
                }
                Err(Sent::BeforeAnswer(why)) => {
                    cx.log(format!(
                        "the kept-alive connection was gone ({why}): again on a new one"
                    ));
                }
                Err(Sent::Broken(why)) => return Err(Unanswered::Broken(why)),
            }
        }
    }
    let phase = Phase::new(cx.net.now());
    let mut io = transport(&cx.net, &cx.plan, &cx.t, &phase)
        .await
        .map_err(Unanswered::Connect)?;
    match send(&mut io, &head, body, method).await {
        Ok((reply, reusable)) => {
            if reusable && browser.keeps_alive() {
                cx.idle.borrow_mut().push(io);
            }
            Ok(reply)
        }
        Err(Sent::BeforeAnswer(why) | Sent::Broken(why)) => Err(Unanswered::Broken(why)),
    }
}

/// How an answer broke off, in a few words.
#[derive(Debug)]
struct Broken(String);

impl From<String> for Broken {
    fn from(why: String) -> Self {
        Broken(why)
    }
}

/// How an exchange on a connection failed.
enum Sent {
    /// Before a byte of the answer came: the request may go again on another connection.
    BeforeAnswer(String),
    /// Later.
    Broken(String),
}

/// Writes `head` and `body` on `io` and reads the answer: the answer, and whether the
/// connection can carry another exchange.
async fn send(
    io: &mut Box<dyn AsyncIo>,
    head: &str,
    body: &[u8],
    method: &str,
) -> Result<(Reply, bool), Sent> {
    let before = |e: std::io::Error| Sent::BeforeAnswer(describe_io(&e));
    io.write_all(head.as_bytes()).await.map_err(before)?;
    io.write_all(body).await.map_err(before)?;
    io.flush().await.map_err(before)?;
    read_reply(io, method).await
}

/// Reads the answer to a `method` request from `io`.
async fn read_reply(io: &mut Box<dyn AsyncIo>, method: &str) -> Result<(Reply, bool), Sent> {
    let mut buf = Vec::new();
    let (head, len) = loop {
        match http::parse_response(&buf, http::MAX_HEAD_BYTES) {
            http::Parsed::Complete(head, len) => break (head, len),
            http::Parsed::Invalid(reason) => {
                return Err(Sent::Broken(format!(
                    "an answer that is not HTTP ({reason})"
                )));
            }
            http::Parsed::Partial => {
                let before_answer = buf.is_empty();
                let more = fill(io, &mut buf).await;
                match more {
                    Ok(true) => {}
                    Ok(false) if before_answer => {
                        return Err(Sent::BeforeAnswer("connection closed".into()));
                    }
                    Err(why) if before_answer => return Err(Sent::BeforeAnswer(why.0)),
                    Ok(false) => return Err(Sent::Broken("connection closed".into())),
                    Err(why) => return Err(Sent::Broken(why.0)),
                }
            }
        }
    };
    let rest = buf.split_off(len);
    read_body(io, method, &head, rest)
        .await
        .map_err(|why| Sent::Broken(why.0))
}

/// Reads the body of the answer whose `head` was read from `io`, `rest` holding what came
/// after the head: the answer, and whether the connection can carry another exchange (a
/// body framed by its length or chunked, no `Connection: close`, nothing after it).
async fn read_body(
    io: &mut Box<dyn AsyncIo>,
    method: &str,
    head: &http::Head,
    mut rest: Vec<u8>,
) -> Result<(Reply, bool), Broken> {
    let status = head.status().unwrap_or_default();
    let reason = match &head.start {
        http::StartLine::Response { reason, .. } => reason.clone(),
        http::StartLine::Request { .. } => String::new(),
    };
    let framing = head
        .framing(Some(method))
        .map_err(|e| format!("an answer whose body cannot be read ({e})"))?;
    let (body, after) = match framing {
        Framing::None => (Vec::new(), rest.len()),
        Framing::Length(n) => {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            if n > MAX_BODY {
                return Err(format!("a body of {n} bytes").into());
            }
            while rest.len() < n {
                if !fill(io, &mut rest).await? {
                    return Err(format!(
                        "connection closed after {} of {n} body bytes",
                        rest.len()
                    )
                    .into());
                }
            }
            let after = rest.len() - n;
            rest.truncate(n);
            (rest, after)
        }
        Framing::Chunked(mut scanner) => {
            let mut scanned = 0;
            loop {
                let (used, ended) = scanner
                    .scan(&rest[scanned..])
                    .map_err(|e| format!("a chunked body that is not chunked coding ({e})"))?;
                scanned += used;
                if ended {
                    break;
                }
                if !fill(io, &mut rest).await? {
                    return Err(Broken("connection closed in a chunked body".into()));
                }
            }
            (dechunk(&rest[..scanned]), rest.len() - scanned)
        }
        Framing::UntilClose => {
            while fill(io, &mut rest).await? {}
            // The close ended the body: nothing more can come on this connection.
            (rest, 1)
        }
    };
    let reusable = after == 0 && !head.connection_has("close");
    Ok((
        Reply {
            status,
            reason,
            body,
        },
        reusable,
    ))
}

/// Reads more of the answer into `buf`: `false` at its end. More than [`MAX_BODY`] is a broken
/// answer.
async fn fill(io: &mut Box<dyn AsyncIo>, buf: &mut Vec<u8>) -> Result<bool, Broken> {
    let mut chunk = [0u8; 8192];
    let n = io
        .read(&mut chunk)
        .await
        .map_err(|e| Broken(describe_io(&e)))?;
    if buf.len() + n > MAX_BODY + http::MAX_HEAD_BYTES {
        return Err(format!("an answer of more than {MAX_BODY} bytes").into());
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(n > 0)
}

/// The data of a chunked body that [`http::ChunkedScanner`] found whole: each chunk's size
/// line (extensions passed over), its data and its CRLF, up to the last chunk.
fn dechunk(mut coded: &[u8]) -> Vec<u8> {
    let mut data = Vec::new();
    while let Some(end) = coded.windows(2).position(|w| w == b"\r\n") {
        let line = String::from_utf8_lossy(&coded[..end]);
        let digits = line.split([';', ' ', '\t']).next().unwrap_or_default();
        let size = usize::from_str_radix(digits, 16).unwrap_or(0);
        coded = &coded[end + 2..];
        if size == 0 || coded.len() < size {
            break;
        }
        data.extend_from_slice(&coded[..size]);
        coded = coded.get(size + 2..).unwrap_or_default();
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunked_body_comes_back_whole() {
        assert_eq!(dechunk(b"3;x=1\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), b"abcde");
        assert_eq!(dechunk(b"0\r\n\r\n"), b"");
    }

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
