//! `buffering-proxy`: an HTTP intermediary that holds response bytes on their way to the
//! client, until it has enough of them, until a flush interval passes, or until the response
//! (or the connection) ends. Bytes from the client go upstream unchanged and at once.
//!
//! It reads HTTP/1.1 on `http-ports` (default `[80]`): requests, to know which responses answer
//! a HEAD or an upgrade, and responses, to find exactly where each ends (RFC 9112 §6.3:
//! `Content-Length`, chunked coding, or the close). How it holds a response's bytes is `hold`:
//!
//! - `size`: in buffers of `hold-bytes`; each full buffer is released, the rest waits for the
//!   end of the response (nginx `proxy_buffering on`);
//! - `whole-response`: everything until the response ends;
//! - `first-chunk`: the first chunk of each response body (what one read from the upstream
//!   returned) waits until more bytes arrive, then both go and the rest of the body passes.
//!
//! Whatever `hold` says, the end of the response releases what is held, and so does the
//! upstream's FIN; `flush-interval-ms` bounds how long any byte waits, and `max-held-bytes`
//! how many bytes wait (default [`DEFAULT_MAX_HELD_BYTES`], what nginx keeps in memory): holding
//! more releases what is held. `hold-head` says whether a response head waits with its body or
//! goes at once.
//!
//! Heads longer than [`MAX_HEAD_BYTES`] end the connection: 431 for a request, 502 for a
//! response (nginx: "upstream sent too big header"). At most [`MAX_PENDING_REQUESTS`] requests
//! are followed while they await answers.
//!
//! After a 101 answering an upgrade request, an `upgrade-aware` proxy relays both ways
//! unbuffered, as nginx does. One that is not reads what follows the 101 as that response's
//! body, delimited by the close (a response without a length, RFC 9112 §6.3 rule 8): the
//! WebSocket becomes a stream it holds like any other. Bytes that are not an HTTP response
//! are treated the same way.
//!
//! Ports outside `http-ports` carry bytes it cannot read (TLS on 443): `other-ports = "relay"`
//! passes them unbuffered, `"hold"` holds what the upstream sends as one stream that ends at
//! the close (a tunnel it does not understand).
//!
//! `preset` names a product's defaults; keys given beside it override the preset. Without a
//! preset the defaults are nginx's.
//!
//! | preset | hold | head | after a 101 | source |
//! |---|---|---|---|---|
//! | `nginx` | `size`, 4096 bytes | forwarded at once | relayed unbuffered | calibration.md: `proxy_buffering on` by default, upgraded connections bypass the buffers, `X-Accel-Buffering` per response; nginx docs: `proxy_buffers 8 4k\|8k`, one memory page (4 KiB on x86-64); release points unverified live |
//! | `antivirus-hold-until-close` | `whole-response` | held with the body | held until the close | calibration.md: an antivirus holds streaming responses until the connection closes |
//! | `antivirus-hold-first` | `first-chunk` | forwarded at once | first chunk held until the next | calibration.md: an antivirus holds a streaming response's first message until a second arrives |
//!
//! With `x-accel-buffering` (on for `nginx`), a response carrying `X-Accel-Buffering: no`
//! passes unbuffered, and the field is removed, as nginx hides `X-Accel-*` fields.

use std::collections::VecDeque;
use std::time::Duration;

use serde::Deserialize;

use crate::http::{
    self, Framing, Head, Item, Kind, MAX_HEAD_BYTES, MessageError, Messages, StartLine,
};
use crate::model::{Connection, Cx, Event, Hop, Side};
use crate::pass::relay;
use crate::registry::{HopError, Model, ParamError, each};
use crate::spec::HopEnv;

/// The timer id of the flush interval.
const FLUSH_TIMER: u64 = 1;

/// nginx's buffer size: `proxy_buffers 8 4k|8k`, one memory page, 4 KiB on x86-64.
pub const NGINX_BUFFER_BYTES: usize = 4096;

/// The most response bytes held toward the client, by default: what nginx holds of a response
/// in memory, `proxy_buffer_size` (4 KiB, the head) plus `proxy_buffers 8 4k` (nginx docs,
/// ngx_http_proxy_module; one memory page per buffer on x86-64). nginx spills the rest to a
/// temporary file (`proxy_max_temp_file_size`, 1024 MiB); a model has no disk, so it releases
/// what it holds when holding more would pass this, with a note.
pub const DEFAULT_MAX_HELD_BYTES: usize = NGINX_BUFFER_BYTES + 8 * NGINX_BUFFER_BYTES;

/// The most requests followed while they await their responses: nginx serves at most
/// `keepalive_requests` (1000 since nginx 1.19.10) requests on a connection. Beyond it requests
/// are no longer read (noted), and later responses are matched to none.
pub const MAX_PENDING_REQUESTS: usize = 1000;

/// A product's buffering defaults.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// nginx `proxy_buffering on`: 4096-byte buffers, upgrade-aware, honours
    /// `X-Accel-Buffering`.
    Nginx,
    /// An antivirus web shield that holds a whole response, head included, until it ends;
    /// not upgrade-aware, so a 101's stream ends only at the close.
    AntivirusHoldUntilClose,
    /// An antivirus web shield that holds the first chunk of a response body until more bytes
    /// arrive; not upgrade-aware.
    AntivirusHoldFirst,
}

impl Preset {
    fn params(self) -> Params {
        let nginx = Params {
            hold: Hold::Size(NGINX_BUFFER_BYTES),
            flush_interval: None,
            hold_head: false,
            upgrade_aware: true,
            x_accel_buffering: true,
            http_ports: vec![80],
            other_ports: OtherPorts::Relay,
            max_held_bytes: DEFAULT_MAX_HELD_BYTES,
        };
        match self {
            Preset::Nginx => nginx,
            Preset::AntivirusHoldUntilClose => Params {
                hold: Hold::WholeResponse,
                hold_head: true,
                upgrade_aware: false,
                x_accel_buffering: false,
                ..nginx
            },
            Preset::AntivirusHoldFirst => Params {
                hold: Hold::FirstChunk,
                upgrade_aware: false,
                x_accel_buffering: false,
                ..nginx
            },
        }
    }
}

/// How response bytes are held, as scenario files name it.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum HoldKind {
    Size,
    WholeResponse,
    FirstChunk,
}

/// How response bytes are held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// In buffers of this many bytes: each full buffer goes, the rest waits.
    Size(usize),
    /// Until the response ends.
    WholeResponse,
    /// The first chunk of each body, until more bytes arrive.
    FirstChunk,
}

impl Hold {
    /// The name scenario files use.
    pub fn as_str(self) -> &'static str {
        match self {
            Hold::Size(_) => "size",
            Hold::WholeResponse => "whole-response",
            Hold::FirstChunk => "first-chunk",
        }
    }
}

