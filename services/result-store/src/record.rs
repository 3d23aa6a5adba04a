//! The row a verified result becomes, built only from an authenticated
//! statement so nothing unverified can reach the table.

use scanfleet_trust::statement::ScanOutcome;
use scanfleet_trust::{ScanStatement, Verified};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::StoreError;
use crate::control_outcomes::{self, ControlOutcome};

/// Control counts of a completed scan.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counts {
    /// Passed controls.
    pub passed: i64,
    /// Failed controls.
    pub failed: i64,
    /// Not reviewed (skipped) controls.
    pub not_reviewed: i64,
    /// Not applicable controls.
    pub not_applicable: i64,
    /// Controls whose evaluation errored.
    pub error: i64,
    /// Heimdall-style compliance in percent.
    pub compliance_percent: f64,
    /// Failed critical controls.
    pub failed_critical: i64,
    /// Failed high controls.
    pub failed_high: i64,
    /// Failed medium controls.
    pub failed_medium: i64,
    /// Failed low controls.
    pub failed_low: i64,
}

/// A persisted, verified result.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredResult {
    /// The scan's ULID.
    pub scan_id: String,
    /// Cluster name.
    pub cluster: String,
    /// Namespace.
    pub namespace: String,
    /// Pod.
    pub pod: String,
    /// Container.
    pub container: String,
    /// Image reference.
    pub image: String,
    /// `sha256:` image digest.
    pub image_digest: String,
    /// Profile name.
    pub profile_name: String,
    /// Profile version.
    pub profile_version: String,
    /// Profile content digest.
    pub profile_sha256: String,
    /// exec, debug, sidecar or local.
    pub approach: String,
    /// Whether the scan completed.
    pub completed: bool,
    /// Why it failed, when it did.
    pub failure: Option<String>,
    /// Control counts, when the scan completed.
    pub counts: Option<Counts>,
    /// The threshold verdict, when a gate was applied.
    pub threshold_passed: Option<bool>,
    /// Start, Unix milliseconds.
    pub started_at_ms: i64,
    /// End, Unix milliseconds.
    pub finished_at_ms: i64,
    /// When the collector stored it, Unix milliseconds.
    pub persisted_at_ms: i64,
    /// The key whose signature verified.
    pub signer_key_id: String,
    /// The authenticated statement JSON.
    pub statement: String,
    /// The DSSE envelope exactly as received (possibly age-encrypted
    /// content already removed), so anyone can verify it again.
    pub envelope: Vec<u8>,
    /// Digest of the HDF report the statement binds.
    pub report_sha256: Option<String>,
    /// Size of that report.
    pub report_size: Option<i64>,
}

/// How a report body is kept at rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyEncoding {
    /// The report bytes themselves.
    Plain,
    /// age-encrypted to the collector's own recipients; the store never
    /// sees the plaintext.
    Age,
}

impl BodyEncoding {
    /// The column value.
    pub fn as_str(self) -> &'static str {
        match self {
            BodyEncoding::Plain => "plain",
            BodyEncoding::Age => "age",
        }
    }

    /// Reads a column value.
    ///
    /// # Errors
    /// [`StoreError::InvalidResult`] for a value this store never writes.
    pub fn parse(text: &str) -> Result<Self, StoreError> {
        match text {
            "plain" => Ok(BodyEncoding::Plain),
            "age" => Ok(BodyEncoding::Age),
            other => Err(StoreError::InvalidResult {
                field: "scan_reports.body_encoding".into(),
                reason: format!(
                    "unknown encoding {:?}",
                    other.chars().take(16).collect::<String>()
                ),
            }),
        }
    }
}

/// An HDF report to keep beside its result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// Media type (HDF).
    pub media_type: String,
    /// Lowercase hex SHA-256 of the plaintext report.
    pub sha256: String,
    /// The report bytes, or their ciphertext (see `encoding`).
    pub body: Vec<u8>,
    /// How `body` is kept.
    pub encoding: BodyEncoding,
    /// Each control's outcome, read from the plaintext when the result was
    /// verified (empty when read back: the index lives in its own table).
    pub controls: Vec<ControlOutcome>,
}

