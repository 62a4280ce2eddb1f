//! The HTML report's charts, each one inline `<svg>` with explicit size, a `viewBox` and a
//! `<title>`; colours and fonts are attributes, so a chart copied out of the page looks the
//! same. Labels are sized for a 12 px monospace font.
//!
//! - [`matrix`]: the traversal matrix as a grid, a cell per scenario × scheme coloured by
//!   pass or fail, with the outcome in it.
//! - [`kind_bars`]: delivery rate per intermediary kind, a horizontal bar per scheme.
//! - [`latency`]: p50, p90, p99 and max per scenario × scheme on one axis.
//! - [`cdf`]: the distribution of per-message latencies of a few scenario × scheme groups.

use std::fmt::Write;

use crate::aggregate::{Group, KindRates, Matrix, scheme_order};
use crate::text::{ms, percent, short_scenario, truncate, xml};

/// The advance of one character of the 12 px monospace font, in pixels.
const CHAR_W: f64 = 7.2;
const FONT: &str =
    r#"font-family="ui-monospace, SFMono-Regular, Menlo, Consolas, monospace" font-size="12""#;

const PASS_FILL: &str = "#c7e9c0";
const PASS_STROKE: &str = "#31a354";
const FAIL_FILL: &str = "#fcbba1";
const FAIL_STROKE: &str = "#cb181d";
const NONE_FILL: &str = "#f0f0f0";
pub(crate) const GRID: &str = "#dddddd";
pub(crate) const MUTED: &str = "#666666";

/// Okabe and Ito's colour-blind-safe palette, without black and yellow.
pub(crate) const PALETTE: [&str; 6] = [
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9",
];

/// The most groups the CDF chart draws.
pub(crate) const CDF_SERIES: usize = 6;

/// A coordinate: one decimal, without a trailing `.0`.
pub(crate) fn c(v: f64) -> String {
    let s = format!("{v:.1}");
    match s.strip_suffix(".0") {
        Some("-0") => "0".to_string(),
        Some(whole) => whole.to_string(),
        None => s,
    }
}

fn text_width(chars: usize) -> f64 {
    chars as f64 * CHAR_W
}

pub(crate) fn open(out: &mut String, width: f64, height: f64, title: &str) {
    let (w, h) = (c(width.ceil()), c(height.ceil()));
    let _ = write!(
        out,
        "<svg class=\"chart\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" {FONT}>\n<title>{}</title>\n",
        xml(title)
    );
}

pub(crate) fn close(out: &mut String) {
    out.push_str("</svg>\n");
}

/// Text at (x, y): `anchor` is `start`, `middle` or `end`.
pub(crate) fn label(out: &mut String, x: f64, y: f64, anchor: &str, fill: &str, s: &str) {
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"{anchor}\" fill=\"{fill}\">{}</text>",
        c(x),
        c(y),
        xml(s)
    );
}

/// The colour of a scheme's series: `ws`, `wss`, then the rest, through the palette.
fn scheme_colour(schemes: &[String], scheme: &str) -> &'static str {
    let i = schemes.iter().position(|s| s == scheme).unwrap_or(0);
    PALETTE[i % PALETTE.len()]
}

