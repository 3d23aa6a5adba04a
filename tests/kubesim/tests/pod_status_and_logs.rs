//! What the kubelet stand-in reports: container start-failure reasons in
//! pod status, and container output through `pods/log`.
//! Requires root (kubesim runs containers in namespaces).

mod common;

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use serde_json::json;

use common::*;

#[tokio::test]
async fn pod_status_reports_start_failures() {
    let sim = demo().await;
    let c = admin(&sim).await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "apps");
    let mk = |name: &str, image: &str, sc: serde_json::Value, cmd: serde_json::Value| {
        json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": image, "securityContext": sc, "command": cmd}]}})
    };
    let _: Pod = apply(
        &c,
        Some("apps"),
        mk("ghost", "nope:1", json!({}), json!(null)),
    )
    .await;
    let _: Pod = apply(
        &c,
        Some("apps"),
        mk(
            "rootless",
            "kubesim.local/scanner:1.0",
            json!({"runAsNonRoot": true}),
            json!(null),
        ),
    )
    .await;
    let _: Pod = apply(
        &c,
        Some("apps"),
        mk(
            "nobin",
            "kubesim.local/distroless-app:1.0",
            json!({}),
            json!(["sh"]),
        ),
    )
    .await;
    let _: Pod = apply(
        &c,
        Some("apps"),
        mk(
            "done",
            "kubesim.local/scanner:1.0",
            json!({}),
            json!(["true"]),
        ),
    )
    .await;
    for (pod, want) in [
        ("ghost", "ErrImagePull"),
        ("rootless", "CreateContainerConfigError"),
        ("nobin", "StartError"),
        ("done", "Completed"),
    ] {
        let got = eventually(want, Duration::from_secs(20), || async {
            let s = pods
                .get(pod)
                .await
                .ok()?
                .status?
                .container_statuses?
                .pop()?
                .state?;
            s.waiting
                .and_then(|w| w.reason)
                .or(s.terminated.and_then(|t| t.reason))
                .filter(|r| r != "ContainerCreating")
        })
        .await;
        assert_eq!(got, want, "{pod}");
    }
    let done = pods.get("done").await.expect("pod");
    assert_eq!(
        done.status.and_then(|s| s.phase).as_deref(),
        Some("Succeeded")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn pod_logs_return_container_output() {
    let sim = demo().await;
    let c = admin(&sim).await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "apps");
    let _: Pod = apply(
        &c,
        Some("apps"),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "talker"},
        "spec": {"containers": [{"name": "c", "image": "kubesim.local/scanner:1.0",
            "command": ["sh", "-c", "echo one; echo two >&2; echo three; sleep infinity"]}]}}),
    )
    .await;
    let text = eventually("three lines logged", Duration::from_secs(20), || async {
        let t = pods
            .logs("talker", &kube::api::LogParams::default())
            .await
            .ok()?;
        (t.lines().count() == 3).then_some(t)
    })
    .await;
    assert_eq!(text, "one\ntwo\nthree\n");
    let tail = pods
        .logs(
            "talker",
            &kube::api::LogParams {
                tail_lines: Some(1),
                ..Default::default()
            },
        )
        .await
        .expect("tail");
    assert_eq!(tail, "three\n");
    let e = api_error(
        pods.logs("app-with-scanner", &kube::api::LogParams::default())
            .await,
    );
    assert_eq!(
        e.message,
        "a container name must be specified for pod app-with-scanner, choose one of: [app scanner]"
    );
    sim.shutdown().await;
}
