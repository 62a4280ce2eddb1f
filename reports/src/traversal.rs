//! `reports/TRAVERSAL.md`: the seed article's proxy-traversal decision tree with each branch
//! measured by a catalogue scenario, the ws versus wss success rate per intermediary kind, and
//! the traversal matrix.
//!
//! The article is Peter Lubbers, "How HTML5 Web Sockets Interact With Proxy Servers" (InfoQ,
//! 2010); its Figure 2 walks from "is there a proxy?" through explicit and transparent proxies
//! to whether ws:// and wss:// connect. [`BRANCHES`] is that tree: each leaf names what the
//! article predicts for each scheme and the scenario file that measures it.

use std::fmt::Write;

use crate::Results;
use crate::aggregate::{self, DELIVERED, Group};
use crate::markdown::{cell, code, count, escape, matrix_table, on_engine};
use crate::population::Populations;
use crate::text::percent;

/// What the article predicts for a scheme on a branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The WebSocket connects and carries messages.
    Works,
    /// The connection fails.
    Fails,
}

impl Claim {
    fn text(self) -> &'static str {
        match self {
            Claim::Works => "works",
            Claim::Fails => "fails",
        }
    }
}

/// A leaf of the decision tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Branch {
    /// The answers that lead here, from the root: `[proxy, kind, behaviour]`, the later ones
    /// empty where the tree is shallower.
    pub answers: [&'static str; 3],
    /// The leaf in a few words.
    pub label: &'static str,
    /// What the article says ws:// does here.
    pub ws: Claim,
    /// What the article says wss:// does here.
    pub wss: Claim,
    /// The catalogue scenario that measures the branch.
    pub scenario: &'static str,
    /// Whether the branch goes beyond the article's figure.
    pub beyond: bool,
}

/// The decision tree, leaf by leaf, in the order the figure reads.
pub const BRANCHES: &[Branch] = &[
    Branch {
        answers: ["no proxy", "", ""],
        label: "no intermediary",
        ws: Claim::Works,
        wss: Claim::Works,
        scenario: "scenarios/baseline/direct.toml",
        beyond: false,
    },
    Branch {
        answers: ["proxy", "explicit", "CONNECT allowed to any port"],
        label: "explicit proxy, CONNECT to port 80 allowed",
        ws: Claim::Works,
        wss: Claim::Works,
        scenario: "scenarios/seeds/explicit-proxy-allowing-port-80.toml",
        beyond: false,
    },
    Branch {
        answers: ["proxy", "explicit", "CONNECT to 443 only"],
        label: "explicit proxy restricting CONNECT to 443 (Squid's default)",
        ws: Claim::Fails,
        wss: Claim::Works,
        scenario: "scenarios/seeds/explicit-proxy-squid-default.toml",
        beyond: false,
    },
    Branch {
        answers: ["proxy", "transparent", "strips Connection and Upgrade"],
        label: "transparent proxy that strips hop-by-hop headers",
        ws: Claim::Fails,
        wss: Claim::Works,
        scenario: "scenarios/seeds/transparent-strip.toml",
        beyond: false,
    },
    Branch {
        answers: [
            "proxy",
            "transparent",
            "forwards the upgrade, then reads frames as HTTP",
        ],
        label: "transparent proxy that passes the 101, then chokes on the first frame",
        ws: Claim::Fails,
        wss: Claim::Works,
        scenario: "scenarios/seeds/transparent-forward-then-choke.toml",
        beyond: false,
    },
    Branch {
        answers: [
            "proxy",
            "transparent",
            "intercepts TLS (trusted CA) and strips",
        ],
        label: "TLS-intercepting proxy the client trusts, stripping like a transparent one",
        ws: Claim::Fails,
        wss: Claim::Fails,
        scenario: "scenarios/seeds/tls-inspection-strips-like-ws.toml",
        beyond: true,
    },
];

/// What a branch's scenario measured for one scheme.
struct Measured<'a> {
    group: Option<&'a Group>,
}

