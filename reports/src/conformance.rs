//! The conformance matrix: the gate suite run through many real intermediaries, each in one or
//! more configurations, as `reports/CONFORMANCE.md` and `reports/conformance.html`.
//!
//! Each [`Column`] is a product in one configuration with the gate's [`Results`] for it and the
//! version the product reports. Rows are behaviours (a gate scenario file); a cell holds each
//! scheme's verdict, pass or the outcome of a failure. [`Note`]s, written by people, say for
//! failing cells whether the failure is a documented limitation, a configuration matter or
//! looks like a bug; a failing cell no note covers is listed as unexplained.
//!
//! Both renderings are pure functions of their inputs (no wall times: those vary from run to
//! run), so the same inputs give the same bytes. [`cells`] reads the matrix back out of the
//! Markdown, so that a check compares verdicts rather than text.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Deserialize;

use crate::markdown::{code, escape};
use crate::text::xml;
use crate::{Results, Run};

/// One column of the matrix: a product in one configuration, and what the gate saw.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// The column's name (`nginx`, `nginx-default`).
    pub id: String,
    /// The product's name (`nginx`).
    pub product: String,
    /// The configuration template it ran from (`nginx-with-upgrade-lines.conf`).
    pub template: String,
    /// Whether this is the configuration the product's documentation recommends for
    /// WebSockets (else: as shipped, by default).
    pub documented: bool,
    /// The product's version as it reports it (`nginx version: nginx/1.22.1`).
    pub version: String,
    /// The gate's results through it.
    pub results: Results,
}

/// What a failure is, in a [`Note`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// The product's documentation says it does not do this.
    Limitation,
    /// A setting decides it: the configuration gated is not one for WebSockets.
    Configuration,
    /// It looks like a bug in the product.
    Bug,
}

impl Kind {
    fn text(self) -> &'static str {
        match self {
            Kind::Limitation => "documented limitation",
            Kind::Configuration => "configuration matter",
            Kind::Bug => "looks like a bug",
        }
    }
}

/// What people say about some failing cells of one column.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Note {
    /// The column it is about.
    pub column: String,
    /// The behaviours it covers: prefixes of their names (`concurrency/`); empty for all.
    #[serde(default)]
    pub behaviours: Vec<String>,
    /// What kind of failure it is.
    pub kind: Kind,
    /// Why, with the source that says so: Markdown, put in the page as it is.
    pub text: String,
    /// For a bug: the smallest reproduction.
    #[serde(default)]
    pub reproduction: String,
}

impl Note {
    fn covers(&self, column: &str, behaviour: &str) -> bool {
        self.column == column
            && (self.behaviours.is_empty()
                || self.behaviours.iter().any(|b| behaviour.starts_with(b)))
    }
}

/// A behaviour's name: its scenario file without the suite's folder and `.toml`
/// (`scenarios/gate/handshake/upgrade.toml` is `handshake/upgrade`).
pub fn behaviour(run: &Run) -> String {
    let path = run.scenario.as_str();
    let path = path.rsplit_once("scenarios/gate/").map_or(path, |(_, p)| p);
    path.strip_suffix(".toml").unwrap_or(path).to_string()
}

/// Every behaviour any column ran, in name order.
fn rows(columns: &[Column]) -> Vec<String> {
    let mut rows: Vec<String> = columns
        .iter()
        .flat_map(|c| c.results.runs.iter().map(behaviour))
        .collect();
    rows.sort();
    rows.dedup();
    rows
}

/// The runs of `column` for `behaviour`, ws before wss.
fn runs<'a>(column: &'a Column, behaviour_name: &str) -> Vec<&'a Run> {
    let mut runs: Vec<&Run> = column
        .results
        .runs
        .iter()
        .filter(|r| behaviour(r) == behaviour_name)
        .collect();
    runs.sort_by(|a, b| a.scheme.cmp(&b.scheme));
    runs
}

/// One scheme's verdict in a cell: `ws ✅`, `wss ❌ handshake-rejected`.
fn verdict(run: &Run) -> String {
    if run.pass {
        format!("{} ✅", run.scheme)
    } else {
        format!("{} ❌ {}", run.scheme, run.outcome)
    }
}

