//! One image, pulled and unpacked: manifest (index → this platform's
//! manifest), config, then each layer downloaded to a private file with
//! its digest and size checked, and only then unpacked. Everything lives
//! in one private temporary directory that is removed when the
//! [`UnpackedImage`] is dropped, and on every error path before that.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use scanfleet_scan_engine::adapters::recorded_metadata::RecordedMetadata;
use scanfleet_scan_intents::ImageDigest;
use sha2::{Digest as _, Sha256};

use super::layer_unpack::{LayerError, Unpacker};
use crate::layer_entry::{UnpackBudget, UnpackLimits};
use crate::manifest::{self, Blob, MAX_CONFIG_BYTES, Manifest, ManifestError, Platform};

/// Where blobs come from: a registry or an archive. Every method checks
/// what it returns against the digest and size asked for.
pub trait BlobSource {
    /// How errors name this source (`registry r.local:5000`, `archive x.tar`).
    fn name(&self) -> String;
    /// The manifest or index `digest`, its bytes and content type; the
    /// bytes are verified against the digest.
    fn manifest(
        &self,
        digest: &ImageDigest,
    ) -> impl Future<Output = Result<(Vec<u8>, String), PullError>> + Send;
    /// Writes `blob` to `dest`, streamed, verified against its digest
    /// and size.
    fn blob_to_file(
        &self,
        blob: &Blob,
        dest: &Path,
    ) -> impl Future<Output = Result<(), PullError>> + Send;
}

/// Why an image could not be pulled or unpacked.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The registry answered with an error, or could not be reached.
    #[error("registry {registry}: {step}: {problem}")]
    Registry {
        /// Host and port.
        registry: String,
        /// What the client was doing.
        step: String,
        /// What went wrong.
        problem: String,
    },
    /// The registry answered a request with a client error (a missing
    /// manifest or blob, a request it will never accept): asking again
    /// gets the same answer.
    #[error("registry {registry}: {step}: HTTP {status}: {problem}")]
    Rejected {
        /// Host and port.
        registry: String,
        /// What the client was doing.
        step: String,
        /// Status code and reason, e.g. `404 Not Found`.
        status: String,
        /// The start of the response body.
        problem: String,
    },
    /// The registry refused the credentials given.
    #[error(
        "registry {registry} refused the credentials{user} while {step} (HTTP {status}); \
         not retrying: check the user name and password"
    )]
    AuthRefused {
        /// Host and port.
        registry: String,
        /// What the client was doing.
        step: String,
        /// ` for user "x"`, or empty.
        user: String,
        /// The HTTP status.
        status: u16,
    },
    /// The registry wants credentials and none were given.
    #[error("registry {registry} requires credentials while {step}; none were given")]
    CredentialsRequired {
        /// Host and port.
        registry: String,
        /// What the client was doing.
        step: String,
    },
    /// Content did not match its digest or size.
    #[error("{source_name}: {what} {digest}: {problem}")]
    Verify {
        /// The source.
        source_name: String,
        /// `manifest`, `config`, `layer 2`.
        what: String,
        /// The expected digest.
        digest: String,
        /// Mismatch details.
        problem: String,
    },
    /// A manifest was refused.
    #[error("{source_name}: manifest {digest} {error}")]
    Manifest {
        /// The source.
        source_name: String,
        /// Its digest.
        digest: String,
        /// Why.
        error: ManifestError,
    },
    /// A layer was refused while unpacking.
    #[error("layer {index} ({digest}): {error}")]
    Layer {
        /// 0-based index, lowest first.
        index: usize,
        /// Its digest.
        digest: String,
        /// Why.
        error: LayerError,
    },
    /// An archive could not be read.
    #[error("archive {path}: {problem}")]
    Archive {
        /// The archive.
        path: String,
        /// Why.
        problem: String,
    },
    /// Local disk trouble.
    #[error("{what}: {error}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        error: std::io::Error,
    },
}

impl PullError {
    /// Whether trying again cannot help: refused or missing credentials
    /// (a retry would only add refused logins at the registry), a client
    /// error such as a missing manifest, content that does not match its
    /// digest, a refused manifest, layer or archive. An unreachable or
    /// failing (5xx, 429, 408) registry and local disk trouble may pass.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, Self::Registry { .. } | Self::Io { .. })
    }
}

