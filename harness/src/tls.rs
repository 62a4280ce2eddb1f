//! TLS material for wss: CAs and server certificates generated with rcgen at run time, and
//! rustls configurations on the ring provider with the roots passed explicitly.
//!
//! Versions: servers accept TLS 1.2 and 1.3 unless pinned to one ([`TlsVersions`]), and the
//! client offers both. TLS 1.3 alone turned real proxies away: nginx before 1.23.4 offers its
//! upstreams TLS 1.0 to 1.2 by default (`proxy_ssl_protocols`), so `proxy_pass https://…` to
//! a 1.3-only server failed its handshake and answered 502.
//!
//! Keys ([`KeyKind`]): the simulated runs' CAs and certificates are Ed25519, whose signatures
//! have a fixed length (64 bytes), so every handshake's records have the same sizes from run
//! to run and the event log's hash does not vary; an ECDSA signature is DER, 70 to 72 bytes.
//! OpenSSL-based clients (nginx's upstream sessions, Python's `ssl`) accept Ed25519 in TLS 1.2
//! and 1.3 alike, but browsers do not, so `gauntlet serve`, whose clients are written
//! elsewhere, and certificates for real programs ([`Ca::issue_pem`]) use ECDSA P-256.
//!
//! Certificates are checked against a fixed time ([`SimTime`]), never the wall clock: a run's
//! verdict cannot depend on the day it runs.

use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SerialNumber};
use rustls::SupportedProtocolVersion;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use serde::Deserialize;

/// The time TLS sees: 2026-01-01T00:00:00Z, inside every generated certificate's validity
/// (rcgen's default, 1975 to 4096).
#[derive(Debug)]
pub struct SimTime;

impl rustls::time_provider::TimeProvider for SimTime {
    fn current_time(&self) -> Option<UnixTime> {
        Some(UnixTime::since_unix_epoch(Duration::from_secs(
            1_767_225_600,
        )))
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The TLS versions a server accepts: both (the default), or one pinned (a scenario's
/// `[server] tls-version`, `gauntlet serve --tls-version`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum TlsVersions {
    /// TLS 1.2 and 1.3; a client offering both gets 1.3.
    #[default]
    #[serde(rename = "any")]
    Any,
    /// TLS 1.2 only.
    #[serde(rename = "1.2")]
    Tls12,
    /// TLS 1.3 only.
    #[serde(rename = "1.3")]
    Tls13,
}

impl TlsVersions {
    /// Every value, in the order of [`TlsVersions::name`]'s documentation.
    pub const ALL: [TlsVersions; 3] = [Self::Any, Self::Tls12, Self::Tls13];

    /// How a scenario file and the command line write it: `any`, `1.2` or `1.3`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Any => "any",
            Self::Tls12 => "1.2",
            Self::Tls13 => "1.3",
        }
    }

    /// The rustls versions, newest first.
    pub fn protocol_versions(self) -> &'static [&'static SupportedProtocolVersion] {
        static ANY: [&SupportedProtocolVersion; 2] =
            [&rustls::version::TLS13, &rustls::version::TLS12];
        static TLS12: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS12];
        static TLS13: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
        match self {
            Self::Any => &ANY,
            Self::Tls12 => &TLS12,
            Self::Tls13 => &TLS13,
        }
    }
}

impl std::fmt::Display for TlsVersions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for TlsVersions {
    type Err = UnknownTlsVersion;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|v| v.name() == s)
            .ok_or_else(|| UnknownTlsVersion {
                name: s.to_string(),
            })
    }
}

/// A name that is not one of [`TlsVersions`]'.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{name}` is not a TLS version: expected any, 1.2 or 1.3")]
pub struct UnknownTlsVersion {
    /// The name as given.
    pub name: String,
}

/// Why TLS material could not be made: what was being made, where it says, and the error of
/// the library that refused. The text is the step (`signing Gauntlet test CA`) followed by
/// the cause.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// rcgen could not make a key, certificate parameters or a signature.
    #[error("{}{cause}", step(doing))]
    Certificate {
        /// What was being made, if said.
        doing: Option<String>,
        /// rcgen's error.
        cause: rcgen::Error,
    },
    /// rustls refused a configuration: its versions, its certificate, a root.
    #[error("{}{cause}", step(doing))]
    Config {
        /// What was being configured, if said.
        doing: Option<String>,
        /// rustls' error.
        cause: rustls::Error,
    },
}

