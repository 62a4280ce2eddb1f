//! The HTML report's charts, each one inline `<svg>` with explicit size, a `viewBox` and a
//! `<title>`; colours and fonts are attributes, so a chart copied out of the page looks the
//! same. Text is a monospace font, 12 px (10 px for the small print), whose advance this
//! module knows, so each chart is drawn on a [`Chart`] that records how far its text
//! reaches and sizes the `viewBox` from that: no label is cut off, however long.
//!
//! - [`matrix()`](matrix::matrix): the traversal matrix as a grid, a cell per scenario × scheme
//!   coloured by what happened ([`crate::outcome::Class`]), with the outcome in it and a
//!   separate mark where it is not what the scenario expects or is a failure it expects.
//! - [`kind_bars`]: delivery rate per intermediary kind, a horizontal bar per scheme.
//! - [`latency()`](latency::latency): p50, p90 and p99 per scenario × scheme on one axis, each
//!   row beside the direct path's band ([`crate::baseline`]).
//! - [`cdf()`](cdf::cdf): the distribution of per-message latencies of a few scenario × scheme
//!   groups, beside the direct path's.

mod cdf;
mod kinds;
mod latency;
mod matrix;

use std::fmt::Write;

use crate::text::{ms, xml};

pub(crate) use cdf::{cdf, cdf_selection};
pub(crate) use kinds::kind_bars;
pub(crate) use latency::latency;
pub(crate) use matrix::matrix;

const FONT: &str =
    r#"font-family="ui-monospace, SFMono-Regular, Menlo, Consolas, monospace" font-size="12""#;

pub(crate) const GRID: &str = "#dddddd";
pub(crate) const MUTED: &str = "#666666";
pub(crate) const INK: &str = "#000000";

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

/// A size and weight of the charts' monospace font.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Font {
    /// In pixels.
    pub size: f64,
    pub bold: bool,
}

/// The charts' text.
pub(crate) const TEXT: Font = Font {
    size: 12.0,
    bold: false,
};
/// Headings and what must stand out.
pub(crate) const BOLD: Font = Font {
    size: 12.0,
    bold: true,
};
/// The small print: a cell's mark, a row's annotation.
pub(crate) const SMALL: Font = Font {
    size: 10.0,
    bold: false,
};

impl Font {
    /// The advance of one character, with room to spare: DejaVu Sans Mono's is 0.602 em, and
    /// the other monospace fonts the charts ask for are no wider.
    const ADVANCE_EM: f64 = 0.61;
    /// How far a line's glyph box reaches above and below its baseline, in em (DejaVu Sans
    /// Mono's ascent and descent, rounded up).
    const ASCENT_EM: f64 = 0.93;
    const DESCENT_EM: f64 = 0.24;

    /// The width of `s` set in this font.
    pub fn width(self, s: &str) -> f64 {
        s.chars().count() as f64 * self.size * Self::ADVANCE_EM
    }

    /// Attributes other than the chart's default (12 px, normal weight).
    fn attributes(self) -> String {
        let mut a = String::new();
        if self.size != TEXT.size {
            let _ = write!(a, " font-size=\"{}\"", c(self.size));
        }
        if self.bold {
            a.push_str(" font-weight=\"bold\"");
        }
        a
    }
}

/// Where text sits relative to its x.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Anchor {
    Start,
    Middle,
    End,
}

impl Anchor {
    fn name(self) -> &'static str {
        match self {
            Anchor::Start => "start",
            Anchor::Middle => "middle",
            Anchor::End => "end",
        }
    }

    /// The left edge of text this wide whose anchor is at `x`.
    fn left(self, x: f64, width: f64) -> f64 {
        match self {
            Anchor::Start => x,
            Anchor::Middle => x - width / 2.0,
            Anchor::End => x - width,
        }
    }
}

