//! `cargo xtask soak`: the live engine under load for a while, then a look at what it kept.
//!
//! Three real processes from the built binary: `gauntlet serve` (ws and wss, its CA written
//! with `--ca-out`), and two `gauntlet proxy --model pass` in front of it, one for its ws port
//! and one relaying TLS opaquely to its wss port. The clients are the harness's own reference
//! client (`gauntlet::endpoints::client::run`, which checks every echo against what it sent) on the live
//! engine, with the two proxies published as hosts (`proxy-ws`, and `localhost` for wss, the
//! name the server's certificate carries).
//!
//! Phases: a warm-up (sequential sessions, then two rounds of the concurrent phase as below,
//! whatever the server leaves open closed by the client at once), after which each process's open descriptors (`/proc/PID/fd`) and
//! resident memory (`VmRSS`) are the baseline; sequential sessions, ws and wss in turn; then
//! concurrent sessions of many echoed messages each, alongside slowloris connections (a
//! request head dribbled a byte at a time, never finished) and clients that half-close early
//! (at once, in the middle of the head, after the upgrade request, after the handshake and a
//! message). When the sessions are done the slowloris connections stop dribbling, and the
//! soak waits (the grace) for the server to close them and the half-closed ones, and for the
//! descriptors to come back; then it measures. Whatever the server left open, the client
//! closes afterwards.
//!
//! It fails when a message was lost (a session that did not end `delivered` with every echo
//! intact) or when a process's descriptors or memory are more than 10% above its baseline.

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures_util::FutureExt;
use gauntlet::endpoints::client::{self, Plan};
use gauntlet::engine::{Engine as _, NetRef, Stream};
use gauntlet::scenario::{Scheme, Workload, WorkloadKind};
use gauntlet::verdict::outcome::Outcome;
use gauntlet::verdict::transcript::Transcript;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::Clock;
use crate::procs::Proc;

/// How much load, and how long to wait for the server to let go.
#[derive(Debug, Clone)]
pub struct Options {
    pub gauntlet: PathBuf,
    pub root: PathBuf,
    /// Sequential sessions.
    pub sessions: u64,
    /// Messages in each sequential session.
    pub session_messages: u32,
    /// Concurrent sessions.
    pub concurrent: u64,
    /// Messages in each concurrent session.
    pub messages: u32,
    pub slowloris: u64,
    pub half_close: u64,
    /// Sequential sessions of the warm-up.
    pub warmup: u64,
    /// How long to wait, after the sessions, for the server to close the slowloris and
    /// half-closed connections and for the descriptors to come back.
    pub grace: Duration,
}

impl Options {
    pub fn full(gauntlet: PathBuf, root: PathBuf) -> Self {
        Self {
            gauntlet,
            root,
            sessions: 10_000,
            session_messages: 5,
            concurrent: 1_000,
            messages: 100,
            slowloris: 500,
            half_close: 200,
            warmup: 100,
            grace: Duration::from_secs(30),
        }
    }

    /// The shortened soak CI runs.
    pub fn quick(gauntlet: PathBuf, root: PathBuf) -> Self {
        Self {
            sessions: 400,
            concurrent: 100,
            messages: 50,
            slowloris: 50,
            half_close: 20,
            warmup: 20,
            grace: Duration::from_secs(15),
            ..Self::full(gauntlet, root)
        }
    }
}

/// One process's descriptors and memory.
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    fds: usize,
    rss_kib: u64,
}

fn usage(pid: u32) -> Usage {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    let rss_kib = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0);
    Usage { fds, rss_kib }
}

/// Within 10% of `base`.
fn within(base: u64, now: u64) -> bool {
    now * 10 <= base * 11
}

/// What the clients counted.
#[derive(Debug, Default)]
struct Tally {
    sessions: u64,
    expected: u64,
    received: u64,
    failed: Vec<String>,
    slowloris_closed: u64,
    slowloris_refused: u64,
    half_closed: u64,
    half_refused: u64,
    baseline: Vec<Usage>,
    after: Vec<Usage>,
    after_client_closed: Vec<Usage>,
}

type Shared = Rc<RefCell<Tally>>;

