//! Posture on /metrics: the real collector binary shows each workload's
//! latest completed scan as Prometheus series that `promtool` accepts, shows
//! them again after a restart (from the store), and keeps to its bound.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use async_nats::HeaderMap;
use scanfleet_process_lifecycle::metrics::sample;
use scanfleet_test_harness::{system_tool, text};
use scanfleet_trust::SigningKey;
use support::*;

async fn scrape(collector: &CollectorProcess) -> String {
    let response = collector.get("/metrics").await;
    assert_eq!(response.status, 200, "{}", response.text());
    response.text()
}

/// `promtool check metrics`: the exposition parses and follows Prometheus'
/// naming conventions (it prints each problem and exits non-zero).
fn promtool_accepts(exposition: &str) {
    let mut child = Command::new(system_tool("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

fn workload_series(name: &str, namespace: &str, scan_id: &str, extra: &str) -> String {
    format!(
        "scanfleet_collector_{name}{{cluster=\"kubesim\",namespace=\"{namespace}\",pod=\"pod-{scan_id}\",container=\"app\",profile=\"container-baseline\"{extra}}}"
    )
}

#[tokio::test]
async fn workloads_are_series_promtool_accepts_after_restarts_and_within_the_bound() {
    let (_sim, creds) = credentials().await;
    let bus = SecureBus::start().await;
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let pub_path = write_public_key(dir.path(), &key);
    let store = format!("sqlite://{}", dir.path().join("r.db").display());
    let args = base_args(&bus, &store, &pub_path);
    let mut collector = CollectorProcess::start(args.clone(), dir.path(), &creds);
    let js = bus.js(BusIdentity::Worker).await;

    let scans = [
        ("01FIND1", "shop"),
        ("01FIND2", "shop"),
        ("01FIND3", "infra"),
    ];
    for (scan_id, namespace) in scans {
        let published = result(&key, scan_id, namespace);
        publish(
            &js,
            namespace,
            scan_id,
            HeaderMap::new(),
            inline_event(&published),
        )
        .await;
    }
    eventually("3 results stored", || async {
        collector
            .metric("scanfleet_collector_results_stored_total")
            .await
            == 3
    })
    .await;

    let shows_every_workload = |exposition: &str| {
        for (scan_id, namespace) in scans {
            // The sample scans passed 8 and failed 2 (medium) controls.
            let ratio = workload_series("workload_compliance_ratio", namespace, scan_id, "");
            assert_eq!(
                sample(exposition, &ratio),
                Some(0.8),
                "{ratio} in\n{exposition}"
            );
            let medium = workload_series(
                "workload_failed_controls",
                namespace,
                scan_id,
                ",severity=\"medium\"",
            );
            assert_eq!(sample(exposition, &medium), Some(2.0), "{medium}");
            let when = workload_series(
                "workload_last_scan_timestamp_seconds",
                namespace,
                scan_id,
                "",
            );
            assert!(
                sample(exposition, &when).is_some_and(|t| t > 1.7e9),
                "{when}"
            );
        }
    };
    let exposition = scrape(&collector).await;
    shows_every_workload(&exposition);
    promtool_accepts(&exposition);

    // A restarted collector shows the same workloads before any new result.
    collector.stop();
    let mut collector = CollectorProcess::start(args.clone(), dir.path(), &creds);
    shows_every_workload(&scrape(&collector).await);

    // With a bound of two, the third workload is counted, not shown.
    collector.stop();
    let mut bounded = args;
    bounded.extend(["--max-finding-workloads".into(), "2".into()]);
    let collector = CollectorProcess::start(bounded, dir.path(), &creds);
    let exposition = scrape(&collector).await;
    let shown = exposition
        .lines()
        .filter(|l| l.starts_with("scanfleet_collector_workload_compliance_ratio{"))
        .count();
    assert_eq!(shown, 2, "{exposition}");
    assert_eq!(
        sample(
            &exposition,
            "scanfleet_collector_finding_workloads_dropped_total"
        ),
        Some(1.0)
    );
    promtool_accepts(&exposition);
}

/// The example alert rules load, and their unit tests (which feed the
/// series above and expect each alert to fire or stay quiet) pass.
#[test]
fn the_example_alert_rules_pass_promtool() {
    let dir = scanfleet_test_harness::repo_root().join("deploy/monitoring");
    for args in [
        ["check", "rules", "scanfleet-alerts.yaml"],
        ["test", "rules", "scanfleet-alerts.test.yaml"],
    ] {
        let out = Command::new(system_tool("promtool"))
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("run promtool");
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
}
