//! [`Error`]: what can go wrong at the library's front door ([`crate::live`],
//! [`crate::run_file`], [`crate::testing`]), each kind a variant that says where and what.
//!
//! A misbehaving intermediary is never an error: it ends a run in an
//! [`Outcome`](crate::Outcome), or shows as a closed connection through a live proxy. These
//! are the harness's own failures: a model that cannot be built, a scenario file that does
//! not read, a proxy or server that could not start or stopped on a fault.

use gauntlet_proxies::registry::HopError;

use crate::real::standing::StandingError;
use crate::run::RunError;
use crate::scenario::{self, ScenarioError};
use crate::tls::TlsError;
use crate::verdict::transcript::{self, Entry};

/// What went wrong at the front door.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A model's hop table does not describe a model, or describes one the front door cannot
    /// run. `at` says which: `model TOML` and a line and column for [`Model::from_toml`]'s
    /// text, or the hop's place in a chain (`hop 2 (idle-killer)`).
    ///
    /// [`Model::from_toml`]: crate::live::Model::from_toml
    #[error("{at}: {message}")]
    Model {
        /// Where: the text's line and column, or the hop in the chain.
        at: String,
        /// What is wrong, and what was expected.
        message: String,
    },
    /// A model that reads but cannot run at the front door: it needs what only the harness's
    /// runs give it (TLS material). `at` is the hop's place in the chain (`hop 2
    /// (tls-intercepting-proxy)`).
    #[error("{at}: {error}")]
    Hop {
        /// The hop in the chain.
        at: String,
        /// What the model needs.
        error: HopError,
    },
    /// A chain of models was empty: a proxy needs at least one.
    #[error("a proxy chain needs at least one model, got none")]
    EmptyChain,
    /// Scenario files that do not read or do not validate, each located (file, line,
    /// column, and the offending line).
    #[error("{}", scenario::joined(.0))]
    Scenario(Vec<ScenarioError>),
    /// A path that holds no scenario file.
    #[error("{path}: no scenario file there (a `.toml` file is expected)")]
    NoScenario {
        /// The path as given.
        path: String,
    },
    /// A folder was given where one scenario file is expected.
    #[error("{path} is a folder: give one scenario file")]
    Folder {
        /// The path as given.
        path: String,
    },
    /// An engine name that is not one of [`crate::engine::ENGINES`].
    #[error("unknown engine `{name}`: expected one of {}", crate::engine::ENGINES.join(", "))]
    UnknownEngine {
        /// The name as given.
        name: String,
    },
    /// A scenario that puts a real program in the path, asked for on an engine other than
    /// `live`: only the live engine starts real programs.
    #[error("{file} puts a real program in the path: run it on the `live` engine")]
    NeedsLive {
        /// The scenario file.
        file: String,
    },
    /// The harness could not carry out one run of a scenario (a fault of the harness, not
    /// of the network: those end in an outcome).
    #[error("{file} ({scheme}, seed {seed}): the run failed: {error}")]
    Run {
        /// The scenario file.
        file: String,
        /// `ws` or `wss`.
        scheme: String,
        /// The run's seed.
        seed: u64,
        /// What the harness reported.
        error: Box<RunError>,
    },
    /// A live proxy or server did not start listening.
    #[error("the {what} did not start: {fault}{}", quoted(last_lines))]
    Start {
        /// `proxy` or `server`.
        what: &'static str,
        /// Why.
        fault: Fault,
        /// The last lines its hosts logged (at most five), which usually say what led to it.
        last_lines: Vec<Entry>,
    },
    /// A live proxy or server stopped on a fault of its own (a host's software failed, a
    /// task panicked); reported when it is shut down.
    #[error("the {what} stopped on a fault: {fault}{}", quoted(last_lines))]
    Failed {
        /// `proxy` or `server`.
        what: &'static str,
        /// The fault.
        fault: Fault,
        /// The last lines its hosts logged (at most five), which usually say what led to it.
        last_lines: Vec<Entry>,
    },
    /// TLS material could not be made (a key, a certificate, a configuration).
    #[error("TLS: {0}")]
    Tls(TlsError),
}

impl From<TlsError> for Error {
    fn from(e: TlsError) -> Self {
        Error::Tls(e)
    }
}

/// Why a live proxy or server did not start, or what it stopped on ([`Error::Start`],
/// [`Error::Failed`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Fault {
    /// Its run ended on a fault: the engine refused it, a host's software failed, a worker
    /// did not listen.
    #[error(transparent)]
    Run(#[from] StandingError),
    /// Its run panicked; the panic's message.
    #[error("it panicked: {0}")]
    Panicked(String),
    /// Its thread panicked outside the run; the panic's message.
    #[error("its thread panicked: {0}")]
    ThreadPanicked(String),
    /// Its thread ended without saying how.
    #[error("its thread ended without a word")]
    Vanished,
    /// Its run ended without a fault, but before it listened.
    #[error("it stopped before it listened")]
    Early,
    /// Its thread could not be started.
    #[error("cannot start its thread: {0}")]
    Thread(std::io::Error),
}

/// `; its last lines:` and the lines, or nothing when there are none.
fn quoted(lines: &[Entry]) -> String {
    if lines.is_empty() {
        return String::new();
    }
    format!(
        "; its last lines:\n{}",
        transcript::render(lines).trim_end()
    )
}
