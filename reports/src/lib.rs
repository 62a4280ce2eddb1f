//! Gauntlet's results schema (`target/gauntlet/results.json`) and the reports rendered from it.
//!
//! The schema is versioned: [`VERSION`] changes when a field changes meaning or goes away.
//! Adding a field does not change the version; readers ignore fields they do not know, and
//! fields added after version 1 first shipped default to empty when a file lacks them.
//!
//! # Code map
//!
//! - `lib.rs` (this file): the schema: [`Results`], [`Run`], and the per-run measurements
//!   [`Latency`] and [`Handshake`]; reading and writing JSON.
//! - [`aggregate`]: what the reports compute from runs: runs grouped by scenario × scheme across
//!   seeds ([`aggregate::groups`], [`aggregate::matrix`]) with latency percentiles merged from
//!   their samples ([`aggregate::percentile`], nearest rank), and delivery rates per
//!   intermediary kind × scheme ([`aggregate::kinds`]). Start here to change what a report says.
//! - [`outcome`]: what an outcome says about the path whatever the scenario expected
//!   ([`outcome::Class`]: works, works at a cost, fails: a cell's colour and glyph), apart from
//!   whether the scenario expected it ([`aggregate::Group::expectation_tag`]: a separate mark).
//! - [`baseline`]: the direct path (runs of kind `direct`, no intermediary) per scheme, the
//!   baseline latency charts compare every scenario with ([`baseline::baselines`]).
//! - [`mod@diff`]: two result sets compared run by run ([`diff()`]): regressions (pass → fail,
//!   latency worse beyond a threshold), improvements and other changes, rendered as text for a
//!   CI gate.
//! - `markdown.rs`: [`markdown`], a summary, the traversal matrix and a latency table.
//! - `junit.rs`: [`junit`], one testcase per run for CI dashboards.
//! - `gate.rs`: `gauntlet gate`'s reports: [`gate_junit`] (a testcase per behaviour and
//!   scheme, named by its title, with its time, its reason and its transcript excerpt) and
//!   [`gate_markdown`] (a summary for a pull-request comment).
//! - `html.rs`: [`html`], one self-contained page (inline style and SVG, no script, nothing
//!   fetched) with the charts and tables that say the same without them.
//! - `svg/`: the HTML report's four charts, drawn from [`aggregate`]'s results, one file each
//!   (`matrix.rs`, `kinds.rs`, `latency.rs`, `cdf.rs`), and in `svg/mod.rs` what they share: a
//!   `svg::Chart` that sizes its `viewBox` from the text placed in it, so no label is cut off,
//!   and the axes.
//! - [`mod@traversal`]: `reports/TRAVERSAL.md`, the seed article's decision tree with each
//!   branch measured by a catalogue scenario ([`traversal::BRANCHES`]), ws versus wss success
//!   per intermediary kind, and the matrix.
//! - [`mod@overhead`]: `reports/OVERHEAD.md` and its chart: bytes on the wire and latency
//!   per message for each transport ([`Overhead`], measured by `gauntlet overhead`), beside
//!   the seed article's "1000:1".
//! - [`mod@conformance`]: `reports/CONFORMANCE.md` and `reports/conformance.html`, the gate
//!   suite through many real intermediaries ([`conformance::Column`]: a product in one
//!   configuration, its version and its gate results), a row per behaviour, with people's
//!   [`conformance::Note`]s on the failing cells; [`conformance::cells`] reads the matrix back.
//! - [`mod@population`]: populations' results ([`population::Populations`], counts per
//!   cell that shards add up with [`population::Populations::merge`]), their statistics
//!   (Wilson intervals, percentiles of histograms) and their Markdown and HTML reports.
//! - `text.rs`: what the renderers share: XML/HTML escaping, millisecond formatting, short
//!   scenario labels.
//!
//! Every renderer is a pure function of the results: no clock, no environment, and one order
//! everywhere (scenario path, then scheme with `ws` before `wss`, then seed), so the same
//! results always render to the same bytes.

use serde::{Deserialize, Serialize};

pub mod aggregate;
pub mod baseline;
pub mod conformance;
pub mod diff;
pub mod gate;
mod html;
mod junit;
mod markdown;
pub mod outcome;
pub mod overhead;
pub mod population;
mod svg;
mod text;
pub mod traversal;

pub use conformance::{conformance_html, conformance_markdown};
pub use diff::{Diff, DiffOptions, diff};
pub use gate::{Fault, faults, gate_junit, gate_markdown};
pub use html::html;
pub use junit::junit;
pub use markdown::markdown;
pub use overhead::{Overhead, overhead_markdown, overhead_svg};
pub use traversal::traversal;

