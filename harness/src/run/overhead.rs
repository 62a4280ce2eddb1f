//! `gauntlet overhead`: bytes on the wire and latency per message for each transport, the
//! seed article's "1000:1" measured ([`measure`]), rendered by
//! [`gauntlet_reports::overhead`].
//!
//! Every cell is a scenario written here and run on the simulated engine twice, with
//! [`MESSAGES`]`.0` and [`MESSAGES`]`.1` messages: what one more message costs is the
//! difference of the two runs' bytes over the difference of their messages, so the
//! handshakes, the open and the close (the same in both) drop out.

use std::time::Duration;

use gauntlet_reports::overhead::{Cell, Overhead, Storm, Sweep};

use crate::engine::sim::Sim;
use crate::run::{RunError, run, run_crowd};
use crate::scenario::{self, ScenarioError};
use crate::verdict::outcome::Outcome;

/// The transports compared: the name in the tables, and the strategy (with its table) that
/// carries the workload on it. `streaming` is Server-Sent Events held open, messages to the
/// server by POST (`crate::endpoints::streaming`).
pub const TRANSPORTS: [(&str, &str); 4] = [
    ("ws", "strategies = [\"ws\"]"),
    ("wss", "strategies = [\"wss\"]"),
    (
        "long-polling",
        "strategies = [\"polling-then-upgrade\"]\n\n[client.polling-then-upgrade]\nupgrade = false",
    ),
    ("streaming", "strategies = [\"streaming\"]"),
];

/// Payload sizes of the size sweep (echoes at one a second), from a 2-byte message to
/// engine.io's default message limit's order (64 KiB).
pub const SIZES: [u64; 6] = [2, 32, 256, 1024, 16 * 1024, 64 * 1024];

/// Message rates of the rate sweep, per second, and the payload of its pushes (the
/// shortest a push can be: it carries its index and send time).
pub const RATES: [f64; 4] = [0.1, 1.0, 10.0, 100.0];
const RATE_PAYLOAD: u64 = 32;

/// The messages of the short and the long run of every cell.
pub const MESSAGES: (u64, u64) = (10, 110);

/// The one-way latency of every link, in milliseconds: a broadband path of 50 ms round trip.
pub const LINK_MS: u64 = 25;

/// Why the measurement could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OverheadError {
    /// A cell's scenario did not parse (a fault of this module, named with the text).
    #[error("the scenario of {cell} does not parse: {error}")]
    Scenario {
        /// The cell.
        cell: String,
        /// What the parser said.
        error: ScenarioError,
    },
    /// A run could not be carried out.
    #[error("{cell}: {error}")]
    Run {
        /// The cell.
        cell: String,
        /// Why.
        error: RunError,
    },
}

/// How many cells [`measure`] measures (the reconnect storms count one each).
pub fn cells() -> usize {
    (SIZES.len() + RATES.len()) * TRANSPORTS.len() + STORM_JITTER.len()
}

/// The clients of the reconnect storm, all cut at once.
pub const STORM_CLIENTS: usize = 10_000;

/// The storm's `randomization-factor`s: socket.io-client's default, and none.
pub const STORM_JITTER: [f64; 2] = [0.5, 0.0];

/// The windows the storm's connection rate is counted in.
pub const STORM_WINDOW: Duration = Duration::from_millis(100);

/// Runs every cell, calling `progress(done, total)` after each; the measurements, in sweep,
/// size or rate, then transport order.
pub fn measure(mut progress: impl FnMut(usize, usize)) -> Result<Overhead, OverheadError> {
    let mut plan: Vec<(Sweep, &str, &str, u64, f64)> = Vec::new();
    for size in SIZES {
        for (name, strategy) in TRANSPORTS {
            plan.push((Sweep::Size, name, strategy, size, 1.0));
        }
    }
    for rate in RATES {
        for (name, strategy) in TRANSPORTS {
            plan.push((Sweep::Rate, name, strategy, RATE_PAYLOAD, rate));
        }
    }
    let mut cells = Vec::new();
    for (i, &(sweep, name, strategy, payload, rate)) in plan.iter().enumerate() {
        cells.push(cell(sweep, name, strategy, payload, rate)?);
        progress(i + 1, plan.len());
    }
    let mut storms = Vec::new();
    for jitter in STORM_JITTER {
        storms.push(storm(jitter, STORM_CLIENTS)?);
        progress(plan.len() + storms.len(), plan.len() + STORM_JITTER.len());
    }
    Ok(Overhead {
        browser: "Chromium 156".into(),
        link_ms: LINK_MS as f64,
        messages: MESSAGES,
        cells,
        storms,
    })
}

