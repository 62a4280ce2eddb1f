//! `l7-balancer`: an HTTP reverse proxy in front of `backends` servers (nginx, HAProxy in
//! `mode http`, Apache httpd's mod_proxy, a cloud application load balancer). It reads each
//! request, picks a backend, and, depending on how it is configured, passes the upgrade or not.
//!
//! - `upgrade`: `tunnel` (upgrade-aware: `Upgrade` and `Connection: upgrade` forwarded, a 101
//!   turns the connection into a tunnel; nginx with the seed's `proxy_set_header` lines, HAProxy,
//!   httpd's mod_proxy_wstunnel), `strip` (hop-by-hop fields removed, RFC 9110 §7.6.1, so the
//!   backend sees a plain GET; nginx with only `proxy_http_version 1.1`, httpd's `http://`
//!   ProxyPass), `http10` (HTTP/1.0 upstream with `Connection: close`; nginx's default before
//!   1.29.7) or `tunnel-losing-early-data` (as `tunnel`, but what the client sent between its
//!   request head and the 101 is lost, the tunnel relaying from the connection rather than from
//!   what was read: Caddy 2.6.2's `reverse_proxy`,
//!   <https://github.com/caddyserver/caddy/issues/6273>).
//! - Routing like the seed's HAProxy ACLs: a request with `Connection: upgrade` and
//!   `Upgrade: websocket` (case-insensitive) goes to `ws-backends`, others to `web-backends`;
//!   an empty list means every backend. Within the list, `balance` picks (as `l4-balancer`).
//! - `sticky-cookie`: the response carries `Set-Cookie: NAME=sN`; a later request carrying it
//!   goes back to backend N (HAProxy `cookie NAME insert`).
//! - `sticky`: `none` (the default, as real balancers default: nginx's upstream balancing is
//!   round-robin unless `ip_hash` or `hash` is set, nginx.org/en/docs/http/
//!   ngx_http_upstream_module.html; HAProxy's `balance roundrobin` without a `cookie` line;
//!   an AWS ALB target group's `stickiness.enabled` is false by default), `source-ip` (every
//!   connection from one client address to one backend: nginx `ip_hash`, HAProxy `balance
//!   source`; the same as `balance = "source-hash"`) or `cookie` (`sticky-cookie`, named
//!   `SERVERID` unless it is given, as in HAProxy's documentation's `cookie SERVERID insert`).
//!   Without stickiness, successive connections of one long-polling session reach different
//!   backends, which do not know the session (Socket.IO's documentation: "sticky-session is
//!   required").
//! - `timeout-ms`: closes a connection quiet that long before the upgrade (HAProxy `timeout
//!   client`/`server`, nginx `proxy_read_timeout`); with a request unanswered it answers 504
//!   first. `timeout-tunnel-ms` replaces it once tunnelling (HAProxy `timeout tunnel`); unset,
//!   `timeout-ms` goes on applying to the tunnel, as HAProxy's client/server timeouts do.
//!   Traffic either way re-arms the timer (calibration.md, all five products).
//! - Draining on deploy: at `drain-at-ms` every open connection gets `drain-deadline-ms` more;
//!   then `drain = "close-1001"` says goodbye with a Close frame (1001, going away) to each side
//!   at the next frame boundary, or `drain = "cut"` closes both TCP connections.
//! - TLS: with `terminate-tls` (the default) it terminates TLS on `tls-ports` (default
//!   `[443]`) with a certificate the client trusts, as a public site's reverse proxy does, reads
//!   the decrypted requests like any other, and talks plaintext to the backends' port 80 (TLS
//!   offload; the wrapper is [`Interceptor::offload`]). So wss meets the same configuration as
//!   ws. Other ports outside `http-ports` (default `[80]`) are relayed opaquely and timed as
//!   tunnels from the start, as HAProxy times TCP-mode connections.
//! - A backend lost mid-tunnel (reset) resets the client: an HTTP balancer cannot move an open
//!   WebSocket either.
//!
//! Presets (calibration.md, "Idle and lifetime limits" and the live observations):
//!
//! | preset | upgrade | timeout | tunnel timeout | on expiry |
//! |---|---|---|---|---|
//! | `nginx` | http10 | 60 s | as timeout | FIN both |
//! | `nginx-http11` | strip | 60 s | as timeout | FIN both |
//! | `nginx-websocket` | tunnel | 60 s | as timeout | FIN both |
//! | `haproxy` | tunnel | 30 s | as timeout | FIN client, RST backend |
//! | `haproxy-tunnel` | tunnel | 30 s | 3600 s | FIN client, RST backend |
//! | `httpd-wstunnel` | tunnel | 60 s | as timeout | FIN both |
//! | `httpd-http` | strip | 60 s | as timeout | FIN both |
//! | `aws-alb` | tunnel | 60 s | as timeout | FIN both |

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use serde::Deserialize;

use crate::http::{self, Head};
use crate::http_proxy::{self, HttpProxy, OnGarbage, Route, Settings};
use crate::l4_balancer::{self, Rotation, check_backends};
use crate::model::{Action, CloseHow, Connection, Cx, Event, Hop, Side};
use crate::registry::{HopError, Model, ParamError};
use crate::spec::HopEnv;
use crate::tls_intercepting_proxy::{Interceptor, Material};
use crate::ws_frames::{FrameScanner, close_frame};

/// How the balancer treats an upgrade request.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Upgrade {
    /// Forward `Upgrade`, tunnel after the 101.
    Tunnel,
    /// As `Tunnel`, but the tunnel relays from the connection, not from what was already read:
    /// what the client sent after its request head and before the 101 is lost (Caddy 2.6.2's
    /// `reverse_proxy`, <https://github.com/caddyserver/caddy/issues/6273>, fixed by PR 6274).
    TunnelLosingEarlyData,
    /// Strip hop-by-hop fields, `Upgrade` among them.
    Strip,
    /// HTTP/1.0 upstream with `Connection: close`, hop-by-hop fields stripped.
    Http10,
}

impl Upgrade {
    /// The name scenario files use.
    pub fn as_str(self) -> &'static str {
        match self {
            Upgrade::Tunnel => "tunnel",
            Upgrade::TunnelLosingEarlyData => "tunnel-losing-early-data",
            Upgrade::Strip => "strip",
            Upgrade::Http10 => "http10",
        }
    }
}

