//! Ed25519 signing keys and their public halves, in the PEM forms every
//! verifier understands (PKCS#8 for private keys, SubjectPublicKeyInfo for
//! public keys).
//!
//! Key ids are the lowercase hex SHA-256 of the raw 32-byte public key. That
//! choice lets a third party compute the id from the public key alone, with no
//! canonical-JSON rules (securesystemslib matches signatures by key id, so the
//! id must be reproducible outside scanfleet).

use std::fmt;

use ed25519_dalek::pkcs8::spki::SubjectPublicKeyInfoRef;
use ed25519_dalek::pkcs8::spki::der::pem::{LineEnding, decode_vec};
use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey, KeypairBytes, PrivateKeyInfo};
use ed25519_dalek::{Signature, Signer};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// The Ed25519 algorithm identifier (RFC 8410).
const ED25519_OID: &str = "1.3.101.112";

/// Why a key could not be loaded. Every variant says what was expected so the
/// operator can tell a truncated file from a key of the wrong kind.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// The text is not a complete PEM block (truncated, bad base64, no armor).
    #[error("not a valid PEM block: {0}")]
    Pem(String),
    /// A PEM block of another kind, e.g. a public key where a private key is needed.
    #[error("PEM block is labelled {found:?}, expected {expected:?}")]
    WrongPemLabel {
        /// The label the caller needs.
        expected: &'static str,
        /// The label the block carries.
        found: String,
    },
    /// A well-formed key for an algorithm other than Ed25519.
    #[error("key algorithm is {found} ({name}), expected Ed25519 ({ED25519_OID})")]
    WrongKeyType {
        /// The algorithm OID in the key.
        found: String,
        /// A readable name for that OID, when known.
        name: &'static str,
    },
    /// The DER structure inside the PEM block is malformed.
    #[error("malformed key structure: {0}")]
    Malformed(String),
}

/// A lowercase hex SHA-256 of a raw Ed25519 public key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

impl KeyId {
    /// Computes the id of a raw 32-byte public key.
    pub fn of_raw_public_key(raw: &[u8; 32]) -> Self {
        Self(hex::encode(Sha256::digest(raw)))
    }

    /// The id as it appears in envelopes.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A private signing key. Its bytes are wiped on drop and never printed.
pub struct SigningKey {
    inner: ed25519_dalek::SigningKey,
    public: PublicKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("key_id", &self.public.key_id)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Self {
        Self::from_dalek(ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng))
    }

    fn from_dalek(inner: ed25519_dalek::SigningKey) -> Self {
        let public = PublicKey::from_dalek(inner.verifying_key());
        Self { inner, public }
    }

    /// Loads a PKCS#8 `PRIVATE KEY` PEM block.
    ///
    /// # Errors
    /// [`KeyError`] naming what is wrong: not PEM, an encrypted or
    /// non-PKCS#8 block, another algorithm, or a malformed structure.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, KeyError> {
        let der = decode_pem(pem, "PRIVATE KEY")?;
        let info = PrivateKeyInfo::try_from(der.as_slice())
            .map_err(|e| KeyError::Malformed(e.to_string()))?;
        check_algorithm(&info.algorithm.oid.to_string())?;
        let inner = ed25519_dalek::SigningKey::try_from(info)
            .map_err(|e| KeyError::Malformed(e.to_string()))?;
        Ok(Self::from_dalek(inner))
    }

    /// The PKCS#8 PEM text; zeroized when dropped.
    ///
    /// This is the RFC 8410 v1 form (no embedded public key). The v2 form
    /// that ed25519-dalek writes by default is rejected by OpenSSL 3 and by
    /// Python's `cryptography`, so keys in it could not be used by the
    /// verifiers we promise interoperability with.
    pub fn to_pkcs8_pem(&self) -> Zeroizing<String> {
        let v1 = KeypairBytes {
            secret_key: self.inner.to_bytes(),
            public_key: None,
        };
        let pem = v1
            .to_pkcs8_pem(LineEnding::LF)
            .expect("encoding a valid Ed25519 key as PKCS#8 cannot fail");
        Zeroizing::new(pem.as_str().to_owned())
    }

    /// The matching public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The id of the matching public key.
    pub fn key_id(&self) -> &KeyId {
        &self.public.key_id
    }

    /// Signs a message (for DSSE, the PAE bytes).
    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.inner.sign(message).to_bytes()
    }
}

/// A public verification key together with its key id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    inner: ed25519_dalek::VerifyingKey,
    key_id: KeyId,
}

impl PublicKey {
    fn from_dalek(inner: ed25519_dalek::VerifyingKey) -> Self {
        let key_id = KeyId::of_raw_public_key(inner.as_bytes());
        Self { inner, key_id }
    }

    /// Loads a SubjectPublicKeyInfo `PUBLIC KEY` PEM block.
    ///
    /// # Errors
    /// [`KeyError`] naming what is wrong, e.g. a private key given by mistake.
    pub fn from_spki_pem(pem: &str) -> Result<Self, KeyError> {
        let der = decode_pem(pem, "PUBLIC KEY")?;
        let info = SubjectPublicKeyInfoRef::try_from(der.as_slice())
            .map_err(|e| KeyError::Malformed(e.to_string()))?;
        check_algorithm(&info.algorithm.oid.to_string())?;
        let inner = ed25519_dalek::VerifyingKey::try_from(info)
            .map_err(|e| KeyError::Malformed(e.to_string()))?;
        Ok(Self::from_dalek(inner))
    }

