//! `scanfleet dev` (README command 1): the whole fleet as real processes
//! against kubesim, every sample pod scanned and verified, and nothing left
//! running afterwards, whether it ends by itself or by Ctrl-C.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn scanfleet() -> Command {
    let exe = Path::new(env!("CARGO_BIN_EXE_scanfleet"));
    for sibling in [
        "kubesim",
        "scanfleet-intake",
        "scanfleet-worker",
        "scanfleet-collector",
    ] {
        assert!(
            exe.with_file_name(sibling).is_file(),
            "{sibling} is not built next to scanfleet; run the workspace tests (cargo nextest run --workspace) or cargo build --bins"
        );
    }
    Command::new(exe)
}

/// Processes whose command line mentions `dir` (every child of `dev` does).
fn processes_mentioning(dir: &Path) -> Vec<String> {
    let needle = dir.display().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        if pid == std::process::id().to_string() {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if text.contains(&needle) {
            found.push(format!("{pid}: {text}"));
        }
    }
    found
}

fn assert_nothing_left(dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = processes_mentioning(dir);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "left running:\n{}",
            left.join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn dev_once_scans_every_sample_pod_and_stops_everything() {
    let dir = tempfile::tempdir().unwrap();
    let out = scanfleet()
        .args(["dev", "--once", "--workers", "2", "--data-dir"])
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
    assert_nothing_left(dir.path());
}

#[test]
fn ctrl_c_leaves_no_process_behind() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = scanfleet()
        .args(["dev", "--workers", "1", "--data-dir"])
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
    let dev_pid = format!("{}:", child.id());
    assert!(
        processes_mentioning(dir.path())
            .iter()
            .any(|p| !p.starts_with(&dev_pid)),
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
