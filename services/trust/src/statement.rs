//! The in-toto Statement v1 that scanfleet signs for every scan.
//!
//! The statement is *about the image digest*: its subject is the scanned image
//! (name plus `sha256`), so an admission gate can look up "what do we know about
//! sha256:abc…" without trusting where the result came from. The predicate
//! carries the outcome and binds the full HDF report by digest, so the report
//! itself can travel separately (inline or in the object store) and still be
//! covered by the signature.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `_type` of an in-toto Statement v1.
pub const STATEMENT_TYPE_V1: &str = "https://in-toto.io/Statement/v1";
/// The DSSE payload type for in-toto statements.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// The predicate type naming scanfleet's scan-result predicate, version 1.
pub const SCAN_RESULT_PREDICATE_TYPE: &str = "https://scanfleet.dev/attestations/scan-result/v1";
/// Media type of the HDF (InSpec exec-json) report the predicate binds.
pub const HDF_MEDIA_TYPE: &str = "application/vnd.mitre.hdf+json";

/// Why a statement was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StatementError {
    /// Not JSON of the statement shape (with line and column).
    #[error("not an in-toto statement: {0}")]
    Json(String),
    /// `_type` is not in-toto Statement v1.
    #[error("_type is {0:?}, expected {STATEMENT_TYPE_V1:?}")]
    WrongType(String),
    /// The statement names another predicate.
    #[error("predicateType is {found:?}, expected {expected:?}")]
    WrongPredicateType {
        /// What the caller wanted.
        expected: String,
        /// What the statement says.
        found: String,
    },
    /// No subject, or a subject without a usable sha256 digest.
    #[error("subject[{index}]: {reason}")]
    BadSubject {
        /// Position in the `subject` array.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// `subject` is empty.
    #[error("subject is empty; a statement must be about at least one artifact")]
    NoSubject,
}

/// One artifact a statement is about (in-toto ResourceDescriptor, the subset
/// subjects use).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// The artifact's name, for an image its reference without tag or digest.
    pub name: String,
    /// Algorithm to lowercase hex digest; scanfleet always sets `sha256`.
    pub digest: BTreeMap<String, String>,
}

impl Subject {
    /// A subject for an image, given `sha256:<hex>` or bare hex.
    ///
    /// # Errors
    /// [`StatementError::BadSubject`] when the digest is not 64 hex digits.
    pub fn image(name: &str, digest: &str) -> Result<Self, StatementError> {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        check_sha256(0, hex)?;
        Ok(Self {
            name: name.to_owned(),
            digest: BTreeMap::from([("sha256".to_owned(), hex.to_ascii_lowercase())]),
        })
    }
}

fn check_sha256(index: usize, hex: &str) -> Result<(), StatementError> {
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(StatementError::BadSubject {
            index,
            reason: format!("sha256 digest must be 64 hex digits, got {hex:?}"),
        })
    }
}

/// An in-toto Statement v1 with a typed predicate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Statement<P> {
    /// Always [`STATEMENT_TYPE_V1`].
    #[serde(rename = "_type")]
    pub statement_type: String,
    /// The artifacts the statement is about.
    pub subject: Vec<Subject>,
    /// URI naming the predicate's schema.
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// The claim itself.
    pub predicate: P,
}

/// The scan-result statement scanfleet signs.
pub type ScanStatement = Statement<ScanResultPredicate>;

impl ScanStatement {
    /// A scan-result statement about one image.
    pub fn for_image(subject: Subject, predicate: ScanResultPredicate) -> Self {
        Self {
            statement_type: STATEMENT_TYPE_V1.to_owned(),
            subject: vec![subject],
            predicate_type: SCAN_RESULT_PREDICATE_TYPE.to_owned(),
            predicate,
        }
    }

    /// Compact JSON, the bytes that get signed.
    pub fn to_payload(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("statement serialization cannot fail")
    }

