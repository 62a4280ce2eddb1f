//! Every scenario's transcript, for each scheme (or strategy) with the scenario's first seed,
//! as an insta snapshot: a change in behaviour shows up as a reviewable diff (`cargo insta
//! review`).

use gauntlet::engine::sim::Sim;
use gauntlet::run::run;
use gauntlet::scenario;

#[test]
fn scenario_transcripts_match_their_snapshots() {
    let root = crate::root();
    insta::glob!("../../../scenarios", "**/*.toml", |path| {
        let relative = path.strip_prefix(&root).unwrap_or(path);
        if relative
            .components()
            .any(|c| c.as_os_str() == gauntlet::run::suite::POPULATIONS_DIR)
        {
            // Population files are not scenarios (`tests/it/population.rs` runs them).
            return;
        }
        let s = scenario::load(relative).unwrap_or_else(|e| panic!("{e}"));
        if s.needs_live() {
            // Real programs run on the live engine only; its tests cover them.
            return;
        }
        // A file of strategies is a scenario per strategy, each snapshot named after it.
        for case in s.cases() {
            for &scheme in &case.client.schemes {
                let name = case.case_name(scheme);
                let out = run(&Sim, &case, scheme, case.seeds[0])
                    .unwrap_or_else(|e| panic!("{}: {e:#}", case.file));
                assert!(
                    out.pass(),
                    "{} {name} seed {}: expected {}, got {}: {}",
                    case.file,
                    out.seed,
                    out.expected,
                    out.report.outcome,
                    out.report.detail
                );
                let text = format!(
                    "{}\n{name} seed {}: expected {}, got {}: {}\n\n{}",
                    case.title,
                    out.seed,
                    out.expected,
                    out.report.outcome,
                    out.report.detail,
                    out.rendered()
                );
                insta::assert_snapshot!(name, text);
            }
        }
    });
}
