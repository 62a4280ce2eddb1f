//! Populations (`scenarios/populations/*.toml`, `gauntlet population`): a weighted mix of
//! network paths whose parameters may be distributions, sampled session by session and run
//! with each strategy on the simulated engine, so that a success rate speaks of the users a
//! population stands for rather than of the catalogue.
//!
//! - [`load`] reads and checks a population file ([`Population`]): every path, with every
//!   strategy, at the extremes of every distribution, must make a scenario that validates.
//! - [`dist`]: fixed values and distributions, and drawing them.
//! - [`run()`] samples sessions (session `i` draws from `Rng::derive(seed, i)`, whatever
//!   the shard or the thread), runs each distinct draw once per cell and counts it for every
//!   session that drew it (a run is a function of its inputs: the same draw is the same
//!   simulation), and returns counts that shards add up
//!   ([`gauntlet_reports::population::Populations`]).

pub mod dist;
mod load;
mod run;

use crate::scenario::StrategyKind;
use dist::Param;

pub use load::{BUILTIN, load, parse, resolve};
pub use run::{Options, Progress, Ran, run};

/// The sessions a population runs unless told otherwise: enough that a rate's 95% interval
/// is within ±1 point wherever the rate lies (Wilson, at 50%, needs 9,604).
pub const DEFAULT_SESSIONS: u64 = 10_000;

/// The most sessions a run samples per population.
pub const MAX_SESSIONS: u64 = 100_000_000;

/// A validated population file.
#[derive(Debug, Clone)]
pub struct Population {
    /// The file, as given.
    pub file: String,
    /// The file's text, hashed into the results so that shards of different files refuse
    /// to merge.
    pub text: String,
    /// `name`, or the file's stem.
    pub name: String,
    /// One line saying what it is.
    pub title: String,
    /// Where its weights and parameters come from.
    pub source: String,
    /// The seed sessions draw from (default 1).
    pub seed: u64,
    /// The `[client]` table of every session's scenario (`[session]`), without `schemes`,
    /// `strategies` and `route`.
    pub session: toml::Table,
    /// What its cells are unless the command line says otherwise (`[sweep]`).
    pub sweep: Sweep,
    /// Times to mark on charts (`[[mark]]`).
    pub marks: Vec<(String, u64)>,
    /// Field measurements it is calibrated on (`[[calibration]]`): what, the strategy that
    /// stands for it, the measured rate.
    pub calibration: Vec<(String, String, f64)>,
    /// The paths, each with its weight.
    pub paths: Vec<PathDef>,
}

/// One path of a population: a chain of hops and a network, each parameter fixed or drawn.
#[derive(Debug, Clone)]
pub struct PathDef {
    /// Its name.
    pub name: String,
    /// Its weight among the paths.
    pub weight: f64,
    /// Where its weight and parameters come from, or `assumption: …`.
    pub source: String,
    /// The client's route (`transparent` unless given).
    pub route: Option<String>,
    /// `[network]`: each key (`latency-ms`, `jitter-ms`) fixed or drawn.
    pub network: Vec<(String, Param)>,
    /// The hops, in order, each its keys in the file's order (fixed or drawn).
    pub hops: Vec<Vec<(String, Param)>>,
    /// `[[faults]]` tables, as written.
    pub faults: Vec<toml::Table>,
    /// Where the path's table starts in the file, for errors.
    pub at: usize,
}

impl PathDef {
    /// Every drawn parameter, in the order a session draws them.
    pub fn drawn(&self) -> impl Iterator<Item = &dist::Dist> {
        self.network
            .iter()
            .chain(self.hops.iter().flatten())
            .filter_map(|(_, p)| match p {
                Param::Drawn(d) => Some(d),
                Param::Fixed(_) => None,
            })
    }
}

/// What a run's cells are made of: every strategy, at every ping interval (those with a
/// WebSocket ping of their own), with and without reconnection as listed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sweep {
    /// Strategies by name (`[sweep] strategies`).
    pub strategies: Vec<String>,
    /// WebSocket ping intervals, in milliseconds (`ping-interval-ms`); none: no ping.
    pub ping_intervals: Vec<u64>,
    /// Without and with socket.io-client's reconnection (`reconnect = [false, true]`);
    /// none: as `[session]` says.
    pub reconnect: Vec<bool>,
}

