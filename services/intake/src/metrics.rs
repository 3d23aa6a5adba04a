//! Intake's metrics on `/metrics`: webhook deliveries, push watches,
//! schedules, and the listeners' connection counts, all through
//! `prometheus-client` with HELP on every family. Every labelled series
//! an alert may watch (each delivery outcome, each trigger, each watch
//! outcome) exists at zero from the start.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use scanfleet_process_lifecycle::metrics::{CounterCell, GaugeCell, Registry, service_registry};
use scanfleet_process_lifecycle::serving::ConnectionMetrics;

/// Every metric intake exports.
#[derive(Debug)]
pub struct Metrics {
    /// Webhook deliveries answered 2xx.
    pub webhook_accepted: CounterCell,
    /// Webhook deliveries refused 4xx (auth, size, syntax).
    pub webhook_refused: CounterCell,
    /// Webhook deliveries answered 429/503 (queue full, bus down, watch cap).
    pub webhook_backpressure: CounterCell,
    /// Webhook events ignored (blobs, pulls, artifacts...).
    pub webhook_events_ignored: CounterCell,
    /// Push intents that became new messages.
    pub push_intents_queued: CounterCell,
    /// Push watches added for digests no pod runs yet.
    pub push_watches_added: CounterCell,
    /// Push watches that expired without a pod.
    pub push_watches_expired: CounterCell,
    /// Push watches consumed by a starting pod.
    pub push_watches_matched: CounterCell,
    /// Pod updates checked against the push watches.
    pub pod_updates_checked: CounterCell,
    /// Pending push watches right now.
    pub push_watches_pending: GaugeCell,
    /// Schedule fires handled.
    pub schedule_fires: CounterCell,
    /// Periodic intents that became new messages.
    pub schedule_intents_queued: CounterCell,
    /// Periodic intents coalesced into a queued one (per-subject limit or
    /// msg-id duplicate).
    pub schedule_intents_coalesced: CounterCell,
    /// Periodic intents refused by a full or unavailable queue.
    pub schedule_intents_refused: CounterCell,
    /// Intents queued for each cluster while no worker pulls its
    /// consumers (0 when one does), refreshed every few seconds.
    pub cluster_intents_waiting: Family<ClusterLabel, Gauge>,
    /// 1 while some worker pulls (or runs) a cluster's intents, else 0.
    pub cluster_served: Family<ClusterLabel, Gauge>,
    /// Connections on the gRPC and HTTP listeners.
    pub connections: ConnectionMetrics,
    registry: Registry,
}

/// The `cluster` label of the per-cluster queue gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClusterLabel {
    /// The cluster's name.
    pub cluster: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Trigger {
    trigger: &'static str,
}

/// Registers a family labelled by `key` with one series per value, and
/// returns the series in order.
fn labelled<L, const N: usize>(
    registry: &mut Registry,
    name: &str,
    help: &str,
    labels: [L; N],
) -> [CounterCell; N]
where
    L: EncodeLabelSet + Clone + std::hash::Hash + Eq + std::fmt::Debug + Send + Sync + 'static,
{
    let family = Family::<L, Counter>::default();
    let cells = labels.map(|l| CounterCell(family.get_or_create_owned(&l)));
    registry.register(name, help, family);
    cells
}

fn counter(registry: &mut Registry, name: &str, help: &str) -> CounterCell {
    let cell = CounterCell::default();
    registry.register(name, help, cell.0.clone());
    cell
}