/// What happens on ports outside `http-ports`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum OtherPorts {
    /// Bytes pass unbuffered both ways.
    #[default]
    Relay,
    /// What the upstream sends is held as one stream that ends at the close.
    Hold,
}

impl OtherPorts {
    /// The name scenario files use.
    pub fn as_str(self) -> &'static str {
        match self {
            OtherPorts::Relay => "relay",
            OtherPorts::Hold => "hold",
        }
    }
}

/// Parameters of `buffering-proxy`, after the preset and the explicit keys are combined.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(try_from = "RawParams")]
pub struct Params {
    /// How response bytes are held.
    pub hold: Hold,
    /// The longest any byte is held, if bounded.
    pub flush_interval: Option<Duration>,
    /// Whether a response head waits with its body.
    pub hold_head: bool,
    /// Whether a 101 answering an upgrade request turns the connection into an unbuffered
    /// relay.
    pub upgrade_aware: bool,
    /// Whether `X-Accel-Buffering: no` on a response turns buffering off for it.
    pub x_accel_buffering: bool,
    /// Ports read as HTTP.
    pub http_ports: Vec<u16>,
    /// What happens on the other ports.
    pub other_ports: OtherPorts,
    /// The most response bytes held toward the client: holding more releases what is held.
    pub max_held_bytes: usize,
}

/// `buffering-proxy` as a scenario file spells it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawParams {
    /// A product's defaults (default `nginx`); the keys below override them.
    preset: Option<Preset>,
    /// `size`, `whole-response` or `first-chunk`.
    hold: Option<HoldKind>,
    /// Bytes per buffer, with `hold = "size"`. Default 4096.
    hold_bytes: Option<u64>,
    /// Milliseconds; default none.
    flush_interval_ms: Option<u64>,
    hold_head: Option<bool>,
    upgrade_aware: Option<bool>,
    x_accel_buffering: Option<bool>,
    /// Default `[80]`.
    http_ports: Option<Vec<u16>>,
    /// Default `relay`.
    other_ports: Option<OtherPorts>,
    /// Default 36864 (nginx's in-memory buffers).
    max_held_bytes: Option<u64>,
}

impl TryFrom<RawParams> for Params {
    type Error = ParamError;

    fn try_from(raw: RawParams) -> Result<Self, ParamError> {
        let mut p = raw.preset.unwrap_or(Preset::Nginx).params();
        let kind = raw.hold.unwrap_or(match p.hold {
            Hold::Size(_) => HoldKind::Size,
            Hold::WholeResponse => HoldKind::WholeResponse,
            Hold::FirstChunk => HoldKind::FirstChunk,
        });
        p.hold = match kind {
            HoldKind::Size => {
                let bytes = match (raw.hold_bytes, p.hold) {
                    (Some(0), _) => return Err(ParamError::Zero { key: "hold-bytes" }),
                    (Some(n), _) => usize::try_from(n).map_err(|_| ParamError::TooLarge {
                        key: "hold-bytes",
                        got: n,
                    })?,
                    (None, Hold::Size(n)) => n,
                    (None, _) => NGINX_BUFFER_BYTES,
                };
                Hold::Size(bytes)
            }
            HoldKind::WholeResponse => Hold::WholeResponse,
            HoldKind::FirstChunk => Hold::FirstChunk,
        };
        if raw.hold_bytes.is_some() && !matches!(p.hold, Hold::Size(_)) {
            return Err(ParamError::invalid(
                "hold-bytes",
                format!(
                    "`hold-bytes` applies only with `hold = \"size\"`; this hop holds `{}`",
                    p.hold.as_str()
                ),
            ));
        }
        match raw.flush_interval_ms {
            Some(0) => {
                return Err(ParamError::invalid(
                    "flush-interval-ms",
                    "`flush-interval-ms` must be at least 1 (leave it out for no interval)",
                ));
            }
            Some(ms) => p.flush_interval = Some(Duration::from_millis(ms)),
            None => {}
        }
        if let Some(b) = raw.hold_head {
            p.hold_head = b;
        }
        if let Some(b) = raw.upgrade_aware {
            p.upgrade_aware = b;
        }
        if let Some(b) = raw.x_accel_buffering {
            p.x_accel_buffering = b;
        }
        if let Some(ports) = raw.http_ports {
            p.http_ports = ports;
        }
        if let Some(o) = raw.other_ports {
            p.other_ports = o;
        }
        if let Some(n) = raw.max_held_bytes {
            if n == 0 {
                return Err(ParamError::Zero {
                    key: "max-held-bytes",
                });
            }
            p.max_held_bytes = usize::try_from(n).map_err(|_| ParamError::TooLarge {
                key: "max-held-bytes",
                got: n,
            })?;
        }
        if let Hold::Size(n) = p.hold {
            if n > p.max_held_bytes {
                return Err(ParamError::invalid(
                    "hold-bytes",
                    format!(
                        "`hold-bytes` ({n}) is more than `max-held-bytes` ({}): a buffer could never fill",
                        p.max_held_bytes
                    ),
                ));
            }
        }
        Ok(p)
    }
}

impl Model for Params {
    const NAME: &'static str = "buffering-proxy";
    const DESCRIPTION: &'static str = concat!(
        "an HTTP intermediary that holds response bytes toward the client until a buffer fills, a ",
        "flush interval passes, or the response ends (exactly: `Content-Length`, chunked coding, ",
        "or the close); client bytes go upstream at once",
    );
    const PARAMETERS: &'static str = concat!(
        "`preset` (`nginx`, the default; `antivirus-hold-until-close`; `antivirus-hold-first`), ",
        "`hold`, `hold-bytes`, `flush-interval-ms`, `hold-head`, `upgrade-aware`, ",
        "`x-accel-buffering`, `http-ports` (default [80]), `other-ports`, `max-held-bytes` ",
        "(default 36864)",
    );

    fn hop(&self, _: &HopEnv) -> Result<Box<dyn Hop>, HopError> {
        each(self, |p| BufferingProxy::new(p.clone()))
    }

    fn summary(&self) -> String {
        let hold = match self.hold {
            Hold::Size(n) => format!("size hold-bytes={n}"),
            other => other.as_str().to_string(),
        };
        let interval = self
            .flush_interval
            .map_or("none".to_string(), |d| format!("{}ms", d.as_millis()));
        format!(
            "buffering-proxy hold={hold} flush-interval={interval} hold-head={} upgrade-aware={} x-accel-buffering={} http-ports={:?} other-ports={} max-held-bytes={}",
            self.hold_head,
            self.upgrade_aware,
            self.x_accel_buffering,
            self.http_ports,
            self.other_ports.as_str(),
            self.max_held_bytes
        )
    }
}

