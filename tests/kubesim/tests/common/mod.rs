//! Shared helpers for kubesim's client tests: start a server, build kube-rs
//! clients from kubeconfigs, mint ServiceAccount tokens, poll with deadlines.

#![allow(dead_code)]

pub mod kubectl;

use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::api::{Api, AttachParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use kubesim::Kubesim;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Starts kubesim with the demo fixture and waits for its pods.
pub async fn demo() -> Kubesim {
    start(kubesim::Config::demo().expect("demo fixture parses")).await
}

/// Starts kubesim with `config` and waits for its pods.
pub async fn start(config: kubesim::Config) -> Kubesim {
    Kubesim::start_settled(config, Duration::from_secs(30))
        .await
        .expect("kubesim starts with every pod running (tests must run as root)")
}

/// A kube-rs client from kubeconfig text.
pub async fn client_from(kubeconfig: &str) -> Client {
    let kc = Kubeconfig::from_yaml(kubeconfig).expect("kubeconfig parses");
    let cfg = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig is usable");
    Client::try_from(cfg).expect("client builds")
}

/// A kube-rs client without its default retry layer (fault tests observe
/// each injected fault instead of kube-rs's retries of 429/5xx).
pub async fn client_without_retries(kubeconfig: &str) -> Client {
    let kc = Kubeconfig::from_yaml(kubeconfig).expect("kubeconfig parses");
    let mut cfg = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig is usable");
    cfg.default_retry = false;
    Client::try_from(cfg).expect("client builds")
}

/// The cluster-admin client.
pub async fn admin(sim: &Kubesim) -> Client {
    client_from(&sim.admin_kubeconfig()).await
}

/// A client authenticating with `token`.
pub async fn with_token(sim: &Kubesim, token: &str) -> Client {
    client_from(&sim.kubeconfig_for_token("sa", token, "")).await
}

/// Mints a token for `ns/sa`, optionally bound to a pod.
pub async fn token(
    admin: &Client,
    ns: &str,
    sa: &str,
    seconds: i64,
    pod: Option<(&str, &str)>,
) -> Result<String, kube::Error> {
    let api: Api<ServiceAccount> = Api::namespaced(admin.clone(), ns);
    let tr = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(seconds),
            bound_object_ref: pod.map(|(name, uid)| {
                k8s_openapi::api::authentication::v1::BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: Some(name.into()),
                    uid: Some(uid.into()),
                }
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let out = api
        .create_token_request(sa, &PostParams::default(), &tr)
        .await?;
    Ok(out.status.and_then(|s| s.token).expect("token in status"))
}

/// Creates objects from JSON with the admin client (any kind kubesim serves).
pub async fn apply<K>(client: &Client, ns: Option<&str>, obj: serde_json::Value) -> K
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
    K::Scope: ScopeApi<K>,
{
    let obj: K = serde_json::from_value(obj).expect("valid object");
    K::Scope::api(client.clone(), ns)
        .create(&PostParams::default(), &obj)
        .await
        .expect("create succeeds")
}

/// Picks `Api::namespaced` or `Api::all` by scope.
pub trait ScopeApi<K> {
    /// The Api for this scope.
    fn api(client: Client, ns: Option<&str>) -> Api<K>;
}

impl<K> ScopeApi<K> for k8s_openapi::NamespaceResourceScope
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
{
    fn api(client: Client, ns: Option<&str>) -> Api<K> {
        Api::namespaced(client, ns.expect("namespaced kind needs a namespace"))
    }
}

impl<K> ScopeApi<K> for k8s_openapi::ClusterResourceScope
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::ClusterResourceScope>,
{
    fn api(client: Client, _ns: Option<&str>) -> Api<K> {
        Api::all(client)
    }
}

/// The Status of an API error (panics on any other error).
pub fn api_error<T>(r: Result<T, kube::Error>) -> kube::core::Status {
    match r {
        Err(kube::Error::Api(s)) => *s,
        Err(other) => panic!("expected an API error, got {other:?}"),
        Ok(_) => panic!("expected an API error, got success"),
    }
}

/// Polls `f` until it returns Some, failing after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A Role manifest with `rules`.
pub fn role(name: &str, rules: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": name}, "rules": rules})
}

/// A RoleBinding of `kind` `role` to ServiceAccount `sa` (binding namespace).
pub fn binding(name: &str, kind: &str, role: &str, sa: &str) -> serde_json::Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": name},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
           "subjects": [{"kind": "ServiceAccount", "name": sa}]})
}

