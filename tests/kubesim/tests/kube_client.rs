//! kube-rs against kubesim: CRUD and Status errors, tokens, RBAC, escalation
//! prevention, exec, ephemeral containers, garbage collection and watch.
//! Requires root (kubesim runs containers in namespaces).

mod common;

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{
    Api, AttachParams, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchParams,
};
use kube::core::WatchEvent;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::*;

fn role(name: &str, rules: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": name}, "rules": rules})
}

fn binding(name: &str, kind: &str, role: &str, sa: &str) -> serde_json::Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": name},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
           "subjects": [{"kind": "ServiceAccount", "name": sa}]})
}

async fn sa(client: &kube::Client, ns: &str, name: &str) -> ServiceAccount {
    apply(
        client,
        Some(ns),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}}),
    )
    .await
}

#[tokio::test]
async fn crud_metadata_and_status_errors() {
    let sim = demo().await;
    let c = admin(&sim).await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "apps");
    let p = pods
        .get("web-misconfigured")
        .await
        .expect("demo pod exists");
    let meta = &p.metadata;
    assert!(meta.uid.as_deref().is_some_and(|u| u.len() == 36));
    assert!(
        meta.resource_version
            .as_deref()
            .is_some_and(|r| r.parse::<u64>().is_ok())
    );
    assert!(meta.creation_timestamp.is_some());
    assert_eq!(meta.generation, Some(1));
    let st = p.status.expect("status");
    assert_eq!(st.phase.as_deref(), Some("Running"));
    let cs = &st.container_statuses.expect("container statuses")[0];
    assert!(cs.image_id.contains("@sha256:"), "{}", cs.image_id);
    assert!(cs.state.as_ref().and_then(|s| s.running.as_ref()).is_some());

    let web = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .expect("list");
    assert_eq!(web.items.len(), 2);
    let named = pods
        .list(&ListParams::default().fields("metadata.name=distroless-app"))
        .await
        .expect("list");
    assert_eq!(named.items.len(), 1);

    let page = pods
        .list(&ListParams::default().limit(2))
        .await
        .expect("page 1");
    assert_eq!(page.items.len(), 2);
    let token = page.metadata.continue_.clone().expect("continue token");
    let rest = pods
        .list(&ListParams::default().limit(10).continue_token(&token))
        .await
        .expect("page 2");
    assert_eq!(rest.items.len(), 3);
    assert!(rest.metadata.continue_.is_none());
    assert!(rest.items.iter().all(|p| {
        !page
            .items
            .iter()
            .any(|q| q.metadata.name == p.metadata.name)
    }));

    let sas: Api<ServiceAccount> = Api::namespaced(c.clone(), "apps");
    let created = sa(&c, "apps", "robot").await;
    let dup = api_error(sas.create(&PostParams::default(), &created).await);
    assert_eq!((dup.code, dup.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(dup.message, "serviceaccounts \"robot\" already exists");

    let patched = sas
        .patch(
            "robot",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .expect("merge patch");
    assert_eq!(
        patched
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("a"))
            .map(String::as_str),
        Some("b")
    );
    let strategic = sas
        .patch(
            "robot",
            &PatchParams::default(),
            &Patch::Strategic(json!({"metadata": {"labels": {"c": "d"}}})),
        )
        .await
        .expect("strategic patch");
    assert_eq!(strategic.metadata.labels.as_ref().map(|l| l.len()), Some(2));

    let stale = api_error(sas.replace("robot", &PostParams::default(), &created).await);
    assert_eq!((stale.code, stale.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        stale.message,
        "Operation cannot be fulfilled on serviceaccounts \"robot\": the object has been modified; please apply your changes to the latest version and try again"
    );

    let bad = api_error(
        sas.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "Bad_Name"}})).expect("sa"),
        )
        .await,
    );
    assert_eq!((bad.code, bad.reason.as_str()), (422, "Invalid"));
    assert!(
        bad.message.starts_with(
            "ServiceAccount \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\""
        ),
        "{}",
        bad.message
    );

    let huge: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": "huge",
        "annotations": {"blob": "x".repeat(4 * 1024 * 1024)}}}))
    .expect("sa");
    let e = api_error(sas.create(&PostParams::default(), &huge).await);
    assert_eq!((e.code, e.reason.as_str()), (413, "RequestEntityTooLarge"));

    sas.delete("robot", &DeleteParams::default())
        .await
        .expect("delete");
    let gone = api_error(sas.get("robot").await);
    assert_eq!(
        (gone.code, gone.reason.as_str(), gone.message.as_str()),
        (404, "NotFound", "serviceaccounts \"robot\" not found")
    );
    assert_eq!(gone.details.expect("details").kind, "serviceaccounts");

    let no_ns: Api<ServiceAccount> = Api::namespaced(c.clone(), "nope");
    let fresh: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "x"}})).expect("sa");
    let e = api_error(no_ns.create(&PostParams::default(), &fresh).await);
    assert_eq!(
        (e.code, e.message.as_str()),
        (404, "namespaces \"nope\" not found")
    );
    sim.shutdown().await;
}

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
async fn rbac_allows_and_denies_with_upstream_bodies() {
    let sim = demo().await;
    let c = admin(&sim).await;
    sa(&c, "apps", "narrow").await;
    let _: Role = apply(&c, Some("apps"), role("one-pod", json!([
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"], "resourceNames": ["web-hardened"]},
        {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"], "resourceNames": ["narrow"]}
    ]))).await;
    let _: RoleBinding = apply(
        &c,
        Some("apps"),
        binding("narrow", "Role", "one-pod", "narrow"),
    )
    .await;
    let t = token(&c, "apps", "narrow", 3600, None)
        .await
        .expect("token");
    let as_narrow = with_token(&sim, &t).await;
    let pods: Api<Pod> = Api::namespaced(as_narrow.clone(), "apps");
    pods.get("web-hardened")
        .await
        .expect("allowed by resourceNames");

    let e = api_error(pods.get("web-misconfigured").await);
    assert_eq!(e.code, 403);
    assert_eq!(e.reason, "Forbidden");
    assert_eq!(
        e.message,
        "pods \"web-misconfigured\" is forbidden: User \"system:serviceaccount:apps:narrow\" cannot get resource \"pods\" in API group \"\" in the namespace \"apps\""
    );
    let d = e.details.expect("details");
    assert_eq!(
        (d.name.as_str(), d.kind.as_str(), d.group.as_str()),
        ("web-misconfigured", "pods", "")
    );

    let e = api_error(pods.list(&ListParams::default()).await);
    assert_eq!(
        e.message,
        "pods is forbidden: User \"system:serviceaccount:apps:narrow\" cannot list resource \"pods\" in API group \"\" in the namespace \"apps\""
    );
    let other_ns: Api<Pod> = Api::namespaced(as_narrow.clone(), "default");
    assert_eq!(api_error(other_ns.get("web-hardened").await).code, 403);

    // create on a subresource carries the parent name, so resourceNames apply.
    token(&as_narrow, "apps", "narrow", 3600, None)
        .await
        .expect("own token");
    let e = api_error(token(&as_narrow, "apps", "default", 3600, None).await);
    assert_eq!(
        e.message,
        "serviceaccounts \"default\" is forbidden: User \"system:serviceaccount:apps:narrow\" cannot create resource \"serviceaccounts/token\" in API group \"\" in the namespace \"apps\""
    );

    let roles: Api<Role> = Api::all(as_narrow.clone());
    let e = api_error(roles.list(&ListParams::default()).await);
    assert!(e.message.ends_with("cannot list resource \"roles\" in API group \"rbac.authorization.k8s.io\" at the cluster scope"), "{}", e.message);
    assert_eq!(
        e.details.expect("details").group,
        "rbac.authorization.k8s.io"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn escalation_is_refused_unless_escalate_or_bind_is_held() {
    let sim = demo().await;
    let c = admin(&sim).await;
    sa(&c, "apps", "manager").await;
    let _: Role = apply(&c, Some("apps"), role("manager", json!([
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"], "verbs": ["create", "update", "get"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}
    ]))).await;
    let _: RoleBinding = apply(
        &c,
        Some("apps"),
        binding("manager", "Role", "manager", "manager"),
    )
    .await;
    let t = token(&c, "apps", "manager", 3600, None)
        .await
        .expect("token");
    let m = with_token(&sim, &t).await;
    let roles: Api<Role> = Api::namespaced(m.clone(), "apps");
    let bindings: Api<RoleBinding> = Api::namespaced(m.clone(), "apps");

    // A subset of held rules is fine.
    let ok: Role = serde_json::from_value(role(
        "pod-reader",
        json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]),
    ))
    .expect("role");
    roles
        .create(&PostParams::default(), &ok)
        .await
        .expect("subset allowed");

    let wide: Role = serde_json::from_value(role("exec", json!([{"apiGroups": [""], "resources": ["pods", "pods/exec"], "verbs": ["get", "create"]}]))).expect("role");
    let e = api_error(roles.create(&PostParams::default(), &wide).await);
    assert_eq!(e.code, 403);
    assert_eq!(
        e.message,
        "roles.rbac.authorization.k8s.io \"exec\" is forbidden: user \"system:serviceaccount:apps:manager\" (groups=[\"system:serviceaccounts\" \"system:serviceaccounts:apps\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"create\"]}\n{APIGroups:[\"\"], Resources:[\"pods/exec\"], Verbs:[\"get\" \"create\"]}"
    );

    let admin_binding: RoleBinding = serde_json::from_value(binding(
        "grab-admin",
        "ClusterRole",
        "cluster-admin",
        "manager",
    ))
    .expect("rb");
    let e = api_error(
        bindings
            .create(&PostParams::default(), &admin_binding)
            .await,
    );
    assert_eq!(e.code, 403);
    assert!(e.message.starts_with("rolebindings.rbac.authorization.k8s.io \"grab-admin\" is forbidden: user \"system:serviceaccount:apps:manager\""), "{}", e.message);
    // Binding a role whose rules are held works.
    let fine: RoleBinding =
        serde_json::from_value(binding("reader", "Role", "pod-reader", "default")).expect("rb");
    bindings
        .create(&PostParams::default(), &fine)
        .await
        .expect("covered binding");

    // `escalate` on roles and `bind` on one ClusterRole lift the checks.
    let _: Role = apply(&c, Some("apps"), role("lift", json!([
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["escalate"]},
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["bind"], "resourceNames": ["cluster-admin"]}
    ]))).await;
    let _: RoleBinding = apply(&c, Some("apps"), binding("lift", "Role", "lift", "manager")).await;
    roles
        .create(&PostParams::default(), &wide)
        .await
        .expect("escalate allows");
    bindings
        .create(&PostParams::default(), &admin_binding)
        .await
        .expect("bind allows");
    sim.shutdown().await;
}

