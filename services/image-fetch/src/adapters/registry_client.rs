//! The distribution API over HTTPS, just enough to pull by digest:
//! `GET /v2/<repo>/manifests/<digest>` and `/blobs/<digest>`, following
//! redirects (blob storage often lives elsewhere), with basic or
//! bearer-token authentication on a 401 challenge.
//!
//! TLS uses the given CA bundle, or the system roots; plain HTTP only when
//! explicitly allowed (a loopback test registry). A 401 after credentials
//! were sent is final: it is reported with the registry and the step, and
//! never retried, so a wrong password cannot become a retry storm. The
//! password lives in a zeroizing buffer and is never logged.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt as _, Empty};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use scanfleet_scan_intents::ImageDigest;
use zeroize::Zeroizing;

use super::image_pull::{BlobSource, PullError, VerifiedFile, verify_bytes};
use crate::auth_challenge::{self, Challenge};
use crate::manifest::{Blob, MANIFEST_ACCEPT, MAX_MANIFEST_BYTES};

/// Redirects followed for one request.
const MAX_REDIRECTS: usize = 5;
/// Longest token response read.
const MAX_TOKEN_BYTES: usize = 64 * 1024;

/// A user name and password for a registry.
#[derive(Clone)]
pub struct Credentials {
    /// The user.
    pub username: String,
    /// The password or token.
    pub password: Zeroizing<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({:?}, <redacted>)", self.username)
    }
}

impl From<&crate::pull_secret::RegistryLogin> for Credentials {
    fn from(login: &crate::pull_secret::RegistryLogin) -> Self {
        Self {
            username: login.username.clone(),
            password: login.password.clone(),
        }
    }
}

/// How to reach one registry.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// PEM CA bundle to trust instead of the system roots.
    pub ca_bundle: Option<std::path::PathBuf>,
    /// Credentials for basic auth or the token endpoint.
    pub credentials: Option<Credentials>,
    /// Speak plain HTTP (only for a loopback test registry).
    pub plain_http: bool,
    /// Connect and header timeout of each request, and the longest pause
    /// between body chunks.
    pub timeout: Option<Duration>,
}

/// A client for one repository of one registry.
pub struct RegistryClient {
    registry: String,
    repository: String,
    tls: tokio_rustls::TlsConnector,
    options: RegistryOptions,
    /// `Authorization` value that worked (or was last obtained).
    auth: Mutex<Option<Zeroizing<String>>>,
}

impl RegistryClient {
    /// A client for `registry` (host[:port]) and `repository`.
    ///
    /// # Errors
    /// An unreadable or empty CA bundle.
    pub fn new(
        registry: &str,
        repository: &str,
        options: RegistryOptions,
    ) -> Result<Self, PullError> {
        let err = |problem: String| PullError::Registry {
            registry: registry.into(),
            step: "setting up TLS".into(),
            problem,
        };
        let mut roots = rustls::RootCertStore::empty();
        match &options.ca_bundle {
            Some(path) => {
                for cert in CertificateDer::pem_file_iter(path)
                    .map_err(|e| err(format!("CA bundle {}: {e}", path.display())))?
                {
                    let cert =
                        cert.map_err(|e| err(format!("CA bundle {}: {e}", path.display())))?;
                    roots
                        .add(cert)
                        .map_err(|e| err(format!("CA bundle {}: {e}", path.display())))?;
                }
                if roots.is_empty() {
                    return Err(err(format!(
                        "CA bundle {} holds no certificate",
                        path.display()
                    )));
                }
            }
            None => {
                for cert in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(cert);
                }
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| err(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            registry: registry.into(),
            repository: repository.into(),
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
            options,
            auth: Mutex::new(None),
        })
    }

    fn timeout(&self) -> Duration {
        self.options.timeout.unwrap_or(Duration::from_secs(30))
    }

    fn fail(&self, step: &str, problem: impl std::fmt::Display) -> PullError {
        PullError::Registry {
            registry: self.registry.clone(),
            step: step.into(),
            problem: problem.to_string(),
        }
    }

    fn url(&self, kind: &str, digest: &ImageDigest) -> String {
        let scheme = if self.options.plain_http {
            "http"
        } else {
            "https"
        };
        format!(
            "{scheme}://{}/v2/{}/{kind}/{digest}",
            self.registry, self.repository
        )
    }

