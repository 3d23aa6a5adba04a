//! The pod's own identity: the ServiceAccount volume kubelet projects, and
//! the API server address Kubernetes puts in the environment. Nothing else
//! is consulted (no `Config::infer` fallbacks).

use std::path::Path;

use kube::config::{
    AuthInfo, Cluster, Config, Context, KubeConfigOptions, Kubeconfig, NamedAuthInfo, NamedCluster,
    NamedContext,
};
use zeroize::Zeroizing;

use crate::client::client_from_config;
use crate::{ApiThrottle, ClusterAccess, KubeAccessError};

/// Where Kubernetes mounts a pod's ServiceAccount token, CA and namespace.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The source named in errors about the in-cluster identity.
const IN_CLUSTER: &str = "in-cluster ServiceAccount";

impl ClusterAccess {
    /// The pod's own ServiceAccount (in-cluster), with the cluster's
    /// throttle: the API server from `KUBERNETES_SERVICE_HOST`/`_PORT`, the
    /// token and CA from [`SERVICE_ACCOUNT_DIR`]. Nothing else is consulted.
    ///
    /// # Errors
    /// [`KubeAccessError`] naming what is missing when not running in a
    /// cluster.
    pub async fn in_cluster(throttle: ApiThrottle) -> Result<Self, KubeAccessError> {
        let host =
            std::env::var("KUBERNETES_SERVICE_HOST").map_err(|_| KubeAccessError::Config {
                source_name: IN_CLUSTER.to_owned(),
                reason: "KUBERNETES_SERVICE_HOST is not set (not running in a pod?)".into(),
            })?;
        let port = std::env::var("KUBERNETES_SERVICE_PORT").unwrap_or_else(|_| "443".into());
        Self::from_service_account_dir(Path::new(SERVICE_ACCOUNT_DIR), &host, &port, throttle).await
    }

    /// A ServiceAccount's projected volume (`token`, `ca.crt`, optional
    /// `namespace`) in `dir`, for the API server at `host:port`.
    ///
    /// The token is referenced by path, not copied: kubelet rotates
    /// projected tokens (hourly by default) and a worker outlives many of
    /// them, so kube re-reads the file about once a minute. That is the one
    /// place a token file is accepted: the path is fixed by the platform,
    /// not named by untrusted input.
    ///
    /// # Errors
    /// [`KubeAccessError`] naming the file or setting at fault.
    pub async fn from_service_account_dir(
        dir: &Path,
        host: &str,
        port: &str,
        throttle: ApiThrottle,
    ) -> Result<Self, KubeAccessError> {
        use base64::Engine as _;
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(config_error(format!(
                "API server address {host:?}:{port:?} is not a host and port"
            )));
        }
        let token_path = dir.join("token");
        let token = Zeroizing::new(
            std::fs::read_to_string(&token_path)
                .map_err(|e| config_error(format!("{}: {e}", token_path.display())))?,
        );
        if token.trim().is_empty() {
            return Err(config_error(format!(
                "{}: empty token",
                token_path.display()
            )));
        }
        let ca_path = dir.join("ca.crt");
        let ca = std::fs::read(&ca_path)
            .map_err(|e| config_error(format!("{}: {e}", ca_path.display())))?;
        let namespace = std::fs::read_to_string(dir.join("namespace"))
            .map(|n| n.trim().to_owned())
            .unwrap_or_else(|_| "default".into());
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        let server = format!("https://{host}:{port}");
        let ca_data = base64::engine::general_purpose::STANDARD.encode(&ca);
        let kubeconfig = service_account_kubeconfig(&server, &ca_data, &token_path, namespace);
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| config_error(e.to_string()))?;
        Ok(Self {
            client: client_from_config(config, IN_CLUSTER, Some(&throttle))?,
            server,
            ca_data: Some(ca_data),
            throttle,
        })
    }
}

fn config_error(reason: String) -> KubeAccessError {
    KubeAccessError::Config {
        source_name: IN_CLUSTER.to_owned(),
        reason,
    }
}

/// The in-memory kubeconfig for the projected volume: the token by path (so
/// kubelet's rotation is followed), the CA inline.
fn service_account_kubeconfig(
    server: &str,
    ca_data: &str,
    token_path: &Path,
    namespace: String,
) -> Kubeconfig {
    Kubeconfig {
        clusters: vec![NamedCluster {
            name: "in-cluster".into(),
            cluster: Some(Cluster {
                server: Some(server.to_owned()),
                certificate_authority_data: Some(ca_data.to_owned()),
                ..Default::default()
            }),
            other: Default::default(),
        }],
        auth_infos: vec![NamedAuthInfo {
            name: "service-account".into(),
            auth_info: Some(AuthInfo {
                token_file: Some(token_path.display().to_string()),
                ..Default::default()
            }),
            other: Default::default(),
        }],
        contexts: vec![NamedContext {
            name: "in-cluster".into(),
            context: Some(Context {
                cluster: "in-cluster".into(),
                user: Some("service-account".into()),
                namespace: Some(namespace),
                ..Default::default()
            }),
            other: Default::default(),
        }],
        current_context: Some("in-cluster".into()),
        ..Default::default()
    }
}
