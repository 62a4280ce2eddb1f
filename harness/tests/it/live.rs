//! The `live` engine: catalogue scenarios on real loopback sockets, its refusals, and its
//! network semantics (FIN, reset, held and blackholed links, interception, peers, published
//! addresses). Nothing here asserts wall-clock timings; every run ends by itself within its
//! topology's limit, enforced in wall time.

use std::cell::RefCell;
use std::io::{Read as _, Write as _};
use std::rc::Rc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::LocalBoxFuture;
use gauntlet::engine::live::Live;
use gauntlet::engine::{
    ClientSoftware, Engine, EngineError, LinkConfig, LinkFault, NetRef, Software, Topology,
};
use gauntlet::scenario::{self, Scheme};
use gauntlet::verdict::outcome::Outcome;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Log = Rc<RefCell<Vec<String>>>;

/// Runs a catalogue file for `scheme` (seed 1) on the live engine: its outcome and detail.
fn outcome(file: &str, scheme: Scheme) -> (Outcome, String) {
    let s = scenario::load(&crate::root().join(file)).expect("a valid scenario");
    let out = gauntlet::run::run(&Live, &s, scheme, 1).expect("the run completes");
    (out.report.outcome, out.report.detail)
}

fn expect(file: &str, ws: Outcome, wss: Outcome) {
    for (scheme, want) in [(Scheme::Ws, ws), (Scheme::Wss, wss)] {
        let (got, detail) = outcome(file, scheme);
        assert_eq!(got, want, "{file} {scheme}: {detail}");
    }
}

#[test]
fn baseline_paths_deliver_on_real_sockets() {
    for file in [
        "scenarios/baseline/direct.toml",
        "scenarios/baseline/pass.toml",
        "scenarios/baseline/chain-of-three-pass.toml",
    ] {
        expect(file, Outcome::Delivered, Outcome::Delivered);
    }
}

#[test]
fn a_stripping_transparent_proxy_rejects_ws_and_passes_wss_on_real_sockets() {
    expect(
        "scenarios/seeds/transparent-strip.toml",
        Outcome::HandshakeRejected,
        Outcome::Delivered,
    );
}

#[test]
fn quick_catalogue_scenarios_meet_their_expectations_live() {
    for file in [
        "scenarios/seeds/nginx-without-upgrade-lines.toml",
        "scenarios/seeds/transparent-forward-then-reset.toml",
        "scenarios/seeds/explicit-proxy-squid-default.toml",
        "scenarios/seeds/tls-inspection-untrusted-ca.toml",
        "scenarios/seeds/cache-poisoning-unmasked.toml",
        "scenarios/seeds/l4-balancer-backend-crash.toml",
        "scenarios/seeds/l7-balancer-without-acls-hits-dead-backend.toml",
        "scenarios/products/mangler-drops-accept.toml",
        "scenarios/products/proxy-auth-with-credentials.toml",
        "scenarios/products/proxy-auth-without-credentials.toml",
        "scenarios/products/corporate-tls-inspection-passes.toml",
    ] {
        let s = scenario::load(&crate::root().join(file)).expect("a valid scenario");
        for &scheme in &s.client.schemes {
            let out = gauntlet::run::run(&Live, &s, scheme, 1).expect("the run completes");
            assert!(out.pass(), "{file} {scheme}: {}", out.report.detail);
        }
    }
}

/// The client strategies on real sockets: every request of a long-polling session on a
/// connection of its own, the probe's WebSocket beside them, and the upgrade, through a
/// stripping proxy, `pass` and a balancer with and without stickiness.
#[test]
fn client_strategies_meet_their_expectations_live() {
    for file in [
        "scenarios/strategies/pass-upgrades.toml",
        "scenarios/strategies/stripping-proxy-long-polling-survives.toml",
        "scenarios/strategies/ws-then-wss-through-stripping-proxy.toml",
        "scenarios/strategies/websocket-then-polling-through-stripping-proxy.toml",
        "scenarios/strategies/l7-balancer-round-robin-breaks-long-polling.toml",
        "scenarios/strategies/l7-balancer-source-ip-keeps-long-polling.toml",
        "scenarios/strategies/pass-streams.toml",
        "scenarios/strategies/streaming-pushes-through-a-stripping-proxy.toml",
        "scenarios/strategies/wss-then-streaming-through-intercepting-proxy.toml",
        "scenarios/strategies/detect-then-wss-through-stripping-proxy.toml",
        "scenarios/strategies/redirect-connects-past-a-balancer-that-strips-the-upgrade.toml",
        "scenarios/strategies/reconnect-gives-up-after-its-attempts.toml",
    ] {
        let s = scenario::load(&crate::root().join(file)).expect("a valid scenario");
        for case in s.cases() {
            let scheme = case.client.schemes[0];
            let out = gauntlet::run::run(&Live, &case, scheme, 1).expect("the run completes");
            let name = case.case_name(scheme);
            assert!(
                out.pass(),
                "{file} {name}: {}\n{}",
                out.report.detail,
                out.rendered()
            );
        }
    }
}

