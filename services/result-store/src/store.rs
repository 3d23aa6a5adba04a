//! The store itself: one API over SQLite (embedded default, WAL) and
//! PostgreSQL (at scale), chosen by the URL scheme.
//!
//! The SQL is shared: both engines accept `$n` placeholders, `ON CONFLICT`
//! upserts and the same types once times are Unix milliseconds. Only the
//! migrations differ (BLOB/BYTEA, INTEGER/BIGINT, BOOLEAN).

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{Row, query};

use crate::StoreError;
use crate::query::{Bind, PageToken, ResultFilter, where_clause};
use crate::record::{BodyEncoding, Report, StoredResult};

/// The largest page a listing returns, whatever the client asks for.
pub const MAX_PAGE_SIZE: u32 = 500;
/// The page size when the client asks for 0.
pub const DEFAULT_PAGE_SIZE: u32 = 50;

pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// What an upsert did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upsert {
    /// A new row.
    Inserted,
    /// The scan id was already stored; nothing changed (a redelivered
    /// event is a no-op, which is what makes the collector idempotent).
    AlreadyStored,
}

/// A page of results and where the next starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    /// Newest first.
    pub results: Vec<StoredResult>,
    /// Absent on the last page.
    pub next: Option<PageToken>,
}

/// Verified scan results in SQLite or PostgreSQL.
pub struct ResultStore {
    pub(crate) pool: Pool,
}

/// Runs `$body` with `$pool` bound to whichever pool backs the store.
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            Pool::Sqlite($pool) => $body,
            Pool::Postgres($pool) => $body,
        }
    };
}

pub(crate) use with_pool;

macro_rules! bind_all {
    ($q:expr, $binds:expr) => {{
        let mut q = $q;
        for bind in $binds {
            q = match bind {
                Bind::Text(v) => q.bind(v.clone()),
                Bind::Int(v) => q.bind(*v),
                Bind::Bool(v) => q.bind(*v),
            };
        }
        q
    }};
}

pub(crate) use bind_all;

macro_rules! map_row {
    ($row:expr) => {{
        let row = $row;
        let outcome: String = row.try_get("outcome")?;
        let passed: Option<i64> = row.try_get("passed")?;
        let counts = match passed {
            None => None,
            Some(passed) => Some($crate::record::Counts {
                passed,
                failed: row.try_get::<Option<i64>, _>("failed")?.unwrap_or(0),
                not_reviewed: row.try_get::<Option<i64>, _>("not_reviewed")?.unwrap_or(0),
                not_applicable: row
                    .try_get::<Option<i64>, _>("not_applicable")?
                    .unwrap_or(0),
                error: row.try_get::<Option<i64>, _>("errored")?.unwrap_or(0),
                compliance_percent: row
                    .try_get::<Option<f64>, _>("compliance_percent")?
                    .unwrap_or(0.0),
                failed_critical: row
                    .try_get::<Option<i64>, _>("failed_critical")?
                    .unwrap_or(0),
                failed_high: row.try_get::<Option<i64>, _>("failed_high")?.unwrap_or(0),
                failed_medium: row.try_get::<Option<i64>, _>("failed_medium")?.unwrap_or(0),
                failed_low: row.try_get::<Option<i64>, _>("failed_low")?.unwrap_or(0),
            }),
        };
        Ok::<$crate::record::StoredResult, sqlx::Error>($crate::record::StoredResult {
            scan_id: row.try_get("scan_id")?,
            cluster: row.try_get("cluster")?,
            namespace: row.try_get("namespace")?,
            pod: row.try_get("pod")?,
            container: row.try_get("container")?,
            image: row.try_get("image")?,
            image_digest: row.try_get("image_digest")?,
            profile_name: row.try_get("profile_name")?,
            profile_version: row.try_get("profile_version")?,
            profile_sha256: row.try_get("profile_sha256")?,
            approach: row.try_get("approach")?,
            completed: outcome == "completed",
            failure: row.try_get("failure")?,
            counts,
            threshold_passed: row.try_get("threshold_passed")?,
            started_at_ms: row.try_get("started_at_ms")?,
            finished_at_ms: row.try_get("finished_at_ms")?,
            persisted_at_ms: row.try_get("persisted_at_ms")?,
            signer_key_id: row.try_get("signer_key_id")?,
            statement: row.try_get("statement")?,
            envelope: row.try_get("envelope")?,
            report_sha256: row.try_get("report_sha256")?,
            report_size: row.try_get("report_size")?,
        })
    }};
}

