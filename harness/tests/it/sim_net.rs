//! The `sim` engine's network, one property at a time: connect round trip and refusal,
//! seeded jitter, bandwidth, backpressure, half-close, resets from closed sockets, loss as
//! delay, blackholes, host crashes, bulk transfers and the event log.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use futures_util::FutureExt;
use gauntlet::engine::sim::Sim;
use gauntlet::engine::{Engine, LinkConfig, LinkFault, NetRef, RunEnd, Topology};
use gauntlet_proxies::rng::Rng;
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Log = Rc<RefCell<Vec<String>>>;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn at(net: &NetRef) -> u128 {
    net.now().as_millis()
}

/// Runs `server` on host "server" and `client` on "client" over links like `link`, with
/// `setup` applied to the topology; gives what they logged and how the run ended.
fn run<S, SF, C, CF>(
    link: LinkConfig,
    seed: u64,
    setup: impl FnOnce(&mut Topology),
    server: S,
    client: C,
) -> (Vec<String>, RunEnd)
where
    S: Fn(NetRef, Log) -> SF + 'static,
    SF: Future<Output = anyhow::Result<()>> + 'static,
    C: FnOnce(NetRef, Log) -> CF + 'static,
    CF: Future<Output = anyhow::Result<()>> + 'static,
{
    let log: Log = Rc::default();
    let mut t = Topology::new(link, Duration::from_secs(3600 * 5));
    let server_log = log.clone();
    let server = Rc::new(server);
    t.host(
        "server",
        Rc::new(move |net: NetRef| server(net, server_log.clone()).boxed_local()),
    );
    let client_log = log.clone();
    t.client(
        "client",
        Box::new(move |net: NetRef| client(net, client_log).boxed_local()),
    );
    setup(&mut t);
    let end = Sim.run(t, seed).expect("the run completes");
    let lines = log.borrow().clone();
    (lines, end)
}

fn plain(latency: u64) -> LinkConfig {
    LinkConfig::new(ms(latency), Duration::ZERO)
}

/// A server that accepts one connection and reads everything, logging each read's time.
async fn reader(net: NetRef, log: Log) -> anyhow::Result<()> {
    let mut l = net.listen(80).await?;
    let mut s = l.accept().await?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    loop {
        match s.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) => {
                log.borrow_mut()
                    .push(format!("server {:?} at {}", e.kind(), at(&net)));
                return Ok(());
            }
        }
    }
    log.borrow_mut()
        .push(format!("server got {total} by {}", at(&net)));
    std::future::pending().await
}

#[test]
fn a_connect_takes_a_round_trip_and_a_closed_port_is_refused_after_one() {
    let (log, _) = run(
        plain(7),
        1,
        |_| {},
        reader,
        |net, log| async move {
            let s = net.connect("server", 80).await?;
            log.borrow_mut().push(format!("connected at {}", at(&net)));
            drop(s);
            let r = net.connect("server", 81).await;
            let kind = r.err().map(|e| e.kind());
            log.borrow_mut().push(format!("{kind:?} at {}", at(&net)));
            let r = net.connect("nowhere", 80).await;
            log.borrow_mut()
                .push(format!("{:?}", r.err().map(|e| e.kind())));
            Ok(())
        },
    );
    assert_eq!(
        log,
        [
            "connected at 14",
            "server got 0 by 21",
            "Some(ConnectionRefused) at 28",
            "Some(NotFound)"
        ]
    );
}

/// Sends `n` one-byte writes 1 ms apart and logs when each arrives.
fn jittered_arrivals(seed: u64) -> Vec<u128> {
    let (log, _) = run(
        LinkConfig::new(ms(10), ms(30)),
        seed,
        |_| {},
        |net: NetRef, log: Log| async move {
            let mut l = net.listen(80).await?;
            let mut s = l.accept().await?;
            let mut b = [0u8; 1];
            while s.read(&mut b).await? == 1 {
                log.borrow_mut().push(format!("{} {}", b[0], at(&net)));
            }
            std::future::pending().await
        },
        |net, _| async move {
            let mut s = net.connect("server", 80).await?;
            for i in 0..20u8 {
                let start = net.now();
                s.write_all(&[i]).await?;
                net.sleep_until(start + ms(1)).await;
            }
            net.sleep_until(ms(1000)).await;
            Ok(())
        },
    );
    let mut times = Vec::new();
    for (i, line) in log.iter().enumerate() {
        let (byte, t) = line.split_once(' ').unwrap();
        assert_eq!(byte, i.to_string(), "in order: {log:?}");
        times.push(t.parse().unwrap());
    }
    assert_eq!(times.len(), 20);
    times
}

