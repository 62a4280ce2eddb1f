//! `cargo xtask bench`'s population figures: `gauntlet population huang-2011` timed whole (every
//! core) at 10,000, 100,000 and 1,000,000 sessions, with sessions per second, the largest's
//! time per session over 10,000's, and the simulations each took (one per distinct path drawn
//! and cell: the cost is theirs, the sessions beyond them cost a draw each).

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use crate::bench::ms;

/// One population run's size and its median wall time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PopulationLine {
    sessions: usize,
    wall_ms: f64,
    samples: usize,
    /// The distinct paths the sessions drew and the simulations they took (one per distinct
    /// path and cell: sessions that drew the same path share its outcome).
    draws: usize,
    simulations: usize,
}

/// The population timed: five paths (four fitted to Huang et al.'s rates, and the direct
/// one), each session run with every strategy of its sweep.
const POPULATION: &str = "huang-2011";

/// The population runs timed, in sessions: to 1,000,000 in full, to 100,000 with `--quick`.
pub(crate) fn sizes(quick: bool) -> &'static [usize] {
    if quick {
        &[10_000, 100_000]
    } else {
        &[10_000, 100_000, 1_000_000]
    }
}

/// The population run whose per-session cost the others are compared with.
const BASE_SESSIONS: usize = 10_000;

/// Runs `gauntlet population huang-2011 --sessions N` `runs` times (every core, its files
/// under target/gauntlet/bench-population); the median of the processes' wall times.
pub(crate) fn figure(
    root: &Path,
    gauntlet: &Path,
    sessions: usize,
    runs: usize,
) -> Result<PopulationLine, String> {
    let n = sessions.to_string();
    let args = [
        "population",
        POPULATION,
        "--sessions",
        n.as_str(),
        "--out",
        "target/gauntlet/bench-population",
    ];
    let command = format!("gauntlet {}", args.join(" "));
    eprintln!("measuring ({runs}×): {command}");
    let mut walls = Vec::new();
    for _ in 0..runs {
        // Wall time is what this measures: a whole process, as a user waits for it.
        #[allow(clippy::disallowed_methods)]
        let start = Instant::now();
        let out = Command::new(gauntlet)
            .current_dir(root)
            .args(args)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", gauntlet.display()))?;
        let wall_ms = start.elapsed().as_secs_f64() * 1000.0;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "`{command}` failed: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let ran = format!("{sessions} sessions drew ");
        let counts = text.split_once(&ran).and_then(|(_, rest)| {
            let (draws, rest) = rest.split_once(" distinct paths; ")?;
            let (simulations, _) = rest.split_once(" simulations")?;
            Some((draws.parse().ok()?, simulations.parse().ok()?))
        });
        let Some(counts) = counts else {
            return Err(format!(
                "`{command}` did not say `{ran}N distinct paths; M simulations`: {text}"
            ));
        };
        walls.push((wall_ms, counts));
    }
    walls.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (wall_ms, (draws, simulations)) = walls[walls.len() / 2];
    Ok(PopulationLine {
        sessions,
        wall_ms,
        samples: walls.len(),
        draws,
        simulations,
    })
}

/// Wall time per sampled session, in µs.
fn per_session_us(l: &PopulationLine) -> f64 {
    l.wall_ms * 1000.0 / l.sessions as f64
}

/// The largest population run and its wall time per session over [`BASE_SESSIONS`]'s: 1 when
/// the cost grows linearly with sessions.
fn per_session_ratio(lines: &[PopulationLine]) -> Option<(usize, f64)> {
    let base = lines.iter().find(|l| l.sessions == BASE_SESSIONS)?;
    let largest = lines.iter().max_by_key(|l| l.sessions)?;
    (largest.sessions > base.sessions).then(|| {
        (
            largest.sessions,
            per_session_us(largest) / per_session_us(base),
        )
    })
}

pub(crate) fn table(lines: &[PopulationLine]) -> String {
    let mut out = format!(
        "\npopulation {POPULATION} (5 paths, each session run with every strategy of its sweep), \
         sim, every core:\n"
    );
    for l in lines {
        let _ = writeln!(
            out,
            "  {:>8} sessions: {:>9}, {:>9.0} sessions/s, {:>6.2} µs per session \
             ({} distinct paths, {} simulations)",
            l.sessions,
            ms(l.wall_ms),
            l.sessions as f64 * 1000.0 / l.wall_ms,
            per_session_us(l),
            l.draws,
            l.simulations
        );
    }
    if let Some((largest, ratio)) = per_session_ratio(lines) {
        let _ = writeln!(
            out,
            "  {largest} / {BASE_SESSIONS} sessions: {ratio:.2}× the wall time per session{}",
            if largest < 1_000_000 {
                " (1000000 sessions without --quick)"
            } else {
                ""
            }
        );
    }
    out
}

/// bench.json's fields for the population runs: each size's wall time, sessions per second
/// and samples, and the per-session ratio.
pub(crate) fn json(lines: &[PopulationLine]) -> Vec<String> {
    let mut fields = Vec::new();
    for l in lines {
        let n = l.sessions;
        fields.push(format!("  \"population_{n}_ms\": {:.3}", l.wall_ms));
        fields.push(format!(
            "  \"population_{n}_sessions_per_s\": {:.3}",
            n as f64 * 1000.0 / l.wall_ms
        ));
        fields.push(format!("  \"population_{n}_samples\": {}", l.samples));
        fields.push(format!(
            "  \"population_{n}_simulations\": {}",
            l.simulations
        ));
    }
    if let Some((largest, ratio)) = per_session_ratio(lines) {
        fields.push(format!(
            "  \"population_{largest}_per_{BASE_SESSIONS}_ratio\": {ratio:.3}"
        ));
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn population_runs_report_sessions_per_second_and_the_per_session_ratio() {
        let line = |sessions, wall_ms| PopulationLine {
            sessions,
            wall_ms,
            samples: 1,
            draws: 25,
            simulations: 175,
        };
        let lines = [
            line(10_000, 500.0),
            line(100_000, 4000.0),
            line(1_000_000, 45_000.0),
        ];
        assert_eq!(per_session_ratio(&lines), Some((1_000_000, 0.9)));
        let text = table(&lines);
        assert!(
            text.contains(
                "1000000 sessions:   45.00 s,     22222 sessions/s,  45.00 µs per session"
            ),
            "{text}"
        );
        assert!(
            text.contains("(25 distinct paths, 175 simulations)"),
            "{text}"
        );
        assert!(text.contains("1000000 / 10000 sessions: 0.90×"), "{text}");
        let json = json(&lines);
        assert!(
            json.contains(&"  \"population_10000_sessions_per_s\": 20000.000".to_string()),
            "{json:?}"
        );
        assert!(
            json.contains(&"  \"population_1000000_per_10000_ratio\": 0.900".to_string()),
            "{json:?}"
        );
        // --quick stops at 100,000 sessions and says where 1,000,000 are.
        let text = table(&lines[..2]);
        assert!(
            text.contains("(1000000 sessions without --quick)"),
            "{text}"
        );
        assert_eq!(per_session_ratio(&lines[..1]), None);
    }
}
