//! Image identity as far as dedupe and routing care.

use std::fmt;

/// A validated `sha256:<64 lowercase hex>` image (manifest) digest.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImageDigest(String);

/// Not a `sha256:<64 lowercase hex>` digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a sha256 digest (expected \"sha256:\" followed by 64 lowercase hex characters)")]
pub struct DigestError;

impl ImageDigest {
    /// Validates `s`.
    pub fn parse(s: &str) -> Result<Self, DigestError> {
        let hex = s.strip_prefix("sha256:").ok_or(DigestError)?;
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(DigestError);
        }
        Ok(Self(s.to_owned()))
    }

    /// The manifest digest in a container status `imageID`, as kubelets
    /// report it: `repo@sha256:…`, optionally behind a runtime scheme
    /// (`docker-pullable://`). Only the part after `@` is a manifest digest;
    /// a bare `sha256:…` (Docker's `docker://sha256:…`) is the image
    /// *config* id, which no registry push names, so it is refused rather
    /// than mistaken for one.
    pub fn from_image_id(image_id: &str) -> Option<Self> {
        let (_, digest) = image_id.rsplit_once('@')?;
        Self::parse(digest).ok()
    }

    /// The full `sha256:…` form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ImageDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What intake knows about the image a container runs. A pod that has not
/// started yet has no resolved digest in its status, only the reference
/// from its spec; dedupe must still work for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ImageIdentity {
    /// The resolved manifest digest (from pod status or a registry push).
    Digest(ImageDigest),
    /// The reference as written in the pod spec, e.g. `shop/web:1.2`.
    Reference(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_table() {
        let good = format!("sha256:{}", "0f".repeat(32));
        assert_eq!(ImageDigest::parse(&good).unwrap().as_str(), good);
        for bad in [
            String::new(),
            "0f".repeat(32),
            format!("sha256:{}", "0F".repeat(32)),
            format!("sha256:{}", "0f".repeat(31)),
            format!("sha512:{}", "0f".repeat(32)),
            format!("sha256:{}.", "0f".repeat(32)),
        ] {
            assert_eq!(ImageDigest::parse(&bad), Err(DigestError), "{bad:?}");
        }
    }

    #[test]
    fn image_id_table() {
        let d = format!("sha256:{}", "ab".repeat(32));
        let cases = [
            (format!("kubesim.local/shell@{d}"), Some(d.clone())),
            (
                format!("docker-pullable://registry:5000/shop/web@{d}"),
                Some(d.clone()),
            ),
            (format!("ghcr.io/o/r:1.0@{d}"), Some(d.clone())),
            (d.clone(), None),
            (format!("docker://{d}"), None),
            ("kubesim.local/shell@sha256:short".to_owned(), None),
            (String::new(), None),
        ];
        for (id, want) in cases {
            assert_eq!(
                ImageDigest::from_image_id(&id).map(|d| d.as_str().to_owned()),
                want,
                "{id:?}"
            );
        }
    }
}
