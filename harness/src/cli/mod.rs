//! The commands of the `gauntlet` binary, one file each; `main.rs` holds the flags, the
//! dispatch and what every command shares (printing to stdout, styles, signals).

pub(crate) mod bench;
pub(crate) mod check;
pub(crate) mod conformance;
pub(crate) mod diff;
pub(crate) mod differential;
pub(crate) mod gate;
pub(crate) mod overhead;
pub(crate) mod population;
pub(crate) mod proxy;
pub(crate) mod report;
pub(crate) mod run;
pub(crate) mod serve;
