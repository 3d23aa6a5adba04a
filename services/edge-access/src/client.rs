//! The caller's side: a tonic interceptor that sends a bearer token with
//! every request (the CLI and tests use it; the token never appears in
//! `Debug` output).

use tonic::metadata::{Ascii, MetadataValue};

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
}
