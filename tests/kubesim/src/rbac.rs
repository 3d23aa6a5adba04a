//! RBAC evaluation as upstream does it: rule matching, rule resolution from
//! (Cluster)RoleBindings, the exact 403 wording, and the coverage check that
//! backs privilege-escalation prevention.
//!
//! Pure functions over JSON objects from the store; no IO.

use serde_json::Value;

use crate::resources::{RBAC_GROUP, RequestInfo};
use crate::status::ApiError;

/// An authenticated user (upstream's `user.Info`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct User {
    /// Username.
    pub name: String,
    /// Groups, including `system:authenticated`.
    pub groups: Vec<String>,
    /// The user's uid (a ServiceAccount's uid; empty for static users).
    pub uid: String,
    /// Extra attributes (`authentication.kubernetes.io/credential-id`, the
    /// bound pod's name and uid). RBAC ignores them; reviews report them.
    pub extra: std::collections::BTreeMap<String, Vec<String>>,
}

impl User {
    /// Whether the user is a member of `system:masters`.
    pub fn is_master(&self) -> bool {
        self.groups.iter().any(|g| g == "system:masters")
    }
}

/// One PolicyRule.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rule {
    /// verbs
    pub verbs: Vec<String>,
    /// apiGroups
    pub api_groups: Vec<String>,
    /// resources
    pub resources: Vec<String>,
    /// resourceNames
    pub resource_names: Vec<String>,
    /// nonResourceURLs
    pub non_resource_urls: Vec<String>,
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

impl Rule {
    /// Parses a PolicyRule JSON object.
    pub fn from_json(v: &Value) -> Self {
        Self {
            verbs: strings(v, "verbs"),
            api_groups: strings(v, "apiGroups"),
            resources: strings(v, "resources"),
            resource_names: strings(v, "resourceNames"),
            non_resource_urls: strings(v, "nonResourceURLs"),
        }
    }

