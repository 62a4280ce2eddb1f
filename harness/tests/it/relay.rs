//! The driver's relay under load: a large transfer in both directions at once, through the
//! byte-preserving models, on the default simulated engine and on real sockets. The client
//! writes and reads at the same time; the server answers every piece it reads with as many
//! bytes of its own before it reads again, as an echo server does. Connected directly they
//! never wait on each other for long; a relay that waits for one direction's write before it
//! reads the other deadlocks with them. Every byte must arrive, in order.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use futures_util::FutureExt;
use gauntlet::driver::hop_software;
use gauntlet::engine::{
    self, ClientSoftware, Intake, LinkConfig, NetRef, Software, Stream, Topology,
};
use gauntlet::verdict::transcript::Transcript;
use gauntlet_proxies::{HopEnv, ModelSpec};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};

/// Bytes each way.
const BYTES: usize = 64 << 20;
/// The period of each direction's byte pattern: a prime, so no chunk size of a read or write
/// lines up with it, and a lost, repeated or reordered piece shows.
const PERIOD: usize = 1_000_003;
const CHUNK: usize = 64 * 1024;

/// A direction's bytes, `PERIOD` of them and a chunk more, so any offset has a whole chunk.
fn pattern(seed: u64) -> Rc<Vec<u8>> {
    let mut x = seed;
    let mut v: Vec<u8> = (0..PERIOD)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 56) as u8
        })
        .collect();
    v.extend_from_within(..CHUNK);
    Rc::new(v)
}

async fn send_all(mut w: WriteHalf<Stream>, pat: Rc<Vec<u8>>) -> std::io::Result<()> {
    let mut sent = 0;
    while sent < BYTES {
        let n = CHUNK.min(BYTES - sent);
        let at = sent % PERIOD;
        w.write_all(&pat[at..at + n]).await?;
        sent += n;
    }
    w.shutdown().await
}

/// Reads to the end: how many bytes came, and the offset of the first that differed.
async fn receive_all(mut r: ReadHalf<Stream>, pat: Rc<Vec<u8>>) -> (usize, Option<usize>) {
    let mut buf = vec![0u8; CHUNK];
    let mut got = 0;
    let mut first_wrong = None;
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let at = got % PERIOD;
        if first_wrong.is_none() && (got + n > BYTES || buf[..n] != pat[at..at + n]) {
            first_wrong = Some(got);
        }
        got += n;
    }
    (got, first_wrong)
}

/// Sends `out` while receiving: a line saying how much came and whether it matched `inn`.
async fn exchange(stream: Stream, out: Rc<Vec<u8>>, inn: Rc<Vec<u8>>) -> String {
    let (r, w) = tokio::io::split(stream);
    let (sent, (got, wrong)) = tokio::join!(send_all(w, out), receive_all(r, inn));
    line(sent, got, wrong)
}

/// Reads a piece, checks it against `inn`, writes as many bytes of `out`, and again, until
/// the peer's FIN; then ends its own side. A line as [`exchange`] gives.
async fn answer(mut stream: Stream, out: Rc<Vec<u8>>, inn: Rc<Vec<u8>>) -> String {
    let mut buf = vec![0u8; CHUNK];
    let (mut got, mut first_wrong, mut sent) = (0, None, Ok(()));
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let at = got % PERIOD;
        if first_wrong.is_none() && (got + n > BYTES || buf[..n] != inn[at..at + n]) {
            first_wrong = Some(got);
        }
        got += n;
        if sent.is_ok() {
            sent = stream.write_all(&out[at..at + n]).await;
        }
    }
    if sent.is_ok() {
        sent = stream.shutdown().await;
    }
    line(sent, got, first_wrong)
}

fn line(sent: std::io::Result<()>, got: usize, wrong: Option<usize>) -> String {
    format!(
        "sent {}, received {got} of {BYTES} bytes, first wrong byte {wrong:?}",
        match sent {
            Ok(()) => "all".to_string(),
            Err(e) => format!("failed ({e})"),
        }
    )
}

fn server(log: Rc<RefCell<Vec<String>>>) -> Software {
    Rc::new(move |net: NetRef| {
        let log = log.clone();
        async move {
            let mut listener = net.listen(80).await?;
            let stream = listener.accept().await?;
            let line = answer(stream, pattern(2), pattern(1)).await;
            log.borrow_mut().push(format!("server {line}"));
            std::future::pending::<()>().await;
            Ok(())
        }
        .boxed_local()
    })
}

