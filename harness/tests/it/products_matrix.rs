//! The products the conformance matrix added to the five of `products.rs` (Caddy, lighttpd,
//! H2O, Varnish, Traffic Server, node-http-proxy, mitmproxy, and Apache's `upgrade=websocket`
//! form): each starts from its documented template in front of the WebSocket echo server and
//! relays an echo. A product that is not installed fails its test saying what to install
//! (`cargo xtask test` installs them all); `cargo xtask conformance` gates them fully.

use gauntlet::real::product::Product;

use crate::products::{Trial, assert_echoed};

/// Starts `product` from `template` in front of the echo server and sends an echo to `path`.
async fn echoes(product: Product, template: &str, path: &str) {
    let trial = Trial::reverse(product, template, &[]).await;
    assert_echoed(Some(trial.echo(path).await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caddy_reverse_proxy_relays_an_echo() {
    echoes(Product::Caddy, "caddy-reverse-proxy.caddyfile", "/echo").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lighttpd_with_upgrade_enabled_relays_an_echo() {
    echoes(Product::Lighttpd, "lighttpd-upgrade-enable.conf", "/echo").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2o_with_proxy_websocket_on_relays_an_echo() {
    echoes(Product::H2o, "h2o-websocket-on.conf", "/echo").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn varnish_piping_websockets_relays_an_echo() {
    echoes(Product::Varnish, "varnish-pipe-websocket.vcl", "/echo").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trafficserver_with_ws_remap_rules_relays_an_echo() {
    echoes(
        Product::Trafficserver,
        "trafficserver-ws-remap.conf",
        "/echo",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_http_proxy_with_ws_true_relays_an_echo() {
    echoes(Product::NodeHttpProxy, "node-http-proxy-ws.js", "/echo").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mitmproxy_in_reverse_mode_relays_an_echo() {
    echoes(Product::Mitmproxy, "mitmproxy-reverse.yaml", "/echo").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apache_proxypass_upgrade_websocket_relays_an_echo() {
    echoes(Product::Apache, "apache-proxypass-upgrade.conf", "/ws/echo").await;
}