pub(crate) use map_row;

const INSERT_RESULT: &str = "INSERT INTO scan_results (
    scan_id, cluster, namespace, pod, container, image, image_digest,
    profile_name, profile_version, profile_sha256, approach, outcome, failure,
    passed, failed, not_reviewed, not_applicable, errored, compliance_percent,
    failed_critical, failed_high, failed_medium, failed_low, threshold_passed,
    started_at_ms, finished_at_ms, persisted_at_ms, signer_key_id, statement,
    envelope, report_sha256, report_size
) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
          $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30,
          $31, $32)
ON CONFLICT (scan_id) DO NOTHING";

const INSERT_REPORT: &str =
    "INSERT INTO scan_reports (scan_id, media_type, sha256, body, body_encoding)
VALUES ($1, $2, $3, $4, $5) ON CONFLICT (scan_id) DO NOTHING";

/// Makes `scan_id` its workload's newest result unless a newer one is
/// already there (a late redelivery changes nothing).
const UPSERT_LATEST: &str = "INSERT INTO workload_latest (workload_key, scan_id, finished_at_ms)
VALUES ($1, $2, $3)
ON CONFLICT (workload_key) DO UPDATE SET scan_id = excluded.scan_id,
    finished_at_ms = excluded.finished_at_ms
WHERE excluded.finished_at_ms > workload_latest.finished_at_ms
   OR (excluded.finished_at_ms = workload_latest.finished_at_ms
       AND excluded.scan_id > workload_latest.scan_id)";

/// Control outcomes inserted per statement (four values each).
const OUTCOMES_PER_INSERT: usize = 250;

/// The `INSERT` of `rows` control outcomes: `$1` is the scan id, then
/// three placeholders per row.
fn insert_outcomes_sql(rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|i| format!("($1, ${}, ${}, ${})", 3 * i + 2, 3 * i + 3, 3 * i + 4))
        .collect();
    format!(
        "INSERT INTO control_outcomes (scan_id, control_id, severity, status) VALUES {} \
         ON CONFLICT (scan_id, control_id) DO NOTHING",
        values.join(", ")
    )
}

/// The key of a result's workload (see the `0003_posture` migration).
pub(crate) fn workload_key(r: &StoredResult) -> String {
    format!(
        "{}/{}/{}/{}/{}",
        r.cluster, r.namespace, r.pod, r.container, r.profile_name
    )
}

/// Keeps the dashboard's indexes for a newly inserted result: its
/// workload's newest result and its control outcomes.
macro_rules! index_result {
    ($tx:expr, $result:expr, $report:expr) => {{
        let result: &StoredResult = $result;
        query(UPSERT_LATEST)
            .bind(workload_key(result))
            .bind(&result.scan_id)
            .bind(result.finished_at_ms)
            .execute(&mut *$tx)
            .await
            .map_err(StoreError::from_sqlx)?;
        let outcomes: &[crate::ControlOutcome] = $report.map_or(&[], |r: &Report| &r.controls);
        for chunk in outcomes.chunks(OUTCOMES_PER_INSERT) {
            // Built from fixed fragments and `$n` placeholders only.
            let sql = insert_outcomes_sql(chunk.len());
            let mut q = query(sqlx::AssertSqlSafe(sql)).bind(&result.scan_id);
            for o in chunk {
                q = q.bind(&o.control_id).bind(&o.severity).bind(&o.status);
            }
            q.execute(&mut *$tx).await.map_err(StoreError::from_sqlx)?;
        }
    }};
}

