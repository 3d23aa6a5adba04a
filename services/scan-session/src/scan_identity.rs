//! The identity one scan runs with, and nothing else.
//!
//! Per scan: a ServiceAccount `scanfleet-scan-<scan id>` owned by the target
//! Pod (deleting the pod removes it), a Role whose every rule names only that
//! pod in `resourceNames`, a RoleBinding, both owned by the ServiceAccount
//! (deleting it removes everything), and a TokenRequest that lives
//! max(600 s, deadline + margin) capped at 1800 s. The kubeconfig built from
//! it exists in memory only. The ServiceAccount carries an `expires-at`
//! annotation so a sweeper can remove what a crashed worker left behind.
//!
//! The token is *not* bound to the Pod with `boundObjectRef`: the API server
//! refuses to bind a ServiceAccount's token to a pod that runs under another
//! ServiceAccount ("cannot bind token … to pod running with different
//! serviceaccount name"), and the target runs under its own. The same
//! guarantee comes from ownership instead: the ServiceAccount is owned by the
//! Pod, so deleting the Pod garbage-collects the ServiceAccount, and every
//! token of a deleted ServiceAccount is rejected.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams, PropagationPolicy};
use scanfleet_kube_access::ClusterAccess;
use zeroize::Zeroizing;

/// Label on every object a scan creates.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Its value.
pub const MANAGED_BY: &str = "scanfleet";
/// Label carrying the scan id.
pub const SCAN_ID_LABEL: &str = "scanfleet.dev/scan-id";
/// Annotation with the RFC 3339 instant after which a sweeper may delete.
pub const EXPIRES_AT_ANNOTATION: &str = "scanfleet.dev/expires-at";
/// Prefix of per-scan ServiceAccount names.
pub const NAME_PREFIX: &str = "scanfleet-scan-";

/// Shortest token Kubernetes issues.
pub const MIN_TOKEN_SECONDS: i64 = 600;
/// Longest token scanfleet asks for (the seed's 15–30 minutes).
pub const MAX_TOKEN_SECONDS: i64 = 1800;

/// What the scan will need to do, which decides the Role's rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Exec into a container of the pod (exec and sidecar approaches).
    Exec,
    /// Exec plus adding an ephemeral container (debug approach).
    ExecAndEphemeral,
}

/// Why a scan identity could not be created or removed.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// A Kubernetes call failed.
    #[error("{step}: {source}")]
    Api {
        /// Which step.
        step: &'static str,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// The scan id cannot be part of an object name.
    #[error("scan id {0:?} cannot name a ServiceAccount")]
    BadScanId(String),
    /// The token was issued without a token.
    #[error("TokenRequest returned no token")]
    NoToken,
    /// The per-scan client could not be built.
    #[error("per-scan client: {0}")]
    Client(String),
}

/// A live per-scan identity. Dropping it does not delete anything: call
/// [`ScanIdentity::release`] on every exit path (the sweeper covers crashes).
pub struct ScanIdentity {
    /// Namespace of the target pod and of every object created.
    pub namespace: String,
    /// The ServiceAccount's name.
    pub service_account: String,
    /// A client that authenticates as the ServiceAccount.
    pub client: kube::Client,
    /// When the token expires (Unix seconds).
    pub token_expires_at: i64,
    /// The ServiceAccount's uid (owner of everything else created).
    pub account_uid: String,
    /// The scan id label value.
    pub scan_id: String,
    token: Zeroizing<String>,
}

impl std::fmt::Debug for ScanIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScanIdentity")
            .field("namespace", &self.namespace)
            .field("service_account", &self.service_account)
            .field("token_expires_at", &self.token_expires_at)
            .finish_non_exhaustive()
    }
}

fn rand_u16() -> u16 {
    use rand_core::RngCore;
    (rand_core::OsRng.next_u32() & 0xffff) as u16
}

/// The token lifetime for a scan whose deadline is `deadline` from now.
pub fn token_seconds(deadline: Duration, margin: Duration) -> i64 {
    let wanted = (deadline + margin).as_secs() as i64;
    wanted.clamp(MIN_TOKEN_SECONDS, MAX_TOKEN_SECONDS)
}

fn api_error(step: &'static str) -> impl FnOnce(kube::Error) -> IdentityError {
    move |source| IdentityError::Api { step, source }
}

