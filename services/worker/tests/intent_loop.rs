//! The intent loop's bus mechanics against a real nats-server and a real
//! collector. The scanner is a small in-memory double (this is not the
//! end-to-end test; that one scans kubesim pods): its behaviour is chosen by
//! the pod name so each test can provoke one path.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prost::Message as _;
use scanfleet_bus::topology::{DLQ_STREAM, INTENTS_STREAM};
use scanfleet_bus::{
    IntentQueue, OutgoingIntent, ScanState, ScanStatusBook, TopologyConfig, forward_dead_letters,
};
use scanfleet_collector::EmbeddedCollector;
use scanfleet_collector::config::Config;
use scanfleet_contracts::v1::{ListResultsRequest, ScanIntent, ScanOutcome as WireOutcome};
use scanfleet_scan_intents::{
    Approach, ClusterName, ContainerRef, ImageSpec, Intent, Occasion, ProfileName, ProfilePin,
    ProfileRef, ScanId, SplitMix64, Trigger, intent_wire, route,
};
use scanfleet_test_harness::callers::access_cluster;
use scanfleet_test_harness::credentials::TestCredentials;
use scanfleet_test_harness::fleet::{SampleStatement, eventually, write_public_key};
use scanfleet_test_harness::nats::NatsServer;
use scanfleet_trust::{ScanStatement, SigningKey};
use scanfleet_worker::{
    IntentLoop, Lane, LoopConfig, ResultPublisher, ScanFailure, ScanOutput, Scanner, WorkerMetrics,
};
use sha2::{Digest, Sha256};

#[derive(Default)]
struct DoubleScanner {
    running: AtomicUsize,
    max_running: AtomicUsize,
    calls: Mutex<HashMap<String, usize>>,
}

/// The scan id a test calls `tag`: a valid ULID, the same every time.
fn id(tag: &str) -> String {
    let seed = u64::from_be_bytes(Sha256::digest(tag.as_bytes())[..8].try_into().unwrap());
    ScanId::generate(
        std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        &mut SplitMix64::new(seed),
    )
    .to_string()
}

fn statement(intent: &Intent, failed: bool, report: Option<&[u8]>) -> ScanStatement {
    let t = intent
        .target
        .container()
        .expect("these tests queue container scans");
    let mut sample = SampleStatement::new(&intent.id.to_string())
        .target(
            intent.cluster.as_str(),
            t.namespace.as_str(),
            t.pod.as_str(),
            t.container.as_str(),
        )
        .digest_hex(&hex::encode(Sha256::digest(t.pod.as_str().as_bytes())));
    if failed {
        sample = sample.failed("pod not found");
    }
    if let Some(r) = report {
        sample = sample.report(r);
    }
    sample.build()
}

impl Scanner for DoubleScanner {
    async fn scan(&self, intent: &Intent) -> Result<ScanOutput, ScanFailure> {
        let pod = intent
            .target
            .container()
            .expect("these tests queue container scans")
            .pod
            .to_string();
        let attempt = {
            let mut calls = self.calls.lock().unwrap();
            let n = calls.entry(intent.id.to_string()).or_default();
            *n += 1;
            *n
        };
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        let scan_time = if pod.starts_with("slow") {
            Duration::from_millis(3000)
        } else if pod.starts_with("drain") {
            Duration::from_millis(1500)
        } else if pod.starts_with("stuck") {
            Duration::from_secs(60)
        } else {
            Duration::from_millis(100)
        };
        tokio::time::sleep(scan_time).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        if pod.starts_with("gone") {
            return Err(ScanFailure::Permanent {
                reason: format!("pod shop/{pod} not found"),
                failed_result: Some(Box::new(statement(intent, true, None))),
            });
        }
        if pod.starts_with("flaky") && attempt == 1 {
            return Err(ScanFailure::Transient {
                reason: "429 Too Many Requests".into(),
                retry_after: Some(Duration::from_millis(200)),
            });
        }
        let report = format!("{{\"scan\":\"{}\"}}", intent.id).into_bytes();
        Ok(ScanOutput {
            statement: statement(intent, false, Some(&report)),
            report: Some(report),
        })
    }
}

