//! `idle-killer`: relays bytes opaquely and closes a connection that has been quiet for
//! `timeout-ms`, the way reverse proxies and load balancers enforce an idle timeout.
//!
//! Which traffic re-arms the timer is `rearm` (every product in calibration.md re-arms on
//! traffic in either direction). How the connection ends is `close`:
//!
//! - `fin`: FIN to both sides, no WebSocket Close frame (the client sees 1006), as nginx,
//!   the AWS ALB, Heroku, Squid and Cloudflare do;
//! - `reset`: RST to both sides (Envoy's stream reset);
//! - `drop`: nothing reaches either side; the flow is forgotten and later bytes vanish (Azure
//!   Load Balancer: the client finds out only when its writes or pings go unanswered);
//! - `reset-on-next-packet`: like `drop`, but the next bytes from a side are answered with
//!   RST to that side (AWS NLB, unverified in calibration.md).
//!
//! `close-upstream` overrides `close` for the upstream side (HAProxy's `timeout tunnel`: FIN
//! to the client, RST to the backend). If the timer fires before the upstream has answered at
//! all, on a port in `http-ports`, the client gets `504 Gateway Timeout` first, as nginx and
//! HAProxy answer an upstream that never responded.
//!
//! `preset` names a product's defaults; keys given beside it override the preset.
//!
//! | preset | timeout | close | source (calibration.md) |
//! |---|---|---|---|
//! | `nginx` | 60 s | fin | `proxy_read_timeout` 60 s, FIN to both sides, no Close frame |
//! | `aws-alb` | 60 s | fin | ALB / CLB idle timeout 60 s |
//! | `heroku` | 55 s | fin | Heroku router: 55 s without data (H15) |
//! | `azure-lb` | 240 s | drop | Azure LB: 4 min, flow silently dropped |
//! | `aws-nlb` | 350 s | reset-on-next-packet | NLB TCP idle 350 s, RST on the next packet |
//! | `squid` | 900 s | fin | Squid `read_timeout` 15 min, re-armed by traffic |
//! | `envoy` | 300 s | reset | Envoy `stream_idle_timeout` 5 min, stream reset |
//! | `cloudflare` | 100 s | fin | Cloudflare: about 100 s idle |
//! | `haproxy-30s` | 30 s | fin, RST upstream | HAProxy http mode, client/server 30 s, no `timeout tunnel` |

use std::time::Duration;

use serde::Deserialize;

use crate::http;
use crate::model::{Connection, Cx, Event, Hop, Side};
use crate::pass::relay;
use crate::registry::{HopError, Model, ParamError, each};
use crate::spec::HopEnv;

/// The timer id the killer uses.
const IDLE_TIMER: u64 = 1;

/// Which traffic re-arms the idle timer.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Rearm {
    /// Bytes in either direction (nginx, HAProxy, Apache, Squid, tinyproxy, ALB).
    #[default]
    Either,
    /// Only bytes from the client.
    FromClient,
    /// Only bytes from the upstream (a pure read timeout).
    FromUpstream,
}

impl Rearm {
    fn rearms(self, from: Side) -> bool {
        match self {
            Rearm::Either => true,
            Rearm::FromClient => from == Side::Client,
            Rearm::FromUpstream => from == Side::Upstream,
        }
    }

    /// The name scenario files use.
    pub fn as_str(self) -> &'static str {
        match self {
            Rearm::Either => "either",
            Rearm::FromClient => "from-client",
            Rearm::FromUpstream => "from-upstream",
        }
    }
}

/// How an expired connection ends, per side.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Expiry {
    /// FIN: an orderly TCP close with no WebSocket Close frame.
    Fin,
    /// RST.
    Reset,
    /// Nothing is sent; later bytes vanish.
    Drop,
    /// Nothing is sent; the next bytes from the side are answered with RST.
    ResetOnNextPacket,
}

impl Expiry {
    /// The name scenario files use.
    pub fn as_str(self) -> &'static str {
        match self {
            Expiry::Fin => "fin",
            Expiry::Reset => "reset",
            Expiry::Drop => "drop",
            Expiry::ResetOnNextPacket => "reset-on-next-packet",
        }
    }
}

/// A product's idle-timeout defaults.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// nginx `proxy_read_timeout` 60 s.
    Nginx,
    /// AWS Application Load Balancer, 60 s.
    AwsAlb,
    /// Heroku router, 55 s.
    Heroku,
    /// Azure Load Balancer, 4 min, silent drop.
    AzureLb,
    /// AWS Network Load Balancer, 350 s, RST on the next packet.
    AwsNlb,
    /// Squid `read_timeout`, 15 min.
    Squid,
    /// Envoy `stream_idle_timeout`, 5 min, reset.
    Envoy,
    /// Cloudflare, about 100 s.
    Cloudflare,
    /// HAProxy http mode with client/server timeouts of 30 s and no `timeout tunnel`.
    #[serde(rename = "haproxy-30s")]
    Haproxy30s,
}

