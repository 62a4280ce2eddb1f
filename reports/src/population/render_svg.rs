//! The population report's charts, inline SVG: success per strategy with interval bars, the
//! time to the first message per strategy, and success against the ping interval. Each chart
//! sizes its left margin from its longest label ([`text_px`]), so no label is cut.

use std::fmt::Write;

use super::render::{headline, text_px};
use super::{Population, Populations, percentile};
use crate::text::{ms, xml};

const ROW: f64 = 22.0;
const PLOT_W: f64 = 520.0;
const PAD: f64 = 12.0;

/// Colours for lines, one per population, chosen to be told apart by most readers
/// (Okabe and Ito's palette).
const COLOURS: [&str; 7] = [
    "#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#000000",
];

/// Opens a chart `w` by `h` named `title`, its `heading` written across its top.
fn open(out: &mut String, (w, h): (f64, f64), title: &str, heading: &str) {
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w:.0}\" height=\"{h:.0}\" viewBox=\"0 0 {w:.0} {h:.0}\" role=\"img\" aria-label=\"{0}\"><title>{0}</title>",
        xml(title)
    );
    text(out, PAD, 18.0, "start", heading);
}

fn text(out: &mut String, x: f64, y: f64, anchor: &str, s: &str) {
    let _ = writeln!(
        out,
        "<text x=\"{x:.1}\" y=\"{y:.1}\" text-anchor=\"{anchor}\">{}</text>",
        xml(s)
    );
}

/// Success rate per cell, a bar each, its Wilson interval as a whisker.
pub(crate) fn success_chart(pop: &Population) -> String {
    let cells = headline(pop);
    let labels: Vec<String> = cells.iter().map(|c| c.label()).collect();
    let left = labels.iter().map(|l| text_px(l)).fold(0.0, f64::max) + 2.0 * PAD;
    let right = text_px("100.0% [100.0, 100.0]") + 2.0 * PAD;
    let top = 30.0;
    let h = top + ROW * labels.len() as f64 + 40.0;
    let w = left + PLOT_W + right;
    let mut out = String::new();
    open(
        &mut out,
        (w, h),
        &format!("success per strategy, {}", pop.name),
        &format!("Sessions whose every message arrived, {}", pop.name),
    );
    let x = |r: f64| left + r * PLOT_W;
    for (i, c) in cells.iter().enumerate() {
        let y = top + ROW * i as f64;
        let s = c.success();
        text(&mut out, left - PAD, y + 15.0, "end", &labels[i]);
        let _ = writeln!(
            out,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"14\" fill=\"#4c8bbf\"/>",
            x(0.0),
            y + 4.0,
            s.rate * PLOT_W
        );
        let _ = writeln!(
            out,
            "<path d=\"M{0:.1} {1:.1}V{2:.1}M{0:.1} {3:.1}H{4:.1}M{4:.1} {1:.1}V{2:.1}\" stroke=\"#111\" fill=\"none\"/>",
            x(s.low),
            y + 5.0,
            y + 17.0,
            y + 11.0,
            x(s.high)
        );
        text(&mut out, x(1.0) + PAD, y + 15.0, "start", &s.text());
    }
    axis(
        &mut out,
        left,
        top + ROW * cells.len() as f64,
        &[0.0, 0.25, 0.5, 0.75, 1.0],
        |v| (x(v), format!("{:.0}%", v * 100.0)),
    );
    out.push_str("</svg>\n");
    out
}

fn axis(out: &mut String, left: f64, y: f64, ticks: &[f64], at: impl Fn(f64) -> (f64, String)) {
    let _ = writeln!(
        out,
        "<path d=\"M{left:.1} {y:.1}H{:.1}\" stroke=\"#888\"/>",
        left + PLOT_W
    );
    for t in ticks {
        let (px, label) = at(*t);
        let _ = writeln!(out, "<path d=\"M{px:.1} {y:.1}v5\" stroke=\"#888\"/>");
        text(out, px, y + 18.0, "middle", &label);
    }
}

/// A log scale from `lo` to `hi` (both above 0) over the plot's width.
fn log_x(lo: f64, hi: f64, left: f64) -> impl Fn(f64) -> f64 {
    let (a, b) = (lo.ln(), hi.ln().max(lo.ln() + 1e-9));
    move |v: f64| left + (v.max(lo).ln() - a) / (b - a) * PLOT_W
}

