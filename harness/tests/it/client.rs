//! The reference client's classification, against scripted raw servers: each misbehaviour
//! ends in the outcome the scenario format documents.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use futures_util::FutureExt;
use gauntlet::endpoints::client::{self, Plan, Report};
use gauntlet::endpoints::smuggle::{Decoded, decode, encode, opcode};
use gauntlet::engine::{self, Engine, LinkConfig, NetRef, Topology};
use gauntlet::scenario::{Idle, Scheme, Workload, WorkloadKind};
use gauntlet::tls::Tls;
use gauntlet::verdict::outcome::Outcome;
use gauntlet::verdict::transcript::Transcript;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// What the scripted server does with the upgrade request.
#[derive(Debug, Clone, Copy)]
enum Script {
    /// Reads the request and never answers.
    Silent,
    /// Answers 101 with a wrong `Sec-WebSocket-Accept`.
    BadAccept,
    /// Answers a valid 101, then never sends anything.
    UpgradeThenSilent,
    /// Answers a valid 101, then closes (FIN) after this many milliseconds.
    UpgradeThenFin(u64),
    /// Answers a valid 101, then reads frames by hand, noting each in the run's [`Seen`]:
    /// echoes each whole message in one frame, and answers a Close with `close_reply`; with
    /// `close_first = (n, code)`, closes first with `code` after echoing `n` messages.
    Frames {
        close_reply: u16,
        close_first: Option<(u32, u16)>,
    },
    /// [`Script::Frames`] answering a Close with 1000, then keeping the connection open: the
    /// end that never comes.
    FramesThenHold,
    /// [`Script::Frames`] answering a Close with its code and no reason.
    FramesDroppingTheReason,
}

/// A frame the scripted server read: FIN, opcode, masked, payload length.
type Frame = (bool, u8, bool, usize);

/// The frames a scripted server read.
type Seen = Rc<RefCell<Vec<Frame>>>;

fn scripted(script: Script, seen: Seen) -> gauntlet::engine::Software {
    Rc::new(move |net: NetRef| {
        let seen = seen.clone();
        async move {
            let mut listener = net.listen(80).await?;
            let mut s = listener.accept().await?;
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") {
                s.read_exact(&mut byte).await?;
                request.push(byte[0]);
            }
            let text = String::from_utf8_lossy(&request).to_string();
            let key = text
                .lines()
                .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
                .unwrap_or_default()
                .trim()
                .to_string();
            let accept = match script {
                Script::BadAccept => "d3JvbmcgYWNjZXB0IGtleSE=".to_string(),
                _ => derive_accept_key(key.as_bytes()),
            };
            if !matches!(script, Script::Silent) {
                let head = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
                );
                s.write_all(head.as_bytes()).await?;
            }
            if let Script::UpgradeThenFin(after) = script {
                net.sleep_until(net.now() + Duration::from_millis(after)).await;
                s.shutdown().await?;
            }
            if let Script::Frames {
                close_reply,
                close_first,
            } = script
            {
                return frames(&mut s, (close_reply, close_first), &seen, (true, true)).await;
            }
            if let Script::FramesThenHold = script {
                frames(&mut s, (1000, None), &seen, (false, true)).await?;
                std::future::pending::<()>().await;
            }
            if let Script::FramesDroppingTheReason = script {
                return frames(&mut s, (1000, None), &seen, (true, false)).await;
            }
            let mut sink = Vec::new();
            let _ = s.read_to_end(&mut sink).await;
            std::future::pending::<()>().await;
            Ok(())
        }
        .boxed_local()
    })
}

