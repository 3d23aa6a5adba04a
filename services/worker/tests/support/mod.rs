//! A whole fleet for end-to-end tests: a real nats-server, kubesim with the
//! demo workloads, the collector and intake in-process (SQLite), and worker
//! *processes* (the real binary, so they can be SIGKILLed and SIGTERMed).
//! Every listener serves TLS from one throwaway CA; intake and the
//! collector review callers on the kubesim, and the fleet's clients call
//! as its operator (or as an identity a test makes).

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use clap::Parser;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Api;
use kube::api::ListParams;
pub use scanfleet_bus::BusIdentity;
use scanfleet_bus::TopologyConfig;
use scanfleet_contracts::v1::intake_client::IntakeClient;
use scanfleet_contracts::v1::target_selector::Selector;
use scanfleet_contracts::v1::{
    ListResultsRequest, ProfileRef, ScanResult, SubmitRequest, TargetSelector, profile_ref::Pin,
};
use scanfleet_edge_access::Authenticated;
use scanfleet_kube_access::ClusterAccess;
use scanfleet_test_harness::credentials::TestCredentials;
use scanfleet_test_harness::fleet::write_public_key;
use scanfleet_test_harness::https::https_get;
use scanfleet_test_harness::pki::ClientTls;
pub use scanfleet_test_harness::secure_bus::SecureBus;
use scanfleet_test_harness::{repo_root, write_private};
use scanfleet_trust::SigningKey;

/// The workers' YAML: short leases and polls, a given sweeper period.
fn worker_yaml(sweep_secs: u64) -> String {
    format!(
        "progress_interval_ms: 500\nidle_poll_ms: 300\nsweep_interval_secs: {sweep_secs}\ndrain_grace_secs: 30\n"
    )
}

/// A request to scan `uri` with container-baseline 1.0.0.
pub fn submit_request(uri: &str) -> SubmitRequest {
    SubmitRequest {
        target: Some(TargetSelector {
            cluster: String::new(),
            selector: Some(Selector::Uri(uri.into())),
        }),
        profile: Some(ProfileRef {
            name: "container-baseline".into(),
            pin: Some(Pin::Version("1.0.0".into())),
        }),
        ..Default::default()
    }
}

pub struct Fleet {
    pub nats: SecureBus,
    pub sim: kubesim::Kubesim,
    pub admin: ClusterAccess,
    pub collector: scanfleet_collector::EmbeddedCollector,
    pub intake: scanfleet_intake::EmbeddedIntake,
    pub js: jetstream::Context,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    pub key_path: PathBuf,
    pub worker_config: PathBuf,
    pub creds: TestCredentials,
    /// kubesim's audit log: one JSON line per API request.
    pub audit_log: PathBuf,
}

/// Short leases so crashes are redelivered in seconds, not minutes.
pub fn topology() -> TopologyConfig {
    TopologyConfig {
        max_deliver: 4,
        backoff: vec![Duration::from_secs(3)],
        ..Default::default()
    }
}

impl Fleet {
    pub async fn start() -> Self {
        Self::start_with(|_| Vec::new()).await
    }

    /// The fleet on a bus the test set up (e.g. a three-node cluster).
    pub async fn start_on(nats: SecureBus) -> Self {
        Self::start_on_with(nats, |_| Vec::new()).await
    }

    /// [`Fleet::start`] with intake given the extra flags `intake_flags`
    /// returns for the fleet's directory (e.g. a config file written there).
    pub async fn start_with(intake_flags: impl FnOnce(&std::path::Path) -> Vec<String>) -> Self {
        Self::start_with_images(intake_flags, Vec::new()).await
    }

    /// [`Fleet::start_with`] with kubesim serving `images` besides the
    /// demo fixture's (for pods a test creates later).
    pub async fn start_with_images(
        intake_flags: impl FnOnce(&std::path::Path) -> Vec<String>,
        images: Vec<kubesim::image::ImageSpec>,
    ) -> Self {
        let mut config = kubesim::Config::demo().unwrap();
        config.fixture.images.extend(images);
        Self::start_on_with_cluster(
            SecureBus::start_with(topology()).await,
            intake_flags,
            config,
        )
        .await
    }

    /// The fleet on `nats`, intake given the extra flags `intake_flags`
    /// returns (e.g. a config file with a cluster registry).
    pub async fn start_on_with(
        nats: SecureBus,
        intake_flags: impl FnOnce(&std::path::Path) -> Vec<String>,
    ) -> Self {
        Self::start_on_with_cluster(nats, intake_flags, kubesim::Config::demo().unwrap()).await
    }

