//! Scenario files, format 1: TOML, read into a validated [`Scenario`]. Every mistake is
//! reported as a [`ScenarioError`] naming the file, line and column and what was expected;
//! no input makes this module panic. The format is documented in `scenarios/README.md`.
//!
//! This file holds [`Scenario`] itself, the tables that are a few plain values (`[network]`,
//! `[server]`, `[[faults]]`, `[bounds]`) and the limits on its numbers. The client's settings
//! are in `client.rs`, its strategies in `strategy.rs`, the path's hops in `hop.rs`, the tables as the TOML reader gives them
//! in `raw.rs`, their validation, one function per table, in `parse/`, and the error in
//! `error.rs`.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::real::product::command::CommandLine;
use crate::tls::TlsVersions;
use crate::verdict::outcome::Outcome;

mod client;
mod error;
mod hop;
mod parse;
mod raw;
mod reconnect;
mod strategy;

pub use client::{
    Browser, CONNECT_AUTHORITY, CONNECT_PATH_FIELD, Client, DEFAULT_CLOSE_REASON, Handshake, Idle,
    NORMAL_CLOSE, RequestShape, Route, Scheme, Workload, WorkloadKind, close_code_valid,
};
pub use error::ScenarioError;
pub use hop::{CommandHop, Hop, ProductHop, host_names};
pub use parse::{load, parse};
pub use reconnect::{Reconnect, WhileDisconnected};
pub use strategy::{DEFAULT_DETECT_TIMEOUT, EngineIoParams, Strategy, StrategyKind};

pub(crate) use error::{joined, locate};
pub(crate) use parse::millisecond_beyond_limit;

/// The format version this build reads.
pub const FORMAT: u32 = 1;

/// The most bytes a message may carry.
pub const MAX_PAYLOAD_BYTES: usize = 16 << 20;
/// The most messages a workload may send.
pub const MAX_MESSAGES: u32 = 1_000_000;
/// The longest any millisecond value in a scenario file may be (every key named `ms` or ending
/// in `-ms`, hop parameters included), and the longest a workload's schedule (the intervals
/// between its messages and its idle periods, together) may last: 365 days. Far beyond any
/// product's timeout, and small enough that no sum a run makes of such values (its time
/// limit counts every message's reply timeout, a million of them at most) comes near what
/// the simulated clock can count.
pub const MAX_MS: u64 = 365 * 24 * 60 * 60 * 1000;
/// The largest scenario file read: 4 MiB, hundreds of times the largest in the catalogue.
pub const MAX_FILE_BYTES: u64 = 4 << 20;

/// The most concurrent sessions a scenario's client opens (`[client] sessions`).
pub const MAX_SESSIONS: u32 = 10_000;

/// The most subprotocols a scenario's client offers (`[client] subprotocols`).
pub const MAX_SUBPROTOCOLS: usize = 32;

/// The reference server's settings (`[server]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Server {
    /// The TLS versions its wss listener accepts (`tls-version`): both unless pinned.
    pub tls_version: TlsVersions,
    /// A real server program instead of the reference server (`command`, live engine only):
    /// every server host starts one, listening where `{listen}` says, published as its
    /// port 80.
    pub command: Option<CommandLine>,
}

/// Latency on every link of the simulated network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Network {
    /// One-way latency of each message on each link, in milliseconds. Default 5.
    #[serde(default = "default_latency_ms")]
    pub latency_ms: u64,
    /// Extra latency up to this much, drawn from the run's seed, in milliseconds. Default 0.
    #[serde(default)]
    pub jitter_ms: u64,
}

fn default_latency_ms() -> u64 {
    5
}

impl Default for Network {
    fn default() -> Self {
        Self {
            latency_ms: default_latency_ms(),
            jitter_ms: 0,
        }
    }
}

/// A fault injected into a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// When, in simulated time from the start.
    pub at: Duration,
    /// The server host that crashes: its connections are reset and it accepts no more.
    pub crash: String,
}

/// A validated scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    /// The file it was read from, as given.
    pub file: String,
    /// One line saying what it shows.
    pub title: String,
    /// Where the claim comes from.
    pub source: String,
    /// Free-form labels.
    pub tags: Vec<String>,
    /// Seeds to run; each is a separate run per scheme.
    pub seeds: Vec<u64>,
    /// Link latency.
    pub network: Network,
    /// The hops from client to server, in order.
    pub path: Vec<Hop>,
    /// The scenario this one pairs with in the differential suite (`twin = "..."`, resolved
    /// against this file's folder): the same situation with a model in place of a real
    /// product, expected to end the same way.
    pub twin: Option<PathBuf>,
    /// Faults injected at fixed simulated times.
    pub faults: Vec<Fault>,
    /// The reference client.
    pub client: Client,
    /// The reference server (every server host of the path).
    pub server: Server,
    /// The expected outcome per scheme, in the order of `client.schemes`.
    pub expect: Vec<(Scheme, Outcome)>,
    /// The expected outcome per strategy, in the order of `client.strategies`; empty when the
    /// file lists `schemes`.
    pub expect_strategies: Vec<(StrategyKind, Outcome)>,
    /// The strategy this scenario runs: `None` as read from a file; each of its
    /// [`cases`](Scenario::cases) runs one of `client.strategies`, if it lists any.
    pub strategy: Option<Strategy>,
    /// Latency bounds: a run that would be `delivered` but breaks one is `degraded`.
    pub bounds: Bounds,
}

