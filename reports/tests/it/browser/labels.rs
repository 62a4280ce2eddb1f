//! Whole labels: every `<text>` of every chart laid out inside its `<svg>`'s viewport (an
//! `<svg>` in a page clips what falls outside it) and clear of every other `<text>` of the
//! chart, measured in the browser with the boxes Chromium laid the glyphs out in.

use serde_json::Value;

/// Evaluated in the page: the number of `<text>` elements, and one line per label that
/// sticks out of its chart or overlaps another. A label is named by its own text (not a
/// `<title>` inside it) and its chart by the start of the chart's `<title>`. A box may cross
/// an edge or another box by `slack` CSS pixels (less than a tenth of a glyph) before it
/// counts, for coordinates rounded to one decimal.
pub(super) const MEASURE: &str = r#"(() => {
    const slack = 0.5;
    const own = t => [...t.childNodes]
        .filter(n => n.nodeType === Node.TEXT_NODE || n.nodeName === 'tspan')
        .map(n => n.textContent).join('');
    const problems = [];
    let texts = 0;
    document.querySelectorAll('svg').forEach((svg, i) => {
        const title = svg.querySelector(':scope > title');
        const chart = `chart ${i + 1} ("${(title ? title.textContent : '').slice(0, 30)}…")`;
        const view = svg.getBoundingClientRect();
        const boxes = [...svg.querySelectorAll('text')]
            .map(t => ({ text: own(t), r: t.getBoundingClientRect() }));
        texts += boxes.length;
        for (const { text, r } of boxes) {
            const out = Math.max(view.left - r.left, r.right - view.right,
                view.top - r.top, r.bottom - view.bottom);
            if (out > slack) {
                problems.push(`${chart}: "${text}" is cut off, ${out.toFixed(1)} px outside the chart`);
            }
        }
        boxes.sort((a, b) => a.r.top - b.r.top);
        for (let a = 0; a < boxes.length; a++) {
            for (let b = a + 1; b < boxes.length && boxes[b].r.top < boxes[a].r.bottom - slack; b++) {
                const [p, q] = [boxes[a].r, boxes[b].r];
                const across = Math.min(p.right, q.right) - Math.max(p.left, q.left);
                const down = Math.min(p.bottom, q.bottom) - Math.max(p.top, q.top);
                if (across > slack && down > slack) {
                    problems.push(`${chart}: "${boxes[a].text}" and "${boxes[b].text}" overlap`);
                }
            }
        }
    });
    return { texts, problems };
})()"#;

/// A chart for the probe page with one label of each fault [`MEASURE`] must find: one
/// sticking out of the right edge, and two on top of each other.
pub(super) const PROBE: &str = r#"<svg width="100" height="40" viewBox="0 0 100 40" font-size="12">
<title>probe chart</title>
<text x="60" y="15">cut off at the edge</text>
<text x="4" y="34">one</text><text x="10" y="34">two</text>
</svg>"#;

/// The problems [`MEASURE`] found, and how many labels it looked at.
pub(super) fn problems(measured: &Value) -> (u64, Vec<String>) {
    let texts = measured["texts"].as_u64().expect("a count of labels");
    let problems = measured["problems"]
        .as_array()
        .expect("a list of problems")
        .iter()
        .map(|p| p.as_str().expect("a problem is a line").to_string())
        .collect();
    (texts, problems)
}

/// Panics with the first problems when there are any.
pub(super) fn assert_whole(texts: u64, problems: &[String]) {
    const SHOWN: usize = 20;
    assert!(
        problems.is_empty(),
        "{} of the charts' {texts} labels are not whole{}:\n{}",
        problems.len(),
        if problems.len() > SHOWN {
            format!(" (the first {SHOWN})")
        } else {
            String::new()
        },
        problems[..problems.len().min(SHOWN)].join("\n")
    );
}