/// A cell's text: each scheme's verdict, `·` between; `not run` for none.
fn cell(runs: &[&Run]) -> String {
    if runs.is_empty() {
        return "not run".to_string();
    }
    runs.iter()
        .map(|r| verdict(r))
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The passed and total runs of a column.
fn tally(column: &Column) -> (usize, usize) {
    let runs = &column.results.runs;
    (runs.iter().filter(|r| r.pass).count(), runs.len())
}

fn configuration(column: &Column) -> &'static str {
    if column.documented {
        "documented"
    } else {
        "shipped default"
    }
}

/// An anchor for a run: `c-COLUMN-BEHAVIOUR-SCHEME`, with every other character than ASCII
/// letters and digits as `-`.
fn anchor(column: &str, behaviour_name: &str, scheme: &str) -> String {
    format!("c-{column}-{behaviour_name}-{scheme}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// The failing runs of every column, grouped by the note that covers them (`None`: none).
fn failures<'a>(
    columns: &'a [Column],
    notes: &'a [Note],
) -> Vec<(&'a Column, Option<&'a Note>, Vec<&'a Run>)> {
    let mut out = Vec::new();
    for column in columns {
        let mut groups: BTreeMap<Option<usize>, Vec<&Run>> = BTreeMap::new();
        for behaviour_name in rows(std::slice::from_ref(column)) {
            for run in runs(column, &behaviour_name)
                .into_iter()
                .filter(|r| !r.pass)
            {
                let note = notes
                    .iter()
                    .position(|n| n.covers(&column.id, &behaviour_name));
                groups.entry(note).or_default().push(run);
            }
        }
        for (note, runs) in groups {
            out.push((column, note.map(|i| &notes[i]), runs));
        }
    }
    out
}

/// Renders the matrix as Markdown: the products and their versions, the matrix (between
/// `<!-- matrix -->` markers, which [`cells`] reads), and the notes on every failing cell.
pub fn conformance_markdown(columns: &[Column], notes: &[Note]) -> String {
    let mut out = String::from(
        "# Conformance: the gate suite through real intermediaries\n\n\
         Written by `cargo xtask conformance` (`--check` compares the cells with a new run); \
         `gauntlet gate --quick` per column: a quiet period of 3 s, so idle limits longer \
         than that are not caught here. Each template cites the documentation it follows.\n\n\
         ## Products\n\n\
         | column | product | configuration | template | version | passed |\n\
         |---|---|---|---|---|---|\n",
    );
    for c in columns {
        let (passed, total) = tally(c);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {passed} of {total} |",
            code(&c.id),
            escape(&c.product),
            configuration(c),
            code(&c.template),
            escape(&c.version)
        );
    }
    out.push_str("\n## Matrix\n\n<!-- matrix -->\n| behaviour |");
    for c in columns {
        let _ = write!(out, " {} |", escape(&c.id));
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(columns.len()));
    out.push('\n');
    for row in rows(columns) {
        let _ = write!(out, "| {} |", escape(&row));
        for c in columns {
            let _ = write!(out, " {} |", cell(&runs(c, &row)));
        }
        out.push('\n');
    }
    out.push_str("<!-- /matrix -->\n\n## Notes on the failing cells\n\n");
    let failures = failures(columns, notes);
    if failures.is_empty() {
        out.push_str("Every cell passed.\n");
    }
    for (column, note, runs) in failures {
        let outcomes = distinct(runs.iter().map(|r| r.outcome.as_str()));
        let _ = write!(
            out,
            "- **{}**, {} ({}): ",
            escape(&column.id),
            which(column, &runs),
            outcomes.join(", ")
        );
        match note {
            Some(n) => {
                let _ = writeln!(out, "*{}*. {}", n.kind.text(), n.text);
                if !n.reproduction.is_empty() {
                    let _ = writeln!(out, "  Reproduction: {}", n.reproduction);
                }
            }
            None => {
                let _ = writeln!(
                    out,
                    "*not yet explained*. First: {}",
                    escape(&runs[0].detail)
                );
            }
        }
    }
    out
}

