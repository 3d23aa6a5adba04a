//! Our own InSpec-syntax profiles (`fixtures/inspec/*`), covering every
//! supported construct and resource, on the weak and hardened ground-truth
//! trees (plus `fixtures/inspec/extras.sh`): both targets give the
//! statuses of `fixtures/inspec/expected-status.tsv` and agree with each
//! other, in one round trip for profiles whose facts are all known up
//! front and two for the `dynamic` profile.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::{chrooted, local};
use scanfleet_scan_engine::adapters::profile_dir::load_profile_dir;
use scanfleet_scan_engine::facts::GatherLimits;
use scanfleet_scan_engine::hdf::{control_status, to_hdf};
use scanfleet_scan_engine::profile::Profile;
use scanfleet_scan_engine::scan::{ScanReport, Target, scan};
use scanfleet_test_harness::repo_root;
use scanfleet_test_harness::rootfs::build_fixture;

/// (profile, round trips through the shell target).
const PROFILES: [(&str, u32); 4] = [
    ("language", 1),
    ("resources", 1),
    ("libraries", 1),
    ("dynamic", 2),
];

fn fixtures() -> std::path::PathBuf {
    repo_root().join("services/scan-engine/fixtures/inspec")
}

fn profile(name: &str) -> Profile {
    load_profile_dir(&fixtures().join(name), &Default::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn tree(recipe: &str, dest: &Path) {
    build_fixture(recipe, dest);
    let out = Command::new("/bin/sh")
        .arg(fixtures().join("extras.sh"))
        .arg(dest)
        .output()
        .expect("extras.sh runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn statuses(report: &ScanReport) -> BTreeMap<String, String> {
    to_hdf(report)["profiles"][0]["controls"]
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

/// (profile, control) -> scenario -> status, from the committed table.
fn expected() -> BTreeMap<(String, String), BTreeMap<String, String>> {
    let text = std::fs::read_to_string(fixtures().join("expected-status.tsv")).expect("table");
    let mut rows = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty());
    let header: Vec<&str> = rows.next().expect("header").split('\t').collect();
    rows.map(|l| {
        let f: Vec<&str> = l.split('\t').collect();
        let by = header[2..]
            .iter()
            .zip(&f[2..])
            .map(|(h, v)| ((*h).to_string(), (*v).to_string()))
            .collect();
        ((f[0].to_string(), f[1].to_string()), by)
    })
    .collect()
}

fn scan_both(name: &str, p: &Profile, root: &Path, trips: u32) -> BTreeMap<String, String> {
    let limits = GatherLimits::default;
    let shell: &dyn Target = &chrooted(root, limits());
    let report = scan(p, shell).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(
        report.stats.round_trips, trips,
        "{name}: round trips through the shell target"
    );
    let via_shell = statuses(&report);
    let via_local = statuses(&scan(p, &local(root, limits())).expect("local scan"));
    assert_eq!(
        via_local, via_shell,
        "{name}: the local and shell targets disagree"
    );
    via_shell
}

#[test]
fn own_profiles_match_the_expected_statuses_on_both_targets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let weak = dir.path().join("weak");
    let hardened = dir.path().join("hardened");
    tree("rootfs-weak.sh", &weak);
    tree("rootfs-hardened.sh", &hardened);
    let mut got: BTreeMap<(String, String), BTreeMap<String, String>> = BTreeMap::new();
    for (name, trips) in PROFILES {
        let p = profile(name);
        for (scenario, root) in [("weak", &weak), ("hardened", &hardened)] {
            for (id, status) in scan_both(name, &p, root, trips) {
                got.entry((name.to_string(), id))
                    .or_default()
                    .insert(scenario.to_string(), status);
            }
        }
    }
    if std::env::var_os("SCANFLEET_PRINT_STATUS_TABLE").is_some() {
        for ((p, id), row) in &got {
            println!("{p}\t{id}\t{}\t{}", row["weak"], row["hardened"]);
        }
    }
    let want = expected();
    let mut diffs: Vec<String> = got
        .iter()
        .filter(|(k, row)| want.get(*k) != Some(row))
        .map(|(k, row)| format!("{k:?}: expected {:?}, got {row:?}", want.get(k)))
        .collect();
    diffs.extend(
        want.keys()
            .filter(|k| !got.contains_key(*k))
            .map(|k| format!("{k:?}: in the table, not in the profile")),
    );
    assert!(diffs.is_empty(), "status mismatches:\n{}", diffs.join("\n"));
    assert!(want.len() >= 50, "{} controls in the table", want.len());
}
