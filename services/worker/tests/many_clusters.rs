//! Many clusters on one bus: two kubesims, one nats-server, intake and the
//! collector, and six worker processes (two serve only `kubesim`, one only
//! `west`, three both through a `clusters:` registry). Each cluster has its
//! own fleet-wide API budget and its own intent consumers, so:
//! - intake refuses a cluster it does not know, naming the known ones;
//! - intents for a cluster no running worker serves wait (GetScan says so,
//!   intake's metrics count them), are never dead-lettered, and complete
//!   once a worker for that cluster starts;
//! - 200 scans across both clusters are each persisted exactly once, none
//!   dead-lettered, while two workers are SIGKILLed and restarted, and
//!   neither cluster's audit log ever shows more than its own budget.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kubesim::audit::{AuditRecord, arrivals};
use scanfleet_bus::TopologyConfig;
use scanfleet_bus::topology::DLQ_STREAM;
use scanfleet_contracts::v1::target_selector::Selector;
use scanfleet_contracts::v1::{GetScanRequest, ScanOutcome, ScanState, TargetSelector};
use scanfleet_scan_intents::ClusterName;
use scanfleet_test_harness::https::https_get;
use scanfleet_test_harness::write_private;
use support::{Fleet, SecureBus, Worker, eventually, submit_request};

/// Each cluster's budget for all workers together (calls per second, and
/// the burst on top of it).
const KUBESIM_QPS: usize = 40;
const WEST_QPS: usize = 30;

/// Exec scans: quick, one round trip each; both clusters run the demo pods.
const TARGETS: [&str; 2] = [
    "k8s://apps/web-misconfigured/web",
    "k8s://apps/web-hardened/web",
];

fn unix_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

/// The most worker calls that arrived within any 1 s window of `audit`.
fn busiest_second(audit: &[AuditRecord], since_ms: f64) -> usize {
    let times = arrivals(audit, |r| {
        r.received_unix_ms >= since_ms
            && (r.user == "kubesim-admin" || r.user.starts_with("system:serviceaccount:apps:"))
    });
    kubesim::audit::busiest_second(&times).0
}

fn read_audit(path: &std::path::Path) -> Vec<AuditRecord> {
    kubesim::audit::read(path).unwrap()
}

/// A registry entry for a worker's YAML.
fn entry(name: &str, kubeconfig: &std::path::Path, qps: usize) -> String {
    format!(
        "  - name: {name}\n    kubeconfig: {}\n    kube: {{qps: {qps}, burst: {qps}}}\n",
        kubeconfig.display()
    )
}

