//! Delivery authentication: a shared secret header, or GitHub's HMAC.
//!
//! Comparisons run in constant time so response timing does not reveal how
//! much of a guessed secret or signature was right.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::WebhookError;
use crate::webhook_request::WebhookRequest;

/// GitHub's signature header (HMAC-SHA256, hex, `sha256=` prefix).
pub const HUB_SIGNATURE_256: &str = "X-Hub-Signature-256";

/// Secret bytes: never printed, wiped from memory on drop.
#[derive(Clone)]
pub struct WebhookSecret(Zeroizing<Vec<u8>>);

/// The configured secret is empty, which would authenticate everyone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("webhook secret is empty")]
pub struct EmptySecret;

impl WebhookSecret {
    /// Wraps `bytes`; refuses an empty secret.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, EmptySecret> {
        let bytes = Zeroizing::new(bytes.into());
        if bytes.is_empty() {
            return Err(EmptySecret);
        }
        Ok(Self(bytes))
    }

    fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret([redacted])")
    }
}

/// A static header the registry is configured to send, compared with the
/// expected full value (Harbor's `auth_header` becomes `Authorization`;
/// Distribution's endpoint `headers` can carry any name).
#[derive(Debug, Clone)]
pub struct SharedSecretAuth {
    header: String,
    expected: WebhookSecret,
}

impl SharedSecretAuth {
    /// Expects header `header` to equal `expected` exactly.
    pub fn new(header: impl Into<String>, expected: WebhookSecret) -> Self {
        Self {
            header: header.into(),
            expected,
        }
    }

    /// Expects `Authorization: <expected>`.
    pub fn authorization(expected: WebhookSecret) -> Self {
        Self::new("Authorization", expected)
    }

    pub(crate) fn check(&self, req: &WebhookRequest<'_>) -> Result<(), WebhookError> {
        let got = single_header(req, &self.header)?;
        // Hashing both sides first makes the comparison constant-time in the
        // secret's length too, not only in its content.
        let want = Sha256::digest(self.expected.expose());
        let got = Sha256::digest(got);
        if bool::from(want.ct_eq(&got)) {
            Ok(())
        } else {
            Err(WebhookError::BadAuth {
                header: self.header.clone(),
                problem: "does not match",
            })
        }
    }
}

fn single_header<'a>(req: &WebhookRequest<'a>, name: &str) -> Result<&'a [u8], WebhookError> {
    match req.header(name) {
        Ok(Some(v)) => Ok(v),
        Ok(None) => Err(WebhookError::MissingAuth {
            header: name.to_owned(),
        }),
        Err(_) => Err(WebhookError::BadAuth {
            header: name.to_owned(),
            problem: "is repeated",
        }),
    }
}

/// Verifies `X-Hub-Signature-256: sha256=<hex>` over the raw body.
pub(crate) fn check_hub_signature(
    secret: &WebhookSecret,
    req: &WebhookRequest<'_>,
) -> Result<(), WebhookError> {
    let bad = |problem| WebhookError::BadAuth {
        header: HUB_SIGNATURE_256.to_owned(),
        problem,
    };
    let value = single_header(req, HUB_SIGNATURE_256)?;
    let hex_sig = value
        .strip_prefix(b"sha256=")
        .ok_or_else(|| bad("does not start with \"sha256=\""))?;
    let mut sig = [0u8; 32];
    hex::decode_to_slice(hex_sig, &mut sig)
        .map_err(|_| bad("is not 64 hex characters after \"sha256=\""))?;
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.expose())
        .map_err(|_| bad("cannot be checked: unusable secret"))?;
    mac.update(req.body());
    mac.verify_slice(&sig)
        .map_err(|_| bad("does not match the body"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_is_redacted_and_empty_is_refused() {
        let s = WebhookSecret::new("hunter2").unwrap();
        assert_eq!(format!("{s:?}"), "WebhookSecret([redacted])");
        assert!(!format!("{:?}", SharedSecretAuth::authorization(s)).contains("hunter2"));
        assert_eq!(WebhookSecret::new("").unwrap_err(), EmptySecret);
    }

    type Headers<'a> = Vec<(&'a str, &'a [u8])>;

    #[test]
    fn shared_secret_table() {
        let auth = SharedSecretAuth::authorization(WebhookSecret::new("Bearer s3cret").unwrap());
        let cases: Vec<(Headers, Option<u16>)> = vec![
            (vec![("authorization", b"Bearer s3cret")], None),
            (vec![("AUTHORIZATION", b"Bearer s3cret")], None),
            (vec![("Authorization", b"Bearer s3cre")], Some(401)),
            (vec![("Authorization", b"Bearer s3cret ")], Some(401)),
            (vec![("Authorization", b"")], Some(401)),
            (vec![], Some(401)),
            (
                vec![("Authorization", b"Bearer s3cret"), ("authorization", b"x")],
                Some(401),
            ),
        ];
        for (headers, want) in cases {
            let req = WebhookRequest::new(&headers, b"{}");
            assert_eq!(
                auth.check(&req).err().map(|e| e.http_status()),
                want,
                "{headers:?}"
            );
        }
        let none: Vec<(&str, &[u8])> = vec![];
        assert_eq!(
            auth.check(&WebhookRequest::new(&none, b""))
                .unwrap_err()
                .to_string(),
            "missing authentication: no Authorization header"
        );
    }
}
