//! Images from files, for CI without a registry: an OCI image layout
//! directory (what `umoci` and `skopeo copy … oci:DIR` write) or a tar of
//! one (what `docker save` writes since Docker 25, and `skopeo copy …
//! oci-archive:FILE`). A tar is first copied member by member into the
//! private work directory (names normalised by the layer rules, sizes
//! capped), then read as a layout; every blob is verified like a
//! registry's.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use scanfleet_scan_intents::ImageDigest;
use serde::Deserialize;

use super::image_pull::{BlobSource, PullError, VerifiedFile, verify_bytes};
use crate::layer_entry::{UnpackLimits, normalise};
use crate::manifest::{Blob, MAX_MANIFEST_BYTES};

/// Members a tar archive may hold.
const MAX_ARCHIVE_MEMBERS: usize = 10_000;

/// An OCI image layout on disk.
pub struct ImageArchive {
    layout: PathBuf,
    shown: String,
    // Keeps a copied tar's members alive as long as the archive.
    _staging: Option<tempfile::TempDir>,
}

#[derive(Deserialize)]
struct LayoutIndex {
    manifests: Vec<LayoutEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LayoutEntry {
    digest: String,
}

impl ImageArchive {
    /// Opens `path`: a layout directory, or a tar of one copied into a
    /// private directory under `work` (the system temp dir when `None`).
    ///
    /// # Errors
    /// [`PullError::Archive`] naming the problem.
    pub fn open(
        path: &Path,
        work: Option<&Path>,
        limits: &UnpackLimits,
    ) -> Result<Self, PullError> {
        let shown = path.display().to_string();
        let err = |problem: String| PullError::Archive {
            path: shown.clone(),
            problem,
        };
        let meta = fs::metadata(path).map_err(|e| err(e.to_string()))?;
        let (layout, staging) = if meta.is_dir() {
            (path.to_path_buf(), None)
        } else {
            let staging = match work {
                Some(w) => tempfile::Builder::new()
                    .prefix("scanfleet-archive-")
                    .tempdir_in(w),
                None => tempfile::Builder::new()
                    .prefix("scanfleet-archive-")
                    .tempdir(),
            }
            .map_err(|e| err(format!("creating a private copy: {e}")))?;
            copy_members(path, staging.path(), limits).map_err(err)?;
            (staging.path().to_path_buf(), Some(staging))
        };
        if !layout.join("index.json").is_file() {
            let hint = if layout.join("manifest.json").is_file() {
                "a legacy docker-save archive (manifest.json without index.json) has no \
                 manifest digest to scan by; save with Docker 25+ or `skopeo copy \
                 docker-daemon:IMG oci-archive:FILE`"
            } else {
                "not an OCI image layout (no index.json)"
            };
            return Err(err(hint.into()));
        }
        Ok(Self {
            layout,
            shown,
            _staging: staging,
        })
    }

    /// The one image the layout's `index.json` names.
    ///
    /// # Errors
    /// When it names none or several.
    pub fn image_digest(&self) -> Result<ImageDigest, PullError> {
        let err = |problem: String| PullError::Archive {
            path: self.shown.clone(),
            problem,
        };
        let bytes = read_capped(&self.layout.join("index.json"), MAX_MANIFEST_BYTES as u64)
            .map_err(|e| err(format!("index.json: {e}")))?;
        let index: LayoutIndex =
            serde_json::from_slice(&bytes).map_err(|e| err(format!("index.json: {e}")))?;
        match index.manifests.as_slice() {
            [one] => ImageDigest::parse(&one.digest)
                .map_err(|e| err(format!("index.json: manifests[0].digest: {e}"))),
            many => Err(err(format!(
                "index.json names {} images; exactly one is scanned",
                many.len()
            ))),
        }
    }

    fn blob_path(&self, digest: &ImageDigest) -> PathBuf {
        let hex = digest.as_str().trim_start_matches("sha256:");
        self.layout.join("blobs").join("sha256").join(hex)
    }
}

impl BlobSource for ImageArchive {
    fn name(&self) -> String {
        format!("archive {}", self.shown)
    }

    async fn manifest(&self, digest: &ImageDigest) -> Result<(Vec<u8>, String), PullError> {
        let bytes =
            read_capped(&self.blob_path(digest), MAX_MANIFEST_BYTES as u64).map_err(|e| {
                PullError::Archive {
                    path: self.shown.clone(),
                    problem: format!("manifest {digest}: {e}"),
                }
            })?;
        verify_bytes(&self.name(), "manifest", digest, &bytes)?;
        Ok((bytes, String::new()))
    }

