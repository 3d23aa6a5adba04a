//! The flood rule end to end: a schedule over 100 running kubesim pods
//! fired 100 times (10,000 periodic intents offered) leaves exactly one
//! queued intent per (container, image digest, profile version), counted
//! per subject on the real stream; once a scan is acked, the next fire
//! queues it again.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use async_nats::jetstream;
use clap::Parser;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use scanfleet_bus::TopologyConfig;
use scanfleet_bus::topology::{INTENTS_STREAM, PriorityClass};
use scanfleet_intake::config::{Args, Config};
use scanfleet_intake::periodic_scans::{PeriodicScan, PeriodicScans};
use scanfleet_intake::pod_directory::{PodDirectories, PodDirectory};
use scanfleet_scan_intents::{
    ClusterName, ContainerRef, DedupeKey, Fire, ImageDigest, ImageIdentity, ProfileRef,
};
use scanfleet_test_harness::nats::NatsServer;

const PODS: usize = 100;
const FIRES: u64 = 100;

fn fixture() -> String {
    let mut y = String::from(
        "namespaces: [{name: apps}]\nimages:\n  - {name: \"kubesim.local/base:1.0\", entrypoint: [sleep], cmd: [infinity]}\n  - {name: \"kubesim.local/edge:1.0\", entrypoint: [sleep], cmd: [infinity], env: {EDITION: edge}}\npods:\n",
    );
    for i in 0..PODS {
        // Two images across the pods: the key is per container and digest.
        let image = if i % 2 == 0 { "base" } else { "edge" };
        y.push_str(&format!(
            "  - {{apiVersion: v1, kind: Pod, metadata: {{name: web-{i}, namespace: apps, labels: {{app: flood}}}}, spec: {{containers: [{{name: app, image: \"kubesim.local/{image}:1.0\"}}]}}}}\n"
        ));
    }
    y.push_str("  - {apiVersion: v1, kind: Pod, metadata: {name: bystander, namespace: apps, labels: {app: other}}, spec: {containers: [{name: app, image: \"kubesim.local/base:1.0\"}]}}\n");
    y
}

const SCHEDULE: &str = "scheduler:\n  seed: 7\n  schedules:\n    - name: flood\n      namespace: apps\n      selector: app=flood\n      interval_secs: 86400\n      jitter_secs: 60\n      profile: {name: container-baseline, version: 1.0.0}\n";