#[test]
fn jitter_is_seeded_bounded_and_keeps_the_stream_in_order() {
    let a = jittered_arrivals(1);
    assert_eq!(a, jittered_arrivals(1), "same seed, same times");
    assert_ne!(a, jittered_arrivals(2), "another seed, other times");
    // Connected between 20 and 80 (a round trip of 10 + up to 30 each way); byte i leaves
    // i ms later and takes 10 to 40 ms, and never overtakes the byte before it.
    for w in a.windows(2) {
        assert!(w[0] <= w[1], "{a:?}");
    }
    for (i, t) in a.iter().enumerate() {
        let i = i as u128;
        assert!((30 + i..=120 + i).contains(t), "byte {i}: {a:?}");
    }
}

#[test]
fn bandwidth_spaces_out_a_large_write() {
    let mut link = plain(5);
    link.bandwidth = Some(1_000_000);
    let (log, _) = run(
        link,
        1,
        |_| {},
        reader,
        |net, log| async move {
            let mut s = net.connect("server", 80).await?;
            log.borrow_mut().push(format!("writing at {}", at(&net)));
            s.write_all(&[1u8; 100_000]).await?;
            s.shutdown().await?;
            net.sleep_until(ms(1000)).await;
            Ok(())
        },
    );
    // 100,000 bytes at 1,000,000 bytes/s: 100 ms on the wire, then 5 ms of latency.
    assert_eq!(log, ["writing at 10", "server got 100000 by 115"]);
}

#[test]
fn a_full_buffer_makes_the_writer_wait_for_the_reader() {
    let (log, _) = run(
        plain(5),
        1,
        |t| t.buffer(1000),
        |net: NetRef, log: Log| async move {
            let mut l = net.listen(80).await?;
            let mut s = l.accept().await?;
            net.sleep_until(ms(500)).await;
            let mut got = Vec::new();
            s.read_to_end(&mut got).await?;
            log.borrow_mut()
                .push(format!("server read {} by {}", got.len(), at(&net)));
            std::future::pending().await
        },
        |net, log| async move {
            let mut s = net.connect("server", 80).await?;
            let n = s.write(&[7u8; 5000]).await?;
            log.borrow_mut().push(format!("first write took {n}"));
            s.write_all(&[7u8; 4000]).await?;
            log.borrow_mut()
                .push(format!("rest written at {}", at(&net)));
            s.shutdown().await?;
            net.sleep_until(ms(1000)).await;
            Ok(())
        },
    );
    assert_eq!(
        log,
        [
            "first write took 1000",
            "rest written at 515",
            "server read 5000 by 520"
        ]
    );
}

#[test]
fn a_half_closed_stream_still_carries_the_other_direction() {
    let (log, _) = run(
        plain(5),
        1,
        |_| {},
        |net: NetRef, _log: Log| async move {
            let mut l = net.listen(80).await?;
            let mut s = l.accept().await?;
            let mut got = Vec::new();
            s.read_to_end(&mut got).await?;
            net.sleep_until(net.now() + ms(100)).await;
            s.write_all(&got).await?;
            s.shutdown().await?;
            std::future::pending().await
        },
        |net, log| async move {
            let mut s = net.connect("server", 80).await?;
            s.write_all(b"half").await?;
            s.shutdown().await?;
            let mut back = String::new();
            s.read_to_string(&mut back).await?;
            log.borrow_mut().push(format!("{back} at {}", at(&net)));
            Ok(())
        },
    );
    // Sent at 10, FIN read at 15, echoed at 115, back at 120.
    assert_eq!(log, ["half at 120"]);
}

#[test]
fn closing_with_unread_bytes_resets_and_bytes_to_a_closed_socket_are_answered_with_reset() {
    let (log, _) = run(
        plain(5),
        1,
        |_| {},
        |net: NetRef, _log: Log| async move {
            let mut l = net.listen(80).await?;
            let s = l.accept().await?;
            net.sleep_until(ms(100)).await;
            drop(s); // four bytes unread
            let mut s = l.accept().await?;
            s.shutdown().await?;
            drop(s); // clean close
            std::future::pending().await
        },
        |net, log| async move {
            let mut s = net.connect("server", 80).await?;
            s.write_all(b"lost").await?;
            let mut b = [0u8; 4];
            let r = s.read(&mut b).await;
            log.borrow_mut()
                .push(format!("{:?} at {}", r.err().map(|e| e.kind()), at(&net)));
            let mut s = net.connect("server", 80).await?;
            let r = s.read(&mut b).await?;
            log.borrow_mut().push(format!("read {r} at {}", at(&net)));
            s.write_all(b"late").await?;
            log.borrow_mut().push(format!("wrote at {}", at(&net)));
            let r = s.read(&mut b).await;
            log.borrow_mut()
                .push(format!("read {:?} at {}", r.ok(), at(&net)));
            net.sleep_until(at_ms(&net) + ms(10)).await;
            let r = s.write_all(b"again").await;
            log.borrow_mut()
                .push(format!("{:?} at {}", r.err().map(|e| e.kind()), at(&net)));
            Ok(())
        },
    );
    assert_eq!(
        log,
        [
            "Some(ConnectionReset) at 105",
            "read 0 at 115",
            "wrote at 115",
            "read Some(0) at 115",
            "Some(ConnectionReset) at 125"
        ]
    );
}

