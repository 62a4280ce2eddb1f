//! What a run ends with: its [`outcome`], the latency [`metrics`] that can make it
//! `degraded`, and the [`transcript`] every host wrote.

pub mod metrics;
pub mod outcome;
pub mod transcript;