    /// The rules of a Role/ClusterRole object.
    pub fn all_from_role(role: &Value) -> Vec<Rule> {
        role.get("rules")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(Rule::from_json).collect())
            .unwrap_or_default()
    }

    fn verb_matches(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == "*" || v == verb)
    }

    /// Whether this rule allows the request (evaluation_helpers.go).
    pub fn allows(&self, a: &RequestInfo) -> bool {
        if !a.is_resource {
            return self.verb_matches(&a.verb)
                && self.non_resource_urls.iter().any(|u| {
                    u == "*"
                        || u == &a.path
                        || u.strip_suffix('*').is_some_and(|p| a.path.starts_with(p))
                });
        }
        let combined = a.full_resource();
        self.verb_matches(&a.verb)
            && self.api_groups.iter().any(|g| g == "*" || g == &a.group)
            && self.resources.iter().any(|r| {
                r == "*"
                    || *r == combined
                    || (!a.subresource.is_empty() && *r == format!("*/{}", a.subresource))
            })
            && (self.resource_names.is_empty()
                || (!a.name.is_empty() && self.resource_names.contains(&a.name)))
    }

    /// `{APIGroups:["..."], Resources:[...], ...}` as upstream's CompactString.
    pub fn compact_string(&self) -> String {
        let q = |l: &[String]| {
            format!(
                "[{}]",
                l.iter()
                    .map(|s| format!("{s:?}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        };
        let mut parts = Vec::new();
        if !self.api_groups.is_empty() {
            parts.push(format!("APIGroups:{}", q(&self.api_groups)));
        }
        if !self.resources.is_empty() {
            parts.push(format!("Resources:{}", q(&self.resources)));
        }
        if !self.non_resource_urls.is_empty() {
            parts.push(format!("NonResourceURLs:{}", q(&self.non_resource_urls)));
        }
        if !self.resource_names.is_empty() {
            parts.push(format!("ResourceNames:{}", q(&self.resource_names)));
        }
        if !self.verbs.is_empty() {
            parts.push(format!("Verbs:{}", q(&self.verbs)));
        }
        format!("{{{}}}", parts.join(", "))
    }
}

/// A rule together with the binding that granted it (for review reasons).
#[derive(Debug, Clone)]
pub struct GrantedRule {
    /// The rule.
    pub rule: Rule,
    /// `RBAC: allowed by ...` text.
    pub source: String,
}

fn subject_matches(subject: &Value, user: &User, binding_ns: &str) -> bool {
    let kind = subject.get("kind").and_then(Value::as_str).unwrap_or("");
    let name = subject.get("name").and_then(Value::as_str).unwrap_or("");
    match kind {
        "User" => user.name == name,
        "Group" => user.groups.iter().any(|g| g == name),
        "ServiceAccount" => {
            let ns = subject
                .get("namespace")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .unwrap_or(binding_ns);
            !ns.is_empty() && user.name == format!("system:serviceaccount:{ns}:{name}")
        }
        _ => false,
    }
}

fn describe_subject(subject: &Value, binding_ns: &str) -> String {
    let kind = subject.get("kind").and_then(Value::as_str).unwrap_or("");
    let name = subject.get("name").and_then(Value::as_str).unwrap_or("");
    if kind == "ServiceAccount" {
        let ns = subject
            .get("namespace")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or(binding_ns);
        format!("{kind} \"{name}/{ns}\"")
    } else {
        format!("{kind} \"{name}\"")
    }
}

/// Read access to the RBAC objects rules are resolved from.
pub trait RbacSource {
    /// All ClusterRoleBindings.
    fn cluster_role_bindings(&self) -> Vec<Value>;
    /// RoleBindings in one namespace.
    fn role_bindings(&self, ns: &str) -> Vec<Value>;
    /// A ClusterRole by name.
    fn cluster_role(&self, name: &str) -> Option<Value>;
    /// A Role by namespace and name.
    fn role(&self, ns: &str, name: &str) -> Option<Value>;
}

/// Rules granted to `user` in `namespace` (`""` = cluster scope only), plus
/// the lookup errors for bindings whose role is missing.
pub fn rules_for(
    src: &dyn RbacSource,
    user: &User,
    namespace: &str,
) -> (Vec<GrantedRule>, Vec<String>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for b in src.cluster_role_bindings() {
        let subjects = b
            .get("subjects")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let Some(subject) = subjects.iter().find(|s| subject_matches(s, user, "")) else {
            continue;
        };
        let role_name = b["roleRef"]["name"].as_str().unwrap_or("");
        let bname = b["metadata"]["name"].as_str().unwrap_or("");
        match src.cluster_role(role_name) {
            Some(role) => {
                for rule in Rule::all_from_role(&role) {
                    out.push(GrantedRule {
                        rule,
                        source: format!(
                            "RBAC: allowed by ClusterRoleBinding \"{bname}\" of ClusterRole \"{role_name}\" to {}",
                            describe_subject(subject, "")
                        ),
                    });
                }
            }
            None => errors.push(format!(
                "clusterrole.rbac.authorization.k8s.io \"{role_name}\" not found"
            )),
        }
    }
    if !namespace.is_empty() {
        for b in src.role_bindings(namespace) {
            let subjects = b
                .get("subjects")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let Some(subject) = subjects
                .iter()
                .find(|s| subject_matches(s, user, namespace))
            else {
                continue;
            };
            let kind = b["roleRef"]["kind"].as_str().unwrap_or("");
            let role_name = b["roleRef"]["name"].as_str().unwrap_or("");
            let bname = b["metadata"]["name"].as_str().unwrap_or("");
            let role = if kind == "ClusterRole" {
                src.cluster_role(role_name)
            } else {
                src.role(namespace, role_name)
            };
            match role {
                Some(role) => {
                    for rule in Rule::all_from_role(&role) {
                        out.push(GrantedRule {
                            rule,
                            source: format!(
                                "RBAC: allowed by RoleBinding \"{bname}/{namespace}\" of {kind} \"{role_name}\" to {}",
                                describe_subject(subject, namespace)
                            ),
                        });
                    }
                }
                None => errors.push(format!(
                    "{} \"{role_name}\" not found",
                    if kind == "ClusterRole" {
                        "clusterrole.rbac.authorization.k8s.io"
                    } else {
                        "role.rbac.authorization.k8s.io"
                    }
                )),
            }
        }
    }
    (out, errors)
}

/// An authorization decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Allowed?
    pub allowed: bool,
    /// Why (the RBAC reason; empty when denied without lookup errors).
    pub reason: String,
}

/// Authorizes one request.
pub fn authorize(src: &dyn RbacSource, user: &User, a: &RequestInfo) -> Decision {
    if user.is_master() {
        return Decision {
            allowed: true,
            reason: String::new(),
        };
    }
    let (rules, errors) = rules_for(src, user, &a.namespace);
    if let Some(g) = rules.iter().find(|g| g.rule.allows(a)) {
        return Decision {
            allowed: true,
            reason: g.source.clone(),
        };
    }
    // utilerrors.NewAggregate: one error prints bare, several as `[a, b]`.
    let reason = match errors.as_slice() {
        [] => String::new(),
        [one] => format!("RBAC: {one}"),
        many => format!("RBAC: [{}]", many.join(", ")),
    };
    Decision {
        allowed: false,
        reason,
    }
}

/// The 403 the authorization filter writes (responsewriters/errors.go).
pub fn forbidden(user: &User, a: &RequestInfo, reason: &str) -> ApiError {
    let who_what = if !a.is_resource {
        format!(
            "User \"{}\" cannot {} path \"{}\"",
            user.name, a.verb, a.path
        )
    } else if a.namespace.is_empty() {
        format!(
            "User \"{}\" cannot {} resource \"{}\" in API group \"{}\" at the cluster scope",
            user.name,
            a.verb,
            a.full_resource(),
            a.group
        )
    } else {
        format!(
            "User \"{}\" cannot {} resource \"{}\" in API group \"{}\" in the namespace \"{}\"",
            user.name,
            a.verb,
            a.full_resource(),
            a.group,
            a.namespace
        )
    };
    let err = if reason.is_empty() {
        who_what
    } else {
        format!("{who_what}: {reason}")
    };
    if a.is_resource {
        ApiError::forbidden(&a.group, &a.resource, &a.name, &err)
    } else {
        ApiError::forbidden_path(&err)
    }
}

/// Atomic breakdown of a rule (BreakdownRule).
fn breakdown(rule: &Rule) -> Vec<Rule> {
    let mut out = Vec::new();
    for g in &rule.api_groups {
        for r in &rule.resources {
            if rule.resource_names.is_empty() {
                for v in &rule.verbs {
                    out.push(Rule {
                        verbs: vec![v.clone()],
                        api_groups: vec![g.clone()],
                        resources: vec![r.clone()],
                        ..Default::default()
                    });
                }
            } else {
                for n in &rule.resource_names {
                    for v in &rule.verbs {
                        out.push(Rule {
                            verbs: vec![v.clone()],
                            api_groups: vec![g.clone()],
                            resources: vec![r.clone()],
                            resource_names: vec![n.clone()],
                            ..Default::default()
                        });
                    }
                }
            }
        }
    }
    for u in &rule.non_resource_urls {
        for v in &rule.verbs {
            out.push(Rule {
                verbs: vec![v.clone()],
                non_resource_urls: vec![u.clone()],
                ..Default::default()
            });
        }
    }
    out
}

fn has_all(owner: &[String], servant: &[String]) -> bool {
    owner.iter().any(|o| o == "*") || servant.iter().all(|s| owner.contains(s))
}

fn resource_covers(owner: &[String], servant: &[String]) -> bool {
    if owner.iter().any(|o| o == "*") {
        return true;
    }
    servant.iter().all(|s| {
        owner.contains(s)
            || s.split_once('/')
                .is_some_and(|(_, sub)| owner.contains(&format!("*/{sub}")))
    })
}

fn non_resource_covers(owner: &[String], servant: &[String]) -> bool {
    servant.iter().all(|s| {
        owner
            .iter()
            .any(|o| o == s || o.strip_suffix('*').is_some_and(|p| s.starts_with(p)))
    })
}

fn rule_covers(owner: &Rule, servant: &Rule) -> bool {
    has_all(&owner.verbs, &servant.verbs)
        && has_all(&owner.api_groups, &servant.api_groups)
        && resource_covers(&owner.resources, &servant.resources)
        && non_resource_covers(&owner.non_resource_urls, &servant.non_resource_urls)
        && (owner.resource_names.is_empty()
            || (!servant.resource_names.is_empty()
                && has_all(&owner.resource_names, &servant.resource_names)))
}

/// The servant rules not covered by the owner rules (policy_comparator.go),
/// compacted and rendered, sorted, as the escalation message lists them.
pub fn uncovered(owner: &[Rule], servant: &[Rule]) -> Vec<String> {
    let mut missing: Vec<Rule> = Vec::new();
    for s in servant {
        for atom in breakdown(s) {
            if !owner.iter().any(|o| rule_covers(o, &atom)) {
                missing.push(atom);
            }
        }
    }
    // CompactRules: simple rules that differ only in verb merge their verbs.
    let mut compacted: Vec<Rule> = Vec::new();
    for m in missing {
        let simple = m.non_resource_urls.is_empty();
        if simple
            && let Some(c) = compacted.iter_mut().find(|c| {
                c.non_resource_urls.is_empty()
                    && c.api_groups == m.api_groups
                    && c.resources == m.resources
                    && c.resource_names == m.resource_names
            })
        {
            if !c.verbs.contains(&m.verbs[0]) {
                c.verbs.push(m.verbs[0].clone());
            }
            continue;
        }
        compacted.push(m);
    }
    let mut lines: Vec<String> = compacted.iter().map(Rule::compact_string).collect();
    lines.sort();
    lines.dedup();
    lines
}

/// The 403 of escalation prevention.
pub fn escalation_forbidden(
    resource: &str,
    name: &str,
    user: &User,
    missing: &[String],
    resolution_errors: &[String],
) -> ApiError {
    let groups = user
        .groups
        .iter()
        .map(|g| format!("{g:?}"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut msg = format!(
        "user {:?} (groups=[{groups}]) is attempting to grant RBAC permissions not currently held:\n{}",
        user.name,
        missing.join("\n")
    );
    if !resolution_errors.is_empty() {
        msg.push_str(&format!(
            "; resolution errors: [{}]",
            resolution_errors.join(" ")
        ));
    }
    ApiError::forbidden(RBAC_GROUP, resource, name, &msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Query;

    fn rule(verbs: &[&str], groups: &[&str], res: &[&str], names: &[&str]) -> Rule {
        let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        Rule {
            verbs: v(verbs),
            api_groups: v(groups),
            resources: v(res),
            resource_names: v(names),
            non_resource_urls: vec![],
        }
    }

    fn req(method: &str, path: &str) -> RequestInfo {
        RequestInfo::parse(method, path, &Query::default())
    }

    #[test]
    fn subresources_and_names_match_as_upstream() {
        let pods = rule(&["get"], &[""], &["pods"], &[]);
        assert!(pods.allows(&req("GET", "/api/v1/namespaces/n/pods/p")));
        assert!(!pods.allows(&req("GET", "/api/v1/namespaces/n/pods/p/exec")));
        let star_sub = rule(&["get"], &[""], &["*/exec"], &[]);
        assert!(star_sub.allows(&req("GET", "/api/v1/namespaces/n/pods/p/exec")));
        let pods_star = rule(&["get"], &[""], &["pods/*"], &[]);
        assert!(!pods_star.allows(&req("GET", "/api/v1/namespaces/n/pods/p/exec")));
        let named = rule(&["create"], &[""], &["serviceaccounts/token"], &["sa"]);
        assert!(named.allows(&req(
            "POST",
            "/api/v1/namespaces/n/serviceaccounts/sa/token"
        )));
        assert!(!named.allows(&req("POST", "/api/v1/namespaces/n/serviceaccounts/x/token")));
        let named_pods = rule(&["create", "list"], &[""], &["pods"], &["p"]);
        assert!(!named_pods.allows(&req("POST", "/api/v1/namespaces/n/pods")));
        assert!(!named_pods.allows(&req("GET", "/api/v1/namespaces/n/pods")));
    }

    #[test]
    fn coverage_and_message() {
        let owner = vec![rule(&["get", "list"], &[""], &["pods"], &[])];
        let servant = vec![rule(&["get", "create"], &[""], &["pods", "pods/exec"], &[])];
        let missing = uncovered(&owner, &servant);
        assert_eq!(
            missing,
            vec![
                r#"{APIGroups:[""], Resources:["pods"], Verbs:["create"]}"#.to_string(),
                r#"{APIGroups:[""], Resources:["pods/exec"], Verbs:["get" "create"]}"#.to_string(),
            ]
        );
        let named_owner = vec![rule(&["get"], &[""], &["pods"], &["a"])];
        assert!(uncovered(&named_owner, &[rule(&["get"], &[""], &["pods"], &["a"])]).is_empty());
        assert_eq!(
            uncovered(&named_owner, &[rule(&["get"], &[""], &["pods"], &[])]).len(),
            1
        );
        let all = vec![rule(&["*"], &["*"], &["*"], &[])];
        assert!(uncovered(&all, &servant).is_empty());
    }
}
