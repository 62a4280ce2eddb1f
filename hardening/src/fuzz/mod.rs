//! `cargo xtask fuzz`: generated-input campaigns, seeded and reproducible, one per target.
//!
//! Targets, by group (each group's default number of cases after its name):
//! - parsers, 10,000: `scenario` (the scenario reader and checker), `http-head` (head
//!   parsing and `HeadReader`), `http-chunked` (`ChunkedScanner`), `ws-frames` (the frame
//!   scanner and the harness's frame decoder);
//! - runs, 300: `scenario-run` (accepted scenario files run on the sim engine);
//! - models, 1,000: `model-NAME` for every model;
//! - live, 300: `live-serve`, `live-proxy` (real processes fed hostile bytes).
//!
//! Each target prints one line, `fuzz: NAME N cases, F failures, T s (what the cases were)`;
//! a failure prints the smallest failing input found and the command that runs that case
//! alone.

mod frames;
mod http;
mod inputs;
mod live;
mod models;
pub mod runner;
mod scenario;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context as _, bail};
use gauntlet_proxies::MODEL_NAMES;

pub use crate::Clock;
use runner::{Outcome, Plan, campaign};

/// What the targets need from the command line.
#[derive(Debug, Clone)]
pub struct Options {
    /// Cases per target; each group's default when not given.
    pub cases: Option<u64>,
    /// The campaign seed.
    pub seed: u64,
    /// Only this case.
    pub case: Option<u64>,
    /// Targets or groups to run; all when empty.
    pub select: Vec<String>,
    /// The workspace root (scenarios, the scratch folder).
    pub root: PathBuf,
    /// The `gauntlet` binary, for the live targets.
    pub gauntlet: Option<PathBuf>,
    /// How to name this command in reproduction hints.
    pub invoked_as: String,
}

/// A group of targets sharing a default number of cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Parsers,
    Runs,
    Models,
    Live,
}

impl Group {
    pub fn name(self) -> &'static str {
        match self {
            Group::Parsers => "parsers",
            Group::Runs => "runs",
            Group::Models => "models",
            Group::Live => "live",
        }
    }

    pub fn default_cases(self) -> u64 {
        match self {
            Group::Parsers => 10_000,
            Group::Runs => 300,
            Group::Models => 1_000,
            Group::Live => 300,
        }
    }
}

/// Every target: name and group, in the order they run.
pub fn targets() -> Vec<(String, Group)> {
    let mut all: Vec<(String, Group)> = ["scenario", "http-head", "http-chunked", "ws-frames"]
        .iter()
        .map(|n| (n.to_string(), Group::Parsers))
        .collect();
    all.push(("scenario-run".into(), Group::Runs));
    all.extend(
        MODEL_NAMES
            .iter()
            .map(|m| (format!("model-{m}"), Group::Models)),
    );
    all.push(("live-serve".into(), Group::Live));
    all.push(("live-proxy".into(), Group::Live));
    all
}

