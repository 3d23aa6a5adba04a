//! Validation of `pods/ephemeralcontainers` updates (upstream's
//! `validateEphemeralContainers` and `ValidatePodEphemeralContainersUpdate`):
//! existing entries are immutable, new ones must be well-formed.

use serde_json::Value;

use crate::status::FieldError;

const FORBIDDEN_FIELDS: &[&str] = &[
    "ports",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
    "resizePolicy",
    "restartPolicy",
];

/// Checks `new` (the full pod after the change) against `old`.
pub fn validate_update(old: &Value, new: &mut Value, errors: &mut Vec<FieldError>) {
    if let Some(list) = new["spec"]["ephemeralContainers"].as_array_mut() {
        for c in list {
            crate::defaults::default_container(c);
        }
    }
    let old_list = old["spec"]["ephemeralContainers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let new_list = new["spec"]["ephemeralContainers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for o in &old_list {
        let name = o["name"].as_str().unwrap_or("");
        match new_list.iter().find(|n| n["name"] == o["name"]) {
            None => errors.push(FieldError::forbidden(
                "spec.ephemeralContainers",
                &format!("existing ephemeral containers {name:?} may not be removed\n"),
            )),
            Some(n) if n != o => errors.push(FieldError::forbidden(
                "spec.ephemeralContainers",
                &format!("existing ephemeral containers {name:?} may not be changed\n"),
            )),
            _ => {}
        }
    }
    let mut names: Vec<String> = ["containers", "initContainers"]
        .iter()
        .flat_map(|f| old["spec"][f].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect();
    let targets = names.clone();
    for (i, c) in new_list.iter().enumerate() {
        let field = format!("spec.ephemeralContainers[{i}]");
        let name = c["name"].as_str().unwrap_or("");
        if name.is_empty() {
            errors.push(FieldError::required(&format!("{field}.name"), ""));
        } else if !crate::validation::is_dns_label(name) {
            errors.push(FieldError::invalid(
                &format!("{field}.name"),
                &format!("{name:?}"),
                crate::validation::DNS1123_LABEL_MSG,
            ));
        } else if names.iter().any(|n| n == name) {
            errors.push(FieldError::duplicate(&format!("{field}.name"), name));
        } else {
            names.push(name.to_string());
        }
        if old_list.iter().any(|o| o["name"] == c["name"]) {
            continue;
        }
        if c["image"].as_str().unwrap_or("").is_empty() {
            errors.push(FieldError::required(&format!("{field}.image"), ""));
        }
        if let Some(t) = c["targetContainerName"].as_str()
            && !targets.iter().any(|n| n == t)
        {
            errors.push(FieldError::not_found(
                &format!("{field}.targetContainerName"),
                t,
            ));
        }
        for f in FORBIDDEN_FIELDS {
            if c.get(*f).is_some_and(|v| !v.is_null()) {
                errors.push(FieldError::forbidden(
                    &format!("{field}.{f}"),
                    "cannot be set for an Ephemeral Container",
                ));
            }
        }
        if c["resources"].as_object().is_some_and(|r| {
            r.values()
                .any(|v| v.as_object().is_some_and(|m| !m.is_empty()))
        }) {
            errors.push(FieldError::forbidden(
                &format!("{field}.resources"),
                "cannot be set for an Ephemeral Container",
            ));
        }
    }
}
