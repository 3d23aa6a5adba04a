//! The caller's side: a tonic interceptor that sends a bearer token with
//! every request (the CLI and tests use it; the token never appears in
//! `Debug` output), and [`EdgeClient`], the one place that says what an
//! address means to a client (`https://` with a trusted CA bundle, an
//! optional client certificate; `http://` only without a token), so the
//! CLI and the dev fleet reach the edges the same way.

use std::time::Duration;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use zeroize::Zeroizing;

/// Adds `authorization: Bearer <token>` to every request.
#[derive(Clone)]
pub struct BearerAuth(Option<MetadataValue<Ascii>>);

impl std::fmt::Debug for BearerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(_) => f.write_str("BearerAuth(<token>)"),
            None => f.write_str("BearerAuth(none)"),
        }
    }
}

/// A token that cannot travel in a header (not visible ASCII).
#[derive(Debug, thiserror::Error)]
#[error("the bearer token is not a valid header value (visible ASCII without spaces)")]
pub struct InvalidToken;

impl BearerAuth {
    /// Sends `token`.
    ///
    /// # Errors
    /// [`InvalidToken`].
    pub fn new(token: &str) -> Result<Self, InvalidToken> {
        let token = token.trim();
        if token.is_empty() || token.contains(char::is_whitespace) {
            return Err(InvalidToken);
        }
        let mut value: MetadataValue<Ascii> = format!("Bearer {token}")
            .parse()
            .map_err(|_| InvalidToken)?;
        value.set_sensitive(true);
        Ok(Self(Some(value)))
    }

    /// Sends nothing (a client-certificate identity, or a test of the
    /// refusal).
    pub fn none() -> Self {
        Self(None)
    }
}

impl tonic::service::Interceptor for BearerAuth {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A gRPC client type with a [`BearerAuth`] in front.
pub type Authenticated =
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, BearerAuth>;

/// Why a client could not reach an edge; each names the address.
#[derive(Debug, thiserror::Error)]
pub enum EdgeConnectError {
    /// Not a URL tonic can dial.
    #[error("{address}: not a gRPC address (https://HOST:PORT): {reason}")]
    BadAddress {
        /// As given.
        address: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `https://` without a CA bundle to verify the service with.
    #[error("{address}: TLS needs the CA bundle that signed the service's certificate (a CA file)")]
    NoCaBundle {
        /// The address.
        address: String,
    },
    /// A token would travel in the clear.
    #[error("{address}: a bearer token is never sent over plaintext http://; use https://")]
    TokenOverPlaintext {
        /// The address.
        address: String,
    },
    /// The token is not a header value.
    #[error(transparent)]
    Token(#[from] InvalidToken),
    /// Connection or handshake failed.
    #[error("cannot reach {address}: {reason}")]
    Unreachable {
        /// The address.
        address: String,
        /// The transport's reason, with its causes.
        reason: String,
    },
}

/// What a client presents to the edges: the CA bundle it trusts, an
/// optional client certificate (PEM), an optional bearer token.
#[derive(Clone, Default)]
pub struct EdgeClient {
    /// Trusted CA certificates (PEM).
    pub ca_pem: Option<String>,
    /// Client certificate chain and key (PEM), for mTLS identities.
    pub identity: Option<(String, Zeroizing<String>)>,
    /// Bearer token (a ServiceAccount token for the `scanfleet` audience).
    pub token: Option<Zeroizing<String>>,
    /// The name to verify in the service's certificate (default: the
    /// address's host).
    pub server_name: Option<String>,
}

impl std::fmt::Debug for EdgeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeClient")
            .field("ca_pem", &self.ca_pem.is_some())
            .field("client_certificate", &self.identity.is_some())
            .field("token", &self.token.as_ref().map(|_| "<token>"))
            .field("server_name", &self.server_name)
            .finish()
    }
}

impl EdgeClient {
    /// A channel to `address` (`https://` assumed when no scheme is given)
    /// and the interceptor that sends the token.
    ///
    /// # Errors
    /// [`EdgeConnectError`], naming the address.
    pub async fn connect(&self, address: &str) -> Result<(Channel, BearerAuth), EdgeConnectError> {
        let address = if address.contains("://") {
            address.to_owned()
        } else {
            format!("https://{address}")
        };
        let bad = |reason: String| EdgeConnectError::BadAddress {
            address: address.clone(),
            reason,
        };
        let mut endpoint = Endpoint::from_shared(address.clone())
            .map_err(|e| bad(e.to_string()))?
            .connect_timeout(Duration::from_secs(10));
        if address.starts_with("https://") {
            let ca = self
                .ca_pem
                .as_ref()
                .ok_or_else(|| EdgeConnectError::NoCaBundle {
                    address: address.clone(),
                })?;
            let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
            if let Some((cert, key)) = &self.identity {
                tls = tls.identity(Identity::from_pem(cert, key.as_bytes()));
            }
            if let Some(name) = &self.server_name {
                tls = tls.domain_name(name.clone());
            }
            endpoint = endpoint.tls_config(tls).map_err(|e| bad(chain(&e)))?;
        } else if address.starts_with("http://") {
            if self.token.is_some() {
                return Err(EdgeConnectError::TokenOverPlaintext { address });
            }
        } else {
            return Err(bad("the scheme must be https:// (or http://)".into()));
        }
        let auth = match &self.token {
            Some(token) => BearerAuth::new(token)?,
            None => BearerAuth::none(),
        };
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| EdgeConnectError::Unreachable {
                address: address.clone(),
                reason: chain(&e),
            })?;
        Ok((channel, auth))
    }
}

/// An error and its sources on one line (tonic's own text is only
/// "transport error").
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use tonic::service::Interceptor as _;

    use super::*;

    #[test]
    fn the_token_travels_in_the_authorization_header_and_nowhere_else() {
        let mut auth = BearerAuth::new("abc.def").unwrap();
        assert_eq!(format!("{auth:?}"), "BearerAuth(<token>)");
        let request = auth.call(tonic::Request::new(())).unwrap();
        assert_eq!(
            request.metadata().get("authorization").unwrap(),
            "Bearer abc.def"
        );
        assert!(BearerAuth::new("a b").is_err());
        assert!(BearerAuth::new("").is_err());
        let request = BearerAuth::none().call(tonic::Request::new(())).unwrap();
        assert!(request.metadata().get("authorization").is_none());
    }

    #[tokio::test]
    async fn addresses_are_checked_before_anything_is_sent() {
        let with_token = EdgeClient {
            token: Some(Zeroizing::new("abc".into())),
            ..Default::default()
        };
        let err = with_token.connect("http://127.0.0.1:1").await.unwrap_err();
        assert!(
            matches!(err, EdgeConnectError::TokenOverPlaintext { .. }),
            "{err}"
        );
        let err = with_token.connect("127.0.0.1:1").await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "https://127.0.0.1:1: TLS needs the CA bundle that signed the service's certificate (a CA file)"
        );
        let err = EdgeClient::default()
            .connect("ftp://x:1")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("ftp://x:1"), "{err}");
        assert_eq!(
            format!("{with_token:?}"),
            "EdgeClient { ca_pem: false, client_certificate: false, token: Some(\"<token>\"), server_name: None }"
        );
    }
}
