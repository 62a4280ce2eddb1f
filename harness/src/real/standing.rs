//! What `gauntlet proxy` and `gauntlet serve` share: a run on the
//! [`live`](crate::engine::live) engine that stands, on addresses given on the command line,
//! until interrupted, in as many copies (workers) as asked, one thread each.
//!
//! Its hosts publish the addresses they are to listen on ([`published`]), so their listeners
//! bind there. [`run_workers`] runs the first worker on the calling thread; once its
//! listeners are bound, it starts the others, each on a thread of its own with its own copy of
//! the topology, whose listeners bind the same addresses (`SO_REUSEPORT`: the kernel spreads
//! connections among them by their addresses, as it does for nginx's `reuseport` workers).
//! When all listen, the caller learns the addresses; when the caller's stop completes (or any
//! worker fails), every worker stops and their threads are joined.
//!
//! What the workers share is only what their topologies are built with: one transcript (lines
//! from every thread, in the order they are logged, on one clock) and whatever thread-safe
//! state the builder hands each copy (an [`Intake`](crate::engine::Intake): connection
//! numbers and limits). Anything else a copy keeps is its own.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::LocalBoxFuture;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::engine::live::Live;
use crate::engine::{EngineError, LinkConfig, NetRef, Software, Topology};
use crate::verdict::transcript::Transcript;

/// How long a host may take to bind its listener.
const BIND_WAIT: Duration = Duration::from_secs(10);

/// Why a standing run ended on a fault, or could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StandingError {
    /// The live engine refused the topology, or a host's software (a server, a model's hop)
    /// failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The first worker, which starts and watches the others, failed; said as the engine
    /// says a host's software failed.
    #[error("host software failed: {0}")]
    Workers(WorkersError),
}

/// What failed the first worker's watch over the workers ([`StandingError::Workers`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkersError {
    /// One of the first worker's listeners was not bound in time.
    #[error(transparent)]
    NotListening(NotListening),
    /// A worker's thread could not be started.
    #[error("starting worker {index}'s thread: {cause}")]
    Thread {
        /// The worker, from 0.
        index: usize,
        /// The operating system's error.
        cause: std::io::Error,
    },
    /// Another worker ended, before it listened or while the run stood.
    #[error("worker {index}: {end}")]
    Worker {
        /// The worker, from 0.
        index: usize,
        /// How it ended.
        end: WorkerEnd,
    },
    /// A worker's thread panicked.
    #[error("a worker's thread panicked")]
    Panicked,
}

/// A listener not bound within 10 s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{host} was not listening on its port {port} after {BIND_WAIT:?}")]
pub struct NotListening {
    /// The host.
    pub host: String,
    /// Its port in the run.
    pub port: u16,
}

/// How a worker other than the first ended, as it tells the first.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerEnd {
    /// Its listeners were not bound in time.
    #[error(transparent)]
    NotListening(NotListening),
    /// Its run ended without a fault, before it was stopped.
    #[error("stopped")]
    Stopped,
    /// Its run ended on a fault.
    #[error(transparent)]
    Engine(EngineError),
}

/// A live topology without a time limit and without latency (the live engine applies none):
/// the run lasts until its client returns.
pub fn topology() -> Topology {
    Topology::new(
        LinkConfig::new(Duration::ZERO, Duration::ZERO),
        Duration::MAX,
    )
}

/// Software that publishes `addr` for `port` on its host (port 0: for every port), then runs
/// `then` (or waits).
pub fn published(port: u16, addr: SocketAddr, then: Option<Software>) -> Software {
    std::rc::Rc::new(move |net: NetRef| {
        let published = net.publish(port, addr);
        let then = then.as_ref().map(|s| s(net.clone()));
        async move {
            published?;
            match then {
                Some(run) => run.await,
                None => std::future::pending().await,
            }
        }
        .boxed_local()
    })
}

