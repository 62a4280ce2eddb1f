//! What engines that run every host as tasks on one thread share: the first failure of any
//! host's software, a task that turns a panic into such a failure, and the race between the
//! client, the failures and the time limit.

use std::cell::RefCell;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use futures_util::future::LocalBoxFuture;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::{EngineError, NetRef, Software};

/// The first failure of any host's software; the run stops at it.
#[derive(Debug, Default)]
pub(crate) struct Failure {
    first: RefCell<Option<String>>,
    notify: Notify,
}

impl Failure {
    /// Records `what` unless a failure was recorded before, and wakes the run.
    pub(crate) fn set(&self, what: String) {
        let mut first = self.first.borrow_mut();
        if first.is_none() {
            *first = Some(what);
            self.notify.notify_one();
        }
    }

    /// Completes when a failure is recorded.
    pub(crate) async fn notified(&self) {
        self.notify.notified().await;
    }

    /// The first failure, if any.
    pub(crate) fn first(&self) -> Option<String> {
        self.first.borrow().clone()
    }
}

/// The text of a panic's payload.
pub(crate) fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// Runs `task` on the current `LocalSet`; a panic in it becomes `host`'s failure.
pub(crate) fn spawn_caught(
    failure: &std::rc::Rc<Failure>,
    host: &str,
    task: LocalBoxFuture<'static, ()>,
) -> JoinHandle<()> {
    let (failure, host) = (failure.clone(), host.to_string());
    tokio::task::spawn_local(async move {
        if let Err(panic) = AssertUnwindSafe(task).catch_unwind().await {
            failure.set(format!(
                "{host}: a task panicked: {}",
                panic_text(panic.as_ref())
            ));
        }
    })
}

/// Starts `software` on `net`'s host, as one of the host's tasks; its error becomes the
/// host's failure.
pub(crate) fn start_host(net: &NetRef, software: &Software, failure: &std::rc::Rc<Failure>) {
    let fut = software(net.clone());
    let (failure, host) = (failure.clone(), net.host().to_string());
    net.spawn(
        async move {
            if let Err(e) = fut.await {
                failure.set(format!("{host}: {e:#}"));
            }
        }
        .boxed_local(),
    );
}

/// How the race between the client and everything that can stop a run ended.
#[derive(Debug)]
pub(crate) enum ClientEnd {
    /// A host's software failed first.
    HostFailed,
    /// The time limit came first.
    TimeLimit,
    /// The client returned (or panicked).
    Returned(std::thread::Result<anyhow::Result<()>>),
}

/// Runs `client` until it returns, a host fails, or `limit` completes.
pub(crate) async fn race_client(
    failure: &Failure,
    limit: impl Future<Output = ()>,
    client: LocalBoxFuture<'static, anyhow::Result<()>>,
) -> ClientEnd {
    let client = AssertUnwindSafe(client).catch_unwind();
    tokio::select! {
        biased;
        () = failure.notified() => ClientEnd::HostFailed,
        () = limit => ClientEnd::TimeLimit,
        r = client => ClientEnd::Returned(r),
    }
}

/// The run's verdict: the first host failure, else how the client ended. `limit` is the time
/// limit, for its error.
pub(crate) fn verdict(
    failure: &Failure,
    end: ClientEnd,
    limit: std::time::Duration,
) -> Result<(), EngineError> {
    if let Some(what) = failure.first() {
        return Err(EngineError::Software(what));
    }
    match end {
        ClientEnd::HostFailed => Err(EngineError::Software("a host failed".into())),
        ClientEnd::TimeLimit => Err(EngineError::TimeLimit(limit)),
        ClientEnd::Returned(Err(panic)) => Err(EngineError::Software(format!(
            "the client panicked: {}",
            panic_text(panic.as_ref())
        ))),
        ClientEnd::Returned(Ok(Err(e))) => Err(EngineError::Software(format!("{e:#}"))),
        ClientEnd::Returned(Ok(Ok(()))) => Ok(()),
    }
}
