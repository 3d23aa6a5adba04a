//! deploy/base/worker/rbac.yaml is exactly sufficient: with it, a worker can run
//! the whole identity flow on kubesim (whose RBAC escalation checks are
//! upstream's); without any single rule, the flow breaks.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule};
use kube::Api;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use scanfleet_kube_access::ClusterAccess;
use std::collections::BTreeMap;
use std::sync::Arc;

use kube::api::ListParams;
use scanfleet_scan_engine::adapters::profile_dir::load_profile_dir;
use scanfleet_scan_session::{Approach, ScanRequest, SessionConfig, run_scan, sweep_expired};

fn manifests() -> (ServiceAccount, ClusterRole, ClusterRoleBinding) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/base/worker/rbac.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let docs: Vec<serde_json::Value> = yaml_serde::Deserializer::from_str(&text)
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

/// A whole debug scan of the distroless pod (the widest Role: exec,
/// ephemeral containers, watch), then a sweeper pass. Any identity left
/// behind is a failure too: removal is part of the flow.
async fn scan_flow(worker: &ClusterAccess, admin: &ClusterAccess) -> Result<(), String> {
    let profile = load_profile_dir(
        &scanfleet_test_harness::repo_root().join("profiles/container-baseline"),
        &BTreeMap::new(),
    )
    .unwrap();
    let config = SessionConfig {
        debug_start_timeout: Duration::from_secs(20),
        ..SessionConfig::default()
    };
    let request = ScanRequest {
        scan_id: format!("01rbac{:08x}", rand_id()),
        namespace: "apps".into(),
        pod: "distroless-app".into(),
        container: "app".into(),
        approach: Approach::Debug,
        profile: Arc::new(profile),
        deadline: Duration::from_secs(60),
    };
    let result = run_scan(worker, &config, request)
        .await
        .map(|_| ())
        .map_err(|e| format!("scan: {e}"));
    let swept = sweep_expired(worker, jiff::Timestamp::now())
        .await
        .map_err(|e| format!("sweep: {e}"));
    let left = Api::<ServiceAccount>::all(admin.client.clone())
        .list(&ListParams::default().labels("app.kubernetes.io/managed-by=scanfleet"))
        .await
        .unwrap()
        .items
        .len();
    result?;
    swept?;
    if left > 0 {
        return Err(format!("{left} scan identities left behind"));
    }
    Ok(())
}

fn rand_id() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
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
    let sim =
        kubesim::Kubesim::start_settled(kubesim::Config::demo().unwrap(), Duration::from_secs(30))
            .await
            .expect("kubesim starts with every pod running (tests run as root)");
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

    scan_flow(&worker, &admin)
        .await
        .expect("the shipped rules suffice");

    // Drop every (resource, verb) pair in turn, not just whole rules.
    let rules = role.rules.clone().unwrap();
    let mut pairs = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        for resource in rule.resources.clone().unwrap_or_default() {
            for verb in &rule.verbs {
                pairs.push((i, resource.clone(), verb.clone()));
            }
        }
    }
    assert_eq!(pairs.len(), 11, "grants in deploy/base/worker/rbac.yaml");
    for (i, resource, verb) in pairs {
        // Rule i without exactly that pair: the other resources keep every
        // verb, that resource keeps the other verbs.
        let mut fewer = rules.clone();
        let rule = fewer.remove(i);
        let others: Vec<String> = rule
            .resources
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|r| *r != resource)
            .collect();
        if !others.is_empty() {
            fewer.push(PolicyRule {
                resources: Some(others),
                ..rule.clone()
            });
        }
        let verbs: Vec<String> = rule.verbs.iter().filter(|v| **v != verb).cloned().collect();
        if !verbs.is_empty() {
            fewer.push(PolicyRule {
                resources: Some(vec![resource.clone()]),
                verbs,
                ..rule.clone()
            });
        }
        set_rules(&admin, &role, fewer).await;
        let outcome = scan_flow(&worker, &admin).await;
        assert!(
            outcome.is_err(),
            "a scan still works without {verb} on {resource}"
        );
        // Clean whatever the broken flow left, as the sweeper would.
        let far = jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::from_secs(7200))
            .unwrap();
        sweep_expired(&admin, far).await.unwrap();
    }
    set_rules(&admin, &role, rules).await;
    scan_flow(&worker, &admin)
        .await
        .expect("restored rules suffice again");
    sim.shutdown().await;
}
