//! The worker's [`Scanner`]: a scan intent becomes a secure scan session on
//! the cluster, and its report becomes the statement the loop signs. An
//! image intent goes to the [`ImageScanner`] after the same checks
//! (cluster, locked inputs, pinned profile, threshold).
//!
//! Profiles come from the worker's profile catalog and are pinned: an intent
//! that asks for a version or content digest the worker does not hold fails
//! permanently, because scanning with other rules would sign a claim nobody
//! asked for.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use scanfleet_kube_access::ClusterAccess;
use scanfleet_scan_engine::adapters::profile_catalog::{Edition, ProfileCatalog};
use scanfleet_scan_engine::hdf::to_hdf;
use scanfleet_scan_engine::profile::Profile;
use scanfleet_scan_engine::threshold::parse_threshold;
use scanfleet_scan_intents::{
    ClusterName, ContainerRef, Intent, IntentTarget, LockedInputs, ProfilePin, ThresholdRef,
};
use scanfleet_scan_session::attestation::{
    Attribution, NamedThreshold, completed_statement, failed_statement, inputs_used, with_drift,
};
use scanfleet_scan_session::{
    Approach, ScanRequest, SessionConfig, SessionFailure, SessionOutcome, run_scan_detailed,
};
use scanfleet_trust::statement::ProfileRef;
use sha2::Digest as _;

use crate::image_scanner::ImageScanner;
use crate::recent_image_scans::RecentImageScans;
use crate::scanner::{ScanFailure, ScanOutput, Scanner};

/// Scans intents for one cluster.
pub struct KubeScanner {
    /// The worker's own access (throttled).
    pub admin: ClusterAccess,
    /// Approach policy and engine limits.
    pub session: SessionConfig,
    /// The cluster this worker serves.
    pub cluster: ClusterName,
    /// The profiles this worker holds.
    pub catalog: ProfileCatalog,
    /// Threshold directory root.
    pub thresholds: Option<PathBuf>,
    /// Inputs no intent may override (checked again here: the bus is not
    /// trusted to carry only what intake allowed).
    pub locked_inputs: LockedInputs,
    /// Name in results.
    pub worker_id: String,
    /// Deadline for intents without one.
    pub default_timeout: Duration,
    /// Scans image intents.
    pub images: ImageScanner,
    /// This process's recent image scans, for drift in container scans'
    /// statements.
    pub recent_images: RecentImageScans,
}

fn permanent(reason: String) -> ScanFailure {
    ScanFailure::Permanent {
        reason,
        failed_result: None,
    }
}

/// What one intent resolves to before anything touches the cluster or a
/// registry (besides the profile itself, which the scan takes).
pub(crate) struct Prepared {
    pub(crate) profile_ref: ProfileRef,
    pub(crate) threshold: Option<NamedThreshold>,
    pub(crate) who: Attribution,
}

impl KubeScanner {
    /// A scanner with an empty profile cache.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        admin: ClusterAccess,
        session: SessionConfig,
        cluster: ClusterName,
        profiles: PathBuf,
        thresholds: Option<PathBuf>,
        worker_id: String,
        default_timeout: Duration,
    ) -> Self {
        Self {
            admin,
            session,
            cluster,
            catalog: ProfileCatalog::new(profiles),
            thresholds,
            locked_inputs: LockedInputs::None,
            worker_id,
            default_timeout,
            images: ImageScanner::new(Default::default()),
            recent_images: RecentImageScans::default(),
        }
    }

    /// Loads the profile with the intent's inputs, checked to be the pinned
    /// edition by the same catalog rule intake applied.
    fn profile(&self, intent: &Intent) -> Result<Profile, ScanFailure> {
        let wanted = &intent.profile;
        let edition = match &wanted.pin {
            ProfilePin::Version(v) => Edition::Version(v),
            ProfilePin::Digest(d) => Edition::Digest(d.as_str()),
        };
        self.catalog
            .load(wanted.name.as_str(), edition, &intent.inputs)
            .map_err(|e| permanent(e.to_string()))
    }

    fn threshold(&self, intent: &Intent) -> Result<Option<NamedThreshold>, ScanFailure> {
        let name = match &intent.threshold {
            None => return Ok(None),
            Some(ThresholdRef::Named(name)) => name,
            Some(ThresholdRef::Digest(d)) => {
                return Err(permanent(format!(
                    "threshold by digest {d} requested; workers hold named thresholds only"
                )));
            }
        };
        let Some(dir) = &self.thresholds else {
            return Err(permanent(format!(
                "threshold {name:?} requested but this worker has no threshold directory"
            )));
        };
        let path = dir.join(format!("{name}.yml"));
        let text = scanfleet_bus::read_small_file(&path, 1 << 20).map_err(permanent)?;
        let threshold = parse_threshold(&text, &path.display().to_string())
            .map_err(|e| permanent(e.to_string()))?;
        Ok(Some(NamedThreshold {
            name: name.to_string(),
            sha256: Some(hex::encode(sha2::Sha256::digest(text.as_bytes()))),
            threshold,
        }))
    }

    /// Checks and loads what `intent` asks for; `container` is `None` for
    /// an image scan, whose statement names no namespace, pod or container.
    fn prepare(
        &self,
        intent: &Intent,
        container: Option<&ContainerRef>,
    ) -> Result<(Profile, Prepared), ScanFailure> {
        if intent.cluster != self.cluster {
            return Err(permanent(format!(
                "intent is for cluster {:?}; this worker serves {:?}",
                intent.cluster.as_str(),
                self.cluster.as_str()
            )));
        }
        let refused = self.locked_inputs.refused(&intent.inputs);
        if !refused.is_empty() {
            return Err(permanent(LockedInputs::explain(&refused)));
        }
        let profile = self.profile(intent)?;
        let profile_ref = ProfileRef {
            name: intent.profile.name.to_string(),
            version: profile.metadata.version.clone().unwrap_or_default(),
            sha256: profile.sha256.clone(),
        };
        let threshold = self.threshold(intent)?;
        let who = Attribution {
            scan_id: intent.id.to_string(),
            cluster: self.cluster.to_string(),
            namespace: container
                .map(|c| c.namespace.to_string())
                .unwrap_or_default(),
            pod: container.map(|c| c.pod.to_string()).unwrap_or_default(),
            container: container
                .map(|c| c.container.to_string())
                .unwrap_or_default(),
            scanner_id: self.worker_id.clone(),
            requested_by: intent.principal().map(str::to_owned),
            inputs: inputs_used(&profile, &intent.inputs),
        };
        Ok((
            profile,
            Prepared {
                profile_ref,
                threshold,
                who,
            },
        ))
    }

    /// The time left until the intent's deadline (at least a second), or
    /// the default budget for an intent that names none.
    fn time_left(&self, intent: &Intent) -> Duration {
        intent.deadline.map_or(self.default_timeout, |deadline| {
            deadline
                .duration_since(SystemTime::now())
                .map_or(Duration::from_secs(1), |d| d.max(Duration::from_secs(1)))
        })
    }
}

