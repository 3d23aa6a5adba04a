//! A push for a digest no pod runs yet: intake watches for it, the first
//! pod that starts with it (created through kubesim's API) gets exactly one
//! scan per container, and an unused watch expires after its TTL.

mod support;

use std::time::Duration;

use async_nats::jetstream;
use k8s_openapi::api::core::v1::Pod;
use kube::api::PostParams;
use support::{BusIdentity, HttpResponse, SecureBus, eventually, http, metric, queued_after};

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
    // kubesim's `late` and `never` images.
    let (late, never) = (
        support::fixture_image_digest(&fixture, 1),
        support::fixture_image_digest(&fixture, 2),
    );
    let scene = Scene::start(fixture).await;
    a_push_nothing_runs_yet_is_watched(&scene, &late).await;
    the_first_pod_with_it_is_scanned_once_per_container(&scene, &late).await;
    a_second_pod_with_it_is_not_scanned(&scene).await;
    an_unused_watch_expires_and_queues_nothing(&scene, &never).await;
    scene.shut_down().await;
}

/// kubesim with the fixture, nats-server, and intake with a 4 s watch TTL.
struct Scene {
    sim: kubesim::Kubesim,
    _nats: SecureBus,
    js: jetstream::Context,
    /// Holds intake's secret file and config for as long as it runs.
    _dir: tempfile::TempDir,
    intake: support::Intake,
    addr: support::HttpEdge,
    pods: kube::Api<Pod>,
}

impl Scene {
    async fn start(fixture: kubesim::fixture::Fixture) -> Self {
        let sim = kubesim::Kubesim::start_settled(
            kubesim::Config::with_fixture(fixture),
            Duration::from_secs(30),
        )
        .await
        .expect("kubesim starts with every pod running (tests run as root)");

        let nats = SecureBus::start().await;
        let js = nats.js(BusIdentity::Admin).await;
        let dir = tempfile::tempdir().unwrap();
        let secret = support::write_private(dir.path(), "dist.secret", TOKEN.as_bytes());
        let yaml = format!(
            "webhooks:\n  profile: {{name: container-baseline, version: 1.0.0}}\n  watch_ttl_secs: 4\n  max_pending_watches: 8\n  endpoints:\n    distribution: {{secret_file: {secret:?}}}\n"
        );
        let intake = support::start_intake(dir.path(), &nats, &sim, &yaml).await;
        let addr = intake.webhooks();
        let pods: kube::Api<Pod> = kube::Api::namespaced(support::client(&sim).await, "apps");
        Self {
            sim,
            _nats: nats,
            js,
            _dir: dir,
            intake,
            addr,
            pods,
        }
    }

    /// Delivers a Distribution push of `digest` with the configured token.
    async fn push(&self, digest: &str, id: &str) -> HttpResponse {
        let headers = vec![("Authorization".to_owned(), TOKEN.as_bytes().to_vec())];
        http(
            &self.addr,
            "POST",
            "/v1/webhooks/distribution",
            &headers,
            &support::distribution_push(digest, id),
        )
        .await
    }

    /// Creates pod `name` running `image` and waits until it runs and
    /// intake has checked a pod update since.
    async fn start_pod_and_wait_until_seen(&self, name: &str, image: &str) {
        let checked = metric(&self.addr, CHECKED).await;
        self.pods
            .create(&PostParams::default(), &pod(name, image))
            .await
            .unwrap();
        eventually(
            &format!("{name} runs and intake saw it"),
            Duration::from_secs(20),
            || async {
                running(&self.pods, name).await && metric(&self.addr, CHECKED).await > checked
            },
        )
        .await;
    }

    async fn shut_down(self) {
        self.intake.shutdown().await.unwrap();
        self.sim.shutdown().await;
    }
}

/// Step 1: nothing runs `late` yet: 200, nothing queued, one watch.
async fn a_push_nothing_runs_yet_is_watched(scene: &Scene, late: &str) {
    let r = scene.push(late, "e1").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        (r.json()["queued"].clone(), r.json()["watching"].clone()),
        (0.into(), 1.into())
    );
    assert_eq!(metric(&scene.addr, PENDING).await, 1);
    assert!(queued_after(&scene.js, 0).await.is_empty());
}

/// Step 2: a pod starts with it: one intent per container running the digest.
async fn the_first_pod_with_it_is_scanned_once_per_container(scene: &Scene, late: &str) {
    let (addr, js) = (&scene.addr, &scene.js);
    scene
        .pods
        .create(
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
        || async { queued_after(js, 0).await.len() >= 2 },
    )
    .await;
    let q = queued_after(js, 0).await;
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
}

/// Step 3: a second pod with the same digest: the watch is gone, nothing new.
async fn a_second_pod_with_it_is_not_scanned(scene: &Scene) {
    scene
        .start_pod_and_wait_until_seen("late-2", "kubesim.local/late:1.0")
        .await;
    assert_eq!(
        queued_after(&scene.js, 0).await.len(),
        2,
        "only the first pod is scanned"
    );
}

/// Step 4: a watch nobody uses expires after the TTL (as does the claimed
/// one)...
async fn an_unused_watch_expires_and_queues_nothing(scene: &Scene, never: &str) {
    let addr = &scene.addr;
    let r = scene.push(never, "e2").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["watching"], 1);
    eventually("the watch expired", Duration::from_secs(20), || async {
        metric(addr, EXPIRED).await == 2 && metric(addr, PENDING).await == 0
    })
    .await;
    // ...and a pod starting with the digest afterwards is not scanned.
    scene
        .start_pod_and_wait_until_seen("never-1", "kubesim.local/never:1.0")
        .await;
    assert_eq!(
        queued_after(&scene.js, 0).await.len(),
        2,
        "an expired watch queues nothing"
    );
    assert_eq!(metric(addr, MATCHED).await, 1);
}
