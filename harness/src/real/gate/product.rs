//! `gauntlet gate --product NAME`: a real product as the proxy under test, started for each
//! behaviour (and scheme) from a configuration template, with its own error and access logs
//! kept and the relevant lines attached to each check.
//!
//! Unless `--template FILE` names another, each product starts from the built-in template
//! of its WebSocket-capable configuration ([`built_in`]): nginx with the seed's Upgrade lines,
//! HAProxy with `timeout tunnel`, Apache httpd with `mod_proxy_wstunnel` under `/ws/`, Squid
//! and tinyproxy with Debian's defaults. Reverse proxies (nginx, HAProxy, Apache) terminate
//! TLS with a certificate from the run's CA, so the gate checks ws and wss through them;
//! forward proxies (Squid, tinyproxy) are the client's explicit proxy for both.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::real::product::command::Role;
use crate::real::product::{Product, ProductError, builtin, template};
use crate::scenario::{Hop, ProductHop};

/// A product's built-in gate configuration: the template and the values of its own
/// placeholders, and the path prefix it proxies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltIn {
    /// The built-in template's name (`nginx-with-upgrade-lines.conf`).
    pub template: &'static str,
    /// Values for the template's own placeholders.
    pub values: &'static [(&'static str, &'static str)],
    /// Put before the request's path, where the template proxies a prefix only.
    pub path_prefix: &'static str,
}

/// A configuration of a product that the conformance matrix gates: a column of
/// `reports/CONFORMANCE.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Configuration {
    /// The column's name (`nginx`, `nginx-default`).
    pub column: &'static str,
    /// The product.
    pub product: Product,
    /// The template, its values and path prefix.
    pub built_in: BuiltIn,
    /// The product documentation's recommendation for WebSockets (else: as shipped).
    pub documented: bool,
}

const fn config(
    column: &'static str,
    product: Product,
    template: &'static str,
    values: &'static [(&'static str, &'static str)],
    path_prefix: &'static str,
    documented: bool,
) -> Configuration {
    Configuration {
        column,
        product,
        built_in: BuiltIn {
            template,
            values,
            path_prefix,
        },
        documented,
    }
}

/// Every configuration the conformance matrix gates, in column order: each product as its
/// documentation recommends for WebSockets (the first of a product's is its built-in gate
/// configuration, [`built_in`]), then, where it differs, as shipped. Each template cites its
/// sources.
pub const CONFIGURATIONS: &[Configuration] = &[
    // The seed's lines, with its `proxy_read_timeout 3600s`; then none of them.
    config(
        "nginx",
        Product::Nginx,
        "nginx-with-upgrade-lines.conf",
        &[("read_timeout", "3600s")],
        "",
        true,
    ),
    config(
        "nginx-default",
        Product::Nginx,
        "nginx-without-upgrade-lines.conf",
        &[],
        "",
        false,
    ),
    // The seed's `timeout tunnel 3600s`; then without it.
    config(
        "haproxy",
        Product::Haproxy,
        "haproxy-timeout-tunnel.cfg",
        &[("tunnel_timeout", "3600s")],
        "",
        true,
    ),
    config(
        "haproxy-default",
        Product::Haproxy,
        "haproxy-without-timeout-tunnel.cfg",
        &[],
        "",
        false,
    ),
    // The seed's `ProxyPass /ws/ ws://…/`; httpd 2.4.47's `upgrade=websocket`; `http://`.
    config(
        "apache-wstunnel",
        Product::Apache,
        "apache-wstunnel.conf",
        &[],
        "/ws",
        true,
    ),
    config(
        "apache-upgrade",
        Product::Apache,
        "apache-proxypass-upgrade.conf",
        &[],
        "/ws",
        true,
    ),
    config(
        "apache-default",
        Product::Apache,
        "apache-proxypass-http.conf",
        &[],
        "/ws",
        false,
    ),
    // Debian's defaults, with the server's wss port standing for 443 (CONNECT elsewhere is
    // refused, as Squid refuses it); then Debian's defaults as they are.
    config(
        "squid",
        Product::Squid,
        "squid-connect-port.conf",
        &[],
        "",
        true,
    ),
    config(
        "squid-default",
        Product::Squid,
        "squid-default.conf",
        &[],
        "",
        false,
    ),
    config(
        "tinyproxy",
        Product::Tinyproxy,
        "tinyproxy-connect.conf",
        &[],
        "",
        true,
    ),
    config(
        "caddy",
        Product::Caddy,
        "caddy-reverse-proxy.caddyfile",
        &[],
        "",
        true,
    ),
    config(
        "lighttpd",
        Product::Lighttpd,
        "lighttpd-upgrade-enable.conf",
        &[],
        "",
        true,
    ),
    config(
        "lighttpd-default",
        Product::Lighttpd,
        "lighttpd-default.conf",
        &[],
        "",
        false,
    ),
    config("h2o", Product::H2o, "h2o-websocket-on.conf", &[], "", true),
    config(
        "h2o-default",
        Product::H2o,
        "h2o-default.conf",
        &[],
        "",
        false,
    ),
    config(
        "varnish",
        Product::Varnish,
        "varnish-pipe-websocket.vcl",
        &[],
        "",
        true,
    ),
    config(
        "varnish-default",
        Product::Varnish,
        "varnish-default.vcl",
        &[],
        "",
        false,
    ),
    config(
        "trafficserver",
        Product::Trafficserver,
        "trafficserver-ws-remap.conf",
        &[],
        "",
        true,
    ),
    config(
        "trafficserver-default",
        Product::Trafficserver,
        "trafficserver-http-remap-only.conf",
        &[],
        "",
        false,
    ),
    config(
        "node-http-proxy",
        Product::NodeHttpProxy,
        "node-http-proxy-ws.js",
        &[],
        "",
        true,
    ),
    config(
        "node-http-proxy-default",
        Product::NodeHttpProxy,
        "node-http-proxy-default.js",
        &[],
        "",
        false,
    ),
    config(
        "mitmproxy",
        Product::Mitmproxy,
        "mitmproxy-reverse.yaml",
        &[],
        "",
        true,
    ),
];

