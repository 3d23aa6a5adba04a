//! `pods/exec` over WebSocket through kube-rs: exit codes, stderr, stdin,
//! large output, missing binaries, container selection, and the get+create
//! authorization of WebSocket exec.
//! Requires root (kubesim runs containers in namespaces).

mod common;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, AttachParams};
use serde_json::json;

use common::*;

#[tokio::test]
async fn exec_exit_codes_streams_stdin_and_large_output() {
    let sim = demo().await;
    let c = admin(&sim).await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "apps");
    let (o, _, st) = run(&pods, "web-misconfigured", "web", &["id"], None).await;
    assert_eq!(String::from_utf8_lossy(&o), "uid=0(root) gid=0(root)\n");
    assert_eq!(exit_code(&st), 0);
    let (o, _, _) = run(&pods, "nonroot-worker", "worker", &["id", "-u"], None).await;
    assert_eq!(String::from_utf8_lossy(&o), "1000\n");

    let (o, e, st) = run(
        &pods,
        "web-hardened",
        "web",
        &["sh", "-c", "echo out; echo err >&2; exit 7"],
        None,
    )
    .await;
    assert_eq!((o.as_slice(), e.as_slice()), (&b"out\n"[..], &b"err\n"[..]));
    assert_eq!(exit_code(&st), 7);
    assert!(
        st.message
            .as_deref()
            .is_some_and(|m| m.starts_with("command terminated with non-zero exit code"))
    );

    let (o, _, st) = run(
        &pods,
        "web-hardened",
        "web",
        &["sh", "-c", "tr a-z A-Z; echo done"],
        Some(b"hello stdin\n"),
    )
    .await;
    assert_eq!(String::from_utf8_lossy(&o), "HELLO STDIN\ndone\n");
    assert_eq!(exit_code(&st), 0);

    let (o, _, st) = run(
        &pods,
        "web-misconfigured",
        "web",
        &["sh", "-c", "yes 0123456789abcdef | head -c 5000000"],
        None,
    )
    .await;
    assert_eq!(o.len(), 5_000_000);
    assert!(o.starts_with(b"0123456789abcdef\n0123"));
    assert_eq!(exit_code(&st), 0);

    // Distroless: no shell. The failure is upstream's InternalError status.
    let (_, _, st) = run(&pods, "distroless-app", "app", &["sh"], None).await;
    assert_eq!(
        (st.reason.as_deref(), st.code),
        (Some("InternalError"), Some(500))
    );
    assert!(
        st.message
            .as_deref()
            .is_some_and(|m| m.contains("executable file not found in $PATH")),
        "{st:?}"
    );

    let ap = AttachParams::default().container("nope");
    let e = api_error(pods.exec("web-hardened", ["id"], &ap).await);
    assert_eq!(
        (e.code, e.message.as_str()),
        (400, "container nope is not valid for pod web-hardened")
    );
    let e = api_error(
        pods.exec("app-with-scanner", ["id"], &AttachParams::default())
            .await,
    );
    assert_eq!(
        e.message,
        "a container name must be specified for pod app-with-scanner, choose one of: [app scanner]"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn websocket_exec_needs_get_and_create_on_pods_exec() {
    let sim = demo().await;
    let c = admin(&sim).await;
    sa(&c, "apps", "execer").await;
    let _: Role = apply(
        &c,
        Some("apps"),
        role(
            "exec-get",
            json!([{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["get"]}]),
        ),
    )
    .await;
    let _: RoleBinding = apply(
        &c,
        Some("apps"),
        binding("exec-get", "Role", "exec-get", "execer"),
    )
    .await;
    let t = token(&c, "apps", "execer", 3600, None)
        .await
        .expect("token");
    let pods: Api<Pod> = Api::namespaced(with_token(&sim, &t).await, "apps");
    let e = api_error(
        pods.exec("web-hardened", ["id"], &AttachParams::default())
            .await,
    );
    assert_eq!(
        (e.code, e.message.as_str()),
        (403, "pods \"web-hardened\" is forbidden: ")
    );

    sa(&c, "apps", "nobody").await;
    let t = token(&c, "apps", "nobody", 3600, None)
        .await
        .expect("token");
    let pods: Api<Pod> = Api::namespaced(with_token(&sim, &t).await, "apps");
    let e = api_error(
        pods.exec("web-hardened", ["id"], &AttachParams::default())
            .await,
    );
    assert_eq!(
        e.message,
        "pods \"web-hardened\" is forbidden: User \"system:serviceaccount:apps:nobody\" cannot get resource \"pods/exec\" in API group \"\" in the namespace \"apps\""
    );

    let _: Role = apply(&c, Some("apps"), role("exec-both", json!([{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["get", "create"], "resourceNames": ["web-hardened"]}]))).await;
    let _: RoleBinding = apply(
        &c,
        Some("apps"),
        binding("exec-both", "Role", "exec-both", "execer"),
    )
    .await;
    let t = token(&c, "apps", "execer", 3600, None)
        .await
        .expect("token");
    let pods: Api<Pod> = Api::namespaced(with_token(&sim, &t).await, "apps");
    let (o, _, _) = run(&pods, "web-hardened", "web", &["id", "-u"], None).await;
    assert_eq!(o, b"10001\n");
    sim.shutdown().await;
}
