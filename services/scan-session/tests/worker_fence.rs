//! The worker's fence (deploy/base/worker/fence.yaml) on kubesim. Applied
//! as `kubectl kustomize deploy/base` renders it (the identities and the
//! policy; kubesim runs no Deployments), with a token for the
//! worker's own ServiceAccount: a whole scan of each approach still
//! succeeds, and every write a stolen worker token would make is refused
//! with the message naming the fence's rule. With the policy dropped the
//! same attempts succeed, so the policy is what stops them.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::Api;
use kube::api::PostParams;
use scanfleet_kube_access::ClusterAccess;
use scanfleet_scan_session::{Approach, SessionConfig, run_scan};
use serde_json::{Value, json};

use support::fence::{
    ATTACKS, Attack, FENCE, Kubectl, WORKER, documents, identity_documents, render, scanner_image,
    worker_access,
};
use support::{Sim, assert_no_scan_identities_left, request, session_config};

/// The rendered fence names the identity the ClusterRoleBinding binds: an
/// overlay that moved the worker without the fence would leave it unfenced.
fn fence_names_the_bound_worker(rendered: &str) {
    let docs = documents(rendered);
    let find = |kind: &str, name: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name} in deploy/base"))
            .clone()
    };
    let subject = &find("ClusterRoleBinding", "scanfleet-worker")["subjects"][0];
    let bound = format!(
        "system:serviceaccount:{}:{}",
        subject["namespace"].as_str().unwrap(),
        subject["name"].as_str().unwrap()
    );
    assert_eq!(bound, WORKER);
    let spec = find("ValidatingAdmissionPolicy", FENCE)["spec"].clone();
    let quoted = format!("'{WORKER}'");
    assert!(
        spec["matchConditions"][0]["expression"]
            .as_str()
            .unwrap()
            .contains(&quoted)
    );
    let worker_var = spec["variables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "worker")
        .unwrap();
    assert!(worker_var["expression"].as_str().unwrap().contains(&quoted));
    let binding = find("ValidatingAdmissionPolicyBinding", FENCE)["spec"].clone();
    assert_eq!(binding["policyName"], FENCE);
    assert_eq!(binding["validationActions"], json!(["Deny"]));
}

async fn create<K>(api: Api<K>, obj: Value)
where
    K: Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let obj: K = serde_json::from_value(obj).unwrap();
    api.create(&PostParams::default(), &obj).await.unwrap();
}

/// A whole scan of each approach as the fenced worker, the debug one with
/// the scanner image by digest, leaving no identity behind.
async fn every_approach_still_scans(sim: &Sim, worker: &ClusterAccess, scanner: &str) {
    let config = SessionConfig {
        debug_image: scanner.to_owned(),
        ..session_config(true)
    };
    for (pod, container, approach) in [
        ("web-misconfigured", "web", Approach::Exec),
        ("distroless-app", "app", Approach::Debug),
        ("app-with-scanner", "app", Approach::Sidecar),
    ] {
        let outcome = run_scan(
            worker,
            &config,
            request(pod, container, approach, "container-baseline"),
        )
        .await
        .unwrap_or_else(|e| panic!("{pod} ({approach}) through the fence: {e}"));
        assert_eq!(outcome.approach, approach);
        assert_eq!(
            outcome.report.target_id,
            format!("k8s://apps/{pod}/{container}")
        );
        assert!(!outcome.report.outcomes.is_empty(), "{pod}: a real report");
    }
    let debugged = Api::<Pod>::namespaced(sim.admin.client.clone(), "apps")
        .get("distroless-app")
        .await
        .unwrap();
    let images: Vec<String> = debugged
        .spec
        .unwrap()
        .ephemeral_containers
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| c.image)
        .collect();
    assert_eq!(images, vec![scanner.to_owned()]);
    assert_no_scan_identities_left(sim).await;
}