async fn run(
    pods: &Api<Pod>,
    pod: &str,
    container: &str,
    cmd: &[&str],
    stdin: Option<&[u8]>,
) -> (
    Vec<u8>,
    Vec<u8>,
    k8s_openapi::apimachinery::pkg::apis::meta::v1::Status,
) {
    let ap = AttachParams::default()
        .container(container)
        .stdin(stdin.is_some())
        .stderr(true);
    let mut p = pods
        .exec(pod, cmd.to_vec(), &ap)
        .await
        .expect("exec starts");
    let status = p.take_status().expect("status future");
    if let Some(input) = stdin {
        let mut w = p.stdin().expect("stdin");
        w.write_all(input).await.expect("write stdin");
        // EOF for the simplex pipe; kube-rs then sends the v5 close frame.
        w.shutdown().await.expect("close stdin");
    }
    let mut out = p.stdout().expect("stdout");
    let mut err = p.stderr().expect("stderr");
    let (mut o, mut e) = (Vec::new(), Vec::new());
    let (r1, r2) = tokio::join!(out.read_to_end(&mut o), err.read_to_end(&mut e));
    r1.expect("read stdout");
    r2.expect("read stderr");
    let st = status.await.expect("status arrives");
    p.join().await.expect("join");
    (o, e, st)
}

