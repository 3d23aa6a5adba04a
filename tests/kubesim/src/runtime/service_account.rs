//! The projected ServiceAccount volume the kubelet writes for a container:
//! a pod-bound token (3607 s), the cluster CA and the namespace.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{Runtime, pod_key};

/// Where the kubelet mounts the projected ServiceAccount token.
pub const SA_MOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

impl Runtime {
    /// Writes the projected ServiceAccount volume (a pod-bound token, the CA,
    /// the namespace) for containers that mount it, as the kubelet does.
    pub(super) fn service_account_files(
        &self,
        pod: &Value,
        c: &Value,
        dir: &Path,
    ) -> Result<Option<PathBuf>, String> {
        let mounted = c["volumeMounts"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|m| m["mountPath"] == SA_MOUNT);
        if !mounted {
            return Ok(None);
        }
        let ns = pod["metadata"]["namespace"].as_str().unwrap_or("");
        let sa_name = pod["spec"]["serviceAccountName"]
            .as_str()
            .unwrap_or("default");
        let sa = self
            .inner
            .store
            .get("serviceaccounts", ns, sa_name)
            .ok_or_else(|| format!("serviceaccount {ns}/{sa_name} not found"))?;
        let now = self.inner.clock.now();
        let claims = crate::tokens::Claims {
            aud: vec![crate::tokens::ISSUER.into()],
            exp: now + 3607,
            iat: now,
            iss: crate::tokens::ISSUER.into(),
            jti: uuid::Uuid::new_v4().to_string(),
            kubernetes: crate::tokens::KubeClaims {
                namespace: ns.into(),
                pod: Some(crate::tokens::Ref {
                    name: pod["metadata"]["name"].as_str().unwrap_or("").into(),
                    uid: pod_key(pod),
                }),
                serviceaccount: crate::tokens::Ref {
                    name: sa_name.into(),
                    uid: sa["metadata"]["uid"].as_str().unwrap_or("").into(),
                },
            },
            nbf: now,
            sub: format!("system:serviceaccount:{ns}:{sa_name}"),
        };
        let token = self.inner.signer.sign(&claims).map_err(|e| e.to_string())?;
        let sa_dir = dir.join("serviceaccount");
        std::fs::create_dir_all(&sa_dir).map_err(|e| e.to_string())?;
        for (file, text) in [
            ("token", token.as_str()),
            ("ca.crt", self.inner.ca_pem.as_str()),
            ("namespace", ns),
        ] {
            std::fs::write(sa_dir.join(file), text).map_err(|e| e.to_string())?;
        }
        Ok(Some(sa_dir))
    }
}