/// A cell of a run: a strategy, with its settings, at a ping interval if swept.
#[derive(Debug, Clone, PartialEq)]
pub struct CellSpec {
    /// The name as given (`long-polling` included).
    pub name: String,
    /// The strategy run.
    pub kind: StrategyKind,
    /// Its table (`[client.<strategy>]`), if the name implies one.
    pub table: Option<toml::Table>,
    /// Keys of `[client]` the name implies (`handshake = "connect"`).
    pub client: toml::Table,
    /// The WebSocket ping interval, in milliseconds.
    pub ping_ms: Option<u64>,
    /// `Some(true)`: with `[client.reconnect]` (socket.io-client's defaults, unless
    /// `[session]` has its own); `Some(false)`: without; `None`: as `[session]` says.
    pub reconnect: Option<bool>,
}

/// `long-polling`: an Engine.IO session that stays on HTTP long-polling (`upgrade = false`):
/// the POST-based handshake of Huang et al., and Socket.IO without its upgrade.
pub const LONG_POLLING: &str = "long-polling";

/// `connect-handshake`: the reference client's WebSocket opened with Huang et al.'s
/// CONNECT-based handshake (`[client] handshake = "connect"`) on ws.
pub const CONNECT_HANDSHAKE: &str = "connect-handshake";

/// The names a strategy may be given: every [`StrategyKind`], [`LONG_POLLING`] and
/// [`CONNECT_HANDSHAKE`].
pub fn strategy_names() -> Vec<&'static str> {
    let mut v: Vec<&str> = StrategyKind::ALL.iter().map(|k| k.as_str()).collect();
    v.extend([LONG_POLLING, CONNECT_HANDSHAKE]);
    v
}

/// The cells of a sweep: each strategy; a strategy with a WebSocket of its own (not
/// Engine.IO, not streaming) once per ping interval; each of those once per reconnection
/// setting. The error names an unknown strategy and the choices.
pub fn cells(sweep: &Sweep) -> Result<Vec<CellSpec>, PopulationError> {
    let mut out: Vec<CellSpec> = Vec::new();
    let reconnect: Vec<Option<bool>> = if sweep.reconnect.is_empty() {
        vec![None]
    } else {
        sweep.reconnect.iter().copied().map(Some).collect()
    };
    for (n, name) in sweep.strategies.iter().enumerate() {
        if sweep.strategies[..n].contains(name) {
            return Err(PopulationError::Cells(format!(
                "strategy `{name}` is listed twice"
            )));
        }
        let mut client = toml::Table::new();
        let (kind, table) = if name == LONG_POLLING {
            let mut t = toml::Table::new();
            t.insert("upgrade".into(), toml::Value::Boolean(false));
            (StrategyKind::PollingThenUpgrade, Some(t))
        } else if name == CONNECT_HANDSHAKE {
            client.insert("handshake".into(), toml::Value::String("connect".into()));
            (StrategyKind::Ws, None)
        } else {
            let kind = StrategyKind::ALL
                .into_iter()
                .find(|k| k.as_str() == name)
                .ok_or_else(|| {
                    PopulationError::Cells(format!(
                        "`{name}` is not a strategy: use {}",
                        strategy_names().join(", ")
                    ))
                })?;
            (kind, None)
        };
        let pinged = !kind.engineio() && !kind.streams();
        let pings: Vec<Option<u64>> = if pinged && !sweep.ping_intervals.is_empty() {
            sweep.ping_intervals.iter().copied().map(Some).collect()
        } else {
            vec![None]
        };
        for r in &reconnect {
            for ping_ms in &pings {
                out.push(CellSpec {
                    name: name.clone(),
                    kind,
                    table: table.clone(),
                    client: client.clone(),
                    ping_ms: *ping_ms,
                    reconnect: *r,
                });
            }
        }
    }
    Ok(out)
}

/// Why a population could not be read or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PopulationError {
    /// The file does not read or check, located.
    #[error(transparent)]
    File(#[from] crate::scenario::ScenarioError),
    /// The strategies or ping intervals asked for do not make cells.
    #[error("{0}")]
    Cells(String),
    /// The population has no strategy to run: neither the command line nor `[sweep]` names
    /// one.
    #[error(
        "{file}: no strategies to run: name them on the command line or in `[sweep] strategies`"
    )]
    NoStrategies {
        /// The file.
        file: String,
    },
    /// A session's run could not be carried out (a fault of the harness, not of the path).
    #[error("{file}: path `{path}` with {cell}: {error}")]
    Run {
        /// The population file.
        file: String,
        /// The path.
        path: String,
        /// The cell.
        cell: String,
        /// What went wrong.
        error: String,
    },
}
