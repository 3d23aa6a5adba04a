//! Object semantics: validation and defaulting per kind, metadata bookkeeping,
//! create/update/patch/delete, owner garbage collection and RBAC escalation
//! prevention.
//!
//! Handlers in [`crate::server`] call these after authentication and
//! authorization; everything here works on JSON values checked against the
//! k8s-openapi types so the wire shape is upstream's.

use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use serde_json::{Value, json};

use crate::rbac::{self, RbacSource, Rule, User};
use crate::resources::{RBAC_GROUP, RequestInfo, ResourceType};
use crate::server::State;
use crate::status::{ApiError, FieldError};

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
        _ => Ok(v),
    }
}

const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
pub(crate) const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

pub(crate) fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

fn validate_name(t: &ResourceType, name: &str) -> Option<FieldError> {
    if name.is_empty() {
        return Some(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        ));
    }
    let ok = match t.kind {
        "Namespace" => is_dns_label(name),
        "Pod" | "ServiceAccount" => is_dns_subdomain(name),
        _ => !name.contains('/') && !name.contains('%') && name != "." && name != "..",
    };
    if ok {
        return None;
    }
    let msg = match t.kind {
        "Namespace" => DNS1123_LABEL_MSG,
        "Pod" | "ServiceAccount" => DNS1123_SUBDOMAIN_MSG,
        _ => "may not contain '/' or '%'",
    };
    Some(FieldError::invalid(
        "metadata.name",
        &format!("{name:?}"),
        msg,
    ))
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .take(5)
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

fn pod_validate(pod: &Value, errors: &mut Vec<FieldError>) {
    let containers = pod["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if containers.is_empty() {
        errors.push(FieldError::required("spec.containers", ""));
    }
    let mut names = std::collections::BTreeSet::new();
    for (field, list) in [
        (
            "spec.initContainers",
            pod["spec"]["initContainers"].as_array(),
        ),
        ("spec.containers", Some(&containers)),
    ] {
        for (i, c) in list.into_iter().flatten().enumerate() {
            let name = c["name"].as_str().unwrap_or("");
            if name.is_empty() {
                errors.push(FieldError::required(&format!("{field}[{i}].name"), ""));
            } else if !is_dns_label(name) {
                errors.push(FieldError::invalid(
                    &format!("{field}[{i}].name"),
                    &format!("{name:?}"),
                    DNS1123_LABEL_MSG,
                ));
            } else if !names.insert(name.to_string()) {
                errors.push(FieldError::duplicate(&format!("{field}[{i}].name"), name));
            }
            if c["image"].as_str().unwrap_or("").is_empty() {
                errors.push(FieldError::required(&format!("{field}[{i}].image"), ""));
            }
        }
    }
}