fn rules(pod: &str, access: Access) -> Vec<PolicyRule> {
    let rule = |resource: &str, verbs: &[&str]| PolicyRule {
        api_groups: Some(vec![String::new()]),
        resources: Some(vec![resource.into()]),
        resource_names: Some(vec![pod.into()]),
        verbs: verbs.iter().map(|v| (*v).into()).collect(),
        ..Default::default()
    };
    let mut rules = vec![
        rule("pods", &["get"]),
        rule("pods/exec", &["get", "create"]),
    ];
    if access == Access::ExecAndEphemeral {
        // PATCH only: a strategic-merge patch needs no prior read.
        rules.push(rule("pods/ephemeralcontainers", &["patch"]));
        // The bounded wait for the debug container: a watch narrowed to the
        // pod by a metadata.name field selector, which resourceNames covers.
        rules.push(rule("pods", &["watch"]));
    }
    rules
}

/// The per-attempt names and labels of one scan identity.
struct Plan {
    /// The lowercased scan id (the `scan-id` label).
    suffix: String,
    /// `scanfleet-scan-<scan id>-<4 hex>`, used for all three objects.
    name: String,
    namespace: String,
    pod_name: String,
    pod_uid: String,
    /// Token lifetime.
    seconds: i64,
    expires_at: jiff::Timestamp,
    labels: BTreeMap<String, String>,
}

impl Plan {
    fn new(pod: &Pod, scan_id: &str, deadline: Duration) -> Result<Self, IdentityError> {
        let suffix = scan_id.to_ascii_lowercase();
        if suffix.is_empty()
            || suffix.len() > 63 - NAME_PREFIX.len() - 5
            || !suffix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(IdentityError::BadScanId(scan_id.chars().take(80).collect()));
        }
        let seconds = token_seconds(deadline, Duration::from_secs(120));
        let now = jiff::Timestamp::now();
        Ok(Self {
            // A per-attempt tag: a redelivered intent (same scan id) after a
            // worker crash must not collide with the crashed attempt's
            // ServiceAccount, which the sweeper removes on its own schedule.
            name: format!("{NAME_PREFIX}{suffix}-{:04x}", rand_u16()),
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            pod_name: pod.metadata.name.clone().unwrap_or_default(),
            pod_uid: pod.metadata.uid.clone().unwrap_or_default(),
            seconds,
            expires_at: now
                .checked_add(jiff::SignedDuration::from_secs(seconds))
                .unwrap_or(now),
            labels: BTreeMap::from([
                (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
                (SCAN_ID_LABEL.to_owned(), suffix.clone()),
            ]),
            suffix,
        })
    }

    /// The ServiceAccount, owned by the target pod (so it dies with it) and
    /// annotated with when the sweeper may remove it.
    fn account(&self) -> ServiceAccount {
        ServiceAccount {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(self.labels.clone()),
                annotations: Some(BTreeMap::from([(
                    EXPIRES_AT_ANNOTATION.to_owned(),
                    self.expires_at.to_string(),
                )])),
                owner_references: Some(vec![OwnerReference {
                    api_version: "v1".into(),
                    kind: "Pod".into(),
                    name: self.pod_name.clone(),
                    uid: self.pod_uid.clone(),
                    ..Default::default()
                }]),
                ..Default::default()
            },
            automount_service_account_token: Some(false),
            ..Default::default()
        }
    }

    /// Metadata of the Role and RoleBinding: owned by the ServiceAccount,
    /// so deleting it removes them.
    fn owned_meta(&self, account: &ServiceAccount) -> ObjectMeta {
        ObjectMeta {
            name: Some(self.name.clone()),
            namespace: Some(self.namespace.clone()),
            labels: Some(self.labels.clone()),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".into(),
                kind: "ServiceAccount".into(),
                name: self.name.clone(),
                uid: account.metadata.uid.clone().unwrap_or_default(),
                ..Default::default()
            }]),
            ..Default::default()
        }
    }

    fn binding(&self, meta: ObjectMeta) -> RoleBinding {
        RoleBinding {
            metadata: meta,
            role_ref: RoleRef {
                api_group: Some("rbac.authorization.k8s.io".into()),
                kind: "Role".into(),
                name: self.name.clone(),
            },
            subjects: Some(vec![Subject {
                kind: "ServiceAccount".into(),
                name: self.name.clone(),
                namespace: Some(self.namespace.clone()),
                ..Default::default()
            }]),
        }
    }
}