/// How draining ends a connection at its deadline.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum DrainHow {
    /// A Close frame with code 1001 to each side, at a frame boundary.
    #[serde(rename = "close-1001")]
    Close1001,
    /// FIN to both sides, no Close frame.
    Cut,
}

/// A named set of parameters after a real product.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// nginx 1.22 `proxy_pass` alone.
    Nginx,
    /// nginx with only `proxy_http_version 1.1`.
    NginxHttp11,
    /// nginx with the seed's `proxy_set_header Upgrade/Connection` lines.
    NginxWebsocket,
    /// HAProxy `mode http`, `timeout client/server 30s`, no `timeout tunnel`.
    Haproxy,
    /// HAProxy with the seed's `timeout tunnel 3600s`.
    HaproxyTunnel,
    /// httpd with mod_proxy_wstunnel (`ProxyPass /ws/ ws://…`).
    HttpdWstunnel,
    /// httpd `ProxyPass http://…` without `upgrade=websocket`.
    HttpdHttp,
    /// AWS Application Load Balancer.
    AwsAlb,
}

impl Preset {
    /// The name scenario files use.
    pub fn as_str(self) -> &'static str {
        match self {
            Preset::Nginx => "nginx",
            Preset::NginxHttp11 => "nginx-http11",
            Preset::NginxWebsocket => "nginx-websocket",
            Preset::Haproxy => "haproxy",
            Preset::HaproxyTunnel => "haproxy-tunnel",
            Preset::HttpdWstunnel => "httpd-wstunnel",
            Preset::HttpdHttp => "httpd-http",
            Preset::AwsAlb => "aws-alb",
        }
    }

    /// (upgrade, timeout, tunnel timeout, backend close on expiry).
    fn values(self) -> (Upgrade, Option<u64>, Option<u64>, CloseHow) {
        match self {
            Preset::Nginx => (Upgrade::Http10, Some(60_000), None, CloseHow::Fin),
            Preset::NginxHttp11 => (Upgrade::Strip, Some(60_000), None, CloseHow::Fin),
            Preset::NginxWebsocket => (Upgrade::Tunnel, Some(60_000), None, CloseHow::Fin),
            Preset::Haproxy => (Upgrade::Tunnel, Some(30_000), None, CloseHow::Reset),
            Preset::HaproxyTunnel => (
                Upgrade::Tunnel,
                Some(30_000),
                Some(3_600_000),
                CloseHow::Reset,
            ),
            Preset::HttpdWstunnel => (Upgrade::Tunnel, Some(60_000), None, CloseHow::Fin),
            Preset::HttpdHttp => (Upgrade::Strip, Some(60_000), None, CloseHow::Fin),
            Preset::AwsAlb => (Upgrade::Tunnel, Some(60_000), None, CloseHow::Fin),
        }
    }
}

/// Draining on deploy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drain {
    /// When the deploy starts (simulated time).
    pub at: Duration,
    /// How long open connections may stay after that.
    pub deadline: Duration,
    /// What happens at the deadline.
    pub how: DrainHow,
}

/// Parameters of `l7-balancer`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(try_from = "RawParams")]
pub struct Params {
    /// The preset the values came from, if any.
    pub preset: Option<Preset>,
    /// How many backends (`server1` … `serverN`; one backend is `server`). Default 1.
    pub backends: usize,
    /// How a backend is chosen within the routed list. Default round-robin.
    pub balance: l4_balancer::Policy,
    /// What happens to an upgrade request. Default `tunnel`.
    pub upgrade: Upgrade,
    /// Backends (from 0) for upgrade requests; empty: all.
    pub ws_backends: Vec<usize>,
    /// Backends (from 0) for other requests; empty: all.
    pub web_backends: Vec<usize>,
    /// The name of the stickiness cookie, if any.
    pub sticky_cookie: Option<String>,
    /// How one client is kept on one backend, if it is. Default none.
    pub sticky: Sticky,
    /// Idle limit before the upgrade (and after, unless `timeout_tunnel`).
    pub timeout: Option<Duration>,
    /// Idle limit once tunnelling.
    pub timeout_tunnel: Option<Duration>,
    /// How the backend side is closed when a timeout fires (the client always gets a FIN).
    pub close_backend: CloseHow,
    /// Draining, if a deploy happens during the run.
    pub drain: Option<Drain>,
    /// Ports read as HTTP; others relayed opaquely. Default `[80]`.
    pub http_ports: Vec<u16>,
    /// Whether it terminates TLS on `tls_ports` (with a certificate the client trusts, as a
    /// public site's is) and talks plaintext HTTP to the backends' port 80. Default true: a
    /// reverse proxy or ALB listening on 443 does.
    pub terminate_tls: bool,
    /// Ports whose TLS it terminates. Default `[443]`.
    pub tls_ports: Vec<u16>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawParams {
    preset: Option<Preset>,
    backends: Option<usize>,
    #[serde(default)]
    balance: l4_balancer::Policy,
    upgrade: Option<Upgrade>,
    #[serde(default)]
    ws_backends: Vec<usize>,
    #[serde(default)]
    web_backends: Vec<usize>,
    sticky_cookie: Option<String>,
    sticky: Option<Sticky>,
    timeout_ms: Option<u64>,
    timeout_tunnel_ms: Option<u64>,
    close_backend: Option<CloseHow>,
    drain_at_ms: Option<u64>,
    drain_deadline_ms: Option<u64>,
    drain: Option<DrainHow>,
    http_ports: Option<Vec<u16>>,
    terminate_tls: Option<bool>,
    tls_ports: Option<Vec<u16>>,
}

impl TryFrom<RawParams> for Params {
    type Error = ParamError;

