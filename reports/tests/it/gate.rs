//! `gauntlet gate`'s reports on a gate's results: JUnit parsed and held to its promises
//! (names, times, reasons, excerpts, notes), and the Markdown summary as a snapshot.

use gauntlet_reports::{Results, Run, gate_junit, gate_markdown};

fn run(file: &str, title: &str, outcome: &str, detail: &str, wall_ms: u64) -> Run {
    Run {
        scenario: format!("scenarios/gate/{file}.toml"),
        scheme: "ws".into(),
        seed: 1,
        expected: "delivered".into(),
        outcome: outcome.into(),
        pass: outcome == "delivered",
        detail: detail.into(),
        wall_ms,
        title: title.into(),
        ..Run::default()
    }
}

/// Three behaviours through nginx without its Upgrade lines: one passes, one fails with an
/// excerpt and nginx's log lines, one could not run.
fn results() -> Results {
    let mut results = Results::new("live");
    results.notes = vec![
        "gated: nginx from nginx-without-upgrade-lines.conf, as a reverse proxy".into(),
        "quick run: the quiet period is 3 s, so an idle limit longer than 3 s goes unseen".into(),
    ];
    let mut upgrade = run(
        "upgrade",
        "Gate: the upgrade passes and a small echo comes back, ws and wss",
        "handshake-rejected",
        "HTTP 426 Upgrade Required at 24.8 ms: This endpoint speaks WebSocket",
        1234,
    );
    upgrade.excerpt = vec![
        "  10.000 ms  client  upgrade request GET /echo".into(),
        "  24.800 ms  client  outcome handshake-rejected: HTTP 426 <&> `x`".into(),
    ];
    upgrade.product_log =
        vec!["127.0.0.1 - - [07/Dec/2026:00:00:00 +0000] \"GET /echo HTTP/1.1\" 426 59".into()];
    let mut broken = run(
        "frame-0-bytes",
        "",
        "harness-error",
        "the proxy did not start",
        5,
    );
    broken.pass = false;
    results.runs = vec![
        run(
            "binary",
            "Gate: binary messages come back byte-identical",
            "delivered",
            "3/3 echoed (binary), closed 1000",
            87,
        ),
        upgrade,
        broken,
    ];
    results
}

#[test]
fn each_behaviour_is_a_testcase_named_by_its_title_with_its_time_reason_and_excerpt() {
    let xml = gate_junit(&results());
    let doc = roxmltree::Document::parse(&xml).expect("the report is well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.attribute("tests"), Some("3"));
    assert_eq!(root.attribute("failures"), Some("1"));
    assert_eq!(root.attribute("errors"), Some("1"));
    assert_eq!(root.attribute("time"), Some("1.326"));
    let notes: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("property") && n.attribute("name") == Some("note"))
        .filter_map(|n| n.attribute("value"))
        .collect();
    assert_eq!(notes.len(), 2);
    assert!(notes[1].starts_with("quick run: the quiet period is 3 s"));
    let cases: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    let names: Vec<&str> = cases.iter().filter_map(|c| c.attribute("name")).collect();
    assert_eq!(
        names,
        [
            "binary messages come back byte-identical [ws]",
            "the upgrade passes and a small echo comes back, ws and wss [ws]",
            "scenarios/gate/frame-0-bytes.toml [ws]",
        ]
    );
    assert_eq!(cases[0].attribute("time"), Some("0.087"));
    assert!(!cases[0].children().any(|c| c.has_tag_name("failure")));

    let upgrade = cases[1];
    assert_eq!(
        upgrade.attribute("classname"),
        Some("scenarios/gate/upgrade.toml")
    );
    assert_eq!(upgrade.attribute("time"), Some("1.234"));
    let failure = upgrade
        .children()
        .find(|c| c.has_tag_name("failure"))
        .expect("the upgrade failed");
    assert_eq!(
        failure.attribute("message"),
        Some(
            "handshake-rejected: HTTP 426 Upgrade Required at 24.8 ms: This endpoint speaks WebSocket"
        )
    );
    assert_eq!(failure.attribute("type"), Some("handshake-rejected"));
    let text = failure.text().unwrap_or_default();
    assert!(
        text.starts_with("expected delivered, got handshake-rejected\n"),
        "{text}"
    );
    assert!(
        text.contains("the product's log lines:\n127.0.0.1 - - [07/Dec/2026"),
        "{text}"
    );
    let out = upgrade
        .children()
        .find(|c| c.has_tag_name("system-out"))
        .and_then(|c| c.text())
        .unwrap_or_default();
    assert_eq!(
        out,
        "  10.000 ms  client  upgrade request GET /echo\n  24.800 ms  client  outcome handshake-rejected: HTTP 426 <&> `x`"
    );
    assert!(cases[2].children().any(|c| c.has_tag_name("error")));
}

#[test]
fn the_markdown_summary_for_a_pull_request() {
    insta::assert_snapshot!(gate_markdown(&results()));
}

/// A proxy that strips the upgrade fails three behaviours the same way (the times and a
/// crowd's framing aside), and one other way.
fn one_fault_three_failures() -> Results {
    let mut results = Results::new("live");
    results.runs = vec![
        run(
            "upgrade",
            "Gate: the upgrade passes",
            "handshake-rejected",
            "HTTP 426 Upgrade Required at 24.8 ms: This endpoint speaks WebSocket",
            10,
        ),
        run(
            "binary",
            "Gate: binary messages come back",
            "handshake-rejected",
            "HTTP 426 Upgrade Required at 31.2 ms",
            10,
        ),
        run(
            "concurrency",
            "Gate: 100 sessions at once",
            "handshake-rejected",
            "session 1 of 100: HTTP 426 Upgrade Required at 40 ms: This endpoint speaks WebSocket; 0 of 100 opened",
            10,
        ),
        run(
            "quiet",
            "Gate: a quiet tunnel stays open",
            "dropped",
            "closed at 3001 ms without a Close frame",
            10,
        ),
    ];
    results
}

#[test]
fn a_fault_that_explains_several_failures_is_reported_once_with_them() {
    let results = one_fault_three_failures();
    let faults = gauntlet_reports::faults(&results);
    let sizes: Vec<usize> = faults.iter().map(|f| f.runs.len()).collect();
    assert_eq!(sizes, [3, 1]);
    // The body after the time mark may or may not have arrived with the head: the same.
    assert_eq!(faults[0].pattern, "HTTP N Upgrade Required at N ms");
    let md = gate_markdown(&results);
    assert_eq!(md.matches("#### ❌ F1").count(), 1, "{md}");
    assert!(
        md.contains(
            "Explains: the upgrade passes; binary messages come back; 100 sessions at once."
        ),
        "{md}"
    );
    // The three explained failures get no section of their own; the other one does.
    assert!(!md.contains("### ❌ the upgrade passes"), "{md}");
    assert!(
        md.contains("### ❌ a quiet tunnel stays open \\[ws\\]"),
        "{md}"
    );
    assert!(md.contains("`handshake-rejected` (F1)"), "{md}");
    let xml = gate_junit(&results);
    assert_eq!(
        xml.matches("(fault F1, which explains 3 failures)").count(),
        3,
        "{xml}"
    );
    assert!(!xml.contains("fault F2"), "{xml}");
}
