//! `gauntlet gate`: the gate suite through the user's own proxy.

use crate::*;

/// `gauntlet gate`: the gate suite through the proxy `command` starts, one behaviour per line.
pub(crate) fn gate(
    command: &str,
    role: Role,
    suite_dir: &Path,
    junit: Option<&Path>,
    jobs: usize,
    show_transcript: bool,
) -> anyhow::Result<ExitCode> {
    let command = gauntlet::real::product::command::CommandLine::parse_as(command, role)
        .map_err(|e| anyhow::anyhow!("--proxy-cmd: {e}"))?;
    let schemes = gauntlet::real::gate::schemes(role);
    let scenarios = match gauntlet::real::gate::load(suite_dir, &command) {
        Ok(s) => s,
        Err(errors) => {
            for e in &errors {
                errln!("{e}");
            }
            anyhow::bail!("{} is not a gate suite", suite_dir.display());
        }
    };
    let first = gauntlet::real::gate::preflight(&command)
        .map_err(|e| anyhow::anyhow!("the proxy did not start: {e}"))?;
    let (kind, how) = match role {
        Role::Reverse => ("reverse proxy", "in front of the server"),
        Role::Forward => ("forward proxy", "reached by CONNECT"),
    };
    outln!(
        "gating `{command}` as a {kind} {how} (it starts: pid {} listened on {}) with {} from {}, {} on live, {jobs} at a time",
        first.pid,
        first.addr,
        plural(scenarios.len(), "behaviour"),
        suite_dir.display(),
        schemes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" and ")
    );
    let style = Style::for_stdout();
    let name = |s: &scenario::Scenario| {
        Path::new(&s.file)
            .file_stem()
            .map_or_else(|| s.file.clone(), |n| n.to_string_lossy().into_owned())
    };
    let width = scenarios.iter().map(|s| name(s).len()).max().unwrap_or(0);
    let results = gauntlet::real::gate::run(&scenarios, schemes, jobs, |s, entry, finished| {
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
