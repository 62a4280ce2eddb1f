//! TLS material for wss: a CA and a server certificate generated with rcgen at run time
//! (Ed25519, whose signatures have a fixed length, so record sizes do not vary between runs),
//! and rustls configurations on the ring provider with the roots passed explicitly.

use std::sync::Arc;

use anyhow::Context as _;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SerialNumber};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The client and server halves of a run's TLS setup.
#[derive(Debug, Clone)]
pub struct Tls {
    /// Trusts only the run's CA.
    pub client: Arc<rustls::ClientConfig>,
    /// Presents a certificate for every name the client may dial.
    pub server: Arc<rustls::ServerConfig>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Tls {
    /// A fresh CA and a server certificate valid for `names`.
    pub fn generate(names: &[String]) -> anyhow::Result<Self> {
        let ca_key =
            KeyPair::generate_for(&rcgen::PKCS_ED25519).context("generating the CA key")?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.serial_number = Some(SerialNumber::from(1u64));
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Gauntlet test CA");
        let ca_cert = ca_params.self_signed(&ca_key).context("signing the CA")?;
        let issuer = Issuer::new(ca_params, ca_key);

        let leaf_key =
            KeyPair::generate_for(&rcgen::PKCS_ED25519).context("generating the server key")?;
        let mut leaf_params = CertificateParams::new(names.to_vec())?;
        leaf_params.serial_number = Some(SerialNumber::from(2u64));
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "Gauntlet reference server");
        let leaf_cert = leaf_params
            .signed_by(&leaf_key, &issuer)
            .context("signing the server certificate")?;

        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(ca_cert.der().clone())
            .context("adding the CA root")?;
        let mut client = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.alpn_protocols = vec![b"http/1.1".to_vec()];

        let chain: Vec<CertificateDer<'static>> = vec![leaf_cert.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let mut server = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .context("loading the server certificate")?;
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            client: Arc::new(client),
            server: Arc::new(server),
        })
    }
}
