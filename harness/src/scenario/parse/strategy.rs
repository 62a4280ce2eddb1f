//! What the client runs: `schemes` or `strategies` (one of them), each strategy's parameters
//! (`[client.polling-then-upgrade]`, `[client.websocket-then-polling]`,
//! `[client.detect-then-wss]`), and the `[client]` keys an Engine.IO or streaming strategy
//! cannot honour.

use toml::Spanned;

use super::Source;
use crate::scenario::raw::{
    RawClient, RawDetectThenWss, RawPollingThenUpgrade, RawWebsocketThenPolling,
};
use crate::scenario::{
    DEFAULT_DETECT_TIMEOUT, EngineIoParams, ScenarioError, Scheme, Strategy, StrategyKind,
};
use crate::scenario::{WorkloadKind, raw::RawWorkload};

/// `client.schemes` or `client.strategies`, exactly one, each listing something and nothing
/// twice: the schemes (none for strategies) and the strategies (none for schemes).
pub(super) fn listed(
    src: Source<'_>,
    client: &Spanned<RawClient>,
) -> Result<(Vec<Scheme>, Vec<StrategyKind>), ScenarioError> {
    let c = client.get_ref();
    match (&c.schemes, &c.strategies) {
        (Some(schemes), None) => Ok((super::client::schemes(src, schemes)?, Vec::new())),
        (None, Some(strategies)) => {
            let empty = "`strategies` must list at least one strategy";
            let kinds = super::client::each_once(src, strategies, empty, "strategy")?;
            Ok((Vec::new(), kinds))
        }
        (Some(_), Some(strategies)) => Err(src.fail(
            strategies.span(),
            "give `schemes` or `strategies`, not both (`strategies` may list `ws` and `wss`)",
        )),
        (None, None) => Err(src.fail(
            client.span(),
            "`[client]` needs `schemes` (ws, wss) or `strategies` (ws, wss, ws-then-wss, polling-then-upgrade, websocket-then-polling, streaming, wss-then-streaming, detect-then-wss, redirect)",
        )),
    }
}

/// Each listed strategy with its parameters, in the list's order. A parameter table for a
/// strategy the list does not name is an error.
pub(super) fn strategies(
    src: Source<'_>,
    kinds: &[StrategyKind],
    polling: Option<Spanned<RawPollingThenUpgrade>>,
    websocket: Option<Spanned<RawWebsocketThenPolling>>,
    detect: Option<Spanned<RawDetectThenWss>>,
) -> Result<Vec<Strategy>, ScenarioError> {
    let unlisted = |kind: StrategyKind, span: std::ops::Range<usize>| {
        src.fail(
            span,
            format!("`[client.{kind}]` sets the parameters of `{kind}`, which `client.strategies` does not list"),
        )
    };
    let mut polling_params = EngineIoParams::default();
    if let Some(p) = polling {
        if !kinds.contains(&StrategyKind::PollingThenUpgrade) {
            return Err(unlisted(StrategyKind::PollingThenUpgrade, p.span()));
        }
        let p = p.into_inner();
        common(
            src,
            &mut polling_params,
            p.timeout_ms.as_ref(),
            p.upgrade,
            p.probe_timeout_ms.as_ref(),
        )?;
        polling_params.secure = p.secure.unwrap_or(false);
    }
    let mut websocket_params = EngineIoParams::default();
    if let Some(w) = websocket {
        if !kinds.contains(&StrategyKind::WebsocketThenPolling) {
            return Err(unlisted(StrategyKind::WebsocketThenPolling, w.span()));
        }
        let w = w.into_inner();
        let params = &mut websocket_params;
        common(
            src,
            params,
            w.timeout_ms.as_ref(),
            w.upgrade,
            w.probe_timeout_ms.as_ref(),
        )?;
        params.secure = w.secure.unwrap_or(false);
        (
            params.reconnection_delay,
            params.reconnection_delay_max,
            params.randomization_thousandths,
        ) = super::reconnect::backoff(
            src,
            (&w.reconnection_delay_ms, "reconnection-delay-ms"),
            (&w.reconnection_delay_max_ms, "reconnection-delay-max-ms"),
            &w.randomization_factor,
            (
                params.reconnection_delay,
                params.reconnection_delay_max,
                params.randomization_thousandths,
            ),
        )?;
    }
    let mut detect_timeout = DEFAULT_DETECT_TIMEOUT;
    if let Some(d) = detect {
        if !kinds.contains(&StrategyKind::DetectThenWss) {
            return Err(unlisted(StrategyKind::DetectThenWss, d.span()));
        }
        if let Some(v) = &d.into_inner().detect_timeout_ms {
            detect_timeout = src.positive(v, "detect-timeout-ms")?;
        }
    }
    Ok(kinds
        .iter()
        .map(|&kind| Strategy {
            kind,
            detect_timeout,
            reconnect: None,
            engineio: match kind {
                StrategyKind::PollingThenUpgrade => polling_params,
                StrategyKind::WebsocketThenPolling => websocket_params,
                _ => EngineIoParams::default(),
            },
        })
        .collect())
}

