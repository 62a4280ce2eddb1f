//! The JUnit XML report: a testcase per run, for CI dashboards.

use std::fmt::Write;

use crate::text::xml;
use crate::{Results, Run, aggregate};

/// The outcome the harness records when it could not run a scenario at all; reported as a
/// JUnit `<error>` rather than a `<failure>`.
const HARNESS_ERROR: &str = "harness-error";

/// Renders results as JUnit XML.
///
/// `<testsuites>` holds one `<testsuite>` per scenario file, each with one `<testcase>` per run:
/// `classname` is the scenario path, `name` the scheme and seed (`wss seed 2`). A run that
/// passed carries its detail as `<system-out>`; one that failed has a `<failure>` whose message
/// is `expected X, got Y` (preceded by the run's title and `: ` when it has one), whose type is
/// the outcome, and whose text is the detail. A run the
/// harness could not carry out (outcome `harness-error`) is an `<error>` instead. The
/// `tests`, `failures` and `errors` counts are on every suite and on `<testsuites>`.
///
/// There are no `time` attributes: wall time differs between runs, and this output is
/// deterministic.
pub fn junit(results: &Results) -> String {
    let runs = aggregate::sorted_runs(results);
    let mut suites: Vec<(&str, Vec<&Run>)> = Vec::new();
    for run in runs.iter().copied() {
        match suites.last_mut() {
            Some((scenario, list)) if *scenario == run.scenario => list.push(run),
            _ => suites.push((run.scenario.as_str(), vec![run])),
        }
    }

    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let name = if results.engine.is_empty() {
        "gauntlet".to_string()
    } else {
        format!("gauntlet ({} engine)", results.engine)
    };
    let (failures, errors) = tally(&runs);
    let _ = writeln!(
        out,
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\">",
        xml(&name),
        runs.len(),
    );
    for (scenario, runs) in &suites {
        let (failures, errors) = tally(runs);
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"0\">",
            xml(scenario),
            runs.len(),
        );
        for run in runs {
            testcase(&mut out, run);
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// Failures and errors among runs.
fn tally(runs: &[&Run]) -> (usize, usize) {
    let errors = runs.iter().filter(|r| r.outcome == HARNESS_ERROR).count();
    let failures = runs.iter().filter(|r| !r.pass).count() - errors;
    (failures, errors)
}

fn testcase(out: &mut String, run: &Run) {
    let _ = write!(
        out,
        "    <testcase classname=\"{}\" name=\"{}\"",
        xml(&run.scenario),
        xml(&format!("{} seed {}", run.scheme, run.seed)),
    );
    if run.outcome == HARNESS_ERROR {
        let _ = writeln!(
            out,
            ">\n      <error message=\"the harness could not run this scenario\" type=\"{HARNESS_ERROR}\">{}</error>\n    </testcase>",
            xml(&run.detail),
        );
    } else if !run.pass {
        let mut message = format!("expected {}, got {}", run.expected, run.outcome);
        if !run.title.is_empty() {
            message = format!("{}: {message}", run.title);
        }
        let _ = writeln!(
            out,
            ">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>",
            xml(&message),
            xml(&run.outcome),
            xml(&run.detail),
        );
    } else if !run.detail.is_empty() {
        let _ = writeln!(
            out,
            ">\n      <system-out>{}: {}</system-out>\n    </testcase>",
            xml(&run.outcome),
            xml(&run.detail),
        );
    } else {
        out.push_str("/>\n");
    }
}
