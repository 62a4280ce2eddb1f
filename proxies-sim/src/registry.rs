//! What a model declares about itself ([`Model`]), and what the list of models tells the
//! programs that use it ([`ModelInfo`]).
//!
//! Each model file declares its model once, as `impl Model for Params` on its parameters: the
//! name scenario files spell, a one-line description, the documentation of its parameters,
//! how its [`Hop`] is made, its line in transcripts, how many backends it dials and what it
//! keeps from one connection to the next. [`spec`](crate::spec) lists the models, one line
//! each, and makes everything else from those declarations: [`ModelSpec`](crate::ModelSpec)
//! and its dispatch, [`MODEL_NAMES`](crate::MODEL_NAMES), [`MODELS`].
//!
//! # Adding a model
//!
//! A model is one new file and its line in the list. Take `drop-after`, which relays bytes
//! opaquely and resets both sides once a given number of bytes has passed. Its file,
//! `proxies-sim/src/drop_after.rs`, holds its parameters, their declaration and its
//! connection (and, as in every model file, unit tests at the end):
//!
//! ```
//! use gauntlet_proxies::pass::relay;
//! use gauntlet_proxies::registry::{HopError, Model, each};
//! use gauntlet_proxies::{Connection, Cx, Event, Hop, HopEnv, Side};
//! use serde::Deserialize;
//!
//! /// Parameters of `drop-after`.
//! #[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
//! #[serde(deny_unknown_fields, rename_all = "kebab-case")]
//! pub struct Params {
//!     /// Bytes relayed, both ways together, before the connection is reset. Required.
//!     pub bytes: u64,
//! }
//!
//! impl Model for Params {
//!     const NAME: &'static str = "drop-after";
//!     const DESCRIPTION: &'static str =
//!         "relays opaquely; resets both sides once `bytes` bytes have passed";
//!     const PARAMETERS: &'static str = "`bytes` (required)";
//!
//!     fn hop(&self, _env: &HopEnv) -> Result<Box<dyn Hop>, HopError> {
//!         // Its connections share nothing: each starts with the whole allowance.
//!         each(self, |p| DropAfter { left: p.bytes })
//!     }
//!
//!     fn summary(&self) -> String {
//!         format!("drop-after bytes={}", self.bytes)
//!     }
//! }
//!
//! /// A connection through `drop-after`.
//! #[derive(Debug)]
//! pub struct DropAfter {
//!     left: u64,
//! }
//!
//! impl Connection for DropAfter {
//!     fn on_event(&mut self, cx: &mut Cx, event: Event<'_>) {
//!         if let Event::Data { bytes, .. } = event {
//!             if bytes.len() as u64 >= self.left {
//!                 // Never lose bytes silently: say what is dropped.
//!                 cx.note(format!("{} bytes dropped: resetting both sides", bytes.len()));
//!                 cx.reset(Side::Client);
//!                 cx.reset(Side::Upstream);
//!                 self.left = 0;
//!                 return;
//!             }
//!             self.left -= bytes.len() as u64;
//!         }
//!         relay(cx, event);
//!     }
//! }
//!
//! // What the list makes of the declaration: a hop from a hop table, and its entry.
//! let params: Params = toml::from_str("bytes = 4").unwrap();
//! let mut hop = params.hop(&HopEnv::default()).unwrap();
//! let mut conn = hop.connection();
//! let mut cx = Cx::new(1);
//! conn.on_event(&mut cx, Event::Accepted { port: 80 });
//! conn.on_event(&mut cx, Event::Data { from: Side::Client, bytes: b"hello" });
//! assert_eq!(cx.take_actions().len(), 4); // dial, note, two resets
//! let info = gauntlet_proxies::registry::ModelInfo::of::<Params>();
//! assert_eq!((info.name, info.keys()), ("drop-after", &["bytes"][..]));
//! ```
//!
//! Then the model gets one line in the list of models in the crate root
//! (`proxies-sim/src/lib.rs`), where it should stand in the catalogue; the line declares its
//! module too:
//!
//! ```text
//! spec::models! {
//!     Pass => pass,
//!     ...
//!     DropAfter => drop_after,
//! }
//! ```
//!
//! That makes `ModelSpec::DropAfter(drop_after::Params)`, reads `model = "drop-after"` hop
//! tables in scenario files and `gauntlet proxy --model drop-after --param bytes=100`, names
//! the model in the errors that list every model and in `gauntlet proxy --help`, and adds the
//! fuzz target `model-drop-after`. The rest is documentation and coverage: the model's row in
//! the table of `scenarios/README.md`, made from `DESCRIPTION` and `PARAMETERS` and checked
//! by `proxies-sim/tests/docs.rs` (`GAUNTLET_BLESS=1 cargo test -p gauntlet-proxies --test
//! docs` writes it); its file in the crate's code map and in ARCHITECTURE.md; and a scenario
//! under `scenarios/` that shows what it does to a WebSocket.

use std::cell::Cell;
use std::fmt;

