//! `gauntlet serve` (and `gauntlet proxy`) against what real clients and real environments do
//! to a server: a stderr nobody reads, running out of file descriptors, request heads sent a
//! byte at a time, more connections than it should hold. Each test runs the real binary on
//! 127.0.0.1 and a blocking WebSocket client (tungstenite); every read and wait has a timeout
//! ([`PATIENCE`], a safety net: nothing here measures time), and every child is stopped by its
//! PID.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use tokio_tungstenite::tungstenite::{self, Message};

use crate::process::{PATIENCE, Process};

/// `gauntlet serve --listen 127.0.0.1:0 ARGS`, run through `prefix` (a command that execs it,
/// such as `prlimit`) when given; its stderr read from the start unless `hold_stderr`.
fn serve(prefix: &[&str], args: &[&str], hold_stderr: bool) -> (Process, SocketAddr) {
    let gauntlet = env!("CARGO_BIN_EXE_gauntlet");
    let mut command = match prefix.split_first() {
        Some((program, rest)) => {
            let mut c = Command::new(program);
            c.args(rest).arg(gauntlet);
            c
        }
        None => Command::new(gauntlet),
    };
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args);
    let mut process = if hold_stderr {
        Process::start_holding_stderr("gauntlet serve", &mut command)
    } else {
        Process::start("gauntlet serve", &mut command)
    };
    let addr = process.address("listening on ");
    (process, addr)
}

/// A TCP connection to `addr` whose reads and writes give up after [`PATIENCE`].
fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    stream.set_read_timeout(Some(PATIENCE)).expect("a timeout");
    stream.set_write_timeout(Some(PATIENCE)).expect("a timeout");
    stream
}

type Ws = tungstenite::WebSocket<TcpStream>;

/// An open WebSocket session with the echo endpoint at `addr`.
fn open(addr: SocketAddr) -> Result<Ws, String> {
    let (ws, _) = tungstenite::client(format!("ws://{addr}/echo"), connect(addr))
        .map_err(|e| format!("handshake with {addr}: {e}"))?;
    Ok(ws)
}

/// Sends `messages` text messages of `size` bytes one at a time, each echoed unchanged.
fn echo<S: Read + Write>(
    ws: &mut tungstenite::WebSocket<S>,
    messages: usize,
    size: usize,
) -> Result<(), String> {
    for i in 0..messages {
        let text = format!("{i:0size$}");
        ws.send(Message::text(text.clone()))
            .map_err(|e| format!("send #{i}: {e}"))?;
        match ws.read() {
            Ok(Message::Text(got)) if got.as_str() == text => {}
            Ok(other) => return Err(format!("echo #{i}: got {other:?}")),
            Err(e) => return Err(format!("echo #{i}: {e}")),
        }
    }
    Ok(())
}

/// Closes with 1000 and reads until the server's Close and the end of the stream.
fn close(mut ws: Ws) -> Result<(), String> {
    ws.close(None).map_err(|e| format!("close: {e}"))?;
    loop {
        match ws.read() {
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) => return Ok(()),
            Err(e) => return Err(format!("closing: {e}")),
        }
    }
}

/// A whole echo session: open, `messages` echoes of `size` bytes, a clean close.
fn session(addr: SocketAddr, messages: usize, size: usize) -> Result<(), String> {
    let mut ws = open(addr)?;
    echo(&mut ws, messages, size)?;
    close(ws)
}

/// Sessions run one after another while stderr goes unread, and messages in each: the
/// server's log of them (a line per echo, about 45 bytes) is several times what a pipe
/// (64 KiB) and the transcript's queue (256 KiB) hold together.
const QUIET_SESSIONS: usize = 150;
const QUIET_MESSAGES: usize = 100;

