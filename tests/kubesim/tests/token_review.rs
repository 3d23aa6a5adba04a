//! TokenReview through kube-rs's typed `TokenReview`: who a live token is
//! for the audience asked, and upstream's refusals (other audience, expired,
//! ServiceAccount or bound pod deleted, forged, malformed). The review runs
//! the authenticator every request runs, so a refused token also gets 401.
//! Requires root (kubesim runs containers in namespaces).

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec, TokenReviewStatus};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams, PostParams};

use common::*;

const API_AUDIENCE: &str = "https://kubernetes.default.svc.cluster.local";

async fn review(reviews: &Api<TokenReview>, token: &str, audiences: &[&str]) -> TokenReviewStatus {
    let tr = TokenReview {
        spec: TokenReviewSpec {
            token: token.to_string(),
            audiences: (!audiences.is_empty())
                .then(|| audiences.iter().map(|a| a.to_string()).collect()),
        },
        ..Default::default()
    };
    reviews
        .create(&PostParams::default(), &tr)
        .await
        .expect("the review itself succeeds (201)")
        .status
        .expect("status")
}

/// Asserts a refused review: not authenticated, no user, upstream's error.
fn assert_refused(status: &TokenReviewStatus, error: &str) {
    assert_ne!(status.authenticated, Some(true), "{status:?}");
    assert_eq!(status.error.as_deref(), Some(error), "{status:?}");
    assert!(
        status.user.as_ref().is_none_or(|u| u.username.is_none()),
        "{status:?}"
    );
    assert_eq!(status.audiences, None, "{status:?}");
}

