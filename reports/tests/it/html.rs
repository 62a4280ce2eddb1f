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
        5 * 2 + 3,
        "five scenarios by two schemes, and the legend's three"
    );
    let texts: Vec<&str> = matrix
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .collect();
    assert!(texts.contains(&"✓ handshake-rejected"), "{texts:?}");
    assert!(texts.contains(&"no run"), "{texts:?}");
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("✗ dropped ×1, idle-closed ×1")),
        "{texts:?}"
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