fn exit_code(st: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Status) -> i32 {
    if st.status.as_deref() == Some("Success") {
        return 0;
    }
    assert_eq!(st.reason.as_deref(), Some("NonZeroExitCode"), "{st:?}");
    st.details
        .as_ref()
        .and_then(|d| d.causes.as_ref())
        .and_then(|c| c.iter().find(|c| c.reason.as_deref() == Some("ExitCode")))
        .and_then(|c| c.message.as_deref())
        .and_then(|m| m.parse().ok())
        .expect("ExitCode cause")
}

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

async fn wait_ephemeral_running(pods: &Api<Pod>, pod: &str, name: &str) {
    eventually(
        "ephemeral container running",
        Duration::from_secs(20),
        || async {
            let p = pods.get(pod).await.ok()?;
            p.status?
                .ephemeral_container_statuses?
                .into_iter()
                .find(|s| s.name == name)?
                .state?
                .running
                .map(|_| ())
        },
    )
    .await
}

#[tokio::test]
async fn ephemeral_containers_read_the_target_root_under_ptrace_rules() {
    let sim = demo().await;
    let c = admin(&sim).await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "apps");
    let debug = |name: &str, sc: serde_json::Value| {
        json!({"spec": {"ephemeralContainers": [{
        "name": name, "image": "kubesim.local/scanner:1.0", "command": ["sleep", "infinity"],
        "targetContainerName": "app", "securityContext": sc}]}})
    };
    // Same uid as the distroless target (65532): allowed.
    pods.patch_ephemeral_containers(
        "distroless-app",
        &PatchParams::default(),
        &Patch::Strategic(debug(
            "same-uid",
            json!({"runAsUser": 65532, "runAsGroup": 65532}),
        )),
    )
    .await
    .expect("add ephemeral container");
    wait_ephemeral_running(&pods, "distroless-app", "same-uid").await;
    let (o, _, st) = run(
        &pods,
        "distroless-app",
        "same-uid",
        &["cat", "/proc/1/root/app/config.json"],
        None,
    )
    .await;
    assert_eq!(exit_code(&st), 0);
    assert_eq!(String::from_utf8_lossy(&o), "{\"listen\": \":8080\"}\n");
    let (o, _, _) = run(
        &pods,
        "distroless-app",
        "same-uid",
        &["cat", "/etc/os-release"],
        None,
    )
    .await;
    assert!(
        String::from_utf8_lossy(&o).contains("kubesim-scanner"),
        "debug container has its own root"
    );

    // Root without CAP_SYS_PTRACE against a non-root target: EACCES.
    pods.patch_ephemeral_containers(
        "distroless-app",
        &PatchParams::default(),
        &Patch::Strategic(debug("root-noptrace", json!({"runAsUser": 0}))),
    )
    .await
    .expect("add second");
    wait_ephemeral_running(&pods, "distroless-app", "root-noptrace").await;
    let (_, e, st) = run(
        &pods,
        "distroless-app",
        "root-noptrace",
        &["cat", "/proc/1/root/app/config.json"],
        None,
    )
    .await;
    assert_ne!(exit_code(&st), 0);
    assert!(
        String::from_utf8_lossy(&e).contains("Permission denied"),
        "{}",
        String::from_utf8_lossy(&e)
    );

    // Root with SYS_PTRACE: allowed.
    pods.patch_ephemeral_containers(
        "distroless-app",
        &PatchParams::default(),
        &Patch::Strategic(debug(
            "root-ptrace",
            json!({"runAsUser": 0, "capabilities": {"add": ["SYS_PTRACE"]}}),
        )),
    )
    .await
    .expect("add third");
    wait_ephemeral_running(&pods, "distroless-app", "root-ptrace").await;
    let (o, _, _) = run(
        &pods,
        "distroless-app",
        "root-ptrace",
        &["ls", "/proc/1/root/app"],
        None,
    )
    .await;
    assert_eq!(String::from_utf8_lossy(&o), "config.json\nsleep\n");

    // Removing or changing an ephemeral container is refused.
    let e = api_error(
        pods.patch_ephemeral_containers(
            "distroless-app",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"ephemeralContainers": []}})),
        )
        .await,
    );
    assert_eq!(e.code, 422);
    assert!(e.message.starts_with("Pod \"distroless-app\" is invalid: [spec.ephemeralContainers: Forbidden: existing ephemeral containers \"same-uid\" may not be removed\n, "), "{}", e.message);
    assert_eq!(e.details.expect("details").causes.len(), 3);
    let e = api_error(pods.patch_ephemeral_containers("distroless-app", &PatchParams::default(),
        &Patch::Strategic(json!({"spec": {"ephemeralContainers": [{"name": "x", "image": "kubesim.local/scanner:1.0", "targetContainerName": "nope"}]}}))).await);
    assert!(
        e.message
            .contains("spec.ephemeralContainers[3].targetContainerName: Not found: \"nope\""),
        "{}",
        e.message
    );
    // Container names are DNS-1123 labels, ephemeral ones included.
    let e = api_error(pods.patch_ephemeral_containers("distroless-app", &PatchParams::default(),
        &Patch::Strategic(json!({"spec": {"ephemeralContainers": [{"name": "Debug_1", "image": "kubesim.local/scanner:1.0"}]}}))).await);
    assert_eq!(e.code, 422);
    assert!(
        e.message.contains(
            "spec.ephemeralContainers[3].name: Invalid value: \"Debug_1\": a lowercase RFC 1123 label"
        ),
        "{}",
        e.message
    );

    // PUT (replace) appends when the existing entries are kept unchanged.
    let mut whole = pods
        .get_ephemeral_containers("distroless-app")
        .await
        .expect("get subresource");
    let mut list = whole
        .spec
        .as_ref()
        .and_then(|s| s.ephemeral_containers.clone())
        .expect("list");
    list.push(
        serde_json::from_value(
            json!({"name": "via-put", "image": "kubesim.local/scanner:1.0",
        "command": ["sleep", "infinity"], "targetContainerName": "app"}),
        )
        .expect("container"),
    );
    whole.spec.as_mut().expect("spec").ephemeral_containers = Some(list);
    // Other changes in the submitted pod are dropped, as upstream does.
    whole.metadata.labels = Some([("dropped".to_string(), "yes".to_string())].into());
    let replaced = pods
        .replace_ephemeral_containers("distroless-app", &PostParams::default(), &whole)
        .await
        .expect("replace");
    assert_eq!(
        replaced
            .spec
            .and_then(|s| s.ephemeral_containers)
            .map(|l| l.len()),
        Some(4)
    );
    assert!(
        replaced
            .metadata
            .labels
            .is_none_or(|l| !l.contains_key("dropped"))
    );
    wait_ephemeral_running(&pods, "distroless-app", "via-put").await;

    // A finished ephemeral container is reported terminated.
    pods.patch_ephemeral_containers("distroless-app", &PatchParams::default(), &Patch::Strategic(json!({"spec": {"ephemeralContainers": [{
        "name": "oneshot", "image": "kubesim.local/scanner:1.0", "command": ["sh", "-c", "exit 4"], "targetContainerName": "app"}]}})))
        .await
        .expect("add oneshot");
    let code = eventually("oneshot terminated", Duration::from_secs(20), || async {
        let p = pods.get("distroless-app").await.ok()?;
        p.status?
            .ephemeral_container_statuses?
            .into_iter()
            .find(|s| s.name == "oneshot")?
            .state?
            .terminated
            .map(|t| t.exit_code)
    })
    .await;
    assert_eq!(code, 4);
    sim.shutdown().await;
}

