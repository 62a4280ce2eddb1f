//! `cargo xtask fuzz` and `cargo xtask soak`: build the `gauntlet` and `gauntlet-hardening`
//! binaries together (the dev profile by default, the build `cargo test` and `cargo xtask
//! scenarios` share; `--release` for long campaigns) and run `gauntlet-hardening`, which
//! starts `gauntlet serve` and `gauntlet proxy` from the built `gauntlet` binary when a target
//! needs real processes.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// Builds both binaries in `profile`; returns (gauntlet, gauntlet-hardening).
fn build(root: &Path, profile: &str) -> Result<(PathBuf, PathBuf), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .args(["build", "--quiet", "--profile", profile])
        .args(["--package", "gauntlet", "--bin", "gauntlet"])
        .args([
            "--package",
            "gauntlet-hardening",
            "--bin",
            "gauntlet-hardening",
        ])
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("building gauntlet and gauntlet-hardening failed".into());
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let dir = target.join(if profile == "dev" { "debug" } else { profile });
    let exe = |name: &str| dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    Ok((exe("gauntlet"), exe("gauntlet-hardening")))
}

/// Splits off `--release`; the rest goes to `gauntlet-hardening` as it is.
fn profile(args: &[String]) -> (&'static str, Vec<String>) {
    let release = args.iter().any(|a| a == "--release");
    let rest = args.iter().filter(|a| *a != "--release").cloned().collect();
    (if release { "release" } else { "dev" }, rest)
}

fn run(root: &Path, task: &str, args: &[String]) -> ExitCode {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{}", super::USAGE);
        return ExitCode::SUCCESS;
    }
    let (profile, rest) = profile(args);
    let (gauntlet, hardening) = match build(root, profile) {
        Ok(paths) => paths,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let invoked_as = if profile == "release" {
        format!("cargo xtask {task} --release")
    } else {
        format!("cargo xtask {task}")
    };
    let mut cmd = Command::new(hardening);
    cmd.current_dir(root)
        .arg(task)
        .arg("--gauntlet")
        .arg(&gauntlet)
        .arg("--root")
        .arg(root);
    if task == "fuzz" {
        cmd.args(["--invoked-as", &invoked_as]);
    }
    cmd.args(&rest);
    ExitCode::from(super::run(&mut cmd))
}

/// `cargo xtask fuzz [--release] [--cases N] [--seed S] [--case I] [TARGET|GROUP...]`.
pub fn fuzz(root: &Path, args: &[String]) -> ExitCode {
    run(root, "fuzz", args)
}

/// `cargo xtask soak [--release] [--quick] [--sessions N] [--concurrent N] …`.
pub fn soak(root: &Path, args: &[String]) -> ExitCode {
    run(root, "soak", args)
}