/// `doing: `, or nothing.
fn step(doing: &Option<String>) -> String {
    doing.as_ref().map_or(String::new(), |d| format!("{d}: "))
}

impl From<rcgen::Error> for TlsError {
    fn from(cause: rcgen::Error) -> Self {
        TlsError::Certificate { doing: None, cause }
    }
}

impl From<rustls::Error> for TlsError {
    fn from(cause: rustls::Error) -> Self {
        TlsError::Config { doing: None, cause }
    }
}

/// The error of a step, said.
trait Doing<T> {
    /// The error, if any, as that of `doing`.
    fn doing(self, doing: impl FnOnce() -> String) -> Result<T, TlsError>;
}

impl<T> Doing<T> for Result<T, rcgen::Error> {
    fn doing(self, doing: impl FnOnce() -> String) -> Result<T, TlsError> {
        self.map_err(|cause| TlsError::Certificate {
            doing: Some(doing()),
            cause,
        })
    }
}

impl<T> Doing<T> for Result<T, rustls::Error> {
    fn doing(self, doing: impl FnOnce() -> String) -> Result<T, TlsError> {
        self.map_err(|cause| TlsError::Config {
            doing: Some(doing()),
            cause,
        })
    }
}

/// The key (and signature) algorithm of a CA and the server certificates it issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// Ed25519: fixed-size signatures, so handshakes have the same sizes in every run. For
    /// the simulated engines, and the live engine's runs of the same scenarios.
    Ed25519,
    /// ECDSA on P-256 with SHA-256: what every TLS client accepts, browsers included.
    EcdsaP256,
}

impl KeyKind {
    fn algorithm(self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            Self::Ed25519 => &rcgen::PKCS_ED25519,
            Self::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        }
    }
}

/// A certificate authority generated for one run.
pub struct Ca {
    root: CertificateDer<'static>,
    root_pem: String,
    issuer: Issuer<'static, KeyPair>,
    name: String,
    kind: KeyKind,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish()
    }
}

impl Ca {
    /// A fresh Ed25519 CA whose certificate's common name is `name`.
    pub fn generate(name: &str) -> Result<Self, TlsError> {
        Self::generate_with(name, KeyKind::Ed25519)
    }

    /// A fresh CA of `kind` whose certificate's common name is `name`; the server
    /// certificates of [`Ca::server_config`] have keys of the same kind.
    pub fn generate_with(name: &str, kind: KeyKind) -> Result<Self, TlsError> {
        let key = KeyPair::generate_for(kind.algorithm())
            .doing(|| format!("generating the key of {name}"))?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.serial_number = Some(SerialNumber::from(1u64));
        params.distinguished_name.push(DnType::CommonName, name);
        let root = params
            .self_signed(&key)
            .doing(|| format!("signing {name}"))?;
        Ok(Self {
            root_pem: root.pem(),
            root: root.der().clone(),
            issuer: Issuer::new(params, key),
            name: name.to_string(),
            kind,
        })
    }

    /// The CA's certificate, PEM: what a client outside the harness (a program's trust
    /// store, `ssl.create_default_context(cafile=…)`) is given to trust it.
    pub fn root_pem(&self) -> &str {
        &self.root_pem
    }

    /// A fresh server key of `algorithm` and a certificate for `names` signed by this CA.
    fn issue(
        &self,
        names: &[String],
        algorithm: &'static rcgen::SignatureAlgorithm,
    ) -> Result<(rcgen::Certificate, KeyPair), TlsError> {
        let key = KeyPair::generate_for(algorithm).doing(|| "generating a server key".into())?;
        let mut params = CertificateParams::new(names.to_vec())?;
        params.serial_number = Some(SerialNumber::from(2u64));
        params.distinguished_name.push(
            DnType::CommonName,
            format!("server certificate of {}", self.name),
        );
        let cert = params
            .signed_by(&key, &self.issuer)
            .doing(|| format!("signing a server certificate with {}", self.name))?;
        Ok((cert, key))
    }

