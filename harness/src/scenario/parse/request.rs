//! `[client.request]`: how the upgrade request departs from the usual one, and what it asks
//! of the server's answer.

use std::collections::BTreeMap;

use toml::Spanned;

use super::Source;
use crate::endpoints::{answer, body, deflate};
use crate::scenario::raw::RawRequest;
use crate::scenario::{
    Handshake, RequestShape, ScenarioError, Scheme, StrategyKind, Workload, WorkloadKind,
};

/// `[client.request]`: each field a value with no line break, `target` `origin` or
/// `absolute`, `http-version` `1.1` or `1.0`; for the reference client's WebSocket only (the
/// `ws`, `wss` schemes and strategies and those that start with them), upgrading with
/// RFC 6455's request, an absolute target on ws only. What it asks of the answer
/// ([`answer`]) goes with the workload `w` that can use it: `refuse` alone,
/// `first-message-with-request` with an echo whose first message is sent whole and at once,
/// `first-push-with-101` with a push.
pub(super) fn request(
    src: Source<'_>,
    raw: Option<Spanned<RawRequest>>,
    schemes: &[Scheme],
    kinds: &[StrategyKind],
    handshake: Handshake,
    (w, pinging): (&Workload, bool),
) -> Result<RequestShape, ScenarioError> {
    let Some(raw) = raw else {
        return Ok(RequestShape::default());
    };
    let at = raw.span();
    if handshake == Handshake::Connect {
        return Err(src.fail(
            at,
            "`[client.request]` shapes the upgrade request: not with `handshake = \"connect\"`",
        ));
    }
    if let Some(k) = kinds
        .iter()
        .find(|k| k.engineio() || k.streams() || **k == StrategyKind::Redirect)
    {
        return Err(src.fail(
            at,
            format!(
                "`[client.request]` shapes the reference client's WebSocket request: not strategy `{}`",
                k.as_str()
            ),
        ));
    }
    let raw = raw.into_inner();
    let value = |v: Option<Spanned<String>>, name: &str| -> Result<Option<String>, ScenarioError> {
        match v {
            Some(v) if v.get_ref().trim().is_empty() || v.get_ref().contains(['\r', '\n']) => {
                Err(src.fail(
                    v.span(),
                    format!("`{name}` is a field value: not empty, no line break"),
                ))
            }
            Some(v) => Ok(Some(v.into_inner())),
            None => Ok(None),
        }
    };
    let absolute = match raw.target {
        None => false,
        Some(t) => match t.get_ref().as_str() {
            "origin" => false,
            "absolute" => {
                if schemes.contains(&Scheme::Wss) || kinds.iter().any(|k| k.scheme() == Scheme::Wss)
                {
                    return Err(src.fail(
                        t.span(),
                        "`target = \"absolute\"` writes `http://…`: for ws only",
                    ));
                }
                true
            }
            _ => {
                return Err(src.fail(
                    t.span(),
                    "`target` is \"origin\" (`/path`) or \"absolute\" (`http://host/path`)",
                ));
            }
        },
    };
    let http10 = match raw.http_version {
        None => false,
        Some(v) => match v.get_ref().as_str() {
            "1.1" => false,
            "1.0" => true,
            _ => return Err(src.fail(v.span(), "`http-version` is \"1.1\" or \"1.0\"")),
        },
    };
    let first_message = (raw.first_message_with_request.as_ref()).is_some_and(|v| *v.get_ref());
    let other = [
        (raw.reply_fields.is_some(), "reply-fields"),
        (
            raw.first_message_with_request
                .as_ref()
                .is_some_and(|v| *v.get_ref()),
            "first-message-with-request",
        ),
        (
            raw.first_push_with_101
                .as_ref()
                .is_some_and(|v| *v.get_ref()),
            "first-push-with-101",
        ),
    ]
    .into_iter()
    .find_map(|(asked, key)| asked.then_some(key));
    Ok(RequestShape {
        upgrade: value(raw.upgrade, "upgrade")?,
        connection: value(raw.connection, "connection")?,
        absolute,
        http10,
        fields: fields(src, raw.fields, "fields")?,
        reply_fields: fields(src, raw.reply_fields, "reply-fields")?,
        refuse: refuse(src, raw.refuse.as_ref(), other)?,
        first_message_with_request: first_message_with_request(
            src,
            raw.first_message_with_request.as_ref(),
            w,
        )?,
        body: body_bytes(src, raw.body_bytes.as_ref())?,
        deflate: permessage_deflate(
            src,
            raw.permessage_deflate.as_ref(),
            (w, pinging, first_message),
        )?,
        push_with_101: flag(
            src,
            raw.first_push_with_101.as_ref(),
            w.kind == WorkloadKind::Push,
            "`first-push-with-101` goes with `kind = \"push\"`: the server's first push is what it writes with the 101",
        )?,
    })
}

