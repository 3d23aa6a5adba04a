//! Throwaway certificate authorities for tests, as kubesim makes its own:
//! a CA, a server certificate for `127.0.0.1` and `localhost` that every
//! service listener presents, client certificates (mTLS), and the client
//! side of TLS (a rustls config and tonic's) trusting that CA.
//!
//! Nothing outlives the test: keys live in a temp dir that is removed on
//! drop, and a new CA is generated every time.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A certificate and its key, PEM.
#[derive(Clone, Debug)]
pub struct Identity {
    /// The certificate chain, leaf first.
    pub cert_pem: String,
    /// Its private key (PKCS#8).
    pub key_pem: String,
}

/// A throwaway CA.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    /// A new CA called `name`.
    ///
    /// # Panics
    /// When rcgen cannot generate a key (never with ring).
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { issuer }
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `127.0.0.1` and `localhost`, with common
    /// name `cn`.
    ///
    /// # Panics
    /// When rcgen fails (never with ring).
    pub fn server(&self, cn: &str) -> Identity {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Identity {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// A client certificate with subject `CN=<cn>,O=<org>`.
    ///
    /// # Panics
    /// When rcgen fails (never with ring).
    pub fn client(&self, cn: &str, org: &str) -> Identity {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params
            .distinguished_name
            .push(DnType::OrganizationName, org);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Identity {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// A CA, the server certificate every listener of a test presents, and
/// their files.
pub struct TestPki {
    /// The CA.
    pub ca: TestCa,
    dir: tempfile::TempDir,
    rotations: AtomicU32,
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}

/// Writes `contents` to `path` through a rename, as cert-manager's volume
/// updates appear to a reader: the old file or the new one, never half.
fn replace(path: &Path, contents: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

impl TestPki {
    /// A new CA and server certificate (common name `scanfleet-server-0`).
    ///
    /// # Panics
    /// When the temp dir cannot be written.
    pub fn new() -> Self {
        let pki = Self {
            ca: TestCa::new("scanfleet-test-ca"),
            dir: tempfile::Builder::new().prefix("pki-").tempdir().unwrap(),
            rotations: AtomicU32::new(0),
        };
        std::fs::write(pki.ca_file(), pki.ca.pem()).unwrap();
        let server = pki.ca.server("scanfleet-server-0");
        replace(&pki.cert_file(), &server.cert_pem);
        replace(&pki.key_file(), &server.key_pem);
        pki
    }

    /// The CA bundle file (trusted by clients, and by servers for mTLS).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The server certificate file.
    pub fn cert_file(&self) -> PathBuf {
        self.dir.path().join("server.pem")
    }

    /// The server key file.
    pub fn key_file(&self) -> PathBuf {
        self.dir.path().join("server-key.pem")
    }

    /// The flags that make a service serve TLS with this PKI and accept
    /// client certificates of its CA.
    pub fn server_flags(&self) -> Vec<String> {
        vec![
            "--tls-cert-file".into(),
            self.cert_file().display().to_string(),
            "--tls-key-file".into(),
            self.key_file().display().to_string(),
            "--tls-client-ca-file".into(),
            self.ca_file().display().to_string(),
        ]
    }

    /// Writes a new server certificate and key in place (key first, then
    /// the certificate, as a rotation might); returns its common name.
    pub fn rotate_server_certificate(&self) -> String {
        let n = self.rotations.fetch_add(1, Ordering::SeqCst) + 1;
        let cn = format!("scanfleet-server-{n}");
        let server = self.ca.server(&cn);
        replace(&self.key_file(), &server.key_pem);
        replace(&self.cert_file(), &server.cert_pem);
        cn
    }

    /// Client-side TLS trusting this CA, without a client certificate.
    pub fn client(&self) -> ClientTls {
        ClientTls {
            ca_pem: self.ca.pem(),
            identity: None,
        }
    }
}

/// The client side of a TLS connection to a service.
#[derive(Clone, Debug)]
pub struct ClientTls {
    /// Trusted CA bundle.
    pub ca_pem: String,
    /// Client certificate (mTLS), if any.
    pub identity: Option<Identity>,
}

impl ClientTls {
    /// The same, presenting `identity`.
    pub fn with_identity(mut self, identity: Identity) -> Self {
        self.identity = Some(identity);
        self
    }

    /// A rustls client config offering `alpn` (ring provider, TLS 1.2+).
    ///
    /// # Panics
    /// On PEM that does not parse (the harness made it).
    pub fn rustls(&self, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(self.ca_pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
        let mut config = match &self.identity {
            None => builder.with_no_client_auth(),
            Some(id) => builder
                .with_client_auth_cert(
                    CertificateDer::pem_slice_iter(id.cert_pem.as_bytes())
                        .map(Result::unwrap)
                        .collect(),
                    PrivateKeyDer::from_pem_slice(id.key_pem.as_bytes()).unwrap(),
                )
                .unwrap(),
        };
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }

    /// tonic's TLS settings for a channel to `127.0.0.1`.
    pub fn tonic(&self) -> tonic::transport::ClientTlsConfig {
        let config = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(&self.ca_pem))
            .domain_name("localhost");
        match &self.identity {
            None => config,
            Some(id) => config.identity(tonic::transport::Identity::from_pem(
                &id.cert_pem,
                &id.key_pem,
            )),
        }
    }
}
