//! Ten runs covering what the reports must show: passes and failures, several seeds of one
//! scenario disagreeing, `degraded`, a harness error, runs without latency data, a group with
//! latency summaries but no samples, a scenario with only one scheme, and text full of
//! characters that XML, HTML and Markdown treat specially.

use gauntlet_reports::{Handshake, Latency, Results, Run};

pub const DIRECT: &str = "scenarios/baseline/direct.toml";
pub const STRIP: &str = "scenarios/seeds/transparent-strip.toml";
pub const IDLE: &str = "scenarios/products/nginx-proxy-read-timeout.toml";
pub const BUFFERING: &str = "scenarios/seeds/buffering-proxy-delays-pushes.toml";
pub const ODD: &str = "scenarios/regressions/odd \"name\" & <chars> 'here'.toml";

/// The failure detail with markup, an entity-like string, both quotes and a URL.
pub const NASTY_DETAIL: &str = "closed abnormally (1006) at 60000 ms after <html>&nbsp;\"502 Bad Gateway\" & 'bye'; see http://proxy.invalid/help";

/// The harness error's detail: a pipe, backticks and a line break.
pub const ERROR_DETAIL: &str = "topology: unknown host `srv|2`\nsecond line";

fn run(scenario: &str, scheme: &str, seed: u64, expected: &str, outcome: &str) -> Run {
    Run {
        scenario: scenario.into(),
        scheme: scheme.into(),
        seed,
        expected: expected.into(),
        outcome: outcome.into(),
        pass: expected == outcome,
        detail: String::new(),
        sim_ms: 500,
        wall_ms: 2,
        transcript_hash: format!("{seed:016x}"),
        ..Run::default()
    }
}

/// A run that carried messages: samples, their percentiles, a median and a handshake.
fn with_samples(mut r: Run, kind: &str, handshake: Handshake, samples: &[f64]) -> Run {
    r.kind = kind.into();
    r.handshake = Some(handshake);
    r.handshake_ms = Some(
        handshake.connect_ms.unwrap_or(0.0)
            + handshake.tls_ms.unwrap_or(0.0)
            + handshake.upgrade_ms.unwrap_or(0.0),
    );
    r.samples_ms = samples.to_vec();
    r.latency = Latency::from_samples(samples);
    r.rtt_median_ms = r.latency.map(|l| l.p50);
    r.sent = samples.len() as u64;
    r.received = samples.len() as u64;
    r.detail = format!("{n}/{n} echoed, closed 1000", n = samples.len());
    r
}

const WS: Handshake = Handshake {
    connect_ms: Some(5.0),
    tls_ms: None,
    upgrade_ms: Some(10.0),
};
const WSS: Handshake = Handshake {
    connect_ms: Some(5.0),
    tls_ms: Some(20.0),
    upgrade_ms: Some(10.0),
};

