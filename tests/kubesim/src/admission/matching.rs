//! Which requests a policy or binding applies to: `resourceRules` and
//! `excludeResourceRules` (operations, groups, versions, resources with
//! subresources, scope, resourceNames), `namespaceSelector` and
//! `objectSelector`, as upstream's `predicates` packages decide.

use std::collections::BTreeMap;

use k8s_openapi::api::admissionregistration::v1::{MatchResources, NamedRuleWithOperations};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::Value;

use super::Attributes;

fn exact_or_wildcard(items: Option<&Vec<String>>, requested: &str) -> bool {
    items
        .into_iter()
        .flatten()
        .any(|i| i == "*" || i == requested)
}

/// `rules.go`: scope, operation, group, version and resource (`*` matches
/// every resource but no subresource, `*/*` both, `pods/*` every
/// subresource of pods, `*/status` one subresource of every resource).
fn rule_matches(rule: &NamedRuleWithOperations, a: &Attributes) -> bool {
    let cluster_scoped = a.resource == "namespaces" || a.namespace.is_empty();
    let scope = match rule.scope.as_deref() {
        None | Some("*") => true,
        Some("Namespaced") => !cluster_scoped,
        Some("Cluster") => cluster_scoped,
        Some(_) => false,
    };
    let operation = rule
        .operations
        .iter()
        .flatten()
        .any(|o| o == "*" || o == a.operation.as_str());
    let resource = rule.resources.iter().flatten().any(|r| {
        let (res, sub) = r.split_once('/').unwrap_or((r.as_str(), ""));
        (res == "*" || res == a.resource) && (sub == "*" || sub == a.subresource)
    });
    scope
        && operation
        && exact_or_wildcard(rule.api_groups.as_ref(), &a.group)
        && exact_or_wildcard(rule.api_versions.as_ref(), &a.version)
        && resource
}

/// Whether any rule matches, an empty `resourceNames` matching every name.
fn any_rule_matches(rules: &[NamedRuleWithOperations], a: &Attributes) -> bool {
    rules.iter().any(|r| {
        rule_matches(r, a)
            && r.resource_names
                .as_ref()
                .is_none_or(|n| n.is_empty() || n.contains(&a.name))
    })
}

/// A label set.
pub type Labels = BTreeMap<String, String>;

