//! Reads into a buffer the thread shares. A stream that mostly waits (a proxied connection, a
//! client waiting for its 101, a server waiting for a request) would otherwise hold a buffer
//! of its own through the whole wait: in a crowd of thousands, those buffers are most of the
//! memory. A read here offers the stream exactly as many bytes as a buffer of its own of that
//! length would, so it takes the same bytes and the network sees the same reads.
//!
//! [`read_into`] copies what it read out at once. [`poll_read`] leaves it in the buffer for
//! [`with_read`], until the thread's next read: its caller uses the bytes before it next
//! waits. A read inside a read (a stream that itself reads this way) would panic; none does.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Polls one read of at most `len` bytes from `io` into the thread's buffer: `Ready(Ok(n))`
/// once `n` bytes are read (0 at the end of the stream), which [`with_read`] then shows.
pub(crate) fn poll_read<R: AsyncRead + ?Sized>(
    io: Pin<&mut R>,
    len: usize,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    SCRATCH.with(|scratch| {
        let mut buf = scratch.borrow_mut();
        if buf.len() < len {
            buf.resize(len, 0);
        }
        let mut rb = ReadBuf::new(&mut buf[..len]);
        match io.poll_read(cx, &mut rb) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(rb.filled().len())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    })
}

/// Runs `f` on the `n` bytes the thread's last [`poll_read`] read.
pub(crate) fn with_read<T>(n: usize, f: impl FnOnce(&[u8]) -> T) -> T {
    SCRATCH.with(|scratch| f(&scratch.borrow()[..n]))
}

/// Reads at most `len` bytes from `io`, as a read into a buffer of `len` bytes does, and
/// appends them to `out`: how many (0 at the end of the stream).
pub(crate) async fn read_into<R: AsyncRead + Unpin + ?Sized>(
    io: &mut R,
    len: usize,
    out: &mut Vec<u8>,
) -> io::Result<usize> {
    std::future::poll_fn(|cx| {
        let n = std::task::ready!(poll_read(Pin::new(&mut *io), len, cx))?;
        with_read(n, |bytes| out.extend_from_slice(bytes));
        Poll::Ready(Ok(n))
    })
    .await
}
