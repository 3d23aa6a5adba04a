//! Storing verified results: a batch of them in one transaction, with a
//! handful of multi-row statements rather than several statements per
//! result.
//!
//! Why multi-row: every statement is a round trip (to sqlx's SQLite
//! thread, or over the socket to PostgreSQL), and at thousands of results
//! a second those round trips and the thread switches behind them were a
//! fifth of the collector's time. A batch of 64 results is now about five
//! statements: the results (which say, by `RETURNING`, which scan ids were
//! new), their workloads' newest result, their reports and their control
//! outcomes. Only new results get the others, so a redelivered event still
//! changes nothing.

use std::collections::{HashMap, HashSet};

use sqlx::{Row, query};

use crate::StoreError;
use crate::control_outcomes::ControlOutcome;
use crate::record::{Report, StoredResult};
use crate::store::{Pool, ResultStore, Upsert, with_pool};

/// The columns of `scan_results`, in the order [`bind_result`] binds them.
const RESULT_COLUMNS: &str = "scan_id, cluster, namespace, pod, container, image, image_digest,
    profile_name, profile_version, profile_sha256, approach, outcome, failure,
    passed, failed, not_reviewed, not_applicable, errored, compliance_percent,
    failed_critical, failed_high, failed_medium, failed_low, threshold_passed,
    started_at_ms, finished_at_ms, persisted_at_ms, signer_key_id, statement,
    envelope, report_sha256, report_size";
/// How many values [`RESULT_COLUMNS`] takes.
const RESULT_VALUES: usize = 32;

/// Rows per statement, each well under SQLite's 32,766 and PostgreSQL's
/// 65,535 bound parameters.
const RESULTS_PER_INSERT: usize = 128;
const REPORTS_PER_INSERT: usize = 128;
const LATEST_PER_UPSERT: usize = 512;
const OUTCOMES_PER_INSERT: usize = 1_000;

/// How an engine numbers bound values in these statements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Placeholders {
    /// `$1, $2, …`: PostgreSQL's only form.
    Numbered,
    /// `?, ?, …` in order: SQLite finds a numbered parameter's name by a
    /// linear search, so binding thousands of `$n` costs quadratic time
    /// (a third of the SQLite thread's time in a profile); anonymous ones
    /// need no search.
    Anonymous,
}

/// `($1, …, $k), ($k+1, …)` (or the same with `?`): `rows` groups of
/// `width` placeholders.
fn placeholders(style: Placeholders, rows: usize, width: usize) -> String {
    let mut sql = String::with_capacity(rows * width * 5);
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for col in 0..width {
            if col > 0 {
                sql.push_str(", ");
            }
            match style {
                Placeholders::Numbered => {
                    sql.push('$');
                    sql.push_str(&(row * width + col + 1).to_string());
                }
                Placeholders::Anonymous => sql.push('?'),
            }
        }
        sql.push(')');
    }
    sql
}

/// Inserts `rows` results, each unless its scan id is stored (also earlier
/// in the same statement), returning the scan ids that were new.
fn insert_results_sql(style: Placeholders, rows: usize) -> String {
    format!(
        "INSERT INTO scan_results ({RESULT_COLUMNS}) VALUES {} \
         ON CONFLICT (scan_id) DO NOTHING RETURNING scan_id",
        placeholders(style, rows, RESULT_VALUES)
    )
}

fn insert_reports_sql(style: Placeholders, rows: usize) -> String {
    format!(
        "INSERT INTO scan_reports (scan_id, media_type, sha256, body, body_encoding) VALUES {} \
         ON CONFLICT (scan_id) DO NOTHING",
        placeholders(style, rows, 5)
    )
}