#[test]
fn gauntlet_serve_keeps_serving_when_nobody_reads_its_stderr_and_says_how_many_lines_it_dropped() {
    let (mut server, addr) = serve(&[], &[], true);
    for i in 0..QUIET_SESSIONS {
        if let Err(e) = session(addr, QUIET_MESSAGES, 20) {
            let exit = server.kill();
            panic!(
                "session {i} of {QUIET_SESSIONS} with stderr unread: {e}\nstderr:\n{}",
                exit.stderr
            );
        }
    }
    // Someone reads at last: the writer catches up and reports what it could not keep.
    let report = server.stderr_line("lines dropped");
    assert!(report.starts_with("transcript: "), "{report}");
    eprintln!("{report}");
    // The server still logs, and its last lines are written out before it exits.
    session(addr, 3, 77).expect("a session after the log caught up");
    let exit = server.terminate();
    assert_eq!(exit.code, Some(0), "{}", exit.stderr);
    let tail: Vec<&str> = exit.stderr.lines().rev().take(5).collect();
    assert!(tail[0].ends_with("websocket closed"), "{tail:?}");
    assert_eq!(
        exit.stderr.matches("echoed 77 bytes").count(),
        3,
        "{tail:?}"
    );
}

#[test]
fn gauntlet_proxy_keeps_relaying_when_nobody_reads_its_stderr_and_says_how_many_lines_it_dropped() {
    let upstream = crate::proxy::echo_server();
    let mut command = Command::new(env!("CARGO_BIN_EXE_gauntlet"));
    command.args(["proxy", "--model", "pass", "--listen", "127.0.0.1:0"]);
    command.args(["--upstream", &upstream.to_string()]);
    let mut proxy = Process::start_holding_stderr("gauntlet proxy", &mut command);
    let addr = proxy.address("listening on ");
    // The proxy logs eight lines per session (about 500 bytes): enough sessions to log
    // several times what the pipe and the queue hold.
    let sessions = 1500;
    for i in 0..sessions {
        if let Err(e) = session(addr, 1, 20) {
            let exit = proxy.kill();
            panic!(
                "session {i} of {sessions} with stderr unread: {e}\nstderr:\n{}",
                exit.stderr
            );
        }
    }
    let report = proxy.stderr_line("lines dropped");
    assert!(report.starts_with("transcript: "), "{report}");
    eprintln!("{report}");
    session(addr, 1, 20).expect("a session after the log caught up");
    let exit = proxy.terminate();
    assert_eq!(exit.code, Some(0), "{}", exit.stderr);
}

/// Whether the server has closed `stream`: a read gives the end of the stream or an error
/// other than a timeout.
fn closed_by_peer(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 512];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false;
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn gauntlet_serve_accepts_again_after_running_out_of_file_descriptors() {
    // About a dozen descriptors are the server's own; the rest are for connections.
    let limit = 32;
    let nofile = format!("--nofile={limit}:{limit}");
    let (mut server, addr) = serve(&["prlimit", &nofile, "--"], &[], false);
    // Twice as many connections as it has descriptors: some accepts must fail.
    let held: Vec<TcpStream> = (0..2 * limit).map(|_| connect(addr)).collect();
    let failed = server.stderr_line("accept failed");
    assert!(failed.contains("Too many open files"), "{failed}");
    drop(held);
    // Descriptors are free again: the server accepts what waited, then a new session.
    server.stderr_line("accepting again after");
    session(addr, 2, 20).expect("a session once descriptors are free");
    let exit = server.terminate();
    assert_eq!(exit.code, Some(0), "{}", exit.stderr);
}

#[test]
fn gauntlet_serve_closes_connections_that_never_finish_their_request_head() {
    let ca = std::env::temp_dir().join(format!("gauntlet-slow-heads-{}.pem", std::process::id()));
    let ca_arg = ca.display().to_string();
    let (mut server, addr) = serve(
        &[],
        &[
            "--header-timeout-ms",
            "500",
            "--tls-listen",
            "127.0.0.1:0",
            "--ca-out",
            &ca_arg,
        ],
        false,
    );
    let _ = std::fs::remove_file(&ca);
    let tls = server.address("listening (tls) on ");
    // Slow clients: a request head a byte every 100 ms (so no single read waits long), never
    // finished; and a TLS client that never says hello.
    let count = 20;
    let slow: Vec<std::thread::JoinHandle<bool>> = (0..count)
        .map(|_| {
            std::thread::spawn(move || {
                let mut stream = connect(addr);
                stream
                    .set_read_timeout(Some(Duration::from_millis(100)))
                    .expect("a timeout");
                let head = b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
                // Safety net: a byte per read timeout for PATIENCE, far longer than the
                // header timeout.
                let bytes = (PATIENCE.as_millis() / 100) as usize;
                (0..bytes).any(|i| {
                    let byte = head.get(i).copied().unwrap_or(b'a');
                    stream.write_all(&[byte]).is_err() || closed_by_peer(&mut stream)
                })
            })
        })
        .collect();
    let mut silent_tls = connect(tls);
    // Meanwhile, a client that sends its head serves as usual.
    session(addr, 2, 20).expect("a normal session beside the slow ones");
    for (i, slow) in slow.into_iter().enumerate() {
        assert!(
            slow.join().expect("the slow client"),
            "slow client {i} is still open"
        );
    }
    assert!(
        closed_by_peer(&mut silent_tls),
        "the silent TLS client is still open"
    );
    let exit = server.terminate();
    assert_eq!(exit.code, Some(0), "{}", exit.stderr);
    assert_eq!(
        exit.stderr.matches("no request head within 500 ms").count(),
        count + 1,
        "{}",
        exit.stderr
    );
}

