//! One configured webhook endpoint: which registry family it serves, how it
//! authenticates, and its limits.

use crate::auth::{SharedSecretAuth, WebhookSecret, check_hub_signature};
use crate::image_name::{check_host, check_repository, check_tag};
use crate::json_path::Node;
use crate::{RegistryKind, WebhookError, WebhookOutcome, WebhookRequest};
use crate::{distribution, ghcr, harbor};

/// Size limits for one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest body accepted, in bytes; larger bodies get 413 before any
    /// HMAC or parse work is spent on them.
    pub max_body_bytes: usize,
    /// Most events (Distribution `events`, Harbor `resources`) in one body.
    /// Distribution batches at most a few dozen; a body with thousands is an
    /// attack or a misconfiguration, and each event fans out into pod
    /// matching and intents.
    pub max_events: usize,
}

impl Default for Limits {
    /// 1 MiB and 256 events: well above what registries send (a
    /// Distribution event is under 1 KiB), well below what hurts.
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            max_events: 256,
        }
    }
}

impl Limits {
    pub(crate) fn check_count(&self, node: &Node<'_>) -> Result<(), WebhookError> {
        let actual = node.len().unwrap_or(0);
        if actual > self.max_events {
            return Err(WebhookError::TooManyEvents {
                path: node.path().to_owned(),
                limit: self.max_events,
                actual,
            });
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
enum Auth {
    SharedSecret(SharedSecretAuth),
    HubSignature(WebhookSecret),
}

/// A webhook endpoint for one registry family. Construct one per route; it
/// is immutable and cheap to share.
#[derive(Debug, Clone)]
pub struct Endpoint {
    kind: RegistryKind,
    auth: Auth,
    limits: Limits,
}

impl Endpoint {
    /// CNCF Distribution / ACR notifications. They carry no signature, so
    /// the endpoint's configured static header is the credential.
    pub fn distribution(auth: SharedSecretAuth, limits: Limits) -> Self {
        Self {
            kind: RegistryKind::Distribution,
            auth: Auth::SharedSecret(auth),
            limits,
        }
    }

    /// Harbor webhooks, default or CloudEvents format (told apart by the
    /// body). Harbor sends its policy's `auth_header` as `Authorization`.
    pub fn harbor(auth: SharedSecretAuth, limits: Limits) -> Self {
        Self {
            kind: RegistryKind::Harbor,
            auth: Auth::SharedSecret(auth),
            limits,
        }
    }

    /// GitHub `package` / `registry_package` webhooks, authenticated by
    /// `X-Hub-Signature-256` with the webhook secret.
    pub fn ghcr(secret: WebhookSecret, limits: Limits) -> Self {
        Self {
            kind: RegistryKind::Ghcr,
            auth: Auth::HubSignature(secret),
            limits,
        }
    }

    /// The registry family this endpoint serves.
    pub fn kind(&self) -> RegistryKind {
        self.kind
    }

    /// Size check, authentication, then parsing; see the crate docs.
    pub fn receive(&self, req: &WebhookRequest<'_>) -> Result<WebhookOutcome, WebhookError> {
        let body = req.body();
        if body.len() > self.limits.max_body_bytes {
            return Err(WebhookError::BodyTooLarge {
                limit: self.limits.max_body_bytes,
                actual: body.len(),
            });
        }
        match &self.auth {
            Auth::SharedSecret(a) => a.check(req)?,
            Auth::HubSignature(s) => check_hub_signature(s, req)?,
        }
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| WebhookError::NotJson {
                detail: e.to_string(),
            })?;
        let root = Node::root(&value)?;
        match self.kind {
            RegistryKind::Distribution => distribution::parse(&root, &self.limits),
            RegistryKind::Harbor => harbor::parse(&root, &self.limits),
            RegistryKind::Ghcr => ghcr::parse(&root, req),
        }
    }
}

pub(crate) fn repository(node: &Node<'_>) -> Result<String, WebhookError> {
    let s = node.str()?;
    check_repository(s).map_err(|p| node.invalid(p))?;
    Ok(s.to_owned())
}

pub(crate) fn optional_tag(node: Option<Node<'_>>) -> Result<Option<String>, WebhookError> {
    let Some(node) = node else { return Ok(None) };
    let s = node.str()?;
    if s.is_empty() {
        return Ok(None);
    }
    check_tag(s).map_err(|p| node.invalid(p))?;
    Ok(Some(s.to_owned()))
}

/// The host part of `https://host/...` or `host/...`.
pub(crate) fn host_of(node: &Node<'_>, url: &str) -> Result<String, WebhookError> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split('/').next().unwrap_or_default();
    check_host(host).map_err(|p| node.invalid(p))?;
    Ok(host.to_owned())
}
