//! `caching-proxy`: an interception HTTP cache that is not upgrade-aware, after the proxies
//! Huang, Chen, Barth, Rescorla and Jackson found poisoned ("Talking to Yourself for Fun and
//! Profit", W2SP 2011; RFC 6455 §10.3).
//!
//! On `http-ports` (default `[80]`) it reads HTTP/1.1 both ways; other ports are relayed
//! opaquely, which is why wss:// is out of its reach.
//!
//! **Caching.** A GET whose `Host` and target (or absolute-form target) name a stored, fresh
//! entry is answered from the cache with `Age` and `X-Cache: HIT` added, and is not forwarded.
//! Pipelined requests are read one at a time, as Squid reads them by default
//! (`pipeline_prefetch 0`; [`PIPELINE_DEPTH`]), so a hit never overtakes an earlier answer; the
//! client's bytes wait meanwhile, up to [`MAX_HELD_BYTES`], beyond which the connection is
//! closed. Otherwise the request is forwarded to the destination the client dialed,
//! and a response is stored under the request's Host and target when it answers a GET, is a
//! 200, has a `Content-Length` of at most 1 MiB, and carries no `Cache-Control: no-store`,
//! `private` or `no-cache`. An entry is fresh for `s-maxage` or `max-age` seconds, or for the
//! whole run without either. The cache belongs to the hop: every connection through it shares
//! it, up to `max-entries` (default 1024), the oldest evicted first. Every store, hit, miss,
//! refusal and eviction is a transcript note.
//!
//! **After a 101.** The proxy forwards the `Upgrade` request and the 101 like any other
//! exchange (client bytes that arrive while a request asking to upgrade awaits its answer
//! wait for it). It does not know the connection has stopped carrying HTTP: from the 101 on
//! it relays every byte both ways as it comes, unchanged, and keeps reading both streams for
//! HTTP messages, leniently: it skips bytes until a method token (`GET `, `POST `, …) starts
//! a complete request head in the client's bytes, or `HTTP/1.` starts a response head in the
//! upstream's. A request found that way is taken as the next request on the connection; the
//! next response found answers it and is stored under *that request's* `Host` and target,
//! by the same rules as above. That is the attack: a client that sends an unmasked frame
//! whose payload spells `GET /script.js HTTP/1.1` with `Host: victim` makes the proxy store
//! whatever the server it talks to answers as `http://victim/script.js`. RFC 6455 §5.3
//! masking XORs every payload byte with a fresh random key, so the bytes the proxy sees spell
//! no request and nothing is stored. A response found with no request to answer is relayed
//! and not stored (noted). The lenient scan (skipping a frame header, say) makes the attack
//! as easy as it can be, so a clean masked run is a strong result.
//!
//! Bytes that are not HTTP where a head is expected *before* any 101 get a 400 page (502 when
//! the server sent them), then FIN both ways; a head longer than [`MAX_HEAD_BYTES`] gets 431
//! (502 from the server). A client that half-closes gets its answers, then a FIN; the upstream
//! gets one as soon as everything the client sent is forwarded.
//!
//! Memory: heads up to [`MAX_HEAD_BYTES`], held client bytes up to [`MAX_HELD_BYTES`], stored
//! bodies up to [`MAX_OBJECT_BYTES`] each and `max-entries` of them, requests read after a 101
//! up to [`MAX_SCANNED_REQUESTS`]; the lenient scan keeps at most a head's worth of bytes.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use serde::Deserialize;

use crate::http::{
    self, ExchangeError, Framing, Head, HeadReader, Item, Kind, MAX_HEAD_BYTES, MessageError,
    Messages, Progress, StartLine,
};
use crate::http_proxy::{Ends, MAX_HELD_BYTES, PIPELINE_DEPTH};
use crate::model::{Connection, Cx, Event, Hop, Side};
use crate::pass::relay;
use crate::registry::{HopError, Model, ParamError};
use crate::spec::HopEnv;

/// The most entries a cache may be given.
pub const MAX_ENTRIES: usize = 65_536;
/// The largest body stored, in bytes.
pub const MAX_OBJECT_BYTES: u64 = 1 << 20;
/// The most requests read from the client's bytes after a 101 that wait for a response to
/// store: a bound on the model's own bookkeeping (the attack needs one), so that bytes that
/// spell request after request cannot grow it. Requests found beyond it are noted and not
/// tracked.
pub const MAX_SCANNED_REQUESTS: usize = 64;
/// Method tokens the lenient scan resynchronises on.
const METHODS: &[&[u8]] = &[
    b"GET ",
    b"HEAD ",
    b"POST ",
    b"PUT ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"TRACE ",
    b"CONNECT ",
];
/// What starts a status line.
const STATUS_PREFIX: &[u8] = b"HTTP/1.";

/// Parameters of `caching-proxy`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(try_from = "RawParams")]
pub struct Params {
    /// Ports read as HTTP; others are relayed opaquely.
    pub http_ports: Vec<u16>,
    /// The most entries the cache holds; the oldest is evicted to make room.
    pub max_entries: usize,
    /// What of the target the key holds.
    pub cache_key: CacheKey,
    /// Store responses whatever their `Cache-Control` says, for the whole run: nginx's
    /// `proxy_ignore_headers Cache-Control Expires` with a `proxy_cache_valid 200` time, a
    /// configuration that caches what the origin forbids (ngx_http_proxy_module).
    pub ignore_cache_control: bool,
}

/// What of a request's target the cache key holds (`cache-key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CacheKey {
    /// The whole target, query included: nginx's default `proxy_cache_key`,
    /// `$scheme$proxy_host$request_uri` (ngx_http_proxy_module), and RFC 9111 §2's primary
    /// cache key, the target URI.
    #[default]
    Target,
    /// The path alone, the query dropped: a `proxy_cache_key` written with `$uri` instead of
    /// `$request_uri` (`$uri` has no arguments), a known misconfiguration: every request to
    /// one path, whatever its query, gets the first one's answer.
    Path,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawParams {
    http_ports: Option<Vec<u16>>,
    max_entries: Option<usize>,
    cache_key: Option<CacheKey>,
    ignore_cache_control: Option<bool>,
}

impl TryFrom<RawParams> for Params {
    type Error = ParamError;

    fn try_from(raw: RawParams) -> Result<Self, ParamError> {
        let max_entries = raw.max_entries.unwrap_or(1024);
        if !(1..=MAX_ENTRIES).contains(&max_entries) {
            return Err(ParamError::OutOfRange {
                key: "max-entries",
                max: MAX_ENTRIES,
                got: max_entries,
            });
        }
        Ok(Params {
            http_ports: raw.http_ports.unwrap_or_else(|| vec![80]),
            max_entries,
            cache_key: raw.cache_key.unwrap_or_default(),
            ignore_cache_control: raw.ignore_cache_control.unwrap_or(false),
        })
    }
}

