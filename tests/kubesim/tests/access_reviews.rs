//! SubjectAccessReview, LocalSubjectAccessReview and SelfSubjectAccessReview
//! through kube-rs's typed reviews, answered by kubesim's RBAC, including the
//! virtual `scanfleet.dev` resources that ordinary Roles grant; who may ask
//! (`system:auth-delegator`, upstream's 403 otherwise); and the audit log.
//! Requires root (kubesim runs containers in namespaces).

mod common;

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    LocalSubjectAccessReview, NonResourceAttributes, ResourceAttributes, SelfSubjectAccessReview,
    SelfSubjectAccessReviewSpec, SubjectAccessReview, SubjectAccessReviewSpec,
    SubjectAccessReviewStatus,
};
use k8s_openapi::api::rbac::v1::{ClusterRole, Role, RoleBinding};
use kube::api::{Api, PostParams};
use serde_json::json;

use common::*;

const SUBMITTER: &str = "system:serviceaccount:apps:submitter";

fn sa_groups(ns: &str) -> Vec<String> {
    vec![
        "system:serviceaccounts".into(),
        format!("system:serviceaccounts:{ns}"),
        "system:authenticated".into(),
    ]
}

fn scanfleet(verb: &str, resource: &str, ns: &str) -> ResourceAttributes {
    ResourceAttributes {
        namespace: Some(ns.into()),
        verb: Some(verb.into()),
        group: Some("scanfleet.dev".into()),
        resource: Some(resource.into()),
        ..Default::default()
    }
}

async fn sar(
    api: &Api<SubjectAccessReview>,
    user: Option<&str>,
    groups: Vec<String>,
    resource: Option<ResourceAttributes>,
    non_resource: Option<NonResourceAttributes>,
) -> Result<SubjectAccessReviewStatus, kube::Error> {
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: user.map(str::to_string),
            groups: (!groups.is_empty()).then_some(groups),
            resource_attributes: resource,
            non_resource_attributes: non_resource,
            ..Default::default()
        },
        ..Default::default()
    };
    Ok(api
        .create(&PostParams::default(), &review)
        .await?
        .status
        .expect("status"))
}

/// `apps/submitter` may create scans in `apps` (Role) and read results
/// there (RoleBinding of a ClusterRole); `broken` binds a missing Role.
async fn grant_scanfleet_rights(admin: &kube::Client) {
    sa(admin, "apps", "submitter").await;
    let _: Role = apply(
        admin,
        Some("apps"),
        role(
            "scan-submitter",
            json!([{"apiGroups": ["scanfleet.dev"], "resources": ["scans"], "verbs": ["create"]}]),
        ),
    )
    .await;
    let _: RoleBinding = apply(
        admin,
        Some("apps"),
        binding("submit-scans", "Role", "scan-submitter", "submitter"),
    )
    .await;
    let _: ClusterRole = apply(
        admin,
        None,
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": {"name": "scanfleet-reader"},
               "rules": [{"apiGroups": ["scanfleet.dev"], "resources": ["results"], "verbs": ["get", "list", "watch"]}]}),
    )
    .await;
    let _: RoleBinding = apply(
        admin,
        Some("apps"),
        binding(
            "read-results",
            "ClusterRole",
            "scanfleet-reader",
            "submitter",
        ),
    )
    .await;
}

