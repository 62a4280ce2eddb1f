//! The library's front door as a user's integration test would use it: live proxies
//! (`gauntlet::live::spawn`, `spawn_chain`) in front of the reference server
//! (`spawn_server`), a WebSocket client through them, ws and wss (`gauntlet::testing::TestCa`),
//! an idle killer cutting a quiet connection, their stop, and the errors of models and
//! scenario files (`gauntlet::run_file`). Every wait has a timeout (a safety net, not a claim
//! about speed); the only sleep is an idle period itself.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use gauntlet::live::{self, Model, ServerOptions};
use gauntlet::scenario::Scheme;
use gauntlet::testing::TestCa;
use gauntlet::tls::TlsVersions;
use gauntlet::{Error, FileOptions, Outcome};
use gauntlet_proxies::registry::HopError;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::{self, Message};

/// How long any one step may take before the test gives up.
const PATIENCE: Duration = Duration::from_secs(20);

/// `what`, or a failed test naming the step that took too long.
async fn within<T>(step: &str, what: impl Future<Output = T>) -> T {
    match tokio::time::timeout(PATIENCE, what).await {
        Ok(done) => done,
        Err(_) => panic!("{step}: no end after {PATIENCE:?}"),
    }
}

/// A WebSocket client on `stream`, for `/echo`.
async fn open<S: AsyncRead + AsyncWrite + Unpin>(stream: S, url: &str) -> WebSocketStream<S> {
    within(
        "the opening handshake",
        tokio_tungstenite::client_async(url, stream),
    )
    .await
    .expect("the upgrade succeeds")
    .0
}

/// A WebSocket client connected to `addr` over plain TCP.
async fn connect(addr: SocketAddr) -> WebSocketStream<TcpStream> {
    let tcp = within("connecting", TcpStream::connect(addr))
        .await
        .expect("the proxy accepts");
    open(tcp, "ws://localhost/echo").await
}

