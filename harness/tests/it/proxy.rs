//! `gauntlet proxy` as users run it: a real process between a WebSocket client and a real
//! echo server on 127.0.0.1, its exit on SIGTERM, and its refusals of bad flags. Every wait
//! has a timeout (a safety net, not a claim about speed); the child is killed by its PID on
//! the way out, panic or not.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::mpsc;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

use crate::process::{PATIENCE, Process};

/// A WebSocket echo server on 127.0.0.1, on its own thread for the rest of the test binary.
pub fn echo_server() -> SocketAddr {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        rt.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            tx.send(listener.local_addr().expect("an address"))
                .expect("the test waits");
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                        return;
                    };
                    while let Some(Ok(m)) = ws.next().await {
                        if (m.is_text() || m.is_binary()) && ws.send(m).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
    });
    rx.recv_timeout(PATIENCE).expect("the echo server starts")
}

/// A running `gauntlet proxy`, killed by its PID when dropped.
pub struct Proxy {
    process: Process,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Proxy {
    /// Starts `gauntlet proxy ARGS --listen 127.0.0.1:0 --upstream UPSTREAM` and reads the
    /// address from its first line.
    pub fn start(args: &[&str], upstream: SocketAddr) -> Self {
        let mut process = Process::start(
            "gauntlet proxy",
            Command::new(env!("CARGO_BIN_EXE_gauntlet"))
                .arg("proxy")
                .args(args)
                .args([
                    "--listen",
                    "127.0.0.1:0",
                    "--upstream",
                    &upstream.to_string(),
                ]),
        );
        let addr = process.address("listening on ");
        Self { process, addr }
    }

    /// Sends SIGTERM and waits for the exit: its status and stderr.
    pub fn terminate(mut self) -> (Option<i32>, String) {
        let exit = self.process.terminate();
        (exit.code, exit.stderr)
    }
}

/// How many connections wait in the accept queues of the sockets listening on
/// 127.0.0.1:`port` (`/proc/net/tcp`: a listening socket's `rx_queue`; the proxy's workers
/// each have one, on one port); `None` when nothing listens there.
fn listen_queue(port: u16) -> Option<u32> {
    let local = format!("0100007F:{port:04X}");
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let queues: Vec<u32> = table
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.get(1) != Some(&local.as_str()) || f.get(3) != Some(&"0A") {
                return None;
            }
            let (_, rx) = f.get(4)?.split_once(':')?;
            u32::from_str_radix(rx, 16).ok()
        })
        .collect();
    (!queues.is_empty()).then(|| queues.iter().sum())
}

/// Opens a WebSocket to `addr` and echoes one message: the text that came back, or the
/// handshake's error.
fn echo_through(addr: SocketAddr) -> Result<String, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async move {
        let tcp = tokio::time::timeout(PATIENCE, TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .map_err(|e| e.to_string())?;
        let handshake = tokio_tungstenite::client_async("ws://server/echo", tcp);
        let (mut ws, _) = tokio::time::timeout(PATIENCE, handshake)
            .await
            .expect("the handshake ends in time")
            .map_err(|e| e.to_string())?;
        tokio::time::timeout(PATIENCE, ws.send(Message::text("through the gauntlet")))
            .await
            .expect("send in time")
            .map_err(|e| e.to_string())?;
        let back = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("an answer in time");
        let _ = tokio::time::timeout(PATIENCE, ws.close(None)).await;
        match back {
            Some(Ok(Message::Text(t))) => Ok(t.to_string()),
            other => Err(format!("{other:?}")),
        }
    })
}

#[test]
fn a_websocket_echo_passes_through_gauntlet_proxy_and_sigterm_ends_it_cleanly() {
    let upstream = echo_server();
    let proxy = Proxy::start(&["--model", "pass", "--workers", "1"], upstream);
    assert_eq!(
        echo_through(proxy.addr).as_deref(),
        Ok("through the gauntlet")
    );
    let (code, stderr) = proxy.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("hop1  #1 accepted on port 80"), "{stderr}");
    assert!(stderr.contains("#1 upstream connected"), "{stderr}");
}

