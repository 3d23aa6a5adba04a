//! A hostile InSpec profile (`fixtures/inspec/hostile`): endless loops,
//! runaway recursion, huge strings and arrays, a regex bomb, backtracking
//! regexes, and attempts to read the scanner's files, environment and
//! processes. Each control ends as a clear error (or, for the regex bomb,
//! an ordinary verdict in linear time) on its own control, within bounded
//! time and memory, nothing panics, and the benign control still passes.

mod common;

use std::time::{Duration, Instant};

use common::chrooted;
use scanfleet_scan_engine::adapters::profile_dir::load_profile_dir;
use scanfleet_scan_engine::facts::GatherLimits;
use scanfleet_scan_engine::hdf::{control_status, to_hdf};
use scanfleet_scan_engine::scan::scan;
use scanfleet_test_harness::repo_root;
use scanfleet_test_harness::rootfs::build_fixture;

/// Peak resident memory of this test process, in MiB.
fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .expect("VmHWM")
        / 1024
}

#[test]
fn hostile_controls_end_as_clear_errors_and_the_scan_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("hardened");
    build_fixture("rootfs-hardened.sh", &root);
    let started = Instant::now();
    let profile = load_profile_dir(
        &repo_root().join("services/scan-engine/fixtures/inspec/hostile"),
        &Default::default(),
    )
    .expect("a hostile profile still loads");
    let report = scan(&profile, &chrooted(&root, GatherLimits::default())).expect("scan");
    let took = started.elapsed();
    let hdf = to_hdf(&report);
    let controls = hdf["profiles"][0]["controls"].as_array().expect("controls");
    let message = |id: &str| -> (String, String) {
        let c = controls
            .iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("{id} is reported"));
        let msg = c["results"]
            .as_array()
            .and_then(|r| r.iter().find_map(|x| x["message"].as_str()))
            .unwrap_or("")
            .to_string();
        (control_status(c).key().to_string(), msg)
    };
    let cases = [
        ("hostile-endless-loop", "and was stopped"),
        ("hostile-endless-while", "and was stopped"),
        ("hostile-recursion", "nested calls more than"),
        ("hostile-huge-string", "allocated more than"),
        ("hostile-doubling-string", "allocated more than"),
        ("hostile-huge-array", "allocated more than"),
        ("hostile-backtracking-regex", "look-around"),
        ("hostile-host-file", "refused: `File.read`"),
        ("hostile-process", "refused: `system`"),
        ("hostile-backticks", "backtick command"),
        ("hostile-environment", "refused: the constant `ENV`"),
        ("hostile-eval", "unsupported: `eval`"),
        ("hostile-socket", "require 'socket'"),
        ("hostile-rescue-cannot-hide", "refused: `File.open`"),
        ("hostile-deep-nesting", "nested deeper than 200 levels"),
    ];
    for (id, needle) in cases {
        let (status, msg) = message(id);
        assert_eq!(status, "error", "{id}: {msg}");
        assert!(msg.contains(needle), "{id}: expected {needle:?} in {msg:?}");
        assert!(
            msg.contains(".rb:"),
            "{id}: the message names file:line: {msg:?}"
        );
    }
    assert_eq!(
        message("hostile-regex-bomb").0,
        "passed",
        "a regex bomb is just a regex here"
    );
    assert_eq!(message("benign-after-all-that").0, "passed");
    assert_eq!(controls.len(), cases.len() + 2);
    assert!(took < Duration::from_secs(180), "bounded time: {took:?}");
    let peak = peak_rss_mib();
    assert!(peak < 1024, "bounded memory: peak {peak} MiB");
}
