//! `header-mangler`: an upgrade-aware HTTP proxy that rewrites named header fields on the way
//! through: changes the case of their names or values, replaces, duplicates or drops them,
//! adds `Via` or `Connection: close`. After a 101 it tunnels, so only the handshake is touched.
//!
//! Real intermediaries do each of these: proxies that normalise field-name case, load
//! balancers that add `Via` (RFC 9110 §7.6.3) or force `Connection: close` on backend
//! requests, security appliances that drop fields they do not know, such as
//! `Sec-WebSocket-Extensions` or `Sec-WebSocket-Protocol`. Field names are case-insensitive
//! (RFC 9110 §5.1), so case changes must be harmless; the others show which fields a
//! WebSocket handshake cannot lose.
//!
//! Like a transparent proxy it reads only `http-ports` (default `[80]`) and relays other ports
//! opaquely.

use serde::Deserialize;

use crate::http::{self, Head};
use crate::http_proxy::{HttpProxy, OnGarbage, Policy, Route, Settings};
use crate::model::{Cx, Hop};
use crate::registry::{HopError, Model, ParamError, each};
use crate::spec::HopEnv;

/// What a rule does to the fields it names.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Edit {
    /// Field name in lower case.
    LowercaseName,
    /// Field name in upper case.
    UppercaseName,
    /// Value in lower case.
    LowercaseValue,
    /// Value in upper case.
    UppercaseValue,
    /// Value replaced by the rule's `value`.
    Set,
    /// Every such field sent twice.
    Duplicate,
    /// Every such field removed.
    Drop,
}

/// Which heads a rule applies to.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum On {
    /// Requests from the client.
    #[default]
    Request,
    /// Responses from the server.
    Response,
    /// Both.
    Both,
}

/// One rewrite.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Rule {
    /// The field name, matched case-insensitively.
    pub field: String,
    /// What to do.
    pub action: Edit,
    /// The new value, for `set`.
    #[serde(default)]
    pub value: Option<String>,
    /// Requests, responses or both. Default requests.
    #[serde(default)]
    pub on: On,
}

/// Parameters of `header-mangler`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(try_from = "RawParams")]
pub struct Params {
    /// Rewrites, applied in order.
    pub rules: Vec<Rule>,
    /// A `Via` value added to every head, if any.
    pub add_via: Option<String>,
    /// Whether `Connection: close` is added to every request (beside any `Connection` field
    /// already there).
    pub connection_close: bool,
    /// Ports read as HTTP.
    pub http_ports: Vec<u16>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawParams {
    #[serde(default)]
    rules: Vec<Rule>,
    add_via: Option<String>,
    #[serde(default)]
    connection_close: bool,
    http_ports: Option<Vec<u16>>,
}

impl TryFrom<RawParams> for Params {
    type Error = ParamError;

    fn try_from(raw: RawParams) -> Result<Self, ParamError> {
        for (i, rule) in raw.rules.iter().enumerate() {
            let needs_value = rule.action == Edit::Set;
            if needs_value != rule.value.is_some() {
                return Err(ParamError::invalid(
                    "rules",
                    format!(
                        "rule {} ({}): `value` goes with `action = \"set\"` and only with it",
                        i + 1,
                        rule.field
                    ),
                ));
            }
            if rule.field.is_empty() || !rule.field.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(ParamError::invalid(
                    "rules",
                    format!("rule {}: `{}` is not a field name", i + 1, rule.field),
                ));
            }
        }
        if raw.rules.is_empty() && raw.add_via.is_none() && !raw.connection_close {
            return Err(ParamError::invalid(
                "rules",
                "header-mangler needs `rules`, `add-via` or `connection-close`: it would change nothing",
            ));
        }
        Ok(Params {
            rules: raw.rules,
            add_via: raw.add_via,
            connection_close: raw.connection_close,
            http_ports: raw.http_ports.unwrap_or_else(|| vec![80]),
        })
    }
}

