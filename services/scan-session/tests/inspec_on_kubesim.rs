//! The differential test through Kubernetes: the shipped YAML profiles and
//! their InSpec-syntax rewrites (`profiles/*-inspec`) scanned through exec,
//! debug container and sidecar on kubesim give the same status for every
//! control, each in one exec round trip. In a debug container or sidecar
//! commands run in the scanner's own container, so there the rewrites'
//! `find`-based controls are skipped saying so (the YAML searches read the
//! target's files through `/proc/PID/root` instead).

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use scanfleet_kube_access::ClusterAccess;
use scanfleet_scan_engine::hdf::{control_status, to_hdf};
use scanfleet_scan_engine::scan::ScanReport;
use scanfleet_scan_session::{Approach, ScanRequest, run_scan};
use scanfleet_test_harness::repo_root;
use support::truth::{build, fixture};
use support::{new_scan_id, profile, session_config};

const PAIRS: [(&str, &str); 2] = [
    ("container-baseline", "container-baseline-inspec"),
    ("container-hardening", "container-hardening-inspec"),
];

/// control id -> (status, first message).
fn statuses(report: &ScanReport) -> BTreeMap<String, (String, String)> {
    let hdf = to_hdf(report);
    hdf["profiles"][0]["controls"]
        .as_array()
        .expect("controls")
        .iter()
        .map(|c| {
            let msg = c["results"]
                .as_array()
                .and_then(|r| {
                    r.iter()
                        .find_map(|x| x["message"].as_str().or(x["skip_message"].as_str()))
                })
                .unwrap_or("")
                .to_string();
            (
                c["id"].as_str().expect("id").to_string(),
                (control_status(c).key().to_string(), msg),
            )
        })
        .collect()
}

/// Control ids of a rewrite that read the target through `command`.
fn command_controls(rewrite: &str) -> Vec<String> {
    let dir = repo_root().join("profiles").join(rewrite).join("controls");
    let mut out = Vec::new();
    for f in std::fs::read_dir(dir).expect("controls").flatten() {
        let text = std::fs::read_to_string(f.path()).expect("readable");
        for c in text.split("\ncontrol '").skip(1) {
            if c.contains("command(") {
                out.push(c.split('\'').next().unwrap_or("").to_string());
            }
        }
    }
    out
}

async fn scan_with(admin: &ClusterAccess, pod: &str, approach: Approach, name: &str) -> ScanReport {
    run_scan(
        admin,
        &session_config(true),
        ScanRequest {
            scan_id: new_scan_id(),
            namespace: "truth".into(),
            pod: pod.into(),
            container: "app".into(),
            approach,
            profile: profile(name),
            deadline: Duration::from_secs(60),
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{pod} via {approach} ({name}): {e}"))
    .report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn inspec_rewrites_give_the_yaml_verdicts_through_every_approach() {
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
    let mut mismatches = Vec::new();
    let mut compared = 0;
    for (pod, approach) in [
        ("weak", Approach::Exec),
        ("weak", Approach::Debug),
        ("weak-with-scanner", Approach::Sidecar),
        ("hardened", Approach::Exec),
        ("hardened", Approach::Debug),
    ] {
        for (yaml, rewrite) in PAIRS {
            let want = statuses(&scan_with(&admin, pod, approach, yaml).await);
            let report = scan_with(&admin, pod, approach, rewrite).await;
            assert_eq!(
                report.stats.round_trips, 1,
                "{rewrite} via {approach}: every fact is known up front"
            );
            let got = statuses(&report);
            assert_eq!(
                want.keys().collect::<Vec<_>>(),
                got.keys().collect::<Vec<_>>(),
                "{rewrite} has the same controls as {yaml}"
            );
            let commands = command_controls(rewrite);
            for (id, (status, _)) in &want {
                let (g, msg) = &got[id];
                compared += 1;
                let skipped_for_commands = approach != Approach::Exec
                    && commands.contains(id)
                    && g == "skipped"
                    && msg.contains("exec approach");
                if g != status && !skipped_for_commands {
                    mismatches.push(format!(
                        "{pod} via {approach}, {rewrite} {id}: got {g} ({msg}), YAML says {status}"
                    ));
                }
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert!(compared > 500, "{compared} statuses compared");
    sim.shutdown().await;
}
