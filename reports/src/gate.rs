//! `gauntlet gate`'s reports: JUnit for a CI dashboard and Markdown for a pull-request comment.
//!
//! A gate's results hold one run per behaviour and scheme, each with the behaviour's title;
//! a failed run keeps a transcript excerpt ([`Run::excerpt`]) and, behind a real product, the
//! product's own log lines ([`Run::product_log`]). [`Results::notes`] say what was gated and
//! what the run cannot catch (a quick run's short quiet period). Unlike the catalogue's reports
//! these carry wall times (`time=`), so they differ from run to run.

use std::fmt::Write;

use crate::markdown::{code, count, escape};
use crate::text::xml;
use crate::{Results, Run};

/// The outcome of a run the harness could not carry out.
const HARNESS_ERROR: &str = "harness-error";

/// A behaviour's name for people: its title without the suite's `Gate: ` prefix (or, without
/// a title, its file), and the scheme (`the upgrade passes … [ws]`).
fn name(run: &Run) -> String {
    format!("{} [{}]", title(run), run.scheme)
}

/// A behaviour's title without the suite's `Gate: ` prefix, or its file without a title.
fn title(run: &Run) -> &str {
    if run.title.is_empty() {
        run.scenario.as_str()
    } else {
        run.title.strip_prefix("Gate: ").unwrap_or(&run.title)
    }
}

/// The one-line reason a run failed: its outcome and detail.
fn reason(run: &Run) -> String {
    format!("{}: {}", run.outcome, run.detail)
}

/// Seconds with three decimals, from milliseconds.
fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// Failures one fault explains: failed runs whose outcome is the same and whose detail is the
/// same but for its numbers (times, ports, counts), once a crowd's `session N of M: ` and what
/// follows its first `; ` (the other sessions' tallies) are set aside. A proxy that strips the
/// upgrade fails every behaviour the same way: it is one fault, reported once with the
/// behaviours it explains.
#[derive(Debug, Clone)]
pub struct Fault<'a> {
    /// The failures' outcome.
    pub outcome: &'a str,
    /// The detail with its numbers as `N`: what the failures share.
    pub pattern: String,
    /// Every failed run it explains, in the results' order.
    pub runs: Vec<&'a Run>,
}

impl Fault<'_> {
    /// `F1`, `F2`, …: the fault's name among `faults`.
    pub fn id(index: usize) -> String {
        format!("F{}", index + 1)
    }
}

/// What a detail says once its numbers and a crowd's framing are set aside, up to its time
/// mark (`… at 93.8 ms`): what follows (an answer's body, as far as it had arrived) varies
/// with how the bytes were cut on a real network.
fn pattern(detail: &str) -> String {
    let mut d = detail;
    if let Some(rest) = d.strip_prefix("session ") {
        if let Some((_, after)) = rest.split_once(": ") {
            d = after;
        }
    }
    let d = d.split("; ").next().unwrap_or(d);
    let mut out = String::with_capacity(d.len());
    let mut in_number = false;
    for c in d.chars() {
        if c.is_ascii_digit() || (in_number && c == '.') {
            if !in_number {
                out.push('N');
            }
            in_number = true;
        } else {
            in_number = false;
            out.push(c);
        }
        if out.ends_with(" at N ms") {
            break;
        }
    }
    out
}

/// The faults behind a gate's failures, each with the runs it explains, in the order their
/// first failure comes; harness errors are not faults of the proxy and are left out.
pub fn faults(results: &Results) -> Vec<Fault<'_>> {
    let mut out: Vec<Fault<'_>> = Vec::new();
    for run in results
        .runs
        .iter()
        .filter(|r| !r.pass && r.outcome != HARNESS_ERROR)
    {
        let p = pattern(&run.detail);
        match out
            .iter_mut()
            .find(|f| f.outcome == run.outcome && f.pattern == p)
        {
            Some(f) => f.runs.push(run),
            None => out.push(Fault {
                outcome: &run.outcome,
                pattern: p,
                runs: vec![run],
            }),
        }
    }
    out
}

/// For each failed run, the fault that explains it and how many runs that fault explains,
/// when it explains more than this one.
fn fault_of<'a>(faults: &[Fault<'a>], run: &Run) -> Option<(String, usize)> {
    faults.iter().enumerate().find_map(|(i, f)| {
        (f.runs.len() > 1 && f.runs.iter().any(|r| std::ptr::eq(*r, run)))
            .then(|| (Fault::id(i), f.runs.len()))
    })
}

