//! The reference endpoints' tables: the schemes (read first, since `[expect]` and `[server]`
//! are checked against them), `[client]`, whose workload `workload.rs` reads, and `[server]`.

use toml::Spanned;

use super::{Source, reconnect, request::request, strategy, workload};
use crate::real::product::command::{CommandError, CommandLine, Role};
use crate::scenario::raw::{RawClient, RawServer};
use crate::scenario::{
    Client, Handshake, MAX_SESSIONS, MAX_SUBPROTOCOLS, Route, ScenarioError, Scheme, Server,
    StrategyKind, WorkloadKind,
};

/// `client.schemes`: `ws`, `wss` or both, each once.
pub(super) fn schemes(
    src: Source<'_>,
    schemes: &Spanned<Vec<Scheme>>,
) -> Result<Vec<Scheme>, ScenarioError> {
    each_once(
        src,
        schemes,
        "`schemes` must list `ws`, `wss` or both",
        "scheme",
    )
}

/// The items of `list`, which must hold at least one (else `empty` is the error) and none
/// twice (`noun` names one in the error).
pub(super) fn each_once<T: Clone + PartialEq + std::fmt::Display>(
    src: Source<'_>,
    list: &Spanned<Vec<T>>,
    empty: &str,
    noun: &str,
) -> Result<Vec<T>, ScenarioError> {
    let span = list.span();
    let items = list.get_ref();
    if items.is_empty() {
        return Err(src.fail(span, empty));
    }
    for (i, item) in items.iter().enumerate() {
        if items[..i].contains(item) {
            return Err(src.fail(span, format!("{noun} `{item}` is listed twice")));
        }
    }
    Ok(items.clone())
}

/// `[client]` with its workload, `schemes` (or the strategies' `kinds`) already read;
/// `path_is_empty` says whether the path has a hop to use as the explicit proxy.
pub(super) fn client(
    src: Source<'_>,
    c: Spanned<RawClient>,
    schemes: Vec<Scheme>,
    kinds: &[StrategyKind],
    path_is_empty: bool,
) -> Result<Client, ScenarioError> {
    strategy::engineio_keys(src, &c, kinds)?;
    let c = c.into_inner();
    // The two time budgets first: the handshake's and each reply's.
    let handshake_timeout = src.positive(&c.handshake_timeout_ms, "handshake-timeout-ms")?;
    let reply_timeout = src.positive(&c.workload.reply_timeout_ms, "reply-timeout-ms")?;
    let route = route(src, c.route.as_ref(), path_is_empty)?;
    let proxy_credentials = proxy_credentials(src, c.proxy_credentials, route)?;
    let ping_interval = match &c.ping_interval_ms {
        Some(v) => Some(src.positive(v, "ping-interval-ms")?),
        None => None,
    };
    let smuggle = c.workload.kind == WorkloadKind::Smuggle;
    let mask = match &c.mask {
        Some(m) if !*m.get_ref() && !smuggle => {
            return Err(src.fail(
                m.span(),
                "`mask = false` goes only with `kind = \"smuggle\"`: unmasked client frames break RFC 6455 §5.3 and serve only to demonstrate cache poisoning",
            ));
        }
        Some(m) => *m.get_ref(),
        None => true,
    };
    let path_prefix = path_prefix(src, c.path_prefix.as_ref())?;
    let sessions = sessions(src, c.sessions.as_ref(), smuggle)?;
    let subprotocols = subprotocols(src, c.subprotocols.as_ref(), smuggle)?;
    let workload =
        workload::workload(src, &c.workload, reply_timeout, c.ping_interval_ms.as_ref())?;
    if let (Some(v), true) = (&c.workload.stop_proxy_after, path_is_empty) {
        return Err(src.fail(
            v.span(),
            "`stop-proxy-after` stops the path's first hop: this path has none",
        ));
    }
    let reconnect = reconnect::reconnect(src, c.reconnect, !kinds.is_empty())?;
    let mut strategies = strategy::strategies(
        src,
        kinds,
        c.polling_then_upgrade,
        c.websocket_then_polling,
        c.detect_then_wss,
    )?;
    for s in &mut strategies {
        s.reconnect = reconnect;
    }
    let request = request(
        src,
        c.request,
        &schemes,
        kinds,
        handshake_kind(&c.handshake),
        (&workload, c.ping_interval_ms.is_some()),
    )?;
    let handshake = handshake(
        src,
        c.handshake.as_ref(),
        route,
        kinds,
        smuggle || !subprotocols.is_empty() || workload.client_reset,
    )?;
    Ok(Client {
        schemes,
        strategies,
        route,
        handshake_timeout,
        workload,
        proxy_credentials,
        ping_interval,
        mask,
        path_prefix,
        sessions,
        subprotocols,
        browser: c.browser,
        handshake,
        request,
    })
}

