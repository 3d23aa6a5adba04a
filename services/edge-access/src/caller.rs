//! Who is calling, as far as the edge could prove it, and what they
//! presented to prove it.
//!
//! The credentials come only from the connection (a verified client
//! certificate) and the `Authorization` header; nothing a caller writes
//! about itself (such as the old `x-scanfleet-principal` header) counts.

use std::net::IpAddr;

use scanfleet_process_lifecycle::serving::ConnectionInfo;
use zeroize::Zeroizing;

/// The longest bearer token accepted (ServiceAccount JWTs are ~1 KiB; OIDC
/// tokens with many claims a few KiB). Longer is refused before any review.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    /// A bearer token the cluster accepted (TokenReview).
    BearerToken,
    /// A client certificate the listener's CA verified, mapped by config.
    ClientCertificate {
        /// Its subject.
        subject: String,
    },
}

/// An authenticated caller: the identity the cluster's RBAC knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The user name (`system:serviceaccount:apps:submitter`, `ci-pipeline`).
    pub name: String,
    /// The user's uid, when the authenticator gave one.
    pub uid: String,
    /// Groups, as the authenticator gave them.
    pub groups: Vec<String>,
    /// Extra attributes (ServiceAccount token ids, bound pod), passed on to
    /// SubjectAccessReview as kube-apiserver would.
    pub extra: std::collections::BTreeMap<String, Vec<String>>,
    /// How they proved it.
    pub proof: Proof,
}

impl Caller {
    /// The principal recorded in intents, the status book and signed
    /// statements: the authenticated user name.
    pub fn principal(&self) -> &str {
        &self.name
    }
}

/// A bearer token, wiped from memory when dropped and never printed.
#[derive(Clone)]
pub struct BearerToken(Zeroizing<String>);

impl BearerToken {
    /// The token text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BearerToken({} bytes)", self.0.len())
    }
}

/// What a request presented.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// `Authorization: Bearer …`, when present and well formed.
    pub bearer: Option<BearerToken>,
    /// Why the `Authorization` header was unusable, if it was.
    pub malformed: Option<String>,
    /// The verified client certificate's subject (mTLS).
    pub client_subject: Option<String>,
    /// The peer address, for limits on failed attempts.
    pub peer: Option<IpAddr>,
}

/// Reads `Authorization` (`Bearer <token>`, case-insensitive scheme).
fn bearer(value: Option<&http::HeaderValue>) -> (Option<BearerToken>, Option<String>) {
    let Some(value) = value else {
        return (None, None);
    };
    if value.len() > MAX_TOKEN_BYTES + 7 {
        return (
            None,
            Some(format!(
                "Authorization header is longer than {MAX_TOKEN_BYTES} bytes"
            )),
        );
    }
    let Ok(text) = value.to_str() else {
        return (None, Some("Authorization header is not ASCII".into()));
    };
    let mut parts = text.trim().splitn(2, ' ');
    let scheme = parts.next().unwrap_or_default();
    let token = parts.next().unwrap_or_default().trim();
    if !scheme.eq_ignore_ascii_case("bearer") {
        return (
            None,
            Some("Authorization header: expected the Bearer scheme".into()),
        );
    }
    if token.is_empty() || token.contains(char::is_whitespace) {
        return (
            None,
            Some("Authorization header: the bearer token is empty or has spaces".into()),
        );
    }
    (Some(BearerToken(Zeroizing::new(token.to_owned()))), None)
}

impl Credentials {
    /// From HTTP headers and the connection they came on.
    pub fn from_parts(headers: &http::HeaderMap, connection: Option<&ConnectionInfo>) -> Self {
        let (bearer, malformed) = bearer(headers.get(http::header::AUTHORIZATION));
        Self {
            bearer,
            malformed,
            client_subject: connection
                .and_then(|c| c.tls.client_certificate())
                .map(|c| c.subject.clone()),
            peer: connection.map(|c| c.remote.ip()),
        }
    }

    /// From a gRPC request (metadata are HTTP/2 headers; tonic puts the
    /// connection's [`ConnectionInfo`] into the extensions).
    pub fn from_grpc<T>(request: &tonic::Request<T>) -> Self {
        let headers = request.metadata().clone().into_headers();
        Self::from_parts(&headers, request.extensions().get::<ConnectionInfo>())
    }

    /// From an HTTP request's parts (`serve_http` puts the connection's
    /// [`ConnectionInfo`] into the extensions).
    pub fn from_http(parts: &http::request::Parts) -> Self {
        Self::from_parts(&parts.headers, parts.extensions.get::<ConnectionInfo>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(v: &str) -> http::HeaderValue {
        http::HeaderValue::from_str(v).unwrap()
    }

    #[test]
    fn bearer_tokens_are_read_and_bad_headers_named() {
        let (token, problem) = bearer(Some(&header("Bearer abc.def")));
        assert_eq!(token.unwrap().expose(), "abc.def");
        assert!(problem.is_none());
        assert_eq!(bearer(Some(&header("bearer x"))).0.unwrap().expose(), "x");
        for (value, expected) in [
            ("Basic dXNlcjpwdw==", "Bearer scheme"),
            ("Bearer ", "empty"),
            ("Bearer a b", "spaces"),
        ] {
            let (token, problem) = bearer(Some(&header(value)));
            assert!(token.is_none(), "{value}");
            assert!(problem.unwrap().contains(expected), "{value}");
        }
        let long = format!("Bearer {}", "a".repeat(MAX_TOKEN_BYTES + 1));
        assert!(bearer(Some(&header(&long))).1.unwrap().contains("longer"));
        assert_eq!(bearer(None).0.map(|t| t.expose().to_owned()), None);
    }

    #[test]
    fn tokens_are_never_printed() {
        let (token, _) = bearer(Some(&header("Bearer s3cr3t")));
        assert_eq!(format!("{token:?}"), "Some(BearerToken(6 bytes))");
    }
}
