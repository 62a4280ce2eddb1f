//! Real proxies, started from `scenarios/live/templates/` in front of a WebSocket echo server
//! on 127.0.0.1: what each does with an upgrade (reverse proxies) or a CONNECT and an
//! absolute-form upgrade (forward proxies), and that every process started is stopped; and
//! nginx's `proxy_pass https://` in front of `gauntlet serve`, by the TLS versions it accepts.
//!
//! A product that is not installed fails its test with the `apt-get install` line to run.
//! Every await has a timeout, a safety net against a hang; nothing here measures time. The
//! runtimes have worker threads, so the upstream keeps serving while a test thread blocks in
//! a product's stop (Apache, for one, waits for a tunnel's backend to close before exiting).

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use gauntlet::real::product::{Product, ProductError, Running, StartOptions, is_alive};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::process::{Exit, Process};

/// The safety net on every await.
const STEP: Duration = Duration::from_secs(15);

/// Set in a re-run of this test binary to make one of the child tests below do its part.
const CHILD_VAR: &str = "GAUNTLET_PRODUCTS_CHILD";

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {STEP:?}"))
}

fn template(name: &str) -> PathBuf {
    crate::root().join("scenarios/live/templates").join(name)
}

/// Starts `product`; any error (not installed: the apt-get line) fails the test with it.
fn start(product: Product, name: &str, options: StartOptions) -> Running {
    product
        .start(&template(name), &with_tls(options))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// `options` with a TLS listener's placeholders filled (templates that terminate TLS need
/// them; the others ignore them), from a fresh CA.
fn with_tls(options: StartOptions) -> StartOptions {
    let ca = gauntlet::tls::Ca::generate("products test CA").expect("a CA");
    let (cert, key) = ca
        .issue_pem(&["127.0.0.1".to_string()])
        .expect("a certificate");
    options.tls(&cert, &key).expect("a free port")
}

/// A WebSocket echo server on 127.0.0.1 that records every request head it receives and
/// answers a request that is not a WebSocket upgrade with 426, as the reference server does.
struct Upstream {
    addr: SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Upstream {
    async fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = heads.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, seen.clone()));
            }
        });
        Upstream { addr, heads }
    }

    fn heads(&self) -> Vec<String> {
        let heads = self.heads.lock().unwrap().clone();
        eprintln!("upstream {} received {heads:#?}", self.addr);
        heads
    }

    /// The one request head it received.
    fn only_head(&self) -> String {
        let heads = self.heads();
        assert_eq!(heads.len(), 1, "the upstream received {heads:?}");
        heads[0].clone()
    }
}

async fn serve(mut stream: TcpStream, heads: Arc<Mutex<Vec<String>>>) {
    let Ok((head, rest)) = read_head(&mut stream).await else {
        return;
    };
    heads.lock().unwrap().push(head.clone());
    let upgrade = header(&head, "upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
        && header(&head, "connection").is_some_and(|v| v.to_ascii_lowercase().contains("upgrade"));
    let key = header(&head, "sec-websocket-key").filter(|_| upgrade);
    let Some(key) = key else {
        let answer = "HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\n\
                      Content-Length: 0\r\nConnection: close\r\n\r\n";
        let _ = stream.write_all(answer.as_bytes()).await;
        return;
    };
    let answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        derive_accept_key(key.as_bytes())
    );
    if stream.write_all(answer.as_bytes()).await.is_err() {
        return;
    }
    let mut ws = WebSocketStream::from_partially_read(stream, rest, Role::Server, None).await;
    while let Some(Ok(message)) = ws.next().await {
        if (message.is_text() || message.is_binary()) && ws.send(message).await.is_err() {
            return;
        }
    }
}

/// Reads an HTTP head (through the blank line) a byte at a time, so nothing after it is
/// consumed; returns it and any bytes read past it (none).
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> std::io::Result<(String, Vec<u8>)> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).await?;
        head.push(byte[0]);
    }
    Ok((String::from_utf8_lossy(&head).into_owned(), Vec::new()))
}

/// The value of header `name` (case-insensitive) in `head`.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The status code of a response head.
fn status(head: &str) -> u16 {
    head.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {head:?}"))
}

/// What a WebSocket client got.
#[derive(Debug, PartialEq)]
pub(crate) enum Handshake {
    /// 101, and this message came back.
    Echoed(String),
    /// The handshake was answered with this status.
    Refused(u16),
}