/// The traversal matrix as a grid.
pub(crate) fn matrix(m: &Matrix) -> String {
    const CELL_W: f64 = 236.0;
    const ROW_H: f64 = 22.0;
    const TOP: f64 = 28.0;
    let cell_chars = ((CELL_W - 14.0) / CHAR_W) as usize;
    let label_chars = m
        .rows
        .iter()
        .map(|r| short_scenario(&r.scenario).chars().count())
        .max()
        .unwrap_or(0);
    let label_w = text_width(label_chars).max(80.0) + 16.0;
    let width = label_w + m.schemes.len() as f64 * CELL_W + 8.0;
    let legend_y = TOP + m.rows.len() as f64 * ROW_H + 22.0;
    let height = legend_y + 12.0;

    let mut out = String::new();
    open(
        &mut out,
        width,
        height,
        &format!(
            "Traversal matrix: {} scenarios by {}; green cells passed on every seed, red ones \
             failed on at least one",
            m.rows.len(),
            m.schemes.join(" and ")
        ),
    );
    for (j, scheme) in m.schemes.iter().enumerate() {
        let x = label_w + j as f64 * CELL_W + CELL_W / 2.0;
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"18\" text-anchor=\"middle\" font-weight=\"bold\">{}</text>",
            c(x),
            xml(scheme)
        );
    }
    for (i, row) in m.rows.iter().enumerate() {
        let y = TOP + i as f64 * ROW_H;
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\"><title>{}</title>{}</text>",
            c(label_w - 8.0),
            c(y + 15.0),
            xml(&row.scenario),
            xml(short_scenario(&row.scenario))
        );
        for (j, cell) in row.cells.iter().enumerate() {
            let x = label_w + j as f64 * CELL_W;
            let scheme = &m.schemes[j];
            let (fill, stroke, tip, text) = match cell {
                Some(g) => {
                    let (fill, stroke, mark) = if g.all_passed() {
                        (PASS_FILL, PASS_STROKE, '✓')
                    } else {
                        (FAIL_FILL, FAIL_STROKE, '✗')
                    };
                    let tip = format!(
                        "{} {scheme}: {}/{} passed; got {}; expected {}",
                        row.scenario,
                        g.passed,
                        g.runs,
                        g.outcome_summary(),
                        g.expected.join(" or ")
                    );
                    let text = truncate(&format!("{mark} {}", g.cell_text()), cell_chars);
                    (fill, stroke, tip, text)
                }
                None => (
                    NONE_FILL,
                    GRID,
                    format!("{} {scheme}: no run", row.scenario),
                    "no run".to_string(),
                ),
            };
            let _ = writeln!(
                out,
                "<g><title>{}</title><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"3\" fill=\"{fill}\" stroke=\"{stroke}\"/><text x=\"{}\" y=\"{}\">{}</text></g>",
                xml(&tip),
                c(x + 2.0),
                c(y + 1.0),
                c(CELL_W - 4.0),
                c(ROW_H - 2.0),
                c(x + 8.0),
                c(y + 15.0),
                xml(&text)
            );
        }
    }
    let mut x = label_w;
    for (fill, stroke, name) in [
        (PASS_FILL, PASS_STROKE, "passed on every seed"),
        (FAIL_FILL, FAIL_STROKE, "failed on some seed"),
        (NONE_FILL, GRID, "no run"),
    ] {
        let _ = writeln!(
            out,
            "<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{fill}\" stroke=\"{stroke}\"/>",
            c(x),
            c(legend_y - 10.0)
        );
        label(&mut out, x + 18.0, legend_y, "start", MUTED, name);
        x += 18.0 + text_width(name.chars().count()) + 24.0;
    }
    close(&mut out);
    out
}

/// Delivery rate per intermediary kind, a bar per scheme.
pub(crate) fn kind_bars(kinds: &[KindRates], schemes: &[String]) -> String {
    const PLOT_W: f64 = 360.0;
    const BAR_H: f64 = 14.0;
    const BAR_GAP: f64 = 4.0;
    const GROUP_GAP: f64 = 14.0;
    const TOP: f64 = 30.0;
    let label_chars = kinds
        .iter()
        .map(|k| k.kind.chars().count())
        .max()
        .unwrap_or(0);
    let label_w = text_width(label_chars).max(60.0) + 16.0;
    let annotation_w = text_width(24);
    let group_h = |k: &KindRates| k.rates.len() as f64 * (BAR_H + BAR_GAP) - BAR_GAP;
    let plot_h: f64 = kinds.iter().map(|k| group_h(k) + GROUP_GAP).sum();
    let width = label_w + PLOT_W + 8.0 + annotation_w;
    let legend_y = TOP + plot_h + 18.0;
    let height = legend_y + 12.0;

    let mut out = String::new();
    open(
        &mut out,
        width,
        height,
        &format!(
            "Delivery rate by intermediary kind, {}: the share of runs whose outcome was delivered",
            schemes.join(" versus ")
        ),
    );
    for t in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let x = label_w + t * PLOT_W;
        let _ = writeln!(
            out,
            "<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"{GRID}\"/>",
            c(x),
            c(TOP - 6.0),
            c(TOP + plot_h - GROUP_GAP + 4.0)
        );
        label(&mut out, x, TOP - 12.0, "middle", MUTED, &percent(t));
    }
    let mut y = TOP;
    for k in kinds {
        let h = group_h(k);
        label(
            &mut out,
            label_w - 8.0,
            y + h / 2.0 + 4.0,
            "end",
            "#000",
            &k.kind,
        );
        for rate in &k.rates {
            let colour = scheme_colour(schemes, &rate.scheme);
            let text_y = c(y + BAR_H - 3.0);
            match rate.success() {
                Some(share) => {
                    let words = format!(
                        "{} {}/{} delivered ({})",
                        rate.scheme,
                        rate.delivered,
                        rate.runs,
                        percent(share)
                    );
                    let _ = writeln!(
                        out,
                        "<g><title>{}: {}</title><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{colour}\"/><text x=\"{}\" y=\"{text_y}\">{}</text></g>",
                        xml(&k.kind),
                        xml(&words),
                        c(label_w),
                        c(y),
                        c(share * PLOT_W),
                        c(BAR_H),
                        c(label_w + PLOT_W + 8.0),
                        xml(&truncate(&words, 24))
                    );
                }
                None => {
                    let _ = writeln!(
                        out,
                        "<text x=\"{}\" y=\"{text_y}\" fill=\"{MUTED}\">{}</text>",
                        c(label_w + 4.0),
                        xml(&format!("{}: no runs", rate.scheme))
                    );
                }
            }
            y += BAR_H + BAR_GAP;
        }
        y += GROUP_GAP - BAR_GAP;
    }
    legend(&mut out, label_w, legend_y, schemes);
    close(&mut out);
    out
}

