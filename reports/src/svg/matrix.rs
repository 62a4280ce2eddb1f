//! The traversal matrix as a grid: a row per scenario, a column per scheme, each column as
//! wide as its longest cell.

use super::{Anchor, BOLD, Chart, Font, GRID, INK, MUTED, SMALL, TEXT, legend};
use crate::aggregate::{Group, Matrix};
use crate::outcome::Class;
use crate::text::short_scenario;

const ROW_H: f64 = 22.0;
/// Between a cell's edge and its text.
const PAD: f64 = 8.0;
/// Between a cell's outcome and its mark.
const GAP: f64 = 12.0;
const NONE_FILL: &str = "#f0f0f0";
const NO_RUN: &str = "no run";
/// The border of a cell whose outcome the scenario does not expect.
const UNEXPECTED_STROKE: &str = r##"stroke="#000000" stroke-width="2.5""##;
/// The mark beside an unexpected outcome.
const UNEXPECTED_FONT: Font = Font {
    size: SMALL.size,
    bold: true,
};

/// A class's fill and border.
fn colours(class: Class) -> (&'static str, &'static str) {
    match class {
        Class::Works => ("#c7e9c0", "#31a354"),
        Class::Impaired => ("#fee391", "#d95f0e"),
        Class::Fails => ("#fcbba1", "#cb181d"),
    }
}

/// What a cell shows: the outcome with its class's glyph, and the mark.
fn words(g: &Group) -> (String, Option<String>) {
    (
        format!("{} {}", g.class().glyph(), g.outcome_summary()),
        g.expectation_tag(),
    )
}

/// The width a cell's text needs, padding included.
fn cell_width(cell: &Option<Group>) -> f64 {
    let inner = match cell {
        Some(g) => {
            let (main, tag) = words(g);
            TEXT.width(&main) + tag.map_or(0.0, |t| GAP + SMALL.width(&t))
        }
        None => TEXT.width(NO_RUN),
    };
    inner + 2.0 * PAD
}

/// The traversal matrix as a grid.
pub(crate) fn matrix(m: &Matrix) -> String {
    let label_w = m
        .rows
        .iter()
        .map(|r| TEXT.width(short_scenario(&r.scenario)))
        .fold(80.0, f64::max)
        + 2.0 * PAD;
    let widths: Vec<f64> = m
        .schemes
        .iter()
        .enumerate()
        .map(|(j, scheme)| {
            m.rows
                .iter()
                .map(|r| cell_width(&r.cells[j]))
                .fold(BOLD.width(scheme) + 2.0 * PAD, f64::max)
                + 4.0
        })
        .collect();
    let grid_w = label_w + widths.iter().sum::<f64>();

    let mut chart = Chart::new();
    let legend_end = key(&mut chart, grid_w.max(560.0));
    let header_y = legend_end + 30.0;
    let top = header_y + 8.0;
    let mut x = label_w;
    for (scheme, w) in m.schemes.iter().zip(&widths) {
        chart.text((x + w / 2.0, header_y), Anchor::Middle, BOLD, INK, scheme);
        x += w;
    }
    for (i, row) in m.rows.iter().enumerate() {
        let y = top + i as f64 * ROW_H;
        chart.group(&row.scenario);
        chart.text(
            (label_w - PAD, y + 15.0),
            Anchor::End,
            TEXT,
            INK,
            short_scenario(&row.scenario),
        );
        chart.end_group();
        let mut x = label_w;
        for ((cell, scheme), w) in row.cells.iter().zip(&m.schemes).zip(&widths) {
            let at = (x + 2.0, y + 1.0);
            let size = (w - 4.0, ROW_H - 2.0);
            match cell {
                Some(g) => {
                    chart.group(&tip(&row.scenario, scheme, g));
                    let (fill, stroke) = colours(g.class());
                    let border = if g.all_passed() {
                        format!("stroke=\"{stroke}\"")
                    } else {
                        UNEXPECTED_STROKE.to_string()
                    };
                    chart.rect(at, size, &format!("rx=\"3\" fill=\"{fill}\" {border}"));
                    let (main, tag) = words(g);
                    chart.text((x + PAD, y + 15.0), Anchor::Start, TEXT, INK, &main);
                    if let Some(tag) = tag {
                        let (font, fill) = if g.all_passed() {
                            (SMALL, MUTED)
                        } else {
                            (UNEXPECTED_FONT, INK)
                        };
                        chart.text((x + w - PAD, y + 14.5), Anchor::End, font, fill, &tag);
                    }
                    chart.end_group();
                }
                None => {
                    chart.group(&format!("{} {scheme}: no run", row.scenario));
                    chart.rect(
                        at,
                        size,
                        &format!("rx=\"3\" fill=\"{NONE_FILL}\" stroke=\"{GRID}\""),
                    );
                    chart.text((x + PAD, y + 15.0), Anchor::Start, TEXT, MUTED, NO_RUN);
                    chart.end_group();
                }
            }
            x += w;
        }
    }
    chart.finish(&format!(
        "Traversal matrix: {} scenarios by {}; a cell's colour says what happened (green \
         works, amber works at a cost, red fails) whatever the scenario expects; a heavy \
         border marks an outcome the scenario does not expect",
        m.rows.len(),
        m.schemes.join(" and ")
    ))
}

fn tip(scenario: &str, scheme: &str, g: &Group) -> String {
    format!(
        "{scenario} {scheme}: got {} ({}); the scenario expects {}; {}/{} seeds as expected",
        g.outcome_summary(),
        g.class().name(),
        g.expected.join(" or "),
        g.passed,
        g.runs
    )
}

/// The legend above the grid: what each colour means, then the two marks. Returns the
/// baseline of its last row.
fn key(chart: &mut Chart, width: f64) -> f64 {
    let mut classes: Vec<(Option<Class>, String)> = Class::ALL
        .iter()
        .map(|&k| (Some(k), format!("{}: {}", k.name(), k.outcomes())))
        .collect();
    classes.push((None, NO_RUN.to_string()));
    let y = legend(chart, (PAD, 16.0), width, &classes, |chart, at, class| {
        let (fill, stroke) = class.map_or((NONE_FILL, GRID), colours);
        chart.rect(
            at,
            (12.0, 12.0),
            &format!("fill=\"{fill}\" stroke=\"{stroke}\""),
        );
    });
    // The marks, each shown as it appears in a cell.
    let y = y + 24.0;
    let mut x = PAD;
    for (as_expected, tag, meaning) in [
        (true, "expected", "a failure or cost the scenario expects"),
        (
            false,
            "unexpected",
            "not the outcome the scenario expects (the cell names the one it does)",
        ),
    ] {
        let (font, fill) = if as_expected {
            (SMALL, MUTED)
        } else {
            (UNEXPECTED_FONT, INK)
        };
        let (fill_colour, stroke) = colours(Class::Fails);
        let border = if as_expected {
            format!("stroke=\"{stroke}\"")
        } else {
            UNEXPECTED_STROKE.to_string()
        };
        let w = font.width(tag) + 2.0 * PAD;
        chart.rect(
            (x, y - 14.0),
            (w, ROW_H - 2.0),
            &format!("rx=\"3\" fill=\"{fill_colour}\" {border}"),
        );
        chart.text((x + w - PAD, y - 0.5), Anchor::End, font, fill, tag);
        x = chart.text((x + w + 6.0, y), Anchor::Start, TEXT, MUTED, meaning) + 24.0;
    }
    y
}