macro_rules! bind_result {
    ($q:expr, $r:expr) => {{
        let r = $r;
        let c = r.counts.as_ref();
        $q.bind(&r.scan_id)
            .bind(&r.cluster)
            .bind(&r.namespace)
            .bind(&r.pod)
            .bind(&r.container)
            .bind(&r.image)
            .bind(&r.image_digest)
            .bind(&r.profile_name)
            .bind(&r.profile_version)
            .bind(&r.profile_sha256)
            .bind(&r.approach)
            .bind(if r.completed { "completed" } else { "failed" })
            .bind(&r.failure)
            .bind(c.map(|c| c.passed))
            .bind(c.map(|c| c.failed))
            .bind(c.map(|c| c.not_reviewed))
            .bind(c.map(|c| c.not_applicable))
            .bind(c.map(|c| c.error))
            .bind(c.map(|c| c.compliance_percent))
            .bind(c.map(|c| c.failed_critical))
            .bind(c.map(|c| c.failed_high))
            .bind(c.map(|c| c.failed_medium))
            .bind(c.map(|c| c.failed_low))
            .bind(r.threshold_passed)
            .bind(r.started_at_ms)
            .bind(r.finished_at_ms)
            .bind(r.persisted_at_ms)
            .bind(&r.signer_key_id)
            .bind(&r.statement)
            .bind(&r.envelope)
            .bind(&r.report_sha256)
            .bind(r.report_size)
    }};
}

/// SQLite connections: one writer at a time anyway; a few readers beside.
const SQLITE_CONNECTIONS: u32 = 4;

