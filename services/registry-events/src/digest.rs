//! The pushed manifest's content digest.

use std::fmt;

/// A validated `sha256:<64 lowercase hex>` manifest digest.
///
/// Only sha256 is accepted: it is what every registry in scope emits, and a
/// digest that reaches a NATS subject or a dedupe key must be a single safe
/// token, which this form guarantees.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ManifestDigest(String);

/// Why a string is not a [`ManifestDigest`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// The algorithm prefix is missing or is not `sha256:`.
    #[error("not a sha256 digest (expected \"sha256:\" followed by 64 hex characters)")]
    NotSha256,
    /// The hex part has the wrong length.
    #[error("sha256 digest has {0} hex characters, expected 64")]
    WrongLength(usize),
    /// The hex part holds something other than lowercase hex.
    #[error("sha256 digest holds a character that is not lowercase hex")]
    NotLowercaseHex,
}

impl ManifestDigest {
    /// Validates `s`; the OCI spec makes the encoded part lowercase, so
    /// uppercase hex is refused rather than silently normalised into a
    /// different string than the registry stores.
    pub fn parse(s: &str) -> Result<Self, DigestError> {
        let hex = s.strip_prefix("sha256:").ok_or(DigestError::NotSha256)?;
        if hex.len() != 64 {
            return Err(DigestError::WrongLength(hex.len()));
        }
        if !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(DigestError::NotLowercaseHex);
        }
        Ok(Self(s.to_owned()))
    }

    /// The full `sha256:…` form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 64 hex characters without the algorithm prefix.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }
}

impl fmt::Display for ManifestDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_validation_table() {
        let good = format!("sha256:{}", "ab".repeat(32));
        let cases: Vec<(String, Result<(), DigestError>)> = vec![
            (good.clone(), Ok(())),
            (
                format!("sha512:{}", "ab".repeat(32)),
                Err(DigestError::NotSha256),
            ),
            ("ab".repeat(32), Err(DigestError::NotSha256)),
            ("sha256:abc".into(), Err(DigestError::WrongLength(3))),
            (
                format!("sha256:{}", "AB".repeat(32)),
                Err(DigestError::NotLowercaseHex),
            ),
            (
                format!("sha256:{}g", "a".repeat(63)),
                Err(DigestError::NotLowercaseHex),
            ),
            ("".into(), Err(DigestError::NotSha256)),
        ];
        for (input, want) in cases {
            assert_eq!(
                ManifestDigest::parse(&input).map(|_| ()),
                want,
                "input {input:?}"
            );
        }
        let d = ManifestDigest::parse(&good).unwrap();
        assert_eq!(d.hex(), "ab".repeat(32));
        assert_eq!(d.to_string(), good);
    }
}
