//! The worker's [`Scanner`]: a scan intent becomes a secure scan session on
//! the cluster, and its report becomes the statement the loop signs.
//!
//! Profiles are read from the worker's profile directory once and pinned:
//! an intent that asks for a version or content digest the worker does not
//! hold fails permanently, because scanning with other rules would sign a
//! claim nobody asked for.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use scanfleet_contracts::v1::{Approach as WireApproach, ScanIntent, profile_ref::Pin};
use scanfleet_kube_access::ClusterAccess;
use scanfleet_scan_engine::adapters::profile_dir::read_profile_dir;
use scanfleet_scan_engine::hdf::to_hdf;
use scanfleet_scan_engine::profile::{ProfileSource, load_profile};
use scanfleet_scan_engine::threshold::parse_threshold;
use scanfleet_scan_session::attestation::{
    Attribution, NamedThreshold, completed_statement, failed_statement,
};
use scanfleet_scan_session::{Approach, ScanRequest, SessionConfig, run_scan_detailed};
use scanfleet_trust::statement::ProfileRef;

use crate::scanner::{ScanFailure, ScanOutput, Scanner};

/// Scans intents for one cluster.
pub struct KubeScanner {
    /// The worker's own access (throttled).
    pub admin: ClusterAccess,
    /// Approach policy and engine limits.
    pub session: SessionConfig,
    /// The cluster this worker serves.
    pub cluster: String,
    /// Profile directory root.
    pub profiles: PathBuf,
    /// Threshold directory root.
    pub thresholds: Option<PathBuf>,
    /// Name in results.
    pub worker_id: String,
    /// Deadline for intents without one.
    pub default_timeout: Duration,
    sources: Mutex<HashMap<String, Arc<ProfileSource>>>,
}

fn permanent(reason: String) -> ScanFailure {
    ScanFailure::Permanent {
        reason,
        failed_result: None,
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !s.starts_with('.')
}

impl KubeScanner {
    /// A scanner with an empty profile cache.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        admin: ClusterAccess,
        session: SessionConfig,
        cluster: String,
        profiles: PathBuf,
        thresholds: Option<PathBuf>,
        worker_id: String,
        default_timeout: Duration,
    ) -> Self {
        Self {
            admin,
            session,
            cluster,
            profiles,
            thresholds,
            worker_id,
            default_timeout,
            sources: Mutex::new(HashMap::new()),
        }
    }

    fn source(&self, name: &str) -> Result<Arc<ProfileSource>, ScanFailure> {
        if !is_name(name) {
            return Err(permanent(format!(
                "profile name {name:?} is not a plain name"
            )));
        }
        let mut cache = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = cache.get(name) {
            return Ok(s.clone());
        }
        let source = Arc::new(
            read_profile_dir(&self.profiles.join(name))
                .map_err(|e| permanent(format!("profile {name}: {e}")))?,
        );
        cache.insert(name.to_owned(), source.clone());
        Ok(source)
    }

    fn threshold(&self, intent: &ScanIntent) -> Result<Option<NamedThreshold>, ScanFailure> {
        let Some(t) = intent.threshold.as_ref().filter(|t| !t.name.is_empty()) else {
            return Ok(None);
        };
        let Some(dir) = &self.thresholds else {
            return Err(permanent(format!(
                "threshold {:?} requested but this worker has no threshold directory",
                t.name
            )));
        };
        if !is_name(&t.name) {
            return Err(permanent(format!(
                "threshold name {:?} is not a plain name",
                t.name
            )));
        }
        let path = dir.join(format!("{}.yml", t.name));
        let text = scanfleet_bus::read_small_file(&path, 1 << 20).map_err(permanent)?;
        let threshold = parse_threshold(&text, &path.display().to_string())
            .map_err(|e| permanent(e.to_string()))?;
        Ok(Some(NamedThreshold {
            name: t.name.clone(),
            threshold,
        }))
    }
}

fn approach(intent: &ScanIntent) -> Approach {
    match WireApproach::try_from(intent.approach).unwrap_or(WireApproach::Auto) {
        WireApproach::Exec => Approach::Exec,
        WireApproach::Debug => Approach::Debug,
        WireApproach::Sidecar => Approach::Sidecar,
        WireApproach::Auto | WireApproach::Unspecified => Approach::Auto,
    }
}