#[tokio::test]
async fn deleting_an_owner_collects_its_dependents() {
    let sim = demo().await;
    let c = admin(&sim).await;
    let owner = sa(&c, "apps", "owner").await;
    let oref = json!([{"apiVersion": "v1", "kind": "ServiceAccount", "name": "owner", "uid": owner.metadata.uid}]);
    let _: Pod = apply(&c, Some("apps"), json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "dependent", "ownerReferences": oref},
        "spec": {"containers": [{"name": "c", "image": "kubesim.local/scanner:1.0"}]}})).await;
    let _: ServiceAccount = apply(&c, Some("apps"), json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "dep-sa", "ownerReferences": oref}})).await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "apps");
    let sas: Api<ServiceAccount> = Api::namespaced(c.clone(), "apps");
    sas.delete("owner", &DeleteParams::background())
        .await
        .expect("delete owner");
    eventually("dependents collected", Duration::from_secs(10), || async {
        (pods.get_opt("dependent").await.ok()?.is_none()
            && sas.get_opt("dep-sa").await.ok()?.is_none())
        .then_some(())
    })
    .await;
    pods.get("web-hardened").await.expect("unrelated pods stay");
    sim.shutdown().await;
}

#[tokio::test]
async fn watch_streams_events_bookmarks_and_expires_old_versions() {
    let mut config = kubesim::Config::demo().expect("demo");
    config.watch_history = 20;
    config.bookmark_interval = Duration::from_millis(200);
    let sim = start(config).await;
    let c = admin(&sim).await;
    let sas: Api<ServiceAccount> = Api::namespaced(c.clone(), "apps");
    let rv = sas
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("rv");

    let mut stream = sas
        .watch(&WatchParams::default().timeout(5), &rv)
        .await
        .expect("watch")
        .boxed();
    sa(&c, "apps", "w1").await;
    sas.patch(
        "w1",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
    )
    .await
    .expect("patch");
    sas.delete("w1", &DeleteParams::default())
        .await
        .expect("delete");
    let mut seen = Vec::new();
    let mut bookmark = false;
    while let Some(ev) = stream.try_next().await.expect("event") {
        match ev {
            WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o)
                if o.metadata.name.as_deref() == Some("w1") =>
            {
                seen.push(o.metadata.resource_version.expect("rv"));
            }
            WatchEvent::Bookmark(b) => {
                assert!(b.metadata.resource_version.parse::<u64>().is_ok());
                bookmark = true;
            }
            _ => {}
        }
        if seen.len() == 3 && bookmark {
            break;
        }
    }
    assert_eq!(seen.len(), 3, "ADDED, MODIFIED, DELETED");
    assert!(bookmark, "bookmark received");

    // The stream ends by itself at timeoutSeconds.
    let mut short = sas
        .watch(&WatchParams::default().timeout(1).disable_bookmarks(), &rv)
        .await
        .expect("watch")
        .boxed();
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while short.next().await.is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "watch closed at timeoutSeconds");

    // Push the old resourceVersion out of the 20-event history: 410 Expired.
    for i in 0..25 {
        sa(&c, "apps", &format!("churn{i}")).await;
    }
    let mut old = sas
        .watch(&WatchParams::default(), &rv)
        .await
        .expect("watch")
        .boxed();
    match old.try_next().await.expect("event") {
        Some(WatchEvent::Error(s)) => {
            assert_eq!((s.code, s.reason.as_str()), (410, "Expired"));
            assert!(
                s.message
                    .starts_with(&format!("too old resource version: {rv} (")),
                "{}",
                s.message
            );
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
    assert!(old.next().await.is_none(), "stream ends after the 410");

    // kube-runtime's watcher (list + watch) works end to end.
    let events = kube::runtime::watcher(
        sas.clone(),
        kube::runtime::watcher::Config::default().fields("metadata.name=late"),
    );
    let mut events = std::pin::pin!(kube::runtime::WatchStreamExt::applied_objects(events));
    let creator = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        sa(&c, "apps", "late").await;
    };
    let (first, _) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(10), events.try_next()),
        creator
    );
    let obj = first.expect("in time").expect("ok").expect("object");
    assert_eq!(obj.metadata.name.as_deref(), Some("late"));
    sim.shutdown().await;
}