fn topology() -> Topology {
    Topology::new(
        LinkConfig::new(Duration::from_millis(5), Duration::ZERO),
        Duration::from_secs(20),
    )
}

fn idle_client() -> ClientSoftware {
    Box::new(|_net: NetRef| async { Ok(()) }.boxed_local())
}

#[test]
fn what_real_sockets_cannot_honour_is_refused_by_name() {
    let refusal = |t: Topology| match Live.run(t, 1) {
        Err(EngineError::Unsupported { engine, what }) => format!("{engine}: {what}"),
        other => panic!("not refused: {other:?}"),
    };
    let mut t = topology();
    t.link(
        "a",
        "b",
        LinkConfig {
            bandwidth: Some(1000),
            ..LinkConfig::new(Duration::ZERO, Duration::ZERO)
        },
    );
    t.client("client", idle_client());
    assert_eq!(refusal(t), "live: link bandwidth");

    let mut t = topology();
    t.link(
        "a",
        "b",
        LinkConfig {
            loss: 0.1,
            ..LinkConfig::new(Duration::ZERO, Duration::ZERO)
        },
    );
    t.client("client", idle_client());
    assert_eq!(refusal(t), "live: packet loss");

    let mut t = topology();
    t.buffer(1024);
    t.client("client", idle_client());
    assert_eq!(refusal(t), "live: buffer sizes");

    let mut t = topology();
    t.crash("server", Duration::from_secs(1));
    t.client("client", idle_client());
    assert_eq!(refusal(t), "live: host crashes (`server` is to crash)");
}

#[test]
fn the_time_limit_is_enforced() {
    let mut t = Topology::new(
        LinkConfig::new(Duration::ZERO, Duration::ZERO),
        Duration::from_millis(50),
    );
    t.client(
        "client",
        Box::new(|_net: NetRef| std::future::pending().boxed_local()),
    );
    assert!(matches!(Live.run(t, 1), Err(EngineError::TimeLimit(_))));
}

/// A host that accepts on port 80, reads one byte, then ends the stream as `how` says.
fn closer(how: &'static str) -> Software {
    Rc::new(move |net: NetRef| {
        async move {
            let mut listener = net.listen(80).await?;
            let mut stream = listener.accept().await?;
            let mut byte = [0u8; 1];
            stream.read_exact(&mut byte).await?;
            match how {
                "reset" => stream.reset(),
                _ => stream.shutdown().await?,
            }
            std::future::pending::<()>().await;
            Ok(())
        }
        .boxed_local()
    })
}

/// What a client that writes a byte to `server:80` then reads sees.
fn close_and_observe(how: &'static str) -> String {
    let log: Log = Rc::default();
    let mut t = topology();
    t.host("server", closer(how));
    let seen = log.clone();
    t.client(
        "client",
        Box::new(move |net: NetRef| {
            async move {
                let mut s = net.connect("server", 80).await?;
                s.write_all(b"x").await?;
                let mut buf = [0u8; 8];
                let r = s.read(&mut buf).await;
                seen.borrow_mut().push(match r {
                    Ok(n) => format!("read {n}"),
                    Err(e) => format!("{:?}", e.kind()),
                });
                Ok(())
            }
            .boxed_local()
        }),
    );
    Live.run(t, 1).expect("the run completes");
    let log = log.borrow();
    log[0].clone()
}

#[test]
fn a_fin_is_end_of_stream_and_a_reset_is_connection_reset() {
    assert_eq!(close_and_observe("fin"), "read 0");
    assert_eq!(close_and_observe("reset"), "ConnectionReset");
}

/// A host that accepts on port 80 forever and, for each connection, logs everything it
/// reads (until FIN) as `"{tag}: N bytes"`.
fn counting_server(log: Log) -> Software {
    Rc::new(move |net: NetRef| {
        let log = log.clone();
        async move {
            let mut listener = net.listen(80).await?;
            loop {
                let mut s = listener.accept().await?;
                let log = log.clone();
                net.spawn(
                    async move {
                        let mut tag = [0u8; 1];
                        if s.read_exact(&mut tag).await.is_err() {
                            return;
                        }
                        let mut rest = Vec::new();
                        let _ = s.read_to_end(&mut rest).await;
                        log.borrow_mut()
                            .push(format!("{}: {} bytes", tag[0] as char, rest.len()));
                    }
                    .boxed_local(),
                );
            }
        }
        .boxed_local()
    })
}

