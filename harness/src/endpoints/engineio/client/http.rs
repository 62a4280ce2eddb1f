//! One HTTP/1.1 exchange of the polling transport, on a connection of its own. engine.io-client
//! under Node makes each request with `xmlhttprequest-ssl` and `agent: false`, so each one is a
//! new connection with `Connection: close`; so does this client. The connection is the plan's
//! transport (TCP, an explicit proxy's tunnel, TLS), the request is written by hand, and the
//! answer is read with the models' head parser, its body by `Content-Length`, chunked coding
//! or the close.

use gauntlet_proxies::http::{self, Framing};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Cx;
use crate::endpoints::connect::{AsyncIo, Fail, Phase, describe_io, transport};

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

/// `method target` with `body` (a `text/plain` payload when not empty), and its answer.
pub(super) async fn exchange(
    cx: &Cx,
    method: &str,
    target: &str,
    body: &[u8],
) -> Result<Reply, Unanswered> {
    let phase = Phase::new(cx.net.now());
    let mut io = transport(&cx.net, &cx.plan, &cx.t, &phase)
        .await
        .map_err(Unanswered::Connect)?;
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {}\r\nAccept: */*\r\nConnection: close\r\n",
        cx.plan.host
    );
    if method == "POST" {
        head.push_str(&format!(
            "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    let broken = |e: std::io::Error| Unanswered::Broken(describe_io(&e));
    io.write_all(head.as_bytes()).await.map_err(broken)?;
    io.write_all(body).await.map_err(broken)?;
    io.flush().await.map_err(broken)?;
    read_reply(&mut io, method).await
}

/// Reads the answer to a `method` request from `io`.
async fn read_reply(io: &mut Box<dyn AsyncIo>, method: &str) -> Result<Reply, Unanswered> {
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
                if !fill(io, &mut buf).await? {
                    return Err(Unanswered::Broken("connection closed".into()));
                }
            }
        }
    };
    let mut rest = buf.split_off(len);
    let status = head.status().unwrap_or_default();
    let reason = match &head.start {
        http::StartLine::Response { reason, .. } => reason.clone(),
        http::StartLine::Request { .. } => String::new(),
    };
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
            let mut scanned = 0;
            loop {
                let (used, ended) = scanner.scan(&rest[scanned..]).map_err(|e| {
                    Unanswered::Broken(format!("a chunked body that is not chunked coding ({e})"))
                })?;
                scanned += used;
                if ended {
                    break;
                }
                if !fill(io, &mut rest).await? {
                    return Err(Unanswered::Broken(
                        "connection closed in a chunked body".into(),
                    ));
                }
            }
            dechunk(&rest[..scanned])
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
async fn fill(io: &mut Box<dyn AsyncIo>, buf: &mut Vec<u8>) -> Result<bool, Unanswered> {
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
