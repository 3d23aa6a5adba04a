//! One ValidatingAdmissionPolicy with its bindings against one request, as
//! upstream's dispatcher and validator do it: the policy's
//! `matchConstraints`, each binding's `matchResources`, the
//! `matchConditions`, the `variables`, then every validation, with the
//! `failurePolicy` deciding configuration and evaluation errors.

use cel::Value as Cel;
use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding, ValidatingAdmissionPolicySpec,
    Validation,
};
use serde_json::Value;

use super::expressions::{Activation, compile, to_json};
use super::matching::{self, Labels};
use super::{Attributes, Operation};

/// Longest `messageExpression` result used (upstream's
/// `MaxEvaluatedMessageExpressionSizeBytes`).
const MAX_MESSAGE_BYTES: usize = 5 * 1024;

/// A policy and the bindings that name it.
pub struct Hook {
    /// The policy.
    pub policy: ValidatingAdmissionPolicy,
    /// Its bindings, by name.
    pub bindings: Vec<ValidatingAdmissionPolicyBinding>,
}

/// One refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// Policy name.
    pub policy: String,
    /// Binding name (absent for a policy-level configuration error).
    pub binding: Option<String>,
    /// What the validation (or error) says.
    pub message: String,
    /// Status reason (`Invalid` when the validation names none).
    pub reason: String,
}

/// What one request looks like to the policies.
pub struct Input<'a> {
    /// The request's attributes.
    pub attrs: &'a Attributes,
    /// The `request` variable (an AdmissionRequest).
    pub request: &'a Value,
    /// The namespace object of a namespaced request.
    pub namespace: Option<&'a Value>,
    /// New object (`null` for DELETE).
    pub object: Option<&'a Value>,
    /// Existing object (`null` for CREATE and CONNECT).
    pub old_object: Option<&'a Value>,
}

impl Input<'_> {
    /// The labels the namespace selector sees: a Namespace being created or
    /// updated is matched on its own labels.
    fn namespace_labels(&self) -> Labels {
        let a = self.attrs;
        if a.resource == "namespaces"
            && a.subresource.is_empty()
            && matches!(a.operation, Operation::Create | Operation::Update)
        {
            return matching::labels_of(self.object);
        }
        matching::labels_of(self.namespace)
    }
}

/// A configuration error (a selector that does not parse, a parameter
/// that cannot be found) as the `failurePolicy` decides it.
fn config_error(failure: &str, message: String, binding: Option<&str>) -> Option<Denial> {
    let message = match failure {
        "Ignore" => return None,
        "Fail" if binding.is_some() => format!("failed to configure binding: {message}"),
        "Fail" => format!("failed to configure policy: {message}"),
        other => format!("unrecognized failure policy: '{other}'"),
    };
    Some(Denial {
        binding: binding.map(str::to_string),
        ..denial(message, "Invalid")
    })
}

/// Every refusal `hook` gives the request, in binding order.
pub fn evaluate(hook: &Hook, input: &Input<'_>) -> Vec<Denial> {
    let spec = hook.policy.spec.clone().unwrap_or_default();
    let failure = spec.failure_policy.clone().unwrap_or_else(|| "Fail".into());
    let labels = input.namespace_labels();
    let objects = [input.object, input.old_object];
    let constraints = spec.match_constraints.clone().unwrap_or_default();
    let mut denials = Vec::new();
    match matching::matches(&constraints, input.attrs, &labels, objects, true) {
        Err(e) => denials.extend(config_error(&failure, e, None)),
        Ok(false) => {}
        Ok(true) => {
            for binding in &hook.bindings {
                denials.extend(evaluate_binding(&spec, &failure, binding, &labels, input));
            }
        }
    }
    let name = hook.policy.metadata.name.clone().unwrap_or_default();
    for d in &mut denials {
        d.policy = name.clone();
    }
    denials
}

fn evaluate_binding(
    spec: &ValidatingAdmissionPolicySpec,
    failure: &str,
    binding: &ValidatingAdmissionPolicyBinding,
    labels: &Labels,
    input: &Input<'_>,
) -> Vec<Denial> {
    let name = binding.metadata.name.clone().unwrap_or_default();
    let bspec = binding.spec.clone();
    let resources = bspec.match_resources.clone().unwrap_or_default();
    let objects = [input.object, input.old_object];
    match matching::matches(&resources, input.attrs, labels, objects, false) {
        Err(e) => return config_error(failure, e, Some(&name)).into_iter().collect(),
        Ok(false) => return Vec::new(),
        Ok(true) => {}
    }
    if let (Some(kind), Some(_)) = (&spec.param_kind, &bspec.param_ref) {
        // kubesim serves no parameter resources (see the README).
        let api_version = kind.api_version.clone().unwrap_or_default();
        let gv = if api_version.contains('/') {
            api_version
        } else {
            format!("/{api_version}")
        };
        let kind = kind.kind.clone().unwrap_or_default();
        let message = format!("paramKind kind `{gv}, Kind={kind}` not known");
        return config_error(failure, message, Some(&name))
            .into_iter()
            .collect();
    }
    if !bspec.validation_actions.iter().any(|a| a == "Deny") {
        // Warn and Audit record a failure without refusing (kubesim sends
        // no warnings and writes no audit annotations for them).
        return Vec::new();
    }
    validate(spec, failure, input)
        .into_iter()
        .map(|d| Denial {
            binding: Some(name.clone()),
            ..d
        })
        .collect()
}

