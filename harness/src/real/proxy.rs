//! `gauntlet proxy`: one model, or a chain of them, on real sockets, between a listening
//! address and an upstream address, until interrupted.
//!
//! The proxy is a run on the [`live`](crate::engine::live) engine: hosts `hop1` … `hopN`
//! (one per model, in command-line order, `hop1` facing the clients) each run the model
//! through [`hop_software`], and a host named `upstream` stands for the real
//! upstream. `hop1` publishes the listening address for its port, so its listener binds
//! there; `upstream` publishes the upstream address for every port, so whatever port a model
//! dials reaches it. Every backend of a balancer is the next hop (or the upstream), unless the
//! balancer is the last model and is given one upstream per backend: then hosts `upstream1`
//! … `upstreamN` stand for them, backend N reaching upstream N ([`check_upstreams`]). The
//! run's client is the caller's: it learns the bound address and waits for the interruption.
//!
//! It runs as [`Plan::workers`] copies of that run, one thread each, all listening on the one
//! address (see [`standing::run_workers`]): each hop's [`Intake`] is shared by its copies, so
//! connection numbers are unique and `--max-connections` holds for all of them together. A
//! chain with a model that keeps state between connections runs on one worker ([`workers`]).
//!
//! The upstream is optional: a forward proxy (`connect-proxy`) is told each destination by
//! its clients' CONNECT, and without an upstream the last hop has no backend, so it dials
//! the address a CONNECT names (a loopback address: the live engine dials nothing else).
//! Without an upstream, a model that dials its backend instead (every other model, and
//! `connect-proxy` forwarding a request that is not CONNECT) fails that connection:
//! `no backend 0: the hop has 0`.
//!
//! Models see every connection arrive on one port, the model port (80 unless told
//! otherwise): models that read HTTP only on some ports (`intercept-ports`, `http-ports`)
//! decide by it. Models that need TLS material (`tls-intercepting-proxy`, an `l7-balancer`
//! that terminates TLS) get none, and say so when they start.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use futures_util::future::LocalBoxFuture;
use gauntlet_proxies::{HopEnv, ModelSpec};

use crate::driver::hop_software;
use crate::engine::{Intake, Topology};
use crate::real::standing::{self, StandingError};
use crate::verdict::transcript::Transcript;

/// The models' seed: their random choices (a balancer's rotation start, say) come from it.
const SEED: u64 = 1;

/// The host that stands for the real upstream.
pub const UPSTREAM: &str = "upstream";

/// What is wrong with the models, parameters and workers `gauntlet proxy` is asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArgError {
    /// A `--param` before any `--model`.
    #[error(
        "`--param {param}` comes before any `--model`: a parameter applies to the model named before it"
    )]
    ParamFirst {
        /// The parameter as given.
        param: String,
    },
    /// A `--param` that is not `KEY=VALUE`.
    #[error("`--param {param}` for model `{model}`: write KEY=VALUE")]
    NotKeyValue {
        /// The parameter as given.
        param: String,
        /// The model it belongs to.
        model: String,
    },
    /// A `--param` whose key is empty or `model`.
    #[error("`--param {param}` for model `{model}`: `{key}` is not a parameter name")]
    NotAName {
        /// The parameter as given.
        param: String,
        /// The model it belongs to.
        model: String,
        /// The key, trimmed.
        key: String,
    },
    /// A key given twice for one model.
    #[error("`--param {key}` is given twice for model `{model}`")]
    Twice {
        /// The key.
        key: String,
        /// The model.
        model: String,
    },
    /// The model and its parameters do not read as a hop table: an unknown model or key, a
    /// value of the wrong type, parameters its model refuses. `message` is the reader's.
    #[error("model `{model}`: {message}")]
    Model {
        /// The model's name as given.
        model: String,
        /// What the reader said.
        message: String,
    },
    /// `--workers 0`.
    #[error("`--workers 0`: at least one worker runs the chain")]
    NoWorkers,
    /// Several `--upstream`s for a last hop with another number of backends.
    #[error(
        "`--upstream` is given {given} times, but the last model, `{model}`, dials {backends} \
         backend{s}: give one upstream for all its backends, or one per backend",
        s = if *backends == 1 { "" } else { "s" }
    )]
    Upstreams {
        /// How many `--upstream`s.
        given: usize,
        /// The last model.
        model: &'static str,
        /// Its backends.
        backends: usize,
    },
    /// Several workers asked for a chain with a model that keeps state between connections.
    #[error(
        "`--workers {asked}`: model `{model}` keeps {what} from one connection to the next, \
         so one worker must see every connection: leave out --workers (one worker is \
         the default for such a chain) or give --workers 1"
    )]
    SharedState {
        /// The workers asked for.
        asked: usize,
        /// The model.
        model: &'static str,
        /// What it keeps ([`ModelSpec::shared_state`]).
        what: &'static str,
    },
}

