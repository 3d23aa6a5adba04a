//! [`ClusterAccess`]: a cluster as scanfleet's own identity reaches it, and
//! the per-scan clients and kubeconfigs derived from it (same server, same
//! pinned CA, same throttle).

use std::path::Path;

use zeroize::Zeroizing;

use crate::client::throttled_client;
use crate::kubeconfig::{parse_kubeconfig, read_kubeconfig};
use crate::{ApiThrottle, KubeAccessError, ThrottleConfig};

/// A cluster as scanfleet's own identity reaches it: the client plus what a
/// per-scan kubeconfig needs (the server and the CA that pins it).
#[derive(Clone)]
pub struct ClusterAccess {
    /// The client with the identity's credentials.
    pub client: kube::Client,
    /// The API server URL.
    pub server: String,
    /// Base64 PEM of the CA that must sign the server certificate, when the
    /// kubeconfig pins one (otherwise the system roots apply).
    pub ca_data: Option<String>,
    /// The cluster's one rate limit, shared by every client built from this
    /// access (the per-scan identities' included).
    pub throttle: ApiThrottle,
}

impl std::fmt::Debug for ClusterAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterAccess")
            .field("server", &self.server)
            .field("throttle", &self.throttle)
            .finish_non_exhaustive()
    }
}

impl ClusterAccess {
    /// Reads a kubeconfig file, refusing what `check_kubeconfig` refuses.
    ///
    /// # Errors
    /// [`KubeAccessError`] naming the problem.
    pub async fn from_kubeconfig_file(path: &Path) -> Result<Self, KubeAccessError> {
        let source_name = path.display().to_string();
        let text = read_kubeconfig(path)?;
        Self::from_kubeconfig(&text, &source_name).await
    }

    /// Same, from text.
    ///
    /// # Errors
    /// [`KubeAccessError`] naming the problem.
    pub async fn from_kubeconfig(text: &str, source_name: &str) -> Result<Self, KubeAccessError> {
        let throttle =
            ApiThrottle::new(ThrottleConfig::default()).map_err(|e| KubeAccessError::Config {
                source_name: source_name.to_owned(),
                reason: e.to_string(),
            })?;
        Self::from_kubeconfig_throttled(text, source_name, throttle).await
    }

    /// Same, with the cluster's throttle.
    ///
    /// # Errors
    /// [`KubeAccessError`] naming the problem.
    pub async fn from_kubeconfig_throttled(
        text: &str,
        source_name: &str,
        throttle: ApiThrottle,
    ) -> Result<Self, KubeAccessError> {
        let kubeconfig = parse_kubeconfig(text, source_name)?;
        let current = kubeconfig.current_context.clone().unwrap_or_default();
        let cluster_name = kubeconfig
            .contexts
            .iter()
            .find(|c| c.name == current)
            .and_then(|c| c.context.as_ref())
            .map(|c| c.cluster.clone())
            .ok_or_else(|| KubeAccessError::Config {
                source_name: source_name.to_owned(),
                reason: format!("current context {current:?} is not defined"),
            })?;
        let cluster = kubeconfig
            .clusters
            .iter()
            .find(|c| c.name == cluster_name)
            .and_then(|c| c.cluster.clone())
            .ok_or_else(|| KubeAccessError::Config {
                source_name: source_name.to_owned(),
                reason: format!("cluster {cluster_name:?} is not defined"),
            })?;
        let client = throttled_client(text, source_name, Some(&throttle)).await?;
        Ok(Self {
            client,
            server: cluster.server.unwrap_or_default(),
            ca_data: cluster.certificate_authority_data,
            throttle,
        })
    }

    /// A client authenticating with `token` against the same server, CA and
    /// throttle. The kubeconfig it is built from lives only in memory.
    ///
    /// # Errors
    /// [`KubeAccessError`] when the client cannot be built.
    pub async fn client_for_token(
        &self,
        user: &str,
        token: &str,
        namespace: &str,
    ) -> Result<kube::Client, KubeAccessError> {
        let kubeconfig = self.kubeconfig_for_token(user, token, namespace);
        throttled_client(&kubeconfig, "per-scan identity", Some(&self.throttle)).await
    }

    /// A kubeconfig for `token` against the same server and CA, for a
    /// per-scan identity. Held in memory only; zeroized on drop.
    pub fn kubeconfig_for_token(
        &self,
        user: &str,
        token: &str,
        namespace: &str,
    ) -> Zeroizing<String> {
        let ca = self
            .ca_data
            .as_ref()
            .map(|d| format!("    certificate-authority-data: {d}\n"))
            .unwrap_or_default();
        Zeroizing::new(format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: scan\n\
             clusters:\n- name: target\n  cluster:\n    server: {server}\n{ca}\
             users:\n- name: {user}\n  user:\n    token: {token}\n\
             contexts:\n- name: scan\n  context:\n    cluster: target\n    user: {user}\n    namespace: {namespace}\n",
            server = self.server,
        ))
    }
}
