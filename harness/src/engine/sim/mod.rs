//! The `sim` engine: every host on one thread, on tokio's paused clock, over a stream-level
//! network the harness owns (`net`).
//!
//! The clock is tokio's, paused: when no task can run, tokio moves it straight to the next
//! timer (a read waiting for its next segment, a model's timer, the client's sleep). Idle
//! simulated time therefore costs nothing, and a host is a few tasks, not a runtime.
//!
//! Determinism: one thread, a FIFO scheduler, timers ordered by deadline then registration,
//! every `select!` in the harness `biased`, ordered maps only, and one seeded generator for
//! jitter and loss. The same topology and seed give the same event log.

mod net;

use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::LocalBoxFuture;
use tokio::task::{AbortHandle, LocalSet};

use self::net::{Network, Shared, SimStream, Syn, lock};
use super::local::{ClientEnd, Failure, race_client, spawn_caught, start_host, verdict};
use super::{Engine, EngineError, LinkFault, Listener, Net, NetRef, RunEnd, Stream, Topology};

/// How long the run goes on after the client returns, so that hosts finish the same instant.
const SETTLE: Duration = Duration::from_millis(1);

/// The event-driven engine.
#[derive(Debug, Default)]
pub struct Sim;

impl Engine for Sim {
    fn name(&self) -> &'static str {
        "sim"
    }

    fn run(&self, topology: Topology, seed: u64) -> Result<RunEnd, EngineError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .map_err(|e| EngineError::Start(e.to_string()))?;
        LocalSet::new().block_on(&runtime, run(topology, seed))
    }
}

async fn run(topology: Topology, seed: u64) -> Result<RunEnd, EngineError> {
    let Some(client_name) = topology.client.as_ref().map(|c| c.0.clone()) else {
        return Err(EngineError::NoClient);
    };
    let mut names: Vec<String> = topology.hosts.iter().map(|(n, _)| n.clone()).collect();
    names.push(client_name.clone());
    let start = tokio::time::Instant::now();
    let network = Network::new(
        start,
        &names,
        |a, b| topology.link_between(a, b),
        &topology.intercepts,
        topology.buffer,
        seed,
    );
    let shared: Shared = std::sync::Arc::new(std::sync::Mutex::new(network));
    let Topology {
        hosts,
        client,
        crashes,
        limit,
        ..
    } = topology;
    let Some((_, client_software)) = client else {
        return Err(EngineError::NoClient);
    };
    let failure = Rc::new(Failure::default());
    let crashing: Vec<String> = crashes.iter().map(|(h, _)| h.clone()).collect();
    let crashing: Vec<&str> = crashing.iter().map(String::as_str).collect();
    let handle = |name: &str| -> Rc<SimNet> {
        let host = lock(&shared).host_index(name).unwrap_or_default();
        Rc::new(SimNet {
            shared: shared.clone(),
            host,
            name: name.to_string(),
            failure: failure.clone(),
            // Only a host that will crash keeps its tasks, to abort them.
            tasks: crashing
                .contains(&name)
                .then(|| Rc::new(RefCell::new(Vec::new()))),
        })
    };
    let mut nets = Vec::new();
    for (name, software) in &hosts {
        let net = handle(name);
        nets.push(net.clone());
        start_host(&(net.clone() as NetRef), software, &failure);
    }
    for (name, at) in crashes {
        let Some(net) = nets.iter().find(|n| n.name == name).cloned() else {
            continue;
        };
        tokio::task::spawn_local(async move {
            let when = lock(&net.shared).instant(at);
            tokio::time::sleep_until(when).await;
            lock(&net.shared).crash(net.host);
            if let Some(tasks) = &net.tasks {
                for t in tasks.borrow_mut().drain(..) {
                    t.abort();
                }
            }
        });
    }
    let client_net = handle(&client_name);
    let deadline = lock(&shared).instant(limit);
    let end = race_client(
        &failure,
        tokio::time::sleep_until(deadline),
        client_software(client_net as NetRef),
    )
    .await;
    let at = lock(&shared).now();
    if let ClientEnd::Returned(Ok(Ok(()))) = &end {
        // Finish the instant: what other hosts do at the moment the client returned (the
        // server seeing the same close, say) belongs to the run. Tokio's timers tick in
        // milliseconds, as turmoil's steps do.
        let settle = lock(&shared).instant(at.saturating_add(SETTLE));
        tokio::select! {
            biased;
            () = failure.notified() => {}
            () = tokio::time::sleep_until(settle) => {}
        }
    }
    verdict(&failure, end, limit)?;
    Ok(RunEnd {
        at,
        events: lock(&shared).log,
    })
}

