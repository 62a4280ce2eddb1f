use gauntlet_reports::html;
use roxmltree::{Document, Node};

use crate::{fixture, parse_page};

fn charts<'a>(doc: &'a Document) -> Vec<Node<'a, 'a>> {
    doc.descendants()
        .filter(|n| n.has_tag_name("svg"))
        .collect()
}

#[test]
fn the_page_is_well_formed_and_has_one_svg_per_chart() {
    let page = html(&fixture::results());
    let doc = parse_page(&page);
    let svgs = charts(&doc);
    assert_eq!(svgs.len(), 4, "matrix, kinds, latency, CDF");
    assert_eq!(page.matches("<svg").count(), 4);
    for svg in &svgs {
        for attribute in ["width", "height", "viewBox"] {
            assert!(
                svg.attribute(attribute).is_some(),
                "svg without {attribute}"
            );
        }
        let (w, h) = (
            svg.attribute("width").unwrap(),
            svg.attribute("height").unwrap(),
        );
        assert_eq!(
            svg.attribute("viewBox"),
            Some(format!("0 0 {w} {h}").as_str())
        );
        let title = svg
            .children()
            .find(|n| n.is_element())
            .expect("svg has children");
        assert!(
            title.has_tag_name("title"),
            "an svg's first child is its title"
        );
        assert!(!title.text().unwrap_or_default().is_empty());
    }
    let titles: Vec<&str> = svgs
        .iter()
        .map(|s| s.first_element_child().unwrap().text().unwrap())
        .collect();
    assert!(titles[0].starts_with("Traversal matrix"), "{titles:?}");
    assert!(titles[1].starts_with("Delivery rate"), "{titles:?}");
    assert!(titles[2].starts_with("Latency percentiles"), "{titles:?}");
    assert!(
        titles[3].starts_with("Cumulative distribution"),
        "{titles:?}"
    );
}

#[test]
fn the_page_loads_nothing_from_outside() {
    let page = html(&fixture::results());
    let doc = parse_page(&page);
    for node in doc.descendants().filter(|n| n.is_element()) {
        let tag = node.tag_name().name();
        assert!(
            ![
                "script", "link", "img", "iframe", "object", "embed", "image", "use"
            ]
            .contains(&tag),
            "<{tag}> in the page"
        );
        for a in node.attributes() {
            assert!(
                !["src", "href", "srcset", "action", "data"].contains(&a.name()),
                "{}=\"{}\" on <{tag}>",
                a.name(),
                a.value()
            );
        }
    }
    let style = doc
        .descendants()
        .find(|n| n.has_tag_name("style"))
        .and_then(|n| n.text())
        .expect("an inline style");
    assert!(!style.contains("url(") && !style.contains("@import"));
    // The only URL is the one a failure's detail mentions, and it is text.
    assert_eq!(page.matches("http").count(), 2, "{page}");
    assert_eq!(
        page.matches("http://proxy.invalid/help").count(),
        2,
        "in the failures and in all runs"
    );
}

#[test]
fn the_page_escapes_text_from_the_results() {
    let page = html(&fixture::results());
    let doc = parse_page(&page);
    // A detail full of markup comes back out of the parser unchanged, as text.
    let detail_cells = doc
        .descendants()
        .filter(|n| n.has_tag_name("td") && n.text() == Some(fixture::NASTY_DETAIL))
        .count();
    assert_eq!(detail_cells, 2);
    assert!(
        !doc.descendants()
            .any(|n| n.has_tag_name("html") && n.parent_element().is_some())
    );
    let odd = doc
        .descendants()
        .filter(|n| n.has_tag_name("code") && n.text() == Some(fixture::ODD))
        .count();
    assert!(
        odd >= 2,
        "the odd scenario name appears as text in the tables"
    );
}

