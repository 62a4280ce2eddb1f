//! `gauntlet diff`: compares two results files; and reading results files, which `report` shares.

use crate::*;

pub(crate) fn diff(old: &Path, new: &Path, opts: &DiffOptions) -> anyhow::Result<ExitCode> {
    let old = read_results(old)?;
    let new = read_results(new)?;
    let d = gauntlet_reports::diff(&old, &new, opts);
    out!("{}", d.render());
    Ok(if d.regressed() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The largest results file read (or traversal page compared): 256 MiB, room for about
/// half a million runs.
pub(crate) const MAX_RESULTS_BYTES: u64 = 256 << 20;

/// A results file, or an error naming it and saying what is wrong with it.
pub(crate) fn read_results(path: &Path) -> anyhow::Result<Results> {
    let bytes = gauntlet::files::read_file(path, MAX_RESULTS_BYTES, "a results file")
        .with_context(|| format!("cannot read results file {}", path.display()))?;
    let text = String::from_utf8(bytes)
        .map_err(|e| anyhow::anyhow!("{}: not valid JSON: not UTF-8 text ({e})", path.display()))?;
    Results::from_json(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}