#[test]
fn gauntlet_serve_closes_connections_beyond_max_connections_and_serves_once_one_ends() {
    // The limit holds for all workers together.
    let (mut server, addr) = serve(&[], &["--max-connections", "3", "--workers", "3"], false);
    let mut sessions: Vec<Ws> = (0..3)
        .map(|i| open(addr).unwrap_or_else(|e| panic!("session {i}: {e}")))
        .collect();
    for ws in &mut sessions {
        echo(ws, 1, 20).expect("an echo within the limit");
    }
    // The fourth is closed without an answer.
    let mut fourth = connect(addr);
    let request = format!(
        "GET /echo HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    // The server may close before or after the request arrives: either way, no answer.
    let _ = fourth.write_all(request.as_bytes());
    let mut answer = Vec::new();
    let read = fourth.read_to_end(&mut answer);
    assert!(
        answer.is_empty(),
        "the fourth connection got {:?} ({read:?})",
        String::from_utf8_lossy(&answer)
    );
    let refused = server.stderr_line("at once");
    assert!(
        refused.contains("3 connections open, the maximum"),
        "{refused}"
    );
    // One session ends; once the server has let it go, a new one is served.
    close(sessions.remove(0)).expect("a clean close");
    server.stderr_line("websocket closed");
    session(addr, 2, 20).expect("a session once one ended");
    for ws in sessions {
        close(ws).expect("a clean close");
    }
    let exit = server.terminate();
    assert_eq!(exit.code, Some(0), "{}", exit.stderr);
}

/// A rustls client session store that keeps nothing and counts the TLS 1.3 tickets offered.
#[derive(Debug, Default)]
struct TicketCounter(std::sync::atomic::AtomicUsize);

impl rustls::client::ClientSessionStore for TicketCounter {
    fn set_kx_hint(&self, _: rustls::pki_types::ServerName<'static>, _: rustls::NamedGroup) {}
    fn kx_hint(&self, _: &rustls::pki_types::ServerName<'_>) -> Option<rustls::NamedGroup> {
        None
    }
    fn set_tls12_session(
        &self,
        _: rustls::pki_types::ServerName<'static>,
        _: rustls::client::Tls12ClientSessionValue,
    ) {
    }
    fn tls12_session(
        &self,
        _: &rustls::pki_types::ServerName<'_>,
    ) -> Option<rustls::client::Tls12ClientSessionValue> {
        None
    }
    fn remove_tls12_session(&self, _: &rustls::pki_types::ServerName<'static>) {}
    fn insert_tls13_ticket(
        &self,
        _: rustls::pki_types::ServerName<'static>,
        _: rustls::client::Tls13ClientSessionValue,
    ) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    fn take_tls13_ticket(
        &self,
        _: &rustls::pki_types::ServerName<'static>,
    ) -> Option<rustls::client::Tls13ClientSessionValue> {
        None
    }
}

/// TLS 1.3 tickets arrive after the handshake, as the client sends its upgrade request; a
/// client that reads and writes one OpenSSL connection from two threads (Python websockets'
/// sync client) then sometimes loses the request (see `serve::Tls::generate`). This is what
/// made the Python wss interop test flaky: `gauntlet serve` must send none.
#[test]
fn gauntlet_serve_sends_no_tls13_session_tickets() {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, ServerName};

    let ca = std::env::temp_dir().join(format!("gauntlet-tickets-{}.pem", std::process::id()));
    let ca_arg = ca.display().to_string();
    let (mut server, _) = serve(
        &[],
        &["--tls-listen", "127.0.0.1:0", "--ca-out", &ca_arg],
        false,
    );
    let tls = server.address("listening (tls) on ");
    let pem = std::fs::read(&ca).expect("the CA file");
    let _ = std::fs::remove_file(&ca);
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(&pem).expect("a PEM certificate"))
        .expect("a root");
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tickets = std::sync::Arc::new(TicketCounter::default());
    config.resumption = rustls::client::Resumption::store(tickets.clone());
    let name = ServerName::from(tls.ip());
    let client =
        rustls::ClientConnection::new(std::sync::Arc::new(config), name).expect("a client");
    let stream = rustls::StreamOwned::new(client, connect(tls));
    let (mut ws, _) =
        tungstenite::client(format!("wss://{tls}/echo"), stream).expect("a wss handshake");
    // The echo comes after anything the server sent after its handshake.
    echo(&mut ws, 1, 20).expect("an echo over wss");
    ws.close(None).expect("a close");
    while ws.read().is_ok() {}
    assert_eq!(
        tickets.0.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "TLS 1.3 session tickets from gauntlet serve"
    );
    let exit = server.terminate();
    assert_eq!(exit.code, Some(0), "{}", exit.stderr);
}

/// How many sockets listen on 127.0.0.1:`port` (`/proc/net/tcp`, state `0A`).
fn listeners_on(port: u16) -> usize {
    let local = format!("0100007F:{port:04X}");
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    table
        .lines()
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.get(1) == Some(&local.as_str()) && f.get(3) == Some(&"0A")
        })
        .count()
}

