//! Gauntlet runs a WebSocket client and server through simulated misbehaving intermediaries
//! and reports what breaks, how, and how slowly.
//!
//! # Code map
//!
//! - [`scenario`]: scenario files (TOML, format 1) into a validated [`scenario::Scenario`],
//!   with located errors.
//! - [`engine`]: the network abstraction ([`engine::Net`], [`engine::Engine`]) and the
//!   engines (`sim`, the default, `turmoil`, and `live`, on real sockets).
//! - [`server`] and [`client`]: the reference WebSocket server and client. The client decides
//!   the run's [`outcome::Outcome`].
//! - [`smuggle`]: the cache-poisoning demonstration (workload `smuggle`): the client's attack
//!   and victim fetch, the server's attacker endpoint, frames written by hand.
//! - [`fragment`]: messages sent as fragmented frames (`fragment-bytes`,
//!   `server-fragment-bytes`).
//! - [`violation`]: failing a connection whose peer breaks the protocol (a Close with 1002,
//!   1007 or 1009), for the client and the server alike.
//! - [`driver`]: runs any `gauntlet-proxies` model over an engine's streams.
//! - [`metrics`]: latency percentiles (HDR histograms) and the latency bounds that make a
//!   run `degraded`.
//! - [`proxy`]: `gauntlet proxy`, models on real sockets between two addresses.
//! - [`serve`]: `gauntlet serve`, the reference server on real sockets.
//! - [`standing`]: what those two share: a live run on given addresses until interrupted.
//! - [`run`]: one run (scenario × scheme × seed): topology, engine, verdict.
//! - [`suite`]: many runs across threads, in a stable order, into results.
//! - [`bench`]: whole-run measurements (wall time, peak memory) for `cargo xtask bench`.
//! - [`transcript`]: the simulated-time log every host writes to.
//! - [`tls`]: run-time certificates and rustls configurations.
//! - [`product`]: real proxies (nginx, HAProxy, Apache httpd, Squid, tinyproxy) started from
//!   configuration templates on loopback, and stopped, for live comparisons; and any proxy
//!   program started from a command line.
//! - [`real_hop`]: real programs (products, commands) as hops on the live engine.
//! - [`gate`]: `gauntlet gate`, the gate suite through the user's own proxy.
//!
//! Start at [`run::run`] to follow one run end to end.

pub mod bench;
pub mod client;
pub mod differential;
pub mod driver;
pub mod engine;
pub mod fragment;
pub mod gate;
pub mod metrics;
pub mod outcome;
pub mod product;
pub mod proxy;
pub mod real_hop;
pub mod run;
pub mod scenario;
pub mod serve;
pub mod server;
pub mod smuggle;
pub mod standing;
pub mod suite;
pub mod tls;
pub mod transcript;
pub mod violation;

/// WebSocket settings shared by the reference client and server: tungstenite's defaults with
/// a 4 KiB read buffer. Its 128 KiB default dominates memory with many connections, and
/// tungstenite zeroes the buffer's free space before every read, so a large one costs time too;
/// a frame larger than the buffer still grows it. Frames and messages are limited to the
/// largest message a scenario may ask for ([`scenario::MAX_PAYLOAD_BYTES`], 16 MiB): a larger
/// one fails the connection with 1009 ([`violation`]).
pub fn ws_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .max_frame_size(Some(scenario::MAX_PAYLOAD_BYTES))
        .max_message_size(Some(scenario::MAX_PAYLOAD_BYTES))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_largest_scenario_message_fits_in_one_frame() {
        let config = super::ws_config();
        let largest = super::scenario::MAX_PAYLOAD_BYTES;
        assert!(config.max_frame_size.is_none_or(|max| max >= largest));
        assert!(config.max_message_size.is_none_or(|max| max >= largest));
    }
}