impl Params {
    /// Why bytes are being held, for transcripts.
    fn until(&self) -> String {
        let mut why = match self.hold {
            Hold::Size(n) => format!("until {n} bytes are held or the response ends"),
            Hold::WholeResponse => "until the response ends".to_string(),
            Hold::FirstChunk => "the first chunk, until more bytes arrive".to_string(),
        };
        if let Some(d) = self.flush_interval {
            why.push_str(&format!(", at most {} ms", d.as_millis()));
        }
        why
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Waiting for `Accepted`.
    New,
    /// A port it does not read, relayed unbuffered.
    Relay,
    /// Reading responses and holding their bytes.
    Reading,
    /// Upgraded, upgrade-aware: relayed unbuffered.
    Tunnel,
    /// A side reset or the dial failed: nothing more is forwarded.
    Done,
}

/// The first-chunk state of the current response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum First {
    /// No body bytes yet.
    Waiting,
    /// The first chunk is held; it came with upstream read number `.0`.
    Holding(u64),
    /// The first chunk went; the rest passes.
    Passed,
}

/// What a request asked for, remembered until its response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Asked {
    /// The method was HEAD: the response has no body.
    head: bool,
    /// `Upgrade` with `Connection: upgrade`.
    upgrade: bool,
}

/// Follows the requests the client sends (which are forwarded unchanged as they come) to
/// know what each response answers.
#[derive(Debug)]
struct Requests {
    /// Whether requests are still being read.
    on: bool,
    messages: Messages,
    /// What the requests awaiting responses asked, oldest first (at most
    /// [`MAX_PENDING_REQUESTS`]).
    pending: VecDeque<Asked>,
}

/// A request head longer than [`MAX_HEAD_BYTES`]: how many bytes of it were read.
struct TooLong(usize);

impl Requests {
    fn new() -> Self {
        Self {
            on: false,
            messages: Messages::new(Kind::Request, MAX_HEAD_BYTES),
            pending: VecDeque::new(),
        }
    }

    fn feed(&mut self, cx: &mut Cx, bytes: &[u8]) -> Result<(), TooLong> {
        if !self.on {
            return Ok(());
        }
        self.messages.push(bytes);
        while self.on {
            match self.messages.read() {
                Ok(None) => return Ok(()),
                Ok(Some(Item::Body(_) | Item::End)) => {}
                Ok(Some(Item::Head { head, .. })) => {
                    if self.pending.len() >= MAX_PENDING_REQUESTS {
                        self.stop(
                            cx,
                            &format!(
                                "{MAX_PENDING_REQUESTS} requests await responses, as many as nginx serves on a connection (keepalive_requests): client bytes are no longer read"
                            ),
                        );
                        continue;
                    }
                    self.pending.push_back(Asked {
                        head: head
                            .method()
                            .is_some_and(|m| m.eq_ignore_ascii_case("HEAD")),
                        upgrade: head.has("upgrade") && head.connection_has("upgrade"),
                    });
                    match head.framing(None) {
                        Ok(framing) => self.messages.body(framing),
                        Err(reason) => {
                            self.stop(cx, &format!("client bytes are not HTTP ({reason})"))
                        }
                    }
                }
                Err(MessageError::HeadTooLong { held, .. }) => {
                    self.on = false;
                    self.messages.clear();
                    return Err(TooLong(held));
                }
                Err(e) => self.stop(cx, &format!("client bytes are not HTTP ({e})")),
            }
        }
        Ok(())
    }

    /// Stops reading requests, saying why.
    fn stop(&mut self, cx: &mut Cx, why: &str) {
        cx.note(format!(
            "{why}: relayed unread; later responses are matched to no request"
        ));
        self.on = false;
        self.messages.clear();
        self.pending.clear();
    }
}

/// A connection through `buffering-proxy`.
#[derive(Debug)]
pub struct BufferingProxy {
    params: Params,
    mode: Mode,
    /// The port is read as HTTP.
    http: bool,
    requests: Requests,
    /// Responses from the upstream.
    down: Messages,
    /// The current response is buffered (not turned off by `X-Accel-Buffering: no`).
    buffered: bool,
    first: First,
    /// Bytes held toward the client, oldest first.
    held: Vec<u8>,
    /// When the oldest held byte arrived.
    held_since: Option<Duration>,
    /// Upstream reads so far.
    reads: u64,
}

impl BufferingProxy {
    /// A fresh connection.
    pub fn new(params: Params) -> Self {
        Self {
            params,
            mode: Mode::New,
            http: false,
            requests: Requests::new(),
            down: Messages::new(Kind::Response, MAX_HEAD_BYTES),
            buffered: true,
            first: First::Waiting,
            held: Vec::new(),
            held_since: None,
            reads: 0,
        }
    }

    fn accepted(&mut self, cx: &mut Cx, port: u16) {
        relay(cx, Event::Accepted { port });
        self.http = self.params.http_ports.contains(&port);
        if self.http {
            self.mode = Mode::Reading;
            self.requests.on = true;
            return;
        }
        match self.params.other_ports {
            OtherPorts::Relay => {
                cx.note(format!("port {port} not read as HTTP: relaying unbuffered"));
                self.mode = Mode::Relay;
            }
            OtherPorts::Hold => {
                cx.note(format!(
                    "port {port} not read as HTTP: holding what the upstream sends as one stream that ends at the close"
                ));
                self.mode = Mode::Reading;
                self.down.body(Framing::UntilClose);
            }
        }
    }

    /// Bytes from upstream while reading responses.
    fn upstream_bytes(&mut self, cx: &mut Cx, bytes: &[u8]) {
        self.reads += 1;
        self.down.push(bytes);
        while self.mode == Mode::Reading {
            match self.down.read() {
                Ok(None) => return,
                Ok(Some(Item::Head { head, raw })) => self.response(cx, head, raw),
                Ok(Some(Item::Body(body))) => self.hold(cx, &body),
                Ok(Some(Item::End)) => self.end_of_response(cx),
                Err(MessageError::HeadTooLong { held, .. }) => {
                    self.down.clear();
                    return self.too_long(cx, "response", held);
                }
                Err(MessageError::NotHttp(reason)) => self.not_understood(
                    cx,
                    &format!("upstream sent bytes that are not an HTTP response ({reason})"),
                ),
                Err(MessageError::Chunked(reason)) => {
                    self.not_understood(cx, &format!("chunked body broken ({reason})"))
                }
            }
        }
        if self.mode == Mode::Tunnel {
            let rest = self.down.take();
            self.forward(cx, &rest);
        }
    }

    /// From now on, what the upstream sends is one stream that ends at the close.
    fn not_understood(&mut self, cx: &mut Cx, why: &str) {
        cx.note(format!(
            "{why}: holding the rest as one stream that ends at the close"
        ));
        self.down.body(Framing::UntilClose);
        self.requests.on = false;
    }