#[tokio::test]
async fn subject_access_review_answers_with_rbac_for_scanfleet_resources() {
    let sim = demo().await;
    let admin = admin(&sim).await;
    grant_scanfleet_rights(&admin).await;
    let reviews: Api<SubjectAccessReview> = Api::all(delegator(&sim, &admin).await);

    let st = sar(
        &reviews,
        Some(SUBMITTER),
        sa_groups("apps"),
        Some(scanfleet("create", "scans", "apps")),
        None,
    )
    .await
    .expect("review");
    assert!(st.allowed, "{st:?}");
    assert_ne!(st.denied, Some(true));
    assert_eq!(
        st.reason.as_deref(),
        Some(
            "RBAC: allowed by RoleBinding \"submit-scans/apps\" of Role \"scan-submitter\" to ServiceAccount \"submitter/apps\""
        )
    );
    let st = sar(
        &reviews,
        Some(SUBMITTER),
        sa_groups("apps"),
        Some(scanfleet("create", "scans", "kube-system")),
        None,
    )
    .await
    .expect("review");
    assert_eq!((st.allowed, st.denied, st.reason), (false, None, None));
    let st = sar(
        &reviews,
        Some(SUBMITTER),
        sa_groups("apps"),
        Some(scanfleet("list", "results", "apps")),
        None,
    )
    .await
    .expect("review");
    assert_eq!(
        (st.allowed, st.reason.as_deref()),
        (
            true,
            Some(
                "RBAC: allowed by RoleBinding \"read-results/apps\" of ClusterRole \"scanfleet-reader\" to ServiceAccount \"submitter/apps\""
            )
        )
    );
    // The Role grants create only, and only scans.
    for (verb, resource) in [("delete", "scans"), ("create", "results")] {
        let st = sar(
            &reviews,
            Some(SUBMITTER),
            sa_groups("apps"),
            Some(scanfleet(verb, resource, "apps")),
            None,
        )
        .await
        .expect("review");
        assert!(!st.allowed, "{verb} {resource}: {st:?}");
    }
    // The user alone matches a ServiceAccount subject; groups alone match
    // group subjects (system:masters is allowed everything).
    let st = sar(
        &reviews,
        Some(SUBMITTER),
        vec![],
        Some(scanfleet("create", "scans", "apps")),
        None,
    )
    .await
    .expect("review");
    assert!(st.allowed, "{st:?}");
    let st = sar(
        &reviews,
        None,
        vec!["system:masters".into()],
        Some(scanfleet("delete", "scans", "kube-system")),
        None,
    )
    .await
    .expect("review");
    assert_eq!((st.allowed, st.reason), (true, None));
    let version = NonResourceAttributes {
        path: Some("/version".into()),
        verb: Some("get".into()),
    };
    let st = sar(
        &reviews,
        Some("someone"),
        vec!["system:authenticated".into()],
        None,
        Some(version.clone()),
    )
    .await
    .expect("review");
    assert!(st.allowed, "{st:?}");
    assert!(
        st.reason
            .as_deref()
            .is_some_and(|r| r.starts_with("RBAC: allowed by ClusterRoleBinding \"system:")),
        "{st:?}"
    );
    let st = sar(
        &reviews,
        Some("someone"),
        vec![],
        None,
        Some(version.clone()),
    )
    .await
    .expect("review");
    assert!(!st.allowed, "{st:?}");

    // A binding to a missing Role is named in the denial's reason.
    let _: RoleBinding = apply(
        &admin,
        Some("apps"),
        binding("broken", "Role", "gone", "submitter"),
    )
    .await;
    let st = sar(
        &reviews,
        Some(SUBMITTER),
        sa_groups("apps"),
        Some(scanfleet("delete", "scans", "apps")),
        None,
    )
    .await
    .expect("review");
    assert_eq!(
        (st.allowed, st.reason.as_deref()),
        (
            false,
            Some("RBAC: role.rbac.authorization.k8s.io \"gone\" not found")
        )
    );

    // Neither attributes nor a subject: 422 with both field errors.
    let e = api_error(sar(&reviews, None, vec![], None, None).await);
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        e.message,
        "SubjectAccessReview.authorization.k8s.io \"\" is invalid: [spec: Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified, spec.user: Invalid value: \"\": at least one of user or group must be specified]"
    );
    let e = api_error(
        sar(
            &reviews,
            Some(SUBMITTER),
            vec![],
            Some(scanfleet("create", "scans", "apps")),
            Some(version),
        )
        .await,
    );
    assert_eq!(
        e.message,
        "SubjectAccessReview.authorization.k8s.io \"\" is invalid: spec: Invalid value: v1.NonResourceAttributes{Path:\"/version\", Verb:\"get\"}: exactly one of nonResourceAttributes or resourceAttributes must be specified"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn local_and_self_subject_access_reviews_stay_in_their_scope() {
    let sim = demo().await;
    let admin = admin(&sim).await;
    grant_scanfleet_rights(&admin).await;

    let local: Api<LocalSubjectAccessReview> = Api::namespaced(admin.clone(), "apps");
    let ask = |ns: &str| LocalSubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(SUBMITTER.into()),
            resource_attributes: Some(scanfleet("create", "scans", ns)),
            ..Default::default()
        },
        ..Default::default()
    };
    let out = local
        .create(&PostParams::default(), &ask("apps"))
        .await
        .expect("local review");
    assert_eq!(out.metadata.namespace.as_deref(), Some("apps"));
    assert!(out.status.expect("status").allowed);
    let e = api_error(
        local
            .create(&PostParams::default(), &ask("kube-system"))
            .await,
    );
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            422,
            "LocalSubjectAccessReview.authorization.k8s.io \"\" is invalid: spec.resourceAttributes.namespace: Invalid value: \"kube-system\": must match metadata.namespace"
        )
    );

    // kubectl auth can-i's review: the caller asks about itself.
    let t = token(&admin, "apps", "submitter", 600, None)
        .await
        .expect("token");
    let own: Api<SelfSubjectAccessReview> = Api::all(with_token(&sim, &t).await);
    let can = |ns: &str| SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(scanfleet("create", "scans", ns)),
            ..Default::default()
        },
        ..Default::default()
    };
    for (ns, allowed) in [("apps", true), ("kube-system", false)] {
        let st = own
            .create(&PostParams::default(), &can(ns))
            .await
            .expect("self review")
            .status
            .expect("status");
        assert_eq!(st.allowed, allowed, "{ns}: {st:?}");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn reviews_need_their_rbac_permission_and_are_audited() {
    let dir = tempfile::tempdir().expect("tempdir");
    let audit = dir.path().join("audit.jsonl");
    let config = kubesim::Config::demo_audited(&audit).expect("demo fixture");
    let sim = start(config).await;
    let admin = admin(&sim).await;
    grant_scanfleet_rights(&admin).await;
    let reviewer = delegator(&sim, &admin).await;
    let t = token(&admin, "apps", "submitter", 600, None)
        .await
        .expect("token");
    let submitter = with_token(&sim, &t).await;

    let review = TokenReview {
        spec: TokenReviewSpec {
            token: t.clone(),
            audiences: None,
        },
        ..Default::default()
    };
    let e = api_error(
        Api::<TokenReview>::all(submitter.clone())
            .create(&PostParams::default(), &review)
            .await,
    );
    assert_eq!((e.code, e.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        e.message,
        format!(
            "tokenreviews.authentication.k8s.io is forbidden: User \"{SUBMITTER}\" cannot create resource \"tokenreviews\" in API group \"authentication.k8s.io\" at the cluster scope"
        )
    );
    let details = e.details.expect("details");
    assert_eq!(
        (
            details.group.as_str(),
            details.kind.as_str(),
            details.name.as_str()
        ),
        ("authentication.k8s.io", "tokenreviews", "")
    );
    let subjects: Api<SubjectAccessReview> = Api::all(submitter.clone());
    let e = api_error(
        sar(
            &subjects,
            Some(SUBMITTER),
            vec![],
            Some(scanfleet("create", "scans", "apps")),
            None,
        )
        .await,
    );
    assert_eq!(
        (e.code, e.message),
        (
            403,
            format!(
                "subjectaccessreviews.authorization.k8s.io is forbidden: User \"{SUBMITTER}\" cannot create resource \"subjectaccessreviews\" in API group \"authorization.k8s.io\" at the cluster scope"
            )
        )
    );
    let reviewed = Api::<TokenReview>::all(reviewer)
        .create(&PostParams::default(), &review)
        .await
        .expect("the delegator may review");
    assert_eq!(reviewed.status.and_then(|s| s.authenticated), Some(true));

    let text = std::fs::read_to_string(&audit).expect("audit log");
    let records: Vec<kubesim::audit::AuditRecord> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("audit line parses"))
        .collect();
    let seen = |user: &str, resource: &str, code: u16| {
        records.iter().any(|r| {
            r.user == user && r.verb == "create" && r.resource == resource && r.code == code
        })
    };
    assert!(seen(SUBMITTER, "tokenreviews", 403), "{text}");
    assert!(seen(SUBMITTER, "subjectaccessreviews", 403), "{text}");
    assert!(
        seen(
            "system:serviceaccount:scanning:reviewer",
            "tokenreviews",
            201
        ),
        "{text}"
    );
    assert!(!text.contains(&t), "the reviewed token is never logged");
    sim.shutdown().await;
}
