//! The reference endpoints: the WebSocket client that decides a run's outcome and the server
//! it talks to, with what they share.
//!
//! - [`browser`]: request heads as Chromium writes them, for measuring what headers cost.
//! - [`client`]: the reference client. It runs the scenario's workload and decides the run's
//!   [`Outcome`](crate::verdict::outcome::Outcome).
//! - `accept`: the checks of a 101 (RFC 6455 §4.1), for the client and the cache-poisoning
//!   demonstration.
//! - [`connect`]: what the client's workloads share: the plan, the report, and the transport
//!   to the server (TCP, a CONNECT tunnel, TLS).
//! - [`server`]: the reference server (`/echo`, `/push`, the attacker endpoint of the
//!   cache-poisoning demonstration, and Engine.IO).
//! - [`engineio`]: Engine.IO v4 (the layer under Socket.IO): its codec, the server's sessions
//!   over HTTP long-polling and WebSocket on `/engine.io/` and `/socket.io/`, and a client.
//! - [`strategy`]: client strategies: the workload through one transport, then another
//!   (`ws-then-wss`), or through Engine.IO's long-polling and WebSocket (Socket.IO's
//!   strategies), each attempt reported.
//! - [`streaming`]: HTTP streaming, Server-Sent Events on a held response with messages
//!   sent by POST: the reference server's `/stream` and a client (`streaming`,
//!   `wss-then-streaming`).
//! - [`smuggle`]: the cache-poisoning demonstration (workload `smuggle`): the client's attack
//!   and victim fetch, the server's attacker endpoint, frames written by hand.
//! - [`frames`]: WebSocket frames read by hand (the cache-poisoning demonstration's, and
//!   permessage-deflate's, whose RSV1 tungstenite refuses).
//! - [`fragment`]: messages sent as fragmented frames (`fragment-bytes`,
//!   `server-fragment-bytes`).
//! - [`subprotocol`]: what the client offers in `Sec-WebSocket-Protocol` and which the server
//!   picks.
//! - [`fields`]: request fields (`Origin`, `Cookie`, `Authorization`) the server checks
//!   arrived as the client sent them.
//! - [`body`]: a request body sent with the upgrade request, which the server reads whole
//!   before its 101.
//! - [`answer`]: what the request asks of the server's answer (fields in its 101, a refusal
//!   relayed intact, the first push in the 101's write) and the client's checks of it.
//! - [`deflate`]: permessage-deflate (RFC 7692) negotiated end to end, with compressed
//!   frames read and written by hand.
//! - [`census`]: how many of a client's watched connections the server still holds, asked
//!   by a later session: whether the end of a connection reached the server.
//! - `killable`: a connection's stream that can be reset from aside (a server's crash, a
//!   server's or a client's reset).
//! - [`violation`]: failing a connection whose peer breaks the protocol (a Close with 1002,
//!   1007 or 1009), for the client and the server alike.
//! - [`wire`]: bytes on the wire, each direction, over every connection a run's client makes.

pub(crate) mod accept;
pub mod answer;
pub mod body;
pub mod browser;
pub mod census;
pub mod client;
pub mod connect;
pub mod deflate;
pub mod engineio;
pub mod fields;
pub mod fragment;
pub mod frames;
pub(crate) mod killable;
pub mod server;
pub mod smuggle;
pub mod strategy;
pub mod streaming;
pub mod subprotocol;
pub mod violation;
pub mod wire;
