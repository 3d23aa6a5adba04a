//! The process executor's deadline: a target that never answers is killed,
//! with everything it started, and the scan fails with an error that names
//! the timeout instead of hanging the worker.

use std::path::Path;
use std::time::{Duration, Instant};

use scanfleet_scan_engine::adapters::process_executor::{DEFAULT_DEADLINE, ProcessExecutor};
use scanfleet_scan_engine::facts::{FactPlan, FactRequest, GatherLimits};
use scanfleet_scan_engine::scan::{Target, TargetError};
use scanfleet_scan_engine::shell::{ExecError, ScriptExecutor, ShellTarget};
use scanfleet_test_harness::system_tool;

/// A "target" whose shell ignores the script and hangs: it starts a
/// long-lived helper (as `nsenter` or a stuck `sh` would), records the
/// helper's pid, and waits for it.
fn hung_target(pid_file: &Path, deadline: Duration) -> ProcessExecutor {
    ProcessExecutor::new(
        system_tool("busybox").display().to_string(),
        vec![
            "sh".into(),
            "-c".into(),
            format!("sleep 600 & echo $! > {}; wait", pid_file.display()),
        ],
        "hung",
    )
    .with_deadline(deadline)
}

/// Polls (bounded) until the helper the hung target started is gone.
fn wait_until_gone(pid_file: &Path) {
    let pid = std::fs::read_to_string(pid_file)
        .expect("the hung target wrote its helper's pid before the deadline")
        .trim()
        .to_string();
    let give_up = Instant::now() + Duration::from_secs(10);
    loop {
        // Gone, or a zombie awaiting its (new) parent's reap: either way dead.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.rsplit(')').next().unwrap_or("").trim_start();
        if stat.is_empty() || state.starts_with('Z') {
            return;
        }
        assert!(
            Instant::now() < give_up,
            "helper pid {pid} still alive 10 s after the deadline: {stat}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn expired_deadline_kills_the_process_group_and_names_the_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("helper.pid");
    let deadline = Duration::from_secs(1);
    let err = hung_target(&pid_file, deadline)
        .execute(b"echo never read\n", 1 << 20)
        .unwrap_err();
    assert!(
        matches!(err, ExecError::TimedOut { after } if after == deadline),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("did not finish within 1s"),
        "{err}"
    );
    wait_until_gone(&pid_file);
}

#[test]
fn shell_target_reports_the_timeout_as_a_target_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("helper.pid");
    let deadline = Duration::from_secs(1);
    let target = ShellTarget::new(
        hung_target(&pid_file, deadline),
        "",
        GatherLimits::default(),
    );
    let plan = FactPlan {
        requests: [FactRequest::Stat("/etc/passwd".into())].into(),
    };
    let err = target.gather(&plan).unwrap_err();
    assert!(
        matches!(err, TargetError::TimedOut { after } if after == deadline),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("did not finish within 1s"),
        "{err}"
    );
    wait_until_gone(&pid_file);
}

#[test]
fn a_script_that_finishes_in_time_is_unaffected() {
    let exec = ProcessExecutor::new(
        system_tool("busybox").display().to_string(),
        vec!["sh".into()],
        "busybox",
    );
    assert_eq!(exec.deadline(), DEFAULT_DEADLINE);
    let out = exec
        .with_deadline(Duration::from_secs(60))
        .execute(b"echo out; echo err >&2; exit 3\n", 1 << 20)
        .expect("runs");
    assert_eq!(out.stdout, b"out\n");
    assert_eq!(out.stderr, b"err\n");
    assert_eq!(out.exit_code, Some(3));
}
