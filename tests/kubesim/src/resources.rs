//! The API resources kubesim serves and how a request maps onto them.
//!
//! [`RequestInfo`] follows apiserver's `requestinfo.go`: it derives the verb,
//! group, resource, subresource, name and namespace that authorization,
//! auditing and routing all use, so every layer sees the same attributes.

use std::collections::BTreeMap;

/// Static description of one resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceType {
    /// API group (`""` for core).
    pub group: &'static str,
    /// API version.
    pub version: &'static str,
    /// Plural resource name.
    pub plural: &'static str,
    /// Singular name (discovery).
    pub singular: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Short names (discovery).
    pub short_names: &'static [&'static str],
    /// Whether only `create` is served (reviews: evaluated, never stored).
    pub create_only: bool,
}

impl ResourceType {
    /// `apiVersion` string of objects of this type.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// RBAC's API group.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
/// The API group of TokenReview and SelfSubjectReview (and TokenRequest).
pub const AUTHENTICATION_GROUP: &str = "authentication.k8s.io";
/// The API group of the access reviews.
pub const AUTHORIZATION_GROUP: &str = "authorization.k8s.io";
/// The API group of admission policies and their bindings.
pub const ADMISSION_GROUP: &str = "admissionregistration.k8s.io";

/// Every resource type served.
pub const TYPES: &[ResourceType] = &[
    ResourceType {
        group: "",
        version: "v1",
        plural: "namespaces",
        singular: "namespace",
        kind: "Namespace",
        namespaced: false,
        short_names: &["ns"],
        create_only: false,
    },
    ResourceType {
        group: "",
        version: "v1",
        plural: "pods",
        singular: "pod",
        kind: "Pod",
        namespaced: true,
        short_names: &["po"],
        create_only: false,
    },
    ResourceType {
        group: "",
        version: "v1",
        plural: "serviceaccounts",
        singular: "serviceaccount",
        kind: "ServiceAccount",
        namespaced: true,
        short_names: &["sa"],
        create_only: false,
    },
    // Stored as given (data stays base64, as upstream returns it): enough
    // for a pull secret read by its owner's identity.
    ResourceType {
        group: "",
        version: "v1",
        plural: "secrets",
        singular: "secret",
        kind: "Secret",
        namespaced: true,
        short_names: &[],
        create_only: false,
    },
    ResourceType {
        group: RBAC_GROUP,
        version: "v1",
        plural: "roles",
        singular: "role",
        kind: "Role",
        namespaced: true,
        short_names: &[],
        create_only: false,
    },
    ResourceType {
        group: RBAC_GROUP,
        version: "v1",
        plural: "rolebindings",
        singular: "rolebinding",
        kind: "RoleBinding",
        namespaced: true,
        short_names: &[],
        create_only: false,
    },
    ResourceType {
        group: RBAC_GROUP,
        version: "v1",
        plural: "clusterroles",
        singular: "clusterrole",
        kind: "ClusterRole",
        namespaced: false,
        short_names: &[],
        create_only: false,
    },
    ResourceType {
        group: RBAC_GROUP,
        version: "v1",
        plural: "clusterrolebindings",
        singular: "clusterrolebinding",
        kind: "ClusterRoleBinding",
        namespaced: false,
        short_names: &[],
        create_only: false,
    },
    ResourceType {
        group: ADMISSION_GROUP,
        version: "v1",
        plural: "validatingadmissionpolicies",
        singular: "validatingadmissionpolicy",
        kind: "ValidatingAdmissionPolicy",
        namespaced: false,
        short_names: &[],
        create_only: false,
    },
    ResourceType {
        group: ADMISSION_GROUP,
        version: "v1",
        plural: "validatingadmissionpolicybindings",
        singular: "validatingadmissionpolicybinding",
        kind: "ValidatingAdmissionPolicyBinding",
        namespaced: false,
        short_names: &[],
        create_only: false,
    },
    ResourceType {
        group: AUTHENTICATION_GROUP,
        version: "v1",
        plural: "tokenreviews",
        singular: "tokenreview",
        kind: "TokenReview",
        namespaced: false,
        short_names: &[],
        create_only: true,
    },
    ResourceType {
        group: AUTHENTICATION_GROUP,
        version: "v1",
        plural: "selfsubjectreviews",
        singular: "selfsubjectreview",
        kind: "SelfSubjectReview",
        namespaced: false,
        short_names: &[],
        create_only: true,
    },
    ResourceType {
        group: AUTHORIZATION_GROUP,
        version: "v1",
        plural: "subjectaccessreviews",
        singular: "subjectaccessreview",
        kind: "SubjectAccessReview",
        namespaced: false,
        short_names: &[],
        create_only: true,
    },
    ResourceType {
        group: AUTHORIZATION_GROUP,
        version: "v1",
        plural: "localsubjectaccessreviews",
        singular: "localsubjectaccessreview",
        kind: "LocalSubjectAccessReview",
        namespaced: true,
        short_names: &[],
        create_only: true,
    },
    ResourceType {
        group: AUTHORIZATION_GROUP,
        version: "v1",
        plural: "selfsubjectaccessreviews",
        singular: "selfsubjectaccessreview",
        kind: "SelfSubjectAccessReview",
        namespaced: false,
        short_names: &[],
        create_only: true,
    },
    ResourceType {
        group: AUTHORIZATION_GROUP,
        version: "v1",
        plural: "selfsubjectrulesreviews",
        singular: "selfsubjectrulesreview",
        kind: "SelfSubjectRulesReview",
        namespaced: false,
        short_names: &[],
        create_only: true,
    },
];

/// Subresources served, with their verbs (discovery).
pub const SUBRESOURCES: &[(&str, &str, &str, &[&str])] = &[
    ("pods", "exec", "PodExecOptions", &["create", "get"]),
    ("pods", "log", "Pod", &["get"]),
    (
        "pods",
        "ephemeralcontainers",
        "Pod",
        &["get", "patch", "update"],
    ),
    ("pods", "status", "Pod", &["get", "patch", "update"]),
    ("serviceaccounts", "token", "TokenRequest", &["create"]),
];

/// Looks up a resource type by group and plural.
pub fn find(group: &str, plural: &str) -> Option<&'static ResourceType> {
    TYPES
        .iter()
        .find(|t| t.group == group && t.plural == plural)
}