#[tokio::test]
async fn token_review_names_the_user_of_a_live_token_for_its_audience() {
    let sim = demo().await;
    let admin = admin(&sim).await;
    let submitter = sa(&admin, "apps", "submitter").await;
    let reviews: Api<TokenReview> = Api::all(delegator(&sim, &admin).await);

    let scanfleet_token =
        token_for_audiences(&admin, "apps", "submitter", 600, &["scanfleet", "other"]).await;
    let st = review(&reviews, &scanfleet_token, &["elsewhere", "scanfleet"]).await;
    assert_eq!(st.authenticated, Some(true), "{st:?}");
    assert_eq!(st.error, None);
    assert_eq!(st.audiences, Some(vec!["scanfleet".to_string()]));
    let user = st.user.expect("user");
    assert_eq!(
        user.username.as_deref(),
        Some("system:serviceaccount:apps:submitter")
    );
    assert_eq!(user.uid, submitter.metadata.uid);
    assert_eq!(
        user.groups,
        Some(vec![
            "system:serviceaccounts".to_string(),
            "system:serviceaccounts:apps".to_string(),
            "system:authenticated".to_string(),
        ])
    );
    let jti = jwt_claims(&scanfleet_token)["jti"]
        .as_str()
        .expect("jti claim")
        .to_string();
    assert_eq!(
        user.extra,
        Some(
            [(
                "authentication.kubernetes.io/credential-id".to_string(),
                vec![format!("JTI={jti}")]
            )]
            .into()
        )
    );

    // Without spec.audiences the API server's audiences apply.
    assert_refused(
        &review(&reviews, &scanfleet_token, &[]).await,
        &format!(
            "[invalid bearer token, token audiences [\"scanfleet\" \"other\"] is invalid for the target audiences [\"{API_AUDIENCE}\"]]"
        ),
    );
    assert_refused(
        &review(&reviews, &scanfleet_token, &["vault"]).await,
        "[invalid bearer token, token audiences [\"scanfleet\" \"other\"] is invalid for the target audiences [\"vault\"]]",
    );
    // A token for the API server reviews with the API audience.
    let api_token = token(&admin, "apps", "submitter", 600, None)
        .await
        .expect("token");
    let st = review(&reviews, &api_token, &[]).await;
    assert_eq!(st.authenticated, Some(true), "{st:?}");
    assert_eq!(st.audiences, Some(vec![API_AUDIENCE.to_string()]));

    // A pod-bound token carries the pod, and dies with it.
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "apps");
    let pod = pods.get("web-hardened").await.expect("pod");
    let uid = pod.metadata.uid.clone().expect("uid");
    let bound = token(&admin, "apps", "default", 600, Some(("web-hardened", &uid)))
        .await
        .expect("bound token");
    let st = review(&reviews, &bound, &[]).await;
    assert_eq!(st.authenticated, Some(true), "{st:?}");
    let extra = st.user.and_then(|u| u.extra).expect("extra");
    assert_eq!(
        extra.get("authentication.kubernetes.io/pod-name"),
        Some(&vec!["web-hardened".to_string()])
    );
    assert_eq!(
        extra.get("authentication.kubernetes.io/pod-uid"),
        Some(&vec![uid.clone()])
    );
    pods.delete("web-hardened", &DeleteParams::default())
        .await
        .expect("delete pod");
    assert_refused(
        &review(&reviews, &bound, &[]).await,
        "[invalid bearer token, service account token has been invalidated]",
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn token_review_refuses_expired_deleted_forged_and_malformed_tokens() {
    let sim = demo().await;
    let admin = admin(&sim).await;
    sa(&admin, "apps", "submitter").await;
    let reviews: Api<TokenReview> = Api::all(delegator(&sim, &admin).await);

    // Expired: valid now, refused once the clock passes exp + 60 s leeway,
    // by the review and by every request alike.
    let expiring = token(&admin, "apps", "submitter", 600, None)
        .await
        .expect("token");
    assert_eq!(
        review(&reviews, &expiring, &[]).await.authenticated,
        Some(true)
    );
    sim.advance_clock(600 + 61);
    assert_refused(
        &review(&reviews, &expiring, &[]).await,
        "[invalid bearer token, service account token has expired]",
    );
    let pods: Api<Pod> = Api::namespaced(with_token(&sim, &expiring).await, "apps");
    assert_eq!(api_error(pods.list(&ListParams::default()).await).code, 401);

    // Deleted ServiceAccount, then one recreated under the same name.
    let orphan = token_for_audiences(&admin, "apps", "submitter", 600, &["scanfleet"]).await;
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), "apps");
    sas.delete("submitter", &DeleteParams::default())
        .await
        .expect("delete sa");
    assert_refused(
        &review(&reviews, &orphan, &["scanfleet"]).await,
        "[invalid bearer token, serviceaccounts \"submitter\" not found]",
    );
    let old_uid = jwt_claims(&orphan)["kubernetes.io"]["serviceaccount"]["uid"]
        .as_str()
        .expect("uid claim")
        .to_string();
    let again = sa(&admin, "apps", "submitter").await;
    let new_uid = again.metadata.uid.expect("uid");
    assert_refused(
        &review(&reviews, &orphan, &["scanfleet"]).await,
        &format!(
            "[invalid bearer token, service account UID ({new_uid}) does not match claim ({old_uid})]"
        ),
    );

    // Forged: a valid token's claims rewritten (another namespace), its
    // signature kept.
    let valid = token(&admin, "apps", "submitter", 600, None)
        .await
        .expect("token");
    let parts: Vec<&str> = valid.split('.').collect();
    let mut claims = jwt_claims(&valid);
    claims["kubernetes.io"]["namespace"] = "kube-system".into();
    claims["sub"] = "system:serviceaccount:kube-system:submitter".into();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    );
    assert_refused(
        &review(&reviews, &forged, &[]).await,
        "[invalid bearer token, go-jose/go-jose: error in cryptographic primitive]",
    );
    // Unsigned (`alg: none`), another issuer, and not a JWT at all: no
    // authenticator claims them.
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
        parts[1]
    );
    let mut other_issuer = jwt_claims(&valid);
    other_issuer["iss"] = "https://evil.example".into();
    let other_issuer = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(other_issuer.to_string()),
        parts[2]
    );
    for t in [unsigned.as_str(), other_issuer.as_str(), "not-a-token"] {
        assert_refused(&review(&reviews, t, &[]).await, "invalid bearer token");
    }
    // The static admin token is valid for the API audience only.
    assert_eq!(
        review(&reviews, &sim.admin_token, &[]).await.authenticated,
        Some(true)
    );
    assert_refused(
        &review(&reviews, &sim.admin_token, &["scanfleet"]).await,
        "invalid bearer token",
    );

    // No token is a bad request, not a review.
    let e = api_error(
        reviews
            .create(&PostParams::default(), &TokenReview::default())
            .await,
    );
    assert_eq!(
        (e.code, e.reason.as_str(), e.message.as_str()),
        (
            400,
            "BadRequest",
            "token is required for TokenReview in authentication"
        )
    );
    sim.shutdown().await;
}