/// Runs the soak; returns whether it passed.
pub fn main(opts: &Options) -> anyhow::Result<bool> {
    let clock = Clock::start();
    let scratch = opts.root.join("target/gauntlet/soak");
    std::fs::create_dir_all(&scratch).context("making target/gauntlet/soak")?;
    let ca = scratch.join("ca.pem");
    let mut serve = Proc::serve(
        "serve",
        &opts.gauntlet,
        &ca,
        &[
            // A third of the grace, so that the slowloris connections are closed within it
            // (the default, nginx's 60 s, would outlast a quick soak).
            "--header-timeout-ms".into(),
            (opts.grace.as_millis() / 3).to_string(),
            // Room for every connection the soak holds at once (the default, Debian nginx's
            // 768, is smaller than the full soak's 1,700): connections beyond it are refused.
            "--max-connections".into(),
            (2 * (opts.concurrent + opts.slowloris + opts.half_close)).to_string(),
        ],
        &scratch.join("serve.log"),
    )?;
    let proxy = |name: &str, upstream: std::net::SocketAddr, log: &str| {
        Proc::pass_proxy(name, &opts.gauntlet, upstream, &scratch.join(log))
    };
    let mut ws_proxy = proxy("proxy (ws)", serve.addrs[0], "proxy-ws.log")?;
    let mut wss_proxy = proxy("proxy (wss)", serve.addrs[1], "proxy-wss.log")?;
    eprintln!(
        "soak: serve pid {} on {} and {} (tls); proxy (ws) pid {} on {}; proxy (wss) pid {} on {}",
        serve.pid,
        serve.addrs[0],
        serve.addrs[1],
        ws_proxy.pid,
        ws_proxy.addrs[0],
        wss_proxy.pid,
        wss_proxy.addrs[0]
    );
    let tls = client_tls(&ca)?;
    let pids = vec![serve.pid, ws_proxy.pid, wss_proxy.pid];
    let names = ["serve", "proxy (ws)", "proxy (wss)"];
    let tally: Shared = Rc::default();

    let mut topology = gauntlet::real::standing::topology();
    topology.host(
        WS_HOST,
        gauntlet::real::standing::published(0, ws_proxy.addrs[0], None),
    );
    topology.host(
        WSS_HOST,
        gauntlet::real::standing::published(0, wss_proxy.addrs[0], None),
    );
    let (o, t, p) = (opts.clone(), tally.clone(), pids.clone());
    topology.client(
        "client",
        Box::new(move |net: NetRef| {
            async move {
                phases(net, o, tls, p, t).await;
                Ok(())
            }
            .boxed_local()
        }),
    );
    let run = gauntlet::engine::live::Live.run(topology, 1);

    let mut wrong = Vec::new();
    if let Err(e) = run {
        wrong.push(format!("the clients' run failed: {e}"));
    }
    for p in [&mut serve, &mut ws_proxy, &mut wss_proxy] {
        if let Some(status) = p.exited() {
            wrong.push(format!(
                "{} (pid {}) exited during the soak: {status}; the end of its log:\n{}",
                p.name,
                p.pid,
                p.log_tail(20)
            ));
        }
    }
    let t = tally.borrow();
    let lost = t.expected.saturating_sub(t.received);
    for f in t.failed.iter().take(10) {
        wrong.push(f.clone());
    }
    if t.failed.len() > 10 {
        wrong.push(format!("… {} failed sessions in all", t.failed.len()));
    }
    if lost > 0 {
        wrong.push(format!(
            "{lost} of {} messages did not come back intact",
            t.expected
        ));
    }
    let mib = |k: u64| k as f64 / 1024.0;
    let (mut fds, mut rss) = ((0, 0), (0, 0));
    for (i, name) in names.iter().enumerate() {
        let (Some(b), Some(a)) = (t.baseline.get(i), t.after.get(i)) else {
            wrong.push(format!("{name}: not measured"));
            continue;
        };
        let closed = t.after_client_closed.get(i).copied().unwrap_or_default();
        println!(
            "soak: {name} (pid {}): fds {} -> {}, rss {:.1} -> {:.1} MiB (once the client closed what the server left open: fds {}, rss {:.1} MiB)",
            pids[i],
            b.fds,
            a.fds,
            mib(b.rss_kib),
            mib(a.rss_kib),
            closed.fds,
            mib(closed.rss_kib)
        );
        fds = (fds.0 + b.fds, fds.1 + a.fds);
        rss = (rss.0 + b.rss_kib, rss.1 + a.rss_kib);
        if !within(b.fds as u64, a.fds as u64) {
            wrong.push(format!(
                "{name}: {} open descriptors after the soak, {} at the baseline (more than 10% above)",
                a.fds, b.fds
            ));
        }
        if !within(b.rss_kib, a.rss_kib) {
            wrong.push(format!(
                "{name}: {:.1} MiB resident after the soak, {:.1} MiB at the baseline (more than 10% above)",
                mib(a.rss_kib),
                mib(b.rss_kib)
            ));
        }
    }
    println!(
        "soak: slowloris: {} connections, {} closed by the server within the grace of {} s, {} refused at once; half-closed: {}, {} closed by the server, {} refused at once",
        opts.slowloris,
        t.slowloris_closed,
        opts.grace.as_secs(),
        t.slowloris_refused,
        opts.half_close,
        t.half_closed,
        t.half_refused
    );
    println!(
        "soak: {} sessions, {} messages, {lost} lost, fds {} -> {}, rss {:.1} -> {:.1} MiB ({:.0} s)",
        t.sessions,
        t.received,
        fds.0,
        fds.1,
        mib(rss.0),
        mib(rss.1),
        clock.elapsed().as_secs_f64()
    );
    drop(t);
    for p in [&mut wss_proxy, &mut ws_proxy, &mut serve] {
        match p.stop() {
            Ok(s) if s.success() => {}
            Ok(s) => wrong.push(format!("{} (pid {}) stopped with {s}", p.name, p.pid)),
            Err(e) => wrong.push(format!("{} (pid {}): {e:#}", p.name, p.pid)),
        }
    }
    for w in &wrong {
        println!("FAIL {w}");
    }
    Ok(wrong.is_empty())
}