/// Powers of ten and their halves between `lo` and `hi`, for a log axis.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mut t = Vec::new();
    let mut d = 10f64.powf(lo.log10().floor());
    while d <= hi * 1.0001 {
        for m in [1.0, 2.0, 5.0] {
            let v = d * m;
            if v >= lo * 0.9999 && v <= hi * 1.0001 {
                t.push(v);
            }
        }
        d *= 10.0;
    }
    t
}

/// The time to the first message per cell: a line from p50 to p99 on a log scale, p90
/// marked, each value written beside it.
pub(crate) fn first_message_chart(pop: &Population) -> String {
    let rows: Vec<(String, [u64; 3])> = headline(pop)
        .into_iter()
        .filter_map(|c| {
            let p = |q| percentile(&c.first_message_ms, q);
            Some((c.label(), [p(50.0)?, p(90.0)?, p(99.0)?]))
        })
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let lo = rows.iter().map(|r| r.1[0]).min().unwrap_or(1).max(1) as f64;
    let hi = (rows.iter().map(|r| r.1[2]).max().unwrap_or(1) as f64).max(lo * 10.0);
    let left = rows.iter().map(|r| text_px(&r.0)).fold(0.0, f64::max) + 2.0 * PAD;
    let right = text_px("99999.999 / 99999.999 / 99999.999 ms") + 2.0 * PAD;
    let top = 30.0;
    let h = top + ROW * rows.len() as f64 + 40.0;
    let mut out = String::new();
    open(
        &mut out,
        (left + PLOT_W + right, h),
        &format!("time to the first message, {}", pop.name),
        &format!(
            "Time to the first message (ms, log scale): p50 to p99, p90 marked, {}",
            pop.name
        ),
    );
    let x = log_x(lo, hi, left);
    for (i, (label, [p50, p90, p99])) in rows.iter().enumerate() {
        let y = top + ROW * i as f64 + 11.0;
        text(&mut out, left - PAD, y + 4.0, "end", label);
        let _ = writeln!(
            out,
            "<path d=\"M{:.1} {y:.1}H{:.1}\" stroke=\"#4c8bbf\" stroke-width=\"6\"/><circle cx=\"{:.1}\" cy=\"{y:.1}\" r=\"4\" fill=\"#111\"/><circle cx=\"{:.1}\" cy=\"{y:.1}\" r=\"3\" fill=\"#e69f00\"/>",
            x(*p50 as f64),
            x(*p99 as f64).max(x(*p50 as f64) + 2.0),
            x(*p50 as f64),
            x(*p90 as f64)
        );
        text(
            &mut out,
            left + PLOT_W + PAD,
            y + 4.0,
            "start",
            &format!(
                "{} / {} / {} ms",
                ms(*p50 as f64),
                ms(*p90 as f64),
                ms(*p99 as f64)
            ),
        );
    }
    axis(
        &mut out,
        left,
        top + ROW * rows.len() as f64,
        &log_ticks(lo, hi),
        |v| (x(v), ms(v)),
    );
    out.push_str("</svg>\n");
    out
}

/// Success against the ping interval, a chart per strategy swept, a line per population,
/// each population's marked timeouts as dashed verticals.
pub(crate) fn ping_charts(p: &Populations) -> String {
    let mut strategies: Vec<&str> = Vec::new();
    for c in p.populations.iter().flat_map(|pop| &pop.cells) {
        if c.ping_interval_ms.is_some() && !strategies.contains(&c.strategy.as_str()) {
            strategies.push(&c.strategy);
        }
    }
    let mut out = String::new();
    for s in strategies {
        out.push_str(&ping_chart(p, s));
    }
    out
}