/// The schema version this crate writes.
pub const VERSION: u32 = 1;

/// A whole suite's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// Schema version; [`VERSION`] when written by this crate.
    pub version: u32,
    /// The engine that ran the suite (`turmoil`).
    #[serde(default)]
    pub engine: String,
    /// One entry per scenario × scheme × seed, in the order they were listed.
    pub runs: Vec<Run>,
    /// What a reader must know about the whole set, one line each (`gauntlet gate`: what it
    /// gated, and what a quick run cannot catch). Empty when the writer had nothing to say.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// One run: a scenario, a scheme and a seed.
///
/// All times are simulated milliseconds unless a field says otherwise. The fields after
/// `transcript_hash` were added within version 1: they are left out of the file when empty and
/// read as empty when missing, so older files still load and render.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// The scenario file, relative to the working directory.
    pub scenario: String,
    /// `ws` or `wss`.
    pub scheme: String,
    /// The seed of the simulation.
    pub seed: u64,
    /// The outcome the scenario file expects.
    pub expected: String,
    /// The outcome observed (kebab-case; see the outcome list in the harness).
    pub outcome: String,
    /// Whether `outcome` is `expected`.
    pub pass: bool,
    /// What happened, in one line: status, close code, simulated time of failure.
    pub detail: String,
    /// Simulated time at which the run ended, in milliseconds.
    pub sim_ms: u64,
    /// Wall time the run took, in milliseconds. The only field that varies between runs.
    pub wall_ms: u64,
    /// Simulated time from the start of the TCP connect to the 101, in milliseconds, when
    /// the handshake completed.
    #[serde(default)]
    pub handshake_ms: Option<f64>,
    /// Median round trip of echoed messages (or one-way latency of pushes, or the round trip
    /// of the smuggle workload's victim fetch), in simulated milliseconds, when any arrived.
    #[serde(default)]
    pub rtt_median_ms: Option<f64>,
    /// Messages the client sent.
    #[serde(default)]
    pub sent: u64,
    /// Messages the client received back intact.
    #[serde(default)]
    pub received: u64,
    /// FNV-1a hash of the run's transcript, hex: equal transcripts, equal hashes.
    #[serde(default)]
    pub transcript_hash: String,
    /// FNV-1a hash of the engine's event log (every socket operation of every host, with its
    /// simulated time), hex: the same run on the same engine gives the same hash.
    #[serde(default)]
    pub event_hash: String,
    /// Lines in the engine's event log.
    #[serde(default)]
    pub events: u64,
    /// The scenario's title, for reports that name what failed in words (`gauntlet gate`'s
    /// JUnit). Empty when the writer did not say.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
    /// The intermediary kind the run went through: the model name of the first hop
    /// (`transparent-proxy`, `idle-killer`, `l7-balancer`, …), or `direct` when the client
    /// reaches the server with no hop. Empty when the writer did not say.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// The handshake, phase by phase, as far as it got.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handshake: Option<Handshake>,
    /// Percentiles of the run's per-message latencies (round trips of echoed messages, or
    /// one-way latencies of server pushes: the same measure as `rtt_median_ms`), computed by the
    /// writer over every message; absent when no message came back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Latency>,
    /// Time from the start of the run to the failure that decided its outcome (the reset, the
    /// close, the refusal, the last byte before a stall); absent when the run did not fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_failure_ms: Option<f64>,
    /// The per-message latencies themselves, in the order they were measured, for
    /// distributions (the HTML report's CDF) and for percentiles merged across seeds. Writers
    /// keep it small: a run records at most a few hundred; `latency.count` says how many there
    /// were in all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples_ms: Vec<f64>,
    /// The lines of the run's transcript a reader of a failure needs first (`gauntlet gate`
    /// keeps them for failed runs); empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excerpt: Vec<String>,
    /// The lines a real product in the path wrote to its own error and access logs during the
    /// run (`gauntlet gate --product` keeps them for failed runs); empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub product_log: Vec<String>,
    /// For a run of a client strategy (then `scheme` holds the strategy's name): the transport
    /// the run ended on (`ws`, `wss`, `polling`, `websocket`). Empty for a run of a scheme.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub transport: String,
    /// For a run of a client strategy: every transport it tried, in the order each began.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<Attempt>,
    /// For a run of a client strategy: simulated time from the start of the run to the first
    /// message that arrived intact; absent when none did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_message_ms: Option<f64>,
    /// For a run of a client strategy: the messages of its workload that never arrived
    /// (`received` says how many did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost: Option<u64>,
    /// For a run of a client strategy with `[client.reconnect]`: how many times it
    /// reconnected after a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconnects: Option<u32>,
    /// What the client's connections carried, against the application bytes delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wire: Option<Wire>,
}

