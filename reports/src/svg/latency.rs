//! Latency percentiles per scenario × scheme against the direct path: a row per group with
//! its p50, p90 and p99 on one axis, over a band from the direct path's p50 to its p99 with
//! the same scheme, and beside it how much later than the direct path the group's p50 and p99
//! are.

use std::fmt::Write;

use super::{Anchor, BOLD, Chart, INK, MUTED, PALETTE, SMALL, Scale, TEXT, axis, c};
use crate::Latency;
use crate::aggregate::Group;
use crate::baseline::{self, Baseline};
use crate::text::{ms, short_scenario};

const PLOT_W: f64 = 400.0;
const ROW_H: f64 = 20.0;
const BAND: &str = "#d9d9d9";
/// The band's least width, so that a direct path whose p50 is its p99 still shows.
const BAND_MIN: f64 = 6.0;

/// The axis's title, under the plot and over it.
pub(crate) fn axis_title(scale: &Scale) -> String {
    format!("ms per message (simulated), {} scale", scale.name())
}

/// p50, p90 and p99 of each group that has latency data, a row each, against the direct
/// path's (`baselines`, per scheme; with none, the rows stand alone).
pub(crate) fn latency(groups: &[&Group], baselines: &[Baseline]) -> String {
    let rows: Vec<(&Group, Latency, Option<&Baseline>)> = groups
        .iter()
        .filter_map(|g| {
            g.latency
                .map(|l| (*g, l, baseline::for_scheme(baselines, &g.scheme)))
        })
        .collect();
    let scale = Scale::with_room(rows.iter().flat_map(|(_, l, b)| {
        let base = b.map(|b| [b.latency.p50, b.latency.p99]);
        [l.p50, l.p90, l.p99]
            .into_iter()
            .chain(base.into_iter().flatten())
    }));
    let names: Vec<String> = rows
        .iter()
        .map(|(g, _, _)| format!("{} {}", short_scenario(&g.scenario), g.scheme))
        .collect();
    let label_w = names
        .iter()
        .map(|n| TEXT.width(n))
        .fold(BOLD.width("scenario, scheme"), f64::max)
        + 16.0;
    let has_baseline = rows.iter().any(|(_, _, b)| b.is_some());

    let mut chart = Chart::new();
    key(&mut chart, baselines);
    let title_y = 44.0;
    let ticks_y = 62.0;
    let top = 70.0;
    let bottom = top + rows.len() as f64 * ROW_H;
    chart.text(
        (label_w + PLOT_W / 2.0, title_y),
        Anchor::Middle,
        TEXT,
        MUTED,
        &axis_title(&scale),
    );
    chart.text(
        (label_w - 8.0, title_y),
        Anchor::End,
        BOLD,
        INK,
        "scenario, scheme",
    );
    // Clear of the last tick's label, centred on the plot's right edge.
    let last_tick = scale
        .ticks()
        .iter()
        .map(|&t| TEXT.width(&ms(t)))
        .fold(0.0, f64::max);
    let versus_x = label_w + PLOT_W + last_tick / 2.0 + 16.0;
    if has_baseline {
        chart.text(
            (versus_x, title_y),
            Anchor::Start,
            BOLD,
            INK,
            "p50 / p99 vs direct, ms",
        );
    }
    axis(
        &mut chart,
        &scale,
        (label_w, PLOT_W),
        (top - 4.0, bottom),
        &[ticks_y, bottom + 16.0],
    );
    let x = |v: f64| label_w + scale.fraction(v) * PLOT_W;
    for (i, ((g, l, base), name)) in rows.iter().zip(&names).enumerate() {
        let y = top + i as f64 * ROW_H + ROW_H / 2.0;
        chart.group(&tip(g, l, *base));
        chart.text((label_w - 8.0, y + 4.0), Anchor::End, TEXT, INK, name);
        if let Some(b) = base {
            // A row's band meets the next one's: with the same scheme's baseline, they make
            // one stripe down the plot.
            let (from, to) = (x(b.latency.p50), x(b.latency.p99));
            chart.rect(
                (from - BAND_MIN / 2.0, y - ROW_H / 2.0),
                (to - from + BAND_MIN, ROW_H),
                &format!("fill=\"{BAND}\""),
            );
            chart.text((versus_x, y + 4.0), Anchor::Start, TEXT, INK, &b.versus(l));
        }
        chart.line(
            (x(l.p50), y),
            (x(l.p99), y),
            "stroke=\"#999999\" stroke-width=\"2\"",
        );
        // Where marks overlap (few samples), the square peeks out from under the triangle
        // and the median stays whole.
        for (m, v) in [(Mark::P90, l.p90), (Mark::P99, l.p99), (Mark::P50, l.p50)] {
            m.draw(&mut chart, x(v), y);
        }
        chart.end_group();
    }
    chart.text(
        (label_w + PLOT_W / 2.0, bottom + 36.0),
        Anchor::Middle,
        TEXT,
        MUTED,
        &axis_title(&scale),
    );
    chart.finish(&format!(
        "Latency percentiles per scenario and scheme against the direct path, {}: p50 \
         circle, p90 square, p99 triangle; grey band the direct path's p50 to p99",
        axis_title(&scale)
    ))
}