impl Default for Metrics {
    fn default() -> Self {
        let mut r = service_registry("intake", env!("CARGO_PKG_VERSION"));
        let [accepted, refused, backpressure] = labelled(
            &mut r,
            "webhook_deliveries",
            "Registry webhook deliveries, by answer: accepted (2xx), refused (4xx), backpressure (429/503).",
            ["accepted", "refused", "backpressure"].map(|outcome| Outcome { outcome }),
        );
        let ignored = counter(
            &mut r,
            "webhook_events_ignored",
            "Webhook events deliberately ignored (blob pushes, pulls, non-image artifacts).",
        );
        let [push_queued, schedule_queued] = labelled(
            &mut r,
            "intents_queued",
            "Intents that became new messages on the intent stream, by trigger (registry_push, schedule).",
            ["registry_push", "schedule"].map(|trigger| Trigger { trigger }),
        );
        let [added, expired, matched] = labelled(
            &mut r,
            "push_watches",
            "Push watches for digests no pod runs yet, by outcome: added, expired (no pod came), matched.",
            ["added", "expired", "matched"].map(|outcome| Outcome { outcome }),
        );
        let pending = GaugeCell::default();
        r.register(
            "push_watches_pending",
            "Push watches still waiting for a pod running their digest.",
            pending.0.clone(),
        );
        let checked = counter(
            &mut r,
            "pod_updates_checked",
            "Pod updates from the watch checked against the pending push watches.",
        );
        let fires = counter(&mut r, "schedule_fires", "Schedule fires handled.");
        let [coalesced, schedule_refused] = labelled(
            &mut r,
            "schedule_intents",
            "Periodic intents not queued anew, by outcome: coalesced into a queued one, refused by a full or unavailable queue.",
            ["coalesced", "refused"].map(|outcome| Outcome { outcome }),
        );
        let cluster_intents_waiting = Family::<ClusterLabel, Gauge>::default();
        r.register(
            "cluster_intents_waiting",
            "Intents queued for a cluster no running worker pulls from (they wait; never dead-lettered for it).",
            cluster_intents_waiting.clone(),
        );
        let cluster_served = Family::<ClusterLabel, Gauge>::default();
        r.register(
            "cluster_served",
            "1 while some worker pulls or runs the cluster's intents, else 0.",
            cluster_served.clone(),
        );
        let connections = ConnectionMetrics::register(&mut r);
        Self {
            cluster_intents_waiting,
            cluster_served,
            webhook_accepted: accepted,
            webhook_refused: refused,
            webhook_backpressure: backpressure,
            webhook_events_ignored: ignored,
            push_intents_queued: push_queued,
            push_watches_added: added,
            push_watches_expired: expired,
            push_watches_matched: matched,
            pod_updates_checked: checked,
            push_watches_pending: pending,
            schedule_fires: fires,
            schedule_intents_queued: schedule_queued,
            schedule_intents_coalesced: coalesced,
            schedule_intents_refused: schedule_refused,
            connections,
            registry: r,
        }
    }
}

impl Metrics {
    /// Adds `n` to `counter`.
    pub fn add(counter: &CounterCell, n: u64) {
        counter.add(n);
    }

    /// The registry, for `/metrics`.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        scanfleet_process_lifecycle::metrics::render(&self.registry)
    }

    /// One sample by exact series text, e.g.
    /// `scanfleet_intake_push_watches_pending`; for tests and logs.
    pub fn sample(text: &str, series: &str) -> Option<u64> {
        scanfleet_process_lifecycle::metrics::sample(text, series).map(|v| v as u64)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

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
            text.matches("# TYPE scanfleet_intake_push_watches counter")
                .count(),
            1
        );
    }

    #[test]
    fn every_family_has_help_and_alerting_series_start_at_zero() {
        let text = Metrics::default().render();
        for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            let name = line.split_whitespace().nth(2).unwrap();
            assert!(
                text.contains(&format!("# HELP {name} ")),
                "no HELP for {name}"
            );
        }
        for series in [
            "scanfleet_intake_webhook_deliveries_total{outcome=\"refused\"}",
            "scanfleet_intake_intents_queued_total{trigger=\"schedule\"}",
            "scanfleet_intake_schedule_intents_total{outcome=\"refused\"}",
        ] {
            assert_eq!(
                Metrics::sample(&text, series),
                Some(0),
                "{series} in {text}"
            );
        }
        assert!(text.contains("scanfleet_intake_build_info{"), "{text}");
    }
}