/// `refuse`: a status in [`answer::REFUSAL_STATUSES`], and nothing else asked of the answer
/// (`other` names what was), since there is no 101.
fn refuse(
    src: Source<'_>,
    v: Option<&Spanned<u16>>,
    other: Option<&str>,
) -> Result<Option<u16>, ScenarioError> {
    let Some(v) = v else {
        return Ok(None);
    };
    let status = *v.get_ref();
    if !answer::REFUSAL_STATUSES.contains(&status) {
        return Err(src.fail(
            v.span(),
            format!(
                "`refuse` is a status from {} to {}, got {status}",
                answer::REFUSAL_STATUSES.start(),
                answer::REFUSAL_STATUSES.end()
            ),
        ));
    }
    if let Some(other) = other {
        return Err(src.fail(
            v.span(),
            format!("`refuse` asks for no 101: not with `{other}`"),
        ));
    }
    Ok(Some(status))
}

/// `first-message-with-request`: with an echo whose first message goes out whole (no
/// `fragment-bytes`) and at once (no idle period before it).
fn first_message_with_request(
    src: Source<'_>,
    v: Option<&Spanned<bool>>,
    w: &Workload,
) -> Result<bool, ScenarioError> {
    let echo =
        w.kind == WorkloadKind::Echo && w.fragment_bytes.is_none() && w.byte_interval.is_none();
    let on = flag(
        src,
        v,
        echo,
        "`first-message-with-request` goes with `kind = \"echo\"` unfragmented, not trickled: the first message is one frame written with the request head",
    )?;
    if let (true, Some(v)) = (on, v) {
        if !w.idle_after(w.from).is_empty() {
            return Err(src.fail(
                v.span(),
                "`first-message-with-request` sends the first message with the request: not after an idle period",
            ));
        }
    }
    Ok(on)
}

/// `permessage-deflate`: with an echo the client's hand-written frames can carry: whole
/// messages, closed by the client, no keepalive, no other ending.
fn permessage_deflate(
    src: Source<'_>,
    v: Option<&Spanned<bool>>,
    (w, pinging, first_message): (&Workload, bool, bool),
) -> Result<bool, ScenarioError> {
    let Some(v) = v.filter(|v| *v.get_ref()) else {
        return Ok(false);
    };
    let other = [
        (
            w.kind != WorkloadKind::Echo,
            "a workload other than `kind = \"echo\"`",
        ),
        (w.fragment_bytes.is_some(), "`fragment-bytes`"),
        (w.server_fragment_bytes.is_some(), "`server-fragment-bytes`"),
        (w.server_close_code.is_some(), "`server-close-code`"),
        (w.server_reset, "`server-reset`"),
        (w.half_close, "`half-close`"),
        (w.client_reset, "`client-reset`"),
        (w.stop_proxy_after.is_some(), "`stop-proxy-after`"),
        (w.byte_interval.is_some(), "`byte-interval-ms`"),
        (pinging, "`ping-interval-ms`"),
        (first_message, "`first-message-with-request`"),
        (
            w.payload_bytes > deflate::MAX_PAYLOAD,
            "`payload-bytes` over 524288 (each message goes in one frame)",
        ),
    ]
    .into_iter()
    .find_map(|(given, what)| given.then_some(what));
    match other {
        Some(what) => Err(src.fail(
            v.span(),
            format!(
                "`permessage-deflate` runs an echo of whole messages, compressed, closed by the client: not with {what}"
            ),
        )),
        None => Ok(true),
    }
}

