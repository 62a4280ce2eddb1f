//! `transparent-proxy`: an intercepting HTTP proxy that is not upgrade-aware.
//!
//! It intercepts the ports in `intercept-ports` (port 80 by default, as transparent proxies
//! do) and relays anything else opaquely, which is why wss:// passes it. On an intercepted
//! port it reads HTTP/1.1 messages in both directions and rewrites each head according to its
//! `behaviour`, after the seed articles:
//!
//! - `strip`: a proxy that follows RFC 9110 §7.6.1: it removes `Connection`, every field
//!   `Connection` names, and the other hop-by-hop fields, `Upgrade` among them, so the server
//!   sees a plain GET and answers it (426 from the reference server).
//! - `forward-then-choke`: forwards heads unchanged, `Upgrade` and the 101 included, but still
//!   reads what follows as HTTP: the client's first frame is parsed as the next request.
//! - `http10-upstream`: talks HTTP/1.0 upstream with `Connection: close` and without the
//!   hop-by-hop fields, as nginx does by default before 1.29.7 (`proxy_http_version 1.0`, no
//!   `proxy_set_header Upgrade`); answers the client in HTTP/1.1.
//!
//! Whatever the behaviour, bytes that are not HTTP where a head is expected (a WebSocket frame
//! after a 101, say) get the `on-garbage` answer: `"400"` (an HTML error page, 400 toward the
//! client or 502 when the server sent them, then FIN both ways) or `"reset"` (RST both ways).

use serde::Deserialize;

use crate::http::{self, Head};
pub use crate::http_proxy::OnGarbage;
use crate::http_proxy::{HttpProxy, Policy, Route, Settings};
use crate::model::{Cx, Hop};
use crate::registry::{HopError, Model, each};
use crate::spec::HopEnv;

/// Parameters of `transparent-proxy`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Params {
    /// What the proxy does to each head. Required.
    pub behaviour: Behaviour,
    /// The answer to bytes that are not HTTP where a head is expected. Default `"400"`.
    #[serde(default)]
    pub on_garbage: OnGarbage,
    /// Ports whose traffic is read as HTTP; other ports are relayed opaquely. Default `[80]`
    /// (interception proxies redirect port 80; TLS on 443 is opaque to them).
    #[serde(default = "default_intercept_ports")]
    pub intercept_ports: Vec<u16>,
    /// The longest head accepted, in bytes: a longer request head is answered 431, a longer
    /// response head 502, and the connection is closed. Default [`http::MAX_HEAD_BYTES`]
    /// (64 KiB, Squid's `request_header_max_size` and `reply_header_max_size`).
    #[serde(default = "default_max_head_bytes")]
    pub max_head_bytes: usize,
    /// How long the first request head may take, in milliseconds: then the client is
    /// answered 408 and the connection closed; 0 waits for ever. Default 60000
    /// ([`http::HEADER_TIMEOUT`], nginx's `client_header_timeout`).
    #[serde(default = "default_header_timeout_ms")]
    pub header_timeout_ms: u64,
}

impl Model for Params {
    const NAME: &'static str = "transparent-proxy";
    const DESCRIPTION: &'static str = concat!(
        "an interception HTTP proxy that is not upgrade-aware: per `behaviour`, it strips the ",
        "upgrade, forwards it and chokes on the first frame, or talks HTTP/1.0 upstream",
    );
    const PARAMETERS: &'static str =
        "`behaviour`, `on-garbage`, `intercept-ports`, `max-head-bytes`, `header-timeout-ms`";

    fn hop(&self, _: &HopEnv) -> Result<Box<dyn Hop>, HopError> {
        each(self, connection)
    }

    fn summary(&self) -> String {
        format!(
            "transparent-proxy behaviour={} on-garbage={} intercept-ports={:?}",
            self.behaviour.as_str(),
            self.on_garbage.as_str(),
            self.intercept_ports
        )
    }
}

fn default_intercept_ports() -> Vec<u16> {
    vec![80]
}

fn default_max_head_bytes() -> usize {
    http::MAX_HEAD_BYTES
}

fn default_header_timeout_ms() -> u64 {
    http::HEADER_TIMEOUT.as_millis() as u64
}