impl Model for Params {
    const NAME: &'static str = "caching-proxy";
    const DESCRIPTION: &'static str = concat!(
        "an interception HTTP cache that is not upgrade-aware (Huang et al. 2011): caches 200 ",
        "responses to GETs by Host and target and serves hits from the cache; after a 101 it ",
        "relays every byte but keeps reading both streams leniently for HTTP messages, and stores ",
        "the response to a request it finds in the client's bytes under that request's Host and ",
        "target",
    );
    const PARAMETERS: &'static str = concat!(
        "`http-ports` (default [80]; others relayed opaquely), `max-entries` (1 to 65536, default ",
        "1024; the oldest is evicted), `cache-key`: `target` (default: the query included, as ",
        "nginx's `$request_uri`) or `path` (the query dropped: a key written with `$uri`, a ",
        "misconfiguration), `ignore-cache-control` (default false; true stores what ",
        "`Cache-Control` forbids, for the whole run, as nginx's `proxy_ignore_headers`)",
    );
    const SHARED_STATE: Option<&'static str> = Some("its cache");

    fn hop(&self, _: &HopEnv) -> Result<Box<dyn Hop>, HopError> {
        Ok(Box::new(CacheHop::new(self)))
    }

    fn summary(&self) -> String {
        let key = match self.cache_key {
            CacheKey::Target => "",
            CacheKey::Path => " cache-key=path",
        };
        let ignore = if self.ignore_cache_control {
            " ignore-cache-control"
        } else {
            ""
        };
        format!(
            "caching-proxy http-ports={:?} max-entries={}{key}{ignore}",
            self.http_ports, self.max_entries
        )
    }
}

/// What a cache entry is stored under: the request's host and target.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// The `Host` field (or the absolute-form target's authority), lowercased.
    pub host: String,
    /// The request target in origin form.
    pub target: String,
}

impl Key {
    /// The key of a request, if it names a host.
    pub fn of(head: &Head) -> Option<Key> {
        let StartLine::Request { target, .. } = &head.start else {
            return None;
        };
        if let Some(rest) = target.strip_prefix("http://") {
            let (host, path) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, "/"),
            };
            return (!host.is_empty()).then(|| Key {
                host: host.to_ascii_lowercase(),
                target: path.to_string(),
            });
        }
        let host = String::from_utf8_lossy(head.get("host")?)
            .trim()
            .to_ascii_lowercase();
        (!host.is_empty()).then(|| Key {
            host,
            target: target.clone(),
        })
    }

    /// `http://host/target`, for transcripts.
    pub fn url(&self) -> String {
        format!("http://{}{}", self.host, self.target)
    }
}

/// A stored response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its head, as received.
    pub head: Head,
    /// Its body.
    pub body: Vec<u8>,
    /// When it was stored (simulated time).
    pub stored: Duration,
    /// How long it stays fresh, in seconds (`None`: for the whole run).
    pub max_age: Option<u64>,
}

impl Entry {
    /// Whether it is stale at `now`.
    pub fn stale(&self, now: Duration) -> bool {
        self.max_age
            .is_some_and(|s| now >= self.stored.saturating_add(Duration::from_secs(s)))
    }
}

/// The cache a hop's connections share.
#[derive(Debug)]
pub struct Cache {
    max_entries: usize,
    entries: BTreeMap<Key, Entry>,
    /// Keys, oldest stored first.
    order: VecDeque<Key>,
}

impl Cache {
    /// An empty cache of at most `max_entries` entries.
    pub fn new(max_entries: usize) -> Self {
        Self {
            max_entries: max_entries.max(1),
            entries: BTreeMap::new(),
            order: VecDeque::new(),
        }
    }

    /// The entry under `key`, if any, fresh or not.
    pub fn get(&self, key: &Key) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// How many entries it holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The fresh entry under `key`; a stale one is removed, with a note.
    fn lookup(&mut self, cx: &mut Cx, key: &Key) -> Option<Entry> {
        let entry = self.entries.get(key)?;
        if entry.stale(cx.now()) {
            cx.note(format!("cache entry for {} is stale: removed", key.url()));
            self.remove(key);
            return None;
        }
        Some(entry.clone())
    }

    fn remove(&mut self, key: &Key) {
        self.entries.remove(key);
        self.order.retain(|k| k != key);
    }

    /// Stores `entry` under `key`, evicting the oldest entries to make room.
    fn store(&mut self, cx: &mut Cx, key: Key, entry: Entry, how: &str) {
        self.remove(&key);
        while self.entries.len() >= self.max_entries {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.entries.remove(&oldest);
            cx.note(format!(
                "cache full ({} entries): evicted {}",
                self.max_entries,
                oldest.url()
            ));
        }
        let freshness = match entry.max_age {
            Some(s) => format!("fresh for {s} s"),
            None => "no expiry given: fresh for the run".to_string(),
        };
        cx.note(format!(
            "cached {}{how}: {}, {}-byte body, {freshness} ({} of {} entries)",
            key.url(),
            status_text(&entry.head),
            entry.body.len(),
            self.entries.len() + 1,
            self.max_entries
        ));
        self.order.push_back(key.clone());
        self.entries.insert(key, entry);
    }
}

/// `caching-proxy` on one host: the cache its connections share.
#[derive(Debug)]
pub struct CacheHop {
    params: Rc<Params>,
    cache: Rc<RefCell<Cache>>,
}

impl CacheHop {
    /// A hop with an empty cache.
    pub fn new(params: &Params) -> Self {
        Self {
            params: Rc::new(params.clone()),
            cache: Rc::new(RefCell::new(Cache::new(params.max_entries))),
        }
    }

    /// The shared cache, for inspection.
    pub fn cache(&self) -> Rc<RefCell<Cache>> {
        self.cache.clone()
    }
}