impl Preset {
    fn params(self) -> Params {
        let (secs, close, close_upstream) = match self {
            Preset::Nginx | Preset::AwsAlb => (60, Expiry::Fin, None),
            Preset::Heroku => (55, Expiry::Fin, None),
            Preset::AzureLb => (240, Expiry::Drop, None),
            Preset::AwsNlb => (350, Expiry::ResetOnNextPacket, None),
            Preset::Squid => (900, Expiry::Fin, None),
            Preset::Envoy => (300, Expiry::Reset, None),
            Preset::Cloudflare => (100, Expiry::Fin, None),
            Preset::Haproxy30s => (30, Expiry::Fin, Some(Expiry::Reset)),
        };
        Params {
            timeout: Duration::from_secs(secs),
            rearm: Rearm::Either,
            close,
            close_upstream: close_upstream.unwrap_or(close),
            http_ports: default_http_ports(),
        }
    }
}

fn default_http_ports() -> Vec<u16> {
    vec![80]
}

/// Parameters of `idle-killer`, after the preset and the explicit keys are combined.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(try_from = "RawParams")]
pub struct Params {
    /// How long a connection may be quiet.
    pub timeout: Duration,
    /// Which traffic re-arms the timer.
    pub rearm: Rearm,
    /// How the client side ends.
    pub close: Expiry,
    /// How the upstream side ends.
    pub close_upstream: Expiry,
    /// Ports whose first exchange is HTTP, where an unanswered request gets 504.
    pub http_ports: Vec<u16>,
}

/// `idle-killer` as a scenario file spells it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawParams {
    /// A product's defaults; the keys below override them.
    preset: Option<Preset>,
    /// Milliseconds without traffic before the connection is closed. Required without a
    /// preset.
    timeout_ms: Option<u64>,
    /// Default `"either"`.
    rearm: Option<Rearm>,
    /// Default `"fin"`.
    close: Option<Expiry>,
    /// Default: as `close`.
    close_upstream: Option<Expiry>,
    /// Default `[80]`.
    http_ports: Option<Vec<u16>>,
}

impl TryFrom<RawParams> for Params {
    type Error = ParamError;

    fn try_from(raw: RawParams) -> Result<Self, ParamError> {
        let mut p = match (raw.preset, raw.timeout_ms) {
            (Some(preset), _) => preset.params(),
            (None, Some(_)) => Preset::Nginx.params(),
            (None, None) => {
                return Err(ParamError::invalid(
                    "timeout-ms",
                    "idle-killer needs `timeout-ms` (milliseconds) or a `preset` (nginx, aws-alb, heroku, azure-lb, aws-nlb, squid, envoy, cloudflare, haproxy-30s)",
                ));
            }
        };
        if let Some(ms) = raw.timeout_ms {
            if ms == 0 {
                return Err(ParamError::Zero { key: "timeout-ms" });
            }
            p.timeout = Duration::from_millis(ms);
        }
        if let Some(r) = raw.rearm {
            p.rearm = r;
        }
        if let Some(c) = raw.close {
            p.close = c;
            p.close_upstream = c;
        }
        if let Some(c) = raw.close_upstream {
            p.close_upstream = c;
        }
        if let Some(ports) = raw.http_ports {
            p.http_ports = ports;
        }
        Ok(p)
    }
}

impl Model for Params {
    const NAME: &'static str = "idle-killer";
    const DESCRIPTION: &'static str = "relays opaquely; closes a connection quiet for `timeout-ms`";
    const PARAMETERS: &'static str =
        "`preset`, `timeout-ms`, `rearm`, `close`, `close-upstream`, `http-ports`";

    fn hop(&self, _: &HopEnv) -> Result<Box<dyn Hop>, HopError> {
        each(self, |p| IdleKiller::new(p.clone()))
    }

