//! One scan, start to finish: pre-flight with the worker's identity, a
//! throwaway identity for exactly one pod, the approach, the engine's one
//! round trip, and the identity's removal on every exit path.
//!
//! The worker's own client is used for four kinds of call only: reading the
//! pod, creating the per-scan objects, minting the token and deleting the
//! ServiceAccount. Every exec, ephemeral-container patch and watch is made
//! with the per-scan token. A deadline bounds the whole scan; removal runs
//! after it, with its own short bound, and a dropped (cancelled) scan hands
//! removal to a background task, with the sweeper as the last resort.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use scanfleet_kube_access::ClusterAccess;
use scanfleet_scan_engine::facts::GatherLimits;
use scanfleet_scan_engine::profile::Profile;
use scanfleet_scan_engine::scan::{ScanReport, TargetError, scan};
use scanfleet_scan_engine::shell::ShellTarget;
use tokio::time::Instant;
use tracing::Instrument;

use crate::approach::{Approach, ApproachPolicy, plan};
use crate::debug_container::{self, DebugError, TargetUser};
use crate::kube_exec::{ExecStart, KubeExec};
use crate::preflight::{PreflightError, preflight};
use crate::scan_identity::{Access, IdentityError, ScanIdentity};
use crate::sidecar::{self, SidecarError};

/// Operator settings for every scan of a cluster.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// Which approaches are allowed and the sidecar's name.
    pub policy: ApproachPolicy,
    /// Image of the ephemeral debug container.
    pub debug_image: String,
    /// Bound on the wait for the debug container to run.
    pub debug_start_timeout: Duration,
    /// Bound on removing the identity after the scan.
    pub release_timeout: Duration,
    /// Engine limits (per-file bytes, walk entries, total output).
    pub limits: GatherLimits,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            policy: ApproachPolicy {
                allow_debug: true,
                sidecar_container: "scanner".into(),
            },
            debug_image: "kubesim.local/scanner:1.0".into(),
            debug_start_timeout: Duration::from_secs(60),
            release_timeout: Duration::from_secs(15),
            limits: GatherLimits::default(),
        }
    }
}

/// What to scan.
#[derive(Clone, Debug)]
pub struct ScanRequest {
    /// Scan id (ULID); names the identity.
    pub scan_id: String,
    /// Target namespace.
    pub namespace: String,
    /// Target pod.
    pub pod: String,
    /// Target container.
    pub container: String,
    /// How to reach it.
    pub approach: Approach,
    /// The profile, inputs already applied.
    pub profile: Arc<Profile>,
    /// Whole-scan deadline from now.
    pub deadline: Duration,
}

/// A finished scan.
#[derive(Debug)]
pub struct SessionOutcome {
    /// The engine's report.
    pub report: ScanReport,
    /// The approach that produced it.
    pub approach: Approach,
    /// Image reference from the pod spec.
    pub image: String,
    /// `sha256:…` the container actually runs.
    pub image_digest: String,
    /// The per-scan ServiceAccount that did the work (already deleted).
    pub service_account: String,
    /// Exec sessions opened (1 for exec and debug, 2 for sidecar).
    pub exec_sessions: u64,
}