struct West {
    sim: kubesim::Kubesim,
    kubeconfig: std::path::PathBuf,
    audit_log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

async fn west() -> West {
    let dir = tempfile::tempdir().unwrap();
    let audit_log = dir.path().join("west-audit.jsonl");
    let sim = kubesim::Kubesim::start_settled(
        kubesim::Config {
            audit_log: Some(audit_log.clone()),
            ..kubesim::Config::demo().unwrap()
        },
        Duration::from_secs(30),
    )
    .await
    .expect("the second kubesim starts");
    let kubeconfig = dir.path().join("west.kubeconfig");
    write_private(&kubeconfig, sim.admin_kubeconfig().as_bytes());
    West {
        sim,
        kubeconfig,
        audit_log,
        _dir: dir,
    }
}

async fn submit_to(fleet: &Fleet, cluster: &str, uri: &str) -> Result<String, tonic::Status> {
    let mut request = submit_request(uri);
    request.target = Some(TargetSelector {
        cluster: cluster.into(),
        selector: Some(Selector::Uri(uri.into())),
    });
    fleet.submit_request(tonic::Request::new(request)).await
}

async fn scan_status(fleet: &Fleet, scan_id: &str) -> (ScanState, String) {
    let mut client = fleet.intake_as(fleet.creds.operator()).await;
    let status = client
        .get_scan(GetScanRequest {
            scan_id: scan_id.into(),
        })
        .await
        .unwrap()
        .into_inner();
    (status.state(), status.message)
}

async fn intake_metric(fleet: &Fleet, series: &str) -> Option<f64> {
    let http = fleet.intake.http.expect("intake serves HTTP");
    let r = https_get(http, &fleet.creds.tls(), "/metrics", None).await;
    assert_eq!(r.status, 200);
    r.text()
        .lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
}

/// The fleet on a bus with consumers for `kubesim` and `west`, intake
/// knowing both (west through its kubeconfig) and serving metrics.
async fn fleet_knowing(west: &West) -> Fleet {
    let nats = SecureBus::start_with(TopologyConfig {
        clusters: vec![ClusterName::new("west").unwrap()],
        ..support::topology()
    })
    .await;
    let west_kubeconfig = west.kubeconfig.clone();
    Fleet::start_on_with(nats, move |dir| {
        let config = dir.join("intake.yml");
        std::fs::write(
            &config,
            format!(
                "clusters:\n  - name: west\n    kubeconfig: {}\n",
                west_kubeconfig.display()
            ),
        )
        .unwrap();
        [
            "--config",
            &config.display().to_string(),
            "--http-listen",
            "127.0.0.1:0",
            // 200 submissions in a row from one operator.
            "--rate-limit",
            "1000",
            "--rate-limit-burst",
            "1000",
        ]
        .map(String::from)
        .to_vec()
    })
    .await
}

/// With workers for kubesim only, west's intents wait: GetScan and the
/// metrics say so, kubesim's workers take none of them, none is
/// dead-lettered. Returns west's scans and one kubesim scan.
async fn west_waits(fleet: &Fleet, kubesim_workers: &[&Worker]) -> (BTreeSet<String>, String) {
    let mut waiting = BTreeSet::new();
    for i in 0..10 {
        waiting.insert(submit_to(fleet, "west", TARGETS[i % 2]).await.unwrap());
    }
    let served_proof = fleet.submit(TARGETS[0]).await;
    fleet
        .wait_results(1, Duration::from_secs(60), kubesim_workers)
        .await;
    eventually(
        "intake counts west's waiting intents",
        Duration::from_secs(20),
        || async {
            intake_metric(
                fleet,
                "scanfleet_intake_cluster_intents_waiting{cluster=\"west\"}",
            )
            .await
                == Some(10.0)
        },
    )
    .await;
    assert_eq!(
        intake_metric(
            fleet,
            "scanfleet_intake_cluster_served{cluster=\"kubesim\"}"
        )
        .await,
        Some(1.0)
    );
    for id in &waiting {
        let (state, message) = scan_status(fleet, id).await;
        assert_eq!(state, ScanState::Queued, "{id}: {message}");
        assert!(
            message.contains("no running worker serves cluster west"),
            "{id}: {message:?}"
        );
    }
    let results = fleet.results().await;
    assert_eq!(
        results.iter().map(|r| &r.scan_id).collect::<Vec<_>>(),
        vec![&served_proof],
        "kubesim's workers took nothing of west's"
    );
    assert_eq!(fleet.messages(DLQ_STREAM).await, 0, "nothing dead-lettered");
    (waiting, served_proof)
}

/// Submits 200 scans, alternating clusters; returns each scan's cluster.
async fn flood(fleet: &Fleet) -> BTreeMap<String, &'static str> {
    let mut by_cluster = BTreeMap::new();
    for i in 0..200 {
        let cluster = if i % 2 == 0 { "kubesim" } else { "west" };
        let id = submit_to(fleet, cluster, TARGETS[(i / 2) % 2])
            .await
            .unwrap();
        by_cluster.insert(id, cluster);
    }
    by_cluster
}

/// Waits until `worker` is scanning with at least `done` results stored,
/// then SIGKILLs it.
async fn kill_while_scanning(fleet: &Fleet, worker: &mut Worker, done: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let stored = fleet.results().await.len();
        let in_flight = worker.metric("scanfleet_worker_scans_in_flight").await;
        if stored >= done && in_flight >= 1.0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no moment with {done} results stored and the worker scanning: {stored} stored, \
             {in_flight} in flight; its log:\n{}",
            worker
                .logs()
                .lines()
                .rev()
                .take(30)
                .collect::<Vec<_>>()
                .join("\n")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.signal("KILL");
    let _ = worker.child.wait();
}

/// Every scan persisted exactly once, completed, in its own cluster.
fn assert_exactly_once(
    results: &[scanfleet_contracts::v1::ScanResult],
    expected: &BTreeSet<String>,
    by_cluster: &BTreeMap<String, &str>,
) {
    let mut seen = BTreeMap::new();
    for r in results {
        *seen.entry(r.scan_id.clone()).or_insert(0) += 1;
        assert_eq!(r.outcome(), ScanOutcome::Completed, "{}", r.failure);
        if let Some(cluster) = by_cluster.get(&r.scan_id) {
            assert_eq!(
                &r.target.as_ref().unwrap().cluster,
                cluster,
                "{}",
                r.scan_id
            );
        }
    }
    assert!(seen.values().all(|&n| n == 1), "each scan persisted once");
    assert_eq!(&seen.keys().cloned().collect::<BTreeSet<_>>(), expected);
}

/// `sim`'s ServiceAccounts in `apps`, as its admin sees them (built once
/// per cluster, not per poll).
async fn apps_accounts(
    sim: &kubesim::Kubesim,
) -> kube::Api<k8s_openapi::api::core::v1::ServiceAccount> {
    let admin =
        scanfleet_kube_access::ClusterAccess::from_kubeconfig(&sim.admin_kubeconfig(), "admin")
            .await
            .unwrap();
    kube::Api::namespaced(admin.client, "apps")
}

