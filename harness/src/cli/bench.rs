//! `gauntlet bench`: measures whole runs (one JSON line), for `cargo xtask bench`.

use crate::*;

pub(crate) fn bench(
    paths: Vec<PathBuf>,
    engine: &str,
    seeds: Option<u64>,
    clients: Option<u64>,
    jobs: usize,
) -> anyhow::Result<ExitCode> {
    let m = match clients {
        Some(n) => {
            let [file] = paths.as_slice() else {
                anyhow::bail!("--clients takes one scenario file, got {}", paths.len());
            };
            gauntlet::run::bench::crowd(file, engine, n as usize)?
        }
        None => {
            let sel = Selection {
                paths,
                filter: None,
                scheme: None,
                seed: None,
                seeds,
            };
            gauntlet::run::bench::selection(&sel, engine, jobs)?
        }
    };
    outln!("{}", serde_json::to_string(&m)?);
    Ok(ExitCode::SUCCESS)
}