/// Sends `text` and returns what comes back.
async fn echo<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    text: &str,
) -> String {
    within("sending", ws.send(Message::text(text)))
        .await
        .expect("the message goes out");
    match within("the echo", ws.next()).await {
        Some(Ok(Message::Text(back))) => back.to_string(),
        other => panic!("expected the echo of {text:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn a_chain_of_live_models_carries_an_echo_and_logs_what_it_did() {
    let server = live::spawn_server().await.expect("the server starts");
    let chain = [
        Model::pass(),
        Model::from_toml("model = \"header-mangler\"\nadd-via = \"1.1 gauntlet\"")
            .expect("a hop table"),
        Model::idle_killer(Duration::from_secs(60)),
    ];
    let proxy = live::spawn_chain(chain, server.addr())
        .await
        .expect("the chain starts");
    assert!(proxy.addr().ip().is_loopback(), "{}", proxy.addr());
    let mut ws = connect(proxy.addr()).await;
    for text in ["one", "two", "three"] {
        assert_eq!(echo(&mut ws, text).await, text);
    }
    within("the close handshake", ws.close(None))
        .await
        .expect("the close goes out");
    let logged = proxy.shutdown().await.expect("the chain stops cleanly");
    let hosts: Vec<&str> = logged.iter().map(|e| e.who.as_str()).collect();
    for hop in ["hop1", "hop2", "hop3"] {
        assert!(hosts.contains(&hop), "{hop} logged nothing: {logged:?}");
    }
    assert!(
        logged
            .iter()
            .any(|e| e.what.ends_with("accepted on port 80")),
        "{logged:?}"
    );
    let served = server.shutdown().await.expect("the server stops cleanly");
    assert!(!served.is_empty(), "the server logged the session");
}

#[tokio::test]
async fn an_idle_killer_cuts_a_quiet_connection_that_pass_leaves_open() {
    let idle = Duration::from_millis(200);
    let server = live::spawn_server().await.expect("the server starts");
    let pass = live::spawn(Model::pass(), server.addr())
        .await
        .expect("pass starts");
    let killer = live::spawn(Model::idle_killer(idle), server.addr())
        .await
        .expect("the idle killer starts");

    // Through pass, twice the idle period of silence changes nothing.
    let mut kept = connect(pass.addr()).await;
    assert_eq!(echo(&mut kept, "before").await, "before");
    tokio::time::sleep(idle * 2).await;
    assert_eq!(echo(&mut kept, "after").await, "after");

    // Through the idle killer, the same connection works, then goes quiet and is cut: a FIN
    // and no Close frame, so the client sees the connection end without a close handshake.
    let mut cut = connect(killer.addr()).await;
    assert_eq!(echo(&mut cut, "before").await, "before");
    match within("the idle killer's close", cut.next()).await {
        Some(Err(tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake)))
        | None => {}
        other => panic!("expected the connection cut without a Close frame, got {other:?}"),
    }
    let logged = killer.shutdown().await.expect("the killer stops cleanly");
    assert!(
        logged
            .iter()
            .any(|e| e.what.ends_with("idle for 200 ms: closing")),
        "{}",
        gauntlet::verdict::transcript::render(&logged)
    );
    let passed = pass.shutdown().await.expect("pass stops cleanly");
    assert!(
        !passed.iter().any(|e| e.what.contains("closing")),
        "{passed:?}"
    );
    drop(server);
}

#[tokio::test]
async fn wss_passes_through_a_live_proxy_to_a_server_signed_by_a_test_ca() {
    let ca = TestCa::new().expect("a CA");
    let options = ServerOptions::new()
        .tls(&ca, TlsVersions::Any)
        .expect("a certificate");
    let server = live::spawn_server_with(options)
        .await
        .expect("the server starts");
    let wss = server.tls_addr().expect("a TLS listener");
    assert_ne!(wss, server.addr());
    let proxy = live::spawn(Model::pass(), wss).await.expect("pass starts");
    let tcp = within("connecting", TcpStream::connect(proxy.addr()))
        .await
        .expect("the proxy accepts");
    let connector = tokio_rustls::TlsConnector::from(ca.client_config().expect("a client config"));
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("a name");
    let tls = within("the TLS handshake", connector.connect(name, tcp))
        .await
        .expect("the server's certificate is trusted");
    let mut ws = open(tls, "wss://localhost/echo").await;
    assert_eq!(echo(&mut ws, "encrypted").await, "encrypted");

    // A client trusting another CA refuses the server.
    let other = TestCa::new().expect("another CA");
    let tcp = within("connecting", TcpStream::connect(proxy.addr()))
        .await
        .expect("the proxy accepts");
    let stranger = tokio_rustls::TlsConnector::from(other.client_config().expect("a config"));
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("a name");
    let refused = within("the refused handshake", stranger.connect(name, tcp)).await;
    assert!(
        refused.is_err(),
        "a certificate from an untrusted CA was accepted"
    );
    drop(proxy);
    drop(server);
}

#[tokio::test]
async fn a_dropped_proxy_no_longer_listens() {
    let server = live::spawn_server().await.expect("the server starts");
    let proxy = live::spawn(Model::pass(), server.addr())
        .await
        .expect("pass starts");
    let addr = proxy.addr();
    let mut ws = connect(addr).await;
    assert_eq!(echo(&mut ws, "hello").await, "hello");
    drop(proxy);
    // The drop has joined the proxy's thread: its sockets are closed.
    let refused = within("connecting", TcpStream::connect(addr)).await;
    assert!(refused.is_err(), "{addr} still accepts after the drop");
    // The session through it has ended, without a Close frame from anyone.
    let end = within("the end of the session", ws.next()).await;
    assert!(
        matches!(end, None | Some(Err(_))),
        "expected the session to end with the proxy, got {end:?}"
    );
}

#[tokio::test]
async fn models_the_front_door_cannot_run_are_errors_that_name_the_hop() {
    let upstream = SocketAddr::from(([127, 0, 0, 1], 9));
    let interceptor = Model::from_toml("model = \"tls-intercepting-proxy\"").expect("a hop table");
    let Err(e) = live::spawn_chain([Model::pass(), interceptor], upstream).await else {
        panic!("an interceptor without TLS material started");
    };
    assert!(
        matches!(
            &e,
            Error::Hop { at, error: HopError::NeedsTls { what: "tls-intercepting-proxy" } }
                if at == "hop 2 (tls-intercepting-proxy)"
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "hop 2 (tls-intercepting-proxy): tls-intercepting-proxy needs TLS material from the harness"
    );
    let Err(e) = live::spawn_chain(Vec::new(), upstream).await else {
        panic!("an empty chain started");
    };
    assert!(matches!(e, Error::EmptyChain), "{e:?}");
    let e = Model::from_toml("model = \"buffering-proxy\"\npreset = \"nginks\"").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("model TOML:2:10: unknown variant `nginks`"),
        "{e}"
    );
}

#[test]
fn a_scenario_file_runs_to_its_outcomes_and_bad_ones_are_errors() {
    let file = crate::root().join("scenarios/gate-negative/quiet-tunnel-through-idle-killer.toml");
    let runs = gauntlet::run_file_with(&file, &FileOptions::new().seed(7).scheme(Scheme::Ws))
        .expect("the scenario runs");
    assert_eq!(runs.len(), 1, "one scheme, one seed");
    assert_eq!((runs[0].scheme, runs[0].seed), (Scheme::Ws, 7));
    assert_eq!(
        runs[0].outcome(),
        runs[0].expected,
        "{}",
        runs[0].rendered()
    );
    assert_ne!(runs[0].outcome(), Outcome::Delivered);

    let missing = crate::root().join("scenarios/no-such-file.toml");
    let e = gauntlet::run_file(&missing).unwrap_err();
    assert!(
        matches!(&e, Error::Scenario(errors) if errors.len() == 1),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .contains("no-such-file.toml:1:1: cannot read the file"),
        "{e}"
    );

    let e = gauntlet::run_file(crate::root().join("scenarios")).unwrap_err();
    assert!(matches!(e, Error::Folder { .. }), "{e:?}");

    let e = gauntlet::run_file_with(&file, &FileOptions::new().engine("simm")).unwrap_err();
    assert!(e.to_string().contains("unknown engine `simm`"), "{e}");

    let live_only = crate::root().join("scenarios/live/squid-default.toml");
    let e = gauntlet::run_file(&live_only).unwrap_err();
    assert!(matches!(e, Error::NeedsLive { .. }), "{e:?}");
}

/// The CA's configurations agree on ALPN, and its PEM files are what real programs read.
#[test]
fn a_test_ca_issues_pem_files_for_real_programs() {
    let ca = TestCa::new().expect("a CA");
    let (cert, key) = ca.issue_pem(&["localhost"]).expect("a certificate");
    assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"), "{cert}");
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "{key}");
    let server: Arc<rustls::ServerConfig> = ca.server_config(&["localhost"]).expect("a config");
    assert_eq!(server.alpn_protocols, vec![b"http/1.1".to_vec()]);
}