impl ResultStore {
    /// Connects and migrates. `sqlite://PATH` (created if missing, WAL
    /// journal) or `postgres://…`.
    ///
    /// # Errors
    /// [`StoreError::InvalidUrl`] for other schemes, [`StoreError::Unavailable`]
    /// when the database cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|e| StoreError::InvalidUrl(e.to_string()))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5));
            let pool = SqlitePoolOptions::new()
                .max_connections(SQLITE_CONNECTIONS)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options)
                .await
                .map_err(StoreError::from_sqlx)?;
            sqlx::migrate!("./migrations/sqlite")
                .run(&pool)
                .await
                .map_err(|e| StoreError::Migration(e.to_string()))?;
            // Every connection opened now, after the migrations (one at a
            // time: switching a new file to WAL wants it alone), and kept:
            // opening one later needs file descriptors, which a flood of
            // half-open clients may have taken (collector/tests/
            // slow_clients.rs saw "unable to open database file"), and a
            // store that cannot open its own file must not be what a flood
            // achieves.
            let mut opened = Vec::with_capacity(SQLITE_CONNECTIONS as usize);
            for _ in 0..SQLITE_CONNECTIONS {
                opened.push(pool.acquire().await.map_err(StoreError::from_sqlx)?);
            }
            drop(opened);
            Pool::Sqlite(pool)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(5))
                .connect(url)
                .await
                .map_err(StoreError::from_sqlx)?;
            sqlx::migrate!("./migrations/postgres")
                .run(&pool)
                .await
                .map_err(|e| StoreError::Migration(e.to_string()))?;
            Pool::Postgres(pool)
        } else {
            return Err(StoreError::InvalidUrl(
                "expected a sqlite:// or postgres:// URL".into(),
            ));
        };
        Ok(Self { pool })
    }

    /// Which engine backs the store: `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Stores a result (and its report) unless the scan id is already stored.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the database is down: the caller must
    /// not acknowledge the event, so it is redelivered and caught up later.
    pub async fn upsert(
        &self,
        result: &StoredResult,
        report: Option<&Report>,
    ) -> Result<Upsert, StoreError> {
        let done = self.upsert_batch(&[(result, report)]).await?;
        Ok(done[0])
    }

    /// Stores a batch of results in **one** transaction, each unless its
    /// scan id is already stored (also within the batch), and says what
    /// happened to each, in order.
    ///
    /// Why a batch: every commit is a durable write (an fsync in SQLite's
    /// WAL, a WAL flush in PostgreSQL), and at hundreds of results a second
    /// the commits, not the inserts, are the cost. The caller acknowledges
    /// the batch's events only after this returns `Ok`, so "acknowledged
    /// only once durably stored" holds for every one of them.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the database is down; nothing of the
    /// batch is stored then (the transaction rolls back).
    pub async fn upsert_batch(
        &self,
        batch: &[(&StoredResult, Option<&Report>)],
    ) -> Result<Vec<Upsert>, StoreError> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(StoreError::from_sqlx)?;
            let mut outcomes = Vec::with_capacity(batch.len());
            for (result, report) in batch {
                let done = bind_result!(query(INSERT_RESULT), *result)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::from_sqlx)?;
                let inserted = done.rows_affected() == 1;
                if inserted {
                    index_result!(tx, result, *report);
                }
                if let (true, Some(report)) = (inserted, report) {
                    query(INSERT_REPORT)
                        .bind(&result.scan_id)
                        .bind(&report.media_type)
                        .bind(&report.sha256)
                        .bind(&report.body)
                        .bind(report.encoding.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(StoreError::from_sqlx)?;
                }
                outcomes.push(if inserted { Upsert::Inserted } else { Upsert::AlreadyStored });
            }
            tx.commit().await.map_err(StoreError::from_sqlx)?;
            Ok(outcomes)
        })
    }

    /// One result by scan id.
    ///
    /// # Errors
    /// [`StoreError`] when the database fails.
    pub async fn get(&self, scan_id: &str) -> Result<Option<StoredResult>, StoreError> {
        with_pool!(self, pool => {
            let row = query("SELECT * FROM scan_results WHERE scan_id = $1")
                .bind(scan_id)
                .fetch_optional(pool)
                .await
                .map_err(StoreError::from_sqlx)?;
            row.map(|r| map_row!(&r)).transpose().map_err(StoreError::from_sqlx)
        })
    }

    /// The HDF report of a scan, when one was stored, as stored (see
    /// [`Report::encoding`]).
    ///
    /// # Errors
    /// [`StoreError`] when the database fails.
    pub async fn report(&self, scan_id: &str) -> Result<Option<Report>, StoreError> {
        let row = with_pool!(self, pool => {
            let row = query("SELECT media_type, sha256, body, body_encoding FROM scan_reports WHERE scan_id = $1")
                .bind(scan_id)
                .fetch_optional(pool)
                .await
                .map_err(StoreError::from_sqlx)?;
            row.map(|r| -> Result<(Report, String), sqlx::Error> {
                Ok((Report {
                    media_type: r.try_get("media_type")?,
                    sha256: r.try_get("sha256")?,
                    body: r.try_get("body")?,
                    encoding: BodyEncoding::Plain,
                    controls: Vec::new(),
                }, r.try_get("body_encoding")?))
            })
            .transpose()
            .map_err(StoreError::from_sqlx)?
        });
        row.map(|(report, encoding)| {
            Ok(Report {
                encoding: BodyEncoding::parse(&encoding)?,
                ..report
            })
        })
        .transpose()
    }

    /// The namespaces that hold results (in `cluster`, when given), at
    /// most `limit` of them, in name order: what a listing across
    /// namespaces would span, for authorization.
    ///
    /// # Errors
    /// [`StoreError`] when the database fails.
    pub async fn namespaces(
        &self,
        cluster: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        with_pool!(self, pool => {
            let rows = query(
                "SELECT DISTINCT namespace FROM scan_results \
                 WHERE ($1 IS NULL OR cluster = $1) ORDER BY namespace LIMIT $2",
            )
            .bind(cluster)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .map_err(StoreError::from_sqlx)?;
            rows.iter()
                .map(|r| r.try_get::<String, _>("namespace"))
                .collect::<Result<Vec<_>, _>>()
                .map_err(StoreError::from_sqlx)
        })
    }

    /// A filtered page, newest first. `page_size` 0 means the default and is
    /// capped at [`MAX_PAGE_SIZE`].
    ///
    /// # Errors
    /// [`StoreError`] when the database fails.
    pub async fn list(
        &self,
        filter: &ResultFilter,
        page_size: u32,
        after: Option<&PageToken>,
    ) -> Result<Page, StoreError> {
        let size = match page_size {
            0 => DEFAULT_PAGE_SIZE,
            n => n.min(MAX_PAGE_SIZE),
        };
        let (clause, binds) = where_clause(filter, after);
        let sql = format!(
            "SELECT * FROM scan_results {clause} ORDER BY finished_at_ms DESC, scan_id DESC LIMIT {}",
            size + 1
        );
        let mut results: Vec<StoredResult> = with_pool!(self, pool => {
            // The text is built only from fixed fragments and `$n`
            // placeholders; every value is bound, never interpolated.
            let rows = bind_all!(query(sqlx::AssertSqlSafe(sql.clone())), &binds)
                .fetch_all(pool)
                .await
                .map_err(StoreError::from_sqlx)?;
            rows.iter()
                .map(|r| map_row!(r))
                .collect::<Result<Vec<_>, _>>()
                .map_err(StoreError::from_sqlx)?
        });
        let next = if results.len() > size as usize {
            results.truncate(size as usize);
            results.last().map(|r| PageToken {
                finished_at_ms: r.finished_at_ms,
                scan_id: r.scan_id.clone(),
            })
        } else {
            None
        };
        Ok(Page { results, next })
    }

    /// Retention: deletes results (and their reports) that finished before
    /// `cutoff_ms`, returning how many were removed.
    ///
    /// # Errors
    /// [`StoreError`] when the database fails.
    pub async fn delete_finished_before(&self, cutoff_ms: i64) -> Result<u64, StoreError> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(StoreError::from_sqlx)?;
            // Explicit, so retention does not depend on SQLite's per-connection
            // foreign_keys pragma.
            query("DELETE FROM control_outcomes WHERE scan_id IN (SELECT scan_id FROM scan_results WHERE finished_at_ms < $1)")
                .bind(cutoff_ms)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from_sqlx)?;
            query("DELETE FROM drift_reports WHERE container_scan_id IN (SELECT scan_id FROM scan_results WHERE finished_at_ms < $1) OR image_scan_id IN (SELECT scan_id FROM scan_results WHERE finished_at_ms < $1)")
                .bind(cutoff_ms)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from_sqlx)?;
            query("DELETE FROM workload_latest WHERE finished_at_ms < $1")
                .bind(cutoff_ms)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from_sqlx)?;
            query("DELETE FROM scan_reports WHERE scan_id IN (SELECT scan_id FROM scan_results WHERE finished_at_ms < $1)")
                .bind(cutoff_ms)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from_sqlx)?;
            let done = query("DELETE FROM scan_results WHERE finished_at_ms < $1")
                .bind(cutoff_ms)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from_sqlx)?;
            tx.commit().await.map_err(StoreError::from_sqlx)?;
            Ok(done.rows_affected())
        })
    }

    /// How many results are stored.
    ///
    /// # Errors
    /// [`StoreError`] when the database fails.
    pub async fn count(&self) -> Result<i64, StoreError> {
        with_pool!(self, pool => {
            let row = query("SELECT COUNT(*) AS n FROM scan_results")
                .fetch_one(pool)
                .await
                .map_err(StoreError::from_sqlx)?;
            row.try_get::<i64, _>("n").map_err(StoreError::from_sqlx)
        })
    }
}
