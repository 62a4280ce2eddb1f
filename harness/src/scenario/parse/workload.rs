//! `[client.workload]`: the options each kind takes, the number and size of messages, the
//! schedule (intervals and idle periods, within [`MAX_MS`] together), fragmentation and the
//! close codes.

use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use super::Source;
use crate::scenario::raw::RawWorkload;
use crate::scenario::{
    Idle, MAX_MESSAGES, MAX_MS, MAX_PAYLOAD_BYTES, NORMAL_CLOSE, ScenarioError, Workload,
    WorkloadKind, close_code_valid,
};

/// `[client.workload]`, its reply timeout already read; `ping_interval` is the client's, which
/// the `smuggle` workload refuses.
pub(super) fn workload(
    src: Source<'_>,
    w: &RawWorkload,
    reply_timeout: Duration,
    ping_interval: Option<&Spanned<u64>>,
) -> Result<Workload, ScenarioError> {
    let smuggle = w.kind == WorkloadKind::Smuggle;
    if smuggle {
        smuggle_takes_none(src, w, ping_interval)?;
    }
    let messages = if smuggle { 1 } else { *w.messages.get_ref() };
    if !(1..=MAX_MESSAGES).contains(&messages) {
        return Err(src.fail(
            w.messages.span(),
            format!("`messages` must be between 1 and {MAX_MESSAGES}"),
        ));
    }
    let payload_bytes = payload_bytes(src, w)?;
    let idle = schedule(src, w, messages)?;
    if w.kind == WorkloadKind::Push {
        push_takes_no_client_messages(src, w)?;
    }
    let fragment_bytes = frame_limit(src, &w.fragment_bytes, "fragment-bytes")?;
    let server_fragment_bytes =
        frame_limit(src, &w.server_fragment_bytes, "server-fragment-bytes")?;
    let (close_code, server_close_code) = close_codes(src, w, &idle, messages)?;
    let Endings {
        server_reset,
        half_close,
        client_reset,
    } = endings(src, w, &idle, messages)?;
    let server_half_close = match &w.server_half_close {
        Some(v) if *v.get_ref() && w.server_close_code.is_none() => {
            return Err(src.fail(
                v.span(),
                "`server-half-close` half-closes after the server's own Close: give `server-close-code`",
            ));
        }
        Some(v) => *v.get_ref(),
        None => false,
    };
    let stop_proxy_after = stop_proxy_after(src, w, messages)?;
    let (read_pause, byte_interval) = slow_ends(src, w, ping_interval)?;
    let close_reason = close_reason(src, w)?;
    let ping_between_fragments = match &w.ping_between_fragments {
        Some(v) if *v.get_ref() && (w.fragment_bytes.is_none() || w.kind != WorkloadKind::Echo) => {
            return Err(src.fail(
                v.span(),
                "`ping-between-fragments` puts a Ping between an echo's fragments: give `fragment-bytes`",
            ));
        }
        Some(v) => *v.get_ref(),
        None => false,
    };
    Ok(Workload {
        kind: w.kind,
        messages,
        from: 0,
        interval: Duration::from_millis(*w.interval_ms.get_ref()),
        payload_bytes,
        reply_timeout,
        first_reply_timeout: None,
        idle,
        binary: w.binary.as_ref().is_some_and(|b| *b.get_ref()),
        fragment_bytes,
        server_fragment_bytes,
        close_code,
        server_close_code,
        server_reset,
        half_close,
        server_half_close,
        client_reset,
        stop_proxy_after,
        read_pause,
        byte_interval,
        close_reason,
        ping_between_fragments,
    })
}

