//! The HTTPS front: TLS accept loop, authentication, authorization, auditing,
//! fault injection and routing to the verb handlers.
//!
//! Order per request mirrors kube-apiserver's filter chain: faults (our
//! addition, so reliability tests see them first), authentication (401),
//! request-info and RBAC authorization (403), then the handler.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api;
use crate::audit::{AuditLog, AuditRecord};
use crate::clock::Clock;
use crate::faults::{FaultAction, Faults};
use crate::rbac::{self, RbacSource, User};
use crate::resources::{self, Query, RequestInfo, ResourceType};
use crate::runtime::Runtime;
use crate::status::ApiError;
use crate::store::Store;
use crate::tokens::TokenSigner;

/// The node every pod is scheduled to.
pub const NODE_NAME: &str = "kubesim-node";

/// Response body type.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Shared server state.
pub struct State {
    /// Objects.
    pub store: Arc<Store>,
    /// Time source (tests advance it).
    pub clock: Arc<Clock>,
    /// ServiceAccount token signer.
    pub signer: Arc<TokenSigner>,
    /// Static bearer tokens and their users.
    pub static_tokens: Vec<(String, User)>,
    /// Container processes.
    pub runtime: Runtime,
    /// Audit sink.
    pub audit: Option<AuditLog>,
    /// Injected faults.
    pub faults: Faults,
    /// Interval between watch bookmarks.
    pub bookmark_interval: std::time::Duration,
    /// Shutdown signal for long-running streams.
    pub shutdown: watch::Receiver<bool>,
    /// `host:port` served.
    pub address: String,
    /// Every token a TokenRequest issued, so leak tests know what to look
    /// for in logs and on disk (a real API server keeps none).
    pub issued_tokens: std::sync::Mutex<Vec<String>>,
}

impl RbacSource for State {
    fn cluster_role_bindings(&self) -> Vec<Value> {
        self.store
            .list("clusterrolebindings.rbac.authorization.k8s.io", None)
            .0
    }
    fn role_bindings(&self, ns: &str) -> Vec<Value> {
        self.store
            .list("rolebindings.rbac.authorization.k8s.io", Some(ns))
            .0
    }
    fn cluster_role(&self, name: &str) -> Option<Value> {
        self.store
            .get("clusterroles.rbac.authorization.k8s.io", "", name)
    }
    fn role(&self, ns: &str, name: &str) -> Option<Value> {
        self.store.get("roles.rbac.authorization.k8s.io", ns, name)
    }
}

impl State {
    /// Starts a new pod's containers.
    pub fn pod_created(self: &State, pod: &Value) {
        self.runtime.pod_created(pod);
    }
    /// Stops a deleted pod's processes.
    pub fn pod_deleted(&self, pod: &Value) {
        self.runtime.pod_deleted(pod);
    }
    /// Starts newly added ephemeral containers.
    pub fn pod_ephemeral_changed(&self, pod: &Value) {
        self.runtime.ephemeral_changed(pod);
    }

    /// Authenticates a bearer token: static tokens, then ServiceAccount JWTs
    /// re-checked against the live store (SA and bound pod must still exist
    /// with the same uid).
    pub fn authenticate(&self, token: &str) -> Option<User> {
        if let Some((_, u)) = self.static_tokens.iter().find(|(t, _)| {
            // Compare digests so the comparison time does not depend on
            // how much of the secret a guess got right.
            use sha2::Digest;
            sha2::Sha256::digest(t.as_bytes()) == sha2::Sha256::digest(token.as_bytes())
        }) {
            return Some(u.clone());
        }
        let now = self.clock.now();
        let claims = match self.signer.verify(token, now) {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!("token rejected: {e}");
                return None;
            }
        };
        let k = &claims.kubernetes;
        let sa = self
            .store
            .get("serviceaccounts", &k.namespace, &k.serviceaccount.name)?;
        if sa["metadata"]["uid"].as_str() != Some(k.serviceaccount.uid.as_str()) {
            tracing::debug!("token rejected: service account uid changed");
            return None;
        }
        if let Some(p) = &k.pod {
            let pod = self.store.get("pods", &k.namespace, &p.name)?;
            if pod["metadata"]["uid"].as_str() != Some(p.uid.as_str()) {
                tracing::debug!("token rejected: bound pod uid changed");
                return None;
            }
            if let Some(dt) = pod["metadata"]["deletionTimestamp"]
                .as_str()
                .and_then(crate::clock::parse_time)
                && dt < now - 60
            {
                return None;
            }
        }
        Some(User {
            name: claims.sub.clone(),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{}", k.namespace),
                "system:authenticated".into(),
            ],
        })
    }
}

/// Builds a JSON response.
pub fn json_response(code: u16, body: &Value) -> Response<Body> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(bytes)).boxed_unsync())
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed_unsync()))
}