/// Runs the selected targets; returns whether every one passed.
pub fn main(opts: &Options) -> anyhow::Result<bool> {
    let all = targets();
    let chosen: Vec<(String, Group)> = if opts.select.is_empty() {
        all.clone()
    } else {
        for s in &opts.select {
            if !all.iter().any(|(n, g)| n == s || g.name() == s) {
                bail!(
                    "unknown target `{s}`: the targets are {}, and the groups parsers, runs, models, live",
                    all.iter()
                        .map(|(n, _)| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        all.into_iter()
            .filter(|(n, g)| opts.select.iter().any(|s| s == n || s == g.name()))
            .collect()
    };
    if opts.case.is_some() && chosen.len() != 1 {
        bail!("--case runs one case of one target: name the target");
    }
    let scratch = scenario::scratch(&opts.root).context("making target/gauntlet/fuzz")?;
    watchdog(&opts.invoked_as);
    let mut ok = true;
    for (name, group) in &chosen {
        let plan = Plan {
            cases: opts.cases.unwrap_or(group.default_cases()),
            seed: opts.seed,
            only: opts.case,
        };
        let clock = Clock::start();
        let out = run_target(name, &plan, &clock, opts, &scratch)?;
        let secs = clock.elapsed().as_secs_f64();
        let failures = u64::from(out.failure.is_some());
        println!(
            "fuzz: {name} {} cases, {failures} failures, {secs:.1} s{}",
            out.cases,
            tally(&out.tally)
        );
        if let Some(f) = &out.failure {
            ok = false;
            println!(
                "FAIL {name} case {} (seed {}): {}\nthe smallest failing input found ({} shrinking steps):\n{}\nreproduce: {} --seed {} --case {} {name}",
                f.case,
                opts.seed,
                f.message,
                f.shrink_steps,
                f.input,
                opts.invoked_as,
                opts.seed,
                f.case
            );
        }
    }
    Ok(ok)
}

fn tally(t: &BTreeMap<&'static str, u64>) -> String {
    if t.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = t.iter().map(|(k, v)| format!("{v} {k}")).collect();
    format!(" ({})", parts.join(", "))
}

fn progress(name: &str, cases: u64, clock: &Clock) {
    eprintln!(
        "fuzz: {name} {cases} cases so far, {:.0} s",
        clock.elapsed().as_secs_f64()
    );
}

fn run_target(
    name: &str,
    plan: &Plan,
    clock: &Clock,
    opts: &Options,
    scratch: &Path,
) -> anyhow::Result<Outcome> {
    let report = |n: u64| progress(name, n, clock);
    Ok(match name {
        "scenario" => {
            let strategy = scenario::case(scenario::catalogue(&opts.root), false);
            campaign(
                &strategy,
                plan,
                clock,
                |c| scenario::check_parse(c, scratch),
                scenario::show,
                report,
            )
        }
        "scenario-run" => {
            let strategy = scenario::case(scenario::catalogue(&opts.root), true);
            let engine = scenario::sim();
            campaign(
                &strategy,
                plan,
                clock,
                |c| scenario::check_run(c, &*engine),
                scenario::show,
                report,
            )
        }
        "http-head" => campaign(
            &http::head_case(),
            plan,
            clock,
            http::check_head,
            http::show_head,
            report,
        ),
        "http-chunked" => campaign(
            &http::chunked_case(),
            plan,
            clock,
            http::check_chunked,
            http::show_chunked,
            report,
        ),
        "ws-frames" => campaign(
            &frames::case(),
            plan,
            clock,
            frames::check,
            frames::show,
            report,
        ),
        "live-serve" | "live-proxy" => {
            let gauntlet = opts
                .gauntlet
                .as_deref()
                .context("the live targets need the gauntlet binary (--gauntlet PATH)")?;
            let proxied = name == "live-proxy";
            let mut live = live::Live::new(gauntlet, scratch, proxied);
            let cell = std::cell::RefCell::new(&mut live);
            let mut out = campaign(
                &live::case(!proxied),
                plan,
                clock,
                |c| {
                    let n = runner::CURRENT_CASE.load(Ordering::Relaxed);
                    cell.borrow_mut().check(c, n)
                },
                live::show,
                report,
            );
            let live = cell.into_inner();
            if let Err(e) = live.stop() {
                if out.failure.is_none() {
                    out.failure = Some(runner::Failure {
                        case: plan.only.unwrap_or(0),
                        message: format!("stopping the processes with SIGTERM: {e}"),
                        input: String::new(),
                        shrink_steps: 0,
                    });
                }
            }
            if live.starts > 1 && out.failure.is_none() {
                eprintln!("fuzz: {name} started its processes {} times", live.starts);
            }
            out
        }
        model => {
            let model = model.strip_prefix("model-").context("a model target")?;
            let model: &'static str = MODEL_NAMES
                .iter()
                .copied()
                .find(|m| *m == model)
                .context("a known model")?;
            let env = models::env()?;
            campaign(
                &models::case(model),
                plan,
                clock,
                |c| models::check(c, &env),
                |c| models::show(c, &env),
                report,
            )
        }
    })
}

/// How long one case may run before the campaign calls it stuck.
const STUCK: Duration = Duration::from_secs(120);

/// A thread that ends the process (after killing the processes it started) when one case has
/// run for [`STUCK`]: a hang is a failure too, reported with the case that hung.
fn watchdog(invoked_as: &str) {
    let invoked_as = invoked_as.to_string();
    std::thread::spawn(move || {
        let clock = Clock::start();
        let mut seen = (u64::MAX, Duration::ZERO);
        loop {
            std::thread::sleep(Duration::from_secs(1));
            let case = runner::CURRENT_CASE.load(Ordering::Relaxed);
            let generation = runner::GENERATION.load(Ordering::Relaxed);
            if generation != seen.0 {
                seen = (generation, clock.elapsed());
                continue;
            }
            if clock.elapsed() - seen.1 > STUCK {
                crate::procs::kill_all();
                println!(
                    "FAIL a case has run for {} s without ending (case {case}); reproduce it with {invoked_as} --case {case} and the same --seed and target",
                    STUCK.as_secs()
                );
                std::process::exit(1);
            }
        }
    });
}