fn millis(field: &str, text: &str) -> Result<i64, StoreError> {
    let at = OffsetDateTime::parse(text, &Rfc3339).map_err(|e| StoreError::InvalidResult {
        field: field.into(),
        reason: format!("{text:?} is not RFC 3339: {e}"),
    })?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).map_err(|_| StoreError::InvalidResult {
        field: field.into(),
        reason: "out of range".into(),
    })
}

impl StoredResult {
    /// Whether this is an image scan (`target.kind: image`): those carry no
    /// namespace, and every container scan has one.
    pub fn is_image_scan(&self) -> bool {
        self.namespace.is_empty()
    }

    /// Builds the row for an envelope that [`scanfleet_trust::TrustedKeys`]
    /// verified, checking that a supplied report is the one the statement
    /// binds.
    ///
    /// # Errors
    /// [`StoreError::InvalidResult`] for a statement that cannot be stored
    /// (bad times) and [`StoreError::ReportMismatch`] for a foreign report.
    pub fn from_verified(
        envelope: &[u8],
        verified: &Verified,
        statement: &ScanStatement,
        report: Option<&[u8]>,
        persisted_at_ms: i64,
    ) -> Result<(Self, Option<Report>), StoreError> {
        let p = &statement.predicate;
        let report = match (report, &p.report) {
            (Some(body), Some(bound)) => {
                let digest = hex::encode(Sha256::digest(body));
                if digest != bound.sha256 {
                    return Err(StoreError::ReportMismatch {
                        expected: bound.sha256.clone(),
                        found: digest,
                    });
                }
                Some(Report {
                    media_type: bound.media_type.clone(),
                    sha256: digest,
                    body: body.to_vec(),
                    encoding: BodyEncoding::Plain,
                    controls: control_outcomes::from_hdf(body),
                })
            }
            (Some(_), None) => {
                return Err(StoreError::InvalidResult {
                    field: "predicate.report".into(),
                    reason: "a report was supplied but the statement binds none".into(),
                });
            }
            (None, _) => None,
        };
        let counts = p.summary.as_ref().map(|s| {
            let by = |k: &str| i64::from(s.failed_by_severity.get(k).copied().unwrap_or(0));
            Counts {
                passed: s.passed.into(),
                failed: s.failed.into(),
                not_reviewed: s.not_reviewed.into(),
                not_applicable: s.not_applicable.into(),
                error: s.error.into(),
                compliance_percent: s.compliance_percent,
                failed_critical: by("critical"),
                failed_high: by("high"),
                failed_medium: by("medium"),
                failed_low: by("low"),
            }
        });
        let row = Self {
            scan_id: p.scan_id.clone(),
            cluster: p.target.cluster.clone(),
            namespace: p.target.namespace.clone(),
            pod: p.target.pod.clone(),
            container: p.target.container.clone(),
            image: p.target.image.clone(),
            image_digest: p.target.image_digest.clone(),
            profile_name: p.profile.name.clone(),
            profile_version: p.profile.version.clone(),
            profile_sha256: p.profile.sha256.clone(),
            approach: p.approach.clone(),
            completed: p.outcome == ScanOutcome::Completed,
            failure: p.failure.clone(),
            counts,
            threshold_passed: p.threshold.as_ref().map(|t| t.passed),
            started_at_ms: millis("predicate.startedAt", &p.started_at)?,
            finished_at_ms: millis("predicate.finishedAt", &p.finished_at)?,
            persisted_at_ms,
            signer_key_id: verified.key_id.to_string(),
            statement: String::from_utf8_lossy(&verified.payload).into_owned(),
            envelope: envelope.to_vec(),
            report_sha256: p.report.as_ref().map(|r| r.sha256.clone()),
            report_size: p.report.as_ref().map(|r| r.size as i64),
        };
        Ok((row, report))
    }
}
