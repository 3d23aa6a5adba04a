//! The bus as production runs it (deploy/nats: three servers, every stream
//! and bucket at three replicas), with the shipped TLS and identities.
//! Killing the intents stream's leader (SIGKILL) in the middle of a flood
//! and restarting it loses no intent, dead-letters nothing and persists
//! every scan exactly once; intake, the worker processes and the collector
//! fail over and reconnect by themselves, without a restart.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use scanfleet_bus::TopologyConfig;
use scanfleet_bus::topology::{DLQ_STREAM, INTENTS_STREAM, RESULTS_STREAM};
use scanfleet_test_harness::secure_bus::SecureBus;
use support::{Fleet, eventually};

const TARGETS: [&str; 3] = [
    "k8s://apps/web-misconfigured/web",
    "k8s://apps/web-hardened/web",
    "k8s://apps/nonroot-worker/worker",
];

async fn leader_of(fleet: &Fleet, stream: &str) -> String {
    let mut s = fleet.js.get_stream(stream).await.unwrap();
    let info = s.info().await.unwrap();
    let cluster = info.cluster.clone().expect("a clustered stream");
    assert_eq!(
        info.config.num_replicas, 3,
        "{stream} runs at three replicas"
    );
    cluster.leader.expect("the stream has a leader")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_intents_leader_mid_flood_loses_nothing() {
    let topology = TopologyConfig {
        replicas: 3,
        ..support::topology()
    };
    let bus = SecureBus::cluster(3, topology).await;
    let mut fleet = Fleet::start_on(bus).await;
    let workers = [fleet.worker("w1", 4), fleet.worker("w2", 4)];
    let mut ids = BTreeSet::new();
    for i in 0..12 {
        ids.insert(fleet.submit_retrying(TARGETS[i % TARGETS.len()]).await);
    }
    let leader = leader_of(&fleet, INTENTS_STREAM).await;
    fleet.nats.member(&leader).kill();
    eventually(
        "another member leads the intents",
        Duration::from_secs(30),
        || async {
            fleet
                .js
                .get_stream(INTENTS_STREAM)
                .await
                .ok()
                .and_then(|s| s.cached_info().cluster.clone())
                .is_some_and(|c| c.leader.is_some_and(|l| l != leader))
        },
    )
    .await;
    // Submitted while a member is down: the other two are a quorum.
    for i in 0..12 {
        ids.insert(fleet.submit_retrying(TARGETS[i % TARGETS.len()]).await);
    }
    fleet.nats.member(&leader).restart();
    fleet
        .nats
        .member(&leader)
        .wait_healthy(Duration::from_secs(60));
    for i in 0..6 {
        ids.insert(fleet.submit_retrying(TARGETS[i % TARGETS.len()]).await);
    }
    let results = fleet
        .wait_results(
            ids.len(),
            Duration::from_secs(180),
            &workers.iter().collect::<Vec<_>>(),
        )
        .await;
    let got: BTreeSet<String> = results.iter().map(|r| r.scan_id.clone()).collect();
    assert_eq!(got, ids, "every scan, before, during and after, once");
    assert_eq!(results.len(), ids.len(), "no scan stored twice");
    let dead = fleet.messages(DLQ_STREAM).await;
    assert_eq!(dead, 0, "nothing dead-lettered");
    eventually("the intents drained", Duration::from_secs(30), || async {
        fleet.messages(INTENTS_STREAM).await == 0
    })
    .await;
    // The results stream kept its replicas through it all.
    let _ = leader_of(&fleet, RESULTS_STREAM).await;
    for worker in &workers {
        let log = worker.logs();
        assert!(!log.contains("panicked"), "{log}");
    }
    drop(workers);
    fleet.stop().await;
}