/// The signed-to-be statement and report of a finished session.
fn completed(
    prepared: &Prepared,
    outcome: &SessionOutcome,
    started: SystemTime,
) -> Result<ScanOutput, ScanFailure> {
    let hdf = to_hdf(&outcome.report);
    let bytes = serde_json::to_vec(&hdf).map_err(|e| ScanFailure::Transient {
        reason: format!("serializing HDF: {e}"),
        retry_after: None,
    })?;
    let (statement, _) = completed_statement(
        &prepared.who,
        &outcome.image,
        &outcome.image_digest,
        outcome.approach.as_str(),
        &hdf,
        &bytes,
        prepared.threshold.as_ref(),
        started,
    )
    .map_err(|e| permanent(e.to_string()))?;
    Ok(ScanOutput {
        statement,
        report: Some(bytes),
    })
}

/// A session failure as the loop sees it; a permanent one carries a
/// failed statement so subscribers learn why.
fn failure(
    prepared: Prepared,
    intent: &Intent,
    requested: Approach,
    f: SessionFailure,
    started: SystemTime,
) -> ScanFailure {
    if !f.error.permanent() {
        return ScanFailure::Transient {
            reason: f.error.to_string(),
            retry_after: None,
        };
    }
    let e = f.error;
    // Pre-flight's digest when it got that far, else the one intake knew
    // (a registry push names it).
    let (reference, digest) = f.image.unwrap_or_else(|| {
        (
            intent.image.reference.clone(),
            intent
                .image
                .digest
                .as_ref()
                .map(|d| d.to_string())
                .unwrap_or_default(),
        )
    });
    ScanFailure::Permanent {
        reason: e.to_string(),
        failed_result: failed_statement(
            &prepared.who,
            &reference,
            &digest,
            requested.as_str(),
            prepared.profile_ref,
            &e.to_string(),
            started,
        )
        .map(Box::new),
    }
}

impl Scanner for KubeScanner {
    async fn scan(&self, intent: &Intent) -> Result<ScanOutput, ScanFailure> {
        let started = SystemTime::now();
        let target = match &intent.target {
            IntentTarget::Container(c) => c,
            IntentTarget::Image(image) => {
                let (profile, prepared) = self.prepare(intent, None)?;
                let deadline = self.time_left(intent);
                let scanned = self
                    .images
                    .scan(image, profile, &prepared, deadline, started)
                    .await;
                if let Ok(output) = &scanned {
                    self.recent_images
                        .remember(&output.statement, output.report.as_deref());
                }
                return scanned;
            }
        };
        let (profile, prepared) = self.prepare(intent, Some(target))?;
        let requested = intent.approach;
        let request = ScanRequest {
            scan_id: intent.id.to_string(),
            namespace: target.namespace.to_string(),
            pod: target.pod.to_string(),
            container: target.container.to_string(),
            approach: requested,
            profile: Arc::new(profile),
            deadline: self.time_left(intent),
        };
        match run_scan_detailed(&self.admin, &self.session, request).await {
            Ok(outcome) => completed(&prepared, &outcome, started).map(|mut output| {
                let drift = self
                    .recent_images
                    .drift_for(&output.statement, output.report.as_deref());
                if let Some(drift) = drift {
                    output.statement = with_drift(output.statement, drift);
                }
                output
            }),
            Err(f) => Err(failure(prepared, intent, requested, f, started)),
        }
    }
}
