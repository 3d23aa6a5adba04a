//! Image manifests and indexes (OCI and Docker schema 2), parsed from
//! untrusted bytes into the few facts a pull needs: which manifest is this
//! platform's, which config, which layers in which compression.
//!
//! No IO. The caller verifies that the bytes match the digest they were
//! asked for *before* parsing, so every descriptor here is content-addressed
//! from the image digest down.

use scanfleet_scan_intents::ImageDigest;
use serde::Deserialize;

/// Longest manifest or index accepted (Distribution itself caps at 4 MiB).
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;
/// Longest image config accepted.
pub const MAX_CONFIG_BYTES: u64 = 8 << 20;

/// The `Accept` header for manifest requests: every type [`parse`] reads.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain tar.
    None,
    /// gzip.
    Gzip,
}

/// A content-addressed blob reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// Its digest.
    pub digest: ImageDigest,
    /// Its exact size in bytes.
    pub size: u64,
}

/// A layer: its blob and how to read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// The blob.
    pub blob: Blob,
    /// Its compression.
    pub compression: Compression,
}

/// The platform to pick from an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`…
    pub architecture: String,
}

impl Default for Platform {
    fn default() -> Self {
        Self {
            os: "linux".into(),
            architecture: match std::env::consts::ARCH {
                "x86_64" => "amd64",
                "aarch64" => "arm64",
                other => other,
            }
            .into(),
        }
    }
}

/// A parsed manifest or index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    /// An index: one manifest per platform.
    Index(Vec<(Blob, Option<Platform>)>),
    /// An image manifest.
    Image {
        /// The config blob.
        config: Blob,
        /// The layers, lowest first.
        layers: Vec<Layer>,
    },
}

/// Why a manifest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// Over [`MAX_MANIFEST_BYTES`].
    #[error("is {0} bytes, over the limit of {MAX_MANIFEST_BYTES}")]
    TooBig(usize),
    /// Not JSON of the expected shape.
    #[error("is not a valid manifest: {0}")]
    Json(String),
    /// A media type this scanner does not read.
    #[error("has unsupported media type {0:?}")]
    MediaType(String),
    /// A layer media type this scanner does not read.
    #[error("layer {0} has unsupported media type {1:?} (tar and tar+gzip are read)")]
    LayerType(usize, String),
    /// A descriptor digest that is not `sha256:<64 hex>`.
    #[error("{0} has an invalid digest {1:?}")]
    Digest(String, String),
    /// No manifest for the platform.
    #[error("index has no manifest for {os}/{architecture}")]
    NoPlatform {
        /// Wanted OS.
        os: String,
        /// Wanted architecture.
        architecture: String,
    },
    /// An index inside an index.
    #[error("index points at another index; nested indexes are not followed")]
    Nested,
    /// Too many layers.
    #[error("has {0} layers, over the limit of {1}")]
    TooManyLayers(usize, usize),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default)]
    platform: Option<RawPlatform>,
}

#[derive(Deserialize)]
struct RawPlatform {
    os: String,
    architecture: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    #[serde(default)]
    media_type: String,
    #[serde(default)]
    manifests: Option<Vec<RawDescriptor>>,
    #[serde(default)]
    config: Option<RawDescriptor>,
    #[serde(default)]
    layers: Option<Vec<RawDescriptor>>,
}

fn blob(d: &RawDescriptor, what: &str) -> Result<Blob, ManifestError> {
    let digest = ImageDigest::parse(&d.digest)
        .map_err(|_| ManifestError::Digest(what.into(), d.digest.clone()))?;
    Ok(Blob {
        digest,
        size: d.size,
    })
}

