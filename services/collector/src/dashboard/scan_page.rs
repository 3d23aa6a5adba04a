//! One scan (`/ui/scans/{id}`): where and what was scanned, the signature
//! that verified, the threshold verdict, drift against the image scan
//! when one exists, and every control with its
//! checks, filtered by status and severity (GET parameters); plus the
//! exact HDF report and DSSE envelope as downloads for Heimdall, the SAF
//! CLI or an independent `scanfleet envelope verify`.

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::html;
use scanfleet_edge_access::Verb;
use serde::Deserialize;

use super::drift_view;
use super::hdf_view::{self, SEVERITIES, STATUSES, status_label};
use super::layout::{error_page, frame, respond, timestamp};
use super::overview::{urlencode, verdict};
use super::{DashboardState, Viewer, refusal};

/// The scan page's GET parameters.
#[derive(Deserialize, Default)]
pub struct Params {
    status: Option<String>,
    severity: Option<String>,
}

fn chosen<'a>(
    value: Option<&'a str>,
    allowed: &[&str],
    what: &str,
) -> Result<Option<&'a str>, String> {
    match value.filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) if allowed.contains(&v) => Ok(Some(v)),
        Some(_) => Err(format!("{what}: expected one of {}", allowed.join(", "))),
    }
}

/// `GET /ui/scans/{id}`.
pub async fn page(
    State(state): State<DashboardState>,
    Viewer(caller): Viewer,
    Path(scan_id): Path<String>,
    Query(p): Query<Params>,
) -> Response {
    let (status, severity) = match (
        chosen(p.status.as_deref(), &STATUSES, "status"),
        chosen(p.severity.as_deref(), &SEVERITIES, "severity"),
    ) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return error_page(StatusCode::BAD_REQUEST, &e),
    };
    let r = match state.reader.one(&caller, &scan_id, Verb::Get).await {
        Ok(r) => r,
        Err(e) => return refusal(&e),
    };
    let controls = match state.reader.report(&caller, &scan_id).await {
        Ok(report) => hdf_view::controls(&report.body),
        Err(crate::result_access::ReadError::NotFound(_)) => Vec::new(),
        Err(e) => return refusal(&e),
    };
    let drift = match state.reader.drift(&caller, &scan_id).await {
        Ok(d) => Some(d),
        Err(crate::result_access::ReadError::NotFound(_)) => None,
        Err(e) => return refusal(&e),
    };
    let shown: Vec<_> = controls
        .iter()
        .filter(|c| status.is_none_or(|s| c.status == s))
        .filter(|c| severity.is_none_or(|s| c.severity == s))
        .collect();
    let id = urlencode(&r.scan_id);
    let body = html! {
        dl class="facts" {
            dt { "Workload" } dd { (r.cluster) "/" (r.namespace) "/" (r.pod) "/" (r.container) }
            dt { "Image" } dd { (r.image) " " code { (r.image_digest) } }
            dt { "Profile" } dd { (r.profile_name) " " (r.profile_version) }
            dt { "Scan" } dd { code { (r.scan_id) } " (" (r.approach) "), finished " (timestamp(r.finished_at_ms)) }
            dt { "Signature" } dd { span id="signature" class="badge passed" { "verified" }
                " DSSE signature verified by the collector before storing, key id " code { (r.signer_key_id) } }
            dt { "Outcome" } dd { @if r.completed { "completed" } @else { span class="failed" { "failed: " (r.failure.as_deref().unwrap_or("")) } } }
            dt { "Threshold verdict" } dd { (verdict(r.threshold_passed)) }
            dt { "Downloads" } dd {
                a href={"/ui/scans/" (id) "/report.json"} download { "HDF report" } " · "
                a href={"/ui/scans/" (id) "/envelope.json"} download { "DSSE envelope" }
            }
        }
        (drift_view::section(&r, drift.as_ref()))
        h2 id="controls" { "Controls (" (shown.len()) " of " (controls.len()) ")" }
        form class="filters" method="get" action={"/ui/scans/" (id)} {
            label for="status" { "Status"
                select id="status" name="status" {
                    option value="" selected[status.is_none()] { "any" }
                    @for s in STATUSES { option value=(s) selected[status == Some(s)] { (status_label(s)) } }
                }
            }
            label for="severity" { "Severity"
                select id="severity" name="severity" {
                    option value="" selected[severity.is_none()] { "any" }
                    @for s in SEVERITIES { option value=(s) selected[severity == Some(s)] { (s) } }
                }
            }
            button type="submit" { "Filter" }
        }
        table id="control-table" {
            thead { tr {
                th scope="col" { "Control" } th scope="col" { "Status" } th scope="col" { "Severity" }
                th scope="col" class="num" { "Impact" } th scope="col" { "Checks" }
            } }
            tbody {
                @for c in &shown {
                    tr {
                        td { a href={"/ui/controls/" (urlencode(&c.id))} { (c.id) } br; (c.title)
                             @if !c.desc.is_empty() { br; span class="muted" { (c.desc) } } }
                        td { span class={"badge " (c.status)} { (status_label(c.status)) } }
                        td class=(c.severity) { (c.severity) }
                        td class="num" { (format!("{:.1}", c.impact)) }
                        td { @for check in &c.checks {
                            div { span class=(check.status) { (check.status) } ": " (check.code_desc)
                                  @if !check.message.is_empty() { pre { (check.message) } } }
                        } }
                    }
                }
                @if shown.is_empty() { tr { td colspan="5" { "No controls match." } } }
            }
        }
    };
    respond(
        StatusCode::OK,
        frame(&format!("Scan of {}", r.pod), Some(&caller.name), body),
    )
}

fn download(name: String, body: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// The scan id as a safe file name part.
fn file_part(scan_id: &str) -> String {
    scan_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(64)
        .collect()
}

/// `GET /ui/scans/{id}/report.json`: the HDF report, exactly as signed.
pub async fn report(
    State(state): State<DashboardState>,
    Viewer(caller): Viewer,
    Path(scan_id): Path<String>,
) -> Response {
    match state.reader.report(&caller, &scan_id).await {
        Ok(r) => download(format!("{}.hdf.json", file_part(&scan_id)), r.body),
        Err(e) => refusal(&e),
    }
}

/// `GET /ui/scans/{id}/envelope.json`: the DSSE envelope as received.
pub async fn envelope(
    State(state): State<DashboardState>,
    Viewer(caller): Viewer,
    Path(scan_id): Path<String>,
) -> Response {
    match state.reader.one(&caller, &scan_id, Verb::Get).await {
        Ok(r) => download(format!("{}.dsse.json", file_part(&scan_id)), r.envelope),
        Err(e) => refusal(&e),
    }
}
