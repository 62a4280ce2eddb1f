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
use gauntlet::scenario::{self, Scheme};
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
    Report {
        /// The results file (JSON written by `run --results`).
        results: PathBuf,
        /// The folder to write the four reports into.
        #[arg(long, default_value = "target/gauntlet")]
        out: PathBuf,
        /// Also render the traversal page (the seed article's decision tree measured, ws versus
        /// wss per intermediary kind, the matrix) to this file.
        #[arg(long, value_name = "FILE")]
        traversal: Option<PathBuf>,
        /// Instead of writing the traversal page, compare it with the file at --traversal and
        /// exit 1 if that file is stale.
        #[arg(long, requires = "traversal")]
        check: bool,
        /// How to name the command that regenerates the traversal page.
        #[arg(long, hide = true, default_value = "gauntlet report")]
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
    /// server, once per behaviour of the gate suite (scenarios/gate: the upgrade, frame
    /// length boundaries, fragmentation, a quiet tunnel, close codes, server push), run each
    /// behaviour through it on real sockets (ws; ws and wss with --forward), print pass or
    /// FAIL per behaviour and `N passed, M failed`. Exit 1 if any behaviour failed, 2 if the
    /// proxy would not start.
    ///
    /// In the command, {listen} is the address to listen on (127.0.0.1:PORT, or
    /// {listen_port} for the port alone) and {upstream} the server's (127.0.0.1:PORT, or
    /// {upstream_port}). Words split as a shell would split simple words, quotes included;
    /// there is no shell.
    ///
    /// With --forward, the proxy is a forward (CONNECT) proxy: the client is configured to
    /// use it, sends `CONNECT 127.0.0.1:PORT` for the server's real port, and runs each
    /// behaviour through the tunnel, for ws and for wss (TLS end to end). Its command has
    /// {listen} only: no {upstream}, since each CONNECT names the destination.
    ///
    /// Example: gauntlet gate --proxy-cmd './my-proxy --listen {listen} --upstream {upstream}'
    /// --junit gate.xml
    /// Example: gauntlet gate --forward --proxy-cmd './my-forward-proxy --listen {listen}'
    #[command(verbatim_doc_comment)]
    Gate {
        /// The proxy's command line, with {listen} and {upstream} ({listen} only with
        /// --forward).
        #[arg(long, value_name = "CMD")]
        proxy_cmd: String,
        /// The proxy is a forward proxy, reached by CONNECT: every behaviour runs with the
        /// proxy as the client's explicit proxy, for ws and wss.
        #[arg(long)]
        forward: bool,
        /// The gate suite: scenario files with one `pass` hop each, which the proxy replaces.
        #[arg(long, value_name = "DIR", default_value = gauntlet::real::gate::DEFAULT_SUITE)]
        suite: PathBuf,
        /// Write a JUnit report here: a testcase per behaviour, failures named by title.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// Behaviours run at a time (each with its own proxy process).
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
        jobs: u64,
        /// Print every behaviour's transcript (failed behaviours always print theirs).
        #[arg(long)]
        transcript: bool,
    },
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
        #[arg(long = "model", value_name = "NAME", required = true)]
        models: Vec<String>,
        /// A parameter of the model named before it.
        #[arg(long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// Where to listen, e.g. 127.0.0.1:8080 (port 0: any free port, printed on stdout).
        #[arg(long, value_name = "ADDR")]
        listen: SocketAddr,
        /// Where to send each connection, e.g. 127.0.0.1:9000. Without it, a forward proxy
        /// (connect-proxy) dials the loopback address each CONNECT names, and a model that
        /// dials its backend fails the connection (it has none).
        #[arg(long, value_name = "ADDR")]
        upstream: Option<SocketAddr>,
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
        /// Copies of the chain, one thread each, listening on the same address (the kernel
        /// spreads connections among them). Default: one per core; one for a chain with a
        /// model that keeps state between connections (caching-proxy, the balancers).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1024))]
        workers: Option<u64>,
    },
    /// Run the reference server (`/echo`, `/push` and their query options) on real sockets
    /// until interrupted (Ctrl-C or SIGTERM), logging each request and what it does to
    /// stderr, for WebSocket clients written elsewhere.
    ///
    /// When `--listen` has port 0, stdout has `listening on ADDRESS`; when `--tls-listen`
    /// has port 0, `listening (tls) on ADDRESS` follows. wss uses a certificate from a CA
    /// generated at start, whose PEM goes to `--ca-out` before either line is printed; it
    /// speaks TLS 1.2 and 1.3 unless `--tls-version` pins one.
    ///
    /// A connection that has not sent a whole request head (TLS handshake included) within
    /// `--header-timeout-ms` of its accept or of its previous request is closed, and a
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
    },
}

