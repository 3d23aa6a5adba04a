//! HDF (InSpec exec-json) output, following the emitter checklist in
//! `notes/hdf-saf.md`, and the inspecjs status/severity rules used to read HDF
//! back (for thresholds and tests).

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::checks::Status;
use crate::profile::Severity;
use crate::scan::ScanReport;

/// Version written to HDF `version`: the scanner's own version.
pub const SCANNER_VERSION: &str = env!("CARGO_PKG_VERSION");

/// RFC 3339 UTC timestamp without external date crates.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// One result as HDF: `message` on failure, `skip_message` on skip, and a
/// backtrace only for real errors (any backtrace makes inspecjs say error).
fn result_json(r: &crate::checks::CheckResult, run_time: f64, start: &str, source: &str) -> Value {
    let mut m = Map::new();
    m.insert("status".into(), json!(r.status.as_str()));
    m.insert("code_desc".into(), json!(r.code_desc));
    m.insert("run_time".into(), json!(run_time));
    m.insert("start_time".into(), json!(start));
    match r.status {
        Status::Failed => {
            m.insert("message".into(), json!(r.message));
        }
        Status::Skipped => {
            m.insert("skip_message".into(), json!(r.message));
        }
        Status::Error => {
            m.insert("message".into(), json!(r.message));
            m.insert("exception".into(), json!("ScanError"));
            m.insert("backtrace".into(), json!([source]));
        }
        Status::Passed => {}
    }
    Value::Object(m)
}

/// One control as HDF, with the impact its evaluation ended with.
fn control_json(
    c: &crate::profile::Control,
    o: &crate::scan::ControlOutcome,
    per_control: f64,
    start: &str,
) -> Value {
    let source = format!("{}:{}", c.source.file, c.source.line);
    let per_result = per_control / o.results.len().max(1) as f64;
    let results: Vec<Value> = o
        .results
        .iter()
        .map(|r| result_json(r, per_result, start, &source))
        .collect();
    let mut descriptions = Vec::new();
    if !c.desc.is_empty() {
        descriptions.push(json!({"label": "default", "data": c.desc}));
    }
    for (label, data) in &c.descriptions {
        descriptions.push(json!({"label": label, "data": data}));
    }
    let text_or_null = |s: &str| if s.is_empty() { Value::Null } else { json!(s) };
    json!({
        "id": c.id,
        "title": text_or_null(&c.title),
        "desc": text_or_null(&c.desc),
        "descriptions": descriptions,
        "impact": o.impact.unwrap_or(c.impact),
        "refs": c.refs,
        "tags": c.tags,
        "code": c.code,
        "source_location": {"ref": format!("controls/{}", c.source.file.trim_start_matches("controls/")), "line": c.source.line},
        "results": results,
    })
}

