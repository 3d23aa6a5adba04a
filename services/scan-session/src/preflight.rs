//! Before anything is created for a scan: is the target there, running, and
//! which image digest does it actually run?
//!
//! The digest comes from `status.containerStatuses[].imageID` (what the
//! kubelet pulled), never from the spec's tag, because the signed result is a
//! statement about exactly that digest.

use k8s_openapi::api::core::v1::Pod;
use kube::Api;

/// A target that passed pre-flight.
#[derive(Clone, Debug)]
pub struct Preflight {
    /// The pod as read (needed for ownerReferences and the approach choice).
    pub pod: Pod,
    /// The image reference from the spec.
    pub image: String,
    /// `sha256:<hex>` from the container status.
    pub image_digest: String,
}

/// Why a target cannot be scanned. `permanent()` tells the intent loop
/// whether retrying could help.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    /// No such pod.
    #[error("pod {namespace}/{pod} not found")]
    PodNotFound {
        /// Namespace.
        namespace: String,
        /// Pod.
        pod: String,
    },
    /// The pod exists but is not running.
    #[error("pod {namespace}/{pod} is {phase}, not Running")]
    NotRunning {
        /// Namespace.
        namespace: String,
        /// Pod.
        pod: String,
        /// Its phase.
        phase: String,
    },
    /// No container of that name (regular containers only).
    #[error("pod {namespace}/{pod} has no container {container:?} (it has: {available})")]
    NoSuchContainer {
        /// Namespace.
        namespace: String,
        /// Pod.
        pod: String,
        /// The requested container.
        container: String,
        /// The containers it has.
        available: String,
    },
    /// The container is not running yet, or reports no digest.
    #[error(
        "container {container:?} of {namespace}/{pod} is not running with a known image digest"
    )]
    NotReady {
        /// Namespace.
        namespace: String,
        /// Pod.
        pod: String,
        /// Container.
        container: String,
    },
    /// The API call failed.
    #[error("reading pod {namespace}/{pod}: {source}")]
    Api {
        /// Namespace.
        namespace: String,
        /// Pod.
        pod: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
}

impl PreflightError {
    /// Whether retrying later cannot help.
    pub fn permanent(&self) -> bool {
        matches!(
            self,
            PreflightError::PodNotFound { .. } | PreflightError::NoSuchContainer { .. }
        )
    }
}

/// Reads the pod and checks the target.
///
/// # Errors
/// [`PreflightError`] naming the problem.
pub async fn preflight(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    container: &str,
) -> Result<Preflight, PreflightError> {
    let found = Api::<Pod>::namespaced(client.clone(), namespace)
        .get_opt(pod)
        .await
        .map_err(|source| PreflightError::Api {
            namespace: namespace.into(),
            pod: pod.into(),
            source,
        })?
        .ok_or_else(|| PreflightError::PodNotFound {
            namespace: namespace.into(),
            pod: pod.into(),
        })?;
    let phase = found
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_else(|| "Unknown".into());
    if phase != "Running" {
        return Err(PreflightError::NotRunning {
            namespace: namespace.into(),
            pod: pod.into(),
            phase,
        });
    }
    let containers = found
        .spec
        .as_ref()
        .map(|s| s.containers.clone())
        .unwrap_or_default();
    let Some(spec) = containers.iter().find(|c| c.name == container) else {
        return Err(PreflightError::NoSuchContainer {
            namespace: namespace.into(),
            pod: pod.into(),
            container: container.into(),
            available: containers
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    };
    let not_ready = || PreflightError::NotReady {
        namespace: namespace.into(),
        pod: pod.into(),
        container: container.into(),
    };
    let status = found
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|all| all.iter().find(|s| s.name == container))
        .ok_or_else(not_ready)?;
    if status
        .state
        .as_ref()
        .and_then(|s| s.running.as_ref())
        .is_none()
    {
        return Err(not_ready());
    }
    let image_digest = status
        .image_id
        .rsplit_once('@')
        .map(|(_, d)| d)
        .unwrap_or(status.image_id.as_str());
    if !(image_digest.starts_with("sha256:") && image_digest.len() == 71) {
        return Err(not_ready());
    }
    Ok(Preflight {
        image: spec.image.clone().unwrap_or_default(),
        image_digest: image_digest.to_owned(),
        pod: found.clone(),
    })
}