fn ping_chart(p: &Populations, strategy: &str) -> String {
    let lines: Vec<(&Population, Vec<(u64, f64)>)> = p
        .populations
        .iter()
        .map(|pop| {
            let pts = pop
                .cells
                .iter()
                .filter(|c| c.strategy == strategy && c.reconnect != Some(true))
                .filter_map(|c| Some((c.ping_interval_ms?, c.success().rate)))
                .collect();
            (pop, pts)
        })
        .filter(|(_, pts): &(_, Vec<_>)| !pts.is_empty())
        .collect();
    let all: Vec<u64> = lines
        .iter()
        .flat_map(|(pop, pts)| {
            pts.iter()
                .map(|(ms, _)| *ms)
                .chain(pop.marks.iter().map(|m| m.ms))
        })
        .collect();
    let lo = all.iter().copied().min().unwrap_or(1).max(1) as f64;
    let hi = (all.iter().copied().max().unwrap_or(1) as f64).max(lo * 10.0);
    let legend_w = lines
        .iter()
        .map(|(pop, _)| text_px(&pop.name))
        .fold(0.0, f64::max)
        + 40.0;
    let left = text_px("100%") + 2.0 * PAD;
    let top = 40.0;
    let plot_h = 220.0;
    let marks: Vec<(String, u64)> = {
        let mut m: Vec<(String, u64)> = Vec::new();
        for (pop, _) in &lines {
            for mark in &pop.marks {
                if !m.iter().any(|(l, v)| *l == mark.label && *v == mark.ms) {
                    m.push((mark.label.clone(), mark.ms));
                }
            }
        }
        m.sort_by_key(|(l, v)| (*v, l.clone()));
        m
    };
    let marks_h = ROW * marks.len() as f64;
    let h = top + plot_h + 50.0 + marks_h;
    let w = left + PLOT_W + legend_w + 2.0 * PAD;
    let mut out = String::new();
    open(
        &mut out,
        (w, h),
        &format!("success of {strategy} against the ping interval"),
        &format!(
            "{strategy} without reconnection: success against the WebSocket ping interval (s, log scale)"
        ),
    );
    let x = log_x(lo, hi, left);
    let y = |r: f64| top + (1.0 - r) * plot_h;
    for t in [0.0, 0.5, 1.0] {
        text(
            &mut out,
            left - 6.0,
            y(t) + 4.0,
            "end",
            &format!("{:.0}%", t * 100.0),
        );
        let _ = writeln!(
            out,
            "<path d=\"M{left:.1} {:.1}H{:.1}\" stroke=\"#ddd\"/>",
            y(t),
            left + PLOT_W
        );
    }
    for (i, (label, at)) in marks.iter().enumerate() {
        let _ = writeln!(
            out,
            "<path d=\"M{0:.1} {1:.1}V{2:.1}\" stroke=\"#c00\" stroke-dasharray=\"4 3\"/>",
            x(*at as f64),
            y(1.0),
            y(0.0)
        );
        // Centred under its line where it fits, else moved inside the chart: never cut.
        let words = format!("{label} ({} s)", ms(*at as f64 / 1000.0));
        let half = text_px(&words) / 2.0;
        let centre = x(*at as f64).clamp(PAD + half, w - PAD - half);
        text(
            &mut out,
            centre,
            top + plot_h + 44.0 + ROW * i as f64,
            "middle",
            &words,
        );
    }
    for (i, (pop, pts)) in lines.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let d: Vec<String> = pts
            .iter()
            .enumerate()
            .map(|(k, (at, r))| {
                format!(
                    "{}{:.1} {:.1}",
                    if k == 0 { "M" } else { "L" },
                    x(*at as f64),
                    y(*r)
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "<path d=\"{}\" stroke=\"{colour}\" stroke-width=\"2\" fill=\"none\"/>",
            d.join("")
        );
        for (at, r) in pts {
            let _ = writeln!(
                out,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{colour}\"/>",
                x(*at as f64),
                y(*r)
            );
        }
        let ly = top + ROW * i as f64;
        let lx = left + PLOT_W + PAD;
        let _ = writeln!(
            out,
            "<path d=\"M{lx:.1} {ly:.1}h20\" stroke=\"{colour}\" stroke-width=\"2\"/>"
        );
        text(&mut out, lx + 26.0, ly + 4.0, "start", &pop.name);
    }
    axis(&mut out, left, y(0.0), &log_ticks(lo, hi), |v| {
        (x(v), format!("{} s", ms(v / 1000.0)))
    });
    out.push_str("</svg>\n");
    out
}