/// `server-reset` (the server resets the connection after the last message, so no idle
/// period may follow it, and nobody closes), `half-close` (the client closes, and
/// half-closes after its Close) and `client-reset` (the client resets its connection after
/// the last message, and nobody closes): each `true` or `false`, at most one of them, none
/// with `server-close-code`, the resets not with `close-code`.
fn endings(
    src: Source<'_>,
    w: &RawWorkload,
    idle: &[Idle],
    messages: u32,
) -> Result<Endings, ScenarioError> {
    let on = |v: &Option<Spanned<bool>>| v.as_ref().filter(|v| *v.get_ref()).map(Spanned::span);
    let (reset, half, client_reset) = (on(&w.server_reset), on(&w.half_close), on(&w.client_reset));
    for (key, at, without_close) in [
        ("server-reset", &reset, true),
        ("client-reset", &client_reset, true),
        ("half-close", &half, false),
    ] {
        let Some(at) = at else { continue };
        let other = [
            (key != "half-close" && half.is_some(), "half-close"),
            (key != "server-reset" && reset.is_some(), "server-reset"),
            (
                key != "client-reset" && client_reset.is_some(),
                "client-reset",
            ),
            (without_close && w.close_code.is_some(), "close-code"),
            (w.server_close_code.is_some(), "server-close-code"),
        ]
        .into_iter()
        .find_map(|(given, other)| given.then_some(other));
        let Some(other) = other else { continue };
        let what = match key {
            "server-reset" => "`server-reset` ends the session without a Close",
            "client-reset" => "`client-reset` ends the session without a Close",
            _ if other == "server-close-code" => {
                "`half-close` half-closes after the client's Close: not with `server-close-code`, where the server closes first"
            }
            _ => "`half-close` half-closes after the client's Close",
        };
        let line = if what.contains("not with") {
            what.to_string()
        } else {
            format!("{what}: not with `{other}`")
        };
        return Err(src.fail(at.clone(), line));
    }
    if let Some(reset) = &reset {
        if idle.last().is_some_and(|i| i.after_message == messages) {
            return Err(src.fail(
                reset.clone(),
                format!(
                    "`server-reset` makes the server reset the connection right after message {messages}, so the idle period after it would never happen"
                ),
            ));
        }
    }
    Ok(Endings {
        server_reset: reset.is_some(),
        half_close: half.is_some(),
        client_reset: client_reset.is_some(),
    })
}

/// `stop-proxy-after`: with an echo, after a message before the last one, so that the session
/// goes on past the stop.
fn stop_proxy_after(
    src: Source<'_>,
    w: &RawWorkload,
    messages: u32,
) -> Result<Option<u32>, ScenarioError> {
    let Some(v) = &w.stop_proxy_after else {
        return Ok(None);
    };
    if w.kind != WorkloadKind::Echo {
        return Err(src.fail(
            v.span(),
            "`stop-proxy-after` goes with `kind = \"echo\"`: the proxy is stopped after that many echoes",
        ));
    }
    let ends = [
        (w.server_reset.as_ref(), "server-reset"),
        (w.client_reset.as_ref(), "client-reset"),
    ];
    if let Some((_, key)) = ends.iter().find(|(v, _)| v.is_some_and(|v| *v.get_ref())) {
        return Err(src.fail(
            v.span(),
            format!(
                "`stop-proxy-after` tells drained from cut by how the session ends: not with `{key}`, which ends it otherwise"
            ),
        ));
    }
    let after = *v.get_ref();
    if !(1..messages).contains(&after) {
        return Err(src.fail(
            v.span(),
            format!(
                "`stop-proxy-after` is from 1 to {} (`messages` - 1): the session goes on after the stop, got {after}",
                messages.saturating_sub(1)
            ),
        ));
    }
    Ok(Some(after))
}

/// The longest a Close's reason may be, in bytes: a control frame's payload is at most 125
/// bytes, two of them the code (RFC 6455 §5.5, §5.5.1).
const MAX_CLOSE_REASON: usize = 123;

