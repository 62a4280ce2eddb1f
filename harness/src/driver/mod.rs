//! The driver: runs any sans-IO model over an engine's streams. One task per proxied
//! connection turns socket activity into [`Event`]s and carries out the model's [`Action`]s.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::LocalBoxFuture;
use gauntlet_proxies::rng::Rng;
use gauntlet_proxies::{Action, CloseHow, Connection, Cx, Event, HopEnv, ModelSpec, Side};
use tokio::sync::Notify;

use crate::engine::{
    ACCEPT_BACKOFF, Intake, NetRef, Software, Stream, accept_error_is_transient, scratch,
};
use crate::verdict::transcript::Transcript;

mod side;

/// Why a model's dial goes nowhere: the error its connection's dial fails with (an
/// [`io::Error`] of kind `NotFound` carrying it), which the model hears as the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DialError {
    /// An action handed to the dial that is not one.
    #[error("{0:?} is not a dial")]
    NotADial(Action),
    /// A backend the hop does not have (numbered from 0).
    #[error("no backend {backend}: the hop has {backends}")]
    NoBackend {
        /// The backend asked for.
        backend: usize,
        /// How many the hop has.
        backends: usize,
    },
}

pub use side::OUTBOX_LIMIT;
use side::{FIRST_CHUNK, SideIo, grow, poll_read_side};

/// A hop as a host's software: listens on `ports`, runs a fresh connection of `spec`'s hop
/// for each accepted connection, and dials among `upstreams` (backend 0, 1, …) when the model
/// asks. With no `upstreams`, a model's dial toward a destination it was told by name (a
/// CONNECT's authority) goes to that name, and any other dial fails. Connections are
/// numbered by `intake`; when it has a limit, the hop stops accepting while that many of its
/// connections are open (they wait in the listen queue), as HAProxy does at `maxconn`. Once
/// `stop` (if any) is notified, the hop closes its listeners and its open connections drain:
/// a graceful stop, the one a model has.
pub fn hop_software(
    spec: Rc<ModelSpec>,
    env: HopEnv,
    upstreams: Vec<String>,
    ports: Vec<u16>,
    seed: u64,
    transcript: Transcript,
    (intake, stop): (Intake, Option<Arc<Notify>>),
) -> Software {
    Rc::new(move |net: NetRef| {
        let stop = stop.clone();
        let (spec, env, upstreams, ports, t, intake) = (
            spec.clone(),
            env.clone(),
            Rc::new(upstreams.clone()),
            ports.clone(),
            transcript.clone(),
            intake.clone(),
        );
        async move {
            t.log(
                net.now(),
                net.host(),
                if upstreams.is_empty() {
                    format!(
                        "{} up, no upstream (named destinations only)",
                        spec.summary()
                    )
                } else {
                    format!("{} up, upstream {}", spec.summary(), upstreams.join(", "))
                },
            );
            let hop = Rc::new(RefCell::new(spec.hop(&env)?));
            // Set and notified once the hop is told to stop; each accept loop checks it.
            let stopped = Rc::new((std::cell::Cell::new(false), Notify::new()));
            if let Some(stop) = stop {
                let (n, t, stopped) = (net.clone(), t.clone(), stopped.clone());
                net.spawn(
                    async move {
                        stop.notified().await;
                        t.log(
                            n.now(),
                            n.host(),
                            "told to stop: closing the listeners, open connections drain",
                        );
                        stopped.0.set(true);
                        stopped.1.notify_waiters();
                    }
                    .boxed_local(),
                );
            }
            for port in ports {
                let mut listener = net.listen(port).await?;
                let stopped = stopped.clone();
                let (net2, hop, upstreams, t, intake) = (
                    net.clone(),
                    hop.clone(),
                    upstreams.clone(),
                    t.clone(),
                    intake.clone(),
                );
                net.spawn(
                    async move {
                        loop {
                            if let Some(max) = intake.max().filter(|_| intake.full()) {
                                t.log(
                                    net2.now(),
                                    net2.host(),
                                    format!(
                                        "{max} connections open, the limit: not accepting on {port} until one closes"
                                    ),
                                );
                            }
                            intake.until_free().await;
                            if stopped.0.get() {
                                return;
                            }
                            let accepted = tokio::select! {
                                biased;
                                () = stopped.1.notified() => return,
                                a = listener.accept() => a,
                            };
                            let stream = match accepted {
                                Ok(s) => s,
                                Err(e) if accept_error_is_transient(&e) => {
                                    t.log(
                                        net2.now(),
                                        net2.host(),
                                        format!(
                                            "accept failed on {port}: {e}; accepting again in {} ms",
                                            ACCEPT_BACKOFF.as_millis()
                                        ),
                                    );
                                    net2.sleep_until(net2.now() + ACCEPT_BACKOFF).await;
                                    continue;
                                }
                                Err(e) => {
                                    t.log(
                                        net2.now(),
                                        net2.host(),
                                        format!("accept failed on {port}: {e}; no longer accepting"),
                                    );
                                    return;
                                }
                            };
                            // Another worker may have taken the last place since: then
                            // this connection waits for one, unread, as in the listen queue.
                            let held = intake.hold().await;
                            let id = intake.next_id();
                            let conn = Driven {
                                net: net2.clone(),
                                id,
                                who: net2.host().to_string(),
                                upstreams: upstreams.clone(),
                                t: t.clone(),
                            };
                            let model = hop.borrow_mut().connection();
                            let mut cx = Cx::new(Rng::derive(seed, id).next_u64());
                            cx.set_peer(stream.peer());
                            net2.spawn(
                                async move {
                                    conn.drive(stream, port, model, cx).await;
                                    drop(held);
                                }
                                .boxed_local(),
                            );
                        }
                    }
                    .boxed_local(),
                );
            }
            std::future::pending::<()>().await;
            Ok(())
        }
        .boxed_local()
    })
}