/// What `transparent-proxy` does to heads.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Behaviour {
    /// Remove hop-by-hop fields (RFC 9110 §7.6.1), `Upgrade` and `Connection` among them.
    Strip,
    /// Forward heads unchanged, then read the first frame as the next request.
    ForwardThenChoke,
    /// Talk HTTP/1.0 upstream without hop-by-hop fields, like nginx's default.
    Http10Upstream,
}

impl Behaviour {
    /// The name scenario files use.
    pub fn as_str(self) -> &'static str {
        match self {
            Behaviour::Strip => "strip",
            Behaviour::ForwardThenChoke => "forward-then-choke",
            Behaviour::Http10Upstream => "http10-upstream",
        }
    }
}

/// A connection through `transparent-proxy`: the HTTP proxy engine with this policy.
pub type TransparentProxy = HttpProxy<Rewrite>;

/// Builds a connection.
pub fn connection(params: &Params) -> TransparentProxy {
    HttpProxy::new(
        Rewrite {
            behaviour: params.behaviour,
        },
        Settings {
            http_ports: Some(params.intercept_ports.clone()),
            on_garbage: params.on_garbage,
            max_head_bytes: params.max_head_bytes,
            header_timeout: (params.header_timeout_ms > 0)
                .then(|| std::time::Duration::from_millis(params.header_timeout_ms)),
        },
    )
}

/// `transparent-proxy`'s policy: rewrite heads per the behaviour, send everything to the
/// server the client dialed, never tunnel.
#[derive(Debug, Clone)]
pub struct Rewrite {
    behaviour: Behaviour,
}

/// A relay that forwards bodies unchanged keeps their transfer coding.
const KEEP: &[&str] = &["transfer-encoding"];

impl Policy for Rewrite {
    fn request(&mut self, _cx: &mut Cx, head: &mut Head, port: u16) -> Route {
        // A CONNECT is the proxy's own to carry out, and a name under `.invalid` cannot be.
        if let Some(answer) = http::connect_to_invalid(head) {
            return Route::Answer(answer);
        }
        match self.behaviour {
            Behaviour::ForwardThenChoke => {}
            Behaviour::Strip => {
                head.strip_hop_by_hop(KEEP);
            }
            Behaviour::Http10Upstream => {
                head.strip_hop_by_hop(&[]);
                head.set_minor(0);
                head.push("Connection", "close");
            }
        }
        Route::Upstream { backend: 0, port }
    }

    fn response(&mut self, _cx: &mut Cx, head: &mut Head, _request: &Head) {
        match self.behaviour {
            Behaviour::ForwardThenChoke => {}
            Behaviour::Strip => {
                head.strip_hop_by_hop(KEEP);
            }
            Behaviour::Http10Upstream => {
                head.strip_hop_by_hop(KEEP);
                head.set_minor(1);
            }
        }
    }

    fn tunnels_upgrades(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Action, CloseHow, Connection, Event, Side};
    use crate::testkit::{closes, sent};

    const UPGRADE: &[u8] = b"GET /echo HTTP/1.1\r\nHost: server\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    const SWITCH: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    /// A masked text frame "hi" as a client sends it.
    const FRAME: &[u8] = &[0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2];

    fn proxy(behaviour: Behaviour, on_garbage: OnGarbage) -> TransparentProxy {
        connection(&Params {
            behaviour,
            on_garbage,
            intercept_ports: vec![80],
            max_head_bytes: 8192,
            header_timeout_ms: 60_000,
        })
    }

    fn feed(p: &mut TransparentProxy, cx: &mut Cx, from: Side, bytes: &[u8]) {
        p.on_event(cx, Event::Data { from, bytes });
    }

