//! What a run is expected to end in: `[expect]`, an outcome for each scheme the client runs,
//! and `[bounds]`, the latencies past which a delivered run is `degraded`.

use std::time::Duration;

use toml::Spanned;

use super::Source;
use crate::scenario::raw::{RawBounds, RawExpect};
use crate::scenario::{Bounds, ScenarioError, Scheme};
use crate::verdict::outcome::Outcome;

/// `[expect]`: an outcome for every scheme in `schemes` and for no other, in their order.
pub(super) fn expect(
    src: Source<'_>,
    expect: Spanned<RawExpect>,
    schemes: &[Scheme],
) -> Result<Vec<(Scheme, Outcome)>, ScenarioError> {
    let span = expect.span();
    let raw = expect.into_inner();
    let mut expect = Vec::new();
    for scheme in [Scheme::Ws, Scheme::Wss] {
        let outcome = match scheme {
            Scheme::Ws => raw.ws,
            Scheme::Wss => raw.wss,
        };
        match (schemes.contains(&scheme), outcome) {
            (true, Some(o)) => expect.push((scheme, o)),
            (true, None) => {
                return Err(src.fail(
                    span,
                    format!("`expect` has no outcome for `{scheme}`, which `client.schemes` lists"),
                ));
            }
            (false, Some(_)) => {
                return Err(src.fail(
                    span,
                    format!(
                        "`expect` gives an outcome for `{scheme}`, which `client.schemes` does not list"
                    ),
                ));
            }
            (false, None) => {}
        }
    }
    expect.sort_by_key(|(s, _)| schemes.iter().position(|x| x == s));
    Ok(expect)
}

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
