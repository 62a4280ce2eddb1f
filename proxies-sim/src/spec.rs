//! The one ordered list of models ([`MODELS`]), and [`ModelSpec`]: a model with its
//! parameters, as a scenario file names them. Each model declares itself in its own file
//! ([`Model`](crate::registry::Model)); the list in the crate root (`lib.rs`) names each once,
//! and the `models!` macro defined here makes the rest from it: the model's module, the
//! [`ModelSpec`] variant, the entries of [`MODEL_NAMES`] and [`MODELS`], every dispatch.
//!
//! A hop is a table whose first key is `model`; its other keys are the model's parameters:
//!
//! ```toml
//! [[path]]
//! model = "transparent-proxy"
//! behaviour = "strip"
//! ```

use std::fmt;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};

use crate::tls_intercepting_proxy;

/// Makes the list of models from one line per model, `Variant => module`, where
/// `module::Params` implements [`Model`](crate::registry::Model): [`MODEL_NAMES`], [`MODELS`], the [`ModelSpec`]
/// enum, and every dispatch from a [`ModelSpec`] to its model's declaration.
macro_rules! models {
    ($($variant:ident => $module:ident,)+) => {
        $(pub mod $module;)+

        /// Every model's name, in catalogue order.
        pub const MODEL_NAMES: &[&str] = &[$(<crate::$module::Params as crate::registry::Model>::NAME),+];

        /// Every model's declaration, in catalogue order: name, description, parameters.
        pub static MODELS: &[crate::registry::ModelInfo] =
            &[$(crate::registry::ModelInfo::of::<crate::$module::Params>()),+];

        /// A model and its parameters.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum ModelSpec {
            $(
                #[doc = concat!(
                    "[`", stringify!($module), "`](crate::", stringify!($module), "), ",
                    "with its parameters."
                )]
                $variant(crate::$module::Params),
            )+
        }

        impl ModelSpec {
            /// The model's name as scenario files spell it.
            pub fn name(&self) -> &'static str {
                match self {
                    $(ModelSpec::$variant(_) => <crate::$module::Params as crate::registry::Model>::NAME,)+
                }
            }

            /// How many upstream hosts (backends) the hop dials among; 1 for all but
            /// balancers.
            pub fn backends(&self) -> usize {
                match self {
                    $(ModelSpec::$variant(p) => crate::registry::Model::backends(p),)+
                }
            }

            /// The hop's instance on one host, which makes its connections. Fails when the
            /// model needs something from `env` that is missing.
            pub fn hop(
                &self,
                env: &crate::spec::HopEnv,
            ) -> Result<Box<dyn crate::model::Hop>, crate::registry::HopError> {
                match self {
                    $(ModelSpec::$variant(p) => crate::registry::Model::hop(p, env),)+
                }
            }

            /// What the model keeps from one connection to the next, if anything (a cache, a
            /// balancer's rotation): one copy of the hop must see every connection for the
            /// model to behave as specified, so `gauntlet proxy` runs such a chain on one
            /// worker.
            pub fn shared_state(&self) -> Option<&'static str> {
                match self {
                    $(ModelSpec::$variant(_) => <crate::$module::Params as crate::registry::Model>::SHARED_STATE,)+
                }
            }

            /// A one-line summary for transcripts: the name and the parameters that matter.
            pub fn summary(&self) -> String {
                match self {
                    $(ModelSpec::$variant(p) => crate::registry::Model::summary(p),)+
                }
            }

            /// The parameters of the model `name` (one of [`MODEL_NAMES`]), read from the
            /// rest of its hop table.
            fn read<'de, A: serde::de::MapAccess<'de>>(
                name: &str,
                rest: serde::de::value::MapAccessDeserializer<A>,
            ) -> Result<ModelSpec, A::Error> {
                $(
                    if name == <crate::$module::Params as crate::registry::Model>::NAME {
                        return <crate::$module::Params as serde::Deserialize>::deserialize(rest)
                            .map(ModelSpec::$variant);
                    }
                )+
                unreachable!("ModelName accepted `{name}` which is not in MODEL_NAMES")
            }
        }
    };
}

pub(crate) use models;

pub use crate::{MODEL_NAMES, MODELS, ModelSpec};

