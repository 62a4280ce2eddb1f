//! `connect-proxy`: an explicit (forward) proxy that the client is configured to use, as
//! RFC 6455 §4.1 describes: the client sends `CONNECT host:port`, and a 2xx answer starts an
//! opaque tunnel (RFC 9110 §9.3.6).
//!
//! The proxy checks, in order: credentials (`auth`: without a matching
//! `Proxy-Authorization: Basic`, 407 with `Proxy-Authenticate`), the port (`allowed-ports`:
//! Squid's default `http_access deny CONNECT !SSL_ports` allows 443 only, so ws:// through it
//! gets 403) and the host (`allowed-hosts`, default any). A request that is not CONNECT (an
//! absolute-form `GET http://host/path`) is forwarded as plain HTTP with `Upgrade` and the
//! other hop-by-hop fields removed, as Squid ≥ 5 does by default
//! (`http_upgrade_request_protocols` unset); with `forward-upgrade = true` it is forwarded
//! with them and a 101 opens a tunnel.
//!
//! Presets (calibration.md, explicit proxies): `squid` (CONNECT to 443 only, Upgrade dropped
//! when forwarding) and `tinyproxy` (Debian's default configuration: CONNECT to every port).

use serde::Deserialize;

use crate::http::{
    self, Head, Item, Kind, MAX_HEAD_BYTES, MessageError, Messages, StartLine, base64,
};
use crate::http_proxy::{HttpProxy, OnGarbage, Policy, Route, Settings};
use crate::model::{Connection, Cx, Event, Hop, Side};
use crate::pass::relay;
use crate::registry::{HopError, Model, ParamError, each};
use crate::spec::HopEnv;

/// A product's defaults.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// Squid 5 defaults: CONNECT to 443 only; Upgrade dropped when forwarding.
    Squid,
    /// tinyproxy's Debian configuration: CONNECT to any port.
    Tinyproxy,
}

/// Parameters of `connect-proxy`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(try_from = "RawParams")]
pub struct Params {
    /// Ports CONNECT may reach; `None`: any.
    pub allowed_ports: Option<Vec<u16>>,
    /// Hosts CONNECT may reach; `None`: any.
    pub allowed_hosts: Option<Vec<String>>,
    /// `user:password` the client must present; `None`: no authentication.
    pub auth: Option<String>,
    /// Whether requests forwarded without CONNECT keep `Upgrade`.
    pub forward_upgrade: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawParams {
    /// Default `squid`.
    preset: Option<Preset>,
    /// Default (squid) `[443]`; an empty list allows none.
    allowed_ports: Option<Vec<u16>>,
    /// Default: any host.
    allowed_hosts: Option<Vec<String>>,
    /// Default: none.
    auth: Option<String>,
    /// Default (squid) false.
    forward_upgrade: Option<bool>,
}

impl TryFrom<RawParams> for Params {
    type Error = ParamError;

    fn try_from(raw: RawParams) -> Result<Self, ParamError> {
        let mut p = match raw.preset.unwrap_or(Preset::Squid) {
            Preset::Squid => Params {
                allowed_ports: Some(vec![443]),
                allowed_hosts: None,
                auth: None,
                forward_upgrade: false,
            },
            Preset::Tinyproxy => Params {
                allowed_ports: None,
                allowed_hosts: None,
                auth: None,
                forward_upgrade: false,
            },
        };
        if raw.allowed_ports.is_some() {
            p.allowed_ports = raw.allowed_ports;
        }
        if raw.allowed_hosts.is_some() {
            p.allowed_hosts = raw.allowed_hosts;
        }
        if let Some(auth) = raw.auth {
            if !auth.contains(':') {
                return Err(ParamError::invalid(
                    "auth",
                    format!("`auth` must be `user:password`, not `{auth}`"),
                ));
            }
            p.auth = Some(auth);
        }
        if let Some(f) = raw.forward_upgrade {
            p.forward_upgrade = f;
        }
        Ok(p)
    }
}

impl Model for Params {
    const NAME: &'static str = "connect-proxy";
    const DESCRIPTION: &'static str = concat!(
        "an explicit proxy: CONNECT checked against credentials, ports and hosts, then an opaque ",
        "tunnel; other requests forwarded as plain HTTP without `Upgrade`",
    );
    const PARAMETERS: &'static str = concat!(
        "`preset` (`squid`: ports [443], the default; `tinyproxy`: any port), `allowed-ports`, ",
        "`allowed-hosts`, `auth` (`user:password`), `forward-upgrade` (default false, as Squid ≥ ",
        "5)",
    );

    fn hop(&self, _: &HopEnv) -> Result<Box<dyn Hop>, HopError> {
        each(self, |p| ConnectProxy::new(p.clone()))
    }

    fn summary(&self) -> String {
        let ports = match &self.allowed_ports {
            Some(p) => format!("{p:?}"),
            None => "any".to_string(),
        };
        format!(
            "connect-proxy ports={ports} hosts={} auth={} forward-upgrade={}",
            self.allowed_hosts
                .as_ref()
                .map_or("any".to_string(), |h| h.join(",")),
            if self.auth.is_some() { "basic" } else { "none" },
            self.forward_upgrade
        )
    }
}