/// A row of colour swatches naming the schemes.
fn legend(out: &mut String, x0: f64, y: f64, schemes: &[String]) {
    let mut x = x0;
    for s in schemes {
        let _ = writeln!(
            out,
            "<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{}\"/>",
            c(x),
            c(y - 10.0),
            scheme_colour(schemes, s)
        );
        label(out, x + 18.0, y, "start", MUTED, s);
        x += 18.0 + text_width(s.chars().count()) + 24.0;
    }
}

/// A horizontal axis for milliseconds: linear from 0, or logarithmic by decades when the
/// values span more than [`Scale::LOG_SPAN`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Scale {
    /// From 0 to `max`, a round number.
    Linear { max: f64 },
    /// From 10^`lo` to 10^`hi`.
    Log { lo: i32, hi: i32 },
}

impl Scale {
    /// The ratio of the largest to the smallest positive value from which the axis is
    /// logarithmic.
    const LOG_SPAN: f64 = 50.0;

    pub(crate) fn for_values(values: impl IntoIterator<Item = f64>) -> Scale {
        let mut lo = f64::INFINITY;
        let mut hi = 0.0f64;
        for v in values.into_iter().filter(|v| v.is_finite() && *v > 0.0) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if hi <= 0.0 {
            return Scale::Linear { max: 1.0 };
        }
        if hi / lo >= Self::LOG_SPAN {
            let lo = decade(lo);
            let mut hi_decade = decade(hi);
            if 10f64.powi(hi_decade) < hi {
                hi_decade += 1;
            }
            return Scale::Log {
                lo,
                hi: hi_decade.max(lo + 1),
            };
        }
        let step = nice_step(hi / 5.0);
        Scale::Linear {
            max: (hi / step).ceil() * step,
        }
    }

    /// Where `v` falls on the axis, from 0 (left) to 1 (right), clamped.
    pub(crate) fn fraction(&self, v: f64) -> f64 {
        let f = match *self {
            Scale::Linear { max } => v / max,
            Scale::Log { lo, hi } => {
                if v <= 0.0 {
                    0.0
                } else {
                    (v.log10() - f64::from(lo)) / f64::from(hi - lo)
                }
            }
        };
        if f.is_nan() { 0.0 } else { f.clamp(0.0, 1.0) }
    }

    /// Values to mark on the axis.
    pub(crate) fn ticks(&self) -> Vec<f64> {
        match *self {
            Scale::Linear { max } => {
                let step = nice_step(max / 5.0);
                let n = (max / step).round() as usize;
                (0..=n).map(|i| i as f64 * step).collect()
            }
            Scale::Log { lo, hi } => {
                let mut ticks = Vec::new();
                for k in lo..=hi {
                    let p = 10f64.powi(k);
                    ticks.push(p);
                    if hi - lo <= 2 && k < hi {
                        ticks.push(2.0 * p);
                        ticks.push(5.0 * p);
                    }
                }
                ticks
            }
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Scale::Linear { .. } => "linear",
            Scale::Log { .. } => "logarithmic",
        }
    }
}