/// Bytes on the wire of a run: the TCP payload of every connection its client made (HTTP
/// heads, CONNECT exchanges, TLS records, frame headers, Engine.IO packets; not IP or TCP
/// headers), each direction, beside the application's payload bytes that arrived intact.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wire {
    /// Client to server, on the wire.
    pub up: u64,
    /// Server to client, on the wire.
    pub down: u64,
    /// Client to server, the payloads of the messages that arrived (an echo's return proves
    /// its message arrived).
    pub app_up: u64,
    /// Server to client, the payloads of the messages that arrived.
    pub app_down: u64,
}

impl Wire {
    /// Bytes on the wire per application byte delivered, client to server; `None` when none
    /// was delivered.
    pub fn up_ratio(&self) -> Option<f64> {
        ratio(self.up, self.app_up)
    }

    /// Bytes on the wire per application byte delivered, server to client.
    pub fn down_ratio(&self) -> Option<f64> {
        ratio(self.down, self.app_down)
    }

    /// Bytes on the wire, both directions, per application byte delivered either way.
    pub fn total_ratio(&self) -> Option<f64> {
        ratio(self.up + self.down, self.app_up + self.app_down)
    }
}

fn ratio(wire: u64, app: u64) -> Option<f64> {
    (app > 0).then(|| wire as f64 / app as f64)
}

/// One attempt of a client strategy: a transport tried, when, and how it ended.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// `ws`, `wss`, `polling` or `websocket` (an Engine.IO session's WebSocket, or the probe
    /// of its upgrade).
    pub transport: String,
    /// When it began, simulated milliseconds from the start of the run.
    pub at_ms: f64,
    /// How it ended: an outcome (`delivered`, `handshake-rejected`, …), or `upgraded` for a
    /// polling session that moved onto a WebSocket.
    pub result: String,
    /// What was seen, in one line.
    pub detail: String,
}

/// Latency percentiles in simulated milliseconds.
///
/// Per run, the writer computes them over all of the run's messages. In a report's
/// aggregate ([`aggregate::Group::latency`]) they come from samples merged across seeds by
/// nearest rank ([`aggregate::percentile`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// The largest value.
    pub max: f64,
    /// How many values the percentiles were computed over.
    pub count: u64,
}

/// How long each phase of the handshake took, in simulated milliseconds. A phase that did not
/// happen (`tls_ms` for `ws`) or did not finish (a refused connect, a failed TLS handshake, a
/// rejected upgrade) is absent; `Run::handshake_ms` is the whole, connect to 101.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Handshake {
    /// From the start of the TCP connect to the connection being established (through an
    /// explicit proxy: to its `200` answering `CONNECT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_ms: Option<f64>,
    /// The TLS handshake, `wss` only: from the ClientHello to the handshake completing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ms: Option<f64>,
    /// The HTTP upgrade: from sending the request to reading a valid `101`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_ms: Option<f64>,
}