/// The keys both Engine.IO strategies take.
fn common(
    src: Source<'_>,
    params: &mut EngineIoParams,
    timeout_ms: Option<&Spanned<u64>>,
    upgrade: Option<bool>,
    probe_timeout_ms: Option<&Spanned<u64>>,
) -> Result<(), ScenarioError> {
    if let Some(v) = timeout_ms {
        params.timeout = src.positive(v, "timeout-ms")?;
    }
    if let Some(u) = upgrade {
        params.upgrade = u;
    }
    if let Some(v) = probe_timeout_ms {
        params.probe_timeout = Some(src.positive(v, "probe-timeout-ms")?);
    }
    Ok(())
}

/// The `[client]` and workload keys an Engine.IO or streaming strategy cannot honour, refused
/// where they are written when `kinds` lists one: Engine.IO and HTTP streaming carry whole
/// messages (no fragments of the client's choosing), close without a code, and have no Ping
/// (Engine.IO has its own heartbeat); and the cache-poisoning demonstration is WebSocket
/// frames written by hand. `sessions` is refused
/// with any strategy: a strategy's run is one application's session.
pub(super) fn engineio_keys(
    src: Source<'_>,
    client: &Spanned<RawClient>,
    kinds: &[StrategyKind],
) -> Result<(), ScenarioError> {
    let c = client.get_ref();
    if let (Some(kind), Some(v)) = (kinds.first(), &c.sessions) {
        return Err(src.fail(
            v.span(),
            format!(
                "`sessions` does not apply to strategy `{kind}`: a strategy's run is one application's session"
            ),
        ));
    }
    let Some(kind) = kinds.iter().find(|k| k.engineio() || k.streams()) else {
        return Ok(());
    };
    let engineio = kind.engineio();
    let w: &RawWorkload = &c.workload;
    let refused = |key: &str, span: std::ops::Range<usize>, why: &str| {
        src.fail(
            span,
            format!("`{key}` does not apply to strategy `{kind}`: {why}"),
        )
    };
    if let Some(v) = &c.ping_interval_ms {
        return Err(refused(
            "ping-interval-ms",
            v.span(),
            if engineio {
                "Engine.IO has its own heartbeat (the server's pings)"
            } else {
                "HTTP streaming has no ping"
            },
        ));
    }
    let (fragments, protocols, codes) = if engineio {
        (
            "Engine.IO sends each message whole",
            "Engine.IO's WebSocket offers no subprotocol",
            "an Engine.IO session closes with a close packet, without a code",
        )
    } else {
        (
            "HTTP streaming sends each message whole",
            "HTTP streaming has no subprotocol",
            "a stream closes with its `close` event, without a code",
        )
    };
    let ends = if engineio {
        "it is for the reference client's own WebSocket session, not an Engine.IO one"
    } else {
        "it is for the reference client's own WebSocket session, not an HTTP stream"
    };
    // Each key the strategy cannot honour, with why; the first one given is refused.
    let keys = [
        ("subprotocols", at(&c.subprotocols), protocols),
        ("fragment-bytes", at(&w.fragment_bytes), fragments),
        (
            "server-fragment-bytes",
            at(&w.server_fragment_bytes),
            fragments,
        ),
        ("close-code", at(&w.close_code), codes),
        ("server-close-code", at(&w.server_close_code), codes),
        ("server-reset", at(&w.server_reset), codes),
        ("half-close", at(&w.half_close), codes),
        ("server-half-close", at(&w.server_half_close), codes),
        ("client-reset", at(&w.client_reset), ends),
        ("stop-proxy-after", at(&w.stop_proxy_after), ends),
        ("read-pause-ms", at(&w.read_pause_ms), ends),
        ("byte-interval-ms", at(&w.byte_interval_ms), ends),
        ("close-reason", at(&w.close_reason), codes),
        (
            "ping-between-fragments",
            at(&w.ping_between_fragments),
            fragments,
        ),
    ];
    if let Some((key, Some(at), why)) = keys.into_iter().find(|(_, at, _)| at.is_some()) {
        return Err(refused(key, at, why));
    }
    if w.kind == WorkloadKind::Smuggle {
        let at = c.strategies.as_ref().map_or(0..0, Spanned::span);
        return Err(src.fail(
            at,
            format!("strategy `{kind}` carries echo and push workloads, not `kind = \"smuggle\"`"),
        ));
    }
    Ok(())
}

/// The schemes the client's runs use: its schemes, or those of its strategies' attempts.
pub(super) fn schemes_used(schemes: &[Scheme], kinds: &[StrategyKind]) -> Vec<Scheme> {
    let mut used: Vec<Scheme> = schemes.to_vec();
    for k in kinds {
        for s in k.schemes() {
            if !used.contains(s) {
                used.push(*s);
            }
        }
    }
    used
}

/// Where a key is given, if it is.
fn at<T>(v: &Option<Spanned<T>>) -> Option<std::ops::Range<usize>> {
    v.as_ref().map(Spanned::span)
}