/// Why a scan did not finish.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The target is not scannable (or not yet).
    #[error(transparent)]
    Preflight(#[from] PreflightError),
    /// The per-scan identity could not be created.
    #[error("scan identity: {0}")]
    Identity(#[from] IdentityError),
    /// The requested approach cannot work here; retrying will not help.
    #[error("{0}")]
    Refused(String),
    /// The debug container failed.
    #[error(transparent)]
    Debug(#[from] DebugError),
    /// The sidecar could not find the target.
    #[error(transparent)]
    Sidecar(#[from] SidecarError),
    /// The engine's gather failed.
    #[error("scan: {0}")]
    Scan(#[from] TargetError),
    /// The deadline passed.
    #[error("the scan did not finish within its {0:?} deadline")]
    Deadline(Duration),
    /// The engine's task panicked or was cancelled.
    #[error("scan task failed: {0}")]
    Task(String),
}

impl SessionError {
    /// Whether the Kubernetes API did not answer at all (no connection, a
    /// failed handshake): the cluster is unavailable, not the scan refused.
    pub fn cluster_unreachable(&self) -> bool {
        matches!(
            self,
            SessionError::Preflight(PreflightError::Api {
                source: kube::Error::HyperError(_) | kube::Error::Service(_),
                ..
            })
        )
    }

    /// Whether retrying the same intent cannot help.
    pub fn permanent(&self) -> bool {
        match self {
            SessionError::Preflight(p) => p.permanent(),
            SessionError::Refused(_) | SessionError::Sidecar(_) => true,
            SessionError::Debug(DebugError::NotStarted { .. }) => true,
            SessionError::Scan(TargetError::OutputCap { .. } | TargetError::Framing(_)) => true,
            SessionError::Identity(IdentityError::BadScanId(_)) => true,
            _ => false,
        }
    }
}

/// Deletes the ServiceAccount if the scan future is dropped before its
/// normal removal ran (a cancelled or drained scan).
struct ReleaseOnDrop {
    admin: ClusterAccess,
    namespace: String,
    name: String,
    armed: bool,
}

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let (admin, ns, name) = (
                self.admin.clone(),
                std::mem::take(&mut self.namespace),
                std::mem::take(&mut self.name),
            );
            handle.spawn(async move {
                if let Err(e) =
                    crate::scan_identity::delete_account(&admin.client, &ns, &name).await
                {
                    tracing::warn!(namespace = %ns, service_account = %name, error = %e,
                        "cancelled scan: identity left for the sweeper");
                }
            });
        }
    }
}

/// Runs one scan.
///
/// # Errors
/// [`SessionError`]; [`SessionError::permanent`] says whether to retry.
pub async fn run_scan(
    admin: &ClusterAccess,
    config: &SessionConfig,
    request: ScanRequest,
) -> Result<SessionOutcome, SessionError> {
    run_scan_detailed(admin, config, request)
        .await
        .map_err(|f| f.error)
}

/// A failed scan, with the image pre-flight saw when it got that far, so a
/// failed result can still be a signed statement about that digest.
#[derive(Debug)]
pub struct SessionFailure {
    /// Why.
    pub error: SessionError,
    /// `(image reference, sha256 digest)` from pre-flight.
    pub image: Option<(String, String)>,
}

/// [`run_scan`], keeping what pre-flight learned on failure.
///
/// # Errors
/// [`SessionFailure`].
pub async fn run_scan_detailed(
    admin: &ClusterAccess,
    config: &SessionConfig,
    request: ScanRequest,
) -> Result<SessionOutcome, SessionFailure> {
    let span = tracing::info_span!("scan_session", scan_id = %request.scan_id,
        target = %format!("{}/{}/{}", request.namespace, request.pod, request.container));
    let seen = std::sync::Mutex::new(None);
    let result = run_scan_inner(admin, config, request, &seen)
        .instrument(span)
        .await;
    result.map_err(|error| SessionFailure {
        error,
        image: seen.into_inner().unwrap_or_else(|p| p.into_inner()),
    })
}

async fn run_scan_inner(
    admin: &ClusterAccess,
    config: &SessionConfig,
    request: ScanRequest,
    seen: &std::sync::Mutex<Option<(String, String)>>,
) -> Result<SessionOutcome, SessionError> {
    let deadline = Instant::now() + request.deadline;
    let pre = tokio::time::timeout_at(
        deadline,
        preflight(
            &admin.client,
            &request.namespace,
            &request.pod,
            &request.container,
        ),
    )
    .await
    .map_err(|_| SessionError::Deadline(request.deadline))??;
    *seen.lock().unwrap_or_else(|p| p.into_inner()) =
        Some((pre.image.clone(), pre.image_digest.clone()));
    let plan = plan(
        request.approach,
        &pre.pod,
        &request.container,
        &config.policy,
    )
    .map_err(SessionError::Refused)?;
    let access = if plan.first == Approach::Debug {
        Access::ExecAndEphemeral
    } else {
        Access::Exec
    };
    let identity = tokio::time::timeout_at(
        deadline,
        ScanIdentity::provision(admin, &pre.pod, &request.scan_id, access, request.deadline),
    )
    .await
    .map_err(|_| SessionError::Deadline(request.deadline))??;
    let mut guard = ReleaseOnDrop {
        admin: admin.clone(),
        namespace: identity.namespace.clone(),
        name: identity.service_account.clone(),
        armed: true,
    };
    tracing::info!(service_account = %identity.service_account, approach = %plan.first, "scan identity ready");
    let work = async {
        let mut approach = plan.first;
        let mut result = match approach {
            Approach::Sidecar => {
                sidecar_scan(config, &request, &pre.pod, &identity, deadline).await
            }
            Approach::Debug => debug_scan(config, &request, &pre.pod, &identity, deadline).await,
            _ => exec_scan(config, &request, &identity, deadline).await,
        };
        if let Err(ScanFailure::ShellMissing(reason)) = &result {
            if plan.fall_back_to_debug {
                tracing::info!("no shell in the target; falling back to a debug container");
                identity
                    .grant_ephemeral(admin, &request.pod, &identity.account_uid)
                    .await?;
                approach = Approach::Debug;
                result = debug_scan(config, &request, &pre.pod, &identity, deadline).await;
            } else {
                let why = if request.approach == Approach::Auto {
                    "distroless target and debug containers are disabled by policy"
                } else {
                    "the target has no /bin/sh for the exec approach; use debug or sidecar"
                };
                return Err(SessionError::Refused(format!("{why} ({reason})")));
            }
        }
        match result {
            Ok((report, sessions)) => Ok((report, sessions, approach)),
            Err(ScanFailure::ShellMissing(m)) => Err(SessionError::Refused(format!(
                "the debug container has no /bin/sh ({m})"
            ))),
            Err(ScanFailure::Session(e)) => Err(e),
        }
    };
    let result = match tokio::time::timeout_at(deadline, work).await {
        // The exec carries the same deadline and may notice it first.
        Ok(Err(_)) if Instant::now() >= deadline => Err(SessionError::Deadline(request.deadline)),
        Ok(r) => r,
        Err(_) => Err(SessionError::Deadline(request.deadline)),
    };
    let name = identity.service_account.clone();
    match tokio::time::timeout(config.release_timeout, identity.release(admin)).await {
        Ok(Ok(())) => guard.armed = false,
        Ok(Err(e)) => {
            tracing::warn!(service_account = %name, error = %e, "identity left for the sweeper");
            guard.armed = false;
        }
        Err(_) => {
            tracing::warn!(service_account = %name, "identity removal timed out; retrying in the background");
        }
    }
    drop(guard);
    let (report, exec_sessions, approach) = result?;
    Ok(SessionOutcome {
        report,
        approach,
        image: pre.image,
        image_digest: pre.image_digest,
        service_account: name,
        exec_sessions,
    })
}

enum ScanFailure {
    ShellMissing(String),
    Session(SessionError),
}

impl<E: Into<SessionError>> From<E> for ScanFailure {
    fn from(e: E) -> Self {
        ScanFailure::Session(e.into())
    }
}

fn target_label(r: &ScanRequest) -> String {
    format!("k8s://{}/{}/{}", r.namespace, r.pod, r.container)
}

/// Runs the engine over `exec` with `root_prefix`, on a blocking thread.
async fn engine(
    config: &SessionConfig,
    request: &ScanRequest,
    exec: KubeExec,
    root_prefix: String,
) -> Result<(ScanReport, u64), ScanFailure> {
    let sessions = exec.round_trips.clone();
    let missing = exec.shell_missing.clone();
    let target = ShellTarget::new(exec, root_prefix, config.limits).known_container();
    let profile = request.profile.clone();
    let span = tracing::Span::current();
    let outcome = tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        scan(&profile, &target)
    })
    .await
    .map_err(|e| SessionError::Task(e.to_string()))?;
    if let Some(m) = missing.lock().unwrap_or_else(|p| p.into_inner()).take() {
        return Err(ScanFailure::ShellMissing(m));
    }
    Ok((outcome?, sessions.load(Ordering::Relaxed)))
}

