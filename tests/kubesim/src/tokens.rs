//! ServiceAccount token JWTs: signing and signature/time validation.
//!
//! Tokens are ES256 (upstream uses ES256 for EC keys) with the claim set of
//! `pkg/serviceaccount/claims.go`. Validation here covers signature, issuer,
//! audience and time; whether the ServiceAccount and bound pod still exist is
//! checked by the authenticator on every request, against the live store.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
    UnparsedPublicKey,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The issuer and default API audience, as kind and kubeadm clusters use.
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// go-jose's default leeway on time claims.
pub const LEEWAY_SECS: i64 = 60;

/// A name+uid reference inside the `kubernetes.io` claim.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Ref {
    /// Object name.
    pub name: String,
    /// Object uid (omitted when empty).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
}

/// The private `kubernetes.io` claim.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KubeClaims {
    /// Namespace of the ServiceAccount.
    pub namespace: String,
    /// Bound pod, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<Ref>,
    /// The ServiceAccount.
    pub serviceaccount: Ref,
}

/// The JWT payload; fields are in the sorted order go-jose emits.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// Audiences (always an array).
    pub aud: Vec<String>,
    /// Expiry.
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Issuer.
    pub iss: String,
    /// Unique token id.
    pub jti: String,
    /// Kubernetes binding claims.
    #[serde(rename = "kubernetes.io")]
    pub kubernetes: KubeClaims,
    /// Not before.
    pub nbf: i64,
    /// `system:serviceaccount:<ns>:<name>`.
    pub sub: String,
}

/// Why a token did not validate, step by step as upstream's JWT
/// authenticator checks it. [`crate::authn`] turns these into the messages
/// a TokenReview reports; a request only ever sees a bare 401.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// Not three base64url parts of JSON, or not an ES256 JWS.
    #[error("malformed token")]
    Malformed,
    /// Signature or key id mismatch.
    #[error("invalid signature")]
    Signature,
    /// Issuer not ours.
    #[error("wrong issuer")]
    Issuer,
    /// No audience in common with the wanted ones.
    #[error("token audiences do not include the wanted audiences")]
    Audience,
    /// `exp` passed (beyond leeway).
    #[error("token has expired")]
    Expired,
    /// `nbf` in the future (beyond leeway).
    #[error("token not valid yet")]
    NotYetValid,
    /// `iat` in the future (beyond leeway).
    #[error("token issued in the future")]
    IssuedInTheFuture,
}

/// Holds the signing key for the life of the server.
pub struct TokenSigner {
    key: EcdsaKeyPair,
    kid: String,
    rng: SystemRandom,
}

/// SubjectPublicKeyInfo prefix of an uncompressed P-256 key.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

impl TokenSigner {
    /// Generates a fresh signing key.
    pub fn generate() -> Result<Self, ring::error::Unspecified> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|_| ring::error::Unspecified)?;
        let mut spki = P256_SPKI_PREFIX.to_vec();
        spki.extend_from_slice(key.public_key().as_ref());
        // Upstream key ids are the unpadded base64url SHA-256 of the PKIX key.
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(&spki));
        Ok(Self { key, kid, rng })
    }

    /// Signs a claim set into a compact JWS.
    pub fn sign(&self, claims: &Claims) -> Result<String, TokenError> {
        let header = serde_json::json!({"alg": "ES256", "kid": self.kid});
        let h = URL_SAFE_NO_PAD.encode(header.to_string());
        let p =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).map_err(|_| TokenError::Malformed)?);
        let input = format!("{h}.{p}");
        let sig = self
            .key
            .sign(&self.rng, input.as_bytes())
            .map_err(|_| TokenError::Signature)?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref())))
    }

    /// Decodes a token this signer issued, in the order of upstream's JWT
    /// authenticator: structure and the (unverified) issuer first, so a
    /// token of another issuer is simply not ours, then the signature.
    pub fn decode(&self, token: &str) -> Result<Claims, TokenError> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let json = |part: &str| -> Result<serde_json::Value, TokenError> {
            let bytes = URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| TokenError::Malformed)?;
            serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
        };
        let header = json(h)?;
        let mut raw = json(p)?;
        if raw.get("iss").and_then(|i| i.as_str()) != Some(ISSUER) {
            return Err(TokenError::Issuer);
        }
        if header["alg"] != "ES256" {
            return Err(TokenError::Malformed);
        }
        if header["kid"] != self.kid.as_str() {
            return Err(TokenError::Signature);
        }
        let sig = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| TokenError::Malformed)?;
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, self.key.public_key().as_ref())
            .verify(format!("{h}.{p}").as_bytes(), &sig)
            .map_err(|_| TokenError::Signature)?;
        // Accept a single-string audience as well as the array form.
        if let Some(a) = raw.get("aud").and_then(|a| a.as_str()).map(str::to_string) {
            raw["aud"] = serde_json::json!([a]);
        }
        serde_json::from_value(raw).map_err(|_| TokenError::Malformed)
    }

    /// Checks signature, issuer, the API audience and times; returns the
    /// claims. The authenticator runs the same steps with the audiences a
    /// TokenReview asks for.
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        let claims = self.decode(token)?;
        if claims.audience_overlap(&[ISSUER.to_string()]).is_empty() {
            return Err(TokenError::Audience);
        }
        claims.check_time(now)?;
        Ok(claims)
    }
}

