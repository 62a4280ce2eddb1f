//! One side of a proxied connection: its socket, what is still open on it, and the outbox of
//! bytes the model sent that the socket has not taken yet.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;

use crate::engine::{Stream, scratch};

/// Bytes read from a socket at a time, at first: most connections carry small messages. The
/// reads go to the thread's scratch buffer ([`scratch`]), so a connection that waits holds
/// no buffer at all.
pub(super) const FIRST_CHUNK: usize = 2 * 1024;
/// The most read at a time: a read that takes all it may doubles what the next may, up to
/// this.
const MAX_CHUNK: usize = 64 * 1024;

/// The most bytes a side's outbox holds before the driver stops reading what would add to
/// it: the other side, whose bytes go there, and, once that many of them are the model's
/// answers to this side's own bytes (a cached response, an error page), this side. The
/// outbox can pass it by what one event makes a model send.
pub const OUTBOX_LIMIT: usize = 256 * 1024;

/// One side's socket, what is still open on it, and the bytes waiting for it.
pub(super) struct SideIo {
    pub(super) stream: Option<Stream>,
    pub(super) can_read: bool,
    /// The model may still send to this side: it asked for no FIN or RST, and no write failed.
    pub(super) can_send: bool,
    /// Bytes the model sent, oldest first, waiting for the socket (or for the dial); each
    /// chunk says whether it answers this side's own bytes.
    pub(super) out: VecDeque<(Vec<u8>, bool)>,
    /// How much of `out`'s first chunk is written.
    pub(super) out_pos: usize,
    /// Bytes in `out`, less `out_pos`.
    pub(super) out_len: usize,
    /// Of `out_len`, the bytes that answer this side's own bytes.
    pub(super) answers_len: usize,
    /// The model asked for a FIN, sent once `out` is written.
    pub(super) fin: bool,
    pub(super) bytes_in: u64,
    /// Bytes the model sent after the side closed, discarded (logged once, counted at the end).
    pub(super) discarded: u64,
}

impl SideIo {
    pub(super) fn new(stream: Option<Stream>) -> Self {
        let open = stream.is_some();
        Self {
            stream,
            can_read: open,
            can_send: open,
            out: VecDeque::new(),
            out_pos: 0,
            out_len: 0,
            answers_len: 0,
            fin: false,
            bytes_in: 0,
            discarded: 0,
        }
    }

    /// Nothing more can happen on this side.
    pub(super) fn finished(&self) -> bool {
        !self.can_read && !self.can_send && self.out_len == 0 && !self.fin
    }

    /// Queues `bytes` for the socket; `answer`: the model sent them on reading this side.
    pub(super) fn push(&mut self, bytes: Vec<u8>, answer: bool) {
        if !bytes.is_empty() {
            self.out_len += bytes.len();
            if answer {
                self.answers_len += bytes.len();
            }
            self.out.push_back((bytes, answer));
        }
    }

    /// Whether reading this side must wait: the other side's outbox, where its bytes go, is
    /// full, or this side's own holds a full outbox of answers to it (a peer that sends and
    /// never reads). Bytes on their way from the other side do not stop this side's reads:
    /// a peer that answers each piece before it reads the next would otherwise wait for the
    /// relay, and the relay for it.
    pub(super) fn read_blocked(&self, other: &SideIo) -> bool {
        other.out_len >= OUTBOX_LIMIT || self.answers_len >= OUTBOX_LIMIT
    }

    /// Drops what waits to be written, returning how many bytes that was.
    pub(super) fn drop_out(&mut self) -> usize {
        let n = self.out_len;
        self.out.clear();
        self.out_pos = 0;
        self.out_len = 0;
        self.answers_len = 0;
        n
    }

    /// Writes what waits, then the FIN the model asked for, as far as the socket takes
    /// them without waiting. `Ready(Err)` when a write fails; `Pending` otherwise (the socket
    /// is full, or there is nothing to do).
    pub(super) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(stream) = self.stream.as_mut() else {
            return Poll::Pending;
        };
        while let Some((chunk, answer)) = self.out.front() {
            match Pin::new(&mut *stream).poll_write(cx, &chunk[self.out_pos..]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => {
                    self.out_pos += n;
                    self.out_len -= n;
                    if *answer {
                        self.answers_len -= n;
                    }
                    if self.out_pos == chunk.len() {
                        self.out.pop_front();
                        self.out_pos = 0;
                    }
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        // A failed shutdown leaves nothing to do: the peer is gone, and the read side says so.
        if self.fin && Pin::new(&mut *stream).poll_shutdown(cx).is_ready() {
            self.fin = false;
        }
        Poll::Pending
    }
}

/// A read that took all of `chunk` suggests more is waiting: doubles it, up to [`MAX_CHUNK`].
pub(super) fn grow(chunk: &mut usize, read: &io::Result<usize>) {
    if matches!(read, Ok(n) if n == chunk) && *chunk < MAX_CHUNK {
        *chunk *= 2;
    }
}

/// Reads at most `chunk` bytes from `side` into the thread's scratch buffer
/// ([`scratch::with_read`] shows them) unless it is closed for reading or `blocked`.
pub(super) fn poll_read_side(
    side: &mut SideIo,
    blocked: bool,
    chunk: usize,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    match side.stream.as_mut() {
        Some(s) if side.can_read && !blocked => scratch::poll_read(Pin::new(s), chunk, cx),
        _ => Poll::Pending,
    }
}
