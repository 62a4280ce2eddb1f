//! Populations: the shipped ones read and run, `huang-2011` reproduces the rates it was
//! calibrated on, sampling follows the weights, the same seed gives the same bytes whatever
//! the threads, shards merge into the bytes of the run without shards, and mistakes in a
//! population file are located.

use std::path::{Path, PathBuf};
use std::process::Command;

use gauntlet::population::{self, BUILTIN, Options, Population};
use gauntlet_reports::population::{Populations, to_json};

fn shipped(name: &str) -> Population {
    population::resolve(name)
        .unwrap_or_else(|| panic!("{name} is not shipped"))
        .unwrap_or_else(|e| panic!("{e}"))
        .remove(0)
}

fn run(pops: &[Population], sessions: u64, jobs: usize, strategies: &[&str]) -> Populations {
    let opts = Options {
        sessions,
        shard: None,
        jobs,
        strategies: strategies.iter().map(|s| s.to_string()).collect(),
        ping_intervals: None,
        reconnect: None,
    };
    population::run(pops, &opts, &|_| {}).unwrap().0
}

#[test]
fn huang_2011_reproduces_the_rates_it_was_calibrated_on() {
    let p = run(
        &[shipped("huang-2011")],
        10_000,
        2,
        &["long-polling", "ws", "connect-handshake"],
    );
    let cells = &p.populations[0].cells;
    let (post, upgrade, connect) = (cells[0].success(), cells[1].success(), cells[2].success());
    // Huang et al. 2011: POST-based 90.2%, Upgrade-based 86.8%, CONNECT-based 86.6%.
    assert!(post.contains(0.902), "long-polling {}", post.text());
    assert!(upgrade.contains(0.868), "ws {}", upgrade.text());
    assert!(
        connect.contains(0.866),
        "connect-handshake {}",
        connect.text()
    );
    // And the default session count puts each within ±1 point.
    for i in [post, upgrade, connect] {
        assert!(i.high - i.low <= 0.02, "{}", i.text());
    }
    // The file says so too: its calibration targets are these three.
    let targets: Vec<(&str, f64)> = p.populations[0]
        .calibration
        .iter()
        .map(|c| (c.strategy.as_str(), c.rate))
        .collect();
    assert_eq!(
        targets,
        [
            ("long-polling", 0.902),
            ("ws", 0.868),
            ("connect-handshake", 0.866)
        ]
    );
}

#[test]
fn sessions_take_the_paths_in_proportion_to_their_weights() {
    let p = run(&[shipped("huang-2011")], 20_000, 2, &["ws"]);
    let pop = &p.populations[0];
    let cell = &pop.cells[0];
    for (info, tally) in pop.paths.iter().zip(&cell.paths) {
        let share = gauntlet_reports::population::wilson(tally.sessions, cell.sessions);
        assert!(
            share.contains(info.share),
            "{}: {} of {} sessions for a weight of {}",
            info.name,
            tally.sessions,
            cell.sessions,
            info.share
        );
    }
}

#[test]
fn the_same_seed_gives_the_same_bytes_on_one_thread_or_two() {
    let pops = [shipped("public-wifi")];
    let one = run(&pops, 3_000, 1, &["ws", "long-polling"]);
    let two = run(&pops, 3_000, 2, &["ws", "long-polling"]);
    assert_eq!(to_json(&one), to_json(&two));
    // Another seed draws other sessions: the counts move.
    let mut other = pops[0].clone();
    other.seed += 1;
    let moved = run(&[other], 3_000, 2, &["ws", "long-polling"]);
    assert_ne!(
        one.populations[0].cells[0].paths,
        moved.populations[0].cells[0].paths
    );
}

#[test]
fn every_shipped_population_runs_its_own_sweep() {
    assert!(BUILTIN.len() >= 7, "{} shipped", BUILTIN.len());
    for (file, _) in BUILTIN {
        let name = file.strip_suffix(".toml").unwrap();
        let pop = shipped(name);
        let opts = Options {
            sessions: 300,
            shard: None,
            jobs: 2,
            strategies: Vec::new(),
            ping_intervals: Some(Vec::new()),
            reconnect: None,
        };
        let (p, ran) = population::run(&[pop], &opts, &|_| {}).unwrap();
        assert_eq!(ran.sessions, 300, "{name}");
        for c in &p.populations[0].cells {
            assert_eq!(c.sessions, 300, "{name} {}", c.label());
            assert_eq!(
                c.outcomes.values().sum::<u64>(),
                300,
                "{name} {}",
                c.label()
            );
        }
        // Every path's source is written down.
        assert!(p.populations[0].paths.iter().all(|p| !p.source.is_empty()));
    }
}