/// What a hop needs from the harness beyond its parameters.
#[derive(Debug, Clone, Default)]
pub struct HopEnv {
    /// TLS material, for `tls-intercepting-proxy` and an `l7-balancer` that terminates TLS.
    pub tls: Option<tls_intercepting_proxy::Material>,
}

impl<'de> Deserialize<'de> for ModelSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(SpecVisitor)
    }
}

struct SpecVisitor;

impl<'de> Visitor<'de> for SpecVisitor {
    type Value = ModelSpec;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a hop table whose first key is `model`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ModelSpec, A::Error> {
        match map.next_key::<String>()? {
            Some(key) if key == "model" => ModelSpec::after_model_key(map),
            Some(key) => Err(de::Error::custom(format!(
                "a hop must start with `model = \"...\"` (one of {}), found `{key}` first",
                MODEL_NAMES.join(", ")
            ))),
            None => Err(de::Error::missing_field("model")),
        }
    }
}

impl ModelSpec {
    /// Reads the rest of a hop table whose `model` key `map` has just given: the model's name,
    /// then its parameters. For formats whose hop tables may start with other keys (the
    /// harness's scenario files also take real programs as hops); errors keep their location.
    pub fn after_model_key<'de, A: MapAccess<'de>>(mut map: A) -> Result<ModelSpec, A::Error> {
        let name = map.next_value_seed(ModelName)?;
        ModelSpec::read(name, MapAccessDeserializer::new(map))
    }
}

/// Reads the `model` value and checks it against [`MODEL_NAMES`], so an unknown name is
/// reported at the value itself.
struct ModelName;

