//! The Engine.IO server through the simulated network: sessions opened by polling and by
//! WebSocket, echoes both ways, the upgrade, the heartbeat, and every refusal, each checked
//! against what engine.io answers; and the same transcript from the same seed.

pub(crate) mod http;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use super::Options;
use super::packet::{ErrorCode, Handshake, Packet, PacketType};
use http::{Http, client, open_polling, polling_session, run, target, websocket};

/// Asserts the server's transcript holds each of `lines`.
fn logged(log: &str, lines: &[&str]) {
    for line in lines {
        assert!(log.contains(line), "no `{line}` in:\n{log}");
    }
}

fn bare(kind: PacketType) -> Packet {
    Packet::bare(kind)
}

/// Heartbeats of 300 ms and 200 ms, as the protocol's test suite sets them.
fn quick() -> Options {
    Options {
        ping_interval: Duration::from_millis(300),
        ping_timeout: Duration::from_millis(200),
        ..Options::default()
    }
}

#[test]
fn a_polling_session_opens_and_echoes_text_and_binary() {
    let log = run(
        Options::default(),
        client(|net| async move {
            let mut http = Http::connect(&net).await?;
            let reply = http.get(&target("polling", None)).await?;
            assert_eq!(
                reply.header("content-type"),
                Some("text/plain; charset=UTF-8")
            );
            let open = Handshake::from_packet(&reply.packets()[0])?;
            assert_eq!(open.upgrades, vec!["websocket"]);
            assert_eq!(
                (open.ping_interval, open.ping_timeout, open.max_payload),
                (25_000, 20_000, 1_000_000)
            );
            assert_eq!(open.sid.len(), 20);
            let session = target("polling", Some(&open.sid));
            let posted = http.post(&session, b"4hello\x1ebAQIDBA==").await?;
            assert_eq!((posted.status, posted.text()), (200, "ok".to_string()));
            let got = http.get(&session).await?;
            assert_eq!(got.text(), "4hello\x1ebAQIDBA==");
            Ok(())
        }),
    );
    logged(
        &log,
        &[
            "opened over polling (echo)",
            "echoes a text message (5 bytes)",
            "echoes a binary message (4 bytes)",
        ],
    );
}

#[test]
fn a_held_poll_is_answered_by_the_next_ping_or_the_echo_it_waits_for() {
    run(
        Options::default(),
        client(|net| async move {
            let (mut polls, _, session) = polling_session(&net).await?;
            let start = net.now();
            let ping = polls.get(&session).await?;
            assert_eq!(ping.packets(), vec![bare(PacketType::Ping)]);
            // The ping went out 25 s after the open packet did: both took one latency to come.
            assert_eq!(net.now() - start, Duration::from_secs(25));
            let mut posts = Http::connect(&net).await?;
            posts.post(&session, b"3").await?;
            let (echo, posted) =
                tokio::join!(polls.get(&session), posts.post(&session, b"4while held"));
            assert_eq!(posted?.status, 200);
            assert_eq!(echo?.packets(), vec![Packet::message("while held")]);
            Ok(())
        }),
    );
}

#[test]
fn refusals_are_engine_ios_codes_and_statuses() {
    run(
        Options::default(),
        client(|net| async move {
            let mut http = Http::connect(&net).await?;
            let cases = [
                (
                    "GET",
                    "/engine.io/?EIO=4&transport=polling&sid=nobody",
                    ErrorCode::SessionIdUnknown,
                ),
                (
                    "POST",
                    "/socket.io/?EIO=4&transport=polling&sid=nobody",
                    ErrorCode::SessionIdUnknown,
                ),
                (
                    "GET",
                    "/engine.io/?EIO=3&transport=polling",
                    ErrorCode::UnsupportedProtocolVersion,
                ),
                (
                    "GET",
                    "/engine.io/?transport=polling",
                    ErrorCode::UnsupportedProtocolVersion,
                ),
                (
                    "GET",
                    "/engine.io/?EIO=4&transport=abc",
                    ErrorCode::TransportUnknown,
                ),
                ("GET", "/engine.io/?EIO=4", ErrorCode::TransportUnknown),
                (
                    "POST",
                    "/engine.io/?EIO=4&transport=polling",
                    ErrorCode::BadHandshakeMethod,
                ),
                (
                    "PUT",
                    "/engine.io/?EIO=4&transport=polling",
                    ErrorCode::BadHandshakeMethod,
                ),
                (
                    "GET",
                    "/engine.io/?EIO=4&transport=websocket",
                    ErrorCode::BadRequest,
                ),
            ];
            for (method, path, code) in cases {
                let reply = http.request(method, path, &[], "").await?;
                assert_eq!(reply.status, 400, "{method} {path}");
                assert_eq!(reply.header("content-type"), Some("application/json"));
                assert_eq!(reply.error().error_code(), Some(code), "{method} {path}");
                assert_eq!(reply.error().message, code.message());
            }
            Ok(())
        }),
    );
}

