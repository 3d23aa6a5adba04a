//! Non-resource endpoints: `/version`, health, and legacy discovery documents
//! (`/api`, `/api/v1`, `/apis`, `/apis/<g>[/<v>]`) that kubectl's RESTMapper
//! reads. Aggregated discovery is not served; clients fall back to these
//! because the response media type is plain JSON.

use serde_json::{Value, json};

use crate::resources::{SUBRESOURCES, TYPES};
use crate::state::State;
use crate::status::ApiError;

fn verbs(t: &crate::resources::ResourceType) -> Vec<&'static str> {
    if t.create_only {
        vec!["create"]
    } else {
        vec![
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
    }
}

fn resource_list(group: &str, version: &str) -> Value {
    let mut resources = Vec::new();
    for t in TYPES
        .iter()
        .filter(|t| t.group == group && t.version == version)
    {
        resources.push(json!({
            "name": t.plural, "singularName": t.singular, "namespaced": t.namespaced,
            "kind": t.kind, "verbs": verbs(t), "shortNames": t.short_names,
        }));
        for (parent, sub, kind, v) in SUBRESOURCES.iter().filter(|s| s.0 == t.plural) {
            resources.push(json!({
                "name": format!("{parent}/{sub}"), "singularName": "", "namespaced": t.namespaced,
                "kind": kind, "verbs": v,
            }));
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
}

fn groups() -> Vec<&'static str> {
    let mut g: Vec<&str> = TYPES
        .iter()
        .map(|t| t.group)
        .filter(|g| !g.is_empty())
        .collect();
    g.dedup();
    g
}

fn group_doc(g: &str) -> Value {
    let gv = json!({"groupVersion": format!("{g}/v1"), "version": "v1"});
    json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv})
}

/// Answers a non-resource GET.
pub fn serve(state: &State, path: &str) -> Result<Value, ApiError> {
    let path = path.trim_end_matches('/');
    match path {
        "/version" => Ok(json!({
            "major": "1", "minor": "37", "emulationMajor": "1", "emulationMinor": "37",
            "minCompatibilityMajor": "1", "minCompatibilityMinor": "36",
            "gitVersion": "v1.37.0-kubesim", "gitCommit": "0000000000000000000000000000000000000000",
            "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
            "goVersion": "go1.25.0", "compiler": "gc", "platform": "linux/amd64"
        })),
        "/healthz" | "/livez" | "/readyz" => Ok(json!("ok")),
        "/api" => Ok(json!({
            "kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": state.address}]
        })),
        "/api/v1" => Ok(resource_list("", "v1")),
        "/apis" => Ok(json!({
            "kind": "APIGroupList", "apiVersion": "v1",
            "groups": groups().into_iter().map(group_doc).collect::<Vec<_>>()
        })),
        _ => {
            let rest = path
                .strip_prefix("/apis/")
                .ok_or_else(ApiError::path_not_found)?;
            let mut parts = rest.split('/');
            let g = parts.next().unwrap_or("");
            if !groups().contains(&g) {
                return Err(ApiError::path_not_found());
            }
            match (parts.next(), parts.next()) {
                (None, _) => {
                    let mut d = group_doc(g);
                    d["kind"] = json!("APIGroup");
                    d["apiVersion"] = json!("v1");
                    Ok(d)
                }
                (Some("v1"), None) => Ok(resource_list(g, "v1")),
                _ => Err(ApiError::path_not_found()),
            }
        }
    }
}
