//! Publishing results the way a worker does, for tests of everything
//! downstream of workers (collector, CLI, subscribers).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream;
use prost::Message;
use scanfleet_bus::{Headers, ResultStream};
use scanfleet_contracts::v1::{ResultEvent, result_event};
use scanfleet_scan_intents::{ClusterName, NamespaceName, ResultPlace};
use scanfleet_trust::statement::{
    ComplianceSummary, HDF_MEDIA_TYPE, ProfileRef, ReportRef, ScanOutcome, ScanTargetRef,
    ScannerRef, ThresholdVerdict,
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

/// A plausible scan-result statement for tests and benchmarks, changed
/// field by field from sensible defaults: a completed scan of
/// `kubesim/shop/pod-<id>/app`, 8 passed and 2 failed (medium), an image
/// digest derived from the scan id, no report.
#[derive(Clone, Debug)]
pub struct SampleStatement {
    predicate: ScanResultPredicate,
    digest_hex: String,
}

impl SampleStatement {
    /// Defaults for `scan_id`.
    pub fn new(scan_id: &str) -> Self {
        let digest_hex = hex::encode(Sha256::digest(scan_id.as_bytes()));
        Self {
            predicate: ScanResultPredicate {
                scan_id: scan_id.into(),
                target: ScanTargetRef {
                    kind: Default::default(),
                    cluster: "kubesim".into(),
                    namespace: "shop".into(),
                    pod: format!("pod-{scan_id}"),
                    container: "app".into(),
                    image: "registry.local/app:1".into(),
                    image_digest: format!("sha256:{digest_hex}"),
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
                report: None,
                inputs: Vec::new(),
                requested_by: None,
                started_at: "2026-11-23T10:00:00Z".into(),
                finished_at: "2026-11-23T10:00:01Z".into(),
                scanner: ScannerRef {
                    id: "test-worker".into(),
                    version: "0".into(),
                },
                drift: None,
            },
            digest_hex,
        }
    }

    /// Where the scanned container ran.
    pub fn target(mut self, cluster: &str, namespace: &str, pod: &str, container: &str) -> Self {
        let t = &mut self.predicate.target;
        t.cluster = cluster.into();
        t.namespace = namespace.into();
        t.pod = pod.into();
        t.container = container.into();
        self
    }

    /// The namespace only.
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.predicate.target.namespace = namespace.into();
        self
    }

    /// The image digest, as 64 hex digits.
    pub fn digest_hex(mut self, hex: &str) -> Self {
        self.digest_hex = hex.into();
        self.predicate.target.image_digest = format!("sha256:{hex}");
        self
    }

    /// Binds a report by digest.
    pub fn report(mut self, body: &[u8]) -> Self {
        self.predicate.report = Some(ReportRef {
            media_type: HDF_MEDIA_TYPE.into(),
            sha256: hex::encode(Sha256::digest(body)),
            size: body.len() as u64,
        });
        self
    }

    /// A scan that could not complete.
    pub fn failed(mut self, reason: &str) -> Self {
        self.predicate.outcome = ScanOutcome::Failed;
        self.predicate.failure = Some(reason.into());
        self.predicate.summary = None;
        self
    }

    /// A threshold verdict.
    pub fn threshold(mut self, passed: bool) -> Self {
        self.predicate.threshold = Some(ThresholdVerdict {
            threshold: "gate".into(),
            sha256: None,
            passed,
            failures: Vec::new(),
        });
        self
    }

    /// Start and finish times (RFC 3339).
    pub fn times(mut self, started: &str, finished: &str) -> Self {
        self.predicate.started_at = started.into();
        self.predicate.finished_at = finished.into();
        self
    }

    /// Any other change to the predicate.
    pub fn with(mut self, change: impl FnOnce(&mut ScanResultPredicate)) -> Self {
        change(&mut self.predicate);
        self
    }

    /// The statement.
    ///
    /// # Panics
    /// When the digest set with [`SampleStatement::digest_hex`] is not 64 hex digits.
    pub fn build(self) -> ScanStatement {
        ScanStatement::for_image(
            Subject::image("registry.local/app", &self.digest_hex).expect("a sha256 digest"),
            self.predicate,
        )
    }
}

/// A completed scan result for `scan_id`, signed with `key`.
pub fn result(key: &SigningKey, scan_id: &str, namespace: &str) -> Published {
    let report = serde_json::json!({"profiles": [], "scan": scan_id})
        .to_string()
        .into_bytes();
    let statement = SampleStatement::new(scan_id)
        .namespace(namespace)
        .report(&report)
        .build();
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

/// Publishes exactly these headers and bytes on the result subject of
/// `kubesim/<namespace>`, with message id `msg_id`, through the bus's result
/// protocol (`ResultStream::publish_raw`), so forged and hostile results
/// travel the way a worker's would.
///
/// # Panics
/// When `namespace` is not a namespace name or the stream does not ack.
pub async fn publish(
    js: &jetstream::Context,
    namespace: &str,
    msg_id: &str,
    headers: HeaderMap,
    payload: Vec<u8>,
) {
    ResultStream::new(js.clone())
        .publish_raw(
            &ClusterName::new("kubesim").unwrap(),
            &ResultPlace::Namespace(NamespaceName::new(namespace).expect("a namespace name")),
            msg_id,
            Headers::received(Some(&headers)),
            payload.into(),
        )
        .await
        .unwrap();
}

/// [`publish`] on the image-scan result subject of `kubesim`
/// (`scan.results.kubesim._image`).
///
/// # Panics
/// When the stream does not ack.
pub async fn publish_image(
    js: &jetstream::Context,
    msg_id: &str,
    headers: HeaderMap,
    payload: Vec<u8>,
) {
    ResultStream::new(js.clone())
        .publish_raw(
            &ClusterName::new("kubesim").unwrap(),
            &ResultPlace::Image,
            msg_id,
            Headers::received(Some(&headers)),
            payload.into(),
        )
        .await
        .unwrap();
}

/// Writes `key`'s public PEM into `dir`.
pub fn write_public_key(dir: &Path, key: &SigningKey) -> PathBuf {
    let path = dir.join(format!("{}.pub.pem", &key.key_id().as_str()[..8]));
    std::fs::write(&path, key.public_key().to_spki_pem()).unwrap();
    path
}
