//! The two questions the edge asks the cluster, and how it asks them: a
//! TokenReview ("who holds this token, for this audience?") and a
//! SubjectAccessReview ("may this user do this to scanfleet.dev resources
//! in this namespace?"), as kube-rbac-proxy does.
//!
//! [`Reviewer`] is the seam: [`KubeReviews`] asks a real API server (or
//! kubesim) with the service's own identity, which needs `create` on
//! `tokenreviews` and `subjectaccessreviews` (the `system:auth-delegator`
//! ClusterRole); unit tests answer from memory.

use futures::future::BoxFuture;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};
use zeroize::Zeroize;

use crate::caller::{Caller, Proof};

/// The API group of scanfleet's virtual resources: cluster admins grant
/// scanning rights with ordinary Roles on it.
pub const GROUP: &str = "scanfleet.dev";

/// What a caller wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verb {
    /// Submit scans.
    Create,
    /// Read one result (or report, or scan status).
    Get,
    /// List results.
    List,
    /// Stream results as they arrive.
    Watch,
}

impl Verb {
    /// The RBAC verb.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Create => "create",
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
        }
    }
}

/// Which scanfleet.dev resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    /// Scan requests (and their status).
    Scans,
    /// Verified results and their reports.
    Results,
}

impl Resource {
    /// The RBAC resource name.
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Scans => "scans",
            Resource::Results => "results",
        }
    }
}

/// One authorization question: `verb` on `resource` in `namespace` (the
/// empty namespace asks about every namespace at once).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Access {
    /// The verb.
    pub verb: Verb,
    /// The resource.
    pub resource: Resource,
    /// The namespace, empty for cluster scope.
    pub namespace: String,
}

impl Access {
    /// `verb` on `resource` in `namespace`.
    pub fn new(verb: Verb, resource: Resource, namespace: impl Into<String>) -> Self {
        Self {
            verb,
            resource,
            namespace: namespace.into(),
        }
    }
}

/// What a TokenReview said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenVerdict {
    /// The token is valid for the audience; this is who holds it.
    Authenticated(Caller),
    /// Not valid, and why (the API server's words).
    Refused(String),
}

/// The cluster could not be asked (down, or the service may not ask).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ReviewError(pub String);

/// Asks the cluster about tokens and permissions.
pub trait Reviewer: Send + Sync + 'static {
    /// TokenReview of `token` for `audience`.
    fn review_token<'a>(
        &'a self,
        token: &'a str,
        audience: &'a str,
    ) -> BoxFuture<'a, Result<TokenVerdict, ReviewError>>;

    /// SubjectAccessReview of `access` for `caller`.
    fn review_access<'a>(
        &'a self,
        caller: &'a Caller,
        access: &'a Access,
    ) -> BoxFuture<'a, Result<bool, ReviewError>>;
}

/// [`Reviewer`] over the Kubernetes API.
#[derive(Clone)]
pub struct KubeReviews {
    client: kube::Client,
}

impl KubeReviews {
    /// Reviews with `client`, the service's own identity.
    pub fn new(client: kube::Client) -> Self {
        Self { client }
    }
}

fn unavailable(what: &str, e: kube::Error) -> ReviewError {
    ReviewError(match e {
        kube::Error::Api(s) if s.code == 403 => format!(
            "{what}: this service may not ask ({}); bind its identity to the \
             system:auth-delegator ClusterRole",
            s.message
        ),
        other => format!("{what}: {other}"),
    })
}

impl Reviewer for KubeReviews {
    fn review_token<'a>(
        &'a self,
        token: &'a str,
        audience: &'a str,
    ) -> BoxFuture<'a, Result<TokenVerdict, ReviewError>> {
        Box::pin(async move {
            let mut review = TokenReview {
                spec: TokenReviewSpec {
                    token: token.to_owned(),
                    audiences: Some(vec![audience.to_owned()]),
                },
                ..Default::default()
            };
            let answer = Api::<TokenReview>::all(self.client.clone())
                .create(&PostParams::default(), &review)
                .await;
            review.spec.token.zeroize();
            let status = answer
                .map_err(|e| unavailable("TokenReview", e))?
                .status
                .unwrap_or_default();
            let audience_held = status
                .audiences
                .as_ref()
                .is_some_and(|a| a.iter().any(|a| a == audience));
            let user = status.user.unwrap_or_default();
            Ok(match (status.authenticated, audience_held, user.username) {
                (Some(true), true, Some(name)) if !name.is_empty() => {
                    TokenVerdict::Authenticated(Caller {
                        name,
                        uid: user.uid.unwrap_or_default(),
                        groups: user.groups.unwrap_or_default(),
                        extra: user.extra.unwrap_or_default(),
                        proof: Proof::BearerToken,
                    })
                }
                (Some(true), false, _) => TokenVerdict::Refused(format!(
                    "the token is not meant for audience {audience:?}"
                )),
                _ => TokenVerdict::Refused(
                    status
                        .error
                        .unwrap_or_else(|| "the cluster did not accept the token".into()),
                ),
            })
        })
    }

    fn review_access<'a>(
        &'a self,
        caller: &'a Caller,
        access: &'a Access,
    ) -> BoxFuture<'a, Result<bool, ReviewError>> {
        Box::pin(async move {
            let review = SubjectAccessReview {
                spec: SubjectAccessReviewSpec {
                    user: Some(caller.name.clone()),
                    uid: (!caller.uid.is_empty()).then(|| caller.uid.clone()),
                    groups: (!caller.groups.is_empty()).then(|| caller.groups.clone()),
                    extra: (!caller.extra.is_empty()).then(|| caller.extra.clone()),
                    resource_attributes: Some(ResourceAttributes {
                        namespace: (!access.namespace.is_empty()).then(|| access.namespace.clone()),
                        verb: Some(access.verb.as_str().into()),
                        group: Some(GROUP.into()),
                        resource: Some(access.resource.as_str().into()),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ..Default::default()
            };
            let status = Api::<SubjectAccessReview>::all(self.client.clone())
                .create(&PostParams::default(), &review)
                .await
                .map_err(|e| unavailable("SubjectAccessReview", e))?
                .status
                .unwrap_or_default();
            Ok(status.allowed && status.denied != Some(true))
        })
    }
}
