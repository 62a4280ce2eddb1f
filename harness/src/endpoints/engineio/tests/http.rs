//! What the tests drive the server with on the simulated network: a run of the reference
//! server with a client of the test's own, an HTTP/1.1 client written by hand over an
//! engine's stream, and a WebSocket opened on one.

use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::LocalBoxFuture;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;

use crate::endpoints::engineio::packet::{ErrorBody, Handshake, Packet, decode_payload};
use crate::endpoints::engineio::{EngineIo, Options};
use crate::endpoints::server;
use crate::engine::sim::Sim;
use crate::engine::{Engine, Intake, LinkConfig, NetRef, Stream, Topology};
use crate::verdict::transcript::{self, Transcript};

/// Runs the reference server with `options` and `client` on the simulated network with
/// seed 1, 1 ms apart; gives the server's transcript.
pub(crate) fn run(
    options: Options,
    client: impl FnOnce(NetRef) -> LocalBoxFuture<'static, anyhow::Result<()>> + 'static,
) -> String {
    let t = Transcript::default();
    let mut topology = Topology::new(
        LinkConfig::new(Duration::from_millis(1), Duration::ZERO),
        Duration::from_secs(3600),
    );
    let engine = EngineIo::new(options);
    let software =
        server::software_sharing(t.clone(), None, None, None, Intake::unlimited(), engine);
    topology.host("server", software);
    topology.client("client", Box::new(client));
    Sim.run(topology, 1).expect("the run completes");
    transcript::render(&t.entries())
}

/// An HTTP/1.1 answer.
#[derive(Debug)]
pub(super) struct Reply {
    pub(super) status: u16,
    /// Header fields, names in lower case.
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
}

impl Reply {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The packets of a 200's payload.
    pub(super) fn packets(&self) -> Vec<Packet> {
        assert_eq!(self.status, 200, "{}", self.text());
        decode_payload(&self.body).expect("a payload")
    }

    /// The error a refusal's JSON carries.
    pub(super) fn error(&self) -> ErrorBody {
        serde_json::from_slice(&self.body).expect("an error body")
    }
}

/// One kept-alive HTTP/1.1 connection to the server, requests written and answers read by
/// hand.
pub(super) struct Http {
    stream: Stream,
    read: Vec<u8>,
}

impl Http {
    pub(super) async fn connect(net: &NetRef) -> anyhow::Result<Http> {
        Ok(Http {
            stream: net.connect("server", 80).await?,
            read: Vec::new(),
        })
    }

    /// `GET target`.
    pub(super) async fn get(&mut self, target: &str) -> anyhow::Result<Reply> {
        self.request("GET", target, &[], "").await
    }

    /// `POST target` with `body` (text/plain).
    pub(super) async fn post(&mut self, target: &str, body: &[u8]) -> anyhow::Result<Reply> {
        self.request("POST", target, body, "Content-Type: text/plain\r\n")
            .await
    }

    pub(super) async fn request(
        &mut self,
        method: &str,
        target: &str,
        body: &[u8],
        fields: &str,
    ) -> anyhow::Result<Reply> {
        let head = format!(
            "{method} {target} HTTP/1.1\r\nHost: server\r\nContent-Length: {}\r\n{fields}\r\n",
            body.len()
        );
        self.stream.write_all(head.as_bytes()).await?;
        self.stream.write_all(body).await?;
        let end = loop {
            if let Some(at) = self.read.windows(4).position(|w| w == b"\r\n\r\n") {
                break at;
            }
            self.fill().await?;
        };
        let head = String::from_utf8(self.read.drain(..end + 4).collect())?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("no status in {status_line:?}"))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        while self.read.len() < length {
            self.fill().await?;
        }
        let body = self.read.drain(..length).collect();
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    async fn fill(&mut self) -> anyhow::Result<()> {
        let mut buf = [0u8; 4096];
        let n = self.stream.read(&mut buf).await?;
        anyhow::ensure!(n > 0, "the server closed the connection");
        self.read.extend_from_slice(&buf[..n]);
        Ok(())
    }
}

/// `/engine.io/?EIO=4&transport=TRANSPORT`, and `&sid=SID` for a session.
pub(super) fn target(transport: &str, sid: Option<&str>) -> String {
    let mut target = format!("/engine.io/?EIO=4&transport={transport}");
    if let Some(sid) = sid {
        target.push_str("&sid=");
        target.push_str(sid);
    }
    target
}

/// Opens a session by polling; gives its handshake.
pub(super) async fn open_polling(http: &mut Http) -> anyhow::Result<Handshake> {
    let reply = http.get(&target("polling", None)).await?;
    let packets = reply.packets();
    anyhow::ensure!(packets.len() == 1, "{packets:?}");
    Ok(Handshake::from_packet(&packets[0])?)
}

/// Opens a session by polling on a connection of its own; gives the connection, the
/// handshake and the session's polling target.
pub(super) async fn polling_session(net: &NetRef) -> anyhow::Result<(Http, Handshake, String)> {
    let mut http = Http::connect(net).await?;
    let open = open_polling(&mut http).await?;
    let session = target("polling", Some(&open.sid));
    Ok((http, open, session))
}

/// A WebSocket to `target` on a connection of its own.
pub(super) async fn websocket(
    net: &NetRef,
    target: &str,
) -> anyhow::Result<WebSocketStream<Stream>> {
    let stream = net.connect("server", 80).await?;
    let url = format!("ws://server{target}");
    let (ws, _) = tokio_tungstenite::client_async(url, stream).await?;
    Ok(ws)
}

/// `f(net)` boxed, as a client's software.
pub(in crate::endpoints::engineio) fn client<F>(
    f: impl FnOnce(NetRef) -> F + 'static,
) -> impl FnOnce(NetRef) -> LocalBoxFuture<'static, anyhow::Result<()>>
where
    F: std::future::Future<Output = anyhow::Result<()>> + 'static,
{
    move |net| f(net).boxed_local()
}
