//! A connection's stream in a slot that can be emptied, resetting the connection
//! ([`Reset`]): what a server's crash does to every connection (`server::crash`), a server
//! does to one on its own decision (`reset=1`), and a client does to its own
//! (`client-reset`). A stream whose slot is empty fails every operation.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::engine::{Io, Stream};

/// A connection's stream, which a reset can take away.
type Slot = Arc<Mutex<Option<Stream>>>;

/// A stream that fails every operation once a reset has taken it.
pub(crate) struct Killable {
    slot: Slot,
    /// What its operations say once it is gone.
    gone: &'static str,
}

/// Resets one connection.
#[derive(Clone)]
pub(crate) struct Reset {
    slot: Slot,
}

impl Reset {
    /// Resets the connection, if it is still open; returns whether it was.
    pub(crate) fn reset(&self) -> bool {
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
    /// `stream` in a slot; once reset, its operations fail saying `gone`.
    pub(crate) fn new(stream: Stream, gone: &'static str) -> Self {
        Self {
            slot: Arc::new(Mutex::new(Some(stream))),
            gone,
        }
    }

    /// What resets this connection.
    pub(crate) fn resetter(&self) -> Reset {
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
                self.gone,
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

impl Io for Killable {
    fn reset(self: Box<Self>) {
        self.resetter().reset();
    }
    fn peer(&self) -> String {
        (self.slot.lock().ok())
            .and_then(|s| s.as_ref().map(|s| s.peer()))
            .unwrap_or_else(|| "a connection reset here".to_string())
    }
}