/// With the shipped rules RBAC's escalation check refuses a cluster-admin
/// binding before admission runs (as upstream); a careless grant of `bind`
/// on cluster-admin then leaves only the fence in the way.
async fn rbac_refuses_cluster_admin_until_bind_is_granted(sim: &Sim, worker: &kube::Client) {
    let Err(kube::Error::Api(e)) = Attack::BindClusterAdmin
        .attempt(worker, &sim.sim, "", 0)
        .await
    else {
        panic!("a cluster-admin binding without bind must be refused");
    };
    assert_eq!(e.code, 403);
    assert!(
        e.message.starts_with(&format!(
            "rolebindings.rbac.authorization.k8s.io \"grab-admin-0\" is forbidden: user \"{WORKER}\""
        )) && e
            .message
            .contains("is attempting to grant RBAC permissions not currently held"),
        "{}",
        e.message
    );
    create(
        Api::<ClusterRole>::all(sim.admin.client.clone()),
        json!({"metadata": {"name": "careless-bind"},
        "rules": [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"],
                   "verbs": ["bind"], "resourceNames": ["cluster-admin"]}]}),
    )
    .await;
    create(Api::<ClusterRoleBinding>::all(sim.admin.client.clone()), json!({"metadata": {"name": "careless-bind"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "careless-bind"},
        "subjects": [{"kind": "ServiceAccount", "name": "scanfleet-worker", "namespace": "scanfleet"}]}))
    .await;
}

async fn every_attack_is_refused(sim: &Sim, worker: &kube::Client, scanner: &str) {
    for attack in ATTACKS {
        let Err(kube::Error::Api(e)) = attack.attempt(worker, &sim.sim, scanner, 1).await else {
            panic!("{attack:?} got through the fence");
        };
        assert_eq!(
            (e.code, e.reason.as_str(), e.message.as_str()),
            (403, "Forbidden", attack.refusal(scanner, 1).as_str()),
            "{attack:?}"
        );
        println!("{attack:?}: {}", e.message);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_fence_admits_every_scan_and_refuses_a_stolen_worker_token() {
    let sim = Sim::start(Vec::new()).await;
    let kubectl = Kubectl::new(&sim.sim.admin_kubeconfig());
    let scanner = scanner_image(&sim).await;
    let (base, configured) = render(&kubectl, &scanner).await;
    fence_names_the_bound_worker(&base);
    kubectl
        .ok(
            &["apply", "--validate=false", "-f", "-"],
            Some(&identity_documents(&configured)),
        )
        .await;
    let listed = kubectl
        .ok(
            &[
                "get",
                "validatingadmissionpolicies,validatingadmissionpolicybindings",
                "-o",
                "name",
            ],
            None,
        )
        .await;
    assert_eq!(
        listed.lines().collect::<Vec<_>>(),
        [
            format!("validatingadmissionpolicy.admissionregistration.k8s.io/{FENCE}"),
            format!("validatingadmissionpolicybinding.admissionregistration.k8s.io/{FENCE}"),
        ]
    );
    for victim in ["victim-1", "victim-2"] {
        create(
            Api::<ServiceAccount>::namespaced(sim.admin.client.clone(), "apps"),
            json!({"metadata": {"name": victim}}),
        )
        .await;
    }
    let worker = worker_access(&sim).await;
    every_approach_still_scans(&sim, &worker, &scanner).await;
    rbac_refuses_cluster_admin_until_bind_is_granted(&sim, &worker.client).await;
    every_attack_is_refused(&sim, &worker.client, &scanner).await;

    kubectl
        .ok(&["delete", "validatingadmissionpolicybinding", FENCE], None)
        .await;
    kubectl
        .ok(&["delete", "validatingadmissionpolicy", FENCE], None)
        .await;
    for attack in ATTACKS {
        attack
            .attempt(&worker.client, &sim.sim, &scanner, 2)
            .await
            .unwrap_or_else(|e| panic!("{attack:?} without the fence: {e}"));
    }
    tokio::time::timeout(Duration::from_secs(30), sim.shutdown())
        .await
        .expect("kubesim stops");
}
