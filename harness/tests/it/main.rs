//! Integration tests of the `gauntlet` crate, in one binary.

mod bad_scenarios;
mod browser_heads;
mod client;
mod determinism;
mod engine;
mod front_door;
mod house;
mod live;
mod relay;
mod sim_net;
mod transcripts;

// Tests that start the `gauntlet` binary, which needs the `cli` feature.
#[cfg(feature = "cli")]
mod cli;
#[cfg(feature = "cli")]
mod conformance;
#[cfg(feature = "cli")]
mod engineio;
#[cfg(feature = "cli")]
mod gate;
#[cfg(feature = "cli")]
pub mod interop;
#[cfg(feature = "cli")]
mod population;
#[cfg(feature = "cli")]
mod process;
#[cfg(feature = "cli")]
mod products;
#[cfg(feature = "cli")]
mod products_matrix;
#[cfg(feature = "cli")]
mod proxy;
#[cfg(feature = "cli")]
mod serve;
#[cfg(feature = "cli")]
mod socketio;

/// The workspace root, where `scenarios/` lives.
pub fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}
