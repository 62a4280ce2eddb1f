//! Running populations: sampling sessions, running each distinct draw once per cell on the
//! simulated engine (threads pull draws from a shared counter), and counting every session.
//!
//! Session `i` of a population draws from `Rng::derive(seed, i)`: its path by weight, then
//! each of the path's distributions in order. What a session's run does is a function of
//! what it drew (the run's seed is the population's), so sessions that drew the same are one
//! simulation, counted as many times. The counts are sums over sessions, in the order of the
//! draws, so a shard's counts and the whole run's add up exactly.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use gauntlet_proxies::rng::{Rng, fnv1a};
use gauntlet_reports::population::{
    Calibration, Cell, Mark, PathInfo, PathTally, Population as Results, Populations, Shard,
    VERSION,
};

use super::dist::{Param, pick, unit};
use super::{CellSpec, PathDef, Population, PopulationError, cells, load::check};
use crate::engine::sim::Sim;
use crate::run::run_crowd;
use crate::scenario::{self};
use crate::verdict::outcome::Outcome;

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Sessions sampled per population.
    pub sessions: u64,
    /// Only this shard's sessions.
    pub shard: Option<Shard>,
    /// Threads.
    pub jobs: usize,
    /// Strategies to run instead of each file's `[sweep] strategies`.
    pub strategies: Vec<String>,
    /// Ping intervals to sweep instead of each file's `[sweep] ping-interval-ms`.
    pub ping_intervals: Option<Vec<u64>>,
    /// Reconnection settings to sweep instead of each file's `[sweep] reconnect`.
    pub reconnect: Option<Vec<bool>>,
}

/// How far a run has got, for a progress bar.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Simulations done.
    pub done: usize,
    /// Simulations in all.
    pub total: usize,
}

/// What a run did besides its results.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ran {
    /// Sessions sampled, over every population.
    pub sessions: u64,
    /// Distinct draws, over every population.
    pub draws: usize,
    /// Simulations run (each draw once per cell).
    pub simulations: usize,
}

/// A draw: the path's index and each distribution's draw, in order.
type Draw = (usize, Vec<i64>);

/// What one simulation of a session gave.
#[derive(Debug, Clone)]
struct Session {
    outcome: Outcome,
    first_message_ms: Option<u64>,
    messages: u64,
    lost: u64,
    reconnects: u64,
    session_ms: u64,
}

