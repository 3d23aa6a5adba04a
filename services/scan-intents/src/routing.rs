//! Where an intent goes on the bus, and under which message id: the one
//! rule every trigger (API, registry push, schedule) shares.
//!
//! - Subject: `intent_subject(priority, cluster, namespace, tail)`, the tail
//!   being the dedupe key for intents that coalesce (schedules) and the scan
//!   id otherwise ([`crate::priority::TriggerKind::coalesces`]).
//! - Message id: the dedupe key plus the occasion ([`DedupeKey::msg_id`]),
//!   so a retried publish of the same occasion is a duplicate and a new
//!   occasion is new work.

use crate::dedupe::{DedupeKey, Occasion};
use crate::image_digest::ImageIdentity;
use crate::intent::{Intent, IntentTarget};
use crate::priority::TriggerKind;
use crate::subject::{SubjectTail, image_intent_subject, intent_subject};

/// An intent's subject and message id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routing {
    /// The subject to publish on.
    pub subject: String,
    /// The `Nats-Msg-Id`.
    pub msg_id: String,
}

/// The image identity dedupe keys use: the digest when known, else the
/// reference as written.
pub fn image_identity(intent: &Intent) -> ImageIdentity {
    match &intent.image.digest {
        Some(d) => ImageIdentity::Digest(d.clone()),
        None => ImageIdentity::Reference(intent.image.reference.clone()),
    }
}

