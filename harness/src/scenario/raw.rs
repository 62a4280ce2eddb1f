//! The tables of a scenario file as the TOML reader gives them, before validation: values keep
//! their spans so that every check can point at what it refuses, and defaults written here
//! have the empty span `0..0` (a value the file did not give).

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::{
    Browser, Handshake, Hop, Idle, Network, Route, Scheme, StrategyKind, WhileDisconnected,
    WorkloadKind,
};
use crate::tls::TlsVersions;
use crate::verdict::outcome::Outcome;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawScenario {
    pub(super) format: Spanned<u32>,
    pub(super) title: Spanned<String>,
    pub(super) source: Spanned<String>,
    #[serde(default)]
    pub(super) tags: Vec<String>,
    pub(super) seeds: Option<Spanned<Vec<u64>>>,
    #[serde(default)]
    pub(super) network: Network,
    #[serde(default)]
    pub(super) path: Vec<Spanned<Hop>>,
    pub(super) twin: Option<Spanned<PathBuf>>,
    #[serde(default)]
    pub(super) faults: Vec<RawFault>,
    pub(super) client: Spanned<RawClient>,
    #[serde(default)]
    pub(super) server: RawServer,
    pub(super) expect: Spanned<RawExpect>,
    pub(super) bounds: Option<Spanned<RawBounds>>,
}

/// `[bounds]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawBounds {
    pub(super) latency_p50_ms: Option<u64>,
    pub(super) latency_p90_ms: Option<u64>,
    pub(super) latency_p99_ms: Option<u64>,
    pub(super) latency_max_ms: Option<u64>,
    pub(super) handshake_ms: Option<u64>,
}

/// `[client]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawClient {
    pub(super) schemes: Option<Spanned<Vec<Scheme>>>,
    pub(super) strategies: Option<Spanned<Vec<StrategyKind>>>,
    pub(super) polling_then_upgrade: Option<Spanned<RawPollingThenUpgrade>>,
    pub(super) websocket_then_polling: Option<Spanned<RawWebsocketThenPolling>>,
    pub(super) detect_then_wss: Option<Spanned<RawDetectThenWss>>,
    pub(super) reconnect: Option<Spanned<RawReconnect>>,
    pub(super) route: Option<Spanned<Route>>,
    #[serde(default = "default_handshake_timeout_ms")]
    pub(super) handshake_timeout_ms: Spanned<u64>,
    #[serde(default)]
    pub(super) workload: RawWorkload,
    pub(super) ping_interval_ms: Option<Spanned<u64>>,
    pub(super) proxy_credentials: Option<Spanned<String>>,
    pub(super) mask: Option<Spanned<bool>>,
    pub(super) path_prefix: Option<Spanned<String>>,
    pub(super) sessions: Option<Spanned<u32>>,
    pub(super) subprotocols: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    pub(super) browser: Browser,
    pub(super) handshake: Option<Spanned<Handshake>>,
    pub(super) request: Option<Spanned<RawRequest>>,
}

/// `[client.request]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawRequest {
    pub(super) upgrade: Option<Spanned<String>>,
    pub(super) connection: Option<Spanned<String>>,
    pub(super) target: Option<Spanned<String>>,
    pub(super) http_version: Option<Spanned<String>>,
    pub(super) fields: Option<Spanned<std::collections::BTreeMap<String, Spanned<String>>>>,
    pub(super) reply_fields: Option<Spanned<std::collections::BTreeMap<String, Spanned<String>>>>,
    pub(super) refuse: Option<Spanned<u16>>,
    pub(super) first_message_with_request: Option<Spanned<bool>>,
    pub(super) first_push_with_101: Option<Spanned<bool>>,
    pub(super) body_bytes: Option<Spanned<u64>>,
    pub(super) permessage_deflate: Option<Spanned<bool>>,
}

/// `[client.polling-then-upgrade]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawPollingThenUpgrade {
    pub(super) timeout_ms: Option<Spanned<u64>>,
    pub(super) upgrade: Option<bool>,
    pub(super) probe_timeout_ms: Option<Spanned<u64>>,
    pub(super) secure: Option<bool>,
}

/// `[client.reconnect]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawReconnect {
    pub(super) attempts: Option<Spanned<u32>>,
    pub(super) delay_ms: Option<Spanned<u64>>,
    pub(super) delay_max_ms: Option<Spanned<u64>>,
    pub(super) randomization_factor: Option<Spanned<f64>>,
    pub(super) while_disconnected: Option<WhileDisconnected>,
}