/// A token for the identity and a client that uses it.
type Credentials = (kube::Client, Zeroizing<String>, i64);

impl ScanIdentity {
    /// Creates the identity for scanning `pod` (which must exist).
    ///
    /// # Errors
    /// [`IdentityError`]; objects created before the failure are removed.
    pub async fn provision(
        admin: &ClusterAccess,
        pod: &Pod,
        scan_id: &str,
        access: Access,
        deadline: Duration,
    ) -> Result<Self, IdentityError> {
        let plan = Plan::new(pod, scan_id, deadline)?;
        let accounts: Api<ServiceAccount> = Api::namespaced(admin.client.clone(), &plan.namespace);
        let account = accounts
            .create(&PostParams::default(), &plan.account())
            .await
            .map_err(api_error("create ServiceAccount"))?;
        match Self::grant_and_issue(admin, &plan, &account, access).await {
            Ok((client, token, token_expires_at)) => Ok(Self {
                namespace: plan.namespace,
                service_account: plan.name,
                client,
                token_expires_at,
                account_uid: account.metadata.uid.clone().unwrap_or_default(),
                scan_id: plan.suffix,
                token,
            }),
            Err(e) => {
                let _ = delete_account(&admin.client, &plan.namespace, &plan.name).await;
                Err(e)
            }
        }
    }

    /// The Role and RoleBinding, then a token and a client for it.
    async fn grant_and_issue(
        admin: &ClusterAccess,
        plan: &Plan,
        account: &ServiceAccount,
        access: Access,
    ) -> Result<Credentials, IdentityError> {
        let meta = plan.owned_meta(account);
        Api::<Role>::namespaced(admin.client.clone(), &plan.namespace)
            .create(
                &PostParams::default(),
                &Role {
                    metadata: meta.clone(),
                    rules: Some(rules(&plan.pod_name, access)),
                },
            )
            .await
            .map_err(api_error("create Role"))?;
        Api::<RoleBinding>::namespaced(admin.client.clone(), &plan.namespace)
            .create(&PostParams::default(), &plan.binding(meta))
            .await
            .map_err(api_error("create RoleBinding"))?;
        let issued = Api::<ServiceAccount>::namespaced(admin.client.clone(), &plan.namespace)
            .create_token_request(
                &plan.name,
                &PostParams::default(),
                &TokenRequest {
                    spec: Some(TokenRequestSpec {
                        expiration_seconds: Some(plan.seconds),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )
            .await
            .map_err(api_error("TokenRequest"))?;
        let status = issued.status.ok_or(IdentityError::NoToken)?;
        let token = Zeroizing::new(status.token.unwrap_or_default());
        if token.is_empty() {
            return Err(IdentityError::NoToken);
        }
        let client = admin
            .client_for_token(&plan.name, &token, &plan.namespace)
            .await
            .map_err(|e| IdentityError::Client(e.to_string()))?;
        let token_expires_at = status
            .expiration_timestamp
            .map(|t| t.0.as_second())
            .unwrap_or_default();
        Ok((client, token, token_expires_at))
    }

    /// Widens the identity for the debug approach when `auto` found a
    /// distroless target: a second Role and RoleBinding, owned by the same
    /// ServiceAccount (so released with it), granting only the ephemeral
    /// container subresource and a watch on the one pod.
    ///
    /// # Errors
    /// [`IdentityError`] when either create fails.
    pub async fn grant_ephemeral(
        &self,
        admin: &ClusterAccess,
        pod: &str,
        account_uid: &str,
    ) -> Result<(), IdentityError> {
        let name = format!("{}-debug", self.service_account);
        let meta = ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(self.namespace.clone()),
            labels: Some(BTreeMap::from([
                (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
                (SCAN_ID_LABEL.to_owned(), self.scan_id.clone()),
            ])),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".into(),
                kind: "ServiceAccount".into(),
                name: self.service_account.clone(),
                uid: account_uid.to_owned(),
                ..Default::default()
            }]),
            ..Default::default()
        };
        let all = rules(pod, Access::ExecAndEphemeral);
        let extra: Vec<PolicyRule> = all
            .into_iter()
            .filter(|r| !rules(pod, Access::Exec).contains(r))
            .collect();
        Api::<Role>::namespaced(admin.client.clone(), &self.namespace)
            .create(
                &PostParams::default(),
                &Role {
                    metadata: meta.clone(),
                    rules: Some(extra),
                },
            )
            .await
            .map_err(api_error("create debug Role"))?;
        Api::<RoleBinding>::namespaced(admin.client.clone(), &self.namespace)
            .create(
                &PostParams::default(),
                &RoleBinding {
                    metadata: meta,
                    role_ref: RoleRef {
                        api_group: Some("rbac.authorization.k8s.io".into()),
                        kind: "Role".into(),
                        name: name.clone(),
                    },
                    subjects: Some(vec![Subject {
                        kind: "ServiceAccount".into(),
                        name: self.service_account.clone(),
                        namespace: Some(self.namespace.clone()),
                        ..Default::default()
                    }]),
                },
            )
            .await
            .map_err(api_error("create debug RoleBinding"))?;
        Ok(())
    }

