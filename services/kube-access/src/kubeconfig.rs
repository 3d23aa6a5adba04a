//! A kubeconfig is untrusted input: read bounded, parsed with its source
//! named, and checked against the settings scanfleet refuses (see the crate
//! documentation) before any client is built from it.

use std::path::Path;

use kube::config::Kubeconfig;
use zeroize::Zeroizing;

use crate::KubeAccessError;

/// The largest kubeconfig accepted; real ones are a few kilobytes.
pub const MAX_KUBECONFIG_BYTES: u64 = 1024 * 1024;

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

/// Parses kubeconfig text, naming `source_name` when it is not one.
pub(crate) fn parse_kubeconfig(
    text: &str,
    source_name: &str,
) -> Result<Kubeconfig, KubeAccessError> {
    Kubeconfig::from_yaml(text).map_err(|e| KubeAccessError::Parse {
        source_name: source_name.to_owned(),
        reason: e.to_string(),
    })
}

/// Reads a kubeconfig file of at most [`MAX_KUBECONFIG_BYTES`]; the text may
/// hold credentials, so it is zeroized on drop.
pub(crate) fn read_kubeconfig(path: &Path) -> Result<Zeroizing<String>, KubeAccessError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{client_from_kubeconfig, client_from_kubeconfig_file};

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