/// Routes `intent`, published because of `occasion`. An image scan is
/// keyed by (digest, profile) alone: however many tags, repositories or
/// clusters name one digest, it is one piece of work; and a push of an
/// image is not a new occasion (each push has its own event id, and a
/// tag moved to a known digest is no new content), so every push of one
/// digest shares one message id within the duplicate window.
pub fn route(intent: &Intent, occasion: &Occasion<'_>) -> Routing {
    let occasion = match (&intent.target, intent.trigger.kind()) {
        (IntentTarget::Image(_), TriggerKind::RegistryPush) => &Occasion::Content,
        _ => occasion,
    };
    let key = match &intent.target {
        IntentTarget::Container(container) => DedupeKey::new(
            &intent.cluster,
            container,
            &image_identity(intent),
            &intent.profile,
        ),
        IntentTarget::Image(image) => DedupeKey::for_image(image.digest(), &intent.profile),
    };
    let tail = if intent.trigger.kind().coalesces() {
        SubjectTail::DedupeKey(&key)
    } else {
        SubjectTail::ScanId(&intent.id)
    };
    let subject = match &intent.target {
        IntentTarget::Container(c) => {
            intent_subject(intent.priority(), &intent.cluster, &c.namespace, tail)
        }
        IntentTarget::Image(_) => image_intent_subject(intent.priority(), &intent.cluster, tail),
    };
    Routing {
        subject,
        msg_id: key.msg_id(occasion),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::intent::{Approach, ImageSpec, Trigger};
    use crate::k8s_names::ClusterName;
    use crate::profile::{ProfileName, ProfilePin, ProfileRef};
    use crate::scan_id::ScanId;
    use crate::target::ContainerRef;

    fn intent(id: &str, trigger: Trigger) -> Intent {
        Intent {
            id: ScanId::parse(id).unwrap(),
            cluster: ClusterName::new("kubesim").unwrap(),
            target: ContainerRef::parse_uri("k8s://apps/web-0/app")
                .unwrap()
                .into(),
            image: ImageSpec {
                reference: "shop/web:1".into(),
                digest: None,
            },
            profile: ProfileRef {
                name: ProfileName::new("container-baseline").unwrap(),
                pin: ProfilePin::version("1.0.0").unwrap(),
            },
            inputs: Default::default(),
            approach: Approach::Auto,
            threshold: None,
            trigger,
            requested_at: UNIX_EPOCH,
            deadline: Some(UNIX_EPOCH + Duration::from_secs(600)),
        }
    }

    #[test]
    fn schedules_coalesce_by_work_and_everything_else_by_scan() {
        let nightly = Trigger::Schedule {
            name: "nightly".into(),
        };
        let a = intent("01JDQ3W7T8ZK5V9X2M4N6P8R0S", nightly.clone());
        let b = intent("01JDQ3W7T8ZK5V9X2M4N6P8R0T", nightly);
        let slot = |s| Occasion::ScheduleSlot {
            schedule: "nightly",
            slot_unix: s,
        };
        let (ra, rb) = (route(&a, &slot(60)), route(&b, &slot(60)));
        assert_eq!(ra.subject, rb.subject, "same work, same subject");
        assert!(ra.subject.starts_with("scan.intents.low.kubesim.apps."));
        assert_eq!(ra.msg_id, rb.msg_id, "same slot, same message id");
        assert_ne!(ra.msg_id, route(&a, &slot(120)).msg_id);

        let api = intent(
            "01JDQ3W7T8ZK5V9X2M4N6P8R0S",
            Trigger::Api {
                principal: String::new(),
            },
        );
        let r = route(&api, &Occasion::ApiRequest("01JDQ3W7T8ZK5V9X2M4N6P8R0S"));
        assert_eq!(
            r.subject,
            "scan.intents.high.kubesim.apps.01JDQ3W7T8ZK5V9X2M4N6P8R0S"
        );
    }

    #[test]
    fn image_scans_of_one_digest_share_a_key_whatever_names_it() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        let image = |uri: &str, cluster: &str| {
            let target = crate::ImageTarget::parse_uri(uri).unwrap();
            Intent {
                cluster: ClusterName::new(cluster).unwrap(),
                target: IntentTarget::Image(target),
                ..intent(
                    "01JDQ3W7T8ZK5V9X2M4N6P8R0S",
                    Trigger::Schedule {
                        name: "nightly".into(),
                    },
                )
            }
        };
        let slot = Occasion::ScheduleSlot {
            schedule: "nightly",
            slot_unix: 60,
        };
        let a = route(
            &image(&format!("oci://r.local/shop/web@{digest}"), "a"),
            &slot,
        );
        let b = route(
            &image(&format!("oci://mirror.io/x/web@{digest}"), "a"),
            &slot,
        );
        assert_eq!(a.msg_id, b.msg_id, "one digest, one piece of work");
        assert!(
            a.subject.starts_with("scan.intents.low.a._image."),
            "{}",
            a.subject
        );
        let container = route(
            &intent(
                "01JDQ3W7T8ZK5V9X2M4N6P8R0S",
                Trigger::Schedule {
                    name: "nightly".into(),
                },
            ),
            &slot,
        );
        assert_ne!(a.msg_id, container.msg_id);
    }

    #[test]
    fn every_push_of_one_digest_is_one_image_scan() {
        let digest = format!("sha256:{}", "ef".repeat(32));
        let pushed = |uri: &str, tag: &str, event: &str| {
            let target = crate::image_target::ImageTarget::parse_uri(uri).unwrap();
            let intent = Intent {
                image: ImageSpec {
                    reference: target.reference(),
                    digest: Some(target.digest().clone()),
                },
                target: IntentTarget::Image(target.clone()),
                ..intent(
                    "01JDQ3W7T8ZK5V9X2M4N6P8R0S",
                    Trigger::RegistryPush {
                        registry: target.registry().into(),
                        repository: target.repository().into(),
                        digest: target.digest().to_string(),
                        tag: tag.into(),
                    },
                )
            };
            route(&intent, &Occasion::RegistryEvent(event)).msg_id
        };
        let first = pushed(&format!("oci://r.local/shop/web@{digest}"), "1.0", "ev-1");
        assert_eq!(
            first,
            pushed(
                &format!("oci://r.local/shop/web@{digest}"),
                "latest",
                "ev-2"
            )
        );
        assert_eq!(
            first,
            pushed(&format!("oci://r.local/mirror/web@{digest}"), "1.0", "ev-3")
        );
        let other = format!("sha256:{}", "0f".repeat(32));
        assert_ne!(
            first,
            pushed(&format!("oci://r.local/shop/web@{other}"), "1.0", "ev-1")
        );
    }
}
