//! Drift reports: for a container scan, which controls' status differs
//! from the image scan of the same digest and profile version, and the
//! queries that find a stored scan's partner of the other kind.
//!
//! The store does not compare reports (the collector does, with the
//! verified HDF of both); it keeps the outcome, keyed by the container's
//! scan id, and replaces it only with one computed against an image scan
//! that finished no earlier, so a redelivered older image scan cannot undo
//! a newer comparison. Image scans are the rows whose namespace is empty
//! (`target.kind: image` statements carry no namespace, pod or container).

use sqlx::{Row, query};

use crate::StoreError;
use crate::record::{BodyEncoding, StoredResult};
use crate::store::{Pool, ResultStore, map_row, with_pool};

/// Most container results one image scan is compared with when it is
/// stored (each workload's newest result only).
pub const MAX_DRIFT_PARTNERS: u32 = 500;

/// A stored drift report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriftRecord {
    /// The container scan it is about.
    pub container_scan_id: String,
    /// The image scan it was compared with.
    pub image_scan_id: String,
    /// When that image scan finished, Unix milliseconds.
    pub image_finished_at_ms: i64,
    /// Profile name both scans used.
    pub profile_name: String,
    /// Profile version both scans used.
    pub profile_version: String,
    /// How many controls drifted.
    pub drifted: i64,
    /// The drifted controls as JSON, or their ciphertext (see `encoding`).
    pub controls: Vec<u8>,
    /// How `controls` is kept.
    pub encoding: BodyEncoding,
    /// When the collector compared them, Unix milliseconds.
    pub computed_at_ms: i64,
}

const UPSERT_DRIFT: &str = "INSERT INTO drift_reports (
    container_scan_id, image_scan_id, image_finished_at_ms, profile_name,
    profile_version, drifted, controls, controls_encoding, computed_at_ms
) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (container_scan_id) DO UPDATE SET image_scan_id = excluded.image_scan_id,
    image_finished_at_ms = excluded.image_finished_at_ms,
    profile_name = excluded.profile_name, profile_version = excluded.profile_version,
    drifted = excluded.drifted, controls = excluded.controls,
    controls_encoding = excluded.controls_encoding, computed_at_ms = excluded.computed_at_ms
WHERE excluded.image_finished_at_ms >= drift_reports.image_finished_at_ms";

/// The newest completed image scan with a report of one digest and
/// profile version.
const LATEST_IMAGE_SCAN: &str = "SELECT * FROM scan_results
WHERE image_digest = $1 AND profile_name = $2 AND profile_version = $3
  AND namespace = '' AND outcome = 'completed' AND report_sha256 IS NOT NULL
ORDER BY finished_at_ms DESC, scan_id DESC LIMIT 1";

/// For each digest of `$1…$n`, the newest completed image scan with a
/// report of each profile name and version: the partners of a whole batch
/// of container results in one query, not one per result.
fn latest_image_scans_sql(digests: usize) -> String {
    let list: Vec<String> = (1..=digests).map(|i| format!("${i}")).collect();
    format!(
        "SELECT * FROM (SELECT r.*, ROW_NUMBER() OVER (
    PARTITION BY image_digest, profile_name, profile_version
    ORDER BY finished_at_ms DESC, scan_id DESC) AS newest
  FROM scan_results r
  WHERE image_digest IN ({}) AND namespace = '' AND outcome = 'completed'
    AND report_sha256 IS NOT NULL) ranked
WHERE newest = 1",
        list.join(", ")
    )
}

/// Digests per partner query, well under either engine's parameter limit.
const DIGESTS_PER_QUERY: usize = 500;

/// Each workload's newest result, when it is a completed container scan
/// with a report of one digest and profile version.
const LATEST_CONTAINER_SCANS: &str = "SELECT r.* FROM workload_latest w
JOIN scan_results r ON r.scan_id = w.scan_id
WHERE r.image_digest = $1 AND r.profile_name = $2 AND r.profile_version = $3
  AND r.namespace <> '' AND r.outcome = 'completed' AND r.report_sha256 IS NOT NULL
ORDER BY r.finished_at_ms DESC, r.scan_id DESC LIMIT $4";