/// `body-bytes`: from 1 to [`body::MAX_BYTES`].
fn body_bytes(src: Source<'_>, v: Option<&Spanned<u64>>) -> Result<Option<usize>, ScenarioError> {
    let Some(v) = v else {
        return Ok(None);
    };
    match usize::try_from(*v.get_ref()) {
        Ok(n) if (1..=body::MAX_BYTES).contains(&n) => Ok(Some(n)),
        _ => Err(src.fail(
            v.span(),
            format!(
                "`body-bytes` is from 1 to {}, got {}",
                body::MAX_BYTES,
                v.get_ref()
            ),
        )),
    }
}

/// A `true`/`false` key that may be `true` only when `allowed`, else `why`.
fn flag(
    src: Source<'_>,
    v: Option<&Spanned<bool>>,
    allowed: bool,
    why: &str,
) -> Result<bool, ScenarioError> {
    match v {
        Some(v) if *v.get_ref() && !allowed => Err(src.fail(v.span(), why)),
        Some(v) => Ok(*v.get_ref()),
        None => Ok(false),
    }
}

/// The most fields `[client.request.fields]` may name.
const MAX_FIELDS: usize = 16;

/// The longest value a field may have, in bytes: far above a session cookie or a bearer
/// token, below what servers take in one field (nginx's `large_client_header_buffers`: 8 KiB).
const MAX_FIELD_BYTES: usize = 4096;

/// The fields the handshake itself writes or the framing of the request decides, which
/// `[client.request.fields]` does not replace (`upgrade` and `connection` have their own keys).
const OWN_FIELDS: [&str; 6] = [
    "host",
    "upgrade",
    "connection",
    "content-length",
    "transfer-encoding",
    "sec-websocket-",
];

/// `[client.request.fields]` or `[client.request.reply-fields]` (`key`): each name a token (RFC 9110 §5.1) that is not one of
/// [`OWN_FIELDS`], each value visible ASCII and spaces (RFC 9110 §5.5), neither empty, at
/// most [`MAX_FIELDS`] of them.
fn fields(
    src: Source<'_>,
    raw: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    key: &str,
) -> Result<BTreeMap<String, String>, ScenarioError> {
    let Some(raw) = raw else {
        return Ok(BTreeMap::new());
    };
    let at = raw.span();
    let raw = raw.into_inner();
    if raw.is_empty() || raw.len() > MAX_FIELDS {
        return Err(src.fail(
            at,
            format!("`{key}` names 1 to {MAX_FIELDS} fields, got {}", raw.len()),
        ));
    }
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    let mut out = BTreeMap::new();
    for (name, value) in raw {
        let lower = name.to_ascii_lowercase();
        if name.is_empty() || !name.bytes().all(tchar) {
            return Err(src.fail(
                value.span(),
                format!("`{name}` is not a field name: letters, digits and !#$%&'*+-.^_`|~"),
            ));
        }
        if OWN_FIELDS
            .iter()
            .any(|own| lower == *own || (own.ends_with('-') && lower.starts_with(own)))
        {
            return Err(src.fail(
                value.span(),
                format!(
                    "`{name}` is written by the handshake itself: `{key}` adds others ({})",
                    if key == "fields" {
                        "Origin, Cookie, Authorization, …"
                    } else {
                        "Set-Cookie, X-Request-Id, …"
                    }
                ),
            ));
        }
        if out.keys().any(|n: &String| n.eq_ignore_ascii_case(&name)) {
            return Err(src.fail(value.span(), format!("`{name}` is named twice")));
        }
        let text = value.get_ref();
        let visible = text
            .bytes()
            .all(|b| b == b' ' || b == b'\t' || b.is_ascii_graphic());
        if text.trim().is_empty() || !visible || text.len() > MAX_FIELD_BYTES {
            return Err(src.fail(
                value.span(),
                format!(
                    "`{name}`'s value is visible ASCII and spaces, not empty, at most {MAX_FIELD_BYTES} bytes"
                ),
            ));
        }
        out.insert(name, text.trim().to_string());
    }
    Ok(out)
}
