//! One Kubernetes API budget per cluster for the whole worker fleet, as the
//! API server sees it: several worker processes on the secured bus against
//! one kubesim, whose audit log records when each request arrived.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use kubesim::audit::{AuditRecord, arrivals, busiest_second};
use kubesim::faults::{Fault, FaultRule};
use scanfleet_contracts::v1::ScanOutcome;
use support::{Fleet, Worker, eventually};

/// Scans that run with `exec` (quick, one round trip each).
const TARGETS: [&str; 2] = [
    "k8s://apps/web-misconfigured/web",
    "k8s://apps/web-hardened/web",
];

/// The identity the fleet's workers call with (its admin kubeconfig); the
/// test's own set-up used it too, before any worker started.
const WORKER_USER: &str = "kubesim-admin";

/// Now, in the audit log's unit (Unix ms).
fn unix_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

/// Whether a request came from a scan worker: after the workers started,
/// with the workers' identity or a per-scan ServiceAccount. The reviews
/// intake and the collector make for callers are not the workers'.
fn from_a_worker(r: &AuditRecord, since_ms: f64) -> bool {
    r.received_unix_ms >= since_ms
        && (r.user == WORKER_USER || r.user.starts_with("system:serviceaccount:apps:"))
}

/// Arrival instants (Unix ms) of the workers' requests, sorted.
fn worker_calls(audit: &[AuditRecord], since_ms: f64) -> Vec<f64> {
    arrivals(audit, |r| from_a_worker(r, since_ms))
}

/// Submits 16 scans and waits until both workers have one in flight: the
/// budget is then contended when the test's event happens.
async fn submit_until_both_scan(fleet: &Fleet, workers: &[Worker; 2]) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for i in 0..16 {
        ids.insert(fleet.submit(TARGETS[i % TARGETS.len()]).await);
    }
    eventually("both workers scanning", Duration::from_secs(30), || async {
        workers[0].metric("scanfleet_worker_scans_in_flight").await >= 1.0
            && workers[1].metric("scanfleet_worker_scans_in_flight").await >= 1.0
    })
    .await;
    ids
}

