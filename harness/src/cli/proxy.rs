//! `gauntlet proxy`: models on real sockets until interrupted.

use crate::*;

/// `gauntlet proxy`: the models from the command line (in order, with their parameters) on
/// the live engine until Ctrl-C or SIGTERM.
pub(crate) fn proxy(
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
