//! `gauntlet-hardening`: the generated-input campaigns of `cargo xtask fuzz` and the soak of
//! `cargo xtask soak`, kept in the tree and run in CI. The xtask builds this binary and the
//! `gauntlet` binary together and calls this one; see [`fuzz`] and [`soak`].

mod fuzz;
mod procs;
mod soak;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const USAGE: &str = "\
usage: gauntlet-hardening fuzz [--cases N] [--seed S] [--case I] [--gauntlet PATH] [--root DIR] [--invoked-as TEXT] [TARGET|GROUP...]
       gauntlet-hardening soak --gauntlet PATH [--quick] [--sessions N] [--concurrent N] [--messages N] [--slowloris N] [--half-close N] [--grace-s S] [--root DIR]
       gauntlet-hardening targets";

/// Wall time, for progress lines, case timeouts and process supervision: what these tools
/// measure is real processes and real loops, never simulated code (which reads its engine's
/// clock).
#[derive(Debug, Clone, Copy)]
pub struct Clock(Instant);

impl Clock {
    #[allow(
        clippy::disallowed_methods,
        reason = "progress and supervision run on the wall clock"
    )]
    pub fn start() -> Self {
        Clock(Instant::now())
    }

    pub fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("fuzz") => fuzz_command(&args[1..]),
        Some("soak") => soak_command(&args[1..]),
        Some("targets") => {
            for (name, group) in fuzz::targets() {
                println!(
                    "{name:<30} {} ({} cases by default)",
                    group.name(),
                    group.default_cases()
                );
            }
            Ok(true)
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            procs::kill_all();
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The flags' values, in order, and what else was given.
struct Args {
    valued: Vec<(String, String)>,
    switches: Vec<String>,
    rest: Vec<String>,
}

fn split(args: &[String], valued: &[&str], switches: &[&str]) -> anyhow::Result<Args> {
    let mut out = Args {
        valued: Vec::new(),
        switches: Vec::new(),
        rest: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if valued.contains(&a.as_str()) {
            let v = it
                .next()
                .ok_or_else(|| anyhow::anyhow!("{a} needs a value\n{USAGE}"))?;
            out.valued.push((a.clone(), v.clone()));
        } else if switches.contains(&a.as_str()) {
            out.switches.push(a.clone());
        } else if a.starts_with('-') {
            anyhow::bail!("unknown flag `{a}`\n{USAGE}");
        } else {
            out.rest.push(a.clone());
        }
    }
    Ok(out)
}

impl Args {
    fn get(&self, flag: &str) -> Option<&str> {
        self.valued
            .iter()
            .rev()
            .find(|(f, _)| f == flag)
            .map(|(_, v)| v.as_str())
    }

    fn number(&self, flag: &str) -> anyhow::Result<Option<u64>> {
        self.get(flag)
            .map(|v| {
                v.replace('_', "")
                    .parse::<u64>()
                    .map_err(|_| anyhow::anyhow!("{flag} takes a whole number, got `{v}`"))
            })
            .transpose()
    }

    fn root(&self) -> PathBuf {
        self.get("--root")
            .map_or_else(|| PathBuf::from("."), PathBuf::from)
    }
}

fn fuzz_command(args: &[String]) -> anyhow::Result<bool> {
    let a = split(
        args,
        &[
            "--cases",
            "--seed",
            "--case",
            "--gauntlet",
            "--root",
            "--invoked-as",
        ],
        &[],
    )?;
    let opts = fuzz::Options {
        cases: a.number("--cases")?,
        seed: a.number("--seed")?.unwrap_or(1),
        case: a.number("--case")?,
        select: a.rest.clone(),
        root: a.root(),
        gauntlet: a.get("--gauntlet").map(PathBuf::from),
        invoked_as: a
            .get("--invoked-as")
            .unwrap_or("gauntlet-hardening fuzz")
            .to_string(),
    };
    fuzz::main(&opts)
}

fn soak_command(args: &[String]) -> anyhow::Result<bool> {
    let a = split(
        args,
        &[
            "--gauntlet",
            "--root",
            "--sessions",
            "--concurrent",
            "--messages",
            "--slowloris",
            "--half-close",
            "--grace-s",
        ],
        &["--quick"],
    )?;
    if let Some(extra) = a.rest.first() {
        anyhow::bail!("unexpected argument `{extra}`\n{USAGE}");
    }
    let gauntlet = PathBuf::from(
        a.get("--gauntlet")
            .ok_or_else(|| anyhow::anyhow!("soak needs --gauntlet PATH\n{USAGE}"))?,
    );
    let mut o = if a.switches.iter().any(|s| s == "--quick") {
        soak::Options::quick(gauntlet, a.root())
    } else {
        soak::Options::full(gauntlet, a.root())
    };
    if let Some(n) = a.number("--sessions")? {
        o.sessions = n;
    }
    if let Some(n) = a.number("--concurrent")? {
        o.concurrent = n;
    }
    if let Some(n) = a.number("--messages")? {
        o.messages = u32::try_from(n.max(1)).unwrap_or(u32::MAX);
    }
    if let Some(n) = a.number("--slowloris")? {
        o.slowloris = n;
    }
    if let Some(n) = a.number("--half-close")? {
        o.half_close = n;
    }
    if let Some(n) = a.number("--grace-s")? {
        o.grace = Duration::from_secs(n);
    }
    soak::main(&o)
}
