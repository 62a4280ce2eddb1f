//! The empirical distribution of per-message latency: for a few scenario × scheme groups, and
//! for the direct path as their baseline, the share of messages that arrived within each
//! latency.

use std::fmt::Write;

use super::{Anchor, CDF_SERIES, Chart, GRID, INK, MUTED, PALETTE, Scale, TEXT, axis, c};
use crate::aggregate::{Group, scheme_order};
use crate::baseline::{Baseline, DIRECT};
use crate::text::{percent, short_scenario};

const LEFT: f64 = 56.0;
const PLOT_W: f64 = 520.0;
const PLOT_H: f64 = 240.0;
const TOP: f64 = 30.0;
const LEGEND_ROW: f64 = 18.0;
/// The dashes of the direct path's curves, one per scheme.
const DASHES: [&str; 2] = ["6 3", "2 3"];

/// The groups the CDF draws: those with samples that did not go the direct path (that is
/// the baseline, drawn apart), the [`CDF_SERIES`] with the slowest tails (highest p99; ties
/// to the one with more samples, then in report order), then in report order.
pub(crate) fn cdf_selection(groups: &[Group]) -> Vec<&Group> {
    let p99 = |g: &Group| g.latency.map_or(0.0, |l| l.p99);
    let mut with_samples: Vec<&Group> = groups
        .iter()
        .filter(|g| !g.samples_ms.is_empty() && g.kind != DIRECT)
        .collect();
    // `groups` is in report order and the sort is stable, so ties stay in report order.
    with_samples.sort_by(|a, b| {
        p99(b)
            .total_cmp(&p99(a))
            .then_with(|| b.samples_ms.len().cmp(&a.samples_ms.len()))
    });
    with_samples.truncate(CDF_SERIES);
    with_samples.sort_by(|a, b| {
        a.scenario
            .cmp(&b.scenario)
            .then_with(|| scheme_order(&a.scheme, &b.scheme))
    });
    with_samples
}

/// `1 message`, `5 messages`.
fn messages(n: usize) -> String {
    format!("{n} message{}", if n == 1 { "" } else { "s" })
}

/// One curve: its samples (sorted ascending), its name in the legend, its tooltip and its
/// stroke.
struct Series<'a> {
    samples: &'a [f64],
    name: String,
    tip: String,
    stroke: String,
}

