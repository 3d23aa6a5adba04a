//! Access reviews: "may this user do that?", answered by kubesim's RBAC
//! ([`rbac::authorize`], the same call the request filter makes).
//!
//! - SubjectAccessReview: about any user, for callers holding `create` on
//!   `subjectaccessreviews` (e.g. `system:auth-delegator`); how a service
//!   authorizes its own callers against virtual resources such as
//!   `scans.scanfleet.dev`.
//! - LocalSubjectAccessReview: the same, confined to one namespace.
//! - SelfSubjectAccessReview: about the caller (`kubectl auth can-i`).
//! - SelfSubjectRulesReview: the caller's rules (`kubectl auth can-i --list`).

use k8s_openapi::api::authorization::v1::{
    LocalSubjectAccessReview, NonResourceAttributes, ResourceAttributes, SelfSubjectAccessReview,
    SubjectAccessReview,
};
use serde_json::{Value, json};

use crate::rbac::{self, User};
use crate::resources::{AUTHORIZATION_GROUP, RequestInfo};
use crate::state::State;
use crate::status::{ApiError, FieldError};

fn decode<T: serde::de::DeserializeOwned>(body: Value) -> Result<T, ApiError> {
    serde_json::from_value(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding request body: {e}")))
}

fn encode<T: serde::Serialize>(v: &T) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(|e| ApiError::internal(e.to_string()))
}

/// Go's `%#v` of the internal NonResourceAttributes, as upstream's field
/// errors print the bad value.
fn go_non_resource(n: &NonResourceAttributes) -> String {
    format!(
        "v1.NonResourceAttributes{{Path:{:?}, Verb:{:?}}}",
        n.path.as_deref().unwrap_or(""),
        n.verb.as_deref().unwrap_or("")
    )
}

/// The attributes rule shared by every access review: exactly one of
/// resourceAttributes and nonResourceAttributes.
fn one_of_attributes(
    resource: Option<&ResourceAttributes>,
    non_resource: Option<&NonResourceAttributes>,
    errors: &mut Vec<FieldError>,
) {
    let value = match (resource, non_resource) {
        (Some(_), Some(n)) => go_non_resource(n),
        (None, None) => "\"null\"".to_string(),
        _ => return,
    };
    errors.push(FieldError::invalid(
        "spec",
        &value,
        "exactly one of nonResourceAttributes or resourceAttributes must be specified",
    ));
}

/// The request attributes a review asks about (`ResourceAttributesFrom`,
/// `NonResourceAttributesFrom`).
fn attributes(
    resource: Option<&ResourceAttributes>,
    non_resource: Option<&NonResourceAttributes>,
) -> RequestInfo {
    match (resource, non_resource) {
        (Some(r), _) => RequestInfo {
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
        (None, n) => RequestInfo {
            is_resource: false,
            verb: n.and_then(|n| n.verb.clone()).unwrap_or_default(),
            path: n.and_then(|n| n.path.clone()).unwrap_or_default(),
            ..Default::default()
        },
    }
}

/// `SubjectAccessReviewStatus`: `allowed` always, `denied` and `reason`
/// only when set (RBAC never denies outright; it has no opinion).
fn decide(state: &State, user: &User, info: &RequestInfo) -> Value {
    let d = rbac::authorize(state, user, info);
    let mut status = json!({"allowed": d.allowed});
    if !d.reason.is_empty() {
        status["reason"] = json!(d.reason);
    }
    status
}

fn answer(kind: &str, metadata: Value, spec: Value, status: Value) -> Value {
    json!({"kind": kind, "apiVersion": format!("{AUTHORIZATION_GROUP}/v1"),
           "metadata": metadata, "spec": spec, "status": status})
}

/// The user a (Local)SubjectAccessReview asks about.
fn subject(spec: &k8s_openapi::api::authorization::v1::SubjectAccessReviewSpec) -> User {
    User {
        name: spec.user.clone().unwrap_or_default(),
        groups: spec.groups.clone().unwrap_or_default(),
        uid: spec.uid.clone().unwrap_or_default(),
        extra: spec.extra.clone().unwrap_or_default(),
    }
}

fn subject_errors(
    spec: &k8s_openapi::api::authorization::v1::SubjectAccessReviewSpec,
    errors: &mut Vec<FieldError>,
) {
    one_of_attributes(
        spec.resource_attributes.as_ref(),
        spec.non_resource_attributes.as_ref(),
        errors,
    );
    if spec.user.as_deref().unwrap_or("").is_empty()
        && spec.groups.as_ref().is_none_or(Vec::is_empty)
    {
        errors.push(FieldError::invalid(
            "spec.user",
            "\"\"",
            "at least one of user or group must be specified",
        ));
    }
}

/// SubjectAccessReview: evaluates `spec` for the user it names (201).
pub fn subject_access_review(state: &State, body: Value) -> Result<Value, ApiError> {
    let review: SubjectAccessReview = decode(body)?;
    let spec = &review.spec;
    let mut errors = Vec::new();
    subject_errors(spec, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::invalid(
            AUTHORIZATION_GROUP,
            "SubjectAccessReview",
            "",
            &errors,
        ));
    }
    let info = attributes(
        spec.resource_attributes.as_ref(),
        spec.non_resource_attributes.as_ref(),
    );
    let status = decide(state, &subject(spec), &info);
    Ok(answer(
        "SubjectAccessReview",
        json!({"creationTimestamp": null}),
        encode(spec)?,
        status,
    ))
}

