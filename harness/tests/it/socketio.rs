//! Real Socket.IO stacks through Gauntlet's intermediary models: the `socket.io` server and the
//! `socket.io-client` client (versions pinned in `harness/tests/node/package-lock.json`), run by
//! Node, with `gauntlet proxy` between them; and the `engine.io-client` under socket.io-client
//! against Gauntlet's reference server (`gauntlet serve`). What a real-time application sees when its
//! WebSocket fails: Socket.IO connects by HTTP long-polling, probes a WebSocket and upgrades
//! if the probe succeeds, and reconnects (1 s first delay, randomised by half) when its
//! connection is cut. And Gauntlet's own Engine.IO client (the Engine.IO strategies' client,
//! on the live engine) against the real `engine.io` server: by polling, after the upgrade, and
//! on a WebSocket from the start.
//!
//! The scripts are in `harness/tests/node/`; they run with the packages `cargo xtask test`
//! installs into `target/gauntlet/node`. Without them, every test here fails with the command
//! that installs them. Everything binds and connects on 127.0.0.1; every child is killed by
//! its PID when its guard is dropped; every wait has a timeout, a safety net: nothing here
//! measures time.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;

use std::time::Duration;

use gauntlet::endpoints::client::Trail;
use gauntlet::real::product::{Product, StartOptions};
use gauntlet::scenario::{Idle, Strategy, StrategyKind, Workload, WorkloadKind};
use gauntlet::verdict::outcome::Outcome;
use serde_json::Value;

use crate::process::{Exit, Process};
use crate::proxy::Proxy;

/// Where `cargo xtask test` installs the Node packages, from the workspace root.
const NODE: &str = "target/gauntlet/node";

/// Each client's time limit, in milliseconds: far above what its exchange needs, below the
/// tests' own safety net.
const LIMIT_MS: &str = "15000";

/// The installed packages; a test fails, saying how to install them, when they are missing.
fn modules() -> PathBuf {
    let modules = crate::root().join(NODE).join("node_modules");
    let ready = ["socket.io", "socket.io-client"]
        .iter()
        .all(|p| modules.join(p).join("package.json").is_file());
    assert!(
        ready,
        "no Socket.IO packages in {}: run `cargo xtask test` (it installs them), or from the \
         workspace root\n  mkdir -p {NODE} && cp harness/tests/node/package*.json {NODE}/ && \
         (cd {NODE} && npm ci --ignore-scripts)\n(with Node.js and npm: `apt-get install -y \
         nodejs npm`)",
        modules.display()
    );
    modules
}

/// `node harness/tests/node/SCRIPT ARGS`, finding the installed packages, with no proxy
/// settings from the environment.
fn script(name: &str, args: &[&str]) -> Command {
    let mut command = Command::new("node");
    command
        .arg(crate::root().join("harness/tests/node").join(name))
        .args(args)
        .env("NODE_PATH", modules());
    crate::process::without_proxy_settings(&mut command);
    command
}

/// A running server: `socket.io` (echoing `echo` events) or `engine.io` (echoing messages).
struct Server {
    process: Process,
    addr: SocketAddr,
    what: &'static str,
}

impl Server {
    fn start() -> Self {
        Self::script("the socket.io server", "sio_server.js", &["0", "30000"])
    }

    /// A running `engine.io` server (Engine.IO alone, no Socket.IO) that sends every message
    /// back, pinging every 300 ms and waiting 200 ms for the pong.
    fn engine_io() -> Self {
        Self::script(
            "the engine.io server",
            "eio_server.js",
            &["0", "300", "200", "30000"],
        )
    }

    fn script(what: &'static str, name: &str, args: &[&str]) -> Self {
        let mut process = Process::start(what, &mut script(name, args));
        let addr = process.address("listening on ");
        Self {
            process,
            addr,
            what,
        }
    }

    /// Stops it: the events it printed.
    fn events(mut self) -> Vec<Value> {
        let exit = self.process.terminate();
        eprintln!("{}:\n{}{}", self.what, exit.stdout, exit.stderr);
        parse(&exit)
    }
}

