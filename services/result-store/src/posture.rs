//! What the fleet looks like now and over time: the queries behind the
//! collector's dashboard.
//!
//! "Now" is each workload's newest result (`workload_latest`, kept by every
//! insert), so the overview and the control page are indexed joins however
//! many results are stored; "over time" groups completed results into
//! buckets. Every query takes the caller's scope (cluster, namespace, or
//! the set of namespaces the caller may list) and is paged: page sizes are
//! capped at [`MAX_PAGE_SIZE`] and page numbers at [`MAX_PAGE_INDEX`], so a
//! request can never ask for an unbounded amount of work.

use scanfleet_scan_engine::profile::Severity;
use sqlx::{Row, query};

use crate::StoreError;
use crate::query::{Bind, ResultFilter, conditions};
use crate::record::StoredResult;
use crate::store::{MAX_PAGE_SIZE, Pool, ResultStore, bind_all, map_row, with_pool};

/// The deepest page a listing serves.
pub const MAX_PAGE_INDEX: u32 = 10_000;
/// Most namespaces the overview summarises.
pub const MAX_NAMESPACES: u32 = 500;
/// Most trend buckets.
pub const MAX_BUCKETS: i64 = 400;

/// Which of the workloads (their newest results) to show.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PostureFilter {
    /// Cluster name.
    pub cluster: Option<String>,
    /// Namespace.
    pub namespace: Option<String>,
    /// Only these namespaces (what the caller may list); empty matches
    /// nothing.
    pub namespaces: Option<std::collections::BTreeSet<String>>,
    /// Only workloads whose newest result failed a control of this
    /// severity.
    pub failing: Option<Severity>,
    /// Only workloads whose newest result finished before this (Unix ms):
    /// the stale ones.
    pub stale_before_ms: Option<i64>,
}

/// A page of workloads, each as its newest result.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadPage {
    /// In cluster, namespace, pod, container, profile order.
    pub results: Vec<StoredResult>,
    /// How many workloads match, over all pages.
    pub total: i64,
}

/// One namespace's posture, over its workloads' newest results.
#[derive(Clone, Debug, PartialEq)]
pub struct NamespacePosture {
    /// Cluster name.
    pub cluster: String,
    /// Namespace.
    pub namespace: String,
    /// Workloads with a result.
    pub workloads: i64,
    /// Of those, last scanned before the stale cutoff.
    pub stale: i64,
    /// Of those, whose newest scan did not complete.
    pub failed_scans: i64,
    /// Mean compliance of the completed ones; none when none completed.
    pub compliance_percent: Option<f64>,
    /// Failed controls by severity: critical, high, medium, low.
    pub failed_by_severity: [i64; 4],
}

/// Mean compliance of the results that finished in one bucket.
#[derive(Clone, Debug, PartialEq)]
pub struct TrendPoint {
    /// Where the bucket starts, Unix ms.
    pub start_ms: i64,
    /// Completed results in it.
    pub results: i64,
    /// Their mean compliance in percent.
    pub compliance_percent: f64,
}

/// A workload whose newest result fails a control.
#[derive(Clone, Debug, PartialEq)]
pub struct ControlFailure {
    /// That result.
    pub result: StoredResult,
    /// The control's severity there.
    pub severity: String,
}

/// Conditions and binds, numbered in order.
struct Sql {
    clauses: Vec<String>,
    binds: Vec<Bind>,
}

impl Sql {
    /// The scope of `filter`, on `scan_results` columns.
    fn scope(filter: &PostureFilter) -> Self {
        let scope = ResultFilter {
            cluster: filter.cluster.clone(),
            namespace: filter.namespace.clone(),
            namespaces: filter.namespaces.clone(),
            ..Default::default()
        };
        let (clauses, binds) = conditions(&scope, None);
        let mut sql = Self { clauses, binds };
        if let Some(column) = filter.failing.and_then(failed_column) {
            sql.clauses.push(format!("r.{column} > 0"));
        }
        if let Some(cutoff) = filter.stale_before_ms {
            sql.push("w.finished_at_ms < ?", Bind::Int(cutoff));
        }
        sql
    }

    fn push(&mut self, condition: &str, bind: Bind) {
        self.binds.push(bind);
        self.clauses
            .push(condition.replace('?', &format!("${}", self.binds.len())));
    }

    /// The next placeholder, for a value bound after the conditions.
    fn next(&mut self, bind: Bind) -> String {
        self.binds.push(bind);
        format!("${}", self.binds.len())
    }

