//! A real Distribution registry's notifications, end to end: the registry
//! (loopback, TLS, htpasswd) is configured to notify intake's webhook
//! route with a shared-secret header; images built by umoci are pushed by
//! skopeo. A manifest push for a digest no pod runs queues one image scan
//! of that digest (the route's policy is `image`); blob pushes queue
//! nothing; pushing the same digest under another tag queues nothing new.

mod support;

use std::time::{Duration, Instant};

use async_nats::jetstream;
use scanfleet_test_harness::registry::{Notifications, TestRegistry, build_layout};
use support::{BusIdentity, Queued, SecureBus, last_sequence, metric, queued_after, start_intake};

const SECRET: &str = "registry-notify-5b1e";

fn config_yaml(dir: &std::path::Path) -> String {
    let secret = support::write_private(dir, "dist.secret", format!("{SECRET}\n").as_bytes());
    format!(
        "webhooks:\n  profile: {{name: container-baseline, version: 1.0.0}}\n  endpoints:\n    distribution: {{secret_file: {secret:?}, header: X-Registry-Secret, unmatched: image}}\n"
    )
}

/// Polls the stream until at least `n` intents follow `before`.
async fn at_least(js: &jetstream::Context, before: u64, n: usize, what: &str) -> Vec<Queued> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = queued_after(js, before).await;
        if found.len() >= n {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_push_of_an_unrun_digest_queues_one_image_scan() {
    let sim =
        kubesim::Kubesim::start_settled(kubesim::Config::demo().unwrap(), Duration::from_secs(30))
            .await
            .expect("kubesim starts with every pod running (tests run as root)");
    let bus = SecureBus::start().await;
    let dir = tempfile::tempdir().unwrap();
    let intake = start_intake(dir.path(), &bus, &sim, &config_yaml(dir.path())).await;
    let webhooks = intake.webhooks();
    let http = webhooks.addr;
    let js = bus.js(BusIdentity::Admin).await;
    let registry = TestRegistry::start(
        "ci",
        "push-pw",
        Some(Notifications {
            url: format!("https://{http}/v1/webhooks/distribution"),
            header: ("X-Registry-Secret".into(), SECRET.into()),
            ca_file: Some(intake.creds.pki.ca_file()),
        }),
    );
    let before = last_sequence(&js).await;
    let layout = dir.path().join("layout");
    build_layout(&layout, "v1", &[("etc/app.conf", b"x=1\n", 0o644)]);
    let digest = registry.push(&layout, "v1", "shop/web");

    let queued = at_least(&js, before, 1, "the image scan intent").await;
    let q = &queued[0];
    let t = q.intent.target.as_ref().unwrap();
    let image = t.registry_image.as_ref().expect("an image scan");
    assert_eq!(
        (
            image.registry.as_str(),
            image.repository.as_str(),
            image.digest.as_str()
        ),
        (registry.host().as_str(), "shop/web", digest.as_str())
    );
    assert!(t.namespace.is_empty() && t.pod.is_empty() && t.container.is_empty());
    assert!(
        q.subject.starts_with("scan.intents.high.kubesim._image."),
        "{}",
        q.subject
    );

    // The same digest pushed again (another repository, another tag): a
    // new manifest push event, the same work. A different image pushed
    // after it marks when the registry (which delivers in order) has
    // delivered everything before.
    registry.push(&layout, "v1", "shop/web-mirror");
    let other = dir.path().join("other");
    build_layout(&other, "v1", &[("etc/app.conf", b"x=2\n", 0o644)]);
    let marker = registry.push(&other, "v1", "shop/other");
    let queued = at_least(&js, before, 2, "the marker image's scan").await;
    let digests: Vec<String> = queued
        .iter()
        .map(|q| {
            let t = q.intent.target.as_ref().unwrap();
            t.registry_image.as_ref().unwrap().digest.clone()
        })
        .collect();
    assert_eq!(
        digests,
        [digest, marker],
        "blob pushes and the second push of the first digest queued nothing"
    );
    assert!(
        metric(&webhooks, "scanfleet_intake_webhook_events_ignored_total").await > 0,
        "blob pushes were delivered and ignored"
    );
}
