//! The flood rule: at most one queued intent per (image, container,
//! profile version).
//!
//! Why a content key and not, say, the scan id: a scheduler firing every
//! minute for a pod whose scan takes ten, a registry redelivering a push,
//! and two intake replicas firing the same schedule all produce *different*
//! intents that ask for the *same* work. Keying by what the work is makes
//! them collide on purpose.
//!
//! Two JetStream mechanisms enforce it, and intake uses both:
//!
//! 1. **Per-subject limit (the guarantee).** For coalescing intents
//!    (schedules, [`crate::priority::TriggerKind::coalesces`]) the key is
//!    the last token of the intent subject
//!    ([`crate::subject::intent_subject`]). With
//!    `max_msgs_per_subject: 1` and `discard_new_per_subject: true` on the
//!    WorkQueue stream, a second intent for the same key is refused (error
//!    10077) for as long as the first is queued *or in flight*, since an
//!    unacked message is still in the stream. No time window is involved,
//!    so it holds however long the backlog is; once the scan is acked, the
//!    next fire is accepted again. Intake reports the refusal as
//!    "deduplicated", not as an error.
//! 2. **`Nats-Msg-Id` (retry idempotency).** [`DedupeKey::msg_id`] adds the
//!    occasion (schedule slot, registry event id, API idempotency key) to
//!    the key. A publisher retrying after a lost PubAck, or a second replica
//!    firing the same slot, hits JetStream's duplicate window instead of
//!    creating a second message, even if the first was already consumed
//!    (which the subject limit alone would not catch).
//!
//! The container part is the full container identity (cluster, namespace,
//! pod, container), not just the container name: replicas of one Deployment
//! run the same image but are separate running containers whose state can
//! differ, and the fleet promises every running container is checked.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::image_digest::{ImageDigest, ImageIdentity};
use crate::k8s_names::ClusterName;
use crate::profile::{ProfilePin, ProfileRef};
use crate::target::ContainerRef;

/// Domain-separates these hashes from any other sha256 in the system.
const KEY_CONTEXT: &str = "scanfleet.intent-dedupe.v1";

/// 32 bytes identifying one unit of scan work, shown as 64 lowercase hex
/// characters (a valid subject token and message id).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DedupeKey([u8; 32]);

