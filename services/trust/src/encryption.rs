//! Optional age (X25519) encryption of envelopes to the collectors' recipients.
//!
//! Results can carry findings an attacker would love (which pods run as root,
//! which secrets leak into environments), so a fleet may encrypt envelopes on
//! the bus. Encryption wraps the *signed* envelope: decrypting yields the exact
//! bytes that were signed, and verification stays independent of transport.
//! The age format is the one the `age` CLI reads and writes, binary or armored.

use std::io::{Read, Write};
use std::str::FromStr;

use age::armor::{ArmoredReader, ArmoredWriter, Format};
use age::secrecy::ExposeSecret;

/// Why encryption or decryption failed.
#[derive(Debug, thiserror::Error)]
pub enum EncryptionError {
    /// A recipient string that is not an `age1…` X25519 public key.
    #[error("recipient {index}: not an age X25519 recipient (age1…): {reason}")]
    BadRecipient {
        /// Position in the recipient list (0-based).
        index: usize,
        /// The parser's explanation.
        reason: String,
    },
    /// No recipients were given.
    #[error("at least one recipient is needed")]
    NoRecipients,
    /// A line of an identity file that is not an `AGE-SECRET-KEY-1…` key.
    #[error("identity file line {line}: not an age X25519 identity (AGE-SECRET-KEY-1…)")]
    BadIdentity {
        /// 1-based line number.
        line: usize,
    },
    /// The identity file holds no identity.
    #[error("identity file contains no AGE-SECRET-KEY-1… line")]
    NoIdentities,
    /// The ciphertext is not an age file, is damaged, or is for other keys.
    #[error("cannot decrypt: {0}")]
    Decrypt(String),
    /// Decrypted content is over the caller's limit.
    #[error("decrypted content exceeds the {limit}-byte limit")]
    TooLarge {
        /// The limit in force.
        limit: usize,
    },
    /// Internal failure of the age library while encrypting.
    #[error("cannot encrypt: {0}")]
    Encrypt(String),
}

/// One X25519 recipient (`age1…`).
#[derive(Clone)]
pub struct AgeRecipient(age::x25519::Recipient);

impl AgeRecipient {
    /// Parses an `age1…` string; `index` is only used in the error.
    ///
    /// # Errors
    /// [`EncryptionError::BadRecipient`].
    pub fn parse(text: &str, index: usize) -> Result<Self, EncryptionError> {
        age::x25519::Recipient::from_str(text.trim())
            .map(Self)
            .map_err(|reason| EncryptionError::BadRecipient {
                index,
                reason: reason.to_string(),
            })
    }
}

impl std::fmt::Display for AgeRecipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The secret identities from an age identity file. Never printed.
pub struct AgeIdentities(Vec<age::x25519::Identity>);

impl std::fmt::Debug for AgeIdentities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AgeIdentities({} keys)", self.0.len())
    }
}

impl AgeIdentities {
    /// A fresh identity, e.g. for a new collector.
    pub fn generate() -> Self {
        Self(vec![age::x25519::Identity::generate()])
    }

    /// Parses the `age-keygen` file format: `#` comments, blank lines and one
    /// `AGE-SECRET-KEY-1…` per line.
    ///
    /// # Errors
    /// [`EncryptionError::BadIdentity`] naming the line, or
    /// [`EncryptionError::NoIdentities`].
    pub fn parse(text: &str) -> Result<Self, EncryptionError> {
        let mut identities = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let identity = age::x25519::Identity::from_str(line)
                .map_err(|_| EncryptionError::BadIdentity { line: i + 1 })?;
            identities.push(identity);
        }
        if identities.is_empty() {
            return Err(EncryptionError::NoIdentities);
        }
        Ok(Self(identities))
    }

    /// The public recipients matching these identities.
    pub fn recipients(&self) -> Vec<AgeRecipient> {
        self.0.iter().map(|i| AgeRecipient(i.to_public())).collect()
    }

    /// The identity file text (`age-keygen` format); secret.
    pub fn to_file_text(&self) -> zeroize::Zeroizing<String> {
        let mut out = String::new();
        for identity in &self.0 {
            out.push_str(&format!("# public key: {}\n", identity.to_public()));
            out.push_str(identity.to_string().expose_secret());
            out.push('\n');
        }
        zeroize::Zeroizing::new(out)
    }
}