/// Creates ServiceAccount `ns/name` with `client`.
pub async fn sa(client: &kube::Client, ns: &str, name: &str) -> ServiceAccount {
    apply(
        client,
        Some(ns),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}}),
    )
    .await
}

/// Runs `cmd` in `pod`/`container` over WebSocket exec; returns stdout,
/// stderr and the final Status.
pub async fn run(
    pods: &Api<Pod>,
    pod: &str,
    container: &str,
    cmd: &[&str],
    stdin: Option<&[u8]>,
) -> (
    Vec<u8>,
    Vec<u8>,
    k8s_openapi::apimachinery::pkg::apis::meta::v1::Status,
) {
    let ap = AttachParams::default()
        .container(container)
        .stdin(stdin.is_some())
        .stderr(true);
    let mut p = pods
        .exec(pod, cmd.to_vec(), &ap)
        .await
        .expect("exec starts");
    let status = p.take_status().expect("status future");
    if let Some(input) = stdin {
        let mut w = p.stdin().expect("stdin");
        w.write_all(input).await.expect("write stdin");
        // EOF for the simplex pipe; kube-rs then sends the v5 close frame.
        w.shutdown().await.expect("close stdin");
    }
    let mut out = p.stdout().expect("stdout");
    let mut err = p.stderr().expect("stderr");
    let (mut o, mut e) = (Vec::new(), Vec::new());
    let (r1, r2) = tokio::join!(out.read_to_end(&mut o), err.read_to_end(&mut e));
    r1.expect("read stdout");
    r2.expect("read stderr");
    let st = status.await.expect("status arrives");
    p.join().await.expect("join");
    (o, e, st)
}

/// The exit code in an exec Status (0 for Success, else the ExitCode cause).
pub fn exit_code(st: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Status) -> i32 {
    if st.status.as_deref() == Some("Success") {
        return 0;
    }
    assert_eq!(st.reason.as_deref(), Some("NonZeroExitCode"), "{st:?}");
    st.details
        .as_ref()
        .and_then(|d| d.causes.as_ref())
        .and_then(|c| c.iter().find(|c| c.reason.as_deref() == Some("ExitCode")))
        .and_then(|c| c.message.as_deref())
        .and_then(|m| m.parse().ok())
        .expect("ExitCode cause")
}

/// Waits (bounded) until ephemeral container `name` of `pod` runs.
pub async fn wait_ephemeral_running(pods: &Api<Pod>, pod: &str, name: &str) {
    eventually(
        "ephemeral container running",
        Duration::from_secs(20),
        || async {
            let p = pods.get(pod).await.ok()?;
            p.status?
                .ephemeral_container_statuses?
                .into_iter()
                .find(|s| s.name == name)?
                .state?
                .running
                .map(|_| ())
        },
    )
    .await
}

/// Mints a `seconds` token for `ns/sa` valid for `audiences`.
pub async fn token_for_audiences(
    admin: &Client,
    ns: &str,
    sa: &str,
    seconds: i64,
    audiences: &[&str],
) -> String {
    let api: Api<ServiceAccount> = Api::namespaced(admin.clone(), ns);
    let tr = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(seconds),
            audiences: Some(audiences.iter().map(|a| a.to_string()).collect()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let out = api
        .create_token_request(sa, &PostParams::default(), &tr)
        .await
        .expect("token request succeeds");
    out.status.and_then(|s| s.token).expect("token in status")
}

/// A ClusterRoleBinding of ClusterRole `role` to ServiceAccount `ns/sa`.
pub fn cluster_binding(name: &str, role: &str, ns: &str, sa: &str) -> serde_json::Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
           "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}]})
}

/// A delegating service's client: ServiceAccount `scanning/reviewer` bound
/// to `system:auth-delegator` (TokenReviews and SubjectAccessReviews), with
/// a one-hour token.
pub async fn delegator(sim: &Kubesim, admin: &Client) -> Client {
    sa(admin, "scanning", "reviewer").await;
    let _: k8s_openapi::api::rbac::v1::ClusterRoleBinding = apply(
        admin,
        None,
        cluster_binding(
            "reviewer-delegates",
            "system:auth-delegator",
            "scanning",
            "reviewer",
        ),
    )
    .await;
    let t = token(admin, "scanning", "reviewer", 3600, None)
        .await
        .expect("reviewer token");
    with_token(sim, &t).await
}

/// The claims of a JWT (unverified).
pub fn jwt_claims(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("jwt payload");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url"),
    )
    .expect("json claims")
}