    async fn blob_to_file(&self, blob: &Blob, dest: &Path) -> Result<(), PullError> {
        let mut src =
            fs::File::open(self.blob_path(&blob.digest)).map_err(|e| PullError::Archive {
                path: self.shown.clone(),
                problem: format!("blob {}: {e}", blob.digest),
            })?;
        let mut out = VerifiedFile::create(dest, blob, self.name(), "blob".into()).await?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = src.read(&mut buf).map_err(|error| PullError::Io {
                what: format!("reading blob {}", blob.digest),
                error,
            })?;
            if n == 0 {
                break;
            }
            out.write(&buf[..n]).await?;
        }
        out.finish().await
    }
}

fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, String> {
    let f = fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    f.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > cap {
        return Err(format!("over the limit of {cap} bytes"));
    }
    Ok(bytes)
}

/// Longest extension record (GNU long name, PAX header) read from an
/// archive: read into memory, so capped (the tar crate would not cap it).
const MAX_EXTENSION_BYTES: u64 = 64 * 1024;

/// Copies the tar's regular files and directories into `dest`, by
/// normalised name; links, devices and anything else are refused (a
/// layout holds none). Read in raw mode so extension records are capped.
fn copy_members(tar_path: &Path, dest: &Path, limits: &UnpackLimits) -> Result<(), String> {
    let f = fs::File::open(tar_path).map_err(|e| e.to_string())?;
    let mut archive = tar::Archive::new(std::io::BufReader::new(f));
    let mut total = 0u64;
    let mut long_name: Option<Vec<u8>> = None;
    let entries = archive.entries().map_err(|e| e.to_string())?.raw(true);
    for (count, entry) in entries.enumerate() {
        if count >= MAX_ARCHIVE_MEMBERS {
            return Err(format!("more than {MAX_ARCHIVE_MEMBERS} members"));
        }
        let mut entry = entry.map_err(|e| format!("truncated or corrupt: {e}"))?;
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            tar::EntryType::GNULongName | tar::EntryType::XHeader | tar::EntryType::XGlobalHeader
        ) {
            let size = entry.size();
            if size > MAX_EXTENSION_BYTES {
                return Err(format!(
                    "an extension record of {size} bytes is over the limit of {MAX_EXTENSION_BYTES}"
                ));
            }
            let mut data = Vec::new();
            entry
                .read_to_end(&mut data)
                .map_err(|e| format!("truncated or corrupt: {e}"))?;
            match kind {
                tar::EntryType::GNULongName => {
                    while data.last() == Some(&0) {
                        data.pop();
                    }
                    long_name = Some(data);
                }
                tar::EntryType::XHeader => {
                    for ext in tar::PaxExtensions::new(&data).flatten() {
                        if ext.key_bytes() == b"path" {
                            long_name = Some(ext.value_bytes().to_vec());
                        }
                    }
                }
                _ => {}
            }
            continue;
        }
        let raw = long_name
            .take()
            .unwrap_or_else(|| entry.header().path_bytes().into_owned());
        copy_member(&mut entry, &raw, dest, limits, &mut total)?;
    }
    Ok(())
}

fn copy_member(
    entry: &mut tar::Entry<'_, impl Read>,
    raw: &[u8],
    dest: &Path,
    limits: &UnpackLimits,
    total: &mut u64,
) -> Result<(), String> {
    let shown = String::from_utf8_lossy(raw).into_owned();
    let comps = normalise(raw, limits).map_err(|e| format!("member {shown:?}: {e}"))?;
    let mut host = dest.to_path_buf();
    for c in &comps {
        host.push(std::ffi::OsStr::new(
            std::str::from_utf8(c).map_err(|_| format!("member {shown:?}: not UTF-8"))?,
        ));
    }
    match entry.header().entry_type() {
        tar::EntryType::Directory => {
            fs::create_dir_all(&host).map_err(|e| format!("member {shown:?}: {e}"))?;
        }
        tar::EntryType::Regular | tar::EntryType::Continuous => {
            let size = entry.header().entry_size().map_err(|e| e.to_string())?;
            *total = total.saturating_add(size);
            if *total > limits.max_total_bytes {
                return Err(format!("holds more than {} bytes", limits.max_total_bytes));
            }
            if let Some(parent) = host.parent() {
                fs::create_dir_all(parent).map_err(|e| format!("member {shown:?}: {e}"))?;
            }
            let mut out = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&host)
                .map_err(|e| format!("member {shown:?}: {e}"))?;
            let n = std::io::copy(entry, &mut out)
                .map_err(|e| format!("member {shown:?}: truncated or corrupt: {e}"))?;
            if n != size {
                return Err(format!("member {shown:?}: truncated"));
            }
        }
        other => return Err(format!("member {shown:?}: unexpected entry type {other:?}")),
    }
    Ok(())
}
