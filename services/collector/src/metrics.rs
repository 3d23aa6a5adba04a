//! The collector's metrics on `/metrics`, through `prometheus-client` with
//! HELP on every family. Every quarantine reason exists at zero from the
//! start, so an alert on `rate(…_quarantined_total{reason="bad_signature"})`
//! has a series to watch before the first forgery arrives.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use scanfleet_process_lifecycle::metrics::{CounterCell, Registry, service_registry};
use scanfleet_process_lifecycle::serving::ConnectionMetrics;

use crate::finding_metrics::{DEFAULT_MAX_WORKLOADS, FindingMetrics};
use crate::ingest::Rejection;

/// Counters the collector exposes on `/metrics`.
#[derive(Debug)]
pub struct Metrics {
    /// Results stored for the first time.
    pub stored: CounterCell,
    /// Results whose scan id was already stored (redeliveries, replays).
    pub duplicates: CounterCell,
    /// Delivery attempts refused because the database was unavailable.
    pub store_unavailable: CounterCell,
    /// Drift reports recorded (a container scan compared with the image
    /// scan of its digest and profile version).
    pub drift_reports: CounterCell,
    /// Controls found drifted, summed over the drift reports recorded.
    pub drifted_controls: CounterCell,
    /// Connections on the gRPC and HTTP listeners.
    pub connections: ConnectionMetrics,
    /// Posture per workload, from the latest completed scans.
    pub findings: FindingMetrics,
    quarantined: Family<Reason, Counter>,
    registry: Registry,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: String,
}

/// Every quarantine reason label, as `Rejection::label` spells it
/// (`Rejection::LABELS`, whose test proves it complete).
pub fn quarantine_reasons() -> Vec<&'static str> {
    Rejection::LABELS.to_vec()
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_WORKLOADS)
    }
}

impl Metrics {
    /// The collector's metrics, showing findings for at most
    /// `max_workloads` workloads.
    pub fn new(max_workloads: usize) -> Self {
        let mut r = service_registry("collector", env!("CARGO_PKG_VERSION"));
        let counter = |r: &mut Registry, name: &str, help: &str| {
            let cell = CounterCell::default();
            r.register(name, help, cell.0.clone());
            cell
        };
        let stored = counter(
            &mut r,
            "results_stored",
            "Verified results stored for the first time.",
        );
        let duplicates = counter(
            &mut r,
            "results_duplicate",
            "Verified results whose scan id was already stored.",
        );
        let store_unavailable = counter(
            &mut r,
            "store_unavailable",
            "Deliveries left unacknowledged because the database was unavailable.",
        );
        let drift_reports = counter(
            &mut r,
            "drift_reports",
            "Drift reports recorded: a container scan compared with the image scan of its digest and profile version.",
        );
        let drifted_controls = counter(
            &mut r,
            "drifted_controls",
            "Controls whose status differed from the image scan, summed over the drift reports recorded.",
        );
        let quarantined = Family::<Reason, Counter>::default();
        for reason in quarantine_reasons() {
            quarantined.get_or_create_owned(&Reason {
                reason: reason.to_owned(),
            });
        }
        r.register(
            "results_quarantined",
            "Result events quarantined instead of stored, by reason.",
            quarantined.clone(),
        );
        let connections = ConnectionMetrics::register(&mut r);
        let findings = FindingMetrics::register(&mut r, max_workloads);
        Self {
            stored,
            duplicates,
            store_unavailable,
            drift_reports,
            drifted_controls,
            connections,
            findings,
            quarantined,
            registry: r,
        }
    }

    /// Counts one quarantined event under its reason label.
    pub fn quarantined(&self, reason: &'static str) {
        self.quarantined
            .get_or_create(&Reason {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Quarantined events for one reason.
    pub fn quarantined_count(&self, reason: &str) -> u64 {
        self.quarantined
            .get(&Reason {
                reason: reason.to_owned(),
            })
            .map_or(0, |c| c.get())
    }

    /// The registry, for `/metrics`.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        scanfleet_process_lifecycle::metrics::render(&self.registry)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use scanfleet_process_lifecycle::metrics::sample;

    use super::*;

    #[test]
    fn every_quarantine_reason_is_a_series_from_the_start() {
        let m = Metrics::default();
        m.stored.fetch_add(1, Ordering::Relaxed);
        m.quarantined("bad_signature");
        let text = m.render();
        for reason in quarantine_reasons() {
            let series =
                format!("scanfleet_collector_results_quarantined_total{{reason=\"{reason}\"}}");
            let want = if reason == "bad_signature" { 1.0 } else { 0.0 };
            assert_eq!(sample(&text, &series), Some(want), "{series} in {text}");
        }
        assert!(quarantine_reasons().len() >= 10);
        assert_eq!(
            sample(&text, "scanfleet_collector_results_stored_total"),
            Some(1.0)
        );
        for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            let name = line.split_whitespace().nth(2).unwrap();
            assert!(
                text.contains(&format!("# HELP {name} ")),
                "no HELP for {name}"
            );
        }
    }
}