/// The exponent of the largest power of ten not above `v` (> 0), without `log10`'s rounding.
fn decade(v: f64) -> i32 {
    let mut k = 0;
    while k > -320 && 10f64.powi(k) > v {
        k -= 1;
    }
    while k < 308 && 10f64.powi(k + 1) <= v {
        k += 1;
    }
    k
}

/// The smallest of 1, 2, 5 × a power of ten that is at least `raw` (> 0).
fn nice_step(raw: f64) -> f64 {
    if raw.is_nan() || raw <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powi(decade(raw));
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * p)
}

/// A horizontal axis: grid lines from `top` to `bottom`, tick labels on the line at `labels_y`.
fn axis(
    out: &mut String,
    scale: &Scale,
    x0: f64,
    width: f64,
    (top, bottom): (f64, f64),
    labels_y: f64,
) {
    for t in scale.ticks() {
        let x = x0 + scale.fraction(t) * width;
        let _ = writeln!(
            out,
            "<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"{GRID}\"/>",
            c(x),
            c(top),
            c(bottom)
        );
        label(out, x, labels_y, "middle", MUTED, &ms(t));
    }
}

/// p50, p90, p99 and max of each group that has latency data, a row each.
pub(crate) fn latency(groups: &[&Group]) -> String {
    const PLOT_W: f64 = 480.0;
    const ROW_H: f64 = 20.0;
    const TOP: f64 = 30.0;
    let rows: Vec<(&Group, crate::Latency)> = groups
        .iter()
        .filter_map(|g| g.latency.map(|l| (*g, l)))
        .collect();
    let scale = Scale::for_values(rows.iter().flat_map(|(_, l)| [l.p50, l.p90, l.p99, l.max]));
    let names: Vec<String> = rows
        .iter()
        .map(|(g, _)| format!("{} {}", short_scenario(&g.scenario), g.scheme))
        .collect();
    let label_chars = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
    let label_w = text_width(label_chars).max(80.0) + 16.0;
    let plot_bottom = TOP + rows.len() as f64 * ROW_H;
    let axis_name_y = plot_bottom + 18.0;
    let legend_y = axis_name_y + 22.0;
    let width = label_w + PLOT_W + 24.0;
    let height = legend_y + 12.0;

    let mut out = String::new();
    open(
        &mut out,
        width,
        height,
        &format!(
            "Latency percentiles per scenario and scheme, simulated milliseconds on a {} scale: \
             p50 circle, p90 square, p99 triangle, max cross",
            scale.name()
        ),
    );
    axis(
        &mut out,
        &scale,
        label_w,
        PLOT_W,
        (TOP, plot_bottom),
        TOP - 6.0,
    );
    let x = |v: f64| label_w + scale.fraction(v) * PLOT_W;
    for (i, ((g, l), name)) in rows.iter().zip(&names).enumerate() {
        let y = TOP + i as f64 * ROW_H + ROW_H / 2.0;
        let tip = format!(
            "{} {}: p50 {} ms, p90 {} ms, p99 {} ms, max {} ms ({} messages)",
            g.scenario,
            g.scheme,
            ms(l.p50),
            ms(l.p90),
            ms(l.p99),
            ms(l.max),
            l.count
        );
        let _ = writeln!(out, "<g><title>{}</title>", xml(&tip));
        label(&mut out, label_w - 8.0, y + 4.0, "end", "#000", name);
        let _ = writeln!(
            out,
            "<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"#bbbbbb\" stroke-width=\"2\"/>",
            c(x(l.p50)),
            c(y),
            c(x(l.max))
        );
        // Where marks overlap (few samples), the square peeks out from under the triangle,
        // the median stays whole, and the thin cross shows over all of them.
        for (m, v) in [
            (Mark::P90, l.p90),
            (Mark::P99, l.p99),
            (Mark::P50, l.p50),
            (Mark::Max, l.max),
        ] {
            m.draw(&mut out, x(v), y);
        }
        out.push_str("</g>\n");
    }
    label(
        &mut out,
        label_w + PLOT_W / 2.0,
        axis_name_y,
        "middle",
        MUTED,
        &format!("milliseconds (simulated), {} scale", scale.name()),
    );
    let mut lx = label_w;
    for m in Mark::ALL {
        m.draw(&mut out, lx + 6.0, legend_y - 4.0);
        label(&mut out, lx + 16.0, legend_y, "start", MUTED, m.name());
        lx += 16.0 + text_width(m.name().len()) + 24.0;
    }
    close(&mut out);
    out
}