impl Hop for CacheHop {
    fn connection(&mut self) -> Box<dyn Connection> {
        Box::new(CachingProxy::new(self.params.clone(), self.cache.clone()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Waiting for `Accepted`.
    New,
    /// A port it does not read.
    Opaque,
    /// Reading HTTP.
    Http,
    /// After a 101: relaying everything, scanning for HTTP messages.
    Upgraded,
    /// Given up: nothing more is forwarded.
    Closed,
}

/// A request that awaits its response.
#[derive(Debug, Clone)]
struct Pending {
    /// `GET /x HTTP/1.1`.
    line: String,
    method: String,
    key: Option<Key>,
    /// It asked to upgrade.
    upgrade: bool,
    /// It was read from the bytes after a 101.
    smuggled: bool,
}

impl Pending {
    fn of(head: &Head, smuggled: bool, cache_key: CacheKey) -> Self {
        let key = Key::of(head).map(|mut k| {
            if cache_key == CacheKey::Path {
                k.target.truncate(k.target.find('?').unwrap_or(k.target.len()));
            }
            k
        });
        Pending {
            line: http::first_line(&head.to_bytes()),
            method: head.method().unwrap_or_default().to_string(),
            key,
            upgrade: head.has("upgrade") && head.connection_has("upgrade"),
            smuggled,
        }
    }

    fn is_get(&self) -> bool {
        self.method.eq_ignore_ascii_case("GET")
    }
}

/// A response being received that will be stored when its body is complete.
#[derive(Debug)]
struct Storing {
    key: Key,
    head: Head,
    body: Vec<u8>,
    left: u64,
    max_age: Option<u64>,
    smuggled: bool,
}

/// A connection through `caching-proxy`.
#[derive(Debug)]
pub struct CachingProxy {
    params: Rc<Params>,
    cache: Rc<RefCell<Cache>>,
    mode: Mode,
    port: u16,
    dialed: bool,
    /// Requests from the client (HTTP mode).
    up: Messages,
    /// Responses from the upstream (HTTP mode).
    down: Messages,
    /// Requests awaiting answers, oldest first.
    pending: VecDeque<Pending>,
    /// A request asking to upgrade awaits its answer: client bytes wait.
    awaiting_upgrade: bool,
    /// The response to store once complete.
    storing: Option<Storing>,
    /// After a 101: client bytes not yet scanned past.
    scan_up: Vec<u8>,
    /// After a 101: upstream bytes not yet scanned past.
    scan_down: Vec<u8>,
    /// After a 101: client bytes skipped since the last request found.
    skipped_up: usize,
    /// Read the heads at the start of `scan_up` and `scan_down`.
    scan_up_reader: HeadReader,
    scan_down_reader: HeadReader,
    /// Which ends have closed.
    ends: Ends,
    /// The header timer runs: no request head has come yet ([`http::HEADER_TIMEOUT`]).
    awaiting_head: bool,
}

impl CachingProxy {
    /// A fresh connection that shares `cache`.
    pub fn new(params: Rc<Params>, cache: Rc<RefCell<Cache>>) -> Self {
        Self {
            params,
            cache,
            mode: Mode::New,
            port: 0,
            dialed: false,
            up: Messages::new(Kind::Request, MAX_HEAD_BYTES),
            down: Messages::new(Kind::Response, MAX_HEAD_BYTES),
            pending: VecDeque::new(),
            awaiting_upgrade: false,
            storing: None,
            scan_up: Vec::new(),
            scan_down: Vec::new(),
            skipped_up: 0,
            scan_up_reader: HeadReader::new(Kind::Request),
            scan_down_reader: HeadReader::new(Kind::Response),
            ends: Ends::default(),
            awaiting_head: false,
        }
    }

    fn stop_header_timer(&mut self, cx: &mut Cx) {
        if std::mem::take(&mut self.awaiting_head) {
            cx.cancel_timer(http::HEADER_TIMER);
        }
    }

    /// Client bytes held unread, requests awaiting answers, and bytes kept for the lenient
    /// scan after a 101 (tests only).
    #[cfg(test)]
    fn held(&self) -> (usize, usize, usize) {
        (
            self.up.buffered(),
            self.pending.len(),
            self.scan_up.len() + self.scan_down.len(),
        )
    }

    /// Whether the client's next bytes wait, unread: for the answer to an upgrade request
    /// (they may not be HTTP), or for the answer to the last request (pipelined requests are
    /// read one at a time, as Squid does by default).
    fn waiting(&self) -> bool {
        self.up.between() && (self.awaiting_upgrade || self.pending.len() >= PIPELINE_DEPTH)
    }

    /// Forwards what it can of the client's bytes (HTTP mode).
    fn pump_up(&mut self, cx: &mut Cx) {
        while self.mode == Mode::Http {
            if self.waiting() {
                return self.check_held(cx);
            }
            match self.up.read() {
                Ok(None) => return,
                Ok(Some(Item::Head { head, .. })) => {
                    self.stop_header_timer(cx);
                    if let Err(reason) = self.request(cx, head) {
                        return self.garbage(cx, Side::Client, &reason);
                    }
                }
                Ok(Some(Item::Body(bytes))) => cx.send(Side::Upstream, bytes),
                Ok(Some(Item::End)) => {}
                Err(MessageError::HeadTooLong { .. }) => return self.too_long(cx, Side::Client),
                Err(e) => return self.garbage(cx, Side::Client, &e),
            }
        }
    }

    /// Forwards what it can of the upstream's bytes (HTTP mode).
    fn pump_down(&mut self, cx: &mut Cx) {
        while self.mode == Mode::Http {
            match self.down.read() {
                Ok(None) => return,
                Ok(Some(Item::Head { head, .. })) => {
                    if let Err(reason) = self.response(cx, head) {
                        return self.garbage(cx, Side::Upstream, &reason);
                    }
                }
                Ok(Some(Item::Body(bytes))) => {
                    self.keep(cx, &bytes);
                    cx.send(Side::Client, bytes);
                }
                Ok(Some(Item::End)) => {}
                Err(MessageError::HeadTooLong { .. }) => return self.too_long(cx, Side::Upstream),
                Err(e) => return self.garbage(cx, Side::Upstream, &e),
            }
        }
    }

    /// Answers a request from the cache, or forwards it.
    fn request(&mut self, cx: &mut Cx, head: Head) -> Result<(), ExchangeError> {
        let pending = Pending::of(&head, false, self.params.cache_key);
        let framing = head.framing(None)?;
        self.up.body(framing.clone());
        let lookup = match (&pending.key, pending.is_get()) {
            (Some(key), true) => Some(key.clone()),
            _ => None,
        };
        let mut what = String::new();
        if let Some(key) = lookup {
            let hit = self.cache.borrow_mut().lookup(cx, &key);
            match hit {
                Some(entry) if self.pending.is_empty() && framing == Framing::None => {
                    self.serve(cx, &pending, &key, entry, &head);
                    return Ok(());
                }
                Some(_) => {
                    what = format!(
                        ": cache hit for {}, but {} earlier requests are unanswered: forwarded to keep answers in order",
                        key.url(),
                        self.pending.len()
                    );
                }
                None => what = format!(": cache miss for {}, forwarded", key.url()),
            }
        }
        if what.is_empty() {
            what = ": forwarded".to_string();
        }
        cx.note(format!("request {}{what}", pending.line));
        if !self.dialed {
            cx.dial(self.port);
            self.dialed = true;
        }
        cx.send(Side::Upstream, head.to_bytes());
        self.awaiting_upgrade = pending.upgrade;
        self.pending.push_back(pending);
        Ok(())
    }

    /// Sends a stored response to the client.
    fn serve(&mut self, cx: &mut Cx, request: &Pending, key: &Key, entry: Entry, head: &Head) {
        let age = cx.now().saturating_sub(entry.stored).as_secs();
        let mut response = entry.head.clone();
        response.strip_hop_by_hop(&[]);
        response.remove("age");
        response.push("Age", &age.to_string());
        response.push("X-Cache", "HIT");
        let close = head.connection_has("close");
        if close {
            response.push("Connection", "close");
        }
        cx.note(format!(
            "request {}: cache hit for {} (stored at {:.1} ms, age {age} s): answered from the cache with {}, {}-byte body",
            request.line,
            key.url(),
            entry.stored.as_secs_f64() * 1000.0,
            status_text(&entry.head),
            entry.body.len()
        ));
        cx.send(Side::Client, response.to_bytes());
        cx.send(Side::Client, entry.body);
        if close {
            cx.note("the request asked to close: closing");
            self.close_both(cx);
        }
    }

    /// Forwards a response head; switches to the upgraded mode on a 101.
    fn response(&mut self, cx: &mut Cx, head: Head) -> Result<(), ExchangeError> {
        let status = head.status().unwrap_or_default();
        let interim = http::interim(status);
        let request =
            http::answer(&mut self.pending, status).ok_or(ExchangeError::Unanswered(status))?;
        cx.note(format!("response {}: forwarded", status_text(&head)));
        if status == 101 {
            cx.send(Side::Client, head.to_bytes());
            cx.note(
                "101 forwarded; not upgrade-aware: relaying what follows both ways and reading it for HTTP messages",
            );
            self.mode = Mode::Upgraded;
            self.awaiting_upgrade = false;
            let down = self.down.take();
            cx.send(Side::Client, down.clone());
            self.scan(cx, Side::Upstream, &down);
            let up = self.up.take();
            cx.send(Side::Upstream, up.clone());
            self.scan(cx, Side::Client, &up);
            self.ends.tunnel(cx);
            return Ok(());
        }
        if !interim {
            self.awaiting_upgrade = false;
        }
        let framing = head.framing(Some(&request.method))?;
        if !interim {
            self.begin_store(cx, &request, &head, &framing);
        }
        cx.send(Side::Client, head.to_bytes());
        self.down.body(framing);
        self.keep(cx, &[]);
        Ok(())
    }

    /// Decides whether the response `head` to `request` will be stored.
    fn begin_store(&mut self, cx: &mut Cx, request: &Pending, head: &Head, framing: &Framing) {
        let Some(key) = request.key.clone().filter(|_| request.is_get()) else {
            return;
        };
        let how = if request.smuggled {
            " (a request read from the client's bytes after the 101)"
        } else {
            ""
        };
        match storable(head, framing, self.params.ignore_cache_control) {
            Ok((left, max_age)) => {
                self.storing = Some(Storing {
                    key,
                    head: head.clone(),
                    body: Vec::new(),
                    left,
                    max_age,
                    smuggled: request.smuggled,
                });
            }
            Err(reason) => cx.note(format!(
                "response to GET {}{how} not cached: {reason}",
                key.url()
            )),
        }
    }

    /// Adds body bytes to the response being stored; stores it when complete.
    fn keep(&mut self, cx: &mut Cx, bytes: &[u8]) {
        let Some(s) = self.storing.as_mut() else {
            return;
        };
        let take = (s.left.min(bytes.len() as u64)) as usize;
        s.body.extend_from_slice(&bytes[..take]);
        s.left -= take as u64;
        if s.left > 0 {
            return;
        }
        let Some(s) = self.storing.take() else {
            return;
        };
        let how = if s.smuggled {
            ", answering a request read from the client's bytes after the 101"
        } else {
            ""
        };
        let entry = Entry {
            head: s.head,
            body: s.body,
            stored: cx.now(),
            max_age: s.max_age,
        };
        self.cache.borrow_mut().store(cx, s.key, entry, how);
    }

    /// After a 101: reads bytes already relayed for HTTP messages.
    fn scan(&mut self, cx: &mut Cx, from: Side, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        match from {
            Side::Client => {
                self.scan_up.extend_from_slice(bytes);
                self.scan_requests(cx);
            }
            Side::Upstream => {
                self.scan_down.extend_from_slice(bytes);
                self.scan_responses(cx);
            }
        }
    }

    fn scan_requests(&mut self, cx: &mut Cx) {
        loop {
            let Some(at) = find_any(&self.scan_up, METHODS) else {
                let keep = METHODS.iter().map(|m| m.len()).max().unwrap_or(1) - 1;
                let drop = self.scan_up.len().saturating_sub(keep);
                self.scan_up.drain(..drop);
                self.skipped_up += drop;
                self.scan_up_reader.reset();
                return;
            };
            self.scan_up.drain(..at);
            self.skipped_up += at;
            self.scan_up_reader.advance(at);
            match self.scan_up_reader.read(&self.scan_up, MAX_HEAD_BYTES) {
                Progress::Partial => return,
                Progress::Invalid(_) | Progress::TooLong => {
                    self.scan_up.drain(..1);
                    self.skipped_up += 1;
                    self.scan_up_reader.advance(1);
                }
                Progress::Complete(head, len) => {
                    let skipped = self.skipped_up;
                    self.scan_up.drain(..len);
                    self.scan_up_reader.reset();
                    self.skipped_up = 0;
                    let pending = Pending::of(&head, true, self.params.cache_key);
                    let host = head
                        .get("host")
                        .map(|h| format!(", Host: {}", String::from_utf8_lossy(h)))
                        .unwrap_or_default();
                    if self.pending.len() >= MAX_SCANNED_REQUESTS {
                        cx.note(format!(
                            "read a request in the client's bytes after the 101, after skipping {skipped} bytes that are not HTTP: {}{host}; {} requests already await answers: not tracked",
                            pending.line,
                            self.pending.len()
                        ));
                        continue;
                    }
                    cx.note(format!(
                        "read a request in the client's bytes after the 101, after skipping {skipped} bytes that are not HTTP: {}{host}",
                        pending.line
                    ));
                    self.pending.push_back(pending);
                }
            }
        }
    }

    fn scan_responses(&mut self, cx: &mut Cx) {
        loop {
            if self.storing.is_some() {
                let take = self
                    .storing
                    .as_ref()
                    .map_or(0, |s| s.left.min(self.scan_down.len() as u64) as usize);
                let bytes: Vec<u8> = self.scan_down.drain(..take).collect();
                self.scan_down_reader.reset();
                self.keep(cx, &bytes);
                if self.storing.is_some() {
                    return;
                }
            }
            let Some(at) = find_any(&self.scan_down, &[STATUS_PREFIX]) else {
                let drop = self.scan_down.len().saturating_sub(STATUS_PREFIX.len() - 1);
                self.scan_down.drain(..drop);
                self.scan_down_reader.reset();
                return;
            };
            self.scan_down.drain(..at);
            self.scan_down_reader.advance(at);
            match self.scan_down_reader.read(&self.scan_down, MAX_HEAD_BYTES) {
                Progress::Partial => return,
                Progress::Invalid(_) | Progress::TooLong => {
                    self.scan_down.drain(..1);
                    self.scan_down_reader.advance(1);
                }
                Progress::Complete(head, len) => {
                    self.scan_down.drain(..len);
                    self.scan_down_reader.reset();
                    self.scanned_response(cx, head);
                }
            }
        }
    }

    /// A response found in the upstream's bytes after a 101.
    fn scanned_response(&mut self, cx: &mut Cx, head: Head) {
        let status = head.status().unwrap_or_default();
        let Some(request) = http::answer(&mut self.pending, status) else {
            cx.note(format!(
                "read a response in the upstream's bytes after the 101 ({}) but no request in the client's bytes for it to answer: relayed, not cached",
                status_text(&head)
            ));
            return;
        };
        cx.note(format!(
            "read a response in the upstream's bytes after the 101 ({}), answering {}",
            status_text(&head),
            request.line
        ));
        if http::interim(status) {
            return;
        }
        match head.framing(Some(&request.method)) {
            Ok(framing) => {
                self.begin_store(cx, &request, &head, &framing);
                self.keep(cx, &[]);
            }
            Err(reason) => cx.note(format!("not cached: {reason}")),
        }
    }

    /// The upstream closed before the response being stored was complete.
    fn abandon_store(&mut self, cx: &mut Cx) {
        if let Some(s) = self.storing.take() {
            cx.note(format!(
                "upstream closed {} bytes before the end of the response to GET {}: not cached",
                s.left,
                s.key.url()
            ));
        }
    }

    fn close_both(&mut self, cx: &mut Cx) {
        self.ends.close_both(cx, self.dialed);
        self.give_up(cx);
    }

    /// While the client's bytes wait unread, beyond [`MAX_HELD_BYTES`] it is sending without
    /// reading the answers: the connection is closed.
    fn check_held(&mut self, cx: &mut Cx) {
        let held = self.up.buffered();
        if held <= MAX_HELD_BYTES {
            return;
        }
        let what = if self.awaiting_upgrade {
            "an upgrade request awaits its answer"
        } else {
            "its request awaits an answer"
        };
        cx.note(format!(
            "the client sent {held} bytes while {what}, more than the {MAX_HELD_BYTES} a proxy holds unread: discarded, closing"
        ));
        self.up.clear();
        self.close_both(cx);
    }

    /// Answers a head longer than [`MAX_HEAD_BYTES`] and gives up ([`http::head_too_long`]).
    fn too_long(&mut self, cx: &mut Cx, from: Side) {
        let (kind, held) = match from {
            Side::Client => (Kind::Request, self.up.take()),
            Side::Upstream => (Kind::Response, self.down.take()),
        };
        let (note, answer) = http::head_too_long(kind, MAX_HEAD_BYTES, held.len());
        cx.note(note);
        cx.send(Side::Client, answer);
        self.close_both(cx);
    }

    /// After the client's FIN: once every byte it sent is forwarded (or discarded as an
    /// incomplete message), the upstream gets a FIN; once the last response has been relayed,
    /// so does the client, and the connection is done.
    fn settle(&mut self, cx: &mut Cx) {
        if self.mode != Mode::Http {
            return;
        }
        let held = self.waiting();
        let answered = self.pending.is_empty() && self.down.idle();
        if self
            .ends
            .settle(cx, &mut self.up, held, answered, self.dialed)
        {
            self.give_up(cx);
        }
    }

    /// Forgets what it holds, with a note, and forwards nothing more.
    fn give_up(&mut self, cx: &mut Cx) {
        self.stop_header_timer(cx);
        for (side, buf) in [
            (Side::Client, &mut self.up),
            (Side::Upstream, &mut self.down),
        ] {
            if buf.buffered() > 0 {
                cx.note(format!(
                    "discarded {} bytes from {} not yet forwarded",
                    buf.buffered(),
                    side.as_str()
                ));
                buf.clear();
            }
        }
        self.storing = None;
        self.mode = Mode::Closed;
    }

    /// Answers bytes that are not HTTP where a head is expected, and gives up.
    fn garbage(&mut self, cx: &mut Cx, from: Side, reason: &dyn std::fmt::Display) {
        let held = match from {
            Side::Client => self.up.take(),
            Side::Upstream => self.down.take(),
        };
        let (status, text) = match from {
            Side::Client => (400, "Bad Request"),
            Side::Upstream => (502, "Bad Gateway"),
        };
        cx.note(format!(
            "{} sent {} bytes that are not HTTP ({reason}): discarded, answering {status} and closing",
            from.as_str(),
            held.len()
        ));
        cx.send(
            Side::Client,
            http::error_response(status, text, "The proxy could not read the message."),
        );
        self.close_both(cx);
    }

    /// The upstream closed while reading HTTP.
    fn on_upstream_fin(&mut self, cx: &mut Cx) {
        if self.down.buffered() > 0 {
            cx.note(format!(
                "upstream closed with {} bytes not forwarded (an incomplete message): discarded",
                self.down.buffered()
            ));
            self.down.clear();
        }
        self.abandon_store(cx);
        cx.fin(Side::Client);
        self.ends.upstream_eof = true;
        self.settle(cx);
    }
}

impl Connection for CachingProxy {
    fn on_event(&mut self, cx: &mut Cx, event: Event<'_>) {
        match (self.mode, event) {
            (Mode::New, Event::Accepted { port }) => {
                if self.params.http_ports.contains(&port) {
                    self.port = port;
                    self.mode = Mode::Http;
                    cx.set_timer(
                        http::HEADER_TIMER,
                        cx.now().saturating_add(http::HEADER_TIMEOUT),
                    );
                    self.awaiting_head = true;
                } else {
                    cx.note(format!("port {port} not read as HTTP: relaying opaquely"));
                    self.mode = Mode::Opaque;
                    relay(cx, Event::Accepted { port });
                }
            }
            (Mode::New, _) => {}
            (Mode::Opaque, event) => relay(cx, event),
            (Mode::Closed, Event::Data { from, bytes }) => cx.note(format!(
                "discarded {} bytes from {} after closing the connection",
                bytes.len(),
                from.as_str()
            )),
            (Mode::Closed, _) => {}
            (Mode::Upgraded, Event::Data { from, bytes }) => {
                cx.send(from.other(), bytes);
                self.scan(cx, from, bytes);
            }
            (Mode::Upgraded, Event::Timer { .. }) => {}
            (
                Mode::Upgraded,
                Event::Fin {
                    from: Side::Upstream,
                },
            ) => {
                self.abandon_store(cx);
                cx.fin(Side::Client);
            }
            (Mode::Upgraded, event) => relay(cx, event),
            (Mode::Http, Event::Data { from, bytes }) => {
                match from {
                    Side::Client => self.up.push(bytes),
                    Side::Upstream => self.down.push(bytes),
                }
                self.pump_down(cx);
                self.pump_up(cx);
                self.settle(cx);
            }
            (Mode::Http, Event::Fin { from: Side::Client }) => {
                self.ends.client_fin = true;
                self.settle(cx);
            }
            (
                Mode::Http,
                Event::Fin {
                    from: Side::Upstream,
                },
            ) => self.on_upstream_fin(cx),
            (Mode::Http, Event::Reset { from }) => {
                let other = from.other();
                if other == Side::Client || self.dialed {
                    cx.reset(other);
                }
            }
            (Mode::Http, Event::DialFailed { reason }) => {
                cx.note(format!("upstream dial failed ({reason}): answering 502"));
                cx.send(
                    Side::Client,
                    http::error_response(502, "Bad Gateway", "The upstream is unreachable."),
                );
                cx.fin(Side::Client);
                self.dialed = false;
                self.give_up(cx);
            }
            (
                Mode::Http,
                Event::Timer {
                    id: http::HEADER_TIMER,
                },
            ) if self.awaiting_head => {
                self.awaiting_head = false;
                let (note, answer) =
                    http::header_timed_out(http::HEADER_TIMEOUT, self.up.buffered());
                cx.note(note);
                cx.send(Side::Client, answer);
                cx.fin(Side::Client);
                self.give_up(cx);
            }
            (Mode::Http, Event::Dialed | Event::Timer { .. } | Event::Accepted { .. }) => {}
        }
    }
}

/// Why a response to a GET is not stored; its text ends the transcript's note (`not cached:
/// ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum NotStored {
    /// A status other than 200.
    #[error("status {0}")]
    Status(u16),
    /// A Cache-Control directive that forbids storing (`no-store`, `private`, `no-cache`).
    #[error("Cache-Control: {0}")]
    CacheControl(String),
    /// A body longer than [`MAX_OBJECT_BYTES`], of this length.
    #[error("{0}-byte body, more than {MAX_OBJECT_BYTES}")]
    TooLarge(u64),
    /// A body whose length the head does not give.
    #[error("no Content-Length")]
    NoLength,
}

/// Whether a response to a GET may be stored: its body length and for how many seconds it is
/// fresh, or why not.
fn storable(
    head: &Head,
    framing: &Framing,
    ignore_cache_control: bool,
) -> Result<(u64, Option<u64>), NotStored> {
    let status = head.status().unwrap_or_default();
    if status != 200 {
        return Err(NotStored::Status(status));
    }
    let directives: Vec<String> = head
        .fields
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("cache-control"))
        .flat_map(|(_, v)| {
            String::from_utf8_lossy(v)
                .split(',')
                .map(|d| d.trim().to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
        .filter(|_| !ignore_cache_control)
        .collect();
    if let Some(d) = directives
        .iter()
        .find(|d| ["no-store", "private", "no-cache"].contains(&d.as_str()))
    {
        return Err(NotStored::CacheControl(d.clone()));
    }
    let len = match framing {
        Framing::Length(n) if *n <= MAX_OBJECT_BYTES => *n,
        Framing::Length(n) => return Err(NotStored::TooLarge(*n)),
        Framing::None if head.has("content-length") => 0,
        _ => return Err(NotStored::NoLength),
    };
    let seconds = |name: &str| {
        directives.iter().find_map(|d| {
            d.strip_prefix(name)
                .and_then(|v| v.strip_prefix('='))
                .and_then(|v| v.trim_matches('"').parse::<u64>().ok())
        })
    };
    Ok((len, seconds("s-maxage").or_else(|| seconds("max-age"))))
}

/// The first position in `buf` where one of `needles` starts.
fn find_any(buf: &[u8], needles: &[&[u8]]) -> Option<usize> {
    (0..buf.len()).find(|&i| needles.iter().any(|n| buf[i..].starts_with(n)))
}

/// `200 OK`.
fn status_text(head: &Head) -> String {
    match &head.start {
        StartLine::Response { status, reason, .. } => format!("{status} {reason}"),
        StartLine::Request { method, target, .. } => format!("{method} {target}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Parsed;
    use crate::model::{Action, CloseHow};
    use crate::testkit::{notes, sent};

    const UPGRADE: &[u8] = b"GET /attacker HTTP/1.1\r\nHost: server\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    const SWITCH: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    const SMUGGLED: &[u8] = b"GET /script.js HTTP/1.1\r\nHost: victim\r\n\r\n";
    const EVIL: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nCache-Control: max-age=31536000\r\n\r\nevil!";
    const ORIGIN: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nCache-Control: max-age=60\r\n\r\ngenuine";
    const FETCH: &[u8] = b"GET /script.js HTTP/1.1\r\nHost: victim\r\nConnection: close\r\n\r\n";

    fn params(max_entries: usize) -> Params {
        Params {
            http_ports: vec![80],
            max_entries,
            cache_key: CacheKey::Target,
            ignore_cache_control: false,
        }
    }

    fn frame(payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
        crate::ws_frames::encode(crate::ws_frames::opcode::TEXT, payload, mask)
    }

    fn feed(c: &mut dyn Connection, cx: &mut Cx, from: Side, bytes: &[u8]) {
        c.on_event(cx, Event::Data { from, bytes });
    }

    fn dialed(actions: &[Action]) -> bool {
        actions.iter().any(|a| matches!(a, Action::Dial { .. }))
    }

    fn victim() -> Key {
        Key {
            host: "victim".into(),
            target: "/script.js".into(),
        }
    }

    /// An upgrade through `c`, then `bytes` from the client and `answer` from the server.
    fn upgraded_then(hop: &mut CacheHop, bytes: &[u8], answer: &[u8]) -> Vec<Action> {
        let mut c = hop.connection();
        let mut cx = Cx::new(1);
        c.on_event(&mut cx, Event::Accepted { port: 80 });
        feed(&mut *c, &mut cx, Side::Client, UPGRADE);
        feed(&mut *c, &mut cx, Side::Upstream, SWITCH);
        let before = cx.take_actions();
        assert_eq!(sent(&before, Side::Upstream), UPGRADE);
        assert_eq!(sent(&before, Side::Client), SWITCH);
        feed(&mut *c, &mut cx, Side::Client, bytes);
        feed(&mut *c, &mut cx, Side::Upstream, answer);
        let after = cx.take_actions();
        assert_eq!(sent(&after, Side::Upstream), bytes, "relayed unchanged");
        assert_eq!(sent(&after, Side::Client), answer, "relayed unchanged");
        after
    }

    /// A victim's fetch of http://victim/script.js through a new connection of `hop`.
    fn fetch(hop: &mut CacheHop, now: Duration) -> Vec<Action> {
        let mut c = hop.connection();
        let mut cx = Cx::new(2);
        cx.set_now(now);
        c.on_event(&mut cx, Event::Accepted { port: 80 });
        feed(&mut *c, &mut cx, Side::Client, FETCH);
        cx.take_actions()
    }

    #[test]
    fn a_miss_is_forwarded_and_stored_then_a_hit_is_served_from_the_cache() {
        let mut hop = CacheHop::new(&params(8));
        let mut c = hop.connection();
        let mut cx = Cx::new(1);
        c.on_event(&mut cx, Event::Accepted { port: 80 });
        feed(&mut *c, &mut cx, Side::Client, FETCH);
        let actions = cx.take_actions();
        assert!(dialed(&actions));
        assert_eq!(sent(&actions, Side::Upstream), FETCH);
        assert!(notes(&actions)[0].contains("cache miss for http://victim/script.js"));
        for piece in ORIGIN.chunks(9) {
            feed(&mut *c, &mut cx, Side::Upstream, piece);
        }
        let actions = cx.take_actions();
        assert_eq!(sent(&actions, Side::Client), ORIGIN);
        assert!(
            notes(&actions).iter().any(|n| n.starts_with(
                "cached http://victim/script.js: 200 OK, 7-byte body, fresh for 60 s"
            )),
            "{actions:?}"
        );

        let actions = fetch(&mut hop, Duration::from_secs(2));
        assert!(!dialed(&actions), "a hit is not forwarded");
        let down = String::from_utf8(sent(&actions, Side::Client)).unwrap();
        assert!(
            down.contains("Age: 2\r\nX-Cache: HIT\r\nConnection: close\r\n\r\ngenuine"),
            "{down}"
        );
        assert!(actions.contains(&Action::Close {
            side: Side::Client,
            how: CloseHow::Fin
        }));

        let actions = fetch(&mut hop, Duration::from_secs(61));
        assert!(dialed(&actions), "stale after max-age");
        assert!(notes(&actions)[0].contains("stale"), "{actions:?}");
    }

    #[test]
    fn an_unmasked_frame_spelling_a_get_poisons_the_cache() {
        let mut hop = CacheHop::new(&params(8));
        let actions = upgraded_then(&mut hop, &frame(SMUGGLED, None), EVIL);
        let notes = notes(&actions);
        assert!(
            notes[0].contains(
                "after skipping 2 bytes that are not HTTP: GET /script.js HTTP/1.1, Host: victim"
            ),
            "{notes:?}"
        );
        assert!(
            notes
                .iter()
                .any(|n| n.starts_with("cached http://victim/script.js, answering a request read")),
            "{notes:?}"
        );
        assert_eq!(hop.cache().borrow().get(&victim()).unwrap().body, b"evil!");

        let actions = fetch(&mut hop, Duration::ZERO);
        assert!(!dialed(&actions));
        assert!(sent(&actions, Side::Client).ends_with(b"\r\n\r\nevil!"));
    }

    #[test]
    fn the_same_request_masked_leaves_the_cache_clean() {
        let mut hop = CacheHop::new(&params(8));
        let actions = upgraded_then(
            &mut hop,
            &frame(SMUGGLED, Some([0x37, 0xfa, 0x21, 0x3d])),
            EVIL,
        );
        assert!(
            notes(&actions).iter().any(|n| n.contains(
                "no request in the client's bytes for it to answer: relayed, not cached"
            )),
            "{actions:?}"
        );
        assert!(hop.cache().borrow().is_empty());
        let actions = fetch(&mut hop, Duration::ZERO);
        assert!(dialed(&actions));
        assert_eq!(sent(&actions, Side::Upstream), FETCH);
    }

    #[test]
    fn a_smuggled_request_is_found_however_the_bytes_are_split() {
        let bytes = [b"\x00\x01GE".as_slice(), &frame(SMUGGLED, None), b"junk"].concat();
        for split in 0..bytes.len() {
            for answer_split in [1, 20, EVIL.len() - 1] {
                let mut hop = CacheHop::new(&params(8));
                let mut c = hop.connection();
                let mut cx = Cx::new(1);
                c.on_event(&mut cx, Event::Accepted { port: 80 });
                feed(&mut *c, &mut cx, Side::Client, UPGRADE);
                feed(&mut *c, &mut cx, Side::Upstream, SWITCH);
                feed(&mut *c, &mut cx, Side::Client, &bytes[..split]);
                feed(&mut *c, &mut cx, Side::Client, &bytes[split..]);
                feed(&mut *c, &mut cx, Side::Upstream, &EVIL[..answer_split]);
                feed(&mut *c, &mut cx, Side::Upstream, &EVIL[answer_split..]);
                let actions = cx.take_actions();
                assert_eq!(&sent(&actions, Side::Upstream)[UPGRADE.len()..], bytes);
                assert_eq!(
                    hop.cache().borrow().get(&victim()).map(|e| e.body.clone()),
                    Some(b"evil!".to_vec()),
                    "split at {split}/{answer_split}"
                );
            }
        }
    }

    #[test]
    fn client_bytes_wait_for_the_answer_to_an_upgrade() {
        let mut hop = CacheHop::new(&params(8));
        let mut c = hop.connection();
        let mut cx = Cx::new(1);
        c.on_event(&mut cx, Event::Accepted { port: 80 });
        let early = [UPGRADE, &frame(SMUGGLED, None)].concat();
        feed(&mut *c, &mut cx, Side::Client, &early);
        assert_eq!(sent(&cx.take_actions(), Side::Upstream), UPGRADE);
        feed(&mut *c, &mut cx, Side::Upstream, SWITCH);
        let actions = cx.take_actions();
        assert_eq!(sent(&actions, Side::Upstream), frame(SMUGGLED, None));
        assert!(notes(&actions).iter().any(|n| n.contains("read a request")));
    }

    #[test]
    fn responses_that_must_not_be_stored_are_not() {
        for (response, why) in [
            (
                &b"HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nContent-Length: 1\r\n\r\nx"[..],
                "Cache-Control: no-store",
            ),
            (
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 1\r\n\r\nx",
                "status 404",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
                "no Content-Length",
            ),
        ] {
            let mut hop = CacheHop::new(&params(8));
            let mut c = hop.connection();
            let mut cx = Cx::new(1);
            c.on_event(&mut cx, Event::Accepted { port: 80 });
            feed(&mut *c, &mut cx, Side::Client, FETCH);
            feed(&mut *c, &mut cx, Side::Upstream, response);
            let actions = cx.take_actions();
            assert_eq!(sent(&actions, Side::Client), response);
            assert!(
                notes(&actions)
                    .iter()
                    .any(|n| n.ends_with(&format!("not cached: {why}"))),
                "{actions:?}"
            );
            assert!(hop.cache().borrow().is_empty());
        }
    }

    #[test]
    fn a_full_cache_evicts_its_oldest_entry() {
        let mut cache = Cache::new(1);
        let mut cx = Cx::new(1);
        let entry = |body: &[u8]| Entry {
            head: match http::parse_response(ORIGIN, 1024) {
                Parsed::Complete(h, _) => h,
                other => panic!("{other:?}"),
            },
            body: body.to_vec(),
            stored: Duration::ZERO,
            max_age: None,
        };
        let other = Key {
            host: "victim".into(),
            target: "/other.js".into(),
        };
        cache.store(&mut cx, victim(), entry(b"a"), "");
        cache.store(&mut cx, other.clone(), entry(b"b"), "");
        assert_eq!(cache.len(), 1);
        assert!(cache.get(&other).is_some());
        assert!(
            notes(&cx.take_actions())
                .iter()
                .any(|n| n == "cache full (1 entries): evicted http://victim/script.js")
        );
    }

    #[test]
    fn keys_come_from_host_or_an_absolute_target() {
        let key = |text: &[u8]| match http::parse_request(text, 1024) {
            Parsed::Complete(h, _) => Key::of(&h),
            other => panic!("{other:?}"),
        };
        assert_eq!(key(FETCH), Some(victim()));
        assert_eq!(
            key(b"GET http://VICTIM/script.js HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some(victim())
        );
        assert_eq!(key(b"GET /script.js HTTP/1.1\r\n\r\n"), None);
    }

    #[test]
    fn other_ports_are_relayed_opaquely_and_garbage_gets_a_400() {
        let mut hop = CacheHop::new(&params(8));
        let mut c = hop.connection();
        let mut cx = Cx::new(1);
        c.on_event(&mut cx, Event::Accepted { port: 443 });
        feed(&mut *c, &mut cx, Side::Client, &frame(SMUGGLED, None));
        let actions = cx.take_actions();
        assert_eq!(sent(&actions, Side::Upstream), frame(SMUGGLED, None));

        let mut c = hop.connection();
        c.on_event(&mut cx, Event::Accepted { port: 80 });
        feed(&mut *c, &mut cx, Side::Client, &frame(SMUGGLED, None));
        let actions = cx.take_actions();
        assert!(sent(&actions, Side::Client).starts_with(b"HTTP/1.1 400 Bad Request"));
        assert!(!dialed(&actions));
    }

    fn connection(hop: &CacheHop) -> CachingProxy {
        CachingProxy::new(hop.params.clone(), hop.cache.clone())
    }

    #[test]
    fn a_head_that_does_not_arrive_within_the_header_timeout_is_answered_408() {
        let hop = CacheHop::new(&params(8));
        let mut c = connection(&hop);
        let mut cx = Cx::new(1);
        c.on_event(&mut cx, Event::Accepted { port: 80 });
        c.on_event(
            &mut cx,
            Event::Data {
                from: Side::Client,
                bytes: b"GET /script.js HTTP/1.1\r\nHo",
            },
        );
        let armed = cx.take_actions();
        assert!(
            armed.contains(&Action::SetTimer {
                id: http::HEADER_TIMER,
                at: http::HEADER_TIMEOUT
            }),
            "{armed:?}"
        );
        let actions = crate::testkit::header_timer_runs_out(&mut c, &mut cx);
        let answer = String::from_utf8(sent(&actions, Side::Client)).unwrap();
        assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
        assert!(actions.contains(&Action::Close {
            side: Side::Client,
            how: CloseHow::Fin
        }));
        let notes = notes(&actions);
        assert!(
            notes[0].contains("no complete request head within 60000 ms (27 bytes"),
            "{notes:?}"
        );
    }

    #[test]
    fn pipelined_requests_are_read_one_at_a_time_and_a_client_that_never_reads_is_closed() {
        let hop = CacheHop::new(&params(8));
        let mut c = connection(&hop);
        let mut cx = Cx::new(1);
        c.on_event(&mut cx, Event::Accepted { port: 80 });
        let segment: Vec<u8> = FETCH.iter().copied().cycle().take(64 * 1024).collect();
        let mut actions = Vec::new();
        let mut fed = 0;
        while fed < 16 << 20 && c.mode != Mode::Closed {
            feed(&mut c, &mut cx, Side::Client, &segment);
            actions.extend(cx.take_actions());
            fed += segment.len();
            let (held, pending, _) = c.held();
            assert!(held <= MAX_HELD_BYTES, "{held} bytes held after {fed} sent");
            assert!(
                pending <= PIPELINE_DEPTH,
                "{pending} pending after {fed} sent"
            );
        }
        assert_eq!(c.mode, Mode::Closed, "still open after 16 MiB");
        assert_eq!(
            sent(&actions, Side::Upstream),
            FETCH,
            "one request forwarded"
        );
        assert!(
            notes(&actions).iter().any(|n| n.contains(&format!(
                "while its request awaits an answer, more than the {MAX_HELD_BYTES} a proxy holds unread: discarded, closing"
            ))),
            "{:?}",
            notes(&actions)
        );
    }

    #[test]
    fn bytes_waiting_for_the_answer_to_an_upgrade_are_bounded() {
        let hop = CacheHop::new(&params(8));
        let mut c = connection(&hop);
        let mut cx = Cx::new(1);
        c.on_event(&mut cx, Event::Accepted { port: 80 });
        feed(&mut c, &mut cx, Side::Client, UPGRADE);
        let frame = frame(&[b'x'; 60_000], Some([1, 2, 3, 4]));
        let mut actions = Vec::new();
        for _ in 0..20 {
            feed(&mut c, &mut cx, Side::Client, &frame);
            actions.extend(cx.take_actions());
            assert!(c.held().0 <= MAX_HELD_BYTES, "{:?}", c.held());
        }
        assert_eq!(c.mode, Mode::Closed);
        assert!(
            notes(&actions).iter().any(|n| n.contains(
                "while an upgrade request awaits its answer, more than the 524288 a proxy holds unread: discarded, closing"
            )),
            "{:?}",
            notes(&actions)
        );
    }

    #[test]
    fn requests_read_after_the_101_are_tracked_up_to_a_bound() {
        let hop = CacheHop::new(&params(8));
        let mut c = connection(&hop);
        let mut cx = Cx::new(1);
        c.on_event(&mut cx, Event::Accepted { port: 80 });
        feed(&mut c, &mut cx, Side::Client, UPGRADE);
        feed(&mut c, &mut cx, Side::Upstream, SWITCH);
        cx.take_actions();
        let flood = frame(&SMUGGLED.repeat(200), None);
        for piece in flood.chunks(1000) {
            feed(&mut c, &mut cx, Side::Client, piece);
        }
        let actions = cx.take_actions();
        assert_eq!(sent(&actions, Side::Upstream), flood, "relayed unchanged");
        let (_, pending, scanned) = c.held();
        assert_eq!(pending, MAX_SCANNED_REQUESTS);
        assert!(scanned < MAX_HEAD_BYTES, "{scanned}");
        assert!(
            notes(&actions).last().unwrap().ends_with(&format!(
                "{MAX_SCANNED_REQUESTS} requests already await answers: not tracked"
            )),
            "{:?}",
            notes(&actions).last()
        );
    }

    #[test]
    fn a_client_that_half_closes_after_its_request_is_closed_once_answered() {
        // A fresh cache for each connection: the first exchange stores the response to FETCH.
        let mut make = || CacheHop::new(&params(8)).connection();
        for (request, answer, tunnels) in [(FETCH, ORIGIN, false), (UPGRADE, SWITCH, true)] {
            let wrong = crate::testkit::half_closed_client(&mut make, 80, request, answer, tunnels);
            assert!(wrong.is_empty(), "{wrong:#?}");
        }
    }

    #[test]
    fn max_entries_is_checked() {
        let raw = |n| RawParams {
            http_ports: None,
            max_entries: Some(n),
            cache_key: None,
            ignore_cache_control: None,
        };
        assert!(Params::try_from(raw(0)).is_err());
        assert!(Params::try_from(raw(MAX_ENTRIES + 1)).is_err());
        let p = Params::try_from(raw(3)).unwrap();
        assert_eq!(p.http_ports, vec![80]);
        assert_eq!((p.cache_key, p.ignore_cache_control), (CacheKey::Target, false));
    }

    /// The misconfigured cache: the query left out of the key, and `no-store` ignored, so a
    /// second request to the path with another query gets the first one's answer.
    #[test]
    fn a_path_key_that_ignores_cache_control_serves_another_querys_answer() {
        let head = |target: &str| match http::parse_request(
            format!("GET {target} HTTP/1.1\r\nHost: server\r\n\r\n").as_bytes(),
            8192,
        ) {
            http::Parsed::Complete(h, _) => h,
            other => panic!("{other:?}"),
        };
        let a = Pending::of(&head("/engine.io/?t=a"), false, CacheKey::Path);
        let b = Pending::of(&head("/engine.io/?t=b"), false, CacheKey::Path);
        assert_eq!(a.key, b.key);
        assert_eq!(a.key.unwrap().target, "/engine.io/");
        let c = Pending::of(&head("/engine.io/?t=a"), false, CacheKey::Target);
        let d = Pending::of(&head("/engine.io/?t=b"), false, CacheKey::Target);
        assert_ne!(c.key, d.key);
        let answer = match http::parse_response(
            b"HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nContent-Length: 2\r\n\r\nok",
            8192,
        ) {
            http::Parsed::Complete(h, _) => h,
            other => panic!("{other:?}"),
        };
        let framing = Framing::Length(2);
        assert!(storable(&answer, &framing, false).is_err());
        assert_eq!(storable(&answer, &framing, true).unwrap(), (2, None));
    }
}