/// Renders an error as its Status response.
pub fn error_response(e: &ApiError) -> Response<Body> {
    let mut r = json_response(e.code, &e.body());
    r.headers_mut().insert(
        "x-content-type-options",
        hyper::header::HeaderValue::from_static("nosniff"),
    );
    if let Some(s) = e.retry_after
        && let Ok(v) = hyper::header::HeaderValue::from_str(&s.to_string())
    {
        r.headers_mut().insert("retry-after", v);
    }
    r
}

/// Serves connections until `shutdown` flips.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: Arc<State>,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let (tcp, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => { tracing::warn!("accept failed: {e}"); continue; }
            },
            _ = shutdown.changed() => return,
        };
        let acceptor = acceptor.clone();
        let state = state.clone();
        let mut conn_shutdown = shutdown.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let io = hyper_util::rt::TokioIo::new(tls);
            let svc = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move {
                    let resp = handle(state, req).await;
                    if resp.extensions().get::<DropConnection>().is_some() {
                        // An error from the service makes hyper close the
                        // connection without answering: a dropped connection.
                        return Err(std::io::Error::other("fault: dropped connection"));
                    }
                    Ok(resp)
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, svc)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = conn_shutdown.changed() => {}
            }
        });
    }
}

/// Marker in a response's extensions asking the connection to be dropped.
#[derive(Clone, Copy)]
pub struct DropConnection;

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let received_unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = Query::parse(req.uri().query());
    let info = RequestInfo::parse(&method, &path, &query);

    let mut user = None;
    let resp = match state.faults.decide(&path) {
        FaultAction::Respond(e) => error_response(&e),
        FaultAction::Drop => {
            let mut r = Response::new(Full::new(Bytes::new()).boxed_unsync());
            r.extensions_mut().insert(DropConnection);
            r
        }
        FaultAction::Delay(d) => {
            tokio::time::sleep(d).await;
            authed(&state, req, &info, &query, &mut user).await
        }
        FaultAction::None => authed(&state, req, &info, &query, &mut user).await,
    };
    if let Some(audit) = &state.audit {
        let u = user.clone().unwrap_or_default();
        audit.write(&AuditRecord {
            user: u.name,
            groups: u.groups,
            verb: info.verb.clone(),
            resource: info.resource.clone(),
            subresource: info.subresource.clone(),
            name: info.name.clone(),
            namespace: info.namespace.clone(),
            path: path.clone(),
            code: resp.status().as_u16(),
            latency_ms: started.elapsed().as_secs_f64() * 1000.0,
            received_unix_ms,
        });
    }
    resp
}

async fn authed(
    state: &Arc<State>,
    req: Request<Incoming>,
    info: &RequestInfo,
    query: &Query,
    user_out: &mut Option<User>,
) -> Response<Body> {
    let token = req
        .headers()
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or("");
    let Some(user) = (!token.is_empty())
        .then(|| state.authenticate(token))
        .flatten()
    else {
        return error_response(&ApiError::unauthorized());
    };
    *user_out = Some(user.clone());
    let decision = rbac::authorize(state.as_ref(), &user, info);
    if !decision.allowed {
        return error_response(&rbac::forbidden(&user, info, &decision.reason));
    }
    match route(state, req, info, query, &user).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    }
}

async fn read_json(req: Request<Incoming>) -> Result<(Value, String), ApiError> {
    let ct = req
        .headers()
        .get("content-type")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    // Upstream's default --max-resource-write-bytes.
    const LIMIT: usize = 3 * 1024 * 1024;
    let body = http_body_util::Limited::new(req.into_body(), LIMIT)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                ApiError::too_large(LIMIT)
            } else {
                ApiError::bad_request(format!("cannot read request body: {e}"))
            }
        })?
        .to_bytes();
    if body.is_empty() {
        return Ok((json!({}), ct));
    }
    if ct.contains("yaml") {
        let v: Value = serde_yaml::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
        return Ok((v, ct));
    }
    if ct.contains("protobuf") {
        let v = crate::protobuf::decode(&body).map_err(|e| ApiError::bad_request(e.to_string()))?;
        return Ok((v, "application/json".to_string()));
    }
    let v = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "Object 'Kind' is missing in '{}': {e}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ))
    })?;
    Ok((v, ct))
}

fn wants_table(req: &Request<Incoming>) -> bool {
    req.headers()
        .get("accept")
        .and_then(|h| h.to_str().ok())
        .is_some_and(|a| a.contains("as=Table"))
}

