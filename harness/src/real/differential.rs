//! The differential suite: each live scenario (a real product as a hop) against its twin (the
//! same situation with the product's model, on the simulated engine). A pair agrees for a
//! scheme, or a client strategy, when both end in the same outcome. What a model predicts is worth what its real twin
//! confirms.

use std::path::Path;

use crate::engine;
use crate::run::suite::{self, Finished, Planned};
use crate::run::{RunError, run};
use crate::scenario::{self, Scenario, ScenarioError, Scheme};
use crate::verdict::outcome::Outcome;

/// One pair, one scheme.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// The live scenario's file.
    pub live: String,
    /// Its twin's file.
    pub twin: String,
    /// The scheme.
    pub scheme: Scheme,
    /// The run's name: the scheme's, or the client strategy's when the pair runs one.
    pub case: &'static str,
    /// What the live run ended in, or why it could not run.
    pub live_outcome: Result<Outcome, RunError>,
    /// The live run's detail.
    pub live_detail: String,
    /// What the live scenario expects.
    pub live_expected: Option<Outcome>,
    /// What the twin ended in on the simulated engine, or why it could not run.
    pub twin_outcome: Result<Outcome, TwinError>,
}

/// Why a twin could not run.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TwinError {
    /// The twin's file does not read or validate.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// The twin's run could not be carried out (it does not run the scheme, say).
    #[error(transparent)]
    Run(#[from] RunError),
    /// The live scenario runs a client strategy its twin does not list.
    #[error("{twin} does not run strategy {strategy}")]
    Strategy {
        /// The twin's file.
        twin: String,
        /// The strategy.
        strategy: &'static str,
    },
}

impl Comparison {
    /// Whether the product and its model ended the same way.
    pub fn agrees(&self) -> bool {
        matches!((&self.live_outcome, &self.twin_outcome), (Ok(a), Ok(b)) if a == b)
    }

    /// Whether the live run met its own expectation.
    pub fn live_passed(&self) -> bool {
        matches!((&self.live_outcome, self.live_expected), (Ok(a), Some(e)) if *a == e)
    }
}

/// Runs every scenario among `scenarios` that names a twin: the scenario live with its first
/// seed, `jobs` at a time, and the twin on the `sim` engine with its first seed,
/// for each scheme the live scenario runs. `each` sees each comparison in order, as it is made.
/// Scenarios without a twin are not run.
pub fn compare(
    scenarios: &[Scenario],
    jobs: usize,
    mut each: impl FnMut(&Comparison),
) -> Vec<Comparison> {
    let mut planned = Vec::new();
    for (i, s) in scenarios.iter().enumerate() {
        if s.twin.is_none() {
            continue;
        }
        for &scheme in &s.client.schemes {
            planned.push(Planned {
                scenario: i,
                scheme,
                seed: s.seeds[0],
            });
        }
    }
    let sim = engine::sim::Sim;
    let mut out = Vec::new();
    suite::execute(suite::LIVE, scenarios, &planned, jobs, |i, f: &Finished| {
        let p = &planned[i];
        let s = &scenarios[p.scenario];
        let twin_path = s.twin.as_deref().unwrap_or(Path::new(""));
        let twin_outcome = scenario::load(twin_path)
            .map_err(TwinError::from)
            .and_then(|twin| same_case(twin, s))
            .and_then(|twin| {
                run(&sim, &twin, p.scheme, twin.seeds[0])
                    .map(|o| o.report.outcome)
                    .map_err(TwinError::from)
            });
        let comparison = Comparison {
            live: s.file.clone(),
            twin: twin_path.display().to_string(),
            scheme: p.scheme,
            case: s.case_name(p.scheme),
            live_outcome: f
                .output
                .as_ref()
                .map(|o| o.report.outcome)
                .map_err(Clone::clone),
            live_detail: f
                .output
                .as_ref()
                .map(|o| o.report.detail.clone())
                .unwrap_or_default(),
            live_expected: s.expected(p.scheme),
            twin_outcome,
        };
        each(&comparison);
        out.push(comparison);
    });
    out
}

/// The case of `twin` that runs what `live` runs: the same client strategy, or the twin
/// itself for a run of schemes.
fn same_case(twin: Scenario, live: &Scenario) -> Result<Scenario, TwinError> {
    let Some(strategy) = &live.strategy else {
        return Ok(twin);
    };
    let file = twin.file.clone();
    twin.cases()
        .into_iter()
        .find(|c| c.strategy.as_ref().map(|t| t.kind) == Some(strategy.kind))
        .ok_or(TwinError::Strategy {
            twin: file,
            strategy: strategy.kind.as_str(),
        })
}
