//! Suites: find scenario files, expand them into runs (scenario × scheme × seed, a file of
//! strategies being a scenario per strategy), run them across threads, print a line per run in
//! a stable order, and gather the results.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use gauntlet_reports::{Handshake, Results, Run};

use crate::engine;
use crate::run::{RunError, RunOutput, run};
use crate::scenario::{self, Hop, Scenario, ScenarioError, Scheme};
use crate::verdict::outcome::Outcome;

/// Which runs of which files.
#[derive(Debug, Clone)]
pub struct Selection {
    /// Files or folders (searched recursively for `*.toml`).
    pub paths: Vec<PathBuf>,
    /// Keep scenarios whose path contains this text.
    pub filter: Option<String>,
    /// Keep only this scheme.
    pub scheme: Option<Scheme>,
    /// Run this seed instead of the file's seeds.
    pub seed: Option<u64>,
    /// Run seeds 1..=N instead of the file's seeds.
    pub seeds: Option<u64>,
}

/// One planned run.
#[derive(Debug, Clone)]
pub struct Planned {
    /// Index into the loaded scenarios.
    pub scenario: usize,
    /// The scheme.
    pub scheme: Scheme,
    /// The seed.
    pub seed: u64,
}

/// Folders of population files ([`crate::population`]) found beneath a folder searched for
/// scenarios are passed over: their files are not scenarios.
pub const POPULATIONS_DIR: &str = "populations";

/// Every `*.toml` under `paths`, sorted, each once; below a folder, none in a
/// [`POPULATIONS_DIR`] folder.
pub fn find_files(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut found)?;
        } else {
            found.push(p.clone());
        }
    }
    found.sort();
    found.dedup();
    Ok(found)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let path = e.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == POPULATIONS_DIR) {
                continue;
            }
            walk(&path, out)?;
        } else if path.extension().is_some_and(|x| x == "toml") {
            out.push(path);
        }
    }
    Ok(())
}

