//! Project tasks, run as `cargo xtask <task>`. Thin on purpose: it builds the `gauntlet`
//! binary once and calls it. Avoid adding dependencies here.
//!
//! Tasks:
//! - `test [-- CARGO-TEST-ARGS]`: installs or names what the tests need (system programs, the
//!   pinned Python environment), then runs `cargo test --workspace` (see [`setup`]).
//! - `scenarios [FILTER] [--seed N] [--seeds N] [--scheme ws|wss] [--strategy NAME] [--engine E]
//!   [--transcript]`: runs every scenario file × scheme (or strategy) × seed, writes `target/gauntlet/results.json`, and
//!   exits non-zero if any run missed its expectation.
//! - `report [--check]`: runs the catalogue, writes `target/gauntlet/report.{md,html,xml,json}`
//!   and regenerates `reports/TRAVERSAL.md`, `reports/POPULATIONS.md` and `populations.html`
//!   (the shipped populations), `reports/OVERHEAD.md` and `reports/overhead.svg`
//!   (with `--check`: fails if a committed one is stale instead of writing it).
//! - `live [--jobs N]`: the differential suite: `scenarios/live/` on the live engine (real
//!   products) against each scenario's twin on the simulated engine.
//! - `conformance [--check] [--jobs N] [--only COLUMN]`: the gate suite through every real
//!   product in each configuration of the matrix, into `reports/CONFORMANCE.md` and
//!   `reports/conformance.html` (with `--check`: fails if a cell differs from the committed
//!   page).
//! - `bench [--quick] [--runs N] [--no-criterion] [--relay-only]`: builds `gauntlet` in release, measures
//!   whole runs on both engines (see [`mod@bench`]), writes `target/gauntlet/bench.json`, then runs
//!   the criterion micro-benchmarks.
//! - `fuzz [--release] [--cases N] [--seed S] [--case I] [TARGET...]` and `soak [--release]
//!   [--quick] …`: build `gauntlet` and `gauntlet-hardening` and run the generated-input
//!   campaigns or the soak (see [`hardening`]).