    /// One request on a fresh connection, no redirects or auth.
    async fn send(
        &self,
        uri: &Uri,
        accept: &str,
        auth: Option<&str>,
        step: &str,
    ) -> Result<http::Response<Incoming>, PullError> {
        let host = uri
            .host()
            .ok_or_else(|| self.fail(step, format!("URL {uri} has no host")))?;
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") if self.options.plain_http => false,
            _ => return Err(self.fail(step, format!("refusing {uri}: only https is allowed"))),
        };
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let connect = async {
            let tcp = tokio::net::TcpStream::connect((host, port))
                .await
                .map_err(|e| self.fail(step, format!("connecting to {host}:{port}: {e}")))?;
            let req = Request::get(uri.clone())
                .header(
                    http::header::HOST,
                    uri.authority().map_or(host, |a| a.as_str()),
                )
                .header(http::header::ACCEPT, accept)
                .header(http::header::USER_AGENT, "scanfleet-image-fetch");
            let req = match auth {
                Some(a) => req.header(http::header::AUTHORIZATION, a),
                None => req,
            }
            .body(Empty::<Bytes>::new())
            .map_err(|e| self.fail(step, e))?;
            if tls {
                let name = ServerName::try_from(host.to_owned())
                    .map_err(|e| self.fail(step, format!("server name {host}: {e}")))?;
                let stream = self
                    .tls
                    .connect(name, tcp)
                    .await
                    .map_err(|e| self.fail(step, format!("TLS with {host}:{port}: {e}")))?;
                self.exchange(TokioIo::new(stream), req, step).await
            } else {
                self.exchange(TokioIo::new(tcp), req, step).await
            }
        };
        tokio::time::timeout(self.timeout(), connect)
            .await
            .map_err(|_| self.fail(step, format!("no response within {:?}", self.timeout())))?
    }

    async fn exchange<T>(
        &self,
        io: T,
        req: Request<Empty<Bytes>>,
        step: &str,
    ) -> Result<http::Response<Incoming>, PullError>
    where
        T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| self.fail(step, e))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        sender
            .send_request(req)
            .await
            .map_err(|e| self.fail(step, e))
    }

    /// GET with redirects and, on a 401, one authenticated retry.
    async fn get(
        &self,
        url: &str,
        accept: &str,
        step: &str,
    ) -> Result<http::Response<Incoming>, PullError> {
        let mut retried_auth = false;
        'auth: loop {
            let auth = self.auth.lock().expect("auth lock").clone();
            let mut uri: Uri = url.parse().map_err(|e| self.fail(step, e))?;
            let origin = uri.authority().cloned();
            for _ in 0..=MAX_REDIRECTS {
                // Credentials go only to the registry itself, never to a
                // redirect target elsewhere.
                let send_auth = auth
                    .as_deref()
                    .map(String::as_str)
                    .filter(|_| uri.authority() == origin.as_ref());
                let resp = self.send(&uri, accept, send_auth, step).await?;
                let status = resp.status();
                if status.is_redirection() {
                    let location = resp
                        .headers()
                        .get(http::header::LOCATION)
                        .and_then(|l| l.to_str().ok())
                        .ok_or_else(|| {
                            self.fail(step, format!("HTTP {status} without a Location"))
                        })?;
                    uri = join(&uri, location).map_err(|e| self.fail(step, e))?;
                    continue;
                }
                if status == StatusCode::UNAUTHORIZED {
                    if retried_auth || auth.is_some() {
                        return Err(self.refused(step, status));
                    }
                    let challenge = resp
                        .headers()
                        .get(http::header::WWW_AUTHENTICATE)
                        .and_then(|v| v.to_str().ok())
                        .and_then(auth_challenge::parse)
                        .ok_or_else(|| {
                            self.fail(step, "HTTP 401 without a usable WWW-Authenticate challenge")
                        })?;
                    let value = self.authorize(challenge, step).await?;
                    *self.auth.lock().expect("auth lock") = Some(value);
                    retried_auth = true;
                    continue 'auth;
                }
                if status == StatusCode::FORBIDDEN && auth.is_some() {
                    return Err(self.refused(step, status));
                }
                if !status.is_success() {
                    let body = read_capped(resp.into_body(), 512).await.unwrap_or_default();
                    let text: String = String::from_utf8_lossy(&body)
                        .chars()
                        .map(|c| if c.is_control() { ' ' } else { c })
                        .collect();
                    let retryable = status.is_server_error()
                        || status == StatusCode::TOO_MANY_REQUESTS
                        || status == StatusCode::REQUEST_TIMEOUT;
                    if retryable {
                        return Err(self.fail(step, format!("HTTP {status}: {}", text.trim())));
                    }
                    return Err(PullError::Rejected {
                        registry: self.registry.clone(),
                        step: step.into(),
                        status: status.to_string(),
                        problem: text.trim().to_owned(),
                    });
                }
                return Ok(resp);
            }
            return Err(self.fail(step, format!("more than {MAX_REDIRECTS} redirects")));
        }
    }

    fn refused(&self, step: &str, status: StatusCode) -> PullError {
        PullError::AuthRefused {
            registry: self.registry.clone(),
            step: step.into(),
            user: self
                .options
                .credentials
                .as_ref()
                .map(|c| format!(" for user {:?}", c.username))
                .unwrap_or_default(),
            status: status.as_u16(),
        }
    }

    /// The `Authorization` value a challenge asks for.
    async fn authorize(
        &self,
        challenge: Challenge,
        step: &str,
    ) -> Result<Zeroizing<String>, PullError> {
        let basic = self.options.credentials.as_ref().map(|c| {
            let raw = Zeroizing::new(format!("{}:{}", c.username, c.password.as_str()));
            Zeroizing::new(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw.as_bytes())
            ))
        });
        match challenge {
            Challenge::Basic => basic.ok_or_else(|| PullError::CredentialsRequired {
                registry: self.registry.clone(),
                step: step.into(),
            }),
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let scope = scope.unwrap_or_else(|| format!("repository:{}:pull", self.repository));
                let mut query = form_query(&[("scope", &scope)]);
                if let Some(s) = service {
                    query = format!("{}&{query}", form_query(&[("service", &s)]));
                }
                let sep = if realm.contains('?') { '&' } else { '?' };
                let token_step = format!("getting a token from {realm} for {step}");
                let uri: Uri = format!("{realm}{sep}{query}")
                    .parse()
                    .map_err(|e| self.fail(&token_step, e))?;
                let resp = self
                    .send(
                        &uri,
                        "application/json",
                        basic.as_deref().map(String::as_str),
                        &token_step,
                    )
                    .await?;
                let status = resp.status();
                if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                    return Err(self.refused(&token_step, status));
                }
                if !status.is_success() {
                    return Err(self.fail(&token_step, format!("HTTP {status}")));
                }
                let body = read_capped(resp.into_body(), MAX_TOKEN_BYTES)
                    .await
                    .map_err(|e| self.fail(&token_step, e))?;
                #[derive(serde::Deserialize)]
                struct Token {
                    token: Option<String>,
                    access_token: Option<String>,
                }
                let t: Token = serde_json::from_slice(&body)
                    .map_err(|e| self.fail(&token_step, format!("token response: {e}")))?;
                let token = t
                    .token
                    .or(t.access_token)
                    .ok_or_else(|| self.fail(&token_step, "token response has no token"))?;
                Ok(Zeroizing::new(format!("Bearer {token}")))
            }
        }
    }
}