#[test]
fn three_workers_listen_on_both_addresses_and_each_serves_sessions() {
    let ca = std::env::temp_dir().join(format!("gauntlet-workers-{}.pem", std::process::id()));
    let ca_arg = ca.display().to_string();
    let (mut server, addr) = serve(
        &[],
        &[
            "--tls-listen",
            "127.0.0.1:0",
            "--ca-out",
            &ca_arg,
            "--workers",
            "3",
        ],
        false,
    );
    let tls = server.address("listening (tls) on ");
    let _ = std::fs::remove_file(&ca);
    assert_eq!(listeners_on(addr.port()), 3, "ws listeners");
    assert_eq!(listeners_on(tls.port()), 3, "wss listeners");
    // The kernel picks a worker by each connection's addresses: 48 sessions missing one of
    // three workers would be a 1 in 10^8 chance.
    for i in 0..48 {
        session(addr, 1, 20).unwrap_or_else(|e| panic!("session {i}: {e}"));
    }
    let exit = server.terminate();
    assert_eq!(exit.code, Some(0), "{}", exit.stderr);
    assert!(exit.stderr.contains("3 workers serving"), "{}", exit.stderr);
    for worker in ["server/w1", "server/w2", "server/w3"] {
        let upgraded = format!("{worker}  request GET /echo");
        assert!(
            exit.stderr.contains(&upgraded),
            "{worker} served nothing:\n{}",
            exit.stderr
        );
    }
}

/// An upgrade request for `target` on `addr`, as one write with `after` behind its head.
fn upgrade(stream: &mut TcpStream, target: &str, after: &[u8]) {
    upgrade_with(stream, target, "", after);
}

/// [`upgrade`] with `fields` (each line ending in CRLF) in its head.
fn upgrade_with(stream: &mut TcpStream, target: &str, fields: &str, after: &[u8]) {
    let mut bytes = format!(
        "GET {target} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{fields}\r\n"
    )
    .into_bytes();
    bytes.extend_from_slice(after);
    stream.write_all(&bytes).expect("the request goes out");
}

/// Reads until `bytes` holds a head and at least `more` bytes after it; returns the head's
/// length.
fn read_head_and(stream: &mut TcpStream, bytes: &mut Vec<u8>, more: usize) -> usize {
    loop {
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            if bytes.len() >= end + 4 + more {
                return end + 4;
            }
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk) {
            Ok(0) => panic!(
                "the server closed after {:?}",
                String::from_utf8_lossy(bytes)
            ),
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("reading the answer: {e}"),
        }
    }
}