fn at_ms(net: &NetRef) -> Duration {
    net.now()
}

/// Sends 64 KiB through a link with `loss`; gives when the server had it all.
fn arrival_with_loss(loss: f64, seed: u64) -> String {
    let mut link = plain(20);
    link.loss = loss;
    let (log, _) = run(
        link,
        seed,
        |_| {},
        reader,
        |net, _| async move {
            let mut s = net.connect("server", 80).await?;
            s.write_all(&[3u8; 65536]).await?;
            s.shutdown().await?;
            net.sleep_until(ms(60_000)).await;
            Ok(())
        },
    );
    log.join(" ")
}

#[test]
fn loss_delays_a_stream_by_retransmission_timeouts_and_loses_no_byte() {
    let clean = arrival_with_loss(0.0, 1);
    assert_eq!(clean, "server got 65536 by 60");
    let mut delayed = 0;
    for seed in 1..=20 {
        let lossy = arrival_with_loss(0.05, seed);
        assert_eq!(arrival_with_loss(0.05, seed), lossy, "seeded");
        assert!(lossy.starts_with("server got 65536 by "), "{lossy}");
        let by: u64 = lossy.rsplit(' ').next().unwrap().parse().unwrap();
        // On time, or late by at least one retransmission timeout (200 ms).
        assert!(by == 60 || by >= 260, "seed {seed}: {lossy}");
        delayed += usize::from(by > 60);
    }
    // 45 packets at 5 % loss: nine in ten such writes lose one.
    assert!((10..20).contains(&delayed), "{delayed} of 20 delayed");
}

#[test]
fn a_blackhole_swallows_bytes_and_connection_attempts() {
    let (log, _) = run(
        plain(5),
        1,
        |_| {},
        |net: NetRef, log: Log| async move {
            let mut l = net.listen(80).await?;
            let mut s = l.accept().await?;
            let mut b = [0u8; 16];
            let n = s.read(&mut b).await?;
            log.borrow_mut()
                .push(format!("server read {n} at {}", at(&net)));
            let r = tokio::time::timeout(ms(10_000), s.read(&mut b)).await;
            log.borrow_mut()
                .push(format!("server then {:?}", r.map(|r| r.ok())));
            std::future::pending().await
        },
        |net, log| async move {
            let mut s = net.connect("server", 80).await?;
            s.write_all(b"before").await?;
            net.sleep_until(ms(100)).await;
            net.link_fault("client", "server", LinkFault::Blackhole);
            s.write_all(b"after").await?;
            log.borrow_mut().push("wrote into the blackhole".into());
            let r = tokio::time::timeout(ms(5_000), net.connect("server", 80)).await;
            log.borrow_mut()
                .push(format!("connect timed out: {}", r.is_err()));
            net.link_fault("client", "server", LinkFault::Release);
            s.write_all(b"later").await?;
            net.sleep_until(ms(20_000)).await;
            Ok(())
        },
    );
    assert_eq!(
        log,
        [
            "server read 6 at 15",
            "wrote into the blackhole",
            "connect timed out: true",
            "server then Err(Elapsed(()))"
        ]
    );
}

