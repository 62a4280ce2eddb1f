//! `gauntlet serve`: the reference server on real sockets until interrupted.

use crate::*;

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

/// `gauntlet serve`: the reference server on the live engine until Ctrl-C or SIGTERM, wss
/// too, accepting `versions`, when `tls` names where to listen and where to write the CA; on
/// `workers` threads.
pub(crate) fn serve(
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