/// Renders a report as an HDF document.
pub fn to_hdf(report: &ScanReport) -> Value {
    let p = &report.profile;
    let start = rfc3339(report.started);
    let per_control = if report.outcomes.is_empty() {
        0.0
    } else {
        report.duration / report.outcomes.len() as f64
    };
    let controls: Vec<Value> = report
        .outcomes
        .iter()
        .map(|o| control_json(&p.controls[o.control], o, per_control, &start))
        .collect();
    let mut groups: Vec<Value> = Vec::new();
    for c in &p.controls {
        let file = format!("controls/{}", c.source.file.trim_start_matches("controls/"));
        match groups.iter_mut().find(|g| g["id"] == json!(file)) {
            Some(g) => g["controls"]
                .as_array_mut()
                .expect("array")
                .push(json!(c.id)),
            None => groups.push(json!({"id": file, "controls": [c.id]})),
        }
    }
    let attributes: Vec<Value> = p
        .metadata
        .inputs
        .iter()
        .map(|i| {
            let value = match &i.value {
                crate::profile::InputValue::Scalar(s) => json!(s),
                crate::profile::InputValue::List(l) => json!(l),
                crate::profile::InputValue::Typed(v) => v.clone(),
            };
            json!({"name": i.name, "options": {"value": value, "description": i.description}})
        })
        .collect();
    json!({
        "platform": {
            "name": report.platform_name,
            "release": report.platform_release,
            "target_id": report.target_id,
        },
        "version": SCANNER_VERSION,
        "statistics": {"duration": report.duration},
        "profiles": [{
            "name": p.metadata.name,
            "title": p.metadata.title,
            "version": p.metadata.version,
            "maintainer": p.metadata.maintainer,
            "summary": p.metadata.summary,
            "license": p.metadata.license,
            "copyright": p.metadata.copyright,
            "copyright_email": p.metadata.copyright_email,
            "sha256": p.sha256,
            "supports": p.metadata.supports,
            "attributes": attributes,
            "groups": groups,
            "status": "loaded",
            "controls": controls,
        }],
        "passthrough": {
            "scanner": "scanfleet",
            "facts_gathered": report.facts_gathered,
            "exec_round_trips": report.stats.round_trips,
            "bytes_transferred": report.stats.bytes_transferred,
        },
    })
}

/// A control's status as inspecjs computes it (§2.1 of the notes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ControlStatus {
    /// `passed`
    Passed,
    /// `failed`
    Failed,
    /// `skipped` (Not Reviewed)
    NotReviewed,
    /// `no_impact` (Not Applicable)
    NotApplicable,
    /// `error` (Profile Error)
    ProfileError,
}

impl ControlStatus {
    /// The SAF threshold/summary key.
    pub fn key(self) -> &'static str {
        match self {
            Self::Passed => "passed",
            Self::Failed => "failed",
            Self::NotReviewed => "skipped",
            Self::NotApplicable => "no_impact",
            Self::ProfileError => "error",
        }
    }

    /// Parses a threshold key.
    pub fn from_key(k: &str) -> Option<Self> {
        [
            Self::Passed,
            Self::Failed,
            Self::NotReviewed,
            Self::NotApplicable,
            Self::ProfileError,
        ]
        .into_iter()
        .find(|s| s.key() == k)
    }
}

/// inspecjs `compute_status` over an HDF control object.
pub fn control_status(control: &Value) -> ControlStatus {
    let results = control["results"].as_array();
    let segments: Vec<&str> = results
        .map(|r| {
            r.iter()
                .map(|res| {
                    let bt = &res["backtrace"];
                    if !bt.is_null() && bt != &Value::Bool(false) {
                        "error"
                    } else {
                        res["status"].as_str().unwrap_or("no_status")
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    if results.is_none() || segments.contains(&"error") {
        return ControlStatus::ProfileError;
    }
    let waived = match &control["waiver_data"]["skipped_due_to_waiver"] {
        Value::Bool(b) => *b,
        Value::String(s) => !s.is_empty(),
        _ => false,
    };
    if waived || control["impact"].as_f64() == Some(0.0) {
        return ControlStatus::NotApplicable;
    }
    if segments.is_empty() {
        return ControlStatus::ProfileError;
    }
    if segments.contains(&"failed") {
        ControlStatus::Failed
    } else if segments.contains(&"passed") {
        ControlStatus::Passed
    } else if segments.contains(&"skipped") {
        ControlStatus::NotReviewed
    } else {
        ControlStatus::ProfileError
    }
}

/// inspecjs `compute_severity`: the tag as written (when valid), else from impact.
/// Returns the string so the case trap (`"High"`) stays visible to callers.
pub fn control_severity(control: &Value) -> String {
    for key in ["severityoverride", "severity"] {
        if let Some(s) = control["tags"][key].as_str()
            && Severity::parse(&s.to_lowercase()).is_some()
        {
            return s.to_string();
        }
    }
    Severity::from_impact(control["impact"].as_f64().unwrap_or(0.0))
        .as_str()
        .to_string()
}
