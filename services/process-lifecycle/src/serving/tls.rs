//! TLS on every listener: the certificate and key from files, optionally a
//! client CA bundle (mTLS), and a reload whenever the files change on disk.
//!
//! Why reload: cert-manager (and kubelet's projection of a Secret) rotates
//! the files in place; a service that keeps serving the old certificate
//! until it is restarted serves an expired one sooner or later. So every
//! listener asks [`ServerTls::acceptor`] for its acceptor on each accept,
//! and at most once per [`RELOAD_CHECK`] the files are stat'ed; when their
//! identity (inode, size, mtime) changed they are read again. Material that
//! does not load (a half-written pair, a key that does not match) is
//! refused with a warning and the previous certificate keeps serving.
//!
//! rustls with the ring provider only, TLS 1.2 and 1.3.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// How often, at most, the files are checked for a change.
pub const RELOAD_CHECK: Duration = Duration::from_secs(1);

/// Certificates, keys and bundles larger than this are a mistake.
const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// Where a listener's TLS material lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM bundle of CAs whose client certificates are accepted (mTLS).
    /// Without it, clients are not asked for a certificate.
    pub client_ca: Option<PathBuf>,
    /// Refuse clients without a certificate (only with `client_ca`).
    /// Otherwise a client may present none and authenticate with a bearer
    /// token, while a certificate it does present must verify.
    pub require_client_certificate: bool,
}

/// Why TLS material cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read.
    #[error("{path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A file holds no PEM block of the kind wanted.
    #[error("{path}: no {what} in it (expected PEM)")]
    Missing {
        /// The file.
        path: PathBuf,
        /// What was looked for.
        what: &'static str,
    },
    /// rustls refused the material (a key that does not match the
    /// certificate, an unsupported key type, an unusable CA).
    #[error("{what}: {reason}")]
    Refused {
        /// Which part.
        what: String,
        /// rustls's words.
        reason: String,
    },
}

/// How a listener protects its connections.
#[derive(Clone, Debug)]
pub enum ListenerSecurity {
    /// TLS with reloadable material.
    Tls(ServerTls),
    /// Plaintext, only because the operator said `insecure_plaintext: true`.
    InsecurePlaintext,
}

/// The loaded material of one generation.
struct Material {
    generation: u64,
    /// Without ALPN; each listener adds its protocols to a copy.
    config: ServerConfig,
}

/// What identifies a file's content without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp(Vec<Option<(u64, u64, u64, SystemTime)>>);

struct State {
    material: Arc<Material>,
    stamp: Stamp,
    checked: Instant,
}

