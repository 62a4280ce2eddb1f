//! `cargo xtask test`: brings up what the tests need, then runs them, in one command.
//!
//! 1. System programs: the real products the tests and the conformance matrix start (nginx,
//!    HAProxy, Apache, Squid, tinyproxy, Caddy, lighttpd, H2O, Varnish, Traffic Server), Chromium and a font for the report's browser test, iperf3 and socat for the
//!    relay benchmark, a C compiler and Python's `venv`. What is missing is installed with
//!    `apt-get` when this runs as root on a machine that has it (with a `policy-rc.d` in place
//!    for the duration, so that Debian does not start the products as services: the tests
//!    start their own); otherwise the task prints the one command to run and stops.
//! 2. The Python environments: a virtualenv at `target/gauntlet/py` with the packages pinned in
//!    `harness/tests/python/requirements.txt`, and mitmproxy's at `target/gauntlet/mitmproxy`
//!    from `harness/tests/python/mitmproxy-requirements.txt`, each made again whenever its
//!    file changes.
//! 3. The Node environment: the packages pinned in `harness/tests/node/package-lock.json`
//!    (Socket.IO and Engine.IO, server and client, and node-http-proxy's `http-proxy`), installed with `npm ci` into
//!    `target/gauntlet/node`, again whenever the lock file changes.
//! 4. `cargo test --workspace` (the dev profile that `cargo xtask scenarios` builds too), with
//!    whatever follows `--` passed on to it.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

/// A program the tests need, and the Debian package that has it.
struct Need {
    /// What is looked for: a program on `PATH` or in the system's `sbin` directories, or an
    /// absolute path to a file.
    what: &'static str,
    package: &'static str,
    /// Who needs it.
    why: &'static str,
}

const NEEDS: &[Need] = &[
    Need {
        what: "cc",
        package: "gcc",
        why: "ring (rustls' crypto) builds C",
    },
    Need {
        what: "nginx",
        package: "nginx",
        why: "the product tests and `cargo xtask live`",
    },
    Need {
        what: "haproxy",
        package: "haproxy",
        why: "the product tests, `cargo xtask live`, the relay benchmark",
    },
    Need {
        what: "apache2",
        package: "apache2",
        why: "the product tests and `cargo xtask live`",
    },
    Need {
        what: "squid",
        package: "squid",
        why: "the product tests and `cargo xtask live`",
    },
    Need {
        what: "tinyproxy",
        package: "tinyproxy",
        why: "the product tests and `cargo xtask live`",
    },
    Need {
        what: "caddy",
        package: "caddy",
        why: "the product tests and `cargo xtask conformance`",
    },
    Need {
        what: "lighttpd",
        package: "lighttpd",
        why: "the product tests and `cargo xtask conformance`",
    },
    Need {
        what: "/usr/lib/lighttpd/mod_openssl.so",
        package: "lighttpd-mod-openssl",
        why: "lighttpd's TLS listener (wss) in the product tests and `cargo xtask conformance`",
    },
    Need {
        what: "h2o",
        package: "h2o",
        why: "the product tests and `cargo xtask conformance`",
    },
    Need {
        what: "varnishd",
        package: "varnish",
        why: "the product tests and `cargo xtask conformance`",
    },
    Need {
        what: "traffic_server",
        package: "trafficserver",
        why: "the product tests and `cargo xtask conformance`",
    },
    Need {
        what: "chromium",
        package: "chromium",
        why: "the HTML report's browser test",
    },
    Need {
        what: "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        package: "fonts-dejavu-core",
        why: "the text Chromium renders in the report's browser test",
    },
    Need {
        what: "iperf3",
        package: "iperf3",
        why: "the relay benchmark",
    },
    Need {
        what: "socat",
        package: "socat",
        why: "the relay benchmark",
    },
    Need {
        what: "prlimit",
        package: "util-linux",
        why: "the tests that run out of descriptors",
    },
    Need {
        what: "node",
        package: "nodejs",
        why: "the Socket.IO interoperation tests",
    },
    Need {
        what: "npm",
        package: "npm",
        why: "installing the Socket.IO interoperation tests' packages",
    },
];

/// Where the tests' Python environment lives, from the workspace root.
pub const VENV: &str = "target/gauntlet/py";

/// The pinned requirements, from the workspace root.
const REQUIREMENTS: &str = "harness/tests/python/requirements.txt";

/// A copy of the requirements the environment was made from, inside it.
const STAMP: &str = "gauntlet-requirements.txt";

