//! Publishing results the way a worker does, for tests of everything
//! downstream of workers (collector, CLI, subscribers).

use std::path::{Path, PathBuf};
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

/// Polls a condition until it holds or 30 s pass.
/// # Panics
/// When the condition does not hold within 30 s.
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
    /// The scan id.
    pub scan_id: String,
    /// The HDF report bytes the statement binds.
    pub report: Vec<u8>,
    /// The DSSE envelope JSON.
    pub envelope: String,
}

/// A completed scan result for `scan_id`, signed with `key`.
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

/// The `ResultEvent` bytes with the report inline.
pub fn inline_event(p: &Published) -> Vec<u8> {
    ResultEvent {
        envelope: p.envelope.clone().into_bytes(),
        report: Some(result_event::Report::ReportInline(p.report.clone())),
    }
    .encode_to_vec()
}

/// age-encrypts bytes (binary form).
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

/// Writes `key`'s public PEM into `dir`.
pub fn write_public_key(dir: &Path, key: &SigningKey) -> PathBuf {
    let path = dir.join(format!("{}.pub.pem", &key.key_id().as_str()[..8]));
    std::fs::write(&path, key.public_key().to_spki_pem()).unwrap();
    path
}