#[derive(Debug)]
enum State {
    /// Reading the first request.
    Start { port: u16, messages: Messages },
    /// CONNECT allowed; waiting for the upstream.
    Dialing,
    /// The tunnel is open.
    Tunnel,
    /// Forwarding plain HTTP.
    Forward(Box<HttpProxy<Forward>>),
    /// Refused and closed.
    Closed,
}

/// A connection through `connect-proxy`.
#[derive(Debug)]
pub struct ConnectProxy {
    params: Params,
    state: State,
}

impl ConnectProxy {
    /// A fresh connection.
    pub fn new(params: Params) -> Self {
        Self {
            params,
            state: State::Start {
                port: 0,
                messages: Messages::new(Kind::Request, MAX_HEAD_BYTES),
            },
        }
    }

    fn refuse(
        &mut self,
        cx: &mut Cx,
        status: u16,
        reason: &str,
        why: String,
        extra: &[(&str, &str)],
    ) {
        cx.note(format!("{why}: {status} {reason}"));
        cx.send(
            Side::Client,
            http::error_response_with(status, reason, &why, extra),
        );
        cx.fin(Side::Client);
        self.state = State::Closed;
    }

    fn first_request(&mut self, cx: &mut Cx, port: u16, head: Head, rest: Vec<u8>) {
        let (method, target) = match &head.start {
            StartLine::Request { method, target, .. } => (method.clone(), target.clone()),
            StartLine::Response { .. } => return,
        };
        if let Some(auth) = &self.params.auth {
            let expected = format!("Basic {}", base64(auth.as_bytes()));
            let given = head
                .get("proxy-authorization")
                .map(|v| String::from_utf8_lossy(v).trim().to_string());
            if given.as_deref() != Some(expected.as_str()) {
                let why = match given {
                    None => "no Proxy-Authorization".to_string(),
                    Some(_) => "wrong Proxy-Authorization".to_string(),
                };
                return self.refuse(
                    cx,
                    407,
                    "Proxy Authentication Required",
                    why,
                    &[("Proxy-Authenticate", "Basic realm=\"gauntlet\"")],
                );
            }
        }
        if !method.eq_ignore_ascii_case("CONNECT") {
            cx.note(format!(
                "{method} {target} without CONNECT: forwarding as plain HTTP"
            ));
            let mut forward = Box::new(HttpProxy::new(
                Forward {
                    keep_upgrade: self.params.forward_upgrade,
                },
                Settings {
                    http_ports: None,
                    on_garbage: OnGarbage::ErrorPage,
                    max_head_bytes: MAX_HEAD_BYTES,
                    header_timeout: Some(http::HEADER_TIMEOUT),
                },
            ));
            forward.accept_read(cx, port, head, &rest);
            self.state = State::Forward(forward);
            return;
        }
        let Some((host, port_text)) = target.rsplit_once(':') else {
            return self.refuse(
                cx,
                400,
                "Bad Request",
                format!("CONNECT target `{target}` has no port"),
                &[],
            );
        };
        let Ok(to_port) = port_text.parse::<u16>() else {
            return self.refuse(
                cx,
                400,
                "Bad Request",
                format!("CONNECT port `{port_text}` is not a number"),
                &[],
            );
        };
        if let Some(ports) = &self.params.allowed_ports {
            if !ports.contains(&to_port) {
                return self.refuse(
                    cx,
                    403,
                    "Forbidden",
                    format!("CONNECT {target} denied: port {to_port} is not in {ports:?}"),
                    &[],
                );
            }
        }
        if let Some(hosts) = &self.params.allowed_hosts {
            if !hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
                return self.refuse(
                    cx,
                    403,
                    "Forbidden",
                    format!("CONNECT {target} denied: host {host} is not allowed"),
                    &[],
                );
            }
        }
        cx.note(format!(
            "CONNECT {target} allowed: dialing upstream port {to_port}"
        ));
        // Dial first: the driver queues bytes for an upstream being dialed, but has nowhere
        // to put bytes for one not yet asked for.
        cx.dial_named(host, to_port);
        if !rest.is_empty() {
            cx.note(format!(
                "{} bytes sent before the tunnel opened: queued",
                rest.len()
            ));
            cx.send(Side::Upstream, rest);
        }
        self.state = State::Dialing;
    }
}