/// A chart being drawn: its elements, and how far everything placed in it reaches, so that
/// [`Chart::finish`] sizes the `viewBox` to hold it all, text included.
#[derive(Debug, Default)]
pub(crate) struct Chart {
    body: String,
    /// The least x and y anything reaches, when below 0 (the layouts keep to the right of
    /// and below the origin; [`Chart::finish`] moves the content in if one did not).
    left: f64,
    top: f64,
    right: f64,
    bottom: f64,
}

impl Chart {
    /// The space left around the content, in pixels.
    const MARGIN: f64 = 8.0;

    pub fn new() -> Chart {
        Chart::default()
    }

    /// Records that something reaches (x, y).
    fn reach(&mut self, x: f64, y: f64) {
        self.left = self.left.min(x);
        self.top = self.top.min(y);
        self.right = self.right.max(x);
        self.bottom = self.bottom.max(y);
    }

    /// How far right the content reaches so far.
    pub fn right(&self) -> f64 {
        self.right
    }

    /// Text with its baseline at y, in `font`, filled `fill`. Returns its right edge.
    pub fn text(
        &mut self,
        (x, y): (f64, f64),
        anchor: Anchor,
        font: Font,
        fill: &str,
        s: &str,
    ) -> f64 {
        let width = font.width(s);
        let left = anchor.left(x, width);
        self.reach(left, y - Font::ASCENT_EM * font.size);
        self.reach(left + width, y + Font::DESCENT_EM * font.size);
        let anchor_attribute = match anchor {
            Anchor::Start => String::new(),
            a => format!(" text-anchor=\"{}\"", a.name()),
        };
        let fill_attribute = if fill == INK {
            String::new()
        } else {
            format!(" fill=\"{fill}\"")
        };
        let _ = writeln!(
            self.body,
            "<text x=\"{}\" y=\"{}\"{anchor_attribute}{fill_attribute}{}>{}</text>",
            c(x),
            c(y),
            font.attributes(),
            xml(s)
        );
        left + width
    }

    /// A rectangle; `attributes` are its paint (`fill="…" stroke="…"`).
    pub fn rect(&mut self, (x, y): (f64, f64), (w, h): (f64, f64), attributes: &str) {
        self.reach(x, y);
        self.reach(x + w, y + h);
        let _ = writeln!(
            self.body,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" {attributes}/>",
            c(x),
            c(y),
            c(w),
            c(h)
        );
    }

    /// A straight line.
    pub fn line(&mut self, (x1, y1): (f64, f64), (x2, y2): (f64, f64), attributes: &str) {
        self.reach(x1, y1);
        self.reach(x2, y2);
        let _ = writeln!(
            self.body,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" {attributes}/>",
            c(x1),
            c(y1),
            c(x2),
            c(y2)
        );
    }

    /// Markup whose extent the caller has recorded (shapes drawn within `reach`ed bounds).
    pub fn raw(&mut self, markup: &str, bottom_right: (f64, f64)) {
        self.reach(bottom_right.0, bottom_right.1);
        self.body.push_str(markup);
    }

    /// Opens a group whose elements share a tooltip.
    pub fn group(&mut self, tip: &str) {
        let _ = writeln!(self.body, "<g><title>{}</title>", xml(tip));
    }

    pub fn end_group(&mut self) {
        self.body.push_str("</g>\n");
    }

    /// The `<svg>`: sized to its content and a margin, titled `title`. Content that reaches
    /// left of or above the origin is moved in, in a `<g>`, so that it shows whole too.
    pub fn finish(self, title: &str) -> String {
        let (dx, dy) = (-self.left, -self.top);
        let mut out = String::new();
        open(
            &mut out,
            self.right + dx + Self::MARGIN,
            self.bottom + dy + Self::MARGIN,
            title,
        );
        if dx > 0.0 || dy > 0.0 {
            let _ = writeln!(
                out,
                "<g transform=\"translate({} {})\">",
                c(dx.ceil()),
                c(dy.ceil())
            );
            out.push_str(&self.body);
            out.push_str("</g>\n");
        } else {
            out.push_str(&self.body);
        }
        close(&mut out);
        out
    }
}