/// LocalSubjectAccessReview in `ns`: resource attributes only, and only
/// about `ns` (201).
pub fn local_subject_access_review(
    state: &State,
    ns: &str,
    body: Value,
) -> Result<Value, ApiError> {
    let review: LocalSubjectAccessReview = decode(body)?;
    if review
        .metadata
        .namespace
        .as_deref()
        .is_some_and(|n| !n.is_empty() && n != ns)
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let spec = &review.spec;
    let mut errors = Vec::new();
    subject_errors(spec, &mut errors);
    if let Some(r) = &spec.resource_attributes {
        let asked = r.namespace.as_deref().unwrap_or("");
        if asked != ns {
            errors.push(FieldError::invalid(
                "spec.resourceAttributes.namespace",
                &format!("{asked:?}"),
                "must match metadata.namespace",
            ));
        }
    }
    if let Some(n) = &spec.non_resource_attributes {
        errors.push(FieldError::invalid(
            "spec.nonResourceAttributes",
            &go_non_resource(n),
            "disallowed on this kind of request",
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(
            AUTHORIZATION_GROUP,
            "LocalSubjectAccessReview",
            "",
            &errors,
        ));
    }
    let info = attributes(spec.resource_attributes.as_ref(), None);
    let status = decide(state, &subject(spec), &info);
    Ok(answer(
        "LocalSubjectAccessReview",
        json!({"namespace": ns, "creationTimestamp": null}),
        encode(spec)?,
        status,
    ))
}

/// SelfSubjectAccessReview: evaluates `spec` for the caller (201).
pub fn self_subject_access_review(
    state: &State,
    user: &User,
    body: Value,
) -> Result<Value, ApiError> {
    let review: SelfSubjectAccessReview = decode(body)?;
    let spec = &review.spec;
    let mut errors = Vec::new();
    one_of_attributes(
        spec.resource_attributes.as_ref(),
        spec.non_resource_attributes.as_ref(),
        &mut errors,
    );
    if !errors.is_empty() {
        return Err(ApiError::invalid(
            AUTHORIZATION_GROUP,
            "SelfSubjectAccessReview",
            "",
            &errors,
        ));
    }
    let info = attributes(
        spec.resource_attributes.as_ref(),
        spec.non_resource_attributes.as_ref(),
    );
    let status = decide(state, user, &info);
    Ok(answer(
        "SelfSubjectAccessReview",
        json!({"creationTimestamp": null}),
        encode(spec)?,
        status,
    ))
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
