//! The worker's metrics on `/metrics`: queue wait, scan duration, outcomes,
//! redeliveries, the Kubernetes API throttle and the listener, through
//! `prometheus-client` with HELP on every family.
//!
//! Duration buckets reach the longest deadline a scan may be given (intake
//! allows up to 3,600 s by default), so a slow scan lands in a finite
//! bucket instead of only in `+Inf`.

use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use scanfleet_kube_access::fleet_budget::BudgetLimits;
use scanfleet_kube_access::{ApiThrottle, ThrottleStats};

use scanfleet_fleet_budget::{FleetBudget, FleetBudgetStats};
use scanfleet_process_lifecycle::metrics::{
    CounterCell, DurationHistogram, GaugeCell, Registry, service_registry,
};
use scanfleet_process_lifecycle::serving::ConnectionMetrics;

/// The longest scan deadline intake grants by default (`--max-timeout-secs`).
pub const LONGEST_DEADLINE: Duration = Duration::from_secs(3600);

/// Everything the worker counts.
#[derive(Debug)]
pub struct WorkerMetrics {
    /// Time from publish of an intent to its claim by this worker.
    pub queue_wait: DurationHistogram,
    /// Time a scan took, whatever its outcome.
    pub scan_duration: DurationHistogram,
    /// Results published and acknowledged.
    pub completed: CounterCell,
    /// Intents terminated as permanent failures.
    pub failed_permanent: CounterCell,
    /// Intents NAKed for a retry.
    pub retried: CounterCell,
    /// Intents NAKed because the worker drained before finishing them.
    pub drained: CounterCell,
    /// Deliveries that were redeliveries.
    pub redeliveries: CounterCell,
    /// Completed passes of the identity sweeper.
    pub sweeps: CounterCell,
    /// Expired scan identities the sweeper removed.
    pub identities_swept: CounterCell,
    /// Scans running now.
    pub in_flight: GaugeCell,
    /// Connections on the health and metrics listener.
    pub connections: ConnectionMetrics,
    registry: Registry,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Status {
    status: &'static str,
}

impl Default for WorkerMetrics {
    fn default() -> Self {
        Self::with_longest_deadline(LONGEST_DEADLINE)
    }
}

impl WorkerMetrics {
    /// Metrics whose duration buckets reach `longest`.
    pub fn with_longest_deadline(longest: Duration) -> Self {
        let mut r = service_registry("worker", env!("CARGO_PKG_VERSION"));
        let queue_wait = DurationHistogram::up_to(longest);
        r.register(
            "queue_wait_seconds",
            "Time from an intent's publish to its claim by this worker.",
            queue_wait.histogram.clone(),
        );
        let scan_duration = DurationHistogram::up_to(longest);
        r.register(
            "scan_duration_seconds",
            "Scan duration, any outcome.",
            scan_duration.histogram.clone(),
        );
        let results = Family::<Status, Counter>::default();
        let [completed, failed, retried, drained] = ["completed", "failed", "retried", "drained"]
            .map(|status| CounterCell(results.get_or_create_owned(&Status { status })));
        r.register(
            "results",
            "Intents finished, by outcome: completed, failed (permanent), retried, drained (NAKed at shutdown).",
            results,
        );
        let redeliveries = CounterCell::default();
        r.register(
            "redeliveries",
            "Intents received more than once.",
            redeliveries.0.clone(),
        );
        let sweeps = CounterCell::default();
        r.register(
            "sweeps",
            "Completed passes of the expired scan identity sweeper.",
            sweeps.0.clone(),
        );
        let identities_swept = CounterCell::default();
        r.register(
            "identities_swept",
            "Expired per-scan identities (crashed attempts) the sweeper removed.",
            identities_swept.0.clone(),
        );
        let in_flight = GaugeCell::default();
        r.register("scans_in_flight", "Scans running now.", in_flight.0.clone());
        let connections = ConnectionMetrics::register(&mut r);
        Self {
            queue_wait,
            scan_duration,
            completed,
            failed_permanent: failed,
            retried,
            drained,
            redeliveries,
            sweeps,
            identities_swept,
            in_flight,
            connections,
            registry: r,
        }
    }

