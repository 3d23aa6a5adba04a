//! The scan engine's ground truth, through Kubernetes: kubesim runs the
//! engine's weak and hardened fixture trees as pods, and every approach
//! (exec, debug container, sidecar) must reproduce the committed table
//! `services/scan-engine/fixtures/expected-status.tsv` for every file,
//! account, package and configuration control of both shipped profiles.
//! Runtime controls (processes, environment) depend on what runs in the
//! pod, so they must instead equal a direct read of the same container's
//! root from the host.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use scanfleet_kube_access::ClusterAccess;
use scanfleet_scan_engine::adapters::local_root::LocalRoot;
use scanfleet_scan_engine::facts::GatherLimits;
use scanfleet_scan_engine::scan::scan;
use scanfleet_scan_session::{Approach, ScanRequest, run_scan};
use scanfleet_test_harness::repo_root;
use support::truth::{build, fixture};
use support::{profile, report_statuses, session_config};

const PROFILES: [&str; 2] = ["container-baseline", "container-hardening"];

/// (profile, control) → scenario → status.
fn table() -> BTreeMap<(String, String), BTreeMap<String, String>> {
    let text = std::fs::read_to_string(
        repo_root().join("services/scan-engine/fixtures/expected-status.tsv"),
    )
    .unwrap();
    let mut lines = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty());
    let header: Vec<String> = lines
        .next()
        .unwrap()
        .split('\t')
        .map(str::to_owned)
        .collect();
    lines
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let row = header[2..]
                .iter()
                .cloned()
                .zip(f[2..].iter().map(|s| s.to_string()))
                .collect();
            ((f[0].to_owned(), f[1].to_owned()), row)
        })
        .collect()
}

fn runtime(control: &str) -> bool {
    control.starts_with("cb-runtime-") || control.starts_with("ch-rt-")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_approach_reproduces_the_engine_ground_truth() {
    let dir = tempfile::tempdir().unwrap();
    build("rootfs-weak.sh", &dir.path().join("weak"));
    build("rootfs-hardened.sh", &dir.path().join("hardened"));
    let fixture = kubesim::fixture::Fixture::parse("truth", &fixture(dir.path())).unwrap();
    let sim = kubesim::Kubesim::start_settled(
        kubesim::Config::with_fixture(fixture),
        Duration::from_secs(30),
    )
    .await
    .expect("kubesim starts with every pod running (tests run as root)");
    let admin = ClusterAccess::from_kubeconfig(&sim.admin_kubeconfig(), "admin")
        .await
        .unwrap();
    let want = table();
    let mut mismatches = Vec::new();
    let mut compared = 0;
    for (pod, scenario, approach) in [
        ("weak", "weak-live", Approach::Exec),
        ("weak", "weak-live", Approach::Debug),
        ("weak-with-scanner", "weak-live", Approach::Sidecar),
        ("hardened", "hardened-live", Approach::Exec),
        ("hardened", "hardened-live", Approach::Debug),
    ] {
        for name in PROFILES {
            let outcome = run_scan(
                &admin,
                &session_config(true),
                ScanRequest {
                    scan_id: support::new_scan_id(),
                    namespace: "truth".into(),
                    pod: pod.into(),
                    container: "app".into(),
                    approach,
                    profile: profile(name),
                    deadline: Duration::from_secs(60),
                },
            )
            .await
            .unwrap_or_else(|e| panic!("{pod} via {approach} ({name}): {e}"));
            assert_eq!(outcome.approach, approach);
            let got = report_statuses(&outcome.report);
            let pid = sim.container_pid("truth", pod, "app").unwrap();
            let direct = report_statuses(
                &scan(
                    &profile(name),
                    &LocalRoot::new(format!("/proc/{pid}/root"), GatherLimits::default()).unwrap(),
                )
                .unwrap(),
            );
            for (control, status) in &got {
                // exec runs as the image's user (root here) without
                // CAP_SYS_PTRACE, and the hardened pod's main process runs
                // as `app` after su: the kernel refuses /proc/1/environ, so
                // the environment controls are an honest `error`, not a
                // guess. The debug container holds SYS_PTRACE for this.
                let unreadable_environ = pod == "hardened"
                    && approach == Approach::Exec
                    && (control == "cb-runtime-02" || control == "ch-rt-02");
                let expected = if unreadable_environ {
                    "error".to_owned()
                } else if runtime(control) {
                    direct[control].clone()
                } else {
                    want[&(name.to_owned(), control.clone())][scenario].clone()
                };
                compared += 1;
                if *status != expected {
                    mismatches.push(format!(
                        "{pod} via {approach}, {name} {control}: got {status}, expected {expected}"
                    ));
                }
            }
            let in_table = want.keys().filter(|(p, _)| p == name).count();
            assert_eq!(got.len(), in_table, "{name}: every control reported");
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert!(compared > 500, "{compared} statuses compared");
    sim.shutdown().await;
}
