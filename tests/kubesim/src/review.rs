//! SelfSubjectAccessReview: the caller asks whether *they* may do something.
//! `kubectl auth can-i` is built on it.

use serde_json::{Value, json};

use crate::rbac::{self, User};
use crate::resources::RequestInfo;
use crate::server::State;
use crate::status::{ApiError, FieldError};

/// Evaluates the review and returns it with `status` filled (201).
pub fn self_subject_access_review(
    state: &State,
    user: &User,
    body: Value,
) -> Result<Value, ApiError> {
    let review: k8s_openapi::api::authorization::v1::SelfSubjectAccessReview =
        serde_json::from_value(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding request body: {e}")))?;
    let spec = &review.spec;
    let info = match (&spec.resource_attributes, &spec.non_resource_attributes) {
        (Some(r), None) => RequestInfo {
            is_resource: true,
            verb: r.verb.clone().unwrap_or_default(),
            group: r.group.clone().unwrap_or_default(),
            version: r.version.clone().unwrap_or_default(),
            resource: r.resource.clone().unwrap_or_default(),
            subresource: r.subresource.clone().unwrap_or_default(),
            name: r.name.clone().unwrap_or_default(),
            namespace: r.namespace.clone().unwrap_or_default(),
            path: String::new(),
        },
        (None, Some(n)) => RequestInfo {
            is_resource: false,
            verb: n.verb.clone().unwrap_or_default(),
            path: n.path.clone().unwrap_or_default(),
            ..Default::default()
        },
        _ => {
            return Err(ApiError::invalid(
                "authorization.k8s.io",
                "SelfSubjectAccessReview",
                "",
                &[FieldError::invalid(
                    "spec.resourceAttributes",
                    "null",
                    "exactly one of nonResourceAttributes or resourceAttributes must be specified",
                )],
            ));
        }
    };
    let d = rbac::authorize(state, user, &info);
    let mut out = serde_json::to_value(&review).map_err(|e| ApiError::internal(e.to_string()))?;
    out["metadata"]["creationTimestamp"] = Value::Null;
    let mut status = json!({"allowed": d.allowed});
    if !d.reason.is_empty() {
        status["reason"] = json!(d.reason);
    }
    out["status"] = status;
    Ok(out)
}
