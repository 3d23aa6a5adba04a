//! Object semantics: metadata bookkeeping, create/update/delete per kind
//! (with [`crate::validation`], [`crate::defaults`] and
//! [`crate::escalation`]), and owner garbage collection.
//!
//! Handlers call these after authentication and authorization; everything
//! here works on JSON values checked against the k8s-openapi types so the
//! wire shape is upstream's.

use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use serde_json::{Value, json};

use crate::admission::{self, Attributes, Operation};
use crate::defaults::{default_container, default_pod, mount_service_account_token, random_suffix};
use crate::escalation::check_escalation;
use crate::rbac::User;
use crate::resources::ResourceType;
use crate::state::State;
use crate::status::{ApiError, FieldError};
use crate::validation::{pod_validate, rbac_validate, validate_name};

/// Store key for a type (`pods`, `roles.rbac.authorization.k8s.io`).
pub fn gr(t: &ResourceType) -> String {
    crate::status::group_resource(t.group, t.plural)
}

fn typed_roundtrip<T: serde::de::DeserializeOwned + serde::Serialize>(
    v: Value,
) -> Result<Value, ApiError> {
    let typed: T = serde_json::from_value(v)
        .map_err(|e| ApiError::bad_request(format!("error decoding request body: {e}")))?;
    serde_json::to_value(typed).map_err(|e| ApiError::internal(e.to_string()))
}

/// Parses into the k8s-openapi type of `t` and back, which rejects malformed
/// objects and drops unknown fields as upstream's decoder does.
pub fn normalize(t: &ResourceType, v: Value) -> Result<Value, ApiError> {
    match t.kind {
        "Namespace" => typed_roundtrip::<Namespace>(v),
        "Pod" => typed_roundtrip::<Pod>(v),
        "ServiceAccount" => typed_roundtrip::<ServiceAccount>(v),
        "Role" => typed_roundtrip::<Role>(v),
        "RoleBinding" => typed_roundtrip::<RoleBinding>(v),
        "ClusterRole" => typed_roundtrip::<ClusterRole>(v),
        "ClusterRoleBinding" => typed_roundtrip::<ClusterRoleBinding>(v),
        "ValidatingAdmissionPolicy" => typed_roundtrip::<ValidatingAdmissionPolicy>(v),
        "ValidatingAdmissionPolicyBinding" => {
            typed_roundtrip::<ValidatingAdmissionPolicyBinding>(v)
        }
        _ => Ok(v),
    }
}

/// Creates an object of type `t` in `ns` (`""` for cluster scope) on behalf
/// of `user`; returns the stored object.
pub fn create(
    state: &State,
    user: &User,
    t: &ResourceType,
    ns: &str,
    body: Value,
) -> Result<Value, ApiError> {
    let mut obj = normalize(t, body)?;
    let meta = obj["metadata"].take();
    let mut meta = if meta.is_object() { meta } else { json!({}) };
    if t.namespaced {
        match meta["namespace"].as_str() {
            Some(n) if !n.is_empty() && n != ns => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            _ => meta["namespace"] = json!(ns),
        }
        if state.store.get("namespaces", "", ns).is_none() {
            return Err(ApiError::not_found("", "namespaces", ns));
        }
    } else if let Some(m) = meta.as_object_mut() {
        m.remove("namespace");
    }
    let mut name = meta["name"].as_str().unwrap_or("").to_string();
    if name.is_empty()
        && let Some(g) = meta["generateName"].as_str().filter(|g| !g.is_empty())
    {
        name = format!("{g}{}", random_suffix());
        meta["name"] = json!(name);
    }
    let mut errors = Vec::new();
    if let Some(e) = validate_name(t, &name) {
        errors.push(e);
    }
    if let Some(m) = meta.as_object_mut() {
        for k in [
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "managedFields",
            "selfLink",
            "generation",
        ] {
            m.remove(k);
        }
    }
    meta["uid"] = json!(uuid::Uuid::new_v4().to_string());
    meta["creationTimestamp"] = json!(state.clock.timestamp());
    obj["metadata"] = meta;
    match t.kind {
        "Pod" => {
            pod_validate(&obj, &mut errors);
            if obj["spec"]["ephemeralContainers"]
                .as_array()
                .is_some_and(|l| !l.is_empty())
            {
                errors.push(FieldError::forbidden(
                    "spec.ephemeralContainers",
                    "cannot be set on create",
                ));
            }
            obj["metadata"]["generation"] = json!(1);
        }
        "Namespace" => {
            obj["spec"] = json!({"finalizers": ["kubernetes"]});
            obj["status"] = json!({"phase": "Active"});
            obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
        }
        "ValidatingAdmissionPolicy" | "ValidatingAdmissionPolicyBinding" => {
            admission::objects::default(t.kind, &mut obj);
            admission::objects::validate(t.kind, &obj, &mut errors);
        }
        _ => rbac_validate(t, &obj, &mut errors),
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(t.group, t.kind, &name, &errors));
    }
    if t.kind == "Pod" {
        let sa = obj["spec"]["serviceAccountName"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        if state.store.get("serviceaccounts", ns, &sa).is_none() && sa != "default" {
            return Err(ApiError::forbidden(
                "",
                "pods",
                &name,
                &format!(
                    "error looking up service account {ns}/{sa}: serviceaccount \"{sa}\" not found"
                ),
            ));
        }
        default_pod(state, &mut obj);
        mount_service_account_token(state, ns, &sa, &mut obj);
    }
    check_escalation(state, user, t, ns, "", &obj)?;
    let attrs = Attributes::new(Operation::Create, t, ns, &name, user);
    admission::check(state, attrs, Some(&obj), None)?;
    let stored = state
        .store
        .create(&gr(t), ns, &name, obj)
        .ok_or_else(|| ApiError::already_exists(t.group, t.plural, &name))?;
    if t.kind == "Namespace" {
        ensure_default_sa(state, &name);
    }
    if t.kind == "Pod" {
        state.pod_created(&stored);
    }
    Ok(stored)
}