impl DoubleScanner {
    fn calls(&self, id: &str) -> usize {
        self.calls.lock().unwrap().get(id).copied().unwrap_or(0)
    }
}

struct Bench {
    nats: NatsServer,
    _dir: tempfile::TempDir,
    collector: EmbeddedCollector,
    client: async_nats::Client,
    js: async_nats::jetstream::Context,
    status: ScanStatusBook,
    key_pem: String,
    creds: TestCredentials,
    _sim: kubesim::Kubesim,
}

async fn bench() -> Bench {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let public = write_public_key(dir.path(), &key);
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client.clone());
    // Short leases so the tests exercise renewal and redelivery quickly.
    TopologyConfig {
        max_deliver: 3,
        backoff: vec![Duration::from_secs(1)],
        clusters: vec![ClusterName::new("kubesim").unwrap()],
        ..Default::default()
    }
    .ensure(&js)
    .await
    .unwrap();
    // The collector serves TLS and reviews its readers, as in production.
    let sim = access_cluster().await;
    let creds = TestCredentials::new(&sim).await;
    let config = Config::loopback(
        &nats.url(),
        &format!("sqlite://{}", dir.path().join("r.db").display()),
        &public,
        &creds.service_flags(),
    )
    .map_err(|e| format!("{e:?}"))
    .unwrap();
    let collector = EmbeddedCollector::start(config).await.unwrap();
    let status = ScanStatusBook::open(&js).await.unwrap();
    Bench {
        status,
        nats,
        _dir: dir,
        collector,
        client,
        js,
        key_pem: key.to_pkcs8_pem().to_string(),
        creds,
        _sim: sim,
    }
}

impl Bench {
    async fn submit(&self, id: &str, pod: &str) {
        let intent = Intent {
            id: ScanId::parse(id).unwrap(),
            cluster: ClusterName::new("kubesim").unwrap(),
            target: ContainerRef::parse_uri(&format!("k8s://shop/{pod}/app"))
                .unwrap()
                .into(),
            image: ImageSpec::default(),
            profile: ProfileRef {
                name: ProfileName::new("container-baseline").unwrap(),
                pin: ProfilePin::version("1.0.0").unwrap(),
            },
            inputs: Default::default(),
            approach: Approach::Auto,
            threshold: None,
            trigger: Trigger::Api {
                principal: "test".into(),
            },
            requested_at: std::time::SystemTime::now(),
            deadline: None,
        };
        let routing = route(&intent, &Occasion::ApiRequest(id));
        IntentQueue::new(self.js.clone())
            .enqueue(OutgoingIntent {
                subject: &routing.subject,
                msg_id: &routing.msg_id,
                scan_id: id,
                traceparent: &scanfleet_bus::trace_headers::new_traceparent(),
                payload: intent_wire::encode(&intent).into(),
            })
            .await
            .unwrap();
    }

    fn worker(
        &self,
        scanner: Arc<DoubleScanner>,
        metrics: Arc<WorkerMetrics>,
        config: LoopConfig,
    ) -> IntentLoop<DoubleScanner> {
        let key = SigningKey::from_pkcs8_pem(&self.key_pem).unwrap();
        IntentLoop {
            client: self.client.clone(),
            js: self.js.clone(),
            lanes: vec![Lane {
                cluster: ClusterName::new("kubesim").unwrap(),
                scanner,
            }],
            publisher: Arc::new(ResultPublisher::new(&self.client, key, vec![])),
            metrics,
            status: Some(self.status.clone()),
            config,
        }
    }