impl Model for Params {
    const NAME: &'static str = "header-mangler";
    const DESCRIPTION: &'static str =
        "an upgrade-aware HTTP proxy that rewrites named fields, then tunnels after the 101";
    const PARAMETERS: &'static str = concat!(
        "`rules` (each `{ field, action, value, on }`: actions `lowercase-name`, ",
        "`uppercase-name`, `lowercase-value`, `uppercase-value`, `set` (with `value`), ",
        "`duplicate`, `drop`; `on` = `request` (default), `response` or `both`), `add-via`, ",
        "`connection-close`, `http-ports` (default [80])",
    );

    fn hop(&self, _: &HopEnv) -> Result<Box<dyn Hop>, HopError> {
        each(self, connection)
    }

    fn summary(&self) -> String {
        let mut parts: Vec<String> = self
            .rules
            .iter()
            .map(|r| format!("{:?} {}", r.action, r.field).to_lowercase())
            .collect();
        if let Some(v) = &self.add_via {
            parts.push(format!("via \"{v}\""));
        }
        if self.connection_close {
            parts.push("connection: close".into());
        }
        format!("header-mangler {}", parts.join("; "))
    }
}

/// A connection through `header-mangler`.
pub type HeaderMangler = HttpProxy<Mangle>;

/// Builds a connection.
pub fn connection(params: &Params) -> HeaderMangler {
    HttpProxy::new(
        Mangle {
            params: params.clone(),
        },
        Settings {
            http_ports: Some(params.http_ports.clone()),
            on_garbage: OnGarbage::ErrorPage,
            max_head_bytes: crate::http::MAX_HEAD_BYTES,
            header_timeout: Some(crate::http::HEADER_TIMEOUT),
        },
    )
}

/// `header-mangler`'s policy.
#[derive(Debug)]
pub struct Mangle {
    params: Params,
}

impl Mangle {
    fn apply(&self, head: &mut Head, request: bool) {
        for rule in &self.params.rules {
            let applies = match rule.on {
                On::Both => true,
                On::Request => request,
                On::Response => !request,
            };
            if !applies {
                continue;
            }
            let matches = |n: &str| n.eq_ignore_ascii_case(&rule.field);
            match rule.action {
                Edit::Drop => {
                    head.remove(&rule.field);
                }
                Edit::Duplicate => {
                    let copies: Vec<(String, Vec<u8>)> = head
                        .fields
                        .iter()
                        .filter(|(n, _)| matches(n))
                        .cloned()
                        .collect();
                    head.fields.extend(copies);
                }
                edit => {
                    for (name, value) in head.fields.iter_mut().filter(|(n, _)| matches(n)) {
                        match edit {
                            Edit::LowercaseName => *name = name.to_ascii_lowercase(),
                            Edit::UppercaseName => *name = name.to_ascii_uppercase(),
                            Edit::LowercaseValue => value.make_ascii_lowercase(),
                            Edit::UppercaseValue => value.make_ascii_uppercase(),
                            Edit::Set => {
                                *value = rule.value.clone().unwrap_or_default().into_bytes();
                            }
                            Edit::Drop | Edit::Duplicate => {}
                        }
                    }
                }
            }
        }
        if let Some(via) = &self.params.add_via {
            head.push("Via", via);
        }
        if request && self.params.connection_close {
            head.push("Connection", "close");
        }
    }
}

impl Policy for Mangle {
    fn request(&mut self, _cx: &mut Cx, head: &mut Head, port: u16) -> Route {
        // A CONNECT is the proxy's own to carry out, and a name under `.invalid` cannot be.
        if let Some(answer) = http::connect_to_invalid(head) {
            return Route::Answer(answer);
        }
        self.apply(head, true);
        Route::Upstream { backend: 0, port }
    }

    fn response(&mut self, _cx: &mut Cx, head: &mut Head, _request: &Head) {
        self.apply(head, false);
    }

    fn tunnels_upgrades(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Action, Connection, Event, Side};

