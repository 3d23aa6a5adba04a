//! Pushes and schedules across a `clusters:` registry: two kubesims
//! (`kubesim`, intake's default cluster, and `west`) running the same
//! images, one nats-server, intake reaching both. A pushed digest yields
//! one intent per container running it in each cluster, each for its own
//! cluster; a push nothing runs yet is matched by a pod starting in `west`;
//! a schedule without `clusters:` expands in both clusters, one naming
//! `[west]` only there.

mod support;

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use async_nats::jetstream;
use clap::Parser;
use k8s_openapi::api::core::v1::Pod;
use kube::api::PostParams;
use scanfleet_bus::TopologyConfig;
use scanfleet_contracts::v1::{Priority, trigger::Source};
use scanfleet_intake::config::{Args, Config};
use scanfleet_intake::metrics::Metrics;
use scanfleet_intake::periodic_scans::{ManualTime, PeriodicScans};
use scanfleet_process_lifecycle::CriticalTasks;
use scanfleet_scan_intents::ClusterName;
use support::{BusIdentity, Queued, SecureBus, eventually, http, queued_after};

/// Both clusters run `web` (image `base`) and `worker` (image `tool`);
/// `late` runs nowhere until the test starts it in west.
const FIXTURE: &str = r#"
namespaces: [{name: apps}]
images:
  - {name: "kubesim.local/base:1.0", entrypoint: [sleep], cmd: [infinity]}
  - {name: "kubesim.local/tool:1.0", entrypoint: [sleep], cmd: [infinity], env: {EDITION: tool}}
  - {name: "kubesim.local/late:1.0", entrypoint: [sleep], cmd: [infinity], env: {EDITION: late}}
pods:
  - apiVersion: v1
    kind: Pod
    metadata: {name: web, namespace: apps, labels: {app: web}}
    spec: {containers: [{name: main, image: "kubesim.local/base:1.0"}]}
  - apiVersion: v1
    kind: Pod
    metadata: {name: worker, namespace: apps, labels: {app: worker}}
    spec: {containers: [{name: main, image: "kubesim.local/tool:1.0"}]}
"#;

const TOKEN: &str = "Bearer many-clusters-test";

/// Every minute, no jitter: `everywhere` over `app=web` in every cluster,
/// `west-only` over `app=worker` in west alone.
const SCHEDULES: &str = "scheduler:\n  seed: 1\n  schedules:\n    - {name: everywhere, namespace: apps, selector: app=web, interval_secs: 60, jitter_secs: 0, profile: {name: container-baseline, version: 1.0.0}}\n    - {name: west-only, namespace: apps, selector: app=worker, interval_secs: 60, jitter_secs: 0, clusters: [west], profile: {name: container-baseline, version: 1.0.0}}\n";

fn fixture() -> kubesim::fixture::Fixture {
    kubesim::fixture::Fixture::parse("many-clusters", FIXTURE).unwrap()
}

async fn kubesim() -> kubesim::Kubesim {
    kubesim::Kubesim::start_settled(
        kubesim::Config::with_fixture(fixture()),
        Duration::from_secs(30),
    )
    .await
    .expect("kubesim starts with every pod running (tests run as root)")
}

/// (cluster of the subject, cluster of the target, `pod/container`) of
/// each intent, sorted.
fn placed(queued: &[Queued]) -> Vec<(String, String, String)> {
    let mut out: Vec<_> = queued
        .iter()
        .map(|q| {
            let subject_cluster = q.subject.split('.').nth(3).unwrap_or_default().to_owned();
            let target_cluster = q.intent.target.as_ref().unwrap().cluster.clone();
            (subject_cluster, target_cluster, q.target())
        })
        .collect();
    out.sort();
    out
}

fn triple(cluster: &str, target: &str) -> (String, String, String) {
    (cluster.into(), cluster.into(), target.into())
}

