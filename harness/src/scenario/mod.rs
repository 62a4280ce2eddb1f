//! Scenario files, format 1: TOML, read into a validated [`Scenario`]. Every mistake is
//! reported as a [`ScenarioError`] naming the file, line and column and what was expected;
//! no input makes this module panic. The format is documented in `scenarios/README.md`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gauntlet_proxies::ModelSpec;
use serde::Deserialize;
use toml::Spanned;

use crate::real::product::Product;
use crate::real::product::command::CommandLine;
use crate::tls::TlsVersions;
use crate::verdict::outcome::Outcome;

/// The format version this build reads.
pub const FORMAT: u32 = 1;

/// A WebSocket URL scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// `ws://`, plain TCP, port 80.
    Ws,
    /// `wss://`, TLS, port 443.
    Wss,
}

impl Scheme {
    /// `ws` or `wss`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Ws => "ws",
            Scheme::Wss => "wss",
        }
    }

    /// The default port.
    pub fn port(self) -> u16 {
        match self {
            Scheme::Ws => 80,
            Scheme::Wss => 443,
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the client's connection reaches the first hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Route {
    /// The client dials the server's name; the network delivers the connection to the first
    /// hop (an interception proxy). The client cannot tell.
    #[default]
    Transparent,
    /// The client dials the first hop by its own name (a reverse proxy or balancer in front
    /// of the server), or the server when the path is empty.
    Direct,
    /// The client is configured to use the first hop as its proxy: it connects to the hop's
    /// port 3128 and asks for a tunnel with `CONNECT server:port` (RFC 6455 §4.1), for ws and
    /// wss alike; a non-2xx answer fails the connection (`connect-refused`).
    Explicit,
}

/// What the client does once connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkloadKind {
    /// The client sends messages; the server echoes each; round trips are measured.
    #[default]
    Echo,
    /// The server sends messages at the interval; one-way latencies are measured.
    Push,
    /// The cache-poisoning demonstration (Huang et al. 2011): one text frame whose payload is
    /// an HTTP request for `http://victim/script.js`, sent to the attacker's endpoint, then a
    /// victim's fetch of that URL over the same route. See [`crate::endpoints::smuggle`].
    Smuggle,
}

/// A pause in the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Idle {
    /// After this many messages have been exchanged (0: before the first).
    pub after_message: u32,
    /// How long nothing is sent, in milliseconds.
    pub ms: u64,
}

/// The client's traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// Echo or push.
    pub kind: WorkloadKind,
    /// How many messages.
    pub messages: u32,
    /// Time between messages.
    pub interval: Duration,
    /// Bytes per message.
    pub payload_bytes: usize,
    /// How long to wait for each expected message before calling the run stalled.
    pub reply_timeout: Duration,
    /// Pauses, in order of `after_message`.
    pub idle: Vec<Idle>,
    /// Echo: binary messages of seeded bytes that are not UTF-8, rather than text.
    pub binary: bool,
    /// Echo: the client sends each message fragmented, in frames of at most this many payload
    /// bytes (at least two frames per message).
    pub fragment_bytes: Option<usize>,
    /// The server sends each message (echo or push) fragmented, in frames of at most this
    /// many payload bytes (at least two frames per message).
    pub server_fragment_bytes: Option<usize>,
    /// The code the client closes with at the end; the server's Close reply must carry it.
    /// 1000 unless the scenario says otherwise.
    pub close_code: u16,
    /// The server closes first, with this code, right after the last message; the client
    /// must see exactly this code.
    pub server_close_code: Option<u16>,
}

impl WorkloadKind {
    /// The name scenario files use.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Echo => "echo",
            WorkloadKind::Push => "push",
            WorkloadKind::Smuggle => "smuggle",
        }
    }
}

impl Workload {
    /// A workload of `kind` with the documented defaults: 5 messages of 32 bytes, 100 ms
    /// apart, replies within 5 s, text, unfragmented, closed by the client with 1000.
    pub fn new(kind: WorkloadKind) -> Self {
        Self {
            kind,
            messages: 5,
            interval: Duration::from_millis(100),
            payload_bytes: 32,
            reply_timeout: Duration::from_secs(5),
            idle: Vec::new(),
            binary: false,
            fragment_bytes: None,
            server_fragment_bytes: None,
            close_code: NORMAL_CLOSE,
            server_close_code: None,
        }
    }
}

/// The close code of a normal closure (RFC 6455 §7.4.1).
pub const NORMAL_CLOSE: u16 = 1000;

/// Whether `code` may be sent in a Close frame: 1000-1003 and 1007-1013 (RFC 6455 §7.4.1 and
/// the IANA registry, as far as the reference peers accept them), 3000-4999 (§7.4.2:
/// registered and private codes). 1004-1006 and 1015 are reserved and never sent; 1014 and
/// 1016-2999 are not accepted by the reference server (tungstenite answers them with 1002).
pub fn close_code_valid(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1013 | 3000..=4999)
}

/// The reference client's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// The schemes to run, each a separate run.
    pub schemes: Vec<Scheme>,
    /// How the connection reaches the first hop.
    pub route: Route,
    /// Budget for TCP connect, TLS and upgrade together.
    pub handshake_timeout: Duration,
    /// The traffic.
    pub workload: Workload,
    /// `user:password` for an explicit proxy that answers 407.
    pub proxy_credentials: Option<String>,
    /// Sends a Ping this often, counted from the open (as Python `websockets` does); an
    /// unanswered Ping is a stall. `None`: no keepalive.
    pub ping_interval: Option<Duration>,
    /// Masks client frames, as RFC 6455 §5.3 requires. `false` only with the `smuggle`
    /// workload: a deliberate violation, for demonstration.
    pub mask: bool,
    /// Put before the request's path (`/ws` asks for `/ws/echo`), for a reverse proxy that
    /// maps a prefix to the server, as the seed's `ProxyPass /ws/ ws://…/` does. Empty: none.
    pub path_prefix: String,
}

/// The reference server's settings (`[server]`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Server {
    /// The TLS versions its wss listener accepts (`tls-version`): both unless pinned.
    pub tls_version: TlsVersions,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawServer {
    tls_version: Option<Spanned<TlsVersions>>,
}

/// Latency on every link of the simulated network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Network {
    /// One-way latency of each message on each link, in milliseconds. Default 5.
    #[serde(default = "default_latency_ms")]
    pub latency_ms: u64,
    /// Extra latency up to this much, drawn from the run's seed, in milliseconds. Default 0.
    #[serde(default)]
    pub jitter_ms: u64,
}