#[test]
fn two_workers_share_the_address_take_connections_alike_and_number_them_once() {
    let upstream = echo_server();
    let proxy = Proxy::start(&["--model", "pass", "--workers", "2"], upstream);
    // The kernel picks a worker by each connection's addresses: 64 connections all going to
    // one of two workers would be a 1 in 2^63 chance.
    for _ in 0..64 {
        assert_eq!(
            echo_through(proxy.addr).as_deref(),
            Ok("through the gauntlet")
        );
    }
    let (code, stderr) = proxy.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains(", 2 workers"), "{stderr}");
    let accepted: Vec<(&str, u64)> = stderr
        .lines()
        .filter_map(|l| {
            let (who, what) = l.split_once(" ms  ")?.1.split_once("  ")?;
            let id = what
                .strip_prefix('#')?
                .strip_suffix(" accepted on port 80")?;
            Some((who, id.parse().ok()?))
        })
        .collect();
    for worker in ["hop1/w1", "hop1/w2"] {
        assert!(
            accepted.iter().any(|(who, _)| *who == worker),
            "{worker} accepted nothing:\n{stderr}"
        );
    }
    let mut ids: Vec<u64> = accepted.iter().map(|(_, id)| *id).collect();
    ids.sort_unstable();
    assert_eq!(ids, (1..=64).collect::<Vec<u64>>(), "{stderr}");
}

#[test]
fn gauntlet_proxy_accepts_again_after_running_out_of_descriptors() {
    let upstream = echo_server();
    // 24 descriptors: the runtime's own and a few connections (two each: client, upstream);
    // a connection limit above what they allow (the default would stay below it).
    let mut process = Process::start(
        "gauntlet proxy under prlimit",
        Command::new("prlimit").args([
            "--nofile=24",
            "--",
            env!("CARGO_BIN_EXE_gauntlet"),
            "proxy",
            "--max-connections",
            "100",
            "--model",
            "pass",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &upstream.to_string(),
        ]),
    );
    let addr = process.address("listening on ");
    let pid = process.pid();
    let fds = || std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count);
    let idle = fds();
    let held: Vec<std::net::TcpStream> = (0..40)
        .map(|_| std::net::TcpStream::connect(addr).expect("the kernel queues the connection"))
        .collect();
    let failed = process.stderr_line("accept failed on 80");
    assert!(failed.contains("accepting again"), "{failed}");
    drop(held);
    // The proxy works through what the kernel queued (each dropped connection accepted, dialed
    // upstream and closed); a new connection arriving meanwhile could find the descriptors
    // still taken, and be reset for it, as any proxy at its limit would. Wait for the queue to
    // empty and the descriptors to come back.
    let mut waited = std::time::Duration::ZERO;
    while listen_queue(addr.port()) != Some(0) || fds() > idle {
        assert!(
            waited < PATIENCE,
            "the proxy still holds {} descriptors ({idle} idle), {:?} queued",
            fds(),
            listen_queue(addr.port())
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
        waited += std::time::Duration::from_millis(10);
    }
    assert_eq!(echo_through(addr).as_deref(), Ok("through the gauntlet"));
    let exit = process.terminate();
    assert_eq!(exit.code, Some(0), "{}", exit.stderr);
}

#[test]
fn gauntlet_proxy_stops_accepting_at_its_connection_limit_until_one_closes() {
    let upstream = echo_server();
    let mut process = Process::start(
        "gauntlet proxy --max-connections 2 --workers 3",
        Command::new(env!("CARGO_BIN_EXE_gauntlet")).args([
            "proxy",
            "--model",
            "pass",
            "--max-connections",
            "2",
            // The limit holds for all workers together.
            "--workers",
            "3",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &upstream.to_string(),
        ]),
    );
    let addr = process.address("listening on ");
    let first = std::net::TcpStream::connect(addr).expect("connect");
    let _second = std::net::TcpStream::connect(addr).expect("connect");
    let full = process.stderr_line("connections open");
    assert!(
        full.contains("2 connections open, the limit: not accepting on 80"),
        "{full}"
    );
    // The third waits in the listen queue until the first closes.
    let third = std::thread::spawn(move || echo_through(addr));
    drop(first);
    assert_eq!(
        third.join().expect("the echo thread").as_deref(),
        Ok("through the gauntlet")
    );
    let exit = process.terminate();
    assert_eq!(exit.code, Some(0), "{}", exit.stderr);
    let at = |needle: &str| {
        exit.stderr
            .find(needle)
            .unwrap_or_else(|| panic!("no {needle:?} in:\n{}", exit.stderr))
    };
    // Numbers go to connections as they get a place, whichever worker accepted them (and in
    // whatever order the two held ones were accepted): the third place is taken only once a
    // connection is done.
    assert!(at(" done: ") < at("#3 accepted"), "{}", exit.stderr);
}

