//! The results schema Gauntlet writes (`target/gauntlet/results.json`) and reads back.
//!
//! The schema is versioned: [`VERSION`] changes when a field changes meaning or goes away.
//! Adding a field does not change the version; readers ignore fields they do not know.

use serde::{Deserialize, Serialize};

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
}

/// One run: a scenario, a scheme and a seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
}

impl Results {
    /// An empty result set of the current version.
    pub fn new(engine: &str) -> Self {
        Self {
            version: VERSION,
            engine: engine.to_string(),
            runs: Vec::new(),
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
    pub fn from_json(text: &str) -> Result<Self, String> {
        let results: Results =
            serde_json::from_str(text).map_err(|e| format!("not a results file: {e}"))?;
        if results.version != VERSION {
            return Err(format!(
                "results schema version {} is not supported (this build reads {VERSION})",
                results.version
            ));
        }
        Ok(results)
    }
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
        });
        assert_eq!(Results::from_json(&r.to_json()).unwrap(), r);
        assert_eq!(r.tally(), (1, 0));
    }

    #[test]
    fn an_unknown_version_is_refused() {
        let err = Results::from_json(r#"{"version": 9, "runs": []}"#).unwrap_err();
        assert!(err.contains("version 9"), "{err}");
    }
}
