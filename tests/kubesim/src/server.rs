//! The HTTPS front: TLS accept loop and the filter chain (fault injection,
//! authentication, authorization, auditing) in front of the router.
//!
//! Order per request mirrors kube-apiserver's filter chain: faults (our
//! addition, so reliability tests see them first), authentication (401),
//! request-info and RBAC authorization (403), then the handler.

use std::sync::Arc;
use std::time::Instant;

use hyper::body::Incoming;
use hyper::{Request, Response};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::audit::AuditRecord;
use crate::faults::FaultAction;
use crate::http::{Body, empty_response, error_response};
use crate::rbac::{self, User};
use crate::resources::{Query, RequestInfo};
use crate::state::State;
use crate::status::ApiError;

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
            let mut r = empty_response();
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
    let authenticated = (!token.is_empty())
        .then(|| crate::authn::authenticate(state, token, &crate::authn::api_audiences()).ok())
        .flatten();
    let Some(user) = authenticated.map(|a| a.user) else {
        return error_response(&ApiError::unauthorized());
    };
    *user_out = Some(user.clone());
    let decision = rbac::authorize(state.as_ref(), &user, info);
    if !decision.allowed {
        return error_response(&rbac::forbidden(&user, info, &decision.reason));
    }
    match crate::router::route(state, req, info, query, &user).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    }
}
