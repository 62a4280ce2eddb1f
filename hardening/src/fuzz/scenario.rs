//! `scenario` and `scenario-run`: scenario files, generated from the format's grammar (every
//! key, with values valid, at the limits, or wrong), or taken from the catalogue, then
//! changed line by line and byte by byte.
//!
//! `scenario` holds `scenario::parse` and `scenario::load` to: no panic; a file refused is
//! refused at a place in it (line and column within the text, the excerpt its line) with a
//! message; `load` of the file written to disk says what `parse` of its text says; a file
//! accepted answers `time_limit` and `expected` for each of its schemes (each of its strategies'
//! cases).
//!
//! `scenario-run` runs, on the `sim` engine, every generated file `check` accepts whose runs
//! are cheap (a bounded number of messages, bytes and keepalive pings, no real program as a
//! hop), each scheme with its first seed: each run must end in an outcome (a harness error,
//! a panic in any host or a run past its time limit is a failure), and running the first
//! scheme again must give the same outcome, transcript and event log.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use gauntlet::engine::Engine;
use gauntlet::scenario::{self, Scenario, ScenarioError};
use gauntlet_proxies::{MODEL_NAMES, ModelSpec};
use proptest::prelude::*;

use super::inputs::{self, show_bytes};
use super::runner::Checked;

const OUTCOMES: &[&str] = &[
    "\"delivered\"",
    "\"handshake-rejected\"",
    "\"handshake-invalid\"",
    "\"handshake-timeout\"",
    "\"connect-refused\"",
    "\"tls-failed\"",
    "\"dropped\"",
    "\"idle-closed\"",
    "\"stalled\"",
    "\"degraded\"",
    "\"fell-back\"",
    "\"corrupted\"",
    "\"nope\"",
];

/// What a mild file runs: its `[client]` line, and the keys `[expect]` needs.
const RUNS: &[(&str, &[&str])] = &[
    ("schemes = [\"ws\"]", &["ws"]),
    ("schemes = [\"wss\"]", &["wss"]),
    ("schemes = [\"ws\", \"wss\"]", &["ws", "wss"]),
    (
        "strategies = [\"ws-then-wss\", \"polling-then-upgrade\"]",
        &["ws-then-wss", "polling-then-upgrade"],
    ),
    (
        "strategies = [\"ws\", \"websocket-then-polling\"]",
        &["ws", "websocket-then-polling"],
    ),
];

/// A `key = value` line, `value` drawn from `values`, present with probability `p`.
fn line(
    p: f64,
    key: &'static str,
    values: &'static [&'static str],
) -> BoxedStrategy<Option<String>> {
    if p <= 0.0 {
        return Just(None).boxed();
    }
    prop::option::weighted(p, prop::sample::select(values))
        .prop_map(move |v| v.map(|v| format!("{key} = {v}")))
        .boxed()
}

fn lines(parts: Vec<BoxedStrategy<Option<String>>>) -> BoxedStrategy<String> {
    parts
        .prop_map(|ls| ls.into_iter().flatten().collect::<Vec<_>>().join("\n"))
        .boxed()
}

/// Small values for a run to stay cheap; `wild` adds values at and past the limits.
fn ms(wild: bool) -> &'static [&'static str] {
    if wild {
        &[
            "0",
            "1",
            "100",
            "5000",
            "31536000000",
            "31536000001",
            "18446744073709551615",
            "-5",
            "1.5",
            "\"10\"",
        ]
    } else {
        &["1", "5", "20", "100", "1000", "5000"]
    }
}

