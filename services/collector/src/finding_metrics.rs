//! Posture as Prometheus series: for each workload (cluster, namespace,
//! pod, container) and profile, what its latest completed scan found.
//!
//! Why per workload and not per namespace: Prometheus aggregates cheaply
//! (`avg by (namespace)`, `sum by (cluster, severity)`), but cannot split a
//! pre-aggregated series again, so the finest useful grain is exported and
//! the example rules in `deploy/monitoring/` aggregate it.
//!
//! Why bounded: every workload is a handful of series, and a fleet with
//! churning pod names could grow a scrape without end. At most
//! `max_workloads` workloads are tracked; a result for one more is counted
//! in `finding_workloads_dropped_total` instead, so the loss is visible and
//! alertable rather than silent. A workload's series are replaced, never
//! duplicated, by its newer results; a result older than the one shown
//! (a late redelivery) changes nothing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use scanfleet_result_store::store::MAX_PAGE_SIZE;
use scanfleet_result_store::{ResultFilter, ResultStore, StoreError, StoredResult};

/// The default bound on tracked workloads.
pub const DEFAULT_MAX_WORKLOADS: usize = 10_000;

/// The severities a failed control is counted under, as HDF names them.
const SEVERITIES: [&str; 4] = ["critical", "high", "medium", "low"];