/// Runs `client` against [`counting_server`] until the shared log has `lines` lines: the log.
fn against_counting_server(
    lines: usize,
    client: impl FnOnce(NetRef, Log) -> LocalBoxFuture<'static, anyhow::Result<()>> + 'static,
) -> Vec<String> {
    let log: Log = Rc::default();
    let mut t = topology();
    t.host("server", counting_server(log.clone()));
    let client_log = log.clone();
    t.client(
        "client",
        Box::new(move |net: NetRef| {
            async move {
                client(net.clone(), client_log.clone()).await?;
                while client_log.borrow().len() < lines {
                    net.sleep_until(net.now() + Duration::from_millis(5)).await;
                }
                Ok(())
            }
            .boxed_local()
        }),
    );
    Live.run(t, 1).expect("the run completes");
    log.take()
}

#[test]
fn a_held_link_delivers_everything_once_released() {
    let log = against_counting_server(2, |net, log| {
        async move {
            let mut s = net.connect("server", 80).await?;
            net.link_fault("client", "server", LinkFault::Hold);
            s.write_all(b"a").await?;
            s.write_all(&[7u8; 3000]).await?;
            s.shutdown().await?;
            net.sleep_until(net.now() + Duration::from_millis(100))
                .await;
            log.borrow_mut().push("released".into());
            net.link_fault("client", "server", LinkFault::Release);
            Ok(())
        }
        .boxed_local()
    });
    assert_eq!(log, vec!["released", "a: 3000 bytes"]);
}

#[test]
fn a_blackhole_silences_open_streams_for_good_and_spares_later_ones() {
    let log = against_counting_server(2, |net, log| {
        async move {
            let mut lost = net.connect("server", 80).await?;
            net.link_fault("client", "server", LinkFault::Blackhole);
            lost.write_all(b"b").await?;
            lost.write_all(&[1u8; 100]).await?;
            lost.shutdown().await?;
            let mut buf = [0u8; 8];
            let silent = tokio::time::timeout(Duration::from_millis(100), lost.read(&mut buf));
            let heard = match silent.await {
                Err(_) => "silent".to_string(),
                Ok(r) => format!("heard {r:?}"),
            };
            log.borrow_mut().push(heard);
            net.link_fault("client", "server", LinkFault::Release);
            let mut later = net.connect("server", 80).await?;
            later.write_all(b"c").await?;
            later.write_all(&[2u8; 10]).await?;
            later.shutdown().await?;
            Ok(())
        }
        .boxed_local()
    });
    assert_eq!(log, vec!["silent", "c: 10 bytes"]);
}

/// A host that answers each connection on port 80 with `who` and the peer it sees.
fn named(who: &'static str) -> Software {
    Rc::new(move |net: NetRef| {
        async move {
            let mut listener = net.listen(80).await?;
            loop {
                let mut s = listener.accept().await?;
                let text = format!("{who} sees {}", s.peer());
                s.write_all(text.as_bytes()).await?;
                s.shutdown().await?;
            }
        }
        .boxed_local()
    })
}

#[test]
fn interception_peers_and_refusals() {
    let log: Log = Rc::default();
    let mut t = topology();
    t.host("server", named("server"));
    t.host("proxy", named("proxy"));
    t.intercept("client", "server", "proxy");
    let client_log = log.clone();
    t.client(
        "client",
        Box::new(move |net: NetRef| {
            async move {
                for host in ["server", "proxy"] {
                    let mut s = net.connect(host, 80).await?;
                    let mut text = String::new();
                    s.read_to_string(&mut text).await?;
                    client_log.borrow_mut().push(text);
                }
                for (host, port) in [("server", 81), ("nobody", 80)] {
                    let e = net.connect(host, port).await.err();
                    client_log
                        .borrow_mut()
                        .push(format!("{host}:{port} {:?}", e.map(|e| e.kind())));
                }
                Ok(())
            }
            .boxed_local()
        }),
    );
    Live.run(t, 1).expect("the run completes");
    assert_eq!(
        *log.borrow(),
        vec![
            "proxy sees client",
            "proxy sees client",
            "server:81 Some(ConnectionRefused)",
            "nobody:80 Some(NotFound)",
        ]
    );
}

/// Everything `s` reads until its end, as text.
async fn text_of(mut s: gauntlet::engine::Stream) -> std::io::Result<String> {
    let mut text = String::new();
    s.read_to_string(&mut text).await?;
    Ok(text)
}