#[test]
fn an_upgrade_probes_ends_the_held_poll_with_a_noop_and_moves_the_session() {
    let log = run(
        Options::default(),
        client(|net| async move {
            let (mut polls, open, session) = polling_session(&net).await?;
            let mut posts = Http::connect(&net).await?;
            let mut ws = websocket(&net, &target("websocket", Some(&open.sid))).await?;
            let held = async {
                let noop = polls.get(&session).await?;
                anyhow::Ok(noop.packets())
            };
            let probe = async {
                ws.send(Message::text("2probe")).await?;
                let pong = ws.next().await.ok_or_else(|| anyhow::anyhow!("ended"))??;
                anyhow::Ok(pong)
            };
            let (noop, pong) = tokio::join!(held, probe);
            assert_eq!(pong?, Message::text("3probe"));
            assert_eq!(noop?, vec![bare(PacketType::Noop)]);
            ws.send(Message::text("5")).await?;
            ws.send(Message::text("4over the websocket")).await?;
            ws.send(Message::binary(vec![0xff, 0])).await?;
            let text = ws.next().await.ok_or_else(|| anyhow::anyhow!("ended"))??;
            let binary = ws.next().await.ok_or_else(|| anyhow::anyhow!("ended"))??;
            assert_eq!(text, Message::text("4over the websocket"));
            assert_eq!(binary, Message::binary(vec![0xff, 0]));
            // Polling is over for the session, and a second WebSocket is closed.
            let late = posts.get(&session).await?;
            assert_eq!(late.error().error_code(), Some(ErrorCode::BadRequest));
            let mut second = websocket(&net, &target("websocket", Some(&open.sid))).await?;
            assert!(matches!(
                second.next().await,
                Some(Ok(Message::Close(None)))
            ));
            // The heartbeat goes on over the WebSocket.
            let ping = ws.next().await.ok_or_else(|| anyhow::anyhow!("ended"))??;
            assert_eq!(ping, Message::text("2"));
            ws.send(Message::text("1")).await?;
            assert!(matches!(ws.next().await, Some(Ok(Message::Close(None)))));
            Ok(())
        }),
    );
    logged(
        &log,
        &[
            "probe answered on a websocket",
            "upgraded to websocket",
            "closed: the client's close packet",
        ],
    );
}

/// A client that polled again after the noop, before it saw `3probe` (on a real network the
/// noop may come first), gets another noop within 100 ms, as engine.io's upgrade checks give
/// it, rather than waiting for the next ping; and a GET after the upgrade is refused.
#[test]
fn a_poll_made_again_during_the_upgrade_is_let_go_within_100_ms() {
    run(
        Options::default(),
        client(|net| async move {
            let (mut polls, open, session) = polling_session(&net).await?;
            let mut ws = websocket(&net, &target("websocket", Some(&open.sid))).await?;
            ws.send(Message::text("2probe")).await?;
            let (first, pong) = tokio::join!(polls.get(&session), ws.next());
            assert_eq!(first?.packets(), vec![bare(PacketType::Noop)]);
            assert_eq!(pong.transpose()?, Some(Message::text("3probe")));
            let asked = net.now();
            let again = polls.get(&session).await?;
            assert_eq!(again.packets(), vec![bare(PacketType::Noop)]);
            assert!(
                net.now() - asked <= Duration::from_millis(102),
                "{:?}",
                net.now() - asked
            );
            ws.send(Message::text("5")).await?;
            ws.send(Message::text("4upgraded")).await?;
            assert_eq!(
                ws.next().await.transpose()?,
                Some(Message::text("4upgraded"))
            );
            Ok(())
        }),
    );
}