fn client(connect: bool, log: Rc<RefCell<Vec<String>>>) -> ClientSoftware {
    Box::new(move |net: NetRef| {
        async move {
            let mut stream = net.connect("hop1", 80).await?;
            if connect {
                stream
                    .write_all(b"CONNECT server:80 HTTP/1.1\r\nHost: server:80\r\n\r\n")
                    .await?;
                let mut head = Vec::new();
                while !head.ends_with(b"\r\n\r\n") {
                    head.push(stream.read_u8().await?);
                }
                anyhow::ensure!(
                    head.starts_with(b"HTTP/1.1 200"),
                    "CONNECT answered {}",
                    String::from_utf8_lossy(&head)
                );
            }
            let line = exchange(stream, pattern(1), pattern(2)).await;
            log.borrow_mut().push(format!("client {line}"));
            // The server logs when its side is done too; it is, once the client has it all.
            while log.borrow().len() < 2 {
                net.sleep_until(net.now() + Duration::from_millis(10)).await;
            }
            Ok(())
        }
        .boxed_local()
    })
}

/// Runs `client` → `hop1` (the hop table `hop`, every backend the host `server`) → `server`
/// on `engine`, with a link of 1 ms; a run that fails says so in `log`.
fn run_through(
    engine: &str,
    hop: &str,
    server: Software,
    client: ClientSoftware,
    transcript: Transcript,
    log: &Rc<RefCell<Vec<String>>>,
) {
    let spec: ModelSpec = toml::from_str(hop).expect("a valid hop table");
    let link = LinkConfig::new(Duration::from_millis(1), Duration::ZERO);
    let mut t = Topology::new(link, Duration::from_secs(120));
    let upstreams = vec!["server".to_string(); spec.backends()];
    let hop = hop_software(
        Rc::new(spec),
        HopEnv::default(),
        upstreams,
        vec![80],
        1,
        transcript,
        (Intake::unlimited(), None),
    );
    t.host("hop1", hop);
    t.host("server", server);
    t.client("client", client);
    let e = engine::by_name(engine).expect("a listed engine");
    if let Err(err) = e.run(t, 1) {
        log.borrow_mut().push(format!("run failed: {err}"));
    }
}

/// 64 MiB each way at once through `hop` (a hop table) on `engine`: what each end saw.
fn both_ways(engine: &str, hop: &str, connect: bool) -> Vec<String> {
    let log: Rc<RefCell<Vec<String>>> = Rc::default();
    let server = server(log.clone());
    let client = client(connect, log.clone());
    run_through(engine, hop, server, client, Transcript::discarding(), &log);
    let mut lines = log.borrow().clone();
    lines.sort();
    lines
}

fn expect_every_byte(engine: &str, hop: &str, connect: bool) {
    let want = format!("sent all, received {BYTES} of {BYTES} bytes, first wrong byte None");
    assert_eq!(
        both_ways(engine, hop, connect),
        vec![format!("client {want}"), format!("server {want}")],
        "{engine}, {hop}"
    );
}

const PASS: &str = r#"model = "pass""#;
const L4: &str = "model = \"l4-balancer\"\nbackends = 2";
const CONNECT: &str = "model = \"connect-proxy\"\npreset = \"tinyproxy\"";

#[test]
fn pass_relays_64_mib_each_way_at_once_on_sim() {
    expect_every_byte("sim", PASS, false);
}

#[test]
fn l4_balancer_relays_64_mib_each_way_at_once_on_sim() {
    expect_every_byte("sim", L4, false);
}

#[test]
fn connect_proxy_relays_64_mib_each_way_at_once_on_sim() {
    expect_every_byte("sim", CONNECT, true);
}

#[test]
fn pass_relays_64_mib_each_way_at_once_on_real_sockets() {
    expect_every_byte("live", PASS, false);
}

#[test]
fn l4_balancer_relays_64_mib_each_way_at_once_on_real_sockets() {
    expect_every_byte("live", L4, false);
}

#[test]
fn connect_proxy_relays_64_mib_each_way_at_once_on_real_sockets() {
    expect_every_byte("live", CONNECT, true);
}

