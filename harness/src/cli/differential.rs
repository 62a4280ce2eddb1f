//! `gauntlet differential`: real products live against their models' twins.

use crate::*;

pub(crate) fn differential(paths: Vec<PathBuf>, jobs: usize) -> anyhow::Result<ExitCode> {
    let paths = if paths.is_empty() {
        vec![PathBuf::from("scenarios/live")]
    } else {
        paths
    };
    let sel = Selection {
        paths,
        filter: None,
        scheme: None,
        seed: None,
        seeds: None,
    };
    let (scenarios, _) = match suite::plan(&sel) {
        Ok(p) => p,
        Err(errors) => {
            for e in &errors {
                errln!("{e}");
            }
            anyhow::bail!("{} invalid scenario file(s)", errors.len());
        }
    };
    let pairs = scenarios.iter().filter(|s| s.twin.is_some()).count();
    if pairs == 0 {
        anyhow::bail!("none of the selected scenarios names a twin");
    }
    outln!(
        "comparing {} live with {} on {} ({jobs} live runs at a time)",
        plural(pairs, "scenario"),
        if pairs == 1 {
            "its twin"
        } else {
            "their twins"
        },
        engine::sim::Sim.name()
    );
    let style = Style::for_stdout();
    fn show(o: &Result<gauntlet::verdict::outcome::Outcome, impl std::fmt::Display>) -> String {
        match o {
            Ok(o) => o.to_string(),
            Err(e) => format!("error ({e})"),
        }
    }
    let width = scenarios.iter().map(|s| s.file.len()).max().unwrap_or(0);
    let case_width = scenarios
        .iter()
        .flat_map(|s| {
            s.client
                .schemes
                .iter()
                .map(|&scheme| s.case_name(scheme).len())
        })
        .max()
        .unwrap_or(3);
    let comparisons = gauntlet::real::differential::compare(&scenarios, jobs, |c| {
        let verdict = if c.agrees() {
            style.paint("32", "agree   ")
        } else {
            style.paint("31;1", "DISAGREE")
        };
        outln!(
            "{verdict}  {:<width$}  {:<case_width$}  live {:<18}  model {:<18}  (twin {})",
            c.live,
            c.case,
            show(&c.live_outcome),
            show(&c.twin_outcome),
            c.twin
        );
        if !c.live_passed() {
            let expected = c.live_expected.map_or("-".to_string(), |e| e.to_string());
            outln!(
                "    the live run expected {expected}: {}",
                if c.live_detail.is_empty() {
                    show(&c.live_outcome)
                } else {
                    c.live_detail.clone()
                }
            );
        }
    });
    let agree = comparisons.iter().filter(|c| c.agrees()).count();
    let disagree = comparisons.len() - agree;
    let missed = comparisons.iter().filter(|c| !c.live_passed()).count();
    if missed > 0 {
        outln!("{} missed its own expectation", plural(missed, "live run"));
    }
    let summary = format!("{agree} agree, {disagree} disagree");
    let ok = disagree == 0 && missed == 0;
    outln!("{}", style.paint(if ok { "32" } else { "31;1" }, &summary));
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