/// Latency bounds (`[bounds]`), each optional. Percentiles are of the run's message latencies
/// (round trips for echo, one-way for push), as an HDR histogram reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bounds {
    /// Median latency at most this.
    pub latency_p50: Option<Duration>,
    /// 90th percentile at most this.
    pub latency_p90: Option<Duration>,
    /// 99th percentile at most this.
    pub latency_p99: Option<Duration>,
    /// No latency above this.
    pub latency_max: Option<Duration>,
    /// TCP connect to 101 within this.
    pub handshake: Option<Duration>,
}

impl Scenario {
    /// What the file's runs are, each a scenario run for its schemes: the scenario itself when
    /// it lists `schemes`; when it lists `strategies`, one scenario per strategy, whose
    /// `strategy` is it, whose only scheme is the strategy's (its first attempt's) and whose
    /// expectation is the strategy's.
    pub fn cases(&self) -> Vec<Scenario> {
        if self.client.strategies.is_empty() {
            return vec![self.clone()];
        }
        self.client
            .strategies
            .iter()
            .map(|strategy| {
                let mut case = self.clone();
                let scheme = strategy.kind.scheme();
                case.client.schemes = vec![scheme];
                case.expect = self
                    .expect_strategies
                    .iter()
                    .filter(|(k, _)| *k == strategy.kind)
                    .map(|(_, o)| (scheme, *o))
                    .collect();
                case.strategy = Some(strategy.clone());
                case
            })
            .collect()
    }

    /// The name a run of this scenario with `scheme` goes by in results and reports: the
    /// strategy's when it runs one, else the scheme's.
    pub fn case_name(&self, scheme: Scheme) -> &'static str {
        self.strategy
            .as_ref()
            .map_or(scheme.as_str(), |s| s.kind.as_str())
    }

    /// The expected outcome for `scheme`, if it is run.
    pub fn expected(&self, scheme: Scheme) -> Option<Outcome> {
        self.expect
            .iter()
            .find(|(s, _)| *s == scheme)
            .map(|(_, o)| *o)
    }

    /// Whether only the live engine can run it: a real program stands for a hop or for the
    /// server.
    pub fn needs_live(&self) -> bool {
        self.path.iter().any(Hop::is_real) || self.server.command.is_some()
    }

    /// The longest a run can last in simulated time, given every timeout in the workload:
    /// the engine's backstop.
    pub fn time_limit(&self) -> Duration {
        let w = &self.client.workload;
        if w.kind == WorkloadKind::Smuggle {
            // Two connections (the attack, the victim's fetch), each with its handshake
            // budget; the attack's answer, its close, and the fetch's answer.
            return self
                .client
                .handshake_timeout
                .saturating_mul(2)
                .saturating_add(w.reply_timeout.saturating_mul(4))
                .saturating_add(Duration::from_secs(10));
        }
        // `parse` keeps every term within a year and the messages within a million, so
        // nothing saturates for a scenario read from a file; one built by hand saturates.
        let idle = w.idle.iter().fold(Duration::ZERO, |sum, i| {
            sum.saturating_add(Duration::from_millis(i.ms))
        });
        let per_message = w.interval.saturating_add(w.reply_timeout);
        let one = [
            self.client.handshake_timeout,
            per_message.saturating_mul(w.messages),
            idle,
            w.reply_timeout.saturating_mul(2),
            Duration::from_secs(10),
        ]
        .into_iter()
        .fold(Duration::ZERO, Duration::saturating_add);
        // A strategy may make a second attempt, each waiting up to its own timeouts; with
        // reconnection, as many more as it may make: each message may be carried by a
        // connection of its own, after up to `attempts` that carry none.
        if let Some(r) = self.strategy.as_ref().and_then(|s| s.reconnect) {
            let attempt = self
                .client
                .handshake_timeout
                .saturating_add(w.reply_timeout.saturating_mul(2))
                .saturating_add(r.delay_max)
                .saturating_add(
                    self.strategy
                        .as_ref()
                        .map_or(Duration::ZERO, |s| s.engineio.longest_attempt()),
                );
            return one.saturating_mul(2).saturating_add(
                attempt
                    .saturating_mul(r.attempts.saturating_add(1))
                    .saturating_mul(w.messages.saturating_add(1)),
            );
        }
        match &self.strategy {
            None => one,
            Some(s) if s.kind.engineio() => one
                .saturating_mul(2)
                .saturating_add(s.engineio.longest_attempt().saturating_mul(2)),
            Some(_) => one.saturating_mul(2),
        }
    }
}
