//! deploy/rbac/worker.yaml is exactly sufficient: with it, a worker can run
//! the whole identity flow on kubesim (whose RBAC escalation checks are
//! upstream's); without any single rule, the flow breaks.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule};
use kube::Api;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use scanfleet_kube_access::ClusterAccess;
use scanfleet_scan_session::{Access, ScanIdentity, sweep_expired};

fn manifests() -> (ServiceAccount, ClusterRole, ClusterRoleBinding) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/rbac/worker.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let docs: Vec<serde_json::Value> = serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    let find = |kind: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind)
            .unwrap_or_else(|| panic!("{kind} in {}", path.display()))
            .clone()
    };
    (
        serde_json::from_value(find("ServiceAccount")).unwrap(),
        serde_json::from_value(find("ClusterRole")).unwrap(),
        serde_json::from_value(find("ClusterRoleBinding")).unwrap(),
    )
}

/// Pre-flight, provision (debug access, the widest Role), sweep, release.
async fn scan_flow(worker: &ClusterAccess, scan_id: &str) -> Result<(), String> {
    let pod = Api::<Pod>::namespaced(worker.client.clone(), "apps")
        .get("web-misconfigured")
        .await
        .map_err(|e| format!("pre-flight: {e}"))?;
    let identity = ScanIdentity::provision(
        worker,
        &pod,
        scan_id,
        Access::ExecAndEphemeral,
        Duration::from_secs(60),
    )
    .await
    .map_err(|e| format!("provision: {e}"))?;
    sweep_expired(worker, jiff::Timestamp::now())
        .await
        .map_err(|e| format!("sweep: {e}"))?;
    identity
        .release(worker)
        .await
        .map_err(|e| format!("release: {e}"))
}

async fn set_rules(admin: &ClusterAccess, role: &ClusterRole, rules: Vec<PolicyRule>) {
    let roles: Api<ClusterRole> = Api::all(admin.client.clone());
    let name = role.metadata.name.clone().unwrap();
    let _ = roles.delete(&name, &DeleteParams::default()).await;
    let mut role = role.clone();
    role.metadata = ObjectMeta {
        name: Some(name),
        ..Default::default()
    };
    role.rules = Some(rules);
    roles.create(&PostParams::default(), &role).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_rbac_is_exactly_sufficient() {
    let sim = kubesim::Kubesim::start(kubesim::Config::demo().unwrap())
        .await
        .expect("kubesim starts (tests run as root)");
    assert!(
        sim.wait_pods_settled(Duration::from_secs(30))
            .await
            .is_empty()
    );
    let admin = ClusterAccess::from_kubeconfig(&sim.admin_kubeconfig(), "admin")
        .await
        .unwrap();
    let (account, role, binding) = manifests();
    Api::<Namespace>::all(admin.client.clone())
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    name: Some("scanfleet".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .unwrap();
    Api::<ServiceAccount>::namespaced(admin.client.clone(), "scanfleet")
        .create(&PostParams::default(), &account)
        .await
        .unwrap();
    Api::<ClusterRole>::all(admin.client.clone())
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    Api::<ClusterRoleBinding>::all(admin.client.clone())
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    let token = Api::<ServiceAccount>::namespaced(admin.client.clone(), "scanfleet")
        .create_token_request(
            "scanfleet-worker",
            &PostParams::default(),
            &TokenRequest {
                spec: Some(TokenRequestSpec {
                    expiration_seconds: Some(3600),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .status
        .and_then(|s| s.token)
        .unwrap();
    let worker = ClusterAccess::from_kubeconfig(
        &sim.kubeconfig_for_token("scanfleet-worker", &token, "scanfleet"),
        "worker",
    )
    .await
    .unwrap();

    scan_flow(&worker, "01FULL")
        .await
        .expect("the shipped rules suffice");

    let rules = role.rules.clone().unwrap();
    for (i, dropped) in rules.iter().enumerate() {
        let mut fewer = rules.clone();
        fewer.remove(i);
        set_rules(&admin, &role, fewer).await;
        let outcome = scan_flow(&worker, &format!("01DROP{i}")).await;
        assert!(
            outcome.is_err(),
            "the flow still works without {:?} {:?}",
            dropped.resources,
            dropped.verbs
        );
        // Clean whatever the broken flow left, as the sweeper would.
        let far = jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::from_secs(7200))
            .unwrap();
        sweep_expired(&admin, far).await.unwrap();
    }
    set_rules(&admin, &role, rules).await;
    scan_flow(&worker, "01AGAIN")
        .await
        .expect("restored rules suffice again");
    sim.shutdown().await;
}