/// A scenario file from the grammar. `wild`: values at and past every limit, often.
fn grammar(wild: bool) -> BoxedStrategy<String> {
    let p = if wild { 0.5 } else { 0.3 };
    let top = lines(vec![
        line(
            0.97,
            "format",
            if wild {
                &["1", "1", "2", "0", "\"1\""]
            } else {
                &["1"]
            },
        ),
        line(
            0.97,
            "title",
            if wild {
                &["\"a generated scenario\"", "\"\"", "\"  \""]
            } else {
                &["\"a generated scenario\""]
            },
        ),
        line(
            0.97,
            "source",
            if wild {
                &["\"the fuzz campaign\"", "\"\""]
            } else {
                &["\"the fuzz campaign\""]
            },
        ),
        line(
            p,
            "tags",
            if wild {
                &["[\"fuzz\"]", "[]", "[1]"]
            } else {
                &["[\"fuzz\"]", "[]"]
            },
        ),
        line(
            p,
            "seeds",
            if wild {
                &["[1]", "[1, 2]", "[]", "[18446744073709551615]", "[-1]", "1"]
            } else {
                &["[1]", "[7]", "[1, 2]"]
            },
        ),
        line(
            0.05,
            "twin",
            &["\"nowhere.toml\"", "\"../baseline/pass.toml\""],
        ),
    ]);
    let network = lines(vec![
        line(0.6, "latency-ms", ms(wild)),
        line(
            0.4,
            "jitter-ms",
            if wild { ms(true) } else { &["0", "1", "5"] },
        ),
        line(if wild { 0.03 } else { 0.0 }, "bandwidth", &["1"]),
    ])
    .prop_map(|body| {
        if body.is_empty() {
            body
        } else {
            format!("[network]\n{body}")
        }
    });
    let hop = prop::sample::select(MODEL_NAMES)
        .prop_flat_map(move |m| {
            if wild {
                super::models::table(m)
            } else {
                prop_oneof![2 => super::models::curated_table(m), 1 => super::models::table(m)]
                    .boxed()
            }
        })
        .prop_map(|t| format!("[[path]]\n{t}"));
    let hops = prop::collection::vec(hop, 0..=3).prop_map(|h| h.join("\n"));
    let hops = if wild {
        prop_oneof![
            20 => hops,
            1 => Just("[[path]]\nproduct = \"nginx\"\ntemplate = \"missing.conf\"".to_string()),
            1 => Just("[[path]]\ncommand = \"my-proxy --listen {listen} --upstream {upstream}\"".to_string()),
            1 => Just("[[path]]\nnot-model = 1".to_string()),
        ]
        .boxed()
    } else {
        hops.boxed()
    };
    let faults = prop::option::weighted(
        0.1,
        (
            prop::sample::select(ms(wild)),
            prop::sample::select(&["\"server\"", "\"server1\"", "\"hop1\"", "\"x\""]),
        ),
    )
    .prop_map(|f| {
        f.map_or(String::new(), |(at, crash)| {
            format!("[[faults]]\nat-ms = {at}\ncrash = {crash}")
        })
    });
    let client = lines(vec![
        line(
            if wild { 0.97 } else { 0.0 },
            "schemes",
            &[
                "[\"ws\"]",
                "[\"wss\"]",
                "[\"ws\", \"wss\"]",
                "[]",
                "[\"ws\", \"ws\"]",
                "[\"http\"]",
            ],
        ),
        line(
            p,
            "route",
            if wild {
                &[
                    "\"transparent\"",
                    "\"direct\"",
                    "\"explicit\"",
                    "\"sideways\"",
                ]
            } else {
                &["\"transparent\"", "\"direct\"", "\"explicit\""]
            },
        ),
        line(
            if wild { 0.05 } else { 0.0 },
            "strategies",
            &[
                "[\"ws\", \"polling-then-upgrade\"]",
                "[\"websocket-then-polling\"]",
                "[]",
                "[\"ws-then-wss\", \"ws-then-wss\"]",
                "[\"long-polling\"]",
            ],
        ),
        line(p, "handshake-timeout-ms", ms(wild)),
        line(
            p / 2.0,
            "ping-interval-ms",
            if wild {
                ms(true)
            } else {
                &["50", "100", "1000"]
            },
        ),
        line(0.05, "proxy-credentials", &["\"user:pass\"", "\"nocolon\""]),
        line(0.05, "mask", &["false", "true"]),
        line(
            0.05,
            "path-prefix",
            &["\"/ws\"", "\"ws\"", "\"/ws/\"", "\"/a b\""],
        ),
    ]);
    let workload = lines(vec![
        line(
            0.7,
            "kind",
            if wild {
                &[
                    "\"echo\"",
                    "\"echo\"",
                    "\"push\"",
                    "\"smuggle\"",
                    "\"pull\"",
                ]
            } else {
                &["\"echo\"", "\"echo\"", "\"push\"", "\"smuggle\""]
            },
        ),
        line(
            p,
            "messages",
            if wild {
                &["0", "1", "3", "1000000", "1000001", "-1"]
            } else {
                &["1", "2", "3", "5"]
            },
        ),
        line(
            p,
            "interval-ms",
            if wild {
                ms(true)
            } else {
                &["0", "1", "10", "100"]
            },
        ),
        line(
            p,
            "payload-bytes",
            if wild {
                &["0", "1", "125", "126", "65536", "16777216", "16777217"]
            } else {
                &["0", "1", "32", "125", "126", "1000"]
            },
        ),
        line(p, "reply-timeout-ms", ms(wild)),
        line(
            p / 2.0,
            "idle",
            &[
                "[{ after-message = 1, ms = 100 }]",
                "[{ after-message = 0, ms = 5000 }, { after-message = 1, ms = 10 }]",
                "[{ after-message = 9, ms = 1 }]",
                "[{ after-message = 2, ms = 1 }, { after-message = 1, ms = 1 }]",
                "[{ after-message = 1, ms = 31536000000 }]",
            ],
        ),
        line(p / 2.0, "binary", &["true", "false"]),
        line(p / 2.0, "fragment-bytes", &["1", "10", "0", "16777217"]),
        line(p / 2.0, "server-fragment-bytes", &["1", "7", "0"]),
        line(
            p / 2.0,
            "close-code",
            &["1000", "1001", "4000", "1005", "999", "70000"],
        ),
        line(
            p / 2.0,
            "server-close-code",
            &["1000", "1011", "3000", "1006"],
        ),
    ])
    .prop_map(|body| {
        if body.is_empty() {
            body
        } else {
            format!("[client.workload]\n{body}")
        }
    });
    // Mild files list schemes or strategies and give each an outcome; wild ones may not agree.
    let outcomes: &'static [&'static str] = if wild { OUTCOMES } else { &OUTCOMES[..12] };
    let expect = if wild {
        (
            Just(String::new()),
            lines(vec![
                line(0.9, "ws", OUTCOMES),
                line(0.9, "wss", OUTCOMES),
                line(0.05, "polling-then-upgrade", OUTCOMES),
                line(0.05, "websocket-then-polling", OUTCOMES),
            ]),
        )
            .boxed()
    } else {
        (
            prop::sample::select(RUNS),
            prop::sample::select(outcomes),
            prop::sample::select(outcomes),
        )
            .prop_map(|((listed, keys), a, b)| {
                let expect: Vec<String> = keys
                    .iter()
                    .zip([a, b])
                    .map(|(key, outcome)| format!("{key} = {outcome}"))
                    .collect();
                (listed.to_string(), expect.join("\n"))
            })
            .boxed()
    };
    let bounds = lines(vec![
        line(0.5, "latency-p50-ms", ms(wild)),
        line(0.3, "latency-max-ms", ms(wild)),
        line(0.3, "handshake-ms", ms(wild)),
    ]);
    let bounds = prop::option::weighted(0.1, bounds)
        .prop_map(|b| b.map_or(String::new(), |b| format!("[bounds]\n{b}")));
    (top, network, hops, faults, client, workload, expect, bounds)
        .prop_map(
            |(top, network, hops, faults, client, workload, (schemes, expect), bounds)| {
                let client = [schemes, client]
                    .into_iter()
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
                    .join("\n");
                [
                    top,
                    network,
                    hops,
                    faults,
                    format!("[client]\n{client}"),
                    workload,
                    format!("[expect]\n{expect}"),
                    bounds,
                ]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join("\n")
                    + "\n"
            },
        )
        .boxed()
}

