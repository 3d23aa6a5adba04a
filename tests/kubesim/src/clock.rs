//! Wall-clock time with a test-controlled offset.
//!
//! Token expiry is measured in minutes; tests move this clock forward instead
//! of sleeping, so expiry is checked by the same code path a real wait takes.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the epoch, shifted by an adjustable offset.
#[derive(Debug, Default)]
pub struct Clock {
    offset: AtomicI64,
}

impl Clock {
    /// Current time in whole seconds since the epoch.
    pub fn now(&self) -> i64 {
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        real + self.offset.load(Ordering::SeqCst)
    }

    /// Moves the clock forward by `secs`.
    pub fn advance(&self, secs: i64) {
        self.offset.fetch_add(secs, Ordering::SeqCst);
    }

    /// The current time as Kubernetes serializes `metav1.Time`.
    pub fn timestamp(&self) -> String {
        format_time(self.now())
    }
}

/// RFC 3339 UTC with seconds precision, as `metav1.Time` marshals.
pub fn format_time(secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

/// Parses a `metav1.Time` back into epoch seconds.
pub fn parse_time(s: &str) -> Option<i64> {
    s.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}
