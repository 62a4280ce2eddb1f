//! `gauntlet population` and `gauntlet merge`: sampled sessions of populations, each run
//! with every strategy ([`gauntlet::population`]); a shard's counts, and shards merged into
//! the bytes a run without shards writes; the report in JSON, Markdown and HTML.

use gauntlet::population::{
    self, BUILTIN, DEFAULT_SESSIONS, MAX_SESSIONS, Options, Population, strategy_names,
};
use gauntlet_reports::population::{
    Populations, Shard, from_json, population_html, population_markdown, to_json,
};

use crate::cli::diff::MAX_RESULTS_BYTES;
use crate::cli::report::write_or_check;
use crate::*;

/// Populations: sessions sampled from weighted mixes of network paths (shipped:
/// scenarios/populations, by name), each run with every strategy on the simulated
/// engine; per strategy the success rate with its Wilson 95% interval, the outcomes,
/// time to the first message, messages lost and reconnections. Writes
/// populations.json, .md and .html.
///
/// Example: gauntlet population huang-2011 ws wss long-polling ws-then-wss
/// Example: gauntlet population cloud-balancers ws --ping-interval-ms 20000,50000,70000
/// Example (shards, e.g. a CI matrix or a Kubernetes Indexed Job's index as I):
/// gauntlet population huang-2011 --shard I/4 --out shards, then
/// gauntlet merge shards/populations.shard-*.json
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct PopulationArgs {
    /// Populations (a file, or a shipped one's name: see below) and strategies (ws, wss,
    /// long-polling, polling-then-upgrade, ws-then-wss, …), in any order. Without
    /// strategies, each population's `[sweep] strategies`.
    #[arg(required = true, value_name = "POPULATION|STRATEGY")]
    names: Vec<String>,
    /// Sessions sampled per population, each run with every strategy. The default puts a
    /// rate's 95% interval within ±1 point.
    #[arg(long, default_value_t = DEFAULT_SESSIONS, value_parser = clap::value_parser!(u64).range(1..=MAX_SESSIONS))]
    sessions: u64,
    /// WebSocket ping intervals to sweep, in milliseconds, comma-separated (default: each
    /// population's `[sweep] ping-interval-ms`; `none` for no sweep).
    #[arg(long, value_name = "MS,MS,…")]
    ping_interval_ms: Option<String>,
    /// Sessions reconnect after a failure with socket.io-client's backoff (`yes`), do not
    /// (`no`), or both, a cell each (default: each population's `[sweep] reconnect`).
    #[arg(long, value_enum)]
    reconnect: Option<Reconnect>,
    /// Threads (default: the number of cores).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1024))]
    jobs: Option<u64>,
    /// Run only the sessions of shard I of N (`i % N == I`, from 0) and write their counts
    /// for `gauntlet merge`.
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    shard: Option<Shard>,
    /// Where to write populations.json, populations.md and populations.html (a shard
    /// writes populations.shard-I-of-N.json alone).
    #[arg(
        long,
        value_name = "DIR",
        default_value = "target/gauntlet/populations"
    )]
    out: PathBuf,
    /// Also write the Markdown report here (with --check: compare it with this file).
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
    /// Also write the HTML report here (with --check: compare it with this file).
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Leave --markdown and --html alone and exit 1 if either is stale.
    #[arg(long)]
    check: bool,
    /// How to name this command in the reports.
    #[arg(long, hide = true, default_value = "gauntlet population")]
    invoked_as: String,
}

/// `--reconnect`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Reconnect {
    Yes,
    No,
    Both,
}

/// Merges the shards of one `gauntlet population` run into the files the run without
/// shards writes, byte for byte.
#[derive(Debug, clap::Args)]
pub(crate) struct MergeArgs {
    /// Every shard's JSON, as `gauntlet population --shard` wrote them.
    #[arg(required = true, value_name = "SHARD.json")]
    shards: Vec<PathBuf>,
    /// Where to write populations.json, populations.md and populations.html.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "target/gauntlet/populations"
    )]
    out: PathBuf,
    /// How to name the run in the reports.
    #[arg(long, hide = true, default_value = "gauntlet population")]
    invoked_as: String,
}

fn parse_shard(s: &str) -> Result<Shard, String> {
    let bad = || format!("`{s}` is not a shard: write I/N, with 0 <= I < N, e.g. 0/4");
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (index, count) = (
        i.trim().parse::<u64>().map_err(|_| bad())?,
        n.trim().parse::<u64>().map_err(|_| bad())?,
    );
    if count == 0 || index >= count {
        return Err(bad());
    }
    Ok(Shard { index, count })
}

