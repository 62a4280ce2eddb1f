//! What the server does on an upgraded connection ([`App`]): `/echo` sends every message
//! back, `/push` sends timestamped messages on a schedule, both fragmenting and closing first
//! as their query asks; a client that breaks the protocol is failed with a Close.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::endpoints::census::{self, Census};
use crate::endpoints::client::push_text;
use crate::endpoints::killable::Reset;
use crate::endpoints::{fragment, smuggle, violation};
use crate::engine::NetRef;
use crate::scenario;
use crate::verdict::transcript::Transcript;

/// What the server does on an upgraded connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum App {
    Echo(Options),
    Attacker,
    Push {
        /// The first push's index (`from=N`, default 0): a reconnected client's resumption.
        from: u32,
        interval: Duration,
        size: usize,
        options: Options,
    },
}

/// The query parameters `/echo` and `/push` share.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Options {
    /// `count=N`: how many messages (push: to send; echo: after which `close` applies).
    count: Option<u32>,
    /// `fragment=N`: every message goes out in frames of at most N payload bytes.
    fragment: Option<usize>,
    /// `close=CODE`: the server closes first, with CODE, once `count` messages are sent.
    close: Option<u16>,
    /// `reset=1`: the server resets the connection once `count` messages are sent (after
    /// [`RESET_AFTER`]), with no Close.
    reset: bool,
    /// `pause=MS`: the server reads nothing for MS once `count` messages are sent, so that
    /// what the client does next (a Close and a half-close) has reached the proxy before the
    /// server answers it.
    pause: Option<Duration>,
    /// `half-close=1`: right after the Close it sends first (`close`), the server ends its
    /// side of the connection (close_notify and FIN over TLS, FIN otherwise) and reads on.
    half_close: bool,
}

/// The reason the server's own Close carries (`close=CODE`), which the client must get as sent.
pub const SERVER_CLOSE_REASON: &str = "the server closes";

/// How long after its last message the server resets a connection (`reset=1`): time for the
/// message to leave its socket, whose unsent bytes a reset discards.
const RESET_AFTER: Duration = Duration::from_millis(100);

impl Options {
    /// The code to close with once `sent` messages have gone out, if it is time.
    fn close_after(&self, sent: u32) -> Option<u16> {
        self.close.filter(|_| self.count == Some(sent))
    }
}