/// The colour of a scheme's series: `ws`, `wss`, then the rest, through the palette.
fn scheme_colour(schemes: &[String], scheme: &str) -> &'static str {
    let i = schemes.iter().position(|s| s == scheme).unwrap_or(0);
    PALETTE[i % PALETTE.len()]
}

/// A legend: swatches (each drawn by `draw` at its top left corner, 12 × 12) followed by their
/// names, in rows that wrap before `width`. Returns the baseline of its last row.
fn legend<T>(
    chart: &mut Chart,
    (x0, y0): (f64, f64),
    width: f64,
    items: &[(T, String)],
    draw: impl Fn(&mut Chart, (f64, f64), &T),
) -> f64 {
    const ROW: f64 = 20.0;
    let (mut x, mut y) = (x0, y0);
    for (item, name) in items {
        let w = 18.0 + TEXT.width(name);
        if x > x0 && x + w > x0 + width {
            x = x0;
            y += ROW;
        }
        draw(chart, (x, y - 10.0), item);
        chart.text((x + 18.0, y), Anchor::Start, TEXT, MUTED, name);
        x += w + 24.0;
    }
    y
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

    /// [`Scale::for_values`] with room beyond the smallest and the largest value (a tenth of
    /// each), so that no mark sits on the plot's edge, hidden by the axis.
    pub(crate) fn with_room(values: impl IntoIterator<Item = f64>) -> Scale {
        let values: Vec<f64> = values
            .into_iter()
            .filter(|v| v.is_finite() && *v > 0.0)
            .collect();
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(0.0, f64::max);
        Scale::for_values(values.into_iter().chain([lo / 1.1, hi * 1.1]))
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

    pub(crate) fn name(&self) -> &'static str {
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

/// A horizontal axis: grid lines from `top` to `bottom`, tick labels on the lines at each of
/// `labels_y` (above the plot, below it, or both).
fn axis(
    chart: &mut Chart,
    scale: &Scale,
    (x0, width): (f64, f64),
    (top, bottom): (f64, f64),
    labels_y: &[f64],
) {
    for t in scale.ticks() {
        let x = x0 + scale.fraction(t) * width;
        chart.line((x, top), (x, bottom), &format!("stroke=\"{GRID}\""));
        for &y in labels_y {
            chart.text((x, y), Anchor::Middle, TEXT, MUTED, &ms(t));
        }
    }
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
    fn room_keeps_the_extremes_off_the_edges() {
        assert_eq!(
            Scale::with_room([10.0, 1000.0]),
            Scale::Log { lo: 0, hi: 4 }
        );
        assert_eq!(Scale::with_room([10.0, 20.0]), Scale::Linear { max: 25.0 });
        assert_eq!(Scale::with_room([]), Scale::Linear { max: 1.0 });
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

    #[test]
    fn a_chart_is_as_large_as_its_text_and_moves_in_what_reaches_out() {
        let mut chart = Chart::new();
        // 10 characters of 12 px: 73.2 px wide, ending at 83.2.
        chart.text((10.0, 20.0), Anchor::Start, TEXT, INK, "0123456789");
        let svg = chart.finish("t");
        assert!(
            svg.starts_with("<svg class=\"chart\" width=\"92\" height=\"31\""),
            "{svg}"
        );
        assert!(!svg.contains("<g"), "{svg}");

        let mut chart = Chart::new();
        chart.text((10.0, 20.0), Anchor::End, TEXT, INK, "0123456789");
        let svg = chart.finish("t");
        assert!(svg.contains("<g transform=\"translate(64 0)\">"), "{svg}");
        assert!(
            svg.starts_with("<svg class=\"chart\" width=\"82\""),
            "{svg}"
        );
    }

    #[test]
    fn coordinates_have_one_decimal_at_most() {
        assert_eq!(c(12.0), "12");
        assert_eq!(c(12.26), "12.3");
        assert_eq!(c(-0.01), "0");
    }
}
