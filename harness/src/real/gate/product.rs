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

/// The built-in gate configuration of `product`.
pub fn built_in(product: Product) -> BuiltIn {
    let (template, values, path_prefix): (_, &'static [_], _) = match product {
        // The seed's lines, with its `proxy_read_timeout 3600s`.
        Product::Nginx => (
            "nginx-with-upgrade-lines.conf",
            &[("read_timeout", "3600s")],
            "",
        ),
        // The seed's `timeout tunnel 3600s`.
        Product::Haproxy => (
            "haproxy-timeout-tunnel.cfg",
            &[("tunnel_timeout", "3600s")],
            "",
        ),
        // The seed's `ProxyPass /ws/ ws://…/`.
        Product::Apache => ("apache-wstunnel.conf", &[], "/ws"),
        // Debian's defaults, with the server's wss port standing for 443 (CONNECT elsewhere
        // is refused, as Squid refuses it).
        Product::Squid => ("squid-connect-port.conf", &[], ""),
        Product::Tinyproxy => ("tinyproxy-connect.conf", &[], ""),
        // Each product's documented WebSocket configuration (each template cites it).
        Product::Caddy => ("caddy-reverse-proxy.caddyfile", &[], ""),
        Product::Lighttpd => ("lighttpd-upgrade-enable.conf", &[], ""),
        Product::H2o => ("h2o-websocket-on.conf", &[], ""),
        Product::Varnish => ("varnish-pipe-websocket.vcl", &[], ""),
        Product::Trafficserver => ("trafficserver-ws-remap.conf", &[], ""),
        Product::NodeHttpProxy => ("node-http-proxy-ws.js", &[], ""),
        Product::Mitmproxy => ("mitmproxy-reverse.yaml", &[], ""),
    };
    BuiltIn {
        template,
        values,
        path_prefix,
    }
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
        let b = built_in(product);
        let scratch = base.join(format!("gauntlet-gate-{}-{}", product, std::process::id()));
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
    fn every_product_has_a_built_in_template_whose_placeholders_it_fills() {
        for product in Product::ALL {
            let b = built_in(product);
            let text = builtin::template(b.template)
                .unwrap_or_else(|| panic!("{product}: no built-in {}", b.template));
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
