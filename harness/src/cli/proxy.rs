//! `gauntlet proxy`: models on real sockets until interrupted.

use clap::builder::{PossibleValue, StringValueParser, TypedValueParser};
use gauntlet_proxies::MODELS;

use crate::*;

/// `--model`'s values: `--help` lists every registered model with its description. Any name
/// passes here; an unknown one is refused when its hop table is read, as in a scenario file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ModelNames;

impl TypedValueParser for ModelNames {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        StringValueParser::new().parse_ref(cmd, arg, value)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(
            MODELS
                .iter()
                .map(|m| PossibleValue::new(m.name).help(m.description)),
        ))
    }
}

/// `--workers`' help, which names the models that keep state between connections.
pub(crate) fn workers_help() -> String {
    let keeping: Vec<String> = MODELS
        .iter()
        .filter_map(|m| m.shared_state.map(|what| format!("{} ({what})", m.name)))
        .collect();
    format!(
        "Copies of the chain, one thread each, listening on the same address (the kernel \
         spreads connections among them). Default: one per core; one for a chain with a model \
         that keeps state between connections: {}",
        keeping.join(", ")
    )
}

/// `gauntlet proxy`: the models from the command line (in order, with their parameters) on
/// the live engine until Ctrl-C or SIGTERM.
pub(crate) fn proxy(
    matches: Option<&ArgMatches>,
    listen: SocketAddr,
    upstreams: Vec<SocketAddr>,
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
    let args = gauntlet::real::proxy::group(&positioned("models"), &positioned("params"))?;
    let models = args
        .iter()
        .map(gauntlet::real::proxy::spec)
        .collect::<Result<Vec<_>, _>>()?;
    let workers = gauntlet::real::proxy::workers(&models, workers)?;
    gauntlet::real::proxy::check_upstreams(&models, &upstreams)?;
    let plan = gauntlet::real::proxy::Plan {
        models,
        listen,
        upstreams: upstreams.clone(),
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
            let upstream = match upstreams.as_slice() {
                [] => "none (CONNECT names each destination)".to_string(),
                [one] => one.to_string(),
                each => each
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" "),
            };
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