/// A host's handle on the simulated network.
struct SimNet {
    shared: Shared,
    host: usize,
    name: String,
    failure: Rc<Failure>,
    /// The host's tasks, kept only if the host is to crash.
    tasks: Option<Rc<RefCell<Vec<AbortHandle>>>>,
}

impl Net for SimNet {
    fn host(&self) -> &str {
        &self.name
    }

    fn listen(&self, port: u16) -> LocalBoxFuture<'_, io::Result<Box<dyn Listener>>> {
        let r = lock(&self.shared).listen(self.host, port);
        async move {
            r?;
            Ok(Box::new(SimListener {
                shared: self.shared.clone(),
                host: self.host,
                port,
            }) as Box<dyn Listener>)
        }
        .boxed_local()
    }

    fn connect(&self, host: &str, port: u16) -> LocalBoxFuture<'_, io::Result<Stream>> {
        let target = lock(&self.shared).host_index(host);
        let host = host.to_string();
        async move {
            let Some(target) = target else {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no host named {host}"),
                ));
            };
            let (to, arrives) = loop {
                let (to, syn) = lock(&self.shared).syn(self.host, target);
                match syn {
                    Syn::Arrives(at) => break (to, at),
                    Syn::Lost => std::future::pending::<()>().await,
                    // Nothing runs between `syn` and here, so no release is missed.
                    Syn::Held(released) => released.notified().await,
                }
            };
            let when = lock(&self.shared).instant(arrives);
            tokio::time::sleep_until(when).await;
            let (id, answer) = lock(&self.shared).open(self.host, to, port);
            let when = lock(&self.shared).instant(answer);
            tokio::time::sleep_until(when).await;
            match id {
                Some(id) => Ok(Box::new(SimStream::new(self.shared.clone(), id, 0)) as Stream),
                None => Err(io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    format!("{host}:{port} refused the connection"),
                )),
            }
        }
        .boxed_local()
    }

    fn now(&self) -> Duration {
        lock(&self.shared).now()
    }

    fn sleep_until(&self, at: Duration) -> LocalBoxFuture<'static, ()> {
        let when = lock(&self.shared).instant(at);
        tokio::time::sleep_until(when).boxed_local()
    }

    fn spawn(&self, task: LocalBoxFuture<'static, ()>) {
        let handle = spawn_caught(&self.failure, &self.name, task);
        if let Some(tasks) = &self.tasks {
            let mut tasks = tasks.borrow_mut();
            // Forget finished tasks now and then, so the list stays as long as what runs.
            if tasks.len() >= 64 && tasks.len().is_power_of_two() {
                tasks.retain(|t| !t.is_finished());
            }
            tasks.push(handle.abort_handle());
        }
    }

    fn link_fault(&self, a: &str, b: &str, fault: LinkFault) {
        let mut net = lock(&self.shared);
        if let (Some(a), Some(b)) = (net.host_index(a), net.host_index(b)) {
            net.fault(a, b, fault);
        }
    }
}

/// A listening socket on the simulated network.
struct SimListener {
    shared: Shared,
    host: usize,
    port: u16,
}

impl Listener for SimListener {
    fn accept(&mut self) -> LocalBoxFuture<'_, io::Result<Stream>> {
        async move {
            let id =
                std::future::poll_fn(|cx| lock(&self.shared).poll_accept(self.host, self.port, cx))
                    .await?;
            Ok(Box::new(SimStream::new(self.shared.clone(), id, 1)) as Stream)
        }
        .boxed_local()
    }
}

impl Drop for SimListener {
    fn drop(&mut self) {
        lock(&self.shared).unlisten(self.host, self.port);
    }
}