    #[test]
    fn a_connect_to_an_invalid_name_is_answered_502_and_never_reaches_the_server() {
        for behaviour in [
            Behaviour::Strip,
            Behaviour::ForwardThenChoke,
            Behaviour::Http10Upstream,
        ] {
            let mut cx = Cx::new(1);
            let mut p = proxy(behaviour, OnGarbage::ErrorPage);
            p.on_event(&mut cx, Event::Accepted { port: 80 });
            feed(
                &mut p,
                &mut cx,
                Side::Client,
                b"CONNECT websocket.invalid:443 HTTP/1.1\r\nHost: websocket.invalid:443\r\n\r\n",
            );
            let actions = cx.take_actions();
            let down = String::from_utf8(sent(&actions, Side::Client)).unwrap();
            assert!(down.starts_with("HTTP/1.1 502 Bad Gateway\r\n"), "{behaviour:?}: {down}");
            assert!(sent(&actions, Side::Upstream).is_empty(), "{behaviour:?}");
            assert!(
                !actions.iter().any(|a| matches!(a, Action::Dial { .. })),
                "{behaviour:?}"
            );
        }
    }

    #[test]
    fn strip_removes_upgrade_and_connection_from_the_request() {
        let mut cx = Cx::new(1);
        let mut p = proxy(Behaviour::Strip, OnGarbage::ErrorPage);
        p.on_event(&mut cx, Event::Accepted { port: 80 });
        feed(&mut p, &mut cx, Side::Client, UPGRADE);
        let actions = cx.take_actions();
        assert!(actions.contains(&Action::Dial {
            backend: 0,
            port: 80
        }));
        let up = String::from_utf8(sent(&actions, Side::Upstream)).unwrap();
        assert!(up.starts_with("GET /echo HTTP/1.1\r\n"));
        assert!(!up.to_ascii_lowercase().contains("upgrade"), "{up}");
        assert!(up.contains("Sec-WebSocket-Key"));
    }

    #[test]
    fn strip_relays_a_length_delimited_response_whole() {
        let mut cx = Cx::new(1);
        let mut p = proxy(Behaviour::Strip, OnGarbage::ErrorPage);
        p.on_event(&mut cx, Event::Accepted { port: 80 });
        feed(&mut p, &mut cx, Side::Client, UPGRADE);
        cx.take_actions();
        let response = b"HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\nConnection: upgrade\r\nContent-Length: 5\r\n\r\nhello";
        for chunk in response.chunks(7) {
            feed(&mut p, &mut cx, Side::Upstream, chunk);
        }
        let down = String::from_utf8(sent(&cx.take_actions(), Side::Client)).unwrap();
        assert_eq!(
            down,
            "HTTP/1.1 426 Upgrade Required\r\nContent-Length: 5\r\n\r\nhello"
        );
    }

    #[test]
    fn choke_forwards_the_upgrade_then_answers_the_first_frame_with_400() {
        let mut cx = Cx::new(1);
        let mut p = proxy(Behaviour::ForwardThenChoke, OnGarbage::ErrorPage);
        p.on_event(&mut cx, Event::Accepted { port: 80 });
        feed(&mut p, &mut cx, Side::Client, UPGRADE);
        feed(&mut p, &mut cx, Side::Upstream, SWITCH);
        let actions = cx.take_actions();
        assert_eq!(sent(&actions, Side::Upstream), UPGRADE);
        assert_eq!(sent(&actions, Side::Client), SWITCH);
        feed(&mut p, &mut cx, Side::Client, FRAME);
        let actions = cx.take_actions();
        assert!(sent(&actions, Side::Client).starts_with(b"HTTP/1.1 400 Bad Request\r\n"));
        assert!(
            sent(&actions, Side::Upstream).is_empty(),
            "the frame must not reach the server"
        );
        assert_eq!(
            closes(&actions),
            vec![
                (Side::Client, CloseHow::Fin),
                (Side::Upstream, CloseHow::Fin)
            ]
        );
        feed(&mut p, &mut cx, Side::Client, FRAME);
        assert!(
            matches!(&cx.take_actions()[..], [Action::Note(n)] if n.contains("discarded 8 bytes"))
        );
    }

    #[test]
    fn choke_resets_both_sides_when_told_to() {
        let mut cx = Cx::new(1);
        let mut p = proxy(Behaviour::ForwardThenChoke, OnGarbage::Reset);
        p.on_event(&mut cx, Event::Accepted { port: 80 });
        feed(&mut p, &mut cx, Side::Client, UPGRADE);
        feed(&mut p, &mut cx, Side::Upstream, SWITCH);
        cx.take_actions();
        feed(&mut p, &mut cx, Side::Client, FRAME);
        let actions = cx.take_actions();
        assert!(sent(&actions, Side::Client).is_empty());
        assert_eq!(
            closes(&actions),
            vec![
                (Side::Client, CloseHow::Reset),
                (Side::Upstream, CloseHow::Reset)
            ]
        );
    }

