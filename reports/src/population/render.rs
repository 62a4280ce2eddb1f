//! A population report in Markdown and in HTML (self-contained: inline style and SVG, no
//! script): per population its paths, a table of its cells, a success chart with interval
//! bars, the time to the first message, success against the ping interval where swept, and
//! a recommendation that states its evidence. Every label is drawn whole: charts size their
//! margins from their longest label in a monospace font of known advance.

use std::fmt::Write;

use super::{Cell, Population, Populations, percentile};
use crate::text::{ms, xml};

/// The advance of one character of the charts' 12 px monospace font, rounded up.
const CHAR_PX: f64 = 7.5;

/// The Markdown report.
pub fn population_markdown(p: &Populations, invoked_as: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Populations\n");
    let _ = writeln!(
        out,
        "Written by `{invoked_as}`: {} sampled sessions per population, each run with every \
         strategy on the simulated engine. A session succeeds when every message it meant to \
         exchange arrived (`delivered`, `degraded`, `fell-back` or `reconnected`). Intervals \
         are Wilson 95%.\n",
        p.sessions
    );
    if let Some(s) = p.shard {
        let _ = writeln!(
            out,
            "**Shard {}/{}** only: merge every shard with `gauntlet merge`.\n",
            s.index, s.count
        );
    }
    for pop in &p.populations {
        let _ = writeln!(out, "## `{}`: {}\n", pop.name, pop.title);
        let _ = writeln!(out, "{}\n", recommendation(pop));
        let _ = writeln!(out, "{}", population_table(pop));
        if !pop.calibration.is_empty() {
            let _ = writeln!(out, "Calibrated on:\n\n{}", calibration_table(pop));
        }
        paths_markdown(&mut out, pop);
        let _ = writeln!(out, "Source: {}\n", pop.source.replace('\n', " "));
    }
    out
}

/// The columns of a population's table, in Markdown and HTML alike.
const COLUMNS: [&str; 6] = [
    "strategy",
    "success [95%]",
    "outcomes",
    "first message p50 / p90 / p99",
    "lost per 1,000",
    "reconnects per hour",
];

/// One population's cells as a Markdown table: success with its interval, the outcomes,
/// time to the first message, messages lost and reconnections.
pub fn population_table(pop: &Population) -> String {
    let mut out = format!(
        "| {} |\n|{}\n",
        COLUMNS.join(" | "),
        "---|".repeat(COLUMNS.len())
    );
    for c in &pop.cells {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            c.label(),
            c.success().text(),
            outcomes(c),
            first_message(c),
            c.lost_per_1000()
                .map_or("n/a".into(), |v| format!("{v:.1}")),
            c.reconnects_per_hour()
                .map_or("n/a".into(), |v| format!("{v:.2}")),
        );
    }
    out
}

fn paths_markdown(out: &mut String, pop: &Population) {
    let _ = writeln!(
        out,
        "\n| path | share | success per strategy | source |\n|---|---|---|---|"
    );
    for (i, path) in pop.paths.iter().enumerate() {
        let per: Vec<String> = pop
            .cells
            .iter()
            .filter_map(|c| {
                let t = c.paths.get(i)?;
                (t.sessions > 0).then(|| {
                    format!(
                        "{} {:.0}%",
                        c.label(),
                        t.succeeded as f64 * 100.0 / t.sessions as f64
                    )
                })
            })
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            path.name,
            share(path.share),
            per.join(", "),
            path.source.replace('\n', " ").replace('|', "\\|")
        );
    }
    out.push('\n');
}

/// A path's share as a percentage, with as many decimals as a small one needs to be seen
/// (`76.2%`, `0.0147%`).
fn share(s: f64) -> String {
    if s >= 0.001 {
        format!("{:.1}%", s * 100.0)
    } else {
        format!("{:.4}%", s * 100.0)
    }
}

fn outcomes(c: &Cell) -> String {
    let mut v: Vec<(&String, &u64)> = c.outcomes.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    v.iter()
        .map(|(k, n)| format!("{k} {:.1}%", **n as f64 * 100.0 / c.sessions.max(1) as f64))
        .collect::<Vec<_>>()
        .join(", ")
}

fn first_message(c: &Cell) -> String {
    let p = |q| percentile(&c.first_message_ms, q).map_or("n/a".into(), |v| ms(v as f64));
    format!("{} / {} / {} ms", p(50.0), p(90.0), p(99.0))
}