    async fn results(&self) -> Vec<scanfleet_contracts::v1::ScanResult> {
        let mut client = self.creds.results(self.collector.listening.grpc).await;
        client
            .list(ListResultsRequest {
                page_size: 500,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .results
    }

    async fn messages(&self, stream: &str) -> u64 {
        let mut s = self.js.get_stream(stream).await.unwrap();
        s.info().await.unwrap().state.messages
    }
}

fn fast() -> LoopConfig {
    LoopConfig {
        concurrency: 3,
        progress_interval: Duration::from_millis(300),
        drain_grace: Duration::from_secs(10),
        retry_backoff: vec![Duration::from_millis(200)],
        idle_poll: Duration::from_millis(200),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_intent_yields_one_result_within_the_concurrency_bound() {
    let b = bench().await;
    let scanner = Arc::new(DoubleScanner::default());
    let metrics = Arc::new(WorkerMetrics::default());
    let (stop, rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(b.worker(scanner.clone(), metrics.clone(), fast()).run(rx));
    for i in 0..12 {
        b.submit(&id(&format!("OK{i:02}")), &format!("ok-{i}"))
            .await;
    }
    eventually("12 results", || async { b.results().await.len() == 12 }).await;
    eventually("the queue to empty", || async {
        b.messages(INTENTS_STREAM).await == 0
    })
    .await;
    assert!(scanner.max_running.load(Ordering::SeqCst) <= 3);
    assert_eq!(metrics.completed.load(Ordering::SeqCst), 12);
    for i in 0..12 {
        assert_eq!(scanner.calls(&id(&format!("OK{i:02}"))), 1, "scanned once");
    }
    assert!(
        metrics
            .render()
            .contains("scanfleet_worker_results_total{status=\"completed\"} 12")
    );
    for i in 0..12 {
        let record = b
            .status
            .get(&id(&format!("OK{i:02}")))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.state, ScanState::Completed);
    }
    stop.send(true).unwrap();
    worker.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_longer_than_the_ack_wait_keeps_its_lease() {
    let b = bench().await;
    let scanner = Arc::new(DoubleScanner::default());
    let metrics = Arc::new(WorkerMetrics::default());
    let (stop, rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(b.worker(scanner.clone(), metrics.clone(), fast()).run(rx));
    b.submit(&id("SLOW"), "slow-1").await; // 3 s scan, 1 s ack wait
    eventually("the slow result", || async { b.results().await.len() == 1 }).await;
    assert_eq!(
        scanner.calls(&id("SLOW")),
        1,
        "never redelivered while running"
    );
    assert_eq!(metrics.redeliveries.load(Ordering::SeqCst), 0);
    stop.send(true).unwrap();
    worker.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_failures_publish_a_failed_result_and_dead_letter_the_intent() {
    let b = bench().await;
    let (stop, rx) = tokio::sync::watch::channel(false);
    let forwarder = tokio::spawn(forward_dead_letters(b.js.clone(), None, {
        let mut rx = rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    }));
    let scanner = Arc::new(DoubleScanner::default());
    let metrics = Arc::new(WorkerMetrics::default());
    let worker = tokio::spawn(b.worker(scanner.clone(), metrics.clone(), fast()).run(rx));
    b.submit(&id("GONE"), "gone-1").await;
    eventually("the failed result", || async {
        b.results()
            .await
            .iter()
            .any(|r| r.scan_id == id("GONE") && r.outcome == WireOutcome::Failed as i32)
    })
    .await;
    eventually("the dead letter", || async {
        b.messages(DLQ_STREAM).await == 1
    })
    .await;
    assert_eq!(b.messages(INTENTS_STREAM).await, 0);
    let dead =
        b.js.get_stream(DLQ_STREAM)
            .await
            .unwrap()
            .get_raw_message(1)
            .await
            .unwrap();
    assert_eq!(
        dead.headers
            .get("Scanfleet-Dead-Letter-Detail")
            .unwrap()
            .as_str(),
        "pod shop/gone-1 not found"
    );
    assert_eq!(ScanIntent::decode(dead.payload).unwrap().id, id("GONE"));
    assert_eq!(scanner.calls(&id("GONE")), 1, "not retried");
    let record = b.status.get(&id("GONE")).await.unwrap().unwrap();
    assert_eq!(record.state, ScanState::Failed);
    assert_eq!(record.message, "pod shop/gone-1 not found");
    let record = b.status.get(&id("GONE")).await.unwrap().unwrap();
    assert_eq!(record.state, ScanState::Failed);
    assert_eq!(record.message, "pod shop/gone-1 not found");
    stop.send(true).unwrap();
    worker.await.unwrap().unwrap();
    forwarder.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_after_the_requested_delay() {
    let b = bench().await;
    let scanner = Arc::new(DoubleScanner::default());
    let metrics = Arc::new(WorkerMetrics::default());
    let (stop, rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(b.worker(scanner.clone(), metrics.clone(), fast()).run(rx));
    b.submit(&id("FLAKY"), "flaky-1").await;
    eventually("the eventual result", || async {
        b.results().await.len() == 1
    })
    .await;
    assert_eq!(scanner.calls(&id("FLAKY")), 2);
    assert_eq!(metrics.retried.load(Ordering::SeqCst), 1);
    assert_eq!(metrics.redeliveries.load(Ordering::SeqCst), 1);
    stop.send(true).unwrap();
    worker.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_in_flight_scans_and_returns_the_rest() {
    let b = bench().await;
    // Two scans that finish inside the grace period.
    let scanner = Arc::new(DoubleScanner::default());
    let metrics = Arc::new(WorkerMetrics::default());
    let (stop, rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(b.worker(scanner.clone(), metrics.clone(), fast()).run(rx));
    b.submit(&id("DRAIN1"), "drain-1").await;
    b.submit(&id("DRAIN2"), "drain-2").await;
    eventually("both scans running", || async {
        scanner.running.load(Ordering::SeqCst) == 2
    })
    .await;
    stop.send(true).unwrap();
    worker.await.unwrap().unwrap();
    assert_eq!(
        metrics.completed.load(Ordering::SeqCst),
        2,
        "finished, not abandoned"
    );
    eventually("both results", || async { b.results().await.len() == 2 }).await;
    assert_eq!(b.messages(INTENTS_STREAM).await, 0);

    // A scan that cannot finish within the grace period goes back at once.
    let metrics = Arc::new(WorkerMetrics::default());
    let (stop, rx) = tokio::sync::watch::channel(false);
    let config = LoopConfig {
        drain_grace: Duration::from_millis(300),
        ..fast()
    };
    let worker = tokio::spawn(b.worker(scanner.clone(), metrics.clone(), config).run(rx));
    b.submit(&id("STUCK"), "stuck-1").await;
    eventually("the stuck scan running", || async {
        scanner.calls(&id("STUCK")) == 1
    })
    .await;
    stop.send(true).unwrap();
    worker.await.unwrap().unwrap();
    assert_eq!(metrics.drained.load(Ordering::SeqCst), 1);
    assert_eq!(
        b.messages(INTENTS_STREAM).await,
        1,
        "the intent is not lost"
    );
    // The next worker gets it at once: within 300 ms, while an ack-wait
    // expiry (1 s after the last lease renewal) could not have happened yet.
    let consumer: async_nats::jetstream::consumer::PullConsumer =
        b.js.get_stream(INTENTS_STREAM)
            .await
            .unwrap()
            .get_consumer("workers-high-kubesim")
            .await
            .unwrap();
    let mut batch = consumer
        .batch()
        .max_messages(1)
        .expires(Duration::from_millis(300))
        .messages()
        .await
        .unwrap();
    let again = futures::StreamExt::next(&mut batch)
        .await
        .expect("redelivered at once")
        .unwrap();
    assert_eq!(again.info().unwrap().delivered, 2);
    assert_eq!(
        ScanIntent::decode(again.payload.clone()).unwrap().id,
        id("STUCK")
    );
    again.double_ack().await.unwrap();
    let _ = &b.nats;
}