/// What caused one particular publish; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occasion<'a> {
    /// A schedule's slot (the un-jittered fire time, Unix seconds), so all
    /// replicas computing the same slot agree.
    ScheduleSlot {
        /// The schedule's name.
        schedule: &'a str,
        /// Slot time in Unix seconds.
        slot_unix: u64,
    },
    /// A registry event id (`PushEvent::event_id` in the registry-events
    /// crate).
    RegistryEvent(&'a str),
    /// An API request: its idempotency key, or the scan id when the client
    /// gave none.
    ApiRequest(&'a str),
    /// The content itself: an image pushed again, under another tag or to
    /// another repository, is the same work as long as the key (digest,
    /// profile) is; only the duplicate window bounds it.
    Content,
}

/// Hashes each field with a length prefix so no two field lists share an
/// encoding ("ab"+"c" vs "a"+"bc").
fn feed(h: &mut Sha256, field: &str) {
    h.update((field.len() as u64).to_be_bytes());
    h.update(field.as_bytes());
}

/// The profile's name and pin, fed the same way into every key so a
/// container scan and an image scan pin a profile alike.
fn feed_profile(h: &mut Sha256, profile: &ProfileRef) {
    feed(h, profile.name.as_str());
    match &profile.pin {
        ProfilePin::Version(v) => {
            feed(h, "version");
            feed(h, v);
        }
        ProfilePin::Digest(d) => {
            feed(h, "digest");
            feed(h, d.as_str());
        }
    }
}

impl DedupeKey {
    /// The key for scanning `container` in `cluster`, running `image`, with
    /// `profile`.
    pub fn new(
        cluster: &ClusterName,
        container: &ContainerRef,
        image: &ImageIdentity,
        profile: &ProfileRef,
    ) -> Self {
        let mut h = Sha256::new();
        feed(&mut h, KEY_CONTEXT);
        feed(&mut h, cluster.as_str());
        feed(&mut h, container.namespace.as_str());
        feed(&mut h, container.pod.as_str());
        feed(&mut h, container.container.as_str());
        match image {
            ImageIdentity::Digest(d) => {
                feed(&mut h, "digest");
                feed(&mut h, d.as_str());
            }
            ImageIdentity::Reference(r) => {
                feed(&mut h, "reference");
                feed(&mut h, r);
            }
        }
        feed_profile(&mut h, profile);
        Self(h.finalize().into())
    }

    /// The key for scanning the image `digest` with `profile`: no cluster,
    /// registry or repository, because every name of one digest is the same
    /// content and one scan of it answers them all.
    pub fn for_image(digest: &ImageDigest, profile: &ProfileRef) -> Self {
        let mut h = Sha256::new();
        feed(&mut h, KEY_CONTEXT);
        feed(&mut h, "image");
        feed(&mut h, digest.as_str());
        feed_profile(&mut h, profile);
        Self(h.finalize().into())
    }

    /// The `Nats-Msg-Id` for publishing this work on `occasion`:
    /// `<key hex>-<16 hex of the occasion>`, 81 ASCII characters.
    pub fn msg_id(&self, occasion: &Occasion<'_>) -> String {
        let mut h = Sha256::new();
        feed(&mut h, KEY_CONTEXT);
        match occasion {
            Occasion::ScheduleSlot {
                schedule,
                slot_unix,
            } => {
                feed(&mut h, "schedule");
                feed(&mut h, schedule);
                feed(&mut h, &slot_unix.to_string());
            }
            Occasion::RegistryEvent(id) => {
                feed(&mut h, "registry");
                feed(&mut h, id);
            }
            Occasion::ApiRequest(id) => {
                feed(&mut h, "api");
                feed(&mut h, id);
            }
            Occasion::Content => feed(&mut h, "content"),
        }
        let occasion = hex::encode(h.finalize());
        format!("{self}-{}", &occasion[..16])
    }
}

impl fmt::Display for DedupeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for DedupeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DedupeKey({self})")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::image_digest::ImageDigest;
    use crate::profile::ProfileName;

    fn container(ns: &str, pod: &str, c: &str) -> ContainerRef {
        ContainerRef::parse_uri(&format!("k8s://{ns}/{pod}/{c}")).unwrap()
    }

    fn digest(n: u8) -> ImageIdentity {
        ImageIdentity::Digest(
            ImageDigest::parse(&format!("sha256:{}", hex::encode([n; 32]))).unwrap(),
        )
    }

    fn profile(v: &str) -> ProfileRef {
        ProfileRef {
            name: ProfileName::new("cis").unwrap(),
            pin: ProfilePin::version(v).unwrap(),
        }
    }

    #[test]
    fn key_is_stable_and_hex() {
        let c = ClusterName::new("prod").unwrap();
        let k = DedupeKey::new(
            &c,
            &container("shop", "web-0", "app"),
            &digest(1),
            &profile("1.0"),
        );
        let again = DedupeKey::new(
            &c,
            &container("shop", "web-0", "app"),
            &digest(1),
            &profile("1.0"),
        );
        assert_eq!(k, again);
        let s = k.to_string();
        assert_eq!(s.len(), 64);
        assert!(
            s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
    }

    #[test]
    fn every_component_changes_the_key() {
        let c = ClusterName::new("prod").unwrap();
        let base = DedupeKey::new(
            &c,
            &container("shop", "web-0", "app"),
            &digest(1),
            &profile("1.0"),
        );
        let variants = [
            DedupeKey::new(
                &ClusterName::new("dev").unwrap(),
                &container("shop", "web-0", "app"),
                &digest(1),
                &profile("1.0"),
            ),
            DedupeKey::new(
                &c,
                &container("shop2", "web-0", "app"),
                &digest(1),
                &profile("1.0"),
            ),
            DedupeKey::new(
                &c,
                &container("shop", "web-1", "app"),
                &digest(1),
                &profile("1.0"),
            ),
            DedupeKey::new(
                &c,
                &container("shop", "web-0", "sidecar"),
                &digest(1),
                &profile("1.0"),
            ),
            DedupeKey::new(
                &c,
                &container("shop", "web-0", "app"),
                &digest(2),
                &profile("1.0"),
            ),
            DedupeKey::new(
                &c,
                &container("shop", "web-0", "app"),
                &ImageIdentity::Reference("shop/web:1".into()),
                &profile("1.0"),
            ),
            DedupeKey::new(
                &c,
                &container("shop", "web-0", "app"),
                &digest(1),
                &profile("1.1"),
            ),
        ];
        let mut all: HashSet<DedupeKey> = variants.iter().copied().collect();
        assert_eq!(all.len(), variants.len());
        assert!(all.insert(base));
    }

    /// The flood property in miniature: 10,000 schedule fires over 100
    /// pods, 2 digests and 1 profile collapse to exactly one key per
    /// (pod container, digest, profile); message ids stay distinct per slot.
    #[test]
    fn flood_collapses_to_one_key_per_unit_of_work() {
        let c = ClusterName::new("prod").unwrap();
        let p = profile("1.0");
        let mut keys = HashSet::new();
        let mut msg_ids = HashSet::new();
        for fire in 0..100u64 {
            for pod in 0..100u8 {
                let image = digest(pod % 2);
                let k = DedupeKey::new(
                    &c,
                    &container("shop", &format!("web-{pod}"), "app"),
                    &image,
                    &p,
                );
                keys.insert(k);
                msg_ids.insert(k.msg_id(&Occasion::ScheduleSlot {
                    schedule: "nightly",
                    slot_unix: fire * 60,
                }));
            }
        }
        assert_eq!(keys.len(), 100);
        assert_eq!(msg_ids.len(), 10_000);
    }

    #[test]
    fn msg_id_depends_on_occasion_only_beyond_the_key() {
        let c = ClusterName::new("prod").unwrap();
        let k = DedupeKey::new(
            &c,
            &container("shop", "web-0", "app"),
            &digest(1),
            &profile("1.0"),
        );
        let slot = |s| {
            k.msg_id(&Occasion::ScheduleSlot {
                schedule: "nightly",
                slot_unix: s,
            })
        };
        assert_eq!(slot(60), slot(60));
        assert_ne!(slot(60), slot(120));
        let ids = [
            slot(60),
            k.msg_id(&Occasion::ScheduleSlot {
                schedule: "hourly",
                slot_unix: 60,
            }),
            k.msg_id(&Occasion::RegistryEvent("60")),
            k.msg_id(&Occasion::ApiRequest("60")),
        ];
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
        for id in &ids {
            assert_eq!(id.len(), 81);
            assert!(id.starts_with(&format!("{k}-")));
        }
    }
}