async fn budget_metric(worker: &Worker, name: &str) -> f64 {
    worker
        .metric(&format!(
            "scanfleet_worker_kube_budget_{name}{{cluster=\"kubesim\"}}"
        ))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_workers_share_one_budget_even_while_one_is_killed_and_restarted_looser() {
    const QPS: usize = 20;
    const BURST: usize = 20;
    const SCANS: usize = 36;
    let fleet = Fleet::start().await;
    let since = unix_ms();
    let budget = format!("kube:\n  qps: {QPS}\n  burst: {BURST}\n");
    let w1 = fleet.worker_with_yaml("w1", 4, &budget);
    let mut w2 = fleet.worker_with_yaml("w2", 4, &budget);
    let w3 = fleet.worker_with_yaml("w3", 4, &budget);
    let started = Instant::now();
    let mut ids = BTreeSet::new();
    for i in 0..SCANS {
        ids.insert(fleet.submit(TARGETS[i % TARGETS.len()]).await);
    }

    // Mid-run (a third of the scans done, the bucket drained), SIGKILL a
    // worker that is scanning and start it again, configured with a looser
    // budget (a rolling update that has reached one worker): the stricter
    // budget of the two still running holds.
    eventually(
        "a third of the scans, w2 scanning",
        Duration::from_secs(60),
        || async {
            fleet.results().await.len() >= SCANS / 3
                && w2.metric("scanfleet_worker_scans_in_flight").await >= 1.0
        },
    )
    .await;
    w2.signal("KILL");
    let _ = w2.child.wait();
    let killed_at = Instant::now();
    let looser = format!("kube:\n  qps: {}\n  burst: {}\n", 3 * QPS, 3 * BURST);
    w2 = fleet.worker_with_yaml("w2", 4, &looser);

    let results = fleet
        .wait_results(SCANS, Duration::from_secs(120), &[&w1, &w2, &w3])
        .await;
    let elapsed = started.elapsed();
    let got: BTreeSet<String> = results.iter().map(|r| r.scan_id.clone()).collect();
    assert_eq!(got, ids, "every scan completed, each once");
    for r in &results {
        assert_eq!(r.outcome(), ScanOutcome::Completed, "{}", r.failure);
    }

    let audit = fleet.audit();
    let calls = worker_calls(&audit, since);
    let (most, at) = busiest_second(&calls);
    let span_s = (calls.last().unwrap() - calls[0]) / 1000.0;
    println!(
        "fleet API budget {QPS} QPS burst {BURST}, 3 workers (w2 SIGKILLed {:.1} s in and \
         restarted): {} worker API calls in {span_s:.1} s ({:.1}/s average), busiest 1 s window \
         {most} calls (from {:.1} s), {SCANS} scans in {:.1} s",
        (killed_at - started).as_secs_f64(),
        calls.len(),
        calls.len() as f64 / span_s.max(0.001),
        (at - calls[0]) / 1000.0,
        elapsed.as_secs_f64(),
    );
    let mut by_user = std::collections::BTreeMap::<String, usize>::new();
    for r in &audit {
        let user = if r.user.starts_with("system:serviceaccount:apps:") {
            "per-scan identities"
        } else {
            &r.user
        };
        *by_user.entry(format!("{user} {}", r.resource)).or_default() += 1;
    }
    assert!(
        calls.len() >= SCANS * 5,
        "the workers made only {} API calls: the audit log is not what the test reads: {by_user:#?}",
        calls.len()
    );
    assert!(
        most <= QPS + BURST,
        "{most} worker API calls reached the server within 1 s; the fleet's budget is \
         {QPS}/s with burst {BURST}"
    );
    for w in [&w1, &w2, &w3] {
        assert!(budget_metric(w, "permits_granted_total").await >= 1.0);
        assert_eq!(
            budget_metric(w, "qps").await,
            QPS as f64,
            "the budget applied"
        );
    }
    assert_eq!(
        budget_metric(&w2, "configured_qps").await,
        (3 * QPS) as f64,
        "w2 is configured looser, and applies the stricter budget of w1 and w3"
    );
    drop((w1, w2, w3));
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_429_seen_by_one_worker_pauses_the_whole_fleet() {
    const RETRY_AFTER_S: u64 = 3;
    let fleet = Fleet::start().await;
    let since = unix_ms();
    let budget = "kube:\n  qps: 15\n  burst: 15\n";
    let workers = [
        fleet.worker_with_yaml("w1", 3, budget),
        fleet.worker_with_yaml("w2", 3, budget),
    ];
    // Only scans of nonroot-worker touch its paths: whichever worker takes
    // that scan is the only one the server answers 429.
    fleet.sim.set_faults(vec![FaultRule {
        path: "/api/v1/namespaces/apps/pods/nonroot-worker*".into(),
        rate: 1.0,
        fault: Fault::TooManyRequests {
            retry_after_seconds: RETRY_AFTER_S,
        },
    }]);
    let mut ids = submit_until_both_scan(&fleet, &workers).await;
    let mut waited_before = Vec::new();
    for w in &workers {
        waited_before.push(budget_metric(w, "wait_seconds_total").await);
    }
    ids.insert(fleet.submit("k8s://apps/nonroot-worker/worker").await);

    // The first 429, then the fault is lifted so the retry succeeds.
    let deadline = Instant::now() + Duration::from_secs(30);
    let first_429 = loop {
        if let Some(r) = fleet.audit().into_iter().find(|r| r.code == 429) {
            break r.received_unix_ms;
        }
        assert!(Instant::now() < deadline, "no 429 was served");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    fleet.sim.set_faults(Vec::new());
    let results = fleet
        .wait_results(
            ids.len(),
            Duration::from_secs(90),
            &[&workers[0], &workers[1]],
        )
        .await;
    assert_eq!(results.len(), ids.len());

    let mut saw_429 = Vec::new();
    let mut waited = Vec::new();
    for (w, before) in workers.iter().zip(&waited_before) {
        saw_429.push(
            w.metric("scanfleet_worker_kube_throttled_total{cluster=\"kubesim\"}")
                .await,
        );
        waited.push(budget_metric(w, "wait_seconds_total").await - before);
    }
    let calls = worker_calls(&fleet.audit(), since);
    let mut granted = 0.0;
    for w in &workers {
        granted += budget_metric(w, "permits_granted_total").await;
    }
    // A permit may be granted for a call still on its way; never the
    // other way round.
    assert!(
        calls.len() as f64 <= granted,
        "the server saw {} worker calls but the fleet budget granted {granted} permits",
        calls.len()
    );
    // Permits leased just before the pause may still be spent (they lapse
    // after 100 ms) and requests already sent still arrive: allow 500 ms.
    let quiet_from = first_429 + 500.0;
    let quiet_to = first_429 + (RETRY_AFTER_S as f64) * 1000.0 - 100.0;
    let during: Vec<f64> = calls
        .iter()
        .copied()
        .filter(|t| *t >= quiet_from && *t < quiet_to)
        .collect();
    let before = calls
        .iter()
        .filter(|t| **t >= first_429 - 1000.0 && **t < first_429)
        .count();
    println!(
        "429 (Retry-After {RETRY_AFTER_S} s) at {first_429:.0}: worker calls in the second before \
         {before}, between +0.5 s and +{:.1} s {}; 429s seen per worker {saw_429:?}; budget wait \
         per worker since {waited:?} s",
        quiet_to / 1000.0 - first_429 / 1000.0,
        during.len()
    );
    assert!(
        before >= 3,
        "the fleet was busy before the 429 ({before} calls)"
    );
    assert!(
        during.is_empty(),
        "{} worker API calls arrived while the server had asked the fleet to wait: {:?}",
        during.len(),
        during.iter().map(|t| t - first_429).collect::<Vec<_>>()
    );
    // One worker saw the 429; the other saw none and still waited.
    let quiet = saw_429
        .iter()
        .position(|n| *n == 0.0)
        .expect("one worker never saw a 429");
    assert!(saw_429.iter().any(|n| *n >= 1.0), "{saw_429:?}");
    assert!(
        waited[quiet] >= 1.0,
        "the worker that saw no 429 waited only {:.2} s for permits",
        waited[quiet]
    );
    drop(workers);
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bus_outage_pauses_api_calls_instead_of_escaping_the_budget() {
    let mut fleet = Fleet::start().await;
    let since = unix_ms();
    let budget = "kube:\n  qps: 15\n  burst: 15\n";
    let workers = [
        fleet.worker_with_yaml("w1", 3, budget),
        fleet.worker_with_yaml("w2", 3, budget),
    ];
    let ids = submit_until_both_scan(&fleet, &workers).await;

    fleet.nats.server().kill();
    let down = unix_ms();
    // The outage lasts until both workers have found the budget out of
    // reach, and at least 2 s.
    eventually(
        "both workers to miss the budget",
        Duration::from_secs(30),
        || async {
            budget_metric(&workers[0], "bus_errors_total").await >= 1.0
                && budget_metric(&workers[1], "bus_errors_total").await >= 1.0
                && unix_ms() >= down + 2000.0
        },
    )
    .await;
    let up = unix_ms();
    fleet.nats.server().restart();

    let results = fleet
        .wait_results(
            ids.len(),
            Duration::from_secs(90),
            &[&workers[0], &workers[1]],
        )
        .await;
    let got: BTreeSet<String> = results.iter().map(|r| r.scan_id.clone()).collect();
    assert_eq!(got, ids, "every scan completed after the outage");
    let calls = worker_calls(&fleet.audit(), since);
    // Leased permits lapse after 100 ms; calls already sent still arrive.
    let during = calls
        .iter()
        .filter(|t| **t >= down + 500.0 && **t < up)
        .count();
    println!(
        "NATS down {:.1} s: worker API calls after its first 0.5 s: {during}; busiest 1 s window \
         overall {:?}",
        (up - down) / 1000.0,
        busiest_second(&calls).0
    );
    assert_eq!(
        during, 0,
        "workers called the API server with the budget out of reach"
    );
    assert!(busiest_second(&calls).0 <= 15 + 15);
    drop(workers);
    fleet.stop().await;
}