async fn per_subject(js: &jetstream::Context) -> BTreeMap<String, usize> {
    let stream = js.get_stream(INTENTS_STREAM).await.unwrap();
    let mut subjects = stream.info_with_subjects("scan.intents.>").await.unwrap();
    let mut out = BTreeMap::new();
    while let Some(s) = subjects.next().await {
        let (subject, count) = s.unwrap();
        out.insert(subject, count);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_periodic_intents_leave_one_per_unit_of_work() {
    let sim = kubesim::Kubesim::start_settled(
        kubesim::Config::with_fixture(
            kubesim::fixture::Fixture::parse("flood", &fixture()).unwrap(),
        ),
        Duration::from_secs(60),
    )
    .await
    .expect("kubesim starts with every pod running (tests run as root)");
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config = flood_config(dir.path(), &sim, &nats.url());
    let scans = config.scheduler.clone().unwrap().scans;
    assert_eq!(scans.len(), 1);

    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let flood = Flood::start(&config, &scans, &js, &sim).await;
    flood.fire_a_hundred_times().await;
    one_message_per_unit_of_work(&js, flood.kube.clone(), &scans[0].profile).await;
    acked_scans_are_queued_again(&js, &flood).await;

    sim.shutdown().await;
}

/// The schedule comes through the real config parser.
fn flood_config(dir: &Path, sim: &kubesim::Kubesim, nats_url: &str) -> Config {
    let kubeconfig = support::write_private(dir, "kubeconfig", sim.admin_kubeconfig().as_bytes());
    let config_path = dir.join("intake.yaml");
    std::fs::write(&config_path, SCHEDULE).unwrap();
    // It never serves, but its configuration is a whole intake's.
    let pki = scanfleet_test_harness::pki::TestPki::new();
    Config::from_args(Args::parse_from(
        [
            "scanfleet-intake",
            "--nats-url",
            nats_url,
            "--cluster",
            "kubesim",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--config",
            config_path.to_str().unwrap(),
        ]
        .map(String::from)
        .into_iter()
        .chain(pki.server_flags()),
    ))
    .unwrap()
}

/// The scheduler's enqueue path, driven without waiting for the clock.
struct Flood {
    periodic: PeriodicScans,
    /// The first fire's slot; fire `n` is `n` minutes later.
    start: SystemTime,
    kube: kube::Client,
    /// Keeps the pod directory running until the test ends.
    _stop: tokio::sync::watch::Sender<bool>,
    _directory_task: tokio::task::JoinHandle<()>,
}

impl Flood {
    async fn start(
        config: &Config,
        scans: &[PeriodicScan],
        js: &jetstream::Context,
        sim: &kubesim::Kubesim,
    ) -> Self {
        scanfleet_test_harness::secure_bus::with_test_cluster(TopologyConfig::default())
            .ensure(js)
            .await
            .unwrap();
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let kube = support::client(sim).await;
        let (directory, task) =
            PodDirectory::start(config.cluster.clone(), kube.clone(), shutdown, None)
                .await
                .unwrap();
        let intents = support::container_intents(js, config).await;
        let periodic = PeriodicScans::new(
            scans.to_vec(),
            PodDirectories::new([directory]),
            intents,
            std::sync::Arc::new(Default::default()),
        );
        Self {
            periodic,
            start: SystemTime::now(),
            kube,
            _stop: stop,
            _directory_task: task,
        }
    }

    fn fire(&self, n: u64) -> Fire {
        Fire {
            schedule_index: 0,
            schedule: "flood".into(),
            slot: self.start + Duration::from_secs(60 * n),
            at: self.start + Duration::from_secs(60 * n),
            coalesced: 0,
        }
    }

    /// 100 fires over 100 pods: 10,000 offers, of which one per pod queues.
    async fn fire_a_hundred_times(&self) {
        let mut queued = 0;
        let mut coalesced = 0;
        for n in 0..FIRES {
            let r = self.periodic.fire(&self.fire(n)).await;
            assert_eq!(r.containers, PODS, "the selector leaves the bystander out");
            assert_eq!(r.stopped, None);
            queued += r.tally.queued;
            coalesced += r.tally.already_queued + r.tally.duplicate;
        }
        assert_eq!(queued + coalesced, (PODS as u64) * FIRES, "10,000 offers");
        assert_eq!(
            (queued, coalesced),
            (PODS as u64, (PODS as u64) * (FIRES - 1))
        );
    }
}

/// The stream: exactly one message on each of 100 subjects, each subject
/// the dedupe key of one (container, digest, profile).
async fn one_message_per_unit_of_work(
    js: &jetstream::Context,
    kube: kube::Client,
    profile: &ProfileRef,
) {
    let counts = per_subject(js).await;
    assert_eq!(counts.len(), PODS, "{counts:?}");
    assert!(counts.values().all(|&c| c == 1), "{counts:?}");
    let pods: kube::Api<Pod> = kube::Api::namespaced(kube, "apps");
    let cluster = ClusterName::new("kubesim").unwrap();
    for pod in pods.list(&Default::default()).await.unwrap() {
        let name = pod.metadata.name.clone().unwrap();
        if name == "bystander" {
            continue;
        }
        let status = &pod.status.unwrap().container_statuses.unwrap()[0];
        let digest = ImageDigest::from_image_id(&status.image_id).unwrap();
        let key = DedupeKey::new(
            &cluster,
            &ContainerRef::parse_uri(&format!("k8s://apps/{name}/app")).unwrap(),
            &ImageIdentity::Digest(digest),
            profile,
        );
        let subject = format!("scan.intents.low.kubesim.apps.{key}");
        assert_eq!(counts.get(&subject), Some(&1), "{subject}");
    }
}

/// A worker finishes ten scans; the next fire re-queues exactly those.
async fn acked_scans_are_queued_again(js: &jetstream::Context, flood: &Flood) {
    let consumer = js
        .get_stream(INTENTS_STREAM)
        .await
        .unwrap()
        .get_consumer::<jetstream::consumer::pull::Config>(
            &PriorityClass::Low.consumer_name(&ClusterName::new("kubesim").unwrap()),
        )
        .await
        .unwrap();
    let mut batch = consumer.fetch().max_messages(10).messages().await.unwrap();
    let mut acked = 0;
    while let Some(m) = batch.next().await {
        m.unwrap().double_ack().await.unwrap();
        acked += 1;
    }
    assert_eq!(acked, 10);
    let r = flood.periodic.fire(&flood.fire(FIRES)).await;
    assert_eq!(
        (r.tally.queued, r.tally.already_queued),
        (10, (PODS as u64) - 10)
    );
    let counts = per_subject(js).await;
    assert_eq!(counts.len(), PODS);
    assert!(counts.values().all(|&c| c == 1), "{counts:?}");
}
