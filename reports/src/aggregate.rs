//! What the reports compute from runs: groups of runs by scenario × scheme across seeds, with
//! pass counts and latency percentiles merged from their samples; the traversal matrix built
//! from those groups; and delivery rates per intermediary kind × scheme.
//!
//! # Percentiles
//!
//! Percentiles are exact, by the nearest-rank method: for `n` values sorted ascending, the
//! `p`th percentile is the value of rank `⌈p/100 · n⌉` (ranks from 1; at least 1). It is
//! always one of the values (never an interpolation between two), so a report's p99 is a
//! latency some message really had; with fewer than 100 values p99 is the maximum.
//!
//! # Order
//!
//! Everything comes out in report order: scenario path (byte order), then scheme (`ws`, `wss`,
//! then any other by name), then seed; runs equal in all three keep their order in the file.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::outcome::Class;
use crate::{Latency, Results, Run};

/// The outcome that counts as a success in delivery rates.
pub const DELIVERED: &str = "delivered";

/// A client strategy's run that delivered everything on a fallback transport: a success in
/// delivery rates too.
pub const FELL_BACK: &str = "fell-back";

/// The kind shown for runs whose writer did not record one.
pub const UNSPECIFIED_KIND: &str = "unspecified";

/// Compares schemes in report order: `ws`, then `wss`, then any other by name.
pub fn scheme_order(a: &str, b: &str) -> Ordering {
    fn rank(s: &str) -> u8 {
        match s {
            "ws" => 0,
            "wss" => 1,
            _ => 2,
        }
    }
    rank(a).cmp(&rank(b)).then_with(|| a.cmp(b))
}

/// Compares runs in report order: scenario, scheme, seed.
pub fn run_order(a: &Run, b: &Run) -> Ordering {
    a.scenario
        .cmp(&b.scenario)
        .then_with(|| scheme_order(&a.scheme, &b.scheme))
        .then_with(|| a.seed.cmp(&b.seed))
}

/// The runs in report order (a stable sort: ties keep their order in the file).
pub fn sorted_runs(results: &Results) -> Vec<&Run> {
    let mut runs: Vec<&Run> = results.runs.iter().collect();
    runs.sort_by(|a, b| run_order(a, b));
    runs
}

/// The schemes a report shows as columns: `ws` and `wss` always, then any other scheme the
/// runs use.
pub fn schemes(results: &Results) -> Vec<String> {
    let mut schemes = vec!["ws".to_string(), "wss".to_string()];
    for run in &results.runs {
        if !schemes.contains(&run.scheme) {
            schemes.push(run.scheme.clone());
        }
    }
    schemes.sort_by(|a, b| scheme_order(a, b));
    schemes
}

/// The `p`th percentile (0 < `p` ≤ 100) of values sorted ascending, by nearest rank: the value
/// of rank `⌈p/100 · n⌉`, counting from 1. `None` for no values. A `p` of 0 or less gives the
/// smallest value, above 100 the largest.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    // p · n first, then the division: for whole p the product is exact, so a rank that is a
    // whole number comes out as one (0.9 · 10 would not).
    let rank = (p * n as f64 / 100.0).ceil();
    let index = if rank.is_nan() || rank < 1.0 {
        0
    } else if rank >= n as f64 {
        n - 1
    } else {
        rank as usize - 1
    };
    Some(sorted[index])
}

/// The finite values among `values`, sorted ascending.
pub fn sorted_finite(values: impl IntoIterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    v
}

impl Latency {
    /// Nearest-rank percentiles of the finite values in `samples` (any order); `None` when
    /// there are none.
    pub fn from_samples(samples: &[f64]) -> Option<Latency> {
        Self::from_sorted(&sorted_finite(samples.iter().copied()))
    }

    fn from_sorted(sorted: &[f64]) -> Option<Latency> {
        Some(Latency {
            p50: percentile(sorted, 50.0)?,
            p90: percentile(sorted, 90.0)?,
            p99: percentile(sorted, 99.0)?,
            max: *sorted.last()?,
            count: sorted.len() as u64,
        })
    }
}