/// A change to a file's lines.
#[derive(Debug, Clone)]
enum LineEdit {
    Delete(usize),
    Duplicate(usize),
    Swap(usize, usize),
    /// Replace the value of the line's `key = value` with this.
    Value(usize, &'static str),
}

const ODD_VALUES: &[&str] = &[
    "0",
    "-1",
    "18446744073709551616",
    "1e400",
    "nan",
    "\"\"",
    "[]",
    "{}",
    "[[]]",
    "true",
    "\"\u{e9}\"",
    "'''\nx\n'''",
    "{ a.b.c = 1 }",
    "2024-01-01T00:00:00Z",
];

fn line_edit() -> impl Strategy<Value = LineEdit> {
    prop_oneof![
        2 => any::<usize>().prop_map(LineEdit::Delete),
        1 => any::<usize>().prop_map(LineEdit::Duplicate),
        2 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| LineEdit::Swap(a, b)),
        3 => (any::<usize>(), prop::sample::select(ODD_VALUES)).prop_map(|(a, v)| LineEdit::Value(a, v)),
    ]
}

fn edit_lines(text: &str, edits: &[LineEdit]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for e in edits {
        let n = lines.len();
        if n == 0 {
            break;
        }
        match *e {
            LineEdit::Delete(i) => {
                lines.remove(i % n);
            }
            LineEdit::Duplicate(i) => {
                let l = lines[i % n].clone();
                lines.insert(i % n, l);
            }
            LineEdit::Swap(a, b) => lines.swap(a % n, b % n),
            LineEdit::Value(i, v) => {
                let l = &mut lines[i % n];
                if let Some(eq) = l.find(" = ") {
                    l.truncate(eq + 3);
                    l.push_str(v);
                }
            }
        }
    }
    lines.join("\n") + "\n"
}

