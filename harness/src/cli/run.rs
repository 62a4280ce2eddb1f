//! `gauntlet run`: runs scenario files on an engine, a line per run, with a progress bar on a terminal.

use crate::*;

/// Where a suite's output goes: the results file, whether every transcript is printed, and the
/// command named in reproduction hints.
pub(crate) struct Shown {
    pub(crate) results: Option<PathBuf>,
    pub(crate) transcript: bool,
    pub(crate) invoked_as: String,
}

pub(crate) fn run(
    sel: &Selection,
    strategy: Option<StrategyKind>,
    engine: &str,
    jobs: usize,
    shown: &Shown,
) -> anyhow::Result<ExitCode> {
    let (results_path, show_transcript, invoked_as) = (
        shown.results.clone(),
        shown.transcript,
        shown.invoked_as.as_str(),
    );
    let (scenarios, mut planned) = match suite::plan(sel) {
        Ok(p) => p,
        Err(errors) => {
            for e in &errors {
                errln!("{e}");
            }
            anyhow::bail!(
                "{} invalid scenario file(s); `gauntlet check` lists them",
                errors.len()
            );
        }
    };
    if let Some(only) = strategy {
        planned.retain(|p| scenarios[p.scenario].case_name(p.scheme) == only.as_str());
    }
    let (planned, live_only) = suite::runnable_on(engine, &scenarios, planned);
    if planned.is_empty() && live_only > 0 {
        anyhow::bail!(
            "the selected scenarios have real programs as hops: run them with --engine live"
        );
    }
    if planned.is_empty() {
        anyhow::bail!("no runs match: check the paths and --filter / --scheme / --strategy");
    }
    if live_only > 0 {
        outln!(
            "{} with real programs as hops not run on {engine}: `--engine live` runs them",
            plural(live_only, "scenario")
        );
    }
    let style = Style::for_stdout();
    let width = scenarios.iter().map(|s| s.file.len()).max().unwrap_or(0);
    let case_width = planned
        .iter()
        .map(|p| scenarios[p.scenario].case_name(p.scheme).len())
        .max()
        .unwrap_or(0)
        .max(3);
    let files: std::collections::BTreeSet<&str> =
        scenarios.iter().map(|s| s.file.as_str()).collect();
    let expected_width = planned
        .iter()
        .filter_map(|p| scenarios[p.scenario].expected(p.scheme))
        .map(|o| o.as_str().len())
        .max()
        .unwrap_or(0);
    outln!(
        "running {} of {} on {engine} ({jobs} at a time)",
        plural(planned.len(), "run"),
        plural(files.len(), "scenario")
    );
    let mut failures = Vec::new();
    let mut results = Results::new(engine);
    let progress = Progress::start(planned.len());
    suite::execute(engine, &scenarios, &planned, jobs, |i, f| {
        progress.advance();
        progress.bar.suspend(|| {
            let p = &planned[i];
            let s = &scenarios[p.scenario];
            let entry = suite::result_entry(s, p, f);
            let verdict = if entry.pass {
                style.paint("32", "pass")
            } else {
                style.paint("31;1", "FAIL")
            };
            let fmt_ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
            outln!(
                "{:<width$}  {:<case_width$}  seed {:<3}  expected {:<expected_width$}  got {:<18}  {verdict}  hs {:>7} ms  rtt p50 {:>7} ms{}",
                entry.scenario,
                entry.scheme,
                entry.seed,
                entry.expected,
                entry.outcome,
                fmt_ms(entry.handshake_ms),
                fmt_ms(entry.rtt_median_ms),
                strategy_columns(&entry),
            );
            if show_transcript || !entry.pass {
                outln!("    detail: {}", entry.detail);
            }
            if show_transcript {
                if let Ok(out) = &f.output {
                    for line in out.rendered().lines() {
                        outln!("    {line}");
                    }
                }
            }
            if !entry.pass {
                let only = if s.strategy.is_some() { "--strategy" } else { "--scheme" };
                failures.push(format!(
                    "{invoked_as} {} {only} {} --seed {} --transcript",
                    entry.scenario, entry.scheme, entry.seed
                ));
            }
            results.runs.push(entry);
        });
    });
    progress.finish();
    let (passed, failed) = results.tally();
    if let Some(path) = results_path {
        gauntlet::files::write_file(&path, &results.to_json())
            .with_context(|| format!("writing {}", path.display()))?;
        outln!("results: {}", path.display());
    }
    if !failures.is_empty() {
        outln!("\nto reproduce a failure:");
        for f in &failures {
            outln!("  {f}");
        }
    }
    let summary = format!("{passed} passed, {failed} failed");
    outln!(
        "{}",
        if failed == 0 {
            style.paint("32", &summary)
        } else {
            style.paint("31;1", &summary)
        }
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// What a run of a strategy adds to its line: the transport it ended on and each attempt, the
/// time to the first message, the messages delivered and lost, and the bytes on the wire each
/// way with what they came to per application byte delivered. Nothing for a scheme's run.
fn strategy_columns(entry: &gauntlet_reports::Run) -> String {
    let Some(lost) = entry.lost else {
        return String::new();
    };
    let attempts: Vec<String> = entry
        .attempts
        .iter()
        .map(|a| format!("{} {}", a.transport, a.result))
        .collect();
    let first = entry
        .first_message_ms
        .map_or("-".to_string(), |v| format!("{v:.1}"));
    let wire = entry.wire.map_or(String::new(), |w| {
        let per = |r: Option<f64>| r.map_or("-".to_string(), |r| format!("{r:.2}"));
        format!(
            "  wire ↑{} B ↓{} B ({} ↑, {} ↓ per app byte)",
            w.up,
            w.down,
            per(w.up_ratio()),
            per(w.down_ratio())
        )
    });
    let reconnects = entry
        .reconnects
        .map_or(String::new(), |n| format!(", {n} reconnects"));
    format!(
        "  via {} ({})  first message {first} ms  {} delivered, {lost} lost{reconnects}{wire}",
        entry.transport,
        attempts.join(" → "),
        entry.received
    )
}

/// The progress bar of a suite run: drawn on stderr, only when stderr is a terminal and only
/// once the suite has taken more than a second, so short runs and piped output stay plain.
pub(crate) struct Progress {
    bar: indicatif::ProgressBar,
    /// Tells the thread that shows the bar after a second that the suite has ended.
    done: Option<std::sync::mpsc::Sender<()>>,
    shower: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    /// How long a suite runs before the bar appears.
    const DELAY: std::time::Duration = std::time::Duration::from_secs(1);

    pub(crate) fn start(runs: usize) -> Self {
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(runs as u64),
            indicatif::ProgressDrawTarget::hidden(),
        );
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} runs, {elapsed} elapsed, about {eta} left",
        ) {
            bar.set_style(style);
        }
        if !std::io::stderr().is_terminal() {
            return Self {
                bar,
                done: None,
                shower: None,
            };
        }
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let shown = bar.clone();
        let shower = std::thread::spawn(move || {
            // Disconnected (the suite ended) before the delay: never draw.
            if rx.recv_timeout(Self::DELAY) == Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
                shown.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                shown.enable_steady_tick(std::time::Duration::from_millis(200));
            }
        });
        Self {
            bar,
            done: Some(tx),
            shower: Some(shower),
        }
    }

    pub(crate) fn advance(&self) {
        self.bar.inc(1);
    }

    pub(crate) fn finish(mut self) {
        drop(self.done.take());
        if let Some(shower) = self.shower.take() {
            let _ = shower.join();
        }
        self.bar.finish_and_clear();
    }
}