/// Reads frames until a Close, noting each, echoing each message whole, then answers the
/// Close with `close_reply` (unless it closed first: see [`Script::Frames`]) and closes.
async fn frames(
    s: &mut engine::Stream,
    (close_reply, close_first): (u16, Option<(u32, u16)>),
    seen: &Seen,
    (end, reason): (bool, bool),
) -> anyhow::Result<()> {
    let mut buf = Vec::new();
    let mut message: Option<(u8, Vec<u8>)> = None;
    let (mut echoed, mut closed) = (0, false);
    loop {
        if let Some((_, code)) = close_first.filter(|(after, _)| *after == echoed && !closed) {
            // As the reference server closes: its code and its reason.
            let mut payload = code.to_be_bytes().to_vec();
            payload.extend_from_slice(gauntlet::endpoints::server::SERVER_CLOSE_REASON.as_bytes());
            s.write_all(&encode(opcode::CLOSE, &payload, None)).await?;
            closed = true;
        }
        let (frame, used) = loop {
            if let Decoded::Frame(f, used) = decode(&buf) {
                break (f, used);
            }
            let mut chunk = [0u8; 4096];
            let n = s.read(&mut chunk).await?;
            anyhow::ensure!(n > 0, "the client closed before its Close");
            buf.extend_from_slice(&chunk[..n]);
        };
        let fin = buf[0] & 0x80 != 0;
        buf.drain(..used);
        seen.borrow_mut()
            .push((fin, frame.opcode, frame.masked, frame.payload.len()));
        if frame.opcode == opcode::CLOSE {
            if close_first.is_none() {
                // The reply carries the reason the client's Close did, as RFC 6455 §5.5.1's
                // echo of the frame does.
                let mut payload = close_reply.to_be_bytes().to_vec();
                if reason {
                    payload.extend_from_slice(frame.payload.get(2..).unwrap_or_default());
                }
                s.write_all(&encode(opcode::CLOSE, &payload, None)).await?;
            }
            if end {
                s.shutdown().await?;
            }
            return Ok(());
        }
        let (op, payload) = message.get_or_insert((frame.opcode, Vec::new()));
        payload.extend_from_slice(&frame.payload);
        if fin {
            let reply = encode(*op, payload, None);
            message = None;
            s.write_all(&reply).await?;
            echoed += 1;
        }
    }
}

fn workload(idle: Vec<Idle>) -> Workload {
    Workload {
        messages: 2,
        payload_bytes: 16,
        reply_timeout: Duration::from_secs(2),
        idle,
        ..Workload::new(WorkloadKind::Echo)
    }
}

fn run_against(server: Option<Script>, workload: Workload) -> Report {
    run_with_pings(server, workload, None).0
}

/// Runs the client against `server` on every simulated engine; the engines must agree on the
/// outcome. Gives the default engine's report and the frames its scripted server read.
fn run_with_pings(
    server: Option<Script>,
    workload: Workload,
    ping_interval: Option<Duration>,
) -> (Report, Vec<Frame>) {
    let mut reports = engine::SIMULATED.iter().map(|name| {
        let e = engine::by_name(name).expect("listed engines exist");
        (
            name,
            run_on(e.as_ref(), server, workload.clone(), ping_interval),
        )
    });
    let (_, first) = reports.next().expect("there is an engine");
    for (name, (other, _)) in reports {
        assert_eq!(other.outcome, first.0.outcome, "{name}: {}", other.detail);
    }
    first
}