fn default_latency_ms() -> u64 {
    5
}

impl Default for Network {
    fn default() -> Self {
        Self {
            latency_ms: default_latency_ms(),
            jitter_ms: 0,
        }
    }
}

/// A fault injected into a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// When, in simulated time from the start.
    pub at: Duration,
    /// The server host that crashes: its connections are reset and it accepts no more.
    pub crash: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawFault {
    at_ms: u64,
    crash: Spanned<String>,
}

/// One hop of a path: a model, or a real program (live engine only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hop {
    /// An intermediary model (`model = "..."`), on any engine.
    Model(ModelSpec),
    /// A real product started from a configuration template (`product = "..."`).
    Product(ProductHop),
    /// Any proxy program, started from a command line (`command = "..."`).
    Command(CommandHop),
}

/// A real product as a hop: `product = "nginx"`, `template = "templates/x.conf"` (relative to
/// the scenario file), `values = { name = "..." }` for the template's own placeholders.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ProductHop {
    /// The product, as `product = "..."` names it.
    #[serde(skip, default = "placeholder_product")]
    pub product: Product,
    /// The configuration template, resolved against the scenario file's folder.
    pub template: PathBuf,
    /// Values for the template's placeholders beyond the ones the harness fills.
    #[serde(default)]
    pub values: BTreeMap<String, String>,
    /// How many servers stand behind it (`{{upstream0}}` … in the template); default 1.
    #[serde(default = "one")]
    pub backends: usize,
}

fn one() -> usize {
    1
}

/// A proxy program as a hop: `command = "my-proxy --listen {listen} --upstream {upstream}"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CommandHop {
    /// The command line, split into words, its placeholders checked; the hop fills them with
    /// the run's addresses ([`CommandLine`] says which and how).
    #[serde(skip)]
    pub command: CommandLine,
}

/// `path` with `.` and `dir/..` pairs removed, without touching the file system: a twin named
/// `../seeds/x.toml` from `scenarios/live/` reads as `scenarios/seeds/x.toml`.
fn lexical(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component<'_>> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.iter().collect()
}

/// What `product` holds until the hop's name is read (it is read first, so never seen).
fn placeholder_product() -> Product {
    Product::Nginx
}

/// The names a `product` hop accepts, for error messages.
fn product_names() -> String {
    Product::ALL.map(Product::name).join(", ")
}

impl Hop {
    /// The model's name, the product's, or `command`.
    pub fn name(&self) -> &str {
        match self {
            Hop::Model(m) => m.name(),
            Hop::Product(p) => p.product.name(),
            Hop::Command(_) => "command",
        }
    }

    /// How many backends the hop balances among.
    pub fn backends(&self) -> usize {
        match self {
            Hop::Model(m) => m.backends(),
            Hop::Product(p) => p.backends,
            Hop::Command(_) => 1,
        }
    }

    /// The model, if the hop is one.
    pub fn model(&self) -> Option<&ModelSpec> {
        match self {
            Hop::Model(m) => Some(m),
            _ => None,
        }
    }

    /// Whether the hop is a real program, which only the live engine runs.
    pub fn is_real(&self) -> bool {
        !matches!(self, Hop::Model(_))
    }
}

impl<'de> Deserialize<'de> for Hop {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(HopVisitor)
    }
}

struct HopVisitor;

impl<'de> serde::de::Visitor<'de> for HopVisitor {
    type Value = Hop;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a hop table whose first key is `model`, `product` or `command`")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Hop, A::Error> {
        use serde::de::{Error, value::MapAccessDeserializer};
        let first = map.next_key::<String>()?;
        match first.as_deref() {
            Some("model") => ModelSpec::after_model_key(map).map(Hop::Model),
            Some("product") => {
                let product = map.next_value_seed(ProductName)?;
                let mut hop = ProductHop::deserialize(MapAccessDeserializer::new(map))?;
                if !(1..=16).contains(&hop.backends) {
                    return Err(A::Error::custom(format!(
                        "`backends` must be between 1 and 16, got {}",
                        hop.backends
                    )));
                }
                hop.product = product;
                Ok(Hop::Product(hop))
            }
            Some("command") => {
                let text: String = map.next_value()?;
                let command = CommandLine::parse(&text).map_err(A::Error::custom)?;
                let mut hop = CommandHop::deserialize(MapAccessDeserializer::new(map))?;
                hop.command = command;
                Ok(Hop::Command(hop))
            }
            Some(key) => Err(A::Error::custom(format!(
                "a hop must start with `model = \"...\"` (one of {}), `product = \"...\"` ({}) \
                 or `command = \"...\"`, found `{key}` first",
                gauntlet_proxies::MODEL_NAMES.join(", "),
                product_names()
            ))),
            None => Err(A::Error::missing_field("model")),
        }
    }
}

/// Reads a `product` value and checks it against [`Product::ALL`], so an unknown name is reported
/// at the value itself.
struct ProductName;

impl<'de> serde::de::DeserializeSeed<'de> for ProductName {
    type Value = Product;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(|_| {
            serde::de::Error::custom(format!(
                "unknown product `{name}`, expected one of: {}",
                product_names()
            ))
        })
    }
}

/// The host names of a path: `hop1`, `hop2`, … for the hops, and the servers: `server`, or
/// `server1` … `serverN` when the last hop balances among N backends.
pub fn host_names(path: &[Hop]) -> (Vec<String>, Vec<String>) {
    let hops = (1..=path.len()).map(|i| format!("hop{i}")).collect();
    let backends = path.last().map_or(1, Hop::backends);
    let servers = if backends > 1 {
        (1..=backends).map(|i| format!("server{i}")).collect()
    } else {
        vec!["server".to_string()]
    };
    (hops, servers)
}

