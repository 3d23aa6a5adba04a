//! Image scans in the worker: an intent for `oci://REGISTRY/REPO@DIGEST`
//! (intake queues one for a pushed digest no pod runs) is pulled by
//! digest through `scanfleet-image-fetch` (every blob verified, layers
//! unpacked into a private temporary root hostile layers cannot escape),
//! scanned there with the engine's local-root target, and attested: the
//! statement's subject is the image digest and its predicate says
//! `image`. The private root is removed when the scan ends, whatever
//! happened.
//!
//! Registry logins come from a pull secret (`dockerconfigjson`), looked
//! up by the intent's registry; a refused login fails the scan
//! permanently, once, so a wrong password never becomes a retry storm.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use scanfleet_image_fetch::adapters::image_pull::{PullError, UnpackedImage, pull_image};
use scanfleet_image_fetch::adapters::registry_client::{RegistryClient, RegistryOptions};
use scanfleet_image_fetch::layer_entry::UnpackLimits;
use scanfleet_image_fetch::manifest::Platform;
use scanfleet_scan_engine::adapters::local_root::LocalRoot;
use scanfleet_scan_engine::facts::GatherLimits;
use scanfleet_scan_engine::hdf::to_hdf;
use scanfleet_scan_engine::profile::Profile;
use scanfleet_scan_intents::ImageTarget;
use scanfleet_scan_session::attestation::{as_image_scan, completed_statement, failed_statement};

use crate::kube_scanner::Prepared;
use crate::registry_logins::{RegistryLogins, SecretName};
use crate::scanner::{ScanFailure, ScanOutput};

/// What the predicate's `approach` says for an image scan: the engine's
/// local-root target read the unpacked image, as `scanfleet scan oci://`
/// says too; `target.kind` says it was an image.
const IMAGE_APPROACH: &str = "local";

/// How this worker reaches registries and unpacks images.
#[derive(Debug, Clone, Default)]
pub struct ImageScanSettings {
    /// PEM CA bundle registries' certificates chain to (default: the
    /// system roots).
    pub registry_ca: Option<PathBuf>,
    /// Where registry logins come from (none: anonymous pulls).
    pub logins: RegistryLogins,
    /// A `dockerconfigjson` Secret to read logins from instead; the
    /// worker's wiring turns it into [`RegistryLogins::Secret`] once it
    /// has its cluster access.
    pub pull_secret: Option<SecretName>,
    /// Caps on what one image may unpack to.
    pub limits: UnpackLimits,
    /// Where private unpack directories go (default: the temp dir).
    pub work_dir: Option<PathBuf>,
    /// Limits of the local-root target's reads.
    pub gather: GatherLimits,
}

/// Scans images by digest.
pub struct ImageScanner {
    settings: ImageScanSettings,
}

fn permanent(reason: String) -> ScanFailure {
    ScanFailure::Permanent {
        reason,
        failed_result: None,
    }
}

fn transient(reason: String) -> ScanFailure {
    ScanFailure::Transient {
        reason,
        retry_after: None,
    }
}

impl ImageScanner {
    /// A scanner with `settings`.
    pub fn new(settings: ImageScanSettings) -> Self {
        Self { settings }
    }

    /// Pulls, unpacks and scans `target` with `profile` within
    /// `deadline`.
    pub(crate) async fn scan(
        &self,
        target: &ImageTarget,
        profile: Profile,
        prepared: &Prepared,
        deadline: Duration,
        started: SystemTime,
    ) -> Result<ScanOutput, ScanFailure> {
        let fail = |reason: String, permanent: bool| {
            if permanent {
                self.failed(target, prepared, reason, started)
            } else {
                transient(reason)
            }
        };
        let pulled = tokio::time::timeout(deadline, self.pull(target)).await;
        let image = match pulled {
            Err(_) => return Err(transient(format!("pulling {target}: deadline passed"))),
            Ok(Err((reason, permanent))) => return Err(fail(reason, permanent)),
            Ok(Ok(image)) => image,
        };
        let gather = self.settings.gather;
        let scanned = tokio::task::spawn_blocking(move || scan_root(&profile, image, gather))
            .await
            .map_err(|e| transient(format!("image scan task: {e}")))?;
        let report = scanned.map_err(|e| fail(format!("scanning {target}: {e}"), true))?;
        let hdf = to_hdf(&report);
        let bytes =
            serde_json::to_vec(&hdf).map_err(|e| transient(format!("serializing HDF: {e}")))?;
        let (statement, _) = completed_statement(
            &prepared.who,
            &target.reference(),
            target.digest().as_str(),
            IMAGE_APPROACH,
            &hdf,
            &bytes,
            prepared.threshold.as_ref(),
            started,
        )
        .map_err(|e| permanent(e.to_string()))?;
        Ok(ScanOutput {
            statement: as_image_scan(statement),
            report: Some(bytes),
        })
    }

    /// The unpacked image, or why not and whether that is permanent.
    async fn pull(&self, target: &ImageTarget) -> Result<UnpackedImage, (String, bool)> {
        let login = self.settings.logins.login_for(target.registry()).await?;
        let pull_error = |e: PullError| (e.to_string(), e.is_permanent());
        let client = RegistryClient::new(
            target.registry(),
            target.repository(),
            RegistryOptions {
                ca_bundle: self.settings.registry_ca.clone(),
                credentials: login.as_ref().map(Into::into),
                plain_http: false,
                timeout: None,
            },
        )
        .map_err(pull_error)?;
        pull_image(
            &client,
            target.digest(),
            &Platform::default(),
            self.settings.limits,
            self.settings.work_dir.as_deref(),
        )
        .await
        .map_err(pull_error)
    }

    /// A permanent failure with a signed-to-be `failed` statement about the
    /// image, so subscribers learn why.
    fn failed(
        &self,
        target: &ImageTarget,
        prepared: &Prepared,
        reason: String,
        started: SystemTime,
    ) -> ScanFailure {
        let failed_result = failed_statement(
            &prepared.who,
            &target.reference(),
            target.digest().as_str(),
            IMAGE_APPROACH,
            prepared.profile_ref.clone(),
            &reason,
            started,
        )
        .map(|s| Box::new(as_image_scan(s)));
        ScanFailure::Permanent {
            reason,
            failed_result,
        }
    }
}

/// Scans the unpacked root; the private directory goes with `image` when
/// this returns.
fn scan_root(
    profile: &Profile,
    image: UnpackedImage,
    gather: GatherLimits,
) -> Result<scanfleet_scan_engine::scan::ScanReport, String> {
    let target = LocalRoot::new(image.root(), gather)
        .map_err(|e| e.to_string())?
        .with_recorded_metadata(image.recorded.clone());
    let report = scanfleet_scan_engine::scan::scan(profile, &target).map_err(|e| e.to_string());
    drop(image);
    report
}