/// One copy of a standing run, as its topology is built.
#[derive(Debug)]
pub struct Worker {
    /// 0 for the first, which runs on the calling thread.
    pub index: usize,
    /// What the copy logs to: the caller's transcript for the first worker; for the others,
    /// one that prints into the same queue when the caller's prints, or else one that keeps
    /// nothing. With several workers, each line names the worker after the host (`hop1/w2`).
    pub transcript: Transcript,
    /// Where the first worker's listeners bound, in the order of the listeners asked for: the
    /// others publish these, so that they bind the same addresses. `None` for the first.
    pub bound: Option<Vec<SocketAddr>>,
}

/// Builds a worker's topology, without its client (on the worker's thread).
pub type Build = Arc<dyn Fn(&Worker) -> Topology + Send + Sync>;

/// Runs `workers` copies (at least one) of the topology `build` makes, each on the live
/// engine on a thread of its own, the first on this one. The run's client is `client_name`:
/// it waits until every `(host, port)` of `listeners` listens in every copy, calls `ready`
/// with the addresses (in the order of `listeners`), and ends every copy when `stop`
/// completes. `stop` is polled once before anything else, so that whatever it sets up (signal
/// handlers) is in place by the time `ready` announces the addresses. A copy that fails ends
/// them all, and its failure is the result.
pub fn run_workers(
    workers: usize,
    transcript: Transcript,
    client_name: &str,
    listeners: Vec<(String, u16)>,
    build: Build,
    stop: LocalBoxFuture<'static, ()>,
    ready: impl FnOnce(&[SocketAddr]) + 'static,
) -> Result<(), StandingError> {
    let start = Instant::now();
    let first = Worker {
        index: 0,
        transcript: label(&transcript, 0, workers),
        bound: None,
    };
    let mut topology = build(&first);
    let name = client_name.to_string();
    let failed: std::rc::Rc<std::cell::RefCell<Option<WorkersError>>> = Default::default();
    let failure = failed.clone();
    topology.client(
        client_name,
        Box::new(move |net| {
            let others = Others {
                workers: workers.max(1),
                start,
                queue: transcript.queue(),
                client_name: name,
                listeners,
                build,
            };
            async move {
                let result = first_client(net, others, stop, ready).await;
                let said = result.as_ref().err().map(ToString::to_string);
                if let Err(e) = result {
                    *failure.borrow_mut() = Some(e);
                }
                said.map_or(Ok(()), |said| Err(anyhow::Error::msg(said)))
            }
            .boxed_local()
        }),
    );
    match Live.run_since(topology, start) {
        Ok(_) => Ok(()),
        // The run ended on the first worker's own failure: that, typed.
        Err(EngineError::Software(said))
            if failed
                .borrow()
                .as_ref()
                .is_some_and(|e| said == e.to_string()) =>
        {
            Err(StandingError::Workers(
                failed.take().expect("checked to be there"),
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// What the first worker needs to start the others.
struct Others {
    /// All the workers, the first included.
    workers: usize,
    start: Instant,
    queue: Option<crate::verdict::transcript::PrintQueue>,
    client_name: String,
    listeners: Vec<(String, u16)>,
    build: Build,
}

/// A worker's report to the first: its listeners' addresses once bound, or why it ended.
type Report = (usize, Result<Vec<SocketAddr>, WorkerEnd>);

/// The first worker's client: see [`run_workers`].
async fn first_client(
    net: NetRef,
    others: Others,
    stop: LocalBoxFuture<'static, ()>,
    ready: impl FnOnce(&[SocketAddr]),
) -> Result<(), WorkersError> {
    let mut stop = stop;
    if (&mut stop).now_or_never().is_some() {
        return Ok(());
    }
    let bound = wait_bound(&net, &others.listeners)
        .await
        .map_err(WorkersError::NotListening)?;
    let (stopping, stopped) = watch::channel(false);
    let (reports, mut reported) = mpsc::unbounded_channel::<Report>();
    let mut threads = Vec::with_capacity(others.workers - 1);
    let mut result = Ok(());
    for index in 1..others.workers {
        match start_worker(index, &others, &bound, &reports, &stopped) {
            Ok(thread) => threads.push(thread),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    if result.is_ok() {
        let mut listening = 0;
        while listening < threads.len() {
            match reported.recv().await {
                Some((_, Ok(_))) => listening += 1,
                Some((index, Err(end))) => {
                    result = Err(WorkersError::Worker { index, end });
                    break;
                }
                None => break,
            }
        }
    }
    if result.is_ok() {
        ready(&bound);
        tokio::select! {
            () = &mut stop => {}
            Some((index, Err(end))) = reported.recv() => {
                result = Err(WorkersError::Worker { index, end });
            }
        }
    }
    let _ = stopping.send(true);
    for thread in threads {
        if thread.join().is_err() {
            result = result.and(Err(WorkersError::Panicked));
        }
    }
    result
}

/// Starts worker `index` on a thread of its own: it binds the addresses `bound` names,
/// reports them, and runs until `stopped` says so; if it ends before, it reports why.
fn start_worker(
    index: usize,
    others: &Others,
    bound: &[SocketAddr],
    reports: &mpsc::UnboundedSender<Report>,
    stopped: &watch::Receiver<bool>,
) -> Result<std::thread::JoinHandle<()>, WorkersError> {
    let (build, queue, start) = (others.build.clone(), others.queue.clone(), others.start);
    let workers = others.workers;
    let (name, listeners) = (others.client_name.clone(), others.listeners.clone());
    let (bound, reports, stopped) = (bound.to_vec(), reports.clone(), stopped.clone());
    std::thread::Builder::new()
        .name(format!("worker {index}"))
        .spawn(move || {
            let worker = Worker {
                index,
                transcript: label(
                    &queue.map_or_else(Transcript::discarding, Transcript::printing_into),
                    index,
                    workers,
                ),
                bound: Some(bound),
            };
            let mut topology = build(&worker);
            let to_first = reports.clone();
            topology.client(
                &name,
                Box::new(move |net| {
                    async move {
                        let addrs = wait_bound(&net, &listeners).await;
                        let failed = addrs.is_err();
                        let _ = to_first.send((index, addrs.map_err(WorkerEnd::NotListening)));
                        if !failed {
                            let mut stopped = stopped;
                            let _ = stopped.wait_for(|stop| *stop).await;
                        }
                        Ok(())
                    }
                    .boxed_local()
                }),
            );
            let end = match Live.run_since(topology, start) {
                Ok(_) => WorkerEnd::Stopped,
                Err(e) => WorkerEnd::Engine(e),
            };
            // Heard only if the first worker is still waiting for this one.
            let _ = reports.send((index, Err(end)));
        })
        .map_err(|cause| WorkersError::Thread { index, cause })
}

/// Worker `index`'s transcript: when there are several workers, its lines name it after the
/// host (`hop1/w2`: the second worker's `hop1`), counting from 1.
fn label(transcript: &Transcript, index: usize, workers: usize) -> Transcript {
    if workers > 1 {
        transcript.labelled(&format!("/w{}", index + 1))
    } else {
        transcript.clone()
    }
}

/// Waits until every `(host, port)` of `listeners` listens; their bound addresses, in order.
async fn wait_bound(
    net: &NetRef,
    listeners: &[(String, u16)],
) -> Result<Vec<SocketAddr>, NotListening> {
    let give_up = net.now() + BIND_WAIT;
    let mut bound = Vec::with_capacity(listeners.len());
    for (host, port) in listeners {
        let addr = loop {
            if let Some(addr) = net.real_addr(host, *port) {
                break addr;
            }
            if net.now() >= give_up {
                return Err(NotListening {
                    host: host.clone(),
                    port: *port,
                });
            }
            net.sleep_until(net.now() + Duration::from_millis(1)).await;
        };
        bound.push(addr);
    }
    Ok(bound)
}
