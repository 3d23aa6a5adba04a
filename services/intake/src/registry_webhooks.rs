//! The HTTP edge: registry webhooks, health and metrics.
//!
//! `POST /v1/webhooks/{distribution,harbor,ghcr}`, one route per configured
//! registry family. The body is read as raw bytes up to the endpoint's limit
//! (GHCR's HMAC covers the exact bytes), handed to
//! `scanfleet-registry-events`, and every manifest push goes to the
//! [`PushMatcher`]. Answers:
//!
//! - 200 with a JSON tally (`queued`, `duplicate`, `already_queued`,
//!   `watching`, `ignored`): every event is accounted for, including blob
//!   pushes and pulls that were deliberately ignored;
//! - 400 / 401 / 413 / 422 from the domain crate's error, with a message
//!   naming the problem and where (never a secret);
//! - 429 with `Retry-After` when the intent stream is full or too many
//!   pushes wait for pods; 503 with `Retry-After` when the bus does not
//!   answer. Registries retry non-2xx; intents already accepted carry
//!   msg-ids derived from the event id, so the retry cannot double-queue.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use scanfleet_bus::EnqueueError;
use scanfleet_registry_events::{Endpoint, PushEvent, RegistryKind, WebhookRequest};
use serde_json::json;

use crate::container_intents::Tally;
use crate::metrics::Metrics;
use crate::push_matching::{PushError, PushMatcher, PushOutcome, UnmatchedPush};
use crate::push_watches::Watching;

/// Shared state of the HTTP handlers.
#[derive(Clone)]
pub struct HttpState {
    /// Configured endpoints by route name (`distribution`, `harbor`, `ghcr`).
    pub endpoints: Arc<HashMap<String, WebhookRoute>>,
    /// Push matching; `None` when no webhook is configured.
    pub matcher: Option<PushMatcher>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// What 429 / 503 answers put in `Retry-After`.
    pub retry_after: Duration,
}

/// One configured route.
#[derive(Clone, Debug)]
pub struct WebhookRoute {
    /// Parser and authenticator.
    pub endpoint: Endpoint,
    /// Body limit, checked while reading.
    pub max_body_bytes: usize,
    /// What a push for a digest no pod runs leads to.
    pub unmatched: UnmatchedPush,
}

/// The router.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ready" }))
        .route("/metrics", get(metrics))
        .route("/v1/webhooks/{kind}", post(webhook))
        .with_state(state)
}

async fn metrics(State(state): State<HttpState>, request: axum::http::HeaderMap) -> Response {
    scanfleet_process_lifecycle::metrics::response(state.metrics.registry(), &request)
}

fn error(status: StatusCode, message: String) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

fn backpressure(state: &HttpState, status: StatusCode, body: serde_json::Value) -> Response {
    Metrics::add(&state.metrics.webhook_backpressure, 1);
    let secs = state.retry_after.as_secs().max(1).to_string();
    (status, [(header::RETRY_AFTER, secs)], axum::Json(body)).into_response()
}

/// What one delivery led to, as answered to the registry.
#[derive(Debug, Default, serde::Serialize)]
struct DeliveryReport {
    registry: String,
    events: usize,
    #[serde(flatten)]
    tally: Tally,
    watching: u64,
    ignored: Vec<serde_json::Value>,
}

