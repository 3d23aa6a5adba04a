//! A token server for Distribution's `auth: token` (the bearer-token flow
//! Docker Hub, GHCR and Harbor use): HTTPS on loopback, `GET /token?
//! service=…&scope=repository:NAME:ACTIONS` with HTTP basic auth; a right
//! user and password get an ES256 JWT granting the requested scopes (the
//! `x5c` header carries the signing certificate, which the registry's
//! `rootcertbundle` holds), anything else a 401. Every request is counted
//! by outcome, so a test can prove a wrong password was tried once.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};

/// The `service` and `issuer` the registry and the tokens agree on.
pub const TOKEN_SERVICE: &str = "scanfleet-test-registry";
/// The issuer of every token.
pub const TOKEN_ISSUER: &str = "scanfleet-test-token-issuer";

/// Requests answered, by outcome.
#[derive(Debug, Default)]
pub struct TokenCounts {
    /// Tokens issued.
    pub issued: AtomicUsize,
    /// Requests refused with 401.
    pub refused: AtomicUsize,
}

/// A running token server; it stops when the process ends (the listener
/// thread holds nothing but loopback sockets).
pub struct TokenServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The certificate registries verify tokens with (PEM).
    pub signing_cert: PathBuf,
    /// What it answered so far.
    pub counts: Arc<TokenCounts>,
}

struct Signer {
    key: EcdsaKeyPair,
    cert_der: Vec<u8>,
    user: String,
    password: String,
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl TokenServer {
    /// Starts a server accepting `user`/`password`, serving TLS with
    /// `cert`/`key` (PEM files), writing its signing certificate into `dir`.
    pub fn start(dir: &Path, cert: &Path, key: &Path, user: &str, password: &str) -> Self {
        let signing = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "scanfleet test token signer");
        let signing_cert = params.self_signed(&signing).unwrap();
        let cert_path = dir.join("token-signer.pem");
        std::fs::write(&cert_path, signing_cert.pem()).unwrap();
        let signer = Arc::new(Signer {
            key: EcdsaKeyPair::from_pkcs8(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                &signing.serialize_der(),
                &SystemRandom::new(),
            )
            .unwrap(),
            cert_der: signing_cert.der().to_vec(),
            user: user.into(),
            password: password.into(),
        });
        let tls = Arc::new(server_config(cert, key));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let counts = Arc::new(TokenCounts::default());
        let thread_counts = counts.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (tls, signer, counts) = (tls.clone(), signer.clone(), thread_counts.clone());
                std::thread::spawn(move || {
                    let conn = rustls::ServerConnection::new(tls).unwrap();
                    let mut stream = rustls::StreamOwned::new(conn, stream);
                    let _ = answer(&mut stream, &signer, &counts);
                });
            }
        });
        Self {
            addr,
            signing_cert: cert_path,
            counts,
        }
    }

    /// The realm URL registries send clients to.
    pub fn realm(&self) -> String {
        format!("https://{}/token", self.addr)
    }

    /// Tokens issued so far.
    pub fn issued(&self) -> usize {
        self.counts.issued.load(Ordering::SeqCst)
    }

    /// Requests refused so far.
    pub fn refused(&self) -> usize {
        self.counts.refused.load(Ordering::SeqCst)
    }
}

fn server_config(cert: &Path, key: &Path) -> rustls::ServerConfig {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap()
}

/// Reads one request and answers it.
fn answer(
    stream: &mut (impl std::io::Read + Write),
    signer: &Signer,
    counts: &TokenCounts,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(&mut *stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut authorization = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("authorization")
        {
            authorization = Some(value.trim().to_owned());
        }
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or_default();
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", signer.user, signer.password))
    );
    let (status, body) = if authorization.as_deref() == Some(expected.as_str()) {
        counts.issued.fetch_add(1, Ordering::SeqCst);
        let token = signer.token(&scopes(target));
        (
            "200 OK",
            format!(r#"{{"token":"{token}","access_token":"{token}","expires_in":300}}"#),
        )
    } else {
        counts.refused.fetch_add(1, Ordering::SeqCst);
        (
            "401 Unauthorized",
            r#"{"details":"bad credentials"}"#.into(),
        )
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

/// `(repository, actions)` of every `scope=repository:NAME:A,B` in `target`.
fn scopes(target: &str) -> Vec<(String, Vec<String>)> {
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or_default();
    query
        .split('&')
        .filter_map(|pair| pair.strip_prefix("scope="))
        .map(percent_decode)
        .filter_map(|scope| {
            let rest = scope.strip_prefix("repository:")?;
            let (name, actions) = rest.rsplit_once(':')?;
            Some((
                name.to_owned(),
                actions.split(',').map(str::to_owned).collect(),
            ))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => out.push(b),
                    Err(_) => out.extend_from_slice(&bytes[i..i + 3]),
                }
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Signer {
    fn token(&self, scopes: &[(String, Vec<String>)]) -> String {
        let header = serde_json::json!({
            "typ": "JWT",
            "alg": "ES256",
            "x5c": [base64::engine::general_purpose::STANDARD.encode(&self.cert_der)],
        });
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let access: Vec<_> = scopes
            .iter()
            .map(|(name, actions)| {
                serde_json::json!({"type": "repository", "name": name, "actions": actions})
            })
            .collect();
        let claims = serde_json::json!({
            "iss": TOKEN_ISSUER,
            "sub": self.user,
            "aud": TOKEN_SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": format!("{now}-{}", scopes.len()),
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let signature = self
            .key
            .sign(&SystemRandom::new(), signing_input.as_bytes())
            .unwrap();
        format!("{signing_input}.{}", b64url(signature.as_ref()))
    }
}
