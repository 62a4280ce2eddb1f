//! One HTTP/1.1 exchange of the polling transport (and of the streaming client's POSTs and
//! the opening of its stream). engine.io-client under Node makes each request with
//! `xmlhttprequest-ssl` and `agent: false`, so each one is a new connection with
//! `Connection: close`; so does this client, unless its plan's browser keeps connections alive
//! (Chromium: the idle connections of an Engine.IO session's earlier exchanges carry its next
//! ones). The head is the browser's ([`crate::endpoints::browser`]). The connection is the
//! plan's transport (TCP, an explicit proxy's tunnel, TLS), the request is written by hand,
//! and the answer is read with the models' head parser, its body by `Content-Length`, chunked
//! coding or the close.

use std::cell::RefCell;

use gauntlet_proxies::http::{self, Framing};
use tokio::io::AsyncWriteExt;

use super::Cx;
use crate::endpoints::connect::{
    AsyncIo, Fail, Phase, Plan, describe_io, forwarding_proxy, origin, proxy_target, to_proxy,
    transport,
};
use crate::engine::{NetRef, scratch};
use crate::verdict::transcript::Transcript;

/// The most body bytes an answer may carry: 64 MiB, far above what an Engine.IO server sends
/// in one answer (16 packets of at most `maxPayload` bytes, 1 MB by default, in base64).
const MAX_BODY: usize = 64 << 20;
/// The most read from a connection at a time.
const CHUNK: usize = 8192;

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

/// Connections kept alive after an exchange, for the next ones.
pub(super) type Idle = RefCell<Vec<Box<dyn AsyncIo>>>;

/// The `Content-Type` of the Engine.IO client's POSTs, as engine.io-client sends them.
pub(super) const TEXT_PLAIN: &str = "text/plain;charset=UTF-8";

/// `method target` with `body` (a payload of `content_type` for a POST) on a connection of
/// its own, and its answer.
pub(crate) async fn exchange(
    way: Way<'_>,
    method: &str,
    target: &str,
    body: (&[u8], &str),
) -> Result<Reply, Unanswered> {
    let head = head(way, method, target, body);
    let mut io = connect(way).await?;
    match send(&mut io, &head, body.0, method).await {
        Ok((reply, _)) => Ok(reply),
        Err(Sent::BeforeAnswer(why) | Sent::Broken(why)) => Err(Unanswered::Broken(why)),
    }
}