#[test]
fn a_published_address_outside_the_run_is_reachable_by_name() {
    let outside = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = outside.local_addr().expect("a bound address");
    let answer = std::thread::spawn(move || {
        let (mut s, _) = outside.accept().expect("a connection");
        let mut asked = [0u8; 3];
        s.read_exact(&mut asked).expect("three bytes");
        s.write_all(b"outside").expect("an answer");
    });
    let log: Log = Rc::default();
    let mut t = topology();
    t.host(
        "ext",
        Rc::new(move |net: NetRef| {
            async move {
                net.publish(80, addr)?;
                std::future::pending().await
            }
            .boxed_local()
        }),
    );
    t.host("server", named("server"));
    let client_log = log.clone();
    t.client(
        "client",
        Box::new(move |net: NetRef| {
            async move {
                client_log.borrow_mut().push(format!(
                    "{:?} {:?}",
                    net.real_addr("ext", 80) == Some(addr),
                    net.real_addr("server", 80).map(|a| a.ip().is_loopback()),
                ));
                let mut s = net.connect("ext", 80).await?;
                s.write_all(b"hi?").await?;
                let text = text_of(s).await?;
                client_log.borrow_mut().push(text);
                Ok(())
            }
            .boxed_local()
        }),
    );
    Live.run(t, 1).expect("the run completes");
    answer.join().expect("the outside server answered");
    assert_eq!(*log.borrow(), vec!["true Some(true)", "outside"]);
}

#[test]
fn a_loopback_address_is_dialed_directly_and_other_addresses_are_not_found() {
    let log: Log = Rc::default();
    let mut t = topology();
    t.host("server", named("server"));
    let client_log = log.clone();
    t.client(
        "client",
        Box::new(move |net: NetRef| {
            async move {
                let addr = net.real_addr("server", 80).expect("the server listens");
                let s = net.connect(&addr.ip().to_string(), addr.port()).await?;
                let text = text_of(s).await?;
                client_log.borrow_mut().push(text);
                for host in ["10.0.0.1", "::1", "example.com"] {
                    let e = net.connect(host, 80).await.err();
                    client_log.borrow_mut().push(format!(
                        "{host} {:?} {}",
                        e.as_ref().map(|e| e.kind()),
                        e.map_or(String::new(), |e| e.to_string())
                    ));
                }
                Ok(())
            }
            .boxed_local()
        }),
    );
    Live.run(t, 1).expect("the run completes");
    assert_eq!(
        *log.borrow(),
        vec![
            "server sees client",
            "10.0.0.1 Some(NotFound) no host named 10.0.0.1: only loopback addresses \
             (127.0.0.0/8) are dialed outside the run",
            "::1 Some(NotFound) no host named ::1",
            "example.com Some(NotFound) no host named example.com",
        ]
    );
}

/// Every `… up (pid N) on ADDR …` line of a transcript: the real programs a run started.
fn programs_started(transcript: &str) -> Vec<(u32, std::net::SocketAddr)> {
    transcript
        .lines()
        .filter_map(|line| {
            let rest = line.split_once(" up (pid ")?.1;
            let (pid, rest) = rest.split_once(") on ")?;
            let addr = rest.split_whitespace().next()?;
            Some((pid.parse().ok()?, addr.parse().ok()?))
        })
        .collect()
}

#[test]
fn real_products_end_as_their_scenarios_expect_and_leave_no_process_or_port_behind() {
    let cases = [
        (
            "scenarios/live/nginx-without-upgrade-lines.toml",
            Scheme::Ws,
        ),
        ("scenarios/live/squid-default.toml", Scheme::Ws),
        ("scenarios/live/squid-default.toml", Scheme::Wss),
    ];
    for (file, scheme) in cases {
        let s = scenario::load(&crate::root().join(file)).expect("a valid scenario");
        let out = gauntlet::run::run(&Live, &s, scheme, 1)
            .unwrap_or_else(|e| panic!("{file} {scheme}: {e:#}"));
        let transcript = out.rendered();
        assert_eq!(
            Some(out.report.outcome),
            s.expected(scheme),
            "{file} {scheme}: {}\n{transcript}",
            out.report.detail
        );
        let started = programs_started(&transcript);
        assert_eq!(started.len(), 1, "{file}: one product\n{transcript}");
        for (pid, addr) in started {
            assert!(
                !gauntlet::real::product::is_alive(pid),
                "{file}: pid {pid} outlived the run"
            );
            let refused = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2));
            assert!(refused.is_err(), "{file}: {addr} still accepts");
        }
    }
}