impl Results {
    /// An empty result set of the current version.
    pub fn new(engine: &str) -> Self {
        Self {
            version: VERSION,
            engine: engine.to_string(),
            runs: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Runs that passed and runs that failed.
    pub fn tally(&self) -> (usize, usize) {
        let passed = self.runs.iter().filter(|r| r.pass).count();
        (passed, self.runs.len() - passed)
    }

    /// Pretty JSON, ending with a newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("results serialise to JSON");
        s.push('\n');
        s
    }

    /// Reads results; rejects a schema version this crate does not know.
    ///
    /// The error says whether the text is not JSON at all (`not valid JSON: …`) or JSON of
    /// another shape (`not a results file: …`), with serde_json's line and column.
    pub fn from_json(text: &str) -> Result<Self, ResultsError> {
        let results: Results = serde_json::from_str(text).map_err(|e| {
            if e.is_data() {
                ResultsError::NotResults(e)
            } else {
                ResultsError::NotJson(e)
            }
        })?;
        if results.version != VERSION {
            return Err(ResultsError::Version(results.version));
        }
        Ok(results)
    }
}

/// Why [`Results::from_json`] cannot read a text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResultsError {
    /// The text is not JSON; serde_json's reason, with its line and column.
    #[error("not valid JSON: {0}")]
    NotJson(serde_json::Error),
    /// JSON of another shape than results; serde_json's reason, with its line and column.
    #[error("not a results file: {0}")]
    NotResults(serde_json::Error),
    /// Results of a schema version, given, that this build does not read.
    #[error("results schema version {0} is not supported (this build reads {VERSION})")]
    Version(u32),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_round_trip_through_json() {
        let mut r = Results::new("turmoil");
        r.runs.push(Run {
            scenario: "scenarios/a.toml".into(),
            scheme: "ws".into(),
            seed: 1,
            expected: "delivered".into(),
            outcome: "delivered".into(),
            pass: true,
            detail: "5/5 echoed".into(),
            sim_ms: 120,
            wall_ms: 3,
            handshake_ms: Some(20.0),
            rtt_median_ms: Some(10.0),
            sent: 5,
            received: 5,
            transcript_hash: "00".into(),
            event_hash: "01".into(),
            events: 40,
            title: "A direct connection".into(),
            kind: "direct".into(),
            handshake: Some(Handshake {
                connect_ms: Some(5.0),
                tls_ms: None,
                upgrade_ms: Some(15.0),
            }),
            latency: Some(Latency {
                p50: 10.0,
                p90: 12.5,
                p99: 14.0,
                max: 14.0,
                count: 5,
            }),
            time_to_failure_ms: None,
            samples_ms: vec![10.0, 9.5, 14.0, 10.0, 12.5],
            excerpt: vec!["   10.000 ms  client  upgrade request GET /echo".into()],
            product_log: vec!["==> access.log <==".into()],
            transport: "polling".into(),
            attempts: vec![
                Attempt {
                    transport: "polling".into(),
                    at_ms: 0.0,
                    result: "delivered".into(),
                    detail: "5/5 echoed, closed".into(),
                },
                Attempt {
                    transport: "websocket".into(),
                    at_ms: 20.0,
                    result: "handshake-rejected".into(),
                    detail: "probe: HTTP 400 Bad Request at 30.0 ms".into(),
                },
            ],
            first_message_ms: Some(30.0),
            lost: Some(0),
            reconnects: Some(2),
            wire: Some(Wire {
                up: 1200,
                down: 900,
                app_up: 160,
                app_down: 160,
            }),
        });
        r.notes = vec!["a note".into()];
        assert_eq!(Results::from_json(&r.to_json()).unwrap(), r);
        assert_eq!(r.tally(), (1, 0));
    }

    #[test]
    fn a_file_without_the_newer_fields_still_loads() {
        let text = r#"{"version": 1, "engine": "turmoil", "runs": [{
            "scenario": "scenarios/a.toml", "scheme": "ws", "seed": 1,
            "expected": "delivered", "outcome": "delivered", "pass": true,
            "detail": "5/5 echoed", "sim_ms": 120, "wall_ms": 3,
            "handshake_ms": 20.0, "rtt_median_ms": 10.0, "sent": 5, "received": 5,
            "transcript_hash": "00"}]}"#;
        let r = Results::from_json(text).unwrap();
        let run = &r.runs[0];
        assert_eq!(run.kind, "");
        assert_eq!(run.handshake, None);
        assert_eq!(run.latency, None);
        assert_eq!(run.time_to_failure_ms, None);
        assert!(run.samples_ms.is_empty());
    }

    #[test]
    fn empty_newer_fields_are_left_out_of_the_file() {
        let mut r = Results::new("turmoil");
        r.runs.push(Run {
            scenario: "scenarios/a.toml".into(),
            scheme: "ws".into(),
            ..Run::default()
        });
        let json = r.to_json();
        for field in [
            "kind",
            "handshake\"",
            "latency",
            "time_to_failure_ms",
            "samples_ms",
            "transport",
            "attempts",
            "first_message_ms",
            "lost",
        ] {
            assert!(!json.contains(field), "{field} in {json}");
        }
    }

    #[test]
    fn broken_json_and_another_shape_are_told_apart() {
        let err = Results::from_json("{\"version\": 1,\n  \"runs\": [}").unwrap_err();
        assert!(matches!(err, ResultsError::NotJson(_)), "{err}");
        let err = err.to_string();
        assert!(err.starts_with("not valid JSON: "), "{err}");
        assert!(err.contains("line 2 column 12"), "{err}");
        let err = Results::from_json("").unwrap_err().to_string();
        assert!(err.starts_with("not valid JSON: "), "{err}");
        let err = Results::from_json(r#"{"version": 1}"#).unwrap_err();
        assert!(matches!(err, ResultsError::NotResults(_)), "{err}");
        let err = err.to_string();
        assert!(
            err.starts_with("not a results file: missing field `runs`"),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_version_is_refused() {
        let err = Results::from_json(r#"{"version": 9, "runs": []}"#).unwrap_err();
        assert!(matches!(err, ResultsError::Version(9)), "{err}");
        assert_eq!(
            err.to_string(),
            "results schema version 9 is not supported (this build reads 1)"
        );
    }
}
