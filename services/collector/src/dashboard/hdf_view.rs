//! A report's controls as the scan page shows them.
//!
//! Everything here comes from a report a scanner wrote from inside a
//! container's reach: it is signed, not trusted. Texts are cut to a length
//! a page can show (the templates escape them), and the number of controls
//! read is bounded. Status and severity follow inspecjs, as owned by
//! `scanfleet_scan_engine::hdf`.

use scanfleet_scan_engine::hdf::{control_severity, control_status};
use serde_json::Value;

/// Most controls read from one report.
pub const MAX_CONTROLS: usize = 5_000;
/// Longest text shown, in characters.
pub const MAX_TEXT_CHARS: usize = 4_000;

/// One check inside a control.
pub struct CheckView {
    /// `passed`, `failed`, `skipped`, `error`.
    pub status: String,
    /// What was checked.
    pub code_desc: String,
    /// Why it failed or was skipped.
    pub message: String,
}

/// One control.
pub struct ControlView {
    /// Its id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// HDF impact, 0.0 to 1.0.
    pub impact: f64,
    /// Lowercase severity.
    pub severity: String,
    /// SAF status key.
    pub status: &'static str,
    /// Its description.
    pub desc: String,
    /// Its checks.
    pub checks: Vec<CheckView>,
}

fn text(v: &Value) -> String {
    v.as_str()
        .unwrap_or_default()
        .chars()
        .take(MAX_TEXT_CHARS)
        .collect()
}

/// The controls of an HDF document (none when it is not HDF).
pub fn controls(body: &[u8]) -> Vec<ControlView> {
    let Ok(doc) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    doc["profiles"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["controls"].as_array().into_iter().flatten())
        .take(MAX_CONTROLS)
        .map(|c| ControlView {
            id: text(&c["id"]),
            title: text(&c["title"]),
            impact: c["impact"].as_f64().unwrap_or(0.0),
            severity: control_severity(c).to_lowercase(),
            status: control_status(c).key(),
            desc: text(&c["desc"]),
            checks: c["results"]
                .as_array()
                .into_iter()
                .flatten()
                .take(100)
                .map(|r| CheckView {
                    status: text(&r["status"]),
                    code_desc: text(&r["code_desc"]),
                    message: text(&r["message"]),
                })
                .collect(),
        })
        .collect()
}

/// How a status key reads on a page.
pub fn status_label(key: &str) -> &'static str {
    match key {
        "passed" => "Passed",
        "failed" => "Failed",
        "skipped" => "Not reviewed",
        "no_impact" => "Not applicable",
        "error" => "Error",
        _ => "Unknown",
    }
}

/// The status keys, in the order filters offer them.
pub const STATUSES: [&str; 5] = ["failed", "passed", "skipped", "no_impact", "error"];
/// The severities, in the order filters offer them.
pub const SEVERITIES: [&str; 5] = ["critical", "high", "medium", "low", "none"];