use serde::de::value::{BorrowedStrDeserializer, Error};
use serde::de::{self, DeserializeOwned, DeserializeSeed, Deserializer, MapAccess, Visitor};

use crate::model::{Connection, Hop, Independent};
use crate::spec::{HopEnv, MODELS};

/// A model, declared by its parameters: what the list of models needs to know about it.
///
/// The parameters are read from a hop table's keys after `model` (serde, with
/// `deny_unknown_fields` and kebab-case keys, so a misspelt key is an error at its line);
/// defaults and presets are applied as they are read, so a value of this type is complete.
pub trait Model: DeserializeOwned + Clone + fmt::Debug + PartialEq + Eq + 'static {
    /// The model's name as scenario files spell it, in kebab case (`idle-killer`).
    const NAME: &'static str;

    /// What the model does, in one line of Markdown (a row of the model table).
    const DESCRIPTION: &'static str;

    /// Its parameters, in one line of Markdown: every key, in backquotes, with its values and
    /// default where they are short (a row of the model table). Default: `none`.
    const PARAMETERS: &'static str = "none";

    /// What the model keeps from one connection to the next, if anything (`its cache`): one
    /// copy of its hop must see every connection for it to behave as specified, so
    /// `gauntlet proxy` runs a chain with it on one worker. Default: nothing.
    const SHARED_STATE: Option<&'static str> = None;

    /// The model's instance on one host, which makes its connections. `env` is what the
    /// harness gives a hop beyond its parameters; this fails when the model needs something
    /// `env` lacks. A model whose connections share nothing makes it with [`each`].
    fn hop(&self, env: &HopEnv) -> Result<Box<dyn Hop>, HopError>;

    /// A one-line summary for transcripts: the name and the parameters that matter. Default:
    /// the name alone.
    fn summary(&self) -> String {
        Self::NAME.to_string()
    }

    /// How many upstream hosts (backends) the hop dials among. Default 1: all but balancers.
    fn backends(&self) -> usize {
        1
    }
}

/// The hop of a model whose connections share nothing: each connection is `make` applied to
/// the parameters.
pub fn each<P, C>(params: &P, make: fn(&P) -> C) -> Result<Box<dyn Hop>, HopError>
where
    P: Clone + 'static,
    C: Connection + 'static,
{
    let params = params.clone();
    Ok(Box::new(Independent(move || {
        Box::new(make(&params)) as Box<dyn Connection>
    })))
}

/// Why a model's hop cannot be made ([`Model::hop`]): the model needs something from the
/// [`HopEnv`] that the harness did not give.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HopError {
    /// The model, as configured, needs TLS material ([`HopEnv::tls`]). `what` names it, with
    /// the setting that needs it (`l7-balancer with terminate-tls`).
    #[error("{what} needs TLS material from the harness")]
    NeedsTls {
        /// The model, and the setting that makes it need the material.
        what: &'static str,
    },
}

/// Parameters that read but do not make sense together or alone: what a model's
/// `TryFrom<RawParams>` refuses. The hop table's reader (serde) reports it as a custom error
/// at the table, so its text is what a user reads; [`ParamError::key`] says which parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParamError {
    /// A count or duration that must be at least 1 was 0.
    #[error("`{key}` must be at least 1")]
    Zero {
        /// The parameter.
        key: &'static str,
    },
    /// A count outside `1..=max`.
    #[error("`{key}` must be between 1 and {max}, not {got}")]
    OutOfRange {
        /// The parameter.
        key: &'static str,
        /// The largest allowed.
        max: usize,
        /// The value given.
        got: usize,
    },
    /// A byte count larger than this machine's memory can address.
    #[error("`{key}` {got} is too large for this machine")]
    TooLarge {
        /// The parameter.
        key: &'static str,
        /// The value given.
        got: u64,
    },
    /// Any other refusal: a parameter missing without a preset, parameters that contradict
    /// each other, a value of the wrong form. `reason` is the whole message.
    #[error("{reason}")]
    Invalid {
        /// The parameter the refusal is about (the first, where it names several).
        key: &'static str,
        /// What is wrong, and what was expected.
        reason: String,
    },
}

impl ParamError {
    /// [`ParamError::Invalid`] about `key`.
    pub fn invalid(key: &'static str, reason: impl Into<String>) -> Self {
        ParamError::Invalid {
            key,
            reason: reason.into(),
        }
    }

    /// The parameter the error is about.
    pub fn key(&self) -> &'static str {
        match self {
            ParamError::Zero { key }
            | ParamError::OutOfRange { key, .. }
            | ParamError::TooLarge { key, .. }
            | ParamError::Invalid { key, .. } => key,
        }
    }
}

/// One model as the list gives it to the programs that use it: for help texts, documentation
/// and tests that must cover every model.
#[derive(Debug, Clone, Copy)]
pub struct ModelInfo {
    /// [`Model::NAME`].
    pub name: &'static str,
    /// [`Model::DESCRIPTION`].
    pub description: &'static str,
    /// [`Model::PARAMETERS`].
    pub parameters: &'static str,
    /// [`Model::SHARED_STATE`].
    pub shared_state: Option<&'static str>,
    /// Its keys and preset names, read off its derives ([`names`]).
    names: fn() -> Names,
}