    #[test]
    fn http10_upstream_downgrades_and_closes() {
        let mut cx = Cx::new(1);
        let mut p = proxy(Behaviour::Http10Upstream, OnGarbage::ErrorPage);
        p.on_event(&mut cx, Event::Accepted { port: 80 });
        feed(&mut p, &mut cx, Side::Client, UPGRADE);
        let up = String::from_utf8(sent(&cx.take_actions(), Side::Upstream)).unwrap();
        assert!(up.starts_with("GET /echo HTTP/1.0\r\n"), "{up}");
        assert!(up.ends_with("Connection: close\r\n\r\n"), "{up}");
        assert!(!up.contains("Upgrade:"), "{up}");
        feed(
            &mut p,
            &mut cx,
            Side::Upstream,
            b"HTTP/1.0 426 Upgrade Required\r\n\r\nbody",
        );
        p.on_event(
            &mut cx,
            Event::Fin {
                from: Side::Upstream,
            },
        );
        let actions = cx.take_actions();
        assert_eq!(
            String::from_utf8(sent(&actions, Side::Client)).unwrap(),
            "HTTP/1.1 426 Upgrade Required\r\n\r\nbody"
        );
        assert_eq!(closes(&actions), vec![(Side::Client, CloseHow::Fin)]);
    }

    #[test]
    fn ports_not_intercepted_are_relayed_opaquely() {
        let mut cx = Cx::new(1);
        let mut p = proxy(Behaviour::Strip, OnGarbage::ErrorPage);
        p.on_event(&mut cx, Event::Accepted { port: 443 });
        p.on_event(
            &mut cx,
            Event::Data {
                from: Side::Client,
                bytes: &[0x16, 3, 1],
            },
        );
        let actions = cx.take_actions();
        assert!(actions.contains(&Action::Dial {
            backend: 0,
            port: 443
        }));
        assert_eq!(sent(&actions, Side::Upstream), vec![0x16, 3, 1]);
    }

    #[test]
    fn a_client_that_half_closes_after_its_request_is_closed_once_answered() {
        for behaviour in [
            Behaviour::Strip,
            Behaviour::ForwardThenChoke,
            Behaviour::Http10Upstream,
        ] {
            let mut make =
                || -> Box<dyn Connection> { Box::new(proxy(behaviour, OnGarbage::ErrorPage)) };
            let rejected = b"HTTP/1.1 426 Upgrade Required\r\nContent-Length: 5\r\n\r\nhello";
            for (answer, tunnels) in [(&rejected[..], false), (SWITCH, false)] {
                let wrong =
                    crate::testkit::half_closed_client(&mut make, 80, UPGRADE, answer, tunnels);
                assert!(wrong.is_empty(), "{behaviour:?}: {wrong:#?}");
            }
        }
    }

    #[test]
    fn a_request_split_anywhere_is_forwarded_the_same() {
        let whole = {
            let mut cx = Cx::new(1);
            let mut p = proxy(Behaviour::Strip, OnGarbage::ErrorPage);
            p.on_event(&mut cx, Event::Accepted { port: 80 });
            feed(&mut p, &mut cx, Side::Client, UPGRADE);
            sent(&cx.take_actions(), Side::Upstream)
        };
        for split in 1..UPGRADE.len() {
            let mut cx = Cx::new(1);
            let mut p = proxy(Behaviour::Strip, OnGarbage::ErrorPage);
            p.on_event(&mut cx, Event::Accepted { port: 80 });
            feed(&mut p, &mut cx, Side::Client, &UPGRADE[..split]);
            feed(&mut p, &mut cx, Side::Client, &UPGRADE[split..]);
            assert_eq!(
                sent(&cx.take_actions(), Side::Upstream),
                whole,
                "split at {split}"
            );
        }
    }
}