/// The handshake a `[client]` table names, for checks that depend on it.
fn handshake_kind(h: &Option<Spanned<Handshake>>) -> Handshake {
    h.as_ref().map_or(Handshake::Upgrade, |h| *h.get_ref())
}

/// `handshake`: `upgrade` unless given; `connect` opens a WebSocket of the reference client's
/// own, on its own route: not through an explicit proxy (whose CONNECT it would be), not for
/// Engine.IO, streaming or the redirect, not for the smuggling demonstration nor with
/// subprotocols or a client's reset (`other`: one of the last three is asked for).
fn handshake(
    src: Source<'_>,
    given: Option<&Spanned<Handshake>>,
    route: Route,
    kinds: &[StrategyKind],
    other: bool,
) -> Result<Handshake, ScenarioError> {
    let Some(h) = given else {
        return Ok(Handshake::Upgrade);
    };
    if *h.get_ref() == Handshake::Connect {
        let why = if route == Route::Explicit {
            Some("`route = \"explicit\"`: CONNECT there asks the proxy for a tunnel".to_string())
        } else if other {
            Some("`kind = \"smuggle\"`, `subprotocols` or `client-reset`".to_string())
        } else {
            kinds
                .iter()
                .find(|k| k.engineio() || k.streams() || **k == StrategyKind::Redirect)
                .map(|k| format!("strategy `{}`", k.as_str()))
        };
        if let Some(why) = why {
            return Err(src.fail(
                h.span(),
                format!("`handshake = \"connect\"` does not go with {why}"),
            ));
        }
    }
    Ok(*h.get_ref())
}

/// `sessions`: 1 unless given; 1 to [`MAX_SESSIONS`], and not with the `smuggle` workload.
fn sessions(
    src: Source<'_>,
    sessions: Option<&Spanned<u32>>,
    smuggle: bool,
) -> Result<u32, ScenarioError> {
    let Some(n) = sessions else {
        return Ok(1);
    };
    let count = *n.get_ref();
    if !(1..=MAX_SESSIONS).contains(&count) {
        return Err(src.fail(
            n.span(),
            format!("`sessions` must be 1 to {MAX_SESSIONS}, got {count}"),
        ));
    }
    if smuggle && count > 1 {
        return Err(src.fail(
            n.span(),
            "`sessions` goes with `echo` and `push`: the `smuggle` workload is one attack",
        ));
    }
    Ok(count)
}

/// `subprotocols`: none unless given; each a token (RFC 9110 §5.6.2, as RFC 6455 §4.1 asks),
/// each once, at most [`MAX_SUBPROTOCOLS`], and not with the `smuggle` workload.
fn subprotocols(
    src: Source<'_>,
    list: Option<&Spanned<Vec<String>>>,
    smuggle: bool,
) -> Result<Vec<String>, ScenarioError> {
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    let (span, names) = (list.span(), list.get_ref());
    if smuggle {
        return Err(src.fail(
            span,
            "`subprotocols` goes with `echo` and `push`: the `smuggle` workload writes its own upgrade",
        ));
    }
    if names.is_empty() || names.len() > MAX_SUBPROTOCOLS {
        return Err(src.fail(
            span,
            format!(
                "`subprotocols` must list 1 to {MAX_SUBPROTOCOLS} names, got {}",
                names.len()
            ),
        ));
    }
    for (i, name) in names.iter().enumerate() {
        let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if name.is_empty() || !name.bytes().all(tchar) {
            return Err(src.fail(
                span,
                format!(
                    "subprotocol `{name}` is not a token (letters, digits and !#$%&'*+-.^_`|~, RFC 6455 §4.1)"
                ),
            ));
        }
        if names[..i].contains(name) {
            return Err(src.fail(
                span,
                format!("subprotocol `{name}` is listed twice (RFC 6455 §4.1: each once)"),
            ));
        }
    }
    Ok(names.clone())
}

