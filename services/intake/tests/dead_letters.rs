//! Dead letters through the real binaries: a poison intent that stalls
//! every worker that claims it (each is then SIGKILLed, as a crash would
//! end it) runs out of deliveries and is moved to `SCAN_DLQ` by the
//! forwarder that intake runs, once, with its reason, and `GetScan` says
//! where it went.
//!
//! Before issue #11 no binary ran the forwarder: such an intent stayed in
//! `SCAN_INTENTS` (JetStream keeps it after `max_deliver`, on purpose) and
//! nobody was told.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use async_nats::jetstream::{self, consumer::PullConsumer};
use scanfleet_bus::BusIdentity;
use scanfleet_bus::TopologyConfig;
use scanfleet_bus::dead_letters::{HEADER_DELIVERIES, HEADER_REASON};
use scanfleet_bus::topology::{
    ADVISORIES_STREAM, DLQ_FORWARDER_CONSUMER, DLQ_STREAM, INTENTS_STREAM,
};
use scanfleet_contracts::v1::intake_client::IntakeClient;
use scanfleet_contracts::v1::target_selector::Selector;
use scanfleet_contracts::v1::{
    GetScanRequest, ProfileRef, ScanState, SubmitRequest, TargetSelector, profile_ref::Pin,
};
use scanfleet_edge_access::Authenticated;
use scanfleet_test_harness::credentials::TestCredentials;
use scanfleet_test_harness::fleet::eventually;
use scanfleet_test_harness::secure_bus::SecureBus;
use scanfleet_test_harness::{repo_root, write_private};
use scanfleet_trust::SigningKey;

const MAX_DELIVER: i64 = 3;

