//! What a run is expected to end in: `[expect]`, an outcome for each scheme (or strategy) the
//! client runs, and `[bounds]`, the latencies past which a delivered run is `degraded`.

use std::time::Duration;

use toml::Spanned;

use super::Source;
use crate::scenario::raw::{RawBounds, RawExpect};
use crate::scenario::{Bounds, ScenarioError, Scheme, StrategyKind};
use crate::verdict::outcome::Outcome;

/// `[expect]`: an outcome for every scheme in `schemes` and for no other, in their order; or,
/// when the client lists `strategies`, for every one of them and no other.
pub(super) fn expect(
    src: Source<'_>,
    expect: Spanned<RawExpect>,
    schemes: &[Scheme],
    strategies: &[StrategyKind],
) -> Result<Expected, ScenarioError> {
    let span = expect.span();
    let raw = expect.into_inner();
    let (listed, list): (Vec<StrategyKind>, &str) = if strategies.is_empty() {
        let kinds = schemes.iter().map(|s| match s {
            Scheme::Ws => StrategyKind::Ws,
            Scheme::Wss => StrategyKind::Wss,
        });
        (kinds.collect(), "client.schemes")
    } else {
        (strategies.to_vec(), "client.strategies")
    };
    let mut given = Vec::new();
    for kind in StrategyKind::ALL {
        match (listed.contains(&kind), raw.strategy(kind)) {
            (true, Some(o)) => given.push((kind, o)),
            (true, None) => {
                return Err(src.fail(
                    span,
                    format!("`expect` has no outcome for `{kind}`, which `{list}` lists"),
                ));
            }
            (false, Some(_)) => {
                return Err(src.fail(
                    span,
                    format!("`expect` gives an outcome for `{kind}`, which `{list}` does not list"),
                ));
            }
            (false, None) => {}
        }
    }
    given.sort_by_key(|(k, _)| listed.iter().position(|x| x == k));
    if strategies.is_empty() {
        let by_scheme = given.into_iter().map(|(k, o)| (k.scheme(), o)).collect();
        Ok((by_scheme, Vec::new()))
    } else {
        Ok((Vec::new(), given))
    }
}

/// The outcomes `[expect]` gives: per scheme, or per strategy.
type Expected = (Vec<(Scheme, Outcome)>, Vec<(StrategyKind, Outcome)>);

/// `[bounds]`: none unless given; a table given sets at least one.
pub(super) fn bounds(
    src: Source<'_>,
    bounds: Option<Spanned<RawBounds>>,
) -> Result<Bounds, ScenarioError> {
    let Some(b) = bounds else {
        return Ok(Bounds::default());
    };
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
        return Err(src.fail(
            span,
            "`[bounds]` sets no bound: give latency-p50-ms, latency-p90-ms, \
             latency-p99-ms, latency-max-ms or handshake-ms",
        ));
    }
    Ok(bounds)
}
