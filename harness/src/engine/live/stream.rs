//! A real TCP stream of the run: reads from the socket behind the link's gate, writes
//! straight to the socket when nothing waits and it takes them, otherwise through the
//! stream's outbox, which a pump task moves to the socket while the link is open, then
//! sends the FIN, the reset, or keeps the socket silent after a blackhole.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::world::{Gate, Pass, lock};
use crate::engine::{Io, record_read};

/// Bytes a stream's outbox holds before a writer waits (the kernel's buffers come after it).
const OUTBOX: usize = 64 * 1024;

/// What a stream's writer has asked for and its pump has not done yet.
#[derive(Default)]
struct Outbox {
    bytes: Vec<u8>,
    /// The pump holds bytes it took from here and has not finished writing them.
    writing: bool,
    /// The writer shut the stream down: a FIN follows the bytes.
    fin: bool,
    fin_sent: bool,
    /// The writer is gone: how to close once the bytes are out.
    closed: Option<Close>,
    /// A write to the socket failed: the writer's next write fails so.
    error: Option<io::ErrorKind>,
    /// A writer waiting for room.
    writer: Option<Waker>,
    /// The pump, waiting for work.
    pump: Option<Waker>,
}

/// How a stream's writer left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Close {
    /// Dropped: the socket closes normally once the outbox is sent.
    Drop,
    /// Reset: RST after what was already written.
    Reset,
}

impl Outbox {
    fn wake_pump(&mut self) {
        if let Some(w) = self.pump.take() {
            w.wake();
        }
    }
}

/// The pump's next job.
enum Job {
    /// Write the bytes `next_job` left in the pump's buffer.
    Write,
    Fin,
    Close(Close),
    /// The link was blackholed: keep the socket open and never speak again.
    Silence,
}

/// Moves a stream's outbox to its socket while its link is open.
async fn pump(
    mut half: OwnedWriteHalf,
    out: Arc<Mutex<Outbox>>,
    gate: Gate,
    source: Option<SocketAddr>,
) {
    let mut chunk = Vec::new();
    loop {
        let job = std::future::poll_fn(|cx| next_job(&out, &gate, &mut chunk, cx)).await;
        match job {
            Job::Write => {
                let written = half.write_all(&chunk).await;
                chunk.clear();
                let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
                o.writing = false;
                if let Err(e) = written {
                    o.error = Some(e.kind());
                    o.bytes.clear();
                    if let Some(w) = o.writer.take() {
                        w.wake();
                    }
                }
            }
            Job::Fin => {
                let _ = half.shutdown().await;
            }
            Job::Close(Close::Drop) => break,
            Job::Close(Close::Reset) => {
                let _ = half.as_ref().set_zero_linger();
                // The read half is gone: the socket closes, with the RST, at once.
                half.forget();
                break;
            }
            Job::Silence => {
                lock(&gate.world).silenced.push(half);
                break;
            }
        }
    }
    if let Some(local) = source {
        lock(&gate.world).sources.remove(&local);
    }
}

/// The pump's next job; a write's bytes are left in `spare` (which must be empty).
fn next_job(
    out: &Mutex<Outbox>,
    gate: &Gate,
    spare: &mut Vec<u8>,
    cx: &mut Context<'_>,
) -> Poll<Job> {
    match gate.pass(Some(cx.waker())) {
        Pass::Silent => return Poll::Ready(Job::Silence),
        Pass::Wait => return Poll::Pending,
        Pass::Open => {}
    }
    let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
    if !o.bytes.is_empty() {
        // The whole outbox at once, by swapping buffers: no byte is copied here, and the
        // writer gets back the pump's emptied buffer, capacity and all.
        std::mem::swap(&mut o.bytes, spare);
        o.writing = true;
        if let Some(w) = o.writer.take() {
            w.wake();
        }
        return Poll::Ready(Job::Write);
    }
    if o.fin && !o.fin_sent {
        o.fin_sent = true;
        return Poll::Ready(Job::Fin);
    }
    if let Some(close) = o.closed {
        return Poll::Ready(Job::Close(close));
    }
    o.pump = Some(cx.waker().clone());
    Poll::Pending
}