impl Claims {
    /// The wanted audiences this token was issued for, in the order asked
    /// (upstream's `Audiences.Intersect`).
    pub fn audience_overlap(&self, wanted: &[String]) -> Vec<String> {
        wanted
            .iter()
            .filter(|w| self.aud.contains(w))
            .cloned()
            .collect()
    }

    /// `nbf`, `exp` and `iat` against `now`, with go-jose's leeway.
    pub fn check_time(&self, now: i64) -> Result<(), TokenError> {
        if self.nbf > now + LEEWAY_SECS {
            return Err(TokenError::NotYetValid);
        }
        if now > self.exp + LEEWAY_SECS {
            return Err(TokenError::Expired);
        }
        if self.iat > now + LEEWAY_SECS {
            return Err(TokenError::IssuedInTheFuture);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(now: i64, aud: &str) -> Claims {
        Claims {
            aud: vec![aud.into()],
            exp: now + 600,
            iat: now,
            iss: ISSUER.into(),
            jti: "j".into(),
            kubernetes: KubeClaims {
                namespace: "ns".into(),
                pod: None,
                serviceaccount: Ref {
                    name: "sa".into(),
                    uid: "u".into(),
                },
            },
            nbf: now,
            sub: "system:serviceaccount:ns:sa".into(),
        }
    }

    #[test]
    fn round_trip_and_expiry_with_leeway() {
        let s = TokenSigner::generate().expect("key");
        let t = s.sign(&claims(1000, ISSUER)).expect("signs");
        assert!(s.verify(&t, 1000).is_ok());
        assert!(s.verify(&t, 1600 + LEEWAY_SECS).is_ok());
        assert_eq!(s.verify(&t, 1601 + LEEWAY_SECS), Err(TokenError::Expired));
        let other = s.sign(&claims(1000, "vault")).expect("signs");
        assert_eq!(s.verify(&other, 1000), Err(TokenError::Audience));
        let mut tampered = t.clone();
        tampered.insert(t.find('.').expect("dot") + 2, 'A');
        assert!(s.verify(&tampered, 1000).is_err());
        let payload = t.split('.').nth(1).expect("payload");
        let text = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("utf8");
        assert!(text.starts_with("{\"aud\":[\""), "{text}");
    }

    #[test]
    fn decode_checks_issuer_before_signature_and_times_in_go_jose_order() {
        let s = TokenSigner::generate().expect("key");
        let other = TokenSigner::generate().expect("key");
        let mut c = claims(1000, "scanfleet");
        assert_eq!(
            s.decode(&other.sign(&c).expect("signs")),
            Err(TokenError::Signature)
        );
        c.iss = "https://elsewhere".into();
        let foreign = other.sign(&c).expect("signs");
        assert_eq!(s.decode(&foreign), Err(TokenError::Issuer));
        let payload = foreign.split('.').nth(1).expect("payload");
        let unsigned = format!("{}.{payload}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#));
        assert_eq!(s.decode(&unsigned), Err(TokenError::Issuer));
        let c = claims(1000, "scanfleet");
        let ours = s.sign(&c).expect("signs");
        let payload = ours.split('.').nth(1).expect("payload");
        let unsigned = format!("{}.{payload}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#));
        assert_eq!(s.decode(&unsigned), Err(TokenError::Malformed));
        let decoded = s.decode(&ours).expect("decodes");
        assert_eq!(
            decoded.audience_overlap(&["x".into(), "scanfleet".into()]),
            ["scanfleet"]
        );
        assert_eq!(s.verify(&ours, 1000), Err(TokenError::Audience));
        assert_eq!(decoded.check_time(1000), Ok(()));
        assert_eq!(
            decoded.check_time(1000 - LEEWAY_SECS - 1),
            Err(TokenError::NotYetValid)
        );
        assert_eq!(
            decoded.check_time(1600 + LEEWAY_SECS + 1),
            Err(TokenError::Expired)
        );
        let mut future = claims(1000, "scanfleet");
        future.nbf = 0;
        assert_eq!(
            future.check_time(1000 - LEEWAY_SECS - 1),
            Err(TokenError::IssuedInTheFuture)
        );
    }
}