impl Connection for ConnectProxy {
    fn on_event(&mut self, cx: &mut Cx, event: Event<'_>) {
        match (&mut self.state, event) {
            (State::Start { port, .. }, Event::Accepted { port: p }) => {
                *port = p;
                cx.set_timer(
                    http::HEADER_TIMER,
                    cx.now().saturating_add(http::HEADER_TIMEOUT),
                );
            }
            (
                State::Start { messages, .. },
                Event::Timer {
                    id: http::HEADER_TIMER,
                },
            ) => {
                let (note, answer) =
                    http::header_timed_out(http::HEADER_TIMEOUT, messages.buffered());
                cx.note(note);
                cx.send(Side::Client, answer);
                cx.fin(Side::Client);
                self.state = State::Closed;
            }
            (State::Start { port, messages }, Event::Data { bytes, .. }) => {
                messages.push(bytes);
                let port = *port;
                let read = messages.read();
                if !matches!(read, Ok(None)) {
                    cx.cancel_timer(http::HEADER_TIMER);
                }
                match read {
                    Ok(None | Some(Item::Body(_) | Item::End)) => {}
                    Ok(Some(Item::Head { head, .. })) => {
                        let rest = messages.take();
                        self.first_request(cx, port, head, rest);
                    }
                    Err(MessageError::HeadTooLong { max, held }) => {
                        let (note, answer) = http::head_too_long(Kind::Request, max, held);
                        cx.note(note);
                        cx.send(Side::Client, answer);
                        cx.fin(Side::Client);
                        self.state = State::Closed;
                    }
                    Err(e) => {
                        let why = format!("not an HTTP request ({e})");
                        self.refuse(cx, 400, "Bad Request", why, &[]);
                    }
                }
            }
            (State::Start { .. }, Event::Fin { .. } | Event::Reset { .. }) => {
                cx.cancel_timer(http::HEADER_TIMER);
                cx.fin(Side::Client);
                self.state = State::Closed;
            }
            (State::Dialing, Event::Dialed) => {
                cx.send(
                    Side::Client,
                    b"HTTP/1.1 200 Connection established\r\n\r\n".to_vec(),
                );
                self.state = State::Tunnel;
            }
            (State::Dialing, Event::DialFailed { reason }) => {
                let why = format!("upstream unreachable ({reason})");
                self.refuse(cx, 503, "Service Unavailable", why, &[]);
            }
            (State::Dialing | State::Tunnel, event) => relay(cx, event),
            (State::Forward(inner), event) => inner.on_event(cx, event),
            (State::Closed, Event::Data { from, bytes }) => cx.note(format!(
                "discarded {} bytes from {} after refusing",
                bytes.len(),
                from.as_str()
            )),
            (State::Start { .. } | State::Closed, _) => {}
        }
    }
}