/// Runs `pops` as `opts` says, calling `progress` after each simulation.
pub fn run(
    pops: &[Population],
    opts: &Options,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<(Populations, Ran), PopulationError> {
    let mut plans = Vec::new();
    for pop in pops {
        let mut sweep = pop.sweep.clone();
        if !opts.strategies.is_empty() {
            sweep.strategies = opts.strategies.clone();
        }
        if sweep.strategies.is_empty() {
            return Err(PopulationError::NoStrategies {
                file: pop.file.clone(),
            });
        }
        if let Some(p) = &opts.ping_intervals {
            sweep.ping_intervals = p.clone();
        }
        if let Some(r) = &opts.reconnect {
            sweep.reconnect = r.clone();
        }
        let specs = cells(&sweep)?;
        check(pop, &specs)?;
        let draws = sample(pop, opts.sessions, opts.shard);
        plans.push((pop, specs, draws));
    }
    let total: usize = plans.iter().map(|(_, c, d)| c.len() * d.len()).sum();
    let done = AtomicUsize::new(0);
    let tick = || {
        let done = done.fetch_add(1, Ordering::Relaxed) + 1;
        progress(Progress { done, total });
    };
    let mut ran = Ran::default();
    let mut populations = Vec::new();
    for (pop, specs, draws) in plans {
        let list: Vec<(&Draw, &u64)> = draws.iter().collect();
        let sims = simulate(pop, &specs, &list, opts.jobs.max(1), &tick)?;
        ran.sessions += list.iter().map(|(_, n)| **n).sum::<u64>();
        ran.draws += list.len();
        ran.simulations += list.len() * specs.len();
        populations.push(results(pop, &specs, &list, &sims, opts.sessions));
    }
    Ok((
        Populations {
            version: VERSION,
            sessions: opts.sessions,
            shard: opts.shard,
            populations,
        },
        ran,
    ))
}

/// The draws of the shard's sessions, each with how many sessions drew it.
fn sample(pop: &Population, sessions: u64, shard: Option<Shard>) -> BTreeMap<Draw, u64> {
    let cumulative: Vec<f64> = pop
        .paths
        .iter()
        .scan(0.0, |sum, p| {
            *sum += p.weight;
            Some(*sum)
        })
        .collect();
    let (index, count) = shard.map_or((0, 1), |s| (s.index, s.count.max(1)));
    let mut out: BTreeMap<Draw, u64> = BTreeMap::new();
    let mut i = index;
    while i < sessions {
        let mut rng = Rng::derive(pop.seed, i);
        let path = pick(&cumulative, unit(&mut rng));
        let draws = pop.paths[path].drawn().map(|d| d.draw(&mut rng)).collect();
        *out.entry((path, draws)).or_default() += 1;
        i += count;
    }
    out
}

/// Runs every draw with every cell on `jobs` threads; the result for draw `d` and cell `c`
/// is at `d * cells + c`.
fn simulate(
    pop: &Population,
    specs: &[CellSpec],
    draws: &[(&Draw, &u64)],
    jobs: usize,
    tick: &(dyn Fn() + Sync),
) -> Result<Vec<Session>, PopulationError> {
    let next = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<Result<Session, PopulationError>>>> =
        Mutex::new((0..draws.len() * specs.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..jobs.min(draws.len().max(1)) {
            s.spawn(|| {
                loop {
                    let d = next.fetch_add(1, Ordering::Relaxed);
                    let Some(((path, values), _)) = draws.get(d) else {
                        break;
                    };
                    for (c, cell) in specs.iter().enumerate() {
                        let got = once(pop, &pop.paths[*path], values, cell);
                        let failed = got.is_err();
                        if let Ok(mut slots) = slots.lock() {
                            slots[d * specs.len() + c] = Some(got);
                        }
                        tick();
                        if failed {
                            // Stop taking draws: the run ends with this error.
                            next.store(draws.len(), Ordering::Relaxed);
                            return;
                        }
                    }
                }
            });
        }
    });
    let slots = slots.into_inner().unwrap_or_default();
    // Without an error every slot was filled; with one, the first is the run's.
    let mut out = Vec::with_capacity(slots.len());
    for slot in slots.into_iter().flatten() {
        out.push(slot?);
    }
    Ok(out)
}

/// One simulation: the draw's scenario with the cell's strategy, one client.
fn once(
    pop: &Population,
    path: &PathDef,
    draws: &[i64],
    cell: &CellSpec,
) -> Result<Session, PopulationError> {
    let failed = |error: String| PopulationError::Run {
        file: pop.file.clone(),
        path: path.name.clone(),
        cell: cell.name.clone(),
        error,
    };
    let text = scenario_text(pop, path, draws, cell);
    let parsed = scenario::parse(&pop.file, &text).map_err(|e| failed(e.to_string()))?;
    let case = parsed
        .cases()
        .into_iter()
        .next()
        .ok_or_else(|| failed("the scenario has no case".into()))?;
    let scheme = case.client.schemes[0];
    let crowd = run_crowd(&Sim, &case, scheme, pop.seed, 1).map_err(|e| failed(e.to_string()))?;
    let report = crowd
        .reports
        .into_iter()
        .next()
        .ok_or_else(|| failed("the run reported no client".into()))?;
    let trail = report.strategy.as_ref();
    let messages = trail.map_or(report.sent, |t| t.messages);
    Ok(Session {
        outcome: report.outcome,
        first_message_ms: report.first_message.map(|d| d.as_millis() as u64),
        messages,
        lost: messages.saturating_sub(report.received),
        reconnects: trail.map_or(0, |t| u64::from(t.reconnects)),
        session_ms: crowd.sim_end.as_millis() as u64,
    })
}

/// Whether the application got every message it meant to exchange.
fn succeeded(o: Outcome) -> bool {
    matches!(
        o,
        Outcome::Delivered | Outcome::Degraded | Outcome::FellBack | Outcome::Reconnected
    )
}

/// The population's counts: every session of every draw with every cell.
fn results(
    pop: &Population,
    specs: &[CellSpec],
    draws: &[(&Draw, &u64)],
    sims: &[Session],
    sessions: u64,
) -> Results {
    let total: f64 = pop.paths.iter().map(|p| p.weight).sum();
    let mut cells: Vec<Cell> = specs
        .iter()
        .map(|s| Cell {
            strategy: s.name.clone(),
            ping_interval_ms: s.ping_ms,
            reconnect: s.reconnect,
            paths: vec![PathTally::default(); pop.paths.len()],
            ..Cell::default()
        })
        .collect();
    let mut first: Vec<BTreeMap<u64, u64>> = vec![BTreeMap::new(); specs.len()];
    for (d, ((path, _), n)) in draws.iter().enumerate() {
        let n = **n;
        for (c, cell) in cells.iter_mut().enumerate() {
            let Some(s) = sims.get(d * specs.len() + c) else {
                continue;
            };
            let ok = succeeded(s.outcome);
            cell.sessions += n;
            cell.succeeded += if ok { n } else { 0 };
            *cell
                .outcomes
                .entry(s.outcome.as_str().to_string())
                .or_default() += n;
            cell.paths[*path].sessions += n;
            cell.paths[*path].succeeded += if ok { n } else { 0 };
            if let Some(ms) = s.first_message_ms {
                *first[c].entry(ms).or_default() += n;
            }
            cell.messages += s.messages * n;
            cell.lost += s.lost * n;
            cell.reconnects += s.reconnects * n;
            cell.session_ms += s.session_ms * n;
        }
    }
    for (cell, hist) in cells.iter_mut().zip(first) {
        cell.first_message_ms = hist.into_iter().collect();
    }
    let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    let pings: Vec<String> = specs
        .iter()
        .map(|s| format!("{:?}/{:?}", s.ping_ms, s.reconnect))
        .collect();
    let input = format!(
        "{}\n{}\n{}\n{sessions}",
        pop.text,
        names.join(","),
        pings.join(",")
    );
    Results {
        name: pop.name.clone(),
        file: pop.file.clone(),
        title: pop.title.clone(),
        source: pop.source.clone(),
        seed: pop.seed,
        input: format!("{:016x}", fnv1a(input.as_bytes())),
        paths: pop
            .paths
            .iter()
            .map(|p| PathInfo {
                name: p.name.clone(),
                share: p.weight / total,
                source: p.source.clone(),
            })
            .collect(),
        marks: pop
            .marks
            .iter()
            .map(|(label, ms)| Mark {
                label: label.clone(),
                ms: *ms,
            })
            .collect(),
        calibration: pop
            .calibration
            .iter()
            .map(|(what, strategy, rate)| Calibration {
                what: what.clone(),
                strategy: strategy.clone(),
                rate: *rate,
            })
            .collect(),
        cells,
    }
}

/// The scenario a session runs: the path's hops and network with `draws` in place of its
/// distributions, the population's `[session]` as its client with the cell's strategy, and
/// `delivered` expected (a population counts outcomes; it expects nothing).
pub(crate) fn scenario_text(
    pop: &Population,
    path: &PathDef,
    draws: &[i64],
    cell: &CellSpec,
) -> String {
    let mut draws = draws.iter().copied();
    let mut value = |p: &Param| match p {
        Param::Fixed(v) => v.clone(),
        Param::Drawn(d) => d.value(draws.next().unwrap_or(0)),
    };
    let mut table = |params: &[(String, Param)]| {
        params
            .iter()
            .map(|(k, p)| (k.clone(), value(p)))
            .collect::<toml::Table>()
    };
    let network = table(&path.network);
    let hops: Vec<toml::Value> = path
        .hops
        .iter()
        .map(|h| toml::Value::Table(table(h)))
        .collect();
    let strategy = cell.kind.as_str();
    let mut client = toml::Table::new();
    client.insert(
        "strategies".into(),
        toml::Value::Array(vec![toml::Value::String(strategy.into())]),
    );
    if let Some(route) = &path.route {
        client.insert("route".into(), toml::Value::String(route.clone()));
    }
    if let Some(ms) = cell.ping_ms {
        client.insert("ping-interval-ms".into(), toml::Value::Integer(ms as i64));
    }
    for (k, v) in &cell.client {
        client.insert(k.clone(), v.clone());
    }
    let others: Vec<&str> = scenario::StrategyKind::ALL
        .iter()
        .map(|k| k.as_str())
        .filter(|k| *k != strategy)
        .collect();
    for (k, v) in &pop.session {
        // A table for another strategy has no place in this session's scenario, nor
        // reconnection in a cell without it.
        let dropped = k == "reconnect" && cell.reconnect == Some(false);
        if !others.contains(&k.as_str()) && !dropped {
            client.insert(k.clone(), v.clone());
        }
    }
    if cell.reconnect == Some(true) && !client.contains_key("reconnect") {
        client.insert("reconnect".into(), toml::Value::Table(toml::Table::new()));
    }
    if let Some(t) = &cell.table {
        let mine = client
            .entry(strategy.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let toml::Value::Table(mine) = mine {
            for (k, v) in t {
                mine.insert(k.clone(), v.clone());
            }
        }
    }
    let mut doc = toml::Table::new();
    doc.insert(
        "format".into(),
        toml::Value::Integer(i64::from(scenario::FORMAT)),
    );
    doc.insert(
        "title".into(),
        toml::Value::String(format!("{}: {}, {}", pop.name, path.name, cell.name)),
    );
    doc.insert("source".into(), toml::Value::String(pop.file.clone()));
    doc.insert(
        "seeds".into(),
        toml::Value::Array(vec![toml::Value::Integer(pop.seed as i64)]),
    );
    if !network.is_empty() {
        doc.insert("network".into(), toml::Value::Table(network));
    }
    if !hops.is_empty() {
        doc.insert("path".into(), toml::Value::Array(hops));
    }
    if !path.faults.is_empty() {
        let faults = path
            .faults
            .iter()
            .cloned()
            .map(toml::Value::Table)
            .collect();
        doc.insert("faults".into(), toml::Value::Array(faults));
    }
    doc.insert("client".into(), toml::Value::Table(client));
    let mut expect = toml::Table::new();
    expect.insert(strategy.into(), toml::Value::String("delivered".into()));
    doc.insert("expect".into(), toml::Value::Table(expect));
    toml::to_string(&doc).unwrap_or_default()
}
