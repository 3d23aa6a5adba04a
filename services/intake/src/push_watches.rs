//! Pushes that no running pod uses yet, waiting for the first pod that
//! starts with their digest.
//!
//! The usual order in a deployment is push, then roll out: the webhook
//! arrives before any pod runs the new digest. Dropping such pushes would
//! leave every fresh rollout unscanned until the next periodic slot, so
//! intake remembers them, but only boundedly: each watch expires after a
//! TTL (a digest nobody deploys stops costing memory), and the number of
//! pending watches is capped (a registry pushing thousands of never-deployed
//! images cannot grow intake without bound). A full table refuses the new
//! watch, and the webhook answers 429 so the registry retries later instead
//! of intake forgetting silently.
//!
//! One watch per digest: a second push of the same digest (a retag, a
//! redelivery) refreshes the existing watch instead of taking a second slot.
//! The first pod seen running the digest, in any cluster, claims the watch;
//! later pods are the scheduler's business. The claim lasts until the watch
//! expires, not just for one pod update: a kubelet starts a pod's
//! containers one by one, so the update that shows the first container
//! running may not show its siblings yet, and each container of the
//! claiming pod that runs the digest is handed out exactly once.
//!
//! Pure state with the time passed in, so tests drive it without sleeping.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use scanfleet_registry_events::PushEvent;
use scanfleet_scan_intents::ImageDigest;

/// Bounds on the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchLimits {
    /// How long a push waits for a pod.
    pub ttl: Duration,
    /// Most digests waited for at once.
    pub max_pending: usize,
}

impl Default for WatchLimits {
    /// One hour covers a slow rollout; 10,000 watches are a few MiB.
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(3600),
            max_pending: 10_000,
        }
    }
}

/// The table is at its cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} pushes are already waiting for a pod to start (the configured cap)")]
pub struct WatchesFull(pub usize);

/// Whether a watch was new or refreshed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watching {
    /// A new watch.
    Added,
    /// The digest was already watched; its expiry moved out.
    Refreshed,
}

struct Watch {
    event: PushEvent,
    expires: Instant,
    /// The pod that claimed it (`cluster/namespace/pod`) and the containers
    /// already handed out.
    claim: Option<(String, BTreeSet<String>)>,
}

/// Containers of the claiming pod to scan for a watched push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The push.
    pub event: PushEvent,
    /// Containers not handed out before.
    pub containers: Vec<String>,
    /// Whether this update made the claim (the first pod's first sight).
    pub first: bool,
}

/// Pending push watches.
pub struct PushWatches {
    limits: WatchLimits,
    by_digest: HashMap<String, Watch>,
}

impl PushWatches {
    /// An empty table.
    pub fn new(limits: WatchLimits) -> Self {
        Self {
            limits,
            by_digest: HashMap::new(),
        }
    }

    /// Watches for `event`'s digest until `now + ttl`.
    ///
    /// # Errors
    /// [`WatchesFull`] when the digest is new and the table is at its cap
    /// (after dropping expired watches).
    pub fn watch(&mut self, event: PushEvent, now: Instant) -> Result<Watching, WatchesFull> {
        let expires = now + self.limits.ttl;
        let key = event.digest.as_str().to_owned();
        if let Some(w) = self.by_digest.get_mut(&key) {
            // A claimed watch keeps its pod; only its lifetime moves.
            w.event = event;
            w.expires = expires;
            return Ok(Watching::Refreshed);
        }
        if self.by_digest.len() >= self.limits.max_pending {
            self.expire(now);
            if self.by_digest.len() >= self.limits.max_pending {
                return Err(WatchesFull(self.limits.max_pending));
            }
        }
        self.by_digest.insert(
            key,
            Watch {
                event,
                expires,
                claim: None,
            },
        );
        Ok(Watching::Added)
    }

    /// `pod` (`cluster/namespace/pod`) runs `digest` in `containers`: the first pod
    /// to do so claims a live watch, and gets back the containers not handed
    /// out before. Another pod, an expired watch or no watch: `None`.
    pub fn claim(
        &mut self,
        digest: &ImageDigest,
        pod: &str,
        containers: &[String],
        now: Instant,
    ) -> Option<Claimed> {
        let w = self.by_digest.get_mut(digest.as_str())?;
        if w.expires <= now {
            self.by_digest.remove(digest.as_str());
            return None;
        }
        let first = w.claim.is_none();
        let (owner, given) = w
            .claim
            .get_or_insert_with(|| (pod.to_owned(), BTreeSet::new()));
        if owner != pod {
            return None;
        }
        let fresh: Vec<String> = containers
            .iter()
            .filter(|c| given.insert((*c).clone()))
            .cloned()
            .collect();
        Some(Claimed {
            event: w.event.clone(),
            containers: fresh,
            first,
        })
    }

    /// Takes back containers handed out by [`PushWatches::claim`] whose
    /// intents could not be queued, so the pod's next update retries them.
    pub fn release(&mut self, digest: &ImageDigest, containers: &[String]) {
        if let Some((_, given)) = self
            .by_digest
            .get_mut(digest.as_str())
            .and_then(|w| w.claim.as_mut())
        {
            for c in containers {
                given.remove(c);
            }
        }
    }

