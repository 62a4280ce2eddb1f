//! The reference client's classification, against scripted raw servers: each misbehaviour
//! ends in the outcome the scenario format documents.

use std::rc::Rc;
use std::time::Duration;

use futures_util::FutureExt;
use gauntlet::client::{self, Plan, Report};
use gauntlet::engine::{self, Engine, LinkConfig, NetRef, Topology};
use gauntlet::outcome::Outcome;
use gauntlet::scenario::{Idle, Scheme, Workload, WorkloadKind};
use gauntlet::tls::Tls;
use gauntlet::transcript::Transcript;
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
}

fn scripted(script: Script) -> gauntlet::engine::Software {
    Rc::new(move |net: NetRef| {
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
            let mut sink = Vec::new();
            let _ = s.read_to_end(&mut sink).await;
            std::future::pending::<()>().await;
            Ok(())
        }
        .boxed_local()
    })
}

fn workload(idle: Vec<Idle>) -> Workload {
    Workload {
        kind: WorkloadKind::Echo,
        messages: 2,
        interval: Duration::from_millis(100),
        payload_bytes: 16,
        reply_timeout: Duration::from_secs(2),
        idle,
    }
}

fn run_against(server: Option<Script>, workload: Workload) -> Report {
    run_with_pings(server, workload, None)
}

/// Runs the client against `server` on every simulated engine; the engines must agree on the
/// outcome. Gives the default engine's report.
fn run_with_pings(
    server: Option<Script>,
    workload: Workload,
    ping_interval: Option<Duration>,
) -> Report {
    let mut reports = engine::SIMULATED.iter().map(|name| {
        let e = engine::by_name(name).expect("listed engines exist");
        (
            name,
            run_on(e.as_ref(), server, workload.clone(), ping_interval),
        )
    });
    let (_, first) = reports.next().expect("there is an engine");
    for (name, other) in reports {
        assert_eq!(other.outcome, first.outcome, "{name}: {}", other.detail);
    }
    first
}

fn run_on(
    engine: &dyn Engine,
    server: Option<Script>,
    workload: Workload,
    ping_interval: Option<Duration>,
) -> Report {
    let (tls, _) = Tls::generate(&["server".to_string()]).unwrap();
    let mut topology = Topology::new(
        LinkConfig::new(Duration::from_millis(5), Duration::ZERO),
        Duration::from_secs(60),
    );
    match server {
        Some(script) => topology.host("server", scripted(script)),
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
    slot.borrow_mut().take().unwrap()
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
    let r = run_with_pings(
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
