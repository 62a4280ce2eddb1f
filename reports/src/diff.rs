//! Two result sets compared run by run: what regressed, what improved, what else changed.
//!
//! Runs are matched by scenario, scheme and seed. A matched pair is compared on its verdict
//! (pass or fail, with the outcome and the expectation) and on two latency figures: the
//! per-message latency (`latency.p99` when both runs have it, otherwise `rtt_median_ms`) and
//! `handshake_ms`. A latency figure counts as worse or better only when it moved by more than
//! both thresholds of [`DiffOptions`], so small figures jittering by a millisecond do not flap.
//!
//! | change | listed as |
//! |---|---|
//! | pass → fail | regression |
//! | a latency figure worse beyond both thresholds | regression |
//! | fail → pass | improvement |
//! | a latency figure better beyond both thresholds | improvement |
//! | outcome or expectation changed, pass or fail the same | other change |
//! | a run only in the old results | other change (removed) |
//! | a run only in the new results | other change (added) |
//!
//! Everything comes out in report order (scenario, `ws` before `wss`, seed; for one run, the
//! verdict before latency before handshake), so the same pair of files always renders to the
//! same text.

use std::cmp::Ordering;
use std::fmt::Write;

use crate::aggregate::run_order;
use crate::text::ms;
use crate::{Results, Run};

/// How far a latency figure must move to count as a regression or an improvement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiffOptions {
    /// The move must be more than this percentage of the old figure.
    pub threshold_pct: f64,
    /// The move must be more than this many milliseconds.
    pub threshold_ms: f64,
}

impl Default for DiffOptions {
    /// 20 % and 5 ms.
    fn default() -> Self {
        Self {
            threshold_pct: 20.0,
            threshold_ms: 5.0,
        }
    }
}

/// What a run expected, what it got, and whether that was a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The outcome the scenario expected.
    pub expected: String,
    /// The outcome observed.
    pub outcome: String,
    /// Whether the run passed.
    pub pass: bool,
}

impl Verdict {
    fn of(run: &Run) -> Self {
        Self {
            expected: run.expected.clone(),
            outcome: run.outcome.clone(),
            pass: run.pass,
        }
    }
}

/// A latency figure compared between two runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Measure {
    /// `latency.p99`, per-message latency.
    P99,
    /// `rtt_median_ms`, compared when a run lacks `latency`.
    Median,
    /// `handshake_ms`, connect to `101`.
    Handshake,
}

impl Measure {
    /// The figure's name in the rendering.
    pub fn label(self) -> &'static str {
        match self {
            Measure::P99 => "latency p99",
            Measure::Median => "latency median",
            Measure::Handshake => "handshake",
        }
    }
}

/// What changed about one run.
#[derive(Debug, Clone, PartialEq)]
pub enum ChangeKind {
    /// The verdict changed: pass status, outcome or expectation. `detail` is the new run's.
    Verdict {
        /// The old run's verdict.
        old: Verdict,
        /// The new run's verdict.
        new: Verdict,
        /// The new run's detail.
        detail: String,
    },
    /// A latency figure moved beyond both thresholds.
    Latency {
        /// Which figure.
        measure: Measure,
        /// The old run's figure, in simulated milliseconds.
        old: f64,
        /// The new run's figure, in simulated milliseconds.
        new: f64,
    },
    /// The run is only in the new results.
    Added(Verdict),
    /// The run is only in the old results.
    Removed(Verdict),
}

/// One change to one run, named by scenario, scheme and seed.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The scenario file.
    pub scenario: String,
    /// The scheme.
    pub scheme: String,
    /// The seed.
    pub seed: u64,
    /// What changed.
    pub kind: ChangeKind,
}

/// The comparison of two result sets; see the [module documentation](self).
#[derive(Debug, Clone, PartialEq)]
pub struct Diff {
    /// Things that make the comparison less meaningful (different engines or schema versions,
    /// a run listed twice in one file), one sentence each.
    pub warnings: Vec<String>,
    /// Runs that went from pass to fail, and latency figures that got worse.
    pub regressions: Vec<Change>,
    /// Runs that went from fail to pass, and latency figures that got better.
    pub improvements: Vec<Change>,
    /// Outcome or expectation changes that did not change pass or fail; added and removed runs.
    pub other: Vec<Change>,
    /// How many runs are in both result sets.
    pub compared: usize,
}