/// A real TCP stream of the run: reads from the socket, writes through the outbox and its
/// pump, both behind the link's gate.
pub(super) struct LiveStream {
    read: OwnedReadHalf,
    out: Arc<Mutex<Outbox>>,
    gate: Gate,
    host: String,
    pub(super) local: SocketAddr,
    peer: String,
}

impl LiveStream {
    pub(super) fn new(
        inner: TcpStream,
        host: &str,
        peer: String,
        gate: Gate,
        source: Option<SocketAddr>,
    ) -> io::Result<Self> {
        // Small writes go out at once, as on the simulated networks.
        inner.set_nodelay(true)?;
        let local = inner.local_addr()?;
        let (read, write) = inner.into_split();
        let out = Arc::new(Mutex::new(Outbox::default()));
        tokio::task::spawn_local(pump(write, out.clone(), gate.clone(), source));
        Ok(Self {
            read,
            out,
            gate,
            host: host.to_string(),
            local,
            peer,
        })
    }

    fn outbox(&self) -> MutexGuard<'_, Outbox> {
        self.out.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, what: std::fmt::Arguments<'_>) {
        lock(&self.gate.world).record(&self.host, format_args!("{} {what}", self.local.port()));
    }

    /// Tells the pump how the writer left, unless it already knows.
    fn close(&self, how: Close) {
        let mut o = self.outbox();
        if o.closed.is_none() {
            o.closed = Some(how);
            o.wake_pump();
        }
    }
}

impl Io for LiveStream {
    fn reset(self: Box<Self>) {
        self.record(format_args!("reset"));
        self.close(Close::Reset);
    }

    fn peer(&self) -> String {
        self.peer.clone()
    }
}

impl Drop for LiveStream {
    fn drop(&mut self) {
        self.close(Close::Drop);
    }
}

impl AsyncRead for LiveStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.gate.pass(Some(cx.waker())) != Pass::Open {
            return Poll::Pending;
        }
        let before = buf.filled().len();
        let mut r = Pin::new(&mut self.read).poll_read(cx, buf);
        let eof = matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() == before;
        if eof && buf.remaining() > 0 && self.outbox().error == Some(io::ErrorKind::ConnectionReset)
        {
            // Linux tells of a reset once, to whichever call comes first: when a write heard
            // it, the read that follows sees only the end of the stream. The peer reset it,
            // and the reader hears so too, as on the simulated engines.
            r = Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        }
        record_read(&r, buf.filled().len() - before, |what| self.record(what));
        r
    }
}

impl AsyncWrite for LiveStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let pass = self.gate.pass(None);
        if pass == Pass::Silent {
            self.record(format_args!("write {} lost", buf.len()));
            return Poll::Ready(Ok(buf.len()));
        }
        let mut o = self.outbox();
        if let Some(kind) = o.error {
            drop(o);
            self.record(format_args!("write {kind:?}"));
            return Poll::Ready(Err(io::Error::from(kind)));
        }
        if o.fin {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "write after shutdown",
            )));
        }
        if o.bytes.is_empty() && !o.writing && pass == Pass::Open {
            // Nothing waits before these bytes and the link is open: straight to the socket,
            // with no copy and no hand-over to the pump, if it takes them now. Only the pump
            // ever waits for the socket to take bytes: tokio keeps one write waker per
            // socket, and a writer waiting there could take the place of another task waiting
            // on the same socket (the pump, or a second task writing to the stream), which
            // would then never be woken: measured, TLS handshakes stalled in the soak.
            let socket: &TcpStream = self.read.as_ref();
            match socket.try_write(buf) {
                Ok(n) => {
                    drop(o);
                    self.record(format_args!("write {n}"));
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    o.error = Some(e.kind());
                    drop(o);
                    self.record(format_args!("write {:?}", e.kind()));
                    return Poll::Ready(Err(e));
                }
            }
        }
        let room = OUTBOX.saturating_sub(o.bytes.len());
        if room == 0 {
            o.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = room.min(buf.len());
        o.bytes.extend_from_slice(&buf[..n]);
        o.wake_pump();
        drop(o);
        self.record(format_args!("write {n}"));
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut o = self.outbox();
        if !o.fin {
            o.fin = true;
            o.wake_pump();
            drop(o);
            self.record(format_args!("shutdown"));
        }
        Poll::Ready(Ok(()))
    }
}
