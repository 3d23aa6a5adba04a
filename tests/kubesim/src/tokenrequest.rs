//! TokenRequest (`serviceaccounts/<name>/token`), following the processing
//! order of upstream's `TokenREST.Create`: defaulting, name checks, SA lookup,
//! validation (600 s .. 2^32 s), validating admission, pod binding, signing.

use serde_json::{Value, json};

use crate::admission::{self, Attributes, Operation};
use crate::rbac::User;
use crate::state::State;
use crate::status::{ApiError, FieldError};
use crate::tokens::{Claims, ISSUER, KubeClaims, Ref};

const GROUP: &str = "authentication.k8s.io";

/// Handles the POST; returns the TokenRequest with `status` (201).
pub fn create(
    state: &State,
    user: &User,
    ns: &str,
    sa_name: &str,
    body: Value,
) -> Result<Value, ApiError> {
    let mut tr: Value = serde_json::to_value(
        serde_json::from_value::<k8s_openapi::api::authentication::v1::TokenRequest>(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding request body: {e}")))?,
    )
    .map_err(|e| ApiError::internal(e.to_string()))?;
    if tr["spec"]["expirationSeconds"].is_null() {
        tr["spec"]["expirationSeconds"] = json!(3600);
    }
    let invalid_meta = |field: &str, v: &str| {
        ApiError::invalid(
            GROUP,
            "TokenRequest",
            v,
            &[FieldError::invalid(
                field,
                &format!("{v:?}"),
                "must match the service account",
            )],
        )
    };
    if let Some(n) = tr["metadata"]["name"].as_str().filter(|n| !n.is_empty())
        && n != sa_name
    {
        return Err(invalid_meta("metadata.name", n));
    }
    if let Some(n) = tr["metadata"]["namespace"]
        .as_str()
        .filter(|n| !n.is_empty())
        && n != ns
    {
        return Err(invalid_meta("metadata.namespace", n));
    }
    let sa = state
        .store
        .get("serviceaccounts", ns, sa_name)
        .ok_or_else(|| ApiError::not_found("", "serviceaccounts", sa_name))?;
    let sa_uid = sa["metadata"]["uid"].as_str().unwrap_or("").to_string();
    if let Some(u) = tr["metadata"]["uid"].as_str().filter(|u| !u.is_empty())
        && u != sa_uid
    {
        return Err(ApiError::conflict(
            "",
            "serviceaccounts",
            sa_name,
            &format!(
                "the UID in the token request ({u}) does not match the UID of the service account ({sa_uid})"
            ),
        ));
    }
    if tr["spec"]["audiences"]
        .as_array()
        .is_none_or(|a| a.is_empty())
    {
        tr["spec"]["audiences"] = json!([ISSUER]);
    }
    let now = state.clock.now();
    tr["metadata"] = json!({"name": sa_name, "namespace": ns, "uid": sa_uid,
                            "creationTimestamp": crate::clock::format_time(now)});
    let exp_secs = tr["spec"]["expirationSeconds"].as_i64().unwrap_or(3600);
    if exp_secs < 600 {
        return Err(ApiError::invalid(
            GROUP,
            "TokenRequest",
            "",
            &[FieldError::invalid(
                "spec.expirationSeconds",
                &exp_secs.to_string(),
                "may not specify a duration less than 10 minutes",
            )],
        ));
    }
    if exp_secs > (1i64 << 32) {
        return Err(ApiError::invalid(
            GROUP,
            "TokenRequest",
            "",
            &[FieldError::invalid(
                "spec.expirationSeconds",
                &exp_secs.to_string(),
                "may not specify a duration larger than 2^32 seconds",
            )],
        ));
    }
    let accounts = crate::resources::find("", "serviceaccounts")
        .ok_or_else(|| ApiError::internal("serviceaccounts are not served"))?;
    let attrs = Attributes::new(Operation::Create, accounts, ns, sa_name, user)
        .on_subresource("token", (GROUP, "v1", "TokenRequest"));
    admission::check(state, attrs, Some(&tr), None)?;
    let mut pod_ref = None;
    let bound = &tr["spec"]["boundObjectRef"];
    if bound.is_object() {
        let kind = bound["kind"].as_str().unwrap_or("");
        let api_version = bound["apiVersion"].as_str().unwrap_or("v1");
        let name = bound["name"].as_str().unwrap_or("");
        if kind != "Pod" || api_version != "v1" {
            return Err(ApiError::bad_request(format!(
                "cannot bind token to object of type {}, Kind={kind}",
                if api_version.contains('/') {
                    api_version.to_string()
                } else {
                    format!("/{api_version}")
                }
            )));
        }
        let pod = state
            .store
            .get("pods", ns, name)
            .ok_or_else(|| ApiError::not_found("", "pods", name))?;
        if pod["spec"]["serviceAccountName"].as_str() != Some(sa_name) {
            return Err(ApiError::bad_request(format!(
                "cannot bind token for serviceaccount {sa_name:?} to pod running with different serviceaccount name."
            )));
        }
        let pod_uid = pod["metadata"]["uid"].as_str().unwrap_or("").to_string();
        if let Some(u) = bound["uid"].as_str().filter(|u| !u.is_empty())
            && u != pod_uid
        {
            return Err(ApiError::conflict(
                "",
                "Pod",
                name,
                &format!(
                    "the UID in the bound object reference ({u}) does not match the UID in record. The object might have been deleted and then recreated"
                ),
            ));
        }
        pod_ref = Some(Ref {
            name: name.into(),
            uid: pod_uid,
        });
    }
    let claims = Claims {
        aud: tr["spec"]["audiences"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect(),
        exp: now + exp_secs,
        iat: now,
        iss: ISSUER.into(),
        jti: uuid::Uuid::new_v4().to_string(),
        kubernetes: KubeClaims {
            namespace: ns.into(),
            pod: pod_ref,
            serviceaccount: Ref {
                name: sa_name.into(),
                uid: sa_uid,
            },
        },
        nbf: now,
        sub: format!("system:serviceaccount:{ns}:{sa_name}"),
    };
    let token = state
        .signer
        .sign(&claims)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    state
        .issued_tokens
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(token.clone());
    tr["status"] = json!({"token": token,
                          "expirationTimestamp": crate::clock::format_time(now + exp_secs)});
    Ok(tr)
}