/// Compares `new` against `old` (the baseline).
pub fn diff(old: &Results, new: &Results, opts: &DiffOptions) -> Diff {
    let mut d = Diff {
        warnings: Vec::new(),
        regressions: Vec::new(),
        improvements: Vec::new(),
        other: Vec::new(),
        compared: 0,
    };
    if old.engine != new.engine {
        d.warnings.push(format!(
            "the engines differ (OLD {}, NEW {}): outcomes and latencies may differ for that reason alone",
            engine_name(&old.engine),
            engine_name(&new.engine)
        ));
    }
    if old.version != new.version {
        d.warnings.push(format!(
            "the schema versions differ (OLD {}, NEW {}): fields may not mean the same",
            old.version, new.version
        ));
    }
    let old_runs = unique_runs(old, "OLD", &mut d.warnings);
    let new_runs = unique_runs(new, "NEW", &mut d.warnings);

    let (mut i, mut j) = (0, 0);
    loop {
        let order = match (old_runs.get(i), new_runs.get(j)) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(a), Some(b)) => run_order(a, b),
        };
        match order {
            Ordering::Less => {
                let o = old_runs[i];
                d.other.push(change(o, ChangeKind::Removed(Verdict::of(o))));
                i += 1;
            }
            Ordering::Greater => {
                let n = new_runs[j];
                d.other.push(change(n, ChangeKind::Added(Verdict::of(n))));
                j += 1;
            }
            Ordering::Equal => {
                compare(old_runs[i], new_runs[j], opts, &mut d);
                d.compared += 1;
                i += 1;
                j += 1;
            }
        }
    }
    d
}

impl Diff {
    /// Whether anything regressed: the CI gate.
    pub fn regressed(&self) -> bool {
        !self.regressions.is_empty()
    }

    /// Plain text: warnings, then the regressions, improvements and other changes (each
    /// section only when it has entries, one line per change), then a summary line,
    /// `N regressions, M improvements, K other changes (R runs compared)`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for w in &self.warnings {
            let _ = writeln!(out, "warning: {}", one_line(w));
        }
        if !self.warnings.is_empty() {
            out.push('\n');
        }
        for (title, changes) in [
            ("Regressions", &self.regressions),
            ("Improvements", &self.improvements),
            ("Other changes", &self.other),
        ] {
            if changes.is_empty() {
                continue;
            }
            let _ = writeln!(out, "{title} ({}):", changes.len());
            for c in changes {
                let _ = writeln!(out, "  {}", describe(c));
            }
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "{}, {}, {} ({} compared)",
            count(self.regressions.len(), "regression", "regressions"),
            count(self.improvements.len(), "improvement", "improvements"),
            count(self.other.len(), "other change", "other changes"),
            count(self.compared, "run", "runs"),
        );
        out
    }
}

/// The runs in report order, each scenario × scheme × seed once: the first of several is kept,
/// with a warning naming the others.
fn unique_runs<'a>(results: &'a Results, which: &str, warnings: &mut Vec<String>) -> Vec<&'a Run> {
    let sorted = crate::aggregate::sorted_runs(results);
    let mut unique: Vec<&Run> = Vec::with_capacity(sorted.len());
    let mut repeats = 0;
    for run in sorted {
        match unique.last() {
            Some(last) if run_order(last, run) == Ordering::Equal => repeats += 1,
            _ => {
                if repeats > 0 {
                    warnings.push(repeated(which, unique[unique.len() - 1], repeats));
                    repeats = 0;
                }
                unique.push(run);
            }
        }
    }
    if repeats > 0 {
        warnings.push(repeated(which, unique[unique.len() - 1], repeats));
    }
    unique
}

fn repeated(which: &str, run: &Run, repeats: usize) -> String {
    format!(
        "{which} lists {} {} times; only the first is compared",
        key(run),
        repeats + 1
    )
}