/// TLS material shared by a service's listeners, reloaded when its files
/// change.
#[derive(Clone)]
pub struct ServerTls {
    files: Arc<TlsFiles>,
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

/// One listener's acceptor, rebuilt when the material's generation moves.
#[derive(Default)]
pub(crate) struct AcceptorCache {
    alpn: Vec<Vec<u8>>,
    built: Option<(u64, TlsAcceptor)>,
}

impl AcceptorCache {
    /// Sets the protocols offered in ALPN (`h2`, `http/1.1`).
    pub(crate) fn offer(&mut self, protocols: &[&[u8]]) {
        self.alpn = protocols.iter().map(|p| p.to_vec()).collect();
        self.built = None;
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_pem(path: &Path) -> Result<Vec<u8>, TlsError> {
    use std::io::Read;
    let read = |reason: String| TlsError::Read {
        path: path.to_owned(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| read(e.to_string()))?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| read(e.to_string()))?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(read(format!("larger than {MAX_PEM_BYTES} bytes")));
    }
    Ok(bytes)
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_pem(path)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Read {
            path: path.to_owned(),
            reason: format!("bad PEM: {e}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Missing {
            path: path.to_owned(),
            what: "CERTIFICATE",
        });
    }
    Ok(certs)
}

fn load(files: &TlsFiles, generation: u64) -> Result<Material, TlsError> {
    let chain = certificates(&files.cert)?;
    let key_pem = read_pem(&files.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsError::Missing {
        path: files.key.clone(),
        what: "PRIVATE KEY",
    })?;
    let key = CertifiedKey::from_der(chain, key, &provider()).map_err(|e| TlsError::Refused {
        what: format!("{} with {}", files.cert.display(), files.key.display()),
        reason: e.to_string(),
    })?;
    let verifier = match &files.client_ca {
        None => None,
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(path)? {
                roots.add(cert).map_err(|e| TlsError::Refused {
                    what: path.display().to_string(),
                    reason: e.to_string(),
                })?;
            }
            let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
            let builder = if files.require_client_certificate {
                builder
            } else {
                builder.allow_unauthenticated()
            };
            let verifier: Arc<dyn ClientCertVerifier> =
                builder.build().map_err(|e| TlsError::Refused {
                    what: path.display().to_string(),
                    reason: e.to_string(),
                })?;
            Some(verifier)
        }
    };
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Refused {
            what: "TLS 1.2 and 1.3 with ring".into(),
            reason: e.to_string(),
        })?;
    let builder = match verifier {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    Ok(Material {
        generation,
        config: builder.with_cert_resolver(Arc::new(Current(Arc::new(key)))),
    })
}

fn stamp(files: &TlsFiles) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    let of = |p: &Path| {
        std::fs::metadata(p).ok().map(|m| {
            (
                m.dev(),
                m.ino(),
                m.len(),
                m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            )
        })
    };
    let mut stamps = vec![of(&files.cert), of(&files.key)];
    if let Some(ca) = &files.client_ca {
        stamps.push(of(ca));
    }
    Stamp(stamps)
}

/// Always the current generation's certificate (one per listener config).
#[derive(Debug)]
struct Current(Arc<CertifiedKey>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

impl ServerTls {
    /// Loads the material once, so that a bad file is a configuration
    /// error at start rather than a listener that cannot serve.
    ///
    /// # Errors
    /// [`TlsError`] naming the file and the problem.
    pub fn load(files: TlsFiles) -> Result<Self, TlsError> {
        let stamp = stamp(&files);
        let material = load(&files, 0)?;
        Ok(Self {
            files: Arc::new(files),
            state: Arc::new(Mutex::new(State {
                material: Arc::new(material),
                stamp,
                checked: Instant::now(),
            })),
        })
    }

    /// The files it serves from.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Reads the files again if they changed since the last look, at most
    /// once per [`RELOAD_CHECK`]; returns the current material.
    fn current(&self) -> Arc<Material> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.checked.elapsed() < RELOAD_CHECK {
            return state.material.clone();
        }
        state.checked = Instant::now();
        let now = stamp(&self.files);
        if now == state.stamp {
            return state.material.clone();
        }
        // Whatever happens, wait for the next change before trying again:
        // a half-written pair is retried when its second file lands.
        state.stamp = now;
        let generation = state.material.generation + 1;
        match load(&self.files, generation) {
            Ok(material) => {
                tracing::info!(cert = %self.files.cert.display(), generation,
                    "TLS certificate reloaded from disk");
                state.material = Arc::new(material);
            }
            Err(e) => tracing::warn!(error = %e,
                "TLS files changed but cannot be used; still serving the previous certificate"),
        }
        state.material.clone()
    }

    /// The acceptor for a listener, up to date with the files.
    pub(crate) fn acceptor(&self, cache: &mut AcceptorCache) -> TlsAcceptor {
        let material = self.current();
        if let Some((generation, acceptor)) = &cache.built
            && *generation == material.generation
        {
            return acceptor.clone();
        }
        let mut config = material.config.clone();
        config.alpn_protocols = cache.alpn.clone();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        cache.built = Some((material.generation, acceptor.clone()));
        acceptor
    }
}
