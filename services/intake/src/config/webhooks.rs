//! The `webhooks:` section, validated: one route per registry family,
//! each with its secret read from a file (never logged or echoed).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use scanfleet_registry_events::{Endpoint, Limits, SharedSecretAuth, WebhookSecret};
use scanfleet_scan_intents::{ImageDigest, ProfileName, ProfilePin, ProfileRef};

use super::file::{FileProfile, FileWebhooks};
use crate::push_watches::WatchLimits;
use crate::registry_webhooks::WebhookRoute;

/// Registry webhooks, validated.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// The profile pushed images are scanned with.
    pub profile: ProfileRef,
    /// Routes by name.
    pub routes: BTreeMap<String, WebhookRoute>,
    /// `Retry-After` on backpressure.
    pub retry_after: Duration,
    /// Push watch bounds.
    pub watch_limits: WatchLimits,
}

/// A profile reference, validated; problems are named by `at`.
pub(super) fn profile(p: &FileProfile, at: &str, errors: &mut Vec<String>) -> Option<ProfileRef> {
    let name = ProfileName::new(&p.name)
        .map_err(|e| errors.push(format!("{at}.name {:?}: {e}", p.name)))
        .ok();
    let pin = match (&p.version, &p.digest) {
        (Some(v), None) => ProfilePin::version(v)
            .map_err(|e| errors.push(format!("{at}.version {v:?}: {e}")))
            .ok(),
        (None, Some(d)) => ImageDigest::parse(d)
            .map(ProfilePin::Digest)
            .map_err(|e| errors.push(format!("{at}.digest {d:?}: {e}")))
            .ok(),
        _ => {
            errors.push(format!("{at}: set exactly one of version or digest"));
            None
        }
    };
    Some(ProfileRef {
        name: name?,
        pin: pin?,
    })
}

/// Reads a secret file; the value is never logged or echoed.
fn secret(path: &Path, at: &str, errors: &mut Vec<String>) -> Option<WebhookSecret> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            errors.push(format!("{at}.secret_file {}: {e}", path.display()));
            return None;
        }
    };
    let mut bytes = bytes;
    if bytes.ends_with(b"\n") {
        bytes.pop();
        if bytes.ends_with(b"\r") {
            bytes.pop();
        }
    }
    WebhookSecret::new(bytes)
        .map_err(|e| errors.push(format!("{at}.secret_file {}: {e}", path.display())))
        .ok()
}

pub(super) fn webhooks(w: &FileWebhooks, errors: &mut Vec<String>) -> Option<WebhookConfig> {
    let profile = profile(&w.profile, "webhooks.profile", errors);
    if w.max_body_bytes == 0 || w.max_body_bytes > 16 * 1024 * 1024 {
        errors.push("webhooks.max_body_bytes: must be 1 to 16 MiB".into());
    }
    if w.max_events == 0 {
        errors.push("webhooks.max_events: must be at least 1".into());
    }
    if w.retry_after_secs == 0 || w.retry_after_secs > 3600 {
        errors.push("webhooks.retry_after_secs: must be 1 to 3600".into());
    }
    if w.watch_ttl_secs == 0 {
        errors.push("webhooks.watch_ttl_secs: must be at least 1".into());
    }
    if w.max_pending_watches == 0 {
        errors.push("webhooks.max_pending_watches: must be at least 1".into());
    }
    if w.endpoints.is_empty() {
        errors.push(
            "webhooks.endpoints: configure at least one of distribution, harbor, ghcr".into(),
        );
    }
    let limits = Limits {
        max_body_bytes: w.max_body_bytes,
        max_events: w.max_events,
    };
    let mut routes = BTreeMap::new();
    for (name, e) in &w.endpoints {
        let at = format!("webhooks.endpoints.{name}");
        let secret = secret(&e.secret_file, &at, errors);
        let header = e.header.clone().unwrap_or_else(|| "Authorization".into());
        let endpoint = match name.as_str() {
            "distribution" | "harbor" => {
                if header.is_empty()
                    || !header
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                {
                    errors.push(format!("{at}.header {header:?}: not a header name"));
                }
                secret.map(|s| {
                    let auth = SharedSecretAuth::new(header, s);
                    if name == "distribution" {
                        Endpoint::distribution(auth, limits)
                    } else {
                        Endpoint::harbor(auth, limits)
                    }
                })
            }
            "ghcr" => {
                if e.header.is_some() {
                    errors.push(format!(
                        "{at}.header: GHCR is authenticated by X-Hub-Signature-256; remove header"
                    ));
                }
                secret.map(|s| Endpoint::ghcr(s, limits))
            }
            other => {
                errors.push(format!(
                    "webhooks.endpoints: unknown registry {other:?} (expected distribution, harbor or ghcr)"
                ));
                None
            }
        };
        if let Some(endpoint) = endpoint {
            routes.insert(
                name.clone(),
                WebhookRoute {
                    endpoint,
                    max_body_bytes: w.max_body_bytes,
                    unmatched: e.unmatched,
                },
            );
        }
    }
    Some(WebhookConfig {
        profile: profile?,
        routes,
        retry_after: Duration::from_secs(w.retry_after_secs),
        watch_limits: WatchLimits {
            ttl: Duration::from_secs(w.watch_ttl_secs),
            max_pending: w.max_pending_watches,
        },
    })
}