/// The reconnect storm: `clients` WebSocket clients connect at once through a
/// 30 s lifetime cap (GCP's backend service timeout), which cuts them all together; each
/// reconnects with socket.io-client's backoff at `jitter`. The peak is the most connections
/// begun in one [`STORM_WINDOW`] after the cut, as a rate.
fn storm(jitter: f64, clients: usize) -> Result<Storm, OverheadError> {
    let name = format!("the reconnect storm at randomization {jitter}");
    let text = format!(
        "format = 1\ntitle = \"storm\"\nsource = \"gauntlet overhead\"\n\n\
         [network]\nlatency-ms = {LINK_MS}\n\n\
         [[path]]\nmodel = \"lifetime-cap\"\npreset = \"gcp-backend\"\n\n\
         [client]\nstrategies = [\"ws\"]\n\n\
         [client.reconnect]\nrandomization-factor = {jitter}\n\n\
         [client.workload]\nmessages = 2\ninterval-ms = 40000\n\n\
         [expect]\nws = \"reconnected\"\n"
    );
    let parsed = scenario::parse(&format!("overhead: {name}"), &text).map_err(|error| {
        OverheadError::Scenario {
            cell: name.clone(),
            error,
        }
    })?;
    let case = parsed.cases().remove(0);
    let out = run_crowd(&Sim, &case, case.client.schemes[0], 1, clients)
        .map_err(|error| OverheadError::Run { cell: name, error })?;
    // Every attempt after a client's first is a reconnection.
    let mut began: Vec<Duration> = out
        .reports
        .iter()
        .filter_map(|r| r.strategy.as_ref())
        .flat_map(|t| t.attempts.iter().skip(1).map(|a| a.began))
        .collect();
    began.sort();
    let window = STORM_WINDOW.as_nanos();
    let mut peak = 0usize;
    let mut start = 0usize;
    for end in 0..began.len() {
        while began[end] - began[start] >= STORM_WINDOW {
            start += 1;
        }
        peak = peak.max(end - start + 1);
    }
    let reconnected = out
        .outcomes
        .get(&Outcome::Reconnected)
        .copied()
        .unwrap_or(0);
    let ms = |d: Option<&Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    Ok(Storm {
        clients: clients as u64,
        randomization: jitter,
        reconnected: reconnected as u64,
        reconnections: began.len() as u64,
        peak_per_s: peak as f64 * 1e9 / window as f64,
        window_ms: STORM_WINDOW.as_secs_f64() * 1000.0,
        first_ms: ms(began.first()),
        last_ms: ms(began.last()),
    })
}

/// One cell: the short and the long run.
fn cell(
    sweep: Sweep,
    transport: &str,
    strategy: &str,
    payload: u64,
    rate: f64,
) -> Result<Cell, OverheadError> {
    let name = format!("{transport}, {payload} B at {rate}/s");
    let (short, long) = MESSAGES;
    let short_run = once(&name, sweep, strategy, payload, rate, short)?;
    let long_run = once(&name, sweep, strategy, payload, rate, long)?;
    let more = (long - short) as f64;
    let up = (long_run.report.wire.up as f64 - short_run.report.wire.up as f64) / more;
    let down = (long_run.report.wire.down as f64 - short_run.report.wire.down as f64) / more;
    let total = (long_run.report.wire.up + long_run.report.wire.down) as f64;
    let delivered = [&short_run, &long_run]
        .iter()
        .all(|r| matches!(r.report.outcome, Outcome::Delivered | Outcome::FellBack));
    Ok(Cell {
        sweep,
        transport: transport.to_string(),
        payload_bytes: payload,
        rate_per_s: rate,
        outcome: if delivered {
            Outcome::Delivered.to_string()
        } else {
            long_run.report.outcome.to_string()
        },
        up_per_message: up,
        down_per_message: down,
        setup_bytes: total - (up + down) * long as f64,
        latency: long_run.latency,
    })
}