/// A model's keys and the names its `preset` key takes.
type Names = (&'static [&'static str], &'static [&'static str]);

impl ModelInfo {
    /// The entry of the model `M` declares.
    pub const fn of<M: Model>() -> Self {
        ModelInfo {
            name: M::NAME,
            description: M::DESCRIPTION,
            parameters: M::PARAMETERS,
            shared_state: M::SHARED_STATE,
            names: names::<M>,
        }
    }

    /// The entry of the model named `name` in [`MODELS`], if there is one.
    pub fn get(name: &str) -> Option<&'static ModelInfo> {
        MODELS.iter().find(|m| m.name == name)
    }

    /// The keys its hop table takes besides `model`, as its parameters' serde derive lists
    /// them (a hand-written `Deserialize` that names no fields lists none).
    pub fn keys(&self) -> &'static [&'static str] {
        (self.names)().0
    }

    /// The names its `preset` key takes, as the preset enum's serde derive lists them; none
    /// for a model without presets.
    pub fn presets(&self) -> &'static [&'static str] {
        (self.names)().1
    }
}

/// `M`'s keys, the field names its derive hands [`Deserializer::deserialize_struct`], and its
/// presets, the variant names it hands [`Deserializer::deserialize_enum`] for a `preset` key.
fn names<M: Model>() -> Names {
    let probe = Probe::default();
    let _ = M::deserialize(&probe);
    (probe.fields.get(), probe.variants.get())
}

/// A deserializer that reads no input: it keeps the field names a struct asks it for and,
/// when they include `preset`, offers that one key and keeps the names its value's enum asks
/// for; anything else is an error, which ends the probe.
#[derive(Default)]
struct Probe {
    fields: Cell<&'static [&'static str]>,
    variants: Cell<&'static [&'static str]>,
}

/// The error that ends a probe.
fn probed() -> Error {
    de::Error::custom("probed")
}

impl<'de> Deserializer<'de> for &Probe {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Error> {
        Err(probed())
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.fields.set(fields);
        if fields.contains(&"preset") {
            visitor.visit_map(PresetKey {
                probe: self,
                given: false,
            })
        } else {
            Err(probed())
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        variants: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Error> {
        self.variants.set(variants);
        Err(probed())
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct newtype_struct seq tuple tuple_struct map identifier ignored_any
    }
}

/// A table with one key, `preset`, whose value is the probe.
struct PresetKey<'a> {
    probe: &'a Probe,
    given: bool,
}

impl<'de> MapAccess<'de> for PresetKey<'_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        if std::mem::replace(&mut self.given, true) {
            return Err(probed());
        }
        seed.deserialize(BorrowedStrDeserializer::new("preset"))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        seed.deserialize(self.probe)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_presets_come_from_the_parameters_derive() {
        let info = |name: &str| ModelInfo::get(name).unwrap();
        assert!(info("pass").keys().is_empty());
        assert!(info("pass").presets().is_empty());
        assert_eq!(info("l4-balancer").keys(), ["backends", "policy"]);
        assert!(info("l4-balancer").presets().is_empty());
        let idle = info("idle-killer");
        assert_eq!(idle.keys()[..2], ["preset", "timeout-ms"]);
        assert_eq!(idle.presets().len(), 9);
        assert!(
            idle.presets().contains(&"haproxy-30s"),
            "{:?}",
            idle.presets()
        );
        assert_eq!(info("connect-proxy").presets(), ["squid", "tinyproxy"]);
    }

    #[test]
    fn parameter_errors_name_their_key_and_say_what_is_wrong() {
        let cases = [
            (
                ParamError::Zero { key: "timeout-ms" },
                "`timeout-ms` must be at least 1",
            ),
            (
                ParamError::OutOfRange {
                    key: "backends",
                    max: 64,
                    got: 65,
                },
                "`backends` must be between 1 and 64, not 65",
            ),
            (
                ParamError::TooLarge {
                    key: "hold-bytes",
                    got: u64::MAX,
                },
                "`hold-bytes` 18446744073709551615 is too large for this machine",
            ),
            (
                ParamError::invalid("auth", "`auth` is wrong"),
                "`auth` is wrong",
            ),
        ];
        for (error, text) in cases {
            assert_eq!(error.to_string(), text);
            assert!(text.contains(error.key()), "{text}");
        }
        let err = toml::from_str::<crate::l4_balancer::Params>("backends = 0").unwrap_err();
        assert!(
            err.to_string()
                .contains("`backends` must be between 1 and 64, not 0"),
            "{err}"
        );
    }

    #[test]
    fn every_model_documents_each_of_its_keys() {
        let mut missing = Vec::new();
        for m in MODELS {
            for key in m.keys() {
                if !m.parameters.contains(&format!("`{key}`")) {
                    missing.push(format!("{}: `{key}`", m.name));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "keys missing from their model's PARAMETERS: {missing:?}"
        );
    }
}
