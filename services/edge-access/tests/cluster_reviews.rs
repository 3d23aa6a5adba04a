//! The gatekeeper against kubesim's TokenReview and SubjectAccessReview
//! over the wire, asking with an identity that holds only
//! `system:auth-delegator`: real ServiceAccount tokens, real Roles on
//! `scanfleet.dev`, the clock moved forward for expiry. Requires root
//! (kubesim).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use scanfleet_edge_access::caller::BearerToken;
use scanfleet_edge_access::settings::{AccessSettings, MappedUser};
use scanfleet_edge_access::{
    Access, AccessError, Credentials, Gatekeeper, KubeReviews, Proof, Resource, Scope, Verb,
};
use scanfleet_test_harness::callers::{AUDIENCE, Callers, access_cluster, client};

fn bearer(token: &str) -> Credentials {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    let credentials = Credentials::from_parts(&headers, None);
    assert!(
        credentials
            .bearer
            .as_ref()
            .map(BearerToken::expose)
            .is_some()
    );
    credentials
}

async fn gatekeeper(
    sim: &kubesim::Kubesim,
    dir: &std::path::Path,
    settings: AccessSettings,
) -> Gatekeeper {
    let callers = Callers::new(sim).await;
    let kubeconfig = callers.reviewer_kubeconfig(dir, "reviews-test").await;
    let text = std::fs::read_to_string(kubeconfig).unwrap();
    Gatekeeper::new(Arc::new(KubeReviews::new(client(&text).await)), &settings)
}

fn uncached() -> AccessSettings {
    AccessSettings {
        cache_ttl: Duration::ZERO,
        ..AccessSettings::default()
    }
}

fn unauthenticated(result: Result<scanfleet_edge_access::Caller, AccessError>) -> String {
    match result {
        Err(AccessError::Unauthenticated(reason)) => reason,
        other => panic!("expected 401, got {other:?}"),
    }
}

#[tokio::test]
async fn tokens_are_reviewed_for_the_scanfleet_audience() {
    let sim = access_cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let gate = gatekeeper(&sim, dir.path(), uncached()).await;
    let callers = Callers::new(&sim).await;
    callers.service_account("apps", "submitter").await;

    let token = callers.token("apps", "submitter", AUDIENCE, 600).await;
    let caller = gate.admit(&bearer(&token)).await.unwrap();
    assert_eq!(caller.principal(), "system:serviceaccount:apps:submitter");
    assert!(
        caller
            .groups
            .contains(&"system:serviceaccounts:apps".to_owned())
    );
    assert_eq!(caller.proof, Proof::BearerToken);

    let vault = callers.token("apps", "submitter", "vault", 600).await;
    let reason = unauthenticated(gate.admit(&bearer(&vault)).await);
    assert!(
        reason.contains("vault") || reason.contains("audience"),
        "{reason}"
    );

    sim.advance_clock(600 + 61);
    let reason = unauthenticated(gate.admit(&bearer(&token)).await);
    assert!(reason.contains("expired"), "{reason}");

    let fresh = callers.token("apps", "submitter", AUDIENCE, 3600).await;
    assert!(gate.admit(&bearer(&fresh)).await.is_ok());
    callers.delete_service_account("apps", "submitter").await;
    let reason = unauthenticated(gate.admit(&bearer(&fresh)).await);
    assert!(reason.contains("not found"), "{reason}");

    let reason = unauthenticated(gate.admit(&bearer("not-a-jwt")).await);
    assert!(reason.contains("refused"), "{reason}");
    let reason = unauthenticated(gate.admit(&Credentials::default()).await);
    assert!(reason.contains("no credentials"), "{reason}");
}

#[tokio::test]
async fn rbac_on_scanfleet_dev_decides_per_namespace() {
    let sim = access_cluster().await;
    let dir = tempfile::tempdir().unwrap();
    // Uncached: the test changes a grant and asks again at once.
    let gate = gatekeeper(&sim, dir.path(), uncached()).await;
    let callers = Callers::new(&sim).await;
    let submitter = callers
        .caller("apps", "submitter", &["create"], "scans", &["apps"])
        .await;
    let reader = callers
        .caller(
            "apps",
            "reader",
            &["get", "list", "watch"],
            "results",
            &["apps"],
        )
        .await;
    let submitter = gate.admit(&bearer(&submitter)).await.unwrap();
    let reader = gate.admit(&bearer(&reader)).await.unwrap();

    gate.authorize(
        &submitter,
        Access::new(Verb::Create, Resource::Scans, "apps"),
    )
    .await
    .unwrap();
    let refused = gate
        .authorize(
            &submitter,
            Access::new(Verb::Create, Resource::Scans, "kube-system"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(refused, AccessError::Forbidden { .. }),
        "{refused:?}"
    );
    assert!(
        refused
            .to_string()
            .contains("cannot create resource \"scans\""),
        "{refused}"
    );
    assert!(
        refused
            .to_string()
            .contains("in the namespace \"kube-system\""),
        "{refused}"
    );

    let namespaces = ["apps", "kube-system", "shop"].map(String::from);
    let scope = gate
        .scope(&reader, Verb::List, Resource::Results, namespaces.clone())
        .await
        .unwrap();
    assert_eq!(scope, Scope::Only(["apps".to_owned()].into()));
    let refused = gate
        .scope(&submitter, Verb::List, Resource::Results, namespaces)
        .await
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .ends_with("in the namespaces \"apps\", \"kube-system\", \"shop\""),
        "{refused}"
    );

    callers
        .grant_cluster(
            "results-everywhere",
            serde_json::json!([{"apiGroups": ["scanfleet.dev"], "resources": ["results"], "verbs": ["list"]}]),
            serde_json::json!({"kind": "ServiceAccount", "name": "submitter", "namespace": "apps"}),
        )
        .await;
    let scope = gate
        .scope(&submitter, Verb::List, Resource::Results, Vec::new())
        .await
        .unwrap();
    assert_eq!(scope, Scope::Everywhere);
}

