use gauntlet_reports::markdown;

use crate::fixture;

#[test]
fn markdown_report_of_the_fixture() {
    insta::assert_snapshot!(markdown(&fixture::results()));
}

/// The number of `|` not escaped with a backslash.
fn cell_separators(line: &str) -> usize {
    let mut n = 0;
    let mut escaped = false;
    for c in line.chars() {
        match c {
            '\\' if !escaped => escaped = true,
            '|' if !escaped => n += 1,
            _ => escaped = false,
        }
    }
    n
}

#[test]
fn every_table_row_has_as_many_cells_as_its_header() {
    let text = markdown(&fixture::results());
    let mut header: Option<usize> = None;
    for line in text.lines() {
        if !line.starts_with('|') {
            header = None;
            continue;
        }
        let n = cell_separators(line);
        match header {
            None => header = Some(n),
            Some(h) => assert_eq!(n, h, "{line}"),
        }
    }
}

#[test]
fn details_cannot_inject_markup() {
    let text = markdown(&fixture::results());
    assert!(!text.contains("<html>"));
    assert!(text.contains("&lt;html&gt;&amp;nbsp;"));
    assert!(
        !text.contains("second line\n"),
        "a detail's line break ends a table row"
    );
}