impl Scanner for KubeScanner {
    async fn scan(&self, intent: &ScanIntent) -> Result<ScanOutput, ScanFailure> {
        let started = SystemTime::now();
        let target = intent
            .target
            .clone()
            .ok_or_else(|| permanent("intent has no target".into()))?;
        if !target.cluster.is_empty() && target.cluster != self.cluster {
            return Err(permanent(format!(
                "intent is for cluster {:?}; this worker serves {:?}",
                target.cluster, self.cluster
            )));
        }
        let wanted = intent
            .profile
            .clone()
            .ok_or_else(|| permanent("intent names no profile".into()))?;
        let source = self.source(&wanted.name)?;
        let overrides = intent
            .profile_inputs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let profile = load_profile(&source, &overrides)
            .map_err(|e| permanent(format!("profile {}: {e}", wanted.name)))?;
        let version = profile.metadata.version.clone().unwrap_or_default();
        match &wanted.pin {
            Some(Pin::Version(v)) if !v.is_empty() && *v != version => {
                return Err(permanent(format!(
                    "profile {} version {v} requested; this worker has {version}",
                    wanted.name
                )));
            }
            Some(Pin::Digest(d))
                if !d.is_empty() && d.strip_prefix("sha256:").unwrap_or(d) != profile.sha256 =>
            {
                return Err(permanent(format!(
                    "profile {} with digest {d} requested; this worker has sha256:{}",
                    wanted.name, profile.sha256
                )));
            }
            _ => {}
        }
        let threshold = self.threshold(intent)?;
        let deadline = intent
            .deadline
            .as_ref()
            .filter(|d| d.seconds > 0)
            .map(|d| {
                let now = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs() as i64;
                Duration::from_secs((d.seconds - now).max(1) as u64)
            })
            .unwrap_or(self.default_timeout);
        let who = Attribution {
            scan_id: intent.id.clone(),
            cluster: self.cluster.clone(),
            namespace: target.namespace.clone(),
            pod: target.pod.clone(),
            container: target.container.clone(),
            scanner_id: self.worker_id.clone(),
        };
        let requested = approach(intent);
        let profile_ref = ProfileRef {
            name: wanted.name.clone(),
            version: version.clone(),
            sha256: profile.sha256.clone(),
        };
        let request = ScanRequest {
            scan_id: intent.id.clone(),
            namespace: target.namespace.clone(),
            pod: target.pod.clone(),
            container: target.container.clone(),
            approach: requested,
            profile: Arc::new(profile),
            deadline,
        };
        match run_scan_detailed(&self.admin, &self.session, request).await {
            Ok(outcome) => {
                let hdf = to_hdf(&outcome.report);
                let bytes = serde_json::to_vec(&hdf).map_err(|e| ScanFailure::Transient {
                    reason: format!("serializing HDF: {e}"),
                    retry_after: None,
                })?;
                let (statement, _) = completed_statement(
                    &who,
                    &outcome.image,
                    &outcome.image_digest,
                    outcome.approach.as_str(),
                    &hdf,
                    &bytes,
                    threshold.as_ref(),
                    started,
                )
                .map_err(|e| permanent(e.to_string()))?;
                Ok(ScanOutput {
                    statement,
                    report: Some(bytes),
                })
            }
            Err(f) if f.error.permanent() => {
                let e = f.error;
                // Pre-flight's digest when it got that far, else the one
                // intake knew (a registry push names it).
                let (reference, digest) = f.image.unwrap_or_else(|| {
                    let image = target.image.clone().unwrap_or_default();
                    (image.reference, image.digest)
                });
                Err(ScanFailure::Permanent {
                    reason: e.to_string(),
                    failed_result: failed_statement(
                        &who,
                        &reference,
                        &digest,
                        requested.as_str(),
                        profile_ref,
                        &e.to_string(),
                        started,
                    )
                    .map(Box::new),
                })
            }
            Err(f) => Err(ScanFailure::Transient {
                reason: f.error.to_string(),
                retry_after: None,
            }),
        }
    }
}