mod bench;
mod hardening;
mod relay;
mod sessions;
mod setup;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  test [-- CARGO-TEST-ARGS]
      Set up what the tests need, then run them: the real products (nginx, HAProxy, Apache,
      Squid, tinyproxy), Chromium, iperf3, socat and Python's venv are installed with apt-get
      when missing (as root; otherwise the one command to run is printed and the task stops),
      the Python WebSocket stacks pinned in harness/tests/python/requirements.txt go to a
      virtualenv at target/gauntlet/py (made again when that file changes), then `cargo test
      --workspace`, with the arguments after `--`. Exit status: cargo test's; 2 if the set-up
      failed.

  scenarios [FILTER] [--seed N] [--seeds N] [--scheme ws|wss] [--strategy NAME] [--engine NAME]
            [--jobs N] [--transcript]
      Run every scenario under scenarios/ (or those whose path contains FILTER), each scheme or
      client strategy (--strategy keeps one: ws, wss, ws-then-wss, polling-then-upgrade,
      websocket-then-polling), print a line per run and `N passed, M failed`, write target/gauntlet/results.json. Exit 1 if a run
      missed its expectation, 2 on an invalid scenario file or bad flags.

  report [--check]
      Run the catalogue on the default engine, then write target/gauntlet/report.md,
      report.html (self-contained, with charts), report.xml (JUnit) and report.json, and
      regenerate reports/TRAVERSAL.md (with the table of the shipped populations, run
      with gauntlet population into reports/POPULATIONS.md and populations.html), then
      measure each transport's bytes on the wire and
      latency per message (gauntlet overhead) into reports/OVERHEAD.md and
      reports/overhead.svg. --check: leave the committed pages alone and exit 1 if one is
      stale (CI runs this). Exit 1 also if a run missed its expectation (the reports are
      written all the same).

  live [--jobs N]
      The differential suite: each scenario under scenarios/live/ runs on real sockets through
      a real product (nginx, HAProxy, Squid, tinyproxy; Debian packages, see the README), and
      its twin (the product's model) on the simulated engine, for ws and wss. Prints agree or
      DISAGREE per pair and scheme and `N agree, M disagree`; exit 1 on any disagreement.

  conformance [--check] [--jobs N] [--only COLUMN]... [--from-results]
      The conformance matrix: the gate suite, quick, through every real product the test
      set-up installs (nginx, HAProxy, Apache, Squid, tinyproxy, Caddy, lighttpd, H2O,
      Varnish, Traffic Server, node-http-proxy, mitmproxy), each as its documentation
      recommends for WebSockets and, where it differs, as shipped; writes
      reports/CONFORMANCE.md and reports/conformance.html with the notes of
      reports/conformance-notes.toml. --check: write nothing, exit 1 if a cell differs from
      the committed page (CI runs this). A product not installed is an error naming what to
      install (cargo xtask test installs them all). --jobs: behaviours at a time (default 8).
      Each column's results go to target/gauntlet/conformance/COLUMN.json; --from-results
      renders (or checks) from those without gating (after editing the notes).

  bench [--quick] [--runs N] [--no-criterion] [--relay-only]
      Build gauntlet in release and measure, on the sim and turmoil engines: an idle simulated
      hour, the catalogue x ws/wss x 3 seeds, and 100 / 1,000 / 10,000 / 100,000 WebSocket
      clients at once through an L4 balancer (turmoil to 10,000). Prints each figure (median
      of N runs, default 5) with its ratio to turmoil, and each crowd's wall time per client
      with the ratio of the largest's to 1,000 clients'; huang-2011's sampled sessions
      (10,000 / 100,000 / 1,000,000, every core) with sessions per second and the ratio of
      the largest's time per session to 10,000's; then the relay on real sockets:
      iperf3 through `gauntlet proxy --model pass`, HAProxy (mode tcp) and socat, 1 and 8
      streams, interleaved, with gauntlet's ratio to each and CPU-seconds per GB (iperf3,
      haproxy and socat must be installed); writes target/gauntlet/bench.json, then runs the
      criterion micro-benchmarks (skipped with --no-criterion). --quick: 1 run each, crowds
      to 10,000 clients (turmoil to 1,000), sessions to 100,000, 1 s relay runs. --relay-only: the relay's
      figures alone.

  fuzz [--release] [--cases N] [--seed S] [--case I] [TARGET|GROUP...]
      Generated-input campaigns, seeded (default seed 1) and reproducible: the scenario reader
      (scenario; scenario-run runs what it accepts on the sim engine), HTTP heads (http-head,
      http-chunked), WebSocket frames (ws-frames), every model (model-NAME) and the live
      gauntlet serve and gauntlet proxy fed hostile bytes (live-serve, live-proxy). Groups:
      parsers (10,000 cases each by default), runs (300), models (1,000), live (300); --cases
      sets every target's. Prints `fuzz: NAME N cases, F failures, T s` per target; on a
      failure, the smallest failing input and the command that reruns that one case (--case
      I), and exit 1. --release builds in release (for long campaigns).

  soak [--release] [--quick] [--sessions N] [--concurrent N] [--messages N] [--slowloris N]
       [--half-close N] [--grace-s S]
      gauntlet serve (ws and wss) behind two gauntlet proxy --model pass (ws; TLS relayed
      opaquely), real processes: 10,000 sequential sessions, then 1,000 concurrent sessions of
      100 echoed messages each alongside 500 slowloris connections and 200 early half-closes;
      then every process's open descriptors and resident memory must be within 10% of their
      baseline after warm-up, and every message must have come back intact. Prints `soak: S
      sessions, M messages, L lost, fds A -> B, rss X -> Y MiB`; exit 1 if it failed.
      --quick: 400 sessions, 100 concurrent of 50 messages, 50 slowloris, 20 half-closes.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    match args.first().map(String::as_str) {
        Some("test") => setup::test(&root, &args[1..]),
        Some("scenarios") => scenarios(&root, &args[1..]),
        Some("bench") => bench::main(&root, &args[1..]),
        Some("report") => report(&root, &args[1..]),
        Some("live") => live(&root, &args[1..]),
        Some("conformance") => conformance(&root, &args[1..]),
        Some("fuzz") => hardening::fuzz(&root, &args[1..]),
        Some("soak") => hardening::soak(&root, &args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("error: unknown task `{other}`\n\n{USAGE}");
            ExitCode::from(2)
        }
        None => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Builds the `gauntlet` binary (dev profile, shared with `cargo test`) and returns its path,
/// or prints why it could not and gives the exit code to leave with.
fn build_gauntlet(root: &Path) -> Result<PathBuf, ExitCode> {
    build_gauntlet_in(root, "dev").map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}

/// Builds the `gauntlet` binary in `profile` and returns its path.
fn build_gauntlet_in(root: &Path, profile: &str) -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .args([
            "build",
            "--quiet",
            "--profile",
            profile,
            "--package",
            "gauntlet",
            "--bin",
            "gauntlet",
        ])
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("building gauntlet failed".into());
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let dir = if profile == "dev" { "debug" } else { profile };
    Ok(target
        .join(dir)
        .join(format!("gauntlet{}", std::env::consts::EXE_SUFFIX)))
}

