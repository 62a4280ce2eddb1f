//! `[client.reconnect]`: reconnecting after a session is cut, for every listed strategy
//! ([`crate::scenario::Reconnect`]).

use std::time::Duration;

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
    (r.delay, r.delay_max, r.randomization_thousandths) = backoff(
        src,
        (&raw.delay_ms, "delay-ms"),
        (&raw.delay_max_ms, "delay-max-ms"),
        &raw.randomization_factor,
        (r.delay, r.delay_max, r.randomization_thousandths),
    )?;
    if let Some(w) = raw.while_disconnected {
        r.while_disconnected = w;
    }
    Ok(Some(r))
}

/// A backoff's keys over `defaults` (delay, its maximum, randomisation in thousandths): each
/// given delay positive, the maximum at least the delay, the factor between 0 and 1. The
/// delay keys are named as the table names them.
pub(super) fn backoff(
    src: Source<'_>,
    (delay, delay_key): (&Option<Spanned<u64>>, &str),
    (max, max_key): (&Option<Spanned<u64>>, &str),
    factor: &Option<Spanned<f64>>,
    defaults: (Duration, Duration, u32),
) -> Result<(Duration, Duration, u32), ScenarioError> {
    let (mut d, mut m, mut f) = defaults;
    if let Some(v) = delay {
        d = src.positive(v, delay_key)?;
    }
    if let Some(v) = max {
        m = src.positive(v, max_key)?;
    }
    if m < d {
        let at = max.as_ref().or(delay.as_ref()).map_or(0..0, Spanned::span);
        return Err(src.fail(
            at,
            format!(
                "`{max_key}` ({} ms) must be at least `{delay_key}` ({} ms)",
                m.as_millis(),
                d.as_millis()
            ),
        ));
    }
    if let Some(v) = factor {
        let x = *v.get_ref();
        if !(0.0..=1.0).contains(&x) {
            return Err(src.fail(
                v.span(),
                format!("`randomization-factor` must be between 0 and 1, got {x}"),
            ));
        }
        f = (x * 1000.0).round() as u32;
    }
    Ok((d, m, f))
}
