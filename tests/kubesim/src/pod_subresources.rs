//! Pod subresources other than exec: `log` (tail of the container's output
//! file), `status` (read only) and `ephemeralcontainers` (GET/PUT/PATCH).

use hyper::body::Incoming;
use hyper::{Request, Response};

use crate::api;
use crate::http::{Body, apply_patch, json_response, read_json, text_response};
use crate::rbac::User;
use crate::resources::{Query, RequestInfo, ResourceType};
use crate::state::State;
use crate::status::ApiError;

fn current(
    state: &State,
    info: &RequestInfo,
    t: &ResourceType,
    ns: &str,
) -> Result<serde_json::Value, ApiError> {
    state
        .store
        .get(&api::gr(t), ns, &info.name)
        .ok_or_else(|| ApiError::not_found(t.group, t.plural, &info.name))
}

/// `GET pods/<p>/log` (`container`, `tailLines`).
pub fn log(
    state: &State,
    info: &RequestInfo,
    query: &Query,
    t: &ResourceType,
    ns: &str,
) -> Result<Response<Body>, ApiError> {
    let pod = current(state, info, t, ns)?;
    let container = crate::exec::pick_container(&pod, &info.name, query.get("container"))?;
    let uid = pod["metadata"]["uid"].as_str().unwrap_or("");
    let text = state.runtime.logs(uid, &container).ok_or_else(|| {
        ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{}\" is waiting to start: ContainerCreating",
            info.name
        ))
    })?;
    let text = match query.get("tailLines").and_then(|n| n.parse::<usize>().ok()) {
        Some(n) => {
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(n);
            lines[start..].iter().map(|l| format!("{l}\n")).collect()
        }
        None => text,
    };
    Ok(text_response(text))
}

/// `GET pods/<p>/status` and `GET pods/<p>/ephemeralcontainers`: the pod.
pub fn get(
    state: &State,
    info: &RequestInfo,
    t: &ResourceType,
    ns: &str,
) -> Result<Response<Body>, ApiError> {
    current(state, info, t, ns).map(|obj| json_response(200, &obj))
}

/// `PUT pods/<p>/ephemeralcontainers`.
pub async fn update_ephemeral(
    state: &State,
    req: Request<Incoming>,
    info: &RequestInfo,
    user: &User,
    t: &ResourceType,
    ns: &str,
) -> Result<Response<Body>, ApiError> {
    let (body, _) = read_json(req).await?;
    api::update(state, user, t, ns, &info.name, body, "ephemeralcontainers")
        .map(|v| json_response(200, &v))
}

/// `PATCH pods/<p>/ephemeralcontainers`.
pub async fn patch_ephemeral(
    state: &State,
    req: Request<Incoming>,
    info: &RequestInfo,
    user: &User,
    t: &ResourceType,
    ns: &str,
) -> Result<Response<Body>, ApiError> {
    let (body, ct) = read_json(req).await?;
    let cur = current(state, info, t, ns)?;
    let new = apply_patch(&cur, &body, &ct)?;
    api::update(state, user, t, ns, &info.name, new, "ephemeralcontainers")
        .map(|v| json_response(200, &v))
}