/// What woke the connection's loop.
enum Step {
    Dial(io::Result<Stream>),
    Read(Side, io::Result<usize>),
    WriteFailed(Side, io::Error),
    Timer(u64),
    Done,
}

struct Driven {
    net: NetRef,
    id: u64,
    who: String,
    upstreams: Rc<Vec<String>>,
    t: Transcript,
}

impl Driven {
    fn log(&self, what: impl AsRef<str>) {
        self.t.log(
            self.net.now(),
            &self.who,
            format!("#{} {}", self.id, what.as_ref()),
        );
    }

    /// Where a dial goes: backend `backend` of the hop's upstreams for [`Action::Dial`]; for
    /// [`Action::DialNamed`], the first backend, or the named host when the hop has none.
    /// An error says why there is nowhere to go.
    fn destination(&self, dial: Action) -> Result<(String, u16), DialError> {
        let (backend, port) = match dial {
            Action::DialNamed { host, port } if self.upstreams.is_empty() => {
                return Ok((host, port));
            }
            Action::DialNamed { port, .. } => (0, port),
            Action::Dial { backend, port } => (backend, port),
            other => return Err(DialError::NotADial(other)),
        };
        match self.upstreams.get(backend) {
            Some(host) => Ok((host.clone(), port)),
            None => Err(DialError::NoBackend {
                backend,
                backends: self.upstreams.len(),
            }),
        }
    }

