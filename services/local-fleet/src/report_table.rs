//! What the demo prints: one row per scanned container (approach,
//! compliance, failed controls by severity, and whether the signature
//! verified, checked here independently of the collector), the throughput
//! and latency figures, and the workers' memory.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use scanfleet_contracts::v1::{Approach, ScanOutcome, ScanResult};
use scanfleet_trust::{IN_TOTO_PAYLOAD_TYPE, TrustedKeys};

use crate::demo_workload::Scans;

/// Largest envelope verified for the table.
const MAX_ENVELOPE_BYTES: usize = 4 << 20;

/// Prints the results table.
pub fn print_table(scans: &Scans, results: &BTreeMap<String, ScanResult>, trusted: &TrustedKeys) {
    println!(
        "\n{:<26} {:<9} {:<8} {:>11} {:>5} {:>5} {:>5} {:>5}  SIGNATURE",
        "POD", "CONTAINER", "APPROACH", "COMPLIANCE", "CRIT", "HIGH", "MED", "LOW"
    );
    for (id, (pod, container)) in scans {
        let Some(r) = results.get(id) else {
            println!("{pod:<26} {container:<9} {:<8} {:>11}", "-", "no result");
            continue;
        };
        let approach = match r.approach() {
            Approach::Exec => "exec",
            Approach::Debug => "debug",
            Approach::Sidecar => "sidecar",
            _ => "?",
        };
        let verified = trusted
            .verify_json(&r.envelope, MAX_ENVELOPE_BYTES, Some(IN_TOTO_PAYLOAD_TYPE))
            .is_ok();
        let signature = if verified { "verified" } else { "NOT VERIFIED" };
        if r.outcome() != ScanOutcome::Completed {
            println!(
                "{pod:<26} {container:<9} {approach:<8} {:>11}  {signature} ({})",
                "failed", r.failure
            );
            continue;
        }
        let s = r.summary.unwrap_or_default();
        let sev = s.failed_by_severity.unwrap_or_default();
        println!(
            "{pod:<26} {container:<9} {approach:<8} {:>10.1}% {:>5} {:>5} {:>5} {:>5}  {signature}",
            s.compliance_percent, sev.critical, sev.high, sev.medium, sev.low
        );
    }
}

/// Prints throughput and submit→persisted latency percentiles.
pub fn print_figures(
    results: &BTreeMap<String, ScanResult>,
    submitted: SystemTime,
    elapsed: Duration,
) {
    let since = |t: &prost_types::Timestamp| {
        let at = SystemTime::UNIX_EPOCH
            + Duration::from_secs(t.seconds.max(0).unsigned_abs())
            + Duration::from_nanos(u64::from(t.nanos.max(0).unsigned_abs()));
        at.duration_since(submitted).unwrap_or_default()
    };
    let mut latencies: Vec<Duration> = results
        .values()
        .filter_map(|r| r.persisted_at.as_ref().map(since))
        .collect();
    latencies.sort();
    if latencies.is_empty() {
        return;
    }
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    println!(
        "\n{} results in {:.1} s ({:.1} scans/s); submit→persisted p50 {:.2} s, p99 {:.2} s",
        results.len(),
        elapsed.as_secs_f64(),
        results.len() as f64 / elapsed.as_secs_f64().max(0.001),
        pct(0.50).as_secs_f64(),
        pct(0.99).as_secs_f64()
    );
}

/// Prints the resident and peak memory of each `(name, pid)`.
pub fn print_memory(processes: &[(String, u32)]) {
    for (name, pid) in processes {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .map(|v| v.trim().to_owned())
                .unwrap_or_else(|| "?".into())
        };
        println!("{name}: RSS {} (peak {})", field("VmRSS:"), field("VmHWM:"));
    }
}

/// How many of `scans` did not complete (no result, or a failed one).
pub fn incomplete(scans: &Scans, results: &BTreeMap<String, ScanResult>) -> usize {
    scans.len()
        - results
            .values()
            .filter(|r| r.outcome() == ScanOutcome::Completed)
            .count()
}
