//! Where an image scan's registry login comes from: nowhere (anonymous
//! pulls), a pull secret in Docker's `dockerconfigjson` format read once
//! from a file at start-up, or a Kubernetes `kubernetes.io/dockerconfigjson`
//! Secret read with the worker's own identity at every image scan (so a
//! rotated Secret is followed without a restart). The login is chosen by
//! the intent's registry host; a registry the secret does not name is
//! pulled anonymously.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use scanfleet_image_fetch::pull_secret::{PullSecret, RegistryLogin};
use scanfleet_kube_access::ClusterAccess;

/// The Secret type and key Kubernetes keeps registry logins under.
const DOCKER_CONFIG_TYPE: &str = "kubernetes.io/dockerconfigjson";
const DOCKER_CONFIG_KEY: &str = ".dockerconfigjson";

/// A Secret named `namespace/name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretName {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl SecretName {
    /// Parses `NAMESPACE/NAME` (both DNS-1123 names).
    ///
    /// # Errors
    /// A message naming what is wrong.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let (namespace, name) = raw
            .split_once('/')
            .ok_or_else(|| format!("{raw:?}: expected NAMESPACE/NAME"))?;
        scanfleet_scan_intents::NamespaceName::new(namespace)
            .map_err(|e| format!("{raw:?}: namespace: {e}"))?;
        let valid = !name.is_empty()
            && name.len() <= 253
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !valid {
            return Err(format!("{raw:?}: {name:?} is not a Secret name"));
        }
        Ok(Self {
            namespace: namespace.into(),
            name: name.into(),
        })
    }
}

impl std::fmt::Display for SecretName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The source of registry logins.
#[derive(Debug, Clone, Default)]
pub enum RegistryLogins {
    /// Anonymous pulls only.
    #[default]
    Anonymous,
    /// A pull secret read at start-up.
    Fixed(Arc<PullSecret>),
    /// A `dockerconfigjson` Secret, read at every image scan.
    Secret {
        /// The worker's own cluster access.
        access: ClusterAccess,
        /// Which Secret.
        secret: SecretName,
    },
}

impl RegistryLogins {
    /// The login for `registry`, if any; the error says why the logins
    /// could not be read and whether that is permanent.
    pub async fn login_for(&self, registry: &str) -> Result<Option<RegistryLogin>, (String, bool)> {
        match self {
            Self::Anonymous => Ok(None),
            Self::Fixed(secret) => Ok(secret.login_for(registry).cloned()),
            Self::Secret { access, secret } => {
                let pull_secret = read_secret(access, secret).await?;
                Ok(pull_secret.login_for(registry).cloned())
            }
        }
    }
}

/// Reads and parses the Secret. A missing or forbidden Secret, or one
/// that is not a `dockerconfigjson`, is a permanent failure: retrying
/// would ask again for what the cluster already refused.
async fn read_secret(
    access: &ClusterAccess,
    secret: &SecretName,
) -> Result<PullSecret, (String, bool)> {
    let api = kube::Api::<Secret>::namespaced(access.client.clone(), &secret.namespace);
    let found = api.get(&secret.name).await.map_err(|e| match e {
        kube::Error::Api(status) if matches!(status.code, 401 | 403 | 404) => (
            format!("registry pull secret {secret}: {}", status.message),
            true,
        ),
        other => (
            format!("reading registry pull secret {secret}: {other}"),
            false,
        ),
    })?;
    let wrong = |problem: String| (format!("registry pull secret {secret}: {problem}"), true);
    let kind = found.type_.as_deref().unwrap_or_default();
    if kind != DOCKER_CONFIG_TYPE {
        return Err(wrong(format!(
            "type {kind:?}, expected {DOCKER_CONFIG_TYPE:?}"
        )));
    }
    let bytes = found
        .data
        .as_ref()
        .and_then(|d| d.get(DOCKER_CONFIG_KEY))
        .ok_or_else(|| wrong(format!("no {DOCKER_CONFIG_KEY} key")))?;
    PullSecret::parse(&bytes.0, &format!("secret {secret}")).map_err(|e| (e.to_string(), true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_are_namespace_and_name() {
        assert_eq!(
            SecretName::parse("ci/registry-pull").unwrap().to_string(),
            "ci/registry-pull"
        );
        for bad in ["registry-pull", "Ci/x", "ci/", "ci/UPPER", "ci/a/b"] {
            assert!(SecretName::parse(bad).is_err(), "{bad}");
        }
    }
}
