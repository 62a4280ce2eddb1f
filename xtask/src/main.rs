//! Project tasks, run as `cargo xtask <task>`. Thin on purpose: it builds the `gauntlet`
//! binary once and calls it. Avoid adding dependencies here.
//!
//! Tasks:
//! - `scenarios [FILTER] [--seed N] [--seeds N] [--scheme ws|wss] [--engine E] [--transcript]`:
//!   runs every scenario file × scheme × seed, writes `target/gauntlet/results.json`, and
//!   exits non-zero if any run missed its expectation.
//! - `bench [--quick] [--runs N] [--no-criterion]`: builds `gauntlet` in release, measures
//!   whole runs on both engines (see [`bench`]), writes `target/gauntlet/bench.json`, then runs
//!   the criterion micro-benchmarks.

mod bench;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  scenarios [FILTER] [--seed N] [--seeds N] [--scheme ws|wss] [--engine NAME] [--jobs N] [--transcript]
      Run every scenario under scenarios/ (or those whose path contains FILTER), print a line
      per run and `N passed, M failed`, write target/gauntlet/results.json. Exit 1 if a run
      missed its expectation, 2 on an invalid scenario file or bad flags.

  bench [--quick] [--runs N] [--no-criterion]
      Build gauntlet in release and measure, on the sim and turmoil engines: an idle simulated
      hour, the catalogue x ws/wss x 3 seeds, and 100 / 1,000 / 10,000 WebSocket clients at
      once through an L4 balancer. Prints each figure (median of N runs, default 5) with its
      ratio to turmoil, writes target/gauntlet/bench.json, then runs the criterion
      micro-benchmarks (skipped with --no-criterion). --quick: 1 run each, fewer clients.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    match args.first().map(String::as_str) {
        Some("scenarios") => scenarios(&root, &args[1..]),
        Some("bench") => bench::main(&root, &args[1..]),
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

/// Builds the `gauntlet` binary (dev profile, shared with `cargo test`) and returns its path.
fn build_gauntlet(root: &Path) -> Result<PathBuf, String> {
    build_gauntlet_in(root, "dev")
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
            "--seed" | "--seeds" | "--scheme" | "--engine" | "--jobs" => match it.next() {
                Some(value) => forward.extend([arg.clone(), value.clone()]),
                None => {
                    eprintln!("error: {arg} needs a value\n\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
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
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut cmd = Command::new(gauntlet);
    cmd.current_dir(root)
        .args([
            "run",
            "scenarios",
            "--results",
            "target/gauntlet/results.json",
        ])
        .args(["--invoked-as", "cargo xtask scenarios"]);
    if let Some(f) = filter {
        cmd.args(["--filter", &f]);
    }
    cmd.args(&forward);
    match cmd.status() {
        Ok(status) => ExitCode::from(status.code().map_or(2, |c| c.clamp(0, 255) as u8)),
        Err(e) => {
            eprintln!("error: cannot run gauntlet: {e}");
            ExitCode::from(2)
        }
    }
}
