//! The renderers, end to end, on one fixed set of results (`fixture.rs`): snapshots of the
//! Markdown and JUnit reports and of a diff against a changed copy, checks of the HTML page's
//! structure, and the HTML page in a real browser (`browser/`, which needs Chromium); and
//! `gauntlet gate`'s JUnit and Markdown on a gate's results (`gate.rs`).

mod browser;
mod diff;
mod fixture;
mod gate;
mod html;
mod junit;
mod markdown;

use gauntlet_reports::{Results, html, junit, markdown};

/// Parses an HTML page as XML (the renderer writes well-formed markup), allowing its doctype.
fn parse_page(page: &str) -> roxmltree::Document<'_> {
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    roxmltree::Document::parse_with_options(page, options).expect("the page is well-formed")
}

#[test]
fn rendering_ignores_the_order_of_runs_in_the_file() {
    let results = fixture::results();
    let mut reversed = results.clone();
    reversed.runs.reverse();
    assert_eq!(markdown(&results), markdown(&reversed));
    assert_eq!(junit(&results), junit(&reversed));
    assert_eq!(html(&results), html(&reversed));
}

#[test]
fn rendering_twice_gives_the_same_bytes() {
    let results = fixture::results();
    assert_eq!(markdown(&results), markdown(&results.clone()));
    assert_eq!(html(&results), html(&results.clone()));
}

#[test]
fn empty_results_render_without_charts() {
    let empty = Results::new("turmoil");
    assert!(markdown(&empty).contains("0 runs of 0 scenarios"));
    let page = html(&empty);
    assert!(page.contains("No runs."));
    assert!(!page.contains("<svg"));
    parse_page(&page);
    let xml = junit(&empty);
    assert!(xml.contains(
        r#"<testsuites name="gauntlet (turmoil engine)" tests="0" failures="0" errors="0">"#
    ));
    roxmltree::Document::parse(&xml).expect("the report is well-formed");
}

#[test]
fn the_fixture_survives_a_trip_through_json() {
    let results = fixture::results();
    assert_eq!(Results::from_json(&results.to_json()).unwrap(), results);
}
