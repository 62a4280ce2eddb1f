//! A scheduled crash: every accepted stream sits in a slot the crash can empty, resetting the
//! connection; a stream whose slot is empty fails every operation.

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::engine::{NetRef, Stream};

/// A connection's stream, which a crash can take away and reset.
type Slot = Arc<Mutex<Option<Stream>>>;

/// When the server crashes, and the connections a crash resets.
#[derive(Clone)]
pub(super) struct Crash {
    pub(super) at: Option<Duration>,
    pub(super) conns: Rc<RefCell<Vec<Slot>>>,
}

impl Crash {
    pub(super) fn new(at: Option<Duration>) -> Self {
        Self {
            at,
            conns: Rc::default(),
        }
    }

    /// Keeps `stream` where a crash can reach it.
    pub(super) fn register(&self, stream: Stream) -> Killable {
        let slot: Slot = Arc::new(Mutex::new(Some(stream)));
        if self.at.is_some() {
            self.conns.borrow_mut().push(slot.clone());
        }
        Killable { slot }
    }

    /// Resets every registered connection still open; returns how many.
    pub(super) fn reset_all(&self) -> usize {
        let mut count = 0;
        for slot in self.conns.borrow_mut().drain(..) {
            if let Some(stream) = slot.lock().ok().and_then(|mut s| s.take()) {
                stream.reset();
                count += 1;
            }
        }
        count
    }

    pub(super) async fn wait(&self, net: &NetRef) {
        match self.at {
            Some(at) => net.sleep_until(at).await,
            None => std::future::pending().await,
        }
    }
}

/// A stream that fails every operation once a crash has taken it.
pub(super) struct Killable {
    slot: Slot,
}

/// Resets one connection, on the server's own decision (`reset=1`): what a crash does to
/// every connection, done to this one.
#[derive(Clone)]
pub(super) struct Reset {
    slot: Slot,
}

impl Reset {
    /// Resets the connection, if it is still open; returns whether it was.
    pub(super) fn reset(&self) -> bool {
        match self.slot.lock().ok().and_then(|mut s| s.take()) {
            Some(stream) => {
                stream.reset();
                true
            }
            None => false,
        }
    }
}

impl Killable {
    /// What resets this connection.
    pub(super) fn resetter(&self) -> Reset {
        Reset {
            slot: self.slot.clone(),
        }
    }

    fn with<R>(
        &self,
        f: impl FnOnce(Pin<&mut Stream>) -> Poll<std::io::Result<R>>,
    ) -> Poll<std::io::Result<R>> {
        let Ok(mut guard) = self.slot.lock() else {
            return Poll::Ready(Err(std::io::Error::other("connection state poisoned")));
        };
        match guard.as_mut() {
            Some(stream) => f(Pin::new(stream)),
            None => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the server crashed",
            ))),
        }
    }
}

impl AsyncRead for Killable {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.with(|s| s.poll_read(cx, buf))
    }
}

impl AsyncWrite for Killable {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.with(|s| s.poll_write(cx, buf))
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.with(|s| s.poll_flush(cx))
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.with(|s| s.poll_shutdown(cx))
    }
}
