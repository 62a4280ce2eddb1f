//! Same seed, same results: the whole catalogue twice on the default engine, compared apart
//! from wall time; other seeds; and the two engines against each other.

use std::collections::BTreeMap;

use gauntlet::engine;
use gauntlet::run::suite::{Selection, run_all};
use gauntlet::scenario;
use gauntlet_reports::{Results, Run};

fn catalogue(engine: &str, seed: Option<u64>, seeds: Option<u64>) -> Results {
    let sel = Selection {
        paths: vec![crate::root().join("scenarios")],
        filter: None,
        scheme: None,
        seed,
        seeds,
    };
    let mut results = run_all(engine, &sel, 2).unwrap_or_else(|errors| {
        panic!(
            "{}",
            errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    for r in &mut results.runs {
        r.wall_ms = 0;
    }
    results
}

fn failures(results: &Results) -> Vec<String> {
    results
        .runs
        .iter()
        .filter(|r| !r.pass)
        .map(|r| {
            format!(
                "{} {} seed {}: {} ({})",
                r.scenario, r.scheme, r.seed, r.outcome, r.detail
            )
        })
        .collect()
}

#[test]
fn the_catalogue_run_twice_with_one_seed_gives_identical_results() {
    let first = catalogue(engine::DEFAULT, Some(1), None);
    let second = catalogue(engine::DEFAULT, Some(1), None);
    assert!(first.runs.len() >= 10, "only {} runs", first.runs.len());
    assert!(first.runs.iter().all(|r| !r.transcript_hash.is_empty()));
    assert!(
        first
            .runs
            .iter()
            .all(|r| r.events > 0 && r.event_hash.len() == 16)
    );
    assert_eq!(first.to_json(), second.to_json());
}

#[test]
fn other_seeds_still_meet_every_expectation() {
    let results = catalogue(engine::DEFAULT, None, Some(4));
    let failed = failures(&results);
    assert!(failed.is_empty(), "{failed:#?}");
}

/// TLS 1.2 is as deterministic as 1.3 (Ed25519 signatures: every handshake has the same
/// sizes), and `[server] tls-version` reaches the server: pinned to 1.2, the handshake's
/// socket operations differ from 1.3's, which the default (both, the client offering both)
/// negotiates. Direct, and through a TLS inspector whose upstream session meets the server.
#[test]
fn a_server_pinned_to_either_tls_version_gives_identical_runs_twice() {
    use gauntlet::engine::sim::Sim;
    use gauntlet::scenario::Scheme;
    use gauntlet::tls::TlsVersions;
    use gauntlet::verdict::outcome::Outcome;

    for file in [
        "scenarios/baseline/direct.toml",
        "scenarios/products/corporate-tls-inspection-passes.toml",
    ] {
        let mut s = scenario::load(&crate::root().join(file)).expect("a valid scenario");
        let mut hashes = BTreeMap::new();
        for versions in TlsVersions::ALL {
            s.server.tls_version = versions;
            let [first, second] = [0, 1].map(|_| {
                gauntlet::run::run(&Sim, &s, Scheme::Wss, 1)
                    .unwrap_or_else(|e| panic!("{file} TLS {versions}: {e:#}"))
            });
            assert_eq!(
                first.report.outcome,
                Outcome::Delivered,
                "{file} TLS {versions}: {}",
                first.rendered()
            );
            assert_eq!(first.rendered(), second.rendered(), "{file} TLS {versions}");
            assert_eq!(
                (first.events.count(), first.events.hash()),
                (second.events.count(), second.events.hash()),
                "{file} TLS {versions}"
            );
            hashes.insert(versions.name(), first.events.hash());
        }
        assert_ne!(hashes["1.2"], hashes["1.3"], "{file}");
        assert_eq!(hashes["any"], hashes["1.3"], "{file}");
    }
}

/// The largest difference allowed between the engines' latency figures for one run, or `None`
/// where they are not comparable. turmoil completes a TCP connect in one link latency, `sim`
/// in a round trip, so each connection opened on the way adds one latency (a path of `hops`
/// intermediaries opens at most `hops + 2`, counting a retry); turmoil's 1 ms tick rounds
/// each hop's send. With jitter the engines draw different delays (turmoil's latency curve,
/// `sim`'s uniform draw), so only outcomes are compared. So too for messages larger than a
/// connection's buffer: `sim` holds at most `engine::DEFAULT_BUFFER` bytes in flight per
/// direction, so such a message takes extra round trips, while turmoil has no flow control.
fn tolerance_ms(run: &Run) -> Option<f64> {
    let s = scenario::load(&crate::root().join(&run.scenario)).ok()?;
    // A reader that stops (`read-pause-ms`): sim's flow control holds the server back until
    // it reads again, where turmoil buffers every push at once, so the latencies differ by
    // the pause.
    let w = &s.client.workload;
    if s.network.jitter_ms > 0 || w.payload_bytes > engine::DEFAULT_BUFFER || w.read_pause.is_some()
    {
        return None;
    }
    let hops = s.path.len() as f64;
    Some(s.network.latency_ms as f64 * (hops + 2.0) + hops + 1.0)
}

#[test]
fn both_engines_give_the_same_outcomes_and_latencies_within_tolerance() {
    let sim = catalogue("sim", None, None);
    let turmoil = catalogue("turmoil", None, None);
    assert_eq!(sim.runs.len(), turmoil.runs.len());
    let mut disagreements = Vec::new();
    let mut compared = BTreeMap::<&str, usize>::new();
    for (a, b) in sim.runs.iter().zip(&turmoil.runs) {
        let name = format!("{} {} seed {}", a.scenario, a.scheme, a.seed);
        assert_eq!(
            (&a.scenario, &a.scheme, a.seed),
            (&b.scenario, &b.scheme, b.seed)
        );
        if a.outcome != b.outcome {
            disagreements.push(format!("{name}: sim {}, turmoil {}", a.outcome, b.outcome));
            continue;
        }
        let Some(tolerance) = tolerance_ms(a) else {
            *compared.entry("outcome only (jitter)").or_default() += 1;
            continue;
        };
        for (what, x, y) in [
            ("handshake", a.handshake_ms, b.handshake_ms),
            ("median latency", a.rtt_median_ms, b.rtt_median_ms),
        ] {
            match (x, y) {
                (Some(x), Some(y)) if (x - y).abs() > tolerance => disagreements.push(format!(
                    "{name}: {what} sim {x} ms, turmoil {y} ms, beyond {tolerance} ms"
                )),
                (Some(_), None) | (None, Some(_)) => {
                    disagreements.push(format!("{name}: {what} sim {x:?}, turmoil {y:?}"));
                }
                _ => {}
            }
        }
        *compared.entry("outcome and latencies").or_default() += 1;
    }
    assert!(disagreements.is_empty(), "{disagreements:#?}");
    assert!(compared["outcome and latencies"] > compared.values().sum::<usize>() / 2);
    assert!(failures(&sim).is_empty(), "{:#?}", failures(&sim));
}