/// The cells a population's charts and recommendation show: every strategy unswept or at
/// [`TABLE_PING_MS`], with and without reconnection where that is swept (the ping sweep has
/// a chart of its own).
pub(crate) fn headline(pop: &Population) -> Vec<&Cell> {
    pop.cells
        .iter()
        .filter(|c| c.ping_interval_ms.is_none_or(|ms| ms == TABLE_PING_MS))
        .collect()
}

/// The generated recommendation: the headline cell with the highest lower bound, with its
/// evidence, plain `ws` beside it, and the cells whose intervals reach it.
pub(crate) fn recommendation(pop: &Population) -> String {
    let cells = headline(pop);
    let Some(best) = cells.iter().copied().max_by(|a, b| {
        a.success()
            .low
            .total_cmp(&b.success().low)
            .then(b.label().cmp(&a.label()))
    }) else {
        return "No cells were run.".into();
    };
    let b = best.success();
    let mut s = format!(
        "**{}** reaches {} of `{}`",
        best.label(),
        b.text(),
        pop.name
    );
    if let Some(ws) = table_cell(pop, "ws").filter(|c| c.label() != best.label()) {
        let _ = write!(s, "; {} alone {}", ws.label(), ws.success().text());
    }
    let ties: Vec<String> = cells
        .iter()
        .filter(|c| c.label() != best.label() && c.success().high >= b.low)
        .map(|c| c.label())
        .collect();
    match ties.len() {
        0 => s.push_str(". No other strategy's interval reaches it."),
        1..=4 => {
            let _ = write!(
                s,
                ". Within its interval, so not told apart by these sessions: {}.",
                ties.join(", ")
            );
        }
        n => {
            let _ = write!(
                s,
                ". {n} other cells reach its interval, so these sessions do not tell them apart: {}, and {} more.",
                ties[..3].join(", "),
                n - 3
            );
        }
    }
    s
}

/// The ping interval of the cells the traversal page's table shows where a population sweeps
/// it: 30 s, a common WebSocket keepalive below every idle limit of the shipped paths but
/// the shortest ones.
pub const TABLE_PING_MS: u64 = 30_000;

/// The cell the traversal page shows for `strategy` of `pop`: unswept, or pinging every
/// [`TABLE_PING_MS`], without reconnection where that is swept.
fn table_cell<'a>(pop: &'a Population, strategy: &str) -> Option<&'a Cell> {
    pop.cells.iter().find(|c| {
        c.strategy == strategy
            && c.ping_interval_ms.is_none_or(|ms| ms == TABLE_PING_MS)
            && c.reconnect != Some(true)
    })
}

/// The traversal page's section: every population's success per strategy, and how each
/// population reproduces what it was calibrated on.
pub fn traversal_section(p: &Populations) -> String {
    let mut out = String::from("\n## Populations\n\n");
    let _ = writeln!(
        out,
        "The share of a population's sessions whose every message arrived, per strategy, \
         with its Wilson 95% interval: {} sessions sampled from each population of \
         `scenarios/populations/` (a weighted mix of network paths, each weight and value \
         cited or marked as an assumption), each run with every strategy on the simulated \
         engine. Where a population sweeps the ping interval, the WebSocket strategies ping \
         every {} s here, without reconnecting; [POPULATIONS.md](POPULATIONS.md) has every \
         cell, and `populations.html` the charts.\n",
        p.sessions,
        TABLE_PING_MS / 1000
    );
    let mut strategies: Vec<&str> = Vec::new();
    for c in p.populations.iter().flat_map(|pop| &pop.cells) {
        if !strategies.contains(&c.strategy.as_str()) {
            strategies.push(&c.strategy);
        }
    }
    out.push_str("| population |");
    for s in &strategies {
        let _ = write!(out, " {s} |");
    }
    out.push_str("\n| --- |");
    for _ in &strategies {
        out.push_str(" --- |");
    }
    out.push('\n');
    for pop in &p.populations {
        let _ = write!(out, "| `{}` |", pop.name);
        for s in &strategies {
            match table_cell(pop, s) {
                Some(c) => {
                    let _ = write!(out, " {} |", c.success().text());
                }
                None => out.push_str(" — |"),
            }
        }
        out.push('\n');
    }
    for pop in p.populations.iter().filter(|p| !p.calibration.is_empty()) {
        let _ = writeln!(
            out,
            "\n`{}` reproduces the field measurements it was calibrated on; every other \
             strategy's rate above is a prediction:\n",
            pop.name
        );
        out.push_str(&calibration_table(pop));
    }
    out
}

