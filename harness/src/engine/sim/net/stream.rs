//! Reading and writing: what has arrived for a reader, a writer's room in the direction's
//! buffer (and a write that reaches a closed socket), a FIN; and [`SimStream`], one end of a
//! connection as a host's software sees it, which sleeps until the next arrival.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use super::conn::{Kind, reset_error};
use super::{Network, Shared, lock};
use crate::engine::Io;

impl Network {
    /// Reads what has arrived for end `side` into `buf`. `Pending` when nothing has: then the
    /// caller sleeps until `Some(at)`, the next arrival, or waits for a wake-up.
    fn read(
        &mut self,
        id: u64,
        side: usize,
        buf: &mut ReadBuf<'_>,
        cx: &mut Context<'_>,
    ) -> Result<io::Result<()>, Option<Duration>> {
        let now = self.now();
        let Some(conn) = self.conns.get_mut(id) else {
            return Ok(Err(reset_error()));
        };
        let host = conn.hosts[side];
        let half = &mut conn.halves[1 - side];
        let mut copied = 0;
        while buf.remaining() > 0 {
            let Some(seg) = half.queue.front_mut() else {
                break;
            };
            match seg.at {
                Some(t) if t <= now => {}
                _ => break,
            }
            match seg.kind {
                Kind::Data => {
                    let n = buf.remaining().min(seg.data.len() - seg.read);
                    buf.put_slice(&seg.data[seg.read..seg.read + n]);
                    seg.read += n;
                    copied += n;
                    if seg.read == seg.data.len() {
                        half.queue.pop_front();
                    }
                }
                Kind::Fin | Kind::Rst => break,
            }
        }
        if copied > 0 {
            half.unread -= copied;
            half.wake_writer();
            self.record(host, format_args!("#{id} read {copied}"));
            return Ok(Ok(()));
        }
        match half.queue.front() {
            Some(seg) if seg.at.is_some_and(|t| t <= now) => {
                let kind = seg.kind;
                if kind == Kind::Rst {
                    self.record(host, format_args!("#{id} read reset"));
                    Ok(Err(reset_error()))
                } else {
                    self.record(host, format_args!("#{id} read end"));
                    Ok(Ok(()))
                }
            }
            Some(seg) => {
                let next = seg.at;
                half.reader = Some(cx.waker().clone());
                Err(next)
            }
            None => {
                half.reader = Some(cx.waker().clone());
                Err(None)
            }
        }
    }

    /// Writes from end `side`: how many bytes were taken, or, while the direction is full,
    /// `Err` with `cx` registered and the time of the RST on its way to this end, if one is
    /// (the writer learns of it then: the write fails).
    fn write(
        &mut self,
        id: u64,
        side: usize,
        buf: &[u8],
        cx: &mut Context<'_>,
    ) -> Result<io::Result<usize>, Option<Duration>> {
        let now = self.now();
        let buffer = self.buffer;
        let Some(conn) = self.conns.get_mut(id) else {
            return Ok(Err(reset_error()));
        };
        let host = conn.hosts[side];
        let rst_at = conn.halves[1 - side].rst_at;
        if rst_at.is_some_and(|t| t <= now) {
            return Ok(Err(reset_error()));
        }
        if conn.halves[side].shut {
            return Ok(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "write after shutdown",
            )));
        }
        if buf.is_empty() {
            return Ok(Ok(0));
        }
        let half = &mut conn.halves[side];
        let room = buffer.saturating_sub(half.unread);
        if room == 0 {
            half.writer = Some(cx.waker().clone());
            return Err(rst_at);
        }
        let n = room.min(buf.len());
        if half.reader_gone {
            // The bytes reach a closed socket, which answers with RST; a crashed host answers
            // nothing. Nobody acknowledges them, so they stay in the buffer: a writer that
            // goes on waits for the RST, as a TCP sender waits for its send buffer.
            half.unread += n;
            let (a, b) = (conn.hosts[side], conn.hosts[1 - side]);
            if rst_at.is_none() && !self.hosts[b].crashed {
                let round_trip = now
                    .saturating_add(self.links[a][b].latency)
                    .saturating_add(self.links[b][a].latency);
                self.send_no_earlier(id, 1 - side, Kind::Rst, Vec::new(), round_trip);
            }
            self.record(host, format_args!("#{id} write {n} to a closed socket"));
            return Ok(Ok(n));
        }
        self.send(id, side, Kind::Data, buf[..n].to_vec());
        self.record(host, format_args!("#{id} write {n}"));
        Ok(Ok(n))
    }

    /// End `side` sends FIN.
    fn shutdown(&mut self, id: u64, side: usize) -> io::Result<()> {
        let Some(conn) = self.conns.get_mut(id) else {
            return Err(reset_error());
        };
        if conn.halves[side].shut {
            return Ok(());
        }
        let host = conn.hosts[side];
        if !conn.halves[side].reader_gone {
            self.send(id, side, Kind::Fin, Vec::new());
        }
        if let Some(conn) = self.conns.get_mut(id) {
            conn.halves[side].shut = true;
        }
        self.record(host, format_args!("#{id} shutdown"));
        Ok(())
    }
}