fn rbac_validate(t: &ResourceType, obj: &Value, errors: &mut Vec<FieldError>) {
    if t.kind == "Role" || t.kind == "ClusterRole" {
        for (i, r) in obj["rules"].as_array().into_iter().flatten().enumerate() {
            if r["verbs"].as_array().is_none_or(|v| v.is_empty()) {
                errors.push(FieldError::required(
                    &format!("rules[{i}].verbs"),
                    "verbs must contain at least one value",
                ));
            }
            let has_nr = r["nonResourceURLs"]
                .as_array()
                .is_some_and(|v| !v.is_empty());
            if has_nr && t.kind == "Role" {
                errors.push(FieldError::invalid(
                    &format!("rules[{i}].nonResourceURLs"),
                    &format!("{}", r["nonResourceURLs"]),
                    "namespaced rules cannot apply to non-resource URLs",
                ));
            }
            if !has_nr && r["resources"].as_array().is_none_or(|v| v.is_empty()) {
                errors.push(FieldError::required(
                    &format!("rules[{i}].resources"),
                    "resource rules must supply at least one resource",
                ));
            }
        }
    }
    if t.kind == "RoleBinding" || t.kind == "ClusterRoleBinding" {
        let kind = obj["roleRef"]["kind"].as_str().unwrap_or("");
        let allowed: &[&str] = if t.kind == "RoleBinding" {
            &["Role", "ClusterRole"]
        } else {
            &["ClusterRole"]
        };
        if !allowed.contains(&kind) {
            errors.push(FieldError {
                cause: "FieldValueNotSupported",
                field: "roleRef.kind".into(),
                message: format!(
                    "Unsupported value: {kind:?}: supported values: {}",
                    allowed
                        .iter()
                        .map(|k| format!("{k:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        if obj["roleRef"]["name"].as_str().unwrap_or("").is_empty() {
            errors.push(FieldError::required("roleRef.name", ""));
        }
    }
}

fn default_pod(state: &State, pod: &mut Value) {
    let spec = &mut pod["spec"];
    if spec["serviceAccountName"].as_str().unwrap_or("").is_empty() {
        spec["serviceAccountName"] = json!("default");
    }
    spec["serviceAccount"] = spec["serviceAccountName"].clone();
    for (k, v) in [
        ("nodeName", json!(crate::server::NODE_NAME)),
        ("restartPolicy", json!("Always")),
        ("dnsPolicy", json!("ClusterFirst")),
        ("schedulerName", json!("default-scheduler")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("securityContext", json!({})),
        ("enableServiceLinks", json!(true)),
        ("priority", json!(0)),
        ("preemptionPolicy", json!("PreemptLowerPriority")),
    ] {
        if spec.get(k).is_none_or(Value::is_null) {
            spec[k] = v;
        }
    }
    if let Some(cs) = spec["containers"].as_array_mut() {
        for c in cs {
            default_container(c);
        }
    }
    let now = state.clock.timestamp();
    pod["status"] = json!({
        "phase": "Pending",
        "qosClass": "BestEffort",
        "conditions": [{"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now}],
    });
}

/// The ServiceAccount admission plugin: unless the pod or its account opts
/// out, a projected `kube-api-access-*` volume (token, CA, namespace) is
/// added and mounted into every container and init container.
fn mount_service_account_token(state: &State, ns: &str, sa: &str, pod: &mut Value) {
    let sa_auto = state
        .store
        .get("serviceaccounts", ns, sa)
        .and_then(|s| s["automountServiceAccountToken"].as_bool());
    let auto = pod["spec"]["automountServiceAccountToken"]
        .as_bool()
        .or(sa_auto)
        .unwrap_or(true);
    let mount = crate::runtime::SA_MOUNT;
    if !auto {
        return;
    }
    let name = format!("kube-api-access-{}", random_suffix());
    let volume = json!({"name": name, "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}});
    let spec = &mut pod["spec"];
    let mut volumes = spec["volumes"].as_array().cloned().unwrap_or_default();
    volumes.push(volume);
    spec["volumes"] = Value::Array(volumes);
    for field in ["containers", "initContainers"] {
        for c in spec[field].as_array_mut().into_iter().flatten() {
            let mut mounts = c["volumeMounts"].as_array().cloned().unwrap_or_default();
            if mounts.iter().any(|m| m["mountPath"] == mount) {
                continue;
            }
            mounts.push(json!({"name": name, "readOnly": true, "mountPath": mount}));
            c["volumeMounts"] = Value::Array(mounts);
        }
    }
}

/// Container defaults upstream applies.
pub fn default_container(c: &mut Value) {
    let image = c["image"].as_str().unwrap_or("").to_string();
    let latest =
        !image.rsplit('/').next().unwrap_or("").contains(':') || image.ends_with(":latest");
    for (k, v) in [
        ("terminationMessagePath", json!("/dev/termination-log")),
        ("terminationMessagePolicy", json!("File")),
        (
            "imagePullPolicy",
            json!(if latest { "Always" } else { "IfNotPresent" }),
        ),
        ("resources", json!({})),
    ] {
        if c.get(k).is_none_or(Value::is_null) {
            c[k] = v;
        }
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
            _ => rbac_validate(t, &merged, &mut errors),
        }
        if !errors.is_empty() {
            return Err(ApiError::invalid(t.group, t.kind, name, &errors));
        }
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
        for ((g, n, item), _) in state.store.all() {
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
    let all = state.store.all();
    let live: std::collections::BTreeSet<String> = all
        .iter()
        .filter_map(|(_, v)| v["metadata"]["uid"].as_str().map(str::to_string))
        .collect();
    for ((g, ns, name), v) in all {
        let owners: Vec<String> = v["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| o["uid"].as_str().map(str::to_string))
            .collect();
        if owners.iter().any(|o| o == uid)
            && !owners.iter().any(|o| live.contains(o))
            && let Some(dt) = crate::resources::TYPES.iter().find(|x| gr(x) == g)
        {
            let _ = delete(state, dt, &ns, &name);
        }
    }
}

/// Escalation prevention for RBAC writes (§5 of the API note).
fn check_escalation(
    state: &State,
    user: &User,
    t: &ResourceType,
    ns: &str,
    url_name: &str,
    obj: &Value,
) -> Result<(), ApiError> {
    if user.is_master() {
        return Ok(());
    }
    let obj_name = obj["metadata"]["name"].as_str().unwrap_or("");
    let (owner_rules, errors) = rbac::rules_for(state, user, ns);
    let owner: Vec<Rule> = owner_rules.into_iter().map(|g| g.rule).collect();
    match t.kind {
        "Role" | "ClusterRole" => {
            let escalate = RequestInfo {
                is_resource: true,
                verb: "escalate".into(),
                group: RBAC_GROUP.into(),
                version: "v1".into(),
                resource: t.plural.into(),
                name: url_name.into(),
                namespace: ns.into(),
                ..Default::default()
            };
            if rbac::authorize(state, user, &escalate).allowed {
                return Ok(());
            }
            let servant = Rule::all_from_role(obj);
            let missing = rbac::uncovered(&owner, &servant);
            if missing.is_empty() {
                return Ok(());
            }
            Err(rbac::escalation_forbidden(
                t.plural, obj_name, user, &missing, &errors,
            ))
        }
        "RoleBinding" | "ClusterRoleBinding" => {
            let kind = obj["roleRef"]["kind"].as_str().unwrap_or("");
            let role_name = obj["roleRef"]["name"].as_str().unwrap_or("");
            let bind = RequestInfo {
                is_resource: true,
                verb: "bind".into(),
                group: obj["roleRef"]["apiGroup"]
                    .as_str()
                    .unwrap_or(RBAC_GROUP)
                    .into(),
                version: "v1".into(),
                resource: if kind == "Role" {
                    "roles"
                } else {
                    "clusterroles"
                }
                .into(),
                name: role_name.into(),
                namespace: ns.into(),
                ..Default::default()
            };
            if rbac::authorize(state, user, &bind).allowed {
                return Ok(());
            }
            let role = if kind == "Role" {
                state.role(ns, role_name)
            } else {
                state.cluster_role(role_name)
            };
            let Some(role) = role else {
                return Err(ApiError::not_found(
                    RBAC_GROUP,
                    if kind == "Role" {
                        "roles"
                    } else {
                        "clusterroles"
                    },
                    role_name,
                ));
            };
            let missing = rbac::uncovered(&owner, &Rule::all_from_role(&role));
            if missing.is_empty() {
                return Ok(());
            }
            Err(rbac::escalation_forbidden(
                t.plural, obj_name, user, &missing, &errors,
            ))
        }
        _ => Ok(()),
    }
}