#[test]
fn the_reference_server_writes_its_first_push_with_the_101_when_asked() {
    let (mut server, addr) = serve(&[], &[], false);
    let mut stream = connect(addr);
    upgrade(&mut stream, "/push?count=2&size=64&push-with-101=1", b"");
    // The first read holds the 101 and the first push's frame: they left in one write.
    let mut first = vec![0u8; 4096];
    let n = stream.read(&mut first).expect("the answer");
    first.truncate(n);
    let text = String::from_utf8_lossy(&first);
    assert!(text.starts_with("HTTP/1.1 101 "), "{text}");
    let end = first
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a whole head in the first read")
        + 4;
    assert_eq!(
        &first[end..end + 2],
        &[0x81, 64],
        "a 64-byte text frame right behind the head, in the same read: {text:?}"
    );
    assert!(
        text[end..].contains("push 0 at "),
        "the first push: {text:?}"
    );
    server.kill();
}

/// Reads a 101 and, right behind it, the echo of a text frame `hello`.
fn assert_hello_echoed(stream: &mut TcpStream) {
    let mut bytes = Vec::new();
    let head = read_head_and(stream, &mut bytes, 7);
    assert!(bytes.starts_with(b"HTTP/1.1 101 "), "{bytes:?}");
    assert_eq!(
        &bytes[head..head + 7],
        b"\x81\x05hello",
        "the echo of the frame"
    );
}

#[test]
fn the_reference_server_reads_a_first_frame_sent_with_the_request_head() {
    let (mut server, addr) = serve(&[], &[], false);
    let mut stream = connect(addr);
    let frame = gauntlet_proxies::ws_frames::encode(0x1, b"hello", Some([1, 2, 3, 4]));
    upgrade(&mut stream, "/echo", &frame);
    assert_hello_echoed(&mut stream);
    server.kill();
}

#[test]
fn the_reference_server_refuses_as_asked_with_retry_after_and_a_json_body() {
    let (mut server, addr) = serve(&[], &[], false);
    let mut stream = connect(addr);
    upgrade(&mut stream, "/echo?refuse=503", b"");
    let mut bytes = Vec::new();
    let head = read_head_and(
        &mut stream,
        &mut bytes,
        gauntlet::endpoints::answer::REFUSAL_BYTES,
    );
    let text = String::from_utf8_lossy(&bytes[..head]).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 503 "), "{text}");
    for field in [
        "retry-after: 30",
        "content-type: application/json",
        "content-length: 1024",
    ] {
        assert!(text.contains(field), "{field} in {text}");
    }
    assert_eq!(
        &bytes[head..],
        gauntlet::endpoints::answer::refusal_body(503).as_bytes()
    );
    server.kill();
}

#[test]
fn the_reference_server_reads_a_request_body_whole_before_its_101_and_refuses_one_changed() {
    use gauntlet::endpoints::body;
    let (mut server, addr) = serve(&[], &[], false);
    // A request naming a 300-byte body, with `after` as its body and what follows it.
    let send = |after: &[u8]| {
        let mut stream = connect(addr);
        let fields = "Content-Length: 300\r\n";
        upgrade_with(&mut stream, "/echo?expect-body=300", fields, after);
        stream
    };
    // The body, then a frame in the same write: the frame is echoed, so the body was not
    // taken for frames.
    let mut after = body::bytes(300);
    after.extend(gauntlet_proxies::ws_frames::encode(
        0x1,
        b"hello",
        Some([1, 2, 3, 4]),
    ));
    let mut stream = send(&after);
    assert_hello_echoed(&mut stream);
    // A body other than the one named is refused, saying how it arrived.
    let mut changed = body::bytes(300);
    changed[200] = b'!';
    let mut stream = send(&changed);
    let mut bytes = Vec::new();
    let head = read_head_and(&mut stream, &mut bytes, 1);
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.starts_with("HTTP/1.1 403 "), "{text}");
    assert!(
        text[head..].contains("arrived as 300 bytes; the client sent 300 (the first 200 alike)"),
        "{text}"
    );
    // One declared longer than the most the server reads is refused unread.
    let mut stream = connect(addr);
    upgrade_with(&mut stream, "/echo", "Content-Length: 70000\r\n", b"");
    let mut bytes = Vec::new();
    read_head_and(&mut stream, &mut bytes, 1);
    assert!(
        bytes.starts_with(b"HTTP/1.1 413 "),
        "{:?}",
        String::from_utf8_lossy(&bytes)
    );
    server.kill();
}