/// One `--model` and the `--param`s that follow it, as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelArg {
    /// The model's name.
    pub name: String,
    /// `key=value` texts, in order.
    pub params: Vec<String>,
}

/// Groups `--model` and `--param` values by their positions on the command line: each
/// parameter belongs to the model named most recently before it. A parameter before any
/// model is an error.
pub fn group(
    models: &[(usize, String)],
    params: &[(usize, String)],
) -> Result<Vec<ModelArg>, ArgError> {
    let mut models: Vec<(usize, ModelArg)> = models
        .iter()
        .map(|(at, name)| {
            (
                *at,
                ModelArg {
                    name: name.clone(),
                    params: Vec::new(),
                },
            )
        })
        .collect();
    models.sort_by_key(|(at, _)| *at);
    let mut params: Vec<&(usize, String)> = params.iter().collect();
    params.sort_by_key(|(at, _)| *at);
    for (at, param) in params {
        let Some((_, model)) = models.iter_mut().rev().find(|(m, _)| m < at) else {
            return Err(ArgError::ParamFirst {
                param: param.clone(),
            });
        };
        model.params.push(param.clone());
    }
    Ok(models.into_iter().map(|(_, m)| m).collect())
}

/// A parameter's value: a TOML value (`30000`, `true`, `[80, 443]`, `"text"`), or else the
/// text itself as a string (`strip`).
fn value(text: &str) -> toml::Value {
    text.parse::<toml::Value>()
        .unwrap_or_else(|_| toml::Value::String(text.to_string()))
}

/// The model a `--model` and its parameters describe, read as a scenario's hop table is
/// (`model = NAME` first, then the parameters), so an error names the bad parameter.
pub fn spec(arg: &ModelArg) -> Result<ModelSpec, ArgError> {
    let mut table = toml::Table::new();
    table.insert("model".into(), toml::Value::String(arg.name.clone()));
    for param in &arg.params {
        let Some((key, text)) = param.split_once('=') else {
            return Err(ArgError::NotKeyValue {
                param: param.clone(),
                model: arg.name.clone(),
            });
        };
        let key = key.trim();
        if key.is_empty() || key == "model" {
            return Err(ArgError::NotAName {
                param: param.clone(),
                model: arg.name.clone(),
                key: key.to_string(),
            });
        }
        if table.insert(key.to_string(), value(text.trim())).is_some() {
            return Err(ArgError::Twice {
                key: key.to_string(),
                model: arg.name.clone(),
            });
        }
    }
    toml::Value::Table(table)
        .try_into::<ModelSpec>()
        .map_err(|e| ArgError::Model {
            model: arg.name.clone(),
            message: e.message().trim_end().to_string(),
        })
}

/// What `gauntlet proxy` runs.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The models, client side first.
    pub models: Vec<ModelSpec>,
    /// Where the first hop listens (port 0: an ephemeral port).
    pub listen: SocketAddr,
    /// Where the last hop's connections go: one address for all its backends, or one per
    /// backend of a balancer (in order); none: to the destination each client names (a
    /// forward proxy). See [`check_upstreams`].
    pub upstreams: Vec<SocketAddr>,
    /// The port the models see connections arrive on.
    pub model_port: u16,
    /// The most client connections open at once, all workers together: beyond it, the
    /// first hop stops accepting (new connections wait in the kernel's listen queue) until
    /// one closes.
    pub max_connections: usize,
    /// How many copies of the chain run, one thread each (see [`workers`]).
    pub workers: usize,
}

/// How many workers run `models`: `asked`, or by default one per core, as nginx's
/// `worker_processes auto` and HAProxy's `nbthread` default do. A chain with a model that
/// keeps state from one connection to the next (a cache, a balancer's rotation) runs on one
/// worker, so that one copy of it sees every connection; asking for more is an error.
pub fn workers(models: &[ModelSpec], asked: Option<usize>) -> Result<usize, ArgError> {
    let stateful = models
        .iter()
        .find_map(|m| m.shared_state().map(|what| (m.name(), what)));
    match (asked, stateful) {
        (Some(0), _) => Err(ArgError::NoWorkers),
        (Some(n), Some((model, what))) if n > 1 => Err(ArgError::SharedState {
            asked: n,
            model,
            what,
        }),
        (Some(n), _) => Ok(n),
        (None, Some(_)) => Ok(1),
        (None, None) => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
    }
}

