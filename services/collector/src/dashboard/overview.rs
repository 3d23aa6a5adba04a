//! The fleet overview (`/ui`): compliance per cluster and namespace, failed
//! controls by severity, a 30-day trend, and every workload's newest
//! result with its freshness, filtered by plain GET parameters and paged.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use scanfleet_edge_access::Verb;
use scanfleet_result_store::{NamespacePosture, PostureFilter, ResultFilter, StoredResult};
use scanfleet_scan_engine::profile::Severity;
use serde::Deserialize;

use super::layout::{age, error_page, frame, now_ms, respond};
use super::{DashboardState, Viewer, charts, refusal};

/// Workloads per page.
pub const PAGE_SIZE: u32 = 50;
const DAY_MS: i64 = 86_400_000;

/// The overview's GET parameters.
#[derive(Deserialize, Default)]
pub struct Params {
    cluster: Option<String>,
    namespace: Option<String>,
    severity: Option<String>,
    stale: Option<String>,
    page: Option<u32>,
}

/// `GET /ui`.
pub async fn page(
    State(state): State<DashboardState>,
    Viewer(caller): Viewer,
    params: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(p)) = params else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "unknown or malformed filter parameters",
        );
    };
    let failing = match p.severity.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match Severity::parse(s).filter(|s| *s != Severity::None) {
            Some(severity) => Some(severity),
            None => {
                return error_page(
                    StatusCode::BAD_REQUEST,
                    "severity: expected critical, high, medium or low",
                );
            }
        },
    };
    let mut scope = ResultFilter {
        cluster: p.cluster.clone().filter(|s| !s.is_empty()),
        namespace: p.namespace.clone().filter(|s| !s.is_empty()),
        ..Default::default()
    };
    if let Err(e) = state.reader.narrow(&caller, Verb::List, &mut scope).await {
        return refusal(&e);
    }
    let now = now_ms();
    let stale_before = now - state.settings.stale_after.as_millis() as i64;
    let base = PostureFilter {
        cluster: scope.cluster,
        namespace: scope.namespace,
        namespaces: scope.namespaces,
        ..Default::default()
    };
    let filter = PostureFilter {
        failing,
        stale_before_ms: p.stale.is_some().then_some(stale_before),
        ..base.clone()
    };
    let page_index = p.page.unwrap_or(0);
    let store = &state.reader.store;
    let loaded = async {
        Ok::<_, scanfleet_result_store::StoreError>((
            store.namespace_posture(&base, stale_before).await?,
            store
                .compliance_trend(&base, now - 30 * DAY_MS, DAY_MS)
                .await?,
            store.workloads(&filter, PAGE_SIZE, page_index).await?,
        ))
    };
    let (namespaces, trend, workloads) = match loaded.await {
        Ok(loaded) => loaded,
        Err(e) => return refusal(&e.into()),
    };
    let totals = namespaces.iter().fold([0i64; 4], |mut acc, n| {
        for (a, c) in acc.iter_mut().zip(n.failed_by_severity) {
            *a += c;
        }
        acc
    });
    let body = html! {
        section aria-labelledby="by-namespace" {
            h2 id="by-namespace" { "Compliance by cluster and namespace" }
            (namespace_table(&namespaces))
        }
        section aria-labelledby="charts" {
            h2 id="charts" { "Failed controls and trend" }
            div class="charts" { (charts::severities(totals)) (charts::trend(&trend)) }
        }
        section aria-labelledby="workloads" {
            h2 id="workloads" { "Workloads (" (workloads.total) ")" }
            (filters(&p))
            (workload_table(&workloads.results, now, stale_before))
            (pager(&p, page_index, workloads.total))
        }
    };
    respond(
        StatusCode::OK,
        frame("Fleet posture", Some(&caller.name), body),
    )
}