/// `close-reason`: UTF-8 of at most [`MAX_CLOSE_REASON`] bytes, for a close the client starts.
fn close_reason(src: Source<'_>, w: &RawWorkload) -> Result<String, ScenarioError> {
    let Some(v) = &w.close_reason else {
        return Ok(crate::scenario::DEFAULT_CLOSE_REASON.to_string());
    };
    let len = v.get_ref().len();
    let why = if len > MAX_CLOSE_REASON {
        Some(format!(
            "is at most {MAX_CLOSE_REASON} bytes of UTF-8 (a Close's payload is at most 125, two of them the code), got {len}"
        ))
    } else if w.server_close_code.is_some()
        || [&w.server_reset, &w.client_reset]
            .iter()
            .any(|v| v.as_ref().is_some_and(|v| *v.get_ref()))
    {
        Some("is the reason of the client's Close: not with `server-close-code`, `server-reset` or `client-reset`".to_string())
    } else {
        None
    };
    match why {
        Some(why) => Err(src.fail(v.span(), format!("`close-reason` {why}"))),
        None => Ok(v.get_ref().clone()),
    }
}

/// The most time between two bytes of a slow writer's frame.
const MAX_BYTE_INTERVAL_MS: u64 = 10_000;

/// `read-pause-ms` (push: from 1 ms, the client reads nothing that long after the 101) and
/// `byte-interval-ms` (echo: 1 to [`MAX_BYTE_INTERVAL_MS`], each message's frame written a
/// byte at a time, whole messages only, and no Ping that could fall inside a frame).
fn slow_ends(
    src: Source<'_>,
    w: &RawWorkload,
    ping_interval: Option<&Spanned<u64>>,
) -> Result<(Option<Duration>, Option<Duration>), ScenarioError> {
    let pause = match &w.read_pause_ms {
        None => None,
        Some(v) if w.kind != WorkloadKind::Push => {
            return Err(src.fail(
                v.span(),
                "`read-pause-ms` goes with `kind = \"push\"`: the client stops reading while the server pushes",
            ));
        }
        Some(v) if *v.get_ref() == 0 => {
            return Err(src.fail(v.span(), "`read-pause-ms` is at least 1"));
        }
        Some(v) => Some(Duration::from_millis(*v.get_ref())),
    };
    let Some(v) = &w.byte_interval_ms else {
        return Ok((pause, None));
    };
    let why = if w.kind != WorkloadKind::Echo {
        Some("goes with `kind = \"echo\"`: the client writes its messages slowly".to_string())
    } else if !(1..=MAX_BYTE_INTERVAL_MS).contains(v.get_ref()) {
        Some(format!("is from 1 to {MAX_BYTE_INTERVAL_MS}"))
    } else if w.fragment_bytes.is_some() {
        Some("writes each message as one frame: not with `fragment-bytes`".to_string())
    } else if ping_interval.is_some() {
        Some("leaves no room for a Ping inside a frame: not with `ping-interval-ms`".to_string())
    } else {
        None
    };
    match why {
        Some(why) => Err(src.fail(v.span(), format!("`byte-interval-ms` {why}"))),
        None => Ok((pause, Some(Duration::from_millis(*v.get_ref())))),
    }
}

/// How a session ends, beside the usual close handshake.
struct Endings {
    server_reset: bool,
    half_close: bool,
    client_reset: bool,
}

/// `smuggle` sends one frame and fetches a script: it takes none of the options that shape
/// a stream of messages.
fn smuggle_takes_none(
    src: Source<'_>,
    w: &RawWorkload,
    ping_interval: Option<&Spanned<u64>>,
) -> Result<(), ScenarioError> {
    // A value read from the file has a span; a default has 0..0.
    let given = |span: &Range<usize>| *span != (0..0);
    let not_here = |name: &str| {
        format!(
            "`{name}` does not apply to `kind = \"smuggle\"`, which sends one frame and then fetches the victim's script"
        )
    };
    for (name, span) in [
        ("messages", w.messages.span()),
        ("interval-ms", w.interval_ms.span()),
        ("payload-bytes", w.payload_bytes.span()),
    ] {
        if given(&span) {
            return Err(src.fail(span, not_here(name)));
        }
    }
    if let Some(first) = w.idle.first() {
        return Err(src.fail(first.span(), not_here("idle")));
    }
    if let Some(p) = ping_interval {
        return Err(src.fail(p.span(), not_here("ping-interval-ms")));
    }
    if let Some((name, span)) = workload_options(w).into_iter().next() {
        return Err(src.fail(span, not_here(name)));
    }
    Ok(())
}