/// Every namespace gets a `default` ServiceAccount, as the SA controller does.
pub fn ensure_default_sa(state: &State, ns: &str) {
    let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {
        "name": "default", "namespace": ns,
        "uid": uuid::Uuid::new_v4().to_string(),
        "creationTimestamp": state.clock.timestamp()}});
    let _ = state.store.create("serviceaccounts", ns, "default", sa);
}

/// Whether only ownerReferences/finalizers differ (escalation is then skipped).
fn only_gc_fields_changed(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v["metadata"].as_object_mut() {
            for k in [
                "ownerReferences",
                "finalizers",
                "resourceVersion",
                "managedFields",
            ] {
                m.remove(k);
            }
        }
        v
    };
    strip(old) == strip(new)
}

/// Replaces an object (PUT, or the result of a PATCH).
pub fn update(
    state: &State,
    user: &User,
    t: &ResourceType,
    ns: &str,
    name: &str,
    body: Value,
    subresource: &str,
) -> Result<Value, ApiError> {
    let new = normalize(t, body)?;
    let body_name = new["metadata"]["name"].as_str().unwrap_or("");
    if body_name.is_empty() {
        return Err(ApiError::invalid(
            t.group,
            t.kind,
            name,
            &[FieldError::required(
                "metadata.name",
                "name or generateName is required",
            )],
        ));
    }
    if body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    if let Some(n) = new["metadata"]["namespace"].as_str()
        && t.namespaced
        && !n.is_empty()
        && n != ns
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let old = state
        .store
        .get(&gr(t), ns, name)
        .ok_or_else(|| ApiError::not_found(t.group, t.plural, name))?;
    if !only_gc_fields_changed(&old, &new) && subresource.is_empty() {
        check_escalation(state, user, t, ns, name, &new)?;
    }
    let mut attrs = Attributes::new(Operation::Update, t, ns, name, user);
    if !subresource.is_empty() {
        attrs = attrs.on_subresource(subresource, (t.group, t.version, t.kind));
    }
    let pending = admission::prepare(state, attrs);
    let result = state.store.update(&gr(t), ns, name, |cur| {
        let want_rv = new["metadata"]["resourceVersion"].as_str().unwrap_or("");
        if !want_rv.is_empty() && Some(want_rv) != cur["metadata"]["resourceVersion"].as_str() {
            return Err(ApiError::stale(t.group, t.plural, name));
        }
        let mut merged = new.clone();
        for k in ["uid", "creationTimestamp", "namespace", "generation", "deletionTimestamp"] {
            if let Some(v) = cur["metadata"].get(k) {
                merged["metadata"][k] = v.clone();
            } else if let Some(m) = merged["metadata"].as_object_mut() {
                m.remove(k);
            }
        }
        let mut errors = Vec::new();
        match t.kind {
            "Pod" => {
                merged["status"] = cur["status"].clone();
                if subresource == "ephemeralcontainers" {
                    let mut spec = cur["spec"].clone();
                    spec["ephemeralContainers"] = merged["spec"]["ephemeralContainers"].clone();
                    if spec["ephemeralContainers"].is_null() {
                        spec.as_object_mut().map(|m| m.remove("ephemeralContainers"));
                    }
                    merged["spec"] = spec;
                    merged["metadata"] = cur["metadata"].clone();
                    crate::ephemeral::validate_update(cur, &mut merged, &mut errors);
                } else {
                    merged["spec"]["ephemeralContainers"] = cur["spec"]["ephemeralContainers"].clone();
                    if merged["spec"]["ephemeralContainers"].is_null() {
                        merged["spec"].as_object_mut().map(|m| m.remove("ephemeralContainers"));
                    }
                    // Defaults are applied to the incoming spec before comparing.
                    if let Some(cs) = merged["spec"]["containers"].as_array_mut() {
                        for c in cs {
                            default_container(c);
                        }
                    }
                    for (k, v) in cur["spec"].as_object().into_iter().flatten() {
                        if merged["spec"].get(k).is_none() {
                            merged["spec"][k] = v.clone();
                        }
                    }
                    let strip_images = |s: &Value| {
                        let mut s = s.clone();
                        for c in s["containers"].as_array_mut().into_iter().flatten() {
                            c["image"] = Value::Null;
                        }
                        s
                    };
                    if strip_images(&merged["spec"]) != strip_images(&cur["spec"]) {
                        errors.push(FieldError::forbidden(
                            "spec",
                            "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
                        ));
                    }
                }
                if merged["spec"] != cur["spec"] {
                    let g = cur["metadata"]["generation"].as_i64().unwrap_or(1);
                    merged["metadata"]["generation"] = json!(g + 1);
                }
            }
            "Namespace" => {
                merged["spec"] = cur["spec"].clone();
                merged["status"] = cur["status"].clone();
            }
            "RoleBinding" | "ClusterRoleBinding" => {
                if merged["roleRef"] != cur["roleRef"] {
                    errors.push(FieldError::invalid(
                        "roleRef",
                        &roleref_go(&merged["roleRef"]),
                        "cannot change roleRef",
                    ));
                }
                rbac_validate(t, &merged, &mut errors);
            }
            "ValidatingAdmissionPolicy" | "ValidatingAdmissionPolicyBinding" => {
                admission::objects::default(t.kind, &mut merged);
                admission::objects::validate(t.kind, &merged, &mut errors);
            }
            _ => rbac_validate(t, &merged, &mut errors),
        }
        if !errors.is_empty() {
            return Err(ApiError::invalid(t.group, t.kind, name, &errors));
        }
        pending.validate(Some(&merged), Some(cur))?;
        Ok(merged)
    });
    let updated = result.ok_or_else(|| ApiError::not_found(t.group, t.plural, name))??;
    if t.kind == "Pod" && subresource == "ephemeralcontainers" {
        state.pod_ephemeral_changed(&updated);
    }
    Ok(updated)
}