    /// Builds a key from its raw 32 bytes (the form securesystemslib calls
    /// `keyval.public`).
    ///
    /// # Errors
    /// [`KeyError::Malformed`] when the bytes are not a valid curve point.
    pub fn from_raw(raw: &[u8; 32]) -> Result<Self, KeyError> {
        let inner = ed25519_dalek::VerifyingKey::from_bytes(raw)
            .map_err(|e| KeyError::Malformed(e.to_string()))?;
        Ok(Self::from_dalek(inner))
    }

    /// The SubjectPublicKeyInfo PEM text.
    pub fn to_spki_pem(&self) -> String {
        self.inner
            .to_public_key_pem(LineEnding::LF)
            .expect("encoding a valid Ed25519 public key cannot fail")
    }

    /// The raw 32-byte key.
    pub fn raw(&self) -> &[u8; 32] {
        self.inner.as_bytes()
    }

    /// The key id used in envelope signatures.
    pub fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    /// Checks a signature with the strict rules (no malleable signatures, no
    /// small-order keys), so one message has exactly one valid encoding.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(bytes) = <[u8; 64]>::try_from(signature) else {
            return false;
        };
        self.inner
            .verify_strict(message, &Signature::from_bytes(&bytes))
            .is_ok()
    }
}

fn decode_pem(pem: &str, expected: &'static str) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let trimmed = pem.trim();
    if !trimmed.starts_with("-----BEGIN ") {
        return Err(KeyError::Pem(
            "no \"-----BEGIN\" line; is this a PEM file?".into(),
        ));
    }
    let (label, der) = decode_vec(trimmed.as_bytes()).map_err(|e| KeyError::Pem(e.to_string()))?;
    let der = Zeroizing::new(der);
    if label != expected {
        return Err(KeyError::WrongPemLabel {
            expected,
            found: label.to_owned(),
        });
    }
    Ok(der)
}

fn check_algorithm(oid: &str) -> Result<(), KeyError> {
    if oid == ED25519_OID {
        return Ok(());
    }
    let name = match oid {
        "1.2.840.113549.1.1.1" => "RSA",
        "1.2.840.10045.2.1" => "EC",
        "1.3.101.110" => "X25519",
        "1.3.101.111" => "X448",
        "1.3.101.113" => "Ed448",
        _ => "unknown",
    };
    Err(KeyError::WrongKeyType {
        found: oid.to_owned(),
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_key_round_trips_through_pem() {
        let key = SigningKey::generate();
        let pem = key.to_pkcs8_pem();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        // RFC 8410 v1: a 48-byte DER structure, base64 in one 64-char line.
        assert_eq!(pem.lines().count(), 3, "{}", pem.as_str());
        let loaded = SigningKey::from_pkcs8_pem(&pem).unwrap();
        assert_eq!(loaded.key_id(), key.key_id());
    }

    #[test]
    fn public_key_round_trips_and_id_is_sha256_of_raw_key() {
        let key = SigningKey::generate();
        let pem = key.public_key().to_spki_pem();
        let loaded = PublicKey::from_spki_pem(&pem).unwrap();
        assert_eq!(loaded, *key.public_key());
        let expected = hex::encode(Sha256::digest(loaded.raw()));
        assert_eq!(loaded.key_id().as_str(), expected);
        assert_eq!(expected.len(), 64);
    }

    #[test]
    fn truncated_pem_is_a_pem_error() {
        let pem = SigningKey::generate().to_pkcs8_pem();
        let cut = &pem[..pem.len() / 2];
        assert!(matches!(
            SigningKey::from_pkcs8_pem(cut),
            Err(KeyError::Pem(_))
        ));
        assert!(matches!(
            SigningKey::from_pkcs8_pem("just text"),
            Err(KeyError::Pem(_))
        ));
    }

    #[test]
    fn public_key_given_as_private_key_names_the_labels() {
        let key = SigningKey::generate();
        let err = SigningKey::from_pkcs8_pem(&key.public_key().to_spki_pem()).unwrap_err();
        assert_eq!(
            err,
            KeyError::WrongPemLabel {
                expected: "PRIVATE KEY",
                found: "PUBLIC KEY".into()
            }
        );
        let err = PublicKey::from_spki_pem(&key.to_pkcs8_pem()).unwrap_err();
        assert!(err.to_string().contains("expected \"PUBLIC KEY\""), "{err}");
    }

    #[test]
    fn x25519_key_is_a_wrong_key_type() {
        // An X25519 PKCS#8 key (RFC 8410 test vector shape): same structure, other OID.
        let pem = "-----BEGIN PRIVATE KEY-----\n\
                   MC4CAQAwBQYDK2VuBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n\
                   -----END PRIVATE KEY-----\n";
        let err = SigningKey::from_pkcs8_pem(pem).unwrap_err();
        assert_eq!(
            err,
            KeyError::WrongKeyType {
                found: "1.3.101.110".into(),
                name: "X25519"
            }
        );
    }

    #[test]
    fn debug_output_never_contains_key_material() {
        let key = SigningKey::generate();
        let debug = format!("{key:?}");
        assert!(debug.contains(key.key_id().as_str()));
        let pem = key.to_pkcs8_pem();
        let body: String = pem.lines().nth(1).unwrap().chars().take(20).collect();
        assert!(!debug.contains(&body));
    }
}
