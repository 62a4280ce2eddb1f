//! Models read time and randomness only through their context (`Cx::now`, `Cx::rng`). Clippy's
//! `disallowed-methods` (clippy.toml) bans the wall-clock and thread-RNG calls everywhere; this
//! test also bans, in this crate's sources, the types and modules through which a model could
//! reach them, or an iteration order that changes between runs.

use std::fs;
use std::path::Path;

/// Tokens no model source may contain, with the reason.
const FORBIDDEN: &[(&str, &str)] = &[
    ("Instant", "wall-clock time: use Cx::now"),
    ("SystemTime", "wall-clock time: use Cx::now"),
    ("std::thread", "threads: the driver owns concurrency"),
    ("thread_rng", "unseeded randomness: use Cx::rng"),
    ("OsRng", "unseeded randomness: use Cx::rng"),
    ("getrandom", "unseeded randomness: use Cx::rng"),
    ("rand::", "unseeded randomness: use Cx::rng"),
    (
        "HashMap",
        "iteration order varies between runs: use BTreeMap",
    ),
    (
        "HashSet",
        "iteration order varies between runs: use BTreeSet",
    ),
    ("tokio", "models are sans-IO: no runtime"),
    ("std::net", "models are sans-IO: no sockets"),
];

#[test]
fn models_reach_time_and_randomness_only_through_their_context() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    assert!(files.len() >= 10, "found only {} source files", files.len());
    let mut found = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).expect("reading a source file");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for (token, why) in FORBIDDEN {
                if code.contains(token) {
                    found.push(format!(
                        "{}:{}: `{token}` ({why})",
                        file.strip_prefix(&src).unwrap_or(file).display(),
                        n + 1
                    ));
                }
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// Every `.rs` file under `dir`, in its folders too (`http/` is a module of its own).
fn sources(dir: &Path, into: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).expect("reading a source folder") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push(path);
        }
    }
}
