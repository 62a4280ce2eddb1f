//! The `gauntlet` command: check scenario files, run them, and compare two results files.
//!
//! Exit codes: 0 when every file is valid and every run passed (for `diff`: nothing
//! regressed; for `proxy` and `serve`: stopped by Ctrl-C or SIGTERM); 1 when a run failed its
//! expectation, a checked file is invalid, or `diff` found a regression (for `gate`: a
//! behaviour failed); 2 when Gauntlet could not do what was asked (bad flags, unreadable or
//! invalid scenario files for `run`, unwritable results, unreadable or invalid results files
//! for `diff`, bad models or parameters or an unusable address for `proxy`, an unusable
//! address or CA file for `serve`, a bad command line, a suite that is not a gate suite or a
//! proxy that would not start for `gate`).
//!
//! A closed stdout ends a command quietly with exit status 141 (128 + SIGPIPE), as SIGPIPE
//! ends a Unix tool, after stopping every process it started ([`write_stdout`]).
//!
//! Files are read up to a limit (scenario files 4 MiB, results files 256 MiB), so an endless
//! one such as `/dev/zero` is an error too.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};
use futures_util::FutureExt;
use gauntlet::engine::{self, ENGINES, Engine as _};
use gauntlet::real::product::command::Role;
use gauntlet::run::suite::{self, Selection};
use gauntlet::scenario::{self, Scheme, StrategyKind};
use gauntlet::tls::TlsVersions;
use gauntlet_reports::{DiffOptions, Results};

