//! Conversions between stored rows and the wire messages of the `Results`
//! API (the only place that knows both): rows to `ScanResult`, the wire
//! filter to a store filter, and the in-memory filter `Watch` applies.

use scanfleet_contracts::v1::{
    self, Approach, ComplianceSummary, ProfileInput, ProfileRef, ScanOutcome, ScanResult,
    ScanTarget, SeverityCounts, ThresholdVerdict,
};
use scanfleet_result_store::{ResultFilter, StoreError, StoredResult};
use scanfleet_trust::statement::ThresholdVerdict as ClaimedVerdict;
use scanfleet_trust::{InputSource, InputUsed, InputValueUsed, ScanResultPredicate, ScanStatement};
use tonic::Status;

/// Maps store errors to gRPC status codes at the edge.
pub fn status(error: &StoreError) -> Status {
    match error {
        StoreError::InvalidPageToken(_) => Status::invalid_argument(error.to_string()),
        StoreError::Unavailable(_) => Status::unavailable(error.to_string()),
        other => Status::internal(other.to_string()),
    }
}

fn timestamp(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

fn millis(field: &str, ts: &prost_types::Timestamp) -> Result<i64, Status> {
    if !(0..1_000_000_000).contains(&ts.nanos) {
        return Err(Status::invalid_argument(format!(
            "{field}.nanos must be in 0..1e9"
        )));
    }
    ts.seconds
        .checked_mul(1000)
        .and_then(|s| s.checked_add(i64::from(ts.nanos / 1_000_000)))
        .ok_or_else(|| Status::invalid_argument(format!("{field} is out of range")))
}

fn approach(name: &str) -> Approach {
    match name {
        "exec" => Approach::Exec,
        "debug" => Approach::Debug,
        "sidecar" => Approach::Sidecar,
        _ => Approach::Unspecified,
    }
}

/// What the stored (signed, verified) statement claims beyond the row's
/// columns: the inputs, the requester and the threshold applied.
fn provenance(r: &StoredResult) -> Option<ScanResultPredicate> {
    ScanStatement::from_payload(r.statement.as_bytes())
        .ok()
        .map(|s| s.predicate)
}

fn inputs_to_wire(inputs: &[InputUsed]) -> Vec<ProfileInput> {
    inputs
        .iter()
        .map(|i| {
            let (values, list) = match &i.value {
                InputValueUsed::One(v) => (vec![v.clone()], false),
                InputValueUsed::Many(v) => (v.clone(), true),
            };
            ProfileInput {
                name: i.name.clone(),
                values,
                list,
                overridden: i.source == InputSource::Override,
            }
        })
        .collect()
}

/// A stored row as the wire message.
pub fn to_wire(r: &StoredResult) -> ScanResult {
    let claimed = provenance(r);
    let verdict = claimed.as_ref().and_then(|p| p.threshold.clone());
    ScanResult {
        scan_id: r.scan_id.clone(),
        target: Some(ScanTarget {
            cluster: r.cluster.clone(),
            namespace: r.namespace.clone(),
            pod: r.pod.clone(),
            container: r.container.clone(),
            image: Some(v1::ImageRef {
                reference: r.image.clone(),
                digest: r.image_digest.clone(),
            }),
            registry_image: None,
        }),
        profile: Some(ProfileRef {
            name: r.profile_name.clone(),
            pin: Some(v1::profile_ref::Pin::Version(r.profile_version.clone())),
        }),
        approach: approach(&r.approach) as i32,
        outcome: if r.completed {
            ScanOutcome::Completed
        } else {
            ScanOutcome::Failed
        } as i32,
        failure: r.failure.clone().unwrap_or_default(),
        summary: r.counts.as_ref().map(|c| ComplianceSummary {
            passed: c.passed as u32,
            failed: c.failed as u32,
            not_reviewed: c.not_reviewed as u32,
            not_applicable: c.not_applicable as u32,
            error: c.error as u32,
            compliance_percent: c.compliance_percent,
            failed_by_severity: Some(SeverityCounts {
                critical: c.failed_critical as u32,
                high: c.failed_high as u32,
                medium: c.failed_medium as u32,
                low: c.failed_low as u32,
            }),
        }),
        threshold: r.threshold_passed.map(|passed| {
            let v = verdict.unwrap_or(ClaimedVerdict {
                threshold: String::new(),
                sha256: None,
                passed,
                failures: Vec::new(),
            });
            ThresholdVerdict {
                threshold: v.threshold,
                passed,
                failures: v.failures,
                sha256: v.sha256.unwrap_or_default(),
            }
        }),
        started_at: Some(timestamp(r.started_at_ms)),
        finished_at: Some(timestamp(r.finished_at_ms)),
        persisted_at: Some(timestamp(r.persisted_at_ms)),
        signer_key_id: r.signer_key_id.clone(),
        envelope: r.envelope.clone(),
        report_sha256: r.report_sha256.clone().unwrap_or_default(),
        report_size: r.report_size.unwrap_or(0) as u64,
        inputs: claimed
            .as_ref()
            .map(|p| inputs_to_wire(&p.inputs))
            .unwrap_or_default(),
        requested_by: claimed.and_then(|p| p.requested_by).unwrap_or_default(),
    }
}

/// The wire filter as a store filter.
///
/// # Errors
/// `INVALID_ARGUMENT` naming the bad field.
pub fn filter_from_wire(filter: Option<v1::ResultFilter>) -> Result<ResultFilter, Status> {
    let Some(f) = filter else {
        return Ok(ResultFilter::default());
    };
    let text = |s: String| (!s.is_empty()).then_some(s);
    Ok(ResultFilter {
        cluster: text(f.cluster),
        namespace: text(f.namespace),
        namespaces: None,
        pod: text(f.pod),
        image_digest: text(f.image_digest),
        completed: match ScanOutcome::try_from(f.outcome) {
            Ok(ScanOutcome::Completed) => Some(true),
            Ok(ScanOutcome::Failed) => Some(false),
            Ok(ScanOutcome::Unspecified) => None,
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "filter.outcome: unknown value {}",
                    f.outcome
                )));
            }
        },
        threshold_passed: f.threshold_passed,
        since_ms: f
            .since
            .as_ref()
            .map(|t| millis("filter.since", t))
            .transpose()?,
        until_ms: f
            .until
            .as_ref()
            .map(|t| millis("filter.until", t))
            .transpose()?,
    })
}