impl<'de> DeserializeSeed<'de> for ModelName {
    type Value = &'static str;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        let name = String::deserialize(deserializer)?;
        MODEL_NAMES
            .iter()
            .copied()
            .find(|n| *n == name)
            .ok_or_else(|| {
                de::Error::custom(format!(
                    "unknown model `{name}`, expected one of: {}",
                    MODEL_NAMES.join(", ")
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transparent_proxy::{Behaviour, OnGarbage};

    #[derive(Debug, Deserialize)]
    struct Doc {
        path: Vec<ModelSpec>,
    }

    fn parse(src: &str) -> Result<Vec<ModelSpec>, String> {
        toml::from_str::<Doc>(src)
            .map(|d| d.path)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn hops_read_their_model_then_its_parameters() {
        let path = parse(
            "[[path]]\nmodel = \"pass\"\n[[path]]\nmodel = \"transparent-proxy\"\nbehaviour = \"forward-then-choke\"\non-garbage = \"reset\"\n",
        )
        .unwrap();
        assert_eq!(path[0], ModelSpec::Pass(crate::pass::Params {}));
        let ModelSpec::TransparentProxy(p) = &path[1] else {
            panic!("{path:?}")
        };
        assert_eq!(p.behaviour, Behaviour::ForwardThenChoke);
        assert_eq!(p.on_garbage, OnGarbage::Reset);
        assert_eq!(p.intercept_ports, vec![80]);
    }

    #[test]
    fn the_list_names_each_model_once_in_kebab_case() {
        let names: Vec<&str> = MODELS.iter().map(|m| m.name).collect();
        assert_eq!(names, MODEL_NAMES);
        let unique: std::collections::BTreeSet<&str> = names.iter().copied().collect();
        assert_eq!(unique.len(), names.len(), "a name given twice: {names:?}");
        for name in names {
            let kebab = name.split('-').all(|w| {
                !w.is_empty()
                    && w.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            });
            assert!(kebab, "`{name}` is not kebab case");
        }
    }

    #[test]
    fn mistakes_in_a_hop_are_reported_where_they_are() {
        let err =
            parse("[[path]]\nmodel = \"transparent-proxy\"\nbehavior = \"strip\"\n").unwrap_err();
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("unknown field `behavior`"), "{err}");
        let err = parse("[[path]]\nmodel = \"tranparent-proxy\"\n").unwrap_err();
        assert!(
            err.contains("line 2")
                && err.contains(
                    "unknown model `tranparent-proxy`, expected one of: pass, transparent-proxy"
                ),
            "{err}"
        );
        let err = parse("[[path]]\nbehaviour = \"strip\"\nmodel = \"pass\"\n").unwrap_err();
        assert!(err.contains("must start with `model"), "{err}");
    }
}

/// What every model that reads HTTP heads promises about them: reading one costs time linear
/// in its length however it is cut, and one longer than [`crate::http::MAX_HEAD_BYTES`] is
/// refused the same way everywhere.
#[cfg(test)]
pub(crate) mod heads {
    use super::*;
    use crate::http::{MAX_HEAD_BYTES, examined};
    use crate::model::{Action, CloseHow, Connection, Cx, Event, Side};
    use crate::testkit::{closes, notes, sent};

    /// Every model that reads heads, as a hop table, with the port it reads them on and the
    /// request line it is sent (without the version). `tls-intercepting-proxy` needs TLS
    /// material: its own tests hold it to the same promises.
    const HTTP_MODELS: &[(&str, u16, &str)] = &[
        (
            "model = 'transparent-proxy'\nbehaviour = 'strip'",
            80,
            "GET /",
        ),
        (
            "model = 'transparent-proxy'\nbehaviour = 'forward-then-choke'",
            80,
            "GET /",
        ),
        (
            "model = 'transparent-proxy'\nbehaviour = 'http10-upstream'",
            80,
            "GET /",
        ),
        (
            "model = 'header-mangler'\nadd-via = '1.1 gauntlet'",
            80,
            "GET /",
        ),
        ("model = 'l7-balancer'\nterminate-tls = false", 80, "GET /"),
        (
            "model = 'l7-balancer'\npreset = 'nginx'\nterminate-tls = false",
            80,
            "GET /",
        ),
        (
            "model = 'connect-proxy'\npreset = 'tinyproxy'",
            3128,
            "CONNECT server:80",
        ),
        (
            "model = 'connect-proxy'\npreset = 'tinyproxy'",
            3128,
            "GET http://server/",
        ),
        ("model = 'caching-proxy'", 80, "GET /"),
        ("model = 'buffering-proxy'", 80, "GET /"),
        (
            "model = 'buffering-proxy'\npreset = 'antivirus-hold-until-close'",
            80,
            "GET /",
        ),
    ];

    /// A head of exactly `len` bytes: `start`, a Host, `extra` fields, padding, the empty line.
    pub(crate) fn padded(start: &str, extra: &str, len: usize) -> Vec<u8> {
        let top = format!("{start}\r\nHost: server\r\n{extra}X-Pad: ");
        let pad = len - top.len() - 4;
        let mut head = top.into_bytes();
        head.extend(std::iter::repeat_n(b'a', pad));
        head.extend_from_slice(b"\r\n\r\n");
        assert_eq!(head.len(), len);
        head
    }

    fn request(line: &str, len: usize) -> Vec<u8> {
        padded(&format!("{line} HTTP/1.1"), "", len)
    }

    fn response(len: usize) -> Vec<u8> {
        padded("HTTP/1.1 200 OK", "Content-Length: 0\r\n", len)
    }

    fn connection(hop: &str) -> Box<dyn Connection> {
        let spec: ModelSpec = toml::from_str(hop).unwrap_or_else(|e| panic!("{hop}: {e}"));
        spec.hop(&HopEnv::default())
            .unwrap_or_else(|e| panic!("{hop}: {e}"))
            .connection()
    }

    /// Feeds `bytes` from `from` in pieces of `piece` bytes; returns the actions and how many
    /// bytes head reading examined meanwhile.
    fn feed(
        c: &mut dyn Connection,
        cx: &mut Cx,
        from: Side,
        bytes: &[u8],
        piece: usize,
    ) -> (Vec<Action>, u64) {
        let before = examined();
        let mut actions = Vec::new();
        for chunk in bytes.chunks(piece) {
            c.on_event(cx, Event::Data { from, bytes: chunk });
            actions.extend(cx.take_actions());
        }
        (actions, examined() - before)
    }

    fn dialed(actions: &[Action]) -> bool {
        actions
            .iter()
            .any(|a| matches!(a, Action::Dial { .. } | Action::DialNamed { .. }))
    }

    /// Every model, so that a failure names all the models that break the promise.
    fn each_model(mut check: impl FnMut(&str, u16, &str, &mut Vec<String>)) {
        let mut wrong = Vec::new();
        for &(hop, port, line) in HTTP_MODELS {
            check(hop, port, line, &mut wrong);
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn a_64_kib_head_one_byte_at_a_time_costs_linear_time_in_every_model() {
        let len = MAX_HEAD_BYTES;
        each_model(|hop, port, line, wrong| {
            let mut c = connection(hop);
            let hop = hop.replace('\n', " ");
            let mut cx = Cx::new(1);
            c.on_event(&mut cx, Event::Accepted { port });
            let mut actions = cx.take_actions();
            let (more, cost) = feed(&mut *c, &mut cx, Side::Client, &request(line, len), 1);
            actions.extend(more);
            if cost > 4 * len as u64 {
                wrong.push(format!(
                    "{hop}: a {len}-byte request head one byte at a time: {cost} bytes examined"
                ));
            }
            if !dialed(&actions) || !closes(&actions).is_empty() {
                wrong.push(format!(
                    "{hop}: the request was not forwarded: {:?}",
                    notes(&actions)
                ));
            }
            if line.starts_with("CONNECT") {
                return;
            }
            c.on_event(&mut cx, Event::Dialed);
            let (actions, cost) = feed(&mut *c, &mut cx, Side::Upstream, &response(len), 1);
            if cost > 4 * len as u64 {
                wrong.push(format!(
                    "{hop}: a {len}-byte response head one byte at a time: {cost} bytes examined"
                ));
            }
            let down = sent(&actions, Side::Client);
            let whole = down.starts_with(b"HTTP/1.1 200 OK\r\n") && down.ends_with(b"\r\n\r\n");
            if !whole || !closes(&actions).is_empty() {
                wrong.push(format!(
                    "{hop}: the response was not forwarded: {:?}",
                    notes(&actions)
                ));
            }
        });
    }
    #[test]
    fn a_head_one_byte_over_the_limit_is_refused_the_same_way_in_every_model() {
        let too_long = format!("longer than {MAX_HEAD_BYTES} bytes");
        each_model(|hop, port, line, wrong| {
            let name = hop.replace('\n', " ");
            for piece in [1, 1460, MAX_HEAD_BYTES + 1] {
                let mut c = connection(hop);
                let mut cx = Cx::new(1);
                c.on_event(&mut cx, Event::Accepted { port });
                cx.take_actions();
                let long = request(line, MAX_HEAD_BYTES + 1);
                let (actions, _) = feed(&mut *c, &mut cx, Side::Client, &long, piece);
                let down = sent(&actions, Side::Client);
                let noted = notes(&actions).iter().any(|n| n.contains(&too_long));
                if !down.starts_with(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
                    || !noted
                    || !closes(&actions).contains(&(Side::Client, CloseHow::Fin))
                {
                    wrong.push(format!(
                        "{name}, request in pieces of {piece}: {} then {:?}, notes {:?}",
                        String::from_utf8_lossy(&down[..down.len().min(40)]),
                        closes(&actions),
                        notes(&actions)
                    ));
                }
            }
            if line.starts_with("CONNECT") {
                return;
            }
            for piece in [1, 1460, MAX_HEAD_BYTES + 1] {
                let mut c = connection(hop);
                let mut cx = Cx::new(1);
                c.on_event(&mut cx, Event::Accepted { port });
                feed(&mut *c, &mut cx, Side::Client, &request(line, 100), 100);
                c.on_event(&mut cx, Event::Dialed);
                cx.take_actions();
                let long = response(MAX_HEAD_BYTES + 1);
                let (actions, _) = feed(&mut *c, &mut cx, Side::Upstream, &long, piece);
                let down = sent(&actions, Side::Client);
                let noted = notes(&actions).iter().any(|n| n.contains(&too_long));
                let both = [
                    (Side::Client, CloseHow::Fin),
                    (Side::Upstream, CloseHow::Fin),
                ];
                if !down.starts_with(b"HTTP/1.1 502 Bad Gateway\r\n")
                    || !noted
                    || closes(&actions) != both
                {
                    wrong.push(format!(
                        "{name}, response in pieces of {piece}: {} then {:?}, notes {:?}",
                        String::from_utf8_lossy(&down[..down.len().min(40)]),
                        closes(&actions),
                        notes(&actions)
                    ));
                }
            }
        });
    }
}
