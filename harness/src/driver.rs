//! The driver: runs any sans-IO model over an engine's streams. One task per proxied
//! connection turns socket activity into [`Event`]s and carries out the model's [`Action`]s.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::LocalBoxFuture;
use gauntlet_proxies::rng::Rng;
use gauntlet_proxies::{Action, CloseHow, Connection, Cx, Event, HopEnv, ModelSpec, Side};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::engine::{NetRef, Software, Stream};
use crate::transcript::Transcript;

/// Bytes read from a socket at a time, at first: most connections carry small messages, and
/// thousands of them at once should not cost a large buffer each.
const FIRST_CHUNK: usize = 2 * 1024;
/// The most read at a time: a read that fills the buffer doubles it, up to this.
const MAX_CHUNK: usize = 64 * 1024;

/// A hop as a host's software: listens on `ports`, runs a fresh connection of `spec`'s hop
/// for each accepted connection, and dials among `upstreams` (backend 0, 1, …) when the model
/// asks. With no `upstreams`, a model's dial toward a destination it was told by name (a
/// CONNECT's authority) goes to that name, and any other dial fails.
pub fn hop_software(
    spec: Rc<ModelSpec>,
    env: HopEnv,
    upstreams: Vec<String>,
    ports: Vec<u16>,
    seed: u64,
    transcript: Transcript,
) -> Software {
    Rc::new(move |net: NetRef| {
        let (spec, env, upstreams, ports, t) = (
            spec.clone(),
            env.clone(),
            Rc::new(upstreams.clone()),
            ports.clone(),
            transcript.clone(),
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
            let counter = Rc::new(std::cell::Cell::new(0u64));
            let hop = Rc::new(RefCell::new(spec.hop(&env).map_err(anyhow::Error::msg)?));
            for port in ports {
                let mut listener = net.listen(port).await?;
                let (net2, hop, upstreams, t, counter) = (
                    net.clone(),
                    hop.clone(),
                    upstreams.clone(),
                    t.clone(),
                    counter.clone(),
                );
                net.spawn(
                    async move {
                        loop {
                            let stream = match listener.accept().await {
                                Ok(s) => s,
                                Err(e) => {
                                    t.log(
                                        net2.now(),
                                        net2.host(),
                                        format!("accept failed on {port}: {e}"),
                                    );
                                    return;
                                }
                            };
                            counter.set(counter.get() + 1);
                            let id = counter.get();
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
                            net2.spawn(conn.drive(stream, port, model, cx).boxed_local());
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

/// One side's socket and what is still open on it.
struct SideIo {
    stream: Option<Stream>,
    can_read: bool,
    can_write: bool,
    bytes_in: u64,
}

impl SideIo {
    fn new(stream: Option<Stream>) -> Self {
        let open = stream.is_some();
        Self {
            stream,
            can_read: open,
            can_write: open,
            bytes_in: 0,
        }
    }

    fn finished(&self) -> bool {
        !self.can_read && !self.can_write
    }
}

/// A read that filled `buf` suggests more is waiting: doubles it (keeping what it holds), up
/// to [`MAX_CHUNK`].
fn grow(buf: &mut Vec<u8>, read: &io::Result<usize>) {
    if matches!(read, Ok(n) if *n == buf.len()) && buf.len() < MAX_CHUNK {
        buf.resize(buf.len() * 2, 0);
    }
}

async fn read_from(side: &mut SideIo, buf: &mut [u8]) -> io::Result<usize> {
    match side.stream.as_mut() {
        Some(s) if side.can_read => s.read(buf).await,
        _ => std::future::pending().await,
    }
}

async fn wait_dial(
    dial: &mut Option<LocalBoxFuture<'static, io::Result<Stream>>>,
) -> io::Result<Stream> {
    match dial.as_mut() {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
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
    fn destination(&self, dial: Action) -> Result<(String, u16), String> {
        let (backend, port) = match dial {
            Action::DialNamed { host, port } if self.upstreams.is_empty() => {
                return Ok((host, port));
            }
            Action::DialNamed { port, .. } => (0, port),
            Action::Dial { backend, port } => (backend, port),
            other => return Err(format!("{other:?} is not a dial")),
        };
        match self.upstreams.get(backend) {
            Some(host) => Ok((host.clone(), port)),
            None => Err(format!(
                "no backend {backend}: the hop has {}",
                self.upstreams.len()
            )),
        }
    }

    async fn drive(self, client: Stream, port: u16, mut model: Box<dyn Connection>, mut cx: Cx) {
        self.log(format!("accepted on port {port}"));
        let mut client = SideIo::new(Some(client));
        let mut upstream = SideIo::new(None);
        let mut dial: Option<LocalBoxFuture<'static, io::Result<Stream>>> = None;
        let mut dialed = false;
        // Bytes and a pending FIN for upstream, held until the dial completes.
        let mut queued: Vec<u8> = Vec::new();
        let mut queued_fin = false;
        let mut timers: BTreeMap<u64, Duration> = BTreeMap::new();
        let mut cbuf = vec![0u8; FIRST_CHUNK];
        let mut ubuf = vec![0u8; FIRST_CHUNK];
        let mut event_owned: Option<(Side, EventKind)> =
            Some((Side::Client, EventKind::Accepted(port)));

        loop {
            if let Some((side, kind)) = event_owned.take() {
                cx.set_now(self.net.now());
                let event = match &kind {
                    EventKind::Accepted(p) => Event::Accepted { port: *p },
                    EventKind::Dialed => Event::Dialed,
                    EventKind::DialFailed(r) => Event::DialFailed { reason: r },
                    EventKind::Data(n) => {
                        let buf = if side == Side::Client {
                            &cbuf[..*n]
                        } else {
                            &ubuf[..*n]
                        };
                        Event::Data {
                            from: side,
                            bytes: buf,
                        }
                    }
                    EventKind::Fin => Event::Fin { from: side },
                    EventKind::Reset => Event::Reset { from: side },
                    EventKind::Timer(id) => Event::Timer { id: *id },
                };
                model.on_event(&mut cx, event);
                for action in cx.take_actions() {
                    match action {
                        Action::Send { to, bytes } => {
                            let side = if to == Side::Client {
                                &mut client
                            } else {
                                &mut upstream
                            };
                            if to == Side::Upstream && dial.is_some() && !queued_fin {
                                queued.extend_from_slice(&bytes);
                            } else if side.can_write {
                                if let Some(s) = side.stream.as_mut() {
                                    if let Err(e) = s.write_all(&bytes).await {
                                        side.can_write = false;
                                        self.log(format!(
                                            "write of {} bytes to {} failed: {e}",
                                            bytes.len(),
                                            to.as_str()
                                        ));
                                    }
                                }
                            } else {
                                self.log(format!(
                                    "discarded {} bytes for {}: it is closed",
                                    bytes.len(),
                                    to.as_str()
                                ));
                            }
                        }
                        Action::Dial { .. } | Action::DialNamed { .. } => {
                            if dialed {
                                self.log("ignored a second dial: the upstream side exists");
                                continue;
                            }
                            dialed = true;
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
                            if which == Side::Upstream && dial.is_some() {
                                match how {
                                    CloseHow::Fin => queued_fin = true,
                                    CloseHow::Reset => {
                                        dial = None;
                                        self.log(format!(
                                            "abandoned the dial, discarding {} queued bytes",
                                            queued.len()
                                        ));
                                        queued.clear();
                                    }
                                }
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

            if client.finished()
                && (upstream.finished() || !dialed)
                && dial.is_none()
                && timers.is_empty()
            {
                break;
            }
            let next_timer = timers
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(id, at)| (*id, *at));
            let sleep = match next_timer {
                Some((_, at)) => self.net.sleep_until(at),
                None => std::future::pending().boxed_local(),
            };
            tokio::select! {
                biased;
                r = wait_dial(&mut dial) => {
                    dial = None;
                    match r {
                        Ok(stream) => {
                            self.log("upstream connected");
                            upstream = SideIo::new(Some(stream));
                            if let Some(s) = upstream.stream.as_mut() {
                                if !queued.is_empty() {
                                    if let Err(e) = s.write_all(&queued).await {
                                        upstream.can_write = false;
                                        self.log(format!("write of {} queued bytes failed: {e}", queued.len()));
                                    }
                                    queued.clear();
                                }
                            }
                            if queued_fin {
                                self.close(&mut upstream, Side::Upstream, CloseHow::Fin).await;
                            }
                            event_owned = Some((Side::Upstream, EventKind::Dialed));
                        }
                        Err(e) => {
                            let reason = e.to_string();
                            if !queued.is_empty() {
                                self.log(format!("dial failed: discarding {} queued bytes", queued.len()));
                                queued.clear();
                            }
                            event_owned = Some((Side::Upstream, EventKind::DialFailed(reason)));
                        }
                    }
                }
                r = read_from(&mut client, &mut cbuf) => {
                    grow(&mut cbuf, &r);
                    event_owned = Some((Side::Client, self.on_read(&mut client, Side::Client, r)));
                }
                r = read_from(&mut upstream, &mut ubuf) => {
                    grow(&mut ubuf, &r);
                    event_owned = Some((Side::Upstream, self.on_read(&mut upstream, Side::Upstream, r)));
                }
                () = sleep => {
                    if let Some((id, _)) = next_timer {
                        timers.remove(&id);
                        event_owned = Some((Side::Client, EventKind::Timer(id)));
                    }
                }
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
                side.can_write = false;
                side.stream = None;
                self.log(format!("{} reset ({e})", which.as_str()));
                EventKind::Reset
            }
        }
    }

    async fn close(&self, side: &mut SideIo, which: Side, how: CloseHow) {
        match how {
            CloseHow::Fin => {
                if side.can_write {
                    side.can_write = false;
                    if let Some(s) = side.stream.as_mut() {
                        let _ = s.shutdown().await;
                    }
                    self.log(format!("FIN to {}", which.as_str()));
                }
            }
            CloseHow::Reset => {
                if let Some(s) = side.stream.take() {
                    s.reset();
                    self.log(format!("RST to {}", which.as_str()));
                }
                side.can_read = false;
                side.can_write = false;
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
