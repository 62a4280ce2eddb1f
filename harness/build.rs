//! Embeds in the library what an installed `gauntlet` needs outside a checkout: the gate
//! suite (every `*.toml` under `scenarios/gate/`, its behaviours), the real products'
//! configuration templates (every file of `scenarios/live/templates/`) and the shipped
//! populations (every `*.toml` of `scenarios/populations/`). Each becomes a list of
//! `(name, include_str!(path))` in `OUT_DIR`, which `real/gate/suite.rs`,
//! `real/product/builtin.rs` and `population/load.rs` include; cargo runs this again whenever
//! one of the folders changes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let root = manifest.join("..");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));
    embed(
        &root,
        "scenarios/gate",
        true,
        |p| p.extension().is_some_and(|x| x == "toml"),
        &out.join("gate_suite.rs"),
    );
    embed(
        &root,
        "scenarios/live/templates",
        false,
        |p| p.is_file(),
        &out.join("templates.rs"),
    );
    embed(
        &root,
        "scenarios/populations",
        false,
        |p| p.extension().is_some_and(|x| x == "toml"),
        &out.join("populations.rs"),
    );
}

/// Writes to `out` a `&[(&str, &str)]` of every file under `root/dir` that `keep` keeps
/// (searching subfolders when `deep`), sorted by name: the name (relative to `root` when
/// `deep`, the file name alone otherwise) and its text.
fn embed(root: &Path, dir: &str, deep: bool, keep: fn(&Path) -> bool, out: &Path) {
    println!("cargo::rerun-if-changed={}", root.join(dir).display());
    let mut files = Vec::new();
    walk(&root.join(dir), deep, keep, &mut files);
    files.sort();
    let mut text = String::from("&[\n");
    for path in files {
        let rel = path.strip_prefix(root).expect("under the root");
        let name = if deep {
            rel.to_string_lossy().replace('\\', "/")
        } else {
            rel.file_name()
                .expect("a file")
                .to_string_lossy()
                .into_owned()
        };
        let full = path.canonicalize().expect("the file exists");
        let _ = writeln!(
            text,
            "    ({name:?}, include_str!({:?})),",
            full.to_string_lossy()
        );
    }
    text.push(']');
    std::fs::write(out, text).expect("OUT_DIR is writable");
}

fn walk(dir: &Path, deep: bool, keep: fn(&Path) -> bool, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if deep {
                walk(&path, deep, keep, out);
            }
        } else if keep(&path) {
            out.push(path);
        }
    }
}
