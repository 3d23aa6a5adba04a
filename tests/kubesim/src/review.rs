//! SelfSubjectAccessReview: the caller asks whether *they* may do something.
//! `kubectl auth can-i` is built on it.

use serde_json::{Value, json};

use crate::rbac::{self, User};
use crate::resources::RequestInfo;
use crate::state::State;
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

/// SelfSubjectRulesReview: the rules the caller holds in `spec.namespace`
/// (`kubectl auth can-i --list`).
pub fn self_subject_rules_review(
    state: &State,
    user: &User,
    body: Value,
) -> Result<Value, ApiError> {
    let ns = body["spec"]["namespace"].as_str().unwrap_or("").to_string();
    let (rules, errors) = rbac::rules_for(state, user, &ns);
    let list = |v: &[String]| json!(v);
    let mut resource_rules = Vec::new();
    let mut non_resource_rules = Vec::new();
    for g in rules {
        let r = g.rule;
        if !r.non_resource_urls.is_empty() {
            non_resource_rules.push(
                json!({"verbs": list(&r.verbs), "nonResourceURLs": list(&r.non_resource_urls)}),
            );
        }
        if !r.resources.is_empty() {
            let mut rr = json!({"verbs": list(&r.verbs), "apiGroups": list(&r.api_groups), "resources": list(&r.resources)});
            if !r.resource_names.is_empty() {
                rr["resourceNames"] = list(&r.resource_names);
            }
            resource_rules.push(rr);
        }
    }
    let mut status = json!({"resourceRules": resource_rules, "nonResourceRules": non_resource_rules,
                            "incomplete": !errors.is_empty()});
    if !errors.is_empty() {
        status["evaluationError"] = json!(errors.join(", "));
    }
    Ok(
        json!({"kind": "SelfSubjectRulesReview", "apiVersion": "authorization.k8s.io/v1",
              "metadata": {"creationTimestamp": null}, "spec": {"namespace": ns}, "status": status}),
    )
}