#[test]
fn the_matrix_chart_has_a_cell_per_scenario_and_scheme() {
    let page = html(&fixture::results());
    let doc = parse_page(&page);
    let matrix = charts(&doc)[0];
    let cells = matrix
        .descendants()
        .filter(|n| n.has_tag_name("rect"))
        .count();
    assert_eq!(
        cells,
        5 * 2 + 4 + 2,
        "five scenarios by two schemes, the legend's four colours and its two marks"
    );
    let texts: Vec<&str> = matrix
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .collect();
    assert!(texts.contains(&"no run"), "{texts:?}");
    // An expected failure is red with a cross, marked as expected.
    assert!(texts.contains(&"✗ handshake-rejected"), "{texts:?}");
    assert!(texts.contains(&"✗ idle-closed"), "{texts:?}");
    assert!(texts.contains(&"expected"), "{texts:?}");
    // Whole, with what the scenario expects beside it.
    assert!(texts.contains(&"✗ dropped ×1, idle-closed ×1"), "{texts:?}");
    assert!(texts.contains(&"~ degraded"), "{texts:?}");
    assert!(
        texts.contains(&"unexpected (expects idle-closed)"),
        "{texts:?}"
    );
}

#[test]
fn colours_say_what_happened_and_a_heavy_border_what_was_not_expected() {
    let page = html(&fixture::results());
    let doc = parse_page(&page);
    let matrix = charts(&doc)[0];
    // Each cell is a group: its tooltip, its rectangle, its text.
    let cell = |text: &str| {
        matrix
            .descendants()
            .find(|n| n.has_tag_name("g") && n.descendants().any(|t| t.text() == Some(text)))
            .and_then(|g| g.descendants().find(|n| n.has_tag_name("rect")))
            .unwrap_or_else(|| panic!("no cell says {text:?}"))
    };
    let expected_failure = cell("✗ handshake-rejected");
    let unexpected_failure = cell("✗ dropped ×1, idle-closed ×1");
    let works = cell("✓ delivered");
    assert_eq!(
        expected_failure.attribute("fill"),
        unexpected_failure.attribute("fill"),
        "a failure is red whether or not it was expected"
    );
    assert_ne!(works.attribute("fill"), expected_failure.attribute("fill"));
    assert_eq!(unexpected_failure.attribute("stroke-width"), Some("2.5"));
    assert_eq!(expected_failure.attribute("stroke-width"), None);
    // The table says the same.
    assert!(page.contains(
        "<td class=\"fails\">✗ handshake-rejected <span class=\"tag\">expected</span></td>"
    ));
    assert!(page.contains("<td class=\"fails unexpected\">✗ dropped ×1, idle-closed ×1"));
}

#[test]
fn no_chart_label_is_cut_short() {
    let page = html(&fixture::results());
    let doc = parse_page(&page);
    for chart in charts(&doc) {
        for text in chart.descendants().filter(|n| n.has_tag_name("text")) {
            let s = text.text().unwrap_or_default();
            assert!(
                !s.is_empty() && !s.contains('…'),
                "a label cut short: {s:?}"
            );
        }
    }
}

#[test]
fn the_latency_charts_compare_with_the_direct_path() {
    let page = html(&fixture::results());
    let doc = parse_page(&page);
    let svgs = charts(&doc);
    let texts = |i: usize| -> Vec<&str> {
        svgs[i]
            .descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.text())
            .collect()
    };
    let latency = texts(2);
    assert!(
        latency.contains(&"ms per message (simulated), logarithmic scale"),
        "{latency:?}"
    );
    assert!(latency.contains(&"p50 / p99 vs direct, ms"), "{latency:?}");
    // The buffering proxy's ws pushes against the direct path's ws: p50 450 against 10.5,
    // p99 900 against 12.
    assert!(latency.contains(&"+439.5 / +888"), "{latency:?}");
    assert!(
        latency.contains(&"±0 / ±0"),
        "the direct path itself: {latency:?}"
    );
    let cdf = texts(3);
    assert!(
        cdf.iter()
            .any(|t| t.starts_with("direct path ws (baseline/direct")),
        "{cdf:?}"
    );
    assert_eq!(
        page.matches("<figcaption>").count(),
        2,
        "one per latency chart"
    );
}

#[test]
fn the_cdf_draws_one_curve_per_group_with_samples() {
    let page = html(&fixture::results());
    let doc = parse_page(&page);
    let cdf = charts(&doc)[3];
    let curves = cdf
        .descendants()
        .filter(|n| n.has_tag_name("path") && n.attribute("fill") == Some("none"))
        .count();
    // direct ws and wss, strip wss, idle ws, buffering ws and wss; idle wss has no samples.
    assert_eq!(curves, 6);
}