fn run_on(
    engine: &dyn Engine,
    server: Option<Script>,
    workload: Workload,
    ping_interval: Option<Duration>,
) -> (Report, Vec<Frame>) {
    let (tls, _) = Tls::generate(&["server".to_string()]).unwrap();
    let mut topology = Topology::new(
        LinkConfig::new(Duration::from_millis(5), Duration::ZERO),
        Duration::from_secs(60),
    );
    let seen = Seen::default();
    match server {
        Some(script) => topology.host("server", scripted(script, seen.clone())),
        None => topology.host(
            "server",
            Rc::new(|_net: NetRef| std::future::pending::<anyhow::Result<()>>().boxed_local()),
        ),
    }
    let plan = Plan {
        scheme: Scheme::Ws,
        host: "server".into(),
        handshake_timeout: Duration::from_secs(1),
        workload,
        seed: 1,
        tls: tls.client,
        ping_interval,
        proxy: None,
        mask: true,
        path_prefix: String::new(),
        subprotocols: Vec::new(),
        wire: Default::default(),
        browser: Default::default(),
        handshake: Default::default(),
        request: Default::default(),
        stop_proxy: None,
    };
    let slot = Rc::new(std::cell::RefCell::new(None));
    let out = slot.clone();
    topology.client(
        "client",
        Box::new(move |net: NetRef| {
            async move {
                let report = client::run(net, plan, Transcript::default()).await;
                *out.borrow_mut() = Some(report);
                Ok(())
            }
            .boxed_local()
        }),
    );
    engine.run(topology, 1).unwrap();
    let report = slot.borrow_mut().take().unwrap();
    (report, seen.take())
}

#[test]
fn a_server_that_never_answers_the_upgrade_is_a_handshake_timeout() {
    let r = run_against(Some(Script::Silent), workload(vec![]));
    assert_eq!(r.outcome, Outcome::HandshakeTimeout, "{r:?}");
    assert!(r.detail.contains("stuck in upgrade"), "{r:?}");
}

#[test]
fn a_101_with_a_wrong_accept_key_is_a_handshake_invalid() {
    let r = run_against(Some(Script::BadAccept), workload(vec![]));
    assert_eq!(r.outcome, Outcome::HandshakeInvalid, "{r:?}");
}

#[test]
fn a_missing_echo_is_stalled() {
    let r = run_against(Some(Script::UpgradeThenSilent), workload(vec![]));
    assert_eq!(r.outcome, Outcome::Stalled, "{r:?}");
    assert!(r.detail.contains("no echo of #0 within 2000.0 ms"), "{r:?}");
    assert_eq!((r.sent, r.received), (1, 0));
}

#[test]
fn a_close_without_a_close_frame_while_idle_is_idle_closed() {
    let idle = vec![Idle {
        after_message: 0,
        ms: 5000,
    }];
    let r = run_against(Some(Script::UpgradeThenFin(1000)), workload(idle));
    assert_eq!(r.outcome, Outcome::IdleClosed, "{r:?}");
    assert!(r.detail.contains("1006"), "{r:?}");
}

#[test]
fn a_close_without_a_close_frame_while_waiting_is_dropped() {
    let r = run_against(Some(Script::UpgradeThenFin(0)), workload(vec![]));
    assert_eq!(r.outcome, Outcome::Dropped, "{r:?}");
}

#[test]
fn nobody_listening_is_connect_refused() {
    let r = run_against(None, workload(vec![]));
    assert_eq!(r.outcome, Outcome::ConnectRefused, "{r:?}");
    assert!(r.detail.contains("server:80"), "{r:?}");
}

#[test]
fn an_unanswered_ping_while_idle_is_stalled() {
    let idle = vec![Idle {
        after_message: 0,
        ms: 10_000,
    }];
    let (r, _) = run_with_pings(
        Some(Script::UpgradeThenSilent),
        workload(idle),
        Some(Duration::from_secs(1)),
    );
    assert_eq!(r.outcome, Outcome::Stalled, "{r:?}");
    assert!(
        r.detail
            .contains("ping sent at 1020.0 ms unanswered within 2000.0 ms"),
        "{r:?}"
    );
}

#[test]
fn fragmented_messages_go_out_as_masked_first_and_continuation_frames() {
    let w = Workload {
        messages: 1,
        payload_bytes: 25,
        fragment_bytes: Some(10),
        binary: true,
        ..workload(vec![])
    };
    let (r, seen) = run_with_pings(
        Some(Script::Frames {
            close_reply: 1000,
            close_first: None,
        }),
        w,
        None,
    );
    assert_eq!(r.outcome, Outcome::Delivered, "{r:?}");
    assert_eq!(
        seen,
        [
            (false, opcode::BINARY, true, 10),
            (false, 0x0, true, 10),
            (true, 0x0, true, 5),
            (true, opcode::CLOSE, true, 6),
        ]
    );
    assert_eq!(
        r.detail,
        "1/1 echoed (binary, sent in frames of at most 10 bytes), closed 1000"
    );
}

