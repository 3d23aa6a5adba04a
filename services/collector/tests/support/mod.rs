//! A collector process plus a "worker" that publishes results the way real
//! workers will, for the collector's end-to-end tests.

#![allow(dead_code)] // each test binary uses a different subset

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream;
use prost::Message;
use scanfleet_contracts::v1::{ResultEvent, result_event};
use scanfleet_trust::statement::{
    ComplianceSummary, HDF_MEDIA_TYPE, ProfileRef, ReportRef, ScanOutcome, ScanTargetRef,
    ScannerRef,
};
use scanfleet_trust::{
    AgeRecipient, Envelope, IN_TOTO_PAYLOAD_TYPE, ScanResultPredicate, ScanStatement, SigningKey,
    Subject, encryption,
};
use sha2::{Digest, Sha256};

/// A running `scanfleet-collector` binary; killed on drop.
pub struct CollectorProcess {
    child: Option<Child>,
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    pub args: Vec<String>,
    stderr_log: PathBuf,
}

impl CollectorProcess {
    pub fn start(args: Vec<String>, log_dir: &Path) -> Self {
        let stderr_log = log_dir.join(format!(
            "collector-{}.log",
            Instant::now().elapsed().as_nanos()
        ));
        let mut child = Command::new(env!("CARGO_BIN_EXE_scanfleet-collector"))
            .args(&args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_log).unwrap())
            .spawn()
            .expect("spawn collector");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                panic!(
                    "collector did not start: {}",
                    std::fs::read_to_string(&stderr_log).unwrap_or_default()
                )
            });
        let addr = |key: &str| -> SocketAddr {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .unwrap_or_else(|| panic!("no {key} in {line:?}"))
                .parse()
                .unwrap()
        };
        Self {
            grpc: addr("grpc="),
            http: addr("http="),
            child: Some(child),
            args,
            stderr_log,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    /// SIGTERM and wait: a clean stop.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        child.wait().unwrap()
    }

    pub fn metric(&self, name: &str) -> u64 {
        let (status, body) = scanfleet_test_harness::http_get(self.http, "/metrics");
        assert_eq!(status, 200);
        body.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
            .unwrap_or(0)
    }
}

impl Drop for CollectorProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls a condition until it holds or 30 s pass.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A signed result as a worker would publish it.
pub struct Published {
    pub scan_id: String,
    pub report: Vec<u8>,
    pub envelope: String,
}

pub fn result(key: &SigningKey, scan_id: &str, namespace: &str) -> Published {
    let report = serde_json::json!({"profiles": [], "scan": scan_id})
        .to_string()
        .into_bytes();
    let digest = hex::encode(Sha256::digest(scan_id.as_bytes()));
    let predicate = ScanResultPredicate {
        scan_id: scan_id.into(),
        target: ScanTargetRef {
            cluster: "kubesim".into(),
            namespace: namespace.into(),
            pod: format!("pod-{scan_id}"),
            container: "app".into(),
            image: "registry.local/app:1".into(),
            image_digest: format!("sha256:{digest}"),
        },
        profile: ProfileRef {
            name: "container-baseline".into(),
            version: "1.0.0".into(),
            sha256: "cd".repeat(32),
        },
        approach: "exec".into(),
        outcome: ScanOutcome::Completed,
        failure: None,
        summary: Some(ComplianceSummary {
            passed: 8,
            failed: 2,
            not_reviewed: 0,
            not_applicable: 0,
            error: 0,
            compliance_percent: 80.0,
            failed_by_severity: [("medium".to_owned(), 2)].into(),
        }),
        threshold: None,
        report: Some(ReportRef {
            media_type: HDF_MEDIA_TYPE.into(),
            sha256: hex::encode(Sha256::digest(&report)),
            size: report.len() as u64,
        }),
        started_at: "2026-11-23T10:00:00Z".into(),
        finished_at: "2026-11-23T10:00:01Z".into(),
        scanner: ScannerRef {
            id: "test-worker".into(),
            version: "0".into(),
        },
    };
    let statement = ScanStatement::for_image(
        Subject::image("registry.local/app", &digest).unwrap(),
        predicate,
    );
    let envelope = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, &statement.to_payload(), key).to_json();
    Published {
        scan_id: scan_id.into(),
        report,
        envelope,
    }
}

pub fn inline_event(p: &Published) -> Vec<u8> {
    ResultEvent {
        envelope: p.envelope.clone().into_bytes(),
        report: Some(result_event::Report::ReportInline(p.report.clone())),
    }
    .encode_to_vec()
}

pub fn encrypt_to(bytes: &[u8], recipients: &[AgeRecipient]) -> Vec<u8> {
    encryption::encrypt(bytes, recipients, false).unwrap()
}

/// Publishes like a worker: subject by cluster and namespace, msg-id = scan id.
pub async fn publish(
    js: &jetstream::Context,
    namespace: &str,
    msg_id: &str,
    headers: HeaderMap,
    payload: Vec<u8>,
) {
    let message = jetstream::message::PublishMessage::build()
        .payload(payload.into())
        .headers(headers)
        .message_id(msg_id);
    js.send_publish(format!("scan.results.kubesim.{namespace}"), message)
        .await
        .unwrap()
        .await
        .unwrap();
}

pub fn write_public_key(dir: &Path, key: &SigningKey) -> PathBuf {
    let path = dir.join(format!("{}.pub.pem", &key.key_id().as_str()[..8]));
    std::fs::write(&path, key.public_key().to_spki_pem()).unwrap();
    path
}

pub fn base_args(nats_url: &str, store_url: &str, key: &Path) -> Vec<String> {
    vec![
        "--nats-url".into(),
        nats_url.into(),
        "--store-url".into(),
        store_url.into(),
        "--trusted-key".into(),
        key.display().to_string(),
        "--grpc-listen".into(),
        "127.0.0.1:0".into(),
        "--http-listen".into(),
        "127.0.0.1:0".into(),
    ]
}

pub async fn stored_count(c: &CollectorProcess) -> usize {
    let http = c.http;
    tokio::task::spawn_blocking(move || {
        let (status, body) = scanfleet_test_harness::http_get(http, "/v1/results?page_size=500");
        if status != 200 {
            return 0;
        }
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["results"].as_array().map_or(0, Vec::len)
    })
    .await
    .unwrap()
}