#[test]
fn a_crashed_host_goes_silent_and_refuses_new_connections() {
    let (log, end) = run(
        plain(5),
        1,
        |t| t.crash("server", ms(1000)),
        |net: NetRef, log: Log| async move {
            let mut l = net.listen(80).await?;
            loop {
                let mut s = l.accept().await?;
                let log = log.clone();
                let n2 = net.clone();
                net.spawn(
                    async move {
                        let mut b = [0u8; 16];
                        while let Ok(n) = s.read(&mut b).await {
                            if n == 0 || s.write_all(&b[..n]).await.is_err() {
                                break;
                            }
                        }
                        log.borrow_mut()
                            .push(format!("server task ended at {}", at(&n2)));
                    }
                    .boxed_local(),
                );
            }
        },
        |net, log| async move {
            let mut s = net.connect("server", 80).await?;
            let mut b = [0u8; 16];
            s.write_all(b"ping").await?;
            let n = s.read(&mut b).await?;
            log.borrow_mut().push(format!("echo {n} at {}", at(&net)));
            net.sleep_until(ms(2000)).await;
            s.write_all(b"ping").await?;
            let r = tokio::time::timeout(ms(3000), s.read(&mut b)).await;
            log.borrow_mut()
                .push(format!("after the crash: timed out {}", r.is_err()));
            let r = net.connect("server", 80).await;
            log.borrow_mut()
                .push(format!("{:?} at {}", r.err().map(|e| e.kind()), at(&net)));
            Ok(())
        },
    );
    assert_eq!(
        log,
        [
            "echo 4 at 20",
            "after the crash: timed out true",
            "Some(ConnectionRefused) at 5010"
        ]
    );
    assert!(end.events.count() > 5);
}

#[test]
fn the_event_log_is_the_same_for_the_same_seed() {
    let once = |seed| {
        run(
            LinkConfig::new(ms(5), ms(20)),
            seed,
            |_| {},
            reader,
            |net, _| async move {
                let mut s = net.connect("server", 80).await?;
                for _ in 0..10 {
                    s.write_all(b"abc").await?;
                }
                s.shutdown().await?;
                net.sleep_until(ms(500)).await;
                Ok(())
            },
        )
        .1
        .events
    };
    assert_eq!(once(1), once(1));
    assert_ne!(once(1).hash(), once(2).hash());
    assert!(once(1).count() >= 13, "{:?}", once(1));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// A megabyte each way at once, written and read in random sizes through a small buffer:
    /// every byte arrives, in order, and nothing wedges.
    #[test]
    fn bulk_transfers_both_ways_arrive_intact(seed in 1u64..1000, buffer in 512usize..70_000) {
        const SIZE: usize = 1 << 20;
        let data = |label: u64| {
            let mut v = vec![0u8; SIZE];
            Rng::derive(seed, label).fill(&mut v);
            v
        };
        let (up, down) = (data(1), data(2));
        let expect_up = gauntlet_proxies::rng::fnv1a(&up);
        let expect_down = gauntlet_proxies::rng::fnv1a(&down);
        let (log, _) = run(
            LinkConfig::new(ms(3), ms(2)),
            seed,
            |t| t.buffer(buffer),
            move |net: NetRef, log: Log| {
                let down = down.clone();
                async move {
                    let mut l = net.listen(80).await?;
                    let s = l.accept().await?;
                    let (mut r, mut w) = tokio::io::split(s);
                    let mut rng = Rng::derive(seed, 3);
                    let writer = async move {
                        let mut off = 0;
                        while off < down.len() {
                            let n = (1 + rng.below(9000) as usize).min(down.len() - off);
                            w.write_all(&down[off..off + n]).await?;
                            off += n;
                        }
                        w.shutdown().await
                    };
                    let mut rng = Rng::derive(seed, 4);
                    let reader = async move {
                        let mut got = Vec::new();
                        let mut buf = vec![0u8; 9000];
                        loop {
                            let want = 1 + rng.below(9000) as usize;
                            let n = r.read(&mut buf[..want]).await?;
                            if n == 0 {
                                return Ok::<_, std::io::Error>(got);
                            }
                            got.extend_from_slice(&buf[..n]);
                        }
                    };
                    let (w, got) = tokio::join!(writer, reader);
                    w?;
                    let got = got?;
                    log.borrow_mut().push(format!(
                        "server got {} {:x}",
                        got.len(),
                        gauntlet_proxies::rng::fnv1a(&got)
                    ));
                    std::future::pending().await
                }
            },
            move |net, log| async move {
                let s = net.connect("server", 80).await?;
                let (mut r, mut w) = tokio::io::split(s);
                let writer = async move {
                    for chunk in up.chunks(7777) {
                        w.write_all(chunk).await?;
                    }
                    w.shutdown().await
                };
                let reader = async move {
                    let mut got = Vec::new();
                    r.read_to_end(&mut got).await.map(|_| got)
                };
                let (w, got) = tokio::join!(writer, reader);
                w?;
                let got = got?;
                log.borrow_mut().push(format!(
                    "client got {} {:x}",
                    got.len(),
                    gauntlet_proxies::rng::fnv1a(&got)
                ));
                net.sleep_until(net.now() + ms(100)).await;
                Ok(())
            },
        );
        let mut log = log;
        log.sort();
        prop_assert_eq!(
            log,
            vec![
                format!("client got {SIZE} {expect_down:x}"),
                format!("server got {SIZE} {expect_up:x}"),
            ]
        );
    }
}