/// What `pop` was calibrated on, the simulated rate beside each, and whether the measured
/// rate lies within the simulated rate's interval.
pub fn calibration_table(pop: &Population) -> String {
    let mut out = String::from(
        "| measured | strategy | field rate | simulated [95%] | within |\n| --- | --- | --- | --- | --- |\n",
    );
    for c in &pop.calibration {
        let cell = table_cell(pop, &c.strategy);
        let (sim, within) = match cell {
            Some(cell) => {
                let i = cell.success();
                (i.text(), if i.contains(c.rate) { "yes" } else { "NO" })
            }
            None => ("not run".to_string(), "—"),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {:.1}% | {sim} | {within} |",
            c.what,
            c.strategy,
            c.rate * 100.0
        );
    }
    out
}

/// The HTML report: one self-contained page.
pub fn population_html(p: &Populations, invoked_as: &str) -> String {
    let mut out = String::from(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Gauntlet populations</title>\n<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;font-size:14px}svg{display:block;margin:1em 0;max-width:100%;height:auto}svg text{font-family:monospace;font-size:12px}.note{color:#555}</style></head><body>\n",
    );
    let _ = writeln!(
        out,
        "<h1>Populations</h1>\n<p class=\"note\">Written by <code>{}</code>: {} sampled sessions per population, each run with every strategy on the simulated engine. A session succeeds when every message it meant to exchange arrived. Bars are success rates; whiskers their Wilson 95% intervals.</p>",
        xml(invoked_as),
        p.sessions
    );
    for pop in &p.populations {
        let _ = writeln!(
            out,
            "<h2 id=\"{0}\"><code>{0}</code>: {1}</h2>",
            xml(&pop.name),
            xml(&pop.title)
        );
        let rec = recommendation(pop);
        let _ = writeln!(out, "<p>{}</p>", bold(&xml(&rec)));
        out.push_str(&super::render_svg::success_chart(pop));
        out.push_str(&super::render_svg::first_message_chart(pop));
        out.push_str(&table_html(pop));
        if !pop.calibration.is_empty() {
            out.push_str("<p>Calibrated on:</p>\n<table><tr><th>measured</th><th>strategy</th><th>field rate</th><th>simulated [95%]</th><th>within</th></tr>\n");
            for line in calibration_table(pop).lines().skip(2) {
                let cells: Vec<String> = line
                    .trim_matches('|')
                    .split(" | ")
                    .map(|c| format!("<td>{}</td>", xml(c.trim())))
                    .collect();
                let _ = writeln!(out, "<tr>{}</tr>", cells.concat());
            }
            out.push_str("</table>\n");
        }
        let _ = writeln!(out, "<p class=\"note\">{}</p>", xml(&pop.source));
    }
    out.push_str(&super::render_svg::ping_charts(p));
    out.push_str("</body></html>\n");
    out
}

/// `**x**` as `<strong>x</strong>`.
fn bold(s: &str) -> String {
    let mut out = String::new();
    for (i, part) in s.split("**").enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<strong>{part}</strong>");
        } else {
            out.push_str(part);
        }
    }
    out
}

fn table_html(pop: &Population) -> String {
    let mut out = format!(
        "<table><tr>{}</tr>\n",
        COLUMNS.map(|c| format!("<th>{c}</th>")).concat()
    );
    for c in &pop.cells {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            xml(&c.label()),
            c.success().text(),
            xml(&outcomes(c)),
            first_message(c),
            c.lost_per_1000()
                .map_or("n/a".into(), |v| format!("{v:.1}")),
            c.reconnects_per_hour()
                .map_or("n/a".into(), |v| format!("{v:.2}")),
        );
    }
    out.push_str("</table>\n<table><tr><th>path</th><th>share</th><th>source</th></tr>\n");
    for path in &pop.paths {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            xml(&path.name),
            share(path.share),
            xml(&path.source)
        );
    }
    out.push_str("</table>\n");
    out
}

/// The width in pixels a label takes in the charts' font.
pub(crate) fn text_px(s: &str) -> f64 {
    s.chars().count() as f64 * CHAR_PX
}
