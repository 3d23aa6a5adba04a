//! RBAC through kube-rs: allow/deny with upstream's 403 bodies, and
//! privilege-escalation refusals unless `escalate`/`bind` is held.
//! Requires root (kubesim runs containers in namespaces).

mod common;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

use common::*;

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