/// Looks up a resource type by kind.
pub fn by_kind(kind: &str) -> Option<&'static ResourceType> {
    TYPES.iter().find(|t| t.kind == kind)
}

/// Query parameters, with repeated keys kept in order and empty segments
/// ignored (kube-rs sends `?&a=b`).
#[derive(Debug, Default, Clone)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses a raw query string.
    pub fn parse(raw: Option<&str>) -> Self {
        let pairs = raw
            .map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .filter(|(k, _)| !k.is_empty())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        Self { pairs }
    }
    /// First value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    /// All values of `key`.
    pub fn all(&self, key: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }
    /// Boolean flag (`true`/`1`).
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true") | Some("1"))
    }
}

/// The attributes of one request, as authorization sees them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo {
    /// Resource request (`/api/...`, `/apis/...` with a resource).
    pub is_resource: bool,
    /// Lowercase verb: get, list, watch, create, update, patch, delete, deletecollection.
    pub verb: String,
    /// URL path.
    pub path: String,
    /// API group.
    pub group: String,
    /// API version.
    pub version: String,
    /// Resource plural.
    pub resource: String,
    /// Subresource.
    pub subresource: String,
    /// Object name (may come from a `metadata.name=` field selector).
    pub name: String,
    /// Namespace.
    pub namespace: String,
}

/// Parses a field selector of `key=value` / `key==value` / `key!=value` terms.
pub fn parse_selector(s: &str) -> Vec<(String, String, bool)> {
    s.split(',')
        .filter(|t| !t.trim().is_empty())
        .filter_map(|t| {
            if let Some((k, v)) = t.split_once("!=") {
                Some((k.trim().to_string(), v.trim().to_string(), false))
            } else if let Some((k, v)) = t.split_once("==") {
                Some((k.trim().to_string(), v.trim().to_string(), true))
            } else {
                t.split_once('=')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string(), true))
            }
        })
        .collect()
}

impl RequestInfo {
    /// Derives the attributes from method, path and query (requestinfo.go).
    pub fn parse(method: &str, path: &str, query: &Query) -> Self {
        let mut info = RequestInfo {
            path: path.to_string(),
            verb: method.to_ascii_lowercase(),
            ..Default::default()
        };
        if info.verb == "head" {
            info.verb = "get".into();
        }
        let mut parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        if parts.is_empty() || parts[0].is_empty() {
            return info;
        }
        match parts[0] {
            "api" if parts.len() >= 3 => {
                info.version = parts[1].to_string();
                parts.drain(..2);
            }
            "apis" if parts.len() >= 4 => {
                info.group = parts[1].to_string();
                info.version = parts[2].to_string();
                parts.drain(..3);
            }
            _ => return info,
        }
        info.is_resource = true;
        let mut legacy_watch = false;
        if parts[0] == "watch" {
            legacy_watch = true;
            parts.remove(0);
        }
        if parts.first() == Some(&"namespaces") && parts.len() >= 2 {
            info.namespace = parts[1].to_string();
            if parts.len() >= 3 {
                parts.drain(..2);
            } else {
                // `/namespaces/<ns>` is the namespace object itself.
                parts = vec!["namespaces", parts[1]];
                info.namespace.clear();
                info.namespace = parts[1].to_string();
            }
        }
        if !parts.is_empty() {
            info.resource = parts[0].to_string();
        }
        if parts.len() >= 2 {
            info.name = parts[1].to_string();
        }
        if parts.len() >= 3 {
            info.subresource = parts[2].to_string();
        }
        if info.resource == "namespaces" {
            // The namespace object is cluster-scoped; its name is the namespace.
            if !info.name.is_empty() {
                info.namespace = info.name.clone();
            }
        }
        info.verb = match method {
            "POST" => "create",
            "GET" | "HEAD" => "get",
            "PUT" => "update",
            "PATCH" => "patch",
            "DELETE" => "delete",
            _ => "",
        }
        .to_string();
        if legacy_watch {
            info.verb = "watch".into();
        }
        if info.name.is_empty() && info.verb == "get" {
            let w = query.get("watch");
            info.verb = if w.is_some_and(|w| w != "false" && w != "0") {
                "watch".into()
            } else {
                "list".into()
            };
        }
        if info.name.is_empty() && info.verb == "delete" {
            info.verb = "deletecollection".into();
        }
        if (info.verb == "list" || info.verb == "watch")
            && let Some(fs) = query.get("fieldSelector")
        {
            for (k, v, eq) in parse_selector(fs) {
                if k == "metadata.name" && eq {
                    info.name = v;
                }
            }
        }
        info
    }