fn compare(old: &Run, new: &Run, opts: &DiffOptions, d: &mut Diff) {
    let (before, after) = (Verdict::of(old), Verdict::of(new));
    if before != after {
        let pass = (before.pass, after.pass);
        let c = change(
            new,
            ChangeKind::Verdict {
                old: before,
                new: after,
                detail: new.detail.clone(),
            },
        );
        match pass {
            (true, false) => d.regressions.push(c),
            (false, true) => d.improvements.push(c),
            _ => d.other.push(c),
        }
    }

    let latency = match (old.latency, new.latency) {
        (Some(a), Some(b)) => Some((Measure::P99, a.p99, b.p99)),
        _ => old
            .rtt_median_ms
            .zip(new.rtt_median_ms)
            .map(|(a, b)| (Measure::Median, a, b)),
    };
    let handshake = old
        .handshake_ms
        .zip(new.handshake_ms)
        .map(|(a, b)| (Measure::Handshake, a, b));
    for (measure, a, b) in latency.into_iter().chain(handshake) {
        let c = || {
            change(
                new,
                ChangeKind::Latency {
                    measure,
                    old: a,
                    new: b,
                },
            )
        };
        match moved(a, b, opts) {
            Ordering::Greater => d.regressions.push(c()),
            Ordering::Less => d.improvements.push(c()),
            Ordering::Equal => {}
        }
    }
}

/// Whether a figure went up (`Greater`) or down (`Less`) by more than both thresholds: more
/// than `threshold_ms` milliseconds, and more than `threshold_pct` percent of the old figure.
/// `Equal` for a smaller move, and for figures that are not finite.
fn moved(old: f64, new: f64, opts: &DiffOptions) -> Ordering {
    if !old.is_finite() || !new.is_finite() {
        return Ordering::Equal;
    }
    let by = (new - old).abs();
    if by > opts.threshold_ms && by > old.abs() * opts.threshold_pct / 100.0 {
        new.total_cmp(&old)
    } else {
        Ordering::Equal
    }
}

fn change(run: &Run, kind: ChangeKind) -> Change {
    Change {
        scenario: run.scenario.clone(),
        scheme: run.scheme.clone(),
        seed: run.seed,
        kind,
    }
}

/// One change on one line: `scenarios/a.toml ws seed 1: …`.
fn describe(c: &Change) -> String {
    let what = match &c.kind {
        ChangeKind::Verdict { old, new, detail } => {
            let mut s = format!(
                "{} → {}: {} → {}",
                mark(old.pass),
                mark(new.pass),
                old.outcome,
                new.outcome
            );
            if old.expected == new.expected {
                let _ = write!(s, " (expected {})", new.expected);
            } else {
                let _ = write!(s, " (expected {} → {})", old.expected, new.expected);
            }
            if !detail.is_empty() {
                let _ = write!(s, "; detail: {detail}");
            }
            s
        }
        ChangeKind::Latency { measure, old, new } => {
            let by = new - old;
            let sign = if by < 0.0 { "-" } else { "+" };
            let mut s = format!(
                "{} {} ms → {} ms ({sign}{} ms",
                measure.label(),
                ms(*old),
                ms(*new),
                ms(by.abs())
            );
            if *old != 0.0 {
                let _ = write!(s, ", {sign}{:.0}%", (by / old).abs() * 100.0);
            }
            s.push(')');
            s
        }
        ChangeKind::Added(v) => format!("added: {}", verdict(v)),
        ChangeKind::Removed(v) => format!("removed: was {}", verdict(v)),
    };
    one_line(&format!(
        "{} {} seed {}: {what}",
        c.scenario, c.scheme, c.seed
    ))
}

fn verdict(v: &Verdict) -> String {
    if v.pass {
        format!("{} (pass)", v.outcome)
    } else {
        format!("{} (FAIL, expected {})", v.outcome, v.expected)
    }
}

fn mark(pass: bool) -> &'static str {
    if pass { "pass" } else { "FAIL" }
}

