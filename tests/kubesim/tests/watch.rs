//! Watch through kube-rs: events, bookmarks, server timeout, 410 for an
//! expired resourceVersion, and the kube-runtime watcher.
//! Requires root (kubesim runs containers in namespaces).

mod common;

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, WatchParams};
use kube::core::WatchEvent;
use serde_json::json;

use common::*;

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