/// The host names the clients dial: the ws proxy, and the wss proxy under the name the
/// server's certificate carries.
const WS_HOST: &str = "proxy-ws";
const WSS_HOST: &str = "localhost";

/// A client configuration trusting the CA `gauntlet serve` wrote.
fn client_tls(ca: &std::path::Path) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let cert = CertificateDer::from_pem_file(ca)
        .with_context(|| format!("reading the CA certificate {}", ca.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).context("trusting the CA")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn plan(i: u64, messages: u32, tls: &Arc<rustls::ClientConfig>) -> Plan {
    const SIZES: &[usize] = &[16, 125, 126, 1000, 4096, 65_536];
    let wss = i % 2 == 1;
    let mut workload = Workload::new(WorkloadKind::Echo);
    workload.messages = messages;
    workload.interval = Duration::ZERO;
    workload.payload_bytes = SIZES[(i / 2) as usize % SIZES.len()];
    workload.binary = (i / 4) % 2 == 1;
    workload.reply_timeout = Duration::from_secs(60);
    Plan {
        scheme: if wss { Scheme::Wss } else { Scheme::Ws },
        host: if wss { WSS_HOST } else { WS_HOST }.to_string(),
        handshake_timeout: Duration::from_secs(60),
        workload,
        seed: i + 1,
        tls: tls.clone(),
        ping_interval: None,
        proxy: None,
        mask: true,
        path_prefix: String::new(),
        subprotocols: Vec::new(),
        wire: Default::default(),
        browser: Default::default(),
        handshake: Default::default(),
        request: Default::default(),
        stop_proxy: None,
    }
}

/// One session; counts it.
async fn session(net: NetRef, plan: Plan, tally: Shared, count: bool) {
    let expected = u64::from(plan.workload.messages);
    let (scheme, seed) = (plan.scheme, plan.seed);
    let report = client::run(net, plan, Transcript::discarding()).await;
    if !count {
        if report.outcome != Outcome::Delivered {
            tally.borrow_mut().failed.push(format!(
                "warm-up session {scheme} seed {seed}: {} {}",
                report.outcome, report.detail
            ));
        }
        return;
    }
    let mut t = tally.borrow_mut();
    t.sessions += 1;
    t.expected += expected;
    t.received += report.received.min(expected);
    if report.outcome != Outcome::Delivered || report.received != expected {
        t.failed.push(format!(
            "session {scheme} seed {seed}: {} {} ({} of {expected} echoed)",
            report.outcome, report.detail, report.received
        ));
    }
}

/// The moment the soak stops waiting for the server to close hostile connections: unset
/// while the sessions run.
type Stop = Rc<RefCell<Option<Duration>>>;

/// Reads (and discards) until the peer closes (EOF or reset: `true`) or the stop time passes
/// (`false`).
async fn wait_close(net: &NetRef, io: &mut Stream, stop: &Stop) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        let give_up = *stop.borrow();
        if give_up.is_some_and(|g| net.now() >= g) {
            return false;
        }
        let until = give_up.unwrap_or(net.now() + Duration::from_millis(200));
        tokio::select! {
            biased;
            r = io.read(&mut buf) => match r {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            },
            () = net.sleep_until(until) => {}
        }
    }
}

