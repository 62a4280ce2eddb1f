//! The `gauntlet` binary as users call it: exit codes and what it prints.

use std::process::Command;

fn gauntlet(args: &[&str]) -> (i32, String) {
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
