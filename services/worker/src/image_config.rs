//! The worker's image-scan settings: flags, `SCANFLEET_*` variables and the
//! YAML file's `images:` section, by the same precedence rule as the rest
//! of [`crate::config`], every problem reported with the others.

use std::path::PathBuf;
use std::sync::Arc;

use scanfleet_image_fetch::layer_entry::UnpackLimits;
use scanfleet_image_fetch::pull_secret::{MAX_PULL_SECRET_BYTES, PullSecret};
use scanfleet_scan_engine::facts::GatherLimits;
use serde::Deserialize;

use crate::image_scanner::ImageScanSettings;
use crate::registry_logins::{RegistryLogins, SecretName};

/// Image-scan flags.
#[derive(Debug, Default, clap::Args)]
pub struct ImageArgs {
    /// PEM CA bundle registries' certificates chain to [default: the
    /// system roots].
    #[arg(long, env = "SCANFLEET_REGISTRY_CA")]
    pub registry_ca: Option<PathBuf>,
    /// Registry logins in Docker's `config.json` / `dockerconfigjson`
    /// format (mode 0600), chosen by the image's registry host.
    #[arg(long, env = "SCANFLEET_REGISTRY_AUTH_FILE")]
    pub registry_auth_file: Option<PathBuf>,
    /// Registry logins from a `kubernetes.io/dockerconfigjson` Secret,
    /// `NAMESPACE/NAME`, read with the worker's identity at every image
    /// scan (the worker needs `get` on exactly that Secret).
    #[arg(long, env = "SCANFLEET_REGISTRY_PULL_SECRET")]
    pub registry_pull_secret: Option<String>,
    /// Where images are unpacked [default: the temp dir].
    #[arg(long, env = "SCANFLEET_IMAGE_WORK_DIR")]
    pub image_work_dir: Option<PathBuf>,
}

/// The YAML file's `images:` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileImages {
    registry_ca: Option<PathBuf>,
    registry_auth_file: Option<PathBuf>,
    registry_pull_secret: Option<String>,
    work_dir: Option<PathBuf>,
    max_entries: Option<u64>,
    max_total_bytes: Option<u64>,
    max_entry_bytes: Option<u64>,
}

impl ImageArgs {
    /// The settings, or problems pushed onto `errors`.
    pub fn settle(self, file: FileImages, errors: &mut Vec<String>) -> ImageScanSettings {
        let registry_ca = self.registry_ca.or(file.registry_ca);
        if let Some(ca) = &registry_ca
            && !ca.is_file()
        {
            errors.push(format!("--registry-ca: {} is not a file", ca.display()));
        }
        let logins = match self.registry_auth_file.or(file.registry_auth_file) {
            None => RegistryLogins::Anonymous,
            Some(path) => pull_secret_file(&path, errors),
        };
        let pull_secret = self
            .registry_pull_secret
            .or(file.registry_pull_secret)
            .and_then(|raw| {
                SecretName::parse(&raw)
                    .map_err(|e| errors.push(format!("--registry-pull-secret {e}")))
                    .ok()
            });
        if pull_secret.is_some() && !matches!(logins, RegistryLogins::Anonymous) {
            errors.push(
                "--registry-pull-secret and --registry-auth-file: give one source of logins".into(),
            );
        }
        let defaults = UnpackLimits::default();
        let limits = UnpackLimits {
            max_entries: file.max_entries.unwrap_or(defaults.max_entries),
            max_total_bytes: file.max_total_bytes.unwrap_or(defaults.max_total_bytes),
            max_entry_bytes: file.max_entry_bytes.unwrap_or(defaults.max_entry_bytes),
            ..defaults
        };
        ImageScanSettings {
            registry_ca,
            logins,
            pull_secret,
            limits,
            work_dir: self.image_work_dir.or(file.work_dir),
            gather: GatherLimits::default(),
        }
    }
}

fn pull_secret_file(path: &std::path::Path, errors: &mut Vec<String>) -> RegistryLogins {
    let read =
        scanfleet_bus::read_small_file(path, MAX_PULL_SECRET_BYTES as u64).and_then(|text| {
            PullSecret::parse(text.as_bytes(), &path.display().to_string())
                .map_err(|e| e.to_string())
        });
    match read {
        Ok(secret) => RegistryLogins::Fixed(Arc::new(secret)),
        Err(e) => {
            errors.push(format!("--registry-auth-file: {e}"));
            RegistryLogins::Anonymous
        }
    }
}