/// `gauntlet serve --header-timeout-ms`'s default.
fn serve_default_header_timeout_ms() -> u64 {
    gauntlet::endpoints::server::Limits::SERVE
        .header_timeout
        .map_or(0, |t| t.as_millis() as u64)
}

/// `gauntlet serve --max-connections`'s default.
fn serve_default_max_connections() -> usize {
    gauntlet::endpoints::server::Limits::SERVE
        .max_connections
        .unwrap_or(0)
}

fn parse_threshold(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("`{s}` is not a threshold: use a number, 0 or more")),
    }
}

fn parse_tls_version(s: &str) -> Result<TlsVersions, String> {
    s.parse()
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
            run(&sel, &engine, cores(jobs), results, transcript, &invoked_as)
        }
        Command::Bench {
            paths,
            engine,
            seeds,
            clients,
            jobs,
        } => bench(paths, &engine, seeds, clients, cores(jobs)),
        Command::Differential { paths, jobs } => differential(paths, jobs as usize),
        Command::Gate {
            proxy_cmd,
            forward,
            suite,
            junit,
            jobs,
            transcript,
        } => gate(
            &proxy_cmd,
            if forward {
                Role::Forward
            } else {
                Role::Reverse
            },
            &suite,
            junit.as_deref(),
            jobs as usize,
            transcript,
        ),
        Command::Report {
            results,
            out,
            traversal,
            check,
            invoked_as,
        } => report(&results, &out, traversal.as_deref(), check, &invoked_as),
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

/// `gauntlet proxy`: the models from the command line (in order, with their parameters) on
/// the live engine until Ctrl-C or SIGTERM.
fn proxy(
    matches: Option<&ArgMatches>,
    listen: SocketAddr,
    upstream: Option<SocketAddr>,
    model_port: u16,
    max_connections: usize,
    workers: Option<usize>,
) -> anyhow::Result<ExitCode> {
    let positioned = |id: &str| -> Vec<(usize, String)> {
        let Some(m) = matches else { return Vec::new() };
        match (m.indices_of(id), m.get_many::<String>(id)) {
            (Some(at), Some(values)) => at.zip(values.cloned()).collect(),
            _ => Vec::new(),
        }
    };
    let args = gauntlet::real::proxy::group(&positioned("models"), &positioned("params"))
        .map_err(anyhow::Error::msg)?;
    let models = args
        .iter()
        .map(gauntlet::real::proxy::spec)
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let workers = gauntlet::real::proxy::workers(&models, workers).map_err(anyhow::Error::msg)?;
    let plan = gauntlet::real::proxy::Plan {
        models,
        listen,
        upstream,
        model_port,
        max_connections,
        workers,
    };
    let transcript = gauntlet::verdict::transcript::Transcript::printing();
    let announce = listen.port() == 0;
    let log = transcript.clone();
    let run = gauntlet::real::proxy::run(
        &plan,
        transcript.clone(),
        interrupted().boxed_local(),
        move |addr| {
            if announce {
                say(&mut std::io::stdout(), &format!("listening on {addr}"));
            }
            let upstream = upstream.map_or_else(
                || "none (CONNECT names each destination)".to_string(),
                |u| u.to_string(),
            );
            log.say(&format!(
                "listening on {addr}, upstream {upstream}, {}",
                plural(workers, "worker")
            ));
        },
    );
    transcript.finish();
    run?;
    Ok(ExitCode::SUCCESS)
}