fn roleref_go(r: &Value) -> String {
    format!(
        "rbac.RoleRef{{APIGroup:{:?}, Kind:{:?}, Name:{:?}}}",
        r["apiGroup"].as_str().unwrap_or(""),
        r["kind"].as_str().unwrap_or(""),
        r["name"].as_str().unwrap_or("")
    )
}

/// Deletes an object on behalf of `user`, after admission sees it: a
/// client's DELETE (garbage collection and namespace deletion are the
/// controllers' own and use [`delete`]).
pub fn delete_as(
    state: &State,
    user: &User,
    t: &ResourceType,
    ns: &str,
    name: &str,
) -> Result<Value, ApiError> {
    let pending = admission::prepare(state, Attributes::new(Operation::Delete, t, ns, name, user));
    let obj = state
        .store
        .delete_checked(&gr(t), ns, name, |cur| pending.validate(None, Some(cur)))
        .ok_or_else(|| ApiError::not_found(t.group, t.plural, name))??;
    after_delete(state, t, &obj);
    Ok(obj)
}

/// Deletes an object, stops its processes, and garbage-collects dependents
/// (background propagation).
pub fn delete(state: &State, t: &ResourceType, ns: &str, name: &str) -> Result<Value, ApiError> {
    let obj = state
        .store
        .delete(&gr(t), ns, name)
        .ok_or_else(|| ApiError::not_found(t.group, t.plural, name))?;
    after_delete(state, t, &obj);
    Ok(obj)
}

fn after_delete(state: &State, t: &ResourceType, obj: &Value) {
    let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
    if t.kind == "Pod" {
        state.pod_deleted(obj);
    }
    if t.kind == "Namespace" {
        for (g, n, item) in state.store.keys_in(&name) {
            if n == name
                && let Some(dt) = crate::resources::TYPES.iter().find(|x| gr(x) == g)
            {
                let _ = delete(state, dt, &n, &item);
            }
        }
    }
    let uid = obj["metadata"]["uid"].as_str().unwrap_or("").to_string();
    collect_garbage(state, &uid);
}

/// Deletes every object whose ownerReferences name `uid` and that has no
/// other live owner.
pub fn collect_garbage(state: &State, uid: &str) {
    if uid.is_empty() {
        return;
    }
    for (g, ns, name) in state.store.orphans_of(uid) {
        if let Some(dt) = crate::resources::TYPES.iter().find(|x| gr(x) == g) {
            let _ = delete(state, dt, &ns, &name);
        }
    }
}
