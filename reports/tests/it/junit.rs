use gauntlet_reports::junit;

use crate::fixture;

#[test]
fn junit_report_of_the_fixture() {
    insta::assert_snapshot!(junit(&fixture::results()));
}

#[test]
fn junit_counts_tests_failures_and_errors() {
    let xml = junit(&fixture::results());
    let doc = roxmltree::Document::parse(&xml).expect("the report is well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    assert_eq!(root.attribute("tests"), Some("10"));
    assert_eq!(root.attribute("failures"), Some("2"));
    assert_eq!(root.attribute("errors"), Some("1"));
    let cases: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 10);
    let suites = root
        .children()
        .filter(|n| n.has_tag_name("testsuite"))
        .count();
    assert_eq!(suites, 5);
}

#[test]
fn junit_escaping_round_trips_through_an_xml_parser() {
    let xml = junit(&fixture::results());
    let doc = roxmltree::Document::parse(&xml).expect("the report is well-formed XML");
    let failure = doc
        .descendants()
        .find(|n| n.has_tag_name("failure") && n.attribute("type") == Some("dropped"))
        .expect("the dropped run fails");
    assert_eq!(
        failure.attribute("message"),
        Some("expected idle-closed, got dropped")
    );
    assert_eq!(failure.text(), Some(fixture::NASTY_DETAIL));
    let case = failure.parent().unwrap();
    assert_eq!(case.attribute("classname"), Some(fixture::IDLE));
    assert_eq!(case.attribute("name"), Some("ws seed 2"));

    let error = doc
        .descendants()
        .find(|n| n.has_tag_name("error"))
        .expect("the harness error is an error");
    assert_eq!(error.text(), Some(fixture::ERROR_DETAIL));
    let case = error.parent().unwrap();
    assert_eq!(case.attribute("classname"), Some(fixture::ODD));
    let suite = case.parent().unwrap();
    assert_eq!(suite.attribute("name"), Some(fixture::ODD));
}

#[test]
fn a_titled_failure_names_its_title_in_the_message() {
    let mut results = fixture::results();
    for run in &mut results.runs {
        run.title = "Gate: an <idle> tunnel stays open".to_string();
    }
    let xml = junit(&results);
    assert!(
        xml.contains(
            "<failure message=\"Gate: an &lt;idle&gt; tunnel stays open: expected idle-closed, \
             got dropped\" type=\"dropped\">"
        ),
        "{xml}"
    );
}
