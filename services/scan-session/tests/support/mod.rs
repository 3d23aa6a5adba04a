//! kubesim with an audit log, profiles from the repository, and the checks
//! every scan-session test repeats.

#![allow(dead_code)]

pub mod fence;
pub mod truth;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::Api;
use kube::api::ListParams;
use scanfleet_kube_access::{ApiThrottle, ClusterAccess, ThrottleConfig};
use scanfleet_scan_engine::adapters::local_root::LocalRoot;
use scanfleet_scan_engine::adapters::profile_dir::load_profile_dir;
use scanfleet_scan_engine::facts::GatherLimits;
use scanfleet_scan_engine::hdf::{control_status, to_hdf};
use scanfleet_scan_engine::scan::{ScanReport, scan};
use scanfleet_scan_session::{Approach, ApproachPolicy, ScanRequest, SessionConfig};
use scanfleet_test_harness::repo_root;

/// A running kubesim (demo fixture) and the worker's admin access to it.
pub struct Sim {
    pub sim: kubesim::Kubesim,
    pub admin: ClusterAccess,
    pub audit_path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Sim {
    pub async fn start(faults: Vec<kubesim::faults::FaultRule>) -> Self {
        Self::start_with(faults, ThrottleConfig::default()).await
    }

    pub async fn start_with(
        faults: Vec<kubesim::faults::FaultRule>,
        throttle: ThrottleConfig,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let audit_path = dir.path().join("audit.jsonl");
        let config = kubesim::Config::demo_audited(&audit_path).unwrap();
        let sim = kubesim::Kubesim::start_settled(config, Duration::from_secs(30))
            .await
            .expect("kubesim starts with every pod running (tests run as root)");
        let admin = ClusterAccess::from_kubeconfig_throttled(
            &sim.admin_kubeconfig(),
            "admin",
            ApiThrottle::new(throttle).unwrap(),
        )
        .await
        .unwrap();
        // Faults start after the fixture settled, so only the scan sees them.
        sim.set_faults(faults);
        Self {
            sim,
            admin,
            audit_path,
            _dir: dir,
        }
    }

    pub fn audit(&self) -> Vec<kubesim::audit::AuditRecord> {
        kubesim::audit::read(&self.audit_path).unwrap()
    }

    pub async fn shutdown(self) {
        self.sim.shutdown().await;
    }
}

pub fn profile(name: &str) -> Arc<scanfleet_scan_engine::profile::Profile> {
    Arc::new(
        load_profile_dir(&repo_root().join("profiles").join(name), &BTreeMap::new())
            .unwrap_or_else(|e| panic!("{name}: {e}")),
    )
}

pub fn session_config(allow_debug: bool) -> SessionConfig {
    SessionConfig {
        policy: ApproachPolicy {
            allow_debug,
            sidecar_container: "scanner".into(),
        },
        debug_image: "kubesim.local/scanner:1.0".into(),
        debug_start_timeout: Duration::from_secs(20),
        release_timeout: Duration::from_secs(10),
        limits: GatherLimits::default(),
    }
}

pub fn new_scan_id() -> String {
    // ULID-shaped and unique per call: time plus randomness.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("01t{:020x}", nanos % (1u128 << 80))
}

pub fn request(pod: &str, container: &str, approach: Approach, profile_name: &str) -> ScanRequest {
    ScanRequest {
        scan_id: new_scan_id(),
        namespace: "apps".into(),
        pod: pod.into(),
        container: container.into(),
        approach,
        profile: profile(profile_name),
        deadline: Duration::from_secs(60),
    }
}

pub fn report_statuses(report: &ScanReport) -> BTreeMap<String, String> {
    let hdf = to_hdf(report);
    hdf["profiles"][0]["controls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_owned(),
                control_status(c).key().to_owned(),
            )
        })
        .collect()
}

/// The same profile read straight from the container's root on the host
/// (`/proc/<pid>/root`), with no Kubernetes in between.
pub fn local_statuses(
    sim: &Sim,
    pod: &str,
    container: &str,
    profile_name: &str,
) -> BTreeMap<String, String> {
    let pid = sim
        .sim
        .container_pid("apps", pod, container)
        .expect("container runs");
    let target = LocalRoot::new(format!("/proc/{pid}/root"), GatherLimits::default()).unwrap();
    report_statuses(&scan(&profile(profile_name), &target).unwrap())
}

/// No scanfleet ServiceAccount, Role or RoleBinding anywhere (garbage
/// collection of the Role and RoleBinding is asynchronous, so bounded poll).
pub async fn assert_no_scan_identities_left(sim: &Sim) {
    let selector = ListParams::default().labels("app.kubernetes.io/managed-by=scanfleet");
    let client = sim.admin.client.clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let accounts = Api::<ServiceAccount>::all(client.clone())
            .list(&selector)
            .await
            .unwrap()
            .items
            .len();
        let roles = Api::<Role>::all(client.clone())
            .list(&selector)
            .await
            .unwrap()
            .items
            .len();
        let bindings = Api::<RoleBinding>::all(client.clone())
            .list(&selector)
            .await
            .unwrap()
            .items
            .len();
        if accounts + roles + bindings == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "left behind: {accounts} ServiceAccounts, {roles} Roles, {bindings} RoleBindings"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `check` until it holds, failing after 20 s.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
