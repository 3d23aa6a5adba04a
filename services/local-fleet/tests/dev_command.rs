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
        .args(["--kube-qps", "10", "--kube-burst", "10"])
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
    // --kube-qps/--kube-burst are the budget of both workers together: no
    // second of kubesim's audit log, from the first scan identity on (so
    // without the set-up and intake's reads at submit), holds more of the
    // workers' calls than budget + burst.
    let (most, calls) = busiest_second_of_scanning(&audit_log(dir.path()));
    println!(
        "dev --workers 2 --kube-qps 10 --kube-burst 10: {calls} worker calls, busiest 1 s window {most}"
    );
    assert!(
        most <= 10 + 10,
        "{most} worker calls within 1 s; the fleet's budget is 10/s, burst 10"
    );
    assert_nothing_left(dir.path());
}

/// The most calls by the workers' identity or per-scan identities within
/// any 1 s, from the first per-scan ServiceAccount on; and how many calls.
fn busiest_second_of_scanning(audit: &[serde_json::Value]) -> (usize, usize) {
    let field = |r: &serde_json::Value, k: &str| r[k].as_str().unwrap_or_default().to_owned();
    let start = audit
        .iter()
        .position(|r| {
            field(r, "resource") == "serviceaccounts"
                && field(r, "verb") == "create"
                && field(r, "namespace") == "apps"
        })
        .expect("a scan identity was created");
    let mut times: Vec<f64> = audit[start..]
        .iter()
        .filter(|r| {
            let user = field(r, "user");
            user == "kubesim-admin"
                || user.starts_with("system:serviceaccount:apps:scanfleet-scan-")
        })
        .filter_map(|r| r["receivedUnixMs"].as_f64())
        .collect();
    times.sort_by(f64::total_cmp);
    (kubesim::audit::busiest_second(&times).0, times.len())
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