/// `gauntlet gate`: the gate suite through the proxy `command` starts, one behaviour per line.
fn gate(
    command: &str,
    role: Role,
    suite_dir: &Path,
    junit: Option<&Path>,
    jobs: usize,
    show_transcript: bool,
) -> anyhow::Result<ExitCode> {
    let command = gauntlet::real::product::command::CommandLine::parse_as(command, role)
        .map_err(|e| anyhow::anyhow!("--proxy-cmd: {e}"))?;
    let schemes = gauntlet::real::gate::schemes(role);
    let scenarios = match gauntlet::real::gate::load(suite_dir, &command) {
        Ok(s) => s,
        Err(errors) => {
            for e in &errors {
                errln!("{e}");
            }
            anyhow::bail!("{} is not a gate suite", suite_dir.display());
        }
    };
    let first = gauntlet::real::gate::preflight(&command)
        .map_err(|e| anyhow::anyhow!("the proxy did not start: {e}"))?;
    let (kind, how) = match role {
        Role::Reverse => ("reverse proxy", "in front of the server"),
        Role::Forward => ("forward proxy", "reached by CONNECT"),
    };
    outln!(
        "gating `{command}` as a {kind} {how} (it starts: pid {} listened on {}) with {} from {}, {} on live, {jobs} at a time",
        first.pid,
        first.addr,
        plural(scenarios.len(), "behaviour"),
        suite_dir.display(),
        schemes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" and ")
    );
    let style = Style::for_stdout();
    let name = |s: &scenario::Scenario| {
        Path::new(&s.file)
            .file_stem()
            .map_or_else(|| s.file.clone(), |n| n.to_string_lossy().into_owned())
    };
    let width = scenarios.iter().map(|s| name(s).len()).max().unwrap_or(0);
    let results = gauntlet::real::gate::run(&scenarios, schemes, jobs, |s, entry, finished| {
        let verdict = if entry.pass {
            style.paint("32", "pass")
        } else {
            style.paint("31;1", "FAIL")
        };
        outln!(
            "{verdict}  {:<width$}  {:<3}  {:<18}  {}",
            name(s),
            entry.scheme,
            entry.outcome,
            entry.detail
        );
        if !entry.pass {
            outln!("      {}: expected {}", s.title, entry.expected);
        }
        if show_transcript || !entry.pass {
            if let Ok(out) = &finished.output {
                for line in out.rendered().lines() {
                    outln!("      {line}");
                }
            }
        }
    });
    if let Some(path) = junit {
        gauntlet::files::write_file(path, &gauntlet_reports::junit(&results))
            .with_context(|| format!("writing {}", path.display()))?;
        outln!("junit: {}", path.display());
    }
    let (passed, failed) = results.tally();
    let errors = results
        .runs
        .iter()
        .filter(|r| r.outcome == "harness-error")
        .count();
    let summary = format!("{passed} passed, {failed} failed");
    outln!(
        "{}",
        style.paint(if failed == 0 { "32" } else { "31;1" }, &summary)
    );
    if errors > 0 {
        anyhow::bail!(
            "{} could not run (see above): the proxy did not start every time",
            plural(errors, "behaviour")
        );
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `gauntlet serve`: the reference server on the live engine until Ctrl-C or SIGTERM, wss
/// too, accepting `versions`, when `tls` names where to listen and where to write the CA; on
/// `workers` threads.
fn serve(
    listen: SocketAddr,
    tls: Option<(SocketAddr, PathBuf)>,
    versions: TlsVersions,
    limits: gauntlet::endpoints::server::Limits,
    workers: usize,
) -> anyhow::Result<ExitCode> {
    let tls = match tls {
        Some((addr, ca_out)) => {
            let tls = gauntlet::real::serve::Tls::generate(addr, versions)?;
            gauntlet::files::write_file(&ca_out, &tls.ca_pem)
                .with_context(|| format!("writing the CA to {}", ca_out.display()))?;
            Some(tls)
        }
        None => None,
    };
    let announce = (
        listen.port() == 0,
        tls.as_ref().is_some_and(|t| t.listen.port() == 0),
    );
    let plan = gauntlet::real::serve::Plan {
        listen,
        tls,
        limits,
        workers,
    };
    let transcript = gauntlet::verdict::transcript::Transcript::printing();
    let log = transcript.clone();
    let run = gauntlet::real::serve::run(
        &plan,
        transcript.clone(),
        interrupted().boxed_local(),
        move |bound| {
            let mut lines = vec![(announce.0, format!("listening on {}", bound.ws))];
            if let Some(wss) = bound.wss {
                lines.push((announce.1, format!("listening (tls) on {wss}")));
            }
            for (to_stdout, line) in lines {
                if to_stdout {
                    say(&mut std::io::stdout(), &line);
                }
                log.say(&line);
            }
            log.say(&format!("{} serving", plural(workers, "worker")));
        },
    );
    transcript.finish();
    run?;
    Ok(ExitCode::SUCCESS)
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

fn bench(
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

fn diff(old: &Path, new: &Path, opts: &DiffOptions) -> anyhow::Result<ExitCode> {
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

fn differential(paths: Vec<PathBuf>, jobs: usize) -> anyhow::Result<ExitCode> {
    let paths = if paths.is_empty() {
        vec![PathBuf::from("scenarios/live")]
    } else {
        paths
    };
    let sel = Selection {
        paths,
        filter: None,
        scheme: None,
        seed: None,
        seeds: None,
    };
    let (scenarios, _) = match suite::plan(&sel) {
        Ok(p) => p,
        Err(errors) => {
            for e in &errors {
                errln!("{e}");
            }
            anyhow::bail!("{} invalid scenario file(s)", errors.len());
        }
    };
    let pairs = scenarios.iter().filter(|s| s.twin.is_some()).count();
    if pairs == 0 {
        anyhow::bail!("none of the selected scenarios names a twin");
    }
    outln!(
        "comparing {} live with {} on {} ({jobs} live runs at a time)",
        plural(pairs, "scenario"),
        if pairs == 1 {
            "its twin"
        } else {
            "their twins"
        },
        engine::sim::Sim.name()
    );
    let style = Style::for_stdout();
    let show = |o: &Result<gauntlet::verdict::outcome::Outcome, String>| match o {
        Ok(o) => o.to_string(),
        Err(e) => format!("error ({e})"),
    };
    let width = scenarios.iter().map(|s| s.file.len()).max().unwrap_or(0);
    let comparisons = gauntlet::real::differential::compare(&scenarios, jobs, |c| {
        let verdict = if c.agrees() {
            style.paint("32", "agree   ")
        } else {
            style.paint("31;1", "DISAGREE")
        };
        outln!(
            "{verdict}  {:<width$}  {:<3}  live {:<18}  model {:<18}  (twin {})",
            c.live,
            c.scheme,
            show(&c.live_outcome),
            show(&c.twin_outcome),
            c.twin
        );
        if !c.live_passed() {
            let expected = c.live_expected.map_or("-".to_string(), |e| e.to_string());
            outln!(
                "    the live run expected {expected}: {}",
                if c.live_detail.is_empty() {
                    show(&c.live_outcome)
                } else {
                    c.live_detail.clone()
                }
            );
        }
    });
    let agree = comparisons.iter().filter(|c| c.agrees()).count();
    let disagree = comparisons.len() - agree;
    let missed = comparisons.iter().filter(|c| !c.live_passed()).count();
    if missed > 0 {
        outln!("{} missed its own expectation", plural(missed, "live run"));
    }
    let summary = format!("{agree} agree, {disagree} disagree");
    let ok = disagree == 0 && missed == 0;
    outln!("{}", style.paint(if ok { "32" } else { "31;1" }, &summary));
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn report(
    results_path: &Path,
    out: &Path,
    traversal: Option<&Path>,
    check: bool,
    invoked_as: &str,
) -> anyhow::Result<ExitCode> {
    let results = read_results(results_path)?;
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
    let Some(traversal_path) = traversal else {
        return Ok(ExitCode::SUCCESS);
    };
    let fresh = gauntlet_reports::traversal(&results, invoked_as);
    if !check {
        gauntlet::files::write_file(traversal_path, &fresh)
            .with_context(|| format!("writing {}", traversal_path.display()))?;
        outln!("wrote {}", traversal_path.display());
        return Ok(ExitCode::SUCCESS);
    }
    let committed =
        match gauntlet::files::read_file(traversal_path, MAX_RESULTS_BYTES, "a traversal page") {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                errln!(
                    "error: {} does not exist: run `{invoked_as}` and commit it",
                    traversal_path.display()
                );
                return Ok(ExitCode::from(1));
            }
            Err(e) => {
                return Err(e).with_context(|| format!("reading {}", traversal_path.display()));
            }
        };
    match first_difference(&committed, &fresh) {
        None => {
            outln!("{} is current", traversal_path.display());
            Ok(ExitCode::SUCCESS)
        }
        Some((line, old, new)) => {
            errln!(
                "error: {} is stale: run `{invoked_as}` and commit it",
                traversal_path.display()
            );
            errln!("  first difference, line {line}:");
            errln!("  - {}", old.unwrap_or("(end of file)"));
            errln!("  + {}", new.unwrap_or("(end of file)"));
            Ok(ExitCode::from(1))
        }
    }
}

/// The first line (1-based) at which two texts differ, with each side's line there.
fn first_difference<'a>(
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

/// The largest results file read (or traversal page compared): 256 MiB, room for about
/// half a million runs.
const MAX_RESULTS_BYTES: u64 = 256 << 20;

/// A results file, or an error naming it and saying what is wrong with it.
fn read_results(path: &Path) -> anyhow::Result<Results> {
    let bytes = gauntlet::files::read_file(path, MAX_RESULTS_BYTES, "a results file")
        .with_context(|| format!("cannot read results file {}", path.display()))?;
    let text = String::from_utf8(bytes)
        .map_err(|e| anyhow::anyhow!("{}: not valid JSON: not UTF-8 text ({e})", path.display()))?;
    Results::from_json(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

fn check(files: Vec<PathBuf>) -> anyhow::Result<ExitCode> {
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

fn schemes(s: &scenario::Scenario) -> String {
    s.client
        .schemes
        .iter()
        .map(|x| x.as_str())
        .collect::<Vec<_>>()
        .join("+")
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

fn run(
    sel: &Selection,
    engine: &str,
    jobs: usize,
    results_path: Option<PathBuf>,
    show_transcript: bool,
    invoked_as: &str,
) -> anyhow::Result<ExitCode> {
    let (scenarios, planned) = match suite::plan(sel) {
        Ok(p) => p,
        Err(errors) => {
            for e in &errors {
                errln!("{e}");
            }
            anyhow::bail!(
                "{} invalid scenario file(s); `gauntlet check` lists them",
                errors.len()
            );
        }
    };
    let (planned, live_only) = suite::runnable_on(engine, &scenarios, planned);
    if planned.is_empty() && live_only > 0 {
        anyhow::bail!(
            "the selected scenarios have real programs as hops: run them with --engine live"
        );
    }
    if planned.is_empty() {
        anyhow::bail!("no runs match: check the paths and --filter / --scheme");
    }
    if live_only > 0 {
        outln!(
            "{} with real programs as hops not run on {engine}: `--engine live` runs them",
            plural(live_only, "scenario")
        );
    }
    let style = Style::for_stdout();
    let width = scenarios.iter().map(|s| s.file.len()).max().unwrap_or(0);
    let expected_width = planned
        .iter()
        .filter_map(|p| scenarios[p.scenario].expected(p.scheme))
        .map(|o| o.as_str().len())
        .max()
        .unwrap_or(0);
    outln!(
        "running {} of {} on {engine} ({jobs} at a time)",
        plural(planned.len(), "run"),
        plural(scenarios.len(), "scenario")
    );
    let mut failures = Vec::new();
    let mut results = Results::new(engine);
    let progress = Progress::start(planned.len());
    suite::execute(engine, &scenarios, &planned, jobs, |i, f| {
        progress.advance();
        progress.bar.suspend(|| {
            let p = &planned[i];
            let s = &scenarios[p.scenario];
            let entry = suite::result_entry(s, p, f);
            let verdict = if entry.pass {
                style.paint("32", "pass")
            } else {
                style.paint("31;1", "FAIL")
            };
            let fmt_ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
            outln!(
                "{:<width$}  {:<3}  seed {:<3}  expected {:<expected_width$}  got {:<18}  {verdict}  hs {:>7} ms  rtt p50 {:>7} ms",
                entry.scenario,
                entry.scheme,
                entry.seed,
                entry.expected,
                entry.outcome,
                fmt_ms(entry.handshake_ms),
                fmt_ms(entry.rtt_median_ms),
            );
            if show_transcript || !entry.pass {
                outln!("    detail: {}", entry.detail);
            }
            if show_transcript {
                if let Ok(out) = &f.output {
                    for line in out.rendered().lines() {
                        outln!("    {line}");
                    }
                }
            }
            if !entry.pass {
                failures.push(format!(
                    "{invoked_as} {} --scheme {} --seed {} --transcript",
                    entry.scenario, entry.scheme, entry.seed
                ));
            }
            results.runs.push(entry);
        });
    });
    progress.finish();
    let (passed, failed) = results.tally();
    if let Some(path) = results_path {
        gauntlet::files::write_file(&path, &results.to_json())
            .with_context(|| format!("writing {}", path.display()))?;
        outln!("results: {}", path.display());
    }
    if !failures.is_empty() {
        outln!("\nto reproduce a failure:");
        for f in &failures {
            outln!("  {f}");
        }
    }
    let summary = format!("{passed} passed, {failed} failed");
    outln!(
        "{}",
        if failed == 0 {
            style.paint("32", &summary)
        } else {
            style.paint("31;1", &summary)
        }
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The progress bar of a suite run: drawn on stderr, only when stderr is a terminal and only
/// once the suite has taken more than a second, so short runs and piped output stay plain.
struct Progress {
    bar: indicatif::ProgressBar,
    /// Tells the thread that shows the bar after a second that the suite has ended.
    done: Option<std::sync::mpsc::Sender<()>>,
    shower: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    /// How long a suite runs before the bar appears.
    const DELAY: std::time::Duration = std::time::Duration::from_secs(1);

    fn start(runs: usize) -> Self {
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(runs as u64),
            indicatif::ProgressDrawTarget::hidden(),
        );
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} runs, {elapsed} elapsed, about {eta} left",
        ) {
            bar.set_style(style);
        }
        if !std::io::stderr().is_terminal() {
            return Self {
                bar,
                done: None,
                shower: None,
            };
        }
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let shown = bar.clone();
        let shower = std::thread::spawn(move || {
            // Disconnected (the suite ended) before the delay: never draw.
            if rx.recv_timeout(Self::DELAY) == Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
                shown.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                shown.enable_steady_tick(std::time::Duration::from_millis(200));
            }
        });
        Self {
            bar,
            done: Some(tx),
            shower: Some(shower),
        }
    }

    fn advance(&self) {
        self.bar.inc(1);
    }

    fn finish(mut self) {
        drop(self.done.take());
        if let Some(shower) = self.shower.take() {
            let _ = shower.join();
        }
        self.bar.finish_and_clear();
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
