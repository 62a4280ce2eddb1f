//! `gauntlet conformance`: the gate suite, quick, through every configuration of
//! [`g::CONFIGURATIONS`] (real products), rendered by `gauntlet_reports::conformance` into the
//! committed `reports/CONFORMANCE.md` and `reports/conformance.html`, or checked against them.

use std::collections::BTreeMap;

use gauntlet::real::gate::{self as g, Proxy, QUICK_QUIET};
use gauntlet_reports::conformance::{self as c, Column, Note};

use crate::*;

/// `gauntlet conformance`'s flags.
#[derive(Debug, clap::Args)]
pub(crate) struct ConformanceArgs {
    /// The Markdown page to write (or check).
    #[arg(long, value_name = "FILE", default_value = "reports/CONFORMANCE.md")]
    markdown: PathBuf,
    /// The HTML page to write (not checked: it holds the same cells).
    #[arg(long, value_name = "FILE", default_value = "reports/conformance.html")]
    html: PathBuf,
    /// The notes on failing cells (TOML: `[[note]]` tables of column, behaviours, kind,
    /// text, reproduction).
    #[arg(
        long,
        value_name = "FILE",
        default_value = "reports/conformance-notes.toml"
    )]
    notes: PathBuf,
    /// Write nothing: exit 1 if a cell differs from the committed Markdown page.
    #[arg(long)]
    check: bool,
    /// Gate these columns only (repeatable): with --check, only their cells are compared;
    /// without, the pages written hold only them.
    #[arg(long, value_name = "COLUMN")]
    only: Vec<String>,
    /// Behaviours run at a time, each with its own product process.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..))]
    jobs: u64,
    /// Where each column's results and version go as JSON (COLUMN.json), for --from.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "target/gauntlet/conformance"
    )]
    results: PathBuf,
    /// Gate nothing: render (or check) from the results an earlier run left in --results
    /// (after editing the notes, say).
    #[arg(long)]
    from_results: bool,
}

/// The most behaviours at a time through mitmproxy.
const MITMPROXY_JOBS: u64 = 2;

/// A column's results as --results keeps them.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Saved {
    version: String,
    results: gauntlet_reports::Results,
}

/// The notes file's shape.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NotesFile {
    #[serde(default)]
    note: Vec<Note>,
}

/// The column of `cfg`, with what the gate saw.
fn column(cfg: &g::Configuration, version: String, results: gauntlet_reports::Results) -> Column {
    Column {
        id: cfg.column.to_string(),
        product: cfg.product.name().to_string(),
        template: cfg.built_in.template.to_string(),
        documented: cfg.documented,
        version,
        results,
    }
}

