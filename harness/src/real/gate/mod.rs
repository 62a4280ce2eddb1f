//! `gauntlet gate`: the gate suite (`scenarios/gate/`, one behaviour per file) run through the
//! user's own proxy, started from a command line, on real sockets.
//!
//! Each gate scenario has exactly one hop, a `pass` model; [`load`] puts a
//! [`Hop::Command`] with the user's command line in its place, and [`run`] runs every behaviour
//! on the live engine, where the command hop starts the proxy for that run alone (a fresh
//! process per behaviour and scheme, stopped when the run ends), with the reference server
//! behind it.
//!
//! A reverse proxy's command ([`Role::Reverse`], the default) sits in front of the server: its
//! `{upstream}` is the server's plain port, and it carries ws only unless it has a TLS listener
//! (`{tls_listen}` with `{cert}` and `{key}`), which carries wss too (see [`crate::real::hop`]).
//! A forward proxy's ([`Role::Forward`], `gauntlet gate --forward`) is the client's explicit
//! proxy: every behaviour's route becomes `explicit`, so the client sends the proxy
//! `CONNECT 127.0.0.1:PORT` for the server's real ws or wss port and runs the behaviour
//! through the tunnel, for ws and for wss (TLS runs end to end, so wss is checked too).

use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::time::Duration;

use gauntlet_proxies::ModelSpec;
use gauntlet_reports::{Results, Run};

use crate::real::product::command::{CommandLine, Role};
use crate::real::product::{Product, ProductError, Program, StartOptions};
use crate::run::suite::{self as run_suite, Finished, LIVE, Planned, Selection};
use crate::scenario::{CommandHop, Hop, Route, Scenario, ScenarioError, Scheme};
use crate::tls::{Ca, TlsError};

mod product;
mod report;
mod suite;

pub use product::{BuiltIn, CONFIGURATIONS, Configuration, ProductGate, built_in};
pub use report::{EXCERPT_LINES, excerpt};
pub use suite::{BUILT_IN, SUITE_DIR, Suite};

/// The proxy under test: a program started from a command line, or a real product from a
/// template.
#[derive(Debug)]
pub enum Proxy {
    /// `--proxy-cmd`, a reverse proxy's or (`--forward`) a forward proxy's.
    Command(CommandLine),
    /// `--product`.
    Product(ProductGate),
}

impl Proxy {
    /// A reverse proxy, in front of the server, or a forward one, reached by CONNECT.
    pub fn role(&self) -> Role {
        match self {
            Proxy::Command(c) => c.role(),
            Proxy::Product(p) => p.role(),
        }
    }

    /// The hop that stands for the proxy in place of every behaviour's `pass`.
    fn hop(&self) -> Hop {
        match self {
            Proxy::Command(c) => Hop::Command(CommandHop { command: c.clone() }),
            Proxy::Product(p) => p.hop(),
        }
    }

    /// The product's name, for a product.
    pub fn product(&self) -> Option<Product> {
        match self {
            Proxy::Command(_) => None,
            Proxy::Product(p) => Some(p.product),
        }
    }
}

impl std::fmt::Display for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Proxy::Command(c) => write!(f, "`{c}`"),
            Proxy::Product(p) => write!(f, "{} from {}", p.product, p.template_name),
        }
    }
}

/// How long the gate keeps a tunnel quiet unless told otherwise: longer than the 60 s idle
/// timeouts of nginx (`proxy_read_timeout`) and AWS ALB, so that a proxy with either is caught.
pub const DEFAULT_QUIET: Duration = Duration::from_secs(75);

/// The quiet period of a quick run (`gauntlet gate --quick`), for fast local iteration: it
/// catches a timeout meant for HTTP requests, not an idle limit longer than it.
pub const QUICK_QUIET: Duration = Duration::from_secs(3);

/// The tag of a behaviour whose idle periods are the gate's quiet period ([`set_quiet`]).
pub const QUIET_TAG: &str = "quiet-period";

/// Sets every idle period of each behaviour tagged [`QUIET_TAG`] to `quiet`, and says so in
/// its title (`… (quiet for 75 s)`), so that a report names the period that was checked.
pub fn set_quiet(scenarios: &mut [Scenario], quiet: Duration) {
    let ms = u64::try_from(quiet.as_millis()).unwrap_or(u64::MAX);
    for s in scenarios
        .iter_mut()
        .filter(|s| s.tags.iter().any(|t| t == QUIET_TAG))
    {
        for idle in &mut s.client.workload.idle {
            idle.ms = ms;
        }
        s.title = format!("{} (quiet for {})", s.title, seconds(quiet));
    }
}

