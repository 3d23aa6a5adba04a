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