async fn webhook(
    State(state): State<HttpState>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (Some(route), Some(matcher)) = (state.endpoints.get(&kind), state.matcher.as_ref()) else {
        Metrics::add(&state.metrics.webhook_refused, 1);
        return error(
            StatusCode::NOT_FOUND,
            format!(
                "no webhook endpoint {:?} is configured",
                kind.chars().take(40).collect::<String>()
            ),
        );
    };
    let refused = |status: StatusCode, message: String| {
        Metrics::add(&state.metrics.webhook_refused, 1);
        error(status, message)
    };
    let bytes = match read_body(route, &headers, body).await {
        Ok(bytes) => bytes,
        Err(message) => return refused(StatusCode::PAYLOAD_TOO_LARGE, message),
    };
    let header_list: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_bytes()))
        .collect();
    let outcome = match route
        .endpoint
        .receive(&WebhookRequest::new(&header_list, &bytes))
    {
        Ok(o) => o,
        Err(e) => {
            let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
            tracing::info!(registry = %kind, status = status.as_u16(), error = %e,
                "webhook delivery refused");
            return refused(status, e.to_string());
        }
    };
    let mut report = DeliveryReport {
        registry: route.endpoint.kind().to_string(),
        events: outcome.events.len(),
        ignored: outcome
            .ignored
            .iter()
            .map(|i| json!({ "path": i.path, "reason": i.reason.to_string() }))
            .collect(),
        ..Default::default()
    };
    Metrics::add(
        &state.metrics.webhook_events_ignored,
        outcome.ignored.len() as u64,
    );
    if let Err((i, e)) = push_events(matcher, route.unmatched, &outcome.events, &mut report).await {
        return push_failure(&state, &kind, i, e, report);
    }
    Metrics::add(&state.metrics.webhook_accepted, 1);
    tracing::info!(registry = %kind, events = report.events, queued = report.tally.queued,
        watching = report.watching, ignored = report.ignored.len(), "webhook delivery handled");
    (StatusCode::OK, axum::Json(report)).into_response()
}

fn add_tally(into: &mut Tally, from: &Tally) {
    into.queued += from.queued;
    into.duplicate += from.duplicate;
    into.already_queued += from.already_queued;
}

/// The body, refused by `Content-Length` before reading anything, then
/// read up to the route's limit (GHCR's HMAC covers the exact bytes).
async fn read_body(
    route: &WebhookRoute,
    headers: &HeaderMap,
    body: Body,
) -> Result<axum::body::Bytes, String> {
    let limit = route.max_body_bytes;
    if let Some(n) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && n > limit as u64
    {
        return Err(format!(
            "body is {n} bytes, over the limit of {limit} bytes"
        ));
    }
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| format!("body is over the limit of {limit} bytes"))
}

/// Hands every push to the matcher, tallying into `report`; stops at the
/// first event that could not be handled and says which.
async fn push_events(
    matcher: &PushMatcher,
    unmatched: UnmatchedPush,
    events: &[PushEvent],
    report: &mut DeliveryReport,
) -> Result<(), (usize, PushError)> {
    for (i, event) in events.iter().enumerate() {
        match matcher.push(event, unmatched).await {
            Ok(PushOutcome::Matched(t)) => add_tally(&mut report.tally, &t),
            Ok(PushOutcome::Unmatched { image, watching }) => {
                if let Some(t) = image {
                    add_tally(&mut report.tally, &t);
                }
                if let Some(Watching::Added | Watching::Refreshed) = watching {
                    report.watching += 1;
                }
            }
            Err(e) => {
                if let PushError::Enqueue { before, .. } = &e {
                    add_tally(&mut report.tally, before);
                }
                return Err((i, e));
            }
        }
    }
    Ok(())
}

/// The answer when event `i` could not be queued: 429 or 503 with
/// `Retry-After` for backpressure, 500 otherwise, each saying what was
/// accepted before it.
fn push_failure(
    state: &HttpState,
    kind: &str,
    i: usize,
    e: PushError,
    report: DeliveryReport,
) -> Response {
    tracing::warn!(registry = %kind, event = i, error = %e,
        "webhook delivery not fully queued");
    let body = json!({
        "error": e.to_string(),
        "handled_events": i,
        "accepted_before": report,
    });
    let status = match &e {
        PushError::Enqueue {
            error: EnqueueError::QueueFull(_),
            ..
        }
        | PushError::WatchesFull(_) => StatusCode::TOO_MANY_REQUESTS,
        PushError::Enqueue {
            error: EnqueueError::Unavailable { .. },
            ..
        } => StatusCode::SERVICE_UNAVAILABLE,
        PushError::Enqueue { .. } => {
            Metrics::add(&state.metrics.webhook_refused, 1);
            return (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response();
        }
    };
    backpressure(state, status, body)
}

/// The route name of a registry family.
pub fn route_name(kind: RegistryKind) -> String {
    kind.to_string()
}