    fn try_from(raw: RawParams) -> Result<Self, ParamError> {
        let (upgrade, timeout, tunnel, close) = match raw.preset {
            Some(p) => p.values(),
            None => (Upgrade::Tunnel, None, None, CloseHow::Fin),
        };
        let backends = raw.backends.unwrap_or(1);
        check_backends(backends)?;
        let list = |name: &'static str, l: &[usize]| -> Result<Vec<usize>, ParamError> {
            l.iter()
                .map(|&b| {
                    if (1..=backends).contains(&b) {
                        Ok(b - 1)
                    } else {
                        Err(ParamError::invalid(
                            name,
                            format!(
                                "`{name}` lists backend {b}, but backends are numbered 1 to {backends}"
                            ),
                        ))
                    }
                })
                .collect()
        };
        let ws_backends = list("ws-backends", &raw.ws_backends)?;
        let web_backends = list("web-backends", &raw.web_backends)?;
        if let Some(name) = &raw.sticky_cookie {
            let ok = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !ok {
                return Err(ParamError::invalid(
                    "sticky-cookie",
                    format!(
                        "`sticky-cookie` must be a cookie name (letters, digits, `_`, `-`), not `{name}`"
                    ),
                ));
            }
        }
        let (sticky, balance, sticky_cookie) =
            sticky(raw.sticky, raw.balance, raw.sticky_cookie)?;
        let ms = |key: &'static str, v: Option<u64>| -> Result<Option<Duration>, ParamError> {
            match v {
                Some(0) => Err(ParamError::Zero { key }),
                v => Ok(v.map(Duration::from_millis)),
            }
        };
        let timeout = ms("timeout-ms", raw.timeout_ms.or(timeout))?;
        let timeout_tunnel = ms("timeout-tunnel-ms", raw.timeout_tunnel_ms.or(tunnel))?;
        let drain = match (raw.drain_at_ms, raw.drain_deadline_ms, raw.drain) {
            (None, None, None) => None,
            (Some(at), deadline, how) => Some(Drain {
                at: Duration::from_millis(at),
                deadline: Duration::from_millis(deadline.unwrap_or(0)),
                how: how.unwrap_or(DrainHow::Close1001),
            }),
            (None, _, _) => {
                return Err(ParamError::invalid(
                    "drain-at-ms",
                    "`drain-deadline-ms` and `drain` need `drain-at-ms`, when the deploy starts",
                ));
            }
        };
        Ok(Params {
            preset: raw.preset,
            backends,
            balance,
            upgrade: raw.upgrade.unwrap_or(upgrade),
            ws_backends,
            web_backends,
            sticky_cookie,
            sticky,
            timeout,
            timeout_tunnel,
            close_backend: raw.close_backend.unwrap_or(close),
            drain,
            http_ports: raw.http_ports.unwrap_or_else(|| vec![80]),
            terminate_tls: raw.terminate_tls.unwrap_or(true),
            tls_ports: raw.tls_ports.unwrap_or_else(|| vec![443]),
        })
    }
}

/// How a balancer keeps one client on one backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sticky {
    /// Not at all: each connection is balanced on its own.
    None,
    /// By the client's address (`balance = "source-hash"`).
    SourceIp,
    /// By a cookie the balancer sets (`sticky-cookie`).
    Cookie,
}

/// The cookie `sticky = "cookie"` sets when `sticky-cookie` names none.
pub const DEFAULT_STICKY_COOKIE: &str = "SERVERID";

/// Reconciles `sticky` with the `balance` and `sticky-cookie` it stands for: the stickiness,
/// the balance and the cookie, or why they contradict each other.
fn sticky(
    asked: Option<Sticky>,
    balance: l4_balancer::Policy,
    cookie: Option<String>,
) -> Result<(Sticky, l4_balancer::Policy, Option<String>), ParamError> {
    use l4_balancer::Policy::{RoundRobin, SourceHash};
    let contradiction = |why: &str| Err(ParamError::invalid("sticky", why.to_string()));
    match (asked, balance, cookie) {
        (None, SourceHash, None) => Ok((Sticky::SourceIp, SourceHash, None)),
        (None, balance, None) => Ok((Sticky::None, balance, None)),
        (None | Some(Sticky::Cookie), balance, Some(name)) => {
            Ok((Sticky::Cookie, balance, Some(name)))
        }
        (Some(Sticky::Cookie), balance, None) => Ok((
            Sticky::Cookie,
            balance,
            Some(DEFAULT_STICKY_COOKIE.to_string()),
        )),
        (Some(Sticky::None), _, Some(_)) => {
            contradiction("`sticky = \"none\"` contradicts `sticky-cookie`")
        }
        (Some(Sticky::None), SourceHash, None) => contradiction(
            "`sticky = \"none\"` contradicts `balance = \"source-hash\"`, which keeps a client on one backend",
        ),
        (Some(Sticky::None), balance, None) => Ok((Sticky::None, balance, None)),
        (Some(Sticky::SourceIp), _, Some(_)) => contradiction(
            "`sticky = \"source-ip\"` contradicts `sticky-cookie`: choose one way to keep a client on a backend",
        ),
        (Some(Sticky::SourceIp), RoundRobin | SourceHash, None) => {
            Ok((Sticky::SourceIp, SourceHash, None))
        }
        (Some(Sticky::SourceIp), other, None) => Err(ParamError::invalid(
            "sticky",
            format!(
                "`sticky = \"source-ip\"` balances by the client's address, which contradicts `balance = \"{}\"`",
                other.as_str()
            ),
        )),
    }
}