    fn where_(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }
}

/// The failed-count column of a severity (none for `none`).
fn failed_column(severity: Severity) -> Option<&'static str> {
    match severity {
        Severity::Critical => Some("failed_critical"),
        Severity::High => Some("failed_high"),
        Severity::Medium => Some("failed_medium"),
        Severity::Low => Some("failed_low"),
        Severity::None => None,
    }
}

fn limits(page_size: u32, page_index: u32) -> (i64, i64) {
    let size = i64::from(page_size.clamp(1, MAX_PAGE_SIZE));
    (size, size * i64::from(page_index.min(MAX_PAGE_INDEX)))
}

const WORKLOAD_ORDER: &str = "ORDER BY r.cluster, r.namespace, r.pod, r.container, r.profile_name";
const NEWEST: &str = "FROM workload_latest w JOIN scan_results r ON r.scan_id = w.scan_id";

impl ResultStore {
    /// Page `page_index` (from 0) of the workloads matching `filter`.
    ///
    /// # Errors
    /// [`StoreError`] when the database fails.
    pub async fn workloads(
        &self,
        filter: &PostureFilter,
        page_size: u32,
        page_index: u32,
    ) -> Result<WorkloadPage, StoreError> {
        let sql = Sql::scope(filter);
        let (limit, offset) = limits(page_size, page_index);
        let total = self
            .count_where(
                &format!("SELECT COUNT(*) AS n {NEWEST} {}", sql.where_()),
                &sql.binds,
            )
            .await?;
        let text = format!(
            "SELECT r.* {NEWEST} {} {WORKLOAD_ORDER} LIMIT {limit} OFFSET {offset}",
            sql.where_()
        );
        let results = self.rows(text, &sql.binds).await?;
        Ok(WorkloadPage { results, total })
    }

