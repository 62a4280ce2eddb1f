//! Strategies through models on the simulated network: when `ws-then-wss` falls back and when
//! it does not, the reconnection delay of `websocket-then-polling`, how a trail reads,
//! `detect-then-wss` falling back sooner than `ws-then-wss`, and `wss-then-streaming`.

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

/// A proxy that passes the 101 and holds the first frame (an antivirus holding a response's
/// first chunk): `detect-then-wss` takes the stall for an uncooperative proxy after
/// `detect-timeout-ms` and goes to `wss`; `ws-then-wss` goes too, after `reply-timeout-ms`.
#[test]
fn detect_then_wss_falls_back_sooner_than_ws_then_wss() {
    let path = "[[path]]\nmodel = \"buffering-proxy\"\npreset = \"antivirus-hold-first\"\n";
    let wss_began = |kind| {
        let out = strategy_run(path, "messages = 2", kind, "fell-back", 1);
        assert_eq!(
            out.report.outcome,
            Outcome::FellBack,
            "{}",
            out.report.detail
        );
        assert_eq!(
            results(&out),
            [
                ("ws", "stalled".to_string()),
                ("wss", "delivered".to_string())
            ]
        );
        out.report.strategy.as_ref().expect("a trail").attempts[1].began
    };
    let detected = wss_began(StrategyKind::DetectThenWss);
    let waited = wss_began(StrategyKind::WsThenWss);
    // The first echo is sent once the 101 is in (30 ms), then 800 ms or 5000 ms.
    assert!(detected < Duration::from_millis(1000), "{detected:?}");
    assert!(waited >= Duration::from_millis(5000), "{waited:?}");
}

/// `[client.detect-then-wss] detect-timeout-ms` sets the first message's deadline, and only
/// its: the second may take `reply-timeout-ms`.
#[test]
fn the_detect_timeout_is_the_first_messages_only() {
    let text = "format = 1\ntitle = \"t\"\nsource = \"s\"\n[client]\nstrategies = [\"detect-then-wss\"]\n\n[client.detect-then-wss]\ndetect-timeout-ms = 1500\n\n[expect]\ndetect-then-wss = \"delivered\"\n";
    let scenario = parse("t.toml", text).unwrap_or_else(|e| panic!("{e}"));
    let case = scenario.cases().remove(0);
    let strategy = case.strategy.as_ref().expect("a strategy");
    assert_eq!(strategy.detect_timeout, Duration::from_millis(1500));
    let mut w = case.client.workload.clone();
    w.first_reply_timeout = Some(strategy.detect_timeout);
    assert_eq!(w.reply_timeout_for(0), Duration::from_millis(1500));
    assert_eq!(w.reply_timeout_for(1), w.reply_timeout);
    let out = run(&Sim, &case, case.client.schemes[0], 1).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        out.report.outcome,
        Outcome::Delivered,
        "{}",
        out.report.detail
    );
    let unlisted = text
        .replace(
            "strategies = [\"detect-then-wss\"]",
            "strategies = [\"ws\"]",
        )
        .replace("detect-then-wss = \"delivered\"", "ws = \"delivered\"");
    let err = parse("t.toml", &unlisted).expect_err("a table for an unlisted strategy");
    assert!(
        err.to_string().contains("`[client.detect-then-wss]`"),
        "{err}"
    );
}

/// `wss-then-streaming` through an interceptor that strips the upgrade: wss is refused, the
/// stream over TLS delivers, and the run is `fell-back` over `https-streaming`.
#[test]
fn wss_then_streaming_falls_back_to_https_streaming() {
    let path = "[[path]]\nmodel = \"tls-intercepting-proxy\"\ninner = \"strip\"\n";
    let kind = StrategyKind::WssThenStreaming;
    let out = strategy_run(path, "messages = 3", kind, "fell-back", 1);
    assert_eq!(
        out.report.outcome,
        Outcome::FellBack,
        "{}",
        out.report.detail
    );
    assert_eq!(
        results(&out),
        [
            ("wss", "handshake-rejected".to_string()),
            ("https-streaming", "delivered".to_string())
        ]
    );
    assert!(
        out.report
            .detail
            .contains("over https-streaming; wss handshake-rejected"),
        "{}",
        out.report.detail
    );
}