/// A validated scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    /// The file it was read from, as given.
    pub file: String,
    /// One line saying what it shows.
    pub title: String,
    /// Where the claim comes from.
    pub source: String,
    /// Free-form labels.
    pub tags: Vec<String>,
    /// Seeds to run; each is a separate run per scheme.
    pub seeds: Vec<u64>,
    /// Link latency.
    pub network: Network,
    /// The hops from client to server, in order.
    pub path: Vec<Hop>,
    /// The scenario this one pairs with in the differential suite (`twin = "..."`, resolved
    /// against this file's folder): the same situation with a model in place of a real
    /// product, expected to end the same way.
    pub twin: Option<PathBuf>,
    /// Faults injected at fixed simulated times.
    pub faults: Vec<Fault>,
    /// The reference client.
    pub client: Client,
    /// The reference server (every server host of the path).
    pub server: Server,
    /// The expected outcome per scheme, in the order of `client.schemes`.
    pub expect: Vec<(Scheme, Outcome)>,
    /// Latency bounds: a run that would be `delivered` but breaks one is `degraded`.
    pub bounds: Bounds,
}

/// Latency bounds (`[bounds]`), each optional. Percentiles are of the run's message latencies
/// (round trips for echo, one-way for push), as an HDR histogram reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bounds {
    /// Median latency at most this.
    pub latency_p50: Option<Duration>,
    /// 90th percentile at most this.
    pub latency_p90: Option<Duration>,
    /// 99th percentile at most this.
    pub latency_p99: Option<Duration>,
    /// No latency above this.
    pub latency_max: Option<Duration>,
    /// TCP connect to 101 within this.
    pub handshake: Option<Duration>,
}

impl Scenario {
    /// The expected outcome for `scheme`, if it is run.
    pub fn expected(&self, scheme: Scheme) -> Option<Outcome> {
        self.expect
            .iter()
            .find(|(s, _)| *s == scheme)
            .map(|(_, o)| *o)
    }

    /// The longest a run can last in simulated time, given every timeout in the workload:
    /// the engine's backstop.
    pub fn time_limit(&self) -> Duration {
        let w = &self.client.workload;
        if w.kind == WorkloadKind::Smuggle {
            // Two connections (the attack, the victim's fetch), each with its handshake
            // budget; the attack's answer, its close, and the fetch's answer.
            return self
                .client
                .handshake_timeout
                .saturating_mul(2)
                .saturating_add(w.reply_timeout.saturating_mul(4))
                .saturating_add(Duration::from_secs(10));
        }
        // `parse` keeps every term within a year and the messages within a million, so
        // nothing saturates for a scenario read from a file; one built by hand saturates.
        let idle = w.idle.iter().fold(Duration::ZERO, |sum, i| {
            sum.saturating_add(Duration::from_millis(i.ms))
        });
        let per_message = w.interval.saturating_add(w.reply_timeout);
        [
            self.client.handshake_timeout,
            per_message.saturating_mul(w.messages),
            idle,
            w.reply_timeout.saturating_mul(2),
            Duration::from_secs(10),
        ]
        .into_iter()
        .fold(Duration::ZERO, Duration::saturating_add)
    }
}

