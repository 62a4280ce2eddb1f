//! [`Model`]: an intermediary model for a live proxy, made by a constructor with documented
//! defaults or from a hop table in TOML, as a scenario file's `[[path]]` entry writes it.
//!
//! A `Model` is a hop table (`model = "..."` first, then the model's parameters), turned into
//! a [`ModelSpec`] by `ModelSpec`'s own deserialisation, so any model and parameter the
//! scenario format takes is taken here too, and errors name the parameter.

use std::str::FromStr;
use std::time::Duration;

use gauntlet_proxies::ModelSpec;

use crate::error::Error;
use crate::scenario::{MAX_MS, locate, millisecond_beyond_limit};

/// What errors in [`Model::from_toml`]'s text are located in.
const TEXT: &str = "model TOML";

/// An intermediary model and its parameters, for [`spawn`](super::spawn) and
/// [`spawn_chain`](super::spawn_chain).
///
/// ```
/// use std::time::Duration;
/// use gauntlet::live::Model;
///
/// let killer = Model::idle_killer(Duration::from_secs(5));
/// assert_eq!(killer.name(), "idle-killer");
/// let nginx = Model::from_toml("model = \"buffering-proxy\"\npreset = \"nginx\"")?;
/// assert_eq!(nginx.name(), "buffering-proxy");
/// let typo = Model::from_toml("model = \"idle-killer\"\ntimeout = 5000").unwrap_err();
/// assert!(typo.to_string().contains("unknown field `timeout`"), "{typo}");
/// # Ok::<(), gauntlet::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// The hop table, `model` first.
    table: toml::Table,
}

impl Model {
    /// `pass`: relays bytes, FIN and RST unchanged in both directions. The identity, for a
    /// baseline.
    pub fn pass() -> Model {
        Model::named("pass")
    }

    /// `idle-killer`: relays bytes unchanged and closes a connection quiet for `idle`, the
    /// way reverse proxies and load balancers enforce an idle timeout. Defaults (nginx's
    /// behaviour): traffic in either direction re-arms the timer (`rearm = "either"`); on
    /// expiry both sides get a FIN and no WebSocket Close frame, so a client sees the
    /// connection end without a close handshake (1006) (`close = "fin"`); a connection whose
    /// upstream never answered its HTTP request gets `504 Gateway Timeout` first
    /// (`http-ports = [80]`: a live proxy's connections all arrive on its model port, 80).
    ///
    /// `idle` is rounded up to a whole millisecond, at least 1 ms and at most
    /// [`MAX_MS`] (365 days), the limit of every millisecond value in a scenario file. Other
    /// settings (`close = "reset"`, a product's `preset`) go through [`Model::from_toml`].
    pub fn idle_killer(idle: Duration) -> Model {
        let ms = idle
            .as_nanos()
            .div_ceil(1_000_000)
            .clamp(1, u128::from(MAX_MS));
        Model::named("idle-killer").with("timeout-ms", i64::try_from(ms).unwrap_or(i64::MAX))
    }

    /// A model from a hop table in TOML: `model = "NAME"` first, then the model's parameters,
    /// as in a scenario file's `[[path]]` entry (see `scenarios/README.md` and each model's
    /// documentation in `gauntlet-proxies` for names, parameters and defaults):
    ///
    /// ```toml
    /// model = "buffering-proxy"
    /// preset = "nginx"
    /// ```
    ///
    /// An unknown model, an unknown or mistyped parameter, a missing required one, or a
    /// millisecond value (`*-ms`) beyond [`MAX_MS`] is an [`Error::Model`] naming the line
    /// and column in `text`, with the offending line.
    pub fn from_toml(text: &str) -> Result<Model, Error> {
        let located = |at: usize, message: String| {
            let e = locate(TEXT, text, at, message);
            let prefix = format!("{}:{}:{}: ", e.file, e.line, e.col);
            let shown = e.to_string();
            Error::Model {
                at: prefix.trim_end_matches([':', ' ']).to_string(),
                message: shown.strip_prefix(&prefix).unwrap_or(&shown).to_string(),
            }
        };
        let read = |e: toml::de::Error| {
            let at = e.span().map_or(0, |s| s.start);
            located(at, e.message().trim_end().to_string())
        };
        if let Some((key, value, span)) = millisecond_beyond_limit(text) {
            return Err(located(
                span.start,
                format!("`{key}` must be at most {MAX_MS} (365 days), got {value}"),
            ));
        }
        toml::from_str::<ModelSpec>(text).map_err(read)?;
        let table = toml::from_str::<toml::Table>(text).map_err(read)?;
        Ok(Model { table })
    }

