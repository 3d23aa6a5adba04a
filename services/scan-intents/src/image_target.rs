//! An image in a registry, by digest: `oci://REGISTRY/REPOSITORY@sha256:DIGEST`.
//!
//! The one type and one rule for image targets everywhere (intents, the
//! CLI, the worker's puller), as [`crate::target::ContainerRef`] is for
//! running containers. The registry host and repository follow the
//! `distribution/reference` grammar owned by `scanfleet-registry-events`
//! (the grammar webhooks are checked with), so an image a push announced
//! is always an image that can be scanned. Only a digest is accepted, never
//! a tag: a scan result is a claim about exact content.

use std::fmt;

use scanfleet_registry_events::image_name::{check_host, check_repository};

use crate::image_digest::ImageDigest;

/// The URI scheme of image targets.
pub const IMAGE_SCHEME: &str = "oci://";
/// Longest accepted image URI: scheme, host, `/`, repository, `@`, digest.
pub const MAX_IMAGE_URI_LEN: usize = 6 + 255 + 1 + 255 + 1 + 71;

/// One image manifest (or index) in one repository of one registry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImageTarget {
    registry: String,
    repository: String,
    digest: ImageDigest,
}

/// Why an image target was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageTargetError {
    /// Over [`MAX_IMAGE_URI_LEN`].
    #[error("is {0} bytes, over the limit of {MAX_IMAGE_URI_LEN}")]
    TooLong(usize),
    /// Missing or wrong scheme.
    #[error("must start with \"oci://\"")]
    Scheme,
    /// No `/` after the registry, or no `@` before the digest.
    #[error("must have the form oci://REGISTRY/REPOSITORY@sha256:DIGEST")]
    Shape,
    /// A tag instead of (or besides) a digest.
    #[error("names a tag ({0:?}); scans are by digest only: use @sha256:…")]
    Tag(String),
    /// The registry host breaks the reference grammar.
    #[error("registry: {0}")]
    Registry(String),
    /// The repository breaks the reference grammar.
    #[error("repository: {0}")]
    Repository(String),
    /// The digest is not `sha256:<64 lowercase hex>`.
    #[error("digest: {0}")]
    Digest(String),
}

impl ImageTarget {
    /// An image target from its parts, each checked by the reference grammar.
    ///
    /// # Errors
    /// [`ImageTargetError`] naming the part at fault.
    pub fn new(registry: &str, repository: &str, digest: &str) -> Result<Self, ImageTargetError> {
        check_host(registry).map_err(ImageTargetError::Registry)?;
        check_repository(repository).map_err(ImageTargetError::Repository)?;
        let digest =
            ImageDigest::parse(digest).map_err(|e| ImageTargetError::Digest(e.to_string()))?;
        Ok(Self {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            digest,
        })
    }

    /// Parses `oci://REGISTRY/REPOSITORY@sha256:DIGEST`. Strict on purpose:
    /// no tag, query, fragment or percent-encoding, since no image a
    /// registry stores needs them.
    ///
    /// # Errors
    /// [`ImageTargetError`] naming the problem.
    pub fn parse_uri(uri: &str) -> Result<Self, ImageTargetError> {
        if uri.len() > MAX_IMAGE_URI_LEN {
            return Err(ImageTargetError::TooLong(uri.len()));
        }
        let rest = uri
            .strip_prefix(IMAGE_SCHEME)
            .ok_or(ImageTargetError::Scheme)?;
        let (name, digest) = rest
            .split_once('@')
            .ok_or_else(|| match rest.rsplit_once(':') {
                Some((before, tag)) if !tag.contains('/') && before.contains('/') => {
                    ImageTargetError::Tag(tag.to_owned())
                }
                _ => ImageTargetError::Shape,
            })?;
        let (registry, repository) = name.split_once('/').ok_or(ImageTargetError::Shape)?;
        if let Some((_, tag)) = repository.rsplit_once(':') {
            return Err(ImageTargetError::Tag(tag.to_owned()));
        }
        Self::new(registry, repository, digest)
    }

    /// The registry host, with its port when it has one.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path inside the registry.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The manifest (or index) digest.
    pub fn digest(&self) -> &ImageDigest {
        &self.digest
    }

    /// `REGISTRY/REPOSITORY`, the image's name without a digest (what an
    /// in-toto subject names).
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// `REGISTRY/REPOSITORY@sha256:…`, the reference a pod spec would use.
    pub fn reference(&self) -> String {
        format!("{}/{}@{}", self.registry, self.repository, self.digest)
    }
}

impl fmt::Display for ImageTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{IMAGE_SCHEME}{}", self.reference())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_table() {
        let d = format!("sha256:{}", "ab".repeat(32));
        let ok =
            ImageTarget::parse_uri(&format!("oci://registry.local:5000/shop/web@{d}")).unwrap();
        assert_eq!(ok.registry(), "registry.local:5000");
        assert_eq!(ok.repository(), "shop/web");
        assert_eq!(ok.digest().as_str(), d);
        assert_eq!(ok.name(), "registry.local:5000/shop/web");
        assert_eq!(
            ok.to_string(),
            format!("oci://registry.local:5000/shop/web@{d}")
        );
        assert_eq!(ImageTarget::parse_uri(&ok.to_string()).unwrap(), ok);

        let cases = [
            (format!("k8s://a/b@{d}"), "must start with \"oci://\""),
            (
                format!("oci://registry.local@{d}"),
                "must have the form oci://REGISTRY/REPOSITORY@sha256:DIGEST",
            ),
            (
                "oci://registry.local/shop/web:1.2".to_owned(),
                "names a tag (\"1.2\"); scans are by digest only: use @sha256:…",
            ),
            (
                format!("oci://registry.local/shop/web:1.2@{d}"),
                "names a tag (\"1.2\"); scans are by digest only: use @sha256:…",
            ),
            (
                "oci://registry.local/shop/web".to_owned(),
                "must have the form oci://REGISTRY/REPOSITORY@sha256:DIGEST",
            ),
            (
                format!("oci://reg_istry/shop@{d}"),
                "registry: registry host \"reg_istry\" is not a valid host name",
            ),
            (
                format!("oci://registry.local/Shop@{d}"),
                "repository: repository component 1 (\"Shop\"): must start and end with a \
                 lowercase letter or digit",
            ),
            (
                format!("oci://registry.local/shop/../etc@{d}"),
                "repository: repository component 2 (\"..\"): must start and end with a \
                 lowercase letter or digit",
            ),
            (
                "oci://registry.local/shop@sha256:abc".to_owned(),
                "digest: not a sha256 digest (expected \"sha256:\" followed by 64 lowercase hex \
                 characters)",
            ),
        ];
        for (uri, want) in cases {
            assert_eq!(
                ImageTarget::parse_uri(&uri).unwrap_err().to_string(),
                want,
                "{uri:?}"
            );
        }
        let long = format!("oci://r/{}@{d}", "a".repeat(600));
        assert!(matches!(
            ImageTarget::parse_uri(&long),
            Err(ImageTargetError::TooLong(_))
        ));
    }
}
