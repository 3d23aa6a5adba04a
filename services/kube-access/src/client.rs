//! A kube client from a kubeconfig that passed the checks: TLS verification
//! on, an https:// server, and, under a cluster's throttle, kube's own
//! retries switched off so the throttle is the only retry policy.

use std::path::Path;

use kube::config::{Config, KubeConfigOptions};

use crate::kubeconfig::{check_kubeconfig, parse_kubeconfig, read_kubeconfig};
use crate::{ApiThrottle, KubeAccessError};

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

/// Builds a client from a kubeconfig file.
///
/// # Errors
/// [`KubeAccessError`] naming what is wrong and where.
pub async fn client_from_kubeconfig_file(path: &Path) -> Result<kube::Client, KubeAccessError> {
    let text = read_kubeconfig(path)?;
    client_from_kubeconfig(&text, &path.display().to_string()).await
}

/// Parses and checks `text`, then builds its client, behind `throttle`
/// when given.
pub(crate) async fn throttled_client(
    text: &str,
    source_name: &str,
    throttle: Option<&ApiThrottle>,
) -> Result<kube::Client, KubeAccessError> {
    let kubeconfig = parse_kubeconfig(text, source_name)?;
    check_kubeconfig(&kubeconfig, source_name)?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| KubeAccessError::Config {
            source_name: source_name.to_owned(),
            reason: e.to_string(),
        })?;
    client_from_config(config, source_name, throttle)
}

/// The last gate before a client exists: whatever the config came from, TLS
/// verification must be on and the server https://.
pub(crate) fn client_from_config(
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