    /// A server certificate for `names` and its private key, both PEM, for a real program
    /// that terminates TLS (nginx's `ssl_certificate`, for one). The key is ECDSA P-256:
    /// OpenSSL 3.0 cannot read the PKCS #8 v2 documents ring writes for Ed25519 keys, and a
    /// real program's TLS records are not part of any deterministic transcript anyway.
    pub fn issue_pem(&self, names: &[String]) -> Result<(String, String), TlsError> {
        let (cert, key) = self.issue(names, &rcgen::PKCS_ECDSA_P256_SHA256)?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// A server configuration accepting `versions` and presenting a certificate for `names`
    /// (its key of this CA's [`KeyKind`]), signed by this CA.
    pub fn server_config(
        &self,
        names: &[String],
        versions: TlsVersions,
    ) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let (cert, key) = self.issue(names, self.kind.algorithm())?;
        let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let mut server = rustls::ServerConfig::builder_with_details(provider(), Arc::new(SimTime))
            .with_protocol_versions(versions.protocol_versions())?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .doing(|| "loading the server certificate".into())?;
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(server))
    }
}

/// A client configuration trusting exactly `cas`, offering TLS 1.3 and 1.2.
pub fn client_config(cas: &[&Ca]) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    client_config_for(cas, TlsVersions::Any)
}

/// A client configuration trusting exactly `cas`, offering `versions`.
fn client_config_for(
    cas: &[&Ca],
    versions: TlsVersions,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in cas {
        roots
            .add(ca.root.clone())
            .doing(|| format!("adding the root of {}", ca.name))?;
    }
    let mut client = rustls::ClientConfig::builder_with_details(provider(), Arc::new(SimTime))
        .with_protocol_versions(versions.protocol_versions())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(client))
}

/// The client and server halves of a run's TLS setup.
#[derive(Debug, Clone)]
pub struct Tls {
    /// Trusts only the run's CA.
    pub client: Arc<rustls::ClientConfig>,
    /// Presents a certificate for every name the client may dial.
    pub server: Arc<rustls::ServerConfig>,
}

impl Tls {
    /// A fresh Ed25519 CA and a server certificate valid for `names`, the server accepting
    /// TLS 1.2 and 1.3; returns the CA too, for configurations that trust it alongside others.
    pub fn generate(names: &[String]) -> Result<(Self, Ca), TlsError> {
        Self::generate_with(names, TlsVersions::Any)
    }

    /// As [`Tls::generate`], the server accepting `versions`.
    pub fn generate_with(names: &[String], versions: TlsVersions) -> Result<(Self, Ca), TlsError> {
        let ca = Ca::generate("Gauntlet test CA")?;
        let tls = Self {
            client: client_config(&[&ca])?,
            server: ca.server_config(names, versions)?,
        };
        Ok((tls, ca))
    }
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::ServerName;
    use rustls::{ClientConnection, ProtocolVersion, ServerConnection};

    use super::*;

    /// What an in-memory handshake came to.
    #[derive(Debug)]
    struct Done {
        version: ProtocolVersion,
        /// The bytes of each flight, alternately the client's and the server's.
        flights: Vec<usize>,
    }

