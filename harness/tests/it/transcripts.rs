//! Every scenario's transcript, for each scheme with the scenario's first seed, as an insta
//! snapshot: a change in behaviour shows up as a reviewable diff (`cargo insta review`).

use gauntlet::engine::sim::Sim;
use gauntlet::run::run;
use gauntlet::scenario;

#[test]
fn scenario_transcripts_match_their_snapshots() {
    let root = crate::root();
    insta::glob!("../../../scenarios", "**/*.toml", |path| {
        let relative = path.strip_prefix(&root).unwrap_or(path);
        let s = scenario::load(relative).unwrap_or_else(|e| panic!("{e}"));
        if s.path.iter().any(scenario::Hop::is_real) {
            // Real programs run on the live engine only; its tests cover them.
            return;
        }
        for &scheme in &s.client.schemes {
            let out =
                run(&Sim, &s, scheme, s.seeds[0]).unwrap_or_else(|e| panic!("{}: {e:#}", s.file));
            assert!(
                out.pass(),
                "{} {scheme} seed {}: expected {}, got {}: {}",
                s.file,
                out.seed,
                out.expected,
                out.report.outcome,
                out.report.detail
            );
            let text = format!(
                "{}\n{scheme} seed {}: expected {}, got {}: {}\n\n{}",
                s.title,
                out.seed,
                out.expected,
                out.report.outcome,
                out.report.detail,
                out.rendered()
            );
            insta::assert_snapshot!(scheme.as_str(), text);
        }
    });
}