/// `75 s`, `2.5 s`.
pub fn seconds(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

/// The schemes the gate runs through `proxy`: ws for a reverse proxy's command without a TLS
/// listener (`{tls_listen}`) and for a reverse product whose template does not listen for
/// TLS (Varnish cannot terminate it), ws and wss for a forward proxy (TLS runs end to end
/// through the tunnel) and for a reverse command or product that terminates TLS with a
/// certificate from the run's CA.
pub fn schemes(proxy: &Proxy) -> &'static [Scheme] {
    match (proxy, proxy.role()) {
        (Proxy::Command(c), Role::Reverse) if !c.tls_listener() => &[Scheme::Ws],
        (Proxy::Product(p), Role::Reverse) if !p.tls => &[Scheme::Ws],
        _ => &[Scheme::Ws, Scheme::Wss],
    }
}

/// The tag of a gate scenario that runs ws alone whatever the proxy (a behaviour that has no
/// wss form, such as an absolute-form `http://` target); every other one runs each scheme
/// the gate runs.
pub const WS_ONLY: &str = "ws-only";

/// Why a suite cannot be gated: a file that does not read, none at all, or a scenario that is
/// not a gate scenario.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GateError {
    /// A scenario file that does not read or validate, located.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// The suite's folder holds no scenario file.
    #[error("{}: no scenario files (*.toml) in the gate suite", dir.display())]
    Empty {
        /// The folder.
        dir: PathBuf,
    },
    /// A scenario that does not run a scheme the gate runs.
    #[error("{file}: a gate scenario must run {scheme} (or, for wss, be tagged `ws-only`)")]
    Scheme {
        /// The scenario file.
        file: String,
        /// The scheme it does not run.
        scheme: Scheme,
    },
    /// A scenario with other than one hop.
    #[error(
        "{file}: a gate scenario has exactly one hop (the `pass` the proxy replaces), \
         this one has {hops}"
    )]
    Hops {
        /// The scenario file.
        file: String,
        /// Its hops.
        hops: usize,
    },
    /// A scenario whose one hop is not a `pass`.
    #[error(
        "{file}: a gate scenario's one hop is a `pass` (the proxy replaces it), this one is \
         `{hop}`"
    )]
    NotPass {
        /// The scenario file.
        file: String,
        /// The hop's name.
        hop: String,
    },
}

/// The scenarios of `suite`, each with `proxy` in place of its one `pass` hop, or every reason
/// the suite cannot be gated (invalid files, files that are not gate scenarios).
pub fn load(suite: &Suite, proxy: &Proxy) -> Result<Vec<Scenario>, Vec<GateError>> {
    let scenarios = match suite {
        Suite::BuiltIn => suite::built_in(),
        Suite::Dir(dir) => {
            let sel = Selection {
                paths: vec![dir.clone()],
                filter: None,
                scheme: None,
                seed: None,
                seeds: None,
            };
            run_suite::plan(&sel).map(|(scenarios, _)| scenarios)
        }
    }
    .map_err(|errors| errors.into_iter().map(GateError::from).collect::<Vec<_>>())?;
    if let (true, Suite::Dir(dir)) = (scenarios.is_empty(), suite) {
        return Err(vec![GateError::Empty { dir: dir.clone() }]);
    }
    every_or_errors(scenarios.into_iter().map(|s| with_proxy(s, proxy)))
}

