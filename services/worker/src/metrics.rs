//! The worker's Prometheus metrics: queue wait, scan duration, outcomes,
//! redeliveries. Histograms are fixed-bucket and lock-free to record.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A cumulative histogram over seconds.
pub struct Histogram {
    bounds: &'static [f64],
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub fn observe(&self, value: Duration) {
        let secs = value.as_secs_f64();
        for (bound, bucket) in self.bounds.iter().zip(&self.buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(value.as_micros() as u64, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bound, bucket) in self.bounds.iter().zip(&self.buckets) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.count();
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {count}");
    }
}

const SECONDS: &[f64] = &[
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// Everything the worker counts.
pub struct WorkerMetrics {
    /// Time from publish of an intent to its claim by this worker.
    pub queue_wait: Histogram,
    /// Time a scan took, whatever its outcome.
    pub scan_duration: Histogram,
    /// Results published and acknowledged.
    pub completed: AtomicU64,
    /// Intents terminated as permanent failures.
    pub failed_permanent: AtomicU64,
    /// Intents NAKed for a retry.
    pub retried: AtomicU64,
    /// Intents NAKed because the worker drained before finishing them.
    pub drained: AtomicU64,
    /// Deliveries that were redeliveries.
    pub redeliveries: AtomicU64,
    /// Scans running now.
    pub in_flight: AtomicU64,
}

impl Default for WorkerMetrics {
    fn default() -> Self {
        Self {
            queue_wait: Histogram::new(SECONDS),
            scan_duration: Histogram::new(SECONDS),
            completed: AtomicU64::new(0),
            failed_permanent: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            drained: AtomicU64::new(0),
            redeliveries: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
        }
    }
}

impl WorkerMetrics {
    /// The Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.queue_wait.render(
            &mut out,
            "scanfleet_worker_queue_wait_seconds",
            "Time from intent publish to claim.",
        );
        self.scan_duration.render(
            &mut out,
            "scanfleet_worker_scan_duration_seconds",
            "Scan duration, any outcome.",
        );
        let _ = writeln!(
            out,
            "# HELP scanfleet_worker_results_total Intents finished, by outcome.\n# TYPE scanfleet_worker_results_total counter"
        );
        for (status, v) in [
            ("completed", &self.completed),
            ("failed", &self.failed_permanent),
            ("retried", &self.retried),
            ("drained", &self.drained),
        ] {
            let _ = writeln!(
                out,
                "scanfleet_worker_results_total{{status=\"{status}\"}} {}",
                v.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP scanfleet_worker_redeliveries_total Intents received more than once.\n# TYPE scanfleet_worker_redeliveries_total counter\nscanfleet_worker_redeliveries_total {}",
            self.redeliveries.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP scanfleet_worker_scans_in_flight Scans running now.\n# TYPE scanfleet_worker_scans_in_flight gauge\nscanfleet_worker_scans_in_flight {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        out
    }
}