/// The empirical distribution function of each group's merged samples, and of the direct
/// path's (`baselines` with samples, dashed): for each latency, the share of messages that
/// arrived within it.
pub(crate) fn cdf(groups: &[&Group], baselines: &[Baseline]) -> String {
    let mut series: Vec<Series> = Vec::new();
    let with_samples = baselines.iter().filter(|b| !b.samples_ms.is_empty());
    for (b, dash) in with_samples.zip(DASHES) {
        series.push(Series {
            samples: &b.samples_ms,
            name: format!(
                "direct path {} ({}, {})",
                b.scheme,
                b.source(),
                messages(b.samples_ms.len())
            ),
            tip: format!("direct path, {}: {}", b.scheme, b.scenarios.join(", ")),
            stroke: format!("stroke=\"{INK}\" stroke-dasharray=\"{dash}\""),
        });
    }
    for (i, g) in groups.iter().enumerate() {
        series.push(Series {
            samples: &g.samples_ms,
            name: format!(
                "{} {} ({})",
                short_scenario(&g.scenario),
                g.scheme,
                messages(g.samples_ms.len())
            ),
            tip: format!("{} {}", g.scenario, g.scheme),
            stroke: format!("stroke=\"{}\"", PALETTE[i % PALETTE.len()]),
        });
    }
    let scale = Scale::with_room(series.iter().flat_map(|s| s.samples.iter().copied()));
    let bottom = TOP + PLOT_H;

    let mut chart = Chart::new();
    chart.text(
        (8.0, 16.0),
        Anchor::Start,
        TEXT,
        MUTED,
        "share of messages that arrived within the latency",
    );
    axis(
        &mut chart,
        &scale,
        (LEFT, PLOT_W),
        (TOP, bottom),
        &[bottom + 16.0],
    );
    let y = |share: f64| TOP + (1.0 - share) * PLOT_H;
    for share in [0.0, 0.25, 0.5, 0.75, 1.0] {
        chart.line(
            (LEFT, y(share)),
            (LEFT + PLOT_W, y(share)),
            &format!("stroke=\"{GRID}\""),
        );
        chart.text(
            (LEFT - 6.0, y(share) + 4.0),
            Anchor::End,
            TEXT,
            MUTED,
            &percent(share),
        );
    }
    // Where each curve crosses these lines is its percentile.
    for (share, name) in [(0.5, "p50"), (0.9, "p90"), (0.99, "p99")] {
        chart.line(
            (LEFT, y(share)),
            (LEFT + PLOT_W, y(share)),
            &format!("stroke=\"{MUTED}\" stroke-dasharray=\"1 3\""),
        );
        chart.text(
            (LEFT + PLOT_W + 6.0, y(share) + 4.0),
            Anchor::Start,
            TEXT,
            MUTED,
            name,
        );
    }
    let x = |v: f64| LEFT + scale.fraction(v) * PLOT_W;
    let legend_top = bottom + 58.0;
    for (i, s) in series.iter().enumerate() {
        let Some(first) = s.samples.first() else {
            continue;
        };
        let n = s.samples.len() as f64;
        let mut d = format!("M{} {}", c(x(*first)), c(y(0.0)));
        let mut seen = 0usize;
        let mut k = 0;
        while k < s.samples.len() {
            let v = s.samples[k];
            while k < s.samples.len() && s.samples[k] == v {
                k += 1;
                seen += 1;
            }
            let _ = write!(d, "H{}V{}", c(x(v)), c(y(seen as f64 / n)));
        }
        let _ = write!(d, "H{}", c(LEFT + PLOT_W));
        chart.raw(
            &format!(
                "<path d=\"{d}\" fill=\"none\" {} stroke-width=\"2\"><title>{}</title></path>\n",
                s.stroke,
                crate::text::xml(&s.tip)
            ),
            (LEFT + PLOT_W, bottom),
        );
        let ly = legend_top + i as f64 * LEGEND_ROW;
        chart.line(
            (LEFT, ly - 4.0),
            (LEFT + 22.0, ly - 4.0),
            &format!("{} stroke-width=\"3\"", s.stroke),
        );
        chart.text((LEFT + 30.0, ly), Anchor::Start, TEXT, INK, &s.name);
    }
    chart.text(
        (LEFT + PLOT_W / 2.0, bottom + 36.0),
        Anchor::Middle,
        TEXT,
        MUTED,
        &super::latency::axis_title(&scale),
    );
    chart.finish(&format!(
        "Cumulative distribution of per-message latency, {}, for {} scenario and scheme \
         groups and the direct path (dashed)",
        super::latency::axis_title(&scale),
        groups.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(scenario: &str, kind: &str, samples: &[f64]) -> Group {
        Group::delivered(scenario, "ws", kind, samples)
    }

    #[test]
    fn the_cdf_draws_the_slowest_tails_in_report_order() {
        let groups = [
            group("a.toml", "pass", &[10.0, 30.0]),
            group("b.toml", "pass", &[]),
            group("c.toml", "direct", &[900.0]),
            group("d.toml", "pass", &[10.0, 900.0]),
            group("e.toml", "pass", &[20.0]),
            group("f.toml", "pass", &[10.0, 10.0, 20.0]),
            group("g.toml", "pass", &[40.0]),
            group("h.toml", "pass", &[50.0]),
            group("i.toml", "pass", &[10.0]),
            group("j.toml", "pass", &[60.0]),
        ];
        let picked: Vec<&str> = cdf_selection(&groups)
            .iter()
            .map(|g| g.scenario.as_str())
            .collect();
        // 900, 60, 50, 40, 30, then of the two 20s the one with more samples; not the direct
        // path (the baseline), not b (no samples), not i (10).
        assert_eq!(
            picked,
            ["a.toml", "d.toml", "f.toml", "g.toml", "h.toml", "j.toml"]
        );
    }
}