/// One case: where the text came from (for the report), and its bytes.
#[derive(Debug, Clone)]
pub struct ScenarioCase {
    from: String,
    bytes: Vec<u8>,
}

/// The catalogue's scenario files, read once: (path, text).
pub fn catalogue(root: &Path) -> Vec<(String, String)> {
    let mut files = gauntlet::run::suite::find_files(&[root.join("scenarios")]).unwrap_or_default();
    files.sort();
    files
        .into_iter()
        .filter_map(|f| {
            let text = std::fs::read_to_string(&f).ok()?;
            let rel = f.strip_prefix(root).unwrap_or(&f).display().to_string();
            Some((rel, text))
        })
        .collect()
}

/// Files from the grammar or the catalogue, with line edits and byte mutations; fewer edits
/// when `runnable` (for `scenario-run`, which runs what is accepted).
pub fn case(
    catalogue: Vec<(String, String)>,
    runnable: bool,
) -> impl Strategy<Value = ScenarioCase> {
    let from_grammar = if runnable {
        grammar(false).boxed()
    } else {
        prop_oneof![grammar(false), grammar(true)].boxed()
    }
    .prop_map(|t| ("the grammar".to_string(), t));
    let source = if catalogue.is_empty() {
        from_grammar.boxed()
    } else {
        prop_oneof![
            3 => from_grammar,
            1 => prop::sample::select(catalogue).prop_map(|(f, t)| (f, t)),
        ]
        .boxed()
    };
    let edit_odds = if runnable { (6, 1) } else { (1, 1) };
    let edits = prop_oneof![
        edit_odds.0 => Just(Vec::new()),
        edit_odds.1 => prop::collection::vec(line_edit(), 1..4),
    ];
    let byte_odds = if runnable { (20, 1) } else { (6, 1) };
    let bytes = prop_oneof![
        byte_odds.0 => Just(Vec::new()),
        byte_odds.1 => prop::collection::vec(any::<(usize, u8)>(), 1..4),
    ];
    (source, edits, bytes).prop_map(|((from, text), edits, flips)| {
        let mut bytes = edit_lines(&text, &edits).into_bytes();
        for (at, b) in flips {
            inputs::mutate(&mut bytes, &inputs::Mutation::Flip(at, b.max(1)));
        }
        ScenarioCase { from, bytes }
    })
}

pub fn show(c: &ScenarioCase) -> String {
    let text = match std::str::from_utf8(&c.bytes) {
        Ok(t) => t.to_string(),
        Err(_) => show_bytes(&c.bytes),
    };
    format!("a file from {} ({} bytes):\n{text}", c.from, c.bytes.len())
}

/// What is wrong with an error's location, if anything.
fn located(e: &ScenarioError, text: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let line_count = lines.len().max(1);
    if e.line == 0 || e.col == 0 || e.line > line_count + 1 {
        return Some(format!(
            "located at {}:{} in a file of {line_count} lines",
            e.line, e.col
        ));
    }
    let line = lines.get(e.line - 1).copied().unwrap_or("");
    if e.col > line.chars().count() + 1 {
        return Some(format!(
            "column {} past the end of line {} ({} characters)",
            e.col,
            e.line,
            line.chars().count()
        ));
    }
    if let Some(x) = &e.excerpt {
        if x != line {
            return Some(format!("the excerpt {x:?} is not line {} {line:?}", e.line));
        }
    }
    if e.message.trim().is_empty() {
        return Some("an empty message".into());
    }
    None
}

