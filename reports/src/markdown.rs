//! The Markdown report: a summary, the traversal matrix, the latency table, the failures.

use std::fmt::Write;

use crate::Results;
use crate::aggregate::{self, Group, Matrix};
use crate::baseline;
use crate::outcome::Class;
use crate::text::ms;

/// Renders results as Markdown (GitHub-flavoured: tables).
///
/// Sections: a one-line summary (runs, scenarios, passed, failed, engine); the traversal
/// matrix (a row per scenario, a column per scheme, each cell the outcomes with a mark of what
/// happened and, apart, whether the scenario expects it);
/// latency percentiles (p50, p90, p99, max) per scenario × scheme, for those with latency data,
/// with how much later than the direct path's ([`crate::baseline`]) the p50 and p99 are;
/// and the failed runs with their detail, when there are any. Text from the results is escaped,
/// so a detail cannot break a table or add markup.
pub fn markdown(results: &Results) -> String {
    let mut out = String::new();
    let (passed, failed) = results.tally();
    let matrix = aggregate::matrix(results);
    out.push_str("# Gauntlet report\n\n");
    let engine = on_engine(results);
    let _ = writeln!(
        out,
        "{} of {}{engine}: {passed} passed, {failed} failed.",
        count(results.runs.len(), "run", "runs"),
        count(matrix.rows.len(), "scenario", "scenarios"),
    );

    out.push_str("\n## Traversal matrix\n\n");
    matrix_table(&mut out, &matrix);

    out.push_str("\n## Latency\n\n");
    let with_latency: Vec<Group> = aggregate::groups(results)
        .into_iter()
        .filter(|g| g.latency.is_some())
        .collect();
    if with_latency.is_empty() {
        out.push_str("No run recorded latency percentiles.\n");
    } else {
        out.push_str(
            "Per-message latency in simulated milliseconds (round trips of echoed messages, \
             one-way latency of server pushes), merged across seeds; percentiles by nearest rank.\n",
        );
        let baselines = baseline::baselines(&with_latency);
        match baselines.first() {
            Some(b) => {
                let _ = writeln!(
                    out,
                    "p50 / p99 vs direct: how many milliseconds later than on the direct path \
                     (no intermediary: {}) the p50 and the p99 are, with the same scheme.",
                    code(&b.source())
                );
            }
            None => {
                out.push_str("No run went the direct path (no intermediary) to compare with.\n")
            }
        }
        out.push_str(
            "\n| Scenario | Scheme | Messages | p50 | p90 | p99 | max | p50 / p99 vs direct |\n",
        );
        out.push_str("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
        for g in &with_latency {
            let Some(l) = g.latency else { continue };
            let versus = baseline::for_scheme(&baselines, &g.scheme)
                .map(|b| b.versus(&l))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                code(&g.scenario),
                escape(&g.scheme),
                l.count,
                ms(l.p50),
                ms(l.p90),
                ms(l.p99),
                ms(l.max),
                versus,
            );
        }
    }

    let failures: Vec<_> = aggregate::sorted_runs(results)
        .into_iter()
        .filter(|r| !r.pass)
        .collect();
    if !failures.is_empty() {
        out.push_str("\n## Failures\n\n");
        out.push_str("| Scenario | Scheme | Seed | Expected | Got | Detail |\n");
        out.push_str("| --- | --- | ---: | --- | --- | --- |\n");
        for r in failures {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                code(&r.scenario),
                escape(&r.scheme),
                r.seed,
                escape(&r.expected),
                escape(&r.outcome),
                escape(&r.detail),
            );
        }
    }
    out
}

/// The traversal matrix as a table, after a line that says how to read it: a row per
/// scenario, a column per scheme, each cell a [`cell`].
pub(crate) fn matrix_table(out: &mut String, matrix: &Matrix) {
    if matrix.rows.is_empty() {
        out.push_str("No runs.\n");
        return;
    }
    let classes: Vec<String> = Class::ALL
        .iter()
        .map(|&c| format!("{} {} ({})", mark(c), c.name(), c.outcomes()))
        .collect();
    let _ = writeln!(
        out,
        "{}, whatever the scenario expects; \"(expected)\" marks a failure or cost the \
         scenario expects, \"**unexpected**\" an outcome it does not.\n",
        classes.join(", ")
    );
    out.push_str("| Scenario |");
    for s in &matrix.schemes {
        let _ = write!(out, " {} |", escape(s));
    }
    out.push_str("\n| --- |");
    for _ in &matrix.schemes {
        out.push_str(" --- |");
    }
    out.push('\n');
    for row in &matrix.rows {
        let _ = write!(out, "| {} |", code(&row.scenario));
        for column in &row.cells {
            match column {
                Some(g) => {
                    let _ = write!(out, " {} |", cell(g));
                }
                None => out.push_str(" — |"),
            }
        }
        out.push('\n');
    }
}

/// ` on the `sim` engine`, or nothing when the results do not say.
pub(crate) fn on_engine(results: &Results) -> String {
    if results.engine.is_empty() {
        String::new()
    } else {
        format!(" on the {} engine", code(&results.engine))
    }
}

/// What happened, as a mark: ✅ works, ⚠️ works at a cost, ❌ fails.
pub(crate) fn mark(class: Class) -> &'static str {
    match class {
        Class::Works => "✅",
        Class::Impaired => "⚠️",
        Class::Fails => "❌",
    }
}

/// A matrix cell: what happened ([`mark`], whatever the scenario expects) and the outcomes,
/// then, apart, whether that is what the scenario expects: `✅ delivered`,
/// `❌ handshake-rejected (expected)`, `❌ dropped (**unexpected**: expects delivered)`.
pub(crate) fn cell(g: &Group) -> String {
    let mut s = format!("{} {}", mark(g.class()), escape(&g.outcome_summary()));
    if !g.all_passed() {
        let _ = write!(
            s,
            " (**unexpected**: expects {})",
            escape(&g.expected.join(" or "))
        );
    } else if g.expectation_tag().is_some() {
        s.push_str(" (expected)");
    }
    s
}

pub(crate) fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Text for a table cell: Markdown punctuation backslash-escaped, `<`, `>` and `&` as
/// entities (no raw HTML), line breaks as spaces (a table row is one line).
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// A code span (for paths and names), or escaped text if `s` has a backtick or a line break.
pub(crate) fn code(s: &str) -> String {
    if s.contains(['`', '\n', '\r']) || s.chars().any(char::is_control) {
        escape(s)
    } else {
        format!("`{}`", s.replace('|', "\\|"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cell_text_cannot_break_the_table_or_add_markup() {
        assert_eq!(
            escape("a|b <i>*c*</i> & [d](e)\nf"),
            r"a\|b &lt;i&gt;\*c\*&lt;/i&gt; &amp; \[d\](e) f"
        );
    }

    #[test]
    fn names_go_in_code_spans_unless_they_hold_a_backtick() {
        assert_eq!(code("scenarios/a_b.toml"), "`scenarios/a_b.toml`");
        assert_eq!(code("a|b"), r"`a\|b`");
        assert_eq!(code("a`b"), r"a\`b");
    }
}
