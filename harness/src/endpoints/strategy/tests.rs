//! Strategies through models on the simulated network: when `ws-then-wss` falls back and when
//! it does not, the reconnection delay of `websocket-then-polling`, and how a trail reads.

use std::time::Duration;

use crate::engine::sim::Sim;
use crate::run::{RunOutput, run};
use crate::scenario::{StrategyKind, parse};
use crate::verdict::outcome::Outcome;

/// The run of `kind` of a scenario whose path is `path` (TOML hop tables), with `workload`
/// (TOML keys of `[client.workload]`), expecting `expect`, with `seed`.
fn strategy_run(
    path: &str,
    workload: &str,
    kind: StrategyKind,
    expect: &str,
    seed: u64,
) -> RunOutput {
    let text = format!(
        "format = 1\ntitle = \"t\"\nsource = \"s\"\n{path}\n[client]\nstrategies = [\"{kind}\"]\n\n[client.workload]\n{workload}\n\n[expect]\n{kind} = \"{expect}\"\n"
    );
    let scenario = parse("t.toml", &text).unwrap_or_else(|e| panic!("{e}"));
    let case = scenario.cases().remove(0);
    run(&Sim, &case, kind.scheme(), seed).unwrap_or_else(|e| panic!("{e}"))
}

fn results(out: &RunOutput) -> Vec<(&'static str, String)> {
    let trail = out.report.strategy.as_ref().expect("a trail");
    trail
        .attempts
        .iter()
        .map(|a| (a.transport, a.result.clone()))
        .collect()
}

/// A proxy that passes the 101 and then chokes on the first frame: `ws` delivered nothing, so
/// `wss` is tried, and delivers.
#[test]
fn ws_then_wss_falls_back_when_ws_delivers_nothing() {
    let path = "[[path]]\nmodel = \"transparent-proxy\"\nbehaviour = \"forward-then-choke\"\n";
    let out = strategy_run(
        path,
        "messages = 3",
        StrategyKind::WsThenWss,
        "fell-back",
        1,
    );
    assert_eq!(
        out.report.outcome,
        Outcome::FellBack,
        "{}",
        out.report.detail
    );
    assert_eq!(
        results(&out),
        [
            ("ws", "corrupted".to_string()),
            ("wss", "delivered".to_string())
        ]
    );
    assert_eq!(out.report.received, 3);
    assert!(
        out.report.detail.contains("over wss; ws corrupted"),
        "{}",
        out.report.detail
    );
}

/// A connection cut after its first message: the failure is the network's, not a proxy's
/// refusal, and `ws-then-wss` does not fall back.
#[test]
fn ws_then_wss_keeps_a_failure_after_the_first_message() {
    let path = "[[path]]\nmodel = \"idle-killer\"\ntimeout-ms = 1000\n";
    let workload = "messages = 2\nidle = [{ after-message = 1, ms = 2000 }]";
    let out = strategy_run(path, workload, StrategyKind::WsThenWss, "idle-closed", 1);
    assert_eq!(
        out.report.outcome,
        Outcome::IdleClosed,
        "{}",
        out.report.detail
    );
    assert_eq!(results(&out), [("ws", "idle-closed".to_string())]);
}

/// `websocket-then-polling` waits socket.io-client's reconnection delay, 1000 ms randomised by
/// half, drawn from the seed: the same for a seed, within [500, 1500] ms.
#[test]
fn the_reconnection_delay_is_socket_io_clients_drawn_from_the_seed() {
    let path = "[[path]]\nmodel = \"transparent-proxy\"\nbehaviour = \"strip\"\n";
    let mut delays = Vec::new();
    for seed in [1, 2, 3, 1] {
        let out = strategy_run(
            path,
            "messages = 1",
            StrategyKind::WebsocketThenPolling,
            "fell-back",
            seed,
        );
        assert_eq!(
            out.report.outcome,
            Outcome::FellBack,
            "{}",
            out.report.detail
        );
        let trail = out.report.strategy.as_ref().expect("a trail");
        let failed_at = trail.attempts[0].began + out.report.handshake.unwrap_or_default();
        let gap = trail.attempts[1]
            .began
            .saturating_sub(trail.attempts[0].began);
        assert!(
            gap >= Duration::from_millis(500) && gap <= Duration::from_millis(1600),
            "{gap:?} ({failed_at:?})"
        );
        delays.push(gap);
    }
    assert_eq!(delays[0], delays[3]);
    assert!(delays[..3].iter().any(|d| *d != delays[0]), "{delays:?}");
}

/// `upgrade = false` prefers polling: a session that stays there is `delivered`.
#[test]
fn without_the_upgrade_polling_is_no_fallback() {
    let text = "format = 1\ntitle = \"t\"\nsource = \"s\"\n[client]\nstrategies = [\"polling-then-upgrade\"]\n\n[client.polling-then-upgrade]\nupgrade = false\n\n[expect]\npolling-then-upgrade = \"delivered\"\n";
    let scenario = parse("t.toml", text).unwrap_or_else(|e| panic!("{e}"));
    let case = scenario.cases().remove(0);
    let out = run(&Sim, &case, case.client.schemes[0], 1).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        out.report.outcome,
        Outcome::Delivered,
        "{}",
        out.report.detail
    );
    assert_eq!(results(&out), [("polling", "delivered".to_string())]);
    assert_eq!(out.report.received, 5);
}