/// `[client.detect-then-wss]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawDetectThenWss {
    pub(super) detect_timeout_ms: Option<Spanned<u64>>,
}

/// `[client.websocket-then-polling]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawWebsocketThenPolling {
    pub(super) timeout_ms: Option<Spanned<u64>>,
    pub(super) upgrade: Option<bool>,
    pub(super) probe_timeout_ms: Option<Spanned<u64>>,
    pub(super) secure: Option<bool>,
    pub(super) reconnection_delay_ms: Option<Spanned<u64>>,
    pub(super) reconnection_delay_max_ms: Option<Spanned<u64>>,
    pub(super) randomization_factor: Option<Spanned<f64>>,
}

fn default_handshake_timeout_ms() -> Spanned<u64> {
    Spanned::new(0..0, 5000)
}

/// `[client.workload]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawWorkload {
    #[serde(default)]
    pub(super) kind: WorkloadKind,
    #[serde(default = "default_messages")]
    pub(super) messages: Spanned<u32>,
    #[serde(default = "default_interval_ms")]
    pub(super) interval_ms: Spanned<u64>,
    #[serde(default = "default_payload_bytes")]
    pub(super) payload_bytes: Spanned<usize>,
    #[serde(default = "default_reply_timeout_ms")]
    pub(super) reply_timeout_ms: Spanned<u64>,
    #[serde(default)]
    pub(super) idle: Vec<Spanned<Idle>>,
    pub(super) binary: Option<Spanned<bool>>,
    pub(super) fragment_bytes: Option<Spanned<usize>>,
    pub(super) server_fragment_bytes: Option<Spanned<usize>>,
    pub(super) close_code: Option<Spanned<u16>>,
    pub(super) server_close_code: Option<Spanned<u16>>,
    pub(super) server_reset: Option<Spanned<bool>>,
    pub(super) half_close: Option<Spanned<bool>>,
    pub(super) server_half_close: Option<Spanned<bool>>,
    pub(super) client_reset: Option<Spanned<bool>>,
    pub(super) stop_proxy_after: Option<Spanned<u32>>,
    pub(super) read_pause_ms: Option<Spanned<u64>>,
    pub(super) close_reason: Option<Spanned<String>>,
    pub(super) ping_between_fragments: Option<Spanned<bool>>,
    pub(super) byte_interval_ms: Option<Spanned<u64>>,
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
            server_reset: None,
            half_close: None,
            server_half_close: None,
            client_reset: None,
            stop_proxy_after: None,
            read_pause_ms: None,
            close_reason: None,
            ping_between_fragments: None,
            byte_interval_ms: None,
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

/// `[expect]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawExpect {
    pub(super) ws: Option<Outcome>,
    pub(super) wss: Option<Outcome>,
    pub(super) ws_then_wss: Option<Outcome>,
    pub(super) polling_then_upgrade: Option<Outcome>,
    pub(super) websocket_then_polling: Option<Outcome>,
    pub(super) streaming: Option<Outcome>,
    pub(super) wss_then_streaming: Option<Outcome>,
    pub(super) detect_then_wss: Option<Outcome>,
    pub(super) redirect: Option<Outcome>,
}

impl RawExpect {
    /// The outcome given for strategy `kind` (for `ws` and `wss`, the scheme's).
    pub(super) fn strategy(&self, kind: StrategyKind) -> Option<Outcome> {
        match kind {
            StrategyKind::Ws => self.ws,
            StrategyKind::Wss => self.wss,
            StrategyKind::WsThenWss => self.ws_then_wss,
            StrategyKind::PollingThenUpgrade => self.polling_then_upgrade,
            StrategyKind::WebsocketThenPolling => self.websocket_then_polling,
            StrategyKind::Streaming => self.streaming,
            StrategyKind::WssThenStreaming => self.wss_then_streaming,
            StrategyKind::DetectThenWss => self.detect_then_wss,
            StrategyKind::Redirect => self.redirect,
        }
    }
}

/// `[server]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawServer {
    pub(super) tls_version: Option<Spanned<TlsVersions>>,
    pub(super) command: Option<Spanned<String>>,
}

/// One of `[[faults]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawFault {
    pub(super) at_ms: u64,
    pub(super) crash: Spanned<String>,
}