/// Makes each scan its workload's newest result unless a newer one is
/// already there (a late redelivery changes nothing). The keys of one
/// statement are distinct: PostgreSQL refuses to update a row twice.
fn upsert_latest_sql(style: Placeholders, rows: usize) -> String {
    format!(
        "INSERT INTO workload_latest (workload_key, scan_id, finished_at_ms) VALUES {}
ON CONFLICT (workload_key) DO UPDATE SET scan_id = excluded.scan_id,
    finished_at_ms = excluded.finished_at_ms
WHERE excluded.finished_at_ms > workload_latest.finished_at_ms
   OR (excluded.finished_at_ms = workload_latest.finished_at_ms
       AND excluded.scan_id > workload_latest.scan_id)",
        placeholders(style, rows, 3)
    )
}

fn insert_outcomes_sql(style: Placeholders, rows: usize) -> String {
    format!(
        "INSERT INTO control_outcomes (scan_id, control_id, severity, status) VALUES {} \
         ON CONFLICT (scan_id, control_id) DO NOTHING",
        placeholders(style, rows, 4)
    )
}

/// The key of a result's workload (see the `0003_posture` migration).
fn workload_key(r: &StoredResult) -> String {
    format!(
        "{}/{}/{}/{}/{}",
        r.cluster, r.namespace, r.pod, r.container, r.profile_name
    )
}

/// Each workload's newest result among `new`, by (finished, scan id), the
/// order [`upsert_latest_sql`] keeps.
fn newest_per_workload<'a>(new: &[&'a StoredResult]) -> Vec<(String, &'a StoredResult)> {
    let mut newest: HashMap<String, &StoredResult> = HashMap::with_capacity(new.len());
    for r in new {
        let entry = newest.entry(workload_key(r)).or_insert(r);
        if (r.finished_at_ms, &r.scan_id) > (entry.finished_at_ms, &entry.scan_id) {
            *entry = r;
        }
    }
    newest.into_iter().collect()
}