    /// Runs one proxied connection: feeds the model every event in order and carries out its
    /// actions. Reads, writes to both sides, the dial and the timers all progress in one
    /// loop, so neither direction ever waits for the other; a side is not read while the
    /// other side's outbox holds [`OUTBOX_LIMIT`] bytes or more, nor while its own holds that
    /// many bytes of the model's answers to it (backpressure; see [`SideIo::read_blocked`]).
    async fn drive(self, client: Stream, port: u16, mut model: Box<dyn Connection>, mut cx: Cx) {
        self.log(format!("accepted on port {port}"));
        let mut client = SideIo::new(Some(client));
        let mut upstream = SideIo::new(None);
        let mut dial: Option<LocalBoxFuture<'static, io::Result<Stream>>> = None;
        let mut dialed = false;
        let mut timers: BTreeMap<u64, Duration> = BTreeMap::new();
        // How much each side's next read may take; the bytes go to the thread's scratch
        // buffer, and the model hears them before the loop waits again.
        let mut cchunk = FIRST_CHUNK;
        let mut uchunk = FIRST_CHUNK;
        let mut event_owned: Option<(Side, EventKind)> =
            Some((Side::Client, EventKind::Accepted(port)));

        loop {
            if let Some((side, kind)) = event_owned.take() {
                cx.set_now(self.net.now());
                let event = match &kind {
                    EventKind::Accepted(p) => Some(Event::Accepted { port: *p }),
                    EventKind::Dialed => Some(Event::Dialed),
                    EventKind::DialFailed(r) => Some(Event::DialFailed { reason: r }),
                    EventKind::Data(n) => {
                        scratch::with_read(*n, |bytes| {
                            model.on_event(&mut cx, Event::Data { from: side, bytes });
                        });
                        None
                    }
                    EventKind::Fin => Some(Event::Fin { from: side }),
                    EventKind::Reset => Some(Event::Reset { from: side }),
                    EventKind::Timer(id) => Some(Event::Timer { id: *id }),
                };
                if let Some(event) = event {
                    model.on_event(&mut cx, event);
                }
                // What the model sends back to the side it just read is an answer to it.
                let answered =
                    matches!(kind, EventKind::Data(_) | EventKind::Fin | EventKind::Reset)
                        .then_some(side);
                for action in cx.take_actions() {
                    match action {
                        Action::Send { to, bytes } => {
                            let side = if to == Side::Client {
                                &mut client
                            } else {
                                &mut upstream
                            };
                            if side.can_send {
                                side.push(bytes, answered == Some(to));
                            } else if !bytes.is_empty() {
                                if side.discarded == 0 {
                                    self.log(format!(
                                        "discarding bytes for {}: it is closed",
                                        to.as_str()
                                    ));
                                }
                                side.discarded += bytes.len() as u64;
                            }
                        }
                        Action::Dial { .. } | Action::DialNamed { .. } => {
                            if dialed {
                                self.log("ignored a second dial: the upstream side exists");
                                continue;
                            }
                            dialed = true;
                            // Bytes for upstream wait in its outbox until the dial completes.
                            upstream.can_send = true;
                            let net = self.net.clone();
                            let (host, port) = match self.destination(action) {
                                Ok(to) => to,
                                Err(reason) => {
                                    self.log(format!("dial refused: {reason}"));
                                    let refused = io::Error::new(io::ErrorKind::NotFound, reason);
                                    dial = Some(async move { Err(refused) }.boxed_local());
                                    continue;
                                }
                            };
                            self.log(format!("dialing {host}:{port}"));
                            dial =
                                Some(async move { net.connect(&host, port).await }.boxed_local());
                        }
                        Action::Close { side: which, how } => {
                            if which == Side::Upstream && dial.is_some() && how == CloseHow::Reset {
                                dial = None;
                                upstream.can_send = false;
                                self.log(format!(
                                    "abandoned the dial, discarding {} queued bytes",
                                    upstream.drop_out()
                                ));
                                continue;
                            }
                            let side = if which == Side::Client {
                                &mut client
                            } else {
                                &mut upstream
                            };
                            self.close(side, which, how).await;
                        }
                        Action::SetTimer { id, at } => {
                            timers.insert(id, at);
                        }
                        Action::CancelTimer { id } => {
                            timers.remove(&id);
                        }
                        Action::Note(line) => self.log(line),
                    }
                }
            }

            if client.finished() && upstream.finished() && dial.is_none() && timers.is_empty() {
                break;
            }
            let next_timer = timers
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(id, at)| (*id, *at));
            let mut sleep = next_timer.map(|(_, at)| self.net.sleep_until(at));
            let step = std::future::poll_fn(|cx| {
                if let Some(f) = dial.as_mut() {
                    if let Poll::Ready(r) = f.as_mut().poll(cx) {
                        return Poll::Ready(Step::Dial(r));
                    }
                }
                if let Poll::Ready(Err(e)) = client.poll_flush(cx) {
                    return Poll::Ready(Step::WriteFailed(Side::Client, e));
                }
                if let Poll::Ready(Err(e)) = upstream.poll_flush(cx) {
                    return Poll::Ready(Step::WriteFailed(Side::Upstream, e));
                }
                if client.finished() && upstream.finished() && dial.is_none() && timers.is_empty() {
                    // The last FIN or RST just went out.
                    return Poll::Ready(Step::Done);
                }
                let blocked = client.read_blocked(&upstream);
                if let Poll::Ready(r) = poll_read_side(&mut client, blocked, cchunk, cx) {
                    return Poll::Ready(Step::Read(Side::Client, r));
                }
                let blocked = upstream.read_blocked(&client);
                if let Poll::Ready(r) = poll_read_side(&mut upstream, blocked, uchunk, cx) {
                    return Poll::Ready(Step::Read(Side::Upstream, r));
                }
                if let (Some(f), Some((id, _))) = (sleep.as_mut(), next_timer) {
                    if f.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Step::Timer(id));
                    }
                }
                Poll::Pending
            })
            .await;
            drop(sleep);
            event_owned = Some(match step {
                Step::Done => break,
                Step::Dial(Ok(stream)) => {
                    dial = None;
                    self.log("upstream connected");
                    upstream.stream = Some(stream);
                    upstream.can_read = true;
                    (Side::Upstream, EventKind::Dialed)
                }
                Step::Dial(Err(e)) => {
                    dial = None;
                    upstream.can_send = false;
                    upstream.fin = false;
                    let queued = upstream.drop_out();
                    if queued > 0 {
                        self.log(format!("dial failed: discarding {queued} queued bytes"));
                    }
                    (Side::Upstream, EventKind::DialFailed(e.to_string()))
                }
                Step::Read(which, r) => {
                    let (side, chunk) = if which == Side::Client {
                        (&mut client, &mut cchunk)
                    } else {
                        (&mut upstream, &mut uchunk)
                    };
                    grow(chunk, &r);
                    (which, self.on_read(side, which, r))
                }
                Step::WriteFailed(which, e) => {
                    let side = if which == Side::Client {
                        &mut client
                    } else {
                        &mut upstream
                    };
                    // A write fails when the peer has reset the connection: the model hears
                    // the reset, as it would from a read.
                    let unsent = side.drop_out();
                    self.log(format!(
                        "write to {} failed ({e}), {unsent} bytes unsent: {} reset",
                        which.as_str(),
                        which.as_str()
                    ));
                    side.can_read = false;
                    side.can_send = false;
                    side.fin = false;
                    side.stream = None;
                    (which, EventKind::Reset)
                }
                Step::Timer(id) => {
                    timers.remove(&id);
                    (Side::Client, EventKind::Timer(id))
                }
            });
        }
        for (side, which) in [(&client, Side::Client), (&upstream, Side::Upstream)] {
            if side.discarded > 0 {
                self.log(format!(
                    "discarded {} bytes for {} in all: it was closed",
                    side.discarded,
                    which.as_str()
                ));
            }
        }
        self.log(format!(
            "done: {} bytes from client, {} from upstream",
            client.bytes_in, upstream.bytes_in
        ));
    }

    fn on_read(&self, side: &mut SideIo, which: Side, r: io::Result<usize>) -> EventKind {
        match r {
            Ok(0) => {
                side.can_read = false;
                self.log(format!("{} sent FIN", which.as_str()));
                EventKind::Fin
            }
            Ok(n) => {
                side.bytes_in += n as u64;
                EventKind::Data(n)
            }
            Err(e) => {
                side.can_read = false;
                side.can_send = false;
                side.fin = false;
                let unsent = side.drop_out();
                side.stream = None;
                if unsent > 0 {
                    self.log(format!(
                        "{} reset ({e}), {unsent} bytes unsent",
                        which.as_str()
                    ));
                } else {
                    self.log(format!("{} reset ({e})", which.as_str()));
                }
                EventKind::Reset
            }
        }
    }

    /// Carries out a close the model asked for. A FIN follows what the side's outbox holds;
    /// an RST goes at once, after whatever of the outbox the socket takes without waiting
    /// (as a TCP reset discards unsent data).
    async fn close(&self, side: &mut SideIo, which: Side, how: CloseHow) {
        match how {
            CloseHow::Fin => {
                if side.can_send {
                    side.can_send = false;
                    side.fin = true;
                    self.log(format!("FIN to {}", which.as_str()));
                }
            }
            CloseHow::Reset => {
                if side.stream.is_some() && side.out_len > 0 {
                    std::future::poll_fn(|cx| {
                        let _ = side.poll_flush(cx);
                        Poll::Ready(())
                    })
                    .await;
                }
                side.can_read = false;
                side.can_send = false;
                side.fin = false;
                let unsent = side.drop_out();
                if let Some(s) = side.stream.take() {
                    s.reset();
                    if unsent > 0 {
                        self.log(format!("RST to {}, {unsent} bytes unsent", which.as_str()));
                    } else {
                        self.log(format!("RST to {}", which.as_str()));
                    }
                }
            }
        }
    }
}

/// An event whose bytes live in the driver's buffers.
enum EventKind {
    Accepted(u16),
    Dialed,
    DialFailed(String),
    Data(usize),
    Fin,
    Reset,
    Timer(u64),
}
