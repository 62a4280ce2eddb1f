//! `[client.reconnect]`: reconnecting after a session is cut, for every listed strategy
//! ([`crate::scenario::Reconnect`]).

use toml::Spanned;

use super::Source;
use crate::scenario::raw::RawReconnect;
use crate::scenario::{Reconnect, ScenarioError};

/// The most reconnection attempts in a row a file may allow: each can wait the longest delay,
/// and the run's time limit adds them all.
pub const MAX_ATTEMPTS: u32 = 1000;

/// `[client.reconnect]`, given with `strategies`: its keys over the defaults, each in range.
pub(super) fn reconnect(
    src: Source<'_>,
    table: Option<Spanned<RawReconnect>>,
    strategies: bool,
) -> Result<Option<Reconnect>, ScenarioError> {
    let Some(table) = table else {
        return Ok(None);
    };
    if !strategies {
        return Err(src.fail(
            table.span(),
            "`[client.reconnect]` goes with `strategies`: a run of `schemes` is one connection",
        ));
    }
    let raw = table.into_inner();
    let mut r = Reconnect::default();
    if let Some(a) = &raw.attempts {
        let n = *a.get_ref();
        if !(1..=MAX_ATTEMPTS).contains(&n) {
            return Err(src.fail(
                a.span(),
                format!("`attempts` must be between 1 and {MAX_ATTEMPTS}, got {n}"),
            ));
        }
        r.attempts = n;
    }
    if let Some(v) = &raw.delay_ms {
        r.delay = src.positive(v, "delay-ms")?;
    }
    if let Some(v) = &raw.delay_max_ms {
        r.delay_max = src.positive(v, "delay-max-ms")?;
    }
    if r.delay_max < r.delay {
        let at = raw
            .delay_max_ms
            .as_ref()
            .or(raw.delay_ms.as_ref())
            .map_or(0..0, Spanned::span);
        return Err(src.fail(
            at,
            format!(
                "`delay-max-ms` ({} ms) must be at least `delay-ms` ({} ms)",
                r.delay_max.as_millis(),
                r.delay.as_millis()
            ),
        ));
    }
    if let Some(f) = &raw.randomization_factor {
        let v = *f.get_ref();
        if !(0.0..=1.0).contains(&v) {
            return Err(src.fail(
                f.span(),
                format!("`randomization-factor` must be between 0 and 1, got {v}"),
            ));
        }
        r.randomization_thousandths = (v * 1000.0).round() as u32;
    }
    if let Some(w) = raw.while_disconnected {
        r.while_disconnected = w;
    }
    Ok(Some(r))
}