impl Measured<'_> {
    /// Whether every seed delivered; `None` when the scenario did not run with the scheme.
    fn works(&self) -> Option<bool> {
        self.group
            .map(|g| g.outcomes.iter().all(|(o, _)| o == DELIVERED) && !g.outcomes.is_empty())
    }

    fn cell(&self) -> String {
        match self.group {
            Some(g) => cell(g),
            None => "not run".to_string(),
        }
    }

    fn short(&self) -> String {
        match self.group {
            Some(g) => g.outcome_summary(),
            None => "not run".to_string(),
        }
    }
}

/// Whether a measurement bears out a claim: `yes`, `NO`, or `?` when it was not run.
fn agrees(claim: Claim, measured: &Measured<'_>) -> &'static str {
    match measured.works() {
        Some(works) if works == (claim == Claim::Works) => "yes",
        Some(_) => "NO",
        None => "?",
    }
}

/// Renders `reports/TRAVERSAL.md` from the catalogue's results. `command` is what regenerates
/// it, named in its header. A pure function of its inputs, so CI can compare the committed file
/// with a fresh rendering byte for byte.
pub fn traversal(results: &Results, populations: Option<&Populations>, command: &str) -> String {
    let groups = aggregate::groups(results);
    let find = |scenario: &str, scheme: &str| Measured {
        group: groups
            .iter()
            .find(|g| g.scenario == scenario && g.scheme == scheme),
    };
    let (passed, failed) = results.tally();
    let matrix = aggregate::matrix(results);
    let mut out = String::new();
    out.push_str("# WebSocket traversal, measured\n\n");
    let engine = on_engine(results);
    let _ = writeln!(
        out,
        "Generated by `{command}` from {} of {}{engine} ({passed} passed, {failed} failed). \
         Do not edit it by hand: CI regenerates it and fails when the committed file differs.",
        count(results.runs.len(), "run", "runs"),
        count(matrix.rows.len(), "scenario", "scenarios"),
    );
    out.push_str(
        "\nWhat each transport costs once it gets through (bytes on the wire and latency per \
         message, the article's \"1000:1\" measured) is in [OVERHEAD.md](OVERHEAD.md).\n",
    );

    out.push_str("\n## The decision tree, measured\n\n");
    out.push_str(
        "Figure 2 of Peter Lubbers' \"How HTML5 Web Sockets Interact With Proxy Servers\" \
         (InfoQ, 2010) walks from \"is there a proxy?\" to whether ws:// and wss:// get \
         through. Each leaf below is measured by a scenario in the catalogue; every seed of \
         that scenario must deliver for a scheme to count as working. The last leaf goes \
         beyond the article: a proxy that intercepts TLS sees wss:// as plainly as ws://.\n\n",
    );
    out.push_str("```mermaid\nflowchart TD\n");
    out.push_str("  root{\"Proxy between client and server?\"}\n");
    out.push_str("  explicit{\"Explicit (client sends CONNECT) or transparent?\"}\n");
    out.push_str("  connect{\"Which ports may CONNECT reach?\"}\n");
    out.push_str("  transparent{\"What does it do with the upgrade?\"}\n");
    out.push_str("  root -- proxy --> explicit\n");
    out.push_str("  explicit -- explicit --> connect\n");
    out.push_str("  explicit -- transparent --> transparent\n");
    for (i, b) in BRANCHES.iter().enumerate() {
        let (ws, wss) = (find(b.scenario, "ws"), find(b.scenario, "wss"));
        let _ = writeln!(
            out,
            "  leaf{i}[\"{}<br/>ws: {}<br/>wss: {}\"]",
            mermaid(b.label),
            mermaid(&ws.short()),
            mermaid(&wss.short()),
        );
        let (from, edge) = match b.answers {
            [first, "", ""] => ("root", first),
            [_, "explicit", last] => ("connect", last),
            [_, _, last] => ("transparent", last),
        };
        let _ = writeln!(out, "  {from} -- \"{}\" --> leaf{i}", mermaid(edge));
    }
    out.push_str("```\n\n");

    out.push_str(
        "| Branch | Article: ws | Measured ws | Agrees | Article: wss | Measured wss | Agrees | Scenario |\n",
    );
    out.push_str("| --- | --- | --- | --- | --- | --- | --- | --- |\n");
    for b in BRANCHES {
        let (ws, wss) = (find(b.scenario, "ws"), find(b.scenario, "wss"));
        let path: Vec<&str> = b
            .answers
            .iter()
            .copied()
            .filter(|a| !a.is_empty())
            .collect();
        let beyond = if b.beyond {
            " (beyond the article)"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "| {}{beyond} | {} | {} | {} | {} | {} | {} | {} |",
            escape(&path.join(" → ")),
            b.ws.text(),
            ws.cell(),
            agrees(b.ws, &ws),
            b.wss.text(),
            wss.cell(),
            agrees(b.wss, &wss),
            code(b.scenario),
        );
    }

    out.push_str("\n## ws versus wss, per intermediary kind\n\n");
    out.push_str(
        "Across every scenario and seed whose first intermediary is of the kind: the share of \
         runs that delivered their workload (a scenario that expects a failure counts as a \
         failure here: this measures the intermediary, not the scenario file).\n\n",
    );
    let kinds = aggregate::kinds(results);
    let schemes = aggregate::schemes(results);
    if kinds.is_empty() {
        out.push_str("No runs.\n");
    } else {
        out.push_str("| Kind |");
        for s in &schemes {
            let _ = write!(out, " {} delivered |", escape(s));
        }
        out.push_str("\n| --- |");
        for _ in &schemes {
            out.push_str(" ---: |");
        }
        out.push('\n');
        for k in &kinds {
            let _ = write!(out, "| {} |", code(&k.kind));
            for r in &k.rates {
                match r.success() {
                    Some(share) => {
                        let _ = write!(out, " {} ({}/{}) |", percent(share), r.delivered, r.runs);
                    }
                    None => out.push_str(" — |"),
                }
            }
            out.push('\n');
        }
    }

    if let Some(p) = populations {
        out.push_str(&crate::population::traversal_section(p));
    }

    out.push_str("\n## Traversal matrix\n\n");
    out.push_str("Every scenario of the catalogue, each cell every seed's outcome.\n\n");
    matrix_table(&mut out, &matrix);
    out
}

/// Text for a quoted Mermaid label: quotes and markup become harmless.
fn mermaid(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '"' => '\''.to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '\n' | '\r' => " ".to_string(),
            c => c.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Run;

    fn run(scenario: &str, scheme: &str, seed: u64, outcome: &str) -> Run {
        Run {
            scenario: scenario.into(),
            scheme: scheme.into(),
            seed,
            expected: outcome.into(),
            outcome: outcome.into(),
            pass: true,
            kind: "transparent-proxy".into(),
            ..Run::default()
        }
    }

    #[test]
    fn a_branch_agrees_only_when_every_seed_bears_the_claim_out() {
        let strip = "scenarios/seeds/transparent-strip.toml";
        let results = Results {
            version: 1,
            engine: "sim".into(),
            runs: vec![
                run(strip, "ws", 1, "handshake-rejected"),
                run(strip, "wss", 1, "delivered"),
                run(strip, "wss", 2, "dropped"),
            ],
            notes: Vec::new(),
        };
        let text = traversal(&results, None, "cargo xtask report");
        let row = text
            .lines()
            .find(|l| l.starts_with("| proxy → transparent → strips"))
            .expect("the strip branch's row");
        let cells: Vec<&str> = row.split(" | ").collect();
        assert_eq!(cells[1], "fails");
        assert_eq!(cells[3], "yes", "ws fails as the article says: {row}");
        assert_eq!(cells[4], "works");
        assert_eq!(cells[6], "NO", "one wss seed dropped: {row}");
        assert!(text.contains("| `transparent-proxy` | 0% (0/1) | 50% (1/2) |"));
        // Branches without runs say so instead of guessing.
        assert!(text.contains("not run | ? |"));
    }

    #[test]
    fn every_branch_names_a_distinct_scenario() {
        let mut seen: Vec<&str> = BRANCHES.iter().map(|b| b.scenario).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), BRANCHES.len());
    }

    #[test]
    fn mermaid_labels_cannot_close_their_quotes() {
        assert_eq!(mermaid("a \"b\" <c>"), "a 'b' &lt;c&gt;");
    }
}