/// An Engine.IO session's exchange: as [`exchange`], but when the plan's browser keeps
/// connections alive, the request goes on an idle connection of an earlier exchange when
/// there is one, and again once on a new connection if that one turns out closed before any
/// answer came (RFC 9112 §9.3.1: the server may close an idle connection at any time), as
/// Chromium does; a connection that can carry another exchange is kept.
pub(super) async fn exchange_kept(
    cx: &Cx,
    method: &str,
    target: &str,
    body: (&[u8], &str),
) -> Result<Reply, Unanswered> {
    let way = cx.way();
    if !way.1.browser.keeps_alive() {
        return exchange(way, method, target, body).await;
    }
    let head = head(way, method, target, body);
    let idle = cx.idle.borrow_mut().pop();
    if let Some(mut io) = idle {
        cx.log(format!("{method} on a kept-alive connection"));
        match send(&mut io, &head, body.0, method).await {
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
    let mut io = connect(way).await?;
    match send(&mut io, &head, body.0, method).await {
        Ok((reply, reusable)) => {
            if reusable {
                cx.idle.borrow_mut().push(io);
            }
            Ok(reply)
        }
        Err(Sent::BeforeAnswer(why) | Sent::Broken(why)) => Err(Unanswered::Broken(why)),
    }
}

/// Sends `method target` (with `body` of `content_type` for a POST) on a connection of its
/// own, and reads the answer's head: the connection, the head, and the bytes read after it.
pub(crate) async fn request(
    way: Way<'_>,
    method: &str,
    target: &str,
    body: (&[u8], &str),
) -> Result<(Box<dyn AsyncIo>, http::Head, Vec<u8>), Unanswered> {
    let head = head(way, method, target, body);
    let mut io = connect(way).await?;
    let broken = |e: std::io::Error| Unanswered::Broken(describe_io(&e));
    io.write_all(head.as_bytes()).await.map_err(broken)?;
    io.write_all(body.0).await.map_err(broken)?;
    io.flush().await.map_err(broken)?;
    match read_head(&mut io).await {
        Ok((head, rest)) => Ok((io, head, rest)),
        Err(Sent::BeforeAnswer(why) | Sent::Broken(why)) => Err(Unanswered::Broken(why)),
    }
}

/// The request head the plan's browser writes: a POST says its body's length and type.
/// Through an explicit proxy, plain HTTP goes to the proxy itself, the target in absolute
/// form (RFC 9112 §3.2.2) and the credentials in `Proxy-Authorization`, as a browser sends
/// an XHR through its configured proxy; https tunnels with CONNECT.
fn head(
    (net, plan, _): Way<'_>,
    method: &str,
    target: &str,
    (body, content_type): (&[u8], &str),
) -> String {
    let absolute;
    let target = match forwarding_proxy(plan) {
        Some(proxy) => {
            absolute = format!(
                "http://{}{target}",
                proxy_target(net, proxy, &plan.host, 80)
            );
            absolute.as_str()
        }
        None => target,
    };
    let mut head = plan.browser.xhr(
        method,
        target,
        &plan.host,
        &origin(plan),
        (method == "POST").then_some((body.len(), content_type)),
    );
    if let Some(c) = forwarding_proxy(plan).and_then(|p| p.credentials.as_ref()) {
        let field = format!(
            "Proxy-Authorization: Basic {}\r\n\r\n",
            data_encoding::BASE64.encode(c.as_bytes())
        );
        if head.ends_with("\r\n\r\n") {
            head.truncate(head.len() - 2);
            head.push_str(&field);
        }
    }
    head
}

/// A new connection to the server, as the plan reaches it: to the explicit proxy itself for
/// plain HTTP through one.
async fn connect((net, plan, t): Way<'_>) -> Result<Box<dyn AsyncIo>, Unanswered> {
    let phase = Phase::new(net.now());
    match forwarding_proxy(plan) {
        Some(proxy) => to_proxy(net, plan, t, proxy, &mut None)
            .await
            .map(|s| Box::new(s) as Box<dyn AsyncIo>),
        None => transport(net, plan, t, &phase).await,
    }
    .map_err(Unanswered::Connect)
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
    let (head, rest) = read_head(io).await?;
    read_reply(io, method, head, rest)
        .await
        .map_err(|e| match e {
            Unanswered::Broken(why) | Unanswered::Connect(Fail { detail: why, .. }) => {
                Sent::Broken(why)
            }
        })
}

/// Reads an answer's head from `io`: the head, and the bytes read after it.
async fn read_head(io: &mut Box<dyn AsyncIo>) -> Result<(http::Head, Vec<u8>), Sent> {
    let mut buf = Vec::new();
    loop {
        match http::parse_response(&buf, http::MAX_HEAD_BYTES) {
            http::Parsed::Complete(head, len) => return Ok((head, buf.split_off(len))),
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
                    Ok(false) => return Err(Sent::Broken("connection closed".into())),
                    Err(
                        Unanswered::Broken(why) | Unanswered::Connect(Fail { detail: why, .. }),
                    ) => {
                        return Err(if before_answer {
                            Sent::BeforeAnswer(why)
                        } else {
                            Sent::Broken(why)
                        });
                    }
                }
            }
        }
    }
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
/// first bytes, from `io`: the answer, and whether the connection can carry another exchange
/// (a body framed by its length or chunked, no `Connection: close`, nothing after it).
async fn read_reply(
    io: &mut Box<dyn AsyncIo>,
    method: &str,
    head: http::Head,
    mut rest: Vec<u8>,
) -> Result<(Reply, bool), Unanswered> {
    let (status, reason) = status(&head);
    let framing = head
        .framing(Some(method))
        .map_err(|e| Unanswered::Broken(format!("an answer whose body cannot be read ({e})")))?;
    let (body, after) = match framing {
        Framing::None => (Vec::new(), rest.len()),
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
            let after = rest.len() - n;
            rest.truncate(n);
            (rest, after)
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
            (data, rest.len())
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
pub(crate) async fn fill(io: &mut Box<dyn AsyncIo>, buf: &mut Vec<u8>) -> Result<bool, Unanswered> {
    let n = scratch::read_into(io, CHUNK, buf)
        .await
        .map_err(|e| Unanswered::Broken(describe_io(&e)))?;
    if buf.len() > MAX_BODY + http::MAX_HEAD_BYTES {
        return Err(Unanswered::Broken(format!(
            "an answer of more than {MAX_BODY} bytes"
        )));
    }
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