async fn route(
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
        let review = if t.kind == "SelfSubjectRulesReview" {
            crate::review::self_subject_rules_review(state, user, body)
        } else {
            crate::review::self_subject_access_review(state, user, body)
        };
        return review.map(|v| json_response(201, &v));
    }
    if !info.subresource.is_empty() {
        return subresource(state, req, info, query, user, t, &ns).await;
    }
    let g = api::gr(t);
    match info.verb.as_str() {
        "get" => {
            let obj = state
                .store
                .get(&g, &ns, &info.name)
                .ok_or_else(|| ApiError::not_found(t.group, t.plural, &info.name))?;
            if wants_table(&req) {
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
        "list" => {
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
                .list(&g, (!ns.is_empty()).then_some(ns.as_str()));
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
            if wants_table(&req) {
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
        "watch" => Ok(crate::watch::serve(
            state.clone(),
            t,
            &ns,
            query,
            wants_table(&req),
        )),
        "create" => {
            let (body, _) = read_json(req).await?;
            let obj = api::create(state, user, t, &ns, body)?;
            Ok(json_response(201, &obj))
        }
        "update" => {
            let (body, _) = read_json(req).await?;
            let obj = api::update(state, user, t, &ns, &info.name, body, "")?;
            Ok(json_response(200, &obj))
        }
        "patch" => {
            let (body, ct) = read_json(req).await?;
            let cur = state
                .store
                .get(&g, &ns, &info.name)
                .ok_or_else(|| ApiError::not_found(t.group, t.plural, &info.name))?;
            let new = apply_patch(&cur, &body, &ct)?;
            let obj = api::update(state, user, t, &ns, &info.name, new, "")?;
            Ok(json_response(200, &obj))
        }
        "delete" => {
            let obj = api::delete(state, t, &ns, &info.name)?;
            Ok(json_response(200, &obj))
        }
        "deletecollection" => {
            let (items, _) = state
                .store
                .list(&g, (!ns.is_empty()).then_some(ns.as_str()));
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
                if let Ok(d) = api::delete(state, t, &on, &n) {
                    deleted.push(d);
                }
            }
            Ok(json_response(
                200,
                &json!({"kind": format!("{}List", t.kind), "apiVersion": t.api_version(),
                        "metadata": {"resourceVersion": state.store.resource_version().to_string()}, "items": deleted}),
            ))
        }
        _ => Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        )),
    }
}

/// Applies a PATCH body according to its media type.
pub fn apply_patch(cur: &Value, body: &Value, ct: &str) -> Result<Value, ApiError> {
    let r = match ct {
        "application/merge-patch+json" => Ok(crate::patch::merge(cur, body)),
        "application/strategic-merge-patch+json" => crate::patch::strategic(cur, body),
        "application/json-patch+json" => crate::patch::json_patch(cur, body),
        other => return Err(ApiError::unsupported_media(other)),
    };
    r.map_err(|e| match e {
        crate::patch::PatchError::Malformed(m) => ApiError::bad_request(m),
        crate::patch::PatchError::Failed(m) => ApiError::new_invalid_patch(m),
    })
}

impl ApiError {
    fn new_invalid_patch(m: String) -> Self {
        let mut e = ApiError::bad_request(m);
        e.code = 422;
        e.reason = "Invalid";
        e
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
    let g = api::gr(t);
    match (t.plural, info.subresource.as_str(), info.verb.as_str()) {
        ("serviceaccounts", "token", "create") => {
            let (body, _) = read_json(req).await?;
            crate::tokenrequest::create(state, ns, &info.name, body).map(|v| json_response(201, &v))
        }
        ("pods", "exec", "get") | ("pods", "exec", "create") => {
            crate::exec::handle(state.clone(), req, info, query, user).await
        }
        ("pods", "log", "get") => {
            let pod = state
                .store
                .get(&g, ns, &info.name)
                .ok_or_else(|| ApiError::not_found(t.group, t.plural, &info.name))?;
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
            let mut r = Response::new(Full::new(Bytes::from(text)).boxed_unsync());
            r.headers_mut().insert(
                "content-type",
                hyper::header::HeaderValue::from_static("text/plain"),
            );
            Ok(r)
        }
        ("pods", "ephemeralcontainers" | "status", "get") => {
            let obj = state
                .store
                .get(&g, ns, &info.name)
                .ok_or_else(|| ApiError::not_found(t.group, t.plural, &info.name))?;
            Ok(json_response(200, &obj))
        }
        ("pods", "ephemeralcontainers", "update") => {
            let (body, _) = read_json(req).await?;
            api::update(state, user, t, ns, &info.name, body, "ephemeralcontainers")
                .map(|v| json_response(200, &v))
        }
        ("pods", "ephemeralcontainers", "patch") => {
            let (body, ct) = read_json(req).await?;
            let cur = state
                .store
                .get(&g, ns, &info.name)
                .ok_or_else(|| ApiError::not_found(t.group, t.plural, &info.name))?;
            let new = apply_patch(&cur, &body, &ct)?;
            api::update(state, user, t, ns, &info.name, new, "ephemeralcontainers")
                .map(|v| json_response(200, &v))
        }
        _ => Err(ApiError::path_not_found()),
    }
}

/// A streaming chunked body fed by a channel.
pub fn channel_body(rx: tokio::sync::mpsc::Receiver<Bytes>) -> Body {
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    BodyExt::boxed_unsync(StreamBody::new(stream.boxed()))
}
