//! Real identities for tests of the services' edges, from kubesim over the
//! wire: ServiceAccounts, Roles on `scanfleet.dev` granting what a test
//! needs, tokens for the `scanfleet` audience (TokenRequest, as kubelet
//! mints them), and the reviewer identity a service asks TokenReview and
//! SubjectAccessReview with (`system:auth-delegator` only).
//!
//! A test with no pods to scan starts [`access_cluster`]: kubesim with
//! namespaces and the virtual resources, no images, no containers.

use std::path::{Path, PathBuf};

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use kube::discovery::ApiResource;
use serde_json::json;

/// The audience scanfleet's edges accept by default.
pub const AUDIENCE: &str = "scanfleet";

const ACCESS_FIXTURE: &str = "
namespaces:
  - {name: apps}
  - {name: shop}
  - {name: scanfleet-system}
virtualResources:
  - {group: scanfleet.dev, resource: scans, kind: Scan, verbs: [create, get]}
  - {group: scanfleet.dev, resource: results, kind: Result, verbs: [get, list, watch]}
";

/// kubesim with namespaces `apps`, `shop`, `scanfleet-system` (and the
/// built-in ones) and no pods: enough for authentication and
/// authorization tests.
///
/// # Panics
/// When kubesim cannot start (tests run as root).
pub async fn access_cluster() -> kubesim::Kubesim {
    let fixture = kubesim::fixture::Fixture::parse("access", ACCESS_FIXTURE).unwrap();
    kubesim::Kubesim::start(kubesim::Config::with_fixture(fixture))
        .await
        .expect("kubesim starts (tests run as root)")
}