/// The latency chart's marks.
#[derive(Debug, Clone, Copy)]
enum Mark {
    P50,
    P90,
    P99,
    Max,
}

impl Mark {
    /// In legend order.
    const ALL: [Mark; 4] = [Mark::P50, Mark::P90, Mark::P99, Mark::Max];

    fn name(self) -> &'static str {
        match self {
            Mark::P50 => "p50",
            Mark::P90 => "p90",
            Mark::P99 => "p99",
            Mark::Max => "max",
        }
    }

    /// p50 a circle, p90 a square, p99 a triangle, max a cross, centred on (x, y).
    fn draw(self, out: &mut String, x: f64, y: f64) {
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
            Mark::Max => writeln!(
                out,
                "<path d=\"M{} {}L{} {}M{} {}L{} {}\" stroke=\"#333333\" stroke-width=\"1.5\"/>",
                c(x - 4.0),
                c(y - 4.0),
                c(x + 4.0),
                c(y + 4.0),
                c(x + 4.0),
                c(y - 4.0),
                c(x - 4.0),
                c(y + 4.0)
            ),
        };
    }
}

/// The groups the CDF draws: those with samples, the [`CDF_SERIES`] with the most (ties in
/// report order), then in report order.
pub(crate) fn cdf_selection(groups: &[Group]) -> Vec<&Group> {
    let mut with_samples: Vec<&Group> =
        groups.iter().filter(|g| !g.samples_ms.is_empty()).collect();
    // `groups` is in report order and the sort is stable, so ties stay in report order.
    with_samples.sort_by_key(|g| std::cmp::Reverse(g.samples_ms.len()));
    with_samples.truncate(CDF_SERIES);
    with_samples.sort_by(|a, b| {
        a.scenario
            .cmp(&b.scenario)
            .then_with(|| scheme_order(&a.scheme, &b.scheme))
    });
    with_samples
}