/// One run of a cell with `messages` messages.
fn once(
    name: &str,
    sweep: Sweep,
    strategy: &str,
    payload: u64,
    rate: f64,
    messages: u64,
) -> Result<crate::run::RunOutput, OverheadError> {
    let text = scenario_text(sweep, strategy, payload, rate, messages);
    let parsed = scenario::parse(&format!("overhead: {name}"), &text).map_err(|error| {
        OverheadError::Scenario {
            cell: name.to_string(),
            error,
        }
    })?;
    let case = parsed.cases().remove(0);
    let scheme = case.client.schemes[0];
    run(&Sim, &case, scheme, 1).map_err(|error| OverheadError::Run {
        cell: name.to_string(),
        error,
    })
}

/// The scenario of a cell: a direct path, the browser's heads, the sweep's workload.
fn scenario_text(sweep: Sweep, strategy: &str, payload: u64, rate: f64, messages: u64) -> String {
    let kind = match sweep {
        Sweep::Size => "echo",
        Sweep::Rate => "push",
    };
    let interval_ms = (1000.0 / rate).round() as u64;
    format!(
        "format = 1\n\
         title = \"overhead\"\n\
         source = \"gauntlet overhead\"\n\n\
         [network]\n\
         latency-ms = {LINK_MS}\n\n\
         [client]\n\
         browser = \"chromium\"\n\
         {strategy}\n\n\
         [client.workload]\n\
         kind = \"{kind}\"\n\
         messages = {messages}\n\
         interval-ms = {interval_ms}\n\
         payload-bytes = {payload}\n\
         reply-timeout-ms = 30000\n\n\
         [expect]\n\
         {} = \"delivered\"\n",
        strategy_name(strategy)
    )
}

/// The strategy a transport's text names.
fn strategy_name(strategy: &str) -> &str {
    strategy.split('"').nth(1).unwrap_or("ws")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cell_scenario_parses() {
        for sweep in [Sweep::Size, Sweep::Rate] {
            for (name, strategy) in TRANSPORTS {
                let text = scenario_text(sweep, strategy, 64, 0.1, MESSAGES.1);
                if let Err(e) = scenario::parse(name, &text) {
                    panic!("{e}\n{text}");
                }
            }
        }
    }

    #[test]
    fn jitter_spreads_a_storm_that_without_it_comes_back_in_one_instant() {
        let flat = storm(0.0, 200).unwrap();
        assert_eq!((flat.reconnected, flat.reconnections), (200, 200));
        assert_eq!(flat.last_ms, flat.first_ms);
        assert_eq!(flat.peak_per_s, 2000.0, "all 200 in one 100 ms window");
        let spread = storm(0.5, 200).unwrap();
        assert_eq!(spread.reconnected, 200);
        assert!(spread.last_ms - spread.first_ms > 500.0, "{spread:?}");
        assert!(spread.peak_per_s < flat.peak_per_s / 3.0, "{spread:?}");
    }

    #[test]
    fn a_websocket_message_costs_its_frame_and_a_poll_costs_its_heads() {
        let ws = cell(Sweep::Size, "ws", TRANSPORTS[0].1, 2, 1.0).unwrap();
        // A 2-byte text frame: 2 bytes of header and a 4-byte mask from the client, 2 bytes
        // of header from the server, the payload each way.
        assert_eq!((ws.up_per_message, ws.down_per_message), (8.0, 4.0));
        let polling = cell(Sweep::Size, "long-polling", TRANSPORTS[2].1, 2, 1.0).unwrap();
        assert_eq!(polling.outcome, "delivered");
        assert!(polling.up_per_message > 500.0, "{polling:?}");
    }
}
