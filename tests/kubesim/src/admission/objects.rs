//! Writes of ValidatingAdmissionPolicy and ValidatingAdmissionPolicyBinding
//! objects: upstream's defaults, and a 422 naming the field for what the
//! API server would refuse (enums, required fields, CEL that does not
//! compile), so a broken policy fails when it is applied, not when it is
//! first evaluated.

use serde_json::{Value, json};

use super::expressions::compile;
use crate::status::FieldError;

const OPERATIONS: &[&str] = &["*", "CREATE", "UPDATE", "DELETE", "CONNECT"];
const REASONS: &[&str] = &[
    "Unauthorized",
    "Forbidden",
    "Invalid",
    "RequestEntityTooLarge",
];

fn not_supported(field: &str, value: &str, allowed: &[&str]) -> FieldError {
    FieldError {
        cause: "FieldValueNotSupported",
        field: field.into(),
        message: format!(
            "Unsupported value: {value:?}: supported values: {}",
            allowed
                .iter()
                .map(|a| format!("{a:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Upstream's defaults for a `MatchResources` object.
fn default_match(m: &mut Value) {
    if !m.is_object() {
        return;
    }
    for key in ["namespaceSelector", "objectSelector"] {
        if m[key].is_null() {
            m[key] = json!({});
        }
    }
    if m["matchPolicy"].is_null() {
        m["matchPolicy"] = json!("Equivalent");
    }
    for list in ["resourceRules", "excludeResourceRules"] {
        for r in m[list].as_array_mut().into_iter().flatten() {
            if r["scope"].is_null() {
                r["scope"] = json!("*");
            }
        }
    }
}

/// Applies the defaults the API server stores.
pub fn default(kind: &str, obj: &mut Value) {
    match kind {
        "ValidatingAdmissionPolicy" => {
            if obj["spec"]["failurePolicy"].is_null() {
                obj["spec"]["failurePolicy"] = json!("Fail");
            }
            default_match(&mut obj["spec"]["matchConstraints"]);
        }
        "ValidatingAdmissionPolicyBinding" => default_match(&mut obj["spec"]["matchResources"]),
        _ => {}
    }
}

fn expression(field: &str, source: &str, errors: &mut Vec<FieldError>) {
    if source.trim().is_empty() {
        errors.push(FieldError::required(field, ""));
    } else if let Err(e) = compile(source) {
        errors.push(FieldError::invalid(
            field,
            &format!("{source:?}"),
            &format!("compilation failed: {e}"),
        ));
    }
}

fn rules(m: &Value, path: &str, errors: &mut Vec<FieldError>) {
    for list in ["resourceRules", "excludeResourceRules"] {
        for (i, r) in m[list].as_array().into_iter().flatten().enumerate() {
            for (j, op) in r["operations"].as_array().into_iter().flatten().enumerate() {
                let op = op.as_str().unwrap_or("");
                if !OPERATIONS.contains(&op) {
                    let field = format!("{path}.{list}[{i}].operations[{j}]");
                    errors.push(not_supported(&field, op, OPERATIONS));
                }
            }
        }
    }
}

fn policy(obj: &Value, errors: &mut Vec<FieldError>) {
    let spec = &obj["spec"];
    let failure = spec["failurePolicy"].as_str().unwrap_or("Fail");
    if !["Fail", "Ignore"].contains(&failure) {
        errors.push(not_supported(
            "spec.failurePolicy",
            failure,
            &["Fail", "Ignore"],
        ));
    }
    let constraints = &spec["matchConstraints"];
    if !constraints.is_object() {
        errors.push(FieldError::required("spec.matchConstraints", ""));
    } else if constraints["resourceRules"]
        .as_array()
        .is_none_or(|r| r.is_empty())
    {
        errors.push(FieldError::required(
            "spec.matchConstraints.resourceRules",
            "",
        ));
    }
    rules(constraints, "spec.matchConstraints", errors);
    let validations = spec["validations"].as_array().map_or(0, Vec::len);
    let audits = spec["auditAnnotations"].as_array().map_or(0, Vec::len);
    if validations + audits == 0 {
        errors.push(FieldError::required(
            "spec.validations",
            "validations or auditAnnotations must contain at least one item",
        ));
    }
    for (i, v) in spec["validations"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("spec.validations[{i}]");
        expression(
            &format!("{at}.expression"),
            v["expression"].as_str().unwrap_or(""),
            errors,
        );
        if let Some(m) = v["messageExpression"].as_str() {
            expression(&format!("{at}.messageExpression"), m, errors);
        }
        if let Some(r) = v["reason"].as_str()
            && !REASONS.contains(&r)
        {
            errors.push(not_supported(&format!("{at}.reason"), r, REASONS));
        }
    }
    let mut names = Vec::new();
    for (list, path) in [
        ("matchConditions", "spec.matchConditions"),
        ("variables", "spec.variables"),
    ] {
        for (i, c) in spec[list].as_array().into_iter().flatten().enumerate() {
            let name = c["name"].as_str().unwrap_or("");
            if name.is_empty() {
                errors.push(FieldError::required(&format!("{path}[{i}].name"), ""));
            } else if names.contains(&(list, name)) {
                errors.push(FieldError::duplicate(&format!("{path}[{i}].name"), name));
            }
            names.push((list, name));
            expression(
                &format!("{path}[{i}].expression"),
                c["expression"].as_str().unwrap_or(""),
                errors,
            );
        }
    }
}

fn binding(obj: &Value, errors: &mut Vec<FieldError>) {
    let spec = &obj["spec"];
    if spec["policyName"].as_str().unwrap_or("").is_empty() {
        errors.push(FieldError::required("spec.policyName", ""));
    }
    let actions: Vec<&str> = spec["validationActions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if actions.is_empty() {
        errors.push(FieldError::required("spec.validationActions", ""));
    }
    for (i, a) in actions.iter().enumerate() {
        let field = format!("spec.validationActions[{i}]");
        if !["Deny", "Warn", "Audit"].contains(a) {
            errors.push(not_supported(&field, a, &["Audit", "Deny", "Warn"]));
        } else if actions[..i].contains(a) {
            errors.push(FieldError::duplicate(&field, a));
        }
    }
    if actions.contains(&"Deny") && actions.contains(&"Warn") {
        errors.push(FieldError::invalid(
            "spec.validationActions",
            &format!("{actions:?}"),
            "must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)",
        ));
    }
    let param_ref = &spec["paramRef"];
    if param_ref.is_object() {
        let action = param_ref["parameterNotFoundAction"].as_str().unwrap_or("");
        if action.is_empty() {
            errors.push(FieldError::required(
                "spec.paramRef.parameterNotFoundAction",
                "",
            ));
        } else if !["Allow", "Deny"].contains(&action) {
            errors.push(not_supported(
                "spec.paramRef.parameterNotFoundAction",
                action,
                &["Allow", "Deny"],
            ));
        }
    }
    rules(&spec["matchResources"], "spec.matchResources", errors);
}

/// The field errors of a policy or binding (nothing for other kinds).
pub fn validate(kind: &str, obj: &Value, errors: &mut Vec<FieldError>) {
    match kind {
        "ValidatingAdmissionPolicy" => policy(obj, errors),
        "ValidatingAdmissionPolicyBinding" => binding(obj, errors),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of(kind: &str, obj: Value) -> Vec<String> {
        let mut errors = Vec::new();
        validate(kind, &obj, &mut errors);
        errors
            .into_iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect()
    }

    #[test]
    fn a_policy_needs_rules_validations_and_compiling_cel() {
        let errors = errors_of(
            "ValidatingAdmissionPolicy",
            json!({"spec": {"failurePolicy": "Sometimes", "matchConstraints": {},
                "validations": [{"expression": "object.(", "reason": "Teapot"}]}}),
        );
        assert_eq!(errors.len(), 4, "{errors:#?}");
        assert!(errors[0].starts_with("spec.failurePolicy: Unsupported value: \"Sometimes\""));
        assert_eq!(
            errors[1],
            "spec.matchConstraints.resourceRules: Required value"
        );
        assert!(
            errors[2].starts_with(
                "spec.validations[0].expression: Invalid value: \"object.(\": compilation failed: ERROR: <input>:1:"
            ),
            "{}",
            errors[2]
        );
        assert!(errors[3].starts_with("spec.validations[0].reason: Unsupported value: \"Teapot\""));
    }

    #[test]
    fn a_binding_needs_a_policy_and_known_actions() {
        let errors = errors_of(
            "ValidatingAdmissionPolicyBinding",
            json!({"spec": {"validationActions": ["Deny", "Warn", "Deny"],
                            "paramRef": {"name": "p"}}}),
        );
        assert_eq!(
            errors,
            vec![
                "spec.policyName: Required value".to_string(),
                "spec.validationActions[2]: Duplicate value: \"Deny\"".into(),
                "spec.validationActions: Invalid value: [\"Deny\", \"Warn\", \"Deny\"]: must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)".into(),
                "spec.paramRef.parameterNotFoundAction: Required value".into(),
            ]
        );
    }

    #[test]
    fn defaults_are_upstreams() {
        let mut p =
            json!({"spec": {"matchConstraints": {"resourceRules": [{"operations": ["*"]}]}}});
        default("ValidatingAdmissionPolicy", &mut p);
        assert_eq!(p["spec"]["failurePolicy"], "Fail");
        assert_eq!(p["spec"]["matchConstraints"]["matchPolicy"], "Equivalent");
        assert_eq!(
            p["spec"]["matchConstraints"]["namespaceSelector"],
            json!({})
        );
        assert_eq!(
            p["spec"]["matchConstraints"]["resourceRules"][0]["scope"],
            "*"
        );
    }
}