#[tokio::test]
async fn a_revoked_permission_stops_working_within_the_ttl() {
    let sim = access_cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let ttl = Duration::from_secs(2);
    let gate = gatekeeper(
        &sim,
        dir.path(),
        AccessSettings {
            cache_ttl: ttl,
            ..AccessSettings::default()
        },
    )
    .await;
    let callers = Callers::new(&sim).await;
    let token = callers
        .caller("apps", "submitter", &["create"], "scans", &["apps"])
        .await;
    let caller = gate.admit(&bearer(&token)).await.unwrap();
    let submit = Access::new(Verb::Create, Resource::Scans, "apps");
    gate.authorize(&caller, submit.clone()).await.unwrap();
    callers.revoke("apps", "submitter-scans").await;
    let revoked = Instant::now();
    while gate.authorize(&caller, submit.clone()).await.is_ok() {
        assert!(
            revoked.elapsed() <= ttl + Duration::from_millis(500),
            "still allowed {:?} after the revocation",
            revoked.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn mapped_client_certificates_are_callers_too() {
    let sim = access_cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let subject = "CN=release-pipeline, O=example";
    let settings = AccessSettings {
        certificate_users: [(
            subject.to_owned(),
            MappedUser {
                name: "ci:release-pipeline".into(),
                groups: vec!["ci".into()],
            },
        )]
        .into(),
        ..AccessSettings::default()
    };
    let gate = gatekeeper(&sim, dir.path(), settings).await;
    let callers = Callers::new(&sim).await;
    callers
        .grant_cluster(
            "ci-submits-in-shop",
            serde_json::json!([{"apiGroups": ["scanfleet.dev"], "resources": ["scans"], "verbs": ["create"]}]),
            serde_json::json!({"kind": "Group", "name": "ci", "apiGroup": "rbac.authorization.k8s.io"}),
        )
        .await;
    let with_cert = Credentials {
        client_subject: Some(subject.into()),
        ..Credentials::default()
    };
    let caller = gate.admit(&with_cert).await.unwrap();
    assert_eq!(caller.principal(), "ci:release-pipeline");
    gate.authorize(&caller, Access::new(Verb::Create, Resource::Scans, "shop"))
        .await
        .unwrap();
    let stranger = Credentials {
        client_subject: Some("CN=someone, O=else".into()),
        ..Credentials::default()
    };
    let reason = unauthenticated(gate.admit(&stranger).await);
    assert!(reason.contains("not mapped"), "{reason}");
}

#[tokio::test]
async fn callers_and_unreviewed_peers_are_rate_limited() {
    let sim = access_cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let limit = |n| std::num::NonZeroU32::new(n).unwrap();
    let gate = gatekeeper(
        &sim,
        dir.path(),
        AccessSettings {
            rate_limit: scanfleet_edge_access::caller_limits::RateLimit {
                per_second: limit(1),
                burst: limit(2),
            },
            ..AccessSettings::default()
        },
    )
    .await;
    let callers = Callers::new(&sim).await;
    callers.service_account("apps", "busy").await;
    let token = callers.token("apps", "busy", AUDIENCE, 600).await;
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        outcomes.push(gate.admit(&bearer(&token)).await);
    }
    assert!(outcomes[0].is_ok() && outcomes[1].is_ok(), "{outcomes:?}");
    match &outcomes[2] {
        Err(AccessError::RateLimited { retry_after, who }) => {
            assert_eq!(who, "system:serviceaccount:apps:busy");
            assert!(*retry_after >= Duration::from_secs(1));
        }
        other => panic!("expected 429, got {other:?}"),
    }
    // Made-up tokens from one peer: two reviews, then the peer waits.
    let peer: IpAddr = "192.0.2.7".parse().unwrap();
    let mut limited = false;
    for i in 0..3 {
        let mut credentials = bearer(&format!("made-up-{i}"));
        credentials.peer = Some(peer);
        limited |= matches!(
            gate.admit(&credentials).await,
            Err(AccessError::RateLimited { .. })
        );
    }
    assert!(limited, "a peer replaying made-up tokens is slowed down");
}

#[tokio::test]
async fn a_service_that_may_not_ask_says_so() {
    let sim = access_cluster().await;
    let callers = Callers::new(&sim).await;
    callers
        .service_account("scanfleet-system", "no-rights")
        .await;
    let api_audience = kubesim::authn::api_audiences().remove(0);
    let token = callers
        .token("scanfleet-system", "no-rights", &api_audience, 3600)
        .await;
    let kube = client(&sim.kubeconfig_for_token("no-rights", &token, "")).await;
    let gate = Gatekeeper::new(Arc::new(KubeReviews::new(kube)), &uncached());
    let caller_token = callers
        .token("scanfleet-system", "no-rights", AUDIENCE, 600)
        .await;
    match gate.admit(&bearer(&caller_token)).await {
        Err(AccessError::Unavailable(reason)) => {
            assert!(reason.contains("system:auth-delegator"), "{reason}")
        }
        other => panic!("expected 503, got {other:?}"),
    }
}