/// Binds one result's values in [`RESULT_COLUMNS`] order.
macro_rules! bind_result {
    ($q:expr, $r:expr) => {{
        let r: &StoredResult = $r;
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

/// Runs the statements of one batch in the open transaction `$tx` and
/// evaluates to the outcome of each result, in order.
macro_rules! write_batch {
    ($tx:expr, $style:expr, $batch:expr) => {{
        let batch: &[(&StoredResult, Option<&Report>)] = $batch;
        let style: Placeholders = $style;
        // Every statement below is built from fixed fragments and `$n`
        // placeholders only; every value is bound.
        let mut new_ids: HashSet<String> = HashSet::with_capacity(batch.len());
        for chunk in batch.chunks(RESULTS_PER_INSERT) {
            let mut q = query(sqlx::AssertSqlSafe(insert_results_sql(style, chunk.len())));
            for (result, _) in chunk {
                q = bind_result!(q, *result);
            }
            for row in q
                .fetch_all(&mut *$tx)
                .await
                .map_err(StoreError::from_sqlx)?
            {
                new_ids.insert(row.try_get("scan_id").map_err(StoreError::from_sqlx)?);
            }
        }
        // The first occurrence of a new scan id is the one stored.
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut new = Vec::with_capacity(new_ids.len());
        for (result, report) in batch {
            if new_ids.remove(&result.scan_id) {
                outcomes.push(Upsert::Inserted);
                new.push((*result, *report));
            } else {
                outcomes.push(Upsert::AlreadyStored);
            }
        }
        let results: Vec<&StoredResult> = new.iter().map(|(r, _)| *r).collect();
        for chunk in newest_per_workload(&results).chunks(LATEST_PER_UPSERT) {
            let mut q = query(sqlx::AssertSqlSafe(upsert_latest_sql(style, chunk.len())));
            for (key, r) in chunk {
                q = q.bind(key.as_str()).bind(&r.scan_id).bind(r.finished_at_ms);
            }
            q.execute(&mut *$tx).await.map_err(StoreError::from_sqlx)?;
        }
        let reports: Vec<(&StoredResult, &Report)> = new
            .iter()
            .filter_map(|(r, report)| report.map(|report| (*r, report)))
            .collect();
        for chunk in reports.chunks(REPORTS_PER_INSERT) {
            let mut q = query(sqlx::AssertSqlSafe(insert_reports_sql(style, chunk.len())));
            for (r, report) in chunk {
                q = q
                    .bind(&r.scan_id)
                    .bind(&report.media_type)
                    .bind(&report.sha256)
                    .bind(&report.body)
                    .bind(report.encoding.as_str());
            }
            q.execute(&mut *$tx).await.map_err(StoreError::from_sqlx)?;
        }
        let controls: Vec<(&str, &ControlOutcome)> = reports
            .iter()
            .flat_map(|(r, report)| report.controls.iter().map(|o| (r.scan_id.as_str(), o)))
            .collect();
        for chunk in controls.chunks(OUTCOMES_PER_INSERT) {
            let mut q = query(sqlx::AssertSqlSafe(insert_outcomes_sql(style, chunk.len())));
            for (scan_id, o) in chunk {
                q = q
                    .bind(*scan_id)
                    .bind(&o.control_id)
                    .bind(&o.severity)
                    .bind(&o.status);
            }
            q.execute(&mut *$tx).await.map_err(StoreError::from_sqlx)?;
        }
        outcomes
    }};
}

impl ResultStore {
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
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let style = match self.pool {
            Pool::Sqlite(_) => Placeholders::Anonymous,
            Pool::Postgres(_) => Placeholders::Numbered,
        };
        with_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(StoreError::from_sqlx)?;
            let outcomes = write_batch!(tx, style, batch);
            tx.commit().await.map_err(StoreError::from_sqlx)?;
            Ok(outcomes)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_every_value_once_in_order() {
        use Placeholders::{Anonymous, Numbered};
        assert_eq!(placeholders(Numbered, 2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(placeholders(Numbered, 1, 1), "($1)");
        assert_eq!(placeholders(Anonymous, 2, 2), "(?, ?), (?, ?)");
        assert_eq!(
            insert_results_sql(Anonymous, 3).matches('?').count(),
            3 * RESULT_VALUES
        );
        let sql = insert_results_sql(Numbered, 3);
        assert!(sql.contains(&format!("${}", 3 * RESULT_VALUES)), "{sql}");
        assert!(!sql.contains(&format!("${}", 3 * RESULT_VALUES + 1)));
        assert_eq!(RESULT_COLUMNS.split(',').count(), RESULT_VALUES);
    }

    #[test]
    fn the_newest_result_of_each_workload_is_the_one_kept() {
        let row = |id: &str, pod: &str, finished: i64| StoredResult {
            scan_id: id.into(),
            cluster: "c".into(),
            namespace: "ns".into(),
            pod: pod.into(),
            container: "app".into(),
            image: String::new(),
            image_digest: String::new(),
            profile_name: "p".into(),
            profile_version: "1".into(),
            profile_sha256: String::new(),
            approach: "exec".into(),
            completed: true,
            failure: None,
            counts: None,
            threshold_passed: None,
            started_at_ms: 0,
            finished_at_ms: finished,
            persisted_at_ms: 0,
            signer_key_id: String::new(),
            statement: String::new(),
            envelope: Vec::new(),
            report_sha256: None,
            report_size: None,
        };
        let rows = [
            row("01A", "a", 5),
            row("01B", "a", 9),
            row("01C", "b", 1),
            row("01D", "a", 9),
            row("01E", "a", 7),
        ];
        let refs: Vec<&StoredResult> = rows.iter().collect();
        let mut kept: Vec<(String, String)> = newest_per_workload(&refs)
            .into_iter()
            .map(|(key, r)| (key, r.scan_id.clone()))
            .collect();
        kept.sort();
        assert_eq!(
            kept,
            [
                ("c/ns/a/app/p".to_owned(), "01D".to_owned()),
                ("c/ns/b/app/p".to_owned(), "01C".to_owned()),
            ]
        );
    }
}