/// The check of `scenario`: parse, load, and what a refusal or an acceptance must give.
pub fn check_parse(c: &ScenarioCase, scratch: &Path) -> Checked {
    let path = scratch.join("fuzz-scenario.toml");
    std::fs::write(&path, &c.bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let loaded = scenario::load(&path);
    let name = path.display().to_string();
    let Ok(text) = std::str::from_utf8(&c.bytes) else {
        return match loaded {
            Err(e) if e.message.contains("not UTF-8") => Ok("not UTF-8"),
            other => Err(format!("a file that is not UTF-8 loaded as {other:?}")),
        };
    };
    let parsed = scenario::parse(&name, text);
    if parsed != loaded {
        return Err(format!("parse gave {parsed:?}\nload gave {loaded:?}"));
    }
    match parsed {
        Err(e) => {
            let _ = e.to_string();
            match located(&e, text) {
                Some(what) => Err(format!("{what}: {e}")),
                None => Ok("refused"),
            }
        }
        Ok(s) => {
            for case in s.cases() {
                let _ = case.time_limit();
                for &scheme in &case.client.schemes {
                    if case.expected(scheme).is_none() {
                        let name = case.case_name(scheme);
                        return Err(format!("no expected outcome for {name}, which it runs"));
                    }
                }
            }
            Ok("accepted")
        }
    }
}

/// Whether `s`'s runs are cheap enough for `scenario-run`, or why not.
fn cheap(s: &Scenario) -> Result<(), &'static str> {
    // A real program as a hop or as the server (`[server] command`): the live engine's.
    if s.needs_live() {
        return Err("real program as a hop or the server");
    }
    let w = &s.client.workload;
    if w.messages > 50
        || w.payload_bytes > 128 << 10
        || u64::from(w.messages) * w.payload_bytes as u64 > 1 << 20
    {
        return Err("too many bytes");
    }
    if w.fragment_bytes.is_some_and(|f| w.payload_bytes / f > 4096)
        || w.server_fragment_bytes
            .is_some_and(|f| w.payload_bytes / f > 4096)
    {
        return Err("too many fragments");
    }
    let limit = s.time_limit();
    if let Some(every) = s.client.ping_interval {
        if limit.as_millis() / every.as_millis().max(1) > 20_000 {
            return Err("too many pings");
        }
    }
    // An Engine.IO session hears the server's ping every `pingInterval` while it lasts.
    let heartbeat = gauntlet::endpoints::engineio::Options::default().ping_interval;
    if s.client.strategies.iter().any(|st| st.kind.engineio())
        && limit.as_millis() / heartbeat.as_millis().max(1) > 20_000
    {
        return Err("too many Engine.IO heartbeats");
    }
    for hop in &s.path {
        if let Some(ModelSpec::BufferingProxy(p)) = hop.model() {
            if p.flush_interval
                .is_some_and(|f| limit.as_millis() / f.as_millis().max(1) > 20_000)
            {
                return Err("too many flushes");
            }
        }
    }
    Ok(())
}

/// The check of `scenario-run`.
pub fn check_run(c: &ScenarioCase, engine: &dyn Engine) -> Checked {
    let Ok(text) = std::str::from_utf8(&c.bytes) else {
        return Ok("not UTF-8");
    };
    // The catalogue's files keep their path, so that what they name beside them is found.
    let name = if c.from == "the grammar" {
        "scenarios/fuzz/generated.toml".to_string()
    } else {
        c.from.clone()
    };
    let s = match scenario::parse(&name, text) {
        Ok(s) => s,
        Err(_) => return Ok("refused"),
    };
    if let Err(why) = cheap(&s) {
        let _ = why;
        return Ok("accepted, not run");
    }
    let seed = s.seeds[0];
    let mut first = None;
    // A file of strategies runs a scenario per strategy.
    for case in s.cases() {
        for &scheme in &case.client.schemes {
            let out = gauntlet::run::run(engine, &case, scheme, seed).map_err(|e| {
                let name = case.case_name(scheme);
                format!("{name} seed {seed}: the run failed: {e:#}")
            })?;
            if first.is_none() {
                first = Some((case.clone(), out));
            }
        }
    }
    if let Some((s, a)) = first {
        let b = gauntlet::run::run(engine, &s, a.scheme, seed)
            .map_err(|e| format!("{} seed {seed}, again: the run failed: {e:#}", a.scheme))?;
        let (ta, tb) = (a.rendered(), b.rendered());
        if a.report != b.report || ta != tb || a.events.hash() != b.events.hash() {
            let mut why = format!(
                "{} seed {seed} twice: {} / {}, events {} / {}",
                a.scheme,
                a.report.detail,
                b.report.detail,
                a.events.hash(),
                b.events.hash()
            );
            if let Some((i, (x, y))) = ta
                .lines()
                .zip(tb.lines())
                .enumerate()
                .find(|(_, (x, y))| x != y)
            {
                let _ = write!(why, "\ntranscripts differ at line {}:\n  {x}\n  {y}", i + 1);
            }
            return Err(why);
        }
    }
    Ok("run on sim")
}

/// The scratch folder for files the campaigns write.
pub fn scratch(root: &Path) -> std::io::Result<PathBuf> {
    let dir = root.join("target/gauntlet/fuzz");
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The engine `scenario-run` uses.
pub fn sim() -> Box<dyn Engine> {
    gauntlet::engine::by_name("sim").expect("the sim engine exists")
}
