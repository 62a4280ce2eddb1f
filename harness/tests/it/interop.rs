//! Interoperation with WebSocket stacks written elsewhere: Python's `websockets` and
//! `websocket-client` (versions pinned in `harness/tests/python/requirements.txt`) against
//! `gauntlet serve`, through `gauntlet proxy` and a real nginx, and the reference client
//! against a `websockets` echo server.
//!
//! The Python scripts are in `harness/tests/python/`; they run in the virtualenv at
//! `target/gauntlet/py` (or the interpreter `GAUNTLET_PYTHON` names). Without it, every test
//! here fails with the commands that create it. Everything binds and connects on 127.0.0.1;
//! every child is killed by its PID when its guard is dropped; every wait has a timeout, a
//! safety net: nothing here measures time.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;
use std::time::Duration;

use futures_util::FutureExt;
use gauntlet::endpoints::client::{self, Report};
use gauntlet::engine::live::Live;
use gauntlet::engine::{Engine, LinkConfig, NetRef, Topology};
use gauntlet::real::product::{Product, StartOptions};
use gauntlet::scenario::{self, Scheme, Strategy, Workload, WorkloadKind};
use gauntlet::verdict::outcome::Outcome;
use gauntlet::verdict::transcript::Transcript;

use crate::process::{Exit, Process};
use crate::proxy::Proxy;

/// The environment variable naming another Python interpreter.
const PYTHON_VAR: &str = "GAUNTLET_PYTHON";

/// Where `.ci/run` (and the README's set-up) puts the virtualenv, from the workspace root.
const VENV: &str = "target/gauntlet/py";

/// How many text messages, and as many binary ones, each Python client echoes.
const MESSAGES: &str = "5";

/// The Python interpreter with every stack installed; a test fails, saying how to install
/// them, when there is none.
pub(crate) fn python() -> PathBuf {
    let python = std::env::var_os(PYTHON_VAR)
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::root().join(VENV).join("bin/python"));
    let mut probe = Command::new(&python);
    probe.args(["-c", "import websockets, websocket, engineio, requests"]);
    let ready =
        python.exists() && Process::start("the Python probe", &mut probe).wait().code == Some(0);
    assert!(
        ready,
        "no Python with websockets, websocket-client, python-engineio and requests at {}: from \
         the workspace root, run\n  \
         python3 -m venv {VENV} && {VENV}/bin/pip install -r harness/tests/python/requirements.txt\n\
         (on Debian, `apt-get install -y python3-venv` first), or set {PYTHON_VAR} to an \
         interpreter that has them",
        python.display()
    );
    python
}

/// `python harness/tests/python/SCRIPT ARGS`, with no proxy settings from the environment.
pub(crate) fn script(name: &str, args: &[&str]) -> Command {
    let mut command = Command::new(python());
    command
        .arg(crate::root().join("harness/tests/python").join(name))
        .args(args);
    crate::process::without_proxy_settings(&mut command);
    command
}

/// A fresh folder under `target/gauntlet/interop/` for one test's files, named after the test
/// and this process, so that two runs of the tests at once (two `cargo test`s, or two
/// checkouts sharing a target directory) never read each other's files; removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Self {
        let name = format!("{test}.{}", std::process::id());
        let dir = crate::root().join("target/gauntlet/interop").join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a scratch folder");
        Self(dir)
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `echo_client.py` with `library` against `url` (trusting the CA in `ca` for wss).
fn echo_client(library: &str, url: &str, ca: Option<&Path>) -> Exit {
    let mut args = vec!["--library", library, "--count", MESSAGES, url];
    let ca = ca.map(|p| p.display().to_string());
    if let Some(ca) = &ca {
        args.extend(["--ca", ca]);
    }
    let mut exit = Process::start(library, &mut script("echo_client.py", &args)).wait();
    eprintln!("{library} {url}:\n{}{}", exit.stdout, exit.stderr);
    exit.stderr = exit.stderr.trim().to_string();
    exit
}

/// Asserts the client echoed every message and closed cleanly.
fn assert_echoed(exit: &Exit, library: &str) {
    assert_eq!(exit.code, Some(0), "{}\n{}", exit.stdout, exit.stderr);
    assert!(
        exit.stdout.starts_with(&format!("{library} ")),
        "{}",
        exit.stdout
    );
    assert!(
        exit.stdout.contains("close 1000: clean\n"),
        "{}",
        exit.stdout
    );
    assert!(
        exit.stdout
            .contains("echoed 10 of 10 messages (5 text, 5 binary)"),
        "{}",
        exit.stdout
    );
}

/// A running `gauntlet serve`, killed by its PID when dropped.
pub(crate) struct Serve {
    process: Process,
    pub(crate) ws: SocketAddr,
    /// The wss address and the CA file, when asked for.
    wss: Option<(SocketAddr, PathBuf)>,
}