impl Model for Params {
    const NAME: &'static str = "l7-balancer";
    const DESCRIPTION: &'static str = concat!(
        "an HTTP reverse proxy and balancer (nginx, HAProxy `mode http`, httpd, a cloud ALB): ",
        "reads each request, routes it, passes the upgrade or not; idle timeouts, stickiness, ",
        "draining; terminates TLS by default; other ports outside `http-ports` relayed opaquely ",
        "and timed as tunnels",
    );
    const PARAMETERS: &'static str = concat!(
        "`preset` (table below), `backends` (default 1), `balance` (as `l4-balancer`'s `policy`), ",
        "`upgrade`: `tunnel` (default), `strip`, `http10`, `tunnel-losing-early-data` (Caddy 2.6.2); `ws-backends`, `web-backends` (1-based ",
        "lists: upgrade requests, with `Connection: upgrade` and `Upgrade: websocket`, go to the ",
        "first, others to the second, like the seed's HAProxy ACLs); `sticky`: `none` (default), ",
        "`source-ip` (as `balance = \"source-hash\"`: nginx `ip_hash`, HAProxy `balance source`), ",
        "`cookie`; `sticky-cookie` (name, default `SERVERID` with `sticky = \"cookie\"`; ",
        "`Set-Cookie: NAME=sN`); `timeout-ms`, `timeout-tunnel-ms` (HAProxy `timeout tunnel`; ",
        "unset, `timeout-ms` applies to tunnels too); `close-backend` (`fin`/`reset` on timeout; ",
        "the client gets a FIN; 504 first if a request is unanswered); `drain-at-ms`, ",
        "`drain-deadline-ms`, `drain`: `close-1001` (default: Close 1001 to both sides at a frame ",
        "boundary) or `cut`; `http-ports` (default [80]); `terminate-tls` (default true: TLS on ",
        "`tls-ports`, default [443], ends here with a certificate every client trusts, and the ",
        "backends get plaintext on port 80, so wss meets the same configuration as ws)",
    );
    const SHARED_STATE: Option<&'static str> = Some("its rotation among the backends");

    fn hop(&self, env: &HopEnv) -> Result<Box<dyn Hop>, HopError> {
        Ok(Box::new(L7Hop::new(self, env.tls.clone())?))
    }

    fn summary(&self) -> String {
        let mut s = String::from("l7-balancer");
        if let Some(p) = self.preset {
            s.push_str(&format!(" preset={}", p.as_str()));
        }
        s.push_str(&format!(
            " backends={} balance={} upgrade={}",
            self.backends,
            self.balance.as_str(),
            self.upgrade.as_str()
        ));
        let numbered = |l: &[usize]| -> Vec<usize> { l.iter().map(|b| b + 1).collect() };
        if !self.ws_backends.is_empty() {
            s.push_str(&format!(" ws-backends={:?}", numbered(&self.ws_backends)));
        }
        if !self.web_backends.is_empty() {
            s.push_str(&format!(" web-backends={:?}", numbered(&self.web_backends)));
        }
        if let Some(c) = &self.sticky_cookie {
            s.push_str(&format!(" sticky-cookie={c}"));
        }
        if let Some(t) = self.timeout {
            s.push_str(&format!(" timeout={}ms", t.as_millis()));
        }
        if let Some(t) = self.timeout_tunnel {
            s.push_str(&format!(" timeout-tunnel={}ms", t.as_millis()));
        }
        if self.terminate_tls {
            s.push_str(&format!(" terminates-tls={:?}", self.tls_ports));
        }
        if let Some(d) = self.drain {
            s.push_str(&format!(
                " drain-at={}ms deadline={}ms {}",
                d.at.as_millis(),
                d.deadline.as_millis(),
                match d.how {
                    DrainHow::Close1001 => "close-1001",
                    DrainHow::Cut => "cut",
                }
            ));
        }
        s
    }

    fn backends(&self) -> usize {
        self.backends
    }
}

/// The balancer on one host: the rotation its connections share, and its certificate when it
/// terminates TLS.
#[derive(Debug)]
pub struct L7Hop {
    params: Rc<Params>,
    rotation: Rc<RefCell<Rotation>>,
    tls: Option<Material>,
}

impl L7Hop {
    /// A hop with these parameters; `tls` is the certificate it presents when it terminates
    /// TLS (required then).
    pub fn new(params: &Params, tls: Option<Material>) -> Result<Self, HopError> {
        let mut params = params.clone();
        if params.terminate_tls {
            if tls.is_none() {
                return Err(HopError::NeedsTls {
                    what: "l7-balancer with terminate-tls",
                });
            }
            // What it decrypts, it reads as HTTP.
            for port in params.tls_ports.clone() {
                if !params.http_ports.contains(&port) {
                    params.http_ports.push(port);
                }
            }
        }
        Ok(Self {
            rotation: Rc::new(RefCell::new(Rotation::new(params.balance, params.backends))),
            params: Rc::new(params),
            tls,
        })
    }
}

impl Hop for L7Hop {
    fn connection(&mut self) -> Box<dyn Connection> {
        let inner = Box::new(L7Connection::new(
            self.params.clone(),
            self.rotation.clone(),
        ));
        match (&self.tls, self.params.terminate_tls) {
            (Some(tls), true) => Box::new(Interceptor::offload(
                inner,
                tls.clone(),
                self.params.tls_ports.clone(),
            )),
            _ => inner,
        }
    }
}

/// The balancer's decisions about heads.
#[derive(Debug)]
pub struct Balance {
    params: Rc<Params>,
    rotation: Rc<RefCell<Rotation>>,
    /// The backend this connection is bound to.
    bound: Option<usize>,
    /// Whether the request being answered came with a valid stickiness cookie.
    cookie_seen: bool,
}

/// A relay that forwards bodies unchanged keeps their transfer coding.
const KEEP: &[&str] = &["transfer-encoding"];

/// Whether `head` asks for a WebSocket upgrade, as the seed's HAProxy ACLs test it.
fn is_websocket(head: &Head) -> bool {
    head.connection_has("upgrade")
        && head.get("upgrade").is_some_and(|v| {
            String::from_utf8_lossy(v)
                .to_ascii_lowercase()
                .contains("websocket")
        })
}

impl Balance {
    /// The backend the request's stickiness cookie names, if it is valid.
    fn sticky(&self, head: &Head) -> Option<usize> {
        let name = self.params.sticky_cookie.as_deref()?;
        let cookies = String::from_utf8_lossy(head.get("cookie")?).to_string();
        cookies.split(';').find_map(|c| {
            let (k, v) = c.trim().split_once('=')?;
            if k != name {
                return None;
            }
            let n: usize = v.strip_prefix('s')?.parse().ok()?;
            (1..=self.params.backends).contains(&n).then(|| n - 1)
        })
    }
}

impl http_proxy::Policy for Balance {
    fn request(&mut self, cx: &mut Cx, head: &mut Head, port: u16) -> Route {
        let ws = is_websocket(head);
        let sticky = self.sticky(head);
        self.cookie_seen = sticky.is_some();
        match self.params.upgrade {
            Upgrade::Tunnel | Upgrade::TunnelLosingEarlyData => {}
            Upgrade::Strip => {
                head.strip_hop_by_hop(KEEP);
            }
            Upgrade::Http10 => {
                head.strip_hop_by_hop(&[]);
                head.set_minor(0);
                head.push("Connection", "close");
            }
        }
        let backend = match (self.bound, sticky) {
            (Some(b), _) => b,
            (None, Some(b)) => {
                cx.note(format!("sticky cookie: backend {}", b + 1));
                self.rotation.borrow_mut().pick_from(&[b], cx.peer())
            }
            (None, None) => {
                let (kind, list) = if ws {
                    ("websocket", &self.params.ws_backends)
                } else {
                    ("web", &self.params.web_backends)
                };
                let b = self.rotation.borrow_mut().pick_from(list, cx.peer());
                cx.note(format!(
                    "{kind} request: backend {} of {} ({})",
                    b + 1,
                    self.params.backends,
                    self.params.balance.as_str()
                ));
                b
            }
        };
        self.bound = Some(backend);
        Route::Upstream { backend, port }
    }

