//! Helpers for tests that put Gauntlet's proxies and server in front of code under test.
//!
//! - [`TestCa`]: a certificate authority made on the spot, for TLS on loopback: rustls
//!   configurations for a server and a client that trusts it, or PEM files for a real
//!   program.
//! - A WebSocket echo server on loopback is the reference server:
//!   [`live::spawn_server`](crate::live::spawn_server) (any path but `/push` and `/attacker`
//!   echoes), with wss through [`live::ServerOptions::tls`](crate::live::ServerOptions::tls)
//!   and a [`TestCa`].
//!
//! ```
//! use gauntlet::testing::TestCa;
//!
//! let ca = TestCa::new()?;
//! assert!(ca.root_pem().starts_with("-----BEGIN CERTIFICATE-----"));
//! let server = ca.server_config(&["localhost", "127.0.0.1"])?;
//! let client = ca.client_config()?;
//! assert_eq!(server.alpn_protocols, client.alpn_protocols);
//! # Ok::<(), gauntlet::Error>(())
//! ```

use std::sync::Arc;

use crate::error::Error;
use crate::tls::{Ca, KeyKind, TlsVersions, client_config};

/// A certificate authority for tests, made fresh by [`TestCa::new`]: ECDSA P-256 (which every
/// TLS client accepts, browsers and OpenSSL-based programs included), valid from 1975 to
/// 4096 (rcgen's defaults). Its certificates are meant for loopback tests only: the key lives
/// in memory and goes with the value.
///
/// The client configuration it makes checks certificates against a fixed time (2026-01-01,
/// [`SimTime`](crate::tls::SimTime)) rather than the wall clock, as the harness's runs do,
/// so a test does not depend on the day it runs.
#[derive(Debug)]
pub struct TestCa {
    ca: Ca,
}

impl TestCa {
    /// A fresh CA whose certificate's common name is `Gauntlet test CA`.
    pub fn new() -> Result<TestCa, Error> {
        let ca = Ca::generate_with("Gauntlet test CA", KeyKind::EcdsaP256)?;
        Ok(TestCa { ca })
    }

    /// The CA's certificate, PEM: what a client outside Rust (a program's trust store,
    /// Python's `ssl.create_default_context(cafile=…)`) is given to trust it.
    pub fn root_pem(&self) -> &str {
        self.ca.root_pem()
    }

    /// A rustls server configuration presenting a fresh certificate for `names` (DNS names or
    /// IP addresses, such as `localhost` and `127.0.0.1`) signed by this CA, accepting TLS 1.2
    /// and 1.3, offering ALPN `http/1.1`.
    pub fn server_config(&self, names: &[&str]) -> Result<Arc<rustls::ServerConfig>, Error> {
        Ok(self.ca.server_config(&owned(names), TlsVersions::Any)?)
    }

    /// A rustls client configuration that trusts this CA and nothing else, offering TLS 1.3
    /// and 1.2 and ALPN `http/1.1` (for `tokio_rustls::TlsConnector`, say).
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, Error> {
        Ok(client_config(&[&self.ca])?)
    }

    /// A fresh certificate for `names` and its private key (ECDSA P-256, PKCS #8), both PEM,
    /// for a real program that terminates TLS (nginx's `ssl_certificate` and
    /// `ssl_certificate_key`, say).
    pub fn issue_pem(&self, names: &[&str]) -> Result<(String, String), Error> {
        Ok(self.ca.issue_pem(&owned(names))?)
    }

    /// The CA itself, for the harness's own configurations.
    pub(crate) fn ca(&self) -> &Ca {
        &self.ca
    }
}

/// `names` as the TLS module takes them.
fn owned(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}