    /// Moves everything `from` has to write into `to`; the bytes moved.
    fn flight(
        from: &mut rustls::Connection,
        to: &mut rustls::Connection,
    ) -> Result<usize, rustls::Error> {
        let mut bytes = Vec::new();
        while from.wants_write() {
            from.write_tls(&mut bytes).expect("writes to a Vec");
        }
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            to.read_tls(&mut rest).expect("reads from a slice");
            to.process_new_packets()?;
        }
        Ok(bytes.len())
    }

    /// A handshake between `client` and `server` in memory, to the server name `server`:
    /// the version agreed and the flights, or the error of the side that gave up.
    fn handshake(
        client: Arc<rustls::ClientConfig>,
        server: Arc<rustls::ServerConfig>,
    ) -> Result<Done, rustls::Error> {
        let name = ServerName::try_from("server").expect("a name");
        let mut client: rustls::Connection = ClientConnection::new(client, name)?.into();
        let mut server: rustls::Connection = ServerConnection::new(server)?.into();
        let mut flights = Vec::new();
        while client.is_handshaking() || server.is_handshaking() || server.wants_write() {
            assert!(flights.len() < 8, "no end to the handshake: {flights:?}");
            flights.push(flight(&mut client, &mut server)?);
            flights.push(flight(&mut server, &mut client)?);
        }
        assert_eq!(client.protocol_version(), server.protocol_version());
        let version = client
            .protocol_version()
            .expect("a version once handshaken");
        Ok(Done { version, flights })
    }

    fn names() -> Vec<String> {
        vec!["server".to_string()]
    }

    #[test]
    fn errors_say_the_step_then_the_cause() {
        let cause = rustls::Error::General("no".into());
        let e = Err::<(), _>(cause.clone())
            .doing(|| "loading the server certificate".into())
            .unwrap_err();
        assert!(matches!(&e, TlsError::Config { doing: Some(_), .. }));
        assert_eq!(
            e.to_string(),
            format!("loading the server certificate: {cause}")
        );
        assert_eq!(TlsError::from(cause.clone()).to_string(), cause.to_string());
        assert_eq!(
            UnknownTlsVersion { name: "1.4".into() }.to_string(),
            "`1.4` is not a TLS version: expected any, 1.2 or 1.3"
        );
    }

    #[test]
    fn the_default_server_handshakes_with_clients_pinned_to_either_version() {
        for kind in [KeyKind::Ed25519, KeyKind::EcdsaP256] {
            let ca = Ca::generate_with("test CA", kind).unwrap();
            let server = ca.server_config(&names(), TlsVersions::Any).unwrap();
            for (offered, agreed) in [
                (TlsVersions::Tls12, ProtocolVersion::TLSv1_2),
                (TlsVersions::Tls13, ProtocolVersion::TLSv1_3),
                (TlsVersions::Any, ProtocolVersion::TLSv1_3),
            ] {
                let client = client_config_for(&[&ca], offered).unwrap();
                let done = handshake(client, server.clone())
                    .unwrap_or_else(|e| panic!("{kind:?}, client offering {offered}: {e}"));
                assert_eq!(done.version, agreed, "{kind:?}, client offering {offered}");
            }
        }
    }

    #[test]
    fn a_pinned_server_speaks_its_version_and_refuses_the_other() {
        for kind in [KeyKind::Ed25519, KeyKind::EcdsaP256] {
            let ca = Ca::generate_with("test CA", kind).unwrap();
            for (pinned, version, other) in [
                (
                    TlsVersions::Tls12,
                    ProtocolVersion::TLSv1_2,
                    TlsVersions::Tls13,
                ),
                (
                    TlsVersions::Tls13,
                    ProtocolVersion::TLSv1_3,
                    TlsVersions::Tls12,
                ),
            ] {
                let server = ca.server_config(&names(), pinned).unwrap();
                let done = handshake(client_config(&[&ca]).unwrap(), server.clone())
                    .unwrap_or_else(|e| panic!("{kind:?}, server pinned to {pinned}: {e}"));
                assert_eq!(done.version, version, "{kind:?}, server pinned to {pinned}");
                let refused = handshake(client_config_for(&[&ca], other).unwrap(), server)
                    .expect_err("the other version is refused");
                assert!(
                    matches!(refused, rustls::Error::PeerIncompatible(_)),
                    "{kind:?}, server pinned to {pinned}, client offering {other}: {refused:?}"
                );
            }
        }
    }

    /// What keeps the simulated runs' event hashes stable: with Ed25519 keys, every
    /// handshake's flights have the same sizes, whatever the keys and the randoms.
    #[test]
    fn ed25519_handshakes_have_the_same_sizes_with_fresh_keys() {
        for versions in [TlsVersions::Tls12, TlsVersions::Tls13] {
            let sizes: Vec<Vec<usize>> = (0..8)
                .map(|_| {
                    let (tls, _) = Tls::generate_with(&names(), versions).unwrap();
                    handshake(tls.client, tls.server).unwrap().flights
                })
                .collect();
            assert!(
                sizes.windows(2).all(|w| w[0] == w[1]),
                "TLS {versions}: {sizes:?}"
            );
        }
    }

    #[test]
    fn versions_read_as_they_are_named() {
        for versions in TlsVersions::ALL {
            assert_eq!(versions.name().parse(), Ok(versions));
        }
        assert_eq!(
            "1.1".parse::<TlsVersions>(),
            Err(UnknownTlsVersion { name: "1.1".into() })
        );
    }
}