    /// A complete response head, `raw` its bytes as received.
    fn response(&mut self, cx: &mut Cx, head: Head, mut raw: Vec<u8>) {
        let status = head.status().unwrap_or_default();
        let asked = http::answer(&mut self.requests.pending, status).unwrap_or_default();
        let what = match &head.start {
            StartLine::Response { status, reason, .. } => format!("response {status} {reason}"),
            StartLine::Request { .. } => "response".to_string(),
        };
        self.first = First::Waiting;
        self.buffered = true;
        if status == 101 && asked.upgrade && self.params.upgrade_aware {
            cx.note(format!(
                "{what} answers an upgrade: relaying both ways unbuffered from now on (upgrade-aware)"
            ));
            self.forward(cx, &raw);
            self.mode = Mode::Tunnel;
            self.requests.on = false;
            return;
        }
        let framing = if status == 101 {
            cx.note(format!(
                "{what}: not upgrade-aware, so what follows is read as its body, ending at the close"
            ));
            Framing::UntilClose
        } else {
            match head.framing(asked.head.then_some("HEAD")) {
                Ok(framing) => framing,
                Err(reason) => {
                    cx.note(format!(
                        "{what} has a body of unknown length ({reason}): read until the close"
                    ));
                    Framing::UntilClose
                }
            }
        };
        if self.params.x_accel_buffering {
            if let Some(value) = head.get("x-accel-buffering") {
                self.buffered = !value.trim_ascii().eq_ignore_ascii_case(b"no");
                let mut hidden = head.clone();
                hidden.remove("x-accel-buffering");
                raw = hidden.to_bytes();
                if !self.buffered {
                    cx.note(format!(
                        "{what} carries X-Accel-Buffering: no: passed unbuffered, without the field"
                    ));
                }
            }
        }
        if framing == Framing::UntilClose {
            self.requests.on = false;
        }
        if self.params.hold_head && self.buffered {
            self.take_in(cx, &raw);
            self.check_size(cx);
        } else {
            self.forward(cx, &raw);
        }
        self.down.body(framing);
    }

    fn end_of_response(&mut self, cx: &mut Cx) {
        self.release(cx, "at the end of the response");
        self.first = First::Waiting;
        self.buffered = true;
    }

    /// Body bytes of the current response (or stream), held as the parameters say.
    fn hold(&mut self, cx: &mut Cx, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if !self.buffered {
            return self.forward(cx, bytes);
        }
        match self.params.hold {
            Hold::Size(_) => {
                self.take_in(cx, bytes);
                self.check_size(cx);
            }
            Hold::WholeResponse => {
                self.take_in(cx, bytes);
                self.check_size(cx);
            }
            Hold::FirstChunk => match self.first {
                First::Waiting => {
                    self.first = First::Holding(self.reads);
                    self.take_in(cx, bytes);
                    self.check_size(cx);
                }
                First::Holding(read) if read == self.reads => {
                    self.take_in(cx, bytes);
                    self.check_size(cx);
                }
                First::Holding(_) => {
                    self.held.extend_from_slice(bytes);
                    self.first = First::Passed;
                    self.release(
                        cx,
                        &format!(
                            "as {} more bytes arrived after the first chunk",
                            bytes.len()
                        ),
                    );
                }
                First::Passed => self.forward(cx, bytes),
            },
        }
    }

    /// Adds bytes to what is held, starting the flush interval if nothing was.
    fn take_in(&mut self, cx: &mut Cx, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if self.held.is_empty() {
            self.start_interval(cx);
        }
        self.held.extend_from_slice(bytes);
        cx.note(format!(
            "holding {} bytes toward the client ({} held; {})",
            bytes.len(),
            self.held.len(),
            self.params.until()
        ));
    }

    fn start_interval(&mut self, cx: &mut Cx) {
        self.held_since = Some(cx.now());
        if let Some(interval) = self.params.flush_interval {
            cx.set_timer(FLUSH_TIMER, cx.now() + interval);
        }
    }

    /// With `hold = "size"`, releases every full buffer (what is left is less than a buffer,
    /// so within `max-held-bytes`); otherwise releases everything once more than
    /// `max-held-bytes` is held.
    fn check_size(&mut self, cx: &mut Cx) {
        let Hold::Size(size) = self.params.hold else {
            let max = self.params.max_held_bytes;
            if self.held.len() > max {
                if let First::Holding(_) = self.first {
                    self.first = First::Passed;
                }
                self.release(
                    cx,
                    &format!("as it would hold more than max-held-bytes ({max})"),
                );
            }
            return;
        };
        let full = self.held.len() / size * size;
        if full == 0 {
            return;
        }
        let waited = self.waited(cx);
        let bytes: Vec<u8> = self.held.drain(..full).collect();
        cx.note(format!(
            "released {full} bytes toward the client: {} full {size}-byte buffer{} (held {waited} ms); {} bytes still held",
            full / size,
            if full / size == 1 { "" } else { "s" },
            self.held.len()
        ));
        cx.send(Side::Client, bytes);
        if self.held.is_empty() {
            self.stop_interval(cx);
        } else {
            // What is left arrived with this read: every older byte was in the full buffers.
            self.start_interval(cx);
        }
    }

    /// Sends everything held.
    fn release(&mut self, cx: &mut Cx, why: &str) {
        if self.held.is_empty() {
            return;
        }
        let waited = self.waited(cx);
        cx.note(format!(
            "released {} bytes toward the client {why} (held {waited} ms)",
            self.held.len()
        ));
        cx.send(Side::Client, std::mem::take(&mut self.held));
        self.stop_interval(cx);
    }

    fn stop_interval(&mut self, cx: &mut Cx) {
        self.held_since = None;
        if self.params.flush_interval.is_some() {
            cx.cancel_timer(FLUSH_TIMER);
        }
    }

    /// How long the oldest held byte has waited, in milliseconds.
    fn waited(&self, cx: &Cx) -> u128 {
        self.held_since
            .map_or(0, |since| cx.now().saturating_sub(since).as_millis())
    }

    /// Sends bytes that are not held, after anything that is.
    fn forward(&mut self, cx: &mut Cx, bytes: &[u8]) {
        if self.held.is_empty() {
            cx.send(Side::Client, bytes);
        } else {
            self.held.extend_from_slice(bytes);
            self.release(cx, "ahead of bytes that are not held");
        }
    }

    /// Answers a head longer than [`MAX_HEAD_BYTES`] and ends the connection: 431 (RFC 6585
    /// §5) for a request, 502 for a response (nginx answers 502 to an upstream that "sent too
    /// big header").
    fn too_long(&mut self, cx: &mut Cx, what: &str, read: usize) {
        self.discard(cx, &format!("{what} head too long"));
        let kind = if what == "request" {
            Kind::Request
        } else {
            Kind::Response
        };
        let (note, answer) = http::head_too_long(kind, MAX_HEAD_BYTES, read);
        cx.note(note);
        cx.send(Side::Client, answer);
        cx.fin(Side::Client);
        cx.fin(Side::Upstream);
        self.requests.on = false;
        self.mode = Mode::Done;
    }