fn tip(g: &Group, l: &Latency, base: Option<&Baseline>) -> String {
    let mut tip = format!(
        "{} {}: p50 {} ms, p90 {} ms, p99 {} ms ({} messages)",
        g.scenario,
        g.scheme,
        ms(l.p50),
        ms(l.p90),
        ms(l.p99),
        l.count
    );
    if let Some(b) = base {
        let _ = write!(
            tip,
            "; direct path ({} {}): p50 {} ms, p99 {} ms",
            b.source(),
            b.scheme,
            ms(b.latency.p50),
            ms(b.latency.p99)
        );
    }
    tip
}

/// The legend over the plot: the marks, and the band when there is a baseline.
fn key(chart: &mut Chart, baselines: &[Baseline]) {
    let y = 20.0;
    let mut x = 8.0;
    for m in Mark::ALL {
        m.draw(chart, x + 6.0, y - 4.0);
        x = chart.text((x + 16.0, y), Anchor::Start, TEXT, MUTED, m.name()) + 20.0;
    }
    if let Some(first) = baselines.first() {
        chart.rect((x, y - 11.0), (24.0, 14.0), &format!("fill=\"{BAND}\""));
        let schemes = if baselines.len() > 1 {
            "same scheme"
        } else {
            first.scheme.as_str()
        };
        chart.text(
            (x + 30.0, y),
            Anchor::Start,
            TEXT,
            MUTED,
            &format!(
                "direct path, no intermediary ({}, {schemes}): p50 to p99",
                first.source()
            ),
        );
    } else {
        chart.text(
            (x, y),
            Anchor::Start,
            SMALL,
            MUTED,
            "no direct-path run to compare with",
        );
    }
}

/// The latency chart's marks.
#[derive(Debug, Clone, Copy)]
enum Mark {
    P50,
    P90,
    P99,
}

impl Mark {
    /// In legend order.
    const ALL: [Mark; 3] = [Mark::P50, Mark::P90, Mark::P99];

    fn name(self) -> &'static str {
        match self {
            Mark::P50 => "p50",
            Mark::P90 => "p90",
            Mark::P99 => "p99",
        }
    }

    /// p50 a circle, p90 a square, p99 a triangle, centred on (x, y).
    fn draw(self, chart: &mut Chart, x: f64, y: f64) {
        let mut out = String::new();
        let _ = match self {
            Mark::P50 => writeln!(
                out,
                "<circle cx=\"{}\" cy=\"{}\" r=\"4.5\" fill=\"{}\"/>",
                c(x),
                c(y),
                PALETTE[0]
            ),
            Mark::P90 => writeln!(
                out,
                "<rect x=\"{}\" y=\"{}\" width=\"8\" height=\"8\" fill=\"{}\"/>",
                c(x - 4.0),
                c(y - 4.0),
                PALETTE[1]
            ),
            Mark::P99 => writeln!(
                out,
                "<path d=\"M{} {}L{} {}L{} {}Z\" fill=\"{}\"/>",
                c(x),
                c(y - 5.0),
                c(x + 5.0),
                c(y + 4.0),
                c(x - 5.0),
                c(y + 4.0),
                PALETTE[3]
            ),
        };
        chart.raw(&out, (x + 5.0, y + 5.0));
    }
}