/// `route`, transparent unless given; `explicit` needs a hop to be the proxy.
fn route(
    src: Source<'_>,
    route: Option<&Spanned<Route>>,
    path_is_empty: bool,
) -> Result<Route, ScenarioError> {
    let chosen = route.map_or(Route::default(), |r| *r.get_ref());
    if chosen == Route::Explicit && path_is_empty {
        return Err(src.fail(
            route.map_or(0..0, |r| r.span()),
            "`route = \"explicit\"` needs a path whose first hop is the proxy",
        ));
    }
    Ok(chosen)
}

/// `proxy-credentials`: `user:password`, for an explicit proxy only.
fn proxy_credentials(
    src: Source<'_>,
    credentials: Option<Spanned<String>>,
    route: Route,
) -> Result<Option<String>, ScenarioError> {
    match credentials {
        Some(v) if route != Route::Explicit => {
            Err(src.fail(v.span(), "`proxy-credentials` needs `route = \"explicit\"`"))
        }
        Some(v) if !v.get_ref().contains(':') => {
            Err(src.fail(v.span(), "`proxy-credentials` must be `user:password`"))
        }
        v => Ok(v.map(Spanned::into_inner)),
    }
}

/// `path-prefix`: empty unless given; a path that starts with `/` and does not end with one.
fn path_prefix(src: Source<'_>, prefix: Option<&Spanned<String>>) -> Result<String, ScenarioError> {
    let Some(p) = prefix else {
        return Ok(String::new());
    };
    let text = p.get_ref();
    let valid = text.starts_with('/')
        && !text.ends_with('/')
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b));
    if !valid {
        return Err(src.fail(
            p.span(),
            format!(
                "`path-prefix` must start with `/`, not end with one, and hold only letters, digits and `/-._~`, got `{text}`"
            ),
        ));
    }
    Ok(text.clone())
}

/// `[server]`: `tls-version` pins the wss listener's TLS version, so it needs `wss` among the
/// schemes, or a strategy whose attempts use it.
pub(super) fn server(
    src: Source<'_>,
    server: RawServer,
    schemes: &[Scheme],
    kinds: &[StrategyKind],
) -> Result<Server, ScenarioError> {
    let uses = if kinds.is_empty() {
        "which `client.schemes` does not list"
    } else {
        "which no strategy of `client.strategies` uses"
    };
    let wss = strategy::schemes_used(schemes, kinds).contains(&Scheme::Wss);
    let command = match &server.command {
        None => None,
        Some(text) if wss => {
            return Err(src.fail(
                text.span(),
                "a server `command` listens on one plain port: it serves ws only, and a scheme or strategy here uses wss",
            ));
        }
        Some(text) => Some(
            CommandLine::parse_as(text.get_ref(), Role::Forward).map_err(|e| {
                let why = match e {
                    CommandError::ForwardListen { .. } => {
                        "must say where to listen, with `{listen}` or `{listen_port}`".to_string()
                    }
                    CommandError::ForwardUpstream { .. } => {
                        "is the server: it has no `{upstream}` or `{upstream_port}`".to_string()
                    }
                    other => format!("is not one: {other}"),
                };
                src.fail(text.span(), format!("a server `command` {why}"))
            })?,
        ),
    };
    match server.tls_version {
        Some(v) if !wss => Err(src.fail(
            v.span(),
            format!(
                "`tls-version = \"{}\"` applies to wss only, {uses}",
                v.get_ref()
            ),
        )),
        v => Ok(Server {
            tls_version: v.map(Spanned::into_inner).unwrap_or_default(),
            command,
        }),
    }
}
