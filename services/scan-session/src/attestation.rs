//! From a finished (or refused) scan to the in-toto statement that gets
//! signed: the one place that decides what a scan result *claims*, so the
//! worker and the one-shot CLI can never disagree about it.
//!
//! The claim is about the digest the kubelet reported for the container,
//! never a tag; the HDF report is bound by SHA-256, and the threshold verdict
//! is evaluated here, in Rust, over the same HDF a third party would check.

use std::collections::BTreeMap;
use std::time::SystemTime;

use scanfleet_scan_engine::hdf::{ControlStatus, rfc3339};
use scanfleet_scan_engine::profile::{InputValue, Profile};
use scanfleet_scan_engine::threshold::{Threshold, counts_from_hdf, evaluate};
use scanfleet_trust::ScanStatement;
use scanfleet_trust::statement::{
    ComplianceSummary, DriftSummary, HDF_MEDIA_TYPE, InputSource, InputUsed, InputValueUsed,
    ProfileRef, ReportRef, ScanOutcome, ScanResultPredicate, ScanTargetRef, ScannerRef, Subject,
    TargetKind, ThresholdVerdict,
};
use sha2::{Digest, Sha256};

/// Where the scanned container ran, and what produced the result.
#[derive(Clone, Debug)]
pub struct Attribution {
    /// The scan's id (ULID).
    pub scan_id: String,
    /// Configured cluster name.
    pub cluster: String,
    /// Namespace.
    pub namespace: String,
    /// Pod.
    pub pod: String,
    /// Container.
    pub container: String,
    /// Worker instance id, or `cli`.
    pub scanner_id: String,
    /// The authenticated principal who asked for the scan, if anyone did.
    pub requested_by: Option<String>,
    /// Every input the profile was evaluated with ([`inputs_used`]).
    pub inputs: Vec<InputUsed>,
}

/// Every input of `profile` as evaluated, marked as the profile's default
/// or an override from `overrides` (the scan's requested values).
pub fn inputs_used(profile: &Profile, overrides: &BTreeMap<String, String>) -> Vec<InputUsed> {
    profile
        .metadata
        .inputs
        .iter()
        .map(|input| InputUsed {
            name: input.name.clone(),
            value: match &input.value {
                InputValue::Scalar(v) => InputValueUsed::One(v.clone()),
                InputValue::List(v) => InputValueUsed::Many(v.clone()),
                InputValue::Typed(v) => typed_used(v),
            },
            source: if overrides.contains_key(&input.name) {
                InputSource::Override
            } else {
                InputSource::Default
            },
        })
        .collect()
}

/// An InSpec-typed input as recorded: a string as itself, a list of scalars
/// as their texts, anything else (numbers, booleans, hashes) as its JSON.
fn typed_used(v: &serde_json::Value) -> InputValueUsed {
    let text = |x: &serde_json::Value| match x {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match v {
        serde_json::Value::Array(items) => InputValueUsed::Many(items.iter().map(text).collect()),
        other => InputValueUsed::One(text(other)),
    }
}

/// A threshold to gate with, by name.
#[derive(Clone, Debug)]
pub struct NamedThreshold {
    /// Name recorded in the verdict (file name or configured name).
    pub name: String,
    /// Lowercase hex SHA-256 of the threshold file, recorded in the verdict.
    pub sha256: Option<String>,
    /// The parsed threshold.
    pub threshold: Threshold,
}

/// Why no statement could be made.
#[derive(Debug, thiserror::Error)]
pub enum AttestationError {
    /// The image digest is unusable as an in-toto subject.
    #[error("subject: {0}")]
    Subject(String),
    /// Our own HDF did not validate (a bug, reported rather than signed).
    #[error("the HDF report does not validate: {0}")]
    Report(String),
}

fn image_name(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    match without_digest.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => name,
        _ => without_digest,
    }
}

