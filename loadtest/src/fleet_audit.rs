//! The fleet benchmark's arithmetic over kubesim's audit log: which calls
//! are the workers' own, the busiest 1 s of them, and how close a measured
//! throughput comes to the bound the API budget sets. The arithmetic is
//! pure, so the unit tests below pin what the figures in
//! docs/benchmarks.md rest on; the one IO here is reading the log and
//! starting the audited kubesim the benchmarks share.

use std::path::Path;

use anyhow::{Context, Result};
use kubesim::audit::AuditRecord;

/// The identity `scanfleet-dev`'s workers call with (kubesim's admin
/// kubeconfig). Intake and the dev tool itself use it too, which is why
/// [`from_a_worker`] also looks at the time and the verb.
pub const ADMIN_USER: &str = "kubesim-admin";

/// Per-scan ServiceAccounts live in the scanned namespace.
const SCAN_IDENTITY_PREFIX: &str = "system:serviceaccount:apps:";

/// Reads an audit log (JSON lines); a line that does not parse is an error
/// naming its line number, not a silently smaller count.
///
/// # Errors
/// When the file cannot be read or a line is not an audit record.
pub fn read_audit(path: &Path) -> Result<Vec<AuditRecord>> {
    Ok(kubesim::audit::read(path)?)
}

/// Whether a request is one a scan worker made: at or after `since_ms`
/// (when the workers started; set-up calls come before), with the workers'
/// identity or a per-scan ServiceAccount. Intake's pod watch (`list` and
/// `watch` as admin) and the reviews intake and the collector make as the
/// reviewer are not the workers'; the workers never list or watch as admin.
pub fn from_a_worker(r: &AuditRecord, since_ms: f64) -> bool {
    if r.received_unix_ms < since_ms {
        return false;
    }
    if r.user.starts_with(SCAN_IDENTITY_PREFIX) {
        return true;
    }
    r.user == ADMIN_USER && r.verb != "list" && r.verb != "watch"
}

pub use kubesim::audit::arrivals;

/// Starts the demo kubesim (needs root) writing its audit log to
/// `dir/audit.jsonl`, for a benchmark that reads the rate the API server
/// saw; returns the running kubesim and the log's path.
///
/// # Errors
/// When the demo fixture or kubesim cannot start.
pub async fn start_audited_kubesim(dir: &Path) -> Result<(kubesim::Kubesim, std::path::PathBuf)> {
    let audit_path = dir.join("audit.jsonl");
    let config = kubesim::Config::demo_audited(&audit_path)?;
    let sim = kubesim::Kubesim::start_settled(config, std::time::Duration::from_secs(60))
        .await
        .context("starting kubesim (needs root)")?;
    Ok((sim, audit_path))
}

/// The most worker calls in any 1 s (kubesim's one rule for it).
pub fn busiest_second(times: &[f64]) -> usize {
    kubesim::audit::busiest_second(times).0
}

/// One run's throughput against the API budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Efficiency {
    /// Scans completed per second of wall time.
    pub scans_per_s: f64,
    /// API calls per completed scan.
    pub calls_per_scan: f64,
    /// The most scans per second the budget allows at that cost:
    /// `qps / calls_per_scan`.
    pub bound: f64,
    /// `scans_per_s / bound`, in percent.
    pub percent_of_bound: f64,
}

/// `scans` completed in `wall_s` seconds with `calls` API calls under a
/// budget of `qps`; `None` when nothing was scanned or measured.
pub fn efficiency(scans: usize, wall_s: f64, calls: usize, qps: f64) -> Option<Efficiency> {
    if scans == 0 || calls == 0 || wall_s <= 0.0 || qps <= 0.0 {
        return None;
    }
    let scans_per_s = scans as f64 / wall_s;
    let calls_per_scan = calls as f64 / scans as f64;
    let bound = qps / calls_per_scan;
    Some(Efficiency {
        scans_per_s,
        calls_per_scan,
        bound,
        percent_of_bound: 100.0 * scans_per_s / bound,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(user: &str, verb: &str, at: f64) -> AuditRecord {
        AuditRecord {
            user: user.into(),
            groups: vec![],
            verb: verb.into(),
            resource: "pods".into(),
            subresource: String::new(),
            name: String::new(),
            namespace: "apps".into(),
            path: String::new(),
            code: 200,
            latency_ms: 1.0,
            received_unix_ms: at,
        }
    }

    #[test]
    fn only_the_workers_calls_after_they_started_count() {
        let audit = vec![
            record(ADMIN_USER, "create", 10.0),
            record(ADMIN_USER, "get", 100.0),
            record(ADMIN_USER, "list", 110.0),
            record(ADMIN_USER, "watch", 120.0),
            record("system:serviceaccount:apps:scan-1", "get", 130.0),
            record(
                "system:serviceaccount:scanfleet-system:reviewer",
                "create",
                140.0,
            ),
            record(ADMIN_USER, "delete", 90.0),
        ];
        let t = arrivals(&audit, |r| from_a_worker(r, 50.0));
        assert_eq!(t, vec![90.0, 100.0, 130.0]);
    }

    #[test]
    fn efficiency_is_throughput_over_budget_per_cost() {
        // 1,200 scans in 150 s at 7.5 calls each under 60 qps: the bound is
        // 8 scans/s and 8 were reached.
        let e = efficiency(1200, 150.0, 9000, 60.0).unwrap();
        assert!((e.scans_per_s - 8.0).abs() < 1e-9);
        assert!((e.calls_per_scan - 7.5).abs() < 1e-9);
        assert!((e.bound - 8.0).abs() < 1e-9);
        assert!((e.percent_of_bound - 100.0).abs() < 1e-9);
        let slow = efficiency(1200, 200.0, 9000, 60.0).unwrap();
        assert!((slow.percent_of_bound - 75.0).abs() < 1e-9);
        assert_eq!(efficiency(0, 1.0, 1, 60.0), None);
        assert_eq!(efficiency(1, 0.0, 1, 60.0), None);
    }
}
