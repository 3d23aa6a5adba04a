//! One control across the fleet (`/ui/controls/{id}`): the workloads whose
//! newest result fails it, within the namespaces the viewer may list.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use scanfleet_edge_access::Verb;
use scanfleet_result_store::{PostureFilter, ResultFilter};
use serde::Deserialize;

use super::layout::{age, frame, now_ms, respond};
use super::overview::{PAGE_SIZE, urlencode};
use super::{DashboardState, Viewer, refusal};

/// The control page's GET parameters.
#[derive(Deserialize, Default)]
pub struct Params {
    page: Option<u32>,
}

/// `GET /ui/controls/{id}`.
pub async fn page(
    State(state): State<DashboardState>,
    Viewer(caller): Viewer,
    Path(control_id): Path<String>,
    Query(p): Query<Params>,
) -> Response {
    let control_id: String = control_id.chars().take(200).collect();
    let mut scope = ResultFilter::default();
    if let Err(e) = state.reader.narrow(&caller, Verb::List, &mut scope).await {
        return refusal(&e);
    }
    let filter = PostureFilter {
        namespaces: scope.namespaces,
        ..Default::default()
    };
    let index = p.page.unwrap_or(0);
    let (failures, total) = match state
        .reader
        .store
        .control_failures(&control_id, &filter, PAGE_SIZE, index)
        .await
    {
        Ok(found) => found,
        Err(e) => return refusal(&e.into()),
    };
    let now = now_ms();
    let more = i64::from(index + 1) * i64::from(PAGE_SIZE) < total;
    let body = html! {
        p { (total) " workload(s) you may list fail this control in their newest scan." }
        table id="failing-workloads" {
            thead { tr {
                th scope="col" { "Workload" } th scope="col" { "Severity" }
                th scope="col" { "Profile" } th scope="col" { "Last scan" }
            } }
            tbody {
                @for f in &failures {
                    tr {
                        td { a href={"/ui/scans/" (urlencode(&f.result.scan_id)) "?status=failed"} {
                            (f.result.cluster) "/" (f.result.namespace) "/" (f.result.pod) "/" (f.result.container) } }
                        td class=(f.severity) { (f.severity) }
                        td { (f.result.profile_name) " " (f.result.profile_version) }
                        td { (age(now, f.result.finished_at_ms)) }
                    }
                }
                @if failures.is_empty() { tr { td colspan="4" { "No workload fails it." } } }
            }
        }
        nav class="pager" aria-label="Pages" {
            @if index > 0 { a href={"?page=" (index - 1)} { "Previous page" } }
            @if more { a href={"?page=" (index + 1)} { "Next page" } }
        }
    };
    respond(
        StatusCode::OK,
        frame(&format!("Control {control_id}"), Some(&caller.name), body),
    )
}
