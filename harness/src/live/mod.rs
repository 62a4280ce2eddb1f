//! The library's front door to real sockets: Gauntlet's intermediary models as live proxies
//! on loopback, and its reference WebSocket server, for a user's own integration tests.
//!
//! - [`spawn`] and [`spawn_chain`]: a [`Model`] (or a chain of them) between a listener on
//!   127.0.0.1 and an upstream address, as `gauntlet proxy` runs it; [`ProxyHandle::addr`] is
//!   where to connect the client under test.
//! - [`spawn_server`] and [`spawn_server_with`]: the reference server (an echo server, and
//!   more: see [`ServerHandle`]), as `gauntlet serve` runs it, ws and optionally wss.
//! - [`Model`]: `pass`, `idle-killer` and every other model, from a constructor or a hop
//!   table in TOML.
//!
//! Each proxy and server runs on the `live` engine on a thread of its own (the engine runs
//! its own current-thread tokio runtime), so they start from any async code and never need
//! the caller's runtime to make progress. `shutdown().await` stops one and gives back what it
//! logged; dropping the handle stops it too. Errors are [`Error`]s.
//!
//! An idle killer in front of the reference server, and a WebSocket client through it:
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
//! let server = live::spawn_server().await?;
//! let proxy = live::spawn(Model::idle_killer(Duration::from_secs(5)), server.addr()).await?;
//!
//! let tcp = tokio::net::TcpStream::connect(proxy.addr()).await?;
//! let (mut ws, _) = tokio_tungstenite::client_async("ws://localhost/echo", tcp).await?;
//! ws.send(Message::text("hello through the gauntlet")).await?;
//! let echoed = ws.next().await.ok_or("the connection ended")??;
//! assert_eq!(echoed, Message::text("hello through the gauntlet"));
//! ws.close(None).await?;
//!
//! let logged = proxy.shutdown().await?;
//! assert!(logged.iter().any(|e| e.what.contains("idle-killer timeout=5000ms")));
//! server.shutdown().await?;
//! # Ok(())
//! # }
//! ```

mod background;
mod model;
mod proxy;
mod server;

pub use crate::error::Error;
pub use model::Model;
pub use proxy::{ProxyHandle, spawn, spawn_chain};
pub use server::{ServerHandle, ServerOptions, spawn_server, spawn_server_with};
