//! Bytes on the wire: every byte the client's TCP connections carry, each direction counted
//! ([`Wire`]), by a stream that counts what passes through it (made by [`Wire::count`]). The
//! counts are of TCP payload: HTTP heads, CONNECT exchanges, TLS records and WebSocket frame
//! headers are in them; IP and TCP headers are not.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::engine::{Io, Stream};

/// The bytes a run's client connections carried so far, shared by every connection of the
/// run (clones count into the same totals).
#[derive(Debug, Clone, Default)]
pub struct Wire(Arc<[AtomicU64; 2]>);

/// A snapshot of [`Wire`]: bytes the client wrote (`up`) and read (`down`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WireBytes {
    /// Client to server.
    pub up: u64,
    /// Server to client.
    pub down: u64,
}

impl Wire {
    /// What it has counted so far.
    pub fn bytes(&self) -> WireBytes {
        WireBytes {
            up: self.0[0].load(Ordering::Relaxed),
            down: self.0[1].load(Ordering::Relaxed),
        }
    }

    /// `stream`, counting into these totals.
    pub fn count(&self, stream: Stream) -> Stream {
        Box::new(Counted {
            inner: stream,
            wire: self.clone(),
        })
    }

    fn add(&self, direction: usize, n: usize) {
        self.0[direction].fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// A stream that adds what it writes and reads to a [`Wire`].
struct Counted {
    inner: Stream,
    wire: Wire,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let n = buf.filled().len() - before;
            self.wire.add(1, n);
        }
        polled
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            self.wire.add(0, n);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl Io for Counted {
    fn reset(self: Box<Self>) {
        self.inner.reset();
    }

    fn peer(&self) -> String {
        self.inner.peer()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A loopback pair is enough: what one end writes, the other reads.
    struct Pipe(tokio::io::DuplexStream);

    impl AsyncRead for Pipe {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.0).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for Pipe {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            Pin::new(&mut self.0).poll_write(cx, buf)
        }
        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.0).poll_flush(cx)
        }
        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.0).poll_shutdown(cx)
        }
    }

    impl Io for Pipe {
        fn reset(self: Box<Self>) {}
        fn peer(&self) -> String {
            "pipe".into()
        }
    }

    #[tokio::test]
    async fn counts_each_direction_over_every_connection_of_a_run() {
        let wire = Wire::default();
        for _ in 0..2 {
            let (a, mut b) = tokio::io::duplex(64);
            let mut counted = wire.count(Box::new(Pipe(a)));
            counted.write_all(b"hello").await.unwrap();
            let mut got = [0u8; 5];
            b.read_exact(&mut got).await.unwrap();
            b.write_all(b"abc").await.unwrap();
            let mut back = [0u8; 3];
            counted.read_exact(&mut back).await.unwrap();
        }
        assert_eq!(wire.bytes(), WireBytes { up: 10, down: 6 });
    }
}