fn gauntlet(args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_gauntlet"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "gauntlet {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn temp_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("population")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn four_shards_merged_are_the_run_without_shards_byte_for_byte() {
    let dir = temp_dir("shards");
    let (whole, parts, merged) = (dir.join("whole"), dir.join("parts"), dir.join("merged"));
    let common = [
        "population",
        "huang-2011",
        "mobile-carrier",
        "ws",
        "long-polling",
        "--sessions",
        "2001",
        "--ping-interval-ms",
        "20000,90000",
    ];
    let mut args: Vec<&str> = common.to_vec();
    args.extend(["--out", whole.to_str().unwrap()]);
    gauntlet(&args);
    let mut shards = Vec::new();
    for i in 0..4 {
        let shard = format!("{i}/4");
        let mut args: Vec<&str> = common.to_vec();
        args.extend(["--shard", &shard, "--out", parts.to_str().unwrap()]);
        gauntlet(&args);
        shards.push(parts.join(format!("populations.shard-{i}-of-4.json")));
    }
    // Merged in another order than run.
    shards.reverse();
    let mut args: Vec<&str> = vec!["merge"];
    args.extend(shards.iter().map(|p| p.to_str().unwrap()));
    args.extend(["--out", merged.to_str().unwrap()]);
    gauntlet(&args);
    for file in ["populations.json", "populations.md", "populations.html"] {
        let a = std::fs::read(whole.join(file)).unwrap();
        let b = std::fs::read(merged.join(file)).unwrap();
        assert!(
            a == b,
            "{file} differs between the whole run and the merged shards"
        );
    }
    // Three shards of four are refused, naming the one missing.
    let out = Command::new(env!("CARGO_BIN_EXE_gauntlet"))
        .arg("merge")
        .args(&shards[..3])
        .args(["--out", merged.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("shards missing: 0/4"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn mistakes_in_a_population_file_are_located() {
    let head = "format = 1\ntitle = \"t\"\nsource = \"s\"\n";
    let path = "[[path]]\nname = \"p\"\nweight = 1\nsource = \"s\"\n";
    for (body, line, col, says) in [
        ("colour = 1\n", 4, 1, "unknown field `colour`"),
        ("", 4, 1, "at least one `[[path]]`"),
        (
            "[[path]]\nname = \"p\"\nweight = 0\nsource = \"s\"\n",
            6,
            10,
            "`weight` is a number above 0",
        ),
        (
            &format!(
                "{path}[[path.hop]]\nmodel = \"idle-killer\"\ntimeout-ms = {{ uniform = [9, 1] }}\n"
            ),
            10,
            14,
            "`timeout-ms`: `uniform` takes two whole numbers",
        ),
        (
            &format!(
                "{path}[[path.hop]]\nmodel = \"idle-killer\"\ntimeout-ms = {{ choice = [1000, \"soon\"] }}\n"
            ),
            4,
            1,
            "path `p` with strategy `ws` makes no valid scenario",
        ),
        (&format!("{path}{path}"), 8, 1, "a second path named `p`"),
        (
            &format!("[session]\nstrategies = [\"ws\"]\n{path}"),
            4,
            1,
            "`[session]` has no `strategies`",
        ),
        (
            &format!("[sweep]\nstrategies = [\"morse\"]\n{path}"),
            1,
            1,
            "`morse` is not a strategy",
        ),
    ] {
        let text = format!("{head}{body}");
        let err = population::parse("p.toml", &text, "p").unwrap_err();
        assert!(err.message.contains(says), "{body}: {err}");
        assert_eq!((err.line, err.col), (line, col), "{body}: {err}");
    }
}

#[test]
fn the_format_documentations_example_is_a_valid_population() {
    let readme = std::fs::read_to_string(crate::root().join("scenarios/README.md")).unwrap();
    let section = &readme[readme.find("## Populations (`populations/`)").unwrap()..];
    let start = section.find("```toml\n").unwrap() + "```toml\n".len();
    let text = &section[start..start + section[start..].find("```").unwrap()];
    let pop =
        population::parse("README example", text, "example").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pop.name, "my-users");
    let p = run(&[pop], 200, 2, &[]);
    // Four strategies, the three with a WebSocket of their own at two ping intervals, each
    // with and without reconnection: 3 × 2 × 2 + 1 × 2.
    assert_eq!(p.populations[0].cells.len(), 14);
}