/// Which runs of `column` failed, in words: every run; every run but the few others, when
/// most failed; or each failing behaviour with its schemes.
fn which(column: &Column, failed: &[&Run]) -> String {
    let total = column.results.runs.len();
    if failed.len() == total {
        return format!("every run ({total})");
    }
    if failed.len() * 2 > total {
        let others: Vec<&Run> = column
            .results
            .runs
            .iter()
            .filter(|r| !failed.iter().any(|f| std::ptr::eq(*f, *r)))
            .collect();
        return format!(
            "every run ({} of {total}) but {}",
            failed.len(),
            escape(&by_behaviour(&others))
        );
    }
    format!(
        "{} failing: {}",
        failed.len(),
        escape(&by_behaviour(failed))
    )
}

/// Runs as a list of behaviours with their schemes: `handshake/upgrade ws+wss, …`.
fn by_behaviour(runs: &[&Run]) -> String {
    let mut by: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for r in runs {
        by.entry(behaviour(r)).or_default().push(&r.scheme);
    }
    let list: Vec<String> = by
        .iter()
        .map(|(b, schemes)| format!("{b} {}", schemes.join("+")))
        .collect();
    list.join(", ")
}

/// The distinct values of `items`, in the order they first come.
fn distinct<'a>(items: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// The cells of the matrix in a Markdown page [`conformance_markdown`] wrote: by behaviour and
/// column, each cell's text (its verdicts).
pub fn cells(markdown: &str) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    let Some((_, rest)) = markdown.split_once("<!-- matrix -->\n") else {
        return out;
    };
    let table = rest.split_once("<!-- /matrix -->").map_or(rest, |(t, _)| t);
    let split = |line: &str| -> Vec<String> {
        let line = line.trim().trim_start_matches('|').trim_end_matches('|');
        line.split(" |").map(|c| c.trim().to_string()).collect()
    };
    let mut lines = table.lines();
    let header = lines.next().map(split).unwrap_or_default();
    for line in lines.skip(1) {
        let fields = split(line);
        let Some((row, values)) = fields.split_first() else {
            continue;
        };
        for (column, value) in header.iter().skip(1).zip(values) {
            out.insert((row.clone(), column.clone()), value.clone());
        }
    }
    out
}