/// Every value of `results`, or every error among them.
fn every_or_errors<T, E>(results: impl Iterator<Item = Result<T, E>>) -> Result<Vec<T>, Vec<E>> {
    let (mut values, mut errors) = (Vec::new(), Vec::new());
    for r in results {
        match r {
            Ok(v) => values.push(v),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(errors)
    }
}

/// `scenario` with `proxy` in place of its one `pass` hop (for a forward proxy, with an
/// explicit route; for a product's built-in template, with its path prefix), or why it is not
/// a gate scenario.
fn with_proxy(mut scenario: Scenario, proxy: &Proxy) -> Result<Scenario, GateError> {
    let file = scenario.file.clone();
    for scheme in schemes(proxy) {
        let spared = *scheme == Scheme::Wss && scenario.tags.iter().any(|t| t == WS_ONLY);
        if scenario.expected(*scheme).is_none() && !spared {
            return Err(GateError::Scheme {
                file,
                scheme: *scheme,
            });
        }
    }
    let [hop] = scenario.path.as_mut_slice() else {
        return Err(GateError::Hops {
            file,
            hops: scenario.path.len(),
        });
    };
    if !matches!(hop, Hop::Model(ModelSpec::Pass(_))) {
        return Err(GateError::NotPass {
            file,
            hop: hop.name().to_string(),
        });
    }
    *hop = proxy.hop();
    if proxy.role() == Role::Forward {
        scenario.client.route = Route::Explicit;
    }
    if let Proxy::Product(p) = proxy {
        scenario.client.path_prefix = format!("{}{}", p.path_prefix, scenario.client.path_prefix);
    }
    Ok(scenario)
}

/// What [`preflight`] saw of the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preflight {
    /// The proxy's process id.
    pub pid: u32,
    /// Where it listened.
    pub addr: std::net::SocketAddr,
}

/// Why the proxy could not be started once before the suite.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The program or product did not start (with its output).
    #[error(transparent)]
    Program(#[from] ProductError),
    /// A certificate for a product's TLS listener could not be made.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Starts `proxy` once, with a listener of our own (that answers nothing) as its upstream
/// (a forward proxy has none), waits for its port to accept, and stops it: a proxy that will
/// not start is one error, with its output, rather than one per behaviour. A product is
/// given what a run gives it: a TLS listener with a certificate (a reverse proxy's, or a
/// command's that names one), and the server's ports (the silent listener's).
pub fn preflight(proxy: &Proxy) -> Result<Preflight, StartError> {
    // A listener that answers nothing, open until the proxy stops.
    let upstream = silent_upstream()?;
    let mut options = StartOptions::new();
    if proxy.role() == Role::Reverse {
        options = options.upstream(upstream.0);
    }
    let program = match proxy {
        Proxy::Command(c) => {
            if c.names("upstream_tls") {
                options = options.value("upstream_tls", upstream.0.to_string());
            }
            if c.tls_listener() || c.names("ca") {
                let (ca, cert, key) = first_start_certificate()?;
                if c.tls_listener() {
                    options = options.tls(&cert, &key)?;
                }
                options = options.file("ca", "tls-ca.pem", ca.root_pem());
            }
            Program::Command(c.clone())
        }
        Proxy::Product(p) => {
            let port = upstream.0.port().to_string();
            options = options
                .value("server_ws_port", port.clone())
                .value("server_wss_port", port);
            for (name, value) in &p.values {
                options = options.value(name.as_str(), value.as_str());
            }
            if p.role() == Role::Reverse {
                let (_, cert, key) = first_start_certificate()?;
                options = options.tls(&cert, &key)?;
            }
            Program::Product {
                product: p.product,
                template: p.template.clone(),
            }
        }
    };
    let running = program.start(&options)?;
    let seen = Preflight {
        pid: running.pid(),
        addr: running.addr(),
    };
    running.stop()?;
    Ok(seen)
}

/// A CA of the proxy's first start and a certificate it issued for `localhost` (PEM), for a
/// TLS listener that must start as it will in a run.
fn first_start_certificate() -> Result<(Ca, String, String), TlsError> {
    let ca = Ca::generate("Gauntlet gate's first start")?;
    let (cert, key) = ca.issue_pem(&["localhost".to_string()])?;
    Ok((ca, cert, key))
}

/// A listener on 127.0.0.1 that answers nothing, and its address.
fn silent_upstream() -> Result<(std::net::SocketAddr, TcpListener), ProductError> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| Ok((l.local_addr()?, l)))
        .map_err(|source| ProductError::Io {
            what: "cannot bind an upstream on 127.0.0.1 for the proxy's first start".to_string(),
            source,
        })
}