    /// The model's name (`pass`, `idle-killer`, …), as scenario files spell it.
    pub fn name(&self) -> &str {
        self.table
            .get("model")
            .and_then(toml::Value::as_str)
            .unwrap_or_default()
    }

    /// The model and its parameters, read by [`ModelSpec`]'s deserialisation. An
    /// [`Error::Model`] when they do not read (which the constructors and
    /// [`Model::from_toml`] rule out), naming the model.
    pub fn spec(&self) -> Result<ModelSpec, Error> {
        toml::Value::Table(self.table.clone())
            .try_into::<ModelSpec>()
            .map_err(|e| Error::Model {
                at: format!("model `{}`", self.name()),
                message: e.message().trim_end().to_string(),
            })
    }

    /// A hop table with only its `model` key.
    fn named(name: &str) -> Model {
        let mut table = toml::Table::new();
        table.insert("model".into(), toml::Value::String(name.into()));
        Model { table }
    }

    /// The same model with `key` set to `value`.
    fn with(mut self, key: &str, value: impl Into<toml::Value>) -> Model {
        self.table.insert(key.into(), value.into());
        self
    }
}

impl FromStr for Model {
    type Err = Error;

    /// [`Model::from_toml`].
    fn from_str(text: &str) -> Result<Model, Error> {
        Model::from_toml(text)
    }
}

#[cfg(test)]
mod tests {
    use gauntlet_proxies::idle_killer::{Expiry, Rearm};

    use super::*;

    #[test]
    fn the_constructors_make_the_models_they_document() {
        assert!(matches!(Model::pass().spec(), Ok(ModelSpec::Pass(_))));
        let Ok(ModelSpec::IdleKiller(p)) = Model::idle_killer(Duration::from_secs(5)).spec() else {
            panic!("an idle killer");
        };
        assert_eq!(p.timeout, Duration::from_secs(5));
        assert_eq!(
            (p.rearm, p.close, p.close_upstream),
            (Rearm::Either, Expiry::Fin, Expiry::Fin)
        );
        assert_eq!(p.http_ports, vec![80]);
    }

    #[test]
    fn an_idle_period_is_rounded_up_to_a_millisecond_within_the_limit() {
        let timeout = |d: Duration| match Model::idle_killer(d).spec() {
            Ok(ModelSpec::IdleKiller(p)) => p.timeout,
            other => panic!("{other:?}"),
        };
        assert_eq!(timeout(Duration::ZERO), Duration::from_millis(1));
        assert_eq!(
            timeout(Duration::from_micros(1500)),
            Duration::from_millis(2)
        );
        assert_eq!(timeout(Duration::MAX), Duration::from_millis(MAX_MS));
    }

    #[test]
    fn a_hop_table_reads_as_a_scenarios_does() {
        let m = Model::from_toml("model = \"idle-killer\"\npreset = \"envoy\"\ntimeout-ms = 250\n")
            .unwrap();
        let Ok(ModelSpec::IdleKiller(p)) = m.spec() else {
            panic!("{m:?}");
        };
        assert_eq!(
            (p.timeout, p.close),
            (Duration::from_millis(250), Expiry::Reset)
        );
        assert_eq!("model = \"pass\"".parse::<Model>().unwrap(), Model::pass());
    }

    #[test]
    fn a_bad_hop_table_is_located_and_named() {
        let e = Model::from_toml("model = \"idle-killer\"\ntimeout = 5000\n").unwrap_err();
        let Error::Model { at, message } = &e else {
            panic!("{e:?}");
        };
        assert_eq!(at, "model TOML:2:1");
        assert!(message.contains("unknown field `timeout`"), "{message}");
        assert!(message.contains("2 | timeout = 5000"), "{message}");
        for (text, says) in [
            ("model = \"idle-killr\"", "unknown model `idle-killr`"),
            ("model = \"idle-killer\"", "needs `timeout-ms`"),
            (
                "timeout-ms = 5\nmodel = \"idle-killer\"",
                "must start with `model",
            ),
            ("model = \"idle-killer\"\ntimeout-ms = \"soon\"", "soon"),
            (
                "model = \"idle-killer\"\ntimeout-ms = 99999999999999",
                "at most 31536000000",
            ),
            ("model = ", "model TOML:1:"),
            ("", "model"),
        ] {
            let e = Model::from_toml(text).unwrap_err().to_string();
            assert!(e.contains(says), "{text:?}: {e}");
        }
    }
}