/// A mistake in a scenario file, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    /// The file, as given.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
    /// What is wrong and what was expected.
    pub message: String,
    /// The offending source line, if there is one.
    pub excerpt: Option<String>,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.col, self.message
        )?;
        if let Some(line) = &self.excerpt {
            let gutter = " ".repeat(self.line.to_string().len());
            write!(
                f,
                "\n{gutter} |\n{} | {line}\n{gutter} | {}^",
                self.line,
                " ".repeat(self.col.saturating_sub(1))
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioError {}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawScenario {
    format: Spanned<u32>,
    title: Spanned<String>,
    source: Spanned<String>,
    #[serde(default)]
    tags: Vec<String>,
    seeds: Option<Spanned<Vec<u64>>>,
    #[serde(default)]
    network: Network,
    #[serde(default)]
    path: Vec<Spanned<Hop>>,
    twin: Option<Spanned<PathBuf>>,
    #[serde(default)]
    faults: Vec<RawFault>,
    client: RawClient,
    #[serde(default)]
    server: RawServer,
    expect: Spanned<RawExpect>,
    bounds: Option<Spanned<RawBounds>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawBounds {
    latency_p50_ms: Option<u64>,
    latency_p90_ms: Option<u64>,
    latency_p99_ms: Option<u64>,
    latency_max_ms: Option<u64>,
    handshake_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawClient {
    schemes: Spanned<Vec<Scheme>>,
    route: Option<Spanned<Route>>,
    #[serde(default = "default_handshake_timeout_ms")]
    handshake_timeout_ms: Spanned<u64>,
    #[serde(default)]
    workload: RawWorkload,
    ping_interval_ms: Option<Spanned<u64>>,
    proxy_credentials: Option<Spanned<String>>,
    mask: Option<Spanned<bool>>,
    path_prefix: Option<Spanned<String>>,
}

fn default_handshake_timeout_ms() -> Spanned<u64> {
    Spanned::new(0..0, 5000)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawWorkload {
    #[serde(default)]
    kind: WorkloadKind,
    #[serde(default = "default_messages")]
    messages: Spanned<u32>,
    #[serde(default = "default_interval_ms")]
    interval_ms: Spanned<u64>,
    #[serde(default = "default_payload_bytes")]
    payload_bytes: Spanned<usize>,
    #[serde(default = "default_reply_timeout_ms")]
    reply_timeout_ms: Spanned<u64>,
    #[serde(default)]
    idle: Vec<Spanned<Idle>>,
    binary: Option<Spanned<bool>>,
    fragment_bytes: Option<Spanned<usize>>,
    server_fragment_bytes: Option<Spanned<usize>>,
    close_code: Option<Spanned<u16>>,
    server_close_code: Option<Spanned<u16>>,
}

impl Default for RawWorkload {
    fn default() -> Self {
        Self {
            kind: WorkloadKind::default(),
            messages: default_messages(),
            interval_ms: default_interval_ms(),
            payload_bytes: default_payload_bytes(),
            reply_timeout_ms: default_reply_timeout_ms(),
            idle: Vec::new(),
            binary: None,
            fragment_bytes: None,
            server_fragment_bytes: None,
            close_code: None,
            server_close_code: None,
        }
    }
}

fn default_messages() -> Spanned<u32> {
    Spanned::new(0..0, 5)
}
fn default_interval_ms() -> Spanned<u64> {
    Spanned::new(0..0, 100)
}
fn default_payload_bytes() -> Spanned<usize> {
    Spanned::new(0..0, 32)
}
fn default_reply_timeout_ms() -> Spanned<u64> {
    Spanned::new(0..0, 5000)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    ws: Option<Outcome>,
    wss: Option<Outcome>,
}

/// The most bytes a message may carry.
pub const MAX_PAYLOAD_BYTES: usize = 16 << 20;
/// The most messages a workload may send.
pub const MAX_MESSAGES: u32 = 1_000_000;
/// The longest any millisecond value in a scenario file may be (every key named `ms` or ending
/// in `-ms`, hop parameters included), and the longest a workload's schedule (the intervals
/// between its messages and its idle periods, together) may last: 365 days. Far beyond any
/// product's timeout, and small enough that no sum a run makes of such values (its time
/// limit counts every message's reply timeout, a million of them at most) comes near what
/// the simulated clock can count.
pub const MAX_MS: u64 = 365 * 24 * 60 * 60 * 1000;
/// The largest scenario file read: 4 MiB, hundreds of times the largest in the catalogue.
pub const MAX_FILE_BYTES: u64 = 4 << 20;

/// Reads and validates a scenario file (of at most [`MAX_FILE_BYTES`]).
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let file = path.display().to_string();
    let bytes = crate::files::read_file(path, MAX_FILE_BYTES, "a scenario file").map_err(|e| {
        ScenarioError {
            file: file.clone(),
            line: 1,
            col: 1,
            message: format!("cannot read the file: {e}"),
            excerpt: None,
        }
    })?;
    match std::str::from_utf8(&bytes) {
        Ok(text) => parse(&file, text),
        Err(e) => {
            let valid = std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default();
            Err(locate(
                &file,
                valid,
                valid.len(),
                format!(
                    "the file is not UTF-8 text (invalid byte 0x{:02x})",
                    bytes[e.valid_up_to()]
                ),
            ))
        }
    }
}

/// Parses and validates scenario text; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
    let raw: RawScenario = toml::from_str(text).map_err(|e| {
        // The reader's nesting limit comes without a location: find the key that hit it.
        if let (None, Some((at, parts))) = (e.span(), deep_key(text)) {
            return locate(
                file,
                text,
                at,
                format!(
                    "this key has {parts} dotted parts; at most {MAX_KEY_PARTS} are allowed (TOML readers nest tables no deeper)"
                ),
            );
        }
        let at = e.span().map_or(0, |s| s.start);
        locate(file, text, at, e.message().trim_end().to_string())
    })?;
    let fail =
        |span: std::ops::Range<usize>, message: String| locate(file, text, span.start, message);
    if let Some((key, value, span)) = millisecond_beyond_limit(text) {
        return Err(fail(
            span,
            format!("`{key}` must be at most {MAX_MS} (365 days), got {value}"),
        ));
    }

    if *raw.format.get_ref() != FORMAT {
        return Err(fail(
            raw.format.span(),
            format!(
                "format {} is not supported: this build reads format {FORMAT}",
                raw.format.get_ref()
            ),
        ));
    }
    for (field, value) in [("title", &raw.title), ("source", &raw.source)] {
        if value.get_ref().trim().is_empty() {
            return Err(fail(value.span(), format!("`{field}` must not be empty")));
        }
    }
    let seeds = match raw.seeds {
        None => vec![1],
        Some(s) if s.get_ref().is_empty() => {
            return Err(fail(s.span(), "`seeds` must list at least one seed".into()));
        }
        Some(s) => s.into_inner(),
    };

    let c = raw.client;
    let schemes_span = c.schemes.span();
    let schemes = c.schemes.into_inner();
    if schemes.is_empty() {
        return Err(fail(
            schemes_span,
            "`schemes` must list `ws`, `wss` or both".into(),
        ));
    }
    for (i, s) in schemes.iter().enumerate() {
        if schemes[..i].contains(s) {
            return Err(fail(schemes_span, format!("scheme `{s}` is listed twice")));
        }
    }

    let expect_span = raw.expect.span();
    let expect_raw = raw.expect.into_inner();
    let mut expect = Vec::new();
    for scheme in [Scheme::Ws, Scheme::Wss] {
        let outcome = match scheme {
            Scheme::Ws => expect_raw.ws,
            Scheme::Wss => expect_raw.wss,
        };
        match (schemes.contains(&scheme), outcome) {
            (true, Some(o)) => expect.push((scheme, o)),
            (true, None) => {
                return Err(fail(
                    expect_span,
                    format!("`expect` has no outcome for `{scheme}`, which `client.schemes` lists"),
                ));
            }
            (false, Some(_)) => {
                return Err(fail(
                    expect_span,
                    format!(
                        "`expect` gives an outcome for `{scheme}`, which `client.schemes` does not list"
                    ),
                ));
            }
            (false, None) => {}
        }
    }
    expect.sort_by_key(|(s, _)| schemes.iter().position(|x| x == s));

    let w = c.workload;
    let positive = |v: &Spanned<u64>, name: &str| {
        if *v.get_ref() == 0 {
            Err(fail(v.span(), format!("`{name}` must be at least 1")))
        } else {
            Ok(Duration::from_millis(*v.get_ref()))
        }
    };
    let handshake_timeout = positive(&c.handshake_timeout_ms, "handshake-timeout-ms")?;
    let reply_timeout = positive(&w.reply_timeout_ms, "reply-timeout-ms")?;
    let route = c.route.as_ref().map_or(Route::default(), |r| *r.get_ref());
    if route == Route::Explicit && raw.path.is_empty() {
        return Err(fail(
            c.route.as_ref().map_or(0..0, |r| r.span()),
            "`route = \"explicit\"` needs a path whose first hop is the proxy".into(),
        ));
    }
    let proxy_credentials = match c.proxy_credentials {
        Some(v) if route != Route::Explicit => {
            return Err(fail(
                v.span(),
                "`proxy-credentials` needs `route = \"explicit\"`".into(),
            ));
        }
        Some(v) if !v.get_ref().contains(':') => {
            return Err(fail(
                v.span(),
                "`proxy-credentials` must be `user:password`".into(),
            ));
        }
        v => v.map(Spanned::into_inner),
    };
    let ping_interval = match &c.ping_interval_ms {
        Some(v) => Some(positive(v, "ping-interval-ms")?),
        None => None,
    };
    let smuggle = w.kind == WorkloadKind::Smuggle;
    let mask = match &c.mask {
        Some(m) if !*m.get_ref() && !smuggle => {
            return Err(fail(
                m.span(),
                "`mask = false` goes only with `kind = \"smuggle\"`: unmasked client frames break RFC 6455 §5.3 and serve only to demonstrate cache poisoning".into(),
            ));
        }
        Some(m) => *m.get_ref(),
        None => true,
    };
    let path_prefix = match &c.path_prefix {
        None => String::new(),
        Some(p) => {
            let text = p.get_ref();
            let valid = text.starts_with('/')
                && !text.ends_with('/')
                && text
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b));
            if !valid {
                return Err(fail(
                    p.span(),
                    format!(
                        "`path-prefix` must start with `/`, not end with one, and hold only letters, digits and `/-._~`, got `{text}`"
                    ),
                ));
            }
            text.clone()
        }
    };
    if smuggle {
        // A value read from the file has a span; a default has 0..0.
        let given = |span: std::ops::Range<usize>| span != (0..0);
        let not_here = |name: &str| {
            format!(
                "`{name}` does not apply to `kind = \"smuggle\"`, which sends one frame and then fetches the victim's script"
            )
        };
        for (name, span) in [
            ("messages", w.messages.span()),
            ("interval-ms", w.interval_ms.span()),
            ("payload-bytes", w.payload_bytes.span()),
        ] {
            if given(span.clone()) {
                return Err(fail(span, not_here(name)));
            }
        }
        if let Some(first) = w.idle.first() {
            return Err(fail(first.span(), not_here("idle")));
        }
        if let Some(p) = &c.ping_interval_ms {
            return Err(fail(p.span(), not_here("ping-interval-ms")));
        }
        if let Some((name, span)) = workload_options(&w).into_iter().next() {
            return Err(fail(span, not_here(name)));
        }
    }
    let messages = if smuggle { 1 } else { *w.messages.get_ref() };
    if !(1..=MAX_MESSAGES).contains(&messages) {
        return Err(fail(
            w.messages.span(),
            format!("`messages` must be between 1 and {MAX_MESSAGES}"),
        ));
    }
    let payload_bytes = *w.payload_bytes.get_ref();
    // A push message carries its send time, so it cannot be empty; an echo can.
    let least = usize::from(w.kind == WorkloadKind::Push);
    if !(least..=MAX_PAYLOAD_BYTES).contains(&payload_bytes) {
        return Err(fail(
            w.payload_bytes.span(),
            format!(
                "`payload-bytes` must be between {least} and {MAX_PAYLOAD_BYTES} for `kind = \"{}\"`",
                w.kind.as_str()
            ),
        ));
    }
    // The schedule: the intervals between the messages and the idle periods, within a year.
    let interval_ms = *w.interval_ms.get_ref();
    let schedule_limit = format!(
        "a workload's intervals and idle periods together may last at most {MAX_MS} ms (365 days)"
    );
    let sending = u64::from(messages.saturating_sub(1)).saturating_mul(interval_ms);
    if sending > MAX_MS {
        return Err(fail(
            w.interval_ms.span(),
            format!(
                "{messages} messages {interval_ms} ms apart take more than 365 days: {schedule_limit}"
            ),
        ));
    }
    let mut idle_ms = 0u64;
    let mut idle = Vec::new();
    for period in &w.idle {
        let span = period.span();
        let p = *period.get_ref();
        if p.after_message > messages {
            return Err(fail(
                span,
                format!(
                    "idle after message {} but the workload sends only {messages}",
                    p.after_message
                ),
            ));
        }
        if idle
            .last()
            .is_some_and(|last: &Idle| last.after_message > p.after_message)
        {
            return Err(fail(
                span,
                "idle periods must be listed in order of `after-message`".into(),
            ));
        }
        idle_ms = idle_ms.saturating_add(p.ms);
        if sending.saturating_add(idle_ms) > MAX_MS {
            return Err(fail(
                span,
                format!(
                    "the idle periods add up to {idle_ms} ms with this one, besides {sending} ms between messages: {schedule_limit}"
                ),
            ));
        }
        idle.push(p);
    }

    if w.kind == WorkloadKind::Push {
        let client_side = workload_options(&w)
            .into_iter()
            .find(|(name, _)| matches!(*name, "binary" | "fragment-bytes"));
        if let Some((name, span)) = client_side {
            return Err(fail(
                span,
                format!(
                    "`{name}` applies to `kind = \"echo\"` only: in a push workload the client sends no messages and the server's are text"
                ),
            ));
        }
    }
    let frame_limit = |v: &Option<Spanned<usize>>, name: &str| match v {
        Some(n) if !(1..=MAX_PAYLOAD_BYTES).contains(n.get_ref()) => Err(fail(
            n.span(),
            format!("`{name}` must be between 1 and {MAX_PAYLOAD_BYTES}"),
        )),
        v => Ok(v.as_ref().map(|n| *n.get_ref())),
    };
    let fragment_bytes = frame_limit(&w.fragment_bytes, "fragment-bytes")?;
    let server_fragment_bytes = frame_limit(&w.server_fragment_bytes, "server-fragment-bytes")?;
    let close_code = |v: &Option<Spanned<u16>>, name: &str| match v {
        Some(c) if !close_code_valid(*c.get_ref()) => Err(fail(
            c.span(),
            format!(
                "`{name} = {}` is not a code a Close frame may carry: use 1000-1003, 1007-1013 (RFC 6455 §7.4.1) or 3000-4999 (§7.4.2)",
                c.get_ref()
            ),
        )),
        v => Ok(v.as_ref().map(|c| *c.get_ref())),
    };
    let server_close_code = close_code(&w.server_close_code, "server-close-code")?;
    let client_close_code = close_code(&w.close_code, "close-code")?;
    if let (Some(_), Some(server)) = (&w.close_code, &w.server_close_code) {
        return Err(fail(
            server.span(),
            "only one side closes first: give `close-code` (the client closes) or `server-close-code` (the server closes), not both".into(),
        ));
    }
    if let Some(server) = &w.server_close_code {
        if idle.last().is_some_and(|i| i.after_message == messages) {
            return Err(fail(
                server.span(),
                format!(
                    "`server-close-code` makes the server close right after message {messages}, so the idle period after it would never happen"
                ),
            ));
        }
    }

    let last = raw.path.len().saturating_sub(1);
    for (i, hop) in raw.path.iter().enumerate() {
        if i < last && hop.get_ref().backends() > 1 {
            return Err(fail(
                hop.span(),
                format!(
                    "hop {} balances among {} backends, but only the last hop may have more than one",
                    i + 1,
                    hop.get_ref().backends()
                ),
            ));
        }
    }
    let folder = Path::new(file).parent().unwrap_or(Path::new(""));
    let mut path: Vec<Hop> = Vec::with_capacity(raw.path.len());
    for hop in raw.path {
        let span = hop.span();
        let mut hop = hop.into_inner();
        if let Hop::Product(p) = &mut hop {
            p.template = folder.join(&p.template);
            if !p.template.is_file() {
                return Err(fail(
                    span,
                    format!("template `{}` is not a file", p.template.display()),
                ));
            }
        }
        path.push(hop);
    }
    let twin = match raw.twin {
        None => None,
        Some(t) => {
            let resolved = lexical(&folder.join(t.get_ref()));
            if !resolved.is_file() {
                return Err(fail(
                    t.span(),
                    format!("twin `{}` is not a file", resolved.display()),
                ));
            }
            Some(resolved)
        }
    };
    let (_, servers) = host_names(&path);
    let mut faults = Vec::new();
    for f in raw.faults {
        if !servers.contains(f.crash.get_ref()) {
            return Err(fail(
                f.crash.span(),
                format!(
                    "`crash` names `{}`, which is not a server of this path (servers: {})",
                    f.crash.get_ref(),
                    servers.join(", ")
                ),
            ));
        }
        faults.push(Fault {
            at: Duration::from_millis(f.at_ms),
            crash: f.crash.into_inner(),
        });
    }

    let server = match raw.server.tls_version {
        Some(v) if !schemes.contains(&Scheme::Wss) => {
            return Err(fail(
                v.span(),
                format!(
                    "`tls-version = \"{}\"` applies to wss only, which `client.schemes` does not list",
                    v.get_ref()
                ),
            ));
        }
        v => Server {
            tls_version: v.map(Spanned::into_inner).unwrap_or_default(),
        },
    };

    let bounds = match raw.bounds {
        None => Bounds::default(),
        Some(b) => {
            let span = b.span();
            let b = b.into_inner();
            let ms = |v: Option<u64>| v.map(Duration::from_millis);
            let bounds = Bounds {
                latency_p50: ms(b.latency_p50_ms),
                latency_p90: ms(b.latency_p90_ms),
                latency_p99: ms(b.latency_p99_ms),
                latency_max: ms(b.latency_max_ms),
                handshake: ms(b.handshake_ms),
            };
            if bounds == Bounds::default() {
                return Err(fail(
                    span,
                    "`[bounds]` sets no bound: give latency-p50-ms, latency-p90-ms, \
                     latency-p99-ms, latency-max-ms or handshake-ms"
                        .into(),
                ));
            }
            bounds
        }
    };

    Ok(Scenario {
        file: file.to_string(),
        title: raw.title.into_inner(),
        source: raw.source.into_inner(),
        tags: raw.tags,
        seeds,
        network: raw.network,
        path,
        twin,
        faults,
        client: Client {
            schemes,
            route,
            handshake_timeout,
            workload: Workload {
                kind: w.kind,
                messages,
                interval: Duration::from_millis(*w.interval_ms.get_ref()),
                payload_bytes,
                reply_timeout,
                idle,
                binary: w.binary.is_some_and(|b| *b.get_ref()),
                fragment_bytes,
                server_fragment_bytes,
                close_code: client_close_code.unwrap_or(NORMAL_CLOSE),
                server_close_code,
            },
            ping_interval,
            proxy_credentials,
            mask,
            path_prefix,
        },
        server,
        expect,
        bounds,
    })
}

/// The options of `w` that only the echo and push workloads take, with where each is given.
fn workload_options(w: &RawWorkload) -> Vec<(&'static str, std::ops::Range<usize>)> {
    let spans = [
        ("binary", w.binary.as_ref().map(Spanned::span)),
        (
            "fragment-bytes",
            w.fragment_bytes.as_ref().map(Spanned::span),
        ),
        (
            "server-fragment-bytes",
            w.server_fragment_bytes.as_ref().map(Spanned::span),
        ),
        ("close-code", w.close_code.as_ref().map(Spanned::span)),
        (
            "server-close-code",
            w.server_close_code.as_ref().map(Spanned::span),
        ),
    ];
    spans
        .into_iter()
        .filter_map(|(name, span)| Some((name, span?)))
        .collect()
}

/// The first millisecond value in `text` above [`MAX_MS`], in document order: its key, the
/// value as written, and where the value is. A millisecond value is an integer under a key
/// named `ms` or ending in `-ms`, at any depth, hop parameters included, so every model's
/// timers are held to the same limit as the harness's own.
pub(crate) fn millisecond_beyond_limit(
    text: &str,
) -> Option<(String, String, std::ops::Range<usize>)> {
    use toml::de::{DeTable, DeValue};
    type Found = Option<(String, String, std::ops::Range<usize>)>;
    fn in_table(text: &str, table: &DeTable<'_>) -> Found {
        table
            .iter()
            .find_map(|(key, value)| in_value(text, key.get_ref(), value))
    }
    fn in_value(text: &str, key: &str, value: &Spanned<DeValue<'_>>) -> Found {
        match value.get_ref() {
            DeValue::Integer(n) if key == "ms" || key.ends_with("-ms") => {
                let beyond = i128::from_str_radix(n.as_str(), n.radix())
                    .map_or(true, |n| n > i128::from(MAX_MS));
                let span = value.span();
                let written = text.get(span.clone()).unwrap_or(n.as_str()).to_string();
                beyond.then(|| (key.to_string(), written, span))
            }
            DeValue::Table(table) => in_table(text, table),
            DeValue::Array(items) => items.iter().find_map(|v| in_value(text, key, v)),
            _ => None,
        }
    }
    let doc = DeTable::parse(text).ok()?;
    in_table(text, doc.get_ref())
}

/// The most dotted parts a key may have: the `toml` crate, like other TOML readers, nests
/// tables at most 80 deep, and refuses a deeper key without saying where it is.
const MAX_KEY_PARTS: usize = 80;

/// The first key in `text` of more than [`MAX_KEY_PARTS`] dotted parts: where it starts and
/// how many parts it has. Reads TOML only as far as keys need: a key is bare (`a-z`, `A-Z`,
/// `0-9`, `_`, `-`) or quoted parts joined by dots, with spaces or tabs around them; comments
/// and strings are skipped whole, so dots inside them are not keys. A value such as `1.5`
/// reads as a key of two parts, far below the limit.
fn deep_key(text: &str) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    let bare = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    // The current run of parts: where it starts and how many; whether a dot follows its last.
    let mut run: Option<(usize, usize)> = None;
    let mut dotted = false;
    let mut i = 0;
    while i < bytes.len() {
        let part_end = match bytes[i] {
            b'"' | b'\'' => Some(string_end(bytes, i)),
            b if bare(b) => Some(i + bytes[i..].iter().take_while(|b| bare(**b)).count()),
            _ => None,
        };
        if let Some(end) = part_end {
            run = match run {
                Some((start, parts)) if dotted => Some((start, parts + 1)),
                Some((start, parts)) if parts > MAX_KEY_PARTS => return Some((start, parts)),
                _ => Some((i, 1)),
            };
            dotted = false;
            i = end;
            continue;
        }
        match bytes[i] {
            b'.' if run.is_some() && !dotted => dotted = true,
            b' ' | b'\t' => {}
            b => {
                if let Some(deep) = run.take().filter(|r| r.1 > MAX_KEY_PARTS) {
                    return Some(deep);
                }
                dotted = false;
                if b == b'#' {
                    i += bytes[i..].iter().take_while(|b| **b != b'\n').count();
                    continue;
                }
            }
        }
        i += 1;
    }
    run.filter(|r| r.1 > MAX_KEY_PARTS)
}