impl ResultStore {
    /// Records `drift`, unless the container scan's stored report was
    /// computed against an image scan that finished later.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the database is down.
    pub async fn put_drift(&self, drift: &DriftRecord) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            query(UPSERT_DRIFT)
                .bind(&drift.container_scan_id)
                .bind(&drift.image_scan_id)
                .bind(drift.image_finished_at_ms)
                .bind(&drift.profile_name)
                .bind(&drift.profile_version)
                .bind(drift.drifted)
                .bind(&drift.controls)
                .bind(drift.encoding.as_str())
                .bind(drift.computed_at_ms)
                .execute(pool)
                .await
                .map_err(StoreError::from_sqlx)?;
            Ok(())
        })
    }

    /// The drift report of a container scan, when one was recorded.
    ///
    /// # Errors
    /// [`StoreError`] when the database fails.
    pub async fn drift(&self, container_scan_id: &str) -> Result<Option<DriftRecord>, StoreError> {
        let row = with_pool!(self, pool => {
            let row = query("SELECT * FROM drift_reports WHERE container_scan_id = $1")
                .bind(container_scan_id)
                .fetch_optional(pool)
                .await
                .map_err(StoreError::from_sqlx)?;
            row.map(|r| -> Result<(DriftRecord, String), sqlx::Error> {
                Ok((DriftRecord {
                    container_scan_id: r.try_get("container_scan_id")?,
                    image_scan_id: r.try_get("image_scan_id")?,
                    image_finished_at_ms: r.try_get("image_finished_at_ms")?,
                    profile_name: r.try_get("profile_name")?,
                    profile_version: r.try_get("profile_version")?,
                    drifted: r.try_get("drifted")?,
                    controls: r.try_get("controls")?,
                    encoding: BodyEncoding::Plain,
                    computed_at_ms: r.try_get("computed_at_ms")?,
                }, r.try_get("controls_encoding")?))
            })
            .transpose()
            .map_err(StoreError::from_sqlx)?
        });
        row.map(|(record, encoding)| {
            Ok(DriftRecord {
                encoding: BodyEncoding::parse(&encoding)?,
                ..record
            })
        })
        .transpose()
    }

    /// The newest completed image scan (with a report) of `digest` and the
    /// profile `name`@`version`.
    ///
    /// # Errors
    /// [`StoreError`] when the database fails.
    pub async fn latest_image_scan(
        &self,
        digest: &str,
        name: &str,
        version: &str,
    ) -> Result<Option<StoredResult>, StoreError> {
        with_pool!(self, pool => {
            let row = query(LATEST_IMAGE_SCAN)
                .bind(digest)
                .bind(name)
                .bind(version)
                .fetch_optional(pool)
                .await
                .map_err(StoreError::from_sqlx)?;
            row.map(|r| map_row!(&r)).transpose().map_err(StoreError::from_sqlx)
        })
    }

    /// The newest completed image scan (with a report) of each digest,
    /// profile name and version among `digests`: what
    /// [`ResultStore::latest_image_scan`] finds for each, in one query per
    /// [`DIGESTS_PER_QUERY`] digests. The caller picks the profile.
    ///
    /// # Errors
    /// [`StoreError`] when the database fails.
    pub async fn latest_image_scans(
        &self,
        digests: &[&str],
    ) -> Result<Vec<StoredResult>, StoreError> {
        let mut found = Vec::new();
        for chunk in digests.chunks(DIGESTS_PER_QUERY) {
            // Built from fixed fragments and `$n` placeholders only.
            let sql = latest_image_scans_sql(chunk.len());
            let rows: Vec<StoredResult> = with_pool!(self, pool => {
                let mut q = query(sqlx::AssertSqlSafe(sql));
                for digest in chunk {
                    q = q.bind(*digest);
                }
                let rows = q.fetch_all(pool).await.map_err(StoreError::from_sqlx)?;
                rows.iter()
                    .map(|r| map_row!(r))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(StoreError::from_sqlx)?
            });
            found.extend(rows);
        }
        Ok(found)
    }

    /// Each workload's newest result that is a completed container scan
    /// (with a report) of `digest` and `name`@`version`, newest first, at
    /// most [`MAX_DRIFT_PARTNERS`].
    ///
    /// # Errors
    /// [`StoreError`] when the database fails.
    pub async fn latest_container_scans(
        &self,
        digest: &str,
        name: &str,
        version: &str,
    ) -> Result<Vec<StoredResult>, StoreError> {
        with_pool!(self, pool => {
            let rows = query(LATEST_CONTAINER_SCANS)
                .bind(digest)
                .bind(name)
                .bind(version)
                .bind(i64::from(MAX_DRIFT_PARTNERS))
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
