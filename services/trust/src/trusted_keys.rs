//! Verification of envelopes against a set of trusted public keys.
//!
//! The set holds several keys so that signing keys can rotate: a collector
//! trusts the old and the new key for an overlap period. An envelope is valid
//! when at least one signature from a trusted key verifies; signatures by keys
//! the verifier does not know are ignored, because a foreign co-signature must
//! not make a good envelope bad.

use std::collections::BTreeMap;

use crate::envelope::{Envelope, EnvelopeError};
use crate::keys::{KeyId, PublicKey};

/// Why an envelope was rejected. Variants are distinct so callers can count
/// and route them (e.g. quarantine reasons) without parsing messages.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    /// The bytes are not a DSSE envelope at all.
    #[error("malformed envelope: {0}")]
    Malformed(#[from] EnvelopeError),
    /// The envelope carries no signature.
    #[error("envelope has no signatures")]
    NoSignatures,
    /// No signature names a trusted key.
    #[error("no signature is by a trusted key (envelope key ids: {})", display_ids(.key_ids))]
    UnknownKeyId {
        /// The key ids the envelope names.
        key_ids: Vec<String>,
    },
    /// A trusted key's signature does not match the content.
    #[error("signature by trusted key {key_id} does not match the payload")]
    BadSignature {
        /// The trusted key whose signature failed.
        key_id: String,
    },
    /// Authentic, but of another payload type than the caller expects.
    #[error("payload type is {found:?}, expected {expected:?}")]
    PayloadTypeMismatch {
        /// What the caller wanted.
        expected: String,
        /// What the envelope says.
        found: String,
    },
}

fn display_ids(ids: &[String]) -> String {
    if ids.is_empty() {
        return "none".into();
    }
    ids.iter()
        .map(|id| if id.is_empty() { "\"\"" } else { id.as_str() })
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a successful verification proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The trusted key whose signature verified.
    pub key_id: KeyId,
    /// The authenticated payload type.
    pub payload_type: String,
    /// The authenticated payload.
    pub payload: Vec<u8>,
}

/// The keys a verifier accepts, indexed by key id.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    keys: BTreeMap<KeyId, PublicKey>,
}

impl TrustedKeys {
    /// An empty set; every envelope is rejected until keys are added.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts one more key. Adding the same key twice is harmless.
    pub fn insert(&mut self, key: PublicKey) {
        self.keys.insert(key.key_id().clone(), key);
    }

    /// How many keys are trusted.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is trusted.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Parses and verifies wire bytes in one step.
    ///
    /// # Errors
    /// See [`TrustedKeys::verify`]; also [`VerifyError::Malformed`].
    pub fn verify_json(
        &self,
        bytes: &[u8],
        limit: usize,
        expected_payload_type: Option<&str>,
    ) -> Result<Verified, VerifyError> {
        let envelope = Envelope::from_json_limited(bytes, limit)?;
        self.verify(&envelope, expected_payload_type)
    }

    /// Verifies an envelope; when `expected_payload_type` is given, an
    /// authentic envelope of another type is still rejected.
    ///
    /// # Errors
    /// [`VerifyError`] saying why the envelope is not acceptable.
    pub fn verify(
        &self,
        envelope: &Envelope,
        expected_payload_type: Option<&str>,
    ) -> Result<Verified, VerifyError> {
        if envelope.signatures.is_empty() {
            return Err(VerifyError::NoSignatures);
        }
        let pae = envelope.pae();
        let mut failed: Option<String> = None;
        for signature in &envelope.signatures {
            let Some(key) = self.lookup(&signature.keyid) else {
                continue;
            };
            if key.verify(&pae, &signature.sig) {
                if let Some(expected) = expected_payload_type
                    && expected != envelope.payload_type
                {
                    return Err(VerifyError::PayloadTypeMismatch {
                        expected: expected.to_owned(),
                        found: envelope.payload_type.clone(),
                    });
                }
                return Ok(Verified {
                    key_id: key.key_id().clone(),
                    payload_type: envelope.payload_type.clone(),
                    payload: envelope.payload.clone(),
                });
            }
            failed.get_or_insert_with(|| key.key_id().to_string());
        }
        match failed {
            Some(key_id) => Err(VerifyError::BadSignature { key_id }),
            None => Err(VerifyError::UnknownKeyId {
                key_ids: envelope
                    .signatures
                    .iter()
                    .map(|s| s.keyid.clone())
                    .collect(),
            }),
        }
    }

