//! Integration tests of the `gauntlet` crate, in one binary.

mod bad_scenarios;
mod cli;
mod client;
mod conformance;
mod determinism;
mod engine;
mod gate;
mod house;
mod interop;
mod live;
mod process;
mod products;
mod proxy;
mod relay;
mod serve;
mod sim_net;
mod transcripts;

/// The workspace root, where `scenarios/` lives.
pub fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}
