//! Results published by the worker's publisher arrive at a real collector
//! intact: inline or through the object store, plain or encrypted. The
//! collector serves TLS and reviews its readers on a kubesim; the test
//! reads as the operator.

use scanfleet_bus::BusIdentity;
use scanfleet_collector::EmbeddedCollector;
use scanfleet_collector::config::Config;
use scanfleet_contracts::v1::GetResultRequest;
use scanfleet_test_harness::callers::access_cluster;
use scanfleet_test_harness::credentials::TestCredentials;
use scanfleet_test_harness::fleet::{SampleStatement, eventually, write_public_key};
use scanfleet_test_harness::nats::NatsServer;
use scanfleet_test_harness::secure_bus::SecureBus;
use scanfleet_trust::{AgeIdentities, ScanStatement, SigningKey};
use scanfleet_worker::{PublishError, ReportLocation, ResultPublisher};

fn statement(scan_id: &str, namespace: &str, report: &[u8]) -> ScanStatement {
    SampleStatement::new(scan_id)
        .namespace(namespace)
        .report(report)
        .build()
}

/// An HDF-shaped report of about `size` bytes.
fn report(size: usize) -> Vec<u8> {
    let filler = "x".repeat(size);
    serde_json::json!({"profiles": [{"name": "container-hardening", "filler": filler}]})
        .to_string()
        .into_bytes()
}

/// A collector and what its readers need.
struct Reading {
    collector: EmbeddedCollector,
    creds: TestCredentials,
    _sim: kubesim::Kubesim,
}

impl Reading {
    /// The stored report of `scan_id`, read as the operator.
    async fn report(&self, scan_id: &str) -> Option<Vec<u8>> {
        let channel = self
            .creds
            .try_channel(self.collector.listening.grpc)
            .await
            .ok()?;
        let auth = scanfleet_edge_access::BearerAuth::new(self.creds.operator()).unwrap();
        scanfleet_contracts::v1::results_client::ResultsClient::with_interceptor(channel, auth)
            .get_report(GetResultRequest {
                scan_id: scan_id.into(),
            })
            .await
            .ok()
            .map(|r| r.into_inner().body)
    }
}

async fn collector(
    nats: &SecureBus,
    dir: &std::path::Path,
    key: &SigningKey,
    identity: Option<&std::path::Path>,
) -> Reading {
    let sim = access_cluster().await;
    let creds = TestCredentials::new(&sim).await;
    let public = write_public_key(dir, key);
    let mut extra: Vec<String> = identity
        .map(|i| vec!["--age-identity".into(), i.display().to_string()])
        .unwrap_or_default();
    extra.extend(nats.auth_args(BusIdentity::Collector));
    extra.extend(creds.service_flags());
    let config = Config::loopback(
        &nats.url(),
        &format!("sqlite://{}", dir.join("r.db").display()),
        &public,
        &extra,
    )
    .map_err(|e| anyhow::anyhow!("{e:?}"))
    .unwrap();
    Reading {
        collector: EmbeddedCollector::start(config).await.unwrap(),
        creds,
        _sim: sim,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_reports_travel_inline_and_large_ones_through_the_object_store() {
    let nats = SecureBus::start().await;
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let collector = collector(&nats, dir.path(), &key, None).await;
    // The worker's own identity: publishing a large report needs no more.
    let client = nats.connect(BusIdentity::Worker).await;
    let publisher = ResultPublisher::new(&client, key, vec![]);

    let small = report(10_000);
    let large = report(3 * 1024 * 1024); // three times the 1 MiB max payload
    let first = publisher
        .publish(&statement("01SMALL", "shop", &small), Some(&small))
        .await
        .unwrap();
    assert_eq!(first.report, ReportLocation::Inline);
    let second = publisher
        .publish(&statement("01LARGE", "shop", &large), Some(&large))
        .await
        .unwrap();
    assert!(
        matches!(second.report, ReportLocation::ObjectStore(_)),
        "{second:?}"
    );

    for (id, body) in [("01SMALL", &small), ("01LARGE", &large)] {
        let collector = &collector;
        eventually(id, || async move { collector.report(id).await.is_some() }).await;
        assert_eq!(&collector.report(id).await.unwrap(), body, "{id}");
    }

    // Publishing the same scan again (a worker that crashed after publishing)
    // is a duplicate, not a second result.
    let again = publisher
        .publish(&statement("01SMALL", "shop", &small), Some(&small))
        .await
        .unwrap();
    assert!(again.duplicate);
    collector.collector.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_results_including_stored_reports_reach_the_collector() {
    let nats = SecureBus::start().await;
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let identity = AgeIdentities::generate();
    let id_path = dir.path().join("collector.agekey");
    std::fs::write(&id_path, identity.to_file_text().as_bytes()).unwrap();
    let collector = collector(&nats, dir.path(), &key, Some(&id_path)).await;
    let client = nats.connect(BusIdentity::Worker).await;
    let publisher = ResultPublisher::new(&client, key, identity.recipients());

    let large = report(2 * 1024 * 1024);
    let published = publisher
        .publish(&statement("01SEALED", "infra", &large), Some(&large))
        .await
        .unwrap();
    let ReportLocation::ObjectStore(name) = &published.report else {
        panic!("expected the object store, got {:?}", published.report);
    };
    // What sits in the bucket is ciphertext, not the report.
    let js = nats.admin().await;
    let bucket = js.get_object_store("SCAN_REPORTS").await.unwrap();
    let mut object = bucket.get(name.as_str()).await.unwrap();
    let mut stored = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut object, &mut stored)
        .await
        .unwrap();
    assert!(stored.starts_with(b"age-encryption.org/v1"));

    eventually("the sealed result", || async {
        collector.report("01SEALED").await.is_some()
    })
    .await;
    assert_eq!(collector.report("01SEALED").await.unwrap(), large);
    collector.collector.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_report_that_is_not_the_bound_one_is_refused_before_publishing() {
    let nats = NatsServer::start();
    let client = async_nats::connect(nats.url()).await.unwrap();
    let publisher = ResultPublisher::new(&client, SigningKey::generate(), vec![]);
    let bound = report(10);
    let err = publisher
        .publish(&statement("01X", "shop", &bound), Some(b"other"))
        .await
        .unwrap_err();
    assert!(matches!(err, PublishError::ReportMismatch { .. }), "{err}");
    let err = publisher
        .publish(&statement("01X", "shop.evil", &bound), Some(&bound))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            PublishError::BadSubjectToken {
                what: "namespace",
                ..
            }
        ),
        "{err}"
    );
}
