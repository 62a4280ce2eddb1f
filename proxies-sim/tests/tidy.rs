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
    let mut files: Vec<_> = fs::read_dir(&src)
        .expect("reading src/")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
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
                        file.file_name().unwrap_or_default().to_string_lossy(),
                        n + 1
                    ));
                }
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}