/// `println!` for everything the commands print on stdout, through [`write_stdout`]: a closed
/// stdout ends the process quietly rather than panicking.
macro_rules! outln {
    ($($arg:tt)*) => {
        write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` through [`write_stdout`].
macro_rules! out {
    ($($arg:tt)*) => {
        write_stdout(format_args!($($arg)*))
    };
}

/// `eprintln!` that never panics: a closed stderr loses the line.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod cli;

use cli::bench::bench;
use cli::check::check;
use cli::diff::diff;
use cli::differential::differential;
use cli::gate::gate;
use cli::overhead::{Outputs, overhead};
use cli::proxy::proxy;
use cli::report::report;
use cli::run::{Shown, run};
use cli::serve::{serve, serve_default_header_timeout_ms, serve_default_max_connections};

/// mimalloc: a crowd's runs make millions of small allocations and frees, which cost a third
/// less than with glibc's allocator (feature `mimalloc`, on by default).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The most seeds per scenario (`--seeds`) and clients in a crowd (`--clients`): far more than
/// any suite needs, and few enough that planning them fits in memory.
const MAX_COUNT: u64 = 100_000;

#[derive(Debug, Parser)]
#[command(
    name = "gauntlet",
    version,
    about = "WebSockets through misbehaving intermediaries, simulated"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate scenario files without running them.
    Check {
        /// Scenario files or folders.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run scenarios: every file × scheme × seed.
    Run {
        /// Scenario files or folders (default: scenarios).
        paths: Vec<PathBuf>,
        /// Only scenarios whose path contains this text.
        #[arg(long)]
        filter: Option<String>,
        /// Only this scheme.
        #[arg(long, value_parser = parse_scheme)]
        scheme: Option<Scheme>,
        /// Only runs of this client strategy (ws, wss, ws-then-wss, polling-then-upgrade,
        /// websocket-then-polling, streaming, wss-then-streaming, detect-then-wss, redirect);
        /// `ws` and `wss` keep scheme runs too.
        #[arg(long, value_parser = parse_strategy)]
        strategy: Option<StrategyKind>,
        /// Run only this seed.
        #[arg(long, conflicts_with = "seeds")]
        seed: Option<u64>,
        /// Run seeds 1 to N instead of each file's seeds (N at most 100000).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_COUNT))]
        seeds: Option<u64>,
        /// The network engine.
        #[arg(long, default_value = engine::DEFAULT, value_parser = clap::builder::PossibleValuesParser::new(ENGINES))]
        engine: String,
        /// Parallel runs (default: the number of cores).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        jobs: Option<u64>,
        /// Write results as JSON here.
        #[arg(long)]
        results: Option<PathBuf>,
        /// Print each run's transcript.
        #[arg(long)]
        transcript: bool,
        /// How to name this command in reproduction hints.
        #[arg(long, hide = true, default_value = "gauntlet run")]
        invoked_as: String,
    },
    /// Measure runs on the wall clock: prints one JSON object (wall time, peak memory, runs
    /// passed). `cargo xtask bench` calls this once per sample.
    Bench {
        /// Scenario files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The network engine.
        #[arg(long, default_value = engine::DEFAULT, value_parser = clap::builder::PossibleValuesParser::new(ENGINES))]
        engine: String,
        /// Run seeds 1 to N instead of each file's seeds (N at most 100000).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_COUNT))]
        seeds: Option<u64>,
        /// Run one file's client this many times at once (a crowd) instead of the selection
        /// (at most 100000).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_COUNT))]
        clients: Option<u64>,
        /// Parallel runs (default: the number of cores).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        jobs: Option<u64>,
    },
    /// Render a results file as reports: report.md (summary, traversal matrix, latency),
    /// report.html (self-contained, with charts), report.xml (JUnit) and report.json (the
    /// results themselves).
    Report(cli::report::ReportArgs),
    /// Measure what each transport (ws, wss, Engine.IO long-polling, HTTP streaming) puts on
    /// the wire per message, by message size and by message rate, with Chromium's request
    /// heads, on the simulated engine; print bytes per message and write the page, chart and
    /// measurements asked for. `cargo xtask report` writes reports/OVERHEAD.md and reports/overhead.svg.
    Overhead {
        /// Write the Markdown page (the tables, the seed's claim beside the measurement) here.
        #[arg(long, value_name = "FILE")]
        markdown: Option<PathBuf>,
        /// Write the chart (SVG: bytes per message by payload size) here.
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
        /// Write the measurements as JSON here.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Instead of writing the page and the chart, compare them with the files at
        /// --markdown and --svg and exit 1 if either is stale.
        #[arg(long)]
        check: bool,
        /// How to name the command that regenerates the page.
        #[arg(long, hide = true, default_value = "gauntlet overhead")]
        invoked_as: String,
    },
    /// The differential suite: run each scenario that names a twin on the live engine (real
    /// products) and its twin on the simulated engine (the products' models); print whether
    /// each pair ends the same way, per scheme, and `N agree, M disagree`. Exit 1 on any
    /// disagreement or a live run that missed its own expectation.
    Differential {
        /// Scenario files or folders (default: scenarios/live).
        paths: Vec<PathBuf>,
        /// Parallel live runs.
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
        jobs: u64,
    },
    /// Compare two results files: list changed outcomes and latency regressions; exit 1 if
    /// anything regressed (a run that passed now fails, or a latency figure got worse by more
    /// than both thresholds).
    Diff {
        /// The baseline results file (JSON written by `run --results`).
        old: PathBuf,
        /// The results file to compare with it.
        new: PathBuf,
        /// A latency figure regresses only when it grows by more than this percentage of the
        /// old figure (and by more than --threshold-ms).
        #[arg(long, value_name = "P", default_value_t = DiffOptions::default().threshold_pct, value_parser = parse_threshold)]
        threshold_pct: f64,
        /// A latency figure regresses only when it grows by more than this many milliseconds
        /// (and by more than --threshold-pct).
        #[arg(long, value_name = "MS", default_value_t = DiffOptions::default().threshold_ms, value_parser = parse_threshold)]
        threshold_ms: f64,
    },
    /// The CI gate for your own proxy: start it from a command line in front of a WebSocket
    /// server, once per behaviour of the gate suite (built in, from scenarios/gate: the
    /// upgrade, frame length boundaries, fragmentation, a quiet tunnel of 75 s, 100 sessions
    /// at once, a subprotocol offer, close codes, server push), run each behaviour through it
    /// on real sockets (ws; ws and wss with --forward, --product, or a command with a TLS
    /// listener), print pass or FAIL per
    /// behaviour and `N passed, M failed`. Exit 1 if any behaviour failed, 2 if the proxy
    /// would not start.
    ///
    /// In the command, {listen} is the address to listen on (127.0.0.1:PORT, or
    /// {listen_port} for the port alone) and {upstream} the server's (127.0.0.1:PORT, or
    /// {upstream_port}). A TLS-terminating proxy also gets {tls_listen} (or
    /// {tls_listen_port}) to listen on for wss, with {cert} and {key} (or {cert_and_key}),
    /// PEM files of a certificate the client trusts; one that encrypts again gets
    /// {upstream_tls} (or {upstream_tls_port}), the server's TLS port, and {ca}, the CA that
    /// signed its certificate (for the name `server`). Words split as a shell would split
    /// simple words, quotes included; there is no shell.
    ///
    /// With --forward, the proxy is a forward (CONNECT) proxy: the client is configured to
    /// use it, sends `CONNECT 127.0.0.1:PORT` for the server's real port, and runs each
    /// behaviour through the tunnel, for ws and for wss (TLS end to end). Its command has
    /// {listen} only: no {upstream}, since each CONNECT names the destination.
    ///
    /// With --product NAME (nginx, haproxy, apache, squid, tinyproxy, caddy, lighttpd, h2o,
    /// varnish, trafficserver, node-http-proxy, mitmproxy), the proxy is that real
    /// product, started for each behaviour from its built-in WebSocket configuration (or
    /// --template FILE), its error and access log lines attached to each failed check.
    ///
    /// Example: gauntlet gate --proxy-cmd './my-proxy --listen {listen} --upstream {upstream}'
    /// --junit gate.xml --markdown gate.md
    /// Example: gauntlet gate --forward --proxy-cmd './my-forward-proxy --listen {listen}'
    /// Example: gauntlet gate --product nginx --quick
    #[command(verbatim_doc_comment)]
    Gate(cli::gate::GateArgs),
    Population(cli::population::PopulationArgs),
    Merge(cli::population::MergeArgs),
    /// The conformance matrix: the gate suite, quick (a 3 s quiet period), through every
    /// real product in each configuration of the matrix (its documentation's WebSocket
    /// configuration, and as shipped where that differs), each product's version as it
    /// reports it; writes reports/CONFORMANCE.md and reports/conformance.html, with the
    /// notes of reports/conformance-notes.toml on the failing cells. A product that is not
    /// installed is an error that says what to install. With --check, writes nothing and
    /// exits 1 if a cell differs from the committed Markdown page.
    Conformance(cli::conformance::ConformanceArgs),
    /// Run models as a real proxy on real sockets until interrupted (Ctrl-C or SIGTERM),
    /// logging each connection and what the models do to stderr.
    ///
    /// `--model` may repeat: a chain, the first facing the clients, the last dialing the
    /// upstream. Each `--param KEY=VALUE` applies to the `--model` named most recently
    /// before it, with the keys and values a scenario file's hop table takes (values are
    /// TOML: 30000, true, [80, 443], "text"; anything else is a string). When `--listen`
    /// has port 0, the first line on stdout is `listening on ADDRESS`.
    ///
    /// Example: gauntlet proxy --model transparent-proxy --param behaviour=strip
    /// --listen 127.0.0.1:8080 --upstream 127.0.0.1:9000
    #[command(verbatim_doc_comment)]
    Proxy {
        /// A model (see scenarios/README.md); repeat for a chain, client side first.
        #[arg(long = "model", value_name = "NAME", required = true, value_parser = cli::proxy::ModelNames)]
        models: Vec<String>,
        /// A parameter of the model named before it.
        #[arg(long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// Where to listen, e.g. 127.0.0.1:8080 (port 0: any free port, printed on stdout).
        #[arg(long, value_name = "ADDR")]
        listen: SocketAddr,
        /// Where to send each connection, e.g. 127.0.0.1:9000. Given once per backend, it
        /// gives a balancer that is the last model (`l4-balancer`, `l7-balancer` with
        /// `backends=N`) a real server per backend, in order. Without it, a forward proxy
        /// (connect-proxy) dials the loopback address each CONNECT names, and a model that
        /// dials its backend fails the connection (it has none).
        #[arg(long, value_name = "ADDR")]
        upstream: Vec<SocketAddr>,
        /// The port the models see connections arrive on (and dial upstream): models that
        /// read HTTP only on some ports decide by it (80: plain HTTP; 443: TLS, which they
        /// relay opaquely).
        #[arg(long, value_name = "PORT", default_value_t = 80)]
        model_port: u16,
        /// The most client connections open at once; beyond it the proxy stops accepting
        /// until one closes (they wait in the listen queue). Default: the descriptor limit
        /// (`ulimit -n`) less 32, halved (two a connection), as HAProxy sizes `maxconn`.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        max_connections: Option<u64>,
        // Its help, `cli::proxy::workers_help`, names the models that keep state.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1024), help = cli::proxy::workers_help())]
        workers: Option<u64>,
    },
    /// Run the reference server (`/echo`, `/push` and their query options; Engine.IO v4 on
    /// `/engine.io/` and `/socket.io/`) on real sockets until interrupted (Ctrl-C or
    /// SIGTERM), logging each request and what it does to stderr, for WebSocket and
    /// Engine.IO clients written elsewhere.
    ///
    /// When `--listen` has port 0, stdout has `listening on ADDRESS`; when `--tls-listen`
    /// has port 0, `listening (tls) on ADDRESS` follows. wss uses a certificate from a CA
    /// generated at start, whose PEM goes to `--ca-out` before either line is printed; it
    /// speaks TLS 1.2 and 1.3 unless `--tls-version` pins one.
    ///
    /// A connection that has not sent a whole request head (TLS handshake included) within
    /// `--header-timeout-ms` of its accept or of its previous answer is closed, and a
    /// connection beyond `--max-connections` is closed as soon as it is accepted; the defaults
    /// are nginx's as Debian ships it (client_header_timeout 60s, worker_connections 768).
    ///
    /// Example: gauntlet serve --listen 127.0.0.1:9000
    /// --tls-listen 127.0.0.1:9443 --ca-out ca.pem
    #[command(verbatim_doc_comment)]
    Serve {
        /// Where ws listens, e.g. 127.0.0.1:9000 (port 0: any free port, printed on stdout).
        #[arg(long, value_name = "ADDR")]
        listen: SocketAddr,
        /// Where wss listens, e.g. 127.0.0.1:9443 (port 0: any free port, printed on stdout).
        #[arg(long, value_name = "ADDR", requires = "ca_out")]
        tls_listen: Option<SocketAddr>,
        /// Where to write the PEM of the CA that signs wss's certificate.
        #[arg(long, value_name = "FILE", requires = "tls_listen")]
        ca_out: Option<PathBuf>,
        /// The one TLS version wss accepts: 1.2 or 1.3 (default: both; `any` says so).
        #[arg(long, value_name = "VERSION", requires = "tls_listen", value_parser = parse_tls_version)]
        tls_version: Option<TlsVersions>,
        /// How long a connection has to send a whole request head, in milliseconds (0: no
        /// limit).
        #[arg(long, value_name = "MS", default_value_t = serve_default_header_timeout_ms())]
        header_timeout_ms: u64,
        /// How many connections are held at once, WebSocket sessions included (0: no limit).
        #[arg(long, value_name = "N", default_value_t = serve_default_max_connections())]
        max_connections: usize,
        /// Copies of the server, one thread each, listening on the same addresses (the
        /// kernel spreads connections among them). Default: one per core.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1024))]
        workers: Option<u64>,
        #[command(flatten)]
        engineio: cli::serve::EngineIoArgs,
    },
}

fn parse_threshold(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("`{s}` is not a threshold: use a number, 0 or more")),
    }
}

fn parse_tls_version(s: &str) -> Result<TlsVersions, gauntlet::tls::UnknownTlsVersion> {
    s.parse()
}

fn parse_strategy(s: &str) -> Result<StrategyKind, String> {
    StrategyKind::ALL
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or_else(|| {
            let names: Vec<&str> = StrategyKind::ALL.iter().map(|k| k.as_str()).collect();
            format!("`{s}` is not a strategy: use {}", names.join(", "))
        })
}

fn parse_scheme(s: &str) -> Result<Scheme, String> {
    match s {
        "ws" => Ok(Scheme::Ws),
        "wss" => Ok(Scheme::Wss),
        _ => Err(format!("`{s}` is not a scheme: use ws or wss")),
    }
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let result = match cli.command {
        Command::Check { files } => check(files),
        Command::Run {
            paths,
            filter,
            scheme,
            strategy,
            seed,
            seeds,
            engine,
            jobs,
            results,
            transcript,
            invoked_as,
        } => {
            let paths = if paths.is_empty() {
                vec![PathBuf::from("scenarios")]
            } else {
                paths
            };
            let sel = Selection {
                paths,
                filter,
                scheme,
                seed,
                seeds,
            };
            let shown = Shown {
                results,
                transcript,
                invoked_as,
            };
            run(&sel, strategy, &engine, cores(jobs), &shown)
        }
        Command::Bench {
            paths,
            engine,
            seeds,
            clients,
            jobs,
        } => bench(paths, &engine, seeds, clients, cores(jobs)),
        Command::Differential { paths, jobs } => differential(paths, jobs as usize),
        Command::Overhead {
            markdown,
            svg,
            json,
            check,
            invoked_as,
        } => overhead(&Outputs {
            markdown: markdown.as_deref(),
            svg: svg.as_deref(),
            json: json.as_deref(),
            check,
            invoked_as: &invoked_as,
        }),
        Command::Gate(args) => gate(&args),
        Command::Population(args) => cli::population::population_cmd(&args),
        Command::Merge(args) => cli::population::merge_cmd(&args),
        Command::Conformance(args) => cli::conformance::conformance(&args),
        Command::Report(args) => report(&args),
        Command::Diff {
            old,
            new,
            threshold_pct,
            threshold_ms,
        } => diff(
            &old,
            &new,
            &DiffOptions {
                threshold_pct,
                threshold_ms,
            },
        ),
        Command::Proxy {
            listen,
            upstream,
            model_port,
            max_connections,
            workers,
            ..
        } => proxy(
            matches.subcommand_matches("proxy"),
            listen,
            upstream,
            model_port,
            max_connections.map_or_else(gauntlet::real::proxy::default_max_connections, |n| {
                usize::try_from(n).unwrap_or(usize::MAX)
            }),
            workers.map(|n| n as usize),
        ),
        Command::Serve {
            listen,
            tls_listen,
            ca_out,
            tls_version,
            header_timeout_ms,
            max_connections,
            workers,
            engineio,
        } => serve(
            listen,
            tls_listen.zip(ca_out),
            tls_version.unwrap_or_default(),
            gauntlet::endpoints::server::Limits {
                header_timeout: (header_timeout_ms > 0)
                    .then(|| std::time::Duration::from_millis(header_timeout_ms)),
                max_connections: (max_connections > 0).then_some(max_connections),
            },
            cores(workers),
            engineio.options(),
        ),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            errln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Writes what a command prints to stdout, and flushes it. When stdout is closed (`gauntlet
/// check | head` after its first lines) the process ends quietly, as a Unix tool ends: every
/// process the harness started is stopped, nothing is printed, and the exit status is 141
/// (128 + SIGPIPE, what the shell shows for a tool that SIGPIPE ended). Any other write error
/// is one line on stderr and exit status 2. (`proxy` and `serve` print their addresses with
/// [`say`] instead: they run until interrupted, stdout or not.)
fn write_stdout(text: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let Err(e) = stdout.write_fmt(text).and_then(|()| stdout.flush()) else {
        return;
    };
    drop(stdout);
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        gauntlet::real::product::stop_all_and_exit(141);
    }
    errln!("error: cannot write to stdout: {e}");
    gauntlet::real::product::stop_all_and_exit(2);
}

/// Writes `line` and flushes. A closed stream loses the line; it does not stop a command that
/// runs until interrupted.
fn say(to: &mut dyn std::io::Write, line: &str) {
    let _ = writeln!(to, "{line}").and_then(|()| to.flush());
}

/// Completes at Ctrl-C or SIGTERM (or at once if neither can be watched).
async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                biased;
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// `--jobs`, or the number of cores.
fn cores(jobs: Option<u64>) -> usize {
    jobs.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |j| j as usize,
    )
}

struct Style {
    color: bool,
}

impl Style {
    /// Colour when stdout is a terminal and `NO_COLOR` is not set.
    fn for_stdout() -> Self {
        Style {
            color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// `1 run`, `2 runs`.
fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