/// The runs of one scenario with one scheme, across seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// The scenario file.
    pub scenario: String,
    /// The scheme.
    pub scheme: String,
    /// The intermediary kind: the first one a run in the group names; empty if none does.
    pub kind: String,
    /// How many runs (seeds).
    pub runs: usize,
    /// How many of them passed.
    pub passed: usize,
    /// The outcomes expected, each once, sorted (one, unless the file changed between runs).
    pub expected: Vec<String>,
    /// The outcomes observed with how many runs had each, most frequent first, ties by name.
    pub outcomes: Vec<(String, usize)>,
    /// Latency percentiles across seeds. From the runs' merged `samples_ms` when any run has
    /// samples (nearest rank; `count` is the number of samples merged). Otherwise from the
    /// runs' own `latency` summaries, which cannot be merged exactly: each percentile is then
    /// the largest any seed reported (an upper bound), and `count` their sum. `None` when no
    /// run has either.
    pub latency: Option<Latency>,
    /// Every run's finite `samples_ms`, merged and sorted ascending.
    pub samples_ms: Vec<f64>,
    /// Median (nearest rank) over the seeds of `handshake_ms`, among runs that completed it.
    pub handshake_ms: Option<f64>,
    /// Median (nearest rank) over the seeds of `time_to_failure_ms`, among runs that failed.
    pub time_to_failure_ms: Option<f64>,
}

impl Group {
    /// Whether every run in the group passed.
    pub fn all_passed(&self) -> bool {
        self.passed == self.runs
    }

    /// The outcomes in a few words: `delivered`, or `dropped ×2, delivered ×1` when the seeds
    /// disagree.
    pub fn outcome_summary(&self) -> String {
        match self.outcomes.as_slice() {
            [(only, _)] => only.clone(),
            many => many
                .iter()
                .map(|(o, n)| format!("{o} ×{n}"))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

#[cfg(test)]
impl Group {
    /// For tests: one run of `scenario` with `scheme` through `kind` that delivered as expected,
    /// its messages' latencies `samples`.
    pub(crate) fn delivered(scenario: &str, scheme: &str, kind: &str, samples: &[f64]) -> Group {
        let samples_ms = sorted_finite(samples.iter().copied());
        Group {
            scenario: scenario.into(),
            scheme: scheme.into(),
            kind: kind.into(),
            runs: 1,
            passed: 1,
            expected: vec![DELIVERED.into()],
            outcomes: vec![(DELIVERED.into(), 1)],
            latency: Latency::from_sorted(&samples_ms),
            samples_ms,
            handshake_ms: None,
            time_to_failure_ms: None,
        }
    }
}

/// Groups runs by scenario × scheme, in report order.
pub fn groups(results: &Results) -> Vec<Group> {
    let mut by_key: BTreeMap<(&str, &str), Vec<&Run>> = BTreeMap::new();
    for run in &results.runs {
        by_key
            .entry((run.scenario.as_str(), run.scheme.as_str()))
            .or_default()
            .push(run);
    }
    let mut groups: Vec<Group> = by_key
        .into_iter()
        .map(|((scenario, scheme), runs)| group(scenario, scheme, &runs))
        .collect();
    groups.sort_by(|a, b| {
        a.scenario
            .cmp(&b.scenario)
            .then_with(|| scheme_order(&a.scheme, &b.scheme))
    });
    groups
}

fn group(scenario: &str, scheme: &str, runs: &[&Run]) -> Group {
    let mut expected: Vec<String> = runs.iter().map(|r| r.expected.clone()).collect();
    expected.sort();
    expected.dedup();

    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for r in runs {
        *counts.entry(r.outcome.as_str()).or_default() += 1;
    }
    let mut outcomes: Vec<(String, usize)> = counts
        .into_iter()
        .map(|(o, n)| (o.to_string(), n))
        .collect();
    outcomes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));

    let samples_ms = sorted_finite(runs.iter().flat_map(|r| r.samples_ms.iter().copied()));
    let latency = merged_latency(&samples_ms, runs.iter().filter_map(|r| r.latency));

    Group {
        scenario: scenario.to_string(),
        scheme: scheme.to_string(),
        kind: runs
            .iter()
            .map(|r| r.kind.as_str())
            .find(|k| !k.is_empty())
            .unwrap_or_default()
            .to_string(),
        runs: runs.len(),
        passed: runs.iter().filter(|r| r.pass).count(),
        expected,
        outcomes,
        latency,
        samples_ms,
        handshake_ms: median(runs.iter().filter_map(|r| r.handshake_ms)),
        time_to_failure_ms: median(runs.iter().filter_map(|r| r.time_to_failure_ms)),
    }
}

/// Latency percentiles of several runs: from their merged samples (sorted ascending) when
/// there are any, else the largest of each percentile their summaries report (an upper bound;
/// `count` their sum). `None` when there is neither.
pub(crate) fn merged_latency(
    samples_sorted: &[f64],
    summaries: impl IntoIterator<Item = Latency>,
) -> Option<Latency> {
    Latency::from_sorted(samples_sorted).or_else(|| {
        summaries.into_iter().reduce(|a, b| Latency {
            p50: a.p50.max(b.p50),
            p90: a.p90.max(b.p90),
            p99: a.p99.max(b.p99),
            max: a.max.max(b.max),
            count: a.count + b.count,
        })
    })
}

fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    percentile(&sorted_finite(values), 50.0)
}