/// One end of a simulated connection.
pub(crate) struct SimStream {
    net: Shared,
    id: u64,
    side: usize,
    peer: String,
    /// Wakes the reader when the next segment arrives.
    sleep: Option<Pin<Box<Sleep>>>,
    /// Wakes a writer waiting for room when a RST arrives.
    write_sleep: Option<Pin<Box<Sleep>>>,
}

impl SimStream {
    pub(crate) fn new(net: Shared, id: u64, side: usize) -> Self {
        let peer = lock(&net).peer_ip(id, side);
        Self {
            net,
            id,
            side,
            peer,
            sleep: None,
            write_sleep: None,
        }
    }
}

impl Io for SimStream {
    fn reset(self: Box<Self>) {
        lock(&self.net).close(self.id, self.side, true);
    }

    fn peer(&self) -> String {
        self.peer.clone()
    }
}

impl Drop for SimStream {
    fn drop(&mut self) {
        lock(&self.net).close(self.id, self.side, false);
    }
}

/// Sleeps in `sleep` until `deadline`: `Ready` once it has passed, so the caller tries again;
/// `Pending` with `cx` registered before then, or for good with no deadline (the caller's
/// waker is registered elsewhere).
fn sleep_until(
    sleep: &mut Option<Pin<Box<Sleep>>>,
    deadline: Option<tokio::time::Instant>,
    cx: &mut Context<'_>,
) -> Poll<()> {
    let Some(deadline) = deadline else {
        return Poll::Pending;
    };
    let sleep = match sleep {
        Some(s) => {
            s.as_mut().reset(deadline);
            s
        }
        None => sleep.insert(Box::pin(tokio::time::sleep_until(deadline))),
    };
    sleep.as_mut().poll(cx)
}

impl AsyncRead for SimStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            let (result, instant) = {
                let mut net = lock(&this.net);
                match net.read(this.id, this.side, buf, cx) {
                    Ok(r) => (Some(r), None),
                    Err(next) => (None, next.map(|at| net.instant(at))),
                }
            };
            if let Some(r) = result {
                return Poll::Ready(r);
            }
            if sleep_until(&mut this.sleep, instant, cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

impl AsyncWrite for SimStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        loop {
            let instant = {
                let mut net = lock(&this.net);
                match net.write(this.id, this.side, buf, cx) {
                    Ok(r) => return Poll::Ready(r),
                    Err(rst_at) => rst_at.map(|at| net.instant(at)),
                }
            };
            if sleep_until(&mut this.write_sleep, instant, cx).is_pending() {
                return Poll::Pending;
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(lock(&self.net).shutdown(self.id, self.side))
    }
}