    async fn start_on_with_cluster(
        nats: SecureBus,
        intake_flags: impl FnOnce(&std::path::Path) -> Vec<String>,
        cluster: kubesim::Config,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let js = nats.js(BusIdentity::Admin).await;

        let audit_log = dir.path().join("kubesim-audit.jsonl");
        let sim = kubesim::Kubesim::start_settled(
            kubesim::Config {
                audit_log: Some(audit_log.clone()),
                ..cluster
            },
            Duration::from_secs(30),
        )
        .await
        .expect("kubesim starts with every pod running (tests run as root)");
        let admin = ClusterAccess::from_kubeconfig(&sim.admin_kubeconfig(), "admin")
            .await
            .unwrap();
        // The worker binary needs its identity in a file: 0600, private dir.
        let kubeconfig = dir.path().join("worker.kubeconfig");
        write_private(&kubeconfig, sim.admin_kubeconfig().as_bytes());

        let key = SigningKey::generate();
        let key_path = dir.path().join("signing.pem");
        write_private(&key_path, key.to_pkcs8_pem().as_bytes());
        let public = write_public_key(dir.path(), &key);
        let creds = TestCredentials::new(&sim).await;
        let collector_config = scanfleet_collector::config::Config::loopback(
            &nats.url(),
            &format!("sqlite://{}", dir.path().join("results.db").display()),
            &public,
            &[
                nats.auth_args(BusIdentity::Collector),
                creds.service_flags(),
            ]
            .concat(),
        )
        .map_err(|e| format!("{e:?}"))
        .unwrap();
        let collector = scanfleet_collector::EmbeddedCollector::start(collector_config)
            .await
            .unwrap();
        let intake_config = scanfleet_intake::config::Config::from_args(
            scanfleet_intake::config::Args::parse_from(
                [
                    vec!["scanfleet-intake".to_owned()],
                    nats.args(BusIdentity::Intake),
                    ["--cluster", "kubesim", "--grpc-listen", "127.0.0.1:0"]
                        .map(String::from)
                        .to_vec(),
                    creds.service_flags(),
                    intake_flags(dir.path()),
                ]
                .concat(),
            ),
        )
        .map_err(|e| format!("{e:?}"))
        .unwrap();
        let intake = scanfleet_intake::EmbeddedIntake::start(intake_config)
            .await
            .unwrap();
        let worker_config = dir.path().join("worker.yml");
        std::fs::write(&worker_config, worker_yaml(3600)).unwrap();
        Self {
            nats,
            sim,
            admin,
            collector,
            intake,
            js,
            dir,
            kubeconfig,
            key_path,
            worker_config,
            creds,
            audit_log,
        }
    }

    /// Starts a worker process; its stderr goes to `log`.
    pub fn worker(&self, name: &str, concurrency: usize) -> Worker {
        self.worker_with(name, concurrency, &[])
    }

    /// A worker whose sweeper runs every `sweep_secs` seconds.
    pub fn sweeping_worker(&self, name: &str, sweep_secs: u64) -> Worker {
        let config = self.dir.path().join(format!("{name}.yml"));
        std::fs::write(&config, worker_yaml(sweep_secs)).unwrap();
        self.worker_configured(name, 1, &config, &[])
    }

    /// A worker whose YAML is the usual one plus `extra_yaml` (e.g. a
    /// `kube:` section).
    pub fn worker_with_yaml(&self, name: &str, concurrency: usize, extra_yaml: &str) -> Worker {
        let config = self.dir.path().join(format!("{name}.yml"));
        std::fs::write(&config, format!("{}{extra_yaml}", worker_yaml(3600))).unwrap();
        self.worker_configured(name, concurrency, &config, &[])
    }

    /// Every request kubesim has audited so far.
    pub fn audit(&self) -> Vec<kubesim::audit::AuditRecord> {
        kubesim::audit::read(&self.audit_log).unwrap()
    }

    /// [`Fleet::worker`] with extra flags.
    pub fn worker_with(&self, name: &str, concurrency: usize, extra: &[&str]) -> Worker {
        self.worker_configured(name, concurrency, &self.worker_config, extra)
    }

    /// A worker serving the clusters of `registry_yaml` (a `clusters:`
    /// list, each entry with its own kubeconfig and budget) instead of
    /// this fleet's kubesim alone.
    /// Its sweepers run every `sweep_secs` seconds.
    pub fn worker_serving(
        &self,
        name: &str,
        concurrency: usize,
        registry_yaml: &str,
        sweep_secs: u64,
    ) -> Worker {
        let config = self.dir.path().join(format!("{name}.yml"));
        std::fs::write(
            &config,
            format!("{}{registry_yaml}", worker_yaml(sweep_secs)),
        )
        .unwrap();
        self.spawn_worker(name, concurrency, &config, &[], false)
    }

    fn worker_configured(
        &self,
        name: &str,
        concurrency: usize,
        config: &std::path::Path,
        extra: &[&str],
    ) -> Worker {
        self.spawn_worker(name, concurrency, config, extra, true)
    }