const STYLE: &str = "
body { font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', sans-serif; color: #1a1a1a;
  background: #ffffff; margin: 2rem; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.8rem; }
th, td { border: 1px solid #dddddd; padding: 0.15rem 0.35rem; text-align: left;
  vertical-align: top; white-space: nowrap; }
th { background: #f4f4f4; }
td.pass { background: #e5f5e0; } td.fail { background: #fee0d2; }
td a { color: inherit; text-decoration: none; }
pre { background: #f7f7f7; padding: 0.5rem; overflow-x: auto; font-size: 0.8rem; }
section:target { outline: 2px solid #3182bd; }
";

/// Renders the matrix as one self-contained HTML page (an inline style; no script, nothing
/// fetched): the products, the matrix with every cell linking to an anchor further down with
/// each of its runs' detail, transcript excerpt and product log lines, and the notes.
pub fn conformance_html(columns: &[Column], notes: &[Note]) -> String {
    let mut out = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n\
         <title>Gauntlet conformance</title>\n",
    );
    let _ = write!(out, "<style>{STYLE}</style>\n</head>\n<body>\n<main>\n");
    out.push_str(
        "<h1>Conformance: the gate suite through real intermediaries</h1>\n\
         <h2>Products</h2>\n<table>\n<tr><th>column</th><th>product</th><th>configuration</th>\
         <th>template</th><th>version</th><th>passed</th></tr>\n",
    );
    for c in columns {
        let (passed, total) = tally(c);
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{passed} of {total}</td></tr>",
            xml(&c.id),
            xml(&c.product),
            configuration(c),
            xml(&c.template),
            xml(&c.version)
        );
    }
    out.push_str("</table>\n<h2>Matrix</h2>\n<table>\n<tr><th>behaviour</th>");
    for c in columns {
        let _ = write!(out, "<th>{}</th>", xml(&c.id));
    }
    out.push_str("</tr>\n");
    let rows = rows(columns);
    for row in &rows {
        let _ = write!(out, "<tr><th>{}</th>", xml(row));
        for c in columns {
            let runs = runs(c, row);
            let class = if runs.iter().all(|r| r.pass) {
                "pass"
            } else {
                "fail"
            };
            let _ = write!(out, "<td class=\"{class}\">");
            let links: Vec<String> = runs
                .iter()
                .map(|r| {
                    format!(
                        "<a href=\"#{}\">{}</a>",
                        anchor(&c.id, row, &r.scheme),
                        xml(&verdict(r))
                    )
                })
                .collect();
            out.push_str(&links.join(" · "));
            out.push_str("</td>");
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n<h2>Notes on the failing cells</h2>\n<ul>\n");
    for (column, note, runs) in failures(columns, notes) {
        let (kind, text) = note.map_or(("not yet explained", ""), |n| (n.kind.text(), &n.text));
        let _ = write!(
            out,
            "<li><strong>{}</strong>, {}: <em>{kind}</em>. {}",
            xml(&column.id),
            which(column, &runs),
            xml(text)
        );
        if let Some(n) = note.filter(|n| !n.reproduction.is_empty()) {
            let _ = write!(out, " Reproduction: <code>{}</code>", xml(&n.reproduction));
        }
        out.push_str("</li>\n");
    }
    out.push_str("</ul>\n<h2>Runs</h2>\n");
    for c in columns {
        for row in &rows {
            for r in runs(c, row) {
                let _ = write!(
                    out,
                    "<section id=\"{}\"><h3>{} · {} · {}: {}</h3>\n<p>{}</p>\n",
                    anchor(&c.id, row, &r.scheme),
                    xml(&c.id),
                    xml(row),
                    xml(&r.scheme),
                    xml(&verdict(r)),
                    xml(&r.detail)
                );
                for (what, lines) in [
                    ("transcript excerpt", &r.excerpt),
                    ("the product's log lines", &r.product_log),
                ] {
                    if !lines.is_empty() && !r.pass {
                        let _ = writeln!(out, "<p>{what}</p>\n<pre>{}</pre>", xml(&capped(lines)));
                    }
                }
                out.push_str("</section>\n");
            }
        }
    }
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

/// The most lines of a run's excerpt or product log the HTML page shows (the gate's JSON
/// keeps them all): the first ones, then how many were left out.
const HTML_LINES: usize = 12;

fn capped(lines: &[String]) -> String {
    let mut text = lines
        .iter()
        .take(HTML_LINES)
        .cloned()
        .collect::<Vec<_>>()
        .join("\n");
    if lines.len() > HTML_LINES {
        let _ = write!(text, "\n… {} more lines", lines.len() - HTML_LINES);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(file: &str, scheme: &str, outcome: &str, wall_ms: u64) -> Run {
        Run {
            scenario: format!("scenarios/gate/{file}.toml"),
            scheme: scheme.to_string(),
            expected: "delivered".to_string(),
            outcome: outcome.to_string(),
            pass: outcome == "delivered",
            detail: format!("{outcome} <at> 1 ms"),
            wall_ms,
            excerpt: vec!["client  upgrade answered 426".to_string()],
            ..Run::default()
        }
    }

    fn columns(wall_ms: u64) -> Vec<Column> {
        let column = |id: &str, documented, runs| Column {
            id: id.to_string(),
            product: "nginx".to_string(),
            template: format!("{id}.conf"),
            documented,
            version: "nginx version: nginx/1.22.1".to_string(),
            results: Results {
                version: crate::VERSION,
                engine: "live".to_string(),
                runs,
                notes: vec![],
            },
        };
        vec![
            column(
                "nginx",
                true,
                vec![
                    run("handshake/upgrade", "wss", "delivered", wall_ms),
                    run("handshake/upgrade", "ws", "delivered", wall_ms),
                    run("framing/binary", "ws", "delivered", wall_ms),
                ],
            ),
            column(
                "nginx-default",
                false,
                vec![
                    run("handshake/upgrade", "ws", "handshake-rejected", wall_ms),
                    run("framing/binary", "ws", "handshake-rejected", 2),
                    run("framing/binary", "wss", "delivered", 2),
                ],
            ),
        ]
    }

    fn notes() -> Vec<Note> {
        vec![Note {
            column: "nginx-default".to_string(),
            behaviours: vec!["handshake/".to_string()],
            kind: Kind::Configuration,
            text: "no Upgrade lines".to_string(),
            reproduction: String::new(),
        }]
    }

    #[test]
    fn the_markdown_has_a_row_per_behaviour_a_column_per_configuration_and_notes() {
        let md = conformance_markdown(&columns(5), &notes());
        assert!(md.contains("| `nginx-default` | nginx | shipped default | `nginx-default.conf` | nginx version: nginx/1.22.1 | 1 of 3 |"), "{md}");
        assert!(
            md.contains("| handshake/upgrade | ws ✅ · wss ✅ | ws ❌ handshake-rejected |"),
            "{md}"
        );
        assert!(
            md.contains("| framing/binary | ws ✅ | ws ❌ handshake-rejected · wss ✅ |"),
            "{md}"
        );
        assert!(md.contains("- **nginx-default**, 1 failing: framing/binary ws (handshake-rejected): *not yet explained*. First: handshake-rejected &lt;at&gt; 1 ms"), "{md}");
        assert!(md.contains("- **nginx-default**, 1 failing: handshake/upgrade ws (handshake-rejected): *configuration matter*. no Upgrade lines"), "{md}");
        // Wall times change nothing; the same inputs give the same bytes.
        assert_eq!(md, conformance_markdown(&columns(900), &notes()));
    }

    #[test]
    fn a_note_covering_most_of_a_column_names_the_runs_it_does_not() {
        let mut cols = columns(5);
        cols[1].results.runs[0].outcome = "delivered".to_string();
        cols[1].results.runs[0].pass = true;
        cols[1].results.runs[2].outcome = "handshake-rejected".to_string();
        cols[1].results.runs[2].pass = false;
        let md = conformance_markdown(&cols, &[]);
        assert!(md.contains("- **nginx-default**, every run (2 of 3) but handshake/upgrade ws (handshake-rejected): *not yet explained*."), "{md}");
    }

    #[test]
    fn cells_read_back_what_the_markdown_wrote() {
        let md = conformance_markdown(&columns(5), &notes());
        let cells = cells(&md);
        assert_eq!(cells.len(), 4);
        assert_eq!(
            cells[&("framing/binary".to_string(), "nginx-default".to_string())],
            "ws ❌ handshake-rejected · wss ✅"
        );
        assert_eq!(
            cells[&("handshake/upgrade".to_string(), "nginx".to_string())],
            "ws ✅ · wss ✅"
        );
        assert!(super::cells("no matrix here").is_empty());
    }

    #[test]
    fn every_html_cell_links_to_its_run_with_the_excerpt_of_a_failure() {
        let html = conformance_html(&columns(5), &notes());
        let anchor = "c-nginx-default-framing-binary-ws";
        assert!(
            html.contains(&format!(
                "<a href=\"#{anchor}\">ws ❌ handshake-rejected</a>"
            )),
            "{html}"
        );
        assert!(
            html.contains(&format!("<section id=\"{anchor}\">")),
            "{html}"
        );
        assert!(
            html.contains("<pre>client  upgrade answered 426</pre>"),
            "{html}"
        );
        assert!(
            html.contains("handshake-rejected &lt;at&gt; 1 ms"),
            "{html}"
        );
        assert!(!html.contains("<script"), "{html}");
        assert_eq!(html, conformance_html(&columns(900), &notes()));
        // Every link has its anchor.
        for link in html.split("href=\"#").skip(1) {
            let id = &link[..link.find('"').unwrap()];
            assert!(html.contains(&format!("id=\"{id}\"")), "{id}");
        }
    }
}
