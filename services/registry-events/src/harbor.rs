//! Harbor webhooks: the default payload and the CloudEvents payload share
//! `event_data` / `data`; only the envelope differs.

use sha2::{Digest, Sha256};

use crate::endpoint::{Limits, host_of, optional_tag, repository};
use crate::json_path::Node;
use crate::{IgnoreReason, ManifestDigest, PushEvent, RegistryKind, WebhookError, WebhookOutcome};

const DEFAULT_PUSH: &str = "PUSH_ARTIFACT";
const CLOUDEVENT_PUSH: &str = "harbor.artifact.pushed";

pub(crate) fn parse(root: &Node<'_>, limits: &Limits) -> Result<WebhookOutcome, WebhookError> {
    if root.has("specversion") {
        cloud_event(root, limits)
    } else {
        default_format(root, limits)
    }
}

fn default_format(root: &Node<'_>, limits: &Limits) -> Result<WebhookOutcome, WebhookError> {
    let event_type = root.get_str("type")?;
    if event_type != DEFAULT_PUSH {
        return Ok(ignored_body(event_type));
    }
    // The default payload has no event id. Harbor redelivers the identical
    // body, so a hash of what identifies the push is stable across retries.
    let occur_at = root.get("occur_at")?.number_text()?;
    resources(&root.get("event_data")?, limits, |digest, _, _| {
        let h = Sha256::digest(format!("{event_type}\n{occur_at}\n{digest}"));
        format!("harbor-{}", &hex::encode(h)[..32])
    })
}

fn cloud_event(root: &Node<'_>, limits: &Limits) -> Result<WebhookOutcome, WebhookError> {
    let spec = root.get("specversion")?;
    if spec.str()? != "1.0" {
        return Err(spec.invalid("unsupported CloudEvents specversion, expected \"1.0\""));
    }
    let event_type = root.get_str("type")?;
    if event_type != CLOUDEVENT_PUSH {
        return Ok(ignored_body(event_type));
    }
    let id = root.get_str("id")?;
    resources(&root.get("data")?, limits, |_, i, n| {
        if n == 1 {
            id.to_owned()
        } else {
            format!("{id}#{i}")
        }
    })
}

fn ignored_body(event_type: &str) -> WebhookOutcome {
    let mut out = WebhookOutcome::default();
    out.ignore(
        "",
        IgnoreReason::NotAPush {
            action: event_type.to_owned(),
        },
    );
    out
}

fn resources(
    data: &Node<'_>,
    limits: &Limits,
    event_id: impl Fn(&ManifestDigest, usize, usize) -> String,
) -> Result<WebhookOutcome, WebhookError> {
    let repository = repository(&data.get("repository")?.get("repo_full_name")?)?;
    let list = data.get("resources")?;
    let items = list.items()?;
    limits.check_count(&list)?;
    if items.is_empty() {
        return Err(list.invalid("a push names no artifact"));
    }
    let n = items.len();
    let mut out = WebhookOutcome::default();
    for (i, r) in items.into_iter().enumerate() {
        let digest = r.get("digest")?.digest()?;
        // Harbor reports an untagged push with the digest as its "tag".
        let tag_node = r
            .opt("tag")?
            .filter(|t| t.str().ok() != Some(digest.as_str()));
        let tag = optional_tag(tag_node)?;
        let url = r.get("resource_url")?;
        let registry = host_of(&url, url.non_empty_str()?)?;
        out.events.push(PushEvent {
            registry,
            repository: repository.clone(),
            event_id: event_id(&digest, i, n),
            digest,
            tag,
            media_type: None,
            source: RegistryKind::Harbor,
        });
    }
    Ok(out)
}