#[test]
fn a_websocket_session_opens_with_its_open_packet_and_echoes() {
    run(
        quick(),
        client(|net| async move {
            let mut ws = websocket(&net, &target("websocket", None)).await?;
            let Some(Ok(Message::Text(first))) = ws.next().await else {
                anyhow::bail!("no open packet");
            };
            let open = Handshake::from_packet(&Packet::decode_text(first.as_str())?)?;
            assert!(open.upgrades.is_empty());
            assert_eq!((open.ping_interval, open.ping_timeout), (300, 200));
            for _ in 0..3 {
                assert_eq!(ws.next().await.transpose()?, Some(Message::text("2")));
                ws.send(Message::text("3")).await?;
            }
            ws.send(Message::text("4hello")).await?;
            assert_eq!(ws.next().await.transpose()?, Some(Message::text("4hello")));
            // A packet that is no packet closes the session and its WebSocket.
            ws.send(Message::text("abc")).await?;
            assert!(matches!(ws.next().await, Some(Ok(Message::Close(None)))));
            Ok(())
        }),
    );
}

#[test]
fn a_pong_too_late_closes_the_session() {
    let log = run(
        quick(),
        client(|net| async move {
            let (mut http, _, session) = polling_session(&net).await?;
            for _ in 0..3 {
                assert_eq!(
                    http.get(&session).await?.packets(),
                    vec![bare(PacketType::Ping)]
                );
                assert_eq!(http.post(&session, b"3").await?.text(), "ok");
            }
            net.sleep_until(net.now() + Duration::from_millis(600))
                .await;
            let gone = http.get(&session).await?;
            assert_eq!(gone.error().error_code(), Some(ErrorCode::SessionIdUnknown));
            Ok(())
        }),
    );
    assert!(
        log.contains("closed: ping timeout: no pong within 200 ms"),
        "{log}"
    );
}

#[test]
fn a_second_poll_closes_the_session_and_the_first_gets_a_close_packet() {
    run(
        Options::default(),
        client(|net| async move {
            let (mut a, _, session) = polling_session(&net).await?;
            let mut b = Http::connect(&net).await?;
            let second = async {
                net.sleep_until(net.now() + Duration::from_millis(5)).await;
                b.get(&session).await
            };
            let (first, second) = tokio::join!(a.get(&session), second);
            assert_eq!(first?.packets(), vec![bare(PacketType::Close)]);
            assert_eq!(second?.error().error_code(), Some(ErrorCode::BadRequest));
            let gone = a.get(&session).await?;
            assert_eq!(gone.error().error_code(), Some(ErrorCode::SessionIdUnknown));
            Ok(())
        }),
    );
}

#[test]
fn the_clients_close_packet_ends_a_held_poll_with_a_noop() {
    run(
        Options::default(),
        client(|net| async move {
            let (mut a, _, session) = polling_session(&net).await?;
            let mut b = Http::connect(&net).await?;
            let (held, posted) = tokio::join!(a.get(&session), b.post(&session, b"1"));
            assert_eq!(posted?.text(), "ok");
            assert_eq!(held?.packets(), vec![bare(PacketType::Noop)]);
            let gone = a.get(&session).await?;
            assert_eq!(gone.error().error_code(), Some(ErrorCode::SessionIdUnknown));
            Ok(())
        }),
    );
}

#[test]
fn bad_payloads_close_the_session_and_long_ones_are_refused() {
    let log = run(
        Options {
            max_payload: 100,
            ..Options::default()
        },
        client(|net| async move {
            let (mut http, _, session) = polling_session(&net).await?;
            let long = http.post(&session, &[b'4'; 101]).await?;
            assert_eq!(long.status, 413);
            let mut http = Http::connect(&net).await?;
            assert_eq!(http.post(&session, &[b'4'; 100]).await?.text(), "ok");
            let bad = http.post(&session, b"abc").await?;
            assert_eq!(bad.error().error_code(), Some(ErrorCode::BadRequest));
            let gone = http.get(&session).await?;
            assert_eq!(gone.error().error_code(), Some(ErrorCode::SessionIdUnknown));
            let open = open_polling(&mut http).await?;
            let session = target("polling", Some(&open.sid));
            let ping = http.post(&session, b"2").await?;
            assert_eq!(ping.error().error_code(), Some(ErrorCode::BadRequest));
            Ok(())
        }),
    );
    assert!(
        log.contains("closed: parse error: unknown packet type 'a'"),
        "{log}"
    );
    assert!(
        log.contains("closed: transport error: a ping from the client"),
        "{log}"
    );
}