/// Checks `upstreams` against the last of `models`: one upstream (or none) serves any chain;
/// more must be one per backend of the last model (a balancer's `backends`), each backend
/// reaching its own.
pub fn check_upstreams(models: &[ModelSpec], upstreams: &[SocketAddr]) -> Result<(), ArgError> {
    match models.last() {
        Some(last) if upstreams.len() > 1 && upstreams.len() != last.backends() => {
            Err(ArgError::Upstreams {
                given: upstreams.len(),
                model: last.name(),
                backends: last.backends(),
            })
        }
        _ => Ok(()),
    }
}

/// The host names that stand for the upstreams: [`UPSTREAM`] for one, `upstream1` …
/// `upstreamN` for one per backend.
fn upstream_hosts(upstreams: &[SocketAddr]) -> Vec<String> {
    match upstreams.len() {
        0 => Vec::new(),
        1 => vec![UPSTREAM.to_string()],
        n => (1..=n).map(|i| format!("{UPSTREAM}{i}")).collect(),
    }
}

/// The default connection limit: what the process's descriptor limit allows at two
/// descriptors a connection (client and upstream), less 32 for the runtime and the listener,
/// as HAProxy sizes `maxconn` when none is set (docs.haproxy.org, `maxconn`: "computed from
/// the ulimit-n"). At least 1.
pub fn default_max_connections() -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(1 << 20);
    (limit.min(1 << 24).saturating_sub(32) / 2).max(1) as usize
}

/// How each hop of `plan` takes connections: the first hop holds at most
/// `plan.max_connections`, the others any number. Every worker's copy of the topology gets
/// clones of the same intakes ([`topology`]), so connection numbers are unique in the process
/// and the limit holds for all workers together.
pub fn intakes(plan: &Plan) -> Vec<Intake> {
    (0..plan.models.len())
        .map(|i| {
            if i == 0 {
                Intake::limited(plan.max_connections)
            } else {
                Intake::unlimited()
            }
        })
        .collect()
}

/// The live topology for `plan`: the hops and the upstream; the caller adds the client
/// (see [`run`]). Each hop logs to `transcript` and takes connections through its intake
/// (see [`intakes`]).
pub fn topology(plan: &Plan, intakes: &[Intake], transcript: &Transcript) -> Topology {
    let mut topology = standing::topology();
    let names: Vec<String> = (1..=plan.models.len()).map(|i| format!("hop{i}")).collect();
    let upstreams = upstream_hosts(&plan.upstreams);
    for (i, spec) in plan.models.iter().enumerate() {
        let backends: Vec<String> = match (names.get(i + 1), upstreams.as_slice()) {
            (Some(next), _) => vec![next.clone(); spec.backends()],
            (None, []) => Vec::new(),
            (None, [one]) => vec![one.clone(); spec.backends()],
            (None, each) => each.to_vec(),
        };
        let hop = hop_software(
            Rc::new(spec.clone()),
            HopEnv::default(),
            backends,
            vec![plan.model_port],
            SEED ^ ((i as u64 + 1) << 32),
            transcript.clone(),
            (intakes.get(i).cloned().unwrap_or_default(), None),
        );
        let software = if i == 0 {
            standing::published(plan.model_port, plan.listen, Some(hop))
        } else {
            hop
        };
        topology.host(&names[i], software);
    }
    for (name, &addr) in upstreams.iter().zip(&plan.upstreams) {
        topology.host(name, standing::published(0, addr, None));
    }
    topology
}

