//! TokenReview ("who is this bearer token?", for callers holding `create`
//! on `tokenreviews`, e.g. `system:auth-delegator`) and SelfSubjectReview
//! ("who am I?", `kubectl auth whoami`).
//!
//! A TokenReview runs [`authn::authenticate`] — the authenticator of every
//! request — with the audiences the review asks for (the API audiences when
//! it names none), so a review and a request can never disagree. As
//! upstream, a refused token is still a successful review (201):
//! `status.authenticated` is absent and `status.error` says why.

use k8s_openapi::api::authentication::v1::TokenReview;
use serde_json::{Value, json};

use crate::authn::{self, Authenticated};
use crate::rbac::User;
use crate::resources::AUTHENTICATION_GROUP;
use crate::state::State;
use crate::status::ApiError;

/// `UserInfo` as upstream serializes it (empty fields omitted).
fn user_info(u: &User) -> Value {
    let mut v = json!({"username": u.name});
    if !u.uid.is_empty() {
        v["uid"] = json!(u.uid);
    }
    if !u.groups.is_empty() {
        v["groups"] = json!(u.groups);
    }
    if !u.extra.is_empty() {
        v["extra"] = json!(u.extra);
    }
    v
}

/// TokenReview: authenticates `spec.token` for `spec.audiences` (201).
pub fn token_review(state: &State, body: Value) -> Result<Value, ApiError> {
    if body["spec"]["token"].as_str().unwrap_or("").is_empty() {
        return Err(ApiError::bad_request(
            "token is required for TokenReview in authentication",
        ));
    }
    let review: TokenReview = serde_json::from_value(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding request body: {e}")))?;
    let spec = &review.spec;
    let audiences = match spec.audiences.as_deref() {
        Some(a) if !a.is_empty() => a.to_vec(),
        _ => authn::api_audiences(),
    };
    let status = match authn::authenticate(state, &spec.token, &audiences) {
        Ok(Authenticated { user, audiences }) => json!({
            "authenticated": true,
            "user": user_info(&user),
            "audiences": audiences,
        }),
        Err(e) => json!({"user": {}, "error": e.to_string()}),
    };
    let spec = serde_json::to_value(spec).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(json!({
        "kind": "TokenReview", "apiVersion": format!("{AUTHENTICATION_GROUP}/v1"),
        "metadata": {"creationTimestamp": null}, "spec": spec, "status": status,
    }))
}

/// SelfSubjectReview: the caller's own user info (201).
pub fn self_subject_review(user: &User) -> Value {
    json!({
        "kind": "SelfSubjectReview", "apiVersion": format!("{AUTHENTICATION_GROUP}/v1"),
        "metadata": {"creationTimestamp": null},
        "status": {"userInfo": user_info(user)},
    })
}
