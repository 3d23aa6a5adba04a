//! The verbs on a resource collection: get, list (selectors, paging with
//! `limit`/`continue`, Table output for kubectl), create, update, patch,
//! delete and deletecollection.

use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{Value, json};

use crate::api;
use crate::http::{Body, apply_patch, json_response, read_json, wants_table};
use crate::rbac::User;
use crate::resources::{Query, RequestInfo, ResourceType};
use crate::state::State;
use crate::status::ApiError;

/// `GET <collection>/<name>`.
pub fn get(
    state: &State,
    req: &Request<Incoming>,
    info: &RequestInfo,
    t: &ResourceType,
    ns: &str,
) -> Result<Response<Body>, ApiError> {
    let obj = state
        .store
        .get(&api::gr(t), ns, &info.name)
        .ok_or_else(|| ApiError::not_found(t.group, t.plural, &info.name))?;
    if wants_table(req) {
        return Ok(json_response(
            200,
            &crate::table::table(
                t,
                &[obj],
                &state.store.resource_version().to_string(),
                state.clock.now(),
            ),
        ));
    }
    Ok(json_response(200, &obj))
}

/// `GET <collection>`: selectors, then the page after `continue`, at most
/// `limit` items.
pub fn list(
    state: &State,
    req: &Request<Incoming>,
    query: &Query,
    t: &ResourceType,
    ns: &str,
) -> Result<Response<Body>, ApiError> {
    let rv = query.get("resourceVersion").unwrap_or("");
    if query.get("resourceVersionMatch") == Some("Exact")
        && rv
            .parse::<u64>()
            .is_ok_and(|r| r < state.store.resource_version())
    {
        return Err(ApiError::expired(format!(
            "too old resource version: {rv} ({})",
            state.store.resource_version()
        )));
    }
    let (items, rv) = state
        .store
        .list(&api::gr(t), (!ns.is_empty()).then_some(ns));
    let mut items: Vec<Value> = items
        .into_iter()
        .filter(|o| crate::watch::matches(o, query))
        .collect();
    // Chunking: the continue token names the last key returned.
    let key = |o: &Value| {
        format!(
            "{}/{}",
            o["metadata"]["namespace"].as_str().unwrap_or(""),
            o["metadata"]["name"].as_str().unwrap_or("")
        )
    };
    if let Some(token) = query.get("continue").filter(|c| !c.is_empty()) {
        use base64::Engine;
        let after = base64::engine::general_purpose::STANDARD
            .decode(token)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| ApiError::bad_request("continue key is not valid"))?;
        items.retain(|o| key(o) > after);
    }
    let mut cont = None;
    if let Some(limit) = query.get("limit").and_then(|l| l.parse::<usize>().ok())
        && limit > 0
        && items.len() > limit
    {
        items.truncate(limit);
        use base64::Engine;
        cont = items
            .last()
            .map(|o| base64::engine::general_purpose::STANDARD.encode(key(o)));
    }
    if wants_table(req) {
        let mut table = crate::table::table(t, &items, &rv.to_string(), state.clock.now());
        if let Some(c) = &cont {
            table["metadata"]["continue"] = json!(c);
        }
        return Ok(json_response(200, &table));
    }
    let items: Vec<Value> = items
        .into_iter()
        .map(|mut o| {
            if let Some(m) = o.as_object_mut() {
                m.remove("kind");
                m.remove("apiVersion");
            }
            o
        })
        .collect();
    let mut list = json!({"kind": format!("{}List", t.kind), "apiVersion": t.api_version(),
            "metadata": {"resourceVersion": rv.to_string()}, "items": items});
    if let Some(c) = cont {
        list["metadata"]["continue"] = json!(c);
    }
    Ok(json_response(200, &list))
}

/// `POST <collection>` (201).
pub async fn create(
    state: &State,
    req: Request<Incoming>,
    user: &User,
    t: &ResourceType,
    ns: &str,
) -> Result<Response<Body>, ApiError> {
    let (body, _) = read_json(req).await?;
    let obj = api::create(state, user, t, ns, body)?;
    Ok(json_response(201, &obj))
}

/// `PUT <collection>/<name>`.
pub async fn update(
    state: &State,
    req: Request<Incoming>,
    info: &RequestInfo,
    user: &User,
    t: &ResourceType,
    ns: &str,
) -> Result<Response<Body>, ApiError> {
    let (body, _) = read_json(req).await?;
    let obj = api::update(state, user, t, ns, &info.name, body, "")?;
    Ok(json_response(200, &obj))
}

/// `PATCH <collection>/<name>` (merge, strategic merge, JSON patch).
pub async fn patch(
    state: &State,
    req: Request<Incoming>,
    info: &RequestInfo,
    user: &User,
    t: &ResourceType,
    ns: &str,
) -> Result<Response<Body>, ApiError> {
    let (body, ct) = read_json(req).await?;
    let cur = state
        .store
        .get(&api::gr(t), ns, &info.name)
        .ok_or_else(|| ApiError::not_found(t.group, t.plural, &info.name))?;
    let new = apply_patch(&cur, &body, &ct)?;
    let obj = api::update(state, user, t, ns, &info.name, new, "")?;
    Ok(json_response(200, &obj))
}

/// `DELETE <collection>/<name>`: the deleted object (200).
pub fn delete(
    state: &State,
    info: &RequestInfo,
    user: &User,
    t: &ResourceType,
    ns: &str,
) -> Result<Response<Body>, ApiError> {
    let obj = api::delete_as(state, user, t, ns, &info.name)?;
    Ok(json_response(200, &obj))
}

/// `DELETE <collection>`: every object matching the selectors (each one
/// admitted on its own, as upstream; a refused one stays).
pub fn delete_collection(
    state: &State,
    query: &Query,
    user: &User,
    t: &ResourceType,
    ns: &str,
) -> Result<Response<Body>, ApiError> {
    let (items, _) = state
        .store
        .list(&api::gr(t), (!ns.is_empty()).then_some(ns));
    let mut deleted = Vec::new();
    for o in items
        .into_iter()
        .filter(|o| crate::watch::matches(o, query))
    {
        let n = o["metadata"]["name"].as_str().unwrap_or("").to_string();
        let on = o["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if let Ok(d) = api::delete_as(state, user, t, &on, &n) {
            deleted.push(d);
        }
    }
    Ok(json_response(
        200,
        &json!({"kind": format!("{}List", t.kind), "apiVersion": t.api_version(),
                "metadata": {"resourceVersion": state.store.resource_version().to_string()}, "items": deleted}),
    ))
}
