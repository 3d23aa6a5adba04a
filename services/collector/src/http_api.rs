//! The HTTP JSON API: results for dashboards and scripts, the exact envelope
//! and HDF report for independent verification, and health and metrics.
//!
//! `/v1/results…` answer only admitted callers (`Authorization: Bearer` or
//! a mapped client certificate; 401 otherwise) and only what
//! [`ResultReader`] lets them read (403 naming the namespace); `/healthz`,
//! `/readyz` and `/metrics` stay open for probes and scrapers.

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRef, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use scanfleet_edge_access::{Admitted, Gatekeeper, Verb};
use scanfleet_result_store::{PageToken, ResultFilter, StoreError, StoredResult};
use serde::Deserialize;
use serde_json::json;

use crate::metrics::Metrics;
use crate::result_access::{ReadError, ResultReader};

/// Shared state of the HTTP handlers.
#[derive(Clone)]
pub struct HttpState {
    /// The store as callers may read it.
    pub reader: Arc<ResultReader>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
}

impl FromRef<HttpState> for Arc<Gatekeeper> {
    fn from_ref(state: &HttpState) -> Self {
        state.reader.gate.clone()
    }
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
        .route("/v1/results/{scan_id}/drift", get(drift))
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
    state.reader.store.count().await?;
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
    Admitted(caller): Admitted,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<serde_json::Value>, Response> {
    let Query(p) =
        params.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()).into_response())?;
    let completed = match p.outcome.as_deref() {
        None => None,
        Some("completed") => Some(true),
        Some("failed") => Some(false),
        Some(other) => {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                format!("outcome: expected completed or failed, got {other:?}"),
            )
            .into_response());
        }
    };
    let token = p
        .page_token
        .as_deref()
        .filter(|t| !t.is_empty())
        .map(PageToken::decode)
        .transpose()
        .map_err(|e| ApiError::from(e).into_response())?;
    let mut filter = ResultFilter {
        cluster: p.cluster,
        namespace: p.namespace,
        namespaces: None,
        pod: p.pod,
        image_digest: p.image_digest,
        completed,
        threshold_passed: p.threshold_passed,
        since_ms: p.since_ms,
        until_ms: p.until_ms,
    };
    state
        .reader
        .narrow(&caller, Verb::List, &mut filter)
        .await
        .map_err(IntoResponse::into_response)?;
    let page = state
        .reader
        .store
        .list(&filter, p.page_size.unwrap_or(0), token.as_ref())
        .await
        .map_err(|e| ApiError::from(e).into_response())?;
    Ok(axum::Json(json!({
        "results": page.results.iter().map(summary).collect::<Vec<_>>(),
        "nextPageToken": page.next.map(|t| t.encode()),
    })))
}

async fn one(
    State(state): State<HttpState>,
    Admitted(caller): Admitted,
    Path(scan_id): Path<String>,
) -> Result<axum::Json<serde_json::Value>, ReadError> {
    let r = state.reader.one(&caller, &scan_id, Verb::Get).await?;
    let mut body = summary(&r);
    body["statement"] = serde_json::from_str(&r.statement).unwrap_or(serde_json::Value::Null);
    Ok(axum::Json(body))
}

async fn envelope(
    State(state): State<HttpState>,
    Admitted(caller): Admitted,
    Path(scan_id): Path<String>,
) -> Result<Response, ReadError> {
    let r = state.reader.one(&caller, &scan_id, Verb::Get).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], r.envelope).into_response())
}

async fn report(
    State(state): State<HttpState>,
    Admitted(caller): Admitted,
    Path(scan_id): Path<String>,
) -> Result<Response, ReadError> {
    let report = state.reader.report(&caller, &scan_id).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], report.body).into_response())
}

/// A container scan's drift report: `{containerScanId, imageScanId,
/// profile, computedAtMs, controls: [{id, title, image: {status,
/// message}, container: {…}}]}`.
async fn drift(
    State(state): State<HttpState>,
    Admitted(caller): Admitted,
    Path(scan_id): Path<String>,
) -> Result<axum::Json<serde_json::Value>, ReadError> {
    let d = state.reader.drift(&caller, &scan_id).await?;
    Ok(axum::Json(json!({
        "containerScanId": d.record.container_scan_id,
        "imageScanId": d.record.image_scan_id,
        "profile": { "name": d.record.profile_name, "version": d.record.profile_version },
        "computedAtMs": d.record.computed_at_ms,
        "controls": d.controls,
    })))
}
