//! The Engine.IO client against the reference server on the simulated network: a session
//! opened by polling that upgrades, one that stays on polling and answers every ping by POST,
//! one opened on a WebSocket, a silent server deemed gone after `pingInterval + pingTimeout`,
//! and the same transcripts from the same seed.

use std::rc::Rc;
use std::time::Duration;

use super::{Cx, Options, Probed, Session};
use crate::endpoints::connect::Fail;
use crate::endpoints::connect::Plan;
use crate::endpoints::engineio::Options as ServerOptions;
use crate::endpoints::engineio::packet::Packet;
use crate::endpoints::engineio::tests::http::{client, run};
use crate::engine::{LinkFault, NetRef};
use crate::scenario::{Scheme, Workload, WorkloadKind};
use crate::verdict::outcome::Outcome;
use crate::verdict::transcript::{self, Transcript};

/// A client of host `server` with `options` (upgrade or not), logging to `t`.
fn cx(net: NetRef, t: &Transcript, upgrade: bool) -> Cx {
    let (tls, _) = crate::tls::Tls::generate(&["server".to_string()]).expect("TLS material");
    let workload = Workload::new(WorkloadKind::Echo);
    let plan = Plan::new(Scheme::Ws, "server", workload, 1, tls.client);
    let mut options = Options::new("/engine.io/");
    options.upgrade = upgrade;
    Cx::new(net, Rc::new(plan), t.clone(), options)
}

/// Heartbeats of 300 ms and 200 ms, as the protocol's test suite sets them.
fn quick() -> ServerOptions {
    ServerOptions {
        ping_interval: Duration::from_millis(300),
        ping_timeout: Duration::from_millis(200),
        ..ServerOptions::default()
    }
}

/// A failure as a test error.
fn failed(f: Fail) -> anyhow::Error {
    anyhow::anyhow!("{}: {}", f.outcome, f.detail)
}

/// Waits `ms` for nothing to come, answering the server's pings.
async fn quiet(session: &mut Session, net: &NetRef, ms: u64) -> anyhow::Result<()> {
    let later = net.now() + Duration::from_millis(ms);
    let got = session.next(later, true).await.map_err(failed)?;
    anyhow::ensure!(got.is_none(), "got {got:?} while quiet");
    Ok(())
}

/// Closes the session within a second.
async fn close(session: Session, net: &NetRef) -> anyhow::Result<()> {
    let deadline = net.now() + Duration::from_secs(1);
    session.close(deadline).await.map_err(failed)
}

/// Sends `packet` and waits at most a second for it to come back.
async fn echo(session: &mut Session, net: &NetRef, packet: Packet) -> anyhow::Result<()> {
    session.send(packet.clone()).await.map_err(failed)?;
    let deadline = net.now() + Duration::from_secs(1);
    let back = session.next(deadline, false).await.map_err(failed)?;
    anyhow::ensure!(back == Some(packet.clone()), "sent {packet}, got {back:?}");
    Ok(())
}

/// Runs `f` as the client of a reference server with `options`: the server's transcript and
/// the client's.
fn with_server<F>(
    options: ServerOptions,
    f: impl FnOnce(NetRef, Transcript) -> F + 'static,
) -> (String, String)
where
    F: std::future::Future<Output = anyhow::Result<()>> + 'static,
{
    let t = Transcript::default();
    let mine = t.clone();
    let server = run(options, client(move |net| f(net, mine)));
    (server, transcript::render(&t.entries()))
}

fn upgraded_session() -> (String, String) {
    with_server(quick(), |net, t| async move {
        let cx = cx(net.clone(), &t, true);
        let mut session = Session::open_polling(&cx).await.map_err(failed)?;
        assert_eq!(session.transport(), "polling");
        echo(&mut session, &net, Packet::message("over polling")).await?;
        // Quiet past a few heartbeats: the probe completes meanwhile.
        let later = net.now() + Duration::from_secs(1);
        let nothing = session.next(later, true).await.map_err(failed)?;
        assert_eq!(nothing, None);
        assert_eq!(session.transport(), "websocket");
        let probes = session.probes();
        assert_eq!(probes.len(), 1);
        assert_eq!(probes[0].result, Probed::Upgraded, "{probes:?}");
        echo(&mut session, &net, Packet::message("over the websocket")).await?;
        echo(&mut session, &net, Packet::Binary(vec![0, 1, 2, 0xff])).await?;
        close(session, &net).await
    })
}

#[test]
fn a_session_opened_by_polling_upgrades_and_echoes_on_the_websocket() {
    let (server, client) = upgraded_session();
    for line in [
        "opened over polling (echo)",
        "probe answered on a websocket",
        "upgraded to websocket",
        "echoes a binary message (4 bytes)",
        "closed: transport close: the client closed the websocket",
    ] {
        assert!(server.contains(line), "no `{line}` in:\n{server}");
    }
    for line in [
        "engine.io probe answered: 3probe",
        "engine.io poll answered: noop",
    ] {
        assert!(client.contains(line), "no `{line}` in:\n{client}");
    }
    assert!(!server.contains("ping timeout"), "{server}");
}

#[test]
fn the_same_seed_gives_the_same_transcripts() {
    assert_eq!(upgraded_session(), upgraded_session());
}

#[test]
fn without_the_upgrade_every_ping_is_answered_by_post() {
    let (server, client) = with_server(quick(), |net, t| async move {
        let cx = cx(net.clone(), &t, false);
        let mut session = Session::open_polling(&cx).await.map_err(failed)?;
        quiet(&mut session, &net, 2000).await?;
        assert_eq!(session.transport(), "polling");
        assert!(session.probes().is_empty());
        echo(&mut session, &net, Packet::message("still there")).await?;
        close(session, &net).await
    });
    assert!(!server.contains("ping timeout"), "{server}");
    assert!(
        server.contains("closed: the client's close packet"),
        "{server}"
    );
    let pongs = client.matches(": pong").count();
    assert!(pongs >= 5, "{pongs} pongs in:\n{client}");
}

#[test]
fn a_session_opens_on_a_websocket() {
    let (server, _) = with_server(quick(), |net, t| async move {
        let cx = cx(net.clone(), &t, true);
        let mut session = Session::open_websocket(&cx).await.map_err(failed)?;
        assert_eq!(session.transport(), "websocket");
        echo(&mut session, &net, Packet::message("hello")).await?;
        quiet(&mut session, &net, 1000).await?;
        close(session, &net).await
    });
    assert!(server.contains("opened over websocket (echo)"), "{server}");
    assert!(!server.contains("ping timeout"), "{server}");
}

/// A server that goes silent (a blackholed link) is deemed gone `pingInterval +
/// pingTimeout` after its last ping, as engine.io-client deems it; quiet, the session is
/// `idle-closed`.
#[test]
fn a_silent_server_is_deemed_gone_after_ping_interval_and_timeout() {
    with_server(quick(), |net, t| async move {
        let cx = cx(net.clone(), &t, false);
        let mut session = Session::open_websocket(&cx).await.map_err(failed)?;
        let opened = net.now();
        net.link_fault("client", "server", LinkFault::Blackhole);
        let later = net.now() + Duration::from_secs(5);
        let Err(f) = session.next(later, true).await else {
            anyhow::bail!("the session outlived a silent server");
        };
        assert_eq!(f.outcome, Outcome::IdleClosed, "{}", f.detail);
        assert!(
            f.detail
                .contains("no ping from the server within pingInterval + pingTimeout (500.0 ms)"),
            "{}",
            f.detail
        );
        assert_eq!(net.now() - opened, Duration::from_millis(500));
        Ok(())
    });
}