/// The built-in gate configuration of `product`: the first of its [`CONFIGURATIONS`].
pub fn built_in(product: Product) -> BuiltIn {
    CONFIGURATIONS
        .iter()
        .find(|c| c.product == product)
        .map(|c| c.built_in)
        .expect("every product has a configuration")
}

/// A product to gate and the template it starts from.
#[derive(Debug)]
pub struct ProductGate {
    /// The product.
    pub product: Product,
    /// The template file it starts from.
    pub template: PathBuf,
    /// What the output calls the template: the built-in one's name, or the file as given.
    pub template_name: String,
    /// Values for the template's own placeholders.
    pub values: BTreeMap<String, String>,
    /// Put before every request's path (`/ws`), or empty.
    pub path_prefix: String,
    /// Whether the template listens for TLS (`{{tls_listen}}`): a reverse proxy's wss is
    /// gated only then.
    pub tls: bool,
    /// The folder a built-in template was written to, removed when this is dropped.
    scratch: Option<PathBuf>,
}

impl ProductGate {
    /// `product` from its built-in template, written into a folder of its own under `base`
    /// (removed when the gate is dropped), with `values` over the built-in ones.
    pub fn built_in(
        product: Product,
        values: BTreeMap<String, String>,
        base: &Path,
    ) -> Result<Self, ProductError> {
        Self::configured(product, built_in(product), values, base)
    }

    /// `product` from the built-in configuration `b`, as [`ProductGate::built_in`] does.
    pub fn configured(
        product: Product,
        b: BuiltIn,
        values: BTreeMap<String, String>,
        base: &Path,
    ) -> Result<Self, ProductError> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let scratch = base.join(format!(
            "gauntlet-gate-{}-{}-{n}",
            product,
            std::process::id()
        ));
        let template = builtin::write(b.template, &scratch)?;
        let mut all: BTreeMap<String, String> = b
            .values
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        all.extend(values);
        Ok(Self {
            product,
            tls: listens_for_tls(&template),
            template,
            template_name: format!("the built-in {}", b.template),
            values: all,
            path_prefix: b.path_prefix.to_string(),
            scratch: Some(scratch),
        })
    }

    /// `product` from the template `file`, with `values` for its own placeholders.
    pub fn from_file(product: Product, file: &Path, values: BTreeMap<String, String>) -> Self {
        Self {
            product,
            tls: listens_for_tls(file),
            template: file.to_path_buf(),
            template_name: file.display().to_string(),
            values,
            path_prefix: String::new(),
            scratch: None,
        }
    }

    /// A reverse proxy (nginx, HAProxy, Apache) or a forward one (Squid, tinyproxy).
    pub fn role(&self) -> Role {
        if self.product.is_reverse() {
            Role::Reverse
        } else {
            Role::Forward
        }
    }

    /// The hop that stands for the product in every behaviour.
    pub fn hop(&self) -> Hop {
        Hop::Product(ProductHop {
            product: self.product,
            template: self.template.clone(),
            values: self.values.clone(),
            backends: 1,
        })
    }
}

/// Whether the template `file` has a `{{tls_listen}}` (one that cannot be read has none: its
/// start says why).
fn listens_for_tls(file: &Path) -> bool {
    std::fs::read_to_string(file)
        .is_ok_and(|text| template::placeholders(&text).contains("tls_listen"))
}

impl Drop for ProductGate {
    fn drop(&mut self) {
        if let Some(dir) = &self.scratch {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_configuration_has_a_built_in_template_whose_placeholders_it_fills() {
        for product in Product::ALL {
            // Every product has one.
            built_in(product);
        }
        let mut columns: Vec<&str> = CONFIGURATIONS.iter().map(|c| c.column).collect();
        columns.dedup();
        assert_eq!(columns.len(), CONFIGURATIONS.len());
        for b in CONFIGURATIONS.iter().map(|c| c.built_in) {
            let text = builtin::template(b.template)
                .unwrap_or_else(|| panic!("no built-in {}", b.template));
            for (name, _) in b.values {
                assert!(
                    text.contains(&format!("{{{{{name}}}}}")),
                    "{}: {name}",
                    b.template
                );
            }
        }
    }

    #[test]
    fn a_built_in_template_is_written_out_and_removed_with_the_gate() {
        let base = std::env::temp_dir();
        let gate = ProductGate::built_in(Product::Nginx, BTreeMap::new(), &base).unwrap();
        assert!(gate.template.is_file());
        assert_eq!(gate.values["read_timeout"], "3600s");
        assert_eq!(gate.role(), Role::Reverse);
        let dir = gate.template.parent().unwrap().to_path_buf();
        drop(gate);
        assert!(!dir.exists());
    }
}