/// Where the TOML string starting at `bytes[start]` (a `"` or `'`) ends: just past its closing
/// quote, or at the end of its line if it has none (of the text, for a multi-line string).
fn string_end(bytes: &[u8], start: usize) -> usize {
    let quote = bytes[start];
    let triple = bytes[start..].starts_with(&[quote; 3]);
    let mut i = start + if triple { 3 } else { 1 };
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quote == b'"' => i += 2,
            b'\n' if !triple => return i,
            b if b == quote && !triple => return i + 1,
            b if b == quote && bytes[i..].starts_with(&[quote; 3]) => {
                // Up to two quotes more are the string's own last characters.
                let extra = bytes[i + 3..]
                    .iter()
                    .take(2)
                    .take_while(|b| **b == quote)
                    .count();
                return i + 3 + extra;
            }
            _ => i += 1,
        }
    }
    bytes.len()
}

/// A [`ScenarioError`] at byte offset `at` of `text`.
pub(crate) fn locate(file: &str, text: &str, at: usize, message: String) -> ScenarioError {
    let at = at.min(text.len());
    let at = (0..=at)
        .rev()
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0);
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    // A CR before the LF ends the line with it (CRLF): it is no column of the line.
    let mut in_line = &text[line_start..at];
    if text[at..].starts_with('\n') {
        in_line = in_line.strip_suffix('\r').unwrap_or(in_line);
    }
    let col = in_line.chars().count() + 1;
    let excerpt = text[line_start..].lines().next().map(str::to_string);
    ScenarioError {
        file: file.to_string(),
        line,
        col,
        message,
        excerpt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "format = 1\ntitle = \"t\"\nsource = \"s\"\n[client]\nschemes = [\"ws\"]\n[expect]\nws = \"delivered\"\n";

    #[test]
    fn a_minimal_file_gets_the_documented_defaults() {
        let s = parse("m.toml", MINIMAL).unwrap();
        assert_eq!(s.seeds, vec![1]);
        assert_eq!(
            s.network,
            Network {
                latency_ms: 5,
                jitter_ms: 0
            }
        );
        assert_eq!(s.client.route, Route::Transparent);
        assert_eq!(s.client.workload.messages, 5);
        assert_eq!(s.expect, vec![(Scheme::Ws, Outcome::Delivered)]);
        assert!(s.path.is_empty());
    }

    #[test]
    fn errors_point_at_line_and_column() {
        let e = parse("m.toml", &MINIMAL.replace("schemes", "schemas")).unwrap_err();
        assert_eq!((e.line, e.col), (5, 1), "{e}");
        assert!(e.message.contains("unknown field `schemas`"), "{e}");
    }

    #[test]
    fn smuggle_sends_one_frame_and_may_go_unmasked() {
        let text = MINIMAL.replace(
            "[expect]",
            "mask = false\n[client.workload]\nkind = \"smuggle\"\nreply-timeout-ms = 700\n[expect]",
        );
        let s = parse("m.toml", &text).unwrap();
        assert!(!s.client.mask);
        assert_eq!(s.client.workload.kind, WorkloadKind::Smuggle);
        assert_eq!(s.client.workload.messages, 1);
        assert_eq!(
            s.time_limit(),
            Duration::from_millis(2 * 5000 + 4 * 700 + 10_000)
        );
        assert!(parse("m.toml", MINIMAL).unwrap().client.mask);
        let e = parse("m.toml", &text.replace("reply-timeout-ms", "interval-ms")).unwrap_err();
        assert!(e.message.starts_with("`interval-ms` does not apply"), "{e}");
        let e = parse(
            "m.toml",
            &text.replace(
                "[expect]",
                "idle = [{ after-message = 0, ms = 5 }]\n[expect]",
            ),
        )
        .unwrap_err();
        assert!(e.message.starts_with("`idle` does not apply"), "{e}");
    }

    #[test]
    fn the_gate_options_are_read_with_their_defaults() {
        let w = parse("m.toml", MINIMAL).unwrap().client.workload;
        assert_eq!(w, Workload::new(WorkloadKind::Echo));
        let text = MINIMAL.replace(
            "[expect]",
            "[client.workload]\npayload-bytes = 0\nbinary = true\nfragment-bytes = 7\nserver-fragment-bytes = 9\nclose-code = 4999\n[expect]",
        );
        let w = parse("m.toml", &text).unwrap().client.workload;
        assert_eq!(w.payload_bytes, 0);
        assert!(w.binary);
        assert_eq!(
            (w.fragment_bytes, w.server_fragment_bytes),
            (Some(7), Some(9))
        );
        assert_eq!((w.close_code, w.server_close_code), (4999, None));
        let text = text.replace("close-code", "server-close-code");
        let w = parse("m.toml", &text).unwrap().client.workload;
        assert_eq!((w.close_code, w.server_close_code), (1000, Some(4999)));
    }

    #[test]
    fn the_server_accepts_both_tls_versions_unless_a_wss_scenario_pins_one() {
        assert_eq!(
            parse("m.toml", MINIMAL).unwrap().server.tls_version,
            TlsVersions::Any
        );
        let wss = MINIMAL
            .replace("[\"ws\"]", "[\"ws\", \"wss\"]")
            .replace("[expect]", "[expect]\nwss = \"delivered\"");
        for versions in TlsVersions::ALL {
            let text = format!("{wss}[server]\ntls-version = \"{versions}\"\n");
            let s = parse("m.toml", &text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(s.server.tls_version, versions);
        }
        let e = parse("m.toml", &format!("{wss}[server]\ntls-version = \"1.1\"\n")).unwrap_err();
        assert_eq!((e.line, e.col), (10, 15), "{e}");
        assert!(
            e.message.contains("expected one of `any`, `1.2`, `1.3`"),
            "{e}"
        );
        let e = parse(
            "m.toml",
            &format!("{MINIMAL}[server]\ntls-version = \"1.3\"\n"),
        )
        .unwrap_err();
        assert_eq!((e.line, e.col), (9, 15), "{e}");
        assert!(e.message.contains("applies to wss only"), "{e}");
    }

    #[test]
    fn close_codes_follow_rfc_6455_section_7_4() {
        for code in [1000, 1003, 1007, 1013, 3000, 4999] {
            assert!(close_code_valid(code), "{code}");
        }
        for code in [0, 999, 1004, 1005, 1006, 1014, 1015, 2999, 5000] {
            assert!(!close_code_valid(code), "{code}");
        }
    }

    #[test]
    fn the_time_limit_saturates_for_a_scenario_built_by_hand() {
        let mut s = parse("m.toml", MINIMAL).unwrap();
        let w = &mut s.client.workload;
        w.interval = Duration::MAX;
        w.messages = MAX_MESSAGES;
        w.idle = vec![
            Idle {
                after_message: 1,
                ms: u64::MAX
            };
            2
        ];
        assert_eq!(s.time_limit(), Duration::MAX);
    }

    #[test]
    fn a_workload_may_last_a_year_and_no_more() {
        let workload = |lines: &str| {
            MINIMAL.replace("[expect]", &format!("[client.workload]\n{lines}\n[expect]"))
        };
        let year = parse(
            "m.toml",
            &workload(&format!(
                "messages = 2\ninterval-ms = {}\nidle = [{{ after-message = 2, ms = 0 }}]",
                MAX_MS
            )),
        )
        .unwrap();
        assert_eq!(year.client.workload.interval, Duration::from_millis(MAX_MS));
        let e = parse(
            "m.toml",
            &workload(&format!(
                "messages = 2\ninterval-ms = {}\nidle = [{{ after-message = 2, ms = 1 }}]",
                MAX_MS
            )),
        )
        .unwrap_err();
        assert_eq!((e.line, e.col), (9, 9), "{e}");
        assert!(
            e.message.starts_with(
                "the idle periods add up to 1 ms with this one, besides 31536000000 ms"
            ),
            "{e}"
        );
    }

    #[test]
    fn a_deep_key_is_found_past_comments_strings_and_values() {
        let key = |parts: usize| vec!["a"; parts].join(".");
        let deep = key(81);
        assert_eq!(deep_key(&format!("x = 1\n{deep} = 1\n")), Some((6, 81)));
        assert_eq!(deep_key(&format!("{} = 1\n", key(80))), None);
        // In a table header, an array of tables, an inline table; quoted parts; spaces.
        assert_eq!(deep_key(&format!("[{deep}]\n")), Some((1, 81)));
        assert_eq!(deep_key(&format!("[[{deep}]]\n")), Some((2, 81)));
        assert_eq!(
            deep_key(&format!("t = {{ x = 1, {deep} = 2 }}")),
            Some((13, 81))
        );
        let spaced = vec!["\"a.b\""; 82].join(" . ");
        assert_eq!(deep_key(&format!("  {spaced} = 1")), Some((2, 82)));
        // Dots in comments and strings are not keys.
        for text in [
            format!("# {deep}\nx = 1\n"),
            format!("x = \"{deep}\"\n"),
            format!("x = '{deep}'\n"),
            format!("x = \"\"\"\n{deep}\n\"\"\"\n"),
            format!("x = '''\n{deep}\n''''\n"),
            format!("x = \"\\\" {deep}\"\n"),
        ] {
            assert_eq!(deep_key(&text), None, "{text}");
        }
        // The key the reader refuses is located there, whatever comes before it.
        let text = MINIMAL.replace(
            "[expect]",
            &format!("x = \"\"\"{deep}\"\"\"\n  {deep} = 1\n[expect]"),
        );
        let e = parse("m.toml", &text).unwrap_err();
        assert_eq!((e.line, e.col), (7, 3), "{e}");
    }

    #[test]
    fn locate_counts_characters_not_bytes() {
        let e = locate("f", "a = \"é\" x", 9, "m".into());
        assert_eq!((e.line, e.col), (1, 9));
    }

    #[test]
    fn an_error_at_the_end_of_a_crlf_line_points_just_past_its_last_character() {
        // Found by `cargo xtask fuzz` (target `scenario`): an unterminated string on a line
        // ended by CRLF was located one column past the end of the line its excerpt shows.
        let text = "format = 1\r\nws = \"nope\r\n";
        let e = parse("f.toml", text).unwrap_err();
        assert_eq!((e.line, e.col), (2, 11), "{e}");
        assert_eq!(e.excerpt.as_deref(), Some("ws = \"nope"));
        let e = locate("f", "ab\r\n", 3, "m".into());
        assert_eq!((e.line, e.col), (1, 3));
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    const VALID: &str = include_str!("../../../scenarios/seeds/transparent-strip.toml");

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any text at all gives a scenario or a located error, never a panic.
        #[test]
        fn any_text_parses_or_fails_with_a_location(text in "\\PC{0,300}") {
            if let Err(e) = parse("p.toml", &text) {
                prop_assert!(e.line >= 1 && e.col >= 1);
            }
        }

        /// A valid file with one span cut out or replaced fails cleanly or still validates.
        #[test]
        fn damaged_valid_files_never_panic(start in 0usize..VALID.len(), len in 0usize..40, junk in "\\PC{0,8}") {
            let mut text = VALID.to_string();
            let start = (0..=start).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
            let end = (start + len).min(text.len());
            let end = (end..=text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
            text.replace_range(start..end, &junk);
            if let Err(e) = parse("p.toml", &text) {
                let lines = text.lines().count().max(1);
                prop_assert!(e.line <= lines + 1, "line {} of {}", e.line, lines);
            }
        }
    }
}
