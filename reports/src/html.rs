//! The HTML report: one self-contained page with inline style and SVG charts, and tables that
//! say the same for readers without the charts.

use std::fmt::Write;

use crate::aggregate::{self, Group};
use crate::baseline::{self, Baseline};
use crate::outcome::Class;
use crate::text::{ms, percent, xml};
use crate::{Results, Run, svg};

const STYLE: &str = "
body { font: 15px/1.45 system-ui, -apple-system, 'Segoe UI', sans-serif; color: #1a1a1a;
  background: #ffffff; max-width: 80rem; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.8rem; margin-bottom: 0.25rem; }
h2 { font-size: 1.3rem; margin-top: 2.5rem; border-bottom: 1px solid #dddddd; }
.summary { font-size: 1.1rem; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #dddddd; padding: 0.2rem 0.5rem; text-align: left;
  vertical-align: top; }
th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.works { background: #e5f5e0; }
td.impaired { background: #fff3c4; }
td.fails { background: #fee0d2; }
td.unexpected { outline: 2.5px solid #000000; outline-offset: -2.5px; }
td.unexpected .tag { color: #000000; font-weight: bold; }
td.none { color: #666666; }
.tag { font-size: 0.8em; color: #444444; }
code, td.detail { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  font-size: 0.85rem; }
figure { margin: 1rem 0; overflow-x: auto; width: max-content;
  max-width: min(calc(100vw - 2rem), calc(50vw + 38rem)); }
figcaption { margin: 0.25rem 0 0.5rem; font-weight: 600; }
svg.chart { display: block; }
details summary { cursor: pointer; }
";

/// Renders results as one HTML page, self-contained: an inline `<style>`, charts as inline
/// `<svg>`, no script, no link to anything outside the page.
///
/// Sections: a summary; the traversal matrix (a grid chart and a table), each cell coloured by
/// what happened and marked where that is not what the scenario expects; delivery rates of
/// each scheme per intermediary kind (bars and a table); latency percentiles per scenario ×
/// scheme against the direct path (marks on one axis over the direct path's band, and a
/// table), when any run recorded latencies; the cumulative distribution of per-message
/// latency for up to six scenario × scheme groups, those with the slowest tails, beside the
/// direct path's, when any run recorded samples; the failed runs; and every run, folded. Each
/// latency chart has a one-line caption saying what to read from it. Every piece of text from
/// the results is escaped.
pub fn html(results: &Results) -> String {
    let matrix = aggregate::matrix(results);
    let groups = aggregate::groups(results);
    let baselines = baseline::baselines(&groups);
    let (passed, failed) = results.tally();

    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n");
    out.push_str(
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n\
         <title>Gauntlet report</title>\n",
    );
    let _ = write!(out, "<style>{STYLE}</style>\n</head>\n<body>\n<main>\n");
    out.push_str("<h1>Gauntlet report</h1>\n");
    let engine = if results.engine.is_empty() {
        String::new()
    } else {
        format!(" on the <code>{}</code> engine", xml(&results.engine))
    };
    let _ = writeln!(
        out,
        "<p class=\"summary\">{} run{} of {} scenario{}{engine}: {passed} passed, {failed} failed.</p>",
        results.runs.len(),
        plural(results.runs.len()),
        matrix.rows.len(),
        plural(matrix.rows.len()),
    );
    if results.runs.is_empty() {
        out.push_str("<p>No runs.</p>\n");
    } else {
        matrix_section(&mut out, &matrix);
        kinds_section(&mut out, results, &matrix.schemes);
        latency_section(&mut out, &groups, &baselines);
        cdf_section(&mut out, &groups, &baselines);
        failures_section(&mut out, results);
        runs_section(&mut out, results);
    }
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn matrix_section(out: &mut String, matrix: &aggregate::Matrix) {
    out.push_str("<section id=\"matrix\">\n<h2>Traversal matrix</h2>\n");
    out.push_str(
        "<p>Each scenario with each scheme, across its seeds. A cell's colour says what \
         happened, whatever the scenario expects: green works (<code>delivered</code>, or \
         <code>fell-back</code> to another transport), amber works at a cost \
         (<code>degraded</code>, <code>reconnected</code>, <code>partial</code>), red fails. \
         A separate mark says whether that is what the scenario expects: \
         <span class=\"tag\">expected</span> beside a failure or cost the scenario expects, \
         a heavy border and <span class=\"tag\"><b>unexpected</b></span> where some seed got \
         another outcome than the scenario expects.</p>\n",
    );
    let _ = write!(out, "<figure>\n{}</figure>\n", svg::matrix(matrix));
    out.push_str("<table class=\"matrix\">\n<thead><tr><th>Scenario</th>");
    for s in &matrix.schemes {
        let _ = write!(out, "<th>{}</th>", xml(s));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in &matrix.rows {
        let _ = write!(out, "<tr><td><code>{}</code></td>", xml(&row.scenario));
        for cell in &row.cells {
            match cell {
                Some(g) => {
                    let class = g.class();
                    let _ = write!(
                        out,
                        "<td class=\"{}\">{} {}",
                        cell_class(class, g.all_passed()),
                        class.glyph(),
                        xml(&g.outcome_summary())
                    );
                    if let Some(tag) = g.expectation_tag() {
                        let _ = write!(out, " <span class=\"tag\">{}</span>", xml(&tag));
                    }
                    out.push_str("</td>");
                }
                None => out.push_str("<td class=\"none\">no run</td>"),
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

/// A table cell's classes for an outcome: its class's colour, and `unexpected` when the
/// scenario expects another.
fn cell_class(class: Class, as_expected: bool) -> String {
    if as_expected {
        class.css().to_string()
    } else {
        format!("{} unexpected", class.css())
    }
}

/// The class of a run's outcome cell.
fn run_class(r: &Run) -> String {
    cell_class(Class::of(&r.outcome), r.pass)
}

fn kinds_section(out: &mut String, results: &Results, schemes: &[String]) {
    let kinds = aggregate::kinds(results);
    let _ = write!(
        out,
        "<section id=\"kinds\">\n<h2>{} by intermediary kind</h2>\n",
        xml(&schemes.join(" versus "))
    );
    out.push_str(
        "<p>The share of runs whose outcome was <code>delivered</code>, per intermediary kind \
         (the model of the first hop) and scheme, whatever the scenario expected.</p>\n",
    );
    let _ = write!(
        out,
        "<figure>\n{}</figure>\n",
        svg::kind_bars(&kinds, schemes)
    );
    out.push_str("<table>\n<thead><tr><th>Kind</th>");
    for s in schemes {
        let _ = write!(out, "<th>{}</th>", xml(s));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for k in &kinds {
        let _ = write!(out, "<tr><td>{}</td>", xml(&k.kind));
        for rate in &k.rates {
            match rate.success() {
                Some(share) => {
                    let _ = write!(
                        out,
                        "<td class=\"num\">{}/{} delivered ({})</td>",
                        rate.delivered,
                        rate.runs,
                        percent(share)
                    );
                }
                None => out.push_str("<td class=\"none\">no runs</td>"),
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

fn latency_section(out: &mut String, groups: &[Group], baselines: &[Baseline]) {
    out.push_str("<section id=\"latency\">\n<h2>Latency</h2>\n");
    let with_latency: Vec<&Group> = groups.iter().filter(|g| g.latency.is_some()).collect();
    if with_latency.is_empty() {
        out.push_str("<p>No run recorded latency percentiles.</p>\n</section>\n");
        return;
    }
    out.push_str(
        "<p>Per-message latency in simulated milliseconds (round trips of echoed messages, \
         one-way latency of server pushes), merged across seeds; percentiles by nearest rank. \
         Handshake: the median over seeds of the time from connect to 101.</p>\n",
    );
    let caption = if baselines.is_empty() {
        "A p99 far right of its p50 is a slow tail; no run went the direct path (no \
         intermediary) to compare with."
    } else {
        "Marks right of the grey band (the direct path, no intermediary) are latency the path \
         adds; a p99 far right of its p50 is a slow tail."
    };
    let _ = write!(
        out,
        "<figure>\n<figcaption>{caption}</figcaption>\n{}</figure>\n",
        svg::latency(&with_latency, baselines)
    );
    out.push_str(
        "<table>\n<thead><tr><th>Scenario</th><th>Scheme</th><th>Messages</th><th>p50</th>\
         <th>p90</th><th>p99</th><th>max</th><th>p50 / p99 vs direct</th><th>Handshake</th>\
         </tr></thead>\n<tbody>\n",
    );
    for g in &with_latency {
        let Some(l) = g.latency else { continue };
        let versus = baseline::for_scheme(baselines, &g.scheme)
            .map(|b| b.versus(&l))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            xml(&g.scenario),
            xml(&g.scheme),
            l.count,
            ms(l.p50),
            ms(l.p90),
            ms(l.p99),
            ms(l.max),
            xml(&versus),
            g.handshake_ms.map(ms).unwrap_or_default(),
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

fn cdf_section(out: &mut String, groups: &[Group], baselines: &[Baseline]) {
    out.push_str("<section id=\"cdf\">\n<h2>Latency distribution</h2>\n");
    let series = svg::cdf_selection(groups);
    if series.is_empty() && baselines.iter().all(|b| b.samples_ms.is_empty()) {
        out.push_str("<p>No run recorded latency samples.</p>\n</section>\n");
        return;
    }
    let _ = writeln!(
        out,
        "<p>For each latency, the share of messages that arrived within it, samples merged \
         across seeds: the {} scenario and scheme group{} with the slowest tails (the highest \
         p99), and the direct path (dashed).</p>",
        series.len(),
        plural(series.len())
    );
    let _ = write!(
        out,
        "<figure>\n<figcaption>Curves right of the dashed direct path are slower than no \
         intermediary; each crosses the p50, p90 and p99 lines at its percentiles.</figcaption>\n\
         {}</figure>\n</section>\n",
        svg::cdf(&series, baselines)
    );
}

fn failures_section(out: &mut String, results: &Results) {
    out.push_str("<section id=\"failures\">\n<h2>Failures</h2>\n");
    let failures: Vec<_> = aggregate::sorted_runs(results)
        .into_iter()
        .filter(|r| !r.pass)
        .collect();
    if failures.is_empty() {
        out.push_str("<p>Every run got the outcome its scenario expects.</p>\n</section>\n");
        return;
    }
    out.push_str(
        "<table>\n<thead><tr><th>Scenario</th><th>Scheme</th><th>Seed</th><th>Expected</th>\
         <th>Got</th><th>Detail</th></tr></thead>\n<tbody>\n",
    );
    for r in failures {
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td class=\"num\">{}</td><td>{}</td>\
             <td class=\"{}\">{}</td><td class=\"detail\">{}</td></tr>",
            xml(&r.scenario),
            xml(&r.scheme),
            r.seed,
            xml(&r.expected),
            run_class(r),
            xml(&r.outcome),
            xml(&r.detail),
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

fn runs_section(out: &mut String, results: &Results) {
    let _ = write!(
        out,
        "<section id=\"runs\">\n<h2>All runs</h2>\n<details>\n<summary>{} run{}</summary>\n",
        results.runs.len(),
        plural(results.runs.len())
    );
    out.push_str(
        "<table>\n<thead><tr><th>Scenario</th><th>Scheme</th><th>Seed</th><th>Kind</th>\
         <th>Expected</th><th>Outcome</th><th>Handshake</th><th>Latency median</th>\
         <th>Failed at</th><th>Sent</th><th>Received</th><th>Simulated</th><th>Detail</th>\
         </tr></thead>\n<tbody>\n",
    );
    let opt = |v: Option<f64>| v.map(ms).unwrap_or_default();
    for r in aggregate::sorted_runs(results) {
        let median = r.rtt_median_ms.or(r.latency.map(|l| l.p50));
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td class=\"num\">{}</td><td>{}</td>\
             <td>{}</td><td class=\"{}\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"detail\">{}</td></tr>",
            xml(&r.scenario),
            xml(&r.scheme),
            r.seed,
            xml(&r.kind),
            xml(&r.expected),
            run_class(r),
            xml(&r.outcome),
            opt(r.handshake_ms),
            opt(median),
            opt(r.time_to_failure_ms),
            r.sent,
            r.received,
            ms(r.sim_ms as f64),
            xml(&r.detail),
        );
    }
    out.push_str("</tbody>\n</table>\n</details>\n</section>\n");
}