    /// Drops what is held (a reset), saying so.
    fn discard(&mut self, cx: &mut Cx, why: &str) {
        let partial = self.down.take().len();
        let n = self.held.len() + partial;
        if n > 0 {
            cx.note(format!("{why}: discarded {n} bytes held toward the client"));
        }
        self.held.clear();
        self.stop_interval(cx);
    }

    fn reading(&mut self, cx: &mut Cx, event: Event<'_>) {
        match event {
            Event::Data {
                from: Side::Client,
                bytes,
            } => {
                cx.send(Side::Upstream, bytes);
                if let Err(TooLong(read)) = self.requests.feed(cx, bytes) {
                    self.too_long(cx, "request", read);
                }
            }
            Event::Data {
                from: Side::Upstream,
                bytes,
            } => self.upstream_bytes(cx, bytes),
            Event::Timer { id: FLUSH_TIMER } if self.params.flush_interval.is_some() => {
                if !self.held.is_empty() {
                    if let First::Holding(_) = self.first {
                        self.first = First::Passed;
                    }
                    let interval = self.params.flush_interval.unwrap_or_default().as_millis();
                    self.release(cx, &format!("at the flush interval of {interval} ms"));
                }
            }
            Event::Fin {
                from: Side::Upstream,
            } => {
                if self.down.buffered() > 0 {
                    let partial = self.down.take();
                    cx.note(format!(
                        "upstream closed within a response head: its {} bytes go as they are",
                        partial.len()
                    ));
                    if self.held.is_empty() {
                        self.start_interval(cx);
                    }
                    self.held.extend_from_slice(&partial);
                }
                self.release(cx, "as the upstream closed");
                cx.fin(Side::Client);
            }
            Event::Fin { from: Side::Client } => cx.fin(Side::Upstream),
            Event::Reset { from } => {
                self.discard(cx, &format!("{} reset", from.as_str()));
                cx.reset(from.other());
                self.mode = Mode::Done;
            }
            Event::DialFailed { reason } => {
                self.discard(cx, "the upstream is unreachable");
                if self.http {
                    cx.note(format!("upstream dial failed ({reason}): answering 502"));
                    cx.send(
                        Side::Client,
                        http::error_response(502, "Bad Gateway", "The upstream is unreachable."),
                    );
                    cx.fin(Side::Client);
                } else {
                    relay(cx, Event::DialFailed { reason });
                }
                self.mode = Mode::Done;
            }
            Event::Accepted { .. } | Event::Dialed | Event::Timer { .. } => {}
        }
    }
}

