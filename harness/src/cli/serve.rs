//! `gauntlet serve`: the reference server on real sockets until interrupted.

use crate::*;
use gauntlet::endpoints::engineio::Options as EngineIoOptions;

/// `gauntlet serve --header-timeout-ms`'s default.
pub(crate) fn serve_default_header_timeout_ms() -> u64 {
    gauntlet::endpoints::server::Limits::SERVE
        .header_timeout
        .map_or(0, |t| t.as_millis() as u64)
}

/// `gauntlet serve --max-connections`'s default.
pub(crate) fn serve_default_max_connections() -> usize {
    gauntlet::endpoints::server::Limits::SERVE
        .max_connections
        .unwrap_or(0)
}

/// `gauntlet serve`'s Engine.IO flags; their defaults are engine.io's
/// ([`gauntlet::endpoints::engineio::Options`]).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct EngineIoArgs {
    /// Engine.IO: milliseconds from the open or the last pong to the next ping (engine.io's
    /// pingInterval).
    #[arg(long, value_name = "MS", default_value_t = millis(EngineIoOptions::default().ping_interval),
        value_parser = clap::value_parser!(u64).range(1..=gauntlet::scenario::MAX_MS))]
    engineio_ping_interval_ms: u64,
    /// Engine.IO: milliseconds to wait for a pong before closing the session (engine.io's
    /// pingTimeout).
    #[arg(long, value_name = "MS", default_value_t = millis(EngineIoOptions::default().ping_timeout),
        value_parser = clap::value_parser!(u64).range(1..=gauntlet::scenario::MAX_MS))]
    engineio_ping_timeout_ms: u64,
    /// Engine.IO: the most bytes in a POST's payload or a WebSocket message (engine.io's
    /// maxHttpBufferSize, advertised as maxPayload).
    #[arg(long, value_name = "BYTES", default_value_t = EngineIoOptions::default().max_payload,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1 << 30))]
    engineio_max_payload: usize,
    /// Engine.IO: the most sessions open at once, for all workers together; a handshake
    /// beyond them gets 403 (code 4, Forbidden).
    #[arg(long, value_name = "N", default_value_t = EngineIoOptions::default().max_sessions,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1 << 20))]
    engineio_max_sessions: usize,
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl EngineIoArgs {
    /// The settings the flags give.
    pub(crate) fn options(&self) -> EngineIoOptions {
        EngineIoOptions {
            ping_interval: std::time::Duration::from_millis(self.engineio_ping_interval_ms),
            ping_timeout: std::time::Duration::from_millis(self.engineio_ping_timeout_ms),
            max_payload: self.engineio_max_payload,
            max_sessions: self.engineio_max_sessions,
            ..EngineIoOptions::default()
        }
    }
}

/// `gauntlet serve`: the reference server on the live engine until Ctrl-C or SIGTERM, wss
/// too, accepting `versions`, when `tls` names where to listen and where to write the CA; on
/// `workers` threads, with `engineio`'s Engine.IO settings.
pub(crate) fn serve(
    listen: SocketAddr,
    tls: Option<(SocketAddr, PathBuf)>,
    versions: TlsVersions,
    limits: gauntlet::endpoints::server::Limits,
    workers: usize,
    engineio: EngineIoOptions,
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
        engineio,
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