/// A WebSocket handshake for `url` over `stream`, then one echo round trip and a close.
async fn ws_echo<S: AsyncRead + AsyncWrite + Unpin>(stream: S, url: &str) -> Handshake {
    let mut ws = match within("handshake", tokio_tungstenite::client_async(url, stream)).await {
        Ok((ws, _)) => ws,
        Err(WsError::Http(response)) => {
            eprintln!("{url}: {response:?}");
            return Handshake::Refused(response.status().as_u16());
        }
        Err(e) => panic!("handshake for {url} failed: {e}"),
    };
    let text = format!("hello through {url}");
    within("send", ws.send(Message::text(text.clone())))
        .await
        .unwrap();
    let echoed = within("echo", ws.next()).await;
    within("close", async {
        let _ = ws.close(None).await;
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
    match echoed {
        Some(Ok(Message::Text(echoed))) => Handshake::Echoed(echoed.to_string()),
        other => panic!("no echo through {url}: {other:?}"),
    }
}

/// A WebSocket echo straight through a reverse proxy at `proxy`, to `path`.
async fn echo_through(proxy: SocketAddr, path: &str) -> Handshake {
    let stream = within("connect", TcpStream::connect(proxy)).await.unwrap();
    ws_echo(stream, &format!("ws://{proxy}{path}")).await
}

/// `CONNECT target` through the forward proxy at `proxy`: the status, and the stream.
async fn connect_via(proxy: SocketAddr, target: SocketAddr) -> (u16, TcpStream) {
    let mut stream = within("connect", TcpStream::connect(proxy)).await.unwrap();
    let request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
    within("CONNECT", stream.write_all(request.as_bytes()))
        .await
        .unwrap();
    let (head, _) = within("CONNECT answer", read_head(&mut stream))
        .await
        .unwrap();
    eprintln!("CONNECT {target} via {proxy}: {head}");
    (status(&head), stream)
}

/// An absolute-form upgrade request for `target` to the forward proxy at `proxy` (what a
/// client sends for ws:// through a proxy when it does not use CONNECT): the answer's status.
async fn absolute_upgrade_via(proxy: SocketAddr, target: SocketAddr) -> u16 {
    let mut stream = within("connect", TcpStream::connect(proxy)).await.unwrap();
    let request = format!(
        "GET http://{target}/echo HTTP/1.1\r\nHost: {target}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    within("GET", stream.write_all(request.as_bytes()))
        .await
        .unwrap();
    let (head, _) = within("GET answer", read_head(&mut stream)).await.unwrap();
    eprintln!("GET http://{target}/echo via {proxy}: {head}");
    status(&head)
}

fn request_line(head: &str) -> &str {
    head.lines().next().unwrap_or_default()
}

/// A product started from a template in front of a fresh upstream. While a test panics, the
/// product's drop prints its logs.
pub(crate) struct Trial {
    upstream: Upstream,
    product: Running,
}

impl Trial {
    /// Starts `product` from template `name`, its options made from the upstream's address.
    async fn start(
        product: Product,
        name: &str,
        options: impl FnOnce(SocketAddr) -> StartOptions,
    ) -> Trial {
        let upstream = Upstream::start().await;
        let product = start(product, name, options(upstream.addr));
        Trial { upstream, product }
    }

    /// A reverse proxy in front of the upstream, with these extra values.
    pub(crate) async fn reverse(product: Product, name: &str, values: &[(&str, &str)]) -> Trial {
        Trial::start(product, name, |upstream| {
            let options = StartOptions::new().upstream(upstream);
            values.iter().fold(options, |o, (k, v)| o.value(*k, *v))
        })
        .await
    }

    /// A WebSocket echo through the reverse proxy, to `path`.
    pub(crate) async fn echo(&self, path: &str) -> Handshake {
        echo_through(self.product.addr(), path).await
    }

    /// CONNECT to the upstream through the forward proxy, then, if it answers 200, a
    /// WebSocket echo through the tunnel: the CONNECT's status and what the echo got.
    async fn tunnel(&self) -> (u16, Option<Handshake>) {
        let target = self.upstream.addr;
        let (code, stream) = connect_via(self.product.addr(), target).await;
        if code != 200 {
            return (code, None);
        }
        (
            code,
            Some(ws_echo(stream, &format!("ws://{target}/echo")).await),
        )
    }

    /// An absolute-form upgrade request for the upstream through the forward proxy: the
    /// answer's status.
    async fn absolute_upgrade(&self) -> u16 {
        absolute_upgrade_via(self.product.addr(), self.upstream.addr).await
    }

    /// Asserts the upstream received exactly one request, with this request line and without
    /// `Upgrade`, and returns it.
    fn assert_upgrade_dropped(&self, line: &str) -> String {
        let head = self.upstream.only_head();
        assert_eq!(request_line(&head), line, "{head}");
        assert_eq!(header(&head, "upgrade"), None, "{head}");
        head
    }
}

pub(crate) fn assert_echoed(got: Option<Handshake>) {
    assert!(matches!(got, Some(Handshake::Echoed(_))), "{got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_without_upgrade_lines_sends_an_http10_get_without_upgrade() {
    let trial = Trial::reverse(Product::Nginx, "nginx-without-upgrade-lines.conf", &[]).await;
    assert_eq!(trial.echo("/echo").await, Handshake::Refused(426));
    let head = trial.assert_upgrade_dropped("GET /echo HTTP/1.0");
    assert_eq!(header(&head, "connection"), Some("close"), "{head}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_with_http11_only_still_drops_upgrade() {
    let name = "nginx-http11-without-upgrade-headers.conf";
    let trial = Trial::reverse(Product::Nginx, name, &[]).await;
    assert_eq!(trial.echo("/echo").await, Handshake::Refused(426));
    trial.assert_upgrade_dropped("GET /echo HTTP/1.1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_with_upgrade_lines_passes_the_upgrade_and_echoes() {
    let values = [("read_timeout", "3600s")];
    let trial = Trial::reverse(Product::Nginx, "nginx-with-upgrade-lines.conf", &values).await;
    assert_echoed(Some(trial.echo("/echo").await));
    let head = trial.upstream.only_head();
    assert_eq!(request_line(&head), "GET /echo HTTP/1.1", "{head}");
    assert_eq!(header(&head, "upgrade"), Some("websocket"), "{head}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_with_timeout_tunnel_passes_the_upgrade_and_echoes() {
    let values = [("tunnel_timeout", "3600s")];
    let trial = Trial::reverse(Product::Haproxy, "haproxy-timeout-tunnel.cfg", &values).await;
    assert_echoed(Some(trial.echo("/echo").await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_without_timeout_tunnel_passes_the_upgrade_too() {
    let name = "haproxy-without-timeout-tunnel.cfg";
    let trial = Trial::reverse(Product::Haproxy, name, &[]).await;
    assert_echoed(Some(trial.echo("/echo").await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_acls_send_upgrades_to_the_ws_backend_and_plain_gets_to_the_web_backend() {
    let ws = Upstream::start().await;
    let ws_addr = ws.addr;
    let web = Trial::start(Product::Haproxy, "haproxy-acl-ws-backend.cfg", |web| {
        StartOptions::new()
            .upstream(web)
            .upstream(ws_addr)
            .value("tunnel_timeout", "3600s")
    })
    .await;
    assert_echoed(Some(web.echo("/echo").await));
    assert_eq!(
        web.upstream.heads().len(),
        0,
        "the web backend saw the upgrade"
    );

    let mut stream = within("connect", TcpStream::connect(web.product.addr()))
        .await
        .unwrap();
    let get = "GET /page HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    within("GET", stream.write_all(get.as_bytes()))
        .await
        .unwrap();
    let (head, _) = within("GET answer", read_head(&mut stream)).await.unwrap();
    assert_eq!(status(&head), 426, "{head}");
    assert_eq!(
        request_line(&web.upstream.only_head()),
        "GET /page HTTP/1.1"
    );
    assert_eq!(ws.heads().len(), 1, "the ws backend saw the plain GET");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apache_wstunnel_passes_the_upgrade_and_echoes() {
    let trial = Trial::reverse(Product::Apache, "apache-wstunnel.conf", &[]).await;
    assert_echoed(Some(trial.echo("/ws/echo").await));
    let head = trial.upstream.only_head();
    assert_eq!(request_line(&head), "GET /echo HTTP/1.1", "{head}");
}

/// The TLS port chosen for Apache is taken by another listener before Apache starts: Apache
/// binds its plain port, fails on the TLS one ("Address already in use") and exits within
/// milliseconds. A start that called it ready when the plain port accepted handed out a
/// product that was gone; this one sees that the port's listener is not Apache's, lets
/// Apache exit, and starts it again on ports chosen again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apache_whose_tls_port_was_taken_starts_again_on_other_ports() {
    let upstream = Upstream::start().await;
    let options = with_tls(StartOptions::new().upstream(upstream.addr));
    let taken = options.tls_port().expect("a TLS port");
    let squatter = std::net::TcpListener::bind(("127.0.0.1", taken)).expect("the TLS port");
    let apache = Product::Apache
        .start(&template("apache-wstunnel.conf"), &options)
        .unwrap_or_else(|e| panic!("{e}"));
    let tls = apache.tls_addr().expect("a TLS listener");
    assert_ne!(
        tls.port(),
        taken,
        "Apache cannot listen where another socket does"
    );
    assert_eq!(
        std::net::TcpStream::connect(apache.addr())
            .map(|_| ())
            .map_err(|e| e.kind()),
        Ok(())
    );
    assert_echoed(Some(echo_through(apache.addr(), "/ws/echo").await));
    drop(squatter);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apache_proxypass_http_strips_upgrade() {
    let trial = Trial::reverse(Product::Apache, "apache-proxypass-http.conf", &[]).await;
    assert_eq!(trial.echo("/ws/echo").await, Handshake::Refused(426));
    trial.assert_upgrade_dropped("GET /echo HTTP/1.1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn squid_default_refuses_connect_to_a_port_other_than_443() {
    let trial = Trial::start(Product::Squid, "squid-default.conf", |_| {
        StartOptions::new()
    })
    .await;
    assert_eq!(trial.tunnel().await, (403, None));
    assert_eq!(trial.upstream.heads(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn squid_default_forwards_an_absolute_form_upgrade_without_upgrade() {
    let trial = Trial::start(Product::Squid, "squid-default.conf", |_| {
        StartOptions::new()
    })
    .await;
    assert_eq!(trial.absolute_upgrade().await, 426);
    trial.assert_upgrade_dropped("GET /echo HTTP/1.1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn squid_tunnels_connect_to_the_port_its_ssl_ports_acl_names() {
    let trial = Trial::start(Product::Squid, "squid-connect-port.conf", |upstream| {
        StartOptions::new().value("server_wss_port", upstream.port().to_string())
    })
    .await;
    let (code, got) = trial.tunnel().await;
    assert_eq!(code, 200);
    assert_echoed(got);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tinyproxy_debian_default_tunnels_connect_to_any_port() {
    let name = "tinyproxy-connect.conf";
    let trial = Trial::start(Product::Tinyproxy, name, |_| StartOptions::new()).await;
    let (code, got) = trial.tunnel().await;
    assert_eq!(code, 200);
    assert_echoed(got);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tinyproxy_with_connect_ports_refuses_other_ports() {
    let name = "tinyproxy-connect-443.conf";
    let trial = Trial::start(Product::Tinyproxy, name, |_| StartOptions::new()).await;
    assert_eq!(trial.tunnel().await, (403, None));
    assert_eq!(trial.upstream.heads(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tinyproxy_forwards_an_absolute_form_upgrade_without_upgrade() {
    let name = "tinyproxy-connect.conf";
    let trial = Trial::start(Product::Tinyproxy, name, |_| StartOptions::new()).await;
    assert_eq!(trial.absolute_upgrade().await, 426);
    let head = trial.assert_upgrade_dropped("GET /echo HTTP/1.1");
    assert_eq!(header(&head, "connection"), Some("close"), "{head}");
}

/// `gauntlet serve` with wss on an ephemeral port (its CA file under
/// `target/gauntlet/products/TEST/`), `args` added: the process, killed by its PID when
/// dropped, and the wss address.
fn gauntlet_serve_wss(test: &str, args: &[&str]) -> (Process, SocketAddr) {
    let dir = crate::root().join("target/gauntlet/products").join(test);
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_gauntlet"));
    command
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-listen",
            "127.0.0.1:0",
        ])
        .arg("--ca-out")
        .arg(dir.join("ca.pem"))
        .args(args);
    let mut process = Process::start("gauntlet serve", &mut command);
    process.address("listening on ");
    let wss = process.address("listening (tls) on ");
    (process, wss)
}

/// nginx with `proxy_pass https://` and the seed's Upgrade lines, `proxy_ssl_*` at their
/// defaults, in front of `gauntlet serve` run with `args`; a WebSocket client speaks ws to
/// nginx. What the client got, nginx's logs, and the server's exit (stderr: its log).
async fn nginx_https_upstream_to_gauntlet_serve(
    test: &str,
    args: &[&str],
) -> (Handshake, String, Exit) {
    let (mut serve, wss) = gauntlet_serve_wss(test, args);
    let options = StartOptions::new().value("server_wss_port", wss.port().to_string());
    let nginx = start(Product::Nginx, "nginx-https-upstream.conf", options);
    let got = echo_through(nginx.addr(), "/echo").await;
    let logs = nginx.stop().expect("nginx stops").logs;
    let exit = serve.terminate();
    assert_eq!(exit.code, Some(0), "{}", exit.stderr);
    eprintln!("{logs}\n{}", exit.stderr);
    (got, logs, exit)
}

/// nginx 1.22 offers its upstreams TLS 1.2 at most (`proxy_ssl_protocols` has no TLSv1.3
/// until 1.23.4); the reference server speaks 1.2 as well as 1.3, so the upgrade and the
/// echo go through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_proxy_pass_https_with_default_proxy_ssl_relays_a_websocket_to_gauntlet_serve() {
    let (got, logs, serve) = nginx_https_upstream_to_gauntlet_serve("https-any", &[]).await;
    assert!(matches!(got, Handshake::Echoed(_)), "{got:?}\n{logs}");
    assert!(
        serve.stderr.contains("-> 101 Switching Protocols"),
        "{}",
        serve.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_proxy_pass_https_relays_a_websocket_to_gauntlet_serve_pinned_to_tls_12() {
    let args = ["--tls-version", "1.2"];
    let (got, logs, serve) = nginx_https_upstream_to_gauntlet_serve("https-1.2", &args).await;
    assert!(matches!(got, Handshake::Echoed(_)), "{got:?}\n{logs}");
    assert!(
        serve.stderr.contains("-> 101 Switching Protocols"),
        "{}",
        serve.stderr
    );
}

/// The server pinned to TLS 1.3 is what the reference server was before it spoke 1.2:
/// nginx's ClientHello has no supported_versions extension (TLS 1.2 at most), the server
/// refuses it, nginx logs the alert and answers 502.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_proxy_pass_https_with_default_proxy_ssl_answers_502_from_a_tls_13_only_server() {
    let args = ["--tls-version", "1.3"];
    let (got, logs, serve) = nginx_https_upstream_to_gauntlet_serve("https-1.3", &args).await;
    assert_eq!(got, Handshake::Refused(502), "{logs}");
    assert!(
        logs.contains("tlsv1 alert protocol version")
            && logs.contains("while SSL handshaking to upstream"),
        "{logs}"
    );
    assert!(
        serve.stderr.contains(
            "tls handshake failed: peer is incompatible: SupportedVersionsExtensionRequired"
        ),
        "{}",
        serve.stderr
    );
    assert!(!serve.stderr.contains("request GET"), "{}", serve.stderr);
}

/// Every product, stopped explicitly: its main process and every process of its group are
/// gone, and its port refuses connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_product_leaves_no_process_and_no_listener() {
    let upstream = "127.0.0.1:9".parse().unwrap();
    let cases = [
        (Product::Nginx, "nginx-without-upgrade-lines.conf"),
        (Product::Haproxy, "haproxy-without-timeout-tunnel.cfg"),
        (Product::Apache, "apache-wstunnel.conf"),
        (Product::Squid, "squid-default.conf"),
        (Product::Tinyproxy, "tinyproxy-connect.conf"),
    ];
    for (product, name) in cases {
        let running = start(product, name, StartOptions::new().upstream(upstream));
        let (addr, pid, dir) = (running.addr(), running.pid(), running.dir().to_path_buf());
        // A master listens before it forks its workers: wait for them (bounded) where there
        // are workers.
        let workers = matches!(product, Product::Nginx | Product::Apache);
        let processes = within("workers", async {
            loop {
                let processes = running.processes();
                if !workers || processes.len() >= 2 {
                    break processes;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(
            processes.contains(&pid),
            "{product}: {processes:?} lacks {pid}"
        );
        let stopped = running.stop().unwrap();
        assert!(
            !stopped.forced,
            "{product} ignored SIGTERM:\n{}",
            stopped.logs
        );
        assert_eq!(stopped.killed_survivors, Vec::<u32>::new(), "{product}");
        for p in &processes {
            assert!(!is_alive(*p), "{product}: process {p} survived its stop");
        }
        let refused = within("connect", TcpStream::connect(addr)).await;
        assert!(refused.is_err(), "{product}: {addr} still accepts");
        assert!(!dir.exists(), "{product}: {} left behind", dir.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_product_is_stopped() {
    let upstream = "127.0.0.1:9".parse().unwrap();
    let options = StartOptions::new().upstream(upstream);
    let nginx = start(Product::Nginx, "nginx-without-upgrade-lines.conf", options);
    let (addr, processes) = (nginx.addr(), nginx.processes());
    drop(nginx);
    for p in &processes {
        assert!(!is_alive(*p), "process {p} survived the drop");
    }
    assert!(within("connect", TcpStream::connect(addr)).await.is_err());
}

#[test]
fn an_unknown_placeholder_names_the_template_and_line() {
    let dir = std::env::temp_dir().join(format!("gauntlet-bad-template-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.conf");
    std::fs::write(
        &file,
        "events {}\nhttp {\n  listen {{listen}};\n  x {{nope}};\n}\n",
    )
    .unwrap();
    let err = Product::Nginx
        .start(&file, &StartOptions::new())
        .unwrap_err();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(matches!(err, ProductError::Template { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "{}:4: unknown placeholder `{{{{nope}}}}` (known: dir, listen)",
            file.display()
        )
    );
}

/// A re-run of this test binary with `CHILD_VAR=child` and `envs`, running only `test`.
fn child(test: &str, child: &str, envs: &[(&str, &str)]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD_VAR, child)
        .envs(envs.iter().copied())
        .stdin(Stdio::null());
    command
}

/// Interrupts a child test process: SIGINT, which its hook turns into stopping what it
/// started (a SIGKILL would leave its products running). Sent again on drop, in case the
/// test fails before it meant to send it.
struct Interrupt(rustix::process::Pid);

impl Interrupt {
    fn send(&self) {
        let _ = rustix::process::kill_process(self.0, rustix::process::Signal::INT);
    }
}

impl Drop for Interrupt {
    fn drop(&mut self) {
        self.send();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_binary_says_to_run_apt_get() {
    let envs = [("GAUNTLET_NGINX", "/nonexistent")];
    let mut command = child("products::child_starts_nginx", "missing", &envs);
    let output = within("child", command.output()).await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(
            "ERROR nginx is not installed: run apt-get install -y nginx \
             (GAUNTLET_NGINX=/nonexistent is not an executable file"
        ),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_the_products_the_harness_started() {
    let mut command = child("products::child_starts_nginx", "wait", &[]);
    let mut process = command.stdout(Stdio::piped()).spawn().unwrap();
    let raw = i32::try_from(process.id().unwrap()).unwrap();
    let interrupt = Interrupt(rustix::process::Pid::from_raw(raw).unwrap());
    let mut lines = tokio::io::BufReader::new(process.stdout.take().unwrap());
    let (mut pids, mut dir) = (Vec::new(), PathBuf::new());
    let mut line = String::new();
    while pids.is_empty() {
        line.clear();
        let n = within(
            "child's pids",
            tokio::io::AsyncBufReadExt::read_line(&mut lines, &mut line),
        )
        .await
        .unwrap();
        assert!(n > 0, "the child ended without starting nginx");
        // libtest prints the test's name on the same line first.
        if let Some((_, started)) = line.trim().split_once("PIDS ") {
            let (list, path) = started.split_once(" DIR ").unwrap();
            pids = list.split(' ').map(|p| p.parse::<u32>().unwrap()).collect();
            dir = PathBuf::from(path);
        }
    }
    interrupt.send();
    let status = within("child's exit", process.wait()).await.unwrap();
    assert_eq!(status.code(), Some(130), "{status}");
    for p in &pids {
        assert!(!is_alive(*p), "nginx process {p} survived Ctrl-C");
    }
    assert!(!dir.exists(), "{} left behind", dir.display());
}

/// Not a test on its own: the child of the two tests above. Starts nginx and either prints
/// the error (`missing`) or prints its processes and waits to be interrupted (`wait`).
#[test]
fn child_starts_nginx() {
    let Ok(role) = std::env::var(CHILD_VAR) else {
        return;
    };
    let upstream = "127.0.0.1:9".parse().unwrap();
    let options = StartOptions::new().upstream(upstream);
    let options = with_tls(options);
    match Product::Nginx.start(&template("nginx-without-upgrade-lines.conf"), &options) {
        Err(e) => println!("ERROR {e}"),
        Ok(nginx) if role == "wait" => {
            let pids: Vec<String> = nginx.processes().iter().map(u32::to_string).collect();
            println!("PIDS {} DIR {}", pids.join(" "), nginx.dir().display());
            std::thread::sleep(STEP);
            panic!("not interrupted within {STEP:?}");
        }
        Ok(_) => {}
    }
}
