//! An Engine.IO request's query, and the checks engine.io's `verify` and `handshake` make of
//! it, in their order: the transport, then the session a `sid` names (or, for a handshake,
//! the method, a WebSocket asked for without an upgrade, the session limit and `EIO`).

use std::sync::Arc;
use std::time::Duration;

use super::packet::{ErrorBody, ErrorCode};
use super::session::{App, Session, Transport};
use super::{Cx, EngineIo};

/// What an Engine.IO request's query says.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Query<'a> {
    eio: Option<&'a str>,
    transport: Option<&'a str>,
    sid: Option<&'a str>,
    app: Option<&'a str>,
    count: Option<&'a str>,
    from: Option<&'a str>,
    interval: Option<&'a str>,
    size: Option<&'a str>,
}

impl<'a> Query<'a> {
    /// Reads `query` (`EIO=4&transport=polling&sid=…`); the first of a repeated key counts,
    /// and keys it does not know (`t`, a client's cache-buster) are passed over.
    pub(super) fn parse(query: &'a str) -> Self {
        let mut q = Query::default();
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match key {
                "EIO" => &mut q.eio,
                "transport" => &mut q.transport,
                "sid" => &mut q.sid,
                "app" => &mut q.app,
                "count" => &mut q.count,
                "from" => &mut q.from,
                "interval" => &mut q.interval,
                "size" => &mut q.size,
                _ => continue,
            };
            slot.get_or_insert(value);
        }
        q
    }

    fn transport(&self) -> Option<Transport> {
        match self.transport? {
            "polling" => Some(Transport::Polling),
            "websocket" => Some(Transport::WebSocket),
            _ => None,
        }
    }

    /// The application a handshake asks for: `app=push` with `count` (default 1), `interval`
    /// (ms, default 100, at least 1) and `size` (bytes, default 32, 1 to `max_size`), as
    /// `/push` reads them; anything else is the echo.
    fn app(&self, max_size: usize) -> App {
        if self.app != Some("push") {
            return App::Echo;
        }
        let number =
            |v: Option<&str>, default: u64| v.and_then(|v| v.parse().ok()).unwrap_or(default);
        App::Push {
            count: u32::try_from(number(self.count, 1)).unwrap_or(u32::MAX),
            from: u32::try_from(number(self.from, 0)).unwrap_or(u32::MAX),
            interval: Duration::from_millis(number(self.interval, 100).max(1)),
            size: usize::try_from(number(self.size, 32))
                .unwrap_or(usize::MAX)
                .clamp(1, max_size.max(1)),
        }
    }
}

/// A request the server refuses: the error code and its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refused {
    pub(crate) code: ErrorCode,
    pub(crate) message: String,
}

impl From<ErrorCode> for Refused {
    /// The refusal with the code's own message.
    fn from(code: ErrorCode) -> Self {
        Self {
            code,
            message: code.message().to_string(),
        }
    }
}

impl Refused {
    /// The refusal of a handshake when `max` sessions are open: engine.io's answer when its
    /// `allowRequest` says no.
    pub(super) fn full(max: usize) -> Self {
        Self {
            code: ErrorCode::Forbidden,
            message: format!("{max} sessions open, the most the server holds"),
        }
    }

    /// The HTTP status engine.io answers a polling request with.
    pub(crate) fn status(&self) -> u16 {
        self.code.status()
    }

    /// The JSON body engine.io answers a polling request with.
    pub(crate) fn json(&self) -> String {
        ErrorBody::with_message(self.code, self.message.clone()).json()
    }
}

/// What a request that passed the checks is for.
#[derive(Debug)]
pub(super) enum Target {
    /// A new session, on this transport, running this application.
    Handshake(Transport, App),
    /// The open session its `sid` names.
    Session(Arc<Session>),
}

/// What a WebSocket handshake on an Engine.IO path will do once upgraded.
#[derive(Debug)]
pub(crate) struct WebSocketPlan(pub(super) Target);

/// engine.io's checks of a request (`upgrade`: a WebSocket handshake), in its order.
pub(super) fn verify(
    engine: &EngineIo,
    method: &hyper::Method,
    query: &Query<'_>,
    upgrade: bool,
) -> Result<Target, Refused> {
    let Some(transport) = query.transport() else {
        return Err(Refused::from(ErrorCode::TransportUnknown));
    };
    if let Some(sid) = query.sid {
        let Some(session) = engine.session(sid) else {
            return Err(Refused::from(ErrorCode::SessionIdUnknown));
        };
        let current = session.peek(|s| s.transport);
        if !upgrade && current != transport {
            return Err(Refused::from(ErrorCode::BadRequest));
        }
        return Ok(Target::Session(session));
    }
    if method != hyper::Method::GET {
        return Err(Refused::from(ErrorCode::BadHandshakeMethod));
    }
    if transport == Transport::WebSocket && !upgrade {
        return Err(Refused::from(ErrorCode::BadRequest));
    }
    if !engine.has_room() {
        return Err(Refused::full(engine.options().max_sessions));
    }
    if query.eio != Some("4") {
        return Err(Refused::from(ErrorCode::UnsupportedProtocolVersion));
    }
    Ok(Target::Handshake(
        transport,
        query.app(engine.options().max_payload),
    ))
}