impl BlobSource for RegistryClient {
    fn name(&self) -> String {
        format!("registry {}", self.registry)
    }

    async fn manifest(&self, digest: &ImageDigest) -> Result<(Vec<u8>, String), PullError> {
        let step = format!("fetching manifest {}@{digest}", self.repository);
        let resp = self
            .get(&self.url("manifests", digest), MANIFEST_ACCEPT, &step)
            .await?;
        let content_type = resp
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let bytes = read_capped(resp.into_body(), MAX_MANIFEST_BYTES)
            .await
            .map_err(|e| self.fail(&step, e))?;
        verify_bytes(&self.name(), "manifest", digest, &bytes)?;
        Ok((bytes, content_type))
    }

    async fn blob_to_file(&self, blob: &Blob, dest: &Path) -> Result<(), PullError> {
        let step = format!("fetching blob {}@{}", self.repository, blob.digest);
        let resp = self
            .get(&self.url("blobs", &blob.digest), "*/*", &step)
            .await?;
        let mut out = VerifiedFile::create(dest, blob, self.name(), "blob".into()).await?;
        let mut body = resp.into_body();
        loop {
            let frame = tokio::time::timeout(self.timeout(), body.frame())
                .await
                .map_err(|_| self.fail(&step, format!("stalled for {:?}", self.timeout())))?;
            match frame {
                None => break,
                Some(Err(e)) => return Err(self.fail(&step, e)),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        out.write(&data).await?;
                    }
                }
            }
        }
        out.finish().await
    }
}

/// Reads a body up to `cap` bytes, failing beyond.
async fn read_capped(mut body: Incoming, cap: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| e.to_string())?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > cap {
                return Err(format!("response over the limit of {cap} bytes"));
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

/// A `Location` resolved against the URL that answered.
fn join(base: &Uri, location: &str) -> Result<Uri, String> {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location
            .parse()
            .map_err(|e| format!("redirect {location:?}: {e}"));
    }
    if !location.starts_with('/') {
        return Err(format!("relative redirect {location:?} is not supported"));
    }
    let scheme = base.scheme_str().unwrap_or("https");
    let authority = base.authority().map(|a| a.as_str()).unwrap_or("");
    format!("{scheme}://{authority}{location}")
        .parse()
        .map_err(|e| format!("redirect {location:?}: {e}"))
}

/// `k=v&…`, percent-encoding everything but unreserved characters.
fn form_query(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}
