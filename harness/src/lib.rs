//! Gauntlet runs a WebSocket client and server through simulated misbehaving intermediaries
//! and reports what breaks, how, and how slowly.
//!
//! # Use it as a library
//!
//! Three doors lead in from a user's own tests:
//!
//! - [`live`]: an intermediary model as a real proxy on loopback, in front of the code under
//!   test ([`live::spawn`]: `Model::idle_killer(…)`, `Model::pass()`, any model from a hop
//!   table), and the reference WebSocket server ([`live::spawn_server`]).
//! - [`run_file`]: a scenario file's runs, each with its [`Outcome`].
//! - [`testing`]: a test CA for TLS on loopback.
//!
//! Their errors are [`Error`]s. Without the default `cli` feature
//! (`default-features = false`) the command line's dependencies are left out.
//!
//! ```
//! use std::time::Duration;
//!
//! use futures_util::{SinkExt as _, StreamExt as _};
//! use gauntlet::live::{self, Model};
//! use tokio_tungstenite::tungstenite::Message;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A proxy that passes everything, in front of the reference echo server.
//! let server = live::spawn_server().await?;
//! let proxy = live::spawn(Model::pass(), server.addr()).await?;
//! let tcp = tokio::net::TcpStream::connect(proxy.addr()).await?;
//! let (mut ws, _) = tokio_tungstenite::client_async("ws://localhost/echo", tcp).await?;
//! ws.send(Message::text("ping")).await?;
//! assert_eq!(ws.next().await.ok_or("closed")??, Message::text("ping"));
//!
//! // A scenario file: a stripping proxy rejects ws:// and lets wss:// through.
//! let runs = gauntlet::run_file("../scenarios/seeds/transparent-strip.toml")?;
//! assert!(runs.iter().all(|run| run.pass()));
//! assert!(runs.iter().any(|run| run.outcome() == gauntlet::Outcome::HandshakeRejected));
//! # Ok(())
//! # }
//! ```
//!
//! # Code map
//!
//! The folders follow a run's data flow: a [`scenario`] is run ([`run`]) on an [`engine`],
//! where the reference [`endpoints`] talk through models ([`driver`]), and the run ends in a
//! [`verdict`]; [`real`] holds what meets the real world.
//!
//! - [`scenario`]: scenario files (TOML, format 1) into a validated [`scenario::Scenario`],
//!   with located errors.
//! - [`run`]: one run (scenario × scheme × seed): topology, engine, verdict; [`run::suite`],
//!   many runs across threads, in a stable order, into results; [`run::file`], one file's
//!   runs for library code ([`run_file`]); [`run::bench`], whole-run measurements (wall time,
//!   peak memory) for `cargo xtask bench`.
//! - [`engine`]: the network abstraction ([`engine::Net`], [`engine::Engine`]) and the
//!   engines (`sim`, the default, `turmoil`, and `live`, on real sockets).
//! - [`endpoints`]: the reference WebSocket client, which decides the run's outcome, and
//!   server, with the cache-poisoning demonstration, fragmented messages and protocol
//!   violations they share.
//! - [`driver`]: runs any `gauntlet-proxies` model over an engine's streams.
//! - [`verdict`]: the run's outcome, its latency metrics and bounds, and the transcript every
//!   host writes to.
//! - [`real`]: real proxies (products) and programs started on loopback and used as hops,
//!   `gauntlet proxy` and `gauntlet serve` on real sockets, `gauntlet gate` and `gauntlet
//!   differential`.
//! - [`live`]: the front door to real sockets: models as proxies and the reference server,
//!   on threads of their own, from async code.
//! - [`testing`]: helpers for users' tests (a test CA).
//! - [`tls`]: run-time certificates and rustls configurations.
//! - [`files`]: reading files with a size limit, writing them with their folders.
//!
//! Start at [`run::run`] to follow one run end to end.

pub mod driver;
pub mod endpoints;
pub mod engine;
mod error;
pub mod files;
pub mod live;
pub mod population;
pub mod real;
pub mod run;
pub mod scenario;
pub mod testing;
pub mod tls;
pub mod verdict;

pub use error::{Error, Fault};
pub use run::file::{FileOptions, run_file, run_file_with};
pub use verdict::outcome::Outcome;

/// WebSocket settings shared by the reference client and server: tungstenite's defaults with
/// a 4 KiB read buffer. Its 128 KiB default dominates memory with many connections, and
/// tungstenite zeroes the buffer's free space before every read, so a large one costs time too;
/// a frame larger than the buffer still grows it. Frames and messages are limited to the
/// largest message a scenario may ask for ([`scenario::MAX_PAYLOAD_BYTES`], 16 MiB): a larger
/// one fails the connection with 1009 ([`endpoints::violation`]).
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