/// Loads the selected scenario files and plans their runs. Every invalid file is reported. A
/// file that lists `strategies` gives one scenario per strategy ([`Scenario::cases`]), in the
/// list's order.
pub fn plan(sel: &Selection) -> Result<(Vec<Scenario>, Vec<Planned>), Vec<ScenarioError>> {
    let files = find_files(&sel.paths).map_err(|e| {
        vec![ScenarioError {
            file: sel
                .paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            line: 1,
            col: 1,
            message: format!("cannot list scenario files: {e}"),
            excerpt: None,
        }]
    })?;
    let mut scenarios = Vec::new();
    let mut errors = Vec::new();
    for f in files {
        let name = f.display().to_string();
        if sel
            .filter
            .as_ref()
            .is_some_and(|flt| !name.contains(flt.as_str()))
        {
            continue;
        }
        match scenario::load(&f) {
            // A file of strategies is a scenario per strategy.
            Ok(s) => scenarios.extend(s.cases()),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut planned = Vec::new();
    for (i, s) in scenarios.iter().enumerate() {
        let seeds: Vec<u64> = match (sel.seed, sel.seeds) {
            (Some(one), _) => vec![one],
            (None, Some(n)) => (1..=n).collect(),
            (None, None) => s.seeds.clone(),
        };
        for &scheme in &s.client.schemes {
            if sel.scheme.is_some_and(|only| only != scheme) {
                continue;
            }
            for &seed in &seeds {
                planned.push(Planned {
                    scenario: i,
                    scheme,
                    seed,
                });
            }
        }
    }
    Ok((scenarios, planned))
}

/// A finished run: the output or the harness error, and the wall time it took.
#[derive(Debug)]
pub struct Finished {
    /// What the run produced, or why the harness could not run it.
    pub output: Result<RunOutput, RunError>,
    /// Wall-clock milliseconds.
    pub wall_ms: u64,
}

/// Runs `planned` on `jobs` threads with the engine named `engine`, calling `each` for every
/// run in planned order (as soon as it and all before it are done). An engine name that is
/// not one of [`engine::ENGINES`] is every run's error, never an empty result.
pub fn execute(
    engine_name: &str,
    scenarios: &[Scenario],
    planned: &[Planned],
    jobs: usize,
    mut each: impl FnMut(usize, &Finished),
) -> Vec<Finished> {
    if engine::by_name(engine_name).is_none() {
        let why = RunError::UnknownEngine {
            name: engine_name.to_string(),
        };
        return (0..planned.len())
            .map(|i| {
                let f = Finished {
                    output: Err(why.clone()),
                    wall_ms: 0,
                };
                each(i, &f);
                f
            })
            .collect();
    }
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel::<(usize, Finished)>();
    let mut done: BTreeMap<usize, Finished> = BTreeMap::new();
    let mut ordered = Vec::with_capacity(planned.len());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1).min(planned.len().max(1)) {
            let tx = tx.clone();
            let next = &next;
            scope.spawn(move || {
                let Some(engine) = engine::by_name(engine_name) else {
                    return;
                };
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(p) = planned.get(i) else { return };
                    // Wall time is measured for the report only; nothing simulated reads it.
                    #[allow(clippy::disallowed_methods)]
                    let started = std::time::Instant::now();
                    let output = run(engine.as_ref(), &scenarios[p.scenario], p.scheme, p.seed);
                    let wall_ms = started.elapsed().as_millis() as u64;
                    if tx.send((i, Finished { output, wall_ms })).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        for (i, f) in rx {
            done.insert(i, f);
            while let Some(f) = done.remove(&ordered.len()) {
                each(ordered.len(), &f);
                ordered.push(f);
            }
        }
    });
    ordered
}

/// The engine that runs real programs as hops.
pub const LIVE: &str = engine::live::NAME;

/// The planned runs `engine` can run, and how many scenarios it cannot: those with a real
/// program as a hop, which only the live engine starts.
pub fn runnable_on(
    engine: &str,
    scenarios: &[Scenario],
    planned: Vec<Planned>,
) -> (Vec<Planned>, usize) {
    if engine == LIVE {
        return (planned, 0);
    }
    let real = Scenario::needs_live;
    let skipped = scenarios.iter().filter(|s| real(s)).count();
    let kept = planned
        .into_iter()
        .filter(|p| !real(&scenarios[p.scenario]))
        .collect();
    (kept, skipped)
}

/// The outcome recorded for a run whose real program exited by itself during the run
/// ([`RunError::ProgramExited`]): not one of the
/// client's outcomes, and a failure, not a harness error.
pub const PROGRAM_EXITED: &str = "program-exited";

/// The results-file entry for a run.
pub fn result_entry(s: &Scenario, p: &Planned, f: &Finished) -> Run {
    let expected = s
        .expected(p.scheme)
        .map(|o| o.to_string())
        .unwrap_or_default();
    let trail = f
        .output
        .as_ref()
        .ok()
        .and_then(|o| o.report.strategy.as_ref());
    match &f.output {
        Ok(out) => Run {
            scenario: s.file.clone(),
            scheme: s.case_name(p.scheme).to_string(),
            seed: p.seed,
            expected,
            outcome: out.report.outcome.to_string(),
            pass: out.pass(),
            detail: out.report.detail.clone(),
            sim_ms: out.sim_end.as_millis() as u64,
            wall_ms: f.wall_ms,
            handshake_ms: out.report.handshake.map(to_ms),
            rtt_median_ms: out.median_latency().map(to_ms),
            sent: out.report.sent,
            received: out.report.received,
            transcript_hash: crate::verdict::transcript::hash(&out.transcript),
            event_hash: format!("{:016x}", out.events.hash()),
            events: out.events.count(),
            title: String::new(),
            kind: s.path.first().map_or("direct", Hop::name).to_string(),
            handshake: Some(Handshake {
                connect_ms: out.report.phases.connect.map(to_ms),
                tls_ms: out.report.phases.tls.map(to_ms),
                upgrade_ms: out.report.phases.upgrade.map(to_ms),
            })
            .filter(|h| *h != Handshake::default()),
            latency: out.latency,
            time_to_failure_ms: (!matches!(
                out.report.outcome,
                Outcome::Delivered
                    | Outcome::Degraded
                    | Outcome::FellBack
                    | Outcome::Reconnected
                    | Outcome::Partial
            ))
            .then(|| to_ms(out.sim_end)),
            samples_ms: out
                .report
                .latencies
                .iter()
                .take(crate::verdict::metrics::SAMPLES_KEPT)
                .map(|l| to_ms(*l))
                .collect(),
            transport: trail.map_or("", |t| t.transport).to_string(),
            attempts: trail.map_or_else(Vec::new, |t| {
                t.attempts
                    .iter()
                    .map(|a| gauntlet_reports::Attempt {
                        transport: a.transport.to_string(),
                        at_ms: to_ms(a.began),
                        result: a.result.clone(),
                        detail: a.detail.clone(),
                    })
                    .collect()
            }),
            first_message_ms: trail.and(out.report.first_message).map(to_ms),
            lost: trail.map(|t| t.messages.saturating_sub(out.report.received)),
            reconnects: s
                .strategy
                .as_ref()
                .and_then(|st| st.reconnect)
                .and(trail)
                .map(|t| t.reconnects),
            wire: wire(&s.client.workload, &out.report),
            ..Run::default()
        },
        Err(e) => Run {
            scenario: s.file.clone(),
            scheme: s.case_name(p.scheme).to_string(),
            seed: p.seed,
            expected,
            outcome: match e {
                // The path failed, not the harness: a proxy under test that crashed fails its
                // behaviour like any other fault.
                RunError::ProgramExited(_) => PROGRAM_EXITED.into(),
                _ => "harness-error".into(),
            },
            pass: false,
            detail: e.to_string(),
            sim_ms: 0,
            wall_ms: f.wall_ms,
            handshake_ms: None,
            rtt_median_ms: None,
            sent: 0,
            received: 0,
            transcript_hash: String::new(),
            ..Run::default()
        },
    }
}

/// The run's bytes on the wire beside the payload bytes its workload delivered: an echo's
/// payload each way for every echo that came back, a push's one way. `None` for the
/// cache-poisoning demonstration (its bytes are an attack, not a workload).
fn wire(
    workload: &crate::scenario::Workload,
    report: &crate::endpoints::connect::Report,
) -> Option<gauntlet_reports::Wire> {
    use crate::scenario::WorkloadKind;
    let delivered = report.received * workload.payload_bytes as u64;
    let (app_up, app_down) = match workload.kind {
        WorkloadKind::Echo => (delivered, delivered),
        WorkloadKind::Push => (0, delivered),
        WorkloadKind::Smuggle => return None,
    };
    Some(gauntlet_reports::Wire {
        up: report.wire.up,
        down: report.wire.down,
        app_up,
        app_down,
    })
}

fn to_ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// Runs a whole selection without printing: the results, in planned order. Scenarios with a
/// real program as a hop are left out unless the engine is the live one ([`runnable_on`]).
pub fn run_all(
    engine_name: &str,
    sel: &Selection,
    jobs: usize,
) -> Result<Results, Vec<ScenarioError>> {
    let (scenarios, planned) = plan(sel)?;
    let (planned, _) = runnable_on(engine_name, &scenarios, planned);
    let finished = execute(engine_name, &scenarios, &planned, jobs, |_, _| {});
    let mut results = Results::new(engine_name);
    for (p, f) in planned.iter().zip(&finished) {
        results
            .runs
            .push(result_entry(&scenarios[p.scenario], p, f));
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_engine_is_every_runs_error_not_an_empty_result() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let sel = Selection {
            paths: vec![root.join("scenarios/seeds/transparent-strip.toml")],
            filter: None,
            scheme: None,
            seed: Some(1),
            seeds: None,
        };
        let results = run_all("simm", &sel, 2).expect("a valid scenario");
        assert_eq!(results.runs.len(), 2, "{:?}", results.runs);
        for run in &results.runs {
            assert_eq!(run.outcome, "harness-error", "{run:?}");
            assert!(
                run.detail
                    .contains("unknown engine `simm`: expected one of sim, turmoil, live"),
                "{run:?}"
            );
            assert!(!run.pass, "{run:?}");
        }
    }
}