    /// Watches no pod has claimed yet.
    pub fn unclaimed(&self) -> usize {
        self.by_digest
            .values()
            .filter(|w| w.claim.is_none())
            .count()
    }

    /// Drops every watch whose time is up; returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let before = self.by_digest.len();
        self.by_digest.retain(|_, w| w.expires > now);
        before - self.by_digest.len()
    }

    /// Pending watches (expired ones count until [`PushWatches::expire`]).
    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }

    /// The earliest expiry, for the runtime's timer.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.by_digest.values().map(|w| w.expires).min()
    }
}

#[cfg(test)]
mod tests {
    use scanfleet_registry_events::{ManifestDigest, RegistryKind};

    use super::*;

    fn push(n: u8) -> PushEvent {
        let digest = format!("sha256:{}", hex_of(n));
        PushEvent {
            registry: "registry.local:5000".into(),
            repository: "shop/web".into(),
            digest: ManifestDigest::parse(&digest).unwrap(),
            tag: Some(format!("1.{n}")),
            media_type: None,
            source: RegistryKind::Distribution,
            event_id: format!("event-{n}"),
        }
    }

    fn hex_of(n: u8) -> String {
        format!("{n:02x}").repeat(32)
    }

    fn digest(n: u8) -> ImageDigest {
        ImageDigest::parse(&format!("sha256:{}", hex_of(n))).unwrap()
    }

    fn limits(ttl: u64, max: usize) -> WatchLimits {
        WatchLimits {
            ttl: Duration::from_secs(ttl),
            max_pending: max,
        }
    }

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_first_pod_claims_the_watch_container_by_container() {
        let t0 = Instant::now();
        let mut w = PushWatches::new(limits(60, 10));
        assert_eq!(w.watch(push(1), t0), Ok(Watching::Added));
        assert_eq!(w.claim(&digest(2), "apps/a", &names(&["x"]), t0), None);
        let c = w.claim(&digest(1), "apps/a", &names(&["app"]), t0).unwrap();
        assert_eq!(
            (c.event.event_id.as_str(), c.containers.clone(), c.first),
            ("event-1", names(&["app"]), true)
        );
        assert_eq!(w.unclaimed(), 0);
        // The sibling starts later; only it is handed out.
        let c = w
            .claim(&digest(1), "apps/a", &names(&["app", "helper"]), t0)
            .unwrap();
        assert_eq!((c.containers, c.first), (names(&["helper"]), false));
        // Another pod with the digest gets nothing.
        assert_eq!(w.claim(&digest(1), "apps/b", &names(&["app"]), t0), None);
        // A failed enqueue is released and handed out again.
        w.release(&digest(1), &names(&["helper"]));
        let c = w
            .claim(&digest(1), "apps/a", &names(&["app", "helper"]), t0)
            .unwrap();
        assert_eq!(c.containers, names(&["helper"]));
        // After the TTL the claim is gone with the watch.
        assert_eq!(
            w.claim(
                &digest(1),
                "apps/a",
                &names(&["late"]),
                t0 + Duration::from_secs(60)
            ),
            None
        );
        assert!(w.is_empty());
    }

    #[test]
    fn watches_expire_after_the_ttl() {
        let t0 = Instant::now();
        let mut w = PushWatches::new(limits(60, 10));
        w.watch(push(1), t0).unwrap();
        w.watch(push(2), t0 + Duration::from_secs(30)).unwrap();
        assert_eq!(w.next_expiry(), Some(t0 + Duration::from_secs(60)));
        assert_eq!(w.expire(t0 + Duration::from_secs(60)), 1);
        assert_eq!(w.len(), 1);
        // Claiming an expired-but-not-yet-swept watch yields nothing.
        assert_eq!(
            w.claim(
                &digest(2),
                "apps/a",
                &names(&["c"]),
                t0 + Duration::from_secs(91)
            ),
            None
        );
        assert!(w.is_empty());
    }

    #[test]
    fn the_same_digest_refreshes_instead_of_taking_a_slot() {
        let t0 = Instant::now();
        let mut w = PushWatches::new(limits(60, 1));
        w.watch(push(1), t0).unwrap();
        let mut again = push(1);
        again.event_id = "redelivery".into();
        assert_eq!(
            w.watch(again, t0 + Duration::from_secs(50)),
            Ok(Watching::Refreshed)
        );
        assert_eq!(w.len(), 1);
        let got = w
            .claim(
                &digest(1),
                "apps/a",
                &names(&["c"]),
                t0 + Duration::from_secs(100),
            )
            .unwrap();
        assert_eq!(got.event.event_id, "redelivery", "expiry moved out with it");
    }

    #[test]
    fn a_full_table_refuses_until_something_expires() {
        let t0 = Instant::now();
        let mut w = PushWatches::new(limits(60, 2));
        w.watch(push(1), t0).unwrap();
        w.watch(push(2), t0).unwrap();
        assert_eq!(w.watch(push(3), t0), Err(WatchesFull(2)));
        assert_eq!(w.len(), 2);
        assert_eq!(
            w.watch(push(3), t0 + Duration::from_secs(60)),
            Ok(Watching::Added)
        );
        assert_eq!(w.len(), 1);
    }
}