    /// Parses and checks an authenticated payload: statement type, predicate
    /// type and that every subject has a sha256 digest.
    ///
    /// # Errors
    /// [`StatementError`] naming the first problem.
    pub fn from_payload(bytes: &[u8]) -> Result<Self, StatementError> {
        let raw: Statement<serde_json::Value> =
            serde_json::from_slice(bytes).map_err(|e| StatementError::Json(e.to_string()))?;
        if raw.statement_type != STATEMENT_TYPE_V1 {
            return Err(StatementError::WrongType(raw.statement_type));
        }
        if raw.predicate_type != SCAN_RESULT_PREDICATE_TYPE {
            return Err(StatementError::WrongPredicateType {
                expected: SCAN_RESULT_PREDICATE_TYPE.to_owned(),
                found: raw.predicate_type,
            });
        }
        if raw.subject.is_empty() {
            return Err(StatementError::NoSubject);
        }
        for (index, subject) in raw.subject.iter().enumerate() {
            let digest =
                subject
                    .digest
                    .get("sha256")
                    .ok_or_else(|| StatementError::BadSubject {
                        index,
                        reason: "no sha256 digest".into(),
                    })?;
            check_sha256(index, digest)?;
        }
        let predicate = serde_json::from_value(raw.predicate)
            .map_err(|e| StatementError::Json(format!("predicate: {e}")))?;
        Ok(Self {
            statement_type: raw.statement_type,
            subject: raw.subject,
            predicate_type: raw.predicate_type,
            predicate,
        })
    }
}

/// The outcome of one scan, as downstream systems consume it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanResultPredicate {
    /// The scan's ULID, the idempotency key everywhere downstream.
    pub scan_id: String,
    /// Where the scanned container ran.
    pub target: ScanTargetRef,
    /// Which profile was evaluated.
    pub profile: ProfileRef,
    /// How the container was reached: `exec`, `debug`, `sidecar` or `local`.
    pub approach: String,
    /// Whether the scan ran to the end.
    pub outcome: ScanOutcome,
    /// Why the scan could not complete; set only when `outcome` is `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Control counts; absent when the scan failed before evaluating anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<ComplianceSummary>,
    /// The threshold gate's verdict, when a threshold was requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<ThresholdVerdict>,
    /// The full HDF report, bound by digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<ReportRef>,
    /// Every profile input the scan evaluated with, its value, and whether
    /// it was the profile's default or a caller's override. Overrides change
    /// verdicts (a narrower search path finds fewer world-writable files),
    /// so a verifier must see them to trust the summary.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<InputUsed>,
    /// The authenticated principal who asked for the scan, when someone did
    /// (API and CLI scans); absent for registry pushes and schedules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
    /// RFC 3339 UTC time the scan started.
    pub started_at: String,
    /// RFC 3339 UTC time the scan finished.
    pub finished_at: String,
    /// What produced the result.
    pub scanner: ScannerRef,
    /// What changed in the container since its image was scanned: set on a
    /// container scan only when the signing worker itself knew an image
    /// scan of the same digest and profile version at signing time; absent
    /// otherwise (never a claim of "no drift" it cannot know).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<DriftSummary>,
}

/// A container scan's drift against an image scan, as signed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DriftSummary {
    /// The image scan compared with.
    pub image_scan_id: String,
    /// The ids of the controls whose status differs, in id order (empty:
    /// nothing drifted).
    pub controls: Vec<String>,
}

/// Whether a scan ran to the end (its controls may still have failed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScanOutcome {
    /// Every control was evaluated.
    Completed,
    /// The scan could not run (pod gone, container missing, policy refused…).
    Failed,
}

/// What was scanned: a running container, or an image by digest before
/// (or without) any container running it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// A running container (statements from before `kind` existed).
    #[default]
    Container,
    /// An image pulled by digest and scanned unpacked; namespace, pod and
    /// container are empty.
    Image,
}

impl TargetKind {
    fn is_container(&self) -> bool {
        *self == TargetKind::Container
    }
}

/// The scanned container's (or image's) coordinates.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanTargetRef {
    /// Container or image; omitted for containers, so statements signed
    /// before image scans existed read back unchanged.
    #[serde(default, skip_serializing_if = "TargetKind::is_container")]
    pub kind: TargetKind,
    /// The cluster's configured name.
    pub cluster: String,
    /// Kubernetes namespace.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// Container name.
    pub container: String,
    /// The image reference as the pod spec names it.
    pub image: String,
    /// The resolved `sha256:` digest the container runs.
    pub image_digest: String,
}