impl Serve {
    /// `gauntlet serve` on an ephemeral port, with wss too (its CA written into `tls_dir`)
    /// when given a folder.
    pub(crate) fn start(tls_dir: Option<&Path>) -> Self {
        Self::start_with(tls_dir, &[])
    }

    /// [`Serve::start`] with more flags.
    pub(crate) fn start_with(tls_dir: Option<&Path>, flags: &[&str]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_gauntlet"));
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(flags);
        let ca = tls_dir.map(|dir| dir.join("ca.pem"));
        if let Some(ca) = &ca {
            command
                .args(["--tls-listen", "127.0.0.1:0", "--ca-out"])
                .arg(ca);
        }
        let mut process = Process::start("gauntlet serve", &mut command);
        let ws = process.address("listening on ");
        let wss = ca.map(|ca| (process.address("listening (tls) on "), ca));
        Self { process, ws, wss }
    }

    /// Sends SIGTERM; asserts the exit is 0 and returns stderr, the server's log.
    pub(crate) fn stop(mut self) -> String {
        let exit = self.process.terminate();
        assert_eq!(exit.code, Some(0), "{}", exit.stderr);
        exit.stderr
    }
}

impl Drop for Serve {
    /// A test failing with the server running shows the server's log.
    fn drop(&mut self) {
        if std::thread::panicking() {
            let exit = self.process.kill();
            eprintln!("gauntlet serve's log:\n{}", exit.stderr);
        }
    }
}

#[test]
fn python_websockets_echoes_through_gauntlet_proxy_pass_to_gauntlet_serve() {
    let serve = Serve::start(None);
    let proxy = Proxy::start(&["--model", "pass"], serve.ws);
    let exit = echo_client("websockets", &format!("ws://{}/echo", proxy.addr), None);
    assert_echoed(&exit, "websockets");
    let (code, proxy_log) = proxy.terminate();
    assert_eq!(code, Some(0), "{proxy_log}");
    assert!(proxy_log.contains("#1 upstream connected"), "{proxy_log}");
    let log = serve.stop();
    assert!(log.contains("request GET /echo HTTP/1.1"), "{log}");
    assert!(log.contains("-> 101 Switching Protocols"), "{log}");
    assert!(log.contains("close 1000 received, replying"), "{log}");
}

#[test]
fn python_websockets_trusts_the_ca_gauntlet_serve_writes_and_echoes_over_wss() {
    let dir = Scratch::new("wss");
    let serve = Serve::start(Some(&dir));
    let (wss, ca) = serve.wss.clone().expect("a wss listener");
    let exit = echo_client("websockets", &format!("wss://{wss}/echo"), Some(&ca));
    assert_echoed(&exit, "websockets");
    let log = serve.stop();
    assert!(log.contains("-> 101 Switching Protocols"), "{log}");
}

#[test]
fn websocket_client_echoes_through_nginx_with_upgrade_lines_to_gauntlet_serve() {
    let dir = Scratch::new("nginx");
    let serve = Serve::start(None);
    let ca = gauntlet::tls::Ca::generate("interop test CA").expect("a CA");
    let (cert, key) = ca
        .issue_pem(&["127.0.0.1".to_string()])
        .expect("a certificate");
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.root_pem()).expect("the CA file");
    let options = StartOptions::new()
        .upstream(serve.ws)
        .value("read_timeout", "3600s")
        .tls(&cert, &key)
        .expect("a free port");
    let template = crate::root().join("scenarios/live/templates/nginx-with-upgrade-lines.conf");
    let nginx = Product::Nginx
        .start(&template, &options)
        .unwrap_or_else(|e| panic!("{e}"));
    let tls_port = nginx.tls_addr().expect("a TLS listener").port();
    let urls = [
        (format!("ws://{}/echo", nginx.addr()), None),
        (
            format!("wss://127.0.0.1:{tls_port}/echo"),
            Some(ca_file.as_path()),
        ),
    ];
    for (url, ca) in urls {
        let exit = echo_client("websocket-client", &url, ca);
        assert_echoed(&exit, "websocket-client");
    }
    nginx.stop().expect("nginx stops");
    let log = serve.stop();
    assert_eq!(
        log.matches("-> 101 Switching Protocols").count(),
        2,
        "{log}"
    );
}

#[test]
fn a_python_client_through_a_stripping_transparent_proxy_gets_a_non_101_status() {
    let serve = Serve::start(None);
    let proxy = Proxy::start(
        &["--model", "transparent-proxy", "--param", "behaviour=strip"],
        serve.ws,
    );
    let exit = echo_client("websockets", &format!("ws://{}/echo", proxy.addr), None);
    assert_eq!(exit.code, Some(3), "{}\n{}", exit.stdout, exit.stderr);
    // The server saw a plain GET and answered it as real servers do.
    assert!(
        exit.stdout.contains("handshake rejected: HTTP 426\n"),
        "{}",
        exit.stdout
    );
    let (_, proxy_log) = proxy.terminate();
    assert!(
        proxy_log.contains("transparent-proxy behaviour=strip"),
        "{proxy_log}"
    );
    let log = serve.stop();
    assert!(log.contains("Upgrade: -, Connection: -"), "{log}");
}

