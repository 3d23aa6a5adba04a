//! A small cache of review answers, bounded in size and age.
//!
//! Why cache: every call would otherwise cost the API server a TokenReview
//! and a SubjectAccessReview. Why briefly: a revoked permission (a deleted
//! RoleBinding, a deleted ServiceAccount) must stop working within the
//! TTL. Refusals are cached too, so one bad token replayed in a loop costs
//! one review per TTL, not one per request. Why bounded: the keys come
//! from callers; when full, the oldest entry goes.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Answers kept for `ttl`, at most `capacity` of them.
pub struct DecisionCache<K, V> {
    ttl: Duration,
    capacity: usize,
    inner: Mutex<Inner<K, V>>,
}

struct Inner<K, V> {
    entries: HashMap<K, (Instant, V)>,
    /// Insertion order with each entry's expiry, oldest first; may hold
    /// keys already replaced or removed (their expiry no longer matches).
    order: VecDeque<(Instant, K)>,
}

impl<K: Eq + Hash + Clone, V: Clone> DecisionCache<K, V> {
    /// A cache of at most `capacity` answers, each kept for `ttl`.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity: capacity.max(1),
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                order: VecDeque::new(),
            }),
        }
    }

    /// The answer for `key`, if one younger than the TTL is held.
    pub fn get(&self, key: &K) -> Option<V> {
        self.get_at(key, Instant::now())
    }

    /// Remembers `value` for `key`.
    pub fn insert(&self, key: K, value: V) {
        self.insert_at(key, value, Instant::now());
    }

    /// How many answers are held.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<K, V>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get_at(&self, key: &K, now: Instant) -> Option<V> {
        if self.ttl.is_zero() {
            return None;
        }
        let mut inner = self.lock();
        match inner.entries.get(key) {
            Some((expires, value)) if *expires > now => Some(value.clone()),
            Some(_) => {
                inner.entries.remove(key);
                None
            }
            None => None,
        }
    }

    fn insert_at(&self, key: K, value: V, now: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        let expires = now + self.ttl;
        let mut inner = self.lock();
        // Drop what expired, then the oldest while full.
        while let Some((at, _)) = inner.order.front() {
            let full =
                inner.entries.len() >= self.capacity || inner.order.len() >= self.capacity * 2;
            if *at > now && !full {
                break;
            }
            let Some((at, old)) = inner.order.pop_front() else {
                break;
            };
            if inner.entries.get(&old).is_some_and(|(e, _)| *e == at) {
                inner.entries.remove(&old);
            }
        }
        inner.order.push_back((expires, key.clone()));
        inner.entries.insert(key, (expires, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_expire_after_the_ttl() {
        let cache = DecisionCache::new(Duration::from_secs(10), 100);
        let t0 = Instant::now();
        cache.insert_at("a", true, t0);
        assert_eq!(cache.get_at(&"a", t0 + Duration::from_secs(9)), Some(true));
        assert_eq!(cache.get_at(&"a", t0 + Duration::from_secs(10)), None);
        assert!(cache.is_empty(), "an expired answer is dropped when seen");
    }

    #[test]
    fn a_full_cache_forgets_its_oldest_answer() {
        let cache = DecisionCache::new(Duration::from_secs(60), 3);
        let t0 = Instant::now();
        for (i, key) in ["a", "b", "c", "d"].into_iter().enumerate() {
            cache.insert_at(key, i, t0 + Duration::from_millis(i as u64));
        }
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get_at(&"a", t0), None);
        assert_eq!(cache.get_at(&"d", t0), Some(3));
        // Replacing one key many times does not grow the bookkeeping.
        for i in 0..1000 {
            cache.insert_at("b", i, t0 + Duration::from_millis(10));
        }
        assert!(cache.lock().order.len() <= 6);
        assert_eq!(cache.get_at(&"b", t0), Some(999));
    }

    #[test]
    fn a_zero_ttl_caches_nothing() {
        let cache = DecisionCache::new(Duration::ZERO, 10);
        cache.insert("a", 1);
        assert_eq!(cache.get(&"a"), None);
    }
}
