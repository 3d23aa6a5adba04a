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
use scanfleet_kube_access::ApiThrottle;

use crate::fleet_budget::FleetBudget;
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
    pub fn with_throttle(mut self, throttle: ApiThrottle) -> Self {
        self.registry
            .register_collector(Box::new(ThrottleCollector(throttle)));
        self
    }

    /// Adds the cluster's fleet-wide API budget as this worker sees it,
    /// labelled by cluster, read at each scrape.
    pub fn with_fleet_budget(mut self, budget: FleetBudget) -> Self {
        self.registry
            .register_collector(Box::new(FleetBudgetCollector(budget)));
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

/// The throttle's own counters, exposed as counters at scrape time.
#[derive(Debug)]
struct ThrottleCollector(ApiThrottle);

fn counter<N>(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: N) -> std::fmt::Result
where
    ConstCounter<N>: EncodeMetric,
{
    let metric = ConstCounter::new(value);
    let descriptor = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    metric.encode(descriptor)
}

impl Collector for ThrottleCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let t = self.0.stats();
        let e = &mut encoder;
        counter(
            e,
            "kube_requests",
            "Kubernetes API attempts (retries included).",
            t.attempts,
        )?;
        counter(
            e,
            "kube_throttle_wait_seconds",
            "Time calls waited for the per-cluster limiter.",
            t.waited.as_secs_f64(),
        )?;
        counter(
            e,
            "kube_retry_sleep_seconds",
            "Time spent in Retry-After and backoff sleeps.",
            t.retry_sleep.as_secs_f64(),
        )?;
        counter(
            e,
            "kube_throttled",
            "429 answers from the API server.",
            t.throttled_by_server,
        )?;
        counter(
            e,
            "kube_retries",
            "Retries after 5xx, dropped connections or timeouts.",
            t.retried_errors,
        )?;
        counter(
            e,
            "kube_gave_up",
            "Calls that failed after their last retry.",
            t.gave_up,
        )
    }
}

/// The fleet budget's counters, per cluster.
#[derive(Debug)]
struct FleetBudgetCollector(FleetBudget);

fn labelled<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    (name, help, kind): (&str, &str, MetricType),
    cluster: &str,
    metric: M,
) -> std::fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, kind)?;
    let labels = [("cluster", cluster)];
    metric.encode(family.encode_family(&labels)?)
}

impl Collector for FleetBudgetCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let s = self.0.stats();
        let settings = self.0.settings();
        let cluster = self.0.cluster();
        let e = &mut encoder;
        let c = MetricType::Counter;
        let g = MetricType::Gauge;
        #[rustfmt::skip]
        let counters = [
            ("kube_budget_permits_granted", "Permits of the cluster's fleet-wide API budget this worker's calls got.", s.granted),
            ("kube_budget_leases", "Leases this worker wrote to the fleet budget (one compare-and-set write each).", s.leases),
            ("kube_budget_conflicts", "Budget writes that lost the compare-and-set to another worker and re-read.", s.conflicts),
            ("kube_budget_bus_errors", "Budget reads or writes that failed (NATS unreachable); calls waited.", s.bus_errors),
            ("kube_budget_lapsed", "Leased permits that lapsed unspent.", s.lapsed),
            ("kube_budget_pauses", "Fleet-wide pauses this worker wrote after a 429 with Retry-After.", s.pauses),
        ];
        for (name, help, value) in counters {
            labelled(e, (name, help, c), cluster, ConstCounter::new(value))?;
        }
        #[rustfmt::skip]
        let floats = [
            ("kube_budget_wait_seconds", "Time calls waited for a fleet budget permit.", c, s.waited.as_secs_f64()),
            ("kube_budget_in_use_ratio", "Share of the fleet's burst in use at this worker's last lease (1: empty bucket).", g, s.in_use),
            ("kube_budget_qps", "The cluster's fleet-wide API budget, calls per second.", g, settings.limits.qps),
            ("kube_budget_burst", "The cluster's fleet-wide API burst.", g, f64::from(settings.limits.burst)),
        ];
        for (name, help, kind, value) in floats {
            if kind == MetricType::Counter {
                labelled(e, (name, help, kind), cluster, ConstCounter::new(value))?;
            } else {
                labelled(e, (name, help, kind), cluster, ConstGauge::new(value))?;
            }
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