/// Runs the reference client, with `direct.toml`'s plan (ws, seed 1) and `binary` messages
/// or not, on the live engine against a server outside the run at `server`.
fn reference_client_against(server: SocketAddr, binary: bool) -> (Report, String) {
    let mut workload = Workload::new(WorkloadKind::Echo);
    workload.binary = binary;
    client_against(server, workload, None)
}

/// Runs the reference client with `direct.toml`'s plan (ws, seed 1) and `workload`, as
/// `strategy` says (or as a scheme's run), on the live engine against a server outside the
/// run at `server`: its report and transcript.
pub fn client_against(
    server: SocketAddr,
    workload: Workload,
    strategy: Option<&Strategy>,
) -> (Report, String) {
    let s = scenario::load(&crate::root().join("scenarios/baseline/direct.toml"))
        .expect("a valid scenario");
    let (tls, _) = gauntlet::tls::Tls::generate(&["server".to_string()]).expect("TLS material");
    let plan = client::Plan {
        scheme: Scheme::Ws,
        host: "server".to_string(),
        handshake_timeout: s.client.handshake_timeout,
        workload,
        seed: 1,
        tls: tls.client,
        ping_interval: s.client.ping_interval,
        proxy: None,
        mask: s.client.mask,
        path_prefix: s.client.path_prefix.clone(),
        subprotocols: Vec::new(),
        wire: Default::default(),
        browser: Default::default(),
        handshake: Default::default(),
        request: Default::default(),
        stop_proxy: None,
    };
    let mut case = s.clone();
    case.client.workload = plan.workload.clone();
    case.strategy = strategy.cloned();
    let mut topology = Topology::new(
        LinkConfig::new(Duration::ZERO, Duration::ZERO),
        case.time_limit(),
    );
    // The server outside the run stands for host `server`, whatever port the client dials.
    topology.host(
        "server",
        gauntlet::real::standing::published(0, server, None),
    );
    let transcript = Transcript::default();
    let report: Rc<RefCell<Option<Report>>> = Rc::default();
    let (out, t) = (report.clone(), transcript.clone());
    let strategy = strategy.cloned();
    topology.client(
        "client",
        Box::new(move |net: NetRef| {
            async move {
                *out.borrow_mut() = Some(match &strategy {
                    None => client::run(net, plan, t).await,
                    Some(st) => gauntlet::endpoints::strategy::run(net, plan, st, t).await,
                });
                Ok(())
            }
            .boxed_local()
        }),
    );
    Live.run(topology, 1).expect("the run completes");
    let report = report.take().expect("the client reported");
    (
        report,
        gauntlet::verdict::transcript::render(&transcript.entries()),
    )
}

#[test]
fn the_reference_client_delivers_against_a_python_websockets_echo_server() {
    let mut server = Process::start("echo_server.py", &mut script("echo_server.py", &[]));
    let addr = server.address("listening on ");
    for binary in [false, true] {
        let (report, transcript) = reference_client_against(addr, binary);
        assert_eq!(
            report.outcome,
            Outcome::Delivered,
            "binary {binary}: {}\n{transcript}",
            report.detail
        );
        assert_eq!((report.sent, report.received), (5, 5), "{}", report.detail);
        assert!(report.detail.contains("5/5 echoed"), "{}", report.detail);
        eprintln!("binary {binary}: {}", report.detail);
    }
}

#[test]
fn gauntlet_serve_refuses_bad_flags_and_a_taken_address_with_exit_2() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let taken = taken.local_addr().expect("an address").to_string();
    let cases: [(Vec<&str>, &str); 6] = [
        (vec!["--listen", "nowhere"], "invalid value 'nowhere'"),
        (
            vec!["--listen", "127.0.0.1:0", "--tls-version", "1.2"],
            "--tls-listen <ADDR>",
        ),
        (
            vec![
                "--listen",
                "127.0.0.1:0",
                "--tls-listen",
                "127.0.0.1:0",
                "--ca-out",
                "ca.pem",
                "--tls-version",
                "1.1",
            ],
            "`1.1` is not a TLS version: expected any, 1.2 or 1.3",
        ),
        (
            vec!["--listen", "127.0.0.1:0", "--ca-out", "ca.pem"],
            "--tls-listen <ADDR>",
        ),
        (
            vec!["--listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0"],
            "--ca-out <FILE>",
        ),
        (vec!["--listen", &taken], "Address already in use"),
    ];
    for (args, says) in cases {
        let mut command = Command::new(env!("CARGO_BIN_EXE_gauntlet"));
        command.arg("serve").args(&args);
        let exit = Process::start("gauntlet serve", &mut command).wait();
        let text = format!("{}{}", exit.stdout, exit.stderr);
        assert_eq!(exit.code, Some(2), "{args:?}: {text}");
        assert!(text.contains(says), "{args:?}: {text}");
    }
}