/// How `connect-proxy` forwards requests that are not CONNECT: origin-form upstream, hop-by-hop
/// fields removed unless `Upgrade` is to be kept.
#[derive(Debug)]
pub struct Forward {
    keep_upgrade: bool,
}

impl Policy for Forward {
    fn request(&mut self, _cx: &mut Cx, head: &mut Head, port: u16) -> Route {
        let mut to = None;
        if let StartLine::Request { target, .. } = &mut head.start {
            if let Some(rest) = target.strip_prefix("http://") {
                let (authority, path) = rest
                    .find('/')
                    .map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
                let (host, port) = match authority.rsplit_once(':') {
                    Some((h, p)) => (h, p.parse().unwrap_or(80)),
                    None => (authority, 80),
                };
                to = Some((host.to_string(), port));
                *target = path.to_string();
            }
        }
        head.remove("proxy-authorization");
        head.remove("proxy-connection");
        if !self.keep_upgrade {
            head.strip_hop_by_hop(&["transfer-encoding"]);
        }
        // The absolute-form target names the destination, as CONNECT's authority does.
        match to {
            Some((host, port)) => Route::Named { host, port },
            None => Route::Upstream { backend: 0, port },
        }
    }

    fn response(&mut self, _cx: &mut Cx, head: &mut Head, _request: &Head) {
        if !self.keep_upgrade {
            head.strip_hop_by_hop(&["transfer-encoding"]);
        }
    }

    fn tunnels_upgrades(&self) -> bool {
        self.keep_upgrade
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Action, CloseHow};

    fn proxy(params: Params) -> (ConnectProxy, Cx) {
        let mut cx = Cx::new(1);
        let mut p = ConnectProxy::new(params);
        p.on_event(&mut cx, Event::Accepted { port: 3128 });
        (p, cx)
    }

    fn squid() -> Params {
        Params {
            allowed_ports: Some(vec![443]),
            allowed_hosts: None,
            auth: None,
            forward_upgrade: false,
        }
    }

    #[test]
    fn a_connect_that_does_not_arrive_within_the_header_timeout_is_answered_408() {
        let (mut p, mut cx) = proxy(squid());
        let armed = cx.take_actions();
        assert!(
            armed.contains(&Action::SetTimer {
                id: http::HEADER_TIMER,
                at: http::HEADER_TIMEOUT
            }),
            "{armed:?}"
        );
        send(&mut p, &mut cx, b"CONNECT server:443 HTT");
        let actions = crate::testkit::header_timer_runs_out(&mut p, &mut cx);
        assert!(
            matches!(&actions[1], Action::Send { to: Side::Client, bytes } if bytes.starts_with(b"HTTP/1.1 408 ")),
            "{actions:?}"
        );
        assert_eq!(
            actions[2],
            Action::Close {
                side: Side::Client,
                how: CloseHow::Fin
            }
        );
        // A whole head in time stops the timer.
        let (mut p, mut cx) = proxy(squid());
        cx.take_actions();
        let actions = send(&mut p, &mut cx, b"CONNECT server:443 HTTP/1.1\r\n\r\n");
        assert!(
            actions.contains(&Action::CancelTimer {
                id: http::HEADER_TIMER
            }),
            "{actions:?}"
        );
    }

    fn send(p: &mut ConnectProxy, cx: &mut Cx, bytes: &[u8]) -> Vec<Action> {
        p.on_event(
            cx,
            Event::Data {
                from: Side::Client,
                bytes,
            },
        );
        cx.take_actions()
    }

