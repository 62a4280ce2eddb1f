//! Where a gate suite comes from: the one built into the binary (every `*.toml` under
//! `scenarios/gate/` when it was built, embedded by `harness/build.rs`, so that an installed
//! `gauntlet gate` needs no checkout), or a folder the user names (`--suite DIR`).

use std::path::PathBuf;

use crate::scenario::{self, Scenario, ScenarioError};

/// The folder the built-in suite is made from, relative to the workspace root; its files
/// keep these names in reports (`scenarios/gate/upgrade.toml`).
pub const SUITE_DIR: &str = "scenarios/gate";

/// Every behaviour of the built-in suite, sorted by name: its name and its text.
pub static BUILT_IN: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/gate_suite.rs"));

/// A gate suite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Suite {
    /// The suite built into the binary ([`BUILT_IN`]).
    BuiltIn,
    /// The scenario files under a folder.
    Dir(PathBuf),
}

impl std::fmt::Display for Suite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Suite::BuiltIn => write!(f, "the built-in suite ({SUITE_DIR})"),
            Suite::Dir(dir) => write!(f, "{}", dir.display()),
        }
    }
}

/// The built-in suite's scenarios, each parsed from its embedded text.
pub(super) fn built_in() -> Result<Vec<Scenario>, Vec<ScenarioError>> {
    super::every_or_errors(
        BUILT_IN
            .iter()
            .map(|(name, text)| scenario::parse(name, text)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_suite_is_every_file_of_the_gate_folder_as_it_is() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let files = crate::run::suite::find_files(&[root.join(SUITE_DIR)]).unwrap();
        assert_eq!(BUILT_IN.len(), files.len());
        for ((name, text), file) in BUILT_IN.iter().zip(&files) {
            let rel = file.strip_prefix(&root).unwrap().to_string_lossy();
            assert_eq!(*name, rel);
            assert_eq!(*text, std::fs::read_to_string(file).unwrap(), "{name}");
        }
        assert_eq!(built_in().unwrap().len(), BUILT_IN.len());
    }
}