/// `[server] tls-version` reaches the reference server: behind nginx 1.22's `proxy_pass
/// https://` (upstream sessions of TLS 1.2 at most), the default server delivers, and the
/// server pinned to TLS 1.3 refuses nginx's handshake, which answers 502.
#[test]
fn the_servers_tls_version_decides_what_nginx_proxy_pass_https_gets() {
    for scheme in [Scheme::Ws, Scheme::Wss] {
        let file = "scenarios/live/nginx-https-upstream.toml";
        let (got, detail) = outcome(file, scheme);
        assert_eq!(got, Outcome::Delivered, "{file} {scheme}: {detail}");

        let file = "scenarios/live/nginx-https-upstream-tls13-server.toml";
        let s = scenario::load(&crate::root().join(file)).expect("a valid scenario");
        let out = gauntlet::run::run(&Live, &s, scheme, 1).expect("the run completes");
        let transcript = out.rendered();
        assert_eq!(
            out.report.outcome,
            Outcome::HandshakeRejected,
            "{file} {scheme}: {transcript}"
        );
        assert!(
            out.report.detail.starts_with("HTTP 502 Bad Gateway"),
            "{file} {scheme}: {transcript}"
        );
        for says in [
            "server  tls handshake failed: peer is incompatible: SupportedVersionsExtensionRequired",
            "tlsv1 alert protocol version",
        ] {
            assert!(transcript.contains(says), "{file} {scheme}: {transcript}");
        }
    }
}

/// A host whose listener closes (a server that crashed, down from the start) keeps its
/// address: a real program configured afterwards is told where the host was, and connecting
/// there is refused.
#[test]
fn a_closed_listener_keeps_its_address_and_refuses_connections() {
    let mut t = topology();
    t.host(
        "down",
        Rc::new(|net: NetRef| {
            async move {
                let listener = net.listen(80).await?;
                drop(listener);
                std::future::pending::<()>().await;
                Ok(())
            }
            .boxed_local()
        }),
    );
    let seen = Rc::new(RefCell::new(None));
    let out = seen.clone();
    t.client(
        "client",
        Box::new(move |net: NetRef| {
            async move {
                let addr = net.real_addr("down", 80);
                let refused = match net.connect("down", 80).await {
                    Err(e) => e.kind() == std::io::ErrorKind::ConnectionRefused,
                    Ok(_) => false,
                };
                *out.borrow_mut() = Some((addr, refused));
                Ok(())
            }
            .boxed_local()
        }),
    );
    Live.run(t, 1).expect("the run completes");
    let (addr, refused) = seen.borrow_mut().take().expect("the client ran");
    let addr = addr.expect("the closed listener's address");
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
    assert!(refused, "connecting to a closed listener was not refused");
}

/// A real program in the path that exits by itself during a run fails the run with its exit
/// status and output (`RunError::ProgramExited`), never with a client outcome such as
/// connect-refused that would blame the path the scenario describes.
#[cfg(feature = "cli")]
#[test]
fn a_hop_program_that_exits_during_the_run_fails_the_run_with_its_status_and_output() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("program-exits");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // Listens, accepts the readiness probe and then the client's connection, and exits.
    let script = dir.join("exits.py");
    std::fs::write(
        &script,
        "import socket, sys\n\
         s = socket.socket()\n\
         s.bind(('127.0.0.1', int(sys.argv[1])))\n\
         s.listen()\n\
         s.accept()\n\
         s.accept()\n\
         print('leaving with the client connected', flush=True)\n\
         sys.exit(3)\n",
    )
    .unwrap();
    let file = dir.join("exits.toml");
    std::fs::write(
        &file,
        format!(
            "format = 1\ntitle = \"A proxy that exits\"\nsource = \"test\"\n\n[[path]]\n\
             command = \"{} {} {{listen_port}} {{upstream}}\"\n\n[client]\nschemes = [\"ws\"]\n\
             route = \"direct\"\n\n[expect]\nws = \"delivered\"\n",
            crate::interop::python().display(),
            script.display()
        ),
    )
    .unwrap();
    let s = scenario::load(&file).expect("a valid scenario");
    let err = gauntlet::run::run(&Live, &s, Scheme::Ws, 1).expect_err("the program exited");
    let text = err.to_string();
    assert!(
        matches!(err, gauntlet::run::RunError::ProgramExited(_)),
        "{err:?}"
    );
    assert!(text.contains("stopped listening during the run"), "{text}");
    assert!(text.contains("exit status: 3"), "{text}");
    assert!(text.contains("leaving with the client connected"), "{text}");
}