/// The JSON events a script printed, one per line.
fn parse(exit: &Exit) -> Vec<Value> {
    exit.stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

/// Runs `socket.io-client` by long-polling only against `url`, for `messages` echoes, ending
/// at its first disconnect or connection error: its exit and its events.
fn polling_client(url: &str, messages: &str) -> (Exit, Vec<Value>) {
    let args = [url, "polling", messages, "0", LIMIT_MS, "fail-fast"];
    let exit = Process::start("socket.io-client", &mut script("sio_client.js", &args)).wait();
    eprintln!("socket.io-client {url}:\n{}{}", exit.stdout, exit.stderr);
    let events = parse(&exit);
    (exit, events)
}

/// Runs `socket.io-client` against `url` with `transports`, for `messages` echoes, quiet for
/// `quiet_ms` after the first (or, with `upgrade`, until it has upgraded): its exit and its
/// events.
fn client(url: &str, transports: &str, messages: &str, quiet_ms: &str) -> (Exit, Vec<Value>) {
    let args = [url, transports, messages, quiet_ms, LIMIT_MS];
    let exit = Process::start("socket.io-client", &mut script("sio_client.js", &args)).wait();
    eprintln!("socket.io-client {url}:\n{}{}", exit.stdout, exit.stderr);
    let events = parse(&exit);
    (exit, events)
}

/// The events named `name`.
fn named<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == name).collect()
}

