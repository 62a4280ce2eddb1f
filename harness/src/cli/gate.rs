//! `gauntlet gate`: the gate suite through the user's own proxy.

use std::time::Duration;

use gauntlet::real::gate::{self as g, DEFAULT_QUIET, QUICK_QUIET};

use crate::*;

/// The longest quiet period `--quiet-s` takes: a day.
const MAX_QUIET_S: u64 = 86_400;

/// `gauntlet gate`'s flags.
#[derive(Debug, clap::Args)]
pub(crate) struct GateArgs {
    /// The proxy's command line, with {listen} and {upstream} ({listen} only with
    /// --forward).
    #[arg(long, value_name = "CMD")]
    proxy_cmd: String,
    /// The proxy is a forward proxy, reached by CONNECT: every behaviour runs with the
    /// proxy as the client's explicit proxy, for ws and wss.
    #[arg(long)]
    forward: bool,
    /// Another gate suite than the one built in (scenarios/gate): a folder of scenario
    /// files with one `pass` hop each, which the proxy replaces.
    #[arg(long, value_name = "DIR")]
    suite: Option<PathBuf>,
    /// Write a JUnit report here: a testcase per behaviour, failures named by title.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Behaviours run at a time (each with its own proxy process).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
    jobs: u64,
    /// Print every behaviour's transcript (failed behaviours always print theirs).
    #[arg(long)]
    transcript: bool,
    /// How long the quiet-tunnel behaviours keep the tunnel silent, in seconds (1 to 86400).
    /// The default, 75, catches the 60 s idle timeouts of nginx and AWS ALB; a proxy that
    /// closes quiet tunnels after N seconds passes any shorter period.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=MAX_QUIET_S))]
    quiet_s: Option<u64>,
    /// A quick run for local iteration: a quiet period of 3 s instead of 75 s. It cannot
    /// catch an idle limit longer than 3 s (nginx's and AWS ALB's 60 s among them).
    #[arg(long, conflicts_with = "quiet_s")]
    quick: bool,
}

impl GateArgs {
    /// The quiet period, and whether it is a quick run's.
    fn quiet(&self) -> (Duration, bool) {
        match (self.quick, self.quiet_s) {
            (true, _) => (QUICK_QUIET, true),
            (false, Some(s)) => (Duration::from_secs(s), false),
            (false, None) => (DEFAULT_QUIET, false),
        }
    }
}

/// What the output and the reports say of a quiet period: what it catches, and, for a quick
/// run, what it cannot.
fn quiet_note(quiet: Duration, quick: bool) -> String {
    let q = g::seconds(quiet);
    if quick {
        format!(
            "quick run: the quiet period is {q}, so an idle limit longer than {q} goes \
             unseen (nginx's and AWS ALB's 60 s among them); run without --quick to check {}",
            g::seconds(DEFAULT_QUIET)
        )
    } else {
        format!("quiet period {q}: a proxy that closes a tunnel quiet for less fails")
    }
}

/// `gauntlet gate`: the gate suite through the proxy `--proxy-cmd` starts, one behaviour per
/// line.
pub(crate) fn gate(args: &GateArgs) -> anyhow::Result<ExitCode> {
    let role = if args.forward {
        Role::Forward
    } else {
        Role::Reverse
    };
    let suite = args.suite.clone().map_or(g::Suite::BuiltIn, g::Suite::Dir);
    let (junit, jobs, show_transcript) =
        (args.junit.as_deref(), args.jobs as usize, args.transcript);
    let command = gauntlet::real::product::command::CommandLine::parse_as(&args.proxy_cmd, role)
        .map_err(|e| anyhow::anyhow!("--proxy-cmd: {e}"))?;
    let schemes = g::schemes(role);
    let mut scenarios = match g::load(&suite, &command) {
        Ok(s) => s,
        Err(errors) => {
            for e in &errors {
                errln!("{e}");
            }
            anyhow::bail!("{suite} is not a gate suite");
        }
    };
    let (quiet, quick) = args.quiet();
    g::set_quiet(&mut scenarios, quiet);
    let first =
        g::preflight(&command).map_err(|e| anyhow::anyhow!("the proxy did not start: {e}"))?;
    let (kind, how) = match role {
        Role::Reverse => ("reverse proxy", "in front of the server"),
        Role::Forward => ("forward proxy", "reached by CONNECT"),
    };
    outln!(
        "gating `{command}` as a {kind} {how} (it starts: pid {} listened on {}) with {} from {}, {} on live, {jobs} at a time",
        first.pid,
        first.addr,
        plural(scenarios.len(), "behaviour"),
        suite,
        schemes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" and ")
    );
    outln!("{}", quiet_note(quiet, quick));
    let style = Style::for_stdout();
    let name = |s: &scenario::Scenario| {
        Path::new(&s.file)
            .file_stem()
            .map_or_else(|| s.file.clone(), |n| n.to_string_lossy().into_owned())
    };
    let width = scenarios.iter().map(|s| name(s).len()).max().unwrap_or(0);
    let results = g::run(&scenarios, schemes, jobs, |s, entry, finished| {
        let verdict = if entry.pass {
            style.paint("32", "pass")
        } else {
            style.paint("31;1", "FAIL")
        };
        outln!(
            "{verdict}  {:<width$}  {:<3}  {:<18}  {}",
            name(s),
            entry.scheme,
            entry.outcome,
            entry.detail
        );
        if !entry.pass {
            outln!("      {}: expected {}", s.title, entry.expected);
        }
        if show_transcript || !entry.pass {
            if let Ok(out) = &finished.output {
                for line in out.rendered().lines() {
                    outln!("      {line}");
                }
            }
        }
    });
    if let Some(path) = junit {
        gauntlet::files::write_file(path, &gauntlet_reports::junit(&results))
            .with_context(|| format!("writing {}", path.display()))?;
        outln!("junit: {}", path.display());
    }
    let (passed, failed) = results.tally();
    let errors = results
        .runs
        .iter()
        .filter(|r| r.outcome == "harness-error")
        .count();
    let summary = format!("{passed} passed, {failed} failed");
    outln!(
        "{}",
        style.paint(if failed == 0 { "32" } else { "31;1" }, &summary)
    );
    if errors > 0 {
        anyhow::bail!(
            "{} could not run (see above): the proxy did not start every time",
            plural(errors, "behaviour")
        );
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
