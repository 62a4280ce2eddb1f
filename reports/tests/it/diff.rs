use gauntlet_reports::{DiffOptions, Latency, diff};

use crate::fixture::{self, BUFFERING, DIRECT, IDLE, NASTY_DETAIL, ODD, STRIP};

/// The fixture against a later set of results in which one of each kind of change happened.
#[test]
fn diff_of_the_fixture_against_a_changed_copy() {
    let old = fixture::results();
    let mut new = old.clone();
    new.engine = "sim".into();
    for r in &mut new.runs {
        match (r.scenario.as_str(), r.scheme.as_str(), r.seed) {
            // pass → fail, with the detail that says why.
            (DIRECT, "wss", 1) => {
                r.outcome = "closed-abnormally".into();
                r.pass = false;
                r.detail = NASTY_DETAIL.into();
            }
            // fail → pass.
            (BUFFERING, "ws", 1) => {
                r.outcome = "delivered".into();
                r.pass = true;
            }
            // The latency tail grew: p99 25 → 45 ms; the handshake moved by 3 ms only.
            (STRIP, "wss", 1) => {
                r.latency = Some(Latency {
                    p99: 45.0,
                    ..r.latency.unwrap()
                });
                r.handshake_ms = r.handshake_ms.map(|h| h + 3.0);
            }
            // A faster handshake.
            (DIRECT, "ws", 1) => r.handshake_ms = Some(4.0),
            // Still failing, differently.
            (ODD, "ws", 7) => r.outcome = "reset".into(),
            _ => {}
        }
    }
    // One seed gone, one added.
    new.runs
        .retain(|r| !(r.scenario == IDLE && r.scheme == "ws" && r.seed == 2));
    let mut added = new.runs[0].clone();
    added.seed = 99;
    new.runs.push(added);

    let d = diff(&old, &new, &DiffOptions::default());
    assert!(d.regressed());
    insta::assert_snapshot!(d.render());
}

#[test]
fn the_fixture_against_itself_has_nothing_to_say() {
    let results = fixture::results();
    let d = diff(&results, &results, &DiffOptions::default());
    assert!(!d.regressed());
    assert_eq!(
        d.render(),
        "0 regressions, 0 improvements, 0 other changes (10 runs compared)\n"
    );
}