    fn response(&mut self, _cx: &mut Cx, head: &mut Head, _request: &Head) {
        match self.params.upgrade {
            Upgrade::Tunnel | Upgrade::TunnelLosingEarlyData => {}
            Upgrade::Strip => {
                head.strip_hop_by_hop(KEEP);
            }
            Upgrade::Http10 => {
                head.strip_hop_by_hop(KEEP);
                head.set_minor(1);
            }
        }
        if let (Some(name), Some(b), false) =
            (&self.params.sticky_cookie, self.bound, self.cookie_seen)
        {
            head.push("Set-Cookie", &format!("{name}=s{}; Path=/", b + 1));
        }
    }

    fn tunnels_upgrades(&self) -> bool {
        matches!(
            self.params.upgrade,
            Upgrade::Tunnel | Upgrade::TunnelLosingEarlyData
        )
    }

    fn keeps_early_data(&self) -> bool {
        self.params.upgrade != Upgrade::TunnelLosingEarlyData
    }
}

/// Timer ids (the HTTP engine sets none).
const IDLE: u64 = 1;
const DRAIN: u64 = 2;

/// A goodbye in progress toward one side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Goodbye {
    /// Nothing yet.
    None,
    /// A Close frame goes out at the next frame boundary.
    Pending,
    /// The Close frame is out; what else that side is sent is discarded.
    Sent,
}

/// A connection through `l7-balancer`: the HTTP engine with the [`Balance`] policy, plus the
/// timeouts and draining around it.
#[derive(Debug)]
pub struct L7Connection {
    proxy: HttpProxy<Balance>,
    params: Rc<Params>,
    rotation: Rc<RefCell<Rotation>>,
    /// Frame boundaries of what goes to each side once tunnelling ([`Side::index`]).
    scanners: [FrameScanner; 2],
    goodbye: [Goodbye; 2],
    /// Closed by a timeout or a cut: further events are noted and ignored.
    closed: bool,
    /// The client was sent a FIN after its goodbye.
    client_finned: bool,
    /// A port not read as HTTP: relayed opaquely, timed as a tunnel from the start (HAProxy
    /// applies `timeout tunnel` to TCP-mode connections too), cut rather than said goodbye
    /// to when draining (its bytes may be TLS).
    opaque: bool,
    /// Which sides have finished sending (FIN or reset), by [`Side::index`].
    ended: [bool; 2],
}

impl L7Connection {
    fn new(params: Rc<Params>, rotation: Rc<RefCell<Rotation>>) -> Self {
        let policy = Balance {
            params: params.clone(),
            rotation: rotation.clone(),
            bound: None,
            cookie_seen: false,
        };
        let settings = Settings {
            http_ports: Some(params.http_ports.clone()),
            on_garbage: OnGarbage::ErrorPage,
            max_head_bytes: crate::http::MAX_HEAD_BYTES,
            header_timeout: Some(crate::http::HEADER_TIMEOUT),
        };
        Self {
            proxy: HttpProxy::new(policy, settings),
            params,
            rotation,
            scanners: [FrameScanner::new(), FrameScanner::new()],
            goodbye: [Goodbye::None; 2],
            closed: false,
            client_finned: false,
            opaque: false,
            ended: [false; 2],
        }
    }

    /// The idle limit that applies now.
    fn idle_limit(&self) -> Option<Duration> {
        if self.proxy.tunnelling() || self.opaque {
            self.params.timeout_tunnel.or(self.params.timeout)
        } else {
            self.params.timeout
        }
    }

    fn arm_idle(&self, cx: &mut Cx) {
        if let Some(limit) = self.idle_limit() {
            let at = cx.now() + limit;
            cx.set_timer(IDLE, at);
        }
    }

    /// Runs the HTTP engine on `event` and post-processes what it sends once tunnelling.
    fn run_proxy(&mut self, cx: &mut Cx, event: Event<'_>) {
        let ours = cx.take_actions();
        let was = self.proxy.tunnelling();
        self.proxy.on_event(cx, event);
        let theirs = cx.take_actions();
        for a in ours {
            cx.push(a);
        }
        let switched = !was && self.proxy.tunnelling();
        let mut head_skipped = false;
        for action in theirs {
            match action {
                Action::Send { to, bytes } if was || switched => {
                    if switched && to == Side::Client && !head_skipped {
                        // The 101 head itself is not part of the frame stream.
                        head_skipped = true;
                        cx.push(Action::Send { to, bytes });
                        continue;
                    }
                    self.send_frames(cx, to, &bytes);
                }
                other => cx.push(other),
            }
        }
        if switched {
            self.arm_idle(cx);
        }
        if self.proxy.closed() && !self.closed {
            // The engine closed both sides (the client closed and has its answers, or it gave
            // up): no timer may keep the connection.
            cx.cancel_timer(IDLE);
            cx.cancel_timer(DRAIN);
            self.closed = true;
        }
    }

    /// Sends tunnel bytes toward `to`, honouring a pending or sent goodbye.
    fn send_frames(&mut self, cx: &mut Cx, to: Side, bytes: &[u8]) {
        let i = to.index();
        match self.goodbye[i] {
            Goodbye::None => {
                self.scanners[i].feed(bytes);
                cx.send(to, bytes.to_vec());
            }
            Goodbye::Pending => {
                let n = self.scanners[i].step(bytes);
                cx.send(to, bytes[..n].to_vec());
                if self.scanners[i].at_boundary() {
                    self.say_goodbye(cx, to);
                    if n < bytes.len() {
                        self.discard(cx, to, bytes.len() - n);
                    }
                }
            }
            Goodbye::Sent => self.discard(cx, to, bytes.len()),
        }
    }

    fn discard(&self, cx: &mut Cx, to: Side, n: usize) {
        cx.note(format!(
            "{n} bytes toward the {} after the goodbye: discarded",
            to.as_str()
        ));
    }

    /// Sends the Close 1001 frame toward `to` (masked toward the backend, which is a server).
    fn say_goodbye(&mut self, cx: &mut Cx, to: Side) {
        let mask = match to {
            Side::Client => None,
            Side::Upstream => {
                let b = cx.rng().next_u64().to_be_bytes();
                Some([b[0], b[1], b[2], b[3]])
            }
        };
        cx.note(format!("Close 1001 (going away) to the {}", to.as_str()));
        cx.send(to, close_frame(1001, mask));
        self.goodbye[to.index()] = Goodbye::Sent;
    }