/// The labels of an object (empty when it has none or is absent).
pub fn labels_of(obj: Option<&Value>) -> Labels {
    obj.and_then(|o| o["metadata"]["labels"].as_object())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// `metav1.LabelSelectorAsSelector` then `Matches`: every `matchLabels`
/// pair and every expression must hold; an unknown operator, or values
/// where the operator takes none (or none where it needs some), is an error.
pub fn selector_matches(sel: &LabelSelector, labels: &Labels) -> Result<bool, String> {
    for (k, v) in sel.match_labels.iter().flatten() {
        if labels.get(k) != Some(v) {
            return Ok(false);
        }
    }
    for e in sel.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default();
        let have = labels.get(&e.key);
        let ok = match e.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => {
                return Err(
                    "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty"
                        .into(),
                );
            }
            "In" => have.is_some_and(|h| values.contains(h)),
            "NotIn" => have.is_none_or(|h| !values.contains(h)),
            "Exists" | "DoesNotExist" if !values.is_empty() => {
                return Err(format!(
                    "values: Invalid value: {values:?}: values set must be empty for exists and does not exist"
                ));
            }
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            other => return Err(format!("{other:?} is not a valid label selector operator")),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether `m` selects the request. `namespace_labels` are the labels the
/// namespace selector sees (the object's own for a Namespace being created
/// or updated); `objects` are the new and old objects for the object
/// selector, which matches when either does. `rules_required`: a policy's
/// `matchConstraints` with no `resourceRules` matches nothing, a binding's
/// `matchResources` without them matches everything the policy does.
pub fn matches(
    m: &MatchResources,
    a: &Attributes,
    namespace_labels: &Labels,
    objects: [Option<&Value>; 2],
    rules_required: bool,
) -> Result<bool, String> {
    if !a.namespace.is_empty() || a.resource == "namespaces" {
        let sel = m.namespace_selector.clone().unwrap_or_default();
        if !selector_matches(&sel, namespace_labels)? {
            return Ok(false);
        }
    }
    if let Some(sel) = &m.object_selector {
        let any = objects
            .iter()
            .flatten()
            .map(|o| selector_matches(sel, &labels_of(Some(o))))
            .collect::<Result<Vec<bool>, String>>()?;
        let empty = sel.match_labels.as_ref().is_none_or(|l| l.is_empty())
            && sel.match_expressions.as_ref().is_none_or(|e| e.is_empty());
        if !empty && !any.contains(&true) {
            return Ok(false);
        }
    }
    if any_rule_matches(m.exclude_resource_rules.as_deref().unwrap_or(&[]), a) {
        return Ok(false);
    }
    match m.resource_rules.as_deref() {
        None | Some([]) => Ok(!rules_required),
        Some(rules) => Ok(any_rule_matches(rules, a)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::Operation;
    use serde_json::json;

    fn attrs(op: Operation, resource: &str, sub: &str, ns: &str) -> Attributes {
        Attributes {
            operation: op,
            group: String::new(),
            version: "v1".into(),
            resource: resource.into(),
            subresource: sub.into(),
            name: "x".into(),
            namespace: ns.into(),
            ..Attributes::default()
        }
    }

    fn rule(v: Value) -> NamedRuleWithOperations {
        serde_json::from_value(v).expect("rule")
    }

    #[test]
    fn resources_and_subresources_match_as_upstream() {
        let token = attrs(Operation::Create, "serviceaccounts", "token", "ns");
        let sa = attrs(Operation::Create, "serviceaccounts", "", "ns");
        let base = json!({"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"]});
        let with = |res: Value| {
            let mut r = base.clone();
            r["resources"] = res;
            rule(r)
        };
        assert!(rule_matches(&with(json!(["*"])), &sa));
        assert!(!rule_matches(&with(json!(["*"])), &token));
        assert!(rule_matches(&with(json!(["*/*"])), &token));
        assert!(rule_matches(&with(json!(["serviceaccounts/*"])), &token));
        assert!(rule_matches(&with(json!(["*/token"])), &token));
        assert!(!rule_matches(&with(json!(["serviceaccounts"])), &token));
        let delete = attrs(Operation::Delete, "serviceaccounts", "", "ns");
        assert!(!rule_matches(&with(json!(["*"])), &delete));
        let mut cluster = rule(
            json!({"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["*"],
                                      "resources": ["*"], "scope": "Cluster"}),
        );
        assert!(!rule_matches(&cluster, &sa));
        cluster.scope = Some("Namespaced".into());
        assert!(rule_matches(&cluster, &sa));
    }

    #[test]
    fn selectors_follow_label_selector_rules() {
        let labels: Labels = [("team".to_string(), "a".to_string())].into();
        let sel = |v: Value| serde_json::from_value::<LabelSelector>(v).expect("selector");
        assert_eq!(
            selector_matches(&sel(json!({"matchLabels": {"team": "a"}})), &labels),
            Ok(true)
        );
        assert_eq!(
            selector_matches(
                &sel(
                    json!({"matchExpressions": [{"key": "team", "operator": "NotIn", "values": ["a"]}]})
                ),
                &labels
            ),
            Ok(false)
        );
        assert_eq!(
            selector_matches(
                &sel(json!({"matchExpressions": [{"key": "x", "operator": "DoesNotExist"}]})),
                &labels
            ),
            Ok(true)
        );
        assert!(
            selector_matches(
                &sel(json!({"matchExpressions": [{"key": "x", "operator": "Near"}]})),
                &labels
            )
            .is_err()
        );
    }

    #[test]
    fn object_selector_matches_new_or_old_object() {
        let m: MatchResources = serde_json::from_value(json!({
            "objectSelector": {"matchLabels": {"app.kubernetes.io/managed-by": "scanfleet"}},
            "resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["*"], "resources": ["*"]}]}))
        .expect("match resources");
        let a = attrs(Operation::Delete, "serviceaccounts", "", "ns");
        let managed =
            json!({"metadata": {"labels": {"app.kubernetes.io/managed-by": "scanfleet"}}});
        let other = json!({"metadata": {}});
        assert_eq!(
            matches(&m, &a, &Labels::new(), [None, Some(&managed)], true),
            Ok(true)
        );
        assert_eq!(
            matches(&m, &a, &Labels::new(), [None, Some(&other)], true),
            Ok(false)
        );
    }
}