fn key(run: &Run) -> String {
    format!("{} {} seed {}", run.scenario, run.scheme, run.seed)
}

fn engine_name(engine: &str) -> &str {
    if engine.is_empty() { "unnamed" } else { engine }
}

/// Text from the results on one line: control characters (a detail's line break) escaped.
fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Latency;

    fn run(scenario: &str, scheme: &str, seed: u64, expected: &str, outcome: &str) -> Run {
        Run {
            scenario: scenario.into(),
            scheme: scheme.into(),
            seed,
            expected: expected.into(),
            outcome: outcome.into(),
            pass: expected == outcome,
            detail: format!("{outcome} detail"),
            ..Run::default()
        }
    }

    fn delivered(scenario: &str, scheme: &str, seed: u64) -> Run {
        run(scenario, scheme, seed, "delivered", "delivered")
    }

    fn results(runs: Vec<Run>) -> Results {
        let mut r = Results::new("sim");
        r.runs = runs;
        r
    }

    fn with_p99(mut r: Run, p99: f64) -> Run {
        r.latency = Some(Latency {
            p50: p99 / 2.0,
            p90: p99,
            p99,
            max: p99,
            count: 10,
        });
        r
    }

    fn default_diff(old: Vec<Run>, new: Vec<Run>) -> Diff {
        diff(&results(old), &results(new), &DiffOptions::default())
    }

    #[test]
    fn identical_results_have_no_changes() {
        let runs = vec![
            with_p99(delivered("a", "ws", 1), 10.0),
            run("b", "wss", 2, "dropped", "delivered"),
        ];
        let d = default_diff(runs.clone(), runs);
        assert!(!d.regressed());
        assert!(d.regressions.is_empty() && d.improvements.is_empty() && d.other.is_empty());
        assert!(d.warnings.is_empty());
        assert_eq!(d.compared, 2);
        assert_eq!(
            d.render(),
            "0 regressions, 0 improvements, 0 other changes (2 runs compared)\n"
        );
    }

    #[test]
    fn pass_to_fail_is_a_regression_naming_both_outcomes_and_the_new_detail() {
        let d = default_diff(
            vec![delivered("a", "ws", 1)],
            vec![run("a", "ws", 1, "delivered", "reset")],
        );
        assert!(d.regressed());
        assert_eq!(d.regressions.len(), 1);
        assert!(d.improvements.is_empty() && d.other.is_empty());
        let text = d.render();
        assert!(
            text.contains(
                "  a ws seed 1: pass → FAIL: delivered → reset (expected delivered); detail: reset detail\n"
            ),
            "{text}"
        );
        assert!(
            text.ends_with("1 regression, 0 improvements, 0 other changes (1 run compared)\n"),
            "{text}"
        );
    }

    #[test]
    fn fail_to_pass_is_an_improvement() {
        let d = default_diff(
            vec![run("a", "ws", 1, "delivered", "reset")],
            vec![delivered("a", "ws", 1)],
        );
        assert!(!d.regressed());
        assert_eq!(d.improvements.len(), 1);
        let ChangeKind::Verdict { old, new, .. } = &d.improvements[0].kind else {
            panic!("{:?}", d.improvements[0]);
        };
        assert_eq!((old.pass, new.pass), (false, true));
        assert!(
            d.render()
                .contains("Improvements (1):\n  a ws seed 1: FAIL → pass: reset → delivered")
        );
    }

    #[test]
    fn an_outcome_change_that_keeps_the_verdict_is_another_change() {
        // The expectation followed the outcome: still a pass.
        let d = default_diff(
            vec![
                delivered("a", "ws", 1),
                run("b", "ws", 1, "delivered", "reset"),
            ],
            vec![
                run("a", "ws", 1, "dropped", "dropped"),
                run("b", "ws", 1, "delivered", "dropped"),
            ],
        );
        assert!(!d.regressed());
        assert!(d.improvements.is_empty());
        assert_eq!(d.other.len(), 2);
        let text = d.render();
        assert!(
            text.contains(
                "a ws seed 1: pass → pass: delivered → dropped (expected delivered → dropped)"
            ),
            "{text}"
        );
        assert!(
            text.contains("b ws seed 1: FAIL → FAIL: reset → dropped (expected delivered)"),
            "{text}"
        );
    }

    #[test]
    fn latency_regresses_only_beyond_both_thresholds() {
        let case = |old: f64, new: f64| {
            default_diff(
                vec![with_p99(delivered("a", "ws", 1), old)],
                vec![with_p99(delivered("a", "ws", 1), new)],
            )
        };
        // +11 ms and +55 %: beyond both.
        let d = case(20.0, 31.0);
        assert!(d.regressed());
        assert_eq!(
            d.regressions[0].kind,
            ChangeKind::Latency {
                measure: Measure::P99,
                old: 20.0,
                new: 31.0
            }
        );
        assert!(
            d.render()
                .contains("a ws seed 1: latency p99 20 ms → 31 ms (+11 ms, +55%)")
        );
        // +4 ms is +200 %, but within 5 ms.
        assert!(!case(2.0, 6.0).regressed());
        // +50 ms is beyond 5 ms, but only +10 %.
        assert!(!case(500.0, 550.0).regressed());
        // Exactly at a threshold is not beyond it.
        assert!(!case(25.0, 30.0).regressed());
        assert!(!case(100.0, 120.0).regressed());
        // From zero, the percentage is unbounded: the milliseconds decide.
        assert!(case(0.0, 5.5).regressed());
        assert!(case(0.0, 5.5).render().contains("(+5.5 ms)"));
        // Better beyond both is an improvement.
        let d = case(31.0, 20.0);
        assert!(!d.regressed());
        assert_eq!(d.improvements.len(), 1);
        assert!(
            d.render()
                .contains("latency p99 31 ms → 20 ms (-11 ms, -35%)")
        );
        // The percentage is of the old figure, both ways: -6 ms is not more than 20 % of 30.
        assert!(case(30.0, 24.0).improvements.is_empty());
        assert_eq!(case(30.0, 23.0).improvements.len(), 1);
    }

    #[test]
    fn the_thresholds_are_options() {
        let old = vec![with_p99(delivered("a", "ws", 1), 20.0)];
        let new = vec![with_p99(delivered("a", "ws", 1), 31.0)];
        let strict = DiffOptions {
            threshold_pct: 0.0,
            threshold_ms: 0.0,
        };
        let lax = DiffOptions {
            threshold_pct: 100.0,
            threshold_ms: 0.0,
        };
        assert!(diff(&results(old.clone()), &results(new.clone()), &strict).regressed());
        assert!(!diff(&results(old), &results(new), &lax).regressed());
    }

    #[test]
    fn the_median_stands_in_for_p99_and_the_handshake_counts_too() {
        let mut old = delivered("a", "ws", 1);
        old.rtt_median_ms = Some(10.0);
        old.handshake_ms = Some(30.0);
        // The new run has percentiles, the old one not: the medians are compared.
        let mut new = with_p99(delivered("a", "ws", 1), 100.0);
        new.rtt_median_ms = Some(40.0);
        new.handshake_ms = Some(50.0);
        let d = default_diff(vec![old], vec![new]);
        let measures: Vec<Measure> = d
            .regressions
            .iter()
            .map(|c| match c.kind {
                ChangeKind::Latency { measure, .. } => measure,
                _ => panic!("{c:?}"),
            })
            .collect();
        assert_eq!(measures, [Measure::Median, Measure::Handshake]);
        let text = d.render();
        assert!(
            text.contains("latency median 10 ms → 40 ms (+30 ms, +300%)"),
            "{text}"
        );
        assert!(
            text.contains("handshake 30 ms → 50 ms (+20 ms, +67%)"),
            "{text}"
        );
    }

    #[test]
    fn a_figure_only_one_side_has_is_not_compared() {
        let mut new = delivered("a", "ws", 1);
        new.rtt_median_ms = Some(1000.0);
        new.handshake_ms = Some(1000.0);
        let d = default_diff(vec![delivered("a", "ws", 1)], vec![new]);
        assert_eq!(
            d.render(),
            "0 regressions, 0 improvements, 0 other changes (1 run compared)\n"
        );
    }

    #[test]
    fn added_and_removed_runs_are_listed_but_do_not_regress() {
        let d = default_diff(
            vec![delivered("a", "ws", 1), delivered("a", "ws", 2)],
            vec![
                delivered("a", "ws", 1),
                run("b", "ws", 1, "delivered", "reset"),
            ],
        );
        assert!(!d.regressed());
        assert_eq!(d.compared, 1);
        assert_eq!(
            d.render(),
            "Other changes (2):\n  \
             a ws seed 2: removed: was delivered (pass)\n  \
             b ws seed 1: added: reset (FAIL, expected delivered)\n\n\
             0 regressions, 0 improvements, 2 other changes (1 run compared)\n"
        );
    }

    #[test]
    fn changes_come_in_report_order_whatever_the_order_in_the_files() {
        let old = vec![
            delivered("b", "wss", 1),
            delivered("b", "ws", 10),
            delivered("b", "ws", 2),
            delivered("a", "wss", 1),
            delivered("a", "ws", 1),
        ];
        let new: Vec<Run> = old
            .iter()
            .map(|r| run(&r.scenario, &r.scheme, r.seed, "delivered", "dropped"))
            .collect();
        let keys = |d: &Diff| -> Vec<String> {
            d.regressions
                .iter()
                .map(|c| format!("{} {} {}", c.scenario, c.scheme, c.seed))
                .collect()
        };
        let d = default_diff(old.clone(), new.clone());
        assert_eq!(
            keys(&d),
            ["a ws 1", "a wss 1", "b ws 2", "b ws 10", "b wss 1"]
        );
        let mut old_reversed = old;
        old_reversed.reverse();
        let mut new_rotated = new;
        new_rotated.rotate_left(2);
        assert_eq!(default_diff(old_reversed, new_rotated), d);
    }

    #[test]
    fn a_run_changes_verdict_before_latency_before_handshake() {
        let mut old = with_p99(delivered("a", "ws", 1), 10.0);
        old.handshake_ms = Some(10.0);
        let mut new = with_p99(run("a", "ws", 1, "delivered", "degraded"), 100.0);
        new.handshake_ms = Some(100.0);
        let d = default_diff(vec![old], vec![new]);
        let text = d.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Regressions (3):");
        assert!(lines[1].contains("pass → FAIL"), "{text}");
        assert!(lines[2].contains("latency p99"), "{text}");
        assert!(lines[3].contains("handshake"), "{text}");
    }

    #[test]
    fn different_engines_and_versions_warn_but_still_compare() {
        let old = results(vec![delivered("a", "ws", 1)]);
        let mut new = results(vec![run("a", "ws", 1, "delivered", "reset")]);
        new.engine = "turmoil".into();
        new.version = crate::VERSION + 1;
        let d = diff(&old, &new, &DiffOptions::default());
        assert!(d.regressed());
        let text = d.render();
        assert!(
            text.starts_with(
                "warning: the engines differ (OLD sim, NEW turmoil): outcomes and latencies may differ for that reason alone\n\
                 warning: the schema versions differ (OLD 1, NEW 2): fields may not mean the same\n\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_run_listed_twice_warns_and_counts_once() {
        let d = default_diff(
            vec![
                delivered("a", "ws", 1),
                run("a", "ws", 1, "delivered", "reset"),
            ],
            vec![delivered("a", "ws", 1)],
        );
        assert_eq!(
            d.warnings,
            ["OLD lists a ws seed 1 2 times; only the first is compared"]
        );
        assert_eq!(d.compared, 1);
        assert!(!d.regressed());
    }

    #[test]
    fn details_stay_on_one_line() {
        let mut new = run("a", "ws", 1, "delivered", "error");
        new.detail = "topology: bad\nsecond line".into();
        let text = default_diff(vec![delivered("a", "ws", 1)], vec![new]).render();
        assert!(
            text.contains("detail: topology: bad\\nsecond line\n"),
            "{text}"
        );
    }
}
