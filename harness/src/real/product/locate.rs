//! Where the products that are not Debian packages are found: node-http-proxy's `http-proxy`
//! module under `target/gauntlet/node`, mitmproxy's `mitmdump` in its virtualenv under
//! `target/gauntlet/mitmproxy` (`cargo xtask test` installs both), looked for under the
//! current directory and each folder above it (a test runs in `harness/`, `cargo xtask` at
//! the root), and under `$CARGO_TARGET_DIR`.

use std::path::{Path, PathBuf};

/// Where `cargo xtask test` installs the Node packages, from the workspace root.
pub(super) const NODE_DIR: &str = "target/gauntlet/node";

/// The lock file the Node packages are installed from, from the workspace root.
pub(super) const NODE_LOCK: &str = "harness/tests/node/package-lock.json";

/// mitmproxy's virtualenv, from the workspace root: apart from the tests' Python
/// environment, whose `h11` and `wsproto` are newer than mitmproxy 11.0 takes.
pub(super) const MITMPROXY_VENV: &str = "target/gauntlet/mitmproxy";

/// Its programs.
pub(super) const MITMPROXY_BIN: &str = "target/gauntlet/mitmproxy/bin";

/// The pinned requirements it is made from, from the workspace root.
pub(super) const MITMPROXY_REQUIREMENTS: &str = "harness/tests/python/mitmproxy-requirements.txt";

/// The variable that names the `node_modules` folder holding `http-proxy` instead.
pub(super) const NODE_MODULES_VAR: &str = "GAUNTLET_NODE_MODULES";

/// `rel` (a path under the workspace's `target/`) under the current directory and each
/// folder above it, then under `$CARGO_TARGET_DIR` (which stands for `target/`).
pub(super) fn workspace_dirs(rel: &str) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::current_dir()
        .map(|cwd| cwd.ancestors().map(|a| a.join(rel)).collect())
        .unwrap_or_default();
    if let (Some(target), Some(under)) = (
        std::env::var_os("CARGO_TARGET_DIR"),
        rel.strip_prefix("target/"),
    ) {
        dirs.push(Path::new(&target).join(under));
    }
    dirs
}

/// The `node_modules` folder that holds `http-proxy`: `$GAUNTLET_NODE_MODULES`, or the
/// first found under [`NODE_DIR`].
pub(super) fn node_modules() -> Option<PathBuf> {
    if let Some(chosen) = std::env::var_os(NODE_MODULES_VAR).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(chosen));
    }
    workspace_dirs(&format!("{NODE_DIR}/node_modules"))
        .into_iter()
        .find(|dir| dir.join("http-proxy/package.json").is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_are_looked_for_here_and_above() {
        let dirs = workspace_dirs(MITMPROXY_BIN);
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(dirs[0], cwd.join(MITMPROXY_BIN));
        assert!(dirs.contains(&cwd.parent().unwrap().join(MITMPROXY_BIN)));
    }
}