    fn lookup(&self, keyid: &str) -> Option<&PublicKey> {
        // Key ids are compared case-insensitively: hex is hex.
        self.keys
            .iter()
            .find(|(id, _)| id.as_str().eq_ignore_ascii_case(keyid))
            .map(|(_, key)| key)
    }
}

impl FromIterator<PublicKey> for TrustedKeys {
    fn from_iter<T: IntoIterator<Item = PublicKey>>(iter: T) -> Self {
        let mut set = Self::new();
        for key in iter {
            set.insert(key);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SigningKey;

    const TYPE: &str = "application/vnd.in-toto+json";

    fn trusted(keys: &[&SigningKey]) -> TrustedKeys {
        keys.iter().map(|k| k.public_key().clone()).collect()
    }

    #[test]
    fn valid_envelope_verifies_and_names_the_key() {
        let key = SigningKey::generate();
        let env = Envelope::sign(TYPE, b"{}", &key);
        let ok = trusted(&[&key]).verify(&env, Some(TYPE)).unwrap();
        assert_eq!(ok.key_id, *key.key_id());
        assert_eq!(ok.payload, b"{}");
    }

    #[test]
    fn rotation_accepts_either_trusted_key() {
        let old = SigningKey::generate();
        let new = SigningKey::generate();
        let keys = trusted(&[&old, &new]);
        assert!(keys.verify(&Envelope::sign(TYPE, b"a", &old), None).is_ok());
        assert!(keys.verify(&Envelope::sign(TYPE, b"b", &new), None).is_ok());
    }

    #[test]
    fn every_changed_payload_byte_breaks_the_signature() {
        let key = SigningKey::generate();
        let env = Envelope::sign(TYPE, b"{\"a\":1}", &key);
        for i in 0..env.payload.len() {
            let mut tampered = env.clone();
            tampered.payload[i] ^= 0x01;
            assert_eq!(
                trusted(&[&key]).verify(&tampered, None),
                Err(VerifyError::BadSignature {
                    key_id: key.key_id().to_string()
                }),
                "byte {i}"
            );
        }
    }

    #[test]
    fn changed_payload_type_breaks_the_signature() {
        let key = SigningKey::generate();
        let mut env = Envelope::sign(TYPE, b"{}", &key);
        env.payload_type = "text/plain".into();
        assert!(matches!(
            trusted(&[&key]).verify(&env, None),
            Err(VerifyError::BadSignature { .. })
        ));
    }

    #[test]
    fn typed_errors_for_each_rejection() {
        let key = SigningKey::generate();
        let stranger = SigningKey::generate();
        let keys = trusted(&[&key]);

        let mut unsigned = Envelope::sign(TYPE, b"{}", &key);
        unsigned.signatures.clear();
        assert_eq!(keys.verify(&unsigned, None), Err(VerifyError::NoSignatures));

        let foreign = Envelope::sign(TYPE, b"{}", &stranger);
        assert_eq!(
            keys.verify(&foreign, None),
            Err(VerifyError::UnknownKeyId {
                key_ids: vec![stranger.key_id().to_string()]
            })
        );

        let env = Envelope::sign("text/plain", b"{}", &key);
        assert_eq!(
            keys.verify(&env, Some(TYPE)),
            Err(VerifyError::PayloadTypeMismatch {
                expected: TYPE.into(),
                found: "text/plain".into()
            })
        );

        assert!(matches!(
            keys.verify_json(b"[]", 1024, None),
            Err(VerifyError::Malformed(_))
        ));
    }

    #[test]
    fn signature_under_a_trusted_id_by_another_key_is_bad() {
        let key = SigningKey::generate();
        let forger = SigningKey::generate();
        let mut env = Envelope::sign(TYPE, b"{}", &forger);
        env.signatures[0].keyid = key.key_id().to_string();
        assert!(matches!(
            trusted(&[&key]).verify(&env, None),
            Err(VerifyError::BadSignature { .. })
        ));
    }

    #[test]
    fn a_foreign_co_signature_does_not_spoil_a_good_one() {
        let key = SigningKey::generate();
        let stranger = SigningKey::generate();
        let mut env = Envelope::sign(TYPE, b"{}", &stranger);
        env.add_signature(&key);
        assert!(trusted(&[&key]).verify(&env, Some(TYPE)).is_ok());
    }
}
