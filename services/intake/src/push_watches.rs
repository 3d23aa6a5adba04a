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
//! The first pod that starts with the digest consumes the watch; later pods
//! are the scheduler's business.
//!
//! Pure state with the time passed in, so tests drive it without sleeping.

use std::collections::HashMap;
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
        self.by_digest.insert(key, Watch { event, expires });
        Ok(Watching::Added)
    }

    /// The live watch for `digest`, removed from the table: the caller
    /// queues its scans. Expired watches are never returned.
    pub fn take(&mut self, digest: &ImageDigest, now: Instant) -> Option<PushEvent> {
        let w = self.by_digest.remove(digest.as_str())?;
        (w.expires > now).then_some(w.event)
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

    #[test]
    fn the_first_pod_consumes_the_watch() {
        let t0 = Instant::now();
        let mut w = PushWatches::new(limits(60, 10));
        assert_eq!(w.watch(push(1), t0), Ok(Watching::Added));
        assert_eq!(w.take(&digest(2), t0), None, "another digest");
        let got = w.take(&digest(1), t0 + Duration::from_secs(59)).unwrap();
        assert_eq!(got.event_id, "event-1");
        assert_eq!(w.take(&digest(1), t0), None, "consumed");
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
        // Taking an expired-but-not-yet-swept watch yields nothing.
        assert_eq!(w.take(&digest(2), t0 + Duration::from_secs(91)), None);
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
        let got = w.take(&digest(1), t0 + Duration::from_secs(100)).unwrap();
        assert_eq!(got.event_id, "redelivery", "expiry moved out with it");
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