/// The shortest push message: `push ` and an index of up to 10 digits, ` at ` and a send time
/// of up to 13 digits of microseconds (more than a hundred days).
pub const MIN_PUSH_BYTES: usize = 32;

/// `payload-bytes`, up to [`MAX_PAYLOAD_BYTES`]: a push message carries its index and send
/// time as text, padded to the size (`push 12 at 3000000....`), so it needs
/// [`MIN_PUSH_BYTES`]; an echo can be empty.
fn payload_bytes(src: Source<'_>, w: &RawWorkload) -> Result<usize, ScenarioError> {
    let payload_bytes = *w.payload_bytes.get_ref();
    let least = if w.kind == WorkloadKind::Push {
        MIN_PUSH_BYTES
    } else {
        0
    };
    if !(least..=MAX_PAYLOAD_BYTES).contains(&payload_bytes) {
        return Err(src.fail(
            w.payload_bytes.span(),
            format!(
                "`payload-bytes` must be between {least} and {MAX_PAYLOAD_BYTES} for `kind = \"{}\"`",
                w.kind.as_str()
            ),
        ));
    }
    Ok(payload_bytes)
}

/// The schedule: the intervals between the `messages` and the idle periods (returned, each
/// after a message that is sent, in order), within a year together.
fn schedule(src: Source<'_>, w: &RawWorkload, messages: u32) -> Result<Vec<Idle>, ScenarioError> {
    let interval_ms = *w.interval_ms.get_ref();
    let schedule_limit = format!(
        "a workload's intervals and idle periods together may last at most {MAX_MS} ms (365 days)"
    );
    let sending = u64::from(messages.saturating_sub(1)).saturating_mul(interval_ms);
    if sending > MAX_MS {
        return Err(src.fail(
            w.interval_ms.span(),
            format!(
                "{messages} messages {interval_ms} ms apart take more than 365 days: {schedule_limit}"
            ),
        ));
    }
    let mut idle_ms = 0u64;
    let mut idle = Vec::new();
    for period in &w.idle {
        let span = period.span();
        let p = *period.get_ref();
        if p.after_message > messages {
            return Err(src.fail(
                span,
                format!(
                    "idle after message {} but the workload sends only {messages}",
                    p.after_message
                ),
            ));
        }
        if idle
            .last()
            .is_some_and(|last: &Idle| last.after_message > p.after_message)
        {
            return Err(src.fail(
                span,
                "idle periods must be listed in order of `after-message`",
            ));
        }
        idle_ms = idle_ms.saturating_add(p.ms);
        if sending.saturating_add(idle_ms) > MAX_MS {
            return Err(src.fail(
                span,
                format!(
                    "the idle periods add up to {idle_ms} ms with this one, besides {sending} ms between messages: {schedule_limit}"
                ),
            ));
        }
        idle.push(p);
    }
    Ok(idle)
}

/// In a push workload the client sends no messages: `binary` and `fragment-bytes` have
/// nothing to apply to.
fn push_takes_no_client_messages(src: Source<'_>, w: &RawWorkload) -> Result<(), ScenarioError> {
    let client_side = workload_options(w)
        .into_iter()
        .find(|(name, _)| matches!(*name, "binary" | "fragment-bytes"));
    match client_side {
        Some((name, span)) => Err(src.fail(
            span,
            format!(
                "`{name}` applies to `kind = \"echo\"` only: in a push workload the client sends no messages and the server's are text"
            ),
        )),
        None => Ok(()),
    }
}

