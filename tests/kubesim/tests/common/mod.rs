//! Shared helpers for kubesim's client tests: start a server, build kube-rs
//! clients from kubeconfigs, mint ServiceAccount tokens, poll with deadlines.

#![allow(dead_code)]

use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use kubesim::Kubesim;

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