impl App {
    pub(super) fn from_uri(uri: &hyper::Uri) -> App {
        if uri.path() == smuggle::ATTACKER_PATH {
            return App::Attacker;
        }
        let mut options = Options::default();
        let (mut interval, mut size, mut from) = (100u64, 32usize, 0u32);
        for pair in uri.query().unwrap_or_default().split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "count" => options.count = v.parse().ok().or(options.count),
                "interval" => interval = v.parse().unwrap_or(interval),
                "size" => size = v.parse().unwrap_or(size),
                "from" => from = v.parse().unwrap_or(from),
                "fragment" => options.fragment = v.parse().ok().filter(|n| *n > 0),
                "reset" => options.reset = v == "1",
                "half-close" => options.half_close = v == "1",
                "pause" => options.pause = v.parse().ok().map(Duration::from_millis),
                "close" => {
                    options.close = v.parse().ok().filter(|c| scenario::close_code_valid(*c));
                }
                _ => {}
            }
        }
        // `/push`, or `/push` under a prefix a reverse proxy passed on (`/rooms/1/push`).
        if !uri.path().ends_with("/push") {
            return App::Echo(options);
        }
        options.count.get_or_insert(1);
        App::Push {
            from,
            interval: Duration::from_millis(interval),
            size: size.clamp(1, scenario::MAX_PAYLOAD_BYTES),
            options,
        }
    }

    fn options(&self) -> Options {
        match *self {
            App::Echo(options) | App::Push { options, .. } => options,
            App::Attacker => Options::default(),
        }
    }

    pub(super) async fn run<S>(
        self,
        net: NetRef,
        mut ws: WebSocketStream<S>,
        t: Transcript,
        reset: &Reset,
    ) where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let options = self.options();
        let mut sent = 0u32;
        if let App::Push {
            from,
            interval,
            size,
            ..
        } = self
        {
            let start = net.now();
            for i in from..options.count.unwrap_or(1) {
                net.sleep_until(start.saturating_add(interval.saturating_mul(i - from)))
                    .await;
                let text = push_text(i, net.now(), size);
                let done = |frames: &str| format!("pushed #{i} ({size} bytes{frames})");
                let message = Message::text(text);
                if !send(
                    &mut ws,
                    message,
                    options,
                    (&net, &t),
                    done,
                    &format!("push {i}"),
                )
                .await
                {
                    return;
                }
                sent += 1;
            }
        }
        let mut closed_first = false;
        let mut paused = false;
        loop {
            if let Some(pause) = options
                .pause
                .filter(|_| options.count == Some(sent) && !paused)
            {
                paused = true;
                net.sleep_until(net.now().saturating_add(pause)).await;
                t.log(
                    net.now(),
                    net.host(),
                    format!("read on after a pause of {} ms", pause.as_millis()),
                );
            }
            if options.reset && options.count == Some(sent) {
                net.sleep_until(net.now().saturating_add(RESET_AFTER)).await;
                let done = if reset.reset() {
                    "reset the connection"
                } else {
                    "found the connection gone at its reset"
                };
                t.log(
                    net.now(),
                    net.host(),
                    format!("{done} after {sent} messages"),
                );
                return;
            }
            if let Some(code) = options.close_after(sent).filter(|_| !closed_first) {
                closed_first = true;
                let frame = CloseFrame {
                    code: CloseCode::from(code),
                    reason: SERVER_CLOSE_REASON.into(),
                };
                if let Err(e) = ws.close(Some(frame)).await {
                    t.log(net.now(), net.host(), format!("close {code} failed: {e}"));
                    return;
                }
                t.log(net.now(), net.host(), format!("close {code} sent"));
                if options.half_close {
                    let ended = tokio::io::AsyncWriteExt::shutdown(ws.get_mut()).await;
                    let what = match ended {
                        Ok(()) => "half-closed: no more bytes from the server".to_string(),
                        Err(e) => format!("half-close failed: {e}"),
                    };
                    t.log(net.now(), net.host(), what);
                }
            }
            let Some(message) = ws.next().await else {
                break;
            };
            match message {
                Ok(Message::Close(frame)) => {
                    let code = frame.map_or("none".to_string(), |f| u16::from(f.code).to_string());
                    let what = if closed_first { "" } else { ", replying" };
                    t.log(
                        net.now(),
                        net.host(),
                        format!("close {code} received{what}"),
                    );
                }
                Ok(m @ (Message::Text(_) | Message::Binary(_))) => {
                    let len = m.len();
                    if matches!(self, App::Echo(_)) {
                        let done = |frames: &str| format!("echoed {len} bytes{frames}");
                        if !send(&mut ws, m, options, (&net, &t), done, "echo").await {
                            return;
                        }
                        sent += 1;
                    } else {
                        t.log(
                            net.now(),
                            net.host(),
                            format!("ignored a {len}-byte message"),
                        );
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    let Some(code) = violation::close_code(&e) else {
                        t.log(net.now(), net.host(), format!("websocket error: {e}"));
                        return;
                    };
                    match violation::fail(&mut ws, code).await {
                        Ok(()) => t.log(
                            net.now(),
                            net.host(),
                            format!("websocket error: {e}: close {code} sent, closing"),
                        ),
                        Err(sending) => t.log(
                            net.now(),
                            net.host(),
                            format!("websocket error: {e}: close {code} failed: {sending}"),
                        ),
                    }
                    return;
                }
            }
        }
        // End the transport politely (TLS close_notify, then FIN).
        let _ = tokio::io::AsyncWriteExt::shutdown(ws.get_mut()).await;
        t.log(net.now(), net.host(), "websocket closed");
    }
}

/// Sends `message`, fragmented if `options` say so, and logs the line `done` makes of
/// ` in N frames` (fragmented) or nothing, or `{name} failed` with the error. Returns whether
/// the message went out.
async fn send<S>(
    ws: &mut WebSocketStream<S>,
    message: Message,
    options: Options,
    (net, t): (&NetRef, &Transcript),
    done: impl FnOnce(&str) -> String,
    name: &str,
) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match fragment::send(ws, message, options.fragment).await {
        Ok(frames) => {
            let in_frames = match options.fragment {
                Some(_) => format!(" in {frames} frames"),
                None => String::new(),
            };
            t.log(net.now(), net.host(), done(&in_frames));
            true
        }
        Err(e) => {
            t.log(net.now(), net.host(), format!("{name} failed: {e}"));
            false
        }
    }
}

/// A census ([`census`]): once no watched connection of `id` is open, or after `wait`, one
/// text message saying how many are and after how long, then a Close with 1000, answered.
pub(super) async fn census<S>(
    net: NetRef,
    mut ws: WebSocketStream<S>,
    t: Transcript,
    watched: &Census,
    id: &str,
    wait: Duration,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let start = net.now();
    let deadline = start.saturating_add(wait);
    let open = loop {
        let open = watched.open(id);
        if open == 0 || net.now() >= deadline {
            break open;
        }
        net.sleep_until(net.now().saturating_add(census::RECOUNT).min(deadline))
            .await;
    };
    let text = census::answer(open, net.now() - start);
    t.log(net.now(), net.host(), format!("census of `{id}`: {text}"));
    let frame = CloseFrame {
        code: CloseCode::Normal,
        reason: "census done".into(),
    };
    let sent = async {
        ws.send(Message::text(text)).await?;
        ws.close(Some(frame)).await?;
        while let Some(m) = ws.next().await {
            m?;
        }
        Ok::<_, tokio_tungstenite::tungstenite::Error>(())
    };
    if let Err(e) = sent.await {
        t.log(net.now(), net.host(), format!("census session ended: {e}"));
    }
    let _ = tokio::io::AsyncWriteExt::shutdown(ws.get_mut()).await;
}
