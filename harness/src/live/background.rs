//! A standing live run ([`real::proxy::run`](crate::real::proxy::run),
//! [`real::serve::run`](crate::real::serve::run)) on a thread of its own, started and stopped
//! from async code on any executor.
//!
//! The live engine runs its hosts on a current-thread tokio runtime it builds itself, which
//! cannot run inside the caller's runtime, so each proxy or server gets a thread. The caller
//! talks to it through three one-shot channels: the addresses once it listens, the stop, and
//! how it ended with its transcript. Stopping completes the run's stop future; the run then
//! returns, dropping its runtime with every task and socket, and the thread ends; the caller
//! joins it. A handle dropped without a shutdown does the same from its `Drop`.

use std::net::{Ipv4Addr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::thread::JoinHandle;

use futures_util::FutureExt;
use futures_util::future::LocalBoxFuture;
use tokio::sync::oneshot;

use crate::engine::local::panic_text;
use crate::error::{Error, Fault};
use crate::real::standing::StandingError;
use crate::verdict::transcript::{Entry, Transcript};

/// The most lines a proxy or server started here keeps of what it logs (a few per
/// connection): the last ones, so that one running as long as a test suite holds bounded
/// memory; `shutdown` says how many earlier ones were dropped.
pub(crate) const KEPT_LINES: usize = 100_000;

/// How a run ended, and what its hosts logged.
type Ended = (Result<(), Fault>, Vec<Entry>);

/// What a standing run is given: the transcript to log to, the stop to wait for, and whom to
/// tell its addresses once it listens.
pub(crate) type Run<A> = Box<
    dyn FnOnce(
            Transcript,
            LocalBoxFuture<'static, ()>,
            Box<dyn FnOnce(A)>,
        ) -> Result<(), StandingError>
        + Send,
>;

/// A standing run on its own thread.
#[derive(Debug)]
pub(crate) struct Background {
    /// `proxy` or `server`, for errors.
    what: &'static str,
    /// Sent or dropped: the run stops.
    stop: Option<oneshot::Sender<()>>,
    /// How it ended.
    ended: Option<oneshot::Receiver<Ended>>,
    thread: Option<JoinHandle<()>>,
}

impl Background {
    /// Starts `run` on a thread of its own and waits until it listens: its addresses and the
    /// handle. A run that ends before it listens is an [`Error::Start`] saying why.
    pub(crate) async fn start<A: Send + 'static>(
        what: &'static str,
        run: Run<A>,
    ) -> Result<(A, Background), Error> {
        let (stop, stopped) = oneshot::channel::<()>();
        let (ready, listening) = oneshot::channel::<A>();
        let (end, ended) = oneshot::channel::<Ended>();
        let thread = std::thread::Builder::new()
            .name(format!("gauntlet {what}"))
            .spawn(move || {
                let transcript = Transcript::keeping_last(KEPT_LINES);
                let stop = async move {
                    // A stop sent and a handle dropped both end the run.
                    let _ = stopped.await;
                }
                .boxed_local();
                let tell = Box::new(move |addrs: A| {
                    let _ = ready.send(addrs);
                });
                let t = transcript.clone();
                let result = std::panic::catch_unwind(AssertUnwindSafe(move || run(t, stop, tell)))
                    .map_err(|panic| Fault::Panicked(panic_text(panic.as_ref())))
                    .and_then(|r| r.map_err(Fault::Run));
                let mut entries = transcript.entries();
                entries.sort_by_key(|e| e.at);
                let _ = end.send((result, entries));
            })
            .map_err(|e| Error::Start {
                what,
                fault: Fault::Thread(e),
                last_lines: Vec::new(),
            })?;
        let mut background = Background {
            what,
            stop: Some(stop),
            ended: Some(ended),
            thread: Some(thread),
        };
        match listening.await {
            Ok(addrs) => Ok((addrs, background)),
            Err(_) => {
                let (result, entries) = background.wait().await;
                Err(Error::Start {
                    what,
                    fault: result.err().unwrap_or(Fault::Early),
                    last_lines: last_lines(entries),
                })
            }
        }
    }

    /// Stops the run and waits for its thread: what its hosts logged, or the fault it
    /// stopped on.
    pub(crate) async fn shutdown(mut self) -> Result<Vec<Entry>, Error> {
        let what = self.what;
        let (result, entries) = self.wait().await;
        match result {
            Ok(()) => Ok(entries),
            Err(fault) => Err(Error::Failed {
                what,
                fault,
                last_lines: last_lines(entries),
            }),
        }
    }

    /// Stops the run (if it is still running), waits for its end and joins its thread.
    async fn wait(&mut self) -> Ended {
        self.stop.take();
        let ended = match self.ended.take() {
            Some(ended) => ended.await.ok(),
            None => None,
        };
        // The run has returned (or the thread died): the join is immediate.
        let joined = self.thread.take().map(JoinHandle::join);
        match (ended, joined) {
            (Some(ended), _) => ended,
            (None, Some(Err(panic))) => (
                Err(Fault::ThreadPanicked(panic_text(panic.as_ref()))),
                Vec::new(),
            ),
            (None, _) => (Err(Fault::Vanished), Vec::new()),
        }
    }
}

impl Drop for Background {
    /// Stops the run and joins its thread, blocking the dropping thread while the run drops
    /// its tasks and sockets (no longer than that: the run waits for nothing once stopped).
    fn drop(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Where the front door's proxies and servers listen: 127.0.0.1, an ephemeral port.
pub(crate) fn loopback() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

/// How many of the transcript's last lines a start or stop error quotes.
const QUOTED: usize = 5;

/// The last lines the run's hosts logged, which usually say what led to the fault.
fn last_lines(mut entries: Vec<Entry>) -> Vec<Entry> {
    entries.drain(..entries.len().saturating_sub(QUOTED));
    entries
}
