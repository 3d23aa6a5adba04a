//! Shared set-up of the webhook, push-watch and flood tests: kubesim,
//! nats-server and an embedded intake with a YAML config serving TLS, an
//! HTTPS client for its webhook edge, and readers of what landed on the
//! intent stream.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use clap::Parser;
use k8s_openapi::api::core::v1::Pod;
use prost::Message as _;
pub use scanfleet_bus::BusIdentity;
use scanfleet_bus::topology::INTENTS_STREAM;
use scanfleet_contracts::v1::ScanIntent;
use scanfleet_intake::config::{Args, Config};
use scanfleet_test_harness::credentials::TestCredentials;
use scanfleet_test_harness::pki::ClientTls;
pub use scanfleet_test_harness::secure_bus::SecureBus;

/// Writes `content` to `dir/name` with mode 0600.
pub fn write_private(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    use std::io::Write;
    let path = dir.join(name);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .unwrap();
    f.write_all(content).unwrap();
    path
}

/// The intents `config`'s intake queues on `js`, built as its wiring builds
/// them, for tests that drive the scheduler without a whole intake.
pub async fn container_intents(
    js: &jetstream::Context,
    config: &Config,
) -> scanfleet_intake::container_intents::ContainerIntents {
    scanfleet_intake::container_intents::ContainerIntents::new(
        scanfleet_intake::queueing::IntentQueueing::new(
            scanfleet_bus::IntentQueue::new(js.clone()),
            scanfleet_bus::ScanStatusBook::open(js).await.unwrap(),
        ),
        config.cluster.clone(),
        config.default_timeout,
    )
}

/// An embedded intake serving TLS, and the credentials to call it.
pub struct Intake {
    /// The running intake.
    pub embedded: scanfleet_intake::EmbeddedIntake,
    /// Its PKI, reviewer and operator.
    pub creds: TestCredentials,
}

impl std::ops::Deref for Intake {
    type Target = scanfleet_intake::EmbeddedIntake;
    fn deref(&self) -> &Self::Target {
        &self.embedded
    }
}

impl Intake {
    /// The webhook edge (HTTPS).
    pub fn webhooks(&self) -> HttpEdge {
        HttpEdge {
            addr: self.embedded.http.expect("--http-listen"),
            tls: self.creds.tls(),
        }
    }

    /// Stops it.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.embedded.shutdown().await
    }
}

/// Where an HTTPS edge listens, and how to reach it.
#[derive(Clone)]
pub struct HttpEdge {
    /// The address.
    pub addr: SocketAddr,
    /// Client TLS trusting its certificate.
    pub tls: ClientTls,
}

/// Starts intake against `bus` (as the intake identity) and `sim` with `yaml` as its config file,
/// serving TLS; it reviews callers with its kubeconfig (the admin's, which
/// also lists pods).
pub async fn start_intake(
    dir: &Path,
    bus: &SecureBus,
    sim: &kubesim::Kubesim,
    yaml: &str,
) -> Intake {
    let creds = TestCredentials::new(sim).await;
    let kubeconfig = dir.join("intake.kubeconfig");
    if !kubeconfig.exists() {
        write_private(dir, "intake.kubeconfig", sim.admin_kubeconfig().as_bytes());
    }
    let config_path = dir.join("intake.yaml");
    std::fs::write(&config_path, yaml).unwrap();
    let mut argv = vec!["scanfleet-intake".to_owned()];
    argv.extend(bus.args(BusIdentity::Intake));
    argv.extend(
        [
            "--cluster",
            "kubesim",
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--config",
            config_path.to_str().unwrap(),
        ]
        .map(String::from),
    );
    argv.extend(creds.service_flags());
    let config = Config::from_args(Args::parse_from(argv))
        .unwrap_or_else(|e| panic!("config refused: {e:?}"));
    let embedded = scanfleet_intake::EmbeddedIntake::start(config)
        .await
        .expect("intake serves");
    Intake { embedded, creds }
}

pub use scanfleet_test_harness::https::HttpResponse;

/// One HTTPS/1.1 request on a fresh connection (`Connection: close`).
pub async fn http(
    edge: &HttpEdge,
    method: &str,
    path: &str,
    headers: &[(String, Vec<u8>)],
    body: &[u8],
) -> HttpResponse {
    scanfleet_test_harness::https::https_request(
        edge.addr, &edge.tls, method, path, None, headers, body,
    )
    .await
    .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// A Distribution notification of one manifest push of `digest` (to
/// `registry.local:5000/shop/late:2.0`), with event id `id`.
pub fn distribution_push(digest: &str, id: &str) -> Vec<u8> {
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

/// The digest kubesim will report for image `i` of `fixture`, computed by
/// its own image builder before any pod runs it.
pub fn fixture_image_digest(fixture: &kubesim::fixture::Fixture, i: usize) -> String {
    let scratch = tempfile::tempdir().unwrap();
    let applets = kubesim::image::applets().expect("busybox applets");
    kubesim::image::build(&fixture.images[i], &scratch.path().join("image"), &applets)
        .unwrap()
        .digest
}

/// `pod/container` → image digest of every running container in `apps`.
pub async fn running_digests(sim: &kubesim::Kubesim) -> BTreeMap<String, String> {
    let client = client(sim).await;
    let pods: kube::Api<Pod> = kube::Api::namespaced(client, "apps");
    let mut out = BTreeMap::new();
    for pod in pods.list(&Default::default()).await.unwrap() {
        let name = pod.metadata.name.clone().unwrap();
        for s in pod
            .status
            .and_then(|s| s.container_statuses)
            .unwrap_or_default()
        {
            let digest = s.image_id.rsplit_once('@').unwrap().1.to_owned();
            out.insert(format!("{name}/{}", s.name), digest);
        }
    }
    out
}

/// A kube client with kubesim's admin identity.
pub async fn client(sim: &kubesim::Kubesim) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&sim.admin_kubeconfig()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

/// A message on the intent stream.
#[derive(Debug, Clone)]
pub struct Queued {
    pub subject: String,
    pub msg_id: String,
    pub intent: ScanIntent,
}

impl Queued {
    /// `pod/container`.
    pub fn target(&self) -> String {
        let t = self.intent.target.as_ref().unwrap();
        format!("{}/{}", t.pod, t.container)
    }
}

/// Every message on the intent stream after sequence `after`.
pub async fn queued_after(js: &jetstream::Context, after: u64) -> Vec<Queued> {
    let mut stream = js.get_stream(INTENTS_STREAM).await.unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    let mut out = Vec::new();
    for seq in after + 1..=last {
        let m = stream.get_raw_message(seq).await.unwrap();
        let msg_id = m
            .headers
            .get("Nats-Msg-Id")
            .map(|v| v.to_string())
            .unwrap_or_default();
        out.push(Queued {
            subject: m.subject.to_string(),
            msg_id,
            intent: ScanIntent::decode(m.payload).unwrap(),
        });
    }
    out
}

/// The stream's last sequence.
pub async fn last_sequence(js: &jetstream::Context) -> u64 {
    let mut stream = js.get_stream(INTENTS_STREAM).await.unwrap();
    stream.info().await.unwrap().state.last_sequence
}

/// One sample from intake's `/metrics`.
pub async fn metric(edge: &HttpEdge, series: &str) -> u64 {
    let r = self::http(edge, "GET", "/metrics", &[], b"").await;
    assert_eq!(r.status, 200);
    scanfleet_intake::metrics::Metrics::sample(&r.text(), series)
        .unwrap_or_else(|| panic!("no {series} in {}", r.text()))
}

/// Polls `check` every 25 ms until it holds, failing after `limit`.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
