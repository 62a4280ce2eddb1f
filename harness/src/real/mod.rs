//! The real world: real proxies and programs, and Gauntlet's own parts that face them on real
//! sockets.
//!
//! - [`product`]: real proxies (nginx, HAProxy, Apache httpd, Squid, tinyproxy) started from
//!   configuration templates on loopback, and stopped; and any proxy program started from a
//!   command line.
//! - [`hop`]: real programs (products, commands) as hops on the live engine.
//! - [`proxy`]: `gauntlet proxy`, models on real sockets between two addresses.
//! - [`serve`]: `gauntlet serve`, the reference server on real sockets.
//! - [`standing`]: what those two share: live runs on given addresses, one per worker thread,
//!   until interrupted.
//! - [`gate`]: `gauntlet gate`, the gate suite through the user's own proxy.
//! - [`differential`]: `gauntlet differential`, a real product against its model, scenario by
//!   scenario.

pub mod differential;
pub mod gate;
pub mod hop;
pub mod product;
pub mod proxy;
pub mod serve;
pub mod standing;
