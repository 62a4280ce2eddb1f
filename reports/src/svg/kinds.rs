//! Delivery rate per intermediary kind, a horizontal bar per scheme.

use super::{Anchor, Chart, GRID, INK, MUTED, TEXT, legend, scheme_colour};
use crate::aggregate::KindRates;
use crate::text::percent;

const PLOT_W: f64 = 360.0;
const BAR_H: f64 = 14.0;
const BAR_GAP: f64 = 4.0;
const GROUP_GAP: f64 = 14.0;
const TOP: f64 = 30.0;

/// What a bar says beside it: `ws 4/10 delivered (40%)`.
fn words(scheme: &str, delivered: usize, runs: usize, share: f64) -> String {
    format!("{scheme} {delivered}/{runs} delivered ({})", percent(share))
}

/// Delivery rate per intermediary kind, a bar per scheme.
pub(crate) fn kind_bars(kinds: &[KindRates], schemes: &[String]) -> String {
    let label_w = kinds
        .iter()
        .map(|k| TEXT.width(&k.kind))
        .fold(60.0, f64::max)
        + 16.0;
    let group_h = |k: &KindRates| k.rates.len() as f64 * (BAR_H + BAR_GAP) - BAR_GAP;
    let plot_h: f64 = kinds.iter().map(|k| group_h(k) + GROUP_GAP).sum();

    let mut chart = Chart::new();
    for t in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let x = label_w + t * PLOT_W;
        chart.line(
            (x, TOP - 6.0),
            (x, TOP + plot_h - GROUP_GAP + 4.0),
            &format!("stroke=\"{GRID}\""),
        );
        chart.text((x, TOP - 12.0), Anchor::Middle, TEXT, MUTED, &percent(t));
    }
    let mut y = TOP;
    for k in kinds {
        let h = group_h(k);
        chart.text(
            (label_w - 8.0, y + h / 2.0 + 4.0),
            Anchor::End,
            TEXT,
            INK,
            &k.kind,
        );
        for rate in &k.rates {
            let text_y = y + BAR_H - 3.0;
            match rate.success() {
                Some(share) => {
                    let words = words(&rate.scheme, rate.delivered, rate.runs, share);
                    chart.group(&format!("{}: {words}", k.kind));
                    chart.rect(
                        (label_w, y),
                        (share * PLOT_W, BAR_H),
                        &format!("fill=\"{}\"", scheme_colour(schemes, &rate.scheme)),
                    );
                    chart.text(
                        (label_w + PLOT_W + 8.0, text_y),
                        Anchor::Start,
                        TEXT,
                        INK,
                        &words,
                    );
                    chart.end_group();
                }
                None => {
                    chart.text(
                        (label_w + 4.0, text_y),
                        Anchor::Start,
                        TEXT,
                        MUTED,
                        &format!("{}: no runs", rate.scheme),
                    );
                }
            }
            y += BAR_H + BAR_GAP;
        }
        y += GROUP_GAP - BAR_GAP;
    }
    let width = chart.right() - label_w;
    let items: Vec<(&str, String)> = schemes
        .iter()
        .map(|s| (scheme_colour(schemes, s), s.clone()))
        .collect();
    legend(
        &mut chart,
        (label_w, TOP + plot_h + 18.0),
        width,
        &items,
        |chart, at, colour| chart.rect(at, (12.0, 12.0), &format!("fill=\"{colour}\"")),
    );
    chart.finish(&format!(
        "Delivery rate by intermediary kind, {}: the share of runs whose outcome was delivered",
        schemes.join(" versus ")
    ))
}
