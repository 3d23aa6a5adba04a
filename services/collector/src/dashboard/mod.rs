//! The posture dashboard at `/ui`: server-rendered HTML on the collector's
//! HTTP listener (same TLS), readable without JavaScript, for the same
//! readers the JSON API serves and only within what they may read.
//!
//! Who is looking ([`Viewer`]): a session cookie from `/ui/login`
//! ([`session`]), else the request's own credentials (a bearer token, or a
//! client certificate mapped to a user, as on the API). Every page narrows
//! its queries with [`ResultReader::narrow`] (`list results` per
//! namespace) or checks `get` on the one result it shows.
//!
//! Pages: [`overview`] (`/ui`), [`scan_page`] (`/ui/scans/{id}`),
//! [`control_page`] (`/ui/controls/{id}`); [`layout`] frames them and sets
//! the CSP; [`charts`] draws SVG; [`hdf_view`] reads a report's controls.

pub mod charts;
pub mod control_page;
pub mod drift_view;
pub mod hdf_view;
pub mod layout;
pub mod overview;
pub mod scan_page;
pub mod session;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Form, FromRequestParts, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use maud::html;
use scanfleet_edge_access::{AccessError, Caller, Credentials};
use serde::Deserialize;

use crate::result_access::{ReadError, ResultReader};
use session::Sessions;

/// How the dashboard behaves.
#[derive(Clone, Copy, Debug)]
pub struct DashboardSettings {
    /// Workloads last scanned longer ago than this are stale.
    pub stale_after: Duration,
    /// How long a login lasts.
    pub session_ttl: Duration,
}

/// Shared state of the dashboard's handlers.
#[derive(Clone)]
pub struct DashboardState {
    /// The store as callers may read it.
    pub reader: Arc<ResultReader>,
    /// Browser sessions.
    pub sessions: Arc<Sessions>,
    /// Settings.
    pub settings: DashboardSettings,
}

/// The `/ui` routes, every response with the security headers.
pub fn router(reader: Arc<ResultReader>, settings: DashboardSettings) -> Router {
    let state = DashboardState {
        reader,
        sessions: Arc::new(Sessions::new(settings.session_ttl, session::MAX_SESSIONS)),
        settings,
    };
    Router::new()
        .route("/ui", get(overview::page))
        .route("/ui/", get(|| async { Redirect::to("/ui") }))
        .route("/ui/style.css", get(stylesheet))
        .route("/ui/login", get(login_form).post(login))
        .route("/ui/logout", axum::routing::post(logout))
        .route("/ui/scans/{scan_id}", get(scan_page::page))
        .route("/ui/scans/{scan_id}/report.json", get(scan_page::report))
        .route(
            "/ui/scans/{scan_id}/envelope.json",
            get(scan_page::envelope),
        )
        .route("/ui/controls/{control_id}", get(control_page::page))
        .layer(axum::middleware::map_response(|r: Response| async move {
            layout::secure(r)
        }))
        .with_state(state)
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        layout::STYLESHEET,
    )
        .into_response()
}

/// Who is looking at a page.
pub struct Viewer(pub Caller);

impl FromRequestParts<DashboardState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &DashboardState,
    ) -> Result<Self, Response> {
        if let Some(id) = session::session_id(&parts.headers)
            && let Some(caller) = state.sessions.caller(&id)
        {
            return Ok(Viewer(caller));
        }
        let credentials = Credentials::from_http(parts);
        if credentials.bearer.is_none()
            && credentials.client_subject.is_none()
            && credentials.malformed.is_none()
            && credentials.forwarded.is_none()
        {
            return Err(Redirect::to("/ui/login").into_response());
        }
        state
            .reader
            .gate
            .admit(&credentials)
            .await
            .map(Viewer)
            .map_err(|e| refusal(&ReadError::Access(e)))
    }
}

/// A read refusal as a page, with the API's status code.
pub fn refusal(e: &ReadError) -> Response {
    let code = match e {
        ReadError::Access(AccessError::Unauthenticated(_)) => StatusCode::UNAUTHORIZED,
        ReadError::Access(AccessError::Forbidden { .. } | AccessError::ForbiddenIn { .. }) => {
            StatusCode::FORBIDDEN
        }
        ReadError::Access(AccessError::RateLimited { .. }) => StatusCode::TOO_MANY_REQUESTS,
        ReadError::NotFound(_) => StatusCode::NOT_FOUND,
        ReadError::Invalid(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    layout::error_page(code, &e.to_string())
}

async fn login_form() -> Response {
    login_page(StatusCode::OK, None)
}

fn login_page(code: StatusCode, problem: Option<&str>) -> Response {
    let body = html! {
        div class="login" {
            @if let Some(problem) = problem { p class="error" role="alert" { (problem) } }
            p { "Paste a Kubernetes bearer token for this collector's audience. It is reviewed once \
                 (TokenReview) and exchanged for a short session; the token is not kept." }
            form method="post" action="/ui/login" {
                p {
                    label for="token" { "Bearer token" }
                    br;
                    textarea id="token" name="token" rows="6" required autocomplete="off" {}
                }
                button type="submit" { "Sign in" }
            }
        }
    };
    layout::respond(code, layout::frame("Sign in", None, body))
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(
    State(state): State<DashboardState>,
    connection: Option<axum::Extension<scanfleet_process_lifecycle::serving::ConnectionInfo>>,
    Form(form): Form<LoginForm>,
) -> Response {
    let token = form.token.trim();
    let mut headers = http::HeaderMap::new();
    match http::HeaderValue::from_str(&format!("Bearer {token}")) {
        Ok(value) => {
            headers.insert(header::AUTHORIZATION, value);
        }
        Err(_) => {
            return login_page(
                StatusCode::BAD_REQUEST,
                Some("The token has characters no token has."),
            );
        }
    }
    let credentials = Credentials::from_parts(&headers, connection.as_ref().map(|c| &c.0));
    match state.reader.gate.admit(&credentials).await {
        Ok(caller) => {
            tracing::info!(user = %caller.name, "dashboard login");
            let id = state.sessions.open(caller);
            (
                StatusCode::SEE_OTHER,
                [
                    (header::SET_COOKIE, state.sessions.cookie(&id)),
                    (header::LOCATION, "/ui".to_owned()),
                ],
            )
                .into_response()
        }
        Err(e) => login_page(StatusCode::UNAUTHORIZED, Some(&e.to_string())),
    }
}

async fn logout(State(state): State<DashboardState>, headers: http::HeaderMap) -> Response {
    if let Some(id) = session::session_id(&headers) {
        state.sessions.close(&id);
    }
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, session::expired_cookie()),
            (header::LOCATION, "/ui/login".to_owned()),
        ],
    )
        .into_response()
}