#[test]
fn slowloris_clients_of_an_http_model_get_408_at_the_header_timeout() {
    use std::io::{Read as _, Write as _};
    let upstream = echo_server();
    let proxy = Proxy::start(
        &[
            "--model",
            "transparent-proxy",
            "--param",
            "behaviour=strip",
            "--param",
            "header-timeout-ms=300",
        ],
        upstream,
    );
    let mut slow: Vec<std::net::TcpStream> = (0..50)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(proxy.addr).expect("connect");
            s.set_read_timeout(Some(PATIENCE)).expect("a read timeout");
            s.write_all(b"GET /echo HTTP/1.1\r\nHost: ser")
                .expect("a head's start");
            s
        })
        .collect();
    for s in &mut slow {
        let mut answer = String::new();
        s.read_to_string(&mut answer)
            .expect("the proxy answers and closes");
        assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    }
    let (code, stderr) = proxy.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stderr
            .matches("no complete request head within 300 ms")
            .count(),
        50,
        "{stderr}"
    );
}

#[test]
fn a_stripping_transparent_proxy_makes_the_handshake_fail() {
    let upstream = echo_server();
    let proxy = Proxy::start(
        &["--model", "transparent-proxy", "--param", "behaviour=strip"],
        upstream,
    );
    let result = echo_through(proxy.addr);
    assert!(result.is_err(), "the handshake passed: {result:?}");
    let (_, stderr) = proxy.terminate();
    assert!(
        stderr.contains("transparent-proxy behaviour=strip"),
        "{stderr}"
    );
}

#[test]
fn a_chain_passes_each_parameter_to_the_model_named_before_it() {
    let upstream = echo_server();
    let proxy = Proxy::start(
        &[
            "--model",
            "idle-killer",
            "--param",
            "timeout-ms=60000",
            "--model",
            "pass",
            "--workers",
            "1",
        ],
        upstream,
    );
    assert_eq!(
        echo_through(proxy.addr).as_deref(),
        Ok("through the gauntlet")
    );
    let (_, stderr) = proxy.terminate();
    assert!(stderr.contains("hop1  idle-killer"), "{stderr}");
    assert!(stderr.contains("hop2  pass up"), "{stderr}");
}

#[test]
fn bad_flags_and_parameters_exit_2_saying_what_is_wrong() {
    let addrs = ["--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:9"];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        extra.iter().chain(addrs.iter()).copied().collect()
    };
    let cases: [(Vec<&str>, &str); 8] = [
        (
            with(&["--param", "x=1", "--model", "pass"]),
            "comes before any `--model`",
        ),
        (
            with(&["--model", "transparent-proxy", "--param", "behavior=strip"]),
            "unknown field `behavior`",
        ),
        (with(&["--model", "no-such-model"]), "unknown model"),
        (
            with(&["--model", "idle-killer", "--param", "timeout-ms"]),
            "KEY=VALUE",
        ),
        (
            vec![
                "--model",
                "pass",
                "--listen",
                "nowhere",
                "--upstream",
                "127.0.0.1:9",
            ],
            "invalid value 'nowhere'",
        ),
        (
            with(&["--model", "caching-proxy", "--workers", "2"]),
            "model `caching-proxy` keeps its cache from one connection to the next",
        ),
        (
            with(&[
                "--model",
                "l4-balancer",
                "--param",
                "backends=2",
                "--workers",
                "3",
            ]),
            "keeps its rotation among the backends",
        ),
        (
            with(&["--model", "pass", "--workers", "0"]),
            "invalid value '0' for '--workers <N>'",
        ),
    ];
    for (args, says) in cases {
        let args: Vec<&str> = std::iter::once("proxy").chain(args).collect();
        let (code, text) = crate::cli::gauntlet(&args);
        assert_eq!(code, 2, "{args:?}: {text}");
        assert!(text.contains(says), "{args:?}: {text}");
    }
}

#[test]
fn an_address_another_process_listens_on_is_refused_not_shared() {
    // The workers bind with SO_REUSEPORT, and so does this listener, standing for another
    // process's: without the check before the first bind, the proxy would bind beside it and
    // the kernel would share connections between them.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let taken = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket.set_reuseport(true).expect("SO_REUSEPORT");
        socket
            .bind("127.0.0.1:0".parse().expect("an address"))
            .expect("bind");
        socket.listen(8).expect("listen")
    });
    let addr = taken.local_addr().expect("an address").to_string();
    let (code, text) = crate::cli::gauntlet(&[
        "proxy",
        "--model",
        "pass",
        "--listen",
        &addr,
        "--upstream",
        "127.0.0.1:9",
    ]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains(&format!("cannot listen on {addr}: Address already in use")),
        "{text}"
    );
}
