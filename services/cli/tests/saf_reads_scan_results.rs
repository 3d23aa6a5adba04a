//! Every HDF file `scanfleet scan --root` produces for the ground-truth
//! fixtures is read back by the real SAF tools with the expected verdicts:
//! `saf summary` reports the per-status, per-severity counts and the
//! compliance score derived from the committed expected-status table, and
//! inspecjs `ExecJSON` conversion succeeds with the same status and severity
//! for every control.
//!
//! Scenarios: both fixture trees at rest, and both as live containers scanned
//! through `--root /proc/PID/root` (the local-root target follows that magic
//! link), i.e. every column of the table.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use scanfleet_scan_engine::adapters::profile_dir::load_profile_dir;
use scanfleet_test_harness::rootfs::{
    LiveContainer, SHIPPED_PROFILES, StatusTable, build_fixture, expected_status_table,
};
use scanfleet_test_harness::{installed_tool, repo_root};
use serde_json::Value;
use support::{run, scanfleet, system_tool, text};

/// One produced HDF file and what it must contain.
struct Case {
    scenario: &'static str,
    profile: &'static str,
    hdf: PathBuf,
}

fn scan_to(root: &Path, profile: &str, out: &Path) {
    let o = run(scanfleet()
        .args(["scan", "--root"])
        .arg(root)
        .arg("--profile")
        .arg(repo_root().join("profiles").join(profile))
        .arg("--out")
        .arg(out));
    assert!(
        o.status.success(),
        "scan {profile} of {} failed: {}",
        root.display(),
        text(&o.stderr)
    );
}

/// control id -> severity (lowercase), from the shipped profile itself.
fn severities(profile: &str) -> BTreeMap<String, String> {
    let p = load_profile_dir(
        &repo_root().join("profiles").join(profile),
        &Default::default(),
    )
    .unwrap_or_else(|e| panic!("{profile}: {e}"));
    p.controls
        .iter()
        .map(|c| (c.id.clone(), c.severity.as_str().to_string()))
        .collect()
}

/// The `saf summary` block the table predicts for one profile in one scenario.
fn expected_summary(table: &StatusTable, profile: &str, scenario: &str) -> Value {
    let sev = severities(profile);
    let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    for ((p, id), row) in table {
        if p != profile {
            continue;
        }
        let status = row[scenario].clone();
        let severity = sev
            .get(id)
            .unwrap_or_else(|| panic!("{profile}/{id} is in the table but not in the profile"));
        *counts
            .entry((status.clone(), severity.clone()))
            .or_default() += 1;
        *totals.entry(status).or_default() += 1;
    }
    let t = |k: &str| totals.get(k).copied().unwrap_or(0);
    // Not Applicable is outside the denominator; Math.round rounds half up.
    let scored = t("passed") + t("failed") + t("skipped") + t("error");
    let compliance = if scored == 0 {
        0
    } else {
        (200 * t("passed") + scored) / (2 * scored)
    };
    let mut block = serde_json::json!({"profileName": profile, "compliance": compliance});
    for status in ["passed", "failed", "skipped", "error", "no_impact"] {
        let mut by_sev = serde_json::Map::new();
        let sevs: &[&str] = if status == "no_impact" {
            &["critical", "high", "medium", "low", "none"]
        } else {
            &["critical", "high", "medium", "low"]
        };
        for s in sevs {
            let n = counts
                .get(&(status.to_string(), s.to_string()))
                .copied()
                .unwrap_or(0);
            by_sev.insert(s.to_string(), n.into());
        }
        by_sev.insert("total".into(), t(status).into());
        block[status] = Value::Object(by_sev);
    }
    block
}

/// Runs `saf summary` on each file (one file per run, so blocks of the same
/// profile are never merged), two at a time: each run takes ~1.5 s.
fn saf_summaries(files: &[PathBuf]) -> Vec<Value> {
    let saf = installed_tool("node/node_modules/.bin/saf");
    std::thread::scope(|s| {
        let handles: Vec<_> = files
            .chunks(files.len().div_ceil(2))
            .map(|chunk| {
                let saf = &saf;
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|f| {
                            let o = run(Command::new(system_tool("node"))
                                .arg(saf)
                                .args(["summary", "-f", "json", "--no-print-pretty", "-i"])
                                .arg(f));
                            assert!(
                                o.status.success(),
                                "saf summary rejected {}: {}{}",
                                f.display(),
                                text(&o.stdout),
                                text(&o.stderr)
                            );
                            let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
                                panic!("saf summary printed no JSON ({e}): {}", text(&o.stdout))
                            });
                            v
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("saf thread"))
            .collect()
    })
}

