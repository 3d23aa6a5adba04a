//! The collector's Prometheus metrics, rendered as text exposition.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters the collector exposes on `/metrics`.
#[derive(Default)]
pub struct Metrics {
    /// Results stored for the first time.
    pub stored: AtomicU64,
    /// Results whose scan id was already stored (redeliveries, replays).
    pub duplicates: AtomicU64,
    /// Delivery attempts refused because the database was unavailable.
    pub store_unavailable: AtomicU64,
    quarantined: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    /// Counts one quarantined event under its reason label.
    pub fn quarantined(&self, reason: &'static str) {
        let mut map = self.quarantined.lock().unwrap_or_else(|p| p.into_inner());
        *map.entry(reason).or_default() += 1;
    }

    /// Quarantined events for one reason.
    pub fn quarantined_count(&self, reason: &str) -> u64 {
        let map = self.quarantined.lock().unwrap_or_else(|p| p.into_inner());
        map.get(reason).copied().unwrap_or(0)
    }

    /// The Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, value: u64| {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
            ));
        };
        counter(
            "scanfleet_collector_results_stored_total",
            "Verified results stored for the first time.",
            self.stored.load(Ordering::Relaxed),
        );
        counter(
            "scanfleet_collector_results_duplicate_total",
            "Verified results whose scan id was already stored.",
            self.duplicates.load(Ordering::Relaxed),
        );
        counter(
            "scanfleet_collector_store_unavailable_total",
            "Deliveries left unacknowledged because the database was unavailable.",
            self.store_unavailable.load(Ordering::Relaxed),
        );
        out.push_str(
            "# HELP scanfleet_collector_results_quarantined_total Result events quarantined, by reason.\n\
             # TYPE scanfleet_collector_results_quarantined_total counter\n",
        );
        let map = self.quarantined.lock().unwrap_or_else(|p| p.into_inner());
        for (reason, value) in map.iter() {
            out.push_str(&format!(
                "scanfleet_collector_results_quarantined_total{{reason=\"{reason}\"}} {value}\n"
            ));
        }
        out
    }
}
