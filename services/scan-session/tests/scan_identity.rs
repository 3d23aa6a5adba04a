//! The per-scan identity against kubesim: least privilege, bounded lifetime,
//! and cleanup on release, on pod deletion and by the sweeper.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::Api;
use kube::api::{AttachParams, DeleteParams, ListParams, PostParams};
use scanfleet_kube_access::ClusterAccess;
use scanfleet_scan_session::scan_identity::{EXPIRES_AT_ANNOTATION, SCAN_ID_LABEL};
use scanfleet_scan_session::{Access, ScanIdentity, sweep_expired};

async fn sim() -> (kubesim::Kubesim, ClusterAccess) {
    let sim =
        kubesim::Kubesim::start_settled(kubesim::Config::demo().unwrap(), Duration::from_secs(30))
            .await
            .expect("kubesim starts with every pod running (tests run as root)");
    let admin = ClusterAccess::from_kubeconfig(&sim.admin_kubeconfig(), "admin")
        .await
        .unwrap();
    (sim, admin)
}

async fn pod(admin: &ClusterAccess, name: &str) -> Pod {
    Api::<Pod>::namespaced(admin.client.clone(), "apps")
        .get(name)
        .await
        .unwrap()
}

fn status_code<T>(r: Result<T, kube::Error>) -> u16 {
    match r {
        Err(kube::Error::Api(s)) => s.code,
        Err(other) => panic!("expected an API error, got {other:?}"),
        Ok(_) => panic!("expected an API error, got success"),
    }
}

async fn gone<K>(api: &Api<K>, name: &str) -> bool
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    matches!(api.get_opt(name).await, Ok(None))
}

async fn eventually<F, Fut>(what: &str, mut check: F)
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

/// Names, labels, owner, expiry annotation, token lifetime and Role scope.
async fn assert_shape(admin: &ClusterAccess, identity: &ScanIdentity, issued_at: i64) {
    // scan id plus a per-attempt tag, so a redelivery never collides.
    let tag = identity
        .service_account
        .strip_prefix("scanfleet-scan-01jdq2z8y6w5m3n4p7r9s0t1v2-")
        .expect("name carries the scan id");
    assert!(
        tag.len() == 4 && tag.bytes().all(|b| b.is_ascii_hexdigit()),
        "{}",
        identity.service_account
    );
    let lifetime = identity.token_expires_at - issued_at;
    assert!((600..=1800).contains(&lifetime), "token lives {lifetime} s");

    let accounts: Api<ServiceAccount> = Api::namespaced(admin.client.clone(), "apps");
    let account = accounts.get(&identity.service_account).await.unwrap();
    let meta = &account.metadata;
    assert_eq!(
        meta.labels.as_ref().unwrap()[SCAN_ID_LABEL],
        "01jdq2z8y6w5m3n4p7r9s0t1v2"
    );
    assert!(
        meta.annotations
            .as_ref()
            .unwrap()
            .contains_key(EXPIRES_AT_ANNOTATION)
    );
    let owner = &meta.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Pod", "web-misconfigured")
    );
    let role = Api::<Role>::namespaced(admin.client.clone(), "apps")
        .get(&identity.service_account)
        .await
        .unwrap();
    for rule in role.rules.unwrap() {
        assert_eq!(
            rule.resource_names,
            Some(vec!["web-misconfigured".to_owned()])
        );
    }
}

/// Allowed: its own pod, and exec into it.
async fn assert_reaches_its_pod(identity: &ScanIdentity) {
    let pods: Api<Pod> = Api::namespaced(identity.client.clone(), "apps");
    pods.get("web-misconfigured").await.unwrap();
    let mut process = pods
        .exec(
            "web-misconfigured",
            ["id", "-u"],
            &AttachParams::default().container("web").stderr(false),
        )
        .await
        .unwrap();
    let mut stdout = process.stdout().unwrap();
    let mut out = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut out)
        .await
        .unwrap();
    assert_eq!(out.trim(), "0");
}

