//! A push for a digest no pod runs yet: intake watches for it, the first
//! pod that starts with it (created through kubesim's API) gets exactly one
//! scan per container, and an unused watch expires after its TTL.

mod support;

use std::time::Duration;

use async_nats::jetstream;
use k8s_openapi::api::core::v1::Pod;
use kube::api::PostParams;
use scanfleet_test_harness::nats::NatsServer;
use support::{eventually, http, metric, queued_after};

const FIXTURE: &str = r#"
namespaces: [{name: apps}]
images:
  - {name: "kubesim.local/base:1.0", entrypoint: [sleep], cmd: [infinity]}
  - {name: "kubesim.local/late:1.0", entrypoint: [sleep], cmd: [infinity], env: {EDITION: late}}
  - {name: "kubesim.local/never:1.0", entrypoint: [sleep], cmd: [infinity], env: {EDITION: never}}
pods:
  - apiVersion: v1
    kind: Pod
    metadata: {name: early, namespace: apps}
    spec: {containers: [{name: main, image: "kubesim.local/base:1.0"}]}
"#;

const TOKEN: &str = "Bearer push-watch-test";
const PENDING: &str = "scanfleet_intake_push_watches_pending";
const EXPIRED: &str = "scanfleet_intake_push_watches_total{outcome=\"expired\"}";
const MATCHED: &str = "scanfleet_intake_push_watches_total{outcome=\"matched\"}";
const CHECKED: &str = "scanfleet_intake_pod_updates_checked_total";

fn push_body(digest: &str, id: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"events": [{
        "id": id,
        "timestamp": "2026-11-22T23:41:07Z",
        "action": "push",
        "target": {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest,
            "size": 1234,
            "repository": "shop/late",
            "tag": "2.0"
        },
        "request": {"id": "r", "host": "registry.local:5000", "method": "PUT"}
    }]}))
    .unwrap()
}

fn pod(name: &str, image: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "apps"},
        "spec": {"containers": [
            {"name": "app", "image": image},
            {"name": "helper", "image": image},
            {"name": "other", "image": "kubesim.local/base:1.0"}
        ]}
    }))
    .unwrap()
}

async fn running(pods: &kube::Api<Pod>, name: &str) -> bool {
    pods.get(name)
        .await
        .ok()
        .and_then(|p| p.status)
        .and_then(|s| s.phase)
        .is_some_and(|p| p == "Running")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_pod_with_a_watched_digest_is_scanned_and_watches_expire() {
    let fixture = kubesim::fixture::Fixture::parse("push-watch", FIXTURE).unwrap();
    // The digests kubesim will report, computed by its own image builder
    // before any pod runs them.
    let scratch = tempfile::tempdir().unwrap();
    let applets = kubesim::image::applets().expect("busybox applets");
    let digest_of = |i: usize| {
        kubesim::image::build(
            &fixture.images[i],
            &scratch.path().join(i.to_string()),
            &applets,
        )
        .unwrap()
        .digest
    };
    let (late, never) = (digest_of(1), digest_of(2));
    let sim = kubesim::Kubesim::start_settled(
        kubesim::Config::with_fixture(fixture.clone()),
        Duration::from_secs(30),
    )
    .await
    .expect("kubesim starts with every pod running (tests run as root)");

    let nats = NatsServer::start();
    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let dir = tempfile::tempdir().unwrap();
    let secret = support::write_private(dir.path(), "dist.secret", TOKEN.as_bytes());
    let yaml = format!(
        "webhooks:\n  profile: {{name: container-baseline, version: 1.0.0}}\n  watch_ttl_secs: 4\n  max_pending_watches: 8\n  endpoints:\n    distribution: {{secret_file: {secret:?}}}\n"
    );
    let intake = support::start_intake(dir.path(), &nats.url(), &sim, &yaml).await;
    let addr = intake.http.unwrap();
    let headers = vec![("Authorization".to_owned(), TOKEN.as_bytes().to_vec())];
    let pods: kube::Api<Pod> = kube::Api::namespaced(support::client(&sim).await, "apps");

    // 1. Nothing runs `late` yet: 200, nothing queued, one watch.
    let r = http(
        addr,
        "POST",
        "/v1/webhooks/distribution",
        &headers,
        &push_body(&late, "e1"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (r.json()["queued"].clone(), r.json()["watching"].clone()),
        (0.into(), 1.into())
    );
    assert_eq!(metric(addr, PENDING).await, 1);
    assert!(queued_after(&js, 0).await.is_empty());

    // 2. A pod starts with it: one intent per container running the digest.
    pods.create(
        &PostParams::default(),
        &pod("late-1", "kubesim.local/late:1.0"),
    )
    .await
    .unwrap();
    eventually(
        "the watched push matched",
        Duration::from_secs(20),
        || async { metric(addr, MATCHED).await == 1 },
    )
    .await;
    // kubesim starts a pod's containers one after the other, so the second
    // container's intent follows its own status update.
    eventually(
        "both containers queued",
        Duration::from_secs(20),
        || async { queued_after(&js, 0).await.len() >= 2 },
    )
    .await;
    let q = queued_after(&js, 0).await;
    let mut targets: Vec<String> = q.iter().map(support::Queued::target).collect();
    targets.sort();
    assert_eq!(targets, ["late-1/app", "late-1/helper"]);
    for i in &q {
        assert!(i.subject.starts_with("scan.intents.high.kubesim.apps."));
        assert_eq!(
            i.intent
                .target
                .as_ref()
                .unwrap()
                .image
                .as_ref()
                .unwrap()
                .digest,
            late
        );
    }
    assert_eq!(metric(addr, PENDING).await, 0, "the watch is claimed");

    // 3. A second pod with the same digest: the watch is gone, nothing new.
    let checked = metric(addr, CHECKED).await;
    pods.create(
        &PostParams::default(),
        &pod("late-2", "kubesim.local/late:1.0"),
    )
    .await
    .unwrap();
    eventually(
        "late-2 runs and intake saw it",
        Duration::from_secs(20),
        || async { running(&pods, "late-2").await && metric(addr, CHECKED).await > checked },
    )
    .await;
    assert_eq!(
        queued_after(&js, 0).await.len(),
        2,
        "only the first pod is scanned"
    );

    // 4. A watch nobody uses expires after the TTL (as does the claimed
    // one)...
    let r = http(
        addr,
        "POST",
        "/v1/webhooks/distribution",
        &headers,
        &push_body(&never, "e2"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["watching"], 1);
    eventually("the watch expired", Duration::from_secs(20), || async {
        metric(addr, EXPIRED).await == 2 && metric(addr, PENDING).await == 0
    })
    .await;
    // ...and a pod starting with the digest afterwards is not scanned.
    let checked = metric(addr, CHECKED).await;
    pods.create(
        &PostParams::default(),
        &pod("never-1", "kubesim.local/never:1.0"),
    )
    .await
    .unwrap();
    eventually(
        "never-1 runs and intake saw it",
        Duration::from_secs(20),
        || async { running(&pods, "never-1").await && metric(addr, CHECKED).await > checked },
    )
    .await;
    assert_eq!(
        queued_after(&js, 0).await.len(),
        2,
        "an expired watch queues nothing"
    );
    assert_eq!(metric(addr, MATCHED).await, 1);

    intake.shutdown().await.unwrap();
    sim.shutdown().await;
}
