use super::*;

fn cell(strategy: &str, succeeded: u64, sessions: u64) -> Cell {
    Cell {
        strategy: strategy.into(),
        sessions,
        succeeded,
        outcomes: BTreeMap::from([
            ("delivered".into(), succeeded),
            ("handshake-rejected".into(), sessions - succeeded),
        ]),
        paths: vec![
            PathTally {
                sessions: sessions / 2,
                succeeded: succeeded / 2,
            },
            PathTally::default(),
        ],
        first_message_ms: vec![(30, succeeded)],
        messages: sessions,
        lost: sessions - succeeded,
        ..Cell::default()
    }
}

fn shard(index: u64, count: u64, n: u64) -> Populations {
    Populations {
        version: VERSION,
        sessions: 100,
        shard: Some(Shard { index, count }),
        populations: vec![Population {
            name: "p".into(),
            file: "p.toml".into(),
            title: "t".into(),
            source: "s".into(),
            seed: 1,
            input: "abc".into(),
            paths: vec![],
            marks: vec![],
            calibration: vec![],
            cells: vec![cell("ws", n, 50), cell("wss", 50, 50)],
        }],
    }
}

#[test]
fn shards_merge_into_their_sums_and_refuse_what_is_not_one_run() {
    let merged = Populations::merge(&[shard(1, 2, 40), shard(0, 2, 45)]).unwrap();
    assert_eq!(merged.shard, None);
    let ws = &merged.populations[0].cells[0];
    assert_eq!((ws.sessions, ws.succeeded), (100, 85));
    assert_eq!(ws.outcomes["handshake-rejected"], 15);
    assert_eq!(ws.first_message_ms, vec![(30, 85)]);
    assert_eq!(ws.paths[0].sessions, 50);
    // Merged in either order, the bytes are the same.
    let other = Populations::merge(&[shard(0, 2, 45), shard(1, 2, 40)]).unwrap();
    assert_eq!(to_json(&merged), to_json(&other));
    assert_eq!(from_json(&to_json(&merged)).unwrap(), merged);

    assert_eq!(
        Populations::merge(&[shard(0, 2, 1)]),
        Err(MergeError::Missing("1/2".into()))
    );
    assert_eq!(
        Populations::merge(&[shard(0, 2, 1), shard(0, 2, 1)]),
        Err(MergeError::Twice { index: 0, count: 2 })
    );
    let mut foreign = shard(1, 2, 1);
    foreign.populations[0].input = "def".into();
    assert!(matches!(
        Populations::merge(&[shard(0, 2, 1), foreign]),
        Err(MergeError::Different { file: 2, .. })
    ));
    let mut whole = shard(0, 1, 1);
    whole.shard = None;
    assert_eq!(Populations::merge(&[whole]), Err(MergeError::NotAShard(1)));
}

#[test]
fn the_recommendation_states_its_evidence() {
    let p = shard(0, 1, 40);
    let text = render::recommendation(&p.populations[0]);
    assert!(
        text.starts_with(
            "**wss** reaches 100.0% [92.9, 100.0] of `p`; ws alone 80.0% [67.0, 88.8]"
        ),
        "{text}"
    );
}
