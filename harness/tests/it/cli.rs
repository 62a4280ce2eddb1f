//! The `gauntlet` binary as users call it: exit codes and what it prints.

use std::path::{Path, PathBuf};
use std::process::Command;

use gauntlet_reports::{Latency, Results, Run};

/// Runs the `gauntlet` binary from the workspace root: its exit code and everything it printed.
pub(crate) fn gauntlet(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gauntlet"))
        .current_dir(crate::root())
        .args(args)
        .output()
        .expect("the gauntlet binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn check_accepts_the_catalogue() {
    let (code, text) = gauntlet(&["check", "scenarios"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains(" 0 invalid"), "{text}");
}

#[test]
fn check_rejects_a_misspelt_key_and_a_wrong_type_with_file_line_col() {
    let (code, text) = gauntlet(&[
        "check",
        "harness/tests/bad/misspelt-key.toml",
        "harness/tests/bad/wrong-type.toml",
    ]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("harness/tests/bad/misspelt-key.toml:2:1: unknown field `titel`"),
        "{text}"
    );
    assert!(
        text.contains("harness/tests/bad/wrong-type.toml:8:12: invalid type: string \"five\""),
        "{text}"
    );
    assert!(text.contains("0 valid, 2 invalid"), "{text}");
}

#[test]
fn a_missed_expectation_fails_the_run_and_prints_how_to_reproduce_it() {
    let (code, text) = gauntlet(&["run", "harness/tests/fixtures/wrong-expectation.toml"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("got delivered"), "{text}");
    assert!(text.contains("FAIL"), "{text}");
    assert!(
        text.contains("gauntlet run harness/tests/fixtures/wrong-expectation.toml --scheme ws --seed 4 --transcript"),
        "{text}"
    );
    assert!(text.trim_end().ends_with("0 passed, 1 failed"), "{text}");
}

#[test]
fn run_refuses_invalid_files_and_bad_flags_with_exit_code_2() {
    let (code, text) = gauntlet(&["run", "harness/tests/bad/unknown-model.toml"]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("unknown-model.toml:6:9: unknown model `transparant-proxy`"),
        "{text}"
    );
    let (code, text) = gauntlet(&["run", "scenarios", "--scheme", "http"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("not a scheme"), "{text}");
    let (code, text) = gauntlet(&["run", "scenarios", "--filter", "no-such-scenario"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("no runs match"), "{text}");
}

/// A results file with one run of `scenarios/a.toml` over ws, seed 1, and one over wss, with
/// the ws run's outcome and p99 latency as given.
fn results_file(dir: &Path, name: &str, ws_outcome: &str, ws_p99: f64) -> String {
    let run = |scheme: &str, outcome: &str, p99: f64| Run {
        scenario: "scenarios/a.toml".into(),
        scheme: scheme.into(),
        seed: 1,
        expected: "delivered".into(),
        outcome: outcome.into(),
        pass: outcome == "delivered",
        detail: format!("{outcome} at 120 ms"),
        handshake_ms: Some(15.0),
        rtt_median_ms: Some(10.0),
        latency: Some(Latency {
            p50: 10.0,
            p90: p99,
            p99,
            max: p99,
            count: 5,
        }),
        ..Run::default()
    };
    let mut results = Results::new("sim");
    results.runs = vec![run("ws", ws_outcome, ws_p99), run("wss", "delivered", 20.0)];
    let path = dir.join(name);
    std::fs::write(&path, results.to_json()).unwrap();
    path.to_str().unwrap().to_string()
}

/// A fresh folder for one test's files under the target directory.
fn temp_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("cli-diff")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn diff_exits_0_when_nothing_regressed_and_1_when_a_pass_turns_into_a_fail() {
    let dir = temp_dir("outcomes");
    let old = results_file(&dir, "old.json", "delivered", 20.0);
    let same = results_file(&dir, "same.json", "delivered", 20.0);
    let failing = results_file(&dir, "failing.json", "reset", 20.0);

    let (code, text) = gauntlet(&["diff", &old, &same]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(
        text,
        "0 regressions, 0 improvements, 0 other changes (2 runs compared)\n"
    );

    let (code, text) = gauntlet(&["diff", &old, &failing]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(
            "Regressions (1):\n  scenarios/a.toml ws seed 1: pass → FAIL: delivered → reset (expected delivered); detail: reset at 120 ms\n"
        ),
        "{text}"
    );
    assert!(
        text.ends_with("1 regression, 0 improvements, 0 other changes (2 runs compared)\n"),
        "{text}"
    );

    // The other way round, the fail that turns into a pass is an improvement: exit 0.
    let (code, text) = gauntlet(&["diff", &failing, &old]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("Improvements (1):\n  scenarios/a.toml ws seed 1: FAIL → pass"),
        "{text}"
    );
}

#[test]
fn diff_gates_on_latency_beyond_both_thresholds() {
    let dir = temp_dir("latency");
    let old = results_file(&dir, "old.json", "delivered", 20.0);
    let slower = results_file(&dir, "slower.json", "delivered", 31.0);

    let (code, text) = gauntlet(&["diff", &old, &slower]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("scenarios/a.toml ws seed 1: latency p99 20 ms → 31 ms (+11 ms, +55%)"),
        "{text}"
    );
    // +11 ms is within a 12 ms threshold, and +55 % within a 60 % one.
    let (code, text) = gauntlet(&["diff", &old, &slower, "--threshold-ms", "12"]);
    assert_eq!(code, 0, "{text}");
    let (code, text) = gauntlet(&["diff", &old, &slower, "--threshold-pct", "60"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("0 regressions"), "{text}");
}

#[test]
fn diff_refuses_missing_broken_and_foreign_files_with_exit_code_2() {
    let dir = temp_dir("bad-input");
    let good = results_file(&dir, "good.json", "delivered", 20.0);
    let missing = dir.join("missing.json");
    let missing = missing.to_str().unwrap();
    let (code, text) = gauntlet(&["diff", missing, &good]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains(&format!("cannot read results file {missing}")),
        "{text}"
    );

    let broken = dir.join("broken.json");
    std::fs::write(&broken, "{\"version\": 1,\n  \"runs\": [}\n").unwrap();
    let broken = broken.to_str().unwrap();
    let (code, text) = gauntlet(&["diff", &good, broken]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains(&format!("{broken}: not valid JSON: ")),
        "{text}"
    );
    assert!(text.contains("at line 2 column 12"), "{text}");

    let foreign = dir.join("foreign.json");
    std::fs::write(&foreign, "{\"wall_ms\": 120, \"peak_rss\": 7}\n").unwrap();
    let foreign = foreign.to_str().unwrap();
    let (code, text) = gauntlet(&["diff", &good, foreign]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains(&format!("{foreign}: not a results file: missing field")),
        "{text}"
    );

    let future = dir.join("future.json");
    std::fs::write(&future, "{\"version\": 9, \"runs\": []}\n").unwrap();
    let future = future.to_str().unwrap();
    let (code, text) = gauntlet(&["diff", future, &good]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains(&format!(
            "{future}: results schema version 9 is not supported"
        )),
        "{text}"
    );

    let (code, text) = gauntlet(&["diff", &good, &good, "--threshold-ms=-1"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("not a threshold"), "{text}");
}

#[test]
fn report_writes_four_files_and_check_names_the_command_when_the_page_is_stale() {
    let dir = temp_dir("report");
    let results = results_file(&dir, "results.json", "handshake-rejected", 20.0);
    let out = dir.join("out");
    let page = dir.join("TRAVERSAL.md");
    let (out_s, page_s) = (out.to_str().unwrap(), page.to_str().unwrap());

    let (code, text) = gauntlet(&["report", &results, "--out", out_s, "--traversal", page_s]);
    assert_eq!(code, 0, "{text}");
    for name in ["report.md", "report.html", "report.xml", "report.json"] {
        let written = std::fs::read_to_string(out.join(name)).unwrap();
        assert!(!written.is_empty(), "{name} is empty");
    }
    let json = std::fs::read_to_string(out.join("report.json")).unwrap();
    assert_eq!(Results::from_json(&json).unwrap().runs.len(), 2);
    let written = std::fs::read_to_string(&page).unwrap();
    assert!(written.contains("| `a.toml` |") || written.contains("`scenarios/a.toml`"));

    let check = [
        "report",
        &results,
        "--out",
        out_s,
        "--traversal",
        page_s,
        "--check",
    ];
    let (code, text) = gauntlet(&check);
    assert_eq!(code, 0, "a page just written is current: {text}");

    std::fs::write(
        &page,
        written.replacen("handshake-rejected", "delivered", 1),
    )
    .unwrap();
    let (code, text) = gauntlet(&check);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("is stale: run `gauntlet report` and commit it"),
        "{text}"
    );
    assert!(
        text.contains("+ ") && text.contains("handshake-rejected"),
        "{text}"
    );

    std::fs::remove_file(&page).unwrap();
    let (code, text) = gauntlet(&check);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("does not exist"), "{text}");
}

#[test]
fn report_refuses_an_unreadable_results_file_with_exit_code_2() {
    let dir = temp_dir("report-bad");
    let missing = dir.join("missing.json");
    let (code, text) = gauntlet(&["report", missing.to_str().unwrap()]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("cannot read results file"), "{text}");
}

#[test]
fn every_traversal_branch_names_a_catalogue_scenario() {
    for branch in gauntlet_reports::traversal::BRANCHES {
        let path = crate::root().join(branch.scenario);
        assert!(
            path.is_file(),
            "{} is not in the catalogue",
            branch.scenario
        );
        let scenario = gauntlet::scenario::load(&path).expect("a valid scenario");
        assert!(
            scenario.client.schemes.len() == 2,
            "{} must run both ws and wss",
            branch.scenario
        );
    }
}

/// Runs the `gauntlet` binary from the workspace root as a child with a bounded wait (a
/// command that reads forever fails the test rather than hanging it).
fn gauntlet_bounded(what: &str, args: &[&str]) -> crate::process::Exit {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gauntlet"));
    command.current_dir(crate::root()).args(args);
    crate::process::Process::start(what, &mut command).wait()
}

#[test]
fn files_beyond_the_size_limits_are_refused_naming_the_file_and_the_limit() {
    // An endless file ends at the limit.
    let exit = gauntlet_bounded("gauntlet diff /dev/zero", &["diff", "/dev/zero", "x.json"]);
    assert_eq!(exit.code, Some(2), "{exit:?}");
    assert!(
        exit.stderr.contains(
            "cannot read results file /dev/zero: larger than 256 MiB, the most a results file may hold"
        ),
        "{exit:?}"
    );
    let exit = gauntlet_bounded("gauntlet report /dev/zero", &["report", "/dev/zero"]);
    assert_eq!(exit.code, Some(2), "{exit:?}");
    assert!(
        exit.stderr.contains("/dev/zero: larger than 256 MiB"),
        "{exit:?}"
    );
    let exit = gauntlet_bounded("gauntlet check /dev/zero", &["check", "/dev/zero"]);
    assert_eq!(exit.code, Some(1), "{exit:?}");
    assert!(
        exit.stdout.contains(
            "invalid /dev/zero:1:1: cannot read the file: larger than 4 MiB, the most a scenario file may hold"
        ),
        "{exit:?}"
    );

    // A scenario file one byte over the limit: a valid file and a long comment.
    let dir = temp_dir("too-large");
    let big = dir.join("big.toml");
    let valid = std::fs::read_to_string(crate::root().join("scenarios/baseline/direct.toml"))
        .expect("the catalogue's direct.toml");
    let mut text = format!("{valid}\n#");
    text.push_str(&"x".repeat((4 << 20) - text.len() + 1));
    std::fs::write(&big, &text).unwrap();
    let big = big.to_str().unwrap();
    let exit = gauntlet_bounded("gauntlet check big.toml", &["check", big]);
    assert_eq!(exit.code, Some(1), "{exit:?}");
    assert!(
        exit.stdout.contains(&format!(
            "invalid {big}:1:1: cannot read the file: larger than 4 MiB"
        )),
        "{exit:?}"
    );
    // At the limit, it is read.
    std::fs::write(dir.join("big.toml"), &text[..text.len() - 1]).unwrap();
    let exit = gauntlet_bounded("gauntlet check big.toml", &["check", big]);
    assert_eq!(exit.code, Some(0), "{exit:?}");
}

/// Runs the `gauntlet` binary from the workspace root with `stdout` as its standard output
/// and a bounded wait.
fn gauntlet_with_stdout(args: &[&str], stdout: std::process::Stdio) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_gauntlet"))
        .current_dir(crate::root())
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(stdout)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the gauntlet binary runs")
}

/// Waits for `child` at most [`crate::process::PATIENCE`], killing it on the way out: its
/// exit status and what it wrote on stderr.
fn bounded_wait(child: std::process::Child) -> (std::process::ExitStatus, String) {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(crate::process::PATIENCE) {
        Ok(out) => {
            let out = out.expect("the child's output");
            (
                out.status,
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!(
                "gauntlet (pid {pid}) did not exit within {:?}",
                crate::process::PATIENCE
            );
        }
    }
}

/// `gauntlet … | head`: when stdout is closed, a command ends quietly, as Unix tools do: no
/// panic message, nothing on stderr, and exit status 141 (128 + SIGPIPE, what the shell shows
/// for a tool SIGPIPE ended). Here the reading end is gone before the command starts, so its
/// first line already meets the closed stream.
#[test]
fn every_command_ends_quietly_when_stdout_is_closed() {
    use std::os::fd::OwnedFd;
    let dir = temp_dir("closed-stdout");
    let results = results_file(&dir, "results.json", "delivered", 20.0);
    let out = dir.join("out");
    let out = out.to_str().unwrap();
    let commands: [&[&str]; 7] = [
        &["check", "scenarios"],
        &["run", "scenarios/baseline/direct.toml"],
        &["bench", "scenarios/baseline/direct.toml"],
        &["report", &results, "--out", out],
        &["diff", &results, &results],
        &["differential", "scenarios/live"],
        &["overhead"],
    ];
    for args in commands {
        // A stream whose other end is closed: every write fails with EPIPE.
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        drop(ours);
        let child = gauntlet_with_stdout(args, OwnedFd::from(theirs).into());
        let (status, stderr) = bounded_wait(child);
        assert!(!stderr.contains("panicked"), "gauntlet {args:?}: {stderr}");
        assert_eq!(
            status.code(),
            Some(141),
            "gauntlet {args:?}: {status}: {stderr}"
        );
        assert_eq!(stderr, "", "gauntlet {args:?}");
    }
}

/// The same through a real pipe closed after the first line, while the command is writing.
#[test]
fn a_run_stops_quietly_when_its_reader_goes_away() {
    use std::io::BufRead as _;
    // The catalogue's transcripts are several times what a pipe holds, so the run is still
    // writing when the reader goes.
    let mut child = gauntlet_with_stdout(
        &["run", "scenarios", "--transcript"],
        std::process::Stdio::piped(),
    );
    let mut reader = std::io::BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    assert!(first.ends_with('\n'), "{first:?}");
    drop(reader);
    let (status, stderr) = bounded_wait(child);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(status.code(), Some(141), "{status}: {stderr}");
}

#[test]
fn counts_beyond_what_a_run_can_hold_are_refused_with_exit_code_2() {
    for args in [
        &[
            "run",
            "scenarios/baseline/direct.toml",
            "--seeds",
            "18446744073709551615",
        ][..],
        &[
            "bench",
            "scenarios/baseline/direct.toml",
            "--seeds",
            "100001",
        ],
        &[
            "bench",
            "scenarios/baseline/direct.toml",
            "--clients",
            "18446744073709551615",
        ],
    ] {
        let exit = gauntlet_bounded("gauntlet with a huge count", args);
        assert_eq!(exit.code, Some(2), "{args:?}: {exit:?}");
        assert!(!exit.stderr.contains("panicked"), "{args:?}: {exit:?}");
        assert!(exit.stderr.contains("1..=100000"), "{args:?}: {exit:?}");
    }
}