/// `gauntlet conformance`.
pub(crate) fn conformance(args: &ConformanceArgs) -> anyhow::Result<ExitCode> {
    let chosen: Vec<&g::Configuration> = g::CONFIGURATIONS
        .iter()
        .filter(|cfg| args.only.is_empty() || args.only.iter().any(|o| o == cfg.column))
        .collect();
    for only in &args.only {
        if !g::CONFIGURATIONS.iter().any(|cfg| cfg.column == *only) {
            let known: Vec<&str> = g::CONFIGURATIONS.iter().map(|c| c.column).collect();
            anyhow::bail!(
                "--only {only}: no such column (known: {})",
                known.join(", ")
            );
        }
    }
    // Every product first: a missing one is an error that says what to install, before any
    // is gated.
    let mut missing = Vec::new();
    let mut versions = BTreeMap::new();
    for cfg in chosen.iter().filter(|_| !args.from_results) {
        match cfg.product.version() {
            Ok(v) => {
                versions.insert(cfg.product, v);
            }
            Err(e) => missing.push(e.to_string()),
        }
    }
    missing.dedup();
    if !missing.is_empty() {
        for m in &missing {
            errln!("{m}");
        }
        anyhow::bail!(
            "{} of the matrix cannot run: install it as said above",
            plural(missing.len(), "product")
        );
    }
    let notes: Vec<Note> = match std::fs::read_to_string(&args.notes) {
        Ok(text) => {
            toml::from_str::<NotesFile>(&text)
                .with_context(|| format!("reading {}", args.notes.display()))?
                .note
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", args.notes.display())),
    };
    let mut columns = Vec::new();
    for cfg in chosen {
        let saved_at = args.results.join(format!("{}.json", cfg.column));
        if args.from_results {
            let text = std::fs::read_to_string(&saved_at)
                .with_context(|| format!("reading {}", saved_at.display()))?;
            let saved: Saved = serde_json::from_str(&text)
                .with_context(|| format!("reading {}", saved_at.display()))?;
            columns.push(column(cfg, saved.version, saved.results));
            continue;
        }
        // Wall time, for the line that says how long the column took: the runner's.
        #[allow(clippy::disallowed_methods)]
        let started = std::time::Instant::now();
        let gate = g::ProductGate::configured(
            cfg.product,
            cfg.built_in,
            BTreeMap::new(),
            &std::env::temp_dir(),
        )?;
        let proxy = Proxy::Product(gate);
        let schemes = g::schemes(&proxy);
        let mut scenarios = g::load(&g::Suite::BuiltIn, &proxy).map_err(|errors| {
            anyhow::anyhow!(
                "the built-in suite: {}",
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        })?;
        g::set_quiet(&mut scenarios, QUICK_QUIET);
        g::preflight(&proxy)
            .map_err(|e| anyhow::anyhow!("{}: the product did not start: {e}", cfg.column))?;
        // mitmproxy is Python: eight at once on two cores made its TLS handshakes of 100
        // concurrent sessions slower than the client's 5 s budget, a verdict of the load
        // rather than of the product.
        let jobs = match cfg.product {
            gauntlet::real::product::Product::Mitmproxy => args.jobs.min(MITMPROXY_JOBS),
            _ => args.jobs,
        };
        let results = g::run(&scenarios, schemes, jobs as usize, |_, _, _| {});
        let (passed, failed) = results.tally();
        outln!(
            "{:<24} {passed:>3} passed, {failed:>3} failed  ({:.0} s)",
            cfg.column,
            started.elapsed().as_secs_f64()
        );
        let errors = results.runs.iter().filter(|r| r.outcome == "harness-error");
        if let Some(e) = errors.clone().next() {
            anyhow::bail!(
                "{}: {} could not run: {}",
                cfg.column,
                plural(errors.count(), "behaviour"),
                e.detail
            );
        }
        let version: String = versions[&cfg.product].clone();
        let saved = Saved { version, results };
        let json = serde_json::to_string_pretty(&saved)?;
        gauntlet::files::write_file(&saved_at, &json)
            .with_context(|| format!("writing {}", saved_at.display()))?;
        columns.push(column(cfg, saved.version, saved.results));
    }
    let committed = std::fs::read_to_string(&args.markdown).unwrap_or_default();
    let markdown = c::conformance_markdown(&columns, &notes);
    if args.check {
        let (old, new) = (c::cells(&committed), c::cells(&markdown));
        let ids: Vec<&str> = columns.iter().map(|col| col.id.as_str()).collect();
        let mut differ = 0;
        for (key, value) in &new {
            let was = old.get(key).map_or("(absent)", String::as_str);
            if was != value {
                differ += 1;
                outln!("{} {}: committed `{was}`, now `{value}`", key.1, key.0);
            }
        }
        for key in old.keys().filter(|k| ids.contains(&k.1.as_str())) {
            if !new.contains_key(key) {
                differ += 1;
                outln!("{} {}: committed, now not run", key.1, key.0);
            }
        }
        if differ > 0 {
            errln!(
                "{}: {} differ; run `cargo xtask conformance` and commit the pages",
                args.markdown.display(),
                plural(differ, "cell")
            );
            return Ok(ExitCode::from(1));
        }
        outln!("{}: every cell as committed", args.markdown.display());
        return Ok(ExitCode::SUCCESS);
    }
    gauntlet::files::write_file(&args.markdown, &markdown)
        .with_context(|| format!("writing {}", args.markdown.display()))?;
    gauntlet::files::write_file(&args.html, &c::conformance_html(&columns, &notes))
        .with_context(|| format!("writing {}", args.html.display()))?;
    outln!(
        "wrote {} and {}",
        args.markdown.display(),
        args.html.display()
    );
    Ok(ExitCode::SUCCESS)
}
