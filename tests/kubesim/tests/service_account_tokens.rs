//! ServiceAccount tokens from TokenRequest and the mounted projected volume:
//! expiry (with the test clock), death with their pod or ServiceAccount,
//! and 422 on bad durations.
//! Requires root (kubesim runs containers in namespaces).

mod common;

use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, DeleteParams};
use serde_json::json;

use common::*;

#[tokio::test]
async fn tokens_expire_and_die_with_their_pod_or_service_account() {
    let sim = demo().await;
    let c = admin(&sim).await;
    sa(&c, "apps", "reader").await;
    let _: RoleBinding = apply(
        &c,
        Some("apps"),
        binding("reader-view", "ClusterRole", "view", "reader"),
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "apps");
    let pod: Pod = apply(&c, Some("apps"), json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bound"},
        "spec": {"serviceAccountName": "reader", "containers": [{"name": "c", "image": "kubesim.local/scanner:1.0"}]}})).await;
    let pod_uid = pod.metadata.uid.clone().expect("uid");

    let e = api_error(token(&c, "apps", "reader", 599, None).await);
    assert_eq!(e.code, 422);
    assert_eq!(
        e.message,
        "TokenRequest.authentication.k8s.io \"\" is invalid: spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 10 minutes"
    );
    let e = api_error(token(&c, "apps", "reader", (1 << 32) + 1, None).await);
    assert_eq!(e.code, 422);
    let e = api_error(token(&c, "apps", "default", 600, Some(("bound", &pod_uid))).await);
    assert_eq!(e.code, 400, "{}", e.message);

    // Expiry: valid now, 401 once exp + 60 s leeway has passed.
    let short = token(&c, "apps", "reader", 600, None).await.expect("token");
    let as_reader = with_token(&sim, &short).await;
    let reader_pods: Api<Pod> = Api::namespaced(as_reader.clone(), "apps");
    reader_pods
        .get("web-hardened")
        .await
        .expect("reader can get pods");
    sim.advance_clock(600 + 61);
    let e = api_error(reader_pods.get("web-hardened").await);
    assert_eq!(
        (e.code, e.reason.as_str(), e.message.as_str()),
        (401, "Unauthorized", "Unauthorized")
    );

    // Pod-bound token: 401 once the pod is deleted.
    let bound = token(&c, "apps", "reader", 3600, Some(("bound", &pod_uid)))
        .await
        .expect("token");
    let bound_pods: Api<Pod> = Api::namespaced(with_token(&sim, &bound).await, "apps");
    bound_pods.get("bound").await.expect("bound token works");
    pods.delete("bound", &DeleteParams::default())
        .await
        .expect("delete pod");
    assert_eq!(api_error(bound_pods.get("web-hardened").await).code, 401);

    // ServiceAccount deletion invalidates its tokens.
    let t = token(&c, "apps", "reader", 3600, None)
        .await
        .expect("token");
    let sa_pods: Api<Pod> = Api::namespaced(with_token(&sim, &t).await, "apps");
    sa_pods.get("web-hardened").await.expect("works before");
    let sas: Api<ServiceAccount> = Api::namespaced(c.clone(), "apps");
    sas.delete("reader", &DeleteParams::default())
        .await
        .expect("delete sa");
    assert_eq!(api_error(sa_pods.get("web-hardened").await).code, 401);
    // Recreating the same name does not revive the token (uid differs).
    sa(&c, "apps", "reader").await;
    assert_eq!(api_error(sa_pods.get("web-hardened").await).code, 401);
    sim.shutdown().await;
}

#[tokio::test]
async fn mounted_service_account_token_is_pod_bound() {
    let sim = demo().await;
    let c = admin(&sim).await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "apps");
    let p = pods.get("web-hardened").await.expect("pod");
    let spec = p.spec.expect("spec");
    assert!(
        spec.volumes
            .expect("volumes")
            .iter()
            .any(|v| v.name.starts_with("kube-api-access-"))
    );
    let (token, _, st) = run(
        &pods,
        "web-hardened",
        "web",
        &["cat", "/var/run/secrets/kubernetes.io/serviceaccount/token"],
        None,
    )
    .await;
    assert_eq!(exit_code(&st), 0);
    let (ns, _, _) = run(
        &pods,
        "web-hardened",
        "web",
        &[
            "cat",
            "/var/run/secrets/kubernetes.io/serviceaccount/namespace",
        ],
        None,
    )
    .await;
    assert_eq!(ns, b"apps");
    let (ca, _, _) = run(
        &pods,
        "web-hardened",
        "web",
        &[
            "cat",
            "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt",
        ],
        None,
    )
    .await;
    assert_eq!(String::from_utf8_lossy(&ca), sim.ca_pem);
    // The root stays read-only for this pod; the token mount is read-only too.
    let (_, e, st) = run(
        &pods,
        "web-hardened",
        "web",
        &[
            "sh",
            "-c",
            "touch /x || touch /var/run/secrets/kubernetes.io/serviceaccount/x",
        ],
        None,
    )
    .await;
    assert_ne!(exit_code(&st), 0);
    assert!(
        String::from_utf8_lossy(&e).contains("Read-only file system"),
        "{}",
        String::from_utf8_lossy(&e)
    );

    // The token authenticates as the pod's ServiceAccount (which holds no rights)...
    let token = String::from_utf8(token).expect("utf8");
    let as_pod: Api<Pod> = Api::namespaced(with_token(&sim, &token).await, "apps");
    let e = api_error(as_pod.get("web-hardened").await);
    assert_eq!(e.code, 403);
    assert!(
        e.message
            .contains("User \"system:serviceaccount:apps:default\""),
        "{}",
        e.message
    );
    // ...until its pod is deleted.
    pods.delete("web-hardened", &DeleteParams::default())
        .await
        .expect("delete");
    assert_eq!(api_error(as_pod.get("web-hardened").await).code, 401);

    let _: Pod = apply(&c, Some("apps"), json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "no-token"},
        "spec": {"automountServiceAccountToken": false, "containers": [{"name": "c", "image": "kubesim.local/scanner:1.0"}]}})).await;
    eventually("no-token running", Duration::from_secs(20), || async {
        (pods.get("no-token").await.ok()?.status?.phase.as_deref() == Some("Running")).then_some(())
    })
    .await;
    let (_, _, st) = run(
        &pods,
        "no-token",
        "c",
        &[
            "test",
            "-e",
            "/var/run/secrets/kubernetes.io/serviceaccount/token",
        ],
        None,
    )
    .await;
    assert_eq!(exit_code(&st), 1);
    sim.shutdown().await;
}