    /// Closes both sides: FIN to the client, the backend as configured.
    fn close_both(&mut self, cx: &mut Cx, backend: CloseHow) {
        cx.cancel_timer(IDLE);
        cx.fin(Side::Client);
        if self.proxy.policy().bound.is_some() {
            match backend {
                CloseHow::Fin => cx.fin(Side::Upstream),
                CloseHow::Reset => cx.reset(Side::Upstream),
            }
        }
        self.closed = true;
    }

    fn on_idle(&mut self, cx: &mut Cx) {
        let Some(limit) = self.idle_limit() else {
            return;
        };
        let what = if self.proxy.tunnelling() || self.opaque {
            "tunnel"
        } else {
            "connection"
        };
        cx.note(format!("{what} idle for {} ms: closing", limit.as_millis()));
        if !self.proxy.tunnelling() && self.proxy.awaiting_response() {
            cx.note("no response from the backend: answering 504");
            cx.send(
                Side::Client,
                http::error_response(
                    504,
                    "Gateway Timeout",
                    "The backend did not answer in time.",
                ),
            );
        }
        self.close_both(cx, self.params.close_backend);
    }

    fn on_drain(&mut self, cx: &mut Cx) {
        let Some(drain) = self.params.drain else {
            return;
        };
        if cx.now() < drain.at + drain.deadline {
            cx.note(format!(
                "deploy: draining, {} ms left for this connection",
                drain.deadline.as_millis()
            ));
            cx.set_timer(DRAIN, drain.at + drain.deadline);
            return;
        }
        if !self.proxy.tunnelling() || self.opaque || drain.how == DrainHow::Cut {
            cx.note("drain deadline: cutting the connection");
            self.close_both(cx, CloseHow::Fin);
            return;
        }
        cx.note("drain deadline: saying goodbye");
        for side in [Side::Client, Side::Upstream] {
            self.goodbye[side.index()] = Goodbye::Pending;
            if self.scanners[side.index()].at_boundary() {
                self.say_goodbye(cx, side);
            }
        }
    }
}

impl Connection for L7Connection {
    fn on_event(&mut self, cx: &mut Cx, event: Event<'_>) {
        if self.closed {
            if let Event::Data { from, bytes } = event {
                cx.note(format!(
                    "{} bytes from the {} after closing: discarded",
                    bytes.len(),
                    from.as_str()
                ));
            }
            return;
        }
        match event {
            Event::Accepted { port } => {
                self.run_proxy(cx, event);
                self.opaque = !self.params.http_ports.contains(&port);
                self.arm_idle(cx);
                if let Some(drain) = self.params.drain {
                    cx.set_timer(DRAIN, drain.at.max(cx.now()));
                }
            }
            Event::Timer { id: IDLE } => self.on_idle(cx),
            Event::Timer { id: DRAIN } => self.on_drain(cx),
            Event::Data { from, .. } => {
                self.arm_idle(cx);
                self.run_proxy(cx, event);
                if from == Side::Client
                    && self.goodbye[Side::Client.index()] == Goodbye::Sent
                    && !self.client_finned
                {
                    // The client answered the goodbye: close as a server does after the
                    // close handshake (RFC 6455 §7.1.1).
                    cx.note("the client answered the goodbye: closing");
                    self.client_finned = true;
                    cx.fin(Side::Client);
                }
            }
            Event::Fin { from } if self.goodbye[from.index()] == Goodbye::Sent => {
                self.ended[from.index()] = true;
                cx.fin(from);
            }
            other => {
                if let Event::Fin { from } | Event::Reset { from } = other {
                    self.ended[from.index()] = true;
                }
                self.run_proxy(cx, other);
            }
        }
        if self.ended == [true; 2] {
            // Both sides are done: no timer may keep the connection alive.
            cx.cancel_timer(IDLE);
            cx.cancel_timer(DRAIN);
        }
    }
}