/// A server that reads a mebibyte, then resets the connection.
fn resetting_server() -> Software {
    Rc::new(move |net: NetRef| {
        async move {
            let mut listener = net.listen(80).await?;
            let mut stream = listener.accept().await?;
            let mut buf = vec![0u8; 1 << 20];
            stream.read_exact(&mut buf).await?;
            stream.reset();
            std::future::pending::<()>().await;
            Ok(())
        }
        .boxed_local()
    })
}

/// A client that writes without pause and reads at the same time: what its read ended with.
fn writing_client(log: Rc<RefCell<Vec<String>>>) -> ClientSoftware {
    Box::new(move |net: NetRef| {
        async move {
            let stream = net.connect("hop1", 80).await?;
            let (mut r, mut w) = tokio::io::split(stream);
            let pat = pattern(1);
            let write = async move {
                let mut at = 0;
                while w.write_all(&pat[at..at + CHUNK]).await.is_ok() {
                    at = (at + CHUNK) % PERIOD;
                }
            };
            let read = async move {
                let mut buf = [0u8; 1024];
                loop {
                    match r.read(&mut buf).await {
                        Ok(0) => return "FIN".to_string(),
                        Ok(_) => {}
                        Err(e) => return format!("{:?}", e.kind()),
                    }
                }
            };
            let ((), ended) = tokio::join!(write, read);
            log.borrow_mut().push(ended);
            Ok(())
        }
        .boxed_local()
    })
}

/// How a client's read ends when the server resets while the client is still sending, and the
/// hop's transcript.
fn reset_while_sending(engine: &str) -> (Vec<String>, Vec<String>) {
    let log: Rc<RefCell<Vec<String>>> = Rc::default();
    let transcript = Transcript::default();
    let client = writing_client(log.clone());
    run_through(
        engine,
        PASS,
        resetting_server(),
        client,
        transcript.clone(),
        &log,
    );
    let lines = transcript.entries().into_iter().map(|e| e.what).collect();
    (log.borrow().clone(), lines)
}

#[test]
fn pass_relays_an_upstream_reset_as_a_reset_and_logs_one_discard() {
    for engine in ["sim", "live"] {
        for _ in 0..5 {
            let (ended, transcript) = reset_while_sending(engine);
            let text = transcript.join("\n");
            assert_eq!(ended, vec!["ConnectionReset"], "{engine}:\n{text}");
            assert!(text.contains("RST to client"), "{engine}:\n{text}");
            assert!(!text.contains("FIN to client"), "{engine}:\n{text}");
            let discards = transcript.iter().filter(|l| l.contains("discard")).count();
            assert!(
                discards <= 2,
                "{engine}: {discards} lines of discards:\n{text}"
            );
        }
    }
}

/// A server whose link from the hop swallows everything: the hop's dial never completes.
fn unreachable_server() -> Software {
    Rc::new(move |net: NetRef| {
        async move {
            net.link_fault("hop1", "server", engine::LinkFault::Blackhole);
            let mut listener = net.listen(80).await?;
            let _never = listener.accept().await?;
            std::future::pending::<()>().await;
            Ok(())
        }
        .boxed_local()
    })
}

/// A client that writes for ten simulated seconds: how many bytes the network took.
fn eager_client(log: Rc<RefCell<Vec<String>>>) -> ClientSoftware {
    Box::new(move |net: NetRef| {
        async move {
            let mut stream = net.connect("hop1", 80).await?;
            let pat = pattern(1);
            let mut written = 0usize;
            let write = async {
                loop {
                    let at = written % PERIOD;
                    match stream.write(&pat[at..at + CHUNK]).await {
                        Ok(n) => written += n,
                        Err(_) => return,
                    }
                }
            };
            tokio::select! {
                biased;
                () = write => {}
                () = net.sleep_until(Duration::from_secs(10)) => {}
            }
            log.borrow_mut().push(written.to_string());
            Ok(())
        }
        .boxed_local()
    })
}

#[test]
fn bytes_sent_while_the_dial_is_pending_are_bounded() {
    let log: Rc<RefCell<Vec<String>>> = Rc::default();
    let client = eager_client(log.clone());
    run_through(
        "sim",
        PASS,
        unreachable_server(),
        client,
        Transcript::discarding(),
        &log,
    );
    let written: usize = log.borrow()[0].parse().expect("a byte count");
    // The hop's outbox for upstream (256 KiB), one read's buffer, and the link's own buffer
    // (256 KiB): a client that could write more would grow the hop without bound.
    assert!(
        written <= 640 * 1024,
        "the client wrote {written} bytes toward a dial that never completes"
    );
}
