//! Routing of an authenticated, authorized request to its handler: the
//! non-resource documents, the review kinds (TokenReview and the access
//! reviews), a subresource, or a verb on a
//! resource collection.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, Response};

use crate::admission::{Attributes, Operation};
use crate::collection;
use crate::http::{Body, json_response, read_json};
use crate::rbac::User;
use crate::resources::{self, Query, RequestInfo, ResourceType};
use crate::state::State;
use crate::status::ApiError;

/// Dispatches one request.
pub async fn route(
    state: &Arc<State>,
    req: Request<Incoming>,
    info: &RequestInfo,
    query: &Query,
    user: &User,
) -> Result<Response<Body>, ApiError> {
    if !info.is_resource {
        return crate::discovery::serve(state, &info.path).map(|v| json_response(200, &v));
    }
    let t = resources::find(&info.group, &info.resource)
        .filter(|t| t.version == info.version)
        .ok_or_else(ApiError::path_not_found)?;
    let ns = if t.namespaced {
        info.namespace.clone()
    } else {
        String::new()
    };
    if t.namespaced && ns.is_empty() && !(info.verb == "list" || info.verb == "watch") {
        return Err(ApiError::path_not_found());
    }
    if t.create_only {
        if info.verb != "create" || !info.name.is_empty() {
            return Err(ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource",
            ));
        }
        let (body, _) = read_json(req).await?;
        let attrs = Attributes::new(Operation::Create, t, &ns, "", user);
        crate::admission::check(state, attrs, Some(&body), None)?;
        return review(state, t, &ns, user, body).map(|v| json_response(201, &v));
    }
    if !info.subresource.is_empty() {
        return subresource(state, req, info, query, user, t, &ns).await;
    }
    match info.verb.as_str() {
        "get" => collection::get(state, &req, info, t, &ns),
        "list" => collection::list(state, &req, query, t, &ns),
        "watch" => Ok(crate::watch::serve(
            state.clone(),
            t,
            &ns,
            query,
            crate::http::wants_table(&req),
        )),
        "create" => collection::create(state, req, user, t, &ns).await,
        "update" => collection::update(state, req, info, user, t, &ns).await,
        "patch" => collection::patch(state, req, info, user, t, &ns).await,
        "delete" => collection::delete(state, info, user, t, &ns),
        "deletecollection" => collection::delete_collection(state, query, user, t, &ns),
        _ => Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        )),
    }
}

/// The create-only kinds: evaluated for the request, never stored.
fn review(
    state: &State,
    t: &ResourceType,
    ns: &str,
    user: &User,
    body: serde_json::Value,
) -> Result<serde_json::Value, ApiError> {
    use crate::{access_review, token_review};
    match t.kind {
        "TokenReview" => token_review::token_review(state, body),
        "SelfSubjectReview" => Ok(token_review::self_subject_review(user)),
        "SubjectAccessReview" => access_review::subject_access_review(state, body),
        "LocalSubjectAccessReview" => access_review::local_subject_access_review(state, ns, body),
        "SelfSubjectAccessReview" => access_review::self_subject_access_review(state, user, body),
        "SelfSubjectRulesReview" => access_review::self_subject_rules_review(state, user, body),
        other => Err(ApiError::internal(format!("no review handler for {other}"))),
    }
}

async fn subresource(
    state: &Arc<State>,
    req: Request<Incoming>,
    info: &RequestInfo,
    query: &Query,
    user: &User,
    t: &ResourceType,
    ns: &str,
) -> Result<Response<Body>, ApiError> {
    match (t.plural, info.subresource.as_str(), info.verb.as_str()) {
        ("serviceaccounts", "token", "create") => {
            let (body, _) = read_json(req).await?;
            crate::tokenrequest::create(state, user, ns, &info.name, body)
                .map(|v| json_response(201, &v))
        }
        ("pods", "exec", "get") | ("pods", "exec", "create") => {
            crate::exec::handle(state.clone(), req, info, query, user).await
        }
        ("pods", "log", "get") => crate::pod_subresources::log(state, info, query, t, ns),
        ("pods", "ephemeralcontainers" | "status", "get") => {
            crate::pod_subresources::get(state, info, t, ns)
        }
        ("pods", "ephemeralcontainers", "update") => {
            crate::pod_subresources::update_ephemeral(state, req, info, user, t, ns).await
        }
        ("pods", "ephemeralcontainers", "patch") => {
            crate::pod_subresources::patch_ephemeral(state, req, info, user, t, ns).await
        }
        _ => Err(ApiError::path_not_found()),
    }
}
