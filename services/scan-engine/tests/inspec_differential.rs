//! The shipped YAML profiles and their InSpec-syntax rewrites
//! (`profiles/*-inspec`) give the same status for every control on every
//! ground-truth scenario, through the shell target (chroot at rest,
//! `nsenter` like `kubectl exec` when live). The local-root target cannot
//! run commands, so there the rewrites' `find`-based searches are skipped
//! with that reason, and everything else still agrees.

mod common;

use std::collections::BTreeMap;

use common::{LiveContainer, chrooted, exec_target, local, shipped};
use scanfleet_scan_engine::facts::GatherLimits;
use scanfleet_scan_engine::hdf::{control_status, to_hdf};
use scanfleet_scan_engine::scan::{Target, scan};
use scanfleet_test_harness::rootfs::build_fixture;

const PAIRS: [(&str, &str); 2] = [
    ("container-baseline", "container-baseline-inspec"),
    ("container-hardening", "container-hardening-inspec"),
];

/// control id -> (status, first result's message) for one profile.
fn statuses(profile: &str, target: &dyn Target) -> BTreeMap<String, (String, String)> {
    let report = scan(&shipped(profile), target).unwrap_or_else(|e| panic!("{profile}: {e}"));
    let hdf = to_hdf(&report);
    hdf["profiles"][0]["controls"]
        .as_array()
        .expect("controls")
        .iter()
        .map(|c| {
            let msg = c["results"]
                .as_array()
                .and_then(|r| {
                    r.iter()
                        .find_map(|x| x["message"].as_str().or(x["skip_message"].as_str()))
                })
                .unwrap_or("")
                .to_string();
            (
                c["id"].as_str().expect("id").to_string(),
                (control_status(c).key().to_string(), msg),
            )
        })
        .collect()
}

/// Whether a rewritten control reads the target through the command resource.
fn uses_command(rewrite: &str, id: &str) -> bool {
    let dir = scanfleet_test_harness::repo_root()
        .join("profiles")
        .join(rewrite)
        .join("controls");
    std::fs::read_dir(dir)
        .expect("controls")
        .flatten()
        .any(|f| {
            let text = std::fs::read_to_string(f.path()).expect("readable");
            text.split("\ncontrol ")
                .find(|c| c.starts_with(&format!("'{id}'")))
                .is_some_and(|c| c.contains("command("))
        })
}

fn compare(
    scenario: &str,
    target: &dyn Target,
    commands_run: bool,
    mismatches: &mut Vec<String>,
) -> usize {
    let mut compared = 0;
    for (yaml, rewrite) in PAIRS {
        let want = statuses(yaml, target);
        let got = statuses(rewrite, target);
        assert_eq!(
            want.keys().collect::<Vec<_>>(),
            got.keys().collect::<Vec<_>>(),
            "{rewrite} has the same controls as {yaml}"
        );
        for (id, (status, _)) in &want {
            let (g, msg) = &got[id];
            compared += 1;
            // Without commands, a control that needed one is skipped saying
            // so; one whose branch needed none (a missing cache directory)
            // still gives the YAML verdict.
            let skipped_for_commands = !commands_run
                && uses_command(rewrite, id)
                && g == "skipped"
                && msg.contains("command");
            if g != status && !skipped_for_commands {
                mismatches.push(format!(
                    "{scenario} {rewrite} {id}: got {g} ({msg}), expected {status}"
                ));
            }
        }
    }
    compared
}

#[test]
fn inspec_rewrites_give_the_yaml_verdicts_on_every_scenario() {
    let dir = tempfile::tempdir().expect("tempdir");
    let weak = dir.path().join("weak");
    let hardened = dir.path().join("hardened");
    build_fixture("rootfs-weak.sh", &weak);
    build_fixture("rootfs-hardened.sh", &hardened);
    let limits = GatherLimits::default;
    let mut mismatches = Vec::new();
    let mut compared = 0;
    for (scenario, root) in [("weak", &weak), ("hardened", &hardened)] {
        compared += compare(scenario, &chrooted(root, limits()), true, &mut mismatches);
        compared += compare(
            &format!("{scenario} (local)"),
            &local(root, limits()),
            false,
            &mut mismatches,
        );
    }
    let c = LiveContainer::weak_live(&weak);
    compared += compare(
        "weak-live",
        &exec_target(&c, limits()),
        true,
        &mut mismatches,
    );
    compared += compare(
        "weak-live (local)",
        &local(&c.root(), limits()),
        false,
        &mut mismatches,
    );
    drop(c);
    let c = LiveContainer::hardened_live(&hardened);
    compared += compare(
        "hardened-live",
        &exec_target(&c, limits()),
        true,
        &mut mismatches,
    );
    drop(c);
    assert!(
        mismatches.is_empty(),
        "{} of {compared} differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    assert!(compared > 700, "{compared} statuses compared");
}
