//! Reading a population file: its tables, each path's parameters (fixed or distributions),
//! and the check that every path makes a valid scenario with every strategy at the extremes
//! of its distributions. Mistakes are [`ScenarioError`]s located in the file.

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::dist::{Dist, Param};
use super::{CellSpec, PathDef, Population, Sweep, cells, run::scenario_text};
use crate::scenario::{self, FORMAT, MAX_FILE_BYTES, ScenarioError, locate};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawFile {
    format: Spanned<u32>,
    name: Option<Spanned<String>>,
    title: String,
    source: String,
    seed: Option<u64>,
    session: Option<Spanned<toml::Table>>,
    sweep: Option<RawSweep>,
    #[serde(default)]
    mark: Vec<RawMark>,
    #[serde(default)]
    calibration: Vec<Spanned<RawCalibration>>,
    #[serde(default)]
    path: Vec<Spanned<RawPath>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSweep {
    #[serde(default)]
    strategies: Vec<String>,
    #[serde(default)]
    ping_interval_ms: Vec<Spanned<u64>>,
    #[serde(default)]
    reconnect: Vec<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawMark {
    label: String,
    ms: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawCalibration {
    what: String,
    strategy: String,
    rate: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawPath {
    name: Spanned<String>,
    weight: Spanned<toml::Value>,
    source: Spanned<String>,
    route: Option<Spanned<String>>,
    #[serde(default)]
    network: Ordered,
    #[serde(default)]
    hop: Vec<Ordered>,
    #[serde(default)]
    faults: Vec<toml::Table>,
}

/// A table's keys in the file's order, each value with its place (a hop's first key says
/// what it is, so the order is kept).
#[derive(Default)]
struct Ordered(Vec<(String, Spanned<toml::Value>)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a table")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Ordered, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    out.push(entry);
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(Visitor)
    }
}

/// The shipped populations (every `*.toml` of `scenarios/populations/`), `(file name,
/// text)` sorted by name, built in so that an installed binary has them.
pub const BUILTIN: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/populations.rs"));

/// The populations `arg` names: a file, a folder's `*.toml` files in name order, or a
/// shipped population's name (`huang-2011`); `None` when it is none of these.
pub fn resolve(arg: &str) -> Option<Result<Vec<Population>, ScenarioError>> {
    let path = Path::new(arg);
    if path.is_file() {
        return Some(load(path).map(|p| vec![p]));
    }
    if path.is_dir() {
        let mut files: Vec<_> = std::fs::read_dir(path)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        return Some(files.iter().map(|f| load(f)).collect());
    }
    BUILTIN.iter().find_map(|(file, text)| {
        let stem = file.strip_suffix(".toml")?;
        (stem == arg)
            .then(|| parse(&format!("scenarios/populations/{file}"), text, stem).map(|p| vec![p]))
    })
}

/// Reads and checks the population file at `path`.
pub fn load(path: &Path) -> Result<Population, ScenarioError> {
    let file = path.display().to_string();
    let unreadable = |message: String| ScenarioError {
        file: file.clone(),
        line: 1,
        col: 1,
        message,
        excerpt: None,
    };
    let bytes = crate::files::read_file(path, MAX_FILE_BYTES, "a population file")
        .map_err(|e| unreadable(format!("cannot read the file: {e}")))?;
    let text =
        String::from_utf8(bytes).map_err(|e| unreadable(format!("the file is not UTF-8: {e}")))?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    parse(&file, &text, &stem)
}

/// Reads and checks a population file's `text`; `file` names it in errors and `stem` is its
/// name unless it gives one.
pub fn parse(file: &str, text: &str, stem: &str) -> Result<Population, ScenarioError> {
    let at = |offset: usize, message: String| locate(file, text, offset, message);
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        at(offset, e.message().trim_end().to_string())
    })?;
    if *raw.format.get_ref() != FORMAT {
        return Err(at(
            raw.format.span().start,
            format!("this build reads format {FORMAT}"),
        ));
    }
    let name = match &raw.name {
        Some(n) if n.get_ref().trim().is_empty() => {
            return Err(at(n.span().start, "`name` is empty".into()));
        }
        Some(n) => n.get_ref().clone(),
        None => stem.to_string(),
    };
    let session = match raw.session {
        Some(s) => {
            for key in ["schemes", "strategies", "route"] {
                if s.get_ref().contains_key(key) {
                    return Err(at(
                        s.span().start,
                        format!(
                            "`[session]` has no `{key}`: strategies come from `[sweep]` or the command line, the route from each path"
                        ),
                    ));
                }
            }
            s.into_inner()
        }
        None => toml::Table::new(),
    };
    let sweep = match raw.sweep {
        Some(s) => {
            for p in &s.ping_interval_ms {
                if *p.get_ref() == 0 {
                    return Err(at(
                        p.span().start,
                        "a ping interval is at least 1 ms".into(),
                    ));
                }
            }
            Sweep {
                strategies: s.strategies,
                ping_intervals: s
                    .ping_interval_ms
                    .into_iter()
                    .map(Spanned::into_inner)
                    .collect(),
                reconnect: s.reconnect,
            }
        }
        None => Sweep::default(),
    };
    let mut calibration = Vec::new();
    for c in raw.calibration {
        let span = c.span();
        let c = c.into_inner();
        if !(0.0..=1.0).contains(&c.rate) {
            return Err(at(
                span.start,
                "a calibration's `rate` is from 0 to 1".into(),
            ));
        }
        if !sweep.strategies.contains(&c.strategy) {
            return Err(at(
                span.start,
                format!(
                    "a calibration's strategy `{}` is not among `[sweep] strategies`",
                    c.strategy
                ),
            ));
        }
        calibration.push((c.what, c.strategy, c.rate));
    }
    if raw.path.is_empty() {
        return Err(at(
            text.len(),
            "a population needs at least one `[[path]]`".into(),
        ));
    }
    let mut paths = Vec::new();
    for p in raw.path {
        let span = p.span();
        let def = path(p.into_inner(), span.start, &at)?;
        if paths.iter().any(|q: &PathDef| q.name == def.name) {
            return Err(at(
                span.start,
                format!("a second path named `{}`", def.name),
            ));
        }
        paths.push(def);
    }
    let pop = Population {
        file: file.to_string(),
        text: text.to_string(),
        name,
        title: raw.title,
        source: raw.source,
        seed: raw.seed.unwrap_or(1),
        session,
        sweep,
        marks: raw.mark.into_iter().map(|m| (m.label, m.ms)).collect(),
        calibration,
        paths,
    };
    // The file's strategies, or plain ws, must run on every path; the command line's are
    // checked the same way before a run.
    let mut sweep = pop.sweep.clone();
    if sweep.strategies.is_empty() {
        sweep.strategies = vec!["ws".to_string()];
    }
    let specs = cells(&sweep).map_err(|e| at(0, e.to_string()))?;
    check(&pop, &specs)?;
    Ok(pop)
}

fn path(
    raw: RawPath,
    start: usize,
    at: &impl Fn(usize, String) -> ScenarioError,
) -> Result<PathDef, ScenarioError> {
    let weight = match raw.weight.get_ref() {
        toml::Value::Integer(i) => *i as f64,
        toml::Value::Float(f) => *f,
        _ => f64::NAN,
    };
    if !(weight.is_finite() && weight > 0.0) {
        return Err(at(
            raw.weight.span().start,
            "`weight` is a number above 0".into(),
        ));
    }
    if raw.source.get_ref().trim().is_empty() {
        return Err(at(
            raw.source.span().start,
            "`source` cites where the path's weight and parameters come from, or says `assumption: …`".into(),
        ));
    }
    let params = |table: Ordered| {
        table
            .0
            .into_iter()
            .map(|(k, v)| {
                let span = v.span();
                let param = match v.into_inner() {
                    toml::Value::Table(t) => match Dist::from_table(&t) {
                        Ok(Some(d)) => Param::Drawn(d),
                        Ok(None) => Param::Fixed(toml::Value::Table(t)),
                        Err(e) => return Err(at(span.start, format!("`{k}`: {e}"))),
                    },
                    other => Param::Fixed(other),
                };
                Ok((k, param))
            })
            .collect::<Result<Vec<_>, ScenarioError>>()
    };
    let network = params(raw.network)?;
    let hops = raw.hop.into_iter().map(params).collect::<Result<_, _>>()?;
    Ok(PathDef {
        name: raw.name.into_inner(),
        weight,
        source: raw.source.into_inner(),
        route: raw.route.map(Spanned::into_inner),
        network,
        hops,
        faults: raw.faults,
        at: start,
    })
}

/// Every path with every cell, each distribution at each of its extremes in turn, must
/// make a scenario that validates: a value a session may draw and no scenario accepts is an
/// error before anything runs, located at its path.
pub(crate) fn check(pop: &Population, specs: &[CellSpec]) -> Result<(), ScenarioError> {
    for path in &pop.paths {
        let extremes: Vec<Vec<i64>> = path.drawn().map(Dist::extremes).collect();
        let rounds = extremes.iter().map(Vec::len).max().unwrap_or(1).max(1);
        for round in 0..rounds {
            let draws: Vec<i64> = extremes.iter().map(|e| e[round.min(e.len() - 1)]).collect();
            for cell in specs {
                let text = scenario_text(pop, path, &draws, cell);
                if let Err(e) = scenario::parse(&pop.file, &text) {
                    let quoted = e
                        .excerpt
                        .map(|l| format!(" (`{}`)", l.trim()))
                        .unwrap_or_default();
                    return Err(locate(
                        &pop.file,
                        &pop.text,
                        path.at,
                        format!(
                            "path `{}` with strategy `{}` makes no valid scenario: {}{quoted}",
                            path.name, cell.name, e.message
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}
