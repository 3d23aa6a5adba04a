//! A restart with the same `--data-dir` loses nothing: results signed
//! before the stop but not yet stored are verified with the kept key after
//! it, none quarantined as `unknown_key`; and a rotated key leaves the
//! previous one trusted.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use scanfleet_bus::topology::{QUARANTINE_STREAM, RESULTS_STREAM};
use support::{Fleet, assert_nothing_left, signal, stream_messages, submit_apps, wait_stored};

/// Freezes the collector, submits a scan of every sample container, waits
/// until all their results are published, and stops the fleet (in order;
/// the frozen collector is killed after its grace). The scan ids.
async fn leave_results_on_the_stream(mut fleet: Fleet, dir: &Path) -> BTreeSet<String> {
    let collector = fleet.child_pid("scanfleet-collector").unwrap();
    signal(collector, Signal::SIGSTOP);
    let published_before = stream_messages(&fleet, RESULTS_STREAM).await;
    let waiting: BTreeSet<String> = submit_apps(&fleet.caller, &fleet.intake)
        .await
        .into_iter()
        .collect();
    let want = published_before + waiting.len() as u64;
    let deadline = Instant::now() + Duration::from_secs(120);
    while stream_messages(&fleet, RESULTS_STREAM).await < want {
        assert!(Instant::now() < deadline, "the results were not published");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = fleet.stop(Signal::SIGTERM, Duration::from_secs(120));
    assert_eq!(status.code(), Some(143), "terminated exit status");
    assert_nothing_left(dir);
    waiting
}

/// Waits for `waiting` to be stored; returns (stored, quarantined).
async fn stored_and_quarantined(fleet: &Fleet, waiting: &BTreeSet<String>) -> (usize, u64) {
    let stored = wait_stored(
        &fleet.caller,
        &fleet.collector,
        waiting,
        Duration::from_secs(60),
    )
    .await;
    let quarantined = stream_messages(fleet, QUARANTINE_STREAM).await;
    eprintln!(
        "waiting on the stream {}, stored after the restart {}, quarantined {quarantined}",
        waiting.len(),
        stored.len()
    );
    (stored.len(), quarantined)
}

fn stop(mut fleet: Fleet, dir: &Path) {
    assert_eq!(
        fleet.stop(Signal::SIGINT, Duration::from_secs(120)).code(),
        Some(130)
    );
    assert_nothing_left(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_waiting_on_the_stream_are_stored_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first = Fleet::start(dir.path(), &["--workers", "1"]);
    assert!(first.stderr_text().contains("(new; 1 trusted)"));
    let waiting = leave_results_on_the_stream(first, dir.path()).await;

    let second = Fleet::start(dir.path(), &["--workers", "1"]);
    let (stored, quarantined) = stored_and_quarantined(&second, &waiting).await;
    assert_eq!(quarantined, 0, "results quarantined after the restart");
    assert_eq!(stored, waiting.len(), "every waiting result stored");
    let stderr = second.stderr_text();
    assert!(
        stderr.contains("(reused from the data dir; 1 trusted)"),
        "{stderr}"
    );

    // A rotated key: what the old one signed is still trusted.
    let waiting = leave_results_on_the_stream(second, dir.path()).await;
    let third = Fleet::start(dir.path(), &["--workers", "1", "--rotate-signing-key"]);
    let (stored, quarantined) = stored_and_quarantined(&third, &waiting).await;
    assert_eq!(quarantined, 0, "results quarantined after the rotation");
    assert_eq!(stored, waiting.len(), "every waiting result stored");
    let stderr = third.stderr_text();
    assert!(stderr.contains("(new; 2 trusted)"), "{stderr}");
    stop(third, dir.path());
}
