//! kube-rs CRUD against kubesim: metadata bookkeeping, paging, upstream Status
//! errors (404, 409, 413, 422), and owner garbage collection.
//! Requires root (kubesim runs containers in namespaces).

mod common;

use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use common::*;

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
