//! intake → JetStream → worker process → signed result → collector, on a
//! real nats-server, kubesim and SQLite.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use scanfleet_contracts::v1::{Approach, ScanOutcome};
use support::{Fleet, eventually};

const TARGETS: [&str; 5] = [
    "k8s://apps/web-misconfigured/web",
    "k8s://apps/web-hardened/web",
    "k8s://apps/distroless-app/app",
    "k8s://apps/app-with-scanner/app",
    "k8s://apps/nonroot-worker/worker",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_submitted_scan_is_persisted_exactly_once_and_verified() {
    let fleet = Fleet::start().await;
    let worker = fleet.worker("w1", 3);
    let mut ids = BTreeSet::new();
    for round in 0..2 {
        for t in TARGETS {
            assert!(ids.insert(fleet.submit(t).await), "round {round}: fresh id");
        }
    }
    let results = fleet
        .wait_results(ids.len(), Duration::from_secs(90), &[&worker])
        .await;
    let got: BTreeSet<String> = results.iter().map(|r| r.scan_id.clone()).collect();
    assert_eq!(got, ids, "exactly the submitted scans, each once");
    assert_eq!(results.len(), ids.len());
    assert_eq!(
        fleet.messages("SCAN_RESULTS").await,
        ids.len() as u64,
        "one result event per scan"
    );
    for r in &results {
        assert_eq!(
            r.outcome(),
            ScanOutcome::Completed,
            "{}: {}",
            r.scan_id,
            r.failure
        );
        assert!(!r.signer_key_id.is_empty() && !r.envelope.is_empty());
        let target = r.target.as_ref().unwrap();
        let approach = r.approach();
        let want = match target.pod.as_str() {
            "distroless-app" => Approach::Debug,
            "app-with-scanner" => Approach::Sidecar,
            _ => Approach::Exec,
        };
        assert_eq!(approach, want, "{}", target.pod);
        assert!(
            target.image.as_ref().unwrap().digest.starts_with("sha256:"),
            "results are about the digest the pod runs"
        );
    }
    assert!(fleet.scan_accounts().await.is_empty(), "identities left");
    assert_eq!(
        worker
            .metric("scanfleet_worker_results_total{status=\"completed\"}")
            .await,
        10.0
    );
    assert!(
        worker
            .metric("scanfleet_worker_kube_requests_total{cluster=\"kubesim\"}")
            .await
            >= 10.0 * 7.0
    );

    // The trace minted at intake travels with the scan: each result event
    // carries a traceparent whose trace id labels that scan's worker logs.
    let logs = worker.logs();
    let stream = fleet.js.get_stream("SCAN_RESULTS").await.unwrap();
    for seq in 1..=ids.len() as u64 {
        let m = stream.get_raw_message(seq).await.unwrap();
        let headers = m.headers;
        let scan_id = headers
            .get("Scanfleet-Scan-Id")
            .unwrap()
            .as_str()
            .to_owned();
        let traceparent = headers
            .get("traceparent")
            .expect("traceparent")
            .as_str()
            .to_owned();
        let trace_id = scanfleet_bus::trace_headers::trace_id(&traceparent)
            .expect("a valid W3C traceparent")
            .to_owned();
        assert!(
            logs.lines()
                .any(|l| l.contains(&scan_id) && l.contains(&trace_id)),
            "no worker log line for {scan_id} carries trace {trace_id}"
        );
    }

    // No credential reached the logs, at debug level.
    assert!(logs.contains("scan identity ready"), "logs were captured");
    assert!(
        !logs.contains(&fleet.sim.admin_token),
        "the worker's token leaked"
    );
    assert!(
        !logs.contains("eyJ"),
        "a JWT (a scan token) appears in the logs"
    );
    drop(worker);
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_killed_mid_scan_loses_nothing_and_leaves_no_credentials() {
    let fleet = Fleet::start().await;
    // Slow exec so the kill lands while the scan identity exists.
    fleet.sim.set_faults(vec![kubesim::faults::FaultRule {
        path: "*/exec".into(),
        rate: 1.0,
        fault: kubesim::faults::Fault::Latency { millis: 4_000 },
    }]);
    let mut first = fleet.worker("doomed", 1);
    let id = fleet.submit(TARGETS[0]).await;
    eventually(
        "the scan to hold an identity",
        Duration::from_secs(30),
        || async { !fleet.scan_accounts().await.is_empty() },
    )
    .await;
    first.signal("KILL");
    let _ = first.child.wait();
    assert_eq!(fleet.results().await.len(), 0, "killed before publishing");
    fleet.sim.set_faults(Vec::new());

    // The survivor's own sweeper runs every second.
    let second = fleet.sweeping_worker("survivor", 1);
    let results = fleet
        .wait_results(1, Duration::from_secs(60), &[&second])
        .await;
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].scan_id, id);
    assert_eq!(results[0].outcome(), ScanOutcome::Completed);
    assert!(second.metric("scanfleet_worker_redeliveries_total").await >= 1.0);

    // The crashed attempt's identity stays until its expires-at (at least
    // ten minutes ahead): the running sweeper leaves it alone...
    let leftover = fleet.scan_accounts().await;
    assert_eq!(
        leftover.len(),
        1,
        "the crashed attempt's identity: {leftover:?}"
    );
    let passes = second.metric("scanfleet_worker_sweeps_total").await;
    eventually(
        "two more sweeper passes",
        Duration::from_secs(20),
        || async { second.metric("scanfleet_worker_sweeps_total").await >= passes + 2.0 },
    )
    .await;
    assert_eq!(
        fleet.scan_accounts().await,
        leftover,
        "not expired yet: kept"
    );
    assert_eq!(
        second
            .metric("scanfleet_worker_identities_swept_total")
            .await,
        0.0
    );
    // ...until that time has passed (moved here by rewriting the annotation,
    // as the hours would): the running worker's own sweeper removes it.
    fleet.expire_scan_account(&leftover[0]).await;
    eventually(
        "the sweeper to remove it",
        Duration::from_secs(20),
        || async { fleet.scan_accounts().await.is_empty() },
    )
    .await;
    assert_eq!(
        second
            .metric("scanfleet_worker_identities_swept_total")
            .await,
        1.0
    );
    assert_eq!(fleet.results().await.len(), 1, "no duplicate row");
    drop(second);
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_drains_in_flight_scans_and_loses_none() {
    let fleet = Fleet::start().await;
    fleet.sim.set_faults(vec![kubesim::faults::FaultRule {
        path: "*/exec".into(),
        rate: 1.0,
        fault: kubesim::faults::Fault::Latency { millis: 2_000 },
    }]);
    let mut worker = fleet.worker("draining", 3);
    let mut ids = BTreeSet::new();
    for t in &TARGETS[..3] {
        ids.insert(fleet.submit(t).await);
    }
    eventually("three scans in flight", Duration::from_secs(30), || async {
        worker.metric("scanfleet_worker_scans_in_flight").await >= 3.0
    })
    .await;
    worker.signal("TERM");
    let status = worker.child.wait().unwrap();
    assert!(status.success(), "clean exit after draining: {status:?}");
    assert_eq!(
        fleet.messages("SCAN_RESULTS").await,
        3,
        "every in-flight result was published before exit"
    );
    let results = fleet
        .wait_results(3, Duration::from_secs(30), &[&worker])
        .await;
    let got: BTreeSet<String> = results.iter().map(|r| r.scan_id.clone()).collect();
    assert_eq!(got, ids, "every in-flight scan finished before exit");
    assert!(fleet.scan_accounts().await.is_empty());
    assert_eq!(
        fleet.messages("SCAN_INTENTS").await,
        0,
        "nothing left queued"
    );
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_nats_restart_during_a_flood_loses_nothing() {
    let mut fleet = Fleet::start().await;
    let worker = fleet.worker("steady", 4);
    let mut ids = BTreeSet::new();
    for i in 0..12 {
        ids.insert(fleet.submit(TARGETS[i % TARGETS.len()]).await);
    }
    // Crash and restart the server while those scans run (file storage).
    fleet.nats.server().restart();
    for i in 0..12 {
        ids.insert(fleet.submit_retrying(TARGETS[i % TARGETS.len()]).await);
    }
    let results = fleet
        .wait_results(ids.len(), Duration::from_secs(120), &[&worker])
        .await;
    let got: BTreeSet<String> = results.iter().map(|r| r.scan_id.clone()).collect();
    assert_eq!(
        got, ids,
        "every scan, before and after the restart, exactly once"
    );
    assert_eq!(results.len(), ids.len());
    eventually("no identities left", Duration::from_secs(20), || async {
        fleet.scan_accounts().await.is_empty()
    })
    .await;
    drop(worker);
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_impossible_scan_publishes_a_signed_failure_and_is_dead_lettered() {
    let fleet = Fleet::start().await;
    let worker = fleet.worker("w", 2);
    // No sidecar in this pod: retrying cannot help.
    let id = fleet
        .try_submit_with(TARGETS[0], Approach::Sidecar)
        .await
        .unwrap();
    let results = fleet
        .wait_results(1, Duration::from_secs(60), &[&worker])
        .await;
    assert_eq!(results[0].scan_id, id);
    assert_eq!(results[0].outcome(), ScanOutcome::Failed);
    assert!(
        results[0]
            .failure
            .contains("sidecar approach needs a container"),
        "{}",
        results[0].failure
    );
    assert!(
        results[0]
            .target
            .as_ref()
            .unwrap()
            .image
            .as_ref()
            .unwrap()
            .digest
            .starts_with("sha256:"),
        "the failure is still a statement about the digest pre-flight saw"
    );
    eventually("the intent in the DLQ", Duration::from_secs(20), || async {
        fleet.messages("SCAN_DLQ").await == 1
    })
    .await;
    assert_eq!(fleet.messages("SCAN_INTENTS").await, 0);
    assert!(fleet.scan_accounts().await.is_empty());
    drop(worker);
    fleet.stop().await;
}