/// A scan identity a crashed worker left in `apps`, already expired.
async fn leave_expired_identity(
    accounts: &kube::Api<k8s_openapi::api::core::v1::ServiceAccount>,
    name: &str,
) {
    use scanfleet_scan_session::scan_identity::EXPIRES_AT_ANNOTATION;
    let account = serde_json::from_value(serde_json::json!({
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/managed-by": "scanfleet"},
            "annotations": {EXPIRES_AT_ANNOTATION: "2000-01-01T00:00:00Z"},
        }
    }))
    .unwrap();
    accounts
        .create(&Default::default(), &account)
        .await
        .unwrap();
}

async fn identity_exists(
    accounts: &kube::Api<k8s_openapi::api::core::v1::ServiceAccount>,
    name: &str,
) -> bool {
    accounts.get_opt(name).await.unwrap().is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_clusters_one_bus_six_workers_each_cluster_within_its_own_budget() {
    let west = west().await;
    let fleet = fleet_knowing(&west).await;

    // A cluster intake does not know is refused, naming the known ones.
    let refused = submit_to(&fleet, "north", TARGETS[0]).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    assert!(
        refused
            .message()
            .contains("target.cluster: unknown cluster \"north\"; known clusters: kubesim, west"),
        "{}",
        refused.message()
    );

    // Only kubesim has workers: west's intents wait, and say so.
    let kubesim_only = format!("kube:\n  qps: {KUBESIM_QPS}\n  burst: {KUBESIM_QPS}\n");
    let mut e1 = fleet.worker_with_yaml("e1", 4, &kubesim_only);
    let e2 = fleet.worker_with_yaml("e2", 4, &kubesim_only);
    let (waiting, served_proof) = west_waits(&fleet, &[&e1, &e2]).await;

    // Workers for west start: one for west alone, three for both; the
    // waiting intents complete.
    let since = unix_ms();
    let both = format!(
        "clusters:\n{}{}",
        entry("kubesim", &fleet.kubeconfig, KUBESIM_QPS),
        entry("west", &west.kubeconfig, WEST_QPS)
    );
    let west_only = format!("clusters:\n{}", entry("west", &west.kubeconfig, WEST_QPS));
    let x1 = fleet.worker_serving("x1", 4, &west_only, 3600);
    let mut b1 = fleet.worker_serving("b1", 4, &both, 3600);
    let b2 = fleet.worker_serving("b2", 4, &both, 3600);
    let b3 = fleet.worker_serving("b3", 4, &both, 3600);
    fleet
        .wait_results(11, Duration::from_secs(60), &[&x1, &b1, &b2, &b3])
        .await;

    // 200 scans across both clusters; mid-run, SIGKILL a worker of each
    // kind while it scans, and start it again.
    // The kills run while the scans are still being submitted: on a
    // loaded machine submitting can be slower than scanning.
    let kills = async {
        kill_while_scanning(&fleet, &mut e1, 11 + 20).await;
        let e1 = fleet.worker_with_yaml("e1", 4, &kubesim_only);
        kill_while_scanning(&fleet, &mut b1, 11 + 40).await;
        (e1, fleet.worker_serving("b1", 4, &both, 3600))
    };
    let (by_cluster, (e1, b1)) = tokio::join!(flood(&fleet), kills);
    let workers: [&Worker; 6] = [&e1, &e2, &x1, &b1, &b2, &b3];
    let results = fleet
        .wait_results(211, Duration::from_secs(240), &workers)
        .await;
    let expected: BTreeSet<String> = by_cluster
        .keys()
        .chain(&waiting)
        .chain([&served_proof])
        .cloned()
        .collect();
    assert_exactly_once(&results, &expected, &by_cluster);
    assert_eq!(fleet.messages(DLQ_STREAM).await, 0, "nothing dead-lettered");

    let kubesim_most = busiest_second(&fleet.audit(), since);
    let west_most = busiest_second(&read_audit(&west.audit_log), since);
    println!(
        "busiest 1 s of worker calls: kubesim {kubesim_most} (budget {KUBESIM_QPS} + burst \
         {KUBESIM_QPS}), west {west_most} (budget {WEST_QPS} + burst {WEST_QPS})"
    );
    assert!(
        kubesim_most <= 2 * KUBESIM_QPS,
        "kubesim saw {kubesim_most} in 1 s"
    );
    assert!(west_most <= 2 * WEST_QPS, "west saw {west_most} in 1 s");
    assert!(
        west_most > 0 && kubesim_most > 0,
        "both clusters were scanned"
    );

    // The sweeper runs per cluster: a worker serving both removes the
    // expired identities crashed workers left in each.
    let (east_accounts, west_accounts) = (
        apps_accounts(&fleet.sim).await,
        apps_accounts(&west.sim).await,
    );
    leave_expired_identity(&east_accounts, "scanfleet-left-east").await;
    leave_expired_identity(&west_accounts, "scanfleet-left-west").await;
    let _sweeper = fleet.worker_serving("s1", 1, &both, 1);
    eventually("both clusters swept", Duration::from_secs(30), || async {
        !identity_exists(&east_accounts, "scanfleet-left-east").await
            && !identity_exists(&west_accounts, "scanfleet-left-west").await
    })
    .await;
}