fn scenarios(root: &Path, args: &[String]) -> ExitCode {
    let mut forward: Vec<String> = Vec::new();
    let mut filter: Option<String> = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seed" | "--seeds" | "--scheme" | "--strategy" | "--engine" | "--jobs" => {
                match it.next() {
                    Some(value) => forward.extend([arg.clone(), value.clone()]),
                    None => {
                        eprintln!("error: {arg} needs a value\n\n{USAGE}");
                        return ExitCode::from(2);
                    }
                }
            }
            "--transcript" => forward.push(arg.clone()),
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            flag if flag.starts_with('-') => {
                eprintln!("error: unknown flag `{flag}`\n\n{USAGE}");
                return ExitCode::from(2);
            }
            text if filter.is_none() => filter = Some(text.to_string()),
            text => {
                eprintln!("error: one FILTER only, got a second: `{text}`\n\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let gauntlet = match build_gauntlet(root) {
        Ok(path) => path,
        Err(code) => return code,
    };
    let mut cmd = Command::new(gauntlet);
    cmd.current_dir(root)
        .args(["run", "scenarios", "--results", RESULTS])
        .args(["--invoked-as", "cargo xtask scenarios"]);
    if let Some(f) = filter {
        cmd.args(["--filter", &f]);
    }
    cmd.args(&forward);
    ExitCode::from(run(&mut cmd))
}

/// Where `scenarios` and `report` write the catalogue's results.
const RESULTS: &str = "target/gauntlet/results.json";

/// The committed overhead page and its chart `report` regenerates.
const OVERHEAD: &str = "reports/OVERHEAD.md";
const OVERHEAD_SVG: &str = "reports/overhead.svg";

/// Where `report` has the shipped populations' results written, and the committed pages it
/// regenerates from them.
const POPULATIONS_OUT: &str = "target/gauntlet/populations";
const POPULATIONS_MD: &str = "reports/POPULATIONS.md";
const POPULATIONS_HTML: &str = "reports/populations.html";

/// The committed traversal page `report` regenerates.
const TRAVERSAL: &str = "reports/TRAVERSAL.md";

/// Runs `cmd`, giving its exit code (2 if it could not run or was killed).
fn run(cmd: &mut Command) -> u8 {
    match cmd.status() {
        Ok(status) => status.code().map_or(2, |c| c.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("error: cannot run gauntlet: {e}");
            2
        }
    }
}