/// One workload and profile.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Workload {
    cluster: String,
    namespace: String,
    pod: String,
    container: String,
    profile: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkloadSeverity {
    cluster: String,
    namespace: String,
    pod: String,
    container: String,
    profile: String,
    severity: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// The posture series and the bound that keeps them finite.
#[derive(Debug)]
pub struct FindingMetrics {
    max_workloads: usize,
    /// Each tracked workload's shown result: when it finished (Unix ms).
    shown: Mutex<HashMap<Workload, i64>>,
    compliance: Family<Workload, FloatGauge>,
    failed: Family<WorkloadSeverity, Gauge>,
    last_scan: Family<Workload, FloatGauge>,
    dropped: Counter,
}

impl FindingMetrics {
    /// Registers the families in `registry` (which carries the service's
    /// `scanfleet_collector` prefix).
    pub fn register(registry: &mut Registry, max_workloads: usize) -> Self {
        let this = Self {
            max_workloads,
            shown: Mutex::default(),
            compliance: Family::default(),
            failed: Family::default(),
            last_scan: Family::default(),
            dropped: Counter::default(),
        };
        registry.register(
            "workload_compliance_ratio",
            "Passed controls over passed plus failed in the workload's latest completed scan (0 to 1).",
            this.compliance.clone(),
        );
        registry.register(
            "workload_failed_controls",
            "Failed controls by severity in the workload's latest completed scan.",
            this.failed.clone(),
        );
        registry.register(
            "workload_last_scan_timestamp_seconds",
            "When the workload's latest completed scan finished (Unix time); alert on time() minus this.",
            this.last_scan.clone(),
        );
        registry.register(
            "finding_workloads_dropped",
            "Completed results not shown as workload series because the workload bound was reached.",
            this.dropped.clone(),
        );
        this
    }

    /// Shows a stored result, if it is a completed scan newer than the one
    /// its workload shows and the workload fits the bound.
    pub fn observe(&self, result: &StoredResult) {
        let Some(counts) = result.counts.as_ref().filter(|_| result.completed) else {
            return;
        };
        let workload = Workload {
            cluster: result.cluster.clone(),
            namespace: result.namespace.clone(),
            pod: result.pod.clone(),
            container: result.container.clone(),
            profile: result.profile_name.clone(),
        };
        let mut shown = self.shown.lock().unwrap_or_else(|p| p.into_inner());
        let full = shown.len() >= self.max_workloads;
        match shown.get_mut(&workload) {
            Some(finished) if *finished > result.finished_at_ms => return,
            Some(finished) => *finished = result.finished_at_ms,
            None if full => {
                self.dropped.inc();
                return;
            }
            None => {
                shown.insert(workload.clone(), result.finished_at_ms);
            }
        }
        let judged = counts.passed + counts.failed;
        let ratio = if judged == 0 {
            1.0
        } else {
            counts.passed as f64 / judged as f64
        };
        self.compliance.get_or_create(&workload).set(ratio);
        self.last_scan
            .get_or_create(&workload)
            .set(result.finished_at_ms as f64 / 1000.0);
        let by_severity = [
            counts.failed_critical,
            counts.failed_high,
            counts.failed_medium,
            counts.failed_low,
        ];
        for (severity, failed) in SEVERITIES.iter().zip(by_severity) {
            let labels = WorkloadSeverity {
                cluster: workload.cluster.clone(),
                namespace: workload.namespace.clone(),
                pod: workload.pod.clone(),
                container: workload.container.clone(),
                profile: workload.profile.clone(),
                severity: (*severity).to_owned(),
            };
            self.failed.get_or_create(&labels).set(failed);
        }
    }

    /// Shows what the store already holds, so a restarted collector's
    /// series (and the "not scanned for a day" alert on them) do not wait
    /// for every workload's next scan. Reads newest first and stops after
    /// a bounded number of results: enough for the workload bound several
    /// times over, never the whole history.
    ///
    /// # Errors
    /// [`StoreError`] when the database fails.
    pub async fn show_stored(&self, store: &ResultStore) -> Result<(), StoreError> {
        let filter = ResultFilter {
            completed: Some(true),
            ..ResultFilter::default()
        };
        let budget = self.max_workloads.saturating_mul(4);
        let mut read = 0;
        let mut after = None;
        while read < budget {
            let page = store.list(&filter, MAX_PAGE_SIZE, after.as_ref()).await?;
            read += page.results.len();
            for result in &page.results {
                self.observe(result);
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        Ok(())
    }

    /// Workloads shown now.
    pub fn workloads(&self) -> usize {
        self.shown.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use scanfleet_process_lifecycle::metrics::{render, sample, service_registry};
    use scanfleet_result_store::Counts;

    use super::*;

    fn result(pod: &str, finished_s: i64, passed: i64, failed: i64) -> StoredResult {
        StoredResult {
            scan_id: format!("{pod}-{finished_s}"),
            cluster: "c1".into(),
            namespace: "apps".into(),
            pod: pod.into(),
            container: "app".into(),
            image: "img".into(),
            image_digest: "sha256:00".into(),
            profile_name: "container-baseline".into(),
            profile_version: "1.0.0".into(),
            profile_sha256: "00".into(),
            approach: "exec".into(),
            completed: true,
            failure: None,
            counts: Some(Counts {
                passed,
                failed,
                failed_high: failed,
                ..Counts::default()
            }),
            threshold_passed: None,
            started_at_ms: finished_s * 1000 - 10,
            finished_at_ms: finished_s * 1000,
            persisted_at_ms: finished_s * 1000,
            signer_key_id: "k".into(),
            statement: String::new(),
            envelope: Vec::new(),
            report_sha256: None,
            report_size: None,
        }
    }

    fn series(name: &str, pod: &str, extra: &str) -> String {
        format!(
            "scanfleet_collector_{name}{{cluster=\"c1\",namespace=\"apps\",pod=\"{pod}\",container=\"app\",profile=\"container-baseline\"{extra}}}"
        )
    }

    #[test]
    fn the_newest_completed_result_is_shown_and_the_bound_holds() {
        let mut registry = service_registry("collector", "0");
        let findings = FindingMetrics::register(&mut registry, 2);
        findings.observe(&result("web", 100, 9, 1));
        findings.observe(&result("web", 50, 1, 9)); // late redelivery: ignored
        let mut failed_scan = result("web", 200, 0, 0);
        failed_scan.completed = false;
        findings.observe(&failed_scan); // no findings in a failed scan
        findings.observe(&result("db", 120, 0, 0));
        findings.observe(&result("cache", 130, 5, 5)); // over the bound
        let text = render(&registry);
        let ratio = series("workload_compliance_ratio", "web", "");
        assert_eq!(sample(&text, &ratio), Some(0.9), "{text}");
        let when = series("workload_last_scan_timestamp_seconds", "web", "");
        assert_eq!(sample(&text, &when), Some(100.0), "{text}");
        let high = series("workload_failed_controls", "web", ",severity=\"high\"");
        assert_eq!(sample(&text, &high), Some(1.0), "{text}");
        let nothing_judged = series("workload_compliance_ratio", "db", "");
        assert_eq!(sample(&text, &nothing_judged), Some(1.0), "{text}");
        assert!(!text.contains("pod=\"cache\""), "{text}");
        assert_eq!(
            sample(&text, "scanfleet_collector_finding_workloads_dropped_total"),
            Some(1.0)
        );
        assert_eq!(findings.workloads(), 2);

        findings.observe(&result("web", 300, 10, 0));
        let text = render(&registry);
        assert_eq!(sample(&text, &ratio), Some(1.0), "{text}");
        assert_eq!(sample(&text, &high), Some(0.0), "{text}");
    }
}
