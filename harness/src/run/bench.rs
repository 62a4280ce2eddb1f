//! Whole-run measurements, one per process, for `cargo xtask bench`: a selection of runs or a
//! crowd of clients on one engine, timed on the wall clock, with the process's peak memory.
//!
//! The xtask starts a fresh `gauntlet bench` process for each sample, so peak memory belongs
//! to that measurement alone, and takes the median over several.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::run::suite::{self, Selection};
use crate::run::{RunError, run_crowd};
use crate::scenario::{self, ScenarioError, Scheme};

/// Why a measurement could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// Scenario files that do not read or validate, each located.
    #[error("{}", scenario::joined(.0))]
    Scenarios(Vec<ScenarioError>),
    /// The selection, on this engine, is no run at all.
    #[error("no runs match the selection")]
    NoRuns,
    /// An engine name that is not one of [`crate::engine::ENGINES`].
    #[error("no engine called {name}")]
    UnknownEngine {
        /// The name as given.
        name: String,
    },
    /// One of the selection's runs could not be carried out.
    #[error("a run failed to run: {0}")]
    RunFailed(RunError),
    /// The crowd's run could not be carried out.
    #[error(transparent)]
    Crowd(RunError),
}

/// What one measurement found.
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    /// The engine measured.
    pub engine: String,
    /// Runs made (scenario × scheme × seed), or 1 for a crowd.
    pub runs: usize,
    /// Runs that met their expectation (for a crowd: clients that did).
    pub passed: usize,
    /// Clients at once (1 unless a crowd).
    pub clients: usize,
    /// Messages sent back and received intact, over every client.
    pub received: u64,
    /// The latest simulated end of any run, in milliseconds.
    pub sim_ms: u64,
    /// Wall time of the runs, in milliseconds (loading the files not included).
    pub wall_ms: f64,
    /// The process's peak resident memory, in MiB, where the system says (Linux).
    pub peak_rss_mb: Option<f64>,
}

/// Runs `sel` on `engine` with `jobs` threads and measures it.
pub fn selection(sel: &Selection, engine: &str, jobs: usize) -> Result<Measurement, BenchError> {
    let (scenarios, planned) = suite::plan(sel).map_err(BenchError::Scenarios)?;
    let (planned, _) = suite::runnable_on(engine, &scenarios, planned);
    if planned.is_empty() {
        return Err(BenchError::NoRuns);
    }
    let (finished, wall) = timed(|| suite::execute(engine, &scenarios, &planned, jobs, |_, _| {}));
    let mut m = Measurement {
        engine: engine.to_string(),
        runs: finished.len(),
        passed: 0,
        clients: 1,
        received: 0,
        sim_ms: 0,
        wall_ms: wall.as_secs_f64() * 1000.0,
        peak_rss_mb: peak_rss_mb(),
    };
    for f in &finished {
        match &f.output {
            Ok(out) => {
                m.passed += usize::from(out.pass());
                m.received += out.report.received;
                m.sim_ms = m.sim_ms.max(out.sim_end.as_millis() as u64);
            }
            Err(e) => return Err(BenchError::RunFailed(e.clone())),
        }
    }
    Ok(m)
}

/// Runs the scenario in `file` with `clients` copies of its client at once (its first scheme,
/// seed 1) on `engine` and measures it.
pub fn crowd(file: &Path, engine: &str, clients: usize) -> Result<Measurement, BenchError> {
    let s = scenario::load(file).map_err(|e| BenchError::Scenarios(vec![e]))?;
    let scheme = s.client.schemes.first().copied().unwrap_or(Scheme::Ws);
    let expected = s.expected(scheme);
    let e = crate::engine::by_name(engine).ok_or_else(|| BenchError::UnknownEngine {
        name: engine.to_string(),
    })?;
    let (out, wall) = timed(|| run_crowd(e.as_ref(), &s, scheme, 1, clients));
    let out = out.map_err(BenchError::Crowd)?;
    Ok(Measurement {
        engine: engine.to_string(),
        runs: 1,
        passed: expected.map_or(0, |x| out.outcomes.get(&x).copied().unwrap_or(0)),
        clients: out.clients,
        received: out.received,
        sim_ms: out.sim_end.as_millis() as u64,
        wall_ms: wall.as_secs_f64() * 1000.0,
        peak_rss_mb: peak_rss_mb(),
    })
}

/// Runs `f` and times it on the wall clock.
fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    // Wall time is what a benchmark measures; nothing simulated reads it.
    #[allow(clippy::disallowed_methods)]
    let started = std::time::Instant::now();
    let out = f();
    (out, started.elapsed())
}

/// The peak resident set of this process (`VmHWM`), in MiB.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
