//! The three approaches against kubesim: each scans its container with the
//! per-scan identity only, agrees with a direct read of the same container's
//! root, and leaves nothing behind.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;

use scanfleet_scan_session::{Approach, SessionError, run_scan};
use support::{
    Sim, assert_no_scan_identities_left, local_statuses, report_statuses, request, session_config,
};

/// `unreadable`: controls that read files the container's own user cannot
/// (exec runs as that user), which are `error` through the session but not
/// in a direct read as root.
async fn scan_and_compare(
    sim: &Sim,
    pod: &str,
    container: &str,
    approach: Approach,
    unreadable: &[&str],
) -> Approach {
    let outcome = run_scan(
        &sim.admin,
        &session_config(true),
        request(pod, container, approach, "container-baseline"),
    )
    .await
    .unwrap_or_else(|e| panic!("{pod}/{container} ({approach}): {e}"));
    assert_eq!(
        outcome.report.target_id,
        format!("k8s://apps/{pod}/{container}"),
        "HDF names the target, not the scanner's container"
    );
    assert!(outcome.image_digest.starts_with("sha256:"));
    let got = report_statuses(&outcome.report);
    let mut want = local_statuses(sim, pod, container, "container-baseline");
    for id in unreadable {
        assert_ne!(want[*id], "error", "{id} is readable as root");
        want.insert((*id).to_owned(), "error".to_owned());
    }
    assert_eq!(
        got, want,
        "{pod}/{container} via {}: kube session and direct read disagree",
        outcome.approach
    );
    assert!(
        got.values().any(|s| s == "failed") || pod == "web-hardened",
        "{pod}: the demo workloads have deliberate findings"
    );
    let expected_sessions = if outcome.approach == Approach::Sidecar {
        2
    } else {
        1
    };
    assert_eq!(outcome.exec_sessions, expected_sessions);
    outcome.approach
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_approach_scans_exactly_its_container_with_the_scan_identity() {
    let sim = Sim::start(Vec::new()).await;
    assert_eq!(
        scan_and_compare(&sim, "web-misconfigured", "web", Approach::Exec, &[]).await,
        Approach::Exec
    );
    assert_eq!(
        scan_and_compare(
            &sim,
            "nonroot-worker",
            "worker",
            Approach::Auto,
            &["cb-accounts-02", "cb-accounts-03"]
        )
        .await,
        Approach::Exec,
        "a non-root target with a shell is exec'd into"
    );
    assert_eq!(
        scan_and_compare(&sim, "distroless-app", "app", Approach::Auto, &[]).await,
        Approach::Debug,
        "auto falls back to a debug container on a distroless target"
    );
    assert_eq!(
        scan_and_compare(&sim, "distroless-app", "app", Approach::Auto, &[]).await,
        Approach::Debug,
        "a pod that already carries an ended debug container is scanned again"
    );
    assert_eq!(
        scan_and_compare(&sim, "web-misconfigured", "web", Approach::Debug, &[]).await,
        Approach::Debug,
        "a root target through a debug container"
    );
    assert_eq!(
        scan_and_compare(&sim, "app-with-scanner", "app", Approach::Auto, &[]).await,
        Approach::Sidecar
    );
    assert_no_scan_identities_left(&sim).await;
    // Debug containers end when their script ends (not at the deadline).
    for pod in ["distroless-app", "web-misconfigured"] {
        support::eventually(&format!("{pod}'s debug containers to end"), || async {
            let p: Pod = Api::namespaced(sim.admin.client.clone(), "apps")
                .get(pod)
                .await
                .unwrap();
            let statuses = p
                .status
                .and_then(|s| s.ephemeral_container_statuses)
                .unwrap_or_default();
            !statuses.is_empty()
                && statuses
                    .iter()
                    .all(|s| s.state.as_ref().is_some_and(|st| st.terminated.is_some()))
        })
        .await;
    }

    // The audit log: every exec and ephemeral-container call came from a
    // per-scan ServiceAccount; the worker's identity never reached a container.
    let audit = sim.audit();
    let touching: Vec<_> = audit
        .iter()
        .filter(|r| r.subresource == "exec" || r.subresource == "ephemeralcontainers")
        .collect();
    assert!(touching.len() >= 6, "{} container calls", touching.len());
    for r in &touching {
        assert!(
            r.user
                .starts_with("system:serviceaccount:apps:scanfleet-scan-"),
            "{} {} by {:?}",
            r.verb,
            r.path,
            r.user
        );
    }
    assert!(
        audit
            .iter()
            .any(|r| r.user == "kubesim-admin" || r.user.contains("admin")),
        "the admin identity shows up for pre-flight and identity calls"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_distroless_target_without_debug_is_refused_with_the_reason() {
    let sim = Sim::start(Vec::new()).await;
    let err = run_scan(
        &sim.admin,
        &session_config(false),
        request(
            "distroless-app",
            "app",
            Approach::Auto,
            "container-baseline",
        ),
    )
    .await
    .expect_err("no shell and no debug containers");
    assert!(
        err.to_string()
            .contains("distroless target and debug containers are disabled by policy"),
        "{err}"
    );
    assert!(err.permanent());
    let err = run_scan(
        &sim.admin,
        &session_config(false),
        request(
            "distroless-app",
            "app",
            Approach::Sidecar,
            "container-baseline",
        ),
    )
    .await
    .expect_err("no sidecar");
    assert!(matches!(err, SessionError::Refused(_)), "{err}");
    let err = run_scan(
        &sim.admin,
        &session_config(true),
        request("no-such-pod", "app", Approach::Auto, "container-baseline"),
    )
    .await
    .expect_err("no pod");
    assert!(
        err.permanent() && err.to_string().contains("not found"),
        "{err}"
    );
    assert_no_scan_identities_left(&sim).await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_past_its_deadline_stops_and_still_removes_its_identity() {
    let sim = Sim::start(vec![kubesim::faults::FaultRule {
        path: "*/exec".into(),
        rate: 1.0,
        fault: kubesim::faults::Fault::Latency { millis: 3_000 },
    }])
    .await;
    let mut req = request(
        "web-misconfigured",
        "web",
        Approach::Exec,
        "container-baseline",
    );
    req.deadline = Duration::from_secs(2);
    let err = run_scan(&sim.admin, &session_config(true), req)
        .await
        .expect_err("the exec is slower than the deadline");
    assert!(matches!(err, SessionError::Deadline(_)), "{err}");
    assert!(!err.permanent(), "a deadline is worth retrying");
    assert_no_scan_identities_left(&sim).await;
    sim.shutdown().await;
}
