//! Intake's counters, rendered in the Prometheus text format on
//! `/metrics`.
//!
//! Plain atomics instead of a metrics library: a handful of counters do not
//! justify a dependency, and the text format is stable.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Every counter intake exports.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Webhook deliveries answered 2xx.
    pub webhook_accepted: AtomicU64,
    /// Webhook deliveries refused 4xx (auth, size, syntax).
    pub webhook_refused: AtomicU64,
    /// Webhook deliveries answered 429/503 (queue full, bus down, watch cap).
    pub webhook_backpressure: AtomicU64,
    /// Webhook events ignored (blobs, pulls, artifacts...).
    pub webhook_events_ignored: AtomicU64,
    /// Push intents that became new messages.
    pub push_intents_queued: AtomicU64,
    /// Push watches added for digests no pod runs yet.
    pub push_watches_added: AtomicU64,
    /// Push watches that expired without a pod.
    pub push_watches_expired: AtomicU64,
    /// Push watches consumed by a starting pod.
    pub push_watches_matched: AtomicU64,
    /// Pod updates checked against the push watches.
    pub pod_updates_checked: AtomicU64,
    /// Pending push watches right now.
    pub push_watches_pending: AtomicU64,
    /// Schedule fires handled.
    pub schedule_fires: AtomicU64,
    /// Periodic intents that became new messages.
    pub schedule_intents_queued: AtomicU64,
    /// Periodic intents coalesced into a queued one (per-subject limit or
    /// msg-id duplicate).
    pub schedule_intents_coalesced: AtomicU64,
    /// Periodic intents refused by a full or unavailable queue.
    pub schedule_intents_refused: AtomicU64,
}

impl Metrics {
    /// Adds `n` to `counter`.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let rows: [(&str, &str, &AtomicU64, &str); 14] = [
            (
                "scanfleet_intake_webhook_deliveries_total",
                "outcome=\"accepted\"",
                &self.webhook_accepted,
                "counter",
            ),
            (
                "scanfleet_intake_webhook_deliveries_total",
                "outcome=\"refused\"",
                &self.webhook_refused,
                "counter",
            ),
            (
                "scanfleet_intake_webhook_deliveries_total",
                "outcome=\"backpressure\"",
                &self.webhook_backpressure,
                "counter",
            ),
            (
                "scanfleet_intake_webhook_events_ignored_total",
                "",
                &self.webhook_events_ignored,
                "counter",
            ),
            (
                "scanfleet_intake_intents_queued_total",
                "trigger=\"registry_push\"",
                &self.push_intents_queued,
                "counter",
            ),
            (
                "scanfleet_intake_intents_queued_total",
                "trigger=\"schedule\"",
                &self.schedule_intents_queued,
                "counter",
            ),
            (
                "scanfleet_intake_push_watches_total",
                "outcome=\"added\"",
                &self.push_watches_added,
                "counter",
            ),
            (
                "scanfleet_intake_push_watches_total",
                "outcome=\"expired\"",
                &self.push_watches_expired,
                "counter",
            ),
            (
                "scanfleet_intake_push_watches_total",
                "outcome=\"matched\"",
                &self.push_watches_matched,
                "counter",
            ),
            (
                "scanfleet_intake_push_watches_pending",
                "",
                &self.push_watches_pending,
                "gauge",
            ),
            (
                "scanfleet_intake_pod_updates_checked_total",
                "",
                &self.pod_updates_checked,
                "counter",
            ),
            (
                "scanfleet_intake_schedule_fires_total",
                "",
                &self.schedule_fires,
                "counter",
            ),
            (
                "scanfleet_intake_schedule_intents_total",
                "outcome=\"coalesced\"",
                &self.schedule_intents_coalesced,
                "counter",
            ),
            (
                "scanfleet_intake_schedule_intents_total",
                "outcome=\"refused\"",
                &self.schedule_intents_refused,
                "counter",
            ),
        ];
        let mut out = String::new();
        let mut typed = std::collections::BTreeSet::new();
        for (name, labels, value, kind) in rows {
            if typed.insert(name) {
                let _ = writeln!(out, "# TYPE {name} {kind}");
            }
            let v = value.load(Ordering::Relaxed);
            if labels.is_empty() {
                let _ = writeln!(out, "{name} {v}");
            } else {
                let _ = writeln!(out, "{name}{{{labels}}} {v}");
            }
        }
        out
    }

    /// One sample by exact series text, e.g.
    /// `scanfleet_intake_push_watches_pending`; for tests and logs.
    pub fn sample(text: &str, series: &str) -> Option<u64> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_and_read_back() {
        let m = Metrics::default();
        Metrics::add(&m.push_watches_added, 3);
        m.push_watches_pending.store(2, Ordering::Relaxed);
        let text = m.render();
        assert_eq!(
            Metrics::sample(
                &text,
                "scanfleet_intake_push_watches_total{outcome=\"added\"}"
            ),
            Some(3)
        );
        assert_eq!(
            Metrics::sample(&text, "scanfleet_intake_push_watches_pending"),
            Some(2)
        );
        assert_eq!(
            text.matches("# TYPE scanfleet_intake_push_watches_total counter")
                .count(),
            1
        );
    }
}
