//! Who is calling, as far as the edge could prove it, and what they
//! presented to prove it.
//!
//! The credentials come only from the connection (a verified client
//! certificate) and the `Authorization` header; nothing a caller writes
//! about itself (such as the old `x-scanfleet-principal` header) counts.
//! The one exception is kube-apiserver's request-header scheme: an
//! authenticating proxy, itself proven by its client certificate, names
//! the end user in `X-Remote-User` / `X-Remote-Group`. The headers are read
//! here; whether this caller may send them is the gatekeeper's decision.

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
    /// An authenticating proxy's verified client certificate, and the end
    /// user it named in `X-Remote-User`.
    AuthenticatingProxy {
        /// The proxy certificate's subject.
        subject: String,
    },
}

/// The header an authenticating proxy names the end user in
/// (kube-apiserver's default `--requestheader-username-headers`).
pub const REMOTE_USER_HEADER: &str = "x-remote-user";
/// The header, repeated, naming the end user's groups
/// (`--requestheader-group-headers`).
pub const REMOTE_GROUP_HEADER: &str = "x-remote-group";
/// Longest user or group name accepted from a proxy.
pub const MAX_REMOTE_NAME_BYTES: usize = 256;
/// Most groups accepted from a proxy.
pub const MAX_REMOTE_GROUPS: usize = 64;

/// The end user an authenticating proxy says it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardedUser {
    /// `X-Remote-User`.
    pub name: String,
    /// Every `X-Remote-Group` value, as sent.
    pub groups: Vec<String>,
}

/// Reads one proxy-named user or group: printable, bounded, not blank.
fn remote_name(header: &str, value: &http::HeaderValue) -> Result<String, String> {
    if value.len() > MAX_REMOTE_NAME_BYTES {
        return Err(format!(
            "{header} header is longer than {MAX_REMOTE_NAME_BYTES} bytes"
        ));
    }
    let text = std::str::from_utf8(value.as_bytes())
        .map_err(|_| format!("{header} header is not UTF-8"))?
        .trim();
    if text.is_empty() || text.chars().any(char::is_control) {
        return Err(format!(
            "{header} header is empty or has control characters"
        ));
    }
    Ok(text.to_owned())
}

/// Reads `X-Remote-User` and `X-Remote-Group`: `Ok(None)` when neither
/// was sent, an error naming the header when either is unusable.
fn forwarded(headers: &http::HeaderMap) -> Result<Option<ForwardedUser>, String> {
    let users: Vec<_> = headers.get_all(REMOTE_USER_HEADER).iter().collect();
    let groups: Vec<_> = headers.get_all(REMOTE_GROUP_HEADER).iter().collect();
    if users.is_empty() && groups.is_empty() {
        return Ok(None);
    }
    let [user] = users.as_slice() else {
        return Err(format!(
            "{REMOTE_USER_HEADER}: expected exactly one, got {}",
            users.len()
        ));
    };
    if groups.len() > MAX_REMOTE_GROUPS {
        return Err(format!(
            "{REMOTE_GROUP_HEADER}: at most {MAX_REMOTE_GROUPS} groups, got {}",
            groups.len()
        ));
    }
    Ok(Some(ForwardedUser {
        name: remote_name(REMOTE_USER_HEADER, user)?,
        groups: groups
            .iter()
            .map(|g| remote_name(REMOTE_GROUP_HEADER, g))
            .collect::<Result<_, _>>()?,
    }))
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
    /// The end user named by `X-Remote-User`, or why those headers were
    /// unusable; believed only from a configured authenticating proxy.
    pub forwarded: Option<Result<ForwardedUser, String>>,
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
            forwarded: forwarded(headers).transpose(),
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
    fn forwarded_users_are_read_and_bad_headers_named() {
        let mut h = http::HeaderMap::new();
        assert_eq!(forwarded(&h), Ok(None));
        h.append(REMOTE_GROUP_HEADER, header("auditors"));
        assert!(forwarded(&h).unwrap_err().contains("exactly one, got 0"));
        h.append(REMOTE_USER_HEADER, header("jane@example.com"));
        h.append(REMOTE_GROUP_HEADER, header("oncall"));
        assert_eq!(
            forwarded(&h),
            Ok(Some(ForwardedUser {
                name: "jane@example.com".into(),
                groups: vec!["auditors".into(), "oncall".into()],
            }))
        );
        h.append(REMOTE_USER_HEADER, header("mallory"));
        assert!(forwarded(&h).unwrap_err().contains("exactly one, got 2"));
        let mut h = http::HeaderMap::new();
        h.insert(REMOTE_USER_HEADER, header(&"a".repeat(300)));
        assert!(forwarded(&h).unwrap_err().contains("longer than 256"));
        h.insert(REMOTE_USER_HEADER, header(" "));
        assert!(forwarded(&h).unwrap_err().contains("empty"));
        h.insert(REMOTE_USER_HEADER, header("jane"));
        for _ in 0..=MAX_REMOTE_GROUPS {
            h.append(REMOTE_GROUP_HEADER, header("g"));
        }
        assert!(forwarded(&h).unwrap_err().contains("at most 64 groups"));
    }

    #[test]
    fn tokens_are_never_printed() {
        let (token, _) = bearer(Some(&header("Bearer s3cr3t")));
        assert_eq!(format!("{token:?}"), "Some(BearerToken(6 bytes))");
    }
}