pub(crate) fn population_cmd(args: &PopulationArgs) -> anyhow::Result<ExitCode> {
    let mut pops: Vec<Population> = Vec::new();
    let mut strategies = Vec::new();
    let known = strategy_names();
    for name in &args.names {
        if known.contains(&name.as_str()) {
            strategies.push(name.clone());
            continue;
        }
        match population::resolve(name) {
            Some(Ok(p)) => pops.extend(p),
            Some(Err(e)) => {
                errln!("{e}");
                return Ok(ExitCode::from(2));
            }
            None => {
                let shipped: Vec<&str> = BUILTIN
                    .iter()
                    .filter_map(|(f, _)| f.strip_suffix(".toml"))
                    .collect();
                errln!(
                    "error: `{name}` is no file, no shipped population ({}) and no strategy ({})",
                    shipped.join(", "),
                    known.join(", ")
                );
                return Ok(ExitCode::from(2));
            }
        }
    }
    if pops.is_empty() {
        errln!("error: name at least one population (a file or a shipped one's name)");
        return Ok(ExitCode::from(2));
    }
    let ping_intervals = match args.ping_interval_ms.as_deref() {
        None => None,
        Some("none") => Some(Vec::new()),
        Some(list) => Some(
            list.split(',')
                .map(|v| match v.trim().parse::<u64>() {
                    Ok(ms) if ms > 0 => Ok(ms),
                    _ => Err(anyhow::anyhow!(
                        "--ping-interval-ms: `{v}` is not a number of milliseconds above 0"
                    )),
                })
                .collect::<anyhow::Result<Vec<u64>>>()?,
        ),
    };
    let opts = Options {
        sessions: args.sessions,
        shard: args.shard,
        jobs: cores(args.jobs),
        strategies,
        ping_intervals,
        reconnect: args.reconnect.map(|r| match r {
            Reconnect::Yes => vec![true],
            Reconnect::No => vec![false],
            Reconnect::Both => vec![false, true],
        }),
    };
    outln!(
        "{} sessions of {} population{} ({}), {} threads{}",
        opts.sessions,
        pops.len(),
        if pops.len() == 1 { "" } else { "s" },
        pops.iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        opts.jobs,
        opts.shard.map_or(String::new(), |s| format!(
            ", shard {}/{}",
            s.index, s.count
        ))
    );
    let bar: std::sync::Mutex<Option<cli::run::Progress>> = std::sync::Mutex::new(None);
    let result = population::run(&pops, &opts, &|p| {
        if let Ok(mut bar) = bar.lock() {
            bar.get_or_insert_with(|| cli::run::Progress::start(p.total))
                .advance();
        }
    });
    if let Some(bar) = bar.into_inner().ok().flatten() {
        bar.finish();
    }
    let (results, ran) = match result {
        Ok(r) => r,
        Err(e) => {
            errln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    outln!(
        "{} sessions drew {} distinct paths; {} simulations",
        ran.sessions,
        ran.draws,
        ran.simulations
    );
    print_cells(&results);
    write(&results, &args.out, &args.invoked_as)?;
    let pages = [
        (
            args.markdown.as_deref(),
            population_markdown(&results, &args.invoked_as),
        ),
        (
            args.html.as_deref(),
            population_html(&results, &args.invoked_as),
        ),
    ];
    let stale = !write_or_check(&pages, args.check, &args.invoked_as, "a population report")?;
    Ok(if stale {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

pub(crate) fn merge_cmd(args: &MergeArgs) -> anyhow::Result<ExitCode> {
    let mut parts = Vec::new();
    for path in &args.shards {
        let bytes = gauntlet::files::read_file(path, MAX_RESULTS_BYTES, "a shard's results")
            .with_context(|| format!("reading {}", path.display()))?;
        match from_json(&String::from_utf8_lossy(&bytes)) {
            Ok(p) => parts.push(p),
            Err(e) => {
                errln!("error: {} is not a population shard: {e}", path.display());
                return Ok(ExitCode::from(2));
            }
        }
    }
    let merged = match Populations::merge(&parts) {
        Ok(m) => m,
        Err(e) => {
            errln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    outln!("merged {} shards", parts.len());
    print_cells(&merged);
    write(&merged, &args.out, &args.invoked_as)?;
    Ok(ExitCode::SUCCESS)
}

/// A line per cell: its success and interval.
fn print_cells(p: &Populations) {
    for pop in &p.populations {
        for c in &pop.cells {
            outln!("{:<16} {:<28} {}", pop.name, c.label(), c.success().text());
        }
    }
}

/// A shard's JSON alone; a whole run's JSON, Markdown and HTML.
fn write(p: &Populations, dir: &Path, invoked_as: &str) -> anyhow::Result<()> {
    let files: Vec<(String, String)> = match p.shard {
        Some(s) => vec![(
            format!("populations.shard-{}-of-{}.json", s.index, s.count),
            to_json(p),
        )],
        None => vec![
            ("populations.json".into(), to_json(p)),
            ("populations.md".into(), population_markdown(p, invoked_as)),
            ("populations.html".into(), population_html(p, invoked_as)),
        ],
    };
    for (name, text) in files {
        let path = dir.join(name);
        gauntlet::files::write_file(&path, &text)
            .with_context(|| format!("writing {}", path.display()))?;
        outln!("wrote {}", path.display());
    }
    Ok(())
}