    /// The bearer token (for an exec client that needs it raw). Never log it.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Deletes the ServiceAccount; the Role and RoleBinding follow by owner
    /// garbage collection, and the token dies with its account.
    ///
    /// # Errors
    /// [`IdentityError`] when the delete fails (the sweeper retries later).
    pub async fn release(self, admin: &ClusterAccess) -> Result<(), IdentityError> {
        delete_account(&admin.client, &self.namespace, &self.service_account).await
    }
}

pub(crate) async fn delete_account(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<(), IdentityError> {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    match accounts
        .delete(
            name,
            &DeleteParams {
                propagation_policy: Some(PropagationPolicy::Background),
                ..Default::default()
            },
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(e) => Err(IdentityError::Api {
            step: "delete ServiceAccount",
            source: e,
        }),
    }
}

/// Deletes every identity of one scan in `namespace`, for a caller that
/// abandoned the scan (a CLI interrupted with Ctrl-C) and cannot wait for
/// the sweeper. Returns how many were removed.
///
/// # Errors
/// [`IdentityError`] when listing or a delete fails.
pub async fn release_scan(
    admin: &ClusterAccess,
    namespace: &str,
    scan_id: &str,
) -> Result<usize, IdentityError> {
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.client.clone(), namespace);
    let selector = format!(
        "{MANAGED_BY_LABEL}={MANAGED_BY},{SCAN_ID_LABEL}={}",
        scan_id.to_ascii_lowercase()
    );
    let list = accounts
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(api_error("list the scan's ServiceAccounts"))?;
    let mut removed = 0;
    for name in list.items.iter().filter_map(|a| a.metadata.name.as_deref()) {
        delete_account(&admin.client, namespace, name).await?;
        removed += 1;
    }
    Ok(removed)
}

/// Deletes every scanfleet ServiceAccount whose `expires-at` has passed
/// (workers that crashed mid-scan), returning how many were removed.
///
/// # Errors
/// [`IdentityError`] when listing fails.
pub async fn sweep_expired(
    admin: &ClusterAccess,
    now: jiff::Timestamp,
) -> Result<usize, IdentityError> {
    let all: Api<ServiceAccount> = Api::all(admin.client.clone());
    let list = all
        .list(&ListParams::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}")))
        .await
        .map_err(api_error("list scanfleet ServiceAccounts"))?;
    let mut removed = 0;
    for account in list {
        let expired = account
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(EXPIRES_AT_ANNOTATION))
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            // An unreadable annotation is treated as expired: better to
            // remove a credential early than to keep one forever.
            .is_none_or(|at| at <= now);
        let (Some(ns), Some(name)) = (&account.metadata.namespace, &account.metadata.name) else {
            continue;
        };
        if expired {
            delete_account(&admin.client, ns, name).await?;
            tracing::info!(namespace = %ns, service_account = %name, "swept an expired scan identity");
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_lifetime_is_at_least_600_and_at_most_1800_seconds() {
        let margin = Duration::from_secs(120);
        assert_eq!(token_seconds(Duration::from_secs(10), margin), 600);
        assert_eq!(token_seconds(Duration::from_secs(900), margin), 1020);
        assert_eq!(token_seconds(Duration::from_secs(7200), margin), 1800);
    }

    #[test]
    fn every_rule_names_only_the_target_pod() {
        for access in [Access::Exec, Access::ExecAndEphemeral] {
            for rule in rules("web-0", access) {
                assert_eq!(rule.resource_names, Some(vec!["web-0".to_owned()]));
            }
        }
        assert_eq!(rules("p", Access::Exec).len(), 2);
        assert_eq!(rules("p", Access::ExecAndEphemeral).len(), 4);
    }
}
