//! A crashed child is restarted and loses nothing: with submissions in
//! flight, a worker, then the collector, then nats-server are SIGKILLed;
//! each comes back, `scanfleet-dev` keeps running, and every accepted
//! submission ends up stored. The commands `scanfleet-dev` prints work as
//! printed, from any directory.

mod support;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use nix::sys::signal::Signal;
use support::{Fleet, assert_nothing_left, signal, submit_apps, wait_stored, wait_until};

/// Every exec takes a second, so scans are still running when a child dies.
const SLOW_EXEC: &str =
    "- path: \"*/exec\"\n  rate: 1.0\n  fault:\n    kind: latency\n    millis: 1000\n";

/// Runs the printed `scanfleet … submit …` line through a shell, from `/`,
/// with a PATH that does not hold the build directory; its scan id.
fn run_printed_submit(fleet: &Fleet) -> String {
    let stdout = fleet.stdout_text();
    let line = stdout
        .lines()
        .map(str::trim)
        .find(|l| l.contains(" submit "))
        .unwrap_or_else(|| panic!("no submit command printed:\n{stdout}"));
    let out = Command::new("sh")
        .args(["-c", line])
        .current_dir("/")
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the printed command `{line}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The table: a heading, then one row per queued container.
    let mut lines = printed.lines();
    assert!(
        lines.next().is_some_and(|l| l.starts_with("SCAN ID")),
        "{printed}"
    );
    let id = lines.next().and_then(|l| l.split_whitespace().next());
    id.unwrap_or_else(|| panic!("no scan in {printed}"))
        .to_owned()
}

/// The last lines of each child's log, to say where a lost scan stopped.
fn log_tails(logs: &std::path::Path) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(logs).into_iter().flatten().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        out.push_str(&format!("--- {}\n", entry.path().display()));
        out.push_str(&lines[lines.len().saturating_sub(25)..].join("\n"));
        out.push('\n');
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_children_are_restarted_and_no_submission_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let faults = dir.path().join("faults.yml");
    std::fs::write(&faults, SLOW_EXEC).unwrap();
    let mut fleet = Fleet::start(
        dir.path(),
        &[
            "--workers",
            "2",
            "--kubesim-faults",
            faults.to_str().unwrap(),
        ],
    );
    let mut submitted = BTreeSet::new();
    submitted.insert(run_printed_submit(&fleet));
    // Every edge checks who calls: the same fleet without the operator's
    // token refuses, and queues nothing.
    let anonymous = scanfleet_edge_access::EdgeClient {
        token: None,
        ..fleet.caller.clone()
    };
    let (channel, auth) = anonymous.connect(&fleet.intake).await.unwrap();
    let refused =
        scanfleet_contracts::v1::intake_client::IntakeClient::with_interceptor(channel, auth)
            .submit(scanfleet_contracts::v1::SubmitRequest::default())
            .await
            .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    for marker in ["dev-worker-0", "scanfleet-collector", "nats-server"] {
        submitted.extend(submit_apps(&fleet.caller, &fleet.intake).await);
        let pid = fleet.kill_and_wait_for_restart(marker);
        assert!(
            fleet.is_running(),
            "scanfleet-dev survives the loss of {marker}"
        );
        eprintln!("{marker} restarted as pid {pid}");
    }
    let stderr = fleet.stderr_text();
    for name in ["worker-0", "collector", "nats-server"] {
        assert!(
            stderr.contains(&format!("supervisor: {name} exited (signal: 9 (SIGKILL))"))
                && stderr.contains(&format!("supervisor: {name} started again (restart 1,")),
            "a clear line for {name}'s death and restart:\n{stderr}"
        );
    }

    let stored = wait_stored(
        &fleet.caller,
        &fleet.collector,
        &submitted,
        Duration::from_secs(180),
    )
    .await;
    let missing: Vec<&String> = submitted
        .iter()
        .filter(|id| !stored.contains_key(*id))
        .collect();
    eprintln!(
        "submitted {}, stored {}, missing {}",
        submitted.len(),
        stored.len(),
        missing.len()
    );
    assert!(
        missing.is_empty(),
        "submissions lost: {missing:?}\n{}",
        log_tails(&dir.path().join("logs"))
    );
    assert_eq!(stored.len(), submitted.len());

    let status = fleet.stop(Signal::SIGINT, Duration::from_secs(120));
    assert_eq!(status.code(), Some(130));
    assert_nothing_left(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubesim_is_restarted_with_the_processes_that_read_its_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let mut fleet = Fleet::start(dir.path(), &["--workers", "1"]);
    let old_token = fleet.read_caller().token.unwrap();
    let children = ["scanfleet-intake", "dev-worker-0", "scanfleet-collector"];
    let old: Vec<u32> = children.map(|c| fleet.child_pid(c).unwrap()).to_vec();
    fleet.kill_and_wait_for_restart("--kubeconfig-out");
    // Intake and the worker read kubesim's CA and token at start-up; intake
    // and the collector review callers with the reviewer's token, which
    // the restarted kubesim issued again.
    for (marker, old) in children.into_iter().zip(old) {
        wait_until(
            &format!("{marker} to be restarted"),
            Duration::from_secs(60),
            || fleet.child_pid(marker).is_some_and(|pid| pid != old),
        );
    }
    let stderr = fleet.stderr_text();
    for name in ["intake", "worker-0", "collector"] {
        assert!(
            stderr.contains(&format!(
                "supervisor: restarting {name} because kubesim was restarted"
            )),
            "{stderr}"
        );
    }
    assert!(
        stderr.contains("supervisor: renewed what kubesim issued, after its restart"),
        "{stderr}"
    );
    // The operator's token was issued again into the same file.
    fleet.caller = fleet.read_caller();
    assert_ne!(fleet.caller.token.as_deref(), Some(&*old_token));
    // The restarted fleet scans again (intake needs its pod cache first),
    // and the command printed before the restart still works.
    let mut submitted = BTreeSet::new();
    wait_until("intake to answer again", Duration::from_secs(60), || {
        std::net::TcpStream::connect(fleet.intake.trim_start_matches("https://")).is_ok()
    });
    submitted.extend(submit_apps(&fleet.caller, &fleet.intake).await);
    submitted.insert(run_printed_submit(&fleet));
    let stored = wait_stored(
        &fleet.caller,
        &fleet.collector,
        &submitted,
        Duration::from_secs(120),
    )
    .await;
    assert_eq!(
        stored.len(),
        submitted.len(),
        "scans after kubesim's restart"
    );
    assert_eq!(
        fleet.stop(Signal::SIGINT, Duration::from_secs(120)).code(),
        Some(130)
    );
    assert_nothing_left(dir.path());
}

#[test]
fn a_child_that_keeps_crashing_is_given_up_on_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut fleet = Fleet::start(dir.path(), &["--workers", "1"]);
    // Killed right after each start: five fast crashes in a row.
    for _ in 0..4 {
        fleet.kill_and_wait_for_restart("dev-worker-0");
    }
    let last = fleet.child_pid("dev-worker-0").unwrap();
    signal(last, Signal::SIGKILL);
    let mut status = None;
    wait_until("scanfleet-dev to give up", Duration::from_secs(120), || {
        status = fleet.exit_status();
        status.is_some()
    });
    assert_eq!(status.unwrap().code(), Some(1), "{}", fleet.stderr_text());
    let stderr = fleet.stderr_text();
    assert!(
        stderr.contains("error: worker-0 exited (signal: 9 (SIGKILL)) after"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "and is not restarted: it crashed 5 times in a row, each time within 10s of starting"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("stopping kubesim"),
        "stopped in order:\n{stderr}"
    );
    assert_nothing_left(dir.path());
}
