//! HTTP streaming on the simulated network: the server's `/stream` (its answer's head, the
//! `open` event, echoes of text, text with a CR and binary, pushes on schedule, the `close`
//! event and the body's end, every refusal), and the client's run, the same for a seed.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use futures_util::FutureExt;

use super::client;
use super::sse::Reader;
use super::{Message, Received};
use crate::endpoints::connect::{Plan, Report};
use crate::endpoints::engineio::Options;
use crate::endpoints::engineio::client::http::{Way, exchange, request, status};
use crate::endpoints::engineio::tests::http::run;
use crate::engine::NetRef;
use crate::scenario::{Scheme, Workload, WorkloadKind};
use crate::verdict::outcome::Outcome;
use crate::verdict::transcript::Transcript;

fn plan(kind: WorkloadKind) -> Plan {
    let (tls, _) = crate::tls::Tls::generate(&["server".to_string()]).expect("TLS material");
    Plan::new(Scheme::Ws, "server", Workload::new(kind), 1, tls.client)
}

/// Reads the stream's events on `io`, its first bytes `rest`, until `n` have come or the body
/// ends; gives them and whether the body ended.
async fn events(
    io: &mut Box<dyn crate::endpoints::connect::AsyncIo>,
    mut rest: Vec<u8>,
    scanner: &mut gauntlet_proxies::http::ChunkedScanner,
    reader: &mut Reader,
    n: usize,
) -> anyhow::Result<(Vec<Received>, bool)> {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    loop {
        let mut data = Vec::new();
        let (_, ended) = scanner.decode(&rest, &mut data)?;
        reader.push(&data)?;
        while let Some(e) = reader.take() {
            got.push(Received::read(e)?);
        }
        if ended || got.len() >= n {
            return Ok((got, ended));
        }
        let mut buf = [0u8; 4096];
        let k = io.read(&mut buf).await?;
        anyhow::ensure!(k > 0, "the connection closed");
        rest = buf[..k].to_vec();
    }
}

