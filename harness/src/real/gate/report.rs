//! What a gate's reports keep of a run's transcript: an excerpt a reader of a failure needs
//! first (the whole transcript when it is short; its opening and its end otherwise, where the
//! outcome and the proxy's own output are), and, behind a real product, the product's log
//! lines apart, without its start-up and shutdown notices.

use crate::verdict::transcript::{Entry, render};

/// The most lines an excerpt keeps.
pub const EXCERPT_LINES: usize = 60;

/// How many of an excerpt's lines come from the transcript's opening (the rest from its end).
const OPENING_LINES: usize = 15;

/// `entries` split into the transcript excerpt and the lines `product` wrote to its own logs
/// (`nginx log: …` in the transcript; `None`: no product, every line may go in the excerpt).
/// The excerpt is the rendered transcript when it has at most [`EXCERPT_LINES`] lines, else
/// its first lines, a line saying how many were left out, and its last lines.
pub fn excerpt(entries: &[Entry], product: Option<&str>) -> (Vec<String>, Vec<String>) {
    let marker = product.map(|p| format!("{p} log: "));
    let (logged, run): (Vec<&Entry>, Vec<&Entry>) = entries
        .iter()
        .partition(|e| marker.as_ref().is_some_and(|m| e.what.starts_with(m)));
    let lines: Vec<&str> = logged
        .iter()
        .filter_map(|e| e.what.get(marker.as_ref().map_or(0, String::len)..))
        .filter(|line| relevant(line))
        .collect();
    // A log's `==> NAME <==` heading stays only above lines of its own.
    let heading = |l: &str| l.starts_with("==> ") && l.ends_with(" <==");
    let product_log = lines
        .iter()
        .enumerate()
        .filter(|(i, l)| !heading(l) || lines.get(i + 1).is_some_and(|next| !heading(next)))
        .map(|(_, l)| l.to_string())
        .collect();
    let kept: Vec<Entry> = run.into_iter().cloned().collect();
    let rendered = render(&kept);
    let lines: Vec<&str> = rendered.lines().collect();
    if lines.len() <= EXCERPT_LINES {
        return (lines.iter().map(|l| l.to_string()).collect(), product_log);
    }
    let closing = EXCERPT_LINES - OPENING_LINES - 1;
    let mut out: Vec<String> = lines[..OPENING_LINES]
        .iter()
        .map(|l| l.to_string())
        .collect();
    out.push(format!(
        "… {} lines left out (--transcript prints them all) …",
        lines.len() - OPENING_LINES - closing
    ));
    out.extend(lines[lines.len() - closing..].iter().map(|l| l.to_string()));
    (out, product_log)
}

/// Whether a product's log line says something about the traffic: not a notice of its own
/// start or stop (nginx's `[notice]`, Apache's `:notice]`, HAProxy's `[NOTICE]`).
fn relevant(line: &str) -> bool {
    !["[notice]", ":notice]", "[NOTICE]"]
        .iter()
        .any(|n| line.contains(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn entry(ms: u64, who: &str, what: &str) -> Entry {
        Entry {
            at: Duration::from_millis(ms),
            who: who.into(),
            what: what.into(),
        }
    }

    #[test]
    fn a_short_transcript_is_its_own_excerpt_and_the_products_lines_stand_apart() {
        let entries = vec![
            entry(10, "client", "upgrade request GET /echo"),
            entry(20, "client", "outcome handshake-rejected: HTTP 426"),
            entry(30, "hop1", "nginx log: ==> access.log <=="),
            entry(30, "hop1", "nginx log: \"GET /echo HTTP/1.0\" 426"),
            entry(
                30,
                "hop1",
                "nginx log: 2026/12/07 [notice] 7#7: start worker processes",
            ),
            entry(30, "hop1", "nginx log: ==> error.log <=="),
            entry(30, "hop1", "nginx log: 2026/12/07 [notice] 7#7: exiting"),
            entry(30, "hop1", "nginx log: ==> stderr.log <=="),
        ];
        let (excerpt, log) = excerpt(&entries, Some("nginx"));
        assert_eq!(excerpt.len(), 2);
        assert!(excerpt[1].ends_with("outcome handshake-rejected: HTTP 426"));
        assert_eq!(log, ["==> access.log <==", "\"GET /echo HTTP/1.0\" 426"]);
        let (all, none) = super::excerpt(&entries, None);
        assert_eq!((all.len(), none.len()), (8, 0));
    }

    #[test]
    fn a_long_transcript_keeps_its_opening_and_its_end() {
        let entries: Vec<Entry> = (0..200)
            .map(|i| entry(i, "client", &format!("line {i}")))
            .collect();
        let (excerpt, _) = excerpt(&entries, None);
        assert_eq!(excerpt.len(), EXCERPT_LINES);
        assert!(excerpt[0].ends_with("line 0"));
        assert_eq!(
            excerpt[OPENING_LINES],
            "… 141 lines left out (--transcript prints them all) …"
        );
        assert!(excerpt[EXCERPT_LINES - 1].ends_with("line 199"));
    }
}
