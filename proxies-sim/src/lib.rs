//! Intermediary models for Gauntlet: sans-IO state machines that see a proxied connection's
//! events and answer with actions.
//!
//! # Code map
//!
//! - [`model`]: the contract every model implements ([`Connection`]), its [`Event`]s, its
//!   [`Action`]s and the [`Cx`] that collects them. Start here.
//! - [`registry`]: what each model declares about itself ([`Model`]: name, description,
//!   parameters, how its hop is made) and what the list tells its users ([`ModelInfo`]); its
//!   docs show how a model is added.
//! - [`spec`]: the `models!` macro that makes, from the one ordered list of models at the end
//!   of this file, [`MODELS`] and [`ModelSpec`] (a model with its parameters, as read from a
//!   scenario file: `model = "..."` followed by the parameters).
//! - [`http`]: HTTP/1.1 head parsing (httparse), hop-by-hop field handling (RFC 9110 §7.6.1)
//!   and where a body ends; [`http::message`], the one message layer every model that reads
//!   HTTP stands on ([`http::Messages`]: a direction read as heads, body pieces and ends).
//! - [`http_proxy`]: the HTTP/1.1 proxy engine that models reading HTTP share: a model is a
//!   [`http_proxy::Policy`] that rewrites heads and routes requests.
//! - [`ws_frames`]: WebSocket frame boundaries, for models that act between frames.
//! - [`rng`]: the seeded random source a model receives through its context.
//! - One file per model: [`pass`], [`transparent_proxy`], [`idle_killer`], [`l4_balancer`],
//!   [`l7_balancer`], [`connect_proxy`], [`lifetime_cap`],
//!   [`header_mangler`], [`tls_intercepting_proxy`], [`buffering_proxy`], [`caching_proxy`].
//!
//! # The model contract
//!
//! A model is a per-connection state machine. The driver (in the `gauntlet` crate) owns the
//! sockets, the clock and the seed; the model owns decisions. The rules:
//!
//! 1. **Events in, actions out.** The driver calls [`Connection::on_event`] once per event and
//!    carries out the actions the model pushed into [`Cx`], in order, before the next event.
//!    The first event is always [`Event::Accepted`]. A model never touches sockets, clocks,
//!    threads or global randomness: [`Cx::now`] is the simulated time and [`Cx::rng`] is seeded
//!    from the run's seed.
//! 2. **Two sides.** [`Side::Client`] is the accepted connection; [`Side::Upstream`] exists once
//!    the model asks for it with [`Cx::dial`] (or [`Cx::dial_backend`], for a hop with several
//!    upstream hosts, or [`Cx::dial_named`], toward a destination the client named, such as a
//!    CONNECT's authority). Bytes sent upstream before [`Event::Dialed`] are
//!    queued by the driver and written when the dial completes; if it fails, the model gets
//!    [`Event::DialFailed`] and the queued bytes are discarded with a transcript note.
//! 3. **Never lose bytes silently.** Every byte a model receives is forwarded, transformed on
//!    purpose, or dropped with a [`Cx::note`] saying so. Misbehaviour is the point of a model;
//!    it must be visible in the transcript.
//! 4. **Handle the end of a stream.** [`Event::Fin`] means the side will send nothing more
//!    (half-close); [`Event::Reset`] means the side is gone in both directions. A model decides
//!    what the other side sees: [`Cx::fin`], [`Cx::reset`], or nothing yet. The driver ends the
//!    connection when both sides are closed both ways (or reset) and no timer is pending.
//! 5. **Timers are explicit.** [`Cx::set_timer`] asks for [`Event::Timer`] at an absolute
//!    simulated time; setting the same id again moves it; [`Cx::cancel_timer`] removes it.
//! 6. **Parameters are read-only.** A model's parameters come from the scenario file, are
//!    validated when it is read, and never change during a run. Per-connection state lives in
//!    the [`Connection`] value; state a hop's connections share (a balancer's rotation, a
//!    cache) lives in its [`Hop`], one per host.
//! 7. **Unit-testable without a runtime.** Feed events to a connection with a [`Cx`] and read
//!    the actions back with [`Cx::take_actions`]; every model file ends with such tests.

pub mod http;
pub mod http_proxy;
pub mod model;
pub mod registry;
pub mod rng;
pub mod spec;
#[cfg(test)]
mod testkit;
pub mod ws_frames;

pub use model::{Action, CloseHow, Connection, Cx, Event, Hop, Side};
pub use registry::{Model, ModelInfo};
pub use spec::HopEnv;

// The one list of models: a line per model, in catalogue order (the order errors list them
// in). Each line declares the model's module (its file, `src/<module>.rs`) and makes its
// `ModelSpec` variant, its entry in `MODEL_NAMES` and `MODELS`, and every dispatch to it.
spec::models! {
    Pass => pass,
    TransparentProxy => transparent_proxy,
    IdleKiller => idle_killer,
    L4Balancer => l4_balancer,
    L7Balancer => l7_balancer,
    ConnectProxy => connect_proxy,
    LifetimeCap => lifetime_cap,
    HeaderMangler => header_mangler,
    TlsInterceptingProxy => tls_intercepting_proxy,
    BufferingProxy => buffering_proxy,
    CachingProxy => caching_proxy,
}
