//! `scanfleet-dev` (README command 1): the whole fleet as real processes
//! against kubesim, every sample pod scanned and verified, and nothing left
//! running afterwards, whether it ends by itself or by Ctrl-C.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use support::{assert_nothing_left, audit_log, dev, identities, processes_mentioning};

#[test]
fn dev_once_scans_every_sample_pod_and_stops_everything() {
    let dir = tempfile::tempdir().unwrap();
    let out = dev()
        .args(["--once", "--workers", "2", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{stderr}",
        out.status
    );
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| {
            l.ends_with("verified") || l.contains("NOT VERIFIED") || l.contains("no result")
        })
        .collect();
    assert_eq!(rows.len(), 6, "one row per sample container:\n{stdout}");
    assert!(rows.iter().all(|r| r.ends_with(" verified")), "{stdout}");
    for (pod, approach) in [
        ("distroless-app", "debug"),
        ("app-with-scanner           app", "sidecar"),
        ("web-misconfigured", "exec"),
    ] {
        assert!(
            rows.iter()
                .any(|r| r.starts_with(pod) && r.contains(approach)),
            "{pod} via {approach}:\n{stdout}"
        );
    }
    assert!(stdout.contains("scans/s"), "figures printed:\n{stdout}");
    assert!(
        dir.path().join("results.db").is_file(),
        "SQLite under the data dir"
    );
    let key = std::fs::metadata(dir.path().join("keys/signing.pem")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&key.permissions()) & 0o777,
        0o600
    );
    // kubesim's audit log shows every scan's identity, used and removed.
    let ids = identities(&audit_log(dir.path()));
    assert_eq!(ids.created, 6, "one identity per scan: {ids:?}");
    assert_eq!(ids.deleted, 6, "every identity removed: {ids:?}");
    assert!(ids.never_deleted.is_empty(), "{ids:?}");
    assert!(
        ids.calls_as_scan_identity
            .iter()
            .any(|c| c == "get pods/exec"),
        "the scans exec as their own identity: {ids:?}"
    );
    assert_nothing_left(dir.path());
}

#[test]
fn ctrl_c_leaves_no_process_behind() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = dev()
        .args(["--workers", "1", "--data-dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let running = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.contains("Press Ctrl-C to stop everything"));
    assert!(running, "dev reported it is running");
    assert!(
        processes_mentioning(dir.path())
            .iter()
            .any(|(pid, _)| *pid != child.id()),
        "children exist while running"
    );
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert_eq!(exit.code(), Some(130), "interrupted exit status");
    assert_nothing_left(dir.path());
}
