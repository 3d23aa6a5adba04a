//! Each control's status and severity in a verified report, kept beside the
//! result so "which workloads fail control X" is an indexed query.
//!
//! The status and severity rules are inspecjs's, owned by
//! `scanfleet_scan_engine::hdf`; this module only reads them out of the
//! HDF document. Reports are signed but their content is still written by
//! a scanner inside a container's reach, so the list is bounded and ids
//! are cut to a length a page can show.

use scanfleet_scan_engine::hdf::{control_severity, control_status};

/// Most controls indexed per result (profiles have hundreds, not more).
pub const MAX_CONTROLS: usize = 5_000;
/// Longest control id kept, in characters.
pub const MAX_CONTROL_ID_CHARS: usize = 200;

/// One control's outcome in one result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlOutcome {
    /// The control id (`V-12345`, `C-1.1`).
    pub control_id: String,
    /// `critical`, `high`, `medium`, `low` or `none`, lowercase.
    pub severity: String,
    /// The SAF status key: `passed`, `failed`, `skipped`, `no_impact`,
    /// `error`.
    pub status: String,
}

/// The outcomes of every control in an HDF report; a body that is not HDF
/// has none (the result is still stored, it just cannot be searched by
/// control).
pub fn from_hdf(body: &[u8]) -> Vec<ControlOutcome> {
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Vec::new();
    };
    let mut seen = std::collections::BTreeSet::new();
    let controls = doc["profiles"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["controls"].as_array().into_iter().flatten());
    let mut outcomes = Vec::new();
    for control in controls {
        let Some(id) = control["id"].as_str() else {
            continue;
        };
        let id: String = id.chars().take(MAX_CONTROL_ID_CHARS).collect();
        if !seen.insert(id.clone()) {
            continue;
        }
        outcomes.push(ControlOutcome {
            control_id: id,
            severity: control_severity(control).to_lowercase(),
            status: control_status(control).key().to_owned(),
        });
        if outcomes.len() == MAX_CONTROLS {
            break;
        }
    }
    outcomes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_severities_follow_inspecjs_and_duplicates_count_once() {
        let hdf = serde_json::json!({"profiles": [{"controls": [
            {"id": "C-1", "impact": 0.7, "tags": {"severity": "high"},
             "results": [{"status": "failed"}, {"status": "passed"}]},
            {"id": "C-2", "impact": 0.3, "tags": {}, "results": [{"status": "passed"}]},
            {"id": "C-3", "impact": 0.0, "tags": {}, "results": [{"status": "failed"}]},
            {"id": "C-1", "impact": 0.1, "tags": {}, "results": []},
            {"impact": 0.5, "results": []}
        ]}]});
        let got = from_hdf(hdf.to_string().as_bytes());
        let got: Vec<_> = got
            .iter()
            .map(|o| {
                (
                    o.control_id.as_str(),
                    o.severity.as_str(),
                    o.status.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("C-1", "high", "failed"),
                ("C-2", "low", "passed"),
                ("C-3", "none", "no_impact"),
            ]
        );
    }

    #[test]
    fn a_body_that_is_not_hdf_has_no_outcomes_and_ids_are_bounded() {
        assert!(from_hdf(b"not json").is_empty());
        assert!(from_hdf(br#"{"hdf":"x"}"#).is_empty());
        let long = "x".repeat(10_000);
        let hdf = serde_json::json!({"profiles": [{"controls": [
            {"id": long, "impact": 0.5, "results": [{"status": "passed"}]}]}]});
        assert_eq!(
            from_hdf(hdf.to_string().as_bytes())[0].control_id.len(),
            MAX_CONTROL_ID_CHARS
        );
    }
}
