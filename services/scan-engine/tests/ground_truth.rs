//! Ground truth: both shipped profiles, on every fixture scenario, through
//! both targets, match the committed table `fixtures/expected-status.tsv`.
//!
//! Scenarios: the weak and hardened rootfs scanned at rest (no /proc), and
//! the same trees with a live process tree ("-live": pid/mount namespaces
//! with /proc mounted), scanned through `/proc/PID/root` (local target) and
//! through `nsenter` (shell target, like `kubectl exec`).

mod common;

use std::collections::BTreeMap;

use common::{LiveContainer, chrooted, exec_target, local, shipped};
use scanfleet_scan_engine::facts::GatherLimits;
use scanfleet_scan_engine::hdf::{control_status, to_hdf};
use scanfleet_scan_engine::scan::{Target, scan};
use scanfleet_test_harness::rootfs::{
    SCENARIOS, SHIPPED_PROFILES, StatusTable, build_fixture, expected_status_table,
};

/// control id -> status key, for one profile through one target.
fn statuses(profile: &str, target: &dyn Target) -> BTreeMap<String, String> {
    let report = scan(&shipped(profile), target).unwrap_or_else(|e| panic!("{profile}: {e}"));
    let hdf = to_hdf(&report);
    hdf["profiles"][0]["controls"]
        .as_array()
        .expect("controls")
        .iter()
        .map(|c| {
            (
                c["id"].as_str().expect("id").to_string(),
                control_status(c).key().to_string(),
            )
        })
        .collect()
}

#[test]
fn both_targets_match_the_expected_status_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let weak = dir.path().join("weak");
    let hardened = dir.path().join("hardened");
    build_fixture("rootfs-weak.sh", &weak);
    build_fixture("rootfs-hardened.sh", &hardened);
    let limits = GatherLimits::default;

    let mut got = StatusTable::new();
    let mut record = |scenario: &str, local_t: &dyn Target, shell_t: &dyn Target| {
        for p in SHIPPED_PROFILES {
            let (local_s, shell_s) = (statuses(p, local_t), statuses(p, shell_t));
            assert_eq!(
                local_s, shell_s,
                "{scenario}/{p}: local and shell targets disagree"
            );
            for (id, st) in local_s {
                got.entry((p.to_string(), id))
                    .or_default()
                    .insert(scenario.to_string(), st);
            }
        }
    };
    for (scenario, root) in [("weak", &weak), ("hardened", &hardened)] {
        record(scenario, &local(root, limits()), &chrooted(root, limits()));
    }
    let c = LiveContainer::weak_live(&weak);
    record(
        "weak-live",
        &local(&c.root(), limits()),
        &exec_target(&c, limits()),
    );
    drop(c);
    let c = LiveContainer::hardened_live(&hardened);
    record(
        "hardened-live",
        &local(&c.root(), limits()),
        &exec_target(&c, limits()),
    );
    drop(c);

    if std::env::var_os("SCANFLEET_PRINT_STATUS_TABLE").is_some() {
        for ((p, id), row) in &got {
            let cols: Vec<&str> = SCENARIOS.iter().map(|s| row[*s].as_str()).collect();
            println!("{p}\t{id}\t{}", cols.join("\t"));
        }
    }
    let want = expected_status_table();
    let mut diffs = Vec::new();
    for (key, row) in &got {
        match want.get(key) {
            None => diffs.push(format!("{key:?}: not in the table")),
            Some(w) if w != row => diffs.push(format!("{key:?}: expected {w:?}, got {row:?}")),
            Some(_) => {}
        }
    }
    for key in want.keys().filter(|k| !got.contains_key(*k)) {
        diffs.push(format!("{key:?}: in the table but not in the profile"));
    }
    assert!(
        diffs.is_empty(),
        "ground truth mismatch:\n{}",
        diffs.join("\n")
    );

    // No control passes unconditionally: each one finds something (fails or
    // errors; a skip finds nothing) in some scenario, and each one can pass,
    // so the table shows every control both ways.
    for (key, row) in &want {
        assert!(
            row.values().any(|s| s == "failed" || s == "error"),
            "{key:?} never fails or errors in any scenario: {row:?}"
        );
        assert!(
            row.values().any(|s| s == "passed"),
            "{key:?} never passes in any scenario: {row:?}"
        );
    }
    let hardening = want
        .keys()
        .filter(|(p, _)| p == "container-hardening")
        .count();
    assert!(
        hardening >= 80,
        "container-hardening has {hardening} controls"
    );
}
