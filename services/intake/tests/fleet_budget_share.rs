//! Intake's own Kubernetes calls share the cluster's fleet-wide API budget
//! with the workers: a fleet-wide pause (a 429's Retry-After one worker
//! recorded) holds intake's pod list too, and intake applies the limits
//! the workers recorded without replacing them with its own.

mod support;

use std::time::Duration;

use scanfleet_bus::ApiBudgetBook;
use scanfleet_kube_access::fleet_budget::{AppliedLimits, BucketState};
use scanfleet_test_harness::secure_bus::SecureBus;

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intake_waits_out_a_fleet_wide_pause_and_follows_the_workers_budget() {
    let dir = tempfile::tempdir().unwrap();
    let audit_path = dir.path().join("audit.jsonl");
    let config = kubesim::Config::demo_audited(&audit_path).unwrap();
    let sim = kubesim::Kubesim::start_settled(config, Duration::from_secs(30))
        .await
        .expect("kubesim starts (tests run as root)");
    let bus = SecureBus::start().await;
    let book = ApiBudgetBook::open(&bus.admin().await).await.unwrap();

    // The entry as a worker configured with 5 calls/s, burst 5, leaves it
    // after the API server answered 429 with Retry-After: 3.
    let now = unix_ms();
    let paused_until = now + 3_000;
    let recorded = AppliedLimits {
        qps: 5.0,
        qps_at_ms: now,
        burst: 5,
        burst_at_ms: now,
    };
    let paused = BucketState {
        tokens: 0.0,
        refilled_at_ms: now,
        paused_until_ms: paused_until,
        applied: Some(recorded),
    };
    book.write("kubesim", paused.encode(), None).await.unwrap();
    let written = book.read("kubesim").await.unwrap().unwrap().revision;

    let intake = support::start_intake(dir.path(), &bus, &sim, "").await;

    // Intake's first call to the cluster, its pod list, waited for the
    // pause to end (without the budget it is made at start-up).
    let first_list = kubesim::audit::read(&audit_path)
        .unwrap()
        .into_iter()
        .filter(|r| r.verb == "list" && r.resource == "pods" && r.received_unix_ms >= now as f64)
        .map(|r| r.received_unix_ms)
        .reduce(f64::min)
        .expect("intake listed pods before it served");
    assert!(
        first_list >= paused_until as f64,
        "intake listed pods {:.0} ms before the fleet-wide pause ended",
        paused_until as f64 - first_list
    );

    // It leased from the entry (its revision moved on) and left the
    // workers' record of the budget as it was: it follows, never sets it.
    let entry = book.read("kubesim").await.unwrap().unwrap();
    assert!(
        entry.revision > written,
        "intake took permits from the budget"
    );
    let after = BucketState::decode(&entry.value).unwrap();
    assert_eq!(after.applied, Some(recorded));
    assert!(after.tokens <= 5.0, "within the workers' burst: {after:?}");
    intake.shutdown().await.unwrap();
}