pub fn results() -> Results {
    let mut results = Results::new("turmoil");
    let mut runs = vec![
        with_samples(
            run(DIRECT, "ws", 1, "delivered", "delivered"),
            "direct",
            WS,
            &[10.0, 10.0, 10.5, 11.0, 12.0],
        ),
        with_samples(
            run(DIRECT, "wss", 1, "delivered", "delivered"),
            "direct",
            WSS,
            &[10.0, 11.0, 10.0, 13.0, 11.0],
        ),
        {
            let mut r = run(STRIP, "ws", 1, "handshake-rejected", "handshake-rejected");
            r.kind = "transparent-proxy".into();
            r.detail = "426 Upgrade Required".into();
            r.handshake = Some(Handshake {
                connect_ms: Some(5.0),
                ..Handshake::default()
            });
            r.time_to_failure_ms = Some(30.0);
            r.sent = 0;
            r
        },
        with_samples(
            run(STRIP, "wss", 1, "delivered", "delivered"),
            "transparent-proxy",
            WSS,
            &[20.0, 20.0, 21.0, 20.0, 25.0],
        ),
        {
            let mut r = with_samples(
                run(IDLE, "ws", 1, "idle-closed", "idle-closed"),
                "idle-killer",
                WS,
                &[20.0, 20.0],
            );
            r.detail = "closed without a Close frame (1006) at 60020 ms, 2/2 echoed".into();
            r.time_to_failure_ms = Some(60020.0);
            r.sim_ms = 60020;
            r
        },
        {
            let mut r = with_samples(
                run(IDLE, "ws", 2, "idle-closed", "dropped"),
                "idle-killer",
                WS,
                &[21.0, 20.0],
            );
            r.detail = NASTY_DETAIL.into();
            r.time_to_failure_ms = Some(60000.0);
            r.sim_ms = 60000;
            r
        },
        {
            // A latency summary without samples: the report must still show its percentiles.
            let mut r = run(IDLE, "wss", 1, "idle-closed", "idle-closed");
            r.kind = "idle-killer".into();
            r.handshake = Some(WSS);
            r.handshake_ms = Some(35.0);
            r.latency = Some(Latency {
                p50: 20.0,
                p90: 22.0,
                p99: 22.0,
                max: 22.0,
                count: 2,
            });
            r.detail = "closed without a Close frame (1006) at 60035 ms, 2/2 echoed".into();
            r.time_to_failure_ms = Some(60035.0);
            r.sim_ms = 60035;
            r
        },
        {
            let mut r = with_samples(
                run(BUFFERING, "ws", 1, "delivered", "degraded"),
                "buffering-proxy",
                WS,
                &[150.0, 300.0, 450.0, 600.0, 750.0, 900.0],
            );
            r.detail = "6/6 pushes, p99 900 ms over the 100 ms bound".into();
            r
        },
        with_samples(
            run(BUFFERING, "wss", 1, "delivered", "delivered"),
            "buffering-proxy",
            WSS,
            &[10.0, 10.0, 10.0, 10.5, 11.0],
        ),
        {
            let mut r = run(ODD, "ws", 7, "delivered", "harness-error");
            r.detail = ERROR_DETAIL.into();
            r.sim_ms = 0;
            r.transcript_hash = String::new();
            r
        },
    ];
    // Not in report order, as a file may not be.
    runs.rotate_left(3);
    results.runs = runs;
    results
}

/// Two populations' results: one that sweeps the ping interval (with a marked idle limit) and
/// one that does not, each cell with outcomes, times to the first message and losses, and
/// strategy names long enough to test the charts' margins.
pub fn populations() -> gauntlet_reports::population::Populations {
    use gauntlet_reports::population::{
        Calibration, Cell, Mark, PathInfo, PathTally, Population, Populations, VERSION,
    };
    let cell = |strategy: &str, ping: Option<u64>, succeeded: u64| Cell {
        strategy: strategy.into(),
        ping_interval_ms: ping,
        reconnect: None,
        sessions: 10_000,
        succeeded,
        outcomes: [
            ("delivered".to_string(), succeeded),
            ("idle-closed".to_string(), 10_000 - succeeded),
        ]
        .into_iter()
        .collect(),
        paths: vec![PathTally {
            sessions: 10_000,
            succeeded,
        }],
        first_message_ms: vec![(40, succeeded / 2), (400, succeeded / 2)],
        messages: 60_000,
        lost: 10_000 - succeeded,
        reconnects: 0,
        session_ms: 6_000_000_000,
    };
    let population = |name: &str, pinged: bool| Population {
        name: name.into(),
        file: format!("scenarios/populations/{name}.toml"),
        title: format!("{name}, for the report's test"),
        source: "a fixture".into(),
        seed: 1,
        input: "0".into(),
        paths: vec![PathInfo {
            name: "behind-a-balancer-with-a-long-name".into(),
            share: 1.0,
            source: "a fixture".into(),
        }],
        marks: vec![Mark {
            label: "AWS ALB".into(),
            ms: 60_000,
        }],
        calibration: vec![Calibration {
            what: "a field rate".into(),
            strategy: "long-polling".into(),
            rate: 0.9,
        }],
        cells: if pinged {
            vec![
                cell("ws", Some(30_000), 9_800),
                cell("ws", Some(90_000), 4_000),
                cell("wss-then-streaming", None, 9_000),
                cell("long-polling", None, 9_990),
            ]
        } else {
            vec![cell("ws", None, 8_700), cell("long-polling", None, 9_020)]
        },
    };
    Populations {
        version: VERSION,
        sessions: 10_000,
        shard: None,
        populations: vec![
            population("cloud-balancers-with-a-long-name", true),
            population("huang-2011", false),
        ],
    }
}