/// mitmproxy's virtualenv (a product of the conformance matrix), apart from the tests' Python
/// environment: mitmproxy 11.0 takes older `h11` and `wsproto` than the tests' stacks.
const MITMPROXY_VENV: &str = "target/gauntlet/mitmproxy";

/// Its pinned requirements, from the workspace root.
const MITMPROXY_REQUIREMENTS: &str = "harness/tests/python/mitmproxy-requirements.txt";

/// Where the tests' Node packages live, from the workspace root (`node_modules` inside).
pub const NODE: &str = "target/gauntlet/node";

/// The Node packages the tests use, and their pinned versions, from the workspace root.
const PACKAGE: &str = "harness/tests/node/package.json";
const LOCK: &str = "harness/tests/node/package-lock.json";

pub fn test(root: &Path, args: &[String]) -> ExitCode {
    let passed = match args.iter().position(|a| a == "--") {
        Some(at) => {
            if let Some(other) = args[..at].first() {
                return usage_error(other);
            }
            &args[at + 1..]
        }
        None => {
            if let Some(other) = args.first() {
                if other == "-h" || other == "--help" {
                    println!("{}", crate::USAGE);
                    return ExitCode::SUCCESS;
                }
                return usage_error(other);
            }
            &[]
        }
    };
    step("system programs");
    if let Err(e) = system(root) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    step("the Python environment");
    if let Err(e) = python(root) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    step("the Node environment");
    if let Err(e) = node(root) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    step("cargo test --workspace");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .args(["test", "--workspace"])
        .args(passed)
        .status();
    match status {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => ExitCode::from(s.code().map_or(1, |c| c.clamp(1, 255) as u8)),
        Err(e) => {
            eprintln!("error: cannot run cargo: {e}");
            ExitCode::from(2)
        }
    }
}

fn usage_error(arg: &str) -> ExitCode {
    eprintln!(
        "error: unexpected `{arg}`: arguments for cargo test go after `--`\n\n{}",
        crate::USAGE
    );
    ExitCode::from(2)
}

fn step(what: &str) {
    println!("==> {what}");
}

/// Whether `what` is there: an absolute path that exists, or a program on `PATH` or in the
/// `sbin` directories (where Debian puts the products, off a normal user's `PATH`).
fn present(what: &str) -> bool {
    let path = Path::new(what);
    if path.is_absolute() {
        return path.exists();
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from));
    dirs.iter().any(|d| d.join(what).is_file())
}

