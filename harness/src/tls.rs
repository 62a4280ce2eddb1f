//! TLS material for wss: CAs and server certificates generated with rcgen at run time
//! (Ed25519, whose signatures have a fixed length, so record sizes do not vary between runs),
//! and rustls configurations on the ring provider with the roots passed explicitly.
//!
//! Certificates are checked against a fixed time ([`SimTime`]), never the wall clock: a run's
//! verdict cannot depend on the day it runs.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SerialNumber};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};

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

/// A certificate authority generated for one run.
pub struct Ca {
    root: CertificateDer<'static>,
    root_pem: String,
    issuer: Issuer<'static, KeyPair>,
    name: String,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").field("name", &self.name).finish()
    }
}

impl Ca {
    /// A fresh CA whose certificate's common name is `name`.
    pub fn generate(name: &str) -> anyhow::Result<Self> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ED25519)
            .with_context(|| format!("generating the key of {name}"))?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.serial_number = Some(SerialNumber::from(1u64));
        params.distinguished_name.push(DnType::CommonName, name);
        let root = params
            .self_signed(&key)
            .with_context(|| format!("signing {name}"))?;
        Ok(Self {
            root_pem: root.pem(),
            root: root.der().clone(),
            issuer: Issuer::new(params, key),
            name: name.to_string(),
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
    ) -> anyhow::Result<(rcgen::Certificate, KeyPair)> {
        let key = KeyPair::generate_for(algorithm).context("generating a server key")?;
        let mut params = CertificateParams::new(names.to_vec())?;
        params.serial_number = Some(SerialNumber::from(2u64));
        params.distinguished_name.push(
            DnType::CommonName,
            format!("server certificate of {}", self.name),
        );
        let cert = params
            .signed_by(&key, &self.issuer)
            .with_context(|| format!("signing a server certificate with {}", self.name))?;
        Ok((cert, key))
    }

    /// A server certificate for `names` and its private key, both PEM, for a real program
    /// that terminates TLS (nginx's `ssl_certificate`, for one). The key is ECDSA P-256:
    /// OpenSSL 3.0 cannot read the PKCS #8 v2 documents ring writes for Ed25519 keys, and a
    /// real program's TLS records are not part of any deterministic transcript anyway.
    pub fn issue_pem(&self, names: &[String]) -> anyhow::Result<(String, String)> {
        let (cert, key) = self.issue(names, &rcgen::PKCS_ECDSA_P256_SHA256)?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// A server configuration presenting a certificate for `names`, signed by this CA.
    pub fn server_config(&self, names: &[String]) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        let (cert, key) = self.issue(names, &rcgen::PKCS_ED25519)?;
        let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let mut server = rustls::ServerConfig::builder_with_details(provider(), Arc::new(SimTime))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .context("loading the server certificate")?;
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(server))
    }
}

/// A client configuration trusting exactly `cas`.
pub fn client_config(cas: &[&Ca]) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in cas {
        roots
            .add(ca.root.clone())
            .with_context(|| format!("adding the root of {}", ca.name))?;
    }
    let mut client = rustls::ClientConfig::builder_with_details(provider(), Arc::new(SimTime))
        .with_safe_default_protocol_versions()?
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
    /// A fresh CA and a server certificate valid for `names`; returns the CA too, for
    /// configurations that trust it alongside others.
    pub fn generate(names: &[String]) -> anyhow::Result<(Self, Ca)> {
        let ca = Ca::generate("Gauntlet test CA")?;
        let tls = Self {
            client: client_config(&[&ca])?,
            server: ca.server_config(names)?,
        };
        Ok((tls, ca))
    }
}