/// The transports the echoes came back on, in order.
fn echo_transports(events: &[Value]) -> Vec<String> {
    named(events, "echo")
        .iter()
        .map(|e| e["transport"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The control: through a proxy that passes every byte, Socket.IO connects by polling,
/// upgrades to a WebSocket (the client waits for it after the first echo), and the later
/// echoes travel over it.
#[test]
fn through_a_pass_proxy_the_real_socket_io_client_upgrades_to_websocket() {
    let server = Server::start();
    let proxy = Proxy::start(&["--model", "pass"], server.addr);
    let (exit, events) = client(
        &format!("http://{}", proxy.addr),
        "polling,websocket",
        "3",
        "upgrade",
    );
    let seen = server.events();
    assert_eq!(exit.code, Some(0), "{events:?}");
    assert_eq!(named(&events, "upgrade").len(), 1, "{events:?}");
    assert_eq!(
        echo_transports(&events)[1..],
        ["websocket", "websocket"],
        "{events:?}"
    );
    assert_eq!(named(&seen, "upgrade").len(), 1, "{seen:?}");
}

/// Seed 001: Comet long-polling survives the proxies that break WebSocket. A transparent proxy
/// that strips `Upgrade` and `Connection` turns the WebSocket probe into a plain GET, which
/// the server refuses; the client stays on polling and every message still arrives.
#[test]
fn through_a_transparent_proxy_that_strips_upgrade_the_real_client_stays_on_polling() {
    let server = Server::start();
    let proxy = Proxy::start(
        &["--model", "transparent-proxy", "--param", "behaviour=strip"],
        server.addr,
    );
    let (exit, events) = client(
        &format!("http://{}", proxy.addr),
        "polling,websocket",
        "5",
        "0",
    );
    let seen = server.events();
    let (_, log) = proxy.terminate();
    assert_eq!(exit.code, Some(0), "{events:?}");
    assert!(named(&events, "upgrade").is_empty(), "{events:?}");
    assert_eq!(echo_transports(&events), vec!["polling"; 5], "{events:?}");
    assert!(named(&seen, "upgrade").is_empty(), "{seen:?}");
    assert_eq!(named(&seen, "connection").len(), 1, "{seen:?}");
    let probe = log
        .lines()
        .find(|l| l.contains("transport=websocket"))
        .unwrap_or_else(|| panic!("no WebSocket probe went through the proxy:\n{log}"));
    assert!(
        probe.contains("forwarded without connection, upgrade"),
        "{probe}"
    );
}

/// An idle killer cuts the upgraded connection while the application is quiet; the real
/// client notices the transport close, reconnects on its own (a new Engine.IO session), and
/// the next message goes through.
#[test]
fn through_an_idle_killer_the_real_socket_io_client_reconnects_and_delivers() {
    let server = Server::start();
    let proxy = Proxy::start(
        &["--model", "idle-killer", "--param", "timeout-ms=500"],
        server.addr,
    );
    let (exit, events) = client(
        &format!("http://{}", proxy.addr),
        "polling,websocket",
        "3",
        "1500",
    );
    let seen = server.events();
    let (_, log) = proxy.terminate();
    assert_eq!(exit.code, Some(0), "{events:?}");
    let order: Vec<&str> = events
        .iter()
        .filter_map(|e| e["event"].as_str())
        .filter(|e| ["connect", "echo", "disconnect", "reconnect_attempt"].contains(e))
        .collect();
    let first_echo = order.iter().position(|e| *e == "echo");
    let cut = order.iter().position(|e| *e == "disconnect");
    let again = order.iter().rposition(|e| *e == "connect");
    assert!(
        matches!((first_echo, cut, again), (Some(a), Some(b), Some(c)) if a < b && b < c),
        "expected an echo, a disconnect, then a new connect: {order:?}"
    );
    // The cut closes the WebSocket ("transport close"), or, had the upgrade not happened yet,
    // fails a held poll ("transport error").
    let reason = named(&events, "disconnect")[0]["reason"].clone();
    assert!(
        reason == "transport close" || reason == "transport error",
        "{events:?}"
    );
    assert!(
        !named(&events, "reconnect_attempt").is_empty(),
        "{events:?}"
    );
    assert_eq!(named(&events, "echo").len(), 3, "{events:?}");
    assert_eq!(named(&seen, "connection").len(), 2, "{seen:?}");
    assert!(log.contains("idle for 500 ms: closing"), "{log}");
}

/// Two `socket.io` servers behind `product` started from `template` with `balance`, and a
/// long-polling client through it: whether the client got every echo, and what each server
/// printed.
fn two_backends(product: Product, template: &str, balance: &str) -> (Exit, Vec<Value>, Vec<Value>) {
    let (a, b) = (Server::start(), Server::start());
    let options = StartOptions::new()
        .upstream(a.addr)
        .upstream(b.addr)
        .value("balance", balance);
    let path = crate::root()
        .join("scenarios/live/templates")
        .join(template);
    let running = product
        .start(&path, &options)
        .unwrap_or_else(|e| panic!("{e}"));
    let (exit, events) = polling_client(&format!("http://{}", running.addr()), "3");
    let logs = running
        .stop()
        .map(|s| s.logs)
        .unwrap_or_else(|e| e.to_string());
    eprintln!("{product:?} ({balance}):\n{logs}");
    let mut seen = a.events();
    seen.extend(b.events());
    (exit, events, seen)
}

/// The refusals the servers printed: Engine.IO's "Session ID unknown" (code 1).
fn unknown_sessions(seen: &[Value]) -> usize {
    named(seen, "connection_error")
        .iter()
        .filter(|e| e["code"] == 1 && e["message"] == "Session ID unknown")
        .count()
}

/// Socket.IO's documentation: with several servers, "sticky-session is required" for
/// long-polling. nginx's default round-robin sends the session's next request to the other
/// backend, which answers 400 "Session ID unknown", and the client never connects.
#[test]
fn nginx_round_robin_breaks_a_long_polling_session_between_two_real_backends() {
    let (exit, events, seen) = two_backends(Product::Nginx, "nginx-two-backends.conf", "");
    assert_eq!(exit.code, Some(1), "{events:?}");
    assert!(named(&events, "echo").is_empty(), "{events:?}");
    assert!(unknown_sessions(&seen) >= 1, "{seen:?}");
}

/// The fix the documentation gives: `ip_hash` keeps one client on one backend, and every
/// echo arrives by long-polling.
#[test]
fn nginx_ip_hash_keeps_a_long_polling_session_on_one_backend() {
    let (exit, events, seen) = two_backends(Product::Nginx, "nginx-two-backends.conf", "ip_hash;");
    assert_eq!(exit.code, Some(0), "{events:?}");
    assert_eq!(echo_transports(&events), vec!["polling"; 3], "{events:?}");
    assert_eq!(unknown_sessions(&seen), 0, "{seen:?}");
    assert_eq!(named(&seen, "connection").len(), 1, "{seen:?}");
}

/// HAProxy's `balance roundrobin` breaks the session the same way.
#[test]
fn haproxy_roundrobin_breaks_a_long_polling_session_between_two_real_backends() {
    let (exit, events, seen) =
        two_backends(Product::Haproxy, "haproxy-two-backends.cfg", "roundrobin");
    assert_eq!(exit.code, Some(1), "{events:?}");
    assert!(named(&events, "echo").is_empty(), "{events:?}");
    assert!(unknown_sessions(&seen) >= 1, "{seen:?}");
}

/// `balance source` keeps one client on one backend.
#[test]
fn haproxy_balance_source_keeps_a_long_polling_session_on_one_backend() {
    let (exit, events, seen) = two_backends(Product::Haproxy, "haproxy-two-backends.cfg", "source");
    assert_eq!(exit.code, Some(0), "{events:?}");
    assert_eq!(echo_transports(&events), vec!["polling"; 3], "{events:?}");
    assert_eq!(unknown_sessions(&seen), 0, "{seen:?}");
    assert_eq!(named(&seen, "connection").len(), 1, "{seen:?}");
}

/// Gauntlet's own `l7-balancer` with two real `socket.io` backends (one `--upstream` each)
/// and a long-polling client through it: whether the client got every echo, and what each
/// server printed.
fn through_the_model(sticky: &str) -> (Exit, Vec<Value>, Vec<Value>) {
    let (a, b) = (Server::start(), Server::start());
    let second = b.addr.to_string();
    let proxy = Proxy::start(
        &[
            "--model",
            "l7-balancer",
            "--param",
            "backends=2",
            "--param",
            "terminate-tls=false",
            "--param",
            &format!("sticky={sticky}"),
            "--upstream",
            &second,
        ],
        a.addr,
    );
    let (exit, events) = polling_client(&format!("http://{}", proxy.addr), "3");
    let (_, log) = proxy.terminate();
    eprintln!("gauntlet proxy (sticky={sticky}):\n{log}");
    let mut seen = a.events();
    seen.extend(b.events());
    (exit, events, seen)
}

/// The model agrees with nginx and HAProxy: without stickiness (its default, as theirs),
/// the session's next connection reaches the other real backend, which does not know it.
#[test]
fn the_l7_balancer_model_without_stickiness_breaks_a_real_long_polling_session() {
    let (exit, events, seen) = through_the_model("none");
    assert_eq!(exit.code, Some(1), "{events:?}");
    assert!(named(&events, "echo").is_empty(), "{events:?}");
    assert!(unknown_sessions(&seen) >= 1, "{seen:?}");
}

/// `sticky = "source-ip"` keeps the client on one real backend, as `ip_hash` does.
#[test]
fn the_l7_balancer_model_sticky_by_source_ip_keeps_a_real_long_polling_session_whole() {
    let (exit, events, seen) = through_the_model("source-ip");
    assert_eq!(exit.code, Some(0), "{events:?}");
    assert_eq!(echo_transports(&events), vec!["polling"; 3], "{events:?}");
    assert_eq!(unknown_sessions(&seen), 0, "{seen:?}");
    assert_eq!(named(&seen, "connection").len(), 1, "{seen:?}");
}

/// Runs `engine.io-client` against `url` with `transports`, for `messages` echoes: its exit
/// and its events.
fn engine_io_client(url: &str, transports: &str, messages: &str) -> (Exit, Vec<Value>) {
    let args = [url, transports, messages, LIMIT_MS, "/engine.io/"];
    let exit = Process::start("engine.io-client", &mut script("eio_client.js", &args)).wait();
    eprintln!(
        "engine.io-client {url} ({transports}):\n{}{}",
        exit.stdout, exit.stderr
    );
    let events = parse(&exit);
    (exit, events)
}

/// Gauntlet's Engine.IO client with `kind` (and `upgrade`) against the real `engine.io`
/// server: 5 echoes 200 ms apart (text or `binary`), quiet for 700 ms after the third, longer
/// than the server's ping interval and timeout together, so that the session lives only if
/// every ping is answered. Requires every echo back and no session closed for want of a pong;
/// gives the run's trail and transcript, and what the server printed.
fn engineio_client(kind: StrategyKind, upgrade: bool, binary: bool) -> (Trail, String, Vec<Value>) {
    let server = Server::engine_io();
    let mut workload = Workload::new(WorkloadKind::Echo);
    workload.interval = Duration::from_millis(200);
    workload.binary = binary;
    workload.idle = vec![Idle {
        after_message: 3,
        ms: 700,
    }];
    let mut strategy = Strategy::new(kind);
    strategy.engineio.upgrade = upgrade;
    let (report, transcript) =
        crate::interop::client_against(server.addr, workload, Some(&strategy));
    eprintln!("{transcript}");
    let seen = server.events();
    let shown = format!("{kind} binary {binary}: {}", report.detail);
    assert_eq!(report.outcome, Outcome::Delivered, "{shown}\n{transcript}");
    assert_eq!((report.sent, report.received), (5, 5), "{shown}");
    assert!(
        named(&seen, "message")
            .iter()
            .all(|m| m["binary"] == binary),
        "{seen:?}"
    );
    assert!(
        named(&seen, "close")
            .iter()
            .all(|c| c["reason"] != "ping timeout"),
        "{seen:?}"
    );
    (
        report.strategy.expect("a strategy's trail"),
        transcript,
        seen,
    )
}

/// The transports the server saw each message on, in order.
fn message_transports(seen: &[Value]) -> Vec<String> {
    named(seen, "message")
        .iter()
        .map(|e| e["transport"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The real Engine.IO client (the one under socket.io-client) against Gauntlet's reference
/// server: by long-polling alone, by WebSocket alone, and by polling then the upgrade, every
/// message comes back, and the server logs each session's transport and upgrade.
#[test]
fn the_real_engine_io_client_talks_to_gauntlet_serve_by_polling_websocket_and_the_upgrade() {
    let serve = crate::interop::Serve::start(None);
    let url = format!("http://{}", serve.ws);
    let (polling, events) = engine_io_client(&url, "polling", "4");
    assert_eq!(polling.code, Some(0), "{events:?}");
    assert_eq!(message_transports(&events), vec!["polling"; 4]);
    let (websocket, events) = engine_io_client(&url, "websocket", "4");
    assert_eq!(websocket.code, Some(0), "{events:?}");
    assert_eq!(message_transports(&events), vec!["websocket"; 4]);
    let (upgraded, events) = engine_io_client(&url, "polling,websocket", "4");
    assert_eq!(upgraded.code, Some(0), "{events:?}");
    assert_eq!(named(&events, "upgrade").len(), 1, "{events:?}");
    assert_eq!(
        message_transports(&events)[1..],
        ["websocket"; 3],
        "{events:?}"
    );
    let log = serve.stop();
    let opened = log.lines().filter(|l| l.contains(" opened over ")).count();
    assert!(opened >= 3, "{log}");
    let upgrades = log
        .lines()
        .filter(|l| l.contains(" upgraded to websocket"))
        .count();
    assert_eq!(upgrades, 1, "{log}");
}

/// The transport the server saw the session open on.
fn opened_on(seen: &[Value]) -> String {
    named(seen, "connection")[0]["transport"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Socket.IO's default way in, against the real server: the session opens by polling, the
/// probe is answered, and the session moves onto the WebSocket; the first message goes by
/// POST, the later ones on the WebSocket, and pings are answered across a quiet period longer
/// than the server's ping interval and timeout together.
#[test]
fn gauntlets_engine_io_client_polls_then_upgrades_against_the_real_engine_io_server() {
    for binary in [false, true] {
        let (trail, _, seen) = engineio_client(StrategyKind::PollingThenUpgrade, true, binary);
        assert_eq!(trail.transport, "websocket");
        let results: Vec<(&str, &str)> = trail
            .attempts
            .iter()
            .map(|a| (a.transport, a.result.as_str()))
            .collect();
        assert_eq!(
            results,
            [("polling", "upgraded"), ("websocket", "delivered")]
        );
        assert_eq!(opened_on(&seen), "polling", "{seen:?}");
        assert_eq!(named(&seen, "upgrade").len(), 1, "{seen:?}");
        let over = message_transports(&seen);
        assert_eq!(
            (over[0].as_str(), over[4].as_str()),
            ("polling", "websocket"),
            "{seen:?}"
        );
    }
}

/// With `upgrade = false` the session stays on HTTP long-polling: every message goes by POST
/// and comes back on a held GET, and the pongs go by POST too, or the quiet period would end
/// the session.
#[test]
fn gauntlets_engine_io_client_long_polls_against_the_real_engine_io_server() {
    let (trail, transcript, seen) = engineio_client(StrategyKind::PollingThenUpgrade, false, false);
    assert_eq!(trail.transport, "polling");
    assert!(named(&seen, "upgrade").is_empty(), "{seen:?}");
    assert_eq!(message_transports(&seen), vec!["polling"; 5], "{seen:?}");
    assert!(transcript.contains(": pong"), "{transcript}");
}

/// Socket.IO with `transports: ["websocket", "polling"]` against the real server: the session
/// opens on a WebSocket (its open packet the first message), with no fallback needed.
#[test]
fn gauntlets_engine_io_client_opens_on_a_websocket_against_the_real_engine_io_server() {
    let (trail, _, seen) = engineio_client(StrategyKind::WebsocketThenPolling, true, false);
    assert_eq!((trail.transport, trail.attempts.len()), ("websocket", 1));
    assert_eq!(opened_on(&seen), "websocket", "{seen:?}");
    assert_eq!(message_transports(&seen), vec!["websocket"; 5], "{seen:?}");
}