/// Runs every behaviour of `scenarios` (from [`load`]) on the live engine for each of
/// `schemes` (see [`schemes`]), `jobs` at a time, with each scenario's first seed. `each`
/// sees each run in order, as it ends, with its results entry (titled; a failed run's with
/// its transcript excerpt, and behind a product with the product's log lines) and the run
/// itself (its transcript). Returns the results.
pub fn run(
    scenarios: &[Scenario],
    schemes: &[Scheme],
    jobs: usize,
    mut each: impl FnMut(&Scenario, &Run, &Finished),
) -> Results {
    let planned: Vec<Planned> = scenarios
        .iter()
        .enumerate()
        .flat_map(|(i, s)| {
            let seed = s.seeds.first().copied().unwrap_or(1);
            schemes
                .iter()
                .filter(|scheme| s.expected(**scheme).is_some())
                .map(move |scheme| Planned {
                    scenario: i,
                    scheme: *scheme,
                    seed,
                })
        })
        .collect();
    let mut results = Results::new(LIVE);
    run_suite::execute(LIVE, scenarios, &planned, jobs, |i, f| {
        let s = &scenarios[planned[i].scenario];
        let mut entry = run_suite::result_entry(s, &planned[i], f);
        entry.title = s.title.clone();
        if let Ok(out) = &f.output {
            let product = match s.path.first() {
                Some(Hop::Product(p)) => Some(p.product.name()),
                _ => None,
            };
            let (lines, product_log) = excerpt(&out.transcript, product);
            if !entry.pass {
                entry.excerpt = lines;
            }
            entry.product_log = product_log;
        }
        each(s, &entry, f);
        results.runs.push(entry);
    });
    results
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::path::Path;

    fn command() -> Proxy {
        Proxy::Command(CommandLine::parse("my-proxy {listen} {upstream}").unwrap())
    }

    #[test]
    fn the_gate_suite_gets_the_command_in_place_of_its_pass_hops() {
        let scenarios = load(&Suite::BuiltIn, &command()).unwrap();
        assert!(scenarios.len() >= 10, "{}", scenarios.len());
        for s in &scenarios {
            assert!(matches!(s.path.as_slice(), [Hop::Command(_)]), "{}", s.file);
        }
    }

    #[test]
    fn a_forward_proxy_is_every_behaviours_explicit_proxy_for_ws_and_wss() {
        let forward =
            Proxy::Command(CommandLine::parse_as("fwd --listen {listen}", Role::Forward).unwrap());
        let scenarios = load(&Suite::BuiltIn, &forward).unwrap();
        for s in &scenarios {
            assert_eq!(s.client.route, Route::Explicit, "{}", s.file);
            assert!(matches!(s.path.as_slice(), [Hop::Command(_)]), "{}", s.file);
        }
        assert_eq!(schemes(&forward), [Scheme::Ws, Scheme::Wss]);
        assert_eq!(schemes(&command()), [Scheme::Ws]);
        let reverse = load(&Suite::BuiltIn, &command()).unwrap();
        assert!(reverse.iter().all(|s| s.client.route == Route::Direct));
    }

    #[test]
    fn a_product_stands_in_every_behaviour_for_ws_and_wss_with_its_path_prefix() {
        let base = std::env::temp_dir();
        let apache = ProductGate::built_in(Product::Apache, BTreeMap::new(), &base).unwrap();
        let apache = Proxy::Product(apache);
        assert_eq!(schemes(&apache), [Scheme::Ws, Scheme::Wss]);
        for s in load(&Suite::BuiltIn, &apache).unwrap() {
            assert!(matches!(s.path.as_slice(), [Hop::Product(_)]), "{}", s.file);
            // Apache's template maps `/ws/` to the server: its prefix comes before the
            // behaviour's own (a deep path keeps the rest of it).
            assert!(
                s.client.path_prefix == "/ws" || s.client.path_prefix.starts_with("/ws/"),
                "{}: {}",
                s.file,
                s.client.path_prefix
            );
            assert_eq!(s.client.route, Route::Direct, "{}", s.file);
        }
        let squid = ProductGate::built_in(Product::Squid, BTreeMap::new(), &base).unwrap();
        for s in load(&Suite::BuiltIn, &Proxy::Product(squid)).unwrap() {
            assert_eq!(s.client.route, Route::Explicit, "{}", s.file);
        }
    }

    #[test]
    fn a_suite_that_is_not_a_gate_suite_is_refused_file_by_file() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let dir = |d: &str| Suite::Dir(root.join(d));
        let errors = load(&dir("scenarios/gate-negative"), &command()).unwrap_err();
        assert!(
            errors.iter().all(|e| matches!(e, GateError::NotPass { .. })
                && e.to_string().contains("this one is `")),
            "{errors:?}"
        );
        let errors = load(&dir("scenarios/no-such-suite"), &command()).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
    }
}