/// The traversal matrix: one row per scenario, one cell per scheme column.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    /// The columns ([`schemes`]).
    pub schemes: Vec<String>,
    /// The rows, by scenario path.
    pub rows: Vec<MatrixRow>,
}

/// One scenario's row of the matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixRow {
    /// The scenario file.
    pub scenario: String,
    /// One cell per column of [`Matrix::schemes`]; `None` where the scenario has no run with
    /// that scheme.
    pub cells: Vec<Option<Group>>,
}

/// The traversal matrix of the results.
pub fn matrix(results: &Results) -> Matrix {
    let schemes = schemes(results);
    let mut rows: Vec<MatrixRow> = Vec::new();
    for g in groups(results) {
        if rows.last().is_none_or(|r| r.scenario != g.scenario) {
            rows.push(MatrixRow {
                scenario: g.scenario.clone(),
                cells: vec![None; schemes.len()],
            });
        }
        let column = schemes
            .iter()
            .position(|s| *s == g.scheme)
            .expect("schemes() lists every scheme the runs use");
        let row = rows.last_mut().expect("a row was pushed above");
        row.cells[column] = Some(g);
    }
    Matrix { schemes, rows }
}

/// How runs of one kind with one scheme fared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rate {
    /// The scheme.
    pub scheme: String,
    /// Runs of this kind with this scheme.
    pub runs: usize,
    /// Of those, runs whose outcome was `delivered` (or, for a client strategy, `fell-back`).
    pub delivered: usize,
    /// Of those, runs that passed (got the outcome their scenario expects).
    pub passed: usize,
}

impl Rate {
    /// The success rate, `delivered / runs`, in 0..=1; `None` without runs.
    ///
    /// Success means the WebSocket (or a strategy's fallback) carried the workload within its
    /// bounds: only `delivered` and `fell-back` count (`degraded` missed a latency bound). A scenario that expects a failure still
    /// counts as a failure here: this measures the intermediary, not the scenario file.
    pub fn success(&self) -> Option<f64> {
        (self.runs > 0).then(|| self.delivered as f64 / self.runs as f64)
    }
}

/// The delivery rates of one intermediary kind, per scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindRates {
    /// The kind ([`Run::kind`]), or [`UNSPECIFIED_KIND`] for runs that name none.
    pub kind: String,
    /// One entry per column of [`schemes`], in that order; kinds without runs of a scheme
    /// have an entry with `runs == 0`.
    pub rates: Vec<Rate>,
}