/// Renders a gate's results as JUnit XML.
///
/// One `<testsuite>` named `gauntlet gate`, its notes as `<property name="note">`, and one
/// `<testcase>` per behaviour and scheme: `classname` the behaviour's file, `name` its title
/// and scheme, `time` the run's wall time in seconds. A failed run has a `<failure>` whose
/// message is the one-line reason (`handshake-rejected: HTTP 426 …`, followed by the fault
/// that explains it when that fault explains other failures too), whose type is the
/// outcome, and whose text says what was expected, then the product's log lines if any; its
/// transcript excerpt is the testcase's `<system-out>`. A run the harness could not carry
/// out is an `<error>`.
pub fn gate_junit(results: &Results) -> String {
    let runs = &results.runs;
    let faults = faults(results);
    let errors = runs.iter().filter(|r| r.outcome == HARNESS_ERROR).count();
    let failures = runs.iter().filter(|r| !r.pass).count() - errors;
    let time = seconds(runs.iter().map(|r| r.wall_ms).sum());
    let counts = format!(
        "tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{time}\"",
        runs.len()
    );
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(out, "<testsuites name=\"gauntlet gate\" {counts}>");
    let _ = writeln!(
        out,
        "  <testsuite name=\"gauntlet gate\" {counts} skipped=\"0\">"
    );
    if !results.notes.is_empty() {
        out.push_str("    <properties>\n");
        for note in &results.notes {
            let _ = writeln!(
                out,
                "      <property name=\"note\" value=\"{}\"/>",
                xml(note)
            );
        }
        out.push_str("    </properties>\n");
    }
    for run in runs {
        let _ = write!(
            out,
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{}\"",
            xml(&run.scenario),
            xml(&name(run)),
            seconds(run.wall_ms)
        );
        if run.pass {
            let _ = writeln!(
                out,
                ">\n      <system-out>{}</system-out>\n    </testcase>",
                xml(&reason(run))
            );
            continue;
        }
        let mut text = format!("expected {}, got {}\n", run.expected, run.outcome);
        if !run.product_log.is_empty() {
            text.push_str("the product's log lines:\n");
            for line in &run.product_log {
                let _ = writeln!(text, "{line}");
            }
        }
        let element = if run.outcome == HARNESS_ERROR {
            "error"
        } else {
            "failure"
        };
        let mut message = reason(run);
        if let Some((id, n)) = fault_of(&faults, run) {
            let _ = write!(message, " (fault {id}, which explains {n} failures)");
        }
        let _ = writeln!(
            out,
            ">\n      <{element} message=\"{}\" type=\"{}\">{}</{element}>",
            xml(&message),
            xml(&run.outcome),
            xml(&text)
        );
        let excerpt = run.excerpt.join("\n");
        let _ = writeln!(
            out,
            "      <system-out>{}</system-out>\n    </testcase>",
            xml(&excerpt)
        );
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// Renders a gate's results as Markdown for a pull-request comment: a heading with the tally,
/// the notes, a table of every behaviour and scheme (✅ or ❌, outcome, time), then each
/// fault that explains several failures once, with the behaviours it explains, and each
/// other failure with its reason; each with, folded, its transcript excerpt and the
/// product's log lines.
pub fn gate_markdown(results: &Results) -> String {
    let runs = &results.runs;
    let (passed, failed) = results.tally();
    let mut out = format!("## gauntlet gate: {passed} passed, {failed} failed\n\n");
    for note in &results.notes {
        let _ = writeln!(out, "- {}", escape(note));
    }
    if !results.notes.is_empty() {
        out.push('\n');
    }
    let faults = faults(results);
    out.push_str("| | behaviour | scheme | outcome | time |\n|---|---|---|---|---|\n");
    for run in runs {
        let fault = fault_of(&faults, run).map_or(String::new(), |(id, _)| format!(" ({id})"));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {}{fault} | {} s |",
            if run.pass { "✅" } else { "❌" },
            escape(title(run)),
            escape(&run.scheme),
            code(&run.outcome),
            seconds(run.wall_ms)
        );
    }
    let shared: Vec<(usize, &Fault<'_>)> = faults
        .iter()
        .enumerate()
        .filter(|(_, f)| f.runs.len() > 1)
        .collect();
    if !shared.is_empty() {
        out.push_str("\n### Faults\n\nFailures that are the same but for their numbers, each reported once with the behaviours it explains:\n");
    }
    for (i, f) in &shared {
        let first = f.runs[0];
        let mut behaviours: Vec<String> = Vec::new();
        for r in &f.runs {
            let t = escape(title(r));
            if !behaviours.contains(&t) {
                behaviours.push(t);
            }
        }
        let _ = write!(
            out,
            "\n#### ❌ {}: {}, {} failures ({}), expected {}\n\n{}\n\nExplains: {}.\n",
            Fault::id(*i),
            code(f.outcome),
            f.runs.len(),
            count(behaviours.len(), "behaviour", "behaviours"),
            code(&first.expected),
            escape(&first.detail),
            behaviours.join("; ")
        );
        fold(&mut out, "transcript excerpt (the first)", &first.excerpt);
        fold(
            &mut out,
            "the product's log lines (the first)",
            &first.product_log,
        );
    }
    let explained = |run: &Run| fault_of(&faults, run).is_some();
    for run in runs.iter().filter(|r| !r.pass && !explained(r)) {
        let _ = write!(
            out,
            "\n### ❌ {}\n\n{}, expected {}: {}\n",
            escape(&name(run)),
            code(&run.outcome),
            code(&run.expected),
            escape(&run.detail)
        );
        fold(&mut out, "transcript excerpt", &run.excerpt);
        fold(&mut out, "the product's log lines", &run.product_log);
    }
    out
}

/// `lines` folded under `summary` in a fenced block, if there are any.
fn fold(out: &mut String, summary: &str, lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    let fence = "`".repeat(3.max(longest_backtick_run(lines) + 1));
    let _ = write!(
        out,
        "\n<details><summary>{summary} ({})</summary>\n\n{fence}text\n",
        count(lines.len(), "line", "lines")
    );
    for line in lines {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out, "{fence}\n\n</details>");
}

/// The longest run of backticks in `lines`, so that a fence can be longer.
fn longest_backtick_run(lines: &[String]) -> usize {
    lines
        .iter()
        .flat_map(|l| l.split(|c| c != '`'))
        .map(str::len)
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fence_is_longer_than_any_backtick_run_inside_it() {
        let lines = vec!["a ```` b".to_string(), "`x`".to_string()];
        assert_eq!(longest_backtick_run(&lines), 4);
        let mut out = String::new();
        fold(&mut out, "s", &lines);
        assert!(out.contains("`````text\n"), "{out}");
    }
}