fn push_intents(all: Vec<Queued>) -> Vec<Queued> {
    all.into_iter()
        .filter(|q| {
            matches!(
                q.intent.trigger.as_ref().and_then(|t| t.source.as_ref()),
                Some(Source::RegistryPush(_))
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_and_schedules_reach_every_known_cluster() {
    let (home, west) = tokio::join!(kubesim(), kubesim());
    let nats = SecureBus::start_with(TopologyConfig {
        clusters: vec![ClusterName::new("west").unwrap()],
        ..TopologyConfig::default()
    })
    .await;
    let js = nats.js(BusIdentity::Admin).await;
    let dir = tempfile::tempdir().unwrap();
    let west_kubeconfig = support::write_private(
        dir.path(),
        "west.kubeconfig",
        west.admin_kubeconfig().as_bytes(),
    );
    let registry = format!("clusters:\n  - {{name: west, kubeconfig: {west_kubeconfig:?}}}\n");
    let secret = support::write_private(dir.path(), "dist.secret", TOKEN.as_bytes());
    let yaml = format!(
        "{registry}webhooks:\n  profile: {{name: container-baseline, version: 1.0.0}}\n  endpoints:\n    distribution: {{secret_file: {secret:?}}}\n"
    );
    let intake = support::start_intake(dir.path(), &nats, &home, &yaml).await;

    a_push_matches_its_digest_in_both_clusters(&intake, &js, &home, &west).await;
    a_watched_push_is_matched_by_a_pod_starting_in_west(&intake, &js, &west).await;
    let after = support::last_sequence(&js).await;
    intake.shutdown().await.unwrap();

    let schedules = format!("{registry}{SCHEDULES}");
    schedules_fire_in_their_clusters(dir.path(), &nats, &js, &schedules, after).await;
    home.shutdown().await;
    west.shutdown().await;
}

async fn push(intake: &support::Intake, digest: &str, id: &str) -> support::HttpResponse {
    let headers = vec![("Authorization".to_owned(), TOKEN.as_bytes().to_vec())];
    http(
        &intake.webhooks(),
        "POST",
        "/v1/webhooks/distribution",
        &headers,
        &support::distribution_push(digest, id),
    )
    .await
}

/// `web/main` runs the same digest in both clusters: one high-priority
/// intent for each, on its own cluster's subject.
async fn a_push_matches_its_digest_in_both_clusters(
    intake: &support::Intake,
    js: &jetstream::Context,
    home: &kubesim::Kubesim,
    west: &kubesim::Kubesim,
) {
    let base = support::running_digests(home).await["web/main"].clone();
    assert_eq!(
        support::running_digests(west).await["web/main"],
        base,
        "both kubesims build the same image"
    );
    let r = push(intake, &base, "e1").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["queued"], 2, "{}", r.text());
    let q = queued_after(js, 0).await;
    assert_eq!(
        placed(&q),
        [triple("kubesim", "web/main"), triple("west", "web/main")]
    );
    for i in &q {
        assert_eq!(i.intent.priority, Priority::High as i32, "{i:?}");
        assert!(i.subject.starts_with("scan.intents.high."), "{}", i.subject);
    }
}

/// A push of `late`, which runs nowhere: watched; the pod that starts it in
/// west (not the default cluster) is scanned, for west.
async fn a_watched_push_is_matched_by_a_pod_starting_in_west(
    intake: &support::Intake,
    js: &jetstream::Context,
    west: &kubesim::Kubesim,
) {
    let late = support::fixture_image_digest(&fixture(), 2);
    let before = support::last_sequence(js).await;
    let r = push(intake, &late, "e2").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        (r.json()["queued"].clone(), r.json()["watching"].clone()),
        (0.into(), 1.into())
    );
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "late-1", "namespace": "apps"},
        "spec": {"containers": [{"name": "main", "image": "kubesim.local/late:1.0"}]}
    }))
    .unwrap();
    kube::Api::<Pod>::namespaced(support::client(west).await, "apps")
        .create(&PostParams::default(), &pod)
        .await
        .unwrap();
    eventually(
        "the pod starting in west is scanned",
        Duration::from_secs(20),
        || async { !push_intents(queued_after(js, before).await).is_empty() },
    )
    .await;
    let q = push_intents(queued_after(js, before).await);
    assert_eq!(placed(&q), [triple("west", "late-1/main")]);
    let digest = &q[0]
        .intent
        .target
        .as_ref()
        .unwrap()
        .image
        .as_ref()
        .unwrap()
        .digest;
    assert_eq!(digest, &late);
}