fn namespace_table(rows: &[NamespacePosture]) -> Markup {
    html! {
        table {
            caption class="muted" { "Each workload counted by its newest result" }
            thead { tr {
                th scope="col" { "Cluster" } th scope="col" { "Namespace" }
                th scope="col" class="num" { "Workloads" } th scope="col" class="num" { "Stale" }
                th scope="col" class="num" { "Failed scans" } th scope="col" class="num" { "Compliance" }
                th scope="col" class="num" { "Critical" } th scope="col" class="num" { "High" }
                th scope="col" class="num" { "Medium" } th scope="col" class="num" { "Low" }
            } }
            tbody {
                @for n in rows {
                    tr {
                        td { (n.cluster) }
                        td { a href={"/ui?namespace=" (urlencode(&n.namespace))} { (n.namespace) } }
                        td class="num" { (n.workloads) }
                        td class="num" { @if n.stale > 0 { span class="stale-badge" { (n.stale) } } @else { "0" } }
                        td class="num" { (n.failed_scans) }
                        td class="num" { (percent(n.compliance_percent)) }
                        @for c in n.failed_by_severity { td class="num" { (c) } }
                    }
                }
                @if rows.is_empty() { tr { td colspan="10" { "No results you may list." } } }
            }
        }
    }
}

fn filters(p: &Params) -> Markup {
    let severity = p.severity.as_deref().unwrap_or("");
    html! {
        form class="filters" method="get" action="/ui" {
            @if let Some(ns) = p.namespace.as_deref().filter(|s| !s.is_empty()) {
                input type="hidden" name="namespace" value=(ns);
            }
            label for="severity" { "Failing severity"
                select id="severity" name="severity" {
                    option value="" selected[severity.is_empty()] { "any" }
                    @for s in ["critical", "high", "medium", "low"] {
                        option value=(s) selected[severity == s] { (s) }
                    }
                }
            }
            label for="stale" { "Stale only"
                input type="checkbox" id="stale" name="stale" value="1" checked[p.stale.is_some()];
            }
            button type="submit" { "Filter" }
        }
    }
}

fn workload_table(results: &[StoredResult], now: i64, stale_before: i64) -> Markup {
    html! {
        table id="workload-table" {
            thead { tr {
                th scope="col" { "Workload" } th scope="col" { "Profile" }
                th scope="col" class="num" { "Compliance" } th scope="col" { "Failed (C/H/M/L)" }
                th scope="col" { "Verdict" } th scope="col" { "Last scan" }
            } }
            tbody {
                @for r in results {
                    @let stale = r.finished_at_ms < stale_before;
                    tr class=[stale.then_some("stale")] {
                        td { a href={"/ui/scans/" (urlencode(&r.scan_id))} {
                            (r.cluster) "/" (r.namespace) "/" (r.pod) "/" (r.container) } }
                        td { (r.profile_name) " " (r.profile_version) }
                        td class="num" { @match &r.counts {
                            Some(c) => (percent(Some(c.compliance_percent))),
                            None => span class="failed" { "scan failed" },
                        } }
                        td { @if let Some(c) = &r.counts {
                            (c.failed_critical) " / " (c.failed_high) " / " (c.failed_medium) " / " (c.failed_low)
                        } }
                        td { (verdict(r.threshold_passed)) }
                        td { (age(now, r.finished_at_ms))
                             @if stale { " " span class="badge stale-badge" { "stale" } } }
                    }
                }
                @if results.is_empty() { tr { td colspan="6" { "No workloads match." } } }
            }
        }
    }
}

fn pager(p: &Params, index: u32, total: i64) -> Markup {
    let pages = ((total + i64::from(PAGE_SIZE) - 1) / i64::from(PAGE_SIZE)).max(1);
    let link = |to: u32| {
        let mut q = vec![format!("page={to}")];
        for (k, v) in [
            ("namespace", &p.namespace),
            ("cluster", &p.cluster),
            ("severity", &p.severity),
        ] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                q.push(format!("{k}={}", urlencode(v)));
            }
        }
        if p.stale.is_some() {
            q.push("stale=1".into());
        }
        format!("/ui?{}", q.join("&"))
    };
    html! {
        nav class="pager" aria-label="Pages" {
            @if index > 0 { a href=(link(index - 1)) { "Previous page" } }
            span { "Page " (index + 1) " of " (pages) }
            @if i64::from(index + 1) < pages { a href=(link(index + 1)) { "Next page" } }
        }
    }
}

/// A threshold verdict.
pub fn verdict(passed: Option<bool>) -> Markup {
    html! { @match passed {
        Some(true) => span class="badge passed" { "passed" },
        Some(false) => span class="badge failed" { "failed" },
        None => span class="muted" { "no gate" },
    } }
}

fn percent(p: Option<f64>) -> String {
    p.map_or_else(|| "–".to_owned(), |p| format!("{p:.1}%"))
}

/// Percent-encodes a query or path value.
pub fn urlencode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