    const UPGRADE: &[u8] = b"GET /echo HTTP/1.1\r\nHost: server\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Protocol: chat\r\n\r\n";
    const SWITCH: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: abc=\r\n\r\n";

    fn params(rules: Vec<Rule>) -> Params {
        Params {
            rules,
            add_via: None,
            connection_close: false,
            http_ports: vec![80],
        }
    }

    fn rule(field: &str, action: Edit, on: On) -> Rule {
        Rule {
            field: field.into(),
            action,
            value: None,
            on,
        }
    }

    fn through(p: &Params) -> (String, String, Vec<Action>) {
        let mut c = connection(p);
        let mut cx = Cx::new(1);
        c.on_event(&mut cx, Event::Accepted { port: 80 });
        c.on_event(
            &mut cx,
            Event::Data {
                from: Side::Client,
                bytes: UPGRADE,
            },
        );
        c.on_event(
            &mut cx,
            Event::Data {
                from: Side::Upstream,
                bytes: SWITCH,
            },
        );
        c.on_event(
            &mut cx,
            Event::Data {
                from: Side::Client,
                bytes: &[0x81, 0x80, 1, 2, 3, 4],
            },
        );
        let actions = cx.take_actions();
        let text = |to: Side| -> String {
            actions
                .iter()
                .filter_map(|a| match a {
                    Action::Send { to: t, bytes } if *t == to => {
                        Some(String::from_utf8_lossy(bytes).to_string())
                    }
                    _ => None,
                })
                .collect()
        };
        (text(Side::Upstream), text(Side::Client), actions)
    }

    #[test]
    fn drops_a_field_from_requests_and_tunnels_after_the_101() {
        let (up, down, _) = through(&params(vec![rule(
            "sec-websocket-protocol",
            Edit::Drop,
            On::Request,
        )]));
        assert!(!up.contains("Sec-WebSocket-Protocol"), "{up}");
        assert_eq!(down.as_bytes(), SWITCH);
    }

    #[test]
    fn rewrites_names_values_and_duplicates() {
        let mut set = rule("Sec-WebSocket-Accept", Edit::Set, On::Response);
        set.value = Some("wrong=".into());
        let (up, down, _) = through(&params(vec![
            rule("upgrade", Edit::UppercaseName, On::Request),
            rule("upgrade", Edit::UppercaseValue, On::Request),
            rule("host", Edit::Duplicate, On::Request),
            set,
        ]));
        assert!(up.contains("UPGRADE: WEBSOCKET\r\n"), "{up}");
        assert_eq!(up.matches("Host: server\r\n").count(), 2, "{up}");
        assert!(down.contains("Sec-WebSocket-Accept: wrong=\r\n"), "{down}");
    }

    #[test]
    fn adds_via_and_connection_close() {
        let mut p = params(vec![]);
        p.add_via = Some("1.1 mangler".into());
        p.connection_close = true;
        let (up, down, _) = through(&p);
        assert!(
            up.contains("Via: 1.1 mangler\r\nConnection: close\r\n\r\n"),
            "{up}"
        );
        assert!(down.contains("Via: 1.1 mangler\r\n"), "{down}");
    }

    #[test]
    fn a_client_that_half_closes_after_its_request_is_closed_once_answered() {
        let p = params(vec![rule("x", Edit::Drop, On::Both)]);
        let mut make = || -> Box<dyn Connection> { Box::new(connection(&p)) };
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        for (answer, tunnels) in [(&ok[..], false), (SWITCH, true)] {
            let wrong = crate::testkit::half_closed_client(&mut make, 80, UPGRADE, answer, tunnels);
            assert!(wrong.is_empty(), "{wrong:#?}");
        }
    }

    #[test]
    fn the_frame_after_the_101_passes_unchanged() {
        let (_, _, actions) = through(&params(vec![rule("x", Edit::Drop, On::Both)]));
        assert_eq!(
            actions.last(),
            Some(&Action::Send {
                to: Side::Upstream,
                bytes: vec![0x81, 0x80, 1, 2, 3, 4]
            })
        );
    }
}