    fn to_client(actions: &[Action]) -> String {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send {
                    to: Side::Client,
                    bytes,
                } => Some(String::from_utf8_lossy(bytes).to_string()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn squid_denies_connect_to_port_80_with_403() {
        let (mut p, mut cx) = proxy(squid());
        let actions = send(
            &mut p,
            &mut cx,
            b"CONNECT server:80 HTTP/1.1\r\nHost: server:80\r\n\r\n",
        );
        assert!(to_client(&actions).starts_with("HTTP/1.1 403 Forbidden\r\n"));
        assert!(actions.contains(&Action::Close {
            side: Side::Client,
            how: CloseHow::Fin
        }));
        assert!(
            !actions
                .iter()
                .any(|a| matches!(a, Action::Dial { .. } | Action::DialNamed { .. }))
        );
    }

    #[test]
    fn squid_tunnels_connect_to_443_after_the_dial() {
        let (mut p, mut cx) = proxy(squid());
        let actions = send(
            &mut p,
            &mut cx,
            b"CONNECT server:443 HTTP/1.1\r\nHost: server:443\r\n\r\n\x16\x03\x01",
        );
        assert!(actions.contains(&Action::DialNamed {
            host: "server".into(),
            port: 443
        }));
        assert!(actions.contains(&Action::Send {
            to: Side::Upstream,
            bytes: b"\x16\x03\x01".to_vec()
        }));
        assert!(to_client(&actions).is_empty(), "no 200 before the dial");
        p.on_event(&mut cx, Event::Dialed);
        assert_eq!(
            to_client(&cx.take_actions()),
            "HTTP/1.1 200 Connection established\r\n\r\n"
        );
        let actions = send(&mut p, &mut cx, b"opaque");
        assert_eq!(
            actions,
            vec![Action::Send {
                to: Side::Upstream,
                bytes: b"opaque".to_vec()
            }]
        );
    }

    #[test]
    fn bytes_after_the_connect_head_are_sent_after_the_dial() {
        let (mut p, mut cx) = proxy(squid());
        let actions = send(&mut p, &mut cx, b"CONNECT server:443 HTTP/1.1\r\n\r\nG");
        let dial = actions
            .iter()
            .position(|a| matches!(a, Action::DialNamed { .. }))
            .expect("a dial");
        let early = actions
            .iter()
            .position(|a| {
                *a == Action::Send {
                    to: Side::Upstream,
                    bytes: b"G".to_vec(),
                }
            })
            .expect("the early byte forwarded");
        assert!(
            dial < early,
            "an upstream must be dialed before bytes go to it: {actions:?}"
        );
    }

    #[test]
    fn credentials_are_checked_before_anything_else() {
        let mut params = squid();
        params.auth = Some("alice:secret".into());
        let (mut p, mut cx) = proxy(params.clone());
        let actions = send(&mut p, &mut cx, b"CONNECT server:443 HTTP/1.1\r\n\r\n");
        let answer = to_client(&actions);
        assert!(
            answer.starts_with(
                "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic"
            ),
            "{answer}"
        );
        let (mut p, mut cx) = proxy(params);
        let request = format!(
            "CONNECT server:443 HTTP/1.1\r\nProxy-Authorization: Basic {}\r\n\r\n",
            base64(b"alice:secret")
        );
        let actions = send(&mut p, &mut cx, request.as_bytes());
        assert!(actions.contains(&Action::DialNamed {
            host: "server".into(),
            port: 443
        }));
    }

    #[test]
    fn hosts_not_allowed_are_denied() {
        let mut params = squid();
        params.allowed_hosts = Some(vec!["example".into()]);
        let (mut p, mut cx) = proxy(params);
        let actions = send(&mut p, &mut cx, b"CONNECT server:443 HTTP/1.1\r\n\r\n");
        assert!(to_client(&actions).starts_with("HTTP/1.1 403"));
    }

    #[test]
    fn absolute_form_requests_are_forwarded_without_upgrade() {
        let (mut p, mut cx) = proxy(squid());
        let actions = send(
            &mut p,
            &mut cx,
            b"GET http://server/echo HTTP/1.1\r\nHost: server\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        );
        let up: String = actions
            .iter()
            .filter_map(|a| match a {
                Action::Send {
                    to: Side::Upstream,
                    bytes,
                } => Some(String::from_utf8_lossy(bytes).to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(up, "GET /echo HTTP/1.1\r\nHost: server\r\n\r\n");
        // The absolute-form target names the destination, as a CONNECT does.
        assert!(actions.contains(&Action::DialNamed {
            host: "server".into(),
            port: 80
        }));
    }
}
