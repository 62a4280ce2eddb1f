//! `gauntlet check`: validates scenario files without running them.

use crate::*;

pub(crate) fn check(files: Vec<PathBuf>) -> anyhow::Result<ExitCode> {
    let files = suite::find_files(&files).context("listing scenario files")?;
    if files.is_empty() {
        anyhow::bail!("no scenario files (*.toml) found in the given folders");
    }
    let mut bad = 0;
    for f in &files {
        match scenario::load(f) {
            Ok(s) => outln!(
                "ok      {} ({} hops, {})",
                f.display(),
                s.path.len(),
                schemes(&s)
            ),
            Err(e) => {
                bad += 1;
                outln!("invalid {e}");
            }
        }
    }
    outln!("{} valid, {bad} invalid", files.len() - bad);
    Ok(if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub(crate) fn schemes(s: &scenario::Scenario) -> String {
    s.client
        .schemes
        .iter()
        .map(|x| x.as_str())
        .collect::<Vec<_>>()
        .join("+")
}