#[test]
fn the_close_reply_must_carry_the_code_the_client_sent() {
    let w = Workload {
        close_code: 4001,
        ..workload(vec![])
    };
    let (r, seen) = run_with_pings(
        Some(Script::Frames {
            close_reply: 4001,
            close_first: None,
        }),
        w.clone(),
        None,
    );
    assert_eq!(r.outcome, Outcome::Delivered, "{r:?}");
    assert_eq!(r.detail, "2/2 echoed, closed 4001");
    assert_eq!(seen.last(), Some(&(true, opcode::CLOSE, true, 6)));
    let r = run_against(
        Some(Script::Frames {
            close_reply: 1000,
            close_first: None,
        }),
        w,
    );
    assert_eq!(r.outcome, Outcome::Corrupted, "{r:?}");
    assert!(
        r.detail.starts_with("sent close 4001, got back 1000"),
        "{r:?}"
    );
}

#[test]
fn a_server_that_does_not_close_first_leaves_the_client_stalled() {
    let w = Workload {
        server_close_code: Some(4002),
        ..workload(vec![])
    };
    let r = run_against(
        Some(Script::Frames {
            close_reply: 1000,
            close_first: None,
        }),
        w,
    );
    assert_eq!(r.outcome, Outcome::Stalled, "{r:?}");
    assert!(r.detail.contains("close handshake unanswered"), "{r:?}");
}

#[test]
fn the_server_closing_first_must_use_the_expected_code() {
    let w = Workload {
        server_close_code: Some(4002),
        ..workload(vec![])
    };
    let closes_with = |code| Script::Frames {
        close_reply: 1000,
        close_first: Some((2, code)),
    };
    let (r, seen) = run_with_pings(Some(closes_with(4002)), w.clone(), None);
    assert_eq!(r.outcome, Outcome::Delivered, "{r:?}");
    assert_eq!(r.detail, "2/2 echoed, server closed 4002");
    // The client's reply echoes the code and the reason (2 + 17 bytes).
    assert_eq!(seen.last(), Some(&(true, opcode::CLOSE, true, 19)));
    let r = run_against(Some(closes_with(1001)), w.clone());
    assert_eq!(r.outcome, Outcome::Corrupted, "{r:?}");
    assert!(
        r.detail
            .starts_with("expected the server's close 4002, got 1001"),
        "{r:?}"
    );
    let r = run_against(
        Some(Script::Frames {
            close_reply: 1000,
            close_first: Some((1, 4002)),
        }),
        w,
    );
    assert_eq!(r.outcome, Outcome::Dropped, "{r:?}");
    assert!(r.detail.contains("server closed with 4002"), "{r:?}");
}

#[test]
fn a_connection_left_open_after_the_close_handshake_is_stalled_saying_so() {
    let r = run_against(Some(Script::FramesThenHold), workload(vec![]));
    assert_eq!(r.outcome, Outcome::Stalled, "{r:?}");
    assert!(
        r.detail
            .starts_with("the connection still open 2000.0 ms after the close handshake"),
        "{r:?}"
    );
}

#[test]
fn a_close_reply_without_the_reason_sent_is_corrupted() {
    let r = run_against(Some(Script::FramesDroppingTheReason), workload(vec![]));
    assert_eq!(r.outcome, Outcome::Corrupted, "{r:?}");
    assert!(
        r.detail
            .starts_with("sent close 1000 `done`, got back 1000 ``"),
        "{r:?}"
    );
}