    fn spawn_worker(
        &self,
        name: &str,
        concurrency: usize,
        config: &std::path::Path,
        extra: &[&str],
        this_cluster: bool,
    ) -> Worker {
        let log = self.dir.path().join(format!("{name}.log"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_scanfleet-worker"));
        command.args(self.nats.args(BusIdentity::Worker));
        if this_cluster {
            command
                .args(["--cluster", "kubesim"])
                .arg("--kubeconfig")
                .arg(&self.kubeconfig);
        }
        let mut child = command
            .arg("--signing-key")
            .arg(&self.key_path)
            .arg("--profiles")
            .arg(repo_root().join("profiles"))
            .arg("--config")
            .arg(config)
            .args(["--http-listen", "127.0.0.1:0", "--worker-id", name])
            .args(self.creds.tls_flags())
            .arg("--concurrency")
            .arg(concurrency.to_string())
            .args(extra)
            .env(
                "RUST_LOG",
                "debug,hyper=info,h2=info,tower=info,rustls=info,async_nats=info",
            )
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("worker binary starts");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let http = line
            .trim()
            .strip_prefix("scanfleet-worker listening http=")
            .unwrap_or_else(|| {
                panic!(
                    "worker did not start: {line:?}\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            })
            .parse()
            .unwrap();
        Worker {
            child,
            http,
            log,
            tls: self.creds.tls(),
        }
    }

    pub async fn submit(&self, uri: &str) -> String {
        self.try_submit(uri).await.unwrap()
    }

    /// Submits, retrying (bounded) while intake reports the bus unavailable.
    pub async fn submit_retrying(&self, uri: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.try_submit(uri).await {
                Ok(id) => return id,
                Err(status) => {
                    assert!(Instant::now() < deadline, "intake kept refusing: {status}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    pub async fn try_submit(&self, uri: &str) -> Result<String, tonic::Status> {
        self.try_submit_with(uri, scanfleet_contracts::v1::Approach::Auto)
            .await
    }

    pub async fn try_submit_with(
        &self,
        uri: &str,
        approach: scanfleet_contracts::v1::Approach,
    ) -> Result<String, tonic::Status> {
        let mut request = submit_request(uri);
        request.approach = approach as i32;
        self.submit_request(tonic::Request::new(request)).await
    }

    /// Submits exactly this request (metadata included) as the operator.
    pub async fn submit_request(
        &self,
        request: tonic::Request<SubmitRequest>,
    ) -> Result<String, tonic::Status> {
        self.submit_request_as(self.creds.operator(), request).await
    }

    /// Submits exactly this request (metadata included) with `token`.
    pub async fn submit_request_as(
        &self,
        token: &str,
        request: tonic::Request<SubmitRequest>,
    ) -> Result<String, tonic::Status> {
        let mut client = self.intake_as(token).await;
        let scans = client.submit(request).await?.into_inner().scans;
        assert_eq!(scans.len(), 1);
        Ok(scans[0].scan_id.clone())
    }

    /// An `Intake` client calling with `token`.
    pub async fn intake_as(&self, token: &str) -> IntakeClient<Authenticated> {
        self.creds.intake_as(self.intake.grpc, token).await
    }

    pub async fn results(&self) -> Vec<ScanResult> {
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

    /// Polls until `n` results are persisted (bounded); on timeout, fails
    /// with the tail of each worker's log.
    pub async fn wait_results(
        &self,
        n: usize,
        within: Duration,
        workers: &[&Worker],
    ) -> Vec<ScanResult> {
        let deadline = Instant::now() + within;
        loop {
            let r = self.results().await;
            if r.len() >= n {
                return r;
            }
            if Instant::now() >= deadline {
                let tails: Vec<String> = workers
                    .iter()
                    .map(|w| {
                        let logs = w.logs();
                        let lines: Vec<&str> =
                            logs.lines().filter(|l| !l.contains("DEBUG")).collect();
                        lines[lines.len().saturating_sub(40)..].join("\n")
                    })
                    .collect();
                panic!(
                    "{} of {n} results persisted after {within:?}; worker logs:\n{}",
                    r.len(),
                    tails.join("\n---\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn messages(&self, stream: &str) -> u64 {
        let mut s = self.js.get_stream(stream).await.unwrap();
        s.info().await.unwrap().state.messages
    }

    pub async fn scan_accounts(&self) -> Vec<String> {
        Api::<ServiceAccount>::all(self.admin.client.clone())
            .list(&ListParams::default().labels("app.kubernetes.io/managed-by=scanfleet"))
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|a| a.metadata.name)
            .collect()
    }

    /// Moves a scan identity's `expires-at` into the past, as the passing
    /// hours would (the sweeper reads only that annotation).
    pub async fn expire_scan_account(&self, name: &str) {
        let accounts = Api::<ServiceAccount>::namespaced(self.admin.client.clone(), "apps");
        let patch = serde_json::json!({"metadata": {"annotations": {
            scanfleet_scan_session::scan_identity::EXPIRES_AT_ANNOTATION: "2000-01-01T00:00:00Z"
        }}});
        accounts
            .patch(
                name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&patch),
            )
            .await
            .unwrap();
    }

    pub async fn stop(self) {
        self.intake.shutdown().await.unwrap();
        self.collector.shutdown().await.unwrap();
        self.sim.shutdown().await;
    }
}

pub struct Worker {
    pub child: Child,
    pub http: std::net::SocketAddr,
    pub log: PathBuf,
    tls: ClientTls,
}

impl Worker {
    /// A series from `/metrics` (over TLS; the endpoint needs no token).
    pub async fn metric(&self, name: &str) -> f64 {
        let r = https_get(self.http, &self.tls, "/metrics", None).await;
        assert_eq!(r.status, 200);
        r.text()
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("{name} not in /metrics"))
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