async fn exec_scan(
    config: &SessionConfig,
    request: &ScanRequest,
    identity: &ScanIdentity,
    deadline: Instant,
) -> Result<(ScanReport, u64), ScanFailure> {
    let exec = KubeExec::new(
        identity.client.clone(),
        &request.namespace,
        &request.pod,
        &request.container,
        deadline,
    );
    engine(config, request, exec, String::new()).await
}

async fn debug_scan(
    config: &SessionConfig,
    request: &ScanRequest,
    pod: &k8s_openapi::api::core::v1::Pod,
    identity: &ScanIdentity,
    deadline: Instant,
) -> Result<(ScanReport, u64), ScanFailure> {
    let nonce = {
        use rand_core::RngCore;
        // Decimal: it is also the fraction of the sleep's seconds.
        format!("{:012}", rand_core::OsRng.next_u64() % 1_000_000_000_000)
    };
    let nonce = nonce.as_str();
    let name = format!("scanfleet-{}", &nonce[..8]);
    let lifetime = deadline.saturating_duration_since(Instant::now());
    let container = debug_container::debug_container(
        &name,
        &config.debug_image,
        &request.container,
        TargetUser::of(pod, &request.container),
        lifetime,
        nonce,
    );
    debug_container::start(
        &identity.client,
        &request.namespace,
        &request.pod,
        container,
        config.debug_start_timeout.min(lifetime),
    )
    .await?;
    let exec = KubeExec::new(
        identity.client.clone(),
        &request.namespace,
        &request.pod,
        &name,
        deadline,
    )
    .labelled(target_label(request))
    .with_preamble(debug_container::end_on_exit_preamble(lifetime, nonce));
    engine(config, request, exec, "/proc/1/root".into()).await
}

async fn sidecar_scan(
    config: &SessionConfig,
    request: &ScanRequest,
    pod: &k8s_openapi::api::core::v1::Pod,
    identity: &ScanIdentity,
    deadline: Instant,
) -> Result<(ScanReport, u64), ScanFailure> {
    let exec = KubeExec::new(
        identity.client.clone(),
        &request.namespace,
        &request.pod,
        &config.policy.sidecar_container,
        deadline,
    )
    .labelled(target_label(request));
    let (out, start) = exec
        .run(sidecar::DISCOVERY_SCRIPT.as_bytes(), 1 << 20)
        .await
        .map_err(|e| SessionError::Scan(TargetError::Exec(e.to_string())))?;
    if let ExecStart::CommandMissing(m) = start {
        return Err(ScanFailure::ShellMissing(m));
    }
    let candidates = sidecar::parse_candidates(&out.stdout)?;
    let pid = sidecar::pick_target(&candidates, pod, &request.container)?;
    tracing::debug!(pid, "sidecar found the target's main process");
    engine(config, request, exec, format!("/proc/{pid}/root")).await
}
