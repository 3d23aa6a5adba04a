//! Scans under an unreliable API server: 429s, 500s and dropped
//! connections. Retries stay within their bound, failures are clean
//! `SessionError`s naming the cause, and no identity outlives its scan.

mod support;

use std::time::Duration;

use kubesim::faults::{Fault, FaultRule};
use scanfleet_kube_access::ThrottleConfig;
use scanfleet_scan_session::{Approach, SessionError, run_scan, sweep_expired};
use support::{Sim, assert_no_scan_identities_left, request, session_config};

const POD_PATH: &str = "/api/v1/namespaces/apps/pods/web-misconfigured";
const MAX_RETRIES: u32 = 2;

fn throttle() -> ThrottleConfig {
    ThrottleConfig {
        max_retries: MAX_RETRIES,
        backoff: Duration::from_millis(50),
        ..ThrottleConfig::default()
    }
}

fn rule(path: &str, rate: f64, fault: Fault) -> FaultRule {
    FaultRule {
        path: path.into(),
        rate,
        fault,
    }
}

fn attempts_on(sim: &Sim, path: &str) -> usize {
    sim.audit().iter().filter(|r| r.path == path).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_keeps_answering_429_fails_the_scan_after_bounded_retries() {
    let sim = Sim::start_with(
        vec![rule(
            POD_PATH,
            1.0,
            Fault::TooManyRequests {
                retry_after_seconds: 1,
            },
        )],
        throttle(),
    )
    .await;
    let err = run_scan(
        &sim.admin,
        &session_config(true),
        request(
            "web-misconfigured",
            "web",
            Approach::Exec,
            "container-baseline",
        ),
    )
    .await
    .expect_err("every pod read is refused with 429");
    let text = err.to_string();
    assert!(matches!(err, SessionError::Preflight(_)), "{text}");
    assert!(
        text.contains("reading pod apps/web-misconfigured")
            && text.to_ascii_lowercase().contains("too many requests"),
        "the error names the call and the cause: {text}"
    );
    assert!(!err.permanent(), "throttling is worth retrying later");
    let stats = sim.admin.throttle.stats();
    assert_eq!(stats.throttled_by_server, u64::from(MAX_RETRIES) + 1);
    assert_eq!(stats.gave_up, 1);
    assert!(
        stats.retry_sleep >= Duration::from_secs(u64::from(MAX_RETRIES)),
        "Retry-After was honoured: {stats:?}"
    );
    assert_eq!(attempts_on(&sim, POD_PATH), MAX_RETRIES as usize + 1);
    sim.sim.set_faults(Vec::new());
    assert_no_scan_identities_left(&sim).await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_500s_and_drops_fail_cleanly_and_leave_no_identity() {
    let sim = Sim::start_with(vec![rule(POD_PATH, 1.0, Fault::InternalError)], throttle()).await;
    let config = session_config(true);
    let err = run_scan(
        &sim.admin,
        &config,
        request(
            "web-misconfigured",
            "web",
            Approach::Exec,
            "container-baseline",
        ),
    )
    .await
    .expect_err("every pod read fails with 500");
    assert!(matches!(err, SessionError::Preflight(_)), "{err}");
    assert!(err.to_string().contains("Internal error"), "{err}");
    let stats = sim.admin.throttle.stats();
    assert_eq!(stats.retried_errors, u64::from(MAX_RETRIES));
    assert_eq!(attempts_on(&sim, POD_PATH), MAX_RETRIES as usize + 1);

    // The exec upgrade (a GET) is dropped every time: the identity already
    // exists, so this is the path where cleanup matters.
    let exec_path = format!("{POD_PATH}/exec");
    sim.sim
        .set_faults(vec![rule(&exec_path, 1.0, Fault::DropConnection)]);
    let before = sim.admin.throttle.stats();
    let err = run_scan(
        &sim.admin,
        &config,
        request(
            "web-misconfigured",
            "web",
            Approach::Exec,
            "container-baseline",
        ),
    )
    .await
    .expect_err("the exec connection is always dropped");
    assert!(
        matches!(err, SessionError::Scan(_) | SessionError::Deadline(_)),
        "{err}"
    );
    let after = sim.admin.throttle.stats();
    assert_eq!(
        after.retried_errors - before.retried_errors,
        u64::from(MAX_RETRIES),
        "the dropped exec was retried exactly max_retries times"
    );
    assert_eq!(attempts_on(&sim, &exec_path), MAX_RETRIES as usize + 1);
    sim.sim.set_faults(Vec::new());
    assert_no_scan_identities_left(&sim).await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scans_under_random_faults_complete_or_fail_cleanly() {
    let sim = Sim::start_with(
        vec![
            // Reads and exec upgrades: retried.
            rule("/api/v1/namespaces/apps/pods/*", 0.3, Fault::InternalError),
            rule("/api/v1/namespaces/apps/pods/*", 0.2, Fault::DropConnection),
            // A create: never retried, so provisioning fails part-way and
            // must remove what it created.
            rule("*/serviceaccounts/*/token", 0.3, Fault::InternalError),
        ],
        throttle(),
    )
    .await;
    let config = session_config(true);
    let targets = [
        ("web-misconfigured", "web", Approach::Exec),
        ("nonroot-worker", "worker", Approach::Exec),
        ("distroless-app", "app", Approach::Debug),
        ("app-with-scanner", "app", Approach::Sidecar),
        ("web-hardened", "web", Approach::Auto),
        ("web-misconfigured", "web", Approach::Exec),
        ("nonroot-worker", "worker", Approach::Auto),
        ("distroless-app", "app", Approach::Auto),
    ];
    let mut outcomes = Vec::new();
    for (pod, container, approach) in targets {
        let mut req = request(pod, container, approach, "container-baseline");
        req.deadline = Duration::from_secs(30);
        // A panic inside run_scan would fail the test here.
        let result = run_scan(&sim.admin, &config, req).await;
        outcomes.push(match result {
            Ok(o) => format!("{pod}: completed via {}", o.approach),
            Err(e) => {
                assert!(!e.to_string().is_empty());
                format!("{pod}: failed: {e}")
            }
        });
    }
    // Faults fired (not firing at all has a chance below 1e-5).
    let stats = sim.admin.throttle.stats();
    let injected_500s = sim.audit().iter().filter(|r| r.code == 500).count();
    assert!(
        stats.retried_errors > 0 || injected_500s > 0,
        "no fault fired: {stats:?}; {outcomes:#?}"
    );
    // The sweeper's pass (as a worker's next start would run it) covers an
    // identity whose removal itself met a fault.
    sim.sim.set_faults(Vec::new());
    let far_future = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(1))
        .unwrap();
    sweep_expired(&sim.admin, far_future).await.unwrap();
    assert_no_scan_identities_left(&sim).await;
    eprintln!("{outcomes:#?}");
    sim.shutdown().await;
}