/// The profile a scan evaluated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfileRef {
    /// Profile name from its metadata.
    pub name: String,
    /// Profile version from its metadata.
    pub version: String,
    /// SHA-256 of the profile content, as in the HDF `sha256` field.
    pub sha256: String,
}

/// Control counts as Heimdall computes them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComplianceSummary {
    /// Controls that passed.
    pub passed: u32,
    /// Controls that failed.
    pub failed: u32,
    /// Controls not reviewed (skipped).
    pub not_reviewed: u32,
    /// Controls not applicable (impact 0).
    pub not_applicable: u32,
    /// Controls whose evaluation errored.
    pub error: u32,
    /// passed / (passed + failed + not reviewed + error), in percent.
    pub compliance_percent: f64,
    /// Failed controls by severity (`critical`, `high`, `medium`, `low`).
    pub failed_by_severity: BTreeMap<String, u32>,
}

/// The threshold gate's verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThresholdVerdict {
    /// Name or digest of the threshold file used.
    pub threshold: String,
    /// Lowercase hex SHA-256 of the threshold file's bytes, so a verifier
    /// knows exactly which gate was applied, not just its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Whether every check held.
    pub passed: bool,
    /// Every failed check, human-readable.
    #[serde(default)]
    pub failures: Vec<String>,
}

/// One profile input as a scan used it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InputUsed {
    /// The input's name in the profile.
    pub name: String,
    /// The value evaluated with.
    pub value: InputValueUsed,
    /// Where the value came from.
    pub source: InputSource,
}

/// A profile input's value: one string or a list of strings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum InputValueUsed {
    /// A single value.
    One(String),
    /// A list of values.
    Many(Vec<String>),
}

/// Whether an input kept the profile's default or was overridden.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputSource {
    /// The profile's own default.
    Default,
    /// A value the requester supplied for this scan.
    Override,
}

/// The HDF report, bound by digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportRef {
    /// Always [`HDF_MEDIA_TYPE`] today.
    pub media_type: String,
    /// Lowercase hex SHA-256 of the report bytes.
    pub sha256: String,
    /// Report size in bytes.
    pub size: u64,
}

/// What produced a result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScannerRef {
    /// The worker instance (or `cli`).
    pub id: String,
    /// scanfleet's version.
    pub version: String,
}