/// A fragment size (`name`), from 1 to [`MAX_PAYLOAD_BYTES`], if given.
fn frame_limit(
    src: Source<'_>,
    v: &Option<Spanned<usize>>,
    name: &str,
) -> Result<Option<usize>, ScenarioError> {
    match v {
        Some(n) if !(1..=MAX_PAYLOAD_BYTES).contains(n.get_ref()) => Err(src.fail(
            n.span(),
            format!("`{name}` must be between 1 and {MAX_PAYLOAD_BYTES}"),
        )),
        v => Ok(v.as_ref().map(|n| *n.get_ref())),
    }
}

/// A close code (`name`) a Close frame may carry, if given.
fn close_code(
    src: Source<'_>,
    v: &Option<Spanned<u16>>,
    name: &str,
) -> Result<Option<u16>, ScenarioError> {
    match v {
        Some(c) if !close_code_valid(*c.get_ref()) => Err(src.fail(
            c.span(),
            format!(
                "`{name} = {}` is not a code a Close frame may carry: use 1000-1003, 1007-1013 (RFC 6455 §7.4.1) or 3000-4999 (§7.4.2)",
                c.get_ref()
            ),
        )),
        v => Ok(v.as_ref().map(|c| *c.get_ref())),
    }
}

/// `close-code` (the client closes first; 1000 unless given) or `server-close-code` (the
/// server closes right after the last message, so no idle period may follow it), not both.
fn close_codes(
    src: Source<'_>,
    w: &RawWorkload,
    idle: &[Idle],
    messages: u32,
) -> Result<(u16, Option<u16>), ScenarioError> {
    let server_close_code = close_code(src, &w.server_close_code, "server-close-code")?;
    let client_close_code = close_code(src, &w.close_code, "close-code")?;
    if let (Some(_), Some(server)) = (&w.close_code, &w.server_close_code) {
        return Err(src.fail(
            server.span(),
            "only one side closes first: give `close-code` (the client closes) or `server-close-code` (the server closes), not both",
        ));
    }
    if let Some(server) = &w.server_close_code {
        if idle.last().is_some_and(|i| i.after_message == messages) {
            return Err(src.fail(
                server.span(),
                format!(
                    "`server-close-code` makes the server close right after message {messages}, so the idle period after it would never happen"
                ),
            ));
        }
    }
    Ok((client_close_code.unwrap_or(NORMAL_CLOSE), server_close_code))
}

/// The options of `w` that only the echo and push workloads take, with where each is given.
fn workload_options(w: &RawWorkload) -> Vec<(&'static str, Range<usize>)> {
    let spans = [
        ("binary", w.binary.as_ref().map(Spanned::span)),
        (
            "fragment-bytes",
            w.fragment_bytes.as_ref().map(Spanned::span),
        ),
        (
            "server-fragment-bytes",
            w.server_fragment_bytes.as_ref().map(Spanned::span),
        ),
        ("close-code", w.close_code.as_ref().map(Spanned::span)),
        (
            "server-close-code",
            w.server_close_code.as_ref().map(Spanned::span),
        ),
        ("server-reset", w.server_reset.as_ref().map(Spanned::span)),
        ("half-close", w.half_close.as_ref().map(Spanned::span)),
        ("client-reset", w.client_reset.as_ref().map(Spanned::span)),
        (
            "stop-proxy-after",
            w.stop_proxy_after.as_ref().map(Spanned::span),
        ),
        ("read-pause-ms", w.read_pause_ms.as_ref().map(Spanned::span)),
        ("close-reason", w.close_reason.as_ref().map(Spanned::span)),
        (
            "ping-between-fragments",
            w.ping_between_fragments.as_ref().map(Spanned::span),
        ),
        (
            "byte-interval-ms",
            w.byte_interval_ms.as_ref().map(Spanned::span),
        ),
        (
            "server-half-close",
            w.server_half_close.as_ref().map(Spanned::span),
        ),
    ];
    spans
        .into_iter()
        .filter_map(|(name, span)| Some((name, span?)))
        .collect()
}
