//! Same seed, same results: the whole catalogue twice, compared apart from wall time.

use gauntlet::suite::{Selection, run_all};
use gauntlet_reports::Results;

fn catalogue(seed: u64) -> Results {
    let sel = Selection {
        paths: vec![crate::root().join("scenarios")],
        filter: None,
        scheme: None,
        seed: Some(seed),
        seeds: None,
    };
    let mut results = run_all("turmoil", &sel, 2).unwrap_or_else(|errors| {
        panic!(
            "{}",
            errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    for r in &mut results.runs {
        r.wall_ms = 0;
    }
    results
}

#[test]
fn the_catalogue_run_twice_with_one_seed_gives_identical_results() {
    let first = catalogue(1);
    let second = catalogue(1);
    assert!(first.runs.len() >= 10, "only {} runs", first.runs.len());
    assert!(first.runs.iter().all(|r| !r.transcript_hash.is_empty()));
    assert_eq!(first.to_json(), second.to_json());
}

#[test]
fn different_seeds_still_meet_every_expectation() {
    let results = catalogue(7);
    let failed: Vec<String> = results
        .runs
        .iter()
        .filter(|r| !r.pass)
        .map(|r| format!("{} {}: {} ({})", r.scenario, r.scheme, r.outcome, r.detail))
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
}
