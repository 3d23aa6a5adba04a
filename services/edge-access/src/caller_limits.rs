//! Per-caller rate limits at the edge (governor, one bucket per key).
//!
//! Two kinds of key: an authenticated caller's name, so one noisy client
//! cannot crowd out the others; and, before a credential is reviewed, the
//! peer's address, so a stream of made-up tokens cannot turn intake into
//! an amplifier of TokenReviews against the API server.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// How fast one caller may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_second: NonZeroU32,
    /// Requests allowed at once after a quiet spell.
    pub burst: NonZeroU32,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            per_second: NonZeroU32::new(20).unwrap_or(NonZeroU32::MIN),
            burst: NonZeroU32::new(40).unwrap_or(NonZeroU32::MIN),
        }
    }
}

/// Buckets by key; forgotten once full again, so idle callers cost nothing.
pub struct CallerLimits {
    limiter: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
    checks: AtomicU64,
}

/// Checks between sweeps of full buckets out of the key map.
const SWEEP_EVERY: u64 = 4096;

impl CallerLimits {
    /// Buckets of `limit` each.
    pub fn new(limit: RateLimit) -> Self {
        let quota = Quota::per_second(limit.per_second).allow_burst(limit.burst);
        Self {
            limiter: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
            checks: AtomicU64::new(0),
        }
    }

    /// Takes one request from `key`'s bucket, or says how long to wait.
    ///
    /// # Errors
    /// The wait, rounded up to whole seconds (at least 1) for `Retry-After`.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(&key.to_owned())
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(self.clock.now());
                Duration::from_secs(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
                    .max(Duration::from_secs(1))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_caller_has_its_own_bucket() {
        let limits = CallerLimits::new(RateLimit {
            per_second: NonZeroU32::new(1).unwrap(),
            burst: NonZeroU32::new(3).unwrap(),
        });
        for _ in 0..3 {
            assert!(limits.check("alice").is_ok());
        }
        let wait = limits.check("alice").unwrap_err();
        assert_eq!(wait, Duration::from_secs(1), "rounded up to whole seconds");
        assert!(limits.check("bob").is_ok(), "bob is not slowed by alice");
    }
}
