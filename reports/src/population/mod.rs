//! Populations' results (`gauntlet population`): for each population, each cell (a strategy,
//! at a ping interval if swept) counted over the sampled sessions, in a form that adds up:
//! shards of a run merge ([`Populations::merge`]) into the bytes the unsharded run writes.
//! The statistics a report shows ([`wilson`], [`percentile`]) are computed from the counts
//! when rendered, never stored.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

mod render;
mod render_svg;
mod stats;

pub use render::{
    TABLE_PING_MS, calibration_table, population_html, population_markdown, population_table,
    traversal_section,
};
pub use stats::{Interval, percentile, wilson};

/// The populations' results format; changes when a field changes meaning or goes away.
pub const VERSION: u32 = 1;

/// One run of `gauntlet population`, or one shard of it, or shards merged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Populations {
    /// [`VERSION`].
    pub version: u32,
    /// Sessions sampled per population (each run once per cell).
    pub sessions: u64,
    /// The shard this file holds (`--shard i/n`); `None` for a whole run or a merge of
    /// every shard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// Each population, in the order given.
    pub populations: Vec<Population>,
}

/// Which sessions a shard ran: those whose index `i` has `i % count == index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// This shard, from 0.
    pub index: u64,
    /// Shards in all.
    pub count: u64,
}

/// One population's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Population {
    /// Its name (the file's `name`).
    pub name: String,
    /// The file, as given.
    pub file: String,
    /// One line saying what it is.
    pub title: String,
    /// Where its weights and parameters come from.
    pub source: String,
    /// The seed sessions are drawn from.
    pub seed: u64,
    /// A hash of what determines the counts (the file's text, the cells, the session count):
    /// shards merge only when it is the same.
    pub input: String,
    /// Its paths, in the file's order.
    pub paths: Vec<PathInfo>,
    /// Timeouts worth marking on a chart of success against the ping interval (an idle
    /// limit its paths draw), in the file's order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub marks: Vec<Mark>,
    /// Field measurements the population was calibrated on (`[[calibration]]`), each to be
    /// reproduced by a strategy's rate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calibration: Vec<Calibration>,
    /// Each cell, in the order run.
    pub cells: Vec<Cell>,
}

/// A measured rate a population reproduces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// What was measured (`Upgrade-based handshake, Huang et al. 2011`).
    pub what: String,
    /// The strategy that stands for it.
    pub strategy: String,
    /// The measured rate, 0 to 1.
    pub rate: f64,
}

/// A named time on a chart's axis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    /// What it is (`AWS ALB idle`).
    pub label: String,
    /// When, in milliseconds.
    pub ms: u64,
}

/// A path of a population.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathInfo {
    /// Its name.
    pub name: String,
    /// Its share of sessions, as a fraction of the weights' total.
    pub share: f64,
    /// Where its weight and parameters come from.
    pub source: String,
}

/// A strategy (at a ping interval, if swept) over a population's sessions.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Cell {
    /// The strategy as named on the command line (`long-polling` included).
    pub strategy: String,
    /// The WebSocket ping interval in milliseconds, when swept (strategies without a
    /// WebSocket ping of their own have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ping_interval_ms: Option<u64>,
    /// Whether the sessions reconnected after a failure (swept), if swept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconnect: Option<bool>,
    /// Sessions run.
    pub sessions: u64,
    /// Sessions whose every message arrived (`delivered`, `degraded`, `fell-back`,
    /// `reconnected`).
    pub succeeded: u64,
    /// Sessions per outcome.
    pub outcomes: BTreeMap<String, u64>,
    /// Sessions and successes per path, in the population's path order.
    pub paths: Vec<PathTally>,
    /// Time to the first message, in milliseconds, as `[ms, sessions]` in increasing order,
    /// for every session that got one.
    pub first_message_ms: Vec<(u64, u64)>,
    /// Messages the sessions meant to exchange.
    pub messages: u64,
    /// Messages that never arrived.
    pub lost: u64,
    /// Reconnections after a failure, over every session.
    pub reconnects: u64,
    /// Simulated session time, in milliseconds, over every session.
    pub session_ms: u64,
}

/// One path's share of a cell.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PathTally {
    /// Sessions on the path.
    pub sessions: u64,
    /// Of those, the ones that succeeded.
    pub succeeded: u64,
}

/// Why shards do not merge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MergeError {
    /// No file was given.
    #[error("nothing to merge")]
    Empty,
    /// A file is not a shard (a whole run, or already merged).
    #[error("file {0} is not a shard of a run (it has no `shard`)")]
    NotAShard(usize),
    /// The files are shards of different runs.
    #[error("file {file} is a shard of another run than file 1: {what} differs")]
    Different {
        /// The file's position among those given, from 1.
        file: usize,
        /// What differs.
        what: String,
    },
    /// A shard given twice.
    #[error("shard {index}/{count} is given twice")]
    Twice {
        /// The shard.
        index: u64,
        /// Shards in all.
        count: u64,
    },
    /// Shards missing.
    #[error("shards missing: {0}")]
    Missing(String),
}