impl Drop for L7Connection {
    fn drop(&mut self) {
        if let Some(b) = self.proxy.policy().bound {
            self.rotation.borrow_mut().release(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CloseHow;
    use crate::testkit::{closes, sent};

    const WS: &[u8] = b"GET /echo HTTP/1.1\r\nHost: server\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    const WEB: &[u8] = b"GET /index.html HTTP/1.1\r\nHost: server\r\n\r\n";
    const SWITCH: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";

    fn params(src: &str) -> Params {
        toml::from_str(src).unwrap()
    }

    fn hop(src: &str) -> L7Hop {
        let mut p = params(src);
        p.terminate_tls = false;
        L7Hop::new(&p, None).unwrap()
    }

    fn data(from: Side, bytes: &[u8]) -> Event<'_> {
        Event::Data { from, bytes }
    }

    fn dials(actions: &[Action]) -> Vec<usize> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Dial { backend, .. } => Some(*backend),
                _ => None,
            })
            .collect()
    }

    /// A connection that has forwarded `request`, and its actions so far.
    fn open(hop: &mut L7Hop, request: &[u8]) -> (Box<dyn Connection>, Cx, Vec<Action>) {
        let mut c = hop.connection();
        let mut cx = Cx::new(3);
        cx.set_peer("10.0.0.1:5000");
        c.on_event(&mut cx, Event::Accepted { port: 80 });
        c.on_event(&mut cx, data(Side::Client, request));
        let actions = cx.take_actions();
        (c, cx, actions)
    }

    #[test]
    fn a_client_that_half_closes_after_its_request_is_closed_once_answered() {
        for src in ["backends = 2\n", "preset = \"nginx\"\n"] {
            let mut h = hop(src);
            let mut make = || h.connection();
            for (request, answer, tunnels) in
                [(WEB, OK, false), (WS, SWITCH, src.contains("backends"))]
            {
                let wrong =
                    crate::testkit::half_closed_client(&mut make, 80, request, answer, tunnels);
                assert!(wrong.is_empty(), "{src}: {wrong:#?}");
            }
        }
    }

    #[test]
    fn a_connection_the_engine_closed_keeps_no_timer() {
        let mut h = hop("preset = \"haproxy\"\n");
        let (mut c, mut cx, _) = open(&mut h, WEB);
        c.on_event(&mut cx, Event::Fin { from: Side::Client });
        c.on_event(&mut cx, Event::Dialed);
        c.on_event(&mut cx, data(Side::Upstream, OK));
        let actions = cx.take_actions();
        assert_eq!(
            closes(&actions),
            vec![
                (Side::Upstream, CloseHow::Fin),
                (Side::Client, CloseHow::Fin)
            ]
        );
        assert!(
            actions.contains(&Action::CancelTimer { id: IDLE }),
            "{actions:?}"
        );
        assert!(
            actions.contains(&Action::CancelTimer { id: DRAIN }),
            "{actions:?}"
        );
        c.on_event(&mut cx, Event::Timer { id: IDLE });
        assert!(cx.take_actions().is_empty());
    }

    #[test]
    fn upgrade_requests_go_to_the_ws_backends_and_others_to_the_web_backends() {
        let mut h = hop("backends = 4\nws-backends = [3, 4]\nweb-backends = [1, 2]\n");
        let picks: Vec<usize> = [WS, WEB, WS, WEB, WS]
            .iter()
            .map(|r| dials(&open(&mut h, r).2)[0])
            .collect();
        assert_eq!(picks, vec![2, 0, 3, 1, 2]);
    }

    #[test]
    fn an_aware_balancer_forwards_the_upgrade_and_tunnels() {
        let mut h = hop("preset = \"haproxy-tunnel\"");
        let (mut c, mut cx, a) = open(&mut h, WS);
        assert_eq!(sent(&a, Side::Upstream), WS);
        c.on_event(&mut cx, Event::Dialed);
        c.on_event(&mut cx, data(Side::Upstream, SWITCH));
        c.on_event(&mut cx, data(Side::Client, b"\x81\x85abcdefghi"));
        let a = cx.take_actions();
        assert_eq!(sent(&a, Side::Client), SWITCH);
        assert_eq!(sent(&a, Side::Upstream), b"\x81\x85abcdefghi");
    }

    #[test]
    fn a_balancer_losing_early_data_drops_what_came_before_the_101_and_nothing_after() {
        let frame: &[u8] = b"\x81\x82abcdhi";
        for (upgrade, early) in [("tunnel", frame), ("tunnel-losing-early-data", b"")] {
            let mut h = hop(&format!("upgrade = \"{upgrade}\"\n"));
            let (mut c, mut cx, a) = open(&mut h, &[WS, frame].concat());
            assert_eq!(sent(&a, Side::Upstream), WS, "{upgrade}: the frame waits");
            c.on_event(&mut cx, Event::Dialed);
            c.on_event(&mut cx, data(Side::Upstream, SWITCH));
            let a = cx.take_actions();
            assert_eq!(sent(&a, Side::Client), SWITCH);
            assert_eq!(sent(&a, Side::Upstream), early, "{upgrade}");
            c.on_event(&mut cx, data(Side::Client, b"\x81\x82abcdok"));
            let a = cx.take_actions();
            assert_eq!(sent(&a, Side::Upstream), b"\x81\x82abcdok", "{upgrade}");
        }
    }

    #[test]
    fn an_unaware_balancer_strips_the_upgrade_and_nginx_talks_http10() {
        let mut h = hop("preset = \"nginx-http11\"");
        let up = String::from_utf8(sent(&open(&mut h, WS).2, Side::Upstream)).unwrap();
        assert!(up.starts_with("GET /echo HTTP/1.1\r\n"), "{up}");
        assert!(!up.to_ascii_lowercase().contains("upgrade"), "{up}");
        let mut h = hop("preset = \"nginx\"");
        let up = String::from_utf8(sent(&open(&mut h, WS).2, Side::Upstream)).unwrap();
        assert!(up.starts_with("GET /echo HTTP/1.0\r\n"), "{up}");
        assert!(up.contains("Connection: close\r\n"), "{up}");
        assert!(!up.contains("Upgrade:"), "{up}");
    }

    #[test]
    fn a_sticky_cookie_is_set_then_followed() {
        let mut h = hop("backends = 3\nsticky-cookie = \"SRV\"\n");
        let (mut c, mut cx, a) = open(&mut h, WEB);
        assert_eq!(dials(&a), vec![0]);
        c.on_event(&mut cx, Event::Dialed);
        c.on_event(&mut cx, data(Side::Upstream, OK));
        let down = String::from_utf8(sent(&cx.take_actions(), Side::Client)).unwrap();
        assert!(down.contains("Set-Cookie: SRV=s1; Path=/\r\n"), "{down}");
        let with_cookie = b"GET /echo HTTP/1.1\r\nHost: server\r\nCookie: a=b; SRV=s3\r\n\r\n";
        assert_eq!(dials(&open(&mut h, with_cookie).2), vec![2]);
        let bad_cookie = b"GET /echo HTTP/1.1\r\nHost: server\r\nCookie: SRV=s9\r\n\r\n";
        assert_eq!(dials(&open(&mut h, bad_cookie).2), vec![1]);
    }

    /// Without stickiness (the default), a client's successive connections go round the
    /// backends, as a long-polling session's requests do; `sticky = "source-ip"` keeps them
    /// on one, whichever it is; `sticky = "cookie"` sets the cookie HAProxy's documentation
    /// names, `SERVERID`.
    #[test]
    fn stickiness_keeps_a_clients_connections_on_one_backend_and_none_spreads_them() {
        let connections = |src: &str| -> Vec<usize> {
            let mut h = hop(src);
            (0..4).flat_map(|_| dials(&open(&mut h, WEB).2)).collect()
        };
        assert_eq!(connections("backends = 2
"), [0, 1, 0, 1]);
        assert_eq!(connections("backends = 2
sticky = \"none\"\n"), [0, 1, 0, 1]);
        let sticky = connections("backends = 2
sticky = \"source-ip\"\n");
        assert_eq!(sticky.len(), 4);
        assert!(sticky.iter().all(|&b| b == sticky[0]), "{sticky:?}");
        let p = params("backends = 2
sticky = \"source-ip\"\n");
        assert_eq!(
            (p.sticky, p.balance),
            (Sticky::SourceIp, l4_balancer::Policy::SourceHash)
        );
        let p = params("backends = 2
sticky = \"cookie\"\n");
        assert_eq!(
            (p.sticky, p.sticky_cookie.as_deref()),
            (Sticky::Cookie, Some(DEFAULT_STICKY_COOKIE))
        );
        let p = params("backends = 2
sticky-cookie = \"SRV\"\n");
        assert_eq!(p.sticky, Sticky::Cookie);
        assert_eq!(params("backends = 2
").sticky, Sticky::None);
    }

    #[test]
    fn the_tunnel_timeout_replaces_the_http_timeout_and_haproxy_resets_the_backend() {
        let mut h = hop("preset = \"haproxy\"\ntimeout-tunnel-ms = 5000\n");
        let (mut c, mut cx, a) = open(&mut h, WS);
        assert!(a.contains(&Action::SetTimer {
            id: IDLE,
            at: Duration::from_secs(30)
        }));
        cx.set_now(Duration::from_secs(1));
        c.on_event(&mut cx, Event::Dialed);
        c.on_event(&mut cx, data(Side::Upstream, SWITCH));
        let a = cx.take_actions();
        assert!(a.contains(&Action::SetTimer {
            id: IDLE,
            at: Duration::from_secs(6)
        }));
        cx.set_now(Duration::from_secs(6));
        c.on_event(&mut cx, Event::Timer { id: IDLE });
        let a = cx.take_actions();
        assert_eq!(
            closes(&a),
            vec![
                (Side::Client, CloseHow::Fin),
                (Side::Upstream, CloseHow::Reset)
            ]
        );
        assert!(a.contains(&Action::Note("tunnel idle for 5000 ms: closing".into())));
    }

    #[test]
    fn a_backend_that_never_answers_gets_the_client_a_504() {
        let mut h = hop("preset = \"nginx-websocket\"");
        let (mut c, mut cx, _) = open(&mut h, WS);
        cx.set_now(Duration::from_secs(60));
        c.on_event(&mut cx, Event::Timer { id: IDLE });
        let a = cx.take_actions();
        let down = String::from_utf8(sent(&a, Side::Client)).unwrap();
        assert!(
            down.starts_with("HTTP/1.1 504 Gateway Timeout\r\n"),
            "{down}"
        );
        assert_eq!(
            closes(&a),
            vec![
                (Side::Client, CloseHow::Fin),
                (Side::Upstream, CloseHow::Fin)
            ]
        );
    }

    #[test]
    fn draining_waits_for_the_frame_in_flight_then_says_goodbye() {
        let mut h = hop("drain-at-ms = 1000\ndrain-deadline-ms = 500\n");
        let (mut c, mut cx, a) = open(&mut h, WS);
        assert!(a.contains(&Action::SetTimer {
            id: DRAIN,
            at: Duration::from_millis(1000)
        }));
        c.on_event(&mut cx, Event::Dialed);
        c.on_event(&mut cx, data(Side::Upstream, SWITCH));
        // Half of a 4-byte server frame is in flight toward the client.
        c.on_event(&mut cx, data(Side::Upstream, b"\x82\x04ab"));
        cx.take_actions();
        cx.set_now(Duration::from_millis(1000));
        c.on_event(&mut cx, Event::Timer { id: DRAIN });
        assert!(cx.take_actions().contains(&Action::SetTimer {
            id: DRAIN,
            at: Duration::from_millis(1500)
        }));
        cx.set_now(Duration::from_millis(1500));
        c.on_event(&mut cx, Event::Timer { id: DRAIN });
        let a = cx.take_actions();
        // The backend, at a boundary, gets its masked Close now; the client waits.
        let up = sent(&a, Side::Upstream);
        assert_eq!(up.len(), 8);
        assert_eq!(&up[..2], &[0x88, 0x82]);
        assert!(sent(&a, Side::Client).is_empty());
        // The rest of the frame, then the next frame: the client gets the rest, the Close,
        // and nothing of the next frame.
        c.on_event(&mut cx, data(Side::Upstream, b"cd\x82\x01z"));
        let a = cx.take_actions();
        assert_eq!(sent(&a, Side::Client), b"cd\x88\x02\x03\xe9");
        assert!(a.contains(&Action::Note(
            "3 bytes toward the client after the goodbye: discarded".into()
        )));
        // The client's answering Close goes no further, and the client gets a FIN.
        c.on_event(&mut cx, data(Side::Client, b"\x88\x82abcdXY"));
        let a = cx.take_actions();
        assert!(sent(&a, Side::Upstream).is_empty());
        assert_eq!(closes(&a), vec![(Side::Client, CloseHow::Fin)]);
    }

    #[test]
    fn a_cut_drain_closes_both_sides() {
        let mut h = hop("drain-at-ms = 10\ndrain = \"cut\"\n");
        let (mut c, mut cx, _) = open(&mut h, WS);
        c.on_event(&mut cx, Event::Dialed);
        c.on_event(&mut cx, data(Side::Upstream, SWITCH));
        cx.take_actions();
        cx.set_now(Duration::from_millis(10));
        c.on_event(&mut cx, Event::Timer { id: DRAIN });
        assert_eq!(
            closes(&cx.take_actions()),
            vec![
                (Side::Client, CloseHow::Fin),
                (Side::Upstream, CloseHow::Fin)
            ]
        );
    }

    #[test]
    fn a_lost_backend_resets_the_client() {
        let mut h = hop("preset = \"aws-alb\"");
        let (mut c, mut cx, _) = open(&mut h, WS);
        c.on_event(&mut cx, Event::Dialed);
        c.on_event(&mut cx, data(Side::Upstream, SWITCH));
        c.on_event(
            &mut cx,
            Event::Reset {
                from: Side::Upstream,
            },
        );
        assert_eq!(
            closes(&cx.take_actions()),
            vec![(Side::Client, CloseHow::Reset)]
        );
    }

    #[test]
    fn bad_parameters_are_named() {
        let err = |src: &str| toml::from_str::<Params>(src).unwrap_err().to_string();
        assert!(err("backends = 0").contains("`backends` must be between 1 and 64"));
        assert!(
            err("backends = 2\nws-backends = [3]")
                .contains("`ws-backends` lists backend 3, but backends are numbered 1 to 2")
        );
        assert!(err("sticky-cookie = \"a b\"").contains("`sticky-cookie` must be a cookie name"));
        assert!(
            err("sticky = \"none\"\nsticky-cookie = \"SRV\"")
                .contains("`sticky = \"none\"` contradicts `sticky-cookie`")
        );
        assert!(
            err("sticky = \"source-ip\"\nbalance = \"least-connections\"")
                .contains("contradicts `balance = \"least-connections\"`")
        );
        assert!(
            err("sticky = \"source-ip\"\nsticky-cookie = \"SRV\"")
                .contains("contradicts `sticky-cookie`")
        );
        assert!(err("sticky = \"ip\"").contains("unknown variant `ip`"));
        assert!(err("timeout-ms = 0").contains("`timeout-ms` must be at least 1"));
        assert!(err("drain = \"cut\"").contains("need `drain-at-ms`"));
        assert!(err("upgrade = \"maybe\"").contains("unknown variant `maybe`"));
    }
}