/// The scheduler over the pod caches intake builds from the registry, on a
/// manual clock: after both schedules' first slots, `everywhere` has queued
/// `web/main` in both clusters and `west-only` `worker/main` in west only.
async fn schedules_fire_in_their_clusters(
    dir: &std::path::Path,
    nats: &SecureBus,
    js: &jetstream::Context,
    yaml: &str,
    after: u64,
) {
    let path = dir.join("schedules.yaml");
    std::fs::write(&path, yaml).unwrap();
    let mut argv = vec!["scanfleet-intake".to_owned()];
    argv.extend(nats.args(BusIdentity::Intake));
    argv.extend(
        [
            "--cluster",
            "kubesim",
            "--kubeconfig",
            dir.join("intake.kubeconfig").to_str().unwrap(),
            "--config",
            path.to_str().unwrap(),
            // Only the scheduler is built from this config; nothing listens.
            "--insecure-plaintext",
        ]
        .map(String::from),
    );
    let config = Config::from_args(Args::parse_from(argv)).unwrap();
    let scheduler = config.scheduler.clone().unwrap();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let mut tasks = CriticalTasks::new(shutdown.clone());
    let intake_js = nats.js(BusIdentity::Intake).await;
    let budgets = scanfleet_intake::cluster_budgets::ClusterBudgets::open(&intake_js)
        .await
        .unwrap();
    let directories =
        scanfleet_intake::start_pod_directories(&config, &budgets, None, &shutdown, &mut tasks)
            .await
            .unwrap();
    let metrics = Arc::new(Metrics::default());
    let periodic = PeriodicScans::new(
        scheduler.scans.clone(),
        directories,
        support::container_intents(&intake_js, &config).await,
        metrics.clone(),
    );
    let start = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let last_first_slot = scheduler
        .scans
        .iter()
        .map(|s| s.schedule.next_fire(start, scheduler.seed).unwrap().at)
        .max()
        .unwrap();
    let clock = Arc::new(ManualTime::new(start));
    let looping = {
        let clock = clock.clone();
        tokio::spawn(async move { periodic.run_on(scheduler.seed, shutdown, &*clock).await })
    };
    eventually(
        "the loop to sleep until its first slot",
        Duration::from_secs(10),
        || async { clock.sleepers() > 0 },
    )
    .await;
    clock.advance(last_first_slot.duration_since(start).unwrap());

    let by_schedule = |q: &[Queued], name: &str| -> Vec<Queued> {
        q.iter()
            .filter(|q| {
                matches!(
                    q.intent.trigger.as_ref().and_then(|t| t.source.as_ref()),
                    Some(Source::Schedule(s)) if s.schedule_name == name
                )
            })
            .cloned()
            .collect()
    };
    let expected = [
        triple("kubesim", "web/main"),
        triple("west", "web/main"),
        triple("west", "worker/main"),
    ];
    let offers =
        || metrics.schedule_intents_queued.get() + metrics.schedule_intents_coalesced.get();
    eventually("both schedules fired", Duration::from_secs(10), || async {
        metrics.schedule_fires.get() == 2 && offers() >= 3
    })
    .await;
    // A fire runs to its end before the loop sees shutdown: after this,
    // the stream holds everything both fires queued.
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), looping)
        .await
        .expect("the loop stops on shutdown")
        .unwrap();
    let q = queued_after(js, after).await;
    assert_eq!(placed(&q), expected, "nothing more, nowhere else");
    assert_eq!(offers(), 3);
    assert_eq!(
        placed(&by_schedule(&q, "everywhere")),
        [triple("kubesim", "web/main"), triple("west", "web/main")]
    );
    assert_eq!(
        placed(&by_schedule(&q, "west-only")),
        [triple("west", "worker/main")]
    );
    for i in &q {
        assert_eq!(i.intent.priority, Priority::Low as i32, "{i:?}");
    }
    drop(tasks);
}