/// A request head dribbled one byte at a time until `stop` is set (it never ends); then
/// waits for the server to close until `give_up`. Returns the connection if the server did
/// not close it (the caller closes it after measuring).
async fn slowloris(net: NetRef, i: u64, stop: Stop, tally: Shared) -> Option<Stream> {
    let Ok(mut io) = net.connect(WS_HOST, 80).await else {
        tally.borrow_mut().slowloris_refused += 1;
        return None;
    };
    let head = format!("GET /echo HTTP/1.1\r\nHost: localhost\r\nX-Slow-{i}: ");
    let mut bytes = head.bytes().chain(std::iter::repeat(b'a'));
    let mut buf = [0u8; 1024];
    loop {
        if stop.borrow().is_some() {
            if wait_close(&net, &mut io, &stop).await {
                tally.borrow_mut().slowloris_closed += 1;
                return None;
            }
            return Some(io);
        }
        let next = net.now() + Duration::from_millis(100 + i % 100);
        tokio::select! {
            biased;
            r = io.read(&mut buf) => match r {
                Ok(0) | Err(_) => {
                    tally.borrow_mut().slowloris_closed += 1;
                    return None;
                }
                Ok(_) => continue,
            },
            () = net.sleep_until(next) => {}
        }
        let byte = [bytes.next().unwrap_or(b'a')];
        if io.write_all(&byte).await.is_err() {
            tally.borrow_mut().slowloris_closed += 1;
            return None;
        }
    }
}

/// A client that half-closes early, in one of four places; then waits for the server to
/// close, until the stop time. Returns the connection if the server did not close it.
async fn half_close(net: NetRef, i: u64, stop: Stop, tally: Shared) -> Option<Stream> {
    let Ok(mut io) = net.connect(WS_HOST, 80).await else {
        tally.borrow_mut().half_refused += 1;
        return None;
    };
    let upgrade = "GET /echo HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let written: &[u8] = match i % 4 {
        0 => b"",
        1 => &upgrade.as_bytes()[..30],
        _ => upgrade.as_bytes(),
    };
    let _ = io.write_all(written).await;
    if i % 4 == 3 {
        // After the 101, one masked message, then the FIN.
        let mut head = Vec::new();
        let mut buf = [0u8; 512];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match io.read(&mut buf).await {
                Ok(n) if n > 0 => head.extend_from_slice(&buf[..n]),
                _ => break,
            }
        }
        let frame = gauntlet_proxies::ws_frames::encode(
            gauntlet_proxies::ws_frames::opcode::TEXT,
            b"half",
            Some([1, 2, 3, 4]),
        );
        let _ = io.write_all(&frame).await;
    }
    let _ = io.shutdown().await;
    if wait_close(&net, &mut io, &stop).await {
        tally.borrow_mut().half_closed += 1;
        None
    } else {
        Some(io)
    }
}

/// Waits (up to the grace) until every process's descriptors are within 10% of its baseline.
async fn settle(net: &NetRef, pids: &[u32], baseline: &[Usage], until: Duration) {
    while net.now() < until {
        let now: Vec<Usage> = pids.iter().map(|p| usage(*p)).collect();
        if now
            .iter()
            .zip(baseline)
            .all(|(n, b)| within(b.fds as u64, n.fds as u64))
        {
            return;
        }
        net.sleep_until(net.now() + Duration::from_millis(100))
            .await;
    }
}

/// Descriptors once they stop changing (at most a few seconds).
async fn steady(net: &NetRef, pids: &[u32]) -> Vec<Usage> {
    let mut last: Vec<Usage> = pids.iter().map(|p| usage(*p)).collect();
    for _ in 0..50 {
        net.sleep_until(net.now() + Duration::from_millis(100))
            .await;
        let now: Vec<Usage> = pids.iter().map(|p| usage(*p)).collect();
        let same = now.iter().zip(&last).all(|(a, b)| a.fds == b.fds);
        last = now;
        if same {
            break;
        }
    }
    last
}

