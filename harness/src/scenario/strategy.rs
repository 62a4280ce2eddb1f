//! Client strategies (`[client] strategies`): what a real-time application does when its
//! WebSocket fails. Each listed strategy is a run of its own, as each scheme is; its runs are
//! named by the strategy in results (`scheme` holds its name) and expected in `[expect]` under
//! it. The defaults of every parameter are those of the library the strategy imitates.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use super::{Reconnect, Scheme};

/// A strategy's name, as scenario files spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StrategyKind {
    /// A WebSocket on port 80, the reference client as a scheme run has it.
    Ws,
    /// A WebSocket over TLS on port 443.
    Wss,
    /// `ws`, then, if it fails before its first message is delivered (the handshake, or the
    /// first message not arriving within `reply-timeout-ms`), `wss` at once: seed 001's
    /// "dynamically upgrade to WebSocket Secure when an uncooperative proxy is detected".
    WsThenWss,
    /// Socket.IO's default (engine.io-client's `transports: ["polling", "websocket"]`,
    /// `upgrade: true`): an Engine.IO session opened by HTTP long-polling, a WebSocket probed,
    /// and the session moved onto it if the probe is answered; else it stays on polling.
    PollingThenUpgrade,
    /// Socket.IO with `transports: ["websocket", "polling"]`: an Engine.IO session opened on a
    /// WebSocket; if that fails, after the reconnection delay, the client reconnects by
    /// polling, as Socket.IO's documentation tells an application to on `connect_error`
    /// (`socket.io.opts.transports = ["polling", "websocket"]`).
    WebsocketThenPolling,
    /// HTTP streaming on port 80: Server-Sent Events on a held response, messages by POST
    /// (the reference server's `/stream`).
    Streaming,
    /// Kaazing's fallback, seed 001: a WebSocket over TLS; if it fails before its first
    /// message is delivered, HTTP streaming over TLS on port 443 ("如果中间代理服务器被检测到,
    /// 那么下行 HTTP 信息流就会使用一个高度优化的加密流式连接").
    WssThenStreaming,
    /// `ws` whose first message must come within `detect-timeout-ms` of being due: a failed
    /// handshake, or a first message that stalls, marks an uncooperative intermediary, and
    /// the client goes to `wss` at once (seed 001's "dynamically upgrade to WebSocket Secure
    /// when an uncooperative proxy is detected", the detection explicit and short).
    DetectThenWss,
    /// The balancer-aware gateway, seed 001: the client asks the gateway, through the
    /// balancer, which instance serves it (`GET /instance`, answered with the instance's
    /// host name), then connects to that instance directly, the balancer out of the path
    /// ("该网关实例就可以将浏览器转接,直接连接到该活动的网关实例"). With `[client.reconnect]`, a
    /// cut sends it through the balancer again ("客户端会自动重连到负载均衡路由器").
    Redirect,
}

impl StrategyKind {
    /// Every strategy, in the order the documentation lists them.
    pub const ALL: [StrategyKind; 9] = [
        StrategyKind::Ws,
        StrategyKind::Wss,
        StrategyKind::WsThenWss,
        StrategyKind::PollingThenUpgrade,
        StrategyKind::WebsocketThenPolling,
        StrategyKind::Streaming,
        StrategyKind::WssThenStreaming,
        StrategyKind::DetectThenWss,
        StrategyKind::Redirect,
    ];

    /// The name scenario files and results use.
    pub fn as_str(self) -> &'static str {
        match self {
            StrategyKind::Ws => "ws",
            StrategyKind::Wss => "wss",
            StrategyKind::WsThenWss => "ws-then-wss",
            StrategyKind::PollingThenUpgrade => "polling-then-upgrade",
            StrategyKind::WebsocketThenPolling => "websocket-then-polling",
            StrategyKind::Streaming => "streaming",
            StrategyKind::WssThenStreaming => "wss-then-streaming",
            StrategyKind::DetectThenWss => "detect-then-wss",
            StrategyKind::Redirect => "redirect",
        }
    }

    /// The scheme of the strategy's first attempt, which keys its run inside the harness.
    pub fn scheme(self) -> Scheme {
        match self {
            StrategyKind::Wss | StrategyKind::WssThenStreaming => Scheme::Wss,
            _ => Scheme::Ws,
        }
    }

    /// The schemes (ports, TLS) its attempts may use (`ws-then-wss`: both; HTTP streaming
    /// over TLS is `wss`'s).
    pub fn schemes(self) -> &'static [Scheme] {
        match self {
            StrategyKind::Wss | StrategyKind::WssThenStreaming => &[Scheme::Wss],
            StrategyKind::WsThenWss | StrategyKind::DetectThenWss => &[Scheme::Ws, Scheme::Wss],
            _ => &[Scheme::Ws],
        }
    }

    /// Whether it speaks Engine.IO (to `/engine.io/`) rather than the reference WebSocket.
    pub fn engineio(self) -> bool {
        matches!(
            self,
            StrategyKind::PollingThenUpgrade | StrategyKind::WebsocketThenPolling
        )
    }
}

impl StrategyKind {
    /// Whether an attempt of it may be HTTP streaming (to `/stream`).
    pub fn streams(self) -> bool {
        matches!(
            self,
            StrategyKind::Streaming | StrategyKind::WssThenStreaming
        )
    }
}