    fn summary(&self) -> String {
        let close = if self.close == self.close_upstream {
            self.close.as_str().to_string()
        } else {
            format!(
                "{} (upstream {})",
                self.close.as_str(),
                self.close_upstream.as_str()
            )
        };
        format!(
            "idle-killer timeout={}ms rearm={} close={close}",
            self.timeout.as_millis(),
            self.rearm.as_str()
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Relaying, timer armed.
    Open,
    /// Both sides have closed; the timer is off.
    Done,
    /// The timer fired.
    Expired,
}

/// A connection through `idle-killer`.
#[derive(Debug)]
pub struct IdleKiller {
    params: Params,
    state: State,
    http: bool,
    answered: bool,
    closed: [bool; 2],
}

impl IdleKiller {
    /// A fresh connection.
    pub fn new(params: Params) -> Self {
        Self {
            params,
            state: State::Open,
            http: false,
            answered: false,
            closed: [false; 2],
        }
    }

    fn arm(&self, cx: &mut Cx) {
        let at = cx.now() + self.params.timeout;
        cx.set_timer(IDLE_TIMER, at);
    }

    fn expiry(&self, side: Side) -> Expiry {
        match side {
            Side::Client => self.params.close,
            Side::Upstream => self.params.close_upstream,
        }
    }

    fn expire(&mut self, cx: &mut Cx) {
        self.state = State::Expired;
        let quiet = self.params.timeout.as_millis();
        if self.http && !self.answered {
            cx.note(format!(
                "upstream silent for {quiet} ms before answering: 504 to the client"
            ));
            cx.send(
                Side::Client,
                http::error_response(
                    504,
                    "Gateway Timeout",
                    "The upstream did not answer in time.",
                ),
            );
            cx.fin(Side::Client);
            cx.fin(Side::Upstream);
            return;
        }
        cx.note(format!("idle for {quiet} ms: closing"));
        for side in [Side::Client, Side::Upstream] {
            if self.closed[side.index()] {
                continue;
            }
            match self.expiry(side) {
                Expiry::Fin => cx.fin(side),
                Expiry::Reset => cx.reset(side),
                Expiry::Drop | Expiry::ResetOnNextPacket => {
                    cx.note(format!("{} not told: the flow is forgotten", side.as_str()))
                }
            }
        }
    }

    fn after_expiry(&mut self, cx: &mut Cx, event: Event<'_>) {
        if let Event::Data { from, bytes } = event {
            match self.expiry(from) {
                Expiry::ResetOnNextPacket if !self.closed[from.index()] => {
                    cx.note(format!(
                        "{} bytes from {} on a forgotten flow: RST",
                        bytes.len(),
                        from.as_str()
                    ));
                    cx.reset(from);
                    self.closed[from.index()] = true;
                }
                _ => cx.note(format!(
                    "discarded {} bytes from {} after the idle timeout",
                    bytes.len(),
                    from.as_str()
                )),
            }
        }
    }
}

impl Connection for IdleKiller {
    fn on_event(&mut self, cx: &mut Cx, event: Event<'_>) {
        match self.state {
            State::Expired => return self.after_expiry(cx, event),
            State::Done => return relay(cx, event),
            State::Open => {}
        }
        match event {
            Event::Accepted { port } => {
                self.http = self.params.http_ports.contains(&port);
                self.arm(cx);
            }
            Event::Timer { id: IDLE_TIMER } => return self.expire(cx),
            Event::Data { from, .. } => {
                if from == Side::Upstream {
                    self.answered = true;
                }
                if self.params.rearm.rearms(from) {
                    self.arm(cx);
                }
            }
            Event::Fin { from } | Event::Reset { from } => {
                self.closed[from.index()] = true;
                if matches!(event, Event::Reset { .. }) {
                    self.closed[from.other().index()] = true;
                }
            }
            Event::DialFailed { .. } => {
                self.closed = [true; 2];
            }
            Event::Dialed | Event::Timer { .. } => {}
        }
        relay(cx, event);
        if self.closed == [true; 2] {
            cx.cancel_timer(IDLE_TIMER);
            self.state = State::Done;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Action, CloseHow};

    fn killer(close: Expiry) -> (IdleKiller, Cx) {
        let mut p = Preset::Nginx.params();
        p.close = close;
        p.close_upstream = close;
        let mut cx = Cx::new(1);
        let mut k = IdleKiller::new(p);
        k.on_event(&mut cx, Event::Accepted { port: 80 });
        k.on_event(&mut cx, Event::Dialed);
        (k, cx)
    }

    fn switched(k: &mut IdleKiller, cx: &mut Cx) {
        k.on_event(
            cx,
            Event::Data {
                from: Side::Upstream,
                bytes: b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
            },
        );
    }

    fn at(cx: &mut Cx, ms: u64) {
        cx.set_now(Duration::from_millis(ms));
    }

    #[test]
    fn traffic_either_way_moves_the_deadline() {
        let (mut k, mut cx) = killer(Expiry::Fin);
        assert_eq!(
            cx.take_actions(),
            vec![
                Action::SetTimer {
                    id: IDLE_TIMER,
                    at: Duration::from_secs(60)
                },
                Action::Dial {
                    backend: 0,
                    port: 80
                }
            ]
        );
        at(&mut cx, 1000);
        k.on_event(
            &mut cx,
            Event::Data {
                from: Side::Upstream,
                bytes: b"x",
            },
        );
        assert_eq!(
            cx.take_actions(),
            vec![
                Action::SetTimer {
                    id: IDLE_TIMER,
                    at: Duration::from_millis(61_000)
                },
                Action::Send {
                    to: Side::Client,
                    bytes: b"x".to_vec()
                }
            ]
        );
    }

    #[test]
    fn expiry_after_an_answer_closes_both_sides_without_a_close_frame() {
        let (mut k, mut cx) = killer(Expiry::Fin);
        switched(&mut k, &mut cx);
        cx.take_actions();
        k.on_event(&mut cx, Event::Timer { id: IDLE_TIMER });
        let closes: Vec<_> = cx
            .take_actions()
            .into_iter()
            .filter(|a| !matches!(a, Action::Note(_)))
            .collect();
        assert_eq!(
            closes,
            vec![
                Action::Close {
                    side: Side::Client,
                    how: CloseHow::Fin
                },
                Action::Close {
                    side: Side::Upstream,
                    how: CloseHow::Fin
                }
            ]
        );
        k.on_event(
            &mut cx,
            Event::Data {
                from: Side::Client,
                bytes: b"late",
            },
        );
        assert!(
            matches!(&cx.take_actions()[..], [Action::Note(n)] if n.contains("discarded 4 bytes"))
        );
    }

    #[test]
    fn an_upstream_that_never_answered_gets_the_client_a_504() {
        let (mut k, mut cx) = killer(Expiry::Fin);
        cx.take_actions();
        k.on_event(&mut cx, Event::Timer { id: IDLE_TIMER });
        let actions = cx.take_actions();
        let sent: Vec<u8> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Send {
                    to: Side::Client,
                    bytes,
                } => Some(bytes.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        assert!(sent.starts_with(b"HTTP/1.1 504 Gateway Timeout\r\n"));
    }

    #[test]
    fn silent_drop_tells_nobody_and_swallows_later_bytes() {
        let (mut k, mut cx) = killer(Expiry::Drop);
        switched(&mut k, &mut cx);
        cx.take_actions();
        k.on_event(&mut cx, Event::Timer { id: IDLE_TIMER });
        k.on_event(
            &mut cx,
            Event::Data {
                from: Side::Client,
                bytes: b"ping",
            },
        );
        assert!(
            cx.take_actions()
                .iter()
                .all(|a| matches!(a, Action::Note(_))),
            "a silent drop sends nothing"
        );
    }

    #[test]
    fn reset_on_next_packet_answers_the_sender_with_rst() {
        let (mut k, mut cx) = killer(Expiry::ResetOnNextPacket);
        switched(&mut k, &mut cx);
        k.on_event(&mut cx, Event::Timer { id: IDLE_TIMER });
        cx.take_actions();
        k.on_event(
            &mut cx,
            Event::Data {
                from: Side::Client,
                bytes: b"ping",
            },
        );
        let actions = cx.take_actions();
        assert!(actions.contains(&Action::Close {
            side: Side::Client,
            how: CloseHow::Reset
        }));
        assert!(!actions.iter().any(|a| matches!(a, Action::Send { .. })));
    }

    #[test]
    fn a_closed_connection_stops_the_timer() {
        let (mut k, mut cx) = killer(Expiry::Fin);
        k.on_event(&mut cx, Event::Fin { from: Side::Client });
        k.on_event(
            &mut cx,
            Event::Fin {
                from: Side::Upstream,
            },
        );
        assert!(
            cx.take_actions()
                .contains(&Action::CancelTimer { id: IDLE_TIMER })
        );
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
        let p = parse("[hop]\npreset = \"azure-lb\"\n").unwrap();
        assert_eq!(p.timeout, Duration::from_secs(240));
        assert_eq!(p.close, Expiry::Drop);
        let p = parse("[hop]\npreset = \"haproxy-30s\"\ntimeout-ms = 2000\n").unwrap();
        assert_eq!(p.timeout, Duration::from_secs(2));
        assert_eq!((p.close, p.close_upstream), (Expiry::Fin, Expiry::Reset));
        let p = parse("[hop]\ntimeout-ms = 2000\nclose = \"reset\"\n").unwrap();
        assert_eq!((p.close, p.close_upstream), (Expiry::Reset, Expiry::Reset));
        let err = parse("[hop]\nclose = \"fin\"\n").unwrap_err();
        assert!(err.contains("needs `timeout-ms`"), "{err}");
        let err = parse("[hop]\npreset = \"nginks\"\n").unwrap_err();
        assert!(err.contains("unknown variant `nginks`"), "{err}");
    }
}