/// One round of the concurrent phase: `o.concurrent` sessions of `o.messages` messages at once,
/// alongside the slowloris and half-closing clients. When the sessions are done the slowloris
/// connections stop dribbling and the hostile connections wait `grace` for the server to close
/// them; returns those it did not close (still open). `count`: the sessions count toward the
/// soak's figures.
async fn round(
    net: &NetRef,
    o: &Options,
    tls: &Arc<rustls::ClientConfig>,
    tally: &Shared,
    count: bool,
    grace: Duration,
) -> (Vec<Stream>, Duration) {
    let stop: Stop = Rc::default();
    let lingering: Rc<RefCell<Vec<Stream>>> = Rc::default();
    let mut hostile = Vec::new();
    for i in 0..o.slowloris {
        let (n, s, t, l) = (net.clone(), stop.clone(), tally.clone(), lingering.clone());
        hostile.push(
            async move {
                if let Some(io) = slowloris(n, i, s, t).await {
                    l.borrow_mut().push(io);
                }
            }
            .boxed_local(),
        );
    }
    for i in 0..o.half_close {
        let (n, s, t, l) = (net.clone(), stop.clone(), tally.clone(), lingering.clone());
        hostile.push(
            async move {
                if let Some(io) = half_close(n, i, s, t).await {
                    l.borrow_mut().push(io);
                }
            }
            .boxed_local(),
        );
    }
    let (st, n2) = (stop.clone(), net.clone());
    let concurrent = (0..o.concurrent)
        .map(|i| session(net.clone(), plan(i, o.messages, tls), tally.clone(), count));
    let sessions = async move {
        futures_util::future::join_all(concurrent).await;
        *st.borrow_mut() = Some(n2.now() + grace);
    }
    .boxed_local();
    futures_util::future::join(sessions, futures_util::future::join_all(hostile)).await;
    let until = stop.borrow().unwrap_or(net.now());
    let left = std::mem::take(&mut *lingering.borrow_mut());
    (left, until)
}

async fn phases(
    net: NetRef,
    o: Options,
    tls: Arc<rustls::ClientConfig>,
    pids: Vec<u32>,
    tally: Shared,
) {
    let clock = Clock::start();
    let mut last = clock.elapsed();
    let mut tick = |what: &str, done: u64, of: u64| {
        if clock.elapsed() - last >= Duration::from_secs(5) {
            last = clock.elapsed();
            eprintln!(
                "soak: {what} {done}/{of}, {:.0} s",
                clock.elapsed().as_secs_f64()
            );
        }
    };
    // Warm-up: sequential sessions, then two rounds of the concurrent phase (hostile clients
    // included, whatever the server leaves open closed by the client at once), so that the
    // baseline is the working set at that load (buffers grown, the allocator's pools filled):
    // the measured round repeats it, and a leak grows across rounds where a working set does
    // not. Two, because the allocator keeps freed memory resident and a second peak lands
    // differently from the first: 1,000 concurrent echo sessions through `gauntlet proxy
    // --model pass` to `gauntlet serve`, six rounds in a row, left the proxy at 21 MiB after
    // each, and the server at 31, 37, 38, 38, 39 and 39 MiB.
    for i in 0..o.warmup {
        session(
            net.clone(),
            plan(i, o.session_messages, &tls),
            tally.clone(),
            false,
        )
        .await;
    }
    for _ in 0..2 {
        let (left, _) = round(&net, &o, &tls, &tally, false, Duration::ZERO).await;
        drop(left);
    }
    {
        let mut t = tally.borrow_mut();
        (
            t.slowloris_closed,
            t.slowloris_refused,
            t.half_closed,
            t.half_refused,
        ) = (0, 0, 0, 0);
    }
    let baseline = steady(&net, &pids).await;
    eprintln!("soak: warm-up done, baseline {baseline:?}");
    tally.borrow_mut().baseline = baseline.clone();

    // Sequential sessions.
    for i in 0..o.sessions {
        session(
            net.clone(),
            plan(i, o.session_messages, &tls),
            tally.clone(),
            true,
        )
        .await;
        tick("sequential sessions", i + 1, o.sessions);
    }

    // The measured round. Every hostile connection is closed by its end, or the grace has
    // passed; the descriptors get what is left of the grace to come back.
    let (left, until) = round(&net, &o, &tls, &tally, true, o.grace).await;
    settle(&net, &pids, &baseline, until).await;
    let after = steady(&net, &pids).await;
    tally.borrow_mut().after = after;
    drop(left);
    let closed = steady(&net, &pids).await;
    tally.borrow_mut().after_client_closed = closed;
}