#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    /// A complete, plausible predicate for tests.
    pub fn predicate() -> ScanResultPredicate {
        ScanResultPredicate {
            scan_id: "01JDQ2Z8Y6W5M3N4P7R9S0T1V2".into(),
            target: ScanTargetRef {
                kind: TargetKind::Container,
                cluster: "kubesim".into(),
                namespace: "shop".into(),
                pod: "web-0".into(),
                container: "web".into(),
                image: "registry.local/shop/web:1.2".into(),
                image_digest: format!("sha256:{}", "ab".repeat(32)),
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
                not_reviewed: 1,
                not_applicable: 0,
                error: 0,
                compliance_percent: 72.7,
                failed_by_severity: BTreeMap::from([("high".into(), 1), ("medium".into(), 1)]),
            }),
            threshold: None,
            report: Some(ReportRef {
                media_type: HDF_MEDIA_TYPE.into(),
                sha256: "ef".repeat(32),
                size: 4096,
            }),
            inputs: vec![InputUsed {
                name: "search_paths".into(),
                value: InputValueUsed::Many(vec!["/".into()]),
                source: InputSource::Default,
            }],
            requested_by: Some("system:serviceaccount:ci:deployer".into()),
            started_at: "2026-11-23T10:00:00Z".into(),
            finished_at: "2026-11-23T10:00:01Z".into(),
            scanner: ScannerRef {
                id: "worker-1".into(),
                version: "0.1.0".into(),
            },
            drift: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_serializes_with_in_toto_field_names() {
        let subject = Subject::image("registry.local/shop/web", &"AB".repeat(32)).unwrap();
        let statement = ScanStatement::for_image(subject, fixtures::predicate());
        let value: serde_json::Value = serde_json::from_slice(&statement.to_payload()).unwrap();
        assert_eq!(value["_type"], STATEMENT_TYPE_V1);
        assert_eq!(value["predicateType"], SCAN_RESULT_PREDICATE_TYPE);
        assert_eq!(value["subject"][0]["digest"]["sha256"], "ab".repeat(32));
        assert_eq!(value["predicate"]["scanId"], "01JDQ2Z8Y6W5M3N4P7R9S0T1V2");
        assert_eq!(value["predicate"]["outcome"], "completed");
        let back = ScanStatement::from_payload(&statement.to_payload()).unwrap();
        assert_eq!(back, statement);
    }

    #[test]
    fn the_documented_example_is_a_valid_statement() {
        let doc = include_bytes!("../../../docs/examples/scan-statement.json");
        let statement = ScanStatement::from_payload(doc).unwrap();
        assert_eq!(statement.predicate.outcome, ScanOutcome::Completed);
        let threshold = statement.predicate.threshold.unwrap();
        assert!(!threshold.passed);
        assert_eq!(threshold.failures.len(), 1);
        assert_eq!(threshold.sha256.unwrap().len(), 64);
        let inputs = &statement.predicate.inputs;
        assert_eq!(inputs.len(), 3);
        assert_eq!(inputs[1].source, InputSource::Override);
        assert_eq!(inputs[2].value, InputValueUsed::One("60000".into()));
        assert_eq!(
            statement.predicate.requested_by.as_deref(),
            Some("system:serviceaccount:ci:deployer")
        );
    }

    #[test]
    fn statements_without_inputs_still_parse_and_new_fields_round_trip() {
        let mut old = fixtures::predicate();
        old.inputs.clear();
        old.requested_by = None;
        let statement =
            ScanStatement::for_image(Subject::image("img", &"ab".repeat(32)).unwrap(), old);
        let payload = String::from_utf8(statement.to_payload()).unwrap();
        assert!(!payload.contains("inputs") && !payload.contains("requestedBy"));
        let full = ScanStatement::for_image(
            Subject::image("img", &"ab".repeat(32)).unwrap(),
            fixtures::predicate(),
        );
        let back = ScanStatement::from_payload(&full.to_payload()).unwrap();
        assert_eq!(back, full);
        assert!(String::from_utf8(full.to_payload()).unwrap().contains(
            r#""inputs":[{"name":"search_paths","value":["/"],"source":"default"}],"requestedBy":"system:serviceaccount:ci:deployer""#
        ));
    }

    #[test]
    fn image_subject_accepts_prefixed_digest_and_rejects_short_ones() {
        let s = Subject::image("img", &format!("sha256:{}", "0f".repeat(32))).unwrap();
        assert_eq!(s.digest["sha256"], "0f".repeat(32));
        assert!(matches!(
            Subject::image("img", "sha256:abc"),
            Err(StatementError::BadSubject { .. })
        ));
    }

    #[test]
    fn foreign_statements_are_refused_with_the_reason() {
        let ok = ScanStatement::for_image(
            Subject::image("img", &"ab".repeat(32)).unwrap(),
            fixtures::predicate(),
        );
        let mut value: serde_json::Value = serde_json::from_slice(&ok.to_payload()).unwrap();
        value["predicateType"] = "https://slsa.dev/provenance/v1".into();
        assert!(matches!(
            ScanStatement::from_payload(value.to_string().as_bytes()),
            Err(StatementError::WrongPredicateType { .. })
        ));
        value["predicateType"] = SCAN_RESULT_PREDICATE_TYPE.into();
        value["subject"] = serde_json::json!([]);
        assert_eq!(
            ScanStatement::from_payload(value.to_string().as_bytes()),
            Err(StatementError::NoSubject)
        );
        value["subject"] = serde_json::json!([{"name": "img", "digest": {"sha512": "00"}}]);
        assert!(matches!(
            ScanStatement::from_payload(value.to_string().as_bytes()),
            Err(StatementError::BadSubject { index: 0, .. })
        ));
    }
}