/// Whether a stored row passes a filter (for `Watch`, which filters in
/// memory what the store filters in SQL).
pub fn matches(filter: &ResultFilter, r: &StoredResult) -> bool {
    let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
    eq(&filter.cluster, &r.cluster)
        && eq(&filter.namespace, &r.namespace)
        && filter
            .namespaces
            .as_ref()
            .is_none_or(|set| set.contains(&r.namespace))
        && eq(&filter.pod, &r.pod)
        && eq(&filter.image_digest, &r.image_digest)
        && filter.completed.is_none_or(|c| c == r.completed)
        && filter
            .threshold_passed
            .is_none_or(|t| r.threshold_passed == Some(t))
        && filter.since_ms.is_none_or(|s| r.finished_at_ms >= s)
        && filter.until_ms.is_none_or(|u| r.finished_at_ms < u)
}

/// The wire form of an opened drift report.
pub fn drift_to_wire(d: &crate::drift_recording::DriftReport) -> v1::DriftReport {
    let side = |s: &crate::drift::DriftSide| v1::DriftSide {
        status: s.status.clone(),
        message: s.message.clone(),
    };
    v1::DriftReport {
        container_scan_id: d.record.container_scan_id.clone(),
        image_scan_id: d.record.image_scan_id.clone(),
        profile_name: d.record.profile_name.clone(),
        profile_version: d.record.profile_version.clone(),
        computed_at: Some(timestamp(d.record.computed_at_ms)),
        controls: d
            .controls
            .iter()
            .map(|c| v1::ControlDrift {
                id: c.id.clone(),
                title: c.title.clone(),
                image: Some(side(&c.image)),
                container: Some(side(&c.container)),
            })
            .collect(),
    }
}
