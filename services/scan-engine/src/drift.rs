//! Drift: the controls whose status differs between an image's scan and a
//! scan of a container running that image, with the same profile version.
//!
//! A container that changed its own filesystem after start (a
//! world-writable file written at runtime, an account added) shows exactly
//! those controls here. No IO: the collector (for its drift reports) and
//! the worker (for the summary in a container scan's statement) hand in
//! both HDF reports; statuses follow the HDF rule [`crate::hdf`] owns, so
//! drift and every summary agree on what "failed" means.
//!
//! A control the image scan *skipped* is not drift, whatever the container
//! says: an image has no running process and no environment, so runtime
//! controls are skipped on every image scan, and listing them would make
//! every container "drift" by the same controls and hide the real changes.
//! The container's own result for such a control stays in its scan. The
//! cost: a control skipped in the image by its own guard (`only_if` on a
//! file the image lacks) that fails once the container adds the file is
//! not reported as drift either; the container scan still fails it.

use std::collections::BTreeMap;

use crate::hdf::control_status;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Longest message kept per side of a drifted control.
pub const MAX_DRIFT_MESSAGE: usize = 500;

/// One control whose status differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlDrift {
    /// The control id.
    pub id: String,
    /// Its title, from the container's report.
    pub title: String,
    /// Status and message in the image's scan.
    pub image: DriftSide,
    /// Status and message in the container's scan.
    pub container: DriftSide,
}

/// One side of a drifted control.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftSide {
    /// HDF status key (`passed`, `failed`, `skipped`, `no_impact`,
    /// `error`), or `absent` when this side has no such control.
    pub status: String,
    /// The failing (or first) results' messages, bounded.
    pub message: String,
}

/// Why two reports cannot be compared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriftError {
    /// A report is not HDF with one profile.
    #[error("the {0} report is not an HDF report with a profile")]
    NotHdf(&'static str),
    /// Different profiles or versions: every control would "drift".
    #[error("profiles differ: image scanned with {image}, container with {container}")]
    ProfileMismatch {
        /// `name@version` of the image's scan.
        image: String,
        /// `name@version` of the container's scan.
        container: String,
    },
}

fn profile_of<'a>(hdf: &'a Value, which: &'static str) -> Result<&'a Value, DriftError> {
    hdf["profiles"]
        .as_array()
        .and_then(|p| p.first())
        .filter(|p| p["controls"].is_array())
        .ok_or(DriftError::NotHdf(which))
}

fn pin(profile: &Value) -> String {
    format!(
        "{}@{}",
        profile["name"].as_str().unwrap_or_default(),
        profile["version"].as_str().unwrap_or_default()
    )
}

fn message(control: &Value) -> String {
    let results = control["results"].as_array().cloned().unwrap_or_default();
    let failing: Vec<&Value> = results
        .iter()
        .filter(|r| r["status"].as_str() != Some("passed"))
        .collect();
    let chosen = if failing.is_empty() {
        results.iter().take(1).collect()
    } else {
        failing
    };
    let mut out = String::new();
    for r in chosen {
        let text = r["message"]
            .as_str()
            .or_else(|| r["code_desc"].as_str())
            .unwrap_or_default();
        if !out.is_empty() {
            out.push_str("; ");
        }
        out.push_str(text);
        if out.len() > MAX_DRIFT_MESSAGE {
            let mut cut = MAX_DRIFT_MESSAGE;
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
            out.push('…');
            break;
        }
    }
    out
}

fn side(control: Option<&Value>) -> DriftSide {
    match control {
        Some(c) => DriftSide {
            status: control_status(c).key().to_owned(),
            message: message(c),
        },
        None => DriftSide {
            status: "absent".into(),
            message: String::new(),
        },
    }
}

fn by_id(profile: &Value) -> BTreeMap<String, &Value> {
    profile["controls"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| Some((c["id"].as_str()?.to_owned(), c)))
        .collect()
}

/// The controls whose status differs between the image's report and the
/// container's, in id order.
///
/// # Errors
/// [`DriftError`] when a report is not HDF or the profiles differ.
pub fn control_drift(
    image_hdf: &Value,
    container_hdf: &Value,
) -> Result<Vec<ControlDrift>, DriftError> {
    let (image, container) = (
        profile_of(image_hdf, "image")?,
        profile_of(container_hdf, "container")?,
    );
    if pin(image) != pin(container) {
        return Err(DriftError::ProfileMismatch {
            image: pin(image),
            container: pin(container),
        });
    }
    let (image, container) = (by_id(image), by_id(container));
    let mut ids: Vec<&String> = image.keys().chain(container.keys()).collect();
    ids.sort();
    ids.dedup();
    let mut out = Vec::new();
    for id in ids {
        let (i, c) = (
            side(image.get(id).copied()),
            side(container.get(id).copied()),
        );
        if i.status != c.status && i.status != "skipped" {
            let title = container
                .get(id)
                .or_else(|| image.get(id))
                .and_then(|c| c["title"].as_str())
                .unwrap_or_default()
                .to_owned();
            out.push(ControlDrift {
                id: id.clone(),
                title,
                image: i,
                container: c,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn hdf(version: &str, controls: &[(&str, &str, &str)]) -> Value {
        json!({"profiles": [{
            "name": "container-baseline",
            "version": version,
            "controls": controls.iter().map(|(id, status, msg)| json!({
                "id": id, "title": format!("title {id}"), "impact": 0.5,
                "results": [{"status": status, "code_desc": id, "message": msg}],
            })).collect::<Vec<_>>(),
        }]})
    }

    #[test]
    fn only_controls_whose_status_changed_drift() {
        let image = hdf(
            "1.0.0",
            &[
                ("a", "passed", ""),
                ("b", "passed", ""),
                ("c", "failed", "x"),
                ("runtime", "skipped", "no processes are visible"),
            ],
        );
        let container = hdf(
            "1.0.0",
            &[
                ("a", "passed", ""),
                ("b", "failed", "/tmp/evil is world-writable"),
                ("c", "failed", "x"),
                ("d", "passed", ""),
                ("runtime", "failed", "pid 1 runs as root"),
            ],
        );
        let drift = control_drift(&image, &container).unwrap();
        assert_eq!(
            drift.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
            ["b", "d"]
        );
        assert_eq!(drift[0].image.status, "passed");
        assert_eq!(drift[0].container.status, "failed");
        assert_eq!(drift[0].container.message, "/tmp/evil is world-writable");
        assert_eq!(drift[0].title, "title b");
        assert_eq!(drift[1].image.status, "absent");
        assert!(control_drift(&image, &image).unwrap().is_empty());
    }

    #[test]
    fn different_profile_versions_and_non_hdf_are_refused() {
        let a = hdf("1.0.0", &[]);
        let b = hdf("1.1.0", &[]);
        assert_eq!(
            control_drift(&a, &b).unwrap_err().to_string(),
            "profiles differ: image scanned with container-baseline@1.0.0, container with \
             container-baseline@1.1.0"
        );
        assert_eq!(
            control_drift(&json!({}), &a).unwrap_err(),
            DriftError::NotHdf("image")
        );
        let long = hdf("1.0.0", &[("a", "failed", &"é".repeat(400))]);
        let ok = hdf("1.0.0", &[("a", "passed", "")]);
        let d = control_drift(&ok, &long).unwrap();
        assert!(d[0].container.message.len() <= MAX_DRIFT_MESSAGE + '…'.len_utf8());
    }
}