/// A stream opened, echoes of text, text holding a CR and binary, refusals for an unknown
/// stream and a missing id, the DELETE: the `close` event and the body's end.
#[test]
fn a_stream_opens_echoes_refuses_and_closes() {
    let log = run(Options::default(), |net: NetRef| {
        async move {
            let t = Transcript::default();
            let plan = plan(WorkloadKind::Echo);
            let way: Way<'_> = (&net, &plan, &t);
            let (mut io, head, rest) = request(way, "GET", "/rooms/1/stream", (&[], ""))
                .await
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            assert_eq!(status(&head).0, 200);
            let field = |name: &str| {
                head.fields
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            };
            assert_eq!(field("content-type").as_deref(), Some("text/event-stream"));
            assert_eq!(field("cache-control").as_deref(), Some("no-cache"));
            assert_eq!(field("transfer-encoding").as_deref(), Some("chunked"));
            let mut scanner = gauntlet_proxies::http::ChunkedScanner::default();
            let mut reader = Reader::new(4096);
            let (first, _) = events(&mut io, rest, &mut scanner, &mut reader, 1).await?;
            let Some(Received::Open(sid)) = first.first().cloned() else {
                anyhow::bail!("no open event: {first:?}");
            };
            let target = format!("/stream?sid={sid}");
            let sent: [(&[u8], &str, Message); 3] = [
                (b"hello", "text/plain", Message::Text("hello".into())),
                (b"a\rb\nc", "text/plain", Message::Text("a\rb\nc".into())),
                (
                    b"\xff\x00\x01",
                    "application/octet-stream",
                    Message::Binary(vec![0xff, 0, 1]),
                ),
            ];
            for (body, content_type, message) in sent {
                let reply = exchange(way, "POST", &target, (body, content_type))
                    .await
                    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
                assert_eq!(reply.status, 204);
                let (got, _) = events(&mut io, Vec::new(), &mut scanner, &mut reader, 1).await?;
                assert_eq!(got, [Received::Message(message)]);
            }
            for (method, target, code) in [
                (
                    "POST",
                    "/stream?sid=nope",
                    r#"{"code":1,"message":"Session ID unknown"}"#,
                ),
                (
                    "DELETE",
                    "/stream?sid=nope",
                    r#"{"code":1,"message":"Session ID unknown"}"#,
                ),
                ("POST", "/stream", r#"{"code":3,"message":"Bad request"}"#),
            ] {
                let reply = exchange(way, method, target, (b"x", "text/plain"))
                    .await
                    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
                assert_eq!(
                    (reply.status, String::from_utf8(reply.body)?),
                    (400, code.into())
                );
            }
            let reply = exchange(way, "POST", &target, (b"\xff", "text/plain"))
                .await
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            assert_eq!(reply.status, 400, "text that is not UTF-8");
            let reply = exchange(way, "PUT", &target, (&[], ""))
                .await
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            assert_eq!(reply.status, 405);
            let reply = exchange(way, "DELETE", &target, (&[], ""))
                .await
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            assert_eq!(reply.status, 204);
            let (got, ended) = events(&mut io, Vec::new(), &mut scanner, &mut reader, 2).await?;
            assert_eq!(got, [Received::Close]);
            assert!(ended, "the body ended after `close`");
            let reply = exchange(way, "POST", &target, (b"late", "text/plain"))
                .await
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            assert_eq!(reply.status, 400, "a closed stream is unknown");
            Ok(())
        }
        .boxed_local()
    });
    assert!(log.contains("opened (echo)"), "{log}");
    assert!(
        log.contains("POST for stream nope, which is not open"),
        "{log}"
    );
    assert!(log.contains("closed by the client"), "{log}");
}

/// `app=push`: `count` pushes of `size` bytes, `interval` apart, each stamped with its send
/// time.
#[test]
fn a_push_stream_sends_its_messages_on_schedule() {
    run(Options::default(), |net: NetRef| {
        async move {
            let t = Transcript::default();
            let plan = plan(WorkloadKind::Push);
            let way: Way<'_> = (&net, &plan, &t);
            let target = "/stream?app=push&count=3&interval=250&size=40";
            let (mut io, _, rest) = request(way, "GET", target, (&[], ""))
                .await
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            let mut scanner = gauntlet_proxies::http::ChunkedScanner::default();
            let mut reader = Reader::new(4096);
            let mut stamps = Vec::new();
            let (got, _) = events(&mut io, rest, &mut scanner, &mut reader, 4).await?;
            for (i, r) in got.iter().skip(1).enumerate() {
                let Received::Message(Message::Text(text)) = r else {
                    anyhow::bail!("{r:?}");
                };
                let i = u32::try_from(i)?;
                let us = crate::endpoints::client::push_stamp(text, i, 40)
                    .ok_or_else(|| anyhow::anyhow!("not push {i}: {text}"))?;
                stamps.push(us);
            }
            assert_eq!(stamps.len(), 3, "{got:?}");
            assert_eq!(stamps[1] - stamps[0], 250_000);
            assert_eq!(stamps[2] - stamps[1], 250_000);
            Ok(())
        }
        .boxed_local()
    });
}

/// The client's run of `kind`, its report and the server's transcript.
fn client_run(kind: WorkloadKind) -> (Report, String) {
    let out = Rc::new(RefCell::new(None));
    let o = out.clone();
    let log = run(Options::default(), move |net: NetRef| {
        async move {
            let t = Transcript::default();
            let mut plan = plan(kind);
            plan.workload.idle = vec![crate::scenario::Idle {
                after_message: 1,
                ms: 1000,
            }];
            if kind == WorkloadKind::Push {
                plan.workload.idle.clear();
            }
            *o.borrow_mut() = Some(client::run(&net, &plan, &t).await);
            Ok(())
        }
        .boxed_local()
    });
    let report = out.borrow_mut().take().expect("a report");
    (report, log)
}

/// The client's echo and push runs deliver, with a latency per message; a seed gives the same
/// transcript.
#[test]
fn the_client_delivers_echoes_and_pushes_the_same_for_a_seed() {
    for kind in [WorkloadKind::Echo, WorkloadKind::Push] {
        let (report, log) = client_run(kind);
        assert_eq!(report.outcome, Outcome::Delivered, "{}", report.detail);
        assert_eq!(report.received, 5);
        assert_eq!(report.latencies.len(), 5);
        assert!(report.handshake.is_some() && report.first_message.is_some());
        assert!(report.detail.ends_with("closed"), "{}", report.detail);
        let (_, again) = client_run(kind);
        assert_eq!(log, again);
    }
}

/// A stream to a host that does not answer is `connect-refused`, from the plan's transport.
#[test]
fn a_stream_to_no_server_is_connect_refused() {
    let out = Rc::new(RefCell::new(None));
    let o = out.clone();
    run(Options::default(), move |net: NetRef| {
        async move {
            let t = Transcript::default();
            let mut plan = plan(WorkloadKind::Echo);
            plan.workload.reply_timeout = Duration::from_millis(500);
            plan.host = "nowhere".into();
            *o.borrow_mut() = Some(client::run(&net, &plan, &t).await);
            Ok(())
        }
        .boxed_local()
    });
    let report = out.borrow_mut().take().expect("a report");
    assert_eq!(report.outcome, Outcome::ConnectRefused, "{}", report.detail);
}
