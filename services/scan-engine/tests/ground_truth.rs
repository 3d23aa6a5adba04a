//! Ground truth: both shipped profiles, on every fixture scenario, through
//! both targets, match the committed table `fixtures/expected-status.tsv`.
//!
//! Scenarios: the weak and hardened rootfs scanned at rest (no /proc), and
//! the same trees with a live process tree ("-live": pid/mount namespaces
//! with /proc mounted), scanned through `/proc/PID/root` (local target) and
//! through `nsenter` (shell target, like `kubectl exec`).

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::{LiveContainer, chrooted, local, shipped};
use scanfleet_scan_engine::facts::GatherLimits;
use scanfleet_scan_engine::hdf::{control_status, to_hdf};
use scanfleet_scan_engine::scan::{Target, scan};
use scanfleet_test_harness::{repo_root, run, system_tool, text};

const PROFILES: [&str; 2] = ["container-baseline", "container-hardening"];
const SCENARIOS: [&str; 4] = ["weak", "hardened", "weak-live", "hardened-live"];

fn build(recipe: &str, dest: &std::path::Path) {
    let out = run(Command::new("/bin/sh")
        .arg(
            repo_root()
                .join("services/scan-engine/fixtures")
                .join(recipe),
        )
        .arg(dest)
        .env("BUSYBOX", system_tool("busybox")));
    assert!(
        out.status.success(),
        "{recipe} failed: {}",
        text(&out.stderr)
    );
}

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

type Table = BTreeMap<(String, String), BTreeMap<String, String>>;

fn expected_table() -> Table {
    let text = std::fs::read_to_string(
        repo_root().join("services/scan-engine/fixtures/expected-status.tsv"),
    )
    .expect("expected-status.tsv");
    let mut lines = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty());
    let header: Vec<&str> = lines.next().expect("header").split('\t').collect();
    assert_eq!(&header[2..], &SCENARIOS, "table columns");
    lines
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 2 + SCENARIOS.len(), "bad row {l:?}");
            let row = SCENARIOS
                .iter()
                .zip(&f[2..])
                .map(|(s, v)| (s.to_string(), v.to_string()))
                .collect();
            ((f[0].to_string(), f[1].to_string()), row)
        })
        .collect()
}

#[test]
fn both_targets_match_the_expected_status_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let weak = dir.path().join("weak");
    let hardened = dir.path().join("hardened");
    build("rootfs-weak.sh", &weak);
    build("rootfs-hardened.sh", &hardened);
    let limits = GatherLimits::default;

    let mut got: Table = BTreeMap::new();
    let mut record = |scenario: &str,
                      profile: &str,
                      local_s: BTreeMap<String, String>,
                      shell_s: BTreeMap<String, String>| {
        assert_eq!(
            local_s, shell_s,
            "{scenario}/{profile}: local and shell targets disagree"
        );
        for (id, st) in local_s {
            got.entry((profile.to_string(), id))
                .or_default()
                .insert(scenario.to_string(), st);
        }
    };
    for (scenario, root) in [("weak", &weak), ("hardened", &hardened)] {
        for p in PROFILES {
            record(
                scenario,
                p,
                statuses(p, &local(root, limits())),
                statuses(p, &chrooted(root, limits())),
            );
        }
    }
    // A root main process with secrets in its environment, a netcat listener
    // and the fixture's stand-ins for an SSH daemon, a legacy network daemon,
    // cron, a package manager, a tracer and a container runtime daemon.
    const COMPANIONS: [&str; 7] = [
        "nc",
        "/usr/sbin/sshd",
        "/usr/sbin/in.telnetd",
        "/usr/sbin/crond",
        "/usr/bin/apt-get",
        "/usr/bin/strace",
        "/usr/bin/dockerd",
    ];
    let c = LiveContainer::start(
        &weak,
        &[
            "/bin/sh",
            "-c",
            "nc -l -p 4444 & /usr/sbin/sshd -D & /usr/sbin/in.telnetd & \
             /usr/sbin/crond -f & /usr/bin/apt-get install -y curl & \
             /usr/bin/strace -p 1 & /usr/bin/dockerd & \
             exec env SECRET_TOKEN=s3cr3t APP_MODE=prod sleep 600",
        ],
        &COMPANIONS,
    );
    for p in PROFILES {
        record(
            "weak-live",
            p,
            statuses(p, &local(&c.root(), limits())),
            statuses(p, &c.exec_target(limits())),
        );
    }
    drop(c);
    // An unprivileged main process with a clean environment.
    let c = LiveContainer::start(
        &hardened,
        &["/bin/su", "app", "-s", "/bin/sh", "-c", "exec sleep 600"],
        &[],
    );
    for p in PROFILES {
        record(
            "hardened-live",
            p,
            statuses(p, &local(&c.root(), limits())),
            statuses(p, &c.exec_target(limits())),
        );
    }
    drop(c);

    if std::env::var_os("SCANFLEET_PRINT_STATUS_TABLE").is_some() {
        for ((p, id), row) in &got {
            let cols: Vec<&str> = SCENARIOS.iter().map(|s| row[*s].as_str()).collect();
            println!("{p}\t{id}\t{}", cols.join("\t"));
        }
    }
    let want = expected_table();
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
