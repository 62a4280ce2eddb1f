//! Engine.IO interoperation: python-engineio (pinned in `harness/tests/python/requirements.txt`)
//! against `gauntlet serve`'s `/engine.io/`. Its own client, on each transport and with its
//! upgrade from polling to WebSocket, echoes text and binary messages across several
//! heartbeats; and the protocol step by step (`engineio_client.py --mode by-hand`), with
//! python-engineio's codec and the HTTP and WebSocket libraries its client uses: polling, the
//! upgrade while a GET is held, the refusals. The server runs several workers, so a session's
//! requests reach more than one of them. Every wait is bounded (see `process.rs`).

use crate::interop::{Serve, script};
use crate::process::{Exit, Process};

/// How many text messages, and as many binary ones, the client echoes before it waits and
/// again after.
const COUNT: &str = "3";

/// A ping every 300 ms and 200 ms for its pong, as the protocol's own test suite sets them:
/// the client's second round of echoes comes after several heartbeats.
const QUICK: [&str; 4] = [
    "--engineio-ping-interval-ms",
    "300",
    "--engineio-ping-timeout-ms",
    "200",
];

/// `gauntlet serve` with four workers and `flags`.
fn serve(flags: &[&str]) -> Serve {
    let mut all = vec!["--workers", "4"];
    all.extend_from_slice(flags);
    Serve::start_with(None, &all)
}

/// Runs `engineio_client.py` with `args` against `serve`; shows what it printed.
fn client(serve: &Serve, args: &[&str]) -> Exit {
    let url = format!("http://{}", serve.ws);
    let mut all = args.to_vec();
    all.push(&url);
    let exit = Process::start(
        "engineio_client.py",
        &mut script("engineio_client.py", &all),
    )
    .wait();
    eprintln!(
        "engineio_client.py {args:?}:\n{}{}",
        exit.stdout, exit.stderr
    );
    exit
}

/// Runs python-engineio's client on `transports` against a server pinging every 300 ms;
/// asserts it was connected over `connected` once `connect` returned, echoed every message
/// over it and disconnected, and that the server logged the session's opening over `opened`
/// and no ping timeout; gives the session id and the server's log.
fn python_client(transports: &str, opened: &str, connected: &str) -> (String, String) {
    let serve = serve(&QUICK);
    let args = [
        "--mode",
        "client",
        "--transports",
        transports,
        "--count",
        COUNT,
    ];
    let exit = client(&serve, &args);
    assert_eq!(exit.code, Some(0), "{}\n{}", exit.stdout, exit.stderr);
    let line = exit
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("connected over "))
        .unwrap_or_else(|| panic!("{}", exit.stdout));
    let (transport, sid) = line.split_once(" as ").expect("a transport and an id");
    assert_eq!(transport, connected, "{}", exit.stdout);
    let echoed = format!("echoed 12 of 12 messages (6 text, 6 binary) over {connected}\n");
    assert!(exit.stdout.contains(&echoed), "{}", exit.stdout);
    assert!(exit.stdout.contains("disconnected\n"), "{}", exit.stdout);
    let log = serve.stop();
    assert_logged(
        &log,
        &[&format!("engine.io {sid} opened over {opened} (echo)")],
    );
    assert!(!log.contains("ping timeout"), "{log}");
    (sid.to_string(), log)
}

/// Asserts `log` holds each of `lines`.
fn assert_logged(log: &str, lines: &[&str]) {
    for line in lines {
        assert!(log.contains(line), "no `{line}` in:\n{log}");
    }
}

#[test]
fn python_engineio_client_echoes_over_polling_across_heartbeats() {
    let (sid, log) = python_client("polling", "polling", "polling");
    // Not the close packet: python-engineio's writer sends a batch only while the client is
    // still connected, so a `disconnect()` that comes while a POST is in flight leaves the
    // close packet unsent (its `_write_loop` checks `state == 'connected'` before each
    // batch). The close packet over polling is tested on the simulated network, and over a
    // WebSocket below and by hand.
    assert_logged(&log, &[&format!("engine.io {sid} echoes a binary message")]);
    assert!(!log.contains("upgraded"), "{log}");
}

#[test]
fn python_engineio_client_upgrades_from_polling_to_websocket_and_echoes() {
    let (sid, log) = python_client("polling,websocket", "polling", "websocket");
    assert_logged(
        &log,
        &[
            &format!("engine.io {sid}: probe answered on a websocket"),
            &format!("engine.io {sid} upgraded to websocket"),
            &format!("engine.io {sid} echoes a text message"),
            &format!("engine.io {sid} closed: "),
        ],
    );
}

#[test]
fn python_engineio_client_echoes_over_a_websocket_alone() {
    let (_, log) = python_client("websocket", "websocket", "websocket");
    assert_logged(&log, &["/engine.io/?transport=websocket&EIO=4"]);
}

#[test]
fn the_protocol_by_hand_polls_upgrades_while_a_poll_is_held_and_is_refused_as_engine_io_refuses() {
    let serve = serve(&[]);
    let exit = client(&serve, &["--mode", "by-hand", "--count", COUNT]);
    assert_eq!(exit.code, Some(0), "{}\n{}", exit.stdout, exit.stderr);
    assert_logged(
        &exit.stdout,
        &[
            "ok: the GET echoes the binary message",
            "ok: 2probe is answered 3probe",
            "ok: the held GET is answered with a noop",
            "ok: the websocket echoes the binary message",
            "ok: a poll after the upgrade is a bad request",
            "ok: an unknown session id is refused",
            "ok: the close packet closes the websocket",
        ],
    );
    let log = serve.stop();
    assert_logged(
        &log,
        &[
            "upgraded to websocket",
            "closed: the client's close packet",
            "sid=nobody HTTP/1.1, Upgrade: -, Connection: keep-alive -> 400 Bad Request",
        ],
    );
}