    /// Adds the per-cluster Kubernetes API throttle's counters, read at
    /// each scrape.
    pub fn with_clusters(mut self, clusters: Vec<(ApiThrottle, FleetBudget)>) -> Self {
        let budgets: Vec<FleetBudget> = clusters.iter().map(|(_, b)| b.clone()).collect();
        self.registry
            .register_collector(Box::new(ThrottleCollector(clusters)));
        self.registry
            .register_collector(Box::new(FleetBudgetCollector(budgets)));
        self
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

/// A metric family read from per-cluster stats: name, help, and the value.
type StatFamily<S, V> = (&'static str, &'static str, fn(&S) -> V);
/// A gauge family read from a budget's stats and limits.
type GaugeFamily = (
    &'static str,
    &'static str,
    fn(&FleetBudgetStats, &BudgetLimits) -> f64,
);

/// The throttles' own counters, one sample per cluster, read at scrape
/// time.
#[derive(Debug)]
struct ThrottleCollector(Vec<(ApiThrottle, FleetBudget)>);

/// One family with one sample per cluster: a family's descriptor may
/// appear only once in the exposition, however many clusters are served.
fn per_cluster<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    (name, help, kind): (&str, &str, MetricType),
    samples: impl IntoIterator<Item = (String, M)>,
) -> std::fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, kind)?;
    for (cluster, metric) in samples {
        let labels = [("cluster", cluster.as_str())];
        metric.encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for ThrottleCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let stats: Vec<_> = self
            .0
            .iter()
            .map(|(t, b)| (b.cluster().to_owned(), t.stats()))
            .collect();
        #[rustfmt::skip]
        let families: [StatFamily<ThrottleStats, f64>; 6] = [
            ("kube_requests", "Kubernetes API attempts (retries included).", |t| t.attempts as f64),
            ("kube_throttle_wait_seconds", "Time calls waited for the per-cluster limiter.", |t| t.waited.as_secs_f64()),
            ("kube_retry_sleep_seconds", "Time spent in Retry-After and backoff sleeps.", |t| t.retry_sleep.as_secs_f64()),
            ("kube_throttled", "429 answers from the API server.", |t| t.throttled_by_server as f64),
            ("kube_retries", "Retries after 5xx, dropped connections or timeouts.", |t| t.retried_errors as f64),
            ("kube_gave_up", "Calls that failed after their last retry.", |t| t.gave_up as f64),
        ];
        for (name, help, value) in families {
            per_cluster(
                &mut encoder,
                (name, help, MetricType::Counter),
                stats
                    .iter()
                    .map(|(cluster, t)| (cluster.clone(), ConstCounter::new(value(t)))),
            )?;
        }
        Ok(())
    }
}

/// The fleet budgets' counters, one sample per cluster.
#[derive(Debug)]
struct FleetBudgetCollector(Vec<FleetBudget>);

impl Collector for FleetBudgetCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let budgets: Vec<_> = self
            .0
            .iter()
            .map(|b| (b.cluster().to_owned(), b.stats(), b.settings().limits))
            .collect();
        let e = &mut encoder;
        let c = MetricType::Counter;
        #[rustfmt::skip]
        let counters: [StatFamily<FleetBudgetStats, u64>; 6] = [
            ("kube_budget_permits_granted", "Permits of the cluster's fleet-wide API budget this worker's calls got.", |s| s.granted),
            ("kube_budget_leases", "Leases this worker wrote to the fleet budget (one compare-and-set write each).", |s| s.leases),
            ("kube_budget_conflicts", "Budget writes that lost the compare-and-set to another worker and re-read.", |s| s.conflicts),
            ("kube_budget_bus_errors", "Budget reads or writes that failed (NATS unreachable); calls waited.", |s| s.bus_errors),
            ("kube_budget_lapsed", "Leased permits that lapsed unspent.", |s| s.lapsed),
            ("kube_budget_pauses", "Fleet-wide pauses this worker wrote after a 429 with Retry-After.", |s| s.pauses),
        ];
        for (name, help, value) in counters {
            let samples = budgets
                .iter()
                .map(|(cluster, s, _)| (cluster.clone(), ConstCounter::new(value(s))));
            per_cluster(e, (name, help, c), samples)?;
        }
        per_cluster(
            e,
            (
                "kube_budget_wait_seconds",
                "Time calls waited for a fleet budget permit.",
                c,
            ),
            budgets.iter().map(|(cluster, s, _)| {
                (cluster.clone(), ConstCounter::new(s.waited.as_secs_f64()))
            }),
        )?;
        #[rustfmt::skip]
        let gauges: [GaugeFamily; 4] = [
            ("kube_budget_in_use_ratio", "Share of the fleet's burst in use at this worker's last lease (1: empty bucket).", |s, _| s.in_use),
            ("kube_budget_qps", "The cluster's fleet-wide API budget applied at this worker's last lease, calls per second (the configured one, or a stricter one another worker is configured with).", |s, _| s.applied_qps),
            ("kube_budget_burst", "The cluster's fleet-wide API burst applied at this worker's last lease.", |s, _| f64::from(s.applied_burst)),
            ("kube_budget_configured_qps", "This worker's configured fleet-wide API budget, calls per second.", |_, l| l.qps),
        ];
        for (name, help, value) in gauges {
            let samples = budgets
                .iter()
                .map(|(cluster, s, l)| (cluster.clone(), ConstGauge::new(value(s, l))));
            per_cluster(e, (name, help, MetricType::Gauge), samples)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use scanfleet_process_lifecycle::metrics::sample;

    use super::*;

    #[test]
    fn names_help_and_buckets_as_documented() {
        let m = WorkerMetrics::default();
        m.completed.fetch_add(2, Ordering::Relaxed);
        m.scan_duration.observe(Duration::from_secs(2000));
        let text = m.render();
        assert_eq!(
            sample(
                &text,
                "scanfleet_worker_results_total{status=\"completed\"}"
            ),
            Some(2.0)
        );
        assert_eq!(
            sample(&text, "scanfleet_worker_results_total{status=\"drained\"}"),
            Some(0.0),
            "every outcome exists at zero"
        );
        assert_eq!(
            sample(
                &text,
                "scanfleet_worker_scan_duration_seconds_bucket{le=\"3600.0\"}"
            ),
            Some(1.0),
            "a 2,000 s scan lands in a finite bucket: {text}"
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