/// One failed or erroring expression, before the policy's name is known.
fn denial(message: String, reason: &str) -> Denial {
    Denial {
        policy: String::new(),
        binding: None,
        message,
        reason: reason.into(),
    }
}

/// Evaluates `source`, reading a failed variable's error as upstream's lazy
/// composition reports it.
fn run(activation: &Activation, source: &str, failed: &[(String, String)]) -> Result<Cel, String> {
    let program = compile(source).map_err(|e| format!("compilation error: {e}"))?;
    activation.eval(&program).map_err(|e| {
        let detail = failed
            .iter()
            .find(|(name, _)| {
                e == format!("no such key: {name}") && source.contains(&format!("variables.{name}"))
            })
            .map(|(name, err)| format!("composited variable {name:?} fails to evaluate: {err}"))
            .unwrap_or(e);
        format!("expression '{source}' resulted in error: {detail}")
    })
}

fn as_bool(v: Cel, source: &str) -> Result<bool, String> {
    match v {
        Cel::Bool(b) => Ok(b),
        other => Err(format!(
            "expression '{source}' resulted in error: expected a bool, got {}",
            to_json(&other)
        )),
    }
}

/// The validator: activation, `matchConditions`, `variables`, then each
/// validation; returns the denied decisions in validation order.
fn validate(spec: &ValidatingAdmissionPolicySpec, failure: &str, input: &Input<'_>) -> Vec<Denial> {
    let fail = failure != "Ignore";
    let mut activation = Activation::default();
    activation.bind("object", input.object.unwrap_or(&Value::Null));
    activation.bind("oldObject", input.old_object.unwrap_or(&Value::Null));
    activation.bind("request", input.request);
    activation.bind("params", &Value::Null);
    activation.bind("namespaceObject", input.namespace.unwrap_or(&Value::Null));
    activation.bind("variables", &Value::Object(Default::default()));
    let mut errors = Vec::new();
    for c in spec.match_conditions.iter().flatten() {
        match run(&activation, &c.expression, &[]).and_then(|v| as_bool(v, &c.expression)) {
            Ok(false) => return Vec::new(),
            Ok(true) => {}
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        if !fail {
            return Vec::new();
        }
        let message = if errors.len() == 1 {
            errors.remove(0)
        } else {
            format!("[{}]", errors.join(", "))
        };
        return vec![denial(message, "Invalid")];
    }
    let mut values = serde_json::Map::new();
    let mut failed = Vec::new();
    for v in spec.variables.iter().flatten() {
        match compile(&v.expression).and_then(|p| activation.eval(&p)) {
            Ok(value) => {
                values.insert(v.name.clone(), to_json(&value));
            }
            Err(e) => failed.push((v.name.clone(), e)),
        }
        activation.bind("variables", &Value::Object(values.clone()));
    }
    spec.validations
        .iter()
        .flatten()
        .filter_map(|v| check(&activation, v, &failed, fail))
        .collect()
}

fn check(
    activation: &Activation,
    v: &Validation,
    failed: &[(String, String)],
    fail: bool,
) -> Option<Denial> {
    match run(activation, &v.expression, failed).and_then(|r| as_bool(r, &v.expression)) {
        Ok(true) => None,
        Err(e) => fail.then(|| denial(e, "Invalid")),
        Ok(false) => {
            let from_expression = v
                .message_expression
                .as_deref()
                .and_then(|m| run(activation, m, failed).ok())
                .and_then(|r| match r {
                    Cel::String(s) => Some(s.trim().to_string()),
                    _ => None,
                })
                .filter(|m| !m.is_empty() && !m.contains('\n') && m.len() <= MAX_MESSAGE_BYTES);
            let message = from_expression
                .or_else(|| {
                    v.message
                        .as_deref()
                        .map(str::trim)
                        .filter(|m| !m.is_empty())
                        .map(str::to_string)
                })
                .unwrap_or_else(|| format!("failed expression: {}", v.expression.trim()));
            Some(denial(message, v.reason.as_deref().unwrap_or("Invalid")))
        }
    }
}