/// The checks of a WebSocket handshake on an Engine.IO path: what its session will be, or
/// why not. A WebSocket for a polling transport is refused (engine.io closes it after the
/// 101).
pub(crate) fn websocket(
    cx: &Cx,
    method: &hyper::Method,
    query: &str,
) -> Result<WebSocketPlan, Refused> {
    let query = Query::parse(query);
    if query.transport == Some("polling") {
        return Err(Refused::from(ErrorCode::BadRequest));
    }
    verify(&cx.engine, method, &query, true).map(WebSocketPlan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::engineio::Options;

    fn check(query: &str, method: hyper::Method, upgrade: bool) -> Result<Target, ErrorCode> {
        let engine = EngineIo::new(Options::default());
        verify(&engine, &method, &Query::parse(query), upgrade).map_err(|r| r.code)
    }

    #[test]
    fn the_checks_come_in_engine_ios_order() {
        use ErrorCode::*;
        let get = hyper::Method::GET;
        let cases = [
            ("EIO=4", TransportUnknown),
            ("EIO=4&transport=abc", TransportUnknown),
            ("EIO=3&transport=xhr&sid=x", TransportUnknown),
            ("EIO=4&transport=polling&sid=nobody", SessionIdUnknown),
            ("transport=polling", UnsupportedProtocolVersion),
            ("EIO=abc&transport=polling", UnsupportedProtocolVersion),
            ("EIO=3&transport=polling", UnsupportedProtocolVersion),
            ("EIO=4&transport=websocket", BadRequest),
        ];
        for (query, code) in cases {
            assert_eq!(
                check(query, get.clone(), false).err(),
                Some(code),
                "{query}"
            );
        }
        assert_eq!(
            check("EIO=4&transport=polling", hyper::Method::POST, false).err(),
            Some(BadHandshakeMethod)
        );
        assert!(matches!(
            check("EIO=4&transport=polling&t=123", get.clone(), false),
            Ok(Target::Handshake(Transport::Polling, App::Echo))
        ));
        assert!(matches!(
            check("EIO=4&transport=websocket", get, true),
            Ok(Target::Handshake(Transport::WebSocket, App::Echo))
        ));
    }

    #[test]
    fn a_handshake_beyond_the_session_limit_is_forbidden() {
        let engine = EngineIo::new(Options {
            max_sessions: 1,
            ..Options::default()
        });
        let query = Query::parse("EIO=4&transport=polling");
        assert!(verify(&engine, &hyper::Method::GET, &query, false).is_ok());
        let opened = engine.open("server", Transport::Polling, App::Echo);
        assert!(opened.is_some());
        let refused = verify(&engine, &hyper::Method::GET, &query, false).expect_err("full");
        assert_eq!(
            (refused.code, refused.status()),
            (ErrorCode::Forbidden, 403)
        );
        assert_eq!(
            refused.json(),
            r#"{"code":4,"message":"1 sessions open, the most the server holds"}"#
        );
        assert!(
            engine
                .open("server", Transport::Polling, App::Echo)
                .is_none()
        );
    }

    #[test]
    fn a_sessions_transport_must_match_unless_upgrading() {
        let engine = EngineIo::new(Options::default());
        let session = engine
            .open("server", Transport::Polling, App::Echo)
            .expect("room");
        let query = format!("EIO=4&transport=websocket&sid={}", session.sid);
        let get = hyper::Method::GET;
        let without = verify(&engine, &get, &Query::parse(&query), false);
        assert_eq!(without.err().map(|r| r.code), Some(ErrorCode::BadRequest));
        assert!(matches!(
            verify(&engine, &get, &Query::parse(&query), true),
            Ok(Target::Session(s)) if s.sid == session.sid
        ));
    }

    #[test]
    fn session_ids_are_twenty_url_safe_characters_the_same_each_run() {
        let ids = || {
            let engine = EngineIo::new(Options::default());
            (0..3)
                .map(|_| {
                    engine
                        .open("server", Transport::Polling, App::Echo)
                        .expect("room")
                        .sid
                        .clone()
                })
                .collect::<Vec<_>>()
        };
        let first = ids();
        assert_eq!(first, ids());
        assert!(first.iter().all(|sid| {
            sid.len() == 20
                && sid
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        }));
        assert_ne!(first[0], first[1]);
        let keyed = EngineIo::with_key(Options::default(), 7)
            .open("server", Transport::Polling, App::Echo)
            .expect("room");
        assert_ne!(keyed.sid, first[0]);
    }

    #[test]
    fn push_reads_its_query_as_push_does_within_bounds() {
        let q = Query::parse("app=push&count=3&interval=0&size=99999999");
        assert_eq!(
            q.app(1000),
            App::Push {
                count: 3,
                from: 0,
                interval: Duration::from_millis(1),
                size: 1000
            }
        );
        assert_eq!(Query::parse("count=3").app(1000), App::Echo);
        assert_eq!(Query::parse("EIO=4&EIO=3").eio, Some("4"));
    }
}
