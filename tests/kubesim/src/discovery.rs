//! Non-resource endpoints: `/version`, health, and legacy discovery documents
//! (`/api`, `/api/v1`, `/apis`, `/apis/<g>[/<v>]`) that kubectl's RESTMapper
//! reads. Aggregated discovery is not served; clients fall back to these
//! because the response media type is plain JSON.
//!
//! The documents list kubesim's own types and the fixture's virtual
//! resources (APIs served elsewhere, such as `scanfleet.dev`), so kubectl
//! resolves `scans.scanfleet.dev` as it would on a cluster that registers it.

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

fn resource_list(state: &State, group: &str, version: &str) -> Value {
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
    for v in state
        .virtual_resources
        .iter()
        .filter(|v| v.group == group && v.version == version)
    {
        resources.push(json!({
            "name": v.resource, "singularName": v.kind.to_ascii_lowercase(),
            "namespaced": v.namespaced, "kind": v.kind, "verbs": v.verbs,
        }));
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
}

/// Every named group with its versions (preferred first), kubesim's own
/// groups before the virtual ones.
fn groups(state: &State) -> Vec<(String, Vec<String>)> {
    let own = TYPES.iter().map(|t| (t.group, t.version));
    let virtual_ = state
        .virtual_resources
        .iter()
        .map(|v| (v.group.as_str(), v.version.as_str()));
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for (g, v) in own.chain(virtual_).filter(|(g, _)| !g.is_empty()) {
        match out.iter_mut().find(|(name, _)| name == g) {
            Some((_, versions)) if !versions.iter().any(|x| x == v) => versions.push(v.into()),
            Some(_) => {}
            None => out.push((g.into(), vec![v.into()])),
        }
    }
    out
}

fn group_doc(g: &str, versions: &[String]) -> Value {
    let gvs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
        .collect();
    json!({"name": g, "versions": gvs, "preferredVersion": gvs[0]})
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
        "/api/v1" => Ok(resource_list(state, "", "v1")),
        "/apis" => Ok(json!({
            "kind": "APIGroupList", "apiVersion": "v1",
            "groups": groups(state).iter().map(|(g, v)| group_doc(g, v)).collect::<Vec<_>>()
        })),
        _ => {
            let rest = path
                .strip_prefix("/apis/")
                .ok_or_else(ApiError::path_not_found)?;
            let mut parts = rest.split('/');
            let g = parts.next().unwrap_or("");
            let all = groups(state);
            let (_, versions) = all
                .iter()
                .find(|(name, _)| name == g)
                .ok_or_else(ApiError::path_not_found)?;
            match (parts.next(), parts.next()) {
                (None, _) => {
                    let mut d = group_doc(g, versions);
                    d["kind"] = json!("APIGroup");
                    d["apiVersion"] = json!("v1");
                    Ok(d)
                }
                (Some(v), None) if versions.iter().any(|x| x == v) => {
                    Ok(resource_list(state, g, v))
                }
                _ => Err(ApiError::path_not_found()),
            }
        }
    }
}