    /// Each namespace's posture (at most [`MAX_NAMESPACES`]), counting
    /// workloads last scanned before `stale_before_ms` as stale.
    ///
    /// # Errors
    /// [`StoreError`] when the database fails.
    pub async fn namespace_posture(
        &self,
        filter: &PostureFilter,
        stale_before_ms: i64,
    ) -> Result<Vec<NamespacePosture>, StoreError> {
        let mut sql = Sql::scope(filter);
        let stale = sql.next(Bind::Int(stale_before_ms));
        let sum = |e: &str| format!("CAST(COALESCE(SUM({e}), 0) AS BIGINT)");
        let text = format!(
            "SELECT r.cluster, r.namespace, COUNT(*) AS workloads, {} AS stale, {} AS failed_scans, \
             AVG(r.compliance_percent) AS compliance, {} AS c, {} AS h, {} AS m, {} AS l \
             {NEWEST} {} GROUP BY r.cluster, r.namespace ORDER BY r.cluster, r.namespace \
             LIMIT {MAX_NAMESPACES}",
            sum(&format!(
                "CASE WHEN w.finished_at_ms < {stale} THEN 1 ELSE 0 END"
            )),
            sum("CASE WHEN r.outcome = 'failed' THEN 1 ELSE 0 END"),
            sum("r.failed_critical"),
            sum("r.failed_high"),
            sum("r.failed_medium"),
            sum("r.failed_low"),
            sql.where_()
        );
        with_pool!(self, pool => {
            // Fixed fragments and `$n` placeholders only; values are bound.
            let rows = bind_all!(query(sqlx::AssertSqlSafe(text.clone())), &sql.binds)
                .fetch_all(pool)
                .await
                .map_err(StoreError::from_sqlx)?;
            rows.iter()
                .map(|r| -> Result<NamespacePosture, sqlx::Error> {
                    Ok(NamespacePosture {
                        cluster: r.try_get("cluster")?,
                        namespace: r.try_get("namespace")?,
                        workloads: r.try_get("workloads")?,
                        stale: r.try_get("stale")?,
                        failed_scans: r.try_get("failed_scans")?,
                        compliance_percent: r.try_get("compliance")?,
                        failed_by_severity: [r.try_get("c")?, r.try_get("h")?, r.try_get("m")?, r.try_get("l")?],
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(StoreError::from_sqlx)
        })
    }

    /// Mean compliance of completed results finished since `since_ms`, in
    /// buckets of `bucket_ms`, oldest first (at most [`MAX_BUCKETS`]).
    ///
    /// # Errors
    /// [`StoreError`] when the database fails.
    pub async fn compliance_trend(
        &self,
        filter: &PostureFilter,
        since_ms: i64,
        bucket_ms: i64,
    ) -> Result<Vec<TrendPoint>, StoreError> {
        let scope = PostureFilter {
            failing: None,
            stale_before_ms: None,
            ..filter.clone()
        };
        let bucket_ms = bucket_ms.max(1);
        let mut sql = Sql::scope(&scope);
        sql.push("r.outcome = ?", Bind::Text("completed".into()));
        sql.push("r.finished_at_ms >= ?", Bind::Int(since_ms));
        let bucket = sql.next(Bind::Int(bucket_ms));
        let text = format!(
            "SELECT r.finished_at_ms / {bucket} AS bucket, COUNT(*) AS n, \
             AVG(r.compliance_percent) AS compliance FROM scan_results r {} \
             GROUP BY 1 ORDER BY 1 LIMIT {MAX_BUCKETS}",
            sql.where_()
        );
        with_pool!(self, pool => {
            // Fixed fragments and `$n` placeholders only; values are bound.
            let rows = bind_all!(query(sqlx::AssertSqlSafe(text.clone())), &sql.binds)
                .fetch_all(pool)
                .await
                .map_err(StoreError::from_sqlx)?;
            rows.iter()
                .map(|r| -> Result<TrendPoint, sqlx::Error> {
                    Ok(TrendPoint {
                        start_ms: r.try_get::<i64, _>("bucket")? * bucket_ms,
                        results: r.try_get("n")?,
                        compliance_percent: r.try_get::<Option<f64>, _>("compliance")?.unwrap_or(0.0),
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(StoreError::from_sqlx)
        })
    }

    /// Page `page_index` of the workloads whose newest result fails
    /// `control_id`, and how many do in all.
    ///
    /// # Errors
    /// [`StoreError`] when the database fails.
    pub async fn control_failures(
        &self,
        control_id: &str,
        filter: &PostureFilter,
        page_size: u32,
        page_index: u32,
    ) -> Result<(Vec<ControlFailure>, i64), StoreError> {
        let mut sql = Sql::scope(filter);
        sql.push("c.control_id = ?", Bind::Text(control_id.to_owned()));
        sql.push("c.status = ?", Bind::Text("failed".into()));
        let from = format!("{NEWEST} JOIN control_outcomes c ON c.scan_id = w.scan_id");
        let total = self
            .count_where(
                &format!("SELECT COUNT(*) AS n {from} {}", sql.where_()),
                &sql.binds,
            )
            .await?;
        let (limit, offset) = limits(page_size, page_index);
        let text = format!(
            "SELECT r.*, c.severity AS control_severity {from} {} {WORKLOAD_ORDER} \
             LIMIT {limit} OFFSET {offset}",
            sql.where_()
        );
        let failures = with_pool!(self, pool => {
            // Fixed fragments and `$n` placeholders only; values are bound.
            let rows = bind_all!(query(sqlx::AssertSqlSafe(text.clone())), &sql.binds)
                .fetch_all(pool)
                .await
                .map_err(StoreError::from_sqlx)?;
            rows.iter()
                .map(|r| -> Result<ControlFailure, sqlx::Error> {
                    Ok(ControlFailure { result: map_row!(r)?, severity: r.try_get("control_severity")? })
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(StoreError::from_sqlx)?
        });
        Ok((failures, total))
    }

    async fn count_where(&self, text: &str, binds: &[Bind]) -> Result<i64, StoreError> {
        with_pool!(self, pool => {
            // Fixed fragments and `$n` placeholders only; values are bound.
            let row = bind_all!(query(sqlx::AssertSqlSafe(text.to_owned())), binds)
                .fetch_one(pool)
                .await
                .map_err(StoreError::from_sqlx)?;
            row.try_get::<i64, _>("n").map_err(StoreError::from_sqlx)
        })
    }

    async fn rows(&self, text: String, binds: &[Bind]) -> Result<Vec<StoredResult>, StoreError> {
        with_pool!(self, pool => {
            // Fixed fragments and `$n` placeholders only; values are bound.
            let rows = bind_all!(query(sqlx::AssertSqlSafe(text.clone())), binds)
                .fetch_all(pool)
                .await
                .map_err(StoreError::from_sqlx)?;
            rows.iter()
                .map(|r| map_row!(r))
                .collect::<Result<Vec<_>, _>>()
                .map_err(StoreError::from_sqlx)
        })
    }
}
