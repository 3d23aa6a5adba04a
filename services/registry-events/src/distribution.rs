//! CNCF Distribution notification envelopes (`events[]`).

use std::collections::HashSet;

use crate::endpoint::{Limits, host_of, optional_tag, repository};
use crate::json_path::Node;
use crate::{IgnoreReason, PushEvent, RegistryKind, WebhookError, WebhookOutcome};

/// Manifest and index media types: the only pushes that name an image.
pub(crate) const MANIFEST_MEDIA_TYPES: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
];

fn looks_like_blob(media_type: &str) -> bool {
    media_type == "application/octet-stream"
        || media_type.contains(".layer.")
        || media_type.contains(".rootfs.")
        || media_type.contains("config")
        || media_type == "application/vnd.docker.container.image.v1+json"
}

pub(crate) fn parse(root: &Node<'_>, limits: &Limits) -> Result<WebhookOutcome, WebhookError> {
    let events = root.get("events")?;
    let items = events.items()?;
    limits.check_count(&events)?;
    let mut out = WebhookOutcome::default();
    let mut seen = HashSet::new();
    for ev in items {
        let id = ev.get_str("id")?;
        if !seen.insert(id) {
            out.ignore(
                ev.path(),
                IgnoreReason::DuplicateEventId {
                    event_id: id.to_owned(),
                },
            );
            continue;
        }
        let action = ev.get_str("action")?;
        if action != "push" {
            out.ignore(
                ev.path(),
                IgnoreReason::NotAPush {
                    action: action.to_owned(),
                },
            );
            continue;
        }
        let target = ev.get("target")?;
        let media_type = target.get_str("mediaType")?;
        if !MANIFEST_MEDIA_TYPES.contains(&media_type) {
            let media_type = media_type.to_owned();
            let reason = if looks_like_blob(&media_type) {
                IgnoreReason::BlobPush { media_type }
            } else {
                IgnoreReason::NotAnImageManifest { media_type }
            };
            out.ignore(ev.path(), reason);
            continue;
        }
        if let Some(artifact_type) = target.opt_str("artifactType")? {
            let artifact_type = artifact_type.to_owned();
            out.ignore(ev.path(), IgnoreReason::Artifact { artifact_type });
            continue;
        }
        let digest = target.get("digest")?.digest()?;
        let repository = repository(&target.get("repository")?)?;
        let tag = optional_tag(target.opt("tag")?)?;
        let registry = registry_host(&ev, &target)?;
        out.events.push(PushEvent {
            registry,
            repository,
            digest,
            tag,
            media_type: Some(media_type.to_owned()),
            source: RegistryKind::Distribution,
            event_id: id.to_owned(),
        });
    }
    Ok(out)
}

/// `request.host` is the name clients used, which is what pod image
/// references carry; `target.url` is the fallback.
fn registry_host(ev: &Node<'_>, target: &Node<'_>) -> Result<String, WebhookError> {
    if let Some(request) = ev.opt("request")?
        && let Some(node) = request.opt("host")?
    {
        let host = node.non_empty_str()?;
        return host_of(&node, host);
    }
    match target.opt("url")? {
        Some(node) => host_of(&node, node.non_empty_str()?),
        None => Err(ev.invalid("neither request.host nor target.url names the registry")),
    }
}
