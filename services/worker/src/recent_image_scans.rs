//! Image scans this worker completed recently, so that a container scan of
//! the same digest with the same profile version can carry its drift in
//! its own signed statement.
//!
//! In memory and bounded: the last [`CAPACITY`] completed image scans,
//! oldest forgotten first. A worker that restarted, or did not scan the
//! image itself, knows nothing, and then the statement carries no drift
//! (the collector's drift report, computed from stored results, is the
//! complete record). A summary is only ever computed from an HDF report
//! this process produced for that exact digest and `name@version`, with
//! the one comparison the collector uses ([`control_drift`]), so the
//! worker never claims drift it cannot know.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use scanfleet_scan_engine::drift::control_drift;
use scanfleet_trust::ScanStatement;
use scanfleet_trust::statement::{DriftSummary, ScanOutcome, TargetKind};
use serde_json::Value;

/// How many image scans are remembered (each keeps its HDF report).
pub const CAPACITY: usize = 16;

struct Remembered {
    digest: String,
    pin: (String, String),
    scan_id: String,
    hdf: Arc<Value>,
}

/// The recent completed image scans of this worker process.
#[derive(Default)]
pub struct RecentImageScans {
    scans: Mutex<VecDeque<Remembered>>,
}

/// The digest and `(name, version)` a completed scan with a report is
/// about, with its parsed report.
fn comparable(statement: &ScanStatement, report: Option<&[u8]>) -> Option<Value> {
    let p = &statement.predicate;
    if p.outcome != ScanOutcome::Completed || p.report.is_none() {
        return None;
    }
    serde_json::from_slice(report?).ok()
}

impl RecentImageScans {
    /// Remembers a completed image scan (anything else is ignored).
    pub fn remember(&self, statement: &ScanStatement, report: Option<&[u8]>) {
        let p = &statement.predicate;
        if p.target.kind != TargetKind::Image {
            return;
        }
        let Some(hdf) = comparable(statement, report) else {
            return;
        };
        let mut scans = self.scans.lock().unwrap_or_else(|e| e.into_inner());
        let pin = (p.profile.name.clone(), p.profile.version.clone());
        scans.retain(|r| !(r.digest == p.target.image_digest && r.pin == pin));
        if scans.len() >= CAPACITY {
            scans.pop_front();
        }
        scans.push_back(Remembered {
            digest: p.target.image_digest.clone(),
            pin,
            scan_id: p.scan_id.clone(),
            hdf: Arc::new(hdf),
        });
    }

    /// The drift of a completed container scan against the remembered
    /// image scan of its digest and profile version, if there is one.
    pub fn drift_for(
        &self,
        statement: &ScanStatement,
        report: Option<&[u8]>,
    ) -> Option<DriftSummary> {
        let p = &statement.predicate;
        if p.target.kind != TargetKind::Container {
            return None;
        }
        let container = comparable(statement, report)?;
        let (scan_id, image) = {
            let scans = self.scans.lock().unwrap_or_else(|e| e.into_inner());
            let found = scans.iter().rev().find(|r| {
                r.digest == p.target.image_digest
                    && r.pin.0 == p.profile.name
                    && r.pin.1 == p.profile.version
            })?;
            (found.scan_id.clone(), found.hdf.clone())
        };
        let drifted = control_drift(&image, &container).ok()?;
        Some(DriftSummary {
            image_scan_id: scan_id,
            controls: drifted.into_iter().map(|c| c.id).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use scanfleet_trust::statement::{ReportRef, ScanResultPredicate, Subject};
    use serde_json::json;

    use super::*;

    fn report(version: &str, b: &str) -> Vec<u8> {
        json!({"profiles": [{"name": "p", "version": version, "controls": [
            {"id": "a", "impact": 0.5, "results": [{"status": "passed"}]},
            {"id": "b", "impact": 0.5, "results": [{"status": b}]},
        ]}]})
        .to_string()
        .into_bytes()
    }

    fn statement(id: &str, kind: TargetKind, digest: u8, version: &str) -> ScanStatement {
        let base = r#"{"scanId":"x","target":{"cluster":"c","namespace":"n","pod":"p",
            "container":"c","image":"i","imageDigest":"sha256:00"},
            "profile":{"name":"p","version":"1","sha256":""},"approach":"exec",
            "outcome":"completed","startedAt":"","finishedAt":"",
            "scanner":{"id":"w","version":"0"}}"#;
        let mut p: ScanResultPredicate = serde_json::from_str(base).unwrap();
        p.scan_id = id.into();
        p.target.kind = kind;
        p.target.image_digest = format!("sha256:{}", format!("{digest:02x}").repeat(32));
        p.profile.version = version.into();
        p.report = Some(ReportRef {
            media_type: String::new(),
            sha256: String::new(),
            size: 0,
        });
        ScanStatement::for_image(Subject::image("i", &"00".repeat(32)).unwrap(), p)
    }

    #[test]
    fn drift_only_against_a_remembered_image_of_that_digest_and_version() {
        let recent = RecentImageScans::default();
        let container = statement("c1", TargetKind::Container, 1, "1");
        let changed = report("1", "failed");
        assert_eq!(
            recent.drift_for(&container, Some(&changed)),
            None,
            "nothing known"
        );
        recent.remember(
            &statement("i1", TargetKind::Image, 1, "1"),
            Some(&report("1", "passed")),
        );
        recent.remember(
            &statement("i2", TargetKind::Image, 2, "1"),
            Some(&report("1", "failed")),
        );
        let drift = recent.drift_for(&container, Some(&changed)).unwrap();
        assert_eq!(drift.image_scan_id, "i1");
        assert_eq!(drift.controls, ["b"]);
        let same = recent
            .drift_for(&container, Some(&report("1", "passed")))
            .unwrap();
        assert!(same.controls.is_empty(), "known and nothing drifted");
        let other_version = statement("c2", TargetKind::Container, 1, "2");
        assert_eq!(
            recent.drift_for(&other_version, Some(&report("2", "failed"))),
            None
        );
        assert_eq!(
            recent.drift_for(&container, None),
            None,
            "no report, no claim"
        );
    }

    #[test]
    fn only_the_last_image_scans_are_kept() {
        let recent = RecentImageScans::default();
        for d in 0..=CAPACITY as u8 {
            recent.remember(
                &statement("i", TargetKind::Image, d, "1"),
                Some(&report("1", "passed")),
            );
        }
        let first = statement("c", TargetKind::Container, 0, "1");
        assert_eq!(recent.drift_for(&first, Some(&report("1", "passed"))), None);
        let last = statement("c", TargetKind::Container, CAPACITY as u8, "1");
        assert!(
            recent
                .drift_for(&last, Some(&report("1", "passed")))
                .is_some()
        );
    }
}