impl Connection for BufferingProxy {
    fn on_event(&mut self, cx: &mut Cx, event: Event<'_>) {
        match (self.mode, event) {
            (Mode::New, Event::Accepted { port }) => self.accepted(cx, port),
            (Mode::New, _) => {}
            (Mode::Relay, event) => relay(cx, event),
            (Mode::Tunnel, Event::Timer { .. }) => {}
            (Mode::Tunnel, event) => relay(cx, event),
            (Mode::Done, Event::Data { from, bytes }) => cx.note(format!(
                "discarded {} bytes from {} after the connection ended",
                bytes.len(),
                from.as_str()
            )),
            (Mode::Done, _) => {}
            (Mode::Reading, event) => self.reading(cx, event),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Action, CloseHow};
    use crate::testkit::{notes, sent};

    const UPGRADE: &[u8] = b"GET /push HTTP/1.1\r\nHost: server\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    const SWITCH: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    const GET: &[u8] = b"GET /events HTTP/1.1\r\nHost: server\r\n\r\n";
    /// An unmasked text frame "hi" as a server sends it.
    const FRAME: &[u8] = &[0x81, 0x02, b'h', b'i'];

    fn proxy(p: Params) -> (BufferingProxy, Cx) {
        let mut cx = Cx::new(1);
        let mut b = BufferingProxy::new(p);
        b.on_event(&mut cx, Event::Accepted { port: 80 });
        b.on_event(&mut cx, Event::Dialed);
        cx.take_actions();
        (b, cx)
    }

    fn preset(p: Preset) -> (BufferingProxy, Cx) {
        proxy(p.params())
    }

    fn feed(b: &mut BufferingProxy, cx: &mut Cx, from: Side, bytes: &[u8]) -> Vec<Action> {
        b.on_event(cx, Event::Data { from, bytes });
        cx.take_actions()
    }

    fn at(cx: &mut Cx, ms: u64) {
        cx.set_now(Duration::from_millis(ms));
    }

    fn chunk(data: &[u8]) -> Vec<u8> {
        let mut out = format!("{:x}\r\n", data.len()).into_bytes();
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
        out
    }

    const STREAM_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";

    #[test]
    fn client_bytes_go_upstream_at_once_and_unchanged() {
        for p in [
            Preset::Nginx,
            Preset::AntivirusHoldUntilClose,
            Preset::AntivirusHoldFirst,
        ] {
            let (mut b, mut cx) = preset(p);
            let actions = feed(&mut b, &mut cx, Side::Client, UPGRADE);
            assert_eq!(sent(&actions, Side::Upstream), UPGRADE, "{p:?}");
        }
    }

    #[test]
    fn size_holds_a_stream_and_releases_whole_buffers() {
        let mut p = Preset::Nginx.params();
        p.hold = Hold::Size(10);
        let (mut b, mut cx) = proxy(p);
        feed(&mut b, &mut cx, Side::Client, GET);
        let actions = feed(&mut b, &mut cx, Side::Upstream, STREAM_HEAD);
        assert_eq!(
            sent(&actions, Side::Client),
            STREAM_HEAD,
            "nginx forwards the head"
        );
        let first = chunk(b"abc");
        let actions = feed(&mut b, &mut cx, Side::Upstream, &first);
        assert!(sent(&actions, Side::Client).is_empty());
        assert!(
            notes(&actions)[0].starts_with("holding 8 bytes toward the client (8 held; until 10"),
            "{:?}",
            notes(&actions)
        );
        let second = chunk(b"defghijk");
        let actions = feed(&mut b, &mut cx, Side::Upstream, &second);
        let all = [first, second].concat();
        assert_eq!(sent(&actions, Side::Client), &all[..20], "two full buffers");
        assert!(
            notes(&actions)
                .iter()
                .any(|n| n.contains("2 full 10-byte buffers") && n.contains("1 bytes still held"))
        );
        let actions = feed(&mut b, &mut cx, Side::Upstream, b"0\r\n\r\n");
        assert_eq!(
            sent(&actions, Side::Client),
            [&all[20..], &b"0\r\n\r\n"[..]].concat(),
            "the end of the chunked body releases the rest"
        );
    }

    #[test]
    fn a_content_length_body_is_released_exactly_at_its_end() {
        let (mut b, mut cx) = preset(Preset::AntivirusHoldUntilClose);
        feed(&mut b, &mut cx, Side::Client, GET);
        let response = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789";
        let mut out = Vec::new();
        for (i, piece) in response.chunks(7).enumerate() {
            let actions = feed(&mut b, &mut cx, Side::Upstream, piece);
            out.extend(sent(&actions, Side::Client));
            if (i + 1) * 7 < response.len() {
                assert!(out.is_empty(), "held until the last byte, piece {i}");
            }
        }
        assert_eq!(out, response);
        let actions = feed(
            &mut b,
            &mut cx,
            Side::Upstream,
            b"HTTP/1.1 204 No Content\r\n\r\n",
        );
        assert_eq!(
            sent(&actions, Side::Client),
            b"HTTP/1.1 204 No Content\r\n\r\n",
            "a response without a body ends with its head"
        );
    }

    #[test]
    fn a_chunked_response_is_released_at_its_last_chunk_even_split_anywhere() {
        let mut response = STREAM_HEAD.to_vec();
        response.extend(chunk(b"Wiki"));
        response.extend(chunk(b"pedia"));
        response.extend_from_slice(b"0\r\nX-T: 1\r\n\r\n");
        for split in 1..response.len() {
            let (mut b, mut cx) = preset(Preset::AntivirusHoldUntilClose);
            feed(&mut b, &mut cx, Side::Client, GET);
            let early = sent(
                &feed(&mut b, &mut cx, Side::Upstream, &response[..split]),
                Side::Client,
            );
            assert!(early.is_empty(), "split at {split}");
            let rest = sent(
                &feed(&mut b, &mut cx, Side::Upstream, &response[split..]),
                Side::Client,
            );
            assert_eq!(rest, response, "split at {split}");
        }
    }

    #[test]
    fn the_flush_interval_releases_what_is_held_and_is_cancelled_by_a_release() {
        let mut p = Preset::Nginx.params();
        p.flush_interval = Some(Duration::from_millis(100));
        let (mut b, mut cx) = proxy(p);
        feed(&mut b, &mut cx, Side::Client, GET);
        feed(&mut b, &mut cx, Side::Upstream, STREAM_HEAD);
        at(&mut cx, 20);
        let actions = feed(&mut b, &mut cx, Side::Upstream, &chunk(b"one"));
        assert!(actions.contains(&Action::SetTimer {
            id: FLUSH_TIMER,
            at: Duration::from_millis(120)
        }));
        at(&mut cx, 50);
        let actions = feed(&mut b, &mut cx, Side::Upstream, &chunk(b"two"));
        assert!(
            !actions.iter().any(|a| matches!(a, Action::SetTimer { .. })),
            "the interval counts from the oldest held byte"
        );
        at(&mut cx, 120);
        b.on_event(&mut cx, Event::Timer { id: FLUSH_TIMER });
        let actions = cx.take_actions();
        assert_eq!(
            sent(&actions, Side::Client),
            [chunk(b"one"), chunk(b"two")].concat()
        );
        assert!(
            notes(&actions)
                .iter()
                .any(|n| n.contains("flush interval of 100 ms") && n.contains("held 100 ms")),
            "{:?}",
            notes(&actions)
        );
        at(&mut cx, 130);
        feed(&mut b, &mut cx, Side::Upstream, &chunk(b"three"));
        let actions = feed(&mut b, &mut cx, Side::Upstream, b"0\r\n\r\n");
        assert!(actions.contains(&Action::CancelTimer { id: FLUSH_TIMER }));
    }

    #[test]
    fn an_upgrade_aware_proxy_forwards_the_101_and_relays_the_tunnel_unbuffered() {
        let (mut b, mut cx) = preset(Preset::Nginx);
        feed(&mut b, &mut cx, Side::Client, UPGRADE);
        let actions = feed(&mut b, &mut cx, Side::Upstream, &[SWITCH, FRAME].concat());
        assert_eq!(sent(&actions, Side::Client), [SWITCH, FRAME].concat());
        assert!(notes(&actions)[0].contains("upgrade-aware"));
        let actions = feed(&mut b, &mut cx, Side::Upstream, FRAME);
        assert_eq!(sent(&actions, Side::Client), FRAME);
        let masked = [0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2];
        let actions = feed(&mut b, &mut cx, Side::Client, &masked);
        assert_eq!(sent(&actions, Side::Upstream), masked);
        assert!(
            notes(&actions).is_empty(),
            "frames are not read as requests"
        );
    }

    #[test]
    fn a_101_to_a_plain_request_is_not_a_tunnel() {
        let (mut b, mut cx) = preset(Preset::Nginx);
        feed(&mut b, &mut cx, Side::Client, GET);
        let actions = feed(&mut b, &mut cx, Side::Upstream, &[SWITCH, FRAME].concat());
        assert_eq!(sent(&actions, Side::Client), SWITCH);
        assert!(notes(&actions)[0].contains("not upgrade-aware"));
    }

    #[test]
    fn hold_until_close_holds_the_101_and_its_stream_until_the_upstream_closes() {
        let (mut b, mut cx) = preset(Preset::AntivirusHoldUntilClose);
        feed(&mut b, &mut cx, Side::Client, UPGRADE);
        let actions = feed(&mut b, &mut cx, Side::Upstream, SWITCH);
        assert!(sent(&actions, Side::Client).is_empty());
        assert!(
            notes(&actions)
                .iter()
                .any(|n| n.contains("ending at the close"))
        );
        at(&mut cx, 5000);
        let actions = feed(&mut b, &mut cx, Side::Upstream, FRAME);
        assert!(sent(&actions, Side::Client).is_empty());
        b.on_event(
            &mut cx,
            Event::Fin {
                from: Side::Upstream,
            },
        );
        let actions = cx.take_actions();
        assert_eq!(sent(&actions, Side::Client), [SWITCH, FRAME].concat());
        assert_eq!(
            actions.last(),
            Some(&Action::Close {
                side: Side::Client,
                how: CloseHow::Fin
            }),
            "the FIN follows the released bytes"
        );
        assert!(
            notes(&actions)
                .iter()
                .any(|n| n.contains("as the upstream closed (held 5000 ms)"))
        );
    }

    #[test]
    fn hold_first_holds_the_first_chunk_until_the_next_then_passes_the_rest() {
        let (mut b, mut cx) = preset(Preset::AntivirusHoldFirst);
        feed(&mut b, &mut cx, Side::Client, UPGRADE);
        let actions = feed(&mut b, &mut cx, Side::Upstream, SWITCH);
        assert_eq!(
            sent(&actions, Side::Client),
            SWITCH,
            "the head goes at once"
        );
        let actions = feed(&mut b, &mut cx, Side::Upstream, FRAME);
        assert!(sent(&actions, Side::Client).is_empty());
        assert!(
            notes(&actions)
                .iter()
                .any(|n| n.contains("holding 4 bytes toward the client (4 held; the first chunk"))
        );
        at(&mut cx, 250);
        let second = [0x81, 0x01, b'!'];
        let actions = feed(&mut b, &mut cx, Side::Upstream, &second);
        assert_eq!(sent(&actions, Side::Client), [FRAME, &second].concat());
        assert!(
            notes(&actions)
                .iter()
                .any(|n| n.starts_with("released 7 bytes") && n.contains("held 250 ms"))
        );
        let actions = feed(&mut b, &mut cx, Side::Upstream, FRAME);
        assert_eq!(sent(&actions, Side::Client), FRAME, "the rest passes");
        assert!(notes(&actions).is_empty());
    }

    #[test]
    fn hold_first_holds_a_response_split_in_one_read_only_until_its_end() {
        let (mut b, mut cx) = preset(Preset::AntivirusHoldFirst);
        feed(&mut b, &mut cx, Side::Client, GET);
        feed(&mut b, &mut cx, Side::Client, GET);
        let one = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
        let actions = feed(&mut b, &mut cx, Side::Upstream, one);
        assert_eq!(sent(&actions, Side::Client), one);
        let two = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nabc";
        let actions = feed(&mut b, &mut cx, Side::Upstream, two);
        assert_eq!(sent(&actions, Side::Client), &two[..two.len() - 3]);
        let actions = feed(&mut b, &mut cx, Side::Upstream, b"def");
        assert_eq!(sent(&actions, Side::Client), b"abcdef");
    }

    #[test]
    fn a_response_to_head_has_no_body_whatever_its_length_says() {
        let (mut b, mut cx) = preset(Preset::AntivirusHoldUntilClose);
        feed(
            &mut b,
            &mut cx,
            Side::Client,
            b"HEAD / HTTP/1.1\r\nHost: s\r\n\r\n",
        );
        let response = b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n";
        let actions = feed(&mut b, &mut cx, Side::Upstream, response);
        assert_eq!(sent(&actions, Side::Client), response);
    }

    #[test]
    fn x_accel_buffering_no_turns_nginx_buffering_off_for_that_response() {
        let (mut b, mut cx) = preset(Preset::Nginx);
        feed(&mut b, &mut cx, Side::Client, GET);
        let head =
            b"HTTP/1.1 200 OK\r\nX-Accel-Buffering: no\r\nTransfer-Encoding: chunked\r\n\r\n";
        let actions = feed(&mut b, &mut cx, Side::Upstream, head);
        assert_eq!(sent(&actions, Side::Client), STREAM_HEAD);
        let actions = feed(&mut b, &mut cx, Side::Upstream, &chunk(b"event"));
        assert_eq!(sent(&actions, Side::Client), chunk(b"event"));
    }

    #[test]
    fn an_upstream_reset_discards_what_is_held_and_says_so() {
        let (mut b, mut cx) = preset(Preset::AntivirusHoldUntilClose);
        feed(&mut b, &mut cx, Side::Client, GET);
        feed(&mut b, &mut cx, Side::Upstream, STREAM_HEAD);
        b.on_event(
            &mut cx,
            Event::Reset {
                from: Side::Upstream,
            },
        );
        let actions = cx.take_actions();
        assert!(sent(&actions, Side::Client).is_empty());
        assert!(actions.contains(&Action::Close {
            side: Side::Client,
            how: CloseHow::Reset
        }));
        assert!(
            notes(&actions)
                .iter()
                .any(|n| n.contains(&format!("discarded {} bytes", STREAM_HEAD.len())))
        );
        let actions = feed(&mut b, &mut cx, Side::Client, b"late");
        assert!(sent(&actions, Side::Upstream).is_empty());
    }

    #[test]
    fn other_ports_are_relayed_or_held_as_told() {
        let mut cx = Cx::new(1);
        let mut b = BufferingProxy::new(Preset::AntivirusHoldFirst.params());
        b.on_event(&mut cx, Event::Accepted { port: 443 });
        let actions = feed(&mut b, &mut cx, Side::Upstream, &[0x16, 3, 3]);
        assert_eq!(sent(&actions, Side::Client), [0x16, 3, 3]);

        let mut p = Preset::AntivirusHoldFirst.params();
        p.other_ports = OtherPorts::Hold;
        let mut cx = Cx::new(1);
        let mut b = BufferingProxy::new(p);
        b.on_event(&mut cx, Event::Accepted { port: 443 });
        cx.take_actions();
        let actions = feed(&mut b, &mut cx, Side::Upstream, &[0x16, 3, 3]);
        assert!(sent(&actions, Side::Client).is_empty());
        let actions = feed(&mut b, &mut cx, Side::Upstream, &[0x17]);
        assert_eq!(sent(&actions, Side::Client), [0x16, 3, 3, 0x17]);
    }

    #[test]
    fn bytes_that_are_not_a_response_are_held_until_the_close_not_lost() {
        let (mut b, mut cx) = preset(Preset::Nginx);
        feed(&mut b, &mut cx, Side::Client, GET);
        let actions = feed(&mut b, &mut cx, Side::Upstream, b"\x00garbage");
        assert!(sent(&actions, Side::Client).is_empty());
        assert!(notes(&actions)[0].contains("not an HTTP response"));
        b.on_event(
            &mut cx,
            Event::Fin {
                from: Side::Upstream,
            },
        );
        assert_eq!(sent(&cx.take_actions(), Side::Client), b"\x00garbage");
    }

    #[test]
    fn what_is_held_stays_within_max_held_bytes_and_every_byte_still_arrives() {
        for p in [
            Preset::AntivirusHoldUntilClose,
            Preset::AntivirusHoldFirst,
            Preset::Nginx,
        ] {
            let (mut b, mut cx) = preset(p);
            feed(&mut b, &mut cx, Side::Client, UPGRADE);
            // Not upgrade-aware (the antivirus presets): the stream after the 101 is one
            // response that ends at the close; nginx tunnels it.
            let mut out = sent(&feed(&mut b, &mut cx, Side::Upstream, SWITCH), Side::Client);
            let mut notes_seen = Vec::new();
            let mut sent_up = SWITCH.to_vec();
            for i in 0..256u32 {
                // One read of 100 000 bytes (a first chunk larger than the bound), then
                // reads of a page.
                let bytes = vec![i as u8; if i == 0 { 100_000 } else { 4096 }];
                let actions = feed(&mut b, &mut cx, Side::Upstream, &bytes);
                sent_up.extend_from_slice(&bytes);
                out.extend(sent(&actions, Side::Client));
                notes_seen.extend(notes(&actions));
                assert!(
                    b.held.len() <= DEFAULT_MAX_HELD_BYTES,
                    "{p:?}: {} bytes held",
                    b.held.len()
                );
            }
            b.on_event(
                &mut cx,
                Event::Fin {
                    from: Side::Upstream,
                },
            );
            out.extend(sent(&cx.take_actions(), Side::Client));
            assert_eq!(out, sent_up, "{p:?}");
            if p != Preset::Nginx {
                assert!(
                    notes_seen.iter().any(|n| n.ends_with(
                        "as it would hold more than max-held-bytes (36864) (held 0 ms)"
                    )),
                    "{p:?}: {notes_seen:?}"
                );
            }
        }
    }

    #[test]
    fn requests_followed_are_bounded() {
        let (mut b, mut cx) = preset(Preset::Nginx);
        let many = GET.repeat(MAX_PENDING_REQUESTS + 10);
        let actions = feed(&mut b, &mut cx, Side::Client, &many);
        assert_eq!(
            sent(&actions, Side::Upstream),
            many,
            "client bytes all go upstream"
        );
        assert_eq!(b.requests.pending.len(), 0, "no longer followed");
        assert!(!b.requests.on);
        assert!(
            notes(&actions)[0].starts_with(
                "1000 requests await responses, as many as nginx serves on a connection (keepalive_requests)"
            ),
            "{:?}",
            notes(&actions)
        );
    }

    #[test]
    fn a_failed_dial_on_an_http_port_gets_a_502() {
        let (mut b, mut cx) = preset(Preset::Nginx);
        b.on_event(&mut cx, Event::DialFailed { reason: "refused" });
        let actions = cx.take_actions();
        assert!(sent(&actions, Side::Client).starts_with(b"HTTP/1.1 502 Bad Gateway\r\n"));
    }

    #[derive(Debug, Deserialize)]
    struct Doc {
        hop: Params,
    }

    fn parse(src: &str) -> Result<Params, String> {
        toml::from_str::<Doc>(src)
            .map(|d| d.hop)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn presets_give_defaults_and_keys_override_them() {
        assert_eq!(parse("[hop]\n").unwrap(), Preset::Nginx.params());
        let p = parse("[hop]\npreset = \"antivirus-hold-until-close\"\n").unwrap();
        assert_eq!(p.hold, Hold::WholeResponse);
        assert!(p.hold_head && !p.upgrade_aware);
        let p =
            parse("[hop]\nhold-bytes = 8192\nflush-interval-ms = 250\nother-ports = \"hold\"\n")
                .unwrap();
        assert_eq!(p.hold, Hold::Size(8192));
        assert_eq!(p.flush_interval, Some(Duration::from_millis(250)));
        assert_eq!(p.other_ports, OtherPorts::Hold);
        let p = parse("[hop]\npreset = \"antivirus-hold-first\"\nhold = \"size\"\n").unwrap();
        assert_eq!(p.hold, Hold::Size(NGINX_BUFFER_BYTES));
        assert!(!p.upgrade_aware);
    }

    #[test]
    fn bad_parameters_are_named_in_the_error() {
        let err = parse("[hop]\nhold-bytes = 0\n").unwrap_err();
        assert!(err.contains("`hold-bytes` must be at least 1"), "{err}");
        let err = parse("[hop]\npreset = \"antivirus-hold-first\"\nhold-bytes = 10\n").unwrap_err();
        assert!(
            err.contains(
                "`hold-bytes` applies only with `hold = \"size\"`; this hop holds `first-chunk`"
            ),
            "{err}"
        );
        let err = parse("[hop]\nflush-interval-ms = 0\n").unwrap_err();
        assert!(
            err.contains("`flush-interval-ms` must be at least 1"),
            "{err}"
        );
        let err = parse("[hop]\npreset = \"squid\"\n").unwrap_err();
        assert!(err.contains("unknown variant `squid`"), "{err}");
        let err = parse("[hop]\nhold = \"forever\"\n").unwrap_err();
        assert!(err.contains("unknown variant `forever`"), "{err}");
        let err = parse("[hop]\nhold-byte = 1\n").unwrap_err();
        assert!(err.contains("unknown field `hold-byte`"), "{err}");
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::model::{Action, CloseHow};

    /// One response: 0 with a length, 1 chunked, 2 without a body, 3 until the close (last).
    fn response(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut out = match kind {
            0 => format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes(),
            1 => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(),
            2 => return b"HTTP/1.1 304 Not Modified\r\n\r\n".to_vec(),
            _ => b"HTTP/1.1 200 OK\r\n\r\n".to_vec(),
        };
        if kind == 1 {
            for piece in body.chunks(7) {
                out.extend(format!("{:x}\r\n", piece.len()).into_bytes());
                out.extend_from_slice(piece);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
        } else {
            out.extend_from_slice(body);
        }
        out
    }

    fn params(which: u8, interval: bool) -> Params {
        let mut p = match which {
            0 => Preset::Nginx.params(),
            1 => Preset::AntivirusHoldUntilClose.params(),
            2 => Preset::AntivirusHoldFirst.params(),
            _ => {
                let mut p = Preset::Nginx.params();
                p.hold = Hold::Size(16);
                p
            }
        };
        if interval {
            p.flush_interval = Some(Duration::from_millis(10));
        }
        p
    }

    proptest! {
        /// Whatever the preset, the responses and the segmentation, and wherever the flush
        /// timer fires, the client gets exactly the upstream's bytes, in order, then the FIN.
        #[test]
        fn every_byte_reaches_the_client_in_order(
            which in 0u8..4,
            interval in any::<bool>(),
            bodies in proptest::collection::vec((0u8..3, proptest::collection::vec(any::<u8>(), 0..40)), 0..5),
            last in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
            cuts in proptest::collection::vec((1usize..50, any::<bool>()), 0..40),
        ) {
            let mut data = Vec::new();
            for (kind, body) in &bodies {
                data.extend(response(*kind, body));
            }
            if let Some(body) = &last {
                data.extend(response(3, body));
            }
            let mut cx = Cx::new(1);
            let mut b = BufferingProxy::new(params(which, interval));
            b.on_event(&mut cx, Event::Accepted { port: 80 });
            let mut rest = &data[..];
            let mut now = 0;
            for (cut, tick) in cuts.iter().copied().chain(std::iter::repeat((50, false))) {
                if rest.is_empty() { break; }
                let (segment, tail) = rest.split_at(cut.min(rest.len()));
                b.on_event(&mut cx, Event::Data { from: Side::Upstream, bytes: segment });
                rest = tail;
                if tick && interval {
                    now += 10;
                    cx.set_now(Duration::from_millis(now));
                    b.on_event(&mut cx, Event::Timer { id: FLUSH_TIMER });
                }
            }
            b.on_event(&mut cx, Event::Fin { from: Side::Upstream });
            let actions = cx.take_actions();
            let fin = actions.iter().position(|a| *a == Action::Close { side: Side::Client, how: CloseHow::Fin });
            prop_assert_eq!(fin, Some(actions.len() - 1));
            let relayed: Vec<u8> = actions
                .into_iter()
                .filter_map(|a| match a {
                    Action::Send { to: Side::Client, bytes } => Some(bytes),
                    _ => None,
                })
                .flatten()
                .collect();
            prop_assert_eq!(relayed, data);
        }
    }
}