#[tokio::test]
async fn shared_process_namespace_lets_the_sidecar_read_the_app_root() {
    let sim = demo().await;
    let c = admin(&sim).await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "apps");
    let (o, _, _) = run(
        &pods,
        "app-with-scanner",
        "scanner",
        &["ps", "-o", "pid,user,args"],
        None,
    )
    .await;
    let text = String::from_utf8_lossy(&o).into_owned();
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0][..2],
        ["1", "root"],
        "PID 1 is the pod sandbox:\n{text}"
    );
    assert!(
        rows.iter().any(|r| r[1] == "1000" && r[2] == "sleep"),
        "app process visible:\n{text}"
    );
    let (o, e, st) = run(&pods, "app-with-scanner", "scanner",
        &["sh", "-c", "cat /proc/$(ps -o pid,user,args | awk '$2 == 1000 && $3 == \"sleep\" {print $1}')/root/etc/app/config.yaml"], None).await;
    assert_eq!(exit_code(&st), 0, "{}", String::from_utf8_lossy(&e));
    assert!(String::from_utf8_lossy(&o).contains("db_password: hunter2"));
    // The hardened container cannot read the sidecar's root (different uid, no caps).
    let (o, _, _) = run(&pods, "app-with-scanner", "app", &["sh", "-c", "ls /proc/$(ps -o pid,user,args | awk '$2 == \"root\" && $3 == \"sleep\" {p = $1} END {print p}')/root/ 2>&1 || true"], None).await;
    assert!(
        String::from_utf8_lossy(&o).contains("Permission denied"),
        "{}",
        String::from_utf8_lossy(&o)
    );
    sim.shutdown().await;
}

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