/// The inspecjs oracle over all files at once: per file, an error or every
/// control's status and severity.
fn inspecjs(files: &[PathBuf]) -> Value {
    let o = run(Command::new(system_tool("node"))
        .arg(repo_root().join("services/cli/tests/support/hdf-oracle.js"))
        .args(files)
        .env("INSPECJS", installed_tool("node/node_modules/inspecjs")));
    assert!(
        o.status.success(),
        "inspecjs oracle failed: {}",
        text(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("oracle prints JSON")
}

/// inspecjs's name for a SAF status key.
fn inspecjs_status(key: &str) -> &'static str {
    match key {
        "passed" => "Passed",
        "failed" => "Failed",
        "skipped" => "Not Reviewed",
        "no_impact" => "Not Applicable",
        "error" => "Profile Error",
        other => panic!("unknown status {other:?} in the expected table"),
    }
}

#[test]
fn saf_summary_and_inspecjs_read_every_scan_as_the_table_expects() {
    let dir = tempfile::tempdir().expect("tempdir");
    let weak = dir.path().join("weak");
    let hardened = dir.path().join("hardened");
    build_fixture("rootfs-weak.sh", &weak);
    build_fixture("rootfs-hardened.sh", &hardened);

    let mut cases = Vec::new();
    let mut scan_all = |scenario: &'static str, root: &Path| {
        for profile in SHIPPED_PROFILES {
            let hdf = dir.path().join(format!("{scenario}-{profile}.json"));
            scan_to(root, profile, &hdf);
            cases.push(Case {
                scenario,
                profile,
                hdf,
            });
        }
    };
    scan_all("weak", &weak);
    scan_all("hardened", &hardened);
    let c = LiveContainer::weak_live(&weak);
    scan_all("weak-live", &c.root());
    drop(c);
    let c = LiveContainer::hardened_live(&hardened);
    scan_all("hardened-live", &c.root());
    drop(c);

    let table = expected_status_table();
    let files: Vec<PathBuf> = cases.iter().map(|c| c.hdf.clone()).collect();

    // saf summary: the counts the table predicts, bucket by bucket.
    for (case, summary) in cases.iter().zip(saf_summaries(&files)) {
        let got = summary
            .as_array()
            .filter(|a| a.len() == 1)
            .unwrap_or_else(|| panic!("one profile block expected: {summary}"))[0]
            .clone();
        let want = expected_summary(&table, case.profile, case.scenario);
        for key in [
            "profileName",
            "compliance",
            "passed",
            "failed",
            "skipped",
            "error",
            "no_impact",
        ] {
            assert_eq!(
                got[key], want[key],
                "{}/{}: saf summary {key} differs from the expected table\nsaf:  {got}\nwant: {want}",
                case.scenario, case.profile
            );
        }
    }

    // inspecjs: the file converts, and each control's status and severity
    // are the table's and the profile's.
    let oracle = inspecjs(&files);
    for case in &cases {
        let entry = &oracle[case.hdf.to_str().expect("utf-8 temp path")];
        assert!(
            entry.get("error").is_none() && entry["controls"].is_array(),
            "inspecjs rejected {}/{}: {entry}",
            case.scenario,
            case.profile
        );
        let sev = severities(case.profile);
        let controls = entry["controls"].as_array().expect("controls");
        let expected_ids = table.keys().filter(|(p, _)| p == case.profile).count();
        assert_eq!(controls.len(), expected_ids, "{}", case.profile);
        for c in controls {
            let id = c["id"].as_str().expect("id").to_string();
            let row = &table[&(case.profile.to_string(), id.clone())];
            assert_eq!(
                c["status"].as_str(),
                Some(inspecjs_status(&row[case.scenario])),
                "{}/{}/{id}: inspecjs status",
                case.scenario,
                case.profile
            );
            assert_eq!(
                c["severity"].as_str(),
                Some(sev[&id].as_str()),
                "{}/{}/{id}: inspecjs severity",
                case.scenario,
                case.profile
            );
        }
    }
}