/// Runs the proxy `plan` describes on `plan.workers` threads until `stop` completes; `ready`
/// learns the first hop's bound address once every worker listens there (see
/// [`standing::run_workers`]). Each worker's hops log to its transcript (one queue for all
/// when `transcript` prints).
pub fn run(
    plan: &Plan,
    transcript: Transcript,
    stop: LocalBoxFuture<'static, ()>,
    ready: impl FnOnce(SocketAddr) + 'static,
) -> Result<(), StandingError> {
    let intakes = intakes(plan);
    let mine = plan.clone();
    let build: standing::Build = Arc::new(move |worker| {
        let mut plan = mine.clone();
        if let Some(&addr) = worker.bound.as_ref().and_then(|b| b.first()) {
            plan.listen = addr;
        }
        topology(&plan, &intakes, &worker.transcript)
    });
    standing::run_workers(
        plan.workers,
        transcript,
        "proxy",
        vec![("hop1".to_string(), plan.model_port)],
        build,
        stop,
        move |bound| {
            if let Some(&addr) = bound.first() {
                ready(addr);
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arg(name: &str, params: &[&str]) -> ModelArg {
        ModelArg {
            name: name.into(),
            params: params.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn parameters_belong_to_the_model_named_before_them() {
        let models = [(1, "idle-killer".to_string()), (5, "pass".to_string())];
        let params = [(3, "timeout-ms=100".to_string()), (7, "x=1".to_string())];
        assert_eq!(
            group(&models, &params).unwrap(),
            vec![
                arg("idle-killer", &["timeout-ms=100"]),
                arg("pass", &["x=1"])
            ]
        );
        let early = group(&models, &[(0, "x=1".to_string())]).unwrap_err();
        assert_eq!(
            early,
            ArgError::ParamFirst {
                param: "x=1".into()
            }
        );
        assert_eq!(
            early.to_string(),
            "`--param x=1` comes before any `--model`: a parameter applies to the model named before it"
        );
    }

    #[test]
    fn values_are_toml_values_or_else_strings() {
        let s = spec(&arg(
            "transparent-proxy",
            &[
                "behaviour=strip",
                "intercept-ports=[80, 8080]",
                "max-head-bytes=100",
            ],
        ))
        .unwrap();
        let ModelSpec::TransparentProxy(p) = s else {
            panic!("{s:?}");
        };
        assert_eq!(p.intercept_ports, vec![80, 8080]);
        assert_eq!(p.max_head_bytes, 100);
        assert!(
            spec(&arg(
                "idle-killer",
                &["timeout-ms=500", "rearm=from-client"]
            ))
            .is_ok()
        );
    }

    #[test]
    fn bad_parameters_are_named() {
        let e = |model: &str, params: &[&str]| spec(&arg(model, params)).unwrap_err().to_string();
        let err = e("transparent-proxy", &["behavior=strip"]);
        assert!(err.contains("unknown field `behavior`"), "{err}");
        let err = e("idle-killer", &["timeout-ms=soon"]);
        assert!(
            err.contains("model `idle-killer`") && err.contains("soon"),
            "{err}"
        );
        let err = e("pass", &["oops"]);
        assert!(err.contains("KEY=VALUE"), "{err}");
        let err = e("idle-killer", &["timeout-ms=1", "timeout-ms=2"]);
        assert!(err.contains("given twice"), "{err}");
        let err = e("transparant-proxy", &[]);
        assert!(err.contains("unknown model"), "{err}");
    }

    #[test]
    fn workers_are_one_for_a_stateful_chain_and_never_none() {
        let balancer = spec(&arg("l4-balancer", &["backends=2"])).unwrap();
        assert_eq!(workers(std::slice::from_ref(&balancer), None), Ok(1));
        assert_eq!(workers(&[], Some(0)), Err(ArgError::NoWorkers));
        let e = workers(&[balancer], Some(2)).unwrap_err();
        assert!(
            matches!(
                e,
                ArgError::SharedState {
                    asked: 2,
                    model: "l4-balancer",
                    ..
                }
            ),
            "{e}"
        );
        assert!(
            e.to_string().starts_with(
                "`--workers 2`: model `l4-balancer` keeps its rotation among the backends from one connection to the next, so one worker"
            ),
            "{e}"
        );
    }

    #[test]
    fn several_upstreams_are_one_per_backend_of_the_last_model() {
        let addrs: Vec<SocketAddr> = (1..=3)
            .map(|i| SocketAddr::from(([127, 0, 0, 1], 9000 + i)))
            .collect();
        let balancer = spec(&arg("l7-balancer", &["backends=2", "terminate-tls=false"])).unwrap();
        let pass = spec(&arg("pass", &[])).unwrap();
        assert_eq!(
            check_upstreams(std::slice::from_ref(&balancer), &addrs[..2]),
            Ok(())
        );
        assert_eq!(
            check_upstreams(std::slice::from_ref(&balancer), &addrs[..1]),
            Ok(())
        );
        assert_eq!(check_upstreams(std::slice::from_ref(&pass), &[]), Ok(()));
        let e = check_upstreams(&[balancer, pass], &addrs[..2]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "`--upstream` is given 2 times, but the last model, `pass`, dials 1 backend: give one upstream for all its backends, or one per backend"
        );
        let three = spec(&arg("l4-balancer", &["backends=3"])).unwrap();
        assert!(check_upstreams(&[three], &addrs[..2]).is_err());
        assert_eq!(upstream_hosts(&addrs[..1]), ["upstream"]);
        assert_eq!(
            upstream_hosts(&addrs),
            ["upstream1", "upstream2", "upstream3"]
        );
    }
}
