//! The resources that run commands (`command`, `auditd`): through the chroot
//! shell target they run in the scan's one round trip; the local-root
//! target and the prefixed shells (debug container, sidecar) skip them with
//! a message naming why.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::{chrooted, local, prefixed};
use scanfleet_scan_engine::adapters::profile_dir::load_profile_dir;
use scanfleet_scan_engine::hdf::{control_status, to_hdf};
use scanfleet_scan_engine::scan::{Target, scan};
use scanfleet_test_harness::repo_root;
use scanfleet_test_harness::rootfs::build_fixture;

fn fixtures() -> std::path::PathBuf {
    repo_root().join("services/scan-engine/fixtures/inspec")
}

/// control id -> (status, messages of the results that did not pass).
fn run(target: &dyn Target) -> (BTreeMap<String, (String, String)>, u32) {
    let p = load_profile_dir(&fixtures().join("commands"), &Default::default()).expect("loads");
    let report = scan(&p, target).expect("scan");
    let hdf = to_hdf(&report);
    let rows = hdf["profiles"][0]["controls"]
        .as_array()
        .expect("controls")
        .iter()
        .map(|c| {
            let msgs: Vec<String> = c["results"]
                .as_array()
                .expect("results")
                .iter()
                .filter(|r| r["status"] != "passed")
                .map(|r| {
                    let why = r.get("skip_message").unwrap_or(&r["message"]);
                    format!("{} {why}", r["code_desc"])
                })
                .collect();
            let id = c["id"].as_str().expect("id").to_string();
            (id, (control_status(c).key().to_string(), msgs.join("; ")))
        })
        .collect();
    (rows, report.stats.round_trips)
}

fn tree(dest: &Path) {
    build_fixture("rootfs-weak.sh", dest);
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

#[test]
fn commands_run_through_the_shell_target_and_are_skipped_elsewhere() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    tree(&root);
    let (shell, trips) = run(&chrooted(&root, Default::default()));
    assert_eq!(trips, 1, "commands ride the scan's one round trip");
    let status = |rows: &BTreeMap<String, (String, String)>, id: &str| rows[id].clone();
    assert_eq!(
        status(&shell, "cmd-output").0,
        "passed",
        "{:?}",
        shell["cmd-output"]
    );
    assert_eq!(
        status(&shell, "cmd-auditd-rules").0,
        "passed",
        "{:?}",
        shell["cmd-auditd-rules"]
    );
    assert_eq!(status(&shell, "cmd-auditd-missing-rule").0, "failed");

    for (name, rows) in [
        ("local root", run(&local(&root, Default::default())).0),
        (
            "prefixed shell",
            run(&prefixed(&root, Default::default())).0,
        ),
    ] {
        for (id, (st, msg)) in &rows {
            assert_eq!(st, "skipped", "{name}: {id}: {msg}");
            assert!(msg.contains("command"), "{name}: {id} says why: {msg}");
        }
    }
}