/// A kube client from kubeconfig text.
///
/// # Panics
/// On a kubeconfig kubesim did not write.
pub async fn client(kubeconfig: &str) -> kube::Client {
    let kc = kube::config::Kubeconfig::from_yaml(kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

/// Makes identities on a kubesim as its admin.
pub struct Callers<'a> {
    sim: &'a kubesim::Kubesim,
    admin: kube::Client,
}

fn rbac(kind: &str) -> ApiResource {
    let plural = format!("{}s", kind.to_lowercase());
    ApiResource {
        group: "rbac.authorization.k8s.io".into(),
        version: "v1".into(),
        api_version: "rbac.authorization.k8s.io/v1".into(),
        kind: kind.into(),
        plural,
    }
}

impl<'a> Callers<'a> {
    /// Works on `sim` as its cluster admin.
    pub async fn new(sim: &'a kubesim::Kubesim) -> Self {
        Self {
            sim,
            admin: client(&sim.admin_kubeconfig()).await,
        }
    }

    async fn create(&self, resource: &ApiResource, ns: Option<&str>, object: serde_json::Value) {
        let object: DynamicObject = serde_json::from_value(object).unwrap();
        let api: Api<DynamicObject> = match ns {
            Some(ns) => Api::namespaced_with(self.admin.clone(), ns, resource),
            None => Api::all_with(self.admin.clone(), resource),
        };
        api.create(&PostParams::default(), &object)
            .await
            .unwrap_or_else(|e| panic!("creating {} failed: {e}", resource.kind));
    }

    /// Creates namespace `name` unless it exists.
    pub async fn namespace(&self, name: &str) {
        let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.admin.clone());
        let namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        match api.create(&PostParams::default(), &namespace).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => panic!("creating namespace {name}: {e}"),
        }
    }

    /// Creates ServiceAccount `ns/name`.
    pub async fn service_account(&self, ns: &str, name: &str) {
        let api: Api<ServiceAccount> = Api::namespaced(self.admin.clone(), ns);
        let sa: ServiceAccount =
            serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        api.create(&PostParams::default(), &sa).await.unwrap();
    }

    /// Deletes ServiceAccount `ns/name` (its tokens stop working).
    pub async fn delete_service_account(&self, ns: &str, name: &str) {
        let api: Api<ServiceAccount> = Api::namespaced(self.admin.clone(), ns);
        api.delete(name, &DeleteParams::default()).await.unwrap();
    }

    /// A Role `name` in `ns` granting `verbs` on `resource` of
    /// scanfleet.dev, bound (RoleBinding `name`) to ServiceAccount
    /// `sa_ns/sa`.
    pub async fn grant(
        &self,
        ns: &str,
        name: &str,
        verbs: &[&str],
        resource: &str,
        sa: (&str, &str),
    ) {
        self.create(
            &rbac("Role"),
            Some(ns),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                   "metadata": {"name": name},
                   "rules": [{"apiGroups": ["scanfleet.dev"], "resources": [resource], "verbs": verbs}]}),
        )
        .await;
        self.create(
            &rbac("RoleBinding"),
            Some(ns),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": {"name": name},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                   "subjects": [{"kind": "ServiceAccount", "name": sa.1, "namespace": sa.0}]}),
        )
        .await;
    }

    /// The same, cluster-wide (ClusterRole and ClusterRoleBinding `name`),
    /// to any subject (`{"kind": "User", "name": …}` and so on).
    pub async fn grant_cluster(
        &self,
        name: &str,
        rules: serde_json::Value,
        subject: serde_json::Value,
    ) {
        self.create(
            &rbac("ClusterRole"),
            None,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                   "metadata": {"name": name}, "rules": rules}),
        )
        .await;
        self.create(
            &rbac("ClusterRoleBinding"),
            None,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                   "metadata": {"name": name},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
                   "subjects": [subject]}),
        )
        .await;
    }

    /// Deletes RoleBinding `ns/name` (the grant is revoked).
    pub async fn revoke(&self, ns: &str, name: &str) {
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.admin.clone(), ns, &rbac("RoleBinding"));
        api.delete(name, &DeleteParams::default()).await.unwrap();
    }

    /// A token of ServiceAccount `ns/sa` for `audience`, valid `seconds`.
    pub async fn token(&self, ns: &str, sa: &str, audience: &str, seconds: i64) -> String {
        let api: Api<ServiceAccount> = Api::namespaced(self.admin.clone(), ns);
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                audiences: Some(vec![audience.into()]),
                expiration_seconds: Some(seconds),
                ..Default::default()
            }),
            ..Default::default()
        };
        api.create_token_request(sa, &PostParams::default(), &request)
            .await
            .unwrap()
            .status
            .and_then(|s| s.token)
            .expect("a token")
    }

    /// A ServiceAccount `ns/name` allowed `verbs` on `resource` in each of
    /// `namespaces`, and its `scanfleet` token (one hour).
    pub async fn caller(
        &self,
        ns: &str,
        name: &str,
        verbs: &[&str],
        resource: &str,
        namespaces: &[&str],
    ) -> String {
        self.service_account(ns, name).await;
        for target in namespaces {
            self.grant(
                target,
                &format!("{name}-{resource}"),
                verbs,
                resource,
                (ns, name),
            )
            .await;
        }
        self.token(ns, name, AUDIENCE, 3600).await
    }

    /// The kubeconfig a service asks its reviews with: ServiceAccount
    /// `scanfleet-system/<service>` bound to `system:auth-delegator` and
    /// nothing else, written 0600 into `dir`.
    pub async fn reviewer_kubeconfig(&self, dir: &Path, service: &str) -> PathBuf {
        self.namespace("scanfleet-system").await;
        self.service_account("scanfleet-system", service).await;
        self.create(
            &rbac("ClusterRoleBinding"),
            None,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                   "metadata": {"name": format!("{service}-auth-delegator")},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:auth-delegator"},
                   "subjects": [{"kind": "ServiceAccount", "name": service, "namespace": "scanfleet-system"}]}),
        )
        .await;
        let api_audience = kubesim::authn::api_audiences().remove(0);
        let token = self
            .token("scanfleet-system", service, &api_audience, 86_400)
            .await;
        let text = self
            .sim
            .kubeconfig_for_token(service, &token, "scanfleet-system");
        let path = dir.join(format!("{service}.kubeconfig"));
        crate::write_private(&path, text.as_bytes());
        path
    }
}
