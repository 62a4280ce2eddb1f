//! The engine abstraction's semantics, checked on each simulated engine with tiny topologies:
//! FIN, deliberate reset, held links, interception. The live engine's are in `live.rs`.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use futures_util::FutureExt;
use gauntlet::engine::{self, LinkConfig, LinkFault, NetRef, Software, Topology};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Log = Rc<RefCell<Vec<String>>>;

fn topology() -> Topology {
    let link = LinkConfig::new(Duration::from_millis(5), Duration::ZERO);
    Topology::new(link, Duration::from_secs(10))
}

fn at(net: &NetRef) -> u128 {
    net.now().as_millis()
}

/// A host that accepts on port 80, reads one byte, then ends the stream as `how` says.
fn closer(how: &'static str, log: Log) -> Software {
    Rc::new(move |net: NetRef| {
        let log = log.clone();
        async move {
            let mut listener = net.listen(80).await?;
            let mut stream = listener.accept().await?;
            let mut byte = [0u8; 1];
            stream.read_exact(&mut byte).await?;
            log.borrow_mut().push(format!("{how} at {}", at(&net)));
            match how {
                "reset" => stream.reset(),
                _ => stream.shutdown().await?,
            }
            std::future::pending::<()>().await;
            Ok(())
        }
        .boxed_local()
    })
}

fn client_reading(log: Log) -> gauntlet::engine::ClientSoftware {
    Box::new(move |net: NetRef| {
        async move {
            let mut s = net.connect("server", 80).await?;
            s.write_all(b"x").await?;
            let mut buf = [0u8; 8];
            let r = s.read(&mut buf).await;
            log.borrow_mut().push(match r {
                Ok(n) => format!("read {n} at {}", at(&net)),
                Err(e) => format!("{:?} at {}", e.kind(), at(&net)),
            });
            Ok(())
        }
        .boxed_local()
    })
}

fn each_engine(test: impl Fn(&dyn engine::Engine)) {
    for name in engine::SIMULATED {
        let e = engine::by_name(name).expect("listed engines exist");
        test(e.as_ref());
    }
}

/// Runs `closer(how)` against `client_reading`: when the server closed, and what the client
/// then saw.
fn close_and_observe(e: &dyn engine::Engine, how: &'static str) -> (u128, String) {
    let log: Log = Rc::default();
    let mut t = topology();
    t.host("server", closer(how, log.clone()));
    t.client("client", client_reading(log.clone()));
    e.run(t, 1).unwrap();
    let log = log.borrow();
    let closed_at = log[0]
        .trim_start_matches(&format!("{how} at "))
        .parse()
        .unwrap();
    (closed_at, log[1].clone())
}

#[test]
fn a_reset_reaches_the_peer_as_connection_reset_one_latency_later() {
    each_engine(|e| {
        let (reset_at, seen) = close_and_observe(e, "reset");
        assert_eq!(
            seen,
            format!("ConnectionReset at {}", reset_at + 5),
            "{}",
            e.name()
        );
    });
}

#[test]
fn a_fin_reaches_the_peer_as_end_of_stream() {
    each_engine(|e| {
        let (fin_at, seen) = close_and_observe(e, "fin");
        assert_eq!(seen, format!("read 0 at {}", fin_at + 5), "{}", e.name());
    });
}

#[test]
fn a_held_link_delivers_everything_once_released() {
    each_engine(|e| {
        let log: Log = Rc::default();
        let mut t = topology();
        let server_log = log.clone();
        t.host(
            "server",
            Rc::new(move |net: NetRef| {
                let log = server_log.clone();
                async move {
                    let mut listener = net.listen(80).await?;
                    let mut s = listener.accept().await?;
                    let mut got = Vec::new();
                    s.read_to_end(&mut got).await?;
                    log.borrow_mut()
                        .push(format!("{} bytes by {}", got.len(), at(&net)));
                    std::future::pending::<()>().await;
                    Ok(())
                }
                .boxed_local()
            }),
        );
        t.client(
            "client",
            Box::new(move |net: NetRef| {
                async move {
                    let mut s = net.connect("server", 80).await?;
                    net.link_fault("client", "server", LinkFault::Hold);
                    s.write_all(&[7u8; 3000]).await?;
                    s.shutdown().await?;
                    net.sleep_until(Duration::from_millis(200)).await;
                    net.link_fault("client", "server", LinkFault::Release);
                    net.sleep_until(Duration::from_millis(400)).await;
                    Ok(())
                }
                .boxed_local()
            }),
        );
        e.run(t, 1).unwrap();
        let log = log.borrow();
        assert_eq!(log.len(), 1, "{log:?}");
        let (bytes, when) = log[0].split_once(" bytes by ").unwrap();
        assert_eq!(bytes, "3000");
        assert!(when.parse::<u128>().unwrap() >= 200, "{log:?}");
    });
}

#[test]
fn interception_delivers_the_connection_to_the_intercepting_host() {
    each_engine(|e| {
        let named = |name: &'static str| -> Software {
            Rc::new(move |net: NetRef| {
                async move {
                    let mut listener = net.listen(80).await?;
                    loop {
                        let mut s = listener.accept().await?;
                        s.write_all(name.as_bytes()).await?;
                        s.shutdown().await?;
                    }
                }
                .boxed_local()
            })
        };
        let log: Log = Rc::default();
        let mut t = topology();
        t.host("server", named("server"));
        t.host("proxy", named("proxy"));
        t.intercept("client", "server", "proxy");
        let client_log = log.clone();
        t.client(
            "client",
            Box::new(move |net: NetRef| {
                async move {
                    let mut s = net.connect("server", 80).await?;
                    let mut who = String::new();
                    s.read_to_string(&mut who).await?;
                    client_log.borrow_mut().push(who);
                    Ok(())
                }
                .boxed_local()
            }),
        );
        e.run(t, 1).unwrap();
        assert_eq!(*log.borrow(), vec!["proxy".to_string()]);
    });
}