/// Delivery rates per intermediary kind × scheme, kinds sorted by name.
pub fn kinds(results: &Results) -> Vec<KindRates> {
    let schemes = schemes(results);
    let mut by_kind: BTreeMap<&str, Vec<Rate>> = BTreeMap::new();
    for run in &results.runs {
        let kind = if run.kind.is_empty() {
            UNSPECIFIED_KIND
        } else {
            run.kind.as_str()
        };
        let rates = by_kind.entry(kind).or_insert_with(|| {
            schemes
                .iter()
                .map(|s| Rate {
                    scheme: s.clone(),
                    runs: 0,
                    delivered: 0,
                    passed: 0,
                })
                .collect()
        });
        let rate = rates
            .iter_mut()
            .find(|r| r.scheme == run.scheme)
            .expect("schemes() lists every scheme the runs use");
        rate.runs += 1;
        rate.delivered += usize::from(Class::of(&run.outcome) == Class::Works);
        rate.passed += usize::from(run.pass);
    }
    by_kind
        .into_iter()
        .map(|(kind, rates)| KindRates {
            kind: kind.to_string(),
            rates,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(scenario: &str, scheme: &str, seed: u64, outcome: &str, expected: &str) -> Run {
        Run {
            scenario: scenario.into(),
            scheme: scheme.into(),
            seed,
            expected: expected.into(),
            outcome: outcome.into(),
            pass: outcome == expected,
            ..Run::default()
        }
    }

    #[test]
    fn nearest_rank_picks_the_value_at_the_ceiling_rank() {
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&ten, 50.0), Some(5.0));
        assert_eq!(percentile(&ten, 90.0), Some(9.0));
        assert_eq!(percentile(&ten, 91.0), Some(10.0));
        assert_eq!(percentile(&ten, 99.0), Some(10.0));
        assert_eq!(percentile(&ten, 100.0), Some(10.0));
        assert_eq!(percentile(&ten, 10.0), Some(1.0));
        assert_eq!(percentile(&ten, 0.0), Some(1.0));
        assert_eq!(percentile(&ten, 150.0), Some(10.0));

        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&hundred, 99.0), Some(99.0));
        assert_eq!(percentile(&hundred, 50.0), Some(50.0));

        assert_eq!(percentile(&[7.0], 50.0), Some(7.0));
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn nearest_rank_median_of_an_even_count_is_the_lower_middle() {
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 50.0), Some(2.0));
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 51.0), Some(3.0));
    }

    #[test]
    fn latency_from_samples_sorts_and_skips_values_that_are_not_finite() {
        let l = Latency::from_samples(&[30.0, f64::NAN, 10.0, 20.0, f64::INFINITY]).unwrap();
        assert_eq!(
            l,
            Latency {
                p50: 20.0,
                p90: 30.0,
                p99: 30.0,
                max: 30.0,
                count: 3
            }
        );
        assert_eq!(Latency::from_samples(&[f64::NAN]), None);
    }

    #[test]
    fn groups_merge_seeds_and_come_out_in_report_order() {
        let mut r = Results::new("turmoil");
        let mut a1 = run("scenarios/b.toml", "wss", 1, "delivered", "delivered");
        a1.samples_ms = vec![10.0, 40.0];
        a1.handshake_ms = Some(30.0);
        let mut a2 = run("scenarios/b.toml", "wss", 2, "dropped", "delivered");
        a2.samples_ms = vec![20.0, 30.0];
        a2.handshake_ms = Some(50.0);
        a2.time_to_failure_ms = Some(900.0);
        a2.kind = "idle-killer".into();
        r.runs = vec![
            a1,
            run(
                "scenarios/b.toml",
                "ws",
                1,
                "handshake-rejected",
                "delivered",
            ),
            a2,
            run("scenarios/a.toml", "wss", 1, "delivered", "delivered"),
            run("scenarios/a.toml", "ws", 1, "delivered", "delivered"),
        ];
        let g = groups(&r);
        let keys: Vec<(&str, &str)> = g
            .iter()
            .map(|g| (g.scenario.as_str(), g.scheme.as_str()))
            .collect();
        assert_eq!(
            keys,
            [
                ("scenarios/a.toml", "ws"),
                ("scenarios/a.toml", "wss"),
                ("scenarios/b.toml", "ws"),
                ("scenarios/b.toml", "wss")
            ]
        );
        let b = &g[3];
        assert_eq!((b.runs, b.passed, b.all_passed()), (2, 1, false));
        assert_eq!(b.kind, "idle-killer");
        assert_eq!(
            b.outcomes,
            [("delivered".to_string(), 1), ("dropped".to_string(), 1)]
        );
        assert_eq!(b.samples_ms, [10.0, 20.0, 30.0, 40.0]);
        assert_eq!(
            b.latency,
            Some(Latency {
                p50: 20.0,
                p90: 40.0,
                p99: 40.0,
                max: 40.0,
                count: 4
            })
        );
        assert_eq!(b.handshake_ms, Some(30.0));
        assert_eq!(b.time_to_failure_ms, Some(900.0));
        assert_eq!(b.outcome_summary(), "delivered ×1, dropped ×1");
        assert_eq!(
            b.expectation_tag().as_deref(),
            Some("unexpected (expects delivered)")
        );
        assert_eq!(g[2].outcome_summary(), "handshake-rejected");
        assert_eq!(
            g[2].expectation_tag().as_deref(),
            Some("unexpected (expects delivered)")
        );
        assert_eq!(g[0].outcome_summary(), "delivered");
        assert_eq!(g[0].expectation_tag(), None);
        assert_eq!(g[0].latency, None);
    }

    #[test]
    fn groups_without_samples_take_the_worst_seed_of_each_percentile() {
        let mut r = Results::new("turmoil");
        let summary = |p50, p99, count| Latency {
            p50,
            p90: p50,
            p99,
            max: p99,
            count,
        };
        let mut a = run("s.toml", "ws", 1, "delivered", "delivered");
        a.latency = Some(summary(10.0, 80.0, 5));
        let mut b = run("s.toml", "ws", 2, "delivered", "delivered");
        b.latency = Some(summary(12.0, 40.0, 7));
        r.runs = vec![a, b, run("s.toml", "ws", 3, "dropped", "delivered")];
        let g = groups(&r);
        assert_eq!(g[0].latency, Some(summary(12.0, 80.0, 12)));
    }

    #[test]
    fn the_matrix_has_a_row_per_scenario_and_a_column_per_scheme() {
        let mut r = Results::new("turmoil");
        r.runs = vec![
            run("b.toml", "ws", 1, "delivered", "delivered"),
            run("a.toml", "wss", 1, "delivered", "delivered"),
            run("a.toml", "ws", 1, "delivered", "delivered"),
        ];
        let m = matrix(&r);
        assert_eq!(m.schemes, ["ws", "wss"]);
        assert_eq!(m.rows.len(), 2);
        assert_eq!(m.rows[0].scenario, "a.toml");
        assert!(m.rows[0].cells.iter().all(Option::is_some));
        assert_eq!(m.rows[1].scenario, "b.toml");
        assert!(m.rows[1].cells[0].is_some() && m.rows[1].cells[1].is_none());
    }

    #[test]
    fn other_schemes_follow_ws_and_wss() {
        let mut r = Results::new("turmoil");
        r.runs = vec![run("a.toml", "long-poll", 1, "delivered", "delivered")];
        assert_eq!(schemes(&r), ["ws", "wss", "long-poll"]);
    }

    #[test]
    fn kinds_count_deliveries_per_scheme_whatever_the_scenario_expects() {
        let mut r = Results::new("turmoil");
        let with_kind = |mut run: Run, kind: &str| {
            run.kind = kind.into();
            run
        };
        r.runs = vec![
            with_kind(
                run(
                    "t.toml",
                    "ws",
                    1,
                    "handshake-rejected",
                    "handshake-rejected",
                ),
                "transparent-proxy",
            ),
            with_kind(
                run("t.toml", "wss", 1, "delivered", "delivered"),
                "transparent-proxy",
            ),
            with_kind(
                run("t.toml", "wss", 2, "degraded", "delivered"),
                "transparent-proxy",
            ),
            with_kind(run("d.toml", "ws", 1, "delivered", "delivered"), "direct"),
            run("u.toml", "ws", 1, "delivered", "delivered"),
        ];
        let k = kinds(&r);
        let names: Vec<&str> = k.iter().map(|k| k.kind.as_str()).collect();
        assert_eq!(names, ["direct", "transparent-proxy", UNSPECIFIED_KIND]);
        let t = &k[1];
        assert_eq!(
            t.rates,
            [
                Rate {
                    scheme: "ws".into(),
                    runs: 1,
                    delivered: 0,
                    passed: 1
                },
                Rate {
                    scheme: "wss".into(),
                    runs: 2,
                    delivered: 1,
                    passed: 1
                },
            ]
        );
        assert_eq!(t.rates[0].success(), Some(0.0));
        assert_eq!(t.rates[1].success(), Some(0.5));
        assert_eq!(k[0].rates[1].runs, 0);
        assert_eq!(k[0].rates[1].success(), None);
    }

    #[test]
    fn a_strategy_that_fell_back_counts_as_delivered_in_its_own_column() {
        let mut r = Results::new("sim");
        let mut fell = run(
            "s.toml",
            "polling-then-upgrade",
            1,
            "fell-back",
            "fell-back",
        );
        fell.kind = "transparent-proxy".into();
        let mut lost = run("s.toml", "polling-then-upgrade", 2, "dropped", "fell-back");
        lost.kind = "transparent-proxy".into();
        r.runs = vec![fell, lost];
        let k = kinds(&r);
        assert_eq!(schemes(&r), ["ws", "wss", "polling-then-upgrade"]);
        assert_eq!(
            k[0].rates[2],
            Rate {
                scheme: "polling-then-upgrade".into(),
                runs: 2,
                delivered: 1,
                passed: 1
            }
        );
    }

    #[test]
    fn sorted_runs_order_by_scenario_scheme_then_seed() {
        let mut r = Results::new("turmoil");
        r.runs = vec![
            run("a.toml", "wss", 1, "delivered", "delivered"),
            run("a.toml", "ws", 2, "delivered", "delivered"),
            run("a.toml", "ws", 1, "delivered", "delivered"),
        ];
        let keys: Vec<(&str, u64)> = sorted_runs(&r)
            .iter()
            .map(|r| (r.scheme.as_str(), r.seed))
            .collect();
        assert_eq!(keys, [("ws", 1), ("ws", 2), ("wss", 1)]);
    }
}