/// The empirical distribution function of each group's merged samples: for each latency, the
/// share of messages that arrived within it.
pub(crate) fn cdf(series: &[&Group]) -> String {
    const LEFT: f64 = 56.0;
    const PLOT_W: f64 = 520.0;
    const PLOT_H: f64 = 240.0;
    const TOP: f64 = 12.0;
    const LEGEND_ROW: f64 = 18.0;
    let scale = Scale::for_values(series.iter().flat_map(|g| g.samples_ms.iter().copied()));
    let bottom = TOP + PLOT_H;
    let axis_name_y = bottom + 36.0;
    let legend_top = axis_name_y + 22.0;
    let names: Vec<String> = series
        .iter()
        .map(|g| {
            format!(
                "{} {} ({} messages)",
                short_scenario(&g.scenario),
                g.scheme,
                g.samples_ms.len()
            )
        })
        .collect();
    let legend_chars = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
    let width = (LEFT + PLOT_W + 24.0).max(LEFT + 30.0 + text_width(legend_chars) + 8.0);
    let height = legend_top + series.len() as f64 * LEGEND_ROW;

    let mut out = String::new();
    open(
        &mut out,
        width,
        height,
        &format!(
            "Cumulative distribution of per-message latency, simulated milliseconds on a {} \
             scale, for {} scenario and scheme groups",
            scale.name(),
            series.len()
        ),
    );
    axis(&mut out, &scale, LEFT, PLOT_W, (TOP, bottom), bottom + 16.0);
    let y = |share: f64| TOP + (1.0 - share) * PLOT_H;
    for share in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let _ = writeln!(
            out,
            "<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"{GRID}\"/>",
            c(LEFT),
            c(y(share)),
            c(LEFT + PLOT_W)
        );
        label(
            &mut out,
            LEFT - 6.0,
            y(share) + 4.0,
            "end",
            MUTED,
            &percent(share),
        );
    }
    let x = |v: f64| LEFT + scale.fraction(v) * PLOT_W;
    for (i, (g, name)) in series.iter().zip(&names).enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let n = g.samples_ms.len() as f64;
        let Some(first) = g.samples_ms.first() else {
            continue;
        };
        let mut d = format!("M{} {}", c(x(*first)), c(y(0.0)));
        let mut seen = 0usize;
        let mut k = 0;
        while k < g.samples_ms.len() {
            let v = g.samples_ms[k];
            while k < g.samples_ms.len() && g.samples_ms[k] == v {
                k += 1;
                seen += 1;
            }
            let _ = write!(d, "H{}V{}", c(x(v)), c(y(seen as f64 / n)));
        }
        let _ = write!(d, "H{}", c(LEFT + PLOT_W));
        let _ = writeln!(
            out,
            "<path d=\"{d}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"><title>{}</title></path>",
            xml(&format!("{} {}", g.scenario, g.scheme))
        );
        let ly = legend_top + i as f64 * LEGEND_ROW;
        let _ = writeln!(
            out,
            "<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"{colour}\" stroke-width=\"3\"/>",
            c(LEFT),
            c(ly - 4.0),
            c(LEFT + 22.0)
        );
        label(&mut out, LEFT + 30.0, ly, "start", "#000", name);
    }
    label(
        &mut out,
        LEFT + PLOT_W / 2.0,
        axis_name_y,
        "middle",
        MUTED,
        &format!(
            "milliseconds (simulated), {} scale; up: share of messages within",
            scale.name()
        ),
    );
    close(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_narrow_range_gets_a_linear_axis_from_zero_to_a_round_number() {
        let s = Scale::for_values([10.0, 24.0, 37.0]);
        assert_eq!(s, Scale::Linear { max: 40.0 });
        assert_eq!(s.ticks(), [0.0, 10.0, 20.0, 30.0, 40.0]);
        assert_eq!(s.fraction(20.0), 0.5);
        assert_eq!(s.fraction(80.0), 1.0);
    }

    #[test]
    fn a_wide_range_gets_a_log_axis_by_decades() {
        let s = Scale::for_values([0.0, 2.0, 20.0, 1500.0]);
        assert_eq!(s, Scale::Log { lo: 0, hi: 4 });
        assert_eq!(s.ticks(), [1.0, 10.0, 100.0, 1000.0, 10000.0]);
        assert_eq!(s.fraction(100.0), 0.5);
        assert_eq!(s.fraction(0.0), 0.0);
        assert_eq!(
            Scale::for_values([1.0, 1000.0]),
            Scale::Log { lo: 0, hi: 3 }
        );
    }

    #[test]
    fn no_positive_values_give_a_unit_axis() {
        assert_eq!(Scale::for_values([]), Scale::Linear { max: 1.0 });
        assert_eq!(
            Scale::for_values([0.0, f64::NAN]),
            Scale::Linear { max: 1.0 }
        );
    }

    #[test]
    fn decades_and_steps_are_exact_for_powers_of_ten() {
        assert_eq!(decade(1000.0), 3);
        assert_eq!(decade(999.0), 2);
        assert_eq!(decade(0.05), -2);
        assert_eq!(nice_step(7.4), 10.0);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(0.15), 0.2);
    }

    fn group(scenario: &str, scheme: &str, samples: usize) -> Group {
        Group {
            scenario: scenario.into(),
            scheme: scheme.into(),
            kind: String::new(),
            runs: 1,
            passed: 1,
            expected: vec!["delivered".into()],
            outcomes: vec![("delivered".into(), 1)],
            latency: None,
            samples_ms: vec![10.0; samples],
            handshake_ms: None,
            time_to_failure_ms: None,
        }
    }

    #[test]
    fn the_cdf_draws_the_groups_with_the_most_samples_in_report_order() {
        let groups = [
            group("a.toml", "ws", 3),
            group("a.toml", "wss", 0),
            group("b.toml", "ws", 9),
            group("b.toml", "wss", 1),
            group("c.toml", "ws", 3),
            group("c.toml", "wss", 5),
            group("d.toml", "ws", 2),
            group("d.toml", "wss", 3),
            group("e.toml", "ws", 3),
            group("f.toml", "ws", 3),
        ];
        let picked: Vec<(&str, &str)> = cdf_selection(&groups)
            .iter()
            .map(|g| (g.scenario.as_str(), g.scheme.as_str()))
            .collect();
        // 9, 5, then the first four 3s in report order: f.toml's 3, the 2 and the 1 miss out.
        assert_eq!(
            picked,
            [
                ("a.toml", "ws"),
                ("b.toml", "ws"),
                ("c.toml", "ws"),
                ("c.toml", "wss"),
                ("d.toml", "wss"),
                ("e.toml", "ws"),
            ]
        );
    }

    #[test]
    fn coordinates_have_one_decimal_at_most() {
        assert_eq!(c(12.0), "12");
        assert_eq!(c(12.26), "12.3");
        assert_eq!(c(-0.01), "0");
    }
}