/// Reads `args` made only of `valued` flags (each followed by its value) and `switches`:
/// gives them back, to forward to `gauntlet`, or the exit code after printing the help or
/// what is wrong.
fn flags(args: &[String], valued: &[&str], switches: &[&str]) -> Result<Vec<String>, ExitCode> {
    let mut forward: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return Err(ExitCode::SUCCESS);
            }
            flag if valued.contains(&flag) => match it.next() {
                Some(value) => forward.extend([arg.clone(), value.clone()]),
                None => {
                    eprintln!("error: {flag} needs a value\n\n{USAGE}");
                    return Err(ExitCode::from(2));
                }
            },
            flag if switches.contains(&flag) => forward.push(arg.clone()),
            other => {
                eprintln!("error: unknown argument `{other}`\n\n{USAGE}");
                return Err(ExitCode::from(2));
            }
        }
    }
    Ok(forward)
}

fn live(root: &Path, args: &[String]) -> ExitCode {
    forward(
        root,
        args,
        (&["--jobs"], &[]),
        &["differential", "scenarios/live"],
    )
}

fn conformance(root: &Path, args: &[String]) -> ExitCode {
    let flags = (
        &["--jobs", "--only"][..],
        &["--check", "--from-results"][..],
    );
    forward(root, args, flags, &["conformance"])
}

/// Builds gauntlet and runs `gauntlet WORDS…` in the workspace root with `args`, which may
/// hold only the `valued` flags and the `switches` given: its exit code, or the build's or
/// the flags' error.
fn forward(
    root: &Path,
    args: &[String],
    (valued, switches): (&[&str], &[&str]),
    words: &[&str],
) -> ExitCode {
    let forward = match flags(args, valued, switches) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let gauntlet = match build_gauntlet(root) {
        Ok(path) => path,
        Err(code) => return code,
    };
    ExitCode::from(run(Command::new(&gauntlet)
        .current_dir(root)
        .args(words)
        .args(&forward)))
}

fn report(root: &Path, args: &[String]) -> ExitCode {
    let check = match flags(args, &[], &["--check"]) {
        Ok(f) => !f.is_empty(),
        Err(code) => return code,
    };
    let gauntlet = match build_gauntlet(root) {
        Ok(path) => path,
        Err(code) => return code,
    };
    let suite = run(Command::new(&gauntlet).current_dir(root).args([
        "run",
        "scenarios",
        "--results",
        RESULTS,
        "--invoked-as",
        "cargo xtask scenarios",
    ]));
    if suite == 2 {
        return ExitCode::from(2);
    }
    let mut cmd = Command::new(&gauntlet);
    cmd.current_dir(root)
        .args([
            "population",
            "scenarios/populations",
            "--out",
            POPULATIONS_OUT,
        ])
        .args(["--markdown", POPULATIONS_MD, "--html", POPULATIONS_HTML])
        .args(["--invoked-as", "cargo xtask report"]);
    if check {
        cmd.arg("--check");
    }
    let populations = run(&mut cmd);
    if populations == 2 {
        return ExitCode::from(2);
    }
    let mut cmd = Command::new(&gauntlet);
    cmd.current_dir(root)
        .args(["report", RESULTS, "--out", "target/gauntlet"])
        .args(["--traversal", TRAVERSAL])
        .args([
            "--populations",
            &format!("{POPULATIONS_OUT}/populations.json"),
        ])
        .args(["--invoked-as", "cargo xtask report"]);
    if check {
        cmd.arg("--check");
    }
    let rendered = run(&mut cmd);
    let mut cmd = Command::new(&gauntlet);
    cmd.current_dir(root)
        .args(["overhead", "--markdown", OVERHEAD, "--svg", OVERHEAD_SVG])
        .args(["--invoked-as", "cargo xtask report"]);
    if check {
        cmd.arg("--check");
    }
    let overhead = run(&mut cmd);
    ExitCode::from(rendered.max(suite).max(overhead).max(populations))
}