/// A service binary, killed (SIGKILL) on drop; its stderr goes to a file.
struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    /// Starts `exe` and waits for its one "listening" line on stdout.
    fn start<S: AsRef<std::ffi::OsStr>>(
        exe: &Path,
        args: impl IntoIterator<Item = S>,
        log: PathBuf,
    ) -> (Self, String) {
        let mut child = Command::new(exe)
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", exe.display()));
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(
            line.contains("listening"),
            "{} did not start: {line:?}\n{}",
            exe.display(),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        (Self { child, log }, line)
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn worker_binary() -> PathBuf {
    let worker =
        Path::new(env!("CARGO_BIN_EXE_scanfleet-intake")).with_file_name("scanfleet-worker");
    assert!(
        worker.is_file(),
        "scanfleet-worker is not built next to scanfleet-intake; run the workspace tests \
         (cargo nextest run --workspace) or cargo build --bins"
    );
    worker
}

async fn consumer_state(js: &jetstream::Context, stream: &str, name: &str) -> (u64, usize, u64) {
    let mut consumer: PullConsumer = js
        .get_stream(stream)
        .await
        .unwrap()
        .get_consumer(name)
        .await
        .unwrap();
    let info = consumer.info().await.unwrap();
    (
        info.delivered.consumer_sequence,
        info.num_ack_pending,
        info.num_pending,
    )
}

async fn messages(js: &jetstream::Context, stream: &str) -> u64 {
    js.get_stream(stream)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .state
        .messages
}

/// nats-server, kubesim with a poisoned pod, and the intake binary; workers
/// are started per step.
struct Bench {
    nats: SecureBus,
    _sim: kubesim::Kubesim,
    dir: tempfile::TempDir,
    js: jetstream::Context,
    intake: Process,
    client: IntakeClient<Authenticated>,
    creds: TestCredentials,
    kubeconfig: PathBuf,
    key_path: PathBuf,
    worker_config: PathBuf,
}

impl Bench {
    async fn start() -> Self {
        // The bootstrap (`bus init`) sets these limits before any service starts.
        let nats = SecureBus::start_with(TopologyConfig {
            max_deliver: MAX_DELIVER,
            backoff: vec![Duration::from_secs(2)],
            ..Default::default()
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let js = nats.js(BusIdentity::Admin).await;
        let sim = kubesim::Kubesim::start_settled(
            kubesim::Config::demo().unwrap(),
            Duration::from_secs(30),
        )
        .await
        .expect("kubesim starts (tests run as root)");
        // The poison: every call about this pod hangs, so a worker that
        // claims the intent stalls in pre-flight while renewing its lease,
        // until it is killed.
        sim.set_faults(vec![kubesim::faults::FaultRule {
            path: "/api/v1/namespaces/apps/pods/web-misconfigured*".into(),
            rate: 1.0,
            fault: kubesim::faults::Fault::Latency { millis: 600_000 },
        }]);
        let kubeconfig = dir.path().join("worker.kubeconfig");
        write_private(&kubeconfig, sim.admin_kubeconfig().as_bytes());
        let key_path = dir.path().join("signing.pem");
        write_private(&key_path, SigningKey::generate().to_pkcs8_pem().as_bytes());
        let worker_config = dir.path().join("worker.yml");
        std::fs::write(
            &worker_config,
            "progress_interval_ms: 300\nidle_poll_ms: 200\n",
        )
        .unwrap();
        let creds = TestCredentials::new(&sim).await;
        let mut args = nats.args(BusIdentity::Intake);
        args.extend(["--cluster", "kubesim", "--grpc-listen", "127.0.0.1:0"].map(String::from));
        args.extend(creds.service_flags());
        let (intake, line) = Process::start(
            Path::new(env!("CARGO_BIN_EXE_scanfleet-intake")),
            args,
            dir.path().join("intake.log"),
        );
        let grpc = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("grpc="))
            .expect("intake prints its gRPC address")
            .to_owned();
        let client = creds.intake(grpc.parse().unwrap()).await;
        Self {
            nats,
            _sim: sim,
            dir,
            js,
            intake,
            client,
            creds,
            kubeconfig,
            key_path,
            worker_config,
        }
    }

    fn worker(&self, name: &str) -> Process {
        let profiles = repo_root().join("profiles");
        let bus = self.nats.args(BusIdentity::Worker);
        Process::start(
            &worker_binary(),
            bus.into_iter()
                .chain(
                    [
                        "--cluster",
                        "kubesim",
                        "--kubeconfig",
                        self.kubeconfig.to_str().unwrap(),
                        "--signing-key",
                        self.key_path.to_str().unwrap(),
                        "--profiles",
                        profiles.to_str().unwrap(),
                        "--config",
                        self.worker_config.to_str().unwrap(),
                        "--http-listen",
                        "127.0.0.1:0",
                        "--worker-id",
                        name,
                    ]
                    .map(String::from),
                )
                .chain(self.creds.tls_flags()),
            self.dir.path().join(format!("{name}.log")),
        )
        .0
    }

    async fn submit_poison(&self) -> String {
        self.client
            .clone()
            .submit(SubmitRequest {
                target: Some(TargetSelector {
                    cluster: String::new(),
                    selector: Some(Selector::Uri("k8s://apps/web-misconfigured/web".into())),
                }),
                profile: Some(ProfileRef {
                    name: "container-baseline".into(),
                    pin: Some(Pin::Version("1.0.0".into())),
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .scans[0]
            .scan_id
            .clone()
    }

    async fn state(&self, scan_id: &str) -> Option<i32> {
        self.client
            .clone()
            .get_scan(GetScanRequest {
                scan_id: scan_id.into(),
            })
            .await
            .ok()
            .map(|s| s.into_inner().state)
    }

    /// Each delivery goes to a fresh worker process that stalls on it and
    /// is then killed, as a crash would end it.
    async fn crash_every_claim(&self, scan_id: &str) {
        for delivery in 1..=MAX_DELIVER as u64 {
            let worker = self.worker(&format!("w{delivery}"));
            eventually(&format!("delivery {delivery} to a worker"), || async {
                let (delivered, pending_ack, _) =
                    consumer_state(&self.js, INTENTS_STREAM, "workers-high-kubesim").await;
                delivered == delivery && pending_ack == 1
            })
            .await;
            eventually(
                &format!("worker {delivery} to report the scan running"),
                || async { self.state(scan_id).await == Some(ScanState::Running as i32) },
            )
            .await;
            worker.kill();
        }
    }

    /// Exactly one dead letter, with its reason, and nothing left queued.
    async fn assert_dead_lettered_once(&self, scan_id: &str) {
        eventually("every advisory handled", || async {
            let (_, ack_pending, pending) =
                consumer_state(&self.js, ADVISORIES_STREAM, DLQ_FORWARDER_CONSUMER).await;
            ack_pending == 0 && pending == 0
        })
        .await;
        assert_eq!(
            messages(&self.js, DLQ_STREAM).await,
            1,
            "dead-lettered once"
        );
        assert_eq!(
            messages(&self.js, INTENTS_STREAM).await,
            0,
            "gone from the queue"
        );
        let (delivered, _, _) =
            consumer_state(&self.js, INTENTS_STREAM, "workers-high-kubesim").await;
        assert_eq!(delivered, MAX_DELIVER as u64, "never delivered again");
        let dead = self
            .js
            .get_stream(DLQ_STREAM)
            .await
            .unwrap()
            .get_raw_message(1)
            .await
            .unwrap();
        assert_eq!(
            dead.headers.get(HEADER_REASON).unwrap().as_str(),
            "max_deliveries"
        );
        assert_eq!(
            dead.headers.get(HEADER_DELIVERIES).unwrap().as_str(),
            MAX_DELIVER.to_string()
        );
        assert_eq!(
            dead.headers.get("Scanfleet-Scan-Id").unwrap().as_str(),
            scan_id
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_intent_is_dead_lettered_once_by_intake_and_reported() {
    let bench = Bench::start().await;
    let scan_id = bench.submit_poison().await;
    bench.crash_every_claim(&scan_id).await;
    // The fleet goes on: a healthy worker keeps pulling, and on its next
    // pull the server finds the intent's deliveries spent and emits the
    // advisory instead of a fourth delivery.
    let _healthy = bench.worker("healthy");
    eventually("the dead letter", || async {
        messages(&bench.js, DLQ_STREAM).await == 1
    })
    .await;
    bench.assert_dead_lettered_once(&scan_id).await;

    let status = bench
        .client
        .clone()
        .get_scan(GetScanRequest {
            scan_id: scan_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.state, ScanState::Failed as i32, "{status:?}");
    assert!(
        status
            .message
            .starts_with(&format!("dead-lettered after {MAX_DELIVER} deliveries")),
        "{}",
        status.message
    );
    assert_eq!(status.intent.map(|i| i.id), Some(scan_id.clone()));
    assert!(
        bench
            .intake
            .log()
            .contains("intent moved to the dead-letter stream"),
        "{}",
        bench.intake.log()
    );
}