impl fmt::Display for StrategyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A strategy and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Strategy {
    /// Which strategy.
    pub kind: StrategyKind,
    /// The Engine.IO client's settings (`polling-then-upgrade`, `websocket-then-polling`;
    /// the defaults, unused, for the others).
    pub engineio: EngineIoParams,
    /// How long `detect-then-wss` waits for the first message on ws (the default, unused,
    /// for the others).
    pub detect_timeout: Duration,
    /// Reconnecting after a cut (`[client.reconnect]`); `None`: a cut ends the run.
    pub reconnect: Option<Reconnect>,
}

/// `detect-then-wss`'s default `detect-timeout-ms`: sockjs-client's deadline for a transport
/// to deliver its first frame (`_transportTimeout`), `max(timeout, rto × roundTrips)` with
/// `timeout` 0 by default, the WebSocket transport's `roundTrips` 2 and `countRTO(rtt)` = 300 ms
/// + RTT up to an RTT of 100 ms (4 × RTT beyond): 800 ms at a 100 ms round trip.
pub const DEFAULT_DETECT_TIMEOUT: Duration = Duration::from_millis(800);

impl Strategy {
    /// `kind` with its defaults.
    pub fn new(kind: StrategyKind) -> Self {
        Self {
            kind,
            engineio: EngineIoParams::default(),
            detect_timeout: DEFAULT_DETECT_TIMEOUT,
            reconnect: None,
        }
    }
}

/// The settings of a Socket.IO application's client, from socket.io-client 4.8 and
/// engine.io-client 6.6 (`[client.polling-then-upgrade]`, `[client.websocket-then-polling]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineIoParams {
    /// How long a connection attempt has to open (the open packet): socket.io-client's
    /// Manager `timeout`, 20000 ms (`this.timeout(null == opts.timeout ? 20000 : …)`). Past
    /// it the attempt fails (`connect_error`, "timeout"): `handshake-timeout`.
    pub timeout: Duration,
    /// Probe a WebSocket after opening by polling, and upgrade if it answers:
    /// engine.io-client's `upgrade`, true.
    pub upgrade: bool,
    /// Give up a probe unanswered this long. engine.io-client has no such deadline (`None`,
    /// the default): a probe nobody answers waits while polling carries the session (the
    /// server's `upgradeTimeout`, 10 s, closes a probe WebSocket that never sends `5`).
    pub probe_timeout: Option<Duration>,
    /// The delay before reconnecting after a failed attempt (`websocket-then-polling`):
    /// socket.io-client's `reconnectionDelay`, 1000 ms, doubled per attempt (backo2's
    /// `factor` 2).
    pub reconnection_delay: Duration,
    /// The longest that delay grows: `reconnectionDelayMax`, 5000 ms.
    pub reconnection_delay_max: Duration,
    /// How far the delay is drawn from it, either way, in thousandths: `randomizationFactor`,
    /// 0.5 (500). The draw comes from the run's seed.
    pub randomization_thousandths: u32,
    /// Over TLS (port 443: polling over https, the WebSocket over wss): engine.io-client's
    /// `secure`, which follows the page's own scheme; false, a page served over http.
    pub secure: bool,
}

impl Default for EngineIoParams {
    fn default() -> Self {
        Self {
            timeout: Duration::from_millis(20_000),
            upgrade: true,
            probe_timeout: None,
            reconnection_delay: Duration::from_millis(1000),
            reconnection_delay_max: Duration::from_millis(5000),
            randomization_thousandths: 500,
            secure: false,
        }
    }
}

impl EngineIoParams {
    /// The delay before reconnection attempt `attempt` (0 for the first), as
    /// socket.io-client's backoff (`contrib/backo2.js`) computes it from a draw `rand` in
    /// [0, 1): `reconnection_delay × 2^attempt`, less or more (by the draw's first decimal
    /// digit being even or odd) `⌊rand × factor × that⌋`, at most `reconnection_delay_max`.
    pub fn backoff(&self, attempt: u32, rand: f64) -> Duration {
        super::reconnect::backoff(
            self.reconnection_delay,
            self.reconnection_delay_max,
            self.randomization_thousandths,
            attempt,
            rand,
        )
    }

    /// The longest an attempt can take before it opens or fails, plus the delay after it:
    /// for the run's time limit.
    pub fn longest_attempt(&self) -> Duration {
        self.timeout
            .saturating_add(self.probe_timeout.unwrap_or_default())
            .saturating_add(self.reconnection_delay_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_ones_files_use() {
        for kind in StrategyKind::ALL {
            let parsed: StrategyKind = toml::Value::String(kind.as_str().into())
                .try_into()
                .expect("a name");
            assert_eq!(parsed, kind);
        }
    }

    #[test]
    fn the_backoff_is_socket_io_clients() {
        let p = EngineIoParams::default();
        // rand 0.25: first decimal 2, even: 1000 - 125.
        assert_eq!(p.backoff(0, 0.25), Duration::from_millis(875));
        // rand 0.35: odd: 1000 + 175.
        assert_eq!(p.backoff(0, 0.35), Duration::from_millis(1175));
        // Doubled per attempt, at most 5000.
        assert_eq!(p.backoff(1, 0.0), Duration::from_millis(2000));
        assert_eq!(p.backoff(3, 0.0), Duration::from_millis(5000));
    }
}
