//! How a service reaches one cluster of its cluster registry: a kubeconfig
//! (typically a mounted Secret per remote cluster) or the pod's in-cluster
//! ServiceAccount. Intake and workers both read registry entries, so the
//! rule for an entry, and the checks a kubeconfig goes through
//! (`check_kubeconfig`: CA-pinned TLS, no insecure skips, no exec plugins),
//! live here once.

use std::path::PathBuf;

use crate::api_throttle::ApiThrottle;
use crate::cluster_access::ClusterAccess;
use crate::error::KubeAccessError;
use crate::kubeconfig::read_kubeconfig;

/// One way to reach a cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterReach {
    /// A kubeconfig file, checked like every kubeconfig.
    Kubeconfig(PathBuf),
    /// The ServiceAccount of the pod the service runs in.
    InCluster,
}

impl ClusterReach {
    /// A service's own cluster: the kubeconfig it was given, else the
    /// ServiceAccount of the pod it runs in (the deployed default).
    pub fn kubeconfig_or_in_cluster(kubeconfig: Option<&std::path::Path>) -> Self {
        match kubeconfig {
            Some(path) => Self::Kubeconfig(path.to_owned()),
            None => Self::InCluster,
        }
    }

    /// Reads a registry entry's `kubeconfig` / `in_cluster` fields; exactly
    /// one must say how to reach the cluster. `at` names the entry in
    /// problems (`clusters[1] (west)`).
    pub fn from_entry(
        kubeconfig: Option<PathBuf>,
        in_cluster: Option<bool>,
        at: &str,
        errors: &mut Vec<String>,
    ) -> Option<Self> {
        match (kubeconfig, in_cluster.unwrap_or(false)) {
            (Some(_), true) => {
                errors.push(format!(
                    "{at}: give kubeconfig or in_cluster: true, not both"
                ));
                None
            }
            (Some(path), false) if !path.is_file() => {
                errors.push(format!("{at}.kubeconfig: {} is not a file", path.display()));
                None
            }
            (Some(path), false) => Some(Self::Kubeconfig(path)),
            (None, true) => Some(Self::InCluster),
            (None, false) => {
                errors.push(format!(
                    "{at}: say how to reach the cluster: kubeconfig: PATH (e.g. a mounted \
                     Secret) or in_cluster: true"
                ));
                None
            }
        }
    }

    /// Connects, every call through `throttle`.
    ///
    /// # Errors
    /// [`KubeAccessError`] naming the kubeconfig's problem, or the missing
    /// in-cluster identity.
    pub async fn connect(&self, throttle: ApiThrottle) -> Result<ClusterAccess, KubeAccessError> {
        match self {
            Self::Kubeconfig(path) => {
                let text = read_kubeconfig(path)?;
                ClusterAccess::from_kubeconfig_throttled(
                    &text,
                    &path.display().to_string(),
                    throttle,
                )
                .await
            }
            Self::InCluster => ClusterAccess::in_cluster(throttle).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_names_exactly_one_way_in() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kubeconfig");
        std::fs::write(&file, "apiVersion: v1\n").unwrap();
        let mut errors = Vec::new();
        assert_eq!(
            ClusterReach::from_entry(Some(file.clone()), None, "c", &mut errors),
            Some(ClusterReach::Kubeconfig(file.clone()))
        );
        assert_eq!(
            ClusterReach::from_entry(None, Some(true), "c", &mut errors),
            Some(ClusterReach::InCluster)
        );
        assert!(errors.is_empty());
        for (kubeconfig, in_cluster, needle) in [
            (Some(file), Some(true), "not both"),
            (None, None, "say how to reach"),
            (None, Some(false), "say how to reach"),
            (Some(dir.path().join("gone")), None, "gone is not a file"),
        ] {
            let mut errors = Vec::new();
            assert_eq!(
                ClusterReach::from_entry(kubeconfig, in_cluster, "clusters[0] (east)", &mut errors),
                None
            );
            assert!(errors[0].starts_with("clusters[0] (east)"), "{errors:?}");
            assert!(errors[0].contains(needle), "{needle} in {errors:?}");
        }
    }
}
