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
        paths_markdown(&mut out, pop);
        let _ = writeln!(out, "Source: {}\n", pop.source.replace('\n', " "));
    }
    out
}

/// One population's cells as a Markdown table: success with its interval, the outcomes,
/// time to the first message, messages lost and reconnections.
pub fn population_table(pop: &Population) -> String {
    let mut out = String::from(
        "| strategy | success [95%] | outcomes | first message p50 / p90 / p99 | lost per 1,000 | reconnects per hour |\n|---|---|---|---|---|---|\n",
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

/// The generated recommendation: the cell with the highest lower bound, with its evidence,
/// the cells whose intervals overlap it, and plain `ws` beside it.
pub(crate) fn recommendation(pop: &Population) -> String {
    let Some(best) = pop.cells.iter().max_by(|a, b| {
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
    let ws: Vec<&Cell> = pop
        .cells
        .iter()
        .filter(|c| c.strategy == "ws" && c.label() != best.label())
        .collect();
    for c in ws {
        let _ = write!(s, "; {} alone {}", c.label(), c.success().text());
    }
    let ties: Vec<String> = pop
        .cells
        .iter()
        .filter(|c| c.label() != best.label() && c.success().high >= b.low)
        .map(|c| c.label())
        .collect();
    if ties.is_empty() {
        s.push_str(". No other strategy's interval reaches it.");
    } else {
        let _ = write!(
            s,
            ". Within its interval, so not told apart by these sessions: {}.",
            ties.join(", ")
        );
    }
    s
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
    let mut out = String::from(
        "<table><tr><th>strategy</th><th>success [95%]</th><th>outcomes</th><th>first message p50 / p90 / p99</th><th>lost per 1,000</th><th>reconnects per hour</th></tr>\n",
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