/// Encrypts to every recipient; any one of them can decrypt.
///
/// # Errors
/// [`EncryptionError::NoRecipients`] or an internal age failure.
pub fn encrypt(
    plaintext: &[u8],
    recipients: &[AgeRecipient],
    armor: bool,
) -> Result<Vec<u8>, EncryptionError> {
    if recipients.is_empty() {
        return Err(EncryptionError::NoRecipients);
    }
    let encryptor =
        age::Encryptor::with_recipients(recipients.iter().map(|r| &r.0 as &dyn age::Recipient))
            .map_err(|e| EncryptionError::Encrypt(e.to_string()))?;
    let format = if armor {
        Format::AsciiArmor
    } else {
        Format::Binary
    };
    let encrypt = || -> std::io::Result<Vec<u8>> {
        let armored = ArmoredWriter::wrap_output(Vec::new(), format)?;
        let mut writer = encryptor.wrap_output(armored)?;
        writer.write_all(plaintext)?;
        writer.finish()?.finish()
    };
    encrypt().map_err(|e| EncryptionError::Encrypt(e.to_string()))
}

/// Decrypts binary or armored age input, refusing plaintext over `limit` bytes.
///
/// # Errors
/// [`EncryptionError::Decrypt`] for damaged input or foreign keys,
/// [`EncryptionError::TooLarge`] over the limit.
pub fn decrypt(
    ciphertext: &[u8],
    identities: &AgeIdentities,
    limit: usize,
) -> Result<Vec<u8>, EncryptionError> {
    let reader = ArmoredReader::new(ciphertext);
    let decryptor =
        age::Decryptor::new(reader).map_err(|e| EncryptionError::Decrypt(e.to_string()))?;
    let mut stream = decryptor
        .decrypt(identities.0.iter().map(|i| i as &dyn age::Identity))
        .map_err(|e| EncryptionError::Decrypt(e.to_string()))?;
    let mut out = Vec::new();
    let read = (&mut stream)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| EncryptionError::Decrypt(e.to_string()))?;
    if read > limit {
        return Err(EncryptionError::TooLarge { limit });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_binary_and_armored_to_several_recipients() {
        let a = AgeIdentities::generate();
        let b = AgeIdentities::generate();
        let recipients = [a.recipients(), b.recipients()].concat();
        for armor in [false, true] {
            let ct = encrypt(b"secret findings", &recipients, armor).unwrap();
            assert_eq!(ct.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----"), armor);
            assert_eq!(decrypt(&ct, &a, 1024).unwrap(), b"secret findings");
            assert_eq!(decrypt(&ct, &b, 1024).unwrap(), b"secret findings");
        }
    }

    #[test]
    fn wrong_identity_and_damage_are_errors() {
        let a = AgeIdentities::generate();
        let other = AgeIdentities::generate();
        let mut ct = encrypt(b"x", &a.recipients(), false).unwrap();
        assert!(matches!(
            decrypt(&ct, &other, 1024),
            Err(EncryptionError::Decrypt(_))
        ));
        let last = ct.len() - 1;
        ct[last] ^= 1;
        assert!(matches!(
            decrypt(&ct, &a, 1024),
            Err(EncryptionError::Decrypt(_))
        ));
        assert!(matches!(
            decrypt(b"not age", &a, 1024),
            Err(EncryptionError::Decrypt(_))
        ));
    }

    #[test]
    fn plaintext_over_the_limit_is_refused() {
        let a = AgeIdentities::generate();
        let ct = encrypt(&[7u8; 100], &a.recipients(), false).unwrap();
        assert!(matches!(
            decrypt(&ct, &a, 99),
            Err(EncryptionError::TooLarge { limit: 99 })
        ));
        assert_eq!(decrypt(&ct, &a, 100).unwrap().len(), 100);
    }

    #[test]
    fn identity_file_parsing_names_the_bad_line() {
        let a = AgeIdentities::generate();
        let text = a.to_file_text();
        assert_eq!(AgeIdentities::parse(&text).unwrap().recipients().len(), 1);
        let bad = format!("# comment\n\n{}\nAGE-SECRET-KEY-1BOGUS\n", text.trim());
        assert!(matches!(
            AgeIdentities::parse(&bad),
            Err(EncryptionError::BadIdentity { line: 5 })
        ));
        assert!(matches!(
            AgeIdentities::parse("# only a comment\n"),
            Err(EncryptionError::NoIdentities)
        ));
        assert!(matches!(
            AgeRecipient::parse("age1nope", 3),
            Err(EncryptionError::BadRecipient { index: 3, .. })
        ));
    }
}
