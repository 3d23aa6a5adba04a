//! Stopping the fleet mid-scan (SIGTERM or Ctrl-C) lets the scans finish:
//! intake stops first, the workers drain while NATS and kubesim still serve
//! them, and no per-scan ServiceAccount is left behind, by kubesim's audit
//! log; after a restart every submitted scan is stored as completed.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use nix::sys::signal::Signal;
use scanfleet_contracts::v1::ScanOutcome;
use support::{
    Fleet, assert_nothing_left, audit_log, identities, submit_apps, wait_stored, wait_until,
};

/// Every exec takes three seconds, so a stop lands mid-scan.
const SLOW_EXEC: &str =
    "- path: \"*/exec\"\n  rate: 1.0\n  fault:\n    kind: latency\n    millis: 3000\n";

fn start(dir: &Path, faults: &Path) -> Fleet {
    Fleet::start(
        dir,
        &[
            "--workers",
            "1",
            "--concurrency",
            "6",
            "--kubesim-faults",
            faults.to_str().unwrap(),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_mid_scan_finishes_the_scans_and_removes_their_identities() {
    let dir = tempfile::tempdir().unwrap();
    let faults = dir.path().join("faults.yml");
    std::fs::write(&faults, SLOW_EXEC).unwrap();
    let mut fleet = start(dir.path(), &faults);
    let before = identities(&audit_log(dir.path())).created;

    let submitted: BTreeSet<String> = submit_apps(&fleet.caller, &fleet.intake)
        .await
        .into_iter()
        .collect();
    // Mid-scan: identities exist and are in use (their exec is pending).
    wait_until("scans to be running", Duration::from_secs(60), || {
        identities(&audit_log(dir.path())).created > before
    });
    let status = fleet.stop(Signal::SIGTERM, Duration::from_secs(120));
    assert_eq!(status.code(), Some(143), "terminated exit status");
    assert_nothing_left(dir.path());
    let ids = identities(&audit_log(dir.path()));
    eprintln!(
        "identities: created {}, deleted {}, left {:?}",
        ids.created, ids.deleted, ids.never_deleted
    );
    assert!(ids.created > before, "{ids:?}");
    assert!(ids.never_deleted.is_empty(), "identities left: {ids:?}");
    assert_eq!(ids.created, ids.deleted, "identities left: {ids:?}");
    assert!(
        ids.calls_as_scan_identity
            .iter()
            .any(|c| c == "get pods/exec"),
        "the audit log names the scans' own calls: {ids:?}"
    );
    assert!(
        ids.calls_as_scan_identity
            .iter()
            .all(|c| c.contains("pods")),
        "a scan identity touched only pods: {ids:?}"
    );
    let stderr = fleet.stderr_text();
    let order: Vec<usize> = [
        "stopping intake",
        "stopping worker-0",
        "stopping collector",
        "stopping nats-server",
        "stopping kubesim",
    ]
    .iter()
    .map(|line| {
        stderr
            .find(line)
            .unwrap_or_else(|| panic!("no {line:?}:\n{stderr}"))
    })
    .collect();
    assert!(order.is_sorted(), "stopped in order:\n{stderr}");

    drop(fleet);

    // Whatever finished during the drain was published; the rest stayed
    // queued. After a restart every scan is stored, and none failed.
    let mut fleet = start(dir.path(), &faults);
    let stored = wait_stored(
        &fleet.caller,
        &fleet.collector,
        &submitted,
        Duration::from_secs(120),
    )
    .await;
    assert_eq!(stored.len(), submitted.len(), "every submitted scan stored");
    let failed: Vec<String> = stored
        .values()
        .filter(|r| r.outcome() != ScanOutcome::Completed)
        .map(|r| format!("{}: {}", r.scan_id, r.failure))
        .collect();
    assert!(failed.is_empty(), "scans failed: {failed:?}");
    assert_eq!(
        fleet.stop(Signal::SIGINT, Duration::from_secs(120)).code(),
        Some(130)
    );
    assert_nothing_left(dir.path());
}
