//! Object validation shared by create, update and the ephemeral-container
//! rules: DNS-1123 names, pod containers, RBAC rules and role references,
//! with upstream's field paths and messages.

use serde_json::Value;

use crate::resources::ResourceType;
use crate::status::FieldError;

/// Upstream's message for an invalid DNS-1123 subdomain.
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
/// Upstream's message for an invalid DNS-1123 label.
pub const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

/// Whether `s` is a DNS-1123 label.
pub fn is_dns_label(s: &str) -> bool {
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

/// The `metadata.name` rule of each kind.
pub fn validate_name(t: &ResourceType, name: &str) -> Option<FieldError> {
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

/// Containers: present, named (unique DNS labels), with an image.
pub fn pod_validate(pod: &Value, errors: &mut Vec<FieldError>) {
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

/// Role rules (verbs, resources or non-resource URLs) and binding roleRefs.
pub fn rbac_validate(t: &ResourceType, obj: &Value, errors: &mut Vec<FieldError>) {
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