/// How long each phase took.
#[derive(Debug, Clone, Copy, Default)]
pub struct PullTimings {
    /// Manifests, config and layer downloads (with verification).
    pub pull: Duration,
    /// Applying layers.
    pub unpack: Duration,
}

/// An unpacked image; its directory is removed when this is dropped.
pub struct UnpackedImage {
    dir: tempfile::TempDir,
    /// The manifest (or index) digest that was asked for.
    pub digest: ImageDigest,
    /// The platform manifest's digest (the same when no index).
    pub manifest_digest: ImageDigest,
    /// The config blob digest (the image id).
    pub config_digest: ImageDigest,
    /// Claimed ownership and modes of every unpacked path.
    pub recorded: Arc<RecordedMetadata>,
    /// Entries and bytes unpacked.
    pub budget: UnpackBudget,
    /// Layers applied.
    pub layers: usize,
    /// Phase timings.
    pub timings: PullTimings,
}

impl UnpackedImage {
    /// The image's root filesystem.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// The private directory holding everything (for tests that check it
    /// is gone afterwards).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Checks `bytes` against `digest`.
pub fn verify_bytes(
    source: &str,
    what: &str,
    digest: &ImageDigest,
    bytes: &[u8],
) -> Result<(), PullError> {
    let got = format!("sha256:{}", hex::encode(Sha256::digest(bytes)));
    if got != digest.as_str() {
        return Err(PullError::Verify {
            source_name: source.into(),
            what: what.into(),
            digest: digest.to_string(),
            problem: format!("content has digest {got}"),
        });
    }
    Ok(())
}

/// Pulls `digest` from `source` for `platform` and unpacks it into a new
/// private directory under `parent` (the system temp dir when `None`).
///
/// # Errors
/// [`PullError`] naming the source, the step and the blob; the directory
/// is already removed when this returns an error.
pub async fn pull_image<S: BlobSource>(
    source: &S,
    digest: &ImageDigest,
    platform: &Platform,
    limits: UnpackLimits,
    parent: Option<&Path>,
) -> Result<UnpackedImage, PullError> {
    let io = |what: &str| {
        let what = what.to_owned();
        move |error| PullError::Io { what, error }
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix("scanfleet-image-");
    let dir = match parent {
        Some(p) => builder.tempdir_in(p),
        None => builder.tempdir(),
    }
    .map_err(io("creating the private unpack directory"))?;
    let root = dir.path().join("rootfs");
    std::fs::create_dir(&root).map_err(io("creating the image root"))?;
    let started = Instant::now();
    let (manifest_digest, config, layers) = resolve(source, digest, platform, limits).await?;
    if config.size > MAX_CONFIG_BYTES {
        return Err(PullError::Verify {
            source_name: source.name(),
            what: "config".into(),
            digest: config.digest.to_string(),
            problem: format!(
                "is {} bytes, over the limit of {MAX_CONFIG_BYTES}",
                config.size
            ),
        });
    }
    source
        .blob_to_file(&config, &dir.path().join("config.json"))
        .await?;
    let mut timings = PullTimings {
        pull: started.elapsed(),
        ..PullTimings::default()
    };
    let mut unpacker = Unpacker::new(&root, limits);
    for (index, layer) in layers.iter().enumerate() {
        let file = dir.path().join(format!("layer-{index}"));
        let t = Instant::now();
        source.blob_to_file(&layer.blob, &file).await?;
        timings.pull += t.elapsed();
        let t = Instant::now();
        let compression = layer.compression;
        let (back, result) = tokio::task::spawn_blocking(move || {
            let result = std::fs::File::open(&file)
                .map(|f| std::io::BufReader::with_capacity(256 * 1024, f))
                .map_err(|e| LayerError::Io {
                    path: file.display().to_string(),
                    error: e,
                })
                .and_then(|f| unpacker.apply(f, compression));
            let _ = std::fs::remove_file(&file);
            (unpacker, result)
        })
        .await
        .map_err(|e| PullError::Io {
            what: "unpacking a layer".into(),
            error: std::io::Error::other(e.to_string()),
        })?;
        unpacker = back;
        result.map_err(|error| PullError::Layer {
            index,
            digest: layer.blob.digest.to_string(),
            error,
        })?;
        timings.unpack += t.elapsed();
    }
    Ok(UnpackedImage {
        dir,
        digest: digest.clone(),
        manifest_digest,
        config_digest: config.digest,
        budget: unpacker.budget(),
        recorded: Arc::new(unpacker.into_recorded()),
        layers: layers.len(),
        timings,
    })
}

/// The platform manifest's digest, config and layers for `digest`.
async fn resolve<S: BlobSource>(
    source: &S,
    digest: &ImageDigest,
    platform: &Platform,
    limits: UnpackLimits,
) -> Result<(ImageDigest, Blob, Vec<manifest::Layer>), PullError> {
    let refused = |d: &ImageDigest, error| PullError::Manifest {
        source_name: source.name(),
        digest: d.to_string(),
        error,
    };
    let (bytes, content_type) = source.manifest(digest).await?;
    match manifest::parse(&bytes, &content_type, limits.max_layers)
        .map_err(|e| refused(digest, e))?
    {
        Manifest::Image { config, layers } => Ok((digest.clone(), config, layers)),
        Manifest::Index(entries) => {
            let chosen = manifest::select(&entries, platform).map_err(|e| refused(digest, e))?;
            let (bytes, content_type) = source.manifest(&chosen.digest).await?;
            if bytes.len() as u64 != chosen.size {
                return Err(PullError::Verify {
                    source_name: source.name(),
                    what: "manifest".into(),
                    digest: chosen.digest.to_string(),
                    problem: format!("is {} bytes, the index says {}", bytes.len(), chosen.size),
                });
            }
            match manifest::parse(&bytes, &content_type, limits.max_layers)
                .map_err(|e| refused(&chosen.digest, e))?
            {
                Manifest::Image { config, layers } => Ok((chosen.digest, config, layers)),
                Manifest::Index(_) => Err(refused(&chosen.digest, ManifestError::Nested)),
            }
        }
    }
}

/// Streams a blob's chunks to `dest`, hashing and counting; refuses as
/// soon as it runs over the expected size, and checks the digest at the end.
pub struct VerifiedFile {
    file: tokio::fs::File,
    hash: Sha256,
    written: u64,
    expected: Blob,
    source: String,
    what: String,
}

impl VerifiedFile {
    /// Creates `dest` (which must not exist) for `expected`.
    pub async fn create(
        dest: &Path,
        expected: &Blob,
        source: String,
        what: String,
    ) -> Result<Self, PullError> {
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dest)
            .await
            .map_err(|error| PullError::Io {
                what: format!("creating {}", dest.display()),
                error,
            })?;
        Ok(Self {
            file,
            hash: Sha256::new(),
            written: 0,
            expected: expected.clone(),
            source,
            what,
        })
    }

    fn mismatch(&self, problem: String) -> PullError {
        PullError::Verify {
            source_name: self.source.clone(),
            what: self.what.clone(),
            digest: self.expected.digest.to_string(),
            problem,
        }
    }

    /// Appends a chunk.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), PullError> {
        use tokio::io::AsyncWriteExt as _;
        self.written += chunk.len() as u64;
        if self.written > self.expected.size {
            return Err(self.mismatch(format!(
                "is longer than the {} bytes its descriptor says",
                self.expected.size
            )));
        }
        self.hash.update(chunk);
        self.file
            .write_all(chunk)
            .await
            .map_err(|error| PullError::Io {
                what: format!("writing {}", self.what),
                error,
            })
    }

    /// Checks size and digest.
    pub async fn finish(mut self) -> Result<(), PullError> {
        use tokio::io::AsyncWriteExt as _;
        if self.written != self.expected.size {
            return Err(self.mismatch(format!(
                "ended after {} of {} bytes",
                self.written, self.expected.size
            )));
        }
        let got = format!("sha256:{}", hex::encode(self.hash.clone().finalize()));
        if got != self.expected.digest.as_str() {
            return Err(self.mismatch(format!("content has digest {got}")));
        }
        self.file.flush().await.map_err(|error| PullError::Io {
            what: format!("writing {}", self.what),
            error,
        })
    }
}
