//! The scheduler loop itself, not just its `fire()`: on a manual clock, the
//! real loop (real nats-server, kubesim and pod cache) fires on its cadence,
//! coalesces slots it slept through into one fire, never queues more than
//! one intent per unit of work, and stops on shutdown.

mod support;

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use async_nats::jetstream;
use clap::Parser;
use scanfleet_bus::TopologyConfig;
use scanfleet_bus::topology::INTENTS_STREAM;
use scanfleet_intake::config::{Args, Config};
use scanfleet_intake::metrics::Metrics;
use scanfleet_intake::periodic_scans::{ManualTime, PeriodicScans};
use scanfleet_intake::pod_directory::{PodDirectories, PodDirectory};
use scanfleet_test_harness::fleet::eventually;
use scanfleet_test_harness::nats::NatsServer;

/// Every minute, no jitter, over the demo's two `app=web` pods.
const SCHEDULE: &str = "scheduler:\n  seed: 1\n  schedules:\n    - name: web\n      namespace: apps\n      selector: app=web\n      interval_secs: 60\n      jitter_secs: 0\n      profile: {name: container-baseline, version: 1.0.0}\n";

async fn queued(js: &jetstream::Context) -> u64 {
    js.get_stream(INTENTS_STREAM)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .state
        .messages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loop_fires_on_its_cadence_coalesces_and_stops() {
    let sim =
        kubesim::Kubesim::start_settled(kubesim::Config::demo().unwrap(), Duration::from_secs(30))
            .await
            .expect("kubesim starts (tests run as root)");
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig =
        support::write_private(dir.path(), "kubeconfig", sim.admin_kubeconfig().as_bytes());
    let config_path = dir.path().join("intake.yaml");
    std::fs::write(&config_path, SCHEDULE).unwrap();
    let config = Config::from_args(Args::parse_from([
        "scanfleet-intake",
        "--nats-url",
        &nats.url(),
        "--cluster",
        "kubesim",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--config",
        config_path.to_str().unwrap(),
        // Only the scheduler is built from this config; nothing listens.
        "--insecure-plaintext",
    ]))
    .unwrap();
    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    TopologyConfig::default().ensure(&js).await.unwrap();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let (directory, _watch) = PodDirectory::start(
        config.cluster.clone(),
        support::client(&sim).await,
        shutdown.clone(),
        None,
    )
    .await
    .unwrap();
    let metrics = Arc::new(Metrics::default());
    let periodic = PeriodicScans::new(
        config.scheduler.clone().unwrap().scans,
        PodDirectories::new([directory]),
        support::container_intents(&js, &config).await,
        metrics.clone(),
    );
    let scheduler = config.scheduler.clone().unwrap();
    let start = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let first = scheduler.scans[0]
        .schedule
        .next_fire(start, scheduler.seed)
        .unwrap()
        .at;
    let clock = Arc::new(ManualTime::new(start));
    let looping = {
        let clock = clock.clone();
        tokio::spawn(async move { periodic.run_on(scheduler.seed, shutdown, &*clock).await })
    };

    // The first fire comes at its slot; then one fire a minute, each exactly
    // one (a double fire would overshoot the count). The two containers are
    // queued once and then coalesced (no worker consumes them).
    eventually("the loop to sleep until its first slot", || async {
        clock.sleepers() > 0
    })
    .await;
    clock.advance(first.duration_since(start).unwrap());
    let offers =
        || metrics.schedule_intents_queued.get() + metrics.schedule_intents_coalesced.get();
    for minute in 1..=5u64 {
        if minute > 1 {
            clock.advance(Duration::from_secs(60));
        }
        eventually(&format!("fire {minute}"), || async {
            metrics.schedule_fires.get() == minute && offers() == 2 * minute
        })
        .await;
        assert_eq!(
            queued(&js).await,
            2,
            "one intent per container after fire {minute}"
        );
    }
    assert_eq!(metrics.schedule_intents_queued.get(), 2);
    assert_eq!(metrics.schedule_intents_coalesced.get(), 8);
    // An hour asleep is one fire, not sixty.
    clock.advance(Duration::from_secs(3600));
    eventually("the catch-up fire", || async {
        metrics.schedule_fires.get() == 6 && offers() == 12
    })
    .await;
    assert_eq!(queued(&js).await, 2);
    // Shutdown ends the loop while it sleeps until the next slot.
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), looping)
        .await
        .expect("the loop stops on shutdown")
        .unwrap();
    assert_eq!(
        metrics.schedule_fires.get(),
        6,
        "nothing fired after shutdown"
    );
    sim.shutdown().await;
}
