//! The HTTP JSON API: results for dashboards and scripts, the exact envelope
//! and HDF report for independent verification, and health and metrics.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use scanfleet_result_store::{PageToken, ResultFilter, ResultStore, StoreError, StoredResult};
use serde::Deserialize;
use serde_json::json;

use crate::metrics::Metrics;

/// Shared state of the HTTP handlers.
#[derive(Clone)]
pub struct HttpState {
    /// The store.
    pub store: Arc<ResultStore>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
}

/// The router.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .route("/v1/results", get(list))
        .route("/v1/results/{scan_id}", get(one))
        .route("/v1/results/{scan_id}/envelope", get(envelope))
        .route("/v1/results/{scan_id}/report", get(report))
        .with_state(state)
}

struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let code = match e {
            StoreError::InvalidPageToken(_) => StatusCode::BAD_REQUEST,
            StoreError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(code, e.to_string())
    }
}

async fn ready(State(state): State<HttpState>) -> Result<&'static str, ApiError> {
    state.store.count().await?;
    Ok("ready")
}

async fn metrics(State(state): State<HttpState>, request: axum::http::HeaderMap) -> Response {
    scanfleet_process_lifecycle::metrics::response(state.metrics.registry(), &request)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    cluster: Option<String>,
    namespace: Option<String>,
    pod: Option<String>,
    image_digest: Option<String>,
    outcome: Option<String>,
    threshold_passed: Option<bool>,
    since_ms: Option<i64>,
    until_ms: Option<i64>,
    page_size: Option<u32>,
    page_token: Option<String>,
}

fn summary(r: &StoredResult) -> serde_json::Value {
    json!({
        "scanId": r.scan_id,
        "cluster": r.cluster,
        "namespace": r.namespace,
        "pod": r.pod,
        "container": r.container,
        "image": r.image,
        "imageDigest": r.image_digest,
        "profile": { "name": r.profile_name, "version": r.profile_version, "sha256": r.profile_sha256 },
        "approach": r.approach,
        "outcome": if r.completed { "completed" } else { "failed" },
        "failure": r.failure,
        "counts": r.counts.as_ref().map(|c| json!({
            "passed": c.passed, "failed": c.failed, "notReviewed": c.not_reviewed,
            "notApplicable": c.not_applicable, "error": c.error,
            "compliancePercent": c.compliance_percent,
            "failedBySeverity": { "critical": c.failed_critical, "high": c.failed_high,
                                  "medium": c.failed_medium, "low": c.failed_low },
        })),
        "thresholdPassed": r.threshold_passed,
        "startedAtMs": r.started_at_ms,
        "finishedAtMs": r.finished_at_ms,
        "persistedAtMs": r.persisted_at_ms,
        "signerKeyId": r.signer_key_id,
        "reportSha256": r.report_sha256,
        "reportSize": r.report_size,
    })
}

async fn list(
    State(state): State<HttpState>,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let Query(p) = params.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    let completed = match p.outcome.as_deref() {
        None => None,
        Some("completed") => Some(true),
        Some("failed") => Some(false),
        Some(other) => {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                format!("outcome: expected completed or failed, got {other:?}"),
            ));
        }
    };
    let token = p
        .page_token
        .as_deref()
        .filter(|t| !t.is_empty())
        .map(PageToken::decode)
        .transpose()?;
    let filter = ResultFilter {
        cluster: p.cluster,
        namespace: p.namespace,
        pod: p.pod,
        image_digest: p.image_digest,
        completed,
        threshold_passed: p.threshold_passed,
        since_ms: p.since_ms,
        until_ms: p.until_ms,
    };
    let page = state
        .store
        .list(&filter, p.page_size.unwrap_or(0), token.as_ref())
        .await?;
    Ok(axum::Json(json!({
        "results": page.results.iter().map(summary).collect::<Vec<_>>(),
        "nextPageToken": page.next.map(|t| t.encode()),
    })))
}

async fn find(state: &HttpState, scan_id: &str) -> Result<StoredResult, ApiError> {
    state.store.get(scan_id).await?.ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            format!("no result for scan {scan_id}"),
        )
    })
}

async fn one(
    State(state): State<HttpState>,
    Path(scan_id): Path<String>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let r = find(&state, &scan_id).await?;
    let mut body = summary(&r);
    body["statement"] = serde_json::from_str(&r.statement).unwrap_or(serde_json::Value::Null);
    Ok(axum::Json(body))
}

async fn envelope(
    State(state): State<HttpState>,
    Path(scan_id): Path<String>,
) -> Result<Response, ApiError> {
    let r = find(&state, &scan_id).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], r.envelope).into_response())
}

async fn report(
    State(state): State<HttpState>,
    Path(scan_id): Path<String>,
) -> Result<Response, ApiError> {
    let report = state.store.report(&scan_id).await?.ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            format!("no report stored for scan {scan_id}"),
        )
    })?;
    Ok(([(header::CONTENT_TYPE, "application/json")], report.body).into_response())
}