    /// `resource[/subresource]` as RBAC messages print it.
    pub fn full_resource(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }
}

/// Labels of an object, for selectors.
pub type Labels = BTreeMap<String, String>;

/// Whether `labels` satisfies a label selector (equality, inequality,
/// existence, `in`/`notin`).
pub fn label_selector_matches(selector: &str, labels: &Labels) -> bool {
    let mut terms = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in selector.chars() {
        match c {
            '(' => {
                depth += 1;
                cur.push(c)
            }
            ')' => {
                depth -= 1;
                cur.push(c)
            }
            ',' if depth == 0 => {
                terms.push(std::mem::take(&mut cur));
            }
            _ => cur.push(c),
        }
    }
    terms.push(cur);
    terms.iter().all(|t| {
        let t = t.trim();
        if t.is_empty() {
            return true;
        }
        if let Some((k, rest)) = t.split_once(" notin ") {
            let set = parse_set(rest);
            return labels.get(k.trim()).is_none_or(|v| !set.contains(v));
        }
        if let Some((k, rest)) = t.split_once(" in ") {
            let set = parse_set(rest);
            return labels.get(k.trim()).is_some_and(|v| set.contains(v));
        }
        if let Some(k) = t.strip_prefix('!') {
            return !labels.contains_key(k.trim());
        }
        if let Some((k, v)) = t.split_once("!=") {
            return labels.get(k.trim()).is_none_or(|x| x != v.trim());
        }
        if let Some((k, v)) = t.split_once("==").or_else(|| t.split_once('=')) {
            return labels.get(k.trim()).is_some_and(|x| x == v.trim());
        }
        labels.contains_key(t)
    })
}

fn parse_set(s: &str) -> Vec<String> {
    s.trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split(',')
        .map(|x| x.trim().to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_info_matches_upstream_examples() {
        let q = Query::parse(Some("&fieldSelector=metadata.name%3Dp&limit=500"));
        let i = RequestInfo::parse("GET", "/api/v1/namespaces/ns/pods", &q);
        assert_eq!((i.verb.as_str(), i.name.as_str()), ("list", "p"));
        let i = RequestInfo::parse(
            "GET",
            "/api/v1/namespaces/ns/pods",
            &Query::parse(Some("watch=1")),
        );
        assert_eq!(i.verb, "watch");
        let i = RequestInfo::parse(
            "GET",
            "/api/v1/namespaces/ns/pods/p/exec",
            &Query::default(),
        );
        assert_eq!(
            (
                i.verb.as_str(),
                i.resource.as_str(),
                i.subresource.as_str(),
                i.name.as_str()
            ),
            ("get", "pods", "exec", "p")
        );
        let i = RequestInfo::parse(
            "POST",
            "/apis/rbac.authorization.k8s.io/v1/namespaces/ns/roles",
            &Query::default(),
        );
        assert_eq!(
            (i.group.as_str(), i.name.as_str(), i.namespace.as_str()),
            (RBAC_GROUP, "", "ns")
        );
        let i = RequestInfo::parse("GET", "/api/v1/namespaces/ns", &Query::default());
        assert_eq!((i.resource.as_str(), i.name.as_str()), ("namespaces", "ns"));
        let i = RequestInfo::parse("DELETE", "/api/v1/namespaces/ns/pods", &Query::default());
        assert_eq!(i.verb, "deletecollection");
        let i = RequestInfo::parse("GET", "/version", &Query::default());
        assert!(!i.is_resource);
    }

    #[test]
    fn label_selectors() {
        let l: Labels = [("app".to_string(), "web".to_string())].into();
        assert!(label_selector_matches("app=web", &l));
        assert!(label_selector_matches("app in (web,db)", &l));
        assert!(!label_selector_matches("app notin (web)", &l));
        assert!(!label_selector_matches("app!=web", &l));
        assert!(label_selector_matches("!tier", &l));
        assert!(!label_selector_matches("tier", &l));
    }
}