#[test]
fn sessions_beyond_the_limit_are_forbidden() {
    run(
        Options {
            max_sessions: 1,
            ..Options::default()
        },
        client(|net| async move {
            let mut http = Http::connect(&net).await?;
            open_polling(&mut http).await?;
            let refused = http.get(&target("polling", None)).await?;
            assert_eq!(refused.status, 403);
            assert_eq!(refused.error().error_code(), Some(ErrorCode::Forbidden));
            Ok(())
        }),
    );
}

#[test]
fn push_sends_its_messages_on_schedule() {
    let log = run(
        quick(),
        client(|net| async move {
            let mut http = Http::connect(&net).await?;
            let reply = http
                .get("/engine.io/?EIO=4&transport=polling&app=push&count=2&interval=100&size=20")
                .await?;
            let open = Handshake::from_packet(&reply.packets()[0])?;
            let session = target("polling", Some(&open.sid));
            let mut texts = Vec::new();
            while texts.len() < 2 {
                for packet in http.get(&session).await?.packets() {
                    if let Packet::Text(PacketType::Message, text) = packet {
                        texts.push(text);
                    }
                }
            }
            assert_eq!(texts, vec!["push 0 at 3000......", "push 1 at 103000...."]);
            Ok(())
        }),
    );
    assert!(
        log.contains("(push 2 messages of 20 bytes every 100 ms)"),
        "{log}"
    );
}

#[test]
fn the_same_seed_gives_the_same_transcript() {
    let once = || {
        run(
            quick(),
            client(|net| async move {
                let mut http = Http::connect(&net).await?;
                let open = open_polling(&mut http).await?;
                let session = target("polling", Some(&open.sid));
                http.post(&session, b"4a\x1e4b").await?;
                http.get(&session).await?;
                let mut ws = websocket(&net, &target("websocket", Some(&open.sid))).await?;
                ws.send(Message::text("2probe")).await?;
                ws.next().await;
                ws.send(Message::text("5")).await?;
                ws.send(Message::text("4c")).await?;
                ws.next().await;
                net.sleep_until(net.now() + Duration::from_secs(1)).await;
                Ok(())
            }),
        )
    };
    let first = once();
    assert!(first.contains("closed: ping timeout"), "{first}");
    assert_eq!(first, once());
}

#[test]
fn a_websocket_message_over_max_payload_is_closed_with_1009() {
    let log = run(
        Options {
            max_payload: 100,
            ..Options::default()
        },
        client(|net| async move {
            let mut ws = websocket(&net, &target("websocket", None)).await?;
            ws.next().await.transpose()?;
            ws.send(Message::text(format!("4{}", "x".repeat(100))))
                .await?;
            let Some(Ok(Message::Close(Some(frame)))) = ws.next().await else {
                anyhow::bail!("no Close");
            };
            assert_eq!(u16::from(frame.code), 1009);
            Ok(())
        }),
    );
    logged(&log, &["close 1009 sent"]);
}

#[test]
fn a_client_that_never_polls_is_closed_at_the_buffer_limit() {
    let log = run(
        Options {
            max_buffered: 1000,
            ..Options::default()
        },
        client(|net| async move {
            let (mut http, _, session) = polling_session(&net).await?;
            let message = format!("4{}", "x".repeat(400));
            for _ in 0..3 {
                assert_eq!(http.post(&session, message.as_bytes()).await?.text(), "ok");
            }
            let gone = http.get(&session).await?;
            assert_eq!(gone.error().error_code(), Some(ErrorCode::SessionIdUnknown));
            Ok(())
        }),
    );
    logged(
        &log,
        &["bytes of packets waiting for the client, over the 1000 the server holds"],
    );
}