/// The statement for a completed scan, plus the threshold verdict.
///
/// # Errors
/// [`AttestationError`] when the digest or the report is unusable.
#[allow(clippy::too_many_arguments)]
pub fn completed_statement(
    who: &Attribution,
    image: &str,
    image_digest: &str,
    approach: &str,
    hdf: &serde_json::Value,
    report_bytes: &[u8],
    threshold: Option<&NamedThreshold>,
    started: SystemTime,
) -> Result<(ScanStatement, Option<ThresholdVerdict>), AttestationError> {
    let counts = counts_from_hdf(hdf).map_err(|e| AttestationError::Report(e.to_string()))?;
    let total = |s: ControlStatus| counts.totals.get(&s).copied().unwrap_or(0) as u32;
    let mut failed_by_severity = std::collections::BTreeMap::new();
    for ((status, severity), ids) in &counts.buckets {
        if *status == ControlStatus::Failed {
            *failed_by_severity.entry(severity.clone()).or_insert(0) += ids.len() as u32;
        }
    }
    let (passed, failed) = (total(ControlStatus::Passed), total(ControlStatus::Failed));
    let (skipped, error) = (
        total(ControlStatus::NotReviewed),
        total(ControlStatus::ProfileError),
    );
    let denominator = passed + failed + skipped + error;
    let verdict = threshold.map(|t| {
        let failures = evaluate(&t.threshold, &counts);
        ThresholdVerdict {
            threshold: t.name.clone(),
            sha256: t.sha256.clone(),
            passed: failures.is_empty(),
            failures: failures.into_iter().map(|f| f.0).collect(),
        }
    });
    let profile = &hdf["profiles"][0];
    let predicate = ScanResultPredicate {
        scan_id: who.scan_id.clone(),
        target: target_ref(who, image, image_digest),
        profile: ProfileRef {
            name: profile["name"].as_str().unwrap_or_default().to_owned(),
            version: profile["version"].as_str().unwrap_or_default().to_owned(),
            sha256: profile["sha256"].as_str().unwrap_or_default().to_owned(),
        },
        approach: approach.to_owned(),
        outcome: ScanOutcome::Completed,
        failure: None,
        summary: Some(ComplianceSummary {
            passed,
            failed,
            not_reviewed: skipped,
            not_applicable: total(ControlStatus::NotApplicable),
            error,
            compliance_percent: if denominator == 0 {
                0.0
            } else {
                100.0 * f64::from(passed) / f64::from(denominator)
            },
            failed_by_severity,
        }),
        threshold: verdict.clone(),
        report: Some(ReportRef {
            media_type: HDF_MEDIA_TYPE.to_owned(),
            sha256: hex(&Sha256::digest(report_bytes)),
            size: report_bytes.len() as u64,
        }),
        inputs: who.inputs.clone(),
        requested_by: who.requested_by.clone(),
        started_at: rfc3339(started),
        finished_at: rfc3339(SystemTime::now()),
        scanner: scanner_ref(who),
        drift: None,
    };
    let subject = Subject::image(image_name(image), image_digest)
        .map_err(|e| AttestationError::Subject(e.to_string()))?;
    Ok((ScanStatement::for_image(subject, predicate), verdict))
}

/// The statement for a scan that could not run, when the image digest is
/// known (a statement must be about a digest; otherwise there is none).
pub fn failed_statement(
    who: &Attribution,
    image: &str,
    image_digest: &str,
    approach: &str,
    profile: ProfileRef,
    reason: &str,
    started: SystemTime,
) -> Option<ScanStatement> {
    let subject = Subject::image(image_name(image), image_digest).ok()?;
    Some(ScanStatement::for_image(
        subject,
        ScanResultPredicate {
            scan_id: who.scan_id.clone(),
            target: target_ref(who, image, image_digest),
            profile,
            approach: approach.to_owned(),
            outcome: ScanOutcome::Failed,
            failure: Some(reason.chars().take(2000).collect()),
            summary: None,
            threshold: None,
            report: None,
            inputs: who.inputs.clone(),
            requested_by: who.requested_by.clone(),
            started_at: rfc3339(started),
            finished_at: rfc3339(SystemTime::now()),
            scanner: scanner_ref(who),
            drift: None,
        },
    ))
}

fn target_ref(who: &Attribution, image: &str, image_digest: &str) -> ScanTargetRef {
    ScanTargetRef {
        kind: TargetKind::Container,
        cluster: who.cluster.clone(),
        namespace: who.namespace.clone(),
        pod: who.pod.clone(),
        container: who.container.clone(),
        image: image.to_owned(),
        image_digest: image_digest.to_owned(),
    }
}

/// Marks a statement built for an unpacked image as an image scan: its
/// subject is already the image digest; the predicate then says so, so no
/// reader mistakes it for a container's result.
pub fn as_image_scan(mut statement: ScanStatement) -> ScanStatement {
    statement.predicate.target.kind = TargetKind::Image;
    statement
}

/// Adds a container scan's drift against an image scan the signer knew
/// (see `DriftSummary`); the report binding is unchanged.
pub fn with_drift(mut statement: ScanStatement, drift: DriftSummary) -> ScanStatement {
    statement.predicate.drift = Some(drift);
    statement
}

fn scanner_ref(who: &Attribution) -> ScannerRef {
    ScannerRef {
        id: who.scanner_id.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subject_is_the_repository_without_tag_or_digest() {
        assert_eq!(
            image_name("registry.local:5000/shop/web:1.2"),
            "registry.local:5000/shop/web"
        );
        assert_eq!(image_name("shop/web@sha256:ab"), "shop/web");
        assert_eq!(image_name("kubesim.local/scanner"), "kubesim.local/scanner");
        assert_eq!(image_name("nginx:1.27"), "nginx");
        assert_eq!(
            image_name("registry.local:5000/shop/web@sha256:ab"),
            "registry.local:5000/shop/web"
        );
    }

    #[test]
    fn typed_inspec_inputs_are_recorded_as_text() {
        use serde_json::json;
        assert_eq!(typed_used(&json!("x")), InputValueUsed::One("x".into()));
        assert_eq!(typed_used(&json!(30)), InputValueUsed::One("30".into()));
        assert_eq!(
            typed_used(&json!(["a", 2])),
            InputValueUsed::Many(vec!["a".into(), "2".into()])
        );
        assert_eq!(
            typed_used(&json!({"k": 1})),
            InputValueUsed::One(r#"{"k":1}"#.into())
        );
    }
}