/// Parses `bytes`, served with `content_type` (may be empty: the
/// document's own `mediaType` then decides, as for an OCI layout).
pub fn parse(
    bytes: &[u8],
    content_type: &str,
    max_layers: usize,
) -> Result<Manifest, ManifestError> {
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(ManifestError::TooBig(bytes.len()));
    }
    let raw: RawManifest =
        serde_json::from_slice(bytes).map_err(|e| ManifestError::Json(e.to_string()))?;
    let media = match content_type.split(';').next().unwrap_or("").trim() {
        "" | "application/json" | "application/octet-stream" => raw.media_type.as_str(),
        other => other,
    };
    let media = if media.is_empty() {
        // OCI allows omitting mediaType; the shape decides.
        if raw.manifests.is_some() {
            OCI_INDEX
        } else {
            OCI_MANIFEST
        }
    } else {
        media
    };
    match media {
        OCI_INDEX | DOCKER_LIST => {
            let mut out = Vec::new();
            for (i, d) in raw.manifests.unwrap_or_default().iter().enumerate() {
                if d.media_type == OCI_INDEX || d.media_type == DOCKER_LIST {
                    return Err(ManifestError::Nested);
                }
                let platform = d.platform.as_ref().map(|p| Platform {
                    os: p.os.clone(),
                    architecture: p.architecture.clone(),
                });
                out.push((blob(d, &format!("manifests[{i}]"))?, platform));
            }
            Ok(Manifest::Index(out))
        }
        OCI_MANIFEST | DOCKER_MANIFEST => {
            let config = raw
                .config
                .as_ref()
                .ok_or_else(|| ManifestError::Json("missing config".into()))?;
            let config = blob(config, "config")?;
            let raw_layers = raw.layers.unwrap_or_default();
            if raw_layers.len() > max_layers {
                return Err(ManifestError::TooManyLayers(raw_layers.len(), max_layers));
            }
            let mut layers = Vec::new();
            for (i, d) in raw_layers.iter().enumerate() {
                let compression = match d.media_type.as_str() {
                    "application/vnd.oci.image.layer.v1.tar" => Compression::None,
                    "application/vnd.oci.image.layer.v1.tar+gzip"
                    | "application/vnd.docker.image.rootfs.diff.tar.gzip" => Compression::Gzip,
                    other => return Err(ManifestError::LayerType(i, other.into())),
                };
                layers.push(Layer {
                    blob: blob(d, &format!("layers[{i}]"))?,
                    compression,
                });
            }
            Ok(Manifest::Image { config, layers })
        }
        other => Err(ManifestError::MediaType(other.into())),
    }
}

/// The manifest of `platform` in an index's entries.
pub fn select(
    entries: &[(Blob, Option<Platform>)],
    platform: &Platform,
) -> Result<Blob, ManifestError> {
    entries
        .iter()
        .find(|(_, p)| p.as_ref() == Some(platform))
        .or_else(|| match entries {
            // A single unlabelled manifest (what `skopeo`/`umoci` write to
            // a layout) is the image.
            [(_, None)] => entries.first(),
            _ => None,
        })
        .map(|(b, _)| b.clone())
        .ok_or_else(|| ManifestError::NoPlatform {
            os: platform.os.clone(),
            architecture: platform.architecture.clone(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn index_then_platform_manifest() {
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[
            {{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":10,"platform":{{"os":"linux","architecture":"arm64"}}}},
            {{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":11,"platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#,
            d('a'),
            d('b')
        );
        let Manifest::Index(entries) = parse(index.as_bytes(), OCI_INDEX, 8).unwrap() else {
            panic!("an index")
        };
        let amd = Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
        };
        assert_eq!(select(&entries, &amd).unwrap().digest.as_str(), d('b'));
        let s390 = Platform {
            os: "linux".into(),
            architecture: "s390x".into(),
        };
        assert_eq!(
            select(&entries, &s390).unwrap_err().to_string(),
            "index has no manifest for linux/s390x"
        );
        let image = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"x","digest":"{}","size":3}},
            "layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"{}","size":4}},
            {{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{}","size":5}}]}}"#,
            d('c'),
            d('d'),
            d('e')
        );
        let Manifest::Image { config, layers } =
            parse(image.as_bytes(), DOCKER_MANIFEST, 8).unwrap()
        else {
            panic!("an image")
        };
        assert_eq!(config.size, 3);
        assert_eq!(layers[0].compression, Compression::Gzip);
        assert_eq!(layers[1].compression, Compression::None);
        assert_eq!(
            parse(image.as_bytes(), DOCKER_MANIFEST, 1)
                .unwrap_err()
                .to_string(),
            "has 2 layers, over the limit of 1"
        );
    }

    #[test]
    fn refusals_name_the_part() {
        let zstd = format!(
            r#"{{"config":{{"digest":"{}","size":1}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+zstd","digest":"{}","size":1}}]}}"#,
            d('a'),
            d('b')
        );
        assert_eq!(
            parse(zstd.as_bytes(), "", 8).unwrap_err().to_string(),
            "layer 0 has unsupported media type \"application/vnd.oci.image.layer.v1.tar+zstd\" \
             (tar and tar+gzip are read)"
        );
        let bad = r#"{"config":{"digest":"sha256:zz","size":1},"layers":[]}"#;
        assert_eq!(
            parse(bad.as_bytes(), "", 8).unwrap_err().to_string(),
            "config has an invalid digest \"sha256:zz\""
        );
        assert_eq!(
            parse(
                b"{}",
                "application/vnd.docker.distribution.manifest.v1+prettyjws",
                8
            )
            .unwrap_err()
            .to_string(),
            "has unsupported media type \"application/vnd.docker.distribution.manifest.v1+prettyjws\""
        );
        assert!(matches!(
            parse(&vec![b' '; MAX_MANIFEST_BYTES + 1], "", 8),
            Err(ManifestError::TooBig(_))
        ));
    }
}