/// Whether `python3 -m venv` can make an environment with pip in it (Debian's `python3`
/// needs the `python3-venv` package for that).
fn python_has_venv() -> bool {
    Command::new("python3")
        .args(["-c", "import venv, ensurepip"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Installs the missing packages, or says how.
fn system(root: &Path) -> Result<(), String> {
    let mut missing: Vec<&Need> = NEEDS.iter().filter(|n| !present(n.what)).collect();
    let venv = Need {
        what: "python3 -m venv",
        package: "python3-venv",
        why: "the Python environment of the interoperation tests",
    };
    let python = Need {
        what: "python3",
        package: "python3",
        why: "the interoperation tests and CI's comparisons",
    };
    if !present("python3") {
        missing.push(&python);
    } else if !venv_current(root) && !python_has_venv() {
        missing.push(&venv);
    }
    if missing.is_empty() {
        println!("all {} present", NEEDS.len() + 1);
        return Ok(());
    }
    let mut packages: Vec<&str> = missing.iter().map(|n| n.package).collect();
    packages.sort_unstable();
    packages.dedup();
    for need in &missing {
        println!(
            "missing: {} ({}), for {}",
            need.what, need.package, need.why
        );
    }
    let command = format!(
        "printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && \
         apt-get update && apt-get install -y --no-install-recommends {} && rm /usr/sbin/policy-rc.d",
        packages.join(" ")
    );
    if !is_root() || !present("apt-get") {
        return Err(format!(
            "the tests need {}: as root, run\n  {command}\nthen this again",
            packages.join(", ")
        ));
    }
    install(&packages)?;
    let still: Vec<&str> = missing
        .iter()
        .filter(|n| n.what != venv.what && !present(n.what))
        .map(|n| n.what)
        .collect();
    if !still.is_empty() {
        return Err(format!(
            "installed {}, but {} still missing",
            packages.join(" "),
            still.join(", ")
        ));
    }
    Ok(())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `apt-get install`s `packages`, with a `policy-rc.d` that forbids starting services in place
/// meanwhile (one already there is left as it is).
fn install(packages: &[&str]) -> Result<(), String> {
    const POLICY: &str = "/usr/sbin/policy-rc.d";
    let ours = !Path::new(POLICY).exists();
    if ours {
        write_policy(POLICY).map_err(|e| format!("writing {POLICY}: {e}"))?;
    }
    let result = apt(&["update", "-qq"]).and_then(|()| {
        let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
        args.extend_from_slice(packages);
        apt(&args)
    });
    if ours {
        let _ = std::fs::remove_file(POLICY);
    }
    result
}

fn write_policy(path: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(
        path,
        "#!/bin/sh\n# Installed by cargo xtask test while it installs packages.\nexit 101\n",
    )?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
}

fn apt(args: &[&str]) -> Result<(), String> {
    println!("apt-get {}", args.join(" "));
    let status = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .map_err(|e| format!("cannot run apt-get: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("apt-get {} failed ({status})", args.join(" ")))
    }
}

/// Whether the virtualenvs there were made from the requirements as they are.
fn venv_current(root: &Path) -> bool {
    [
        (VENV, REQUIREMENTS),
        (MITMPROXY_VENV, MITMPROXY_REQUIREMENTS),
    ]
    .iter()
    .all(|(venv, requirements)| made_from(root, venv, requirements))
}

/// Whether the virtualenv `venv` was made from `requirements` as it is.
fn made_from(root: &Path, venv: &str, requirements: &str) -> bool {
    let wanted = std::fs::read_to_string(root.join(requirements));
    let had = std::fs::read_to_string(root.join(venv).join(STAMP));
    matches!((wanted, had), (Ok(w), Ok(h)) if w == h)
}

/// Makes the tests' virtualenv and mitmproxy's, each unless the one there was made from the
/// same requirements.
fn python(root: &Path) -> Result<(), String> {
    make_venv(root, VENV, REQUIREMENTS)?;
    make_venv(root, MITMPROXY_VENV, MITMPROXY_REQUIREMENTS)
}

/// Makes the virtualenv `venv` from `requirements`, unless the one there was made from them.
fn make_venv(root: &Path, venv_rel: &str, requirements_rel: &str) -> Result<(), String> {
    let venv = root.join(venv_rel);
    let requirements = root.join(requirements_rel);
    let wanted = std::fs::read_to_string(&requirements)
        .map_err(|e| format!("reading {}: {e}", requirements.display()))?;
    let stamp = venv.join(STAMP);
    if made_from(root, venv_rel, requirements_rel) {
        println!("{venv_rel}: up to date with {requirements_rel}");
        return Ok(());
    }
    if venv.exists() {
        std::fs::remove_dir_all(&venv).map_err(|e| format!("removing {}: {e}", venv.display()))?;
    }
    println!("python3 -m venv {venv_rel}");
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    println!("{venv_rel}/bin/pip install -r {requirements_rel}");
    run(Command::new(venv.join("bin/pip"))
        .args(["install", "-q", "--disable-pip-version-check", "-r"])
        .arg(&requirements))?;
    std::fs::write(&stamp, wanted).map_err(|e| format!("writing {}: {e}", stamp.display()))
}

/// Installs the pinned Node packages with `npm ci`, unless those there were installed from
/// the same lock file.
fn node(root: &Path) -> Result<(), String> {
    let dir = root.join(NODE);
    let read = |path: &str| {
        std::fs::read_to_string(root.join(path)).map_err(|e| format!("reading {path}: {e}"))
    };
    let (package, lock) = (read(PACKAGE)?, read(LOCK)?);
    let installed = dir.join("package-lock.json");
    let had = std::fs::read_to_string(&installed).ok();
    if had.as_deref() == Some(lock.as_str()) && dir.join("node_modules").is_dir() {
        println!("{NODE}: up to date with {LOCK}");
        return Ok(());
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("removing {}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    std::fs::write(dir.join("package.json"), package)
        .and_then(|()| std::fs::write(&installed, lock))
        .map_err(|e| format!("writing into {}: {e}", dir.display()))?;
    println!("npm ci in {NODE} (from {LOCK})");
    run(Command::new("npm").current_dir(&dir).args([
        "ci",
        "--ignore-scripts",
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
    ]))
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{:?} failed ({status})", cmd.get_program()))
    }
}