/// Denied: listing, other pods, exec elsewhere, other namespaces' objects.
async fn assert_reaches_nothing_else(identity: &ScanIdentity) {
    let pods: Api<Pod> = Api::namespaced(identity.client.clone(), "apps");
    assert_eq!(status_code(pods.list(&ListParams::default()).await), 403);
    assert_eq!(status_code(pods.get("web-hardened").await), 403);
    let denied = pods
        .exec(
            "web-hardened",
            ["id"],
            &AttachParams::default().container("web"),
        )
        .await;
    assert_eq!(
        status_code(denied),
        403,
        "exec into another pod is forbidden"
    );
    // Secrets are out of reach, by name and by list, in its own namespace.
    let secrets: Api<Secret> = Api::namespaced(identity.client.clone(), "apps");
    assert_eq!(status_code(secrets.get("default-token").await), 403);
    assert_eq!(status_code(secrets.list(&ListParams::default()).await), 403);
    let all_secrets: Api<Secret> = Api::all(identity.client.clone());
    assert_eq!(
        status_code(all_secrets.list(&ListParams::default()).await),
        403
    );
    let accounts_as_scan: Api<ServiceAccount> = Api::namespaced(identity.client.clone(), "apps");
    assert_eq!(
        status_code(accounts_as_scan.list(&ListParams::default()).await),
        403
    );
    let roles_as_scan: Api<Role> = Api::namespaced(identity.client.clone(), "apps");
    assert_eq!(
        status_code(roles_as_scan.list(&ListParams::default()).await),
        403
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scan_identity_reaches_its_pod_and_nothing_else() {
    let (sim, admin) = sim().await;
    let target = pod(&admin, "web-misconfigured").await;
    let issued_at = jiff::Timestamp::now().as_second();
    let identity = ScanIdentity::provision(
        &admin,
        &target,
        "01JDQ2Z8Y6W5M3N4P7R9S0T1V2",
        Access::Exec,
        Duration::from_secs(300),
    )
    .await
    .unwrap();
    assert_shape(&admin, &identity, issued_at).await;
    assert_reaches_its_pod(&identity).await;
    assert_reaches_nothing_else(&identity).await;

    // Release removes the account; the Role and RoleBinding follow it.
    let name = identity.service_account.clone();
    let scan_client = identity.client.clone();
    identity.release(&admin).await.unwrap();
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.client.clone(), "apps");
    let roles = Api::<Role>::namespaced(admin.client.clone(), "apps");
    let bindings = Api::<RoleBinding>::namespaced(admin.client.clone(), "apps");
    eventually("everything to be collected", || async {
        gone(&accounts, &name).await && gone(&roles, &name).await && gone(&bindings, &name).await
    })
    .await;
    // And the token is dead.
    let pods: Api<Pod> = Api::namespaced(scan_client, "apps");
    assert_eq!(status_code(pods.get("web-misconfigured").await), 401);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_pod_kills_the_token_and_the_sweeper_removes_crashed_leftovers() {
    let (sim, admin) = sim().await;
    let pods_admin: Api<Pod> = Api::namespaced(admin.client.clone(), "apps");
    let mut spec = pod(&admin, "web-misconfigured").await;
    spec.metadata = kube::api::ObjectMeta {
        name: Some("short-lived".into()),
        namespace: Some("apps".into()),
        ..Default::default()
    };
    spec.status = None;
    if let Some(s) = spec.spec.as_mut() {
        s.node_name = None;
    }
    pods_admin
        .create(&PostParams::default(), &spec)
        .await
        .unwrap();
    let target = pods_admin.get("short-lived").await.unwrap();
    let identity = ScanIdentity::provision(
        &admin,
        &target,
        "01A",
        Access::Exec,
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(identity.client.clone(), "apps");
    pods.get("short-lived").await.unwrap();
    pods_admin
        .delete("short-lived", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the token to die with its pod", || async {
        matches!(pods.get("short-lived").await, Err(kube::Error::Api(s)) if s.code == 401)
    })
    .await;
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.client.clone(), "apps");
    eventually("the account to follow its pod", || async {
        gone(&accounts, &identity.service_account).await
    })
    .await;

    // A worker that crashed mid-scan leaves an identity behind; the sweeper
    // removes it once it has expired, and leaves live ones alone.
    let target = pod(&admin, "web-hardened").await;
    let crashed = ScanIdentity::provision(
        &admin,
        &target,
        "01B",
        Access::ExecAndEphemeral,
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    std::mem::forget(crashed); // no release: the process "died"
    let live = ScanIdentity::provision(
        &admin,
        &target,
        "01C",
        Access::Exec,
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    assert_eq!(
        sweep_expired(&admin, jiff::Timestamp::now()).await.unwrap(),
        0
    );
    let later = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(1900))
        .unwrap();
    assert_eq!(sweep_expired(&admin, later).await.unwrap(), 2);
    let roles = Api::<Role>::namespaced(admin.client.clone(), "apps");
    eventually("no scanfleet objects left", || async {
        let selector = ListParams::default().labels("app.kubernetes.io/managed-by=scanfleet");
        accounts.list(&selector).await.unwrap().items.is_empty()
            && roles.list(&selector).await.unwrap().items.is_empty()
    })
    .await;
    drop(live);
    sim.shutdown().await;
}
