//! One scenario file's runs from library code: [`run_file`] loads the file, plans its runs
//! (each scheme it lists × each seed), runs them across threads with [`suite::execute`] on
//! the engine asked for, and gives back every [`RunOutput`] in planned order: its outcome,
//! the one expected, the transcript.
//!
//! ```
//! use gauntlet::Outcome;
//! use gauntlet::scenario::Scheme;
//!
//! // Doc tests run in `harness/`; the catalogue is beside it.
//! let runs = gauntlet::run_file("../scenarios/seeds/transparent-strip.toml")?;
//! assert_eq!(runs.len(), 6, "ws and wss, seeds 1 to 3");
//! for run in &runs {
//!     let expected = match run.scheme {
//!         Scheme::Ws => Outcome::HandshakeRejected,
//!         Scheme::Wss => Outcome::Delivered,
//!     };
//!     assert_eq!(run.outcome(), expected, "{}", run.rendered());
//!     assert!(run.pass());
//! }
//! # Ok::<(), gauntlet::Error>(())
//! ```

use std::path::Path;

use crate::engine;
use crate::error::Error;
use crate::run::RunOutput;
use crate::run::suite::{self, Selection};
use crate::scenario::Scheme;

/// Which of a scenario file's runs [`run_file_with`] runs, and how.
#[derive(Debug, Clone)]
pub struct FileOptions {
    engine: String,
    scheme: Option<Scheme>,
    seed: Option<u64>,
    jobs: Option<usize>,
}

impl Default for FileOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl FileOptions {
    /// Every scheme and seed the file lists, on the default engine (`sim`, simulated time),
    /// one run per core at a time.
    pub fn new() -> Self {
        Self {
            engine: engine::DEFAULT.to_string(),
            scheme: None,
            seed: None,
            jobs: None,
        }
    }

    /// Runs on the engine named `name`: one of [`engine::ENGINES`] (`sim`, `turmoil`,
    /// `live`). A scenario with a real program in its path needs `live`.
    pub fn engine(mut self, name: &str) -> Self {
        self.engine = name.to_string();
        self
    }

    /// Only `scheme`'s runs.
    pub fn scheme(mut self, scheme: Scheme) -> Self {
        self.scheme = Some(scheme);
        self
    }

    /// Only `seed`, instead of the seeds the file lists.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// At most `jobs` runs at a time (at least one).
    pub fn jobs(mut self, jobs: usize) -> Self {
        self.jobs = Some(jobs.max(1));
        self
    }
}

/// Runs every scheme and seed of the scenario file at `path` on the simulated engine: see
/// [`run_file_with`].
pub fn run_file(path: impl AsRef<Path>) -> Result<Vec<RunOutput>, Error> {
    run_file_with(path, &FileOptions::new())
}

/// Runs the scenario file at `path` as `options` say, and returns every run's output in
/// planned order (schemes in the file's order, then seeds). A misbehaving intermediary is
/// not an error but the run's outcome ([`RunOutput::outcome`]); errors are the harness's:
/// a file that does not read or validate ([`Error::Scenario`], located), a folder or a path
/// that is not a scenario file, an unknown engine, a scenario with a real program on an
/// engine other than `live`, a run the harness could not carry out ([`Error::Run`]).
///
/// It blocks while the runs go on, on threads of their own (each engine runs its own
/// runtime), so it may be called from anywhere; from async code, prefer
/// `tokio::task::spawn_blocking` so as not to hold up the caller's other tasks.
pub fn run_file_with(
    path: impl AsRef<Path>,
    options: &FileOptions,
) -> Result<Vec<RunOutput>, Error> {
    let path = path.as_ref();
    let shown = path.display().to_string();
    if engine::by_name(&options.engine).is_none() {
        return Err(Error::UnknownEngine {
            name: options.engine.clone(),
        });
    }
    if path.is_dir() {
        return Err(Error::Folder { path: shown });
    }
    let selection = Selection {
        paths: vec![path.to_path_buf()],
        filter: None,
        scheme: options.scheme,
        seed: options.seed,
        seeds: None,
    };
    let (scenarios, planned) = suite::plan(&selection).map_err(Error::Scenario)?;
    let Some(scenario) = scenarios.first() else {
        return Err(Error::NoScenario { path: shown });
    };
    let (planned, needs_live) = suite::runnable_on(&options.engine, &scenarios, planned);
    if needs_live > 0 {
        return Err(Error::NeedsLive {
            file: scenario.file.clone(),
        });
    }
    let jobs = options.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let finished = suite::execute(&options.engine, &scenarios, &planned, jobs, |_, _| {});
    planned
        .iter()
        .zip(finished)
        .map(|(p, f)| {
            f.output.map_err(|error| Error::Run {
                file: scenario.file.clone(),
                scheme: p.scheme.to_string(),
                seed: p.seed,
                error: Box::new(error),
            })
        })
        .collect()
}