/// The census's answer to `/census?watch=ID&wait=MS` at `addr`: the text message it sends.
fn census(addr: SocketAddr, id: &str, wait_ms: u64) -> String {
    let url = format!("ws://{addr}/census?watch={id}&wait={wait_ms}");
    let (mut ws, _) = tungstenite::client(url, connect(addr)).expect("the census session opens");
    match ws.read() {
        Ok(Message::Text(text)) => text.to_string(),
        other => panic!("the census answered {other:?}"),
    }
}

#[test]
fn the_census_counts_a_watched_session_until_its_connection_ends_on_the_servers_side() {
    let (mut server, addr) = serve(&[], &[], false);
    let url = format!("ws://{addr}/echo?watch=run-7");
    let (mut watched, _) = tungstenite::client(url, connect(addr)).expect("the session opens");
    echo(&mut watched, 2, 16).expect("echoed");
    // Open, the census waits its whole time and says so.
    let answer = census(addr, "run-7", 200);
    let (open, waited) = gauntlet::endpoints::census::read_answer(&answer).expect(&answer);
    assert_eq!(open, 1, "{answer}");
    assert!(waited >= 200, "{answer}");
    assert_eq!(census(addr, "run-8", 0), "open 0 after 0 ms", "another ID");
    // The client's side ends with no Close: once the server reads the end, the session is
    // no longer counted.
    drop(watched);
    let answer = census(addr, "run-7", 10_000);
    assert_eq!(
        gauntlet::endpoints::census::read_answer(&answer).map(|a| a.0),
        Some(0),
        "{answer}"
    );
    // A census that names no ID is refused, saying what it needs.
    let mut stream = connect(addr);
    upgrade(&mut stream, "/census?wait=10", b"");
    let mut bytes = Vec::new();
    read_head_and(&mut stream, &mut bytes, 1);
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        text.starts_with("HTTP/1.1 400 ") && text.contains("watch=ID"),
        "{text}"
    );
    server.kill();
}

#[test]
fn the_reference_server_accepts_permessage_deflate_when_asked_and_echoes_compressed() {
    use gauntlet::endpoints::deflate;
    use gauntlet::endpoints::smuggle::{Decoded, decode_with};
    let (mut server, addr) = serve(&[], &[], false);
    let offer = format!("Sec-WebSocket-Extensions: {}\r\n", deflate::OFFER);
    let message = "hello, compressed hello, compressed hello".repeat(20);
    let frame = deflate::frame(0x1, message.as_bytes(), Some([9, 8, 7, 6]));
    let mut stream = connect(addr);
    upgrade_with(&mut stream, "/echo?deflate=1", &offer, &frame);
    let mut bytes = Vec::new();
    let head = read_head_and(&mut stream, &mut bytes, 2);
    let text = String::from_utf8_lossy(&bytes[..head]).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 101 "), "{text}");
    assert!(
        text.contains("sec-websocket-extensions: permessage-deflate; server_no_context_takeover"),
        "{text}"
    );
    let echo = loop {
        if let Decoded::Frame(f, _) = decode_with(&bytes[head..], true) {
            break f;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).expect("the echo");
        assert!(n > 0, "the server closed before its echo");
        bytes.extend_from_slice(&chunk[..n]);
    };
    assert!(echo.rsv1 && echo.fin && !echo.masked, "{echo:?}");
    assert!(
        echo.payload.len() < message.len() / 4,
        "compressed: {}",
        echo.payload.len()
    );
    assert_eq!(
        deflate::decompress(&echo.payload, 1 << 20).unwrap(),
        message.as_bytes()
    );
    // Not asked in the query, the offer is declined: no extension in the 101.
    let mut stream = connect(addr);
    upgrade_with(&mut stream, "/echo", &offer, b"");
    let mut bytes = Vec::new();
    let head = read_head_and(&mut stream, &mut bytes, 0);
    let text = String::from_utf8_lossy(&bytes[..head]).to_ascii_lowercase();
    assert!(
        text.starts_with("http/1.1 101 ") && !text.contains("extensions"),
        "{text}"
    );
    server.kill();
}
