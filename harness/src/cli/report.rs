//! `gauntlet report`: renders a results file (Markdown, HTML, JUnit, JSON) and the traversal page.

use crate::cli::diff::{MAX_RESULTS_BYTES, read_results};
use crate::*;

/// `gauntlet report`'s flags.
#[derive(Debug, clap::Args)]
pub(crate) struct ReportArgs {
    /// The results file (JSON written by `run --results`).
    results: PathBuf,
    /// The folder to write the four reports into.
    #[arg(long, default_value = "target/gauntlet")]
    out: PathBuf,
    /// Also render the traversal page (the seed article's decision tree measured, ws versus
    /// wss per intermediary kind, the matrix) to this file.
    #[arg(long, value_name = "FILE")]
    traversal: Option<PathBuf>,
    /// The populations' results (`gauntlet population`'s populations.json) whose table the
    /// traversal page shows.
    #[arg(long, value_name = "FILE", requires = "traversal")]
    populations: Option<PathBuf>,
    /// Instead of writing the traversal page, compare it with the file at --traversal and
    /// exit 1 if that file is stale.
    #[arg(long, requires = "traversal")]
    check: bool,
    /// How to name the command that regenerates the traversal page.
    #[arg(long, hide = true, default_value = "gauntlet report")]
    invoked_as: String,
}

pub(crate) fn report(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let (out, check, invoked_as) = (&args.out, args.check, args.invoked_as.as_str());
    let results = read_results(&args.results)?;
    let files = [
        ("report.md", gauntlet_reports::markdown(&results)),
        ("report.html", gauntlet_reports::html(&results)),
        ("report.xml", gauntlet_reports::junit(&results)),
        ("report.json", results.to_json()),
    ];
    for (name, text) in &files {
        let path = out.join(name);
        gauntlet::files::write_file(&path, text)
            .with_context(|| format!("writing {}", path.display()))?;
        outln!("wrote {}", path.display());
    }
    let Some(traversal_path) = args.traversal.as_deref() else {
        return Ok(ExitCode::SUCCESS);
    };
    let populations = match &args.populations {
        Some(path) => {
            let bytes = gauntlet::files::read_file(path, MAX_RESULTS_BYTES, "a populations file")
                .with_context(|| format!("reading {}", path.display()))?;
            let text = String::from_utf8_lossy(&bytes);
            Some(
                gauntlet_reports::population::from_json(&text)
                    .with_context(|| format!("{} is no populations' results", path.display()))?,
            )
        }
        None => None,
    };
    let fresh = gauntlet_reports::traversal(&results, populations.as_ref(), invoked_as);
    if !check {
        gauntlet::files::write_file(traversal_path, &fresh)
            .with_context(|| format!("writing {}", traversal_path.display()))?;
        outln!("wrote {}", traversal_path.display());
        return Ok(ExitCode::SUCCESS);
    }
    let current = is_current(traversal_path, &fresh, invoked_as, "a traversal page")?;
    Ok(if current {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Writes each page to its path, or with `check` compares it with the file there instead;
/// whether every compared file was current (`what` the pages are, for errors).
pub(crate) fn write_or_check(
    pages: &[(Option<&Path>, String)],
    check: bool,
    invoked_as: &str,
    what: &str,
) -> anyhow::Result<bool> {
    let mut current = true;
    for (path, text) in pages {
        let Some(path) = path else { continue };
        if check {
            current &= is_current(path, text, invoked_as, what)?;
        } else {
            gauntlet::files::write_file(path, text)
                .with_context(|| format!("writing {}", path.display()))?;
            outln!("wrote {}", path.display());
        }
    }
    Ok(current)
}

/// Whether the committed file at `path` (`what` it is, for errors) holds `fresh`; says which
/// line differs first, and the command that regenerates it (`invoked_as`), when it does not.
pub(crate) fn is_current(
    path: &Path,
    fresh: &str,
    invoked_as: &str,
    what: &str,
) -> anyhow::Result<bool> {
    let committed = match gauntlet::files::read_file(path, MAX_RESULTS_BYTES, what) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            errln!(
                "error: {} does not exist: run `{invoked_as}` and commit it",
                path.display()
            );
            return Ok(false);
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    match first_difference(&committed, fresh) {
        None => {
            outln!("{} is current", path.display());
            Ok(true)
        }
        Some((line, old, new)) => {
            errln!(
                "error: {} is stale: run `{invoked_as}` and commit it",
                path.display()
            );
            errln!("  first difference, line {line}:");
            errln!("  - {}", old.unwrap_or("(end of file)"));
            errln!("  + {}", new.unwrap_or("(end of file)"));
            Ok(false)
        }
    }
}

/// The first line (1-based) at which two texts differ, with each side's line there.
pub(crate) fn first_difference<'a>(
    old: &'a str,
    new: &'a str,
) -> Option<(usize, Option<&'a str>, Option<&'a str>)> {
    let (mut a, mut b) = (old.lines(), new.lines());
    let mut line = 0;
    loop {
        line += 1;
        match (a.next(), b.next()) {
            (None, None) => {
                return (old.ends_with('\n') != new.ends_with('\n')).then_some((line, None, None));
            }
            (x, y) if x != y => return Some((line, x, y)),
            _ => {}
        }
    }
}
