//! The path's hops (`[[path]]`): a model, a real product or a command line, read from a hop
//! table whose first key says which, and the host names a path gives its hops and servers.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use gauntlet_proxies::ModelSpec;
use serde::Deserialize;

use crate::real::product::Product;
use crate::real::product::command::CommandLine;

/// One hop of a path: a model, or a real program (live engine only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hop {
    /// An intermediary model (`model = "..."`), on any engine.
    Model(ModelSpec),
    /// A real product started from a configuration template (`product = "..."`).
    Product(ProductHop),
    /// Any proxy program, started from a command line (`command = "..."`).
    Command(CommandHop),
}

/// A real product as a hop: `product = "nginx"`, `template = "templates/x.conf"` (relative to
/// the scenario file), `values = { name = "..." }` for the template's own placeholders.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ProductHop {
    /// The product, as `product = "..."` names it.
    #[serde(skip, default = "placeholder_product")]
    pub product: Product,
    /// The configuration template, resolved against the scenario file's folder.
    pub template: PathBuf,
    /// Values for the template's placeholders beyond the ones the harness fills.
    #[serde(default)]
    pub values: BTreeMap<String, String>,
    /// How many servers stand behind it (`{{upstream0}}` … in the template); default 1.
    #[serde(default = "one")]
    pub backends: usize,
}

fn one() -> usize {
    1
}

/// A proxy program as a hop: `command = "my-proxy --listen {listen} --upstream {upstream}"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CommandHop {
    /// The command line, split into words, its placeholders checked; the hop fills them with
    /// the run's addresses ([`CommandLine`] says which and how).
    #[serde(skip)]
    pub command: CommandLine,
}

/// What `product` holds until the hop's name is read (it is read first, so never seen).
fn placeholder_product() -> Product {
    Product::Nginx
}

/// The names a `product` hop accepts, for error messages.
fn product_names() -> String {
    Product::ALL.map(Product::name).join(", ")
}

impl Hop {
    /// The model's name, the product's, or `command`.
    pub fn name(&self) -> &str {
        match self {
            Hop::Model(m) => m.name(),
            Hop::Product(p) => p.product.name(),
            Hop::Command(_) => "command",
        }
    }

    /// How many backends the hop balances among.
    pub fn backends(&self) -> usize {
        match self {
            Hop::Model(m) => m.backends(),
            Hop::Product(p) => p.backends,
            Hop::Command(_) => 1,
        }
    }

    /// The model, if the hop is one.
    pub fn model(&self) -> Option<&ModelSpec> {
        match self {
            Hop::Model(m) => Some(m),
            _ => None,
        }
    }

    /// Whether the hop is a real program, which only the live engine runs.
    pub fn is_real(&self) -> bool {
        !matches!(self, Hop::Model(_))
    }
}

impl<'de> Deserialize<'de> for Hop {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(HopVisitor)
    }
}

struct HopVisitor;

impl<'de> serde::de::Visitor<'de> for HopVisitor {
    type Value = Hop;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a hop table whose first key is `model`, `product` or `command`")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Hop, A::Error> {
        use serde::de::{Error, value::MapAccessDeserializer};
        let first = map.next_key::<String>()?;
        match first.as_deref() {
            Some("model") => ModelSpec::after_model_key(map).map(Hop::Model),
            Some("product") => {
                let product = map.next_value_seed(ProductName)?;
                let mut hop = ProductHop::deserialize(MapAccessDeserializer::new(map))?;
                if !(1..=16).contains(&hop.backends) {
                    return Err(A::Error::custom(format!(
                        "`backends` must be between 1 and 16, got {}",
                        hop.backends
                    )));
                }
                hop.product = product;
                Ok(Hop::Product(hop))
            }
            Some("command") => {
                let text: String = map.next_value()?;
                let command = CommandLine::parse(&text).map_err(A::Error::custom)?;
                let mut hop = CommandHop::deserialize(MapAccessDeserializer::new(map))?;
                hop.command = command;
                Ok(Hop::Command(hop))
            }
            Some(key) => Err(A::Error::custom(format!(
                "a hop must start with `model = \"...\"` (one of {}), `product = \"...\"` ({}) \
                 or `command = \"...\"`, found `{key}` first",
                gauntlet_proxies::MODEL_NAMES.join(", "),
                product_names()
            ))),
            None => Err(A::Error::missing_field("model")),
        }
    }
}

/// Reads a `product` value and checks it against [`Product::ALL`], so an unknown name is reported
/// at the value itself.
struct ProductName;

impl<'de> serde::de::DeserializeSeed<'de> for ProductName {
    type Value = Product;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(|_| {
            serde::de::Error::custom(format!(
                "unknown product `{name}`, expected one of: {}",
                product_names()
            ))
        })
    }
}

/// The host names of a path: `hop1`, `hop2`, … for the hops, and the servers: `server`, or
/// `server1` … `serverN` when the last hop balances among N backends.
pub fn host_names(path: &[Hop]) -> (Vec<String>, Vec<String>) {
    let hops = (1..=path.len()).map(|i| format!("hop{i}")).collect();
    let backends = path.last().map_or(1, Hop::backends);
    let servers = if backends > 1 {
        (1..=backends).map(|i| format!("server{i}")).collect()
    } else {
        vec!["server".to_string()]
    };
    (hops, servers)
}