impl Populations {
    /// The shards `parts` of one run, every one of them, merged into what the run without
    /// shards writes.
    pub fn merge(parts: &[Populations]) -> Result<Populations, MergeError> {
        let first = parts.first().ok_or(MergeError::Empty)?;
        let count = first.shard.ok_or(MergeError::NotAShard(1))?.count;
        let mut seen = vec![false; count as usize];
        let mut out = first.clone();
        out.shard = None;
        for p in &mut out.populations {
            for c in &mut p.cells {
                c.clear_counts();
            }
        }
        for (n, part) in parts.iter().enumerate() {
            let file = n + 1;
            let shard = part.shard.ok_or(MergeError::NotAShard(file))?;
            let differ = |what: &str| MergeError::Different {
                file,
                what: what.to_string(),
            };
            if shard.count != count {
                return Err(differ("the shard count"));
            }
            if part.sessions != out.sessions || part.version != out.version {
                return Err(differ("the session count"));
            }
            if part.populations.len() != out.populations.len() {
                return Err(differ("the populations"));
            }
            let slot = seen
                .get_mut(shard.index as usize)
                .ok_or_else(|| differ("the shard index"))?;
            if std::mem::replace(slot, true) {
                return Err(MergeError::Twice {
                    index: shard.index,
                    count,
                });
            }
            for (into, from) in out.populations.iter_mut().zip(&part.populations) {
                if (&into.name, &into.input) != (&from.name, &from.input)
                    || into.cells.len() != from.cells.len()
                {
                    return Err(differ(&format!("population {}", from.name)));
                }
                for (c, f) in into.cells.iter_mut().zip(&from.cells) {
                    c.add(f);
                }
            }
        }
        let missing: Vec<String> = (0..count)
            .filter(|i| !seen[*i as usize])
            .map(|i| format!("{i}/{count}"))
            .collect();
        if !missing.is_empty() {
            return Err(MergeError::Missing(missing.join(", ")));
        }
        Ok(out)
    }
}

impl Cell {
    /// Every count set to none, the cell's name and paths kept.
    fn clear_counts(&mut self) {
        let paths = self.paths.len();
        *self = Cell {
            strategy: std::mem::take(&mut self.strategy),
            ping_interval_ms: self.ping_interval_ms,
            reconnect: self.reconnect,
            paths: vec![PathTally::default(); paths],
            ..Cell::default()
        };
    }

    /// Adds `other`'s counts to this cell's.
    pub fn add(&mut self, other: &Cell) {
        self.sessions += other.sessions;
        self.succeeded += other.succeeded;
        for (k, v) in &other.outcomes {
            *self.outcomes.entry(k.clone()).or_default() += v;
        }
        if self.paths.len() < other.paths.len() {
            self.paths.resize(other.paths.len(), PathTally::default());
        }
        for (p, o) in self.paths.iter_mut().zip(&other.paths) {
            p.sessions += o.sessions;
            p.succeeded += o.succeeded;
        }
        let mut hist: BTreeMap<u64, u64> = self.first_message_ms.iter().copied().collect();
        for (ms, n) in &other.first_message_ms {
            *hist.entry(*ms).or_default() += n;
        }
        self.first_message_ms = hist.into_iter().collect();
        self.messages += other.messages;
        self.lost += other.lost;
        self.reconnects += other.reconnects;
        self.session_ms += other.session_ms;
    }

    /// The success rate with its Wilson 95% interval.
    pub fn success(&self) -> Interval {
        wilson(self.succeeded, self.sessions)
    }

    /// Messages lost per 1,000 meant, if any were meant.
    pub fn lost_per_1000(&self) -> Option<f64> {
        (self.messages > 0).then(|| self.lost as f64 * 1000.0 / self.messages as f64)
    }

    /// Reconnections per hour of session time, if any time passed.
    pub fn reconnects_per_hour(&self) -> Option<f64> {
        (self.session_ms > 0).then(|| self.reconnects as f64 * 3_600_000.0 / self.session_ms as f64)
    }

    /// The `p`-th percentile (0 to 100, nearest rank) of the time to the first message.
    pub fn first_message_percentile(&self, p: f64) -> Option<u64> {
        percentile(&self.first_message_ms, p)
    }

    /// The cell's name: the strategy, the ping interval when swept, and whether it
    /// reconnects when that is swept (`ws ping 25 s, reconnecting`).
    pub fn label(&self) -> String {
        let mut s = self.strategy.clone();
        if let Some(ms) = self.ping_interval_ms {
            s.push_str(&format!(" ping {} s", crate::text::ms(ms as f64 / 1000.0)));
        }
        match self.reconnect {
            Some(true) => s.push_str(", reconnecting"),
            Some(false) => s.push_str(", no reconnection"),
            None => {}
        }
        s
    }
}

/// Reads a populations' results file.
pub fn from_json(text: &str) -> Result<Populations, serde_json::Error> {
    serde_json::from_str(text)
}

/// The file's bytes: pretty JSON and a final newline, the same for the same results.
pub fn to_json(p: &Populations) -> String {
    let mut s = serde_json::to_string_pretty(p).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests;
