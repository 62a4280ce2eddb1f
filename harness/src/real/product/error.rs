//! [`ProductError`]: why a product or program could not be found, configured, started or
//! stopped.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use super::Product;
use super::command::CommandError;

/// Why a product could not be found, configured, started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ProductError {
    /// A product name that is not one of [`Product::ALL`].
    #[error(
        "unknown product `{0}`: expected nginx, haproxy, apache (or httpd), squid, tinyproxy, \
         caddy, lighttpd, h2o, varnish, trafficserver (or ats), node-http-proxy or mitmproxy"
    )]
    Unknown(String),
    /// Its binary is missing.
    #[error("{product} is not installed: run {install} ({detail})")]
    NotInstalled {
        /// The product.
        product: Product,
        /// What to run to install it (`apt-get install -y nginx`).
        install: String,
        /// Where it was looked for.
        detail: String,
    },
    /// A template that cannot be rendered.
    #[error("{}:{line}: {error}", file.display())]
    Template {
        /// The template file.
        file: PathBuf,
        /// The line, from 1.
        line: usize,
        /// What is wrong there.
        error: TemplateError,
    },
    /// A caller's value under a name the harness sets itself.
    #[error(
        "`{{{{{0}}}}}` is set by the harness: give ports and upstreams in StartOptions' own fields"
    )]
    ReservedValue(String),
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, and on what.
        what: String,
        /// The operating system's error.
        source: io::Error,
    },
    /// A command line that cannot be started as given.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// The program exited before accepting connections.
    #[error("{program} exited ({status}) before listening on {addr}; its logs, in {}:\n{logs}", dir.display())]
    Exited {
        /// The program's name ([`Program::name`](super::Program::name)).
        program: String,
        /// Its exit status.
        status: ExitStatus,
        /// Where it should have listened.
        addr: SocketAddr,
        /// Its working directory (kept).
        dir: PathBuf,
        /// Its logs.
        logs: String,
    },
    /// The program did not accept connections in time; it has been stopped.
    #[error("{program} did not accept connections on {addr} within {waited:?}; its logs, in {}:\n{logs}", dir.display())]
    NotReady {
        /// The program's name ([`Program::name`](super::Program::name)).
        program: String,
        /// Where it should have listened.
        addr: SocketAddr,
        /// How long the probe tried.
        waited: Duration,
        /// Its working directory (kept).
        dir: PathBuf,
        /// Its logs.
        logs: String,
    },
}

/// What is wrong with a line of a configuration template ([`ProductError::Template`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// `{{` with no `}}` after it on the line.
    #[error("`{{{{` without a closing `}}}}` in `{line}`")]
    Unclosed {
        /// The line, without its end.
        line: String,
    },
    /// Braces around something that is not a name.
    #[error("`{{{{{inner}}}}}` is not a placeholder: names are ASCII letters, digits and `_`")]
    NotAName {
        /// What stands between the braces.
        inner: String,
    },
    /// A placeholder with no value.
    #[error("unknown placeholder `{{{{{name}}}}}` (known: {})", known.join(", "))]
    Unknown {
        /// The placeholder's name.
        name: String,
        /// The names that have values.
        known: Vec<String>,
    },
}

pub(super) fn io_error(what: String, source: io::Error) -> ProductError {
    ProductError::Io { what, source }
}
